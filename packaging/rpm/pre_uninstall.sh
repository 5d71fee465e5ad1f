# monchero %preun: stop and disable the service on erase ($1 is 0), not on
# upgrade ($1 is 1).
if [ "$1" -eq 0 ] && [ -d /run/systemd/system ]; then
    systemctl --no-reload disable --now monchero.service >/dev/null 2>&1 || :
fi
exit 0
