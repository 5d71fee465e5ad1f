//! Built-in checks against their monitoring-plugins twins, on this machine:
//! `builtin:load` and `check_load`, `builtin:disk` and `check_disk`,
//! `builtin:inodes` and `check_disk -W -K`, `builtin:swap` and
//! `check_swap`, `builtin:procs` and `check_procs`, `builtin:file` and
//! `check_file_age`, `builtin:ntp` and `check_ntp_time` (against a
//! chronyd the test starts on a loopback port). Each pair runs with the same options and must agree on
//! the state and, within what the two readings a moment apart can differ
//! by, on the numbers in the perfdata.
//! `builtin:http` and `builtin:tcp -S` meet `check_http` and `check_tcp`
//! in `http.rs`, which starts the servers they need.
//!
//! The thresholds are chosen far from the machine's values (or derived
//! from them), so that a value moving between the two runs cannot put them
//! on either side of a level.
//!
//! `.ci/run` installs monitoring-plugins-basic and -standard, and chrony.

#![allow(clippy::unwrap_used)]

use monchero_core::builtin::BuiltinCheck;
use monchero_core::{CheckResult, State};

mod common;
use common::{item, plugin};

/// Runs a built-in check from its command line (`disk -p /`).
fn builtin(command_line: &str) -> CheckResult {
    let words: Vec<String> = command_line.split(' ').map(str::to_owned).collect();
    BuiltinCheck::from_args(&words[0], &words[1..]).unwrap().run()
}

fn value(result: &CheckResult, label: &str) -> f64 {
    item(result, label).value.unwrap()
}

#[tokio::test]
async fn load() {
    let options = "-w 1000,900,800 -c 2000,1900,1800";
    let ours = builtin(&format!("load {options}"));
    let theirs = plugin(&format!("check_load {options}")).await;
    assert_eq!((ours.state, theirs.state), (State::Ok, State::Ok), "{ours:?}\n{theirs:?}");
    for label in ["load1", "load5", "load15"] {
        // The kernel updates the averages every 5 seconds; between the two
        // readings they move by little.
        let (a, b) = (value(&ours, label), value(&theirs, label));
        assert!((a - b).abs() <= 0.5, "{label}: {a} against {b}");
        let warn = |result: &CheckResult| -> f64 {
            item(result, label).warn.as_deref().unwrap().parse().unwrap()
        };
        assert_eq!(warn(&ours), warn(&theirs), "{label}");
    }

    // Levels of 0: critical for both whenever the machine has any load.
    let busy = "-w 0,0,0 -c 0,0,0";
    let (ours, theirs) =
        (builtin(&format!("load {busy}")), plugin(&format!("check_load {busy}")).await);
    if value(&ours, "load15") > 0.05 {
        assert_eq!((ours.state, theirs.state), (State::Critical, State::Critical));
    }

    let per_cpu = "-r -w 1000,900,800 -c 2000,1900,1800";
    let ours = builtin(&format!("load {per_cpu}"));
    let theirs = plugin(&format!("check_load {per_cpu}")).await;
    assert_eq!(ours.state, theirs.state);
    let (a, b) = (value(&ours, "scaled_load15"), value(&theirs, "scaled_load15"));
    assert!((a - b).abs() <= 0.25, "scaled_load15: {a} against {b}");
}

#[tokio::test]
async fn disk() {
    let options = "-w 10% -c 5% -p /";
    let ours = builtin(&format!("disk {options}"));
    let theirs = plugin(&format!("check_disk {options}")).await;
    assert_eq!(ours.state, theirs.state, "{ours:?}\n{theirs:?}");
    let (ours_root, theirs_root) = (item(&ours, "/"), item(&theirs, "/"));
    assert_eq!((ours_root.uom.as_deref(), theirs_root.uom.as_deref()), (Some("B"), Some("B")));
    // Used bytes agree within 1% of the size. (The sizes differ by root's
    // reserve, which check_disk counts and we do not: see disk.rs.)
    let size = theirs_root.max.unwrap();
    let used = (ours_root.value.unwrap(), theirs_root.value.unwrap());
    assert!((used.0 - used.1).abs() <= size * 0.01, "used {used:?} of {size}");
    assert!(ours_root.max.unwrap() <= size);

    // Levels the disk cannot meet: critical for both.
    let full = "-w 100% -c 100% -p /";
    assert_eq!(builtin(&format!("disk {full}")).state, State::Critical);
    assert_eq!(plugin(&format!("check_disk {full}")).await.state, State::Critical);

    // A path that does not exist.
    let missing = "-w 10% -c 5% -p /nonexistent/monchero";
    let ours = builtin(&format!("disk {missing}"));
    let theirs = plugin(&format!("check_disk {missing}")).await;
    assert_eq!((ours.state, theirs.state), (State::Critical, State::Critical), "{theirs:?}");
}

#[tokio::test]
async fn inodes() {
    let free_inodes = |summary: &str| -> u64 {
        let at = summary.find("inode=").unwrap() + "inode=".len();
        summary[at..].split('%').next().unwrap().parse().unwrap()
    };
    let theirs = plugin("check_disk -W 10% -K 5% -p /").await;
    let percent = free_inodes(&theirs.summary);
    let ours = builtin("inodes -W 10% -K 5% -p /");
    assert_eq!(ours.state, theirs.state, "{ours:?}\n{theirs:?}");
    let root = item(&ours, "/");
    let ours_percent = 100.0 * (1.0 - root.value.unwrap() / root.max.unwrap());
    assert!((ours_percent - percent as f64).abs() <= 1.0, "{ours_percent} against {percent}");

    // A level above what is free: both alert.
    let above = format!("-W {}% -K {}% -p /", percent + 2, percent + 1);
    assert_eq!(builtin(&format!("inodes {above}")).state, State::Critical);
    assert_eq!(plugin(&format!("check_disk {above}")).await.state, State::Critical);
}

#[tokio::test]
async fn swap() {
    // `-n ok`: check_swap's state for a machine without swap, which is
    // what builtin:swap always says.
    let ours = builtin("swap -w 10% -c 5%");
    let theirs = plugin("check_swap -n ok -w 10% -c 5%").await;
    assert_eq!(ours.state, theirs.state, "{ours:?}\n{theirs:?}");
    let (a, b) = (item(&ours, "swap"), item(&theirs, "swap"));
    assert_eq!((a.uom.as_deref(), b.uom.as_deref()), (Some("B"), Some("B")));
    // check_swap rounds to MiB.
    let mib = 1024.0 * 1024.0;
    assert!((a.max.unwrap() - b.max.unwrap()).abs() <= mib, "{a} against {b}");
    assert!((a.value.unwrap() - b.value.unwrap()).abs() <= 16.0 * mib, "{a} against {b}");
}

#[tokio::test]
async fn procs() {
    // All processes: check_procs leaves out itself and its parent (this
    // test), and others come and go between the two scans.
    let options = "-w 5000 -c 10000";
    let ours = builtin(&format!("procs {options}"));
    let theirs = plugin(&format!("check_procs {options}")).await;
    assert_eq!((ours.state, theirs.state), (State::Ok, State::Ok));
    let (a, b) = (value(&ours, "procs"), value(&theirs, "procs"));
    assert!((a - b).abs() <= 5.0, "{a} against {b}");
    assert_eq!(item(&ours, "procs").warn, item(&theirs, "procs").warn);

    // Filters: the same processes, and the same summary.
    let me = std::fs::read_to_string("/proc/self/comm").unwrap();
    for filters in [format!("-C {}", me.trim()), "-u root".to_owned(), "-s Z".to_owned()] {
        let ours = builtin(&format!("procs -w 0:100000 {filters}"));
        let theirs = plugin(&format!("check_procs -w 0:100000 {filters}")).await;
        assert_eq!(ours.state, theirs.state, "{filters}");
        let (a, b) = (value(&ours, "procs"), value(&theirs, "procs"));
        assert!((a - b).abs() <= 5.0, "{filters}: {a} against {b}");
        let (ours_text, theirs_text) = (
            ours.summary.split_once(" with ").unwrap().1,
            theirs.summary.split_once(" with ").unwrap().1,
        );
        assert_eq!(ours_text, theirs_text, "{filters}");
    }

    // A process that is not running: both critical with -c 1:.
    let absent = "-c 1: -C monchero-nope";
    let ours = builtin(&format!("procs {absent}"));
    let theirs = plugin(&format!("check_procs {absent}")).await;
    assert_eq!((ours.state, theirs.state), (State::Critical, State::Critical));
    assert_eq!(ours.summary, theirs.summary);
}

#[tokio::test]
async fn file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("heartbeat");
    std::fs::write(&path, "alive and well\n").unwrap();
    let path = path.display();

    let options = format!("-f {path} -w 3600 -c 7200 -W 10 -C 5");
    let ours = builtin(&format!("file {options}"));
    let theirs = plugin(&format!("check_file_age {options}")).await;
    assert_eq!((ours.state, theirs.state), (State::Ok, State::Ok), "{ours:?}\n{theirs:?}");
    assert!((value(&ours, "age") - value(&theirs, "age")).abs() <= 2.0);
    assert_eq!(value(&ours, "size"), value(&theirs, "size"));
    assert_eq!(value(&ours, "size"), 15.0);
    assert_eq!(item(&ours, "age").warn, item(&theirs, "age").warn);

    // Too small: the size levels are minimums in both.
    let small = format!("-f {path} -w 3600 -c 7200 -W 100 -C 5");
    let ours = builtin(&format!("file {small}"));
    let theirs = plugin(&format!("check_file_age {small}")).await;
    assert_eq!((ours.state, theirs.state), (State::Warning, State::Warning));

    // Too old: an age level of 0 seconds is passed once a second went by.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let old = format!("-f {path} -w 0 -c 0");
    let ours = builtin(&format!("file {old}"));
    let theirs = plugin(&format!("check_file_age {old}")).await;
    assert_eq!((ours.state, theirs.state), (State::Critical, State::Critical));
    // The ages may differ by a second: compare up to them.
    let up_to_age = |summary: &str| summary.split(" is ").next().unwrap().to_owned();
    assert_eq!(up_to_age(&ours.summary), up_to_age(&theirs.summary));

    // Missing, and missing but allowed to be.
    let missing = format!("-f {}/nope", dir.path().display());
    let ours = builtin(&format!("file {missing}"));
    let theirs = plugin(&format!("check_file_age {missing}")).await;
    assert_eq!((ours.state, theirs.state), (State::Critical, State::Critical));
    assert_eq!(ours.summary, theirs.summary);
    let ours = builtin(&format!("file {missing} -i"));
    let theirs = plugin(&format!("check_file_age {missing} -i")).await;
    assert_eq!((ours.state, theirs.state), (State::Ok, State::Ok));
    assert_eq!(ours.summary, theirs.summary);
}

#[tokio::test]
async fn tcp() {
    use std::io::Write;
    use std::net::{Ipv4Addr, TcpListener};

    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let _ = stream.write_all(b"220 monchero test ready\r\n");
        }
    });
    let options = format!("-H 127.0.0.1 -p {port} -w 5 -c 9");
    let ours = builtin(&format!("tcp {options}"));
    let theirs = plugin(&format!("check_tcp {options}")).await;
    assert_eq!((ours.state, theirs.state), (State::Ok, State::Ok), "{ours:?}\n{theirs:?}");
    let tail = format!("second response time on 127.0.0.1 port {port}");
    assert!(ours.summary.ends_with(&tail) && theirs.summary.ends_with(&tail));
    assert!(value(&ours, "time") < 5.0 && value(&theirs, "time") < 5.0);
    assert_eq!(item(&ours, "time").max, item(&theirs, "time").max);

    // An expected answer that does not come is a warning in both.
    let unexpected = format!("-H 127.0.0.1 -p {port} -e SSH-");
    let ours = builtin(&format!("tcp {unexpected}"));
    let theirs = plugin(&format!("check_tcp {unexpected}")).await;
    assert_eq!(
        (ours.state, theirs.state),
        (State::Warning, State::Warning),
        "{ours:?}\n{theirs:?}"
    );

    // A closed port: critical, in the same words.
    let closed = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap().local_addr().unwrap().port();
    let options = format!("-H 127.0.0.1 -p {closed}");
    let ours = builtin(&format!("tcp {options}"));
    let theirs = plugin(&format!("check_tcp {options}")).await;
    assert_eq!((ours.state, theirs.state), (State::Critical, State::Critical));
    assert_eq!(ours.summary, theirs.summary);
}

/// A chronyd serving time on a loopback port, killed when dropped. It runs
/// with `-x`, so it never touches this machine's clock, and has no
/// `server` line, so it asks nobody.
struct Chrony {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Chrony {
    /// Starts one; `local` makes it serve its own clock as stratum 8
    /// (synchronised); without it, it answers as a server that has never
    /// synchronised. `None`, with the reason printed, when chronyd cannot
    /// run here (CI installs it, so there it always runs).
    fn start(local: bool) -> Option<Chrony> {
        let chronyd = std::path::Path::new("/usr/sbin/chronyd");
        if !chronyd.exists() {
            println!("skipped: {} is not installed (apt-get install chrony)", chronyd.display());
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::UdpSocket::bind((std::net::Ipv4Addr::LOCALHOST, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.path().join("chrony.conf");
        std::fs::write(
            &config,
            format!(
                "port {port}\nbindaddress 127.0.0.1\nallow 127.0.0.1\ncmdport 0\n\
                 pidfile {}\n{}",
                dir.path().join("chronyd.pid").display(),
                if local { "local stratum 8\n" } else { "" }
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("chronyd.log")).unwrap();
        let child = match std::process::Command::new(chronyd)
            .args(["-d", "-x", "-f"])
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
        {
            Ok(child) => child,
            Err(error) => {
                println!("skipped: cannot start chronyd: {error}");
                return None;
            }
        };
        let mut chrony = Chrony { child, port, _dir: dir };
        // Ready once it answers at all (a refused port means not yet).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = chrony.child.try_wait() {
                let log = std::fs::read_to_string(chrony._dir.path().join("chronyd.log"));
                println!("skipped: chronyd exited ({status}): {}", log.unwrap_or_default());
                return None;
            }
            let probe = builtin(&format!("ntp -H 127.0.0.1 -p {port} -t 0.2"));
            if !probe.summary.contains("No response") {
                return Some(chrony);
            }
            assert!(std::time::Instant::now() < deadline, "chronyd never answered: {probe:?}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for Chrony {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn ntp_against_a_synchronised_chronyd() {
    let Some(chrony) = Chrony::start(true) else { return };
    let options = format!("-H 127.0.0.1 -p {} -w 1 -c 2", chrony.port);
    let ours = builtin(&format!("ntp {options}"));
    let theirs = plugin(&format!("check_ntp_time {options}")).await;
    assert_eq!((ours.state, theirs.state), (State::Ok, State::Ok), "{ours:?}\n{theirs:?}");
    assert!(ours.summary.starts_with("NTP OK: Offset ") && ours.summary.ends_with(" secs"));
    // Both compare this machine's clock with itself, through chronyd.
    let (a, b) = (value(&ours, "offset"), value(&theirs, "offset"));
    assert!(a.abs() < 0.01 && b.abs() < 0.01, "offsets {a} and {b}");
    assert_eq!(item(&ours, "offset").uom, item(&theirs, "offset").uom);
    let level = |result: &CheckResult, text: Option<&str>| -> f64 {
        text.unwrap_or_else(|| panic!("no level in {result:?}")).parse().unwrap()
    };
    for (ours_level, theirs_level) in [
        (item(&ours, "offset").warn.as_deref(), item(&theirs, "offset").warn.as_deref()),
        (item(&ours, "offset").crit.as_deref(), item(&theirs, "offset").crit.as_deref()),
    ] {
        assert_eq!(level(&ours, ours_level), level(&theirs, theirs_level));
    }
}

#[tokio::test]
async fn ntp_against_a_chronyd_that_never_synchronised() {
    let Some(chrony) = Chrony::start(false) else { return };
    let options = format!("-H 127.0.0.1 -p {}", chrony.port);
    let ours = builtin(&format!("ntp {options}"));
    let theirs = plugin(&format!("check_ntp_time {options}")).await;
    assert_eq!(
        (ours.state, theirs.state),
        (State::Critical, State::Critical),
        "{ours:?}\n{theirs:?}"
    );
    assert_eq!(theirs.summary, "NTP CRITICAL: Offset unknown");
    assert!(ours.summary.starts_with("NTP CRITICAL: Offset unknown ("), "{}", ours.summary);
    assert!(ours.perfdata.is_empty() && theirs.perfdata.is_empty());
    // -q: UNKNOWN instead, for a server known to be unsynchronised at times.
    assert_eq!(builtin(&format!("ntp {options} -q")).state, State::Unknown);
}
