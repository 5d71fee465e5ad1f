//! The Icinga 2 and Prometheus remote-write sinks against the real servers
//! from Debian's packages (icinga2-bin, prometheus), started here on
//! 127.0.0.1 with their configs and data in a temporary directory, and
//! stopped and started again while the agent keeps producing results.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustix::process::{Pid, Signal, kill_process};
use serde_json::Value;

use crate::daemon::{Agent, check};
use crate::util::*;

/// The agent identity: Icinga's host name, remote write's `instance`.
const AGENT: &str = "agent-under-test";

/// A test directory with two checks running every second: `web` (OK, with
/// perfdata and long output) and `count` (CRITICAL, numbering its runs in
/// its output and perfdata, so what arrived can be counted).
struct SinkSetup {
    plugins: Plugins,
}

impl SinkSetup {
    fn new() -> SinkSetup {
        let plugins = Plugins::new();
        plugins.script(
            "check_web",
            "printf 'HTTP OK: 200 in 0.25 s | time=250ms;500;900;0 size=2KB\\nfrom 127.0.0.1\\n'",
        );
        plugins.script(
            "check_count",
            &format!(
                "n=$(cat {c} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {c}\n\
                 echo \"run $n | n=$n\"\nexit 2",
                c = plugins.path("counter").display()
            ),
        );
        SinkSetup { plugins }
    }

    fn dir(&self) -> &Path {
        self.plugins.dir.path()
    }

    /// `agent.toml` with both checks and `push` (a whole `[[push]]` table).
    fn config(&self, push: &str, extra: &str) -> PathBuf {
        let mut text = format!(
            "[agent]\nhostname = \"{AGENT}\"\nstate_dir = \"{}\"\nmax_check_spread = \"200ms\"\n\n\
             {push}\n{extra}\n",
            self.dir().join("state").display()
        );
        for name in ["web", "count"] {
            text.push_str(&format!(
                "[[check]]\nname = \"{name}\"\ncommand = \"{}\"\ninterval = \"1s\"\n\
                 retry_interval = \"1s\"\nattempts = 1\n\n",
                self.plugins.path(&format!("check_{name}")).display()
            ));
        }
        let path = self.dir().join("agent.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// The runs `count` has made so far.
    fn runs(&self) -> u64 {
        let text = std::fs::read_to_string(self.plugins.path("counter"));
        text.ok().and_then(|t| t.trim().parse().ok()).unwrap_or(0)
    }

    /// Waits until `count` has run `more` times after now.
    fn wait_runs(&self, more: u64) {
        let target = self.runs() + more;
        poll(Duration::from_secs(20), "check runs", || (self.runs() >= target).then_some(()));
    }
}

/// A port that was free a moment ago: Icinga and Prometheus take no port 0.
fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// Polls `ready` until it gives a value; panics with `what` after `limit`.
fn poll<T>(limit: Duration, what: &str, mut ready: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = ready() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A server process, stopped with SIGTERM (so it saves its state) and
/// waited for; killed when dropped.
struct Server {
    child: Option<Child>,
}

impl Server {
    fn spawn(command: &mut Command, log: &Path) -> Server {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        Server { child: Some(child) }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap();
            let _ = kill_process(pid, Signal::TERM);
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs curl; the body as JSON (`Null` when there is none).
fn curl_json(args: &[&str]) -> Value {
    let output = Command::new("curl").arg("--silent").args(args).output().unwrap();
    serde_json::from_slice(&output.stdout).unwrap_or(Value::Null)
}

// ---------------------------------------------------------------- Icinga 2

/// Icinga 2 with its API on a loopback port: a CA and a certificate made
/// here, an ApiUser `monchero` with the permissions
/// `docs/integrations.md` lists and a `reader` for the test's queries.
struct Icinga {
    dir: PathBuf,
    address: SocketAddr,
    server: Server,
}

impl Icinga {
    fn new(dir: &Path) -> Icinga {
        let dir = dir.join("icinga");
        let certs = dir.join("data").join("certs");
        std::fs::create_dir_all(&certs).unwrap();
        for sub in ["log", "cache", "spool", "run"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "Monchero test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, "icinga-test");
        let cert = params.signed_by(&key, &ca).unwrap();
        // Icinga's API reads DataDir/certs/NODENAME.{crt,key} and ca.crt.
        std::fs::write(certs.join("ca.crt"), ca.pem()).unwrap();
        std::fs::write(certs.join("icinga-test.crt"), cert.pem()).unwrap();
        std::fs::write(certs.join("icinga-test.key"), key.serialize_pem()).unwrap();
        let address = free_port();
        std::fs::write(
            dir.join("icinga2.conf"),
            format!(
                "const NodeName = \"icinga-test\"\ninclude <itl>\n\
                 object Endpoint NodeName {{ }}\n\
                 object Zone \"master\" {{ endpoints = [ NodeName ] }}\n\
                 object ApiListener \"api\" {{\n  bind_host = \"127.0.0.1\"\n  bind_port = {port}\n}}\n\
                 object ApiUser \"monchero\" {{\n  password = \"s3cret\"\n  permissions = [ \
                 \"actions/process-check-result\", \"objects/create/host\", \
                 \"objects/create/service\" ]\n}}\n\
                 object ApiUser \"reader\" {{\n  password = \"r3ader\"\n  permissions = [ \
                 \"objects/query/*\" ]\n}}\n\
                 object CheckerComponent \"checker\" {{ }}\n\
                 object FileLogger \"main\" {{\n  path = \"{log}\"\n  severity = \"information\"\n}}\n\
                 /* A counter of the results Icinga took: a soft non-OK\n   \
                 state counts its attempts, and this one stays soft. */\n\
                 apply Service \"count\" {{\n  check_command = \"dummy\"\n  \
                 enable_active_checks = false\n  max_check_attempts = 1000000\n  \
                 assign where host.name == \"{AGENT}\"\n}}\n",
                port = address.port(),
                log = dir.join("log").join("icinga2.log").display(),
            ),
        )
        .unwrap();
        let server = Icinga::spawn(&dir);
        let icinga = Icinga { dir, address, server };
        icinga.wait_ready();
        icinga
    }

    fn spawn(dir: &Path) -> Server {
        let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_owned();
        let group = String::from_utf8(Command::new("id").arg("-gn").output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_owned();
        let d = |name: &str, sub: &str| format!("-D{name}={}", dir.join(sub).display());
        Server::spawn(
            Command::new("/usr/sbin/icinga2")
                .args(["daemon", "--no-stack-rlimit", "-c"])
                .arg(dir.join("icinga2.conf"))
                .arg(format!("-DRunAsUser={user}"))
                .arg(format!("-DRunAsGroup={group}"))
                .args([
                    d("DataDir", "data"),
                    d("LogDir", "log"),
                    d("CacheDir", "cache"),
                    d("SpoolDir", "spool"),
                    d("InitRunDir", "run"),
                ]),
            &dir.join("daemon.log"),
        )
    }

    fn wait_ready(&self) {
        let limit = Duration::from_secs(30);
        let log = self.dir.join("daemon.log");
        let ready = || self.query("/v1/objects/hosts")["results"].is_array().then_some(());
        let deadline = Instant::now() + limit;
        while ready().is_none() {
            assert!(
                Instant::now() < deadline,
                "Icinga 2 did not start; its output:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn ca(&self) -> PathBuf {
        self.dir.join("data").join("certs").join("ca.crt")
    }

    fn query(&self, path: &str) -> Value {
        let url = format!("https://{}{path}", self.address);
        let ca = self.ca();
        curl_json(&[
            "--cacert",
            ca.to_str().unwrap(),
            "-u",
            "reader:r3ader",
            "-H",
            "Accept: application/json",
            &url,
        ])
    }

    /// The attributes of a service or host (`hosts/NAME`, `services/H!S`).
    fn attrs(&self, object: &str) -> Option<Value> {
        let value = self.query(&format!("/v1/objects/{object}"));
        Some(value["results"].as_array()?.first()?["attrs"].clone())
    }

    fn restart(&mut self) {
        self.server = Icinga::spawn(&self.dir);
        self.wait_ready();
    }
}

/// The run number in `count`'s last result in Icinga, with its attempt
/// counter.
fn icinga_count(icinga: &Icinga) -> Option<(u64, u64)> {
    let attrs = icinga.attrs(&format!("services/{AGENT}!count"))?;
    let output = attrs["last_check_result"]["output"].as_str()?;
    let run = output.strip_prefix("run ")?.parse().ok()?;
    Some((run, attrs["check_attempt"].as_f64()? as u64))
}

#[test]
fn icinga2_shows_monchero_s_results_and_gets_those_made_while_it_was_down() {
    let setup = SinkSetup::new();
    let mut icinga = Icinga::new(setup.dir());
    std::fs::write(setup.dir().join("password"), "s3cret\n").unwrap();
    std::fs::write(setup.dir().join("wrong-password"), "guessed\n").unwrap();
    // Beside the target under test: one with a wrong password, one for a
    // host Icinga does not know and may not create.
    let target = |name: &str, password: &str, extra: &str| {
        format!(
            "[[push]]\nname = \"{name}\"\nkind = \"icinga2\"\nurl = \"https://{}\"\n\
             ca_file = \"{}\"\nusername = \"monchero\"\npassword_file = \"{password}\"\n\
             interval = \"200ms\"\nheartbeat = \"1s\"\n{extra}\n",
            icinga.address,
            icinga.ca().display()
        )
    };
    let push = target("icinga", "password", "create_objects = true")
        + &target("wrong", "wrong-password", "create_objects = true")
        + &target("strict", "password", "host = \"nobody\"");
    let config = setup.config(&push, "");
    let agent = Agent::start(&config, setup.dir());

    // Created by the agent, with the agent's last result.
    let web = poll(Duration::from_secs(30), "web in Icinga", || {
        icinga
            .attrs(&format!("services/{AGENT}!web"))
            .filter(|a| a["last_check_result"].is_object())
    });
    let result = &web["last_check_result"];
    assert_eq!(result["state"], 0.0, "{web}");
    assert_eq!(result["output"], "HTTP OK: 200 in 0.25 s\nfrom 127.0.0.1");
    assert_eq!(result["performance_data"], serde_json::json!(["time=250ms;500;900;0", "size=2KB"]));
    assert_eq!(result["check_source"], AGENT);
    assert_eq!(web["enable_active_checks"], false);
    let status = agent.wait_until(|s| check(s, "web")["last_check"].is_string(), "web's run");
    assert_eq!(check(&status, "web")["summary"], "HTTP OK: 200 in 0.25 s");
    let host = poll(Duration::from_secs(20), "the heartbeat", || {
        let host = icinga.attrs(&format!("hosts/{AGENT}"))?;
        (host["last_check_result"]["output"] == "Monchero agent alive").then_some(host)
    });
    assert_eq!(host["state"], 0.0, "{host}");

    // Icinga counts the results it took: attempt minus run number stays
    // the same as long as none is lost.
    let (_, _) = poll(Duration::from_secs(20), "count in Icinga", || icinga_count(&icinga));
    let (run, attempt) = icinga_count(&icinga).unwrap();
    let offset = attempt - run;
    icinga.server.stop();
    let during = setup.runs();
    setup.wait_runs(3);
    icinga.restart();
    let (run, attempt) = poll(Duration::from_secs(40), "the results of the outage", || {
        icinga_count(&icinga).filter(|&(run, _)| run > during + 2)
    });
    assert_eq!(
        attempt - run,
        offset,
        "results were lost or repeated: run {run}, attempt {attempt}"
    );
    let (status, _) = agent.status();
    assert_eq!(status["push"][0]["rejected"], 0, "{status}");

    // A wrong password: nothing is dropped, the error is shown.
    let wrong = &status["push"][1];
    assert!(wrong["last_error"].as_str().unwrap().contains("401"), "{wrong}");
    assert!(wrong["queued"].as_u64().unwrap() > 3, "{wrong}");
    assert_eq!(wrong["rejected"], 0, "{wrong}");
    // An unknown host, not to be created: its results are dropped and
    // counted, and that is logged once per object.
    let strict = &status["push"][2];
    assert!(strict["rejected"].as_u64().unwrap() > 3, "{strict}");
    assert!(strict["last_success"].is_string(), "{strict}");
    let log = agent.log_text();
    let missing: Vec<&str> =
        log.lines().filter(|line| line.contains("Icinga 2 has no such object")).collect();
    assert!(missing.iter().any(|line| line.contains("nobody!count")), "{log}");
    assert_eq!(missing.iter().filter(|line| line.contains("nobody!count")).count(), 1, "{log}");
    assert!(icinga.attrs("hosts/nobody").is_none());
}

// ------------------------------------------------------ Prometheus remote write

/// Prometheus with its remote-write receiver, no scrape jobs.
struct Prometheus {
    dir: PathBuf,
    address: SocketAddr,
    server: Server,
}

impl Prometheus {
    fn new(dir: &Path) -> Prometheus {
        let dir = dir.join("prometheus");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("prometheus.yml"), "global:\n  scrape_interval: 1m\n").unwrap();
        let address = free_port();
        let server = Prometheus::spawn(&dir, address);
        let prometheus = Prometheus { dir, address, server };
        prometheus.wait_ready();
        prometheus
    }

    fn spawn(dir: &Path, address: SocketAddr) -> Server {
        Server::spawn(
            Command::new("prometheus")
                .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
                .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
                .arg(format!("--web.listen-address={address}"))
                .arg("--web.enable-remote-write-receiver"),
            &dir.join("prometheus.log"),
        )
    }

    fn wait_ready(&self) {
        let url = format!("http://{}/-/ready", self.address);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = Command::new("curl")
                .args(["--silent", "--fail", "--output", "/dev/null", &url])
                .status()
                .is_ok_and(|status| status.success());
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "Prometheus did not start; its log:\n{}",
                std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn api(&self, path: &str, params: &[(&str, String)]) -> Value {
        let url = format!("http://{}/api/v1/{path}", self.address);
        let mut args = vec!["--get".to_owned()];
        for (name, value) in params {
            args.push("--data-urlencode".to_owned());
            args.push(format!("{name}={value}"));
        }
        args.push(url);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        curl_json(&args)["data"].clone()
    }

    /// The raw samples of `selector` over the last ten minutes:
    /// (milliseconds, value) per series.
    fn samples(&self, selector: &str) -> Vec<(Value, Vec<(i64, f64)>)> {
        let data = self.api("query", &[("query", format!("{selector}[10m]"))]);
        let series = data["result"].as_array().cloned().unwrap_or_default();
        series
            .into_iter()
            .map(|series| {
                let values = series["values"].as_array().cloned().unwrap_or_default();
                let samples = values
                    .iter()
                    .map(|pair| {
                        let at = (pair[0].as_f64().unwrap() * 1000.0).round() as i64;
                        (at, pair[1].as_str().unwrap().parse().unwrap())
                    })
                    .collect();
                (series["metric"].clone(), samples)
            })
            .collect()
    }

    fn restart(&mut self) {
        self.server = Prometheus::spawn(&self.dir, self.address);
        self.wait_ready();
    }
}

/// The values of `count`'s `n` perfdata in Prometheus, oldest first.
fn pushed_runs(prometheus: &Prometheus) -> Vec<(i64, u64)> {
    let series = prometheus.samples("monchero_perfdata{check=\"count\",label=\"n\"}");
    series
        .first()
        .map(|(_, samples)| samples.iter().map(|&(at, value)| (at, value as u64)).collect())
        .unwrap_or_default()
}

#[test]
fn prometheus_stores_the_remote_written_series_under_the_names_of_metrics() {
    let setup = SinkSetup::new();
    let mut prometheus = Prometheus::new(setup.dir());
    let metrics = free_port();
    let push = format!(
        "[[push]]\nname = \"prometheus\"\nkind = \"remote_write\"\n\
         url = \"http://{}/api/v1/write\"\ninterval = \"200ms\"\n",
        prometheus.address
    );
    let config = setup.config(&push, &format!("[metrics]\nlisten = \"{metrics}\"\n"));
    let agent = Agent::start(&config, setup.dir());

    // The state series, with the agent's labels and a sample per run.
    let states = poll(Duration::from_secs(30), "count's state", || {
        let series = prometheus.samples("monchero_check_state{check=\"count\"}");
        series.into_iter().next().filter(|(_, samples)| samples.len() >= 2)
    });
    assert_eq!(
        states.0,
        serde_json::json!({"__name__": "monchero_check_state", "check": "count",
                           "instance": AGENT, "job": "monchero"})
    );
    assert!(states.1.iter().all(|&(_, value)| value == 2.0), "{states:?}");
    let web = poll(Duration::from_secs(20), "web's time", || {
        prometheus.samples("monchero_perfdata_seconds{check=\"web\",label=\"time\"}").pop()
    });
    assert_eq!(web.1[0].1, 0.25);
    let size = prometheus.samples("monchero_perfdata_bytes{check=\"web\",label=\"size\"}");
    assert_eq!(size[0].1[0].1, 2048.0);

    // The timestamps are the results' times: status's last run of `count`
    // is among them (to the second, as status gives it).
    let status = agent.wait_until(|s| check(s, "count")["last_check"].is_string(), "a run");
    let last = check(&status, "count")["last_check"].as_str().unwrap();
    let last = humantime::parse_rfc3339(last).unwrap();
    let last_ms = last.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    poll(Duration::from_secs(20), "the last run's sample", || {
        pushed_runs(&prometheus).iter().any(|&(at, _)| at / 1000 == last_ms / 1000).then_some(())
    });

    // query_range over the run gives the state at each step.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let range = prometheus.api(
        "query_range",
        &[
            ("query", "monchero_check_state_hard{check=\"web\"}".to_owned()),
            ("start", (now.as_secs() - 5).to_string()),
            ("end", now.as_secs().to_string()),
            ("step", "1".to_owned()),
        ],
    );
    let values = range["result"][0]["values"].as_array().cloned().unwrap_or_default();
    assert!(!values.is_empty(), "{range}");
    assert!(values.iter().all(|v| v[1] == "1"), "{range}");

    // The per-check names are those of a scrape of /metrics.
    let names = prometheus.api("label/__name__/values", &[]);
    let mut pushed: Vec<String> =
        names.as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_owned()).collect();
    pushed.sort();
    let text = Command::new("curl")
        .args(["--silent", &format!("http://{metrics}/metrics")])
        .output()
        .unwrap()
        .stdout;
    let mut scraped: Vec<String> = String::from_utf8(text)
        .unwrap()
        .lines()
        .filter(|line| !line.starts_with('#') && line.contains("check=\""))
        .filter_map(|line| line.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect();
    scraped.sort();
    scraped.dedup();
    assert_eq!(pushed, scraped);

    // Stopped, started again: what was produced meanwhile arrives, in order,
    // with no run missing.
    prometheus.server.stop();
    let during = setup.runs();
    setup.wait_runs(3);
    prometheus.restart();
    let runs = poll(Duration::from_secs(40), "the samples of the outage", || {
        let runs = pushed_runs(&prometheus);
        runs.last().is_some_and(|&(_, n)| n > during + 2).then_some(runs)
    });
    let numbers: Vec<u64> = runs.iter().map(|&(_, n)| n).collect();
    let expected: Vec<u64> = (1..=numbers.len() as u64).collect();
    assert_eq!(numbers, expected, "a run is missing or repeated");
    assert!(runs.windows(2).all(|pair| pair[0].0 < pair[1].0), "{runs:?}");
    let (status, _) = agent.status();
    assert_eq!(status["push"][0]["rejected"], 0, "{status}");
}
