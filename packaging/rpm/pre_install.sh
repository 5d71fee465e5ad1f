# monchero %pre: the system user the agent runs as. $1 is 1 on install,
# 2 on upgrade.
if ! getent group monchero >/dev/null; then
    groupadd --system monchero
fi
if ! getent passwd monchero >/dev/null; then
    useradd --system --gid monchero --home-dir /var/lib/monchero --no-create-home \
        --shell /sbin/nologin --comment "Monchero monitoring agent" monchero
    # Groups plugins commonly need, for reading logs (adm: /var/log on
    # distributions that let adm read it; systemd-journal: the whole
    # journal). Only when the user is created, so an administrator who
    # takes one away keeps it away across upgrades.
    for group in adm systemd-journal; do
        if getent group "$group" >/dev/null; then
            usermod --append --groups "$group" monchero
        fi
    done
fi
exit 0
