# monchero %postun. RPM has no purge: the state in /var/lib/monchero and
# the monchero user stay (Fedora's packaging guidelines keep users), and a
# modified agent.toml is saved as agent.toml.rpmsave.
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
fi
exit 0
