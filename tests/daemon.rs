//! `monchero run` with `status` and `check-now NAME` against it: the
//! debounced state machine, persistence across restarts and SIGKILL, and
//! configuration reloads.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use monchero_core::schedule::plan;
use rustix::process::{Pid, Signal, kill_process};
use serde_json::Value;

use crate::util::*;

/// A daemon under test, killed when dropped.
pub struct Agent {
    child: Child,
    config: PathBuf,
    log: PathBuf,
}

impl Agent {
    pub fn start(config: &Path, dir: &Path) -> Agent {
        Agent::start_as(monchero(), config, dir)
    }

    /// Starts `monchero run --config CONFIG` appended to `command`: the
    /// binary itself, or a wrapper (setpriv, an environment) ending in it.
    pub fn start_as(mut command: std::process::Command, config: &Path, dir: &Path) -> Agent {
        let log = dir.join(format!("agent-{}.log", std::process::id()));
        let log_file = std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
        let child = command
            .args(["run", "--config"])
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .unwrap();
        let agent = Agent { child, config: config.to_owned(), log };
        agent.wait_until(|status| status["stale"] == false, "the agent to answer");
        agent
    }

    pub fn pid(&self) -> Pid {
        Pid::from_raw(i32::try_from(self.child.id()).unwrap()).unwrap()
    }

    pub fn signal(&self, signal: Signal) {
        kill_process(self.pid(), signal).unwrap();
    }

    /// `monchero status --json` with this agent's config: (json, exit status).
    pub fn status(&self) -> (Value, i32) {
        status_json(&self.config)
    }

    pub fn check_now(&self, name: &str) -> Value {
        let output = monchero()
            .args(["check-now", "--json", "--config"])
            .arg(&self.config)
            .arg(name)
            .output()
            .unwrap();
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!("check-now: {e}: {}", String::from_utf8_lossy(&output.stderr))
        })
    }

    pub fn wait_until(&self, ready: impl Fn(&Value) -> bool, what: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (status, _) = self.status();
            if ready(&status) {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; last status {status}\nlog:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM and the exit status.
    pub fn stop(mut self) -> i32 {
        self.signal(Signal::TERM);
        self.child.wait().unwrap().code().unwrap_or(-1)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn status_json(config: &Path) -> (Value, i32) {
    let output = monchero().args(["status", "--json", "--config"]).arg(config).output().unwrap();
    let json = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    (json, output.status.code().unwrap_or(-1))
}

pub fn check<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["checks"]
        .as_array()
        .and_then(|checks| checks.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no check {name} in {status}"))
}

/// (state, state_type, attempt) of a check in a status document.
fn step(status: &Value, name: &str) -> (String, String, u64) {
    let check = check(status, name);
    (
        check["state"].as_str().unwrap().to_owned(),
        check["state_type"].as_str().unwrap().to_owned(),
        check["attempt"].as_u64().unwrap(),
    )
}

/// A test directory with a plugin whose exit code is in the file `code`.
pub struct Setup {
    pub plugins: Plugins,
}

impl Setup {
    pub fn new() -> Setup {
        let plugins = Plugins::new();
        let code = plugins.path("code");
        std::fs::write(&code, "0").unwrap();
        plugins.script(
            "check_file",
            &format!(
                "code=$(cat {})\necho \"state from file: $code | v=$code;1;2\"\nexit $code",
                code.display()
            ),
        );
        Setup { plugins }
    }

    pub fn set_code(&self, code: u8) {
        std::fs::write(self.plugins.path("code"), code.to_string()).unwrap();
    }

    pub fn dir(&self) -> &Path {
        self.plugins.dir.path()
    }

    /// Writes `agent.toml` with these checks (names using check_file).
    pub fn config(&self, checks: &[&str], extra: &str) -> PathBuf {
        let mut text = format!(
            "[agent]\nstate_dir = \"{}\"\nmax_check_spread = \"1h\"\n\n",
            self.dir().join("state").display()
        );
        for name in checks {
            // Long intervals: the test drives every run with check-now.
            text.push_str(&format!(
                "[[check]]\nname = \"{name}\"\ncommand = \"{}\"\ninterval = \"1h\"\nretry_interval = \"1h\"\nattempts = 3\n\n",
                self.plugins.path("check_file").display()
            ));
        }
        text.push_str(extra);
        let path = self.dir().join("agent.toml");
        std::fs::write(&path, text).unwrap();
        path
    }
}

/// A check name starting with `base` whose first run falls more than ten
/// minutes after the start (the configs here spread first runs over an
/// hour, by a hash of the name): while a test lasts, only check-now runs it.
pub fn quiet(base: &str) -> String {
    let start = std::time::Instant::now();
    let hour = Duration::from_secs(3600);
    (0..)
        .map(|i| format!("{base}{i}"))
        .find(|name| plan(start, hour, hour, name).first - start > Duration::from_secs(600))
        .unwrap_or_default()
}

#[test]
fn a_problem_turns_hard_on_the_third_attempt_and_survives_restarts_and_reloads() {
    let setup = Setup::new();
    let (web, db) = (quiet("web"), quiet("db"));
    let config = setup.config(&[&web], "");
    let agent = Agent::start(&config, setup.dir());

    let (status, code) = agent.status();
    assert_eq!(step(&status, &web), ("ok".into(), "hard".into(), 1));
    assert_eq!(check(&status, &web)["last_check"], Value::Null);
    assert_eq!(status["state"], "ok");
    assert_eq!(code, 0);

    setup.set_code(2);
    let result = agent.check_now(&web);
    assert_eq!(result["name"], web.as_str());
    assert_eq!(result["state"], "critical");
    assert_eq!(result["summary"], "state from file: 2");
    let (status, code) = agent.status();
    assert_eq!(step(&status, &web), ("critical".into(), "soft".into(), 1));
    assert_eq!(check(&status, &web)["max_attempts"], 3);
    assert_eq!(check(&status, &web)["summary"], "state from file: 2");
    assert_eq!(check(&status, &web)["perfdata"][0]["label"], "v");
    assert_eq!(code, 2, "the aggregate includes soft problems");

    agent.check_now(&web);
    assert_eq!(step(&agent.status().0, &web), ("critical".into(), "soft".into(), 2));
    agent.check_now(&web);
    let (status, _) = agent.status();
    assert_eq!(step(&status, &web), ("critical".into(), "hard".into(), 3));
    let hard_since = check(&status, &web)["since"].clone();

    // A restart keeps the state; in between, status reads the file.
    assert_eq!(agent.stop(), 0);
    let (status, code) = status_json(&config);
    assert_eq!(status["stale"], true);
    assert_eq!(step(&status, &web), ("critical".into(), "hard".into(), 3));
    assert_eq!(code, 2);
    let agent = Agent::start(&config, setup.dir());
    let (status, _) = agent.status();
    assert_eq!(step(&status, &web), ("critical".into(), "hard".into(), 3));
    assert_eq!(check(&status, &web)["since"], hard_since);

    // SIGHUP with a new check: the old state stays.
    setup.config(&[&web, &db], "");
    agent.signal(Signal::HUP);
    let status =
        agent.wait_until(|s| s["checks"].as_array().is_some_and(|c| c.len() == 2), "the reload");
    assert_eq!(step(&status, &web), ("critical".into(), "hard".into(), 3));
    assert_eq!(step(&status, &db), ("ok".into(), "hard".into(), 1));

    // A broken config on SIGHUP is rejected; the agent keeps running.
    let broken = std::fs::read_to_string(&config).unwrap().replace("interval =", "intervall =");
    std::fs::write(&config, broken).unwrap();
    agent.signal(Signal::HUP);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !agent.log_text().contains("Reload rejected") {
        assert!(Instant::now() < deadline, "no rejection logged:\n{}", agent.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, _) = agent.status();
    assert_eq!(status["stale"], false, "still running, and status still reads it");
    assert_eq!(status["checks"].as_array().unwrap().len(), 2);
    setup.config(&[&web, &db], "");

    // Recovery is hard at once (recovery_attempts defaults to 1).
    setup.set_code(0);
    assert_eq!(agent.check_now(&web)["state"], "ok");
    assert_eq!(step(&agent.status().0, &web), ("ok".into(), "hard".into(), 1));
    assert_eq!(agent.stop(), 0);
}

#[test]
fn checks_run_on_their_interval() {
    let setup = Setup::new();
    let count = setup.plugins.path("count");
    let plugin =
        setup.plugins.script("check_count", &format!("echo run >> {}\necho OK", count.display()));
    let config = setup.config(
        &[],
        &format!(
            "[[check]]\nname = \"tick\"\ncommand = \"{}\"\ninterval = \"1s\"\n",
            plugin.display()
        ),
    );
    let agent = Agent::start(&config, setup.dir());
    std::thread::sleep(Duration::from_millis(3500));
    let runs = std::fs::read_to_string(&count).unwrap_or_default().lines().count();
    assert!((3..=5).contains(&runs), "{runs} runs in 3.5 s at a 1 s interval");
    let status = agent.wait_until(|s| check(s, "tick")["last_check"].is_string(), "a result");
    assert_eq!(check(&status, "tick")["summary"], "OK");
    assert_eq!(agent.stop(), 0);
}

#[test]
fn sigkill_while_writing_state_never_leaves_a_torn_file() {
    let setup = Setup::new();
    setup.set_code(1);
    let names: Vec<String> = (0..300).map(|i| format!("c{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    // Every check runs every second: the state is rewritten every second.
    let config = setup.config(&names, "").to_string_lossy().into_owned();
    let text =
        std::fs::read_to_string(&config).unwrap().replace("interval = \"1h\"", "interval = \"1s\"");
    std::fs::write(&config, text).unwrap();
    let config = PathBuf::from(config);
    for delay_ms in [1100, 1350, 1600, 2250] {
        let agent = Agent::start(&config, setup.dir());
        std::thread::sleep(Duration::from_millis(delay_ms));
        agent.signal(Signal::KILL);
        drop(agent);
        let output =
            monchero().args(["status", "--json", "--config"]).arg(&config).output().unwrap();
        let status: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
        let code = output.status.code().unwrap_or(-1);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            status["stale"], true,
            "after SIGKILL at {delay_ms} ms: {status}, exit {code}: {stderr}"
        );
        assert_eq!(status["checks"].as_array().unwrap().len(), 300);
        assert!(code == 0 || code == 1, "status exit {code}");
    }
    // And the agent starts on it again.
    let agent = Agent::start(&config, setup.dir());
    assert!(!agent.log_text().contains("moved aside"), "{}", agent.log_text());
    assert_eq!(agent.stop(), 0);
}

/// `status --json NAME...` with `config`: (json, exit status, stderr).
fn status_of(config: &Path, names: &[&str]) -> (Value, i32, String) {
    let output =
        monchero().args(["status", "--json", "--config"]).arg(config).args(names).output().unwrap();
    let json = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (json, output.status.code().unwrap_or(-1), stderr)
}

#[test]
fn status_names_show_whole_summaries_where_the_listing_cuts_them() {
    let setup = Setup::new();
    let noisy_plugin =
        setup.plugins.script("check_noisy", "printf 'NOISY WARNING %05000d\\n' 0\nexit 1");
    let (fine, noisy) = (quiet("fine"), quiet("noisy"));
    let extra = format!(
        "[[check]]\nname = \"{noisy}\"\ncommand = \"{}\"\ninterval = \"1h\"\n",
        noisy_plugin.display()
    );
    let config = setup.config(&[&fine], &extra);
    let agent = Agent::start(&config, setup.dir());
    agent.check_now(&fine);
    let whole = agent.check_now(&noisy)["summary"].as_str().unwrap().to_owned();
    assert!(whole.len() > 5000, "{}", whole.len());

    let (all, code) = agent.status();
    assert_eq!(code, 1, "the aggregate of every check");
    let listed = check(&all, &noisy)["summary"].as_str().unwrap();
    assert!(listed.len() <= 1024 && listed.ends_with('…'), "{} bytes", listed.len());
    assert!(whole.starts_with(listed.trim_end_matches('…')));

    let (named, code, _) = status_of(&config, &[&noisy]);
    assert_eq!(code, 1);
    assert_eq!(named["checks"].as_array().unwrap().len(), 1);
    assert_eq!(check(&named, &noisy)["summary"], whole.as_str());
    let (named, code, _) = status_of(&config, &[&fine]);
    assert_eq!(code, 0, "only the named check's state: {named}");

    let (_, code, stderr) = status_of(&config, &[&fine, "nosuch"]);
    assert_eq!(code, 3);
    assert!(stderr.contains("no check is named nosuch"), "{stderr}");

    // With the daemon stopped, the state file answers the same way.
    assert_eq!(agent.stop(), 0);
    let (named, code, _) = status_of(&config, &[&noisy]);
    assert_eq!((code, &named["stale"]), (1, &Value::Bool(true)));
    assert_eq!(check(&named, &noisy)["summary"], whole.as_str());
}

#[test]
fn status_without_any_state_is_unknown_and_says_why() {
    let setup = Setup::new();
    let config = setup.config(&["web"], "");
    let output = monchero().args(["status", "--config"]).arg(&config).output().unwrap();
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no agent has run with the state directory"), "{stderr}");
}

#[test]
fn a_reload_keeps_what_built_in_checks_measure_between_runs() {
    let setup = Setup::new();
    let app_log = setup.plugins.path("app.log");
    std::fs::write(&app_log, "started\n").unwrap();
    let name = quiet("applog");
    let extra = format!(
        "[[check]]\nname = \"{name}\"\ncommand = \"builtin:log -f {} -e ERROR\"\ninterval = \"1h\"\n",
        app_log.display()
    );
    let config = setup.config(&[], &extra);
    let agent = Agent::start(&config, setup.dir());
    // The first run starts at the end of the file.
    assert_eq!(agent.check_now(&name)["state"], "ok");
    std::fs::write(&app_log, "started\nERROR disk gone\n").unwrap();
    // A reload with the check unchanged must not forget the position.
    agent.signal(Signal::HUP);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !agent.log_text().contains("Configuration reloaded") {
        assert!(Instant::now() < deadline, "no reload logged:\n{}", agent.log_text());
        std::thread::sleep(Duration::from_millis(20));
    }
    let result = agent.check_now(&name);
    assert_eq!(result["state"], "warning", "{result}");
    assert!(result["summary"].as_str().unwrap().contains("ERROR disk gone"), "{result}");
    assert_eq!(agent.stop(), 0);
}

#[test]
fn systemd_hears_ready_reloading_the_watchdog_and_stopping() {
    let setup = Setup::new();
    let config = setup.config(&[], "[[check]]\nname = \"load\"\ncommand = \"builtin:load\"\n");
    let socket_path = setup.dir().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut child = monchero()
        .args(["run", "--config"])
        .arg(&config)
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "400000")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut buffer = [0u8; 4096];
    let mut wait_for = |wanted: &str| loop {
        let n =
            socket.recv(&mut buffer).unwrap_or_else(|e| panic!("no {wanted} from the agent: {e}"));
        let message = String::from_utf8_lossy(&buffer[..n]).into_owned();
        if message.lines().any(|line| line == wanted) {
            return message;
        }
    };
    let ready = wait_for("READY=1");
    assert!(ready.contains("STATUS=Running 1 checks"), "{ready}");
    wait_for("WATCHDOG=1");
    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap();
    kill_process(pid, Signal::HUP).unwrap();
    wait_for("RELOADING=1");
    wait_for("READY=1");
    kill_process(pid, Signal::TERM).unwrap();
    wait_for("STOPPING=1");
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn the_control_socket_can_live_outside_the_state_directory() {
    let setup = Setup::new();
    let socket = setup.dir().join("run/monchero/ctl.sock");
    let web = quiet("web");
    let config = setup.config(&[&web], "");
    let text = std::fs::read_to_string(&config).unwrap().replacen(
        "[agent]\n",
        &format!("[agent]\nsocket = \"{}\"\n", socket.display()),
        1,
    );
    std::fs::write(&config, text).unwrap();
    let agent = Agent::start(&config, setup.dir());
    assert!(socket.exists(), "the agent made {}", socket.display());
    assert!(!setup.dir().join("state/monchero.sock").exists());
    assert_eq!(agent.check_now(&web)["state"], "ok");
    assert_eq!(agent.stop(), 0);
    assert!(!socket.exists(), "removed on a clean exit");
}

#[test]
fn a_configured_check_keeps_64_kib_of_a_megabyte_of_output() {
    let setup = Setup::new();
    let noisy = setup.plugins.script("noisy", "head -c 1048576 /dev/zero | tr '\\0' x\nexit 1");
    let name = quiet("noisy");
    let config = setup.config(
        &[],
        &format!(
            "[[check]]\nname = \"{name}\"\ncommand = \"{}\"\ninterval = \"1h\"\n",
            noisy.display()
        ),
    );
    let agent = Agent::start(&config, setup.dir());
    let result = agent.check_now(&name);
    assert_eq!(result["state"], "warning");
    assert_eq!(result["truncated"], true);
    assert_eq!(result["summary"].as_str().unwrap().len(), 64 * 1024);
    // The listing cuts it to 1 KiB; naming the check shows all it keeps.
    let (status, _) = agent.status();
    assert!(check(&status, &name)["summary"].as_str().unwrap().len() <= 1024);
    let (named, _, _) = status_of(&config, &[&name]);
    assert_eq!(check(&named, &name)["summary"].as_str().unwrap().len(), 64 * 1024);
}
