//! `builtin:systemd` through the real binary: on buses that are not
//! there, that never answer, that have no systemd, and against a stand-in.
//!
//! The stand-in is honest about what it is: a small Python service on a
//! private dbus-daemon that answers the three calls the check makes
//! (`Manager.GetUnit`, `Manager.ListUnitsFiltered`, `Properties.GetAll` on
//! a unit) the way systemd does, with fixture units. It tests our D-Bus
//! client (connection, marshalling, error names), not systemd itself,
//! which a container cannot run. The check finds the bus through
//! `DBUS_SYSTEM_BUS_ADDRESS`, as every D-Bus client does.

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

const PYTHON: &str = "/usr/bin/python3";

/// The stand-in: systemd's Manager and Unit interfaces, with fixture units.
const STAND_IN: &str = r#"
import sys
import dbus, dbus.service, dbus.mainloop.glib
from gi.repository import GLib

dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
bus = dbus.bus.BusConnection(sys.argv[1])
name = dbus.service.BusName("org.freedesktop.systemd1", bus)

# name: (load, active, sub, state change time in microseconds since 1970)
UNITS = {
    "nginx.service": ("loaded", "active", "running", 1700000000000000),
    "backup.service": ("loaded", "failed", "failed", 1800000000000000),
    "fstrim.timer": ("loaded", "failed", "failed", 1800000000000000),
}

def path(unit):
    escaped = "".join(c if c.isalnum() else "_%02x" % ord(c) for c in unit)
    return "/org/freedesktop/systemd1/unit/" + escaped

class NoSuchUnit(dbus.DBusException):
    _dbus_error_name = "org.freedesktop.systemd1.NoSuchUnit"

class Manager(dbus.service.Object):
    @dbus.service.method("org.freedesktop.systemd1.Manager", in_signature="s", out_signature="o")
    def GetUnit(self, unit):
        if unit not in UNITS:
            raise NoSuchUnit("Unit %s not loaded." % unit)
        return path(unit)

    @dbus.service.method("org.freedesktop.systemd1.Manager", in_signature="as",
                         out_signature="a(ssssssouso)")
    def ListUnitsFiltered(self, states):
        return [(unit, "", load, active, sub, "", path(unit), 0, "", "/")
                for unit, (load, active, sub, _) in sorted(UNITS.items()) if active in states]

class Unit(dbus.service.Object):
    def __init__(self, unit):
        dbus.service.Object.__init__(self, bus, path(unit))
        self.unit = unit

    @dbus.service.method("org.freedesktop.DBus.Properties", in_signature="s",
                         out_signature="a{sv}")
    def GetAll(self, interface):
        load, active, sub, since = UNITS[self.unit]
        return {"Id": self.unit, "LoadState": load, "ActiveState": active, "SubState": sub,
                "StateChangeTimestamp": dbus.UInt64(since)}

manager = Manager(bus, "/org/freedesktop/systemd1")
units = [Unit(unit) for unit in UNITS]
print("ready", flush=True)
GLib.MainLoop().run()
"#;

/// A process killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A private dbus-daemon; its address. `None`, with the reason printed,
/// where dbus-daemon is not installed.
fn dbus_daemon(dir: &Path) -> Option<(Killed, String)> {
    let socket = dir.join("bus");
    let address = format!("unix:path={}", socket.display());
    let daemon = Command::new("dbus-daemon")
        .args(["--session", "--nofork", "--nopidfile"])
        .arg(format!("--address={address}"))
        .stdout(Stdio::null())
        .spawn();
    let daemon = match daemon {
        Ok(child) => Killed(child),
        Err(error) => {
            println!("skipped: cannot start dbus-daemon ({error}): apt-get install dbus-daemon");
            return None;
        }
    };
    wait_for(|| socket.exists(), "the dbus-daemon's socket");
    Some((daemon, address))
}

/// The stand-in on `address`, once it owns its name.
fn stand_in(dir: &Path, address: &str) -> Option<Killed> {
    let script = dir.join("systemd_stand_in.py");
    std::fs::write(&script, STAND_IN).unwrap();
    let mut child = match Command::new(PYTHON)
        .arg(&script)
        .arg(address)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(error) => {
            println!("skipped: cannot run {PYTHON}: {error}");
            return None;
        }
    };
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    if line.trim() != "ready" {
        let output = child.wait_with_output().unwrap();
        println!(
            "skipped: the stand-in did not start (apt-get install python3-dbus python3-gi): {}",
            String::from_utf8_lossy(&output.stderr)
        );
        return None;
    }
    Some(Killed(child))
}

fn wait_for(ready: impl Fn() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `monchero check-now --json -- builtin:systemd ARGS` on the bus at
/// `address`.
fn systemd_check(address: &str, args: &[&str]) -> Run {
    let mut cmd = monchero();
    cmd.env("DBUS_SYSTEM_BUS_ADDRESS", address)
        .args(["check-now", "--json", "--", "builtin:systemd"])
        .args(args);
    run_json(cmd)
}

#[test]
fn units_and_failed_units_from_a_stand_in_for_systemd() {
    let dir = tempfile::tempdir().unwrap();
    let Some((_daemon, address)) = dbus_daemon(dir.path()) else { return };
    let Some(_systemd) = stand_in(dir.path(), &address) else { return };

    let run = systemd_check(&address, &["-u", "nginx"]);
    assert_eq!(run.status, 0, "{}", run.json);
    assert_eq!(run.json["summary"], "SYSTEMD OK: nginx.service is active (running)");

    let run = systemd_check(&address, &["-u", "nginx", "-u", "backup.service"]);
    assert_eq!(run.status, 2, "{}", run.json);
    assert_eq!(
        run.json["summary"],
        "SYSTEMD CRITICAL: backup.service is failed (since 2027-01-15T08:00:00Z)"
    );
    assert_eq!(
        run.json["long_output"],
        "nginx.service is active (running)\nbackup.service is failed (since 2027-01-15T08:00:00Z)"
    );

    let run = systemd_check(&address, &["-u", "typo"]);
    assert_eq!(run.status, 2);
    assert_eq!(
        run.json["summary"],
        "SYSTEMD CRITICAL: typo.service is not-found (no such unit is loaded)"
    );

    let run = systemd_check(&address, &[]);
    assert_eq!(run.status, 2);
    assert_eq!(
        run.json["summary"],
        "SYSTEMD CRITICAL: 2 failed units: backup.service, fstrim.timer"
    );
    assert_eq!(run.json["perfdata"][0]["label"], "failed");
    assert_eq!(run.json["perfdata"][0]["value"], 2.0);
    assert_eq!(run.json["perfdata"][0]["crit"], "0");

    let run = systemd_check(&address, &["--failed", "-w", "0", "-c", "5"]);
    assert_eq!(run.status, 1);
}

#[test]
fn a_bus_without_systemd_is_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let Some((_daemon, address)) = dbus_daemon(dir.path()) else { return };
    let run = systemd_check(&address, &["-u", "nginx"]);
    assert_eq!(run.status, 3, "{}", run.json);
    let summary = run.json["summary"].as_str().unwrap();
    assert!(
        summary.starts_with(
            "SYSTEMD UNKNOWN: systemd is not running here: nothing answers as \
             org.freedesktop.systemd1 on the system bus"
        ),
        "{summary}"
    );
}

#[test]
fn no_bus_at_all_is_unknown() {
    let missing = PathBuf::from("/nonexistent/monchero-test/bus");
    let run = systemd_check(&format!("unix:path={}", missing.display()), &[]);
    assert_eq!(run.status, 3, "{}", run.json);
    let summary = run.json["summary"].as_str().unwrap();
    assert!(
        summary.starts_with(
            "SYSTEMD UNKNOWN: systemd is not running here: cannot reach the system bus"
        ),
        "{summary}"
    );
    assert!(summary.contains("/nonexistent/monchero-test/bus"), "{summary}");
}

#[test]
fn a_bus_that_never_answers_is_unknown_at_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("silent");
    // Connections wait in the backlog, accepted by the kernel, never read.
    let _listener = UnixListener::bind(&socket).unwrap();
    let run = systemd_check(&format!("unix:path={}", socket.display()), &["-t", "0.5"]);
    assert_eq!(run.status, 3, "{}", run.json);
    assert_eq!(run.json["summary"], "SYSTEMD UNKNOWN: systemd did not answer within 0.5 s");
    assert_eq!(run.json["timed_out"], false);
}
