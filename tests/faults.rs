//! Faults injected into a running `monchero run`: the agent keeps running,
//! says what is wrong (log and `builtin:agent`), and recovers when the
//! fault goes. Tests that need root's powers (mount, setpriv, sudo) say
//! why they skip when they do not have them.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use rustix::process::Signal;
use serde_json::Value;

use crate::daemon::{Agent, Setup, check, quiet};
use crate::util::*;

/// Polls `ready` every 50 ms until it gives a value, for up to `secs`.
fn poll<T>(secs: u64, what: &str, mut ready: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(value) = ready() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn sh(command: &str) -> bool {
    Command::new("sh").args(["-c", command]).status().is_ok_and(|s| s.success())
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A tmpfs mounted for the test, unmounted when dropped.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(path: &Path, size: &str) -> Option<Mount> {
        std::fs::create_dir_all(path).unwrap();
        let mounted = sh(&format!(
            "mount -t tmpfs -o size={size},mode=0755 tmpfs '{}' 2>/dev/null",
            path.display()
        ));
        if !mounted {
            eprintln!("skipped: cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN)");
        }
        mounted.then(|| Mount(path.to_owned()))
    }

    fn remount(&self, options: &str) {
        assert!(sh(&format!("mount -o remount,{options} '{}'", self.0.display())));
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        sh(&format!("umount -l '{}'", self.0.display()));
    }
}

fn agent_check(extra: &str) -> String {
    format!(
        "{extra}[[check]]\nname = \"agent\"\ncommand = \"builtin:agent\"\ninterval = \"1h\"\n\n"
    )
}

/// The state directory breaks (`fault`), then is mended (`mend`): writes
/// fail naming the path and the cause, the last good file stays, nothing
/// is lost from memory, and the next write after the mend succeeds.
fn state_directory_fault(fault: impl Fn(&Mount), mend: impl Fn(&Mount), cause: &str) {
    let setup = Setup::new();
    let state = setup.dir().join("state");
    let Some(mount) = Mount::tmpfs(&state, "1m") else { return };
    let web = quiet("web");
    let config = setup.config(&[&web], &agent_check(""));
    let agent = Agent::start(&config, setup.dir());
    let file = state.join("state.json");
    let on_disk = || std::fs::read_to_string(&file).unwrap_or_default();

    setup.set_code(2);
    agent.check_now(&web);
    poll(10, "the first state change on disk", || {
        on_disk().contains("state from file: 2").then_some(())
    });

    fault(&mount);
    setup.set_code(1);
    assert_eq!(agent.check_now(&web)["state"], "warning");
    let log = poll(10, "the write failure in the log", || {
        let log = agent.log_text();
        log.contains("Cannot save the state").then_some(log)
    });
    assert!(log.contains(&file.display().to_string()) && log.contains(cause), "{log}");
    let me = agent.check_now("agent");
    assert_eq!(me["state"], "critical", "{me}");
    let summary = me["summary"].as_str().unwrap();
    assert!(summary.contains("cannot save state") && summary.contains(cause), "{summary}");
    assert!(summary.contains(&file.display().to_string()), "{summary}");
    let kept = on_disk();
    assert!(kept.contains("state from file: 2") && !kept.contains("state from file: 1"), "{kept}");
    let (status, _) = agent.status();
    assert_eq!(check(&status, &web)["state"], "warning", "memory keeps the change");

    mend(&mount);
    poll(10, "the state written again", || on_disk().contains("state from file: 1").then_some(()));
    assert!(agent.log_text().contains("State file written again."));
    assert_eq!(agent.check_now("agent")["state"], "ok");
    assert_eq!(agent.stop(), 0);
}

#[test]
fn a_read_only_state_directory_is_reported_and_written_once_writable() {
    state_directory_fault(|m| m.remount("ro"), |m| m.remount("rw"), "Read-only file system");
}

#[test]
fn a_full_state_directory_is_reported_and_written_once_there_is_room() {
    let filler = |m: &Mount| m.0.join("filler");
    state_directory_fault(
        |m| {
            // Fills every block; the state file's next copy cannot be written.
            let _ = std::fs::write(filler(m), vec![0u8; 2 << 20]);
        },
        |m| std::fs::remove_file(filler(m)).unwrap(),
        "No space left on device",
    );
}

#[test]
fn a_plugin_that_closes_stdout_and_keeps_running_times_out_alone() {
    let setup = Setup::new();
    let script = setup.plugins.script("closer", "echo partial\nexec >&- 2>&-\nexec sleep 30");
    let name = quiet("closer");
    let extra = format!(
        "[[check]]\nname = \"{name}\"\ncommand = \"{}\"\ntimeout = \"1s\"\ninterval = \"1h\"\n\n",
        script.display()
    );
    let config = setup.config(&[], &extra);
    let agent = Agent::start(&config, setup.dir());
    let result = agent.check_now(&name);
    assert_eq!(result["state"], "unknown");
    assert_eq!(result["timed_out"], true);
    assert!(result["summary"].as_str().unwrap().contains("timed out after 1s"), "{result}");
    let (status, code) = agent.status();
    assert_eq!(code, 3, "{status}");
    assert!(no_children_left(agent.pid().as_raw_nonzero().get()));
}

/// The agent's child processes (any of its threads may have spawned them).
fn children_of(pid: i32) -> usize {
    let parent = |stat: String| -> Option<i32> {
        stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
    };
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read_to_string(e.path().join("stat")).ok().and_then(parent) == Some(pid)
        })
        .count()
}

/// The agent has no child processes left (killed plugins are gone).
fn no_children_left(pid: i32) -> bool {
    poll(30, "the plugin's processes to end", || (children_of(pid) == 0).then_some(true))
}

fn fd_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

fn thread_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn two_thousand_checks_finishing_at_the_same_instant_are_all_applied() {
    let setup = Setup::new();
    let gate = setup.plugins.path("gate");
    assert!(sh(&format!("mkfifo '{}'", gate.display())));
    // Every run blocks opening the FIFO until the test opens it for
    // writing: then all of them read end of file and exit together.
    let plugin =
        setup.plugins.script("gated", &format!("read x < '{}'\necho \"released\"", gate.display()));
    let mut extra = String::new();
    for i in 0..2000 {
        extra.push_str(&format!(
            "[[check]]\nname = \"gated{i}\"\ncommand = \"{}\"\ninterval = \"1h\"\ntimeout = \"2m\"\n\n",
            plugin.display()
        ));
    }
    let config = setup.config(&[], &extra);
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text
        .replace("max_check_spread = \"1h\"", "max_check_spread = \"1ms\"\nmax_concurrent = 2000");
    std::fs::write(&config, text).unwrap();
    let agent = Agent::start(&config, setup.dir());
    let pid = agent.pid().as_raw_nonzero().get();
    let children = || children_of(pid);
    poll(60, "2000 plugins blocked on the gate", || (children() == 2000).then_some(()));
    // One write of lines to spare releases every reader at once; the
    // writer stays open until the results are in, so a shell still on its
    // way to the FIFO finds a line too instead of blocking in open().
    let mut writer = std::fs::OpenOptions::new().write(true).open(&gate).unwrap();
    writer.write_all(&[b'\n'; 4000]).unwrap();
    let status = poll(60, "2000 results", || {
        let (status, _) = agent.status();
        let done =
            status["checks"].as_array()?.iter().filter(|c| c["summary"] == "released").count();
        (done == 2000).then_some(status)
    });
    drop(writer);
    assert_eq!(status["state"], "ok");
    assert!(no_children_left(pid));
    assert_eq!(agent.stop(), 0);
}

#[test]
fn a_sighup_storm_applies_the_last_config_and_leaks_nothing() {
    let setup = Setup::new();
    let quick = setup.plugins.script("quick", "echo fine");
    let check = |name: &str| {
        format!(
            "[[check]]\nname = \"{name}\"\ncommand = \"{}\"\ninterval = \"1s\"\n\n",
            quick.display()
        )
    };
    let config = setup.config(&[], &check("steady"));
    let agent = Agent::start(&config, setup.dir());
    let pid = agent.pid().as_raw_nonzero().get();
    agent.wait_until(|s| check_ran(s, "steady"), "a first run");
    let (fds, threads) = (fd_count(pid), thread_count(pid));

    let text = std::fs::read_to_string(&config).unwrap();
    for i in 0..300 {
        // Alternate configs while the signals arrive; the last one has "final".
        let extra = if i == 299 { check("final") } else { check(&format!("passing{}", i % 3)) };
        std::fs::write(&config, format!("{text}{extra}")).unwrap();
        agent.signal(Signal::HUP);
        if i % 100 == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let status = agent.wait_until(|s| check_ran(s, "final"), "the last config to run");
    let names: Vec<&str> =
        status["checks"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["final", "steady"], "only the last config's checks remain");
    // Runs started before a reload finish on their own; give them a moment.
    poll(10, "descriptors and threads back to where they were", || {
        (fd_count(pid) <= fds + 2 && thread_count(pid) <= threads + 2).then_some(())
    });
    let log = agent.log_text();
    assert!(!log.contains("panicked"), "{log}");
    assert_eq!(agent.stop(), 0);
}

fn check_ran(status: &Value, name: &str) -> bool {
    status["checks"].as_array().is_some_and(|checks| {
        checks.iter().any(|c| c["name"] == name && !c["last_check"].is_null())
    })
}

#[test]
fn garbage_huge_and_stalled_control_clients_do_not_keep_status_from_others() {
    let setup = Setup::new();
    let config = setup.config(&[&quiet("web")], "");
    let agent = Agent::start(&config, setup.dir());
    let socket = setup.dir().join("state/monchero.sock");
    let socket = if socket.exists() { socket } else { find_socket(&setup.dir().join("state")) };
    let pid = agent.pid().as_raw_nonzero().get();
    let fds = fd_count(pid);

    let answer = |bytes: &[u8]| -> String {
        let mut stream = UnixStream::connect(&socket).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = stream.write_all(bytes);
        let mut reply = String::new();
        let _ = stream.read_to_string(&mut reply);
        reply
    };
    for garbage in
        [&b"\x00\xff\xfe garbage\n"[..], b"{\"request\":\"nope\"}\n", b"[[[[[[[[\n", b"\n"]
    {
        let reply = answer(garbage);
        assert!(reply.contains("bad request"), "{reply}");
    }
    let reply = answer(&vec![b'x'; 1 << 20]);
    assert!(reply.contains("longer than 65536 bytes"), "{reply}");

    // Thirty clients that connect and send nothing, one that sends a byte
    // a second: status still answers for others at once.
    let idle: Vec<UnixStream> = (0..30).map(|_| UnixStream::connect(&socket).unwrap()).collect();
    let mut trickle = UnixStream::connect(&socket).unwrap();
    trickle.write_all(b"{").unwrap();
    let (status, code) = agent.status();
    assert_eq!(code, 0, "{status}");

    // The server drops them once their time to send a request is up.
    for mut client in idle {
        client.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let mut reply = String::new();
        let _ = client.read_to_string(&mut reply);
        assert!(reply.contains("no complete request line"), "{reply}");
    }
    poll(15, "descriptors back to where they were", || (fd_count(pid) <= fds + 1).then_some(()));

    // Beyond the connection limit, clients are told why.
    let held: Vec<UnixStream> = (0..64).map(|_| UnixStream::connect(&socket).unwrap()).collect();
    let reply = answer(b"{\"request\":\"status\"}\n");
    assert!(reply.contains("serving 64 control connections"), "{reply}");
    drop(held);
    drop(trickle);
    poll(10, "status answering again", || (agent.status().1 == 0).then_some(()));
    assert_eq!(agent.stop(), 0);
}

fn find_socket(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "sock"))
        .unwrap_or_else(|| panic!("no socket in {}", dir.display()))
}

/// libfaketime, from Debian's `faketime` package.
const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

#[test]
fn wall_clock_jumps_of_hours_keep_the_rhythm_and_move_displayed_times() {
    if !Path::new(LIBFAKETIME).exists() {
        eprintln!("skipped: {LIBFAKETIME} is missing (apt-get install faketime)");
        return;
    }
    let setup = Setup::new();
    let runs = setup.plugins.path("runs");
    // /proc/uptime is not faked: the plugin records real elapsed time.
    let plugin = setup.plugins.script(
        "ticker",
        &format!("cut -d' ' -f1 /proc/uptime >> '{}'\necho tick", runs.display()),
    );
    let extra = format!(
        "[[check]]\nname = \"ticker\"\ncommand = \"{}\"\ninterval = \"1s\"\n\n",
        plugin.display()
    );
    let config = setup.config(&[], &extra);
    let offset_file = setup.plugins.path("offset");
    std::fs::write(&offset_file, "+0\n").unwrap();
    let mut command = monchero();
    command
        .env("LD_PRELOAD", LIBFAKETIME)
        .env("FAKETIME_TIMESTAMP_FILE", &offset_file)
        .env("FAKETIME_NO_CACHE", "1")
        .env("DONT_FAKE_MONOTONIC", "1");
    let agent = Agent::start_as(command, &config, setup.dir());
    let count = || std::fs::read_to_string(&runs).map(|r| r.lines().count()).unwrap_or(0);
    let last_check = |agent: &Agent| -> SystemTime {
        let (status, _) = agent.status();
        humantime::parse_rfc3339(check(&status, "ticker")["last_check"].as_str().unwrap_or(""))
            .unwrap_or(SystemTime::UNIX_EPOCH)
    };
    let hour = Duration::from_secs(3600);
    let near = |a: SystemTime, b: SystemTime| {
        a.duration_since(b).or_else(|e| Ok::<_, ()>(e.duration())).unwrap()
            < Duration::from_secs(600)
    };

    for (offset, shift) in [("+10800", 3), ("+0", 0), ("-7200", -2)] {
        std::fs::write(&offset_file, format!("{offset}\n")).unwrap();
        let before = count();
        poll(20, "three runs after the jump", || (count() >= before + 3).then_some(()));
        let expected = if shift >= 0 {
            SystemTime::now() + hour * shift as u32
        } else {
            SystemTime::now() - hour * (-shift) as u32
        };
        let shown = last_check(&agent);
        assert!(
            near(shown, expected),
            "offset {offset}: last_check {shown:?}, expected about {expected:?}"
        );
    }
    let stamps: Vec<f64> =
        std::fs::read_to_string(&runs).unwrap().lines().map(|l| l.parse().unwrap()).collect();
    for pair in stamps.windows(2) {
        assert!(
            pair[1] - pair[0] > 0.5,
            "two runs {:.3} s apart: a burst or a double run in {stamps:?}",
            pair[1] - pair[0]
        );
    }
    assert_eq!(agent.stop(), 0);
}

/// An unprivileged user's agent: `nobody` through setpriv, with the
/// state directory and plugins made reachable for it.
fn as_nobody(setup: &Setup) -> Option<Command> {
    as_user(setup, "nobody")
}

/// The agent as `user` (a name, or a numeric uid of no account).
fn as_user(setup: &Setup, user: &str) -> Option<Command> {
    if !is_root() || !Path::new("/usr/bin/setpriv").exists() {
        eprintln!("skipped: needs root and setpriv to run the agent as {user}");
        return None;
    }
    let dir = setup.dir();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(dir.join("state")).unwrap();
    assert!(sh(&format!(
        "chown {user} '{}' && chmod 0666 '{}'/code",
        dir.join("state").display(),
        dir.display()
    )));
    let mut command = Command::new("setpriv");
    command
        .args([&format!("--reuid={user}"), "--regid=nogroup", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_monchero"))
        .env_remove("NO_COLOR");
    Some(command)
}

/// A cgroup v2 directory for one test, removed when dropped.
struct TestCgroup(PathBuf);

impl TestCgroup {
    fn new() -> Option<TestCgroup> {
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let root = mounts.lines().find_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            (after.split_whitespace().next()? == "cgroup2")
                .then(|| PathBuf::from(before.split_whitespace().nth(4).unwrap()))
        })?;
        let path = root.join(format!("monchero-test-{}", std::process::id()));
        std::fs::create_dir(&path).ok()?;
        Some(TestCgroup(path))
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        sh(&format!(
            "find '{}' -mindepth 1 -depth -type d -exec rmdir {{}} \\; ; rmdir '{}'",
            self.0.display(),
            self.0.display()
        ));
    }
}

/// A sudoers drop-in letting `nobody` run one script as root, removed
/// when dropped.
struct Sudoers(PathBuf);

impl Drop for Sudoers {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn sudo_plugin(setup: &Setup) -> Option<(PathBuf, PathBuf, Sudoers)> {
    if !Path::new("/usr/bin/sudo").exists() || !Path::new("/etc/sudoers.d").is_dir() {
        eprintln!("skipped: sudo is not installed");
        return None;
    }
    let pidfile = setup.plugins.path("root-pid");
    // sudo relays the SIGTERM it gets to its command, and with use_pty its
    // pty hangs up on the command when sudo dies: a command that ignores
    // both is what only a SIGKILL of its own would end.
    let root_part = setup.plugins.script(
        "as_root",
        &format!("trap '' TERM HUP\necho $$ > '{}'\nexec sleep 60", pidfile.display()),
    );
    // Named after the test's directory: tests run in parallel.
    let unique = setup.dir().file_name().unwrap().to_string_lossy().replace('.', "");
    let sudoers = Sudoers(PathBuf::from(format!("/etc/sudoers.d/monchero-test-{unique}")));
    // Without use_pty (Debian's default has it; many sites and older sudo
    // do not) the command stays in the plugin's process group, and nothing
    // of sudo's own ends it when sudo is killed.
    let rule =
        format!("Defaults!{0} !use_pty\nnobody ALL=(root) NOPASSWD: {0}\n", root_part.display());
    std::fs::write(&sudoers.0, rule).unwrap();
    std::fs::set_permissions(&sudoers.0, std::fs::Permissions::from_mode(0o440)).unwrap();
    let plugin =
        setup.plugins.script("via_sudo", &format!("exec sudo -n '{}'", root_part.display()));
    Some((plugin, pidfile, sudoers))
}

fn sudo_config(setup: &Setup, plugin: &Path) -> PathBuf {
    let name = quiet("sudo");
    let extra = format!(
        "[[check]]\nname = \"{name}\"\ncommand = \"{}\"\ntimeout = \"2s\"\ninterval = \"1h\"\n\n",
        plugin.display()
    );
    setup.config(&[], &agent_check(&extra))
}

#[test]
fn a_sudo_plugin_in_a_delegated_cgroup_is_killed_on_timeout() {
    let setup = Setup::new();
    let Some(mut command) = as_nobody(&setup) else { return };
    let Some((plugin, pidfile, _sudoers)) = sudo_plugin(&setup) else { return };
    let Some(cgroup) = TestCgroup::new() else {
        eprintln!("skipped: cannot create a cgroup v2 directory to delegate");
        return;
    };
    // Delegation as systemd does it: the directory and its files belong to
    // the agent's user, and the agent starts inside it.
    assert!(sh(&format!("chown -R nobody '{}'", cgroup.0.display())));
    let wrapped = format!("echo $$ > '{}/cgroup.procs' && exec \"$@\"", cgroup.0.display());
    let program = command.get_program().to_owned();
    let args: Vec<_> = command.get_args().map(|a| a.to_owned()).collect();
    command = Command::new("sh");
    command.args(["-c", &wrapped, "sh"]).arg(program).args(args);
    let config = sudo_config(&setup, &plugin);
    let name = quiet("sudo");
    let agent = Agent::start_as(command, &config, setup.dir());
    assert!(
        agent.log_text().contains("Each plugin run gets a cgroup of its own"),
        "{}",
        agent.log_text()
    );
    let result = agent.check_now(&name);
    assert!(pidfile.exists(), "the root part never ran: {result}");
    let root_pid = read_pid(&pidfile);
    let killed = wait_dead(root_pid);
    let found_in = std::fs::read_to_string(format!("/proc/{root_pid}/cgroup")).unwrap_or_default();
    sh(&format!("kill -9 {root_pid} 2>/dev/null"));
    assert!(
        killed,
        "the root process outlived the timeout: {result} in {found_in}\n{}",
        agent.log_text()
    );
    assert_eq!(result["timed_out"], true, "{result}");
    let summary = result["summary"].as_str().unwrap();
    assert!(
        summary.contains("timed out after 2s") && !summary.contains("could not be killed"),
        "{summary}"
    );
    assert_eq!(agent.check_now("agent")["state"], "ok");
    drop(agent);
}

#[test]
fn a_sudo_plugin_without_a_cgroup_is_reported_as_unkillable_and_counted() {
    let setup = Setup::new();
    let Some(command) = as_nobody(&setup) else { return };
    let Some((plugin, pidfile, _sudoers)) = sudo_plugin(&setup) else { return };
    let config = sudo_config(&setup, &plugin);
    let name = quiet("sudo");
    let agent = Agent::start_as(command, &config, setup.dir());
    let result = agent.check_now(&name);
    assert!(pidfile.exists(), "the root part never ran: {result}");
    let root_pid = read_pid(&pidfile);
    let alive = !process_is_dead(root_pid);
    // The test cleans up what the agent could not.
    sh(&format!("kill -9 {root_pid}"));
    assert!(
        alive,
        "the root process should have outlived the timeout here: {result}\n{}",
        agent.log_text()
    );
    assert_eq!(result["timed_out"], true, "{result}");
    let summary = result["summary"].as_str().unwrap();
    assert!(summary.contains("could not be killed: owned by root"), "{summary}");
    let me = agent.check_now("agent");
    assert!(
        me["summary"].as_str().unwrap().contains("1 timed-out plugin runs could not be killed"),
        "{me}"
    );
    assert!(agent.log_text().contains("could not be killed"), "{}", agent.log_text());
}

#[test]
fn fork_failing_under_rlimit_nproc_is_unknown_naming_eagain_and_recovers() {
    let setup = Setup::new();
    // A uid of its own: RLIMIT_NPROC counts every process of the user,
    // and other tests run agents as nobody in parallel.
    let uid = NPROC_UID;
    let Some(command) = as_user(&setup, &uid.to_string()) else { return };
    let quick = setup.plugins.script("quick", "echo fine");
    let extra = agent_check(&format!(
        "[[check]]\nname = \"forks\"\ncommand = \"{}\"\ninterval = \"1s\"\n\n",
        quick.display()
    ));
    let config = setup.config(&[], &extra);
    let agent = Agent::start_as(command, &config, setup.dir());
    agent.wait_until(|s| check(s, "forks")["summary"] == "fine", "a first run");
    let pid = agent.pid().as_raw_nonzero().get();
    // The soft limit, set by the same user (root may lack CAP_SYS_RESOURCE
    // in a container): at what the user runs now, no fork is left.
    let soft_limit = |value: String| {
        sh(&format!(
            "setpriv --reuid={uid} --regid=nogroup --clear-groups -- prlimit --pid {pid} --nproc={value}:"
        ))
    };
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits.lines().find(|l| l.starts_with("Max processes")).unwrap();
    let before = line.split_whitespace().nth(2).unwrap().to_owned();
    assert!(soft_limit(user_tasks(uid).to_string()));
    let status = agent.wait_until(|s| check(s, "forks")["state"] == "unknown", "runs to fail");
    let summary = check(&status, "forks")["summary"].as_str().unwrap().to_owned();
    assert!(summary.contains("fork failed with EAGAIN"), "{summary}");
    let me = agent.check_now("agent");
    assert_eq!(me["state"], "warning", "{me}");
    assert!(me["summary"].as_str().unwrap().contains("could not start"), "{me}");
    assert!(agent.log_text().contains("EAGAIN"), "{}", agent.log_text());

    assert!(soft_limit(before));
    agent.wait_until(|s| check(s, "forks")["state"] == "ok", "runs to work again");
    assert_eq!(agent.stop(), 0);
}

/// A uid no account and no other test uses.
const NPROC_UID: u32 = 64_917;

/// Threads of all of `uid`'s processes: what its RLIMIT_NPROC counts.
fn user_tasks(uid: u32) -> usize {
    let uid = uid.to_string();
    let mut tasks = 0;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let status = std::fs::read_to_string(entry.path().join("status")).unwrap_or_default();
        let field = |name: &str| {
            status.lines().find(|l| l.starts_with(name)).and_then(|l| l.split_whitespace().nth(1))
        };
        if field("Uid:") == Some(uid.as_str()) {
            tasks += field("Threads:").and_then(|n| n.parse::<usize>().ok()).unwrap_or(0);
        }
    }
    tasks
}

#[test]
fn a_state_directory_removed_while_running_is_made_again_with_its_socket() {
    let setup = Setup::new();
    let web = quiet("web");
    let config = setup.config(&[&web], "");
    let agent = Agent::start(&config, setup.dir());
    let state = setup.dir().join("state");
    // The agent may write a file into the directory while it is being
    // emptied (ENOTEMPTY at the last rmdir), as it may under an operator's
    // `rm -rf`: remove again until it is gone.
    poll(10, "the state directory removed", || match std::fs::remove_dir_all(&state) {
        Ok(()) => Some(()),
        Err(error) if error.kind() == std::io::ErrorKind::DirectoryNotEmpty => None,
        Err(error) => panic!("cannot remove {}: {error}", state.display()),
    });

    // The socket comes back, so status reaches the live daemon again, and
    // the next change is written to a state directory made anew.
    poll(10, "the control socket again", || (agent.status().0["stale"] == false).then_some(()));
    setup.set_code(2);
    assert_eq!(agent.check_now(&web)["state"], "critical");
    let file = state.join("state.json");
    poll(10, "the state file again", || {
        std::fs::read_to_string(&file).is_ok_and(|t| t.contains("state from file: 2")).then_some(())
    });
    assert!(agent.log_text().contains("The control socket was removed; it is listening again."));
    assert_eq!(agent.stop(), 0);
}
