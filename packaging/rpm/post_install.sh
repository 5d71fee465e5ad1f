# monchero %post: the state directory, then systemd. $1 is 1 on install,
# 2 on upgrade. Enabling follows the distribution's presets, as the
# %systemd_post macro does.
# Owner and mode as the unit's StateDirectory= sets them, also on a
# directory left by a root `monchero run`. The directory only: a recursive
# chown by root inside a directory its user can write could be steered by
# hard links to other files.
mkdir -p /var/lib/monchero
chown monchero:monchero /var/lib/monchero
chmod 0750 /var/lib/monchero
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
    if [ "$1" -eq 1 ]; then
        systemctl --no-reload preset monchero.service >/dev/null 2>&1 || :
    else
        # An upgrade: the new binary takes over; the state carries over.
        systemctl try-restart monchero.service >/dev/null 2>&1 || :
    fi
fi
exit 0
