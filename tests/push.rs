//! Push: the agent delivering results and changes to the reference
//! receiver (`push-receiver/`) over HTTPS on 127.0.0.1, through outages,
//! SIGKILL, a damaged spool and a full spool.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use monchero_push_receiver::{Forced, Receiver, ReceiverConfig, TlsFiles};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustix::process::Signal;
use serde_json::Value;

use crate::daemon::Agent;
use crate::util::*;

/// A test directory: counting plugins, certificates, the receiver's file.
struct PushSetup {
    plugins: Plugins,
}

impl PushSetup {
    fn new() -> PushSetup {
        let plugins = Plugins::new();
        std::fs::write(plugins.path("code"), "0").unwrap();
        // Each run prints its number, so the test can tell a lost or
        // repeated result from the receiver's file alone.
        plugins.script(
            "check_count",
            &format!(
                "n=$(cat \"$COUNTER\" 2>/dev/null || echo 0); n=$((n+1)); echo $n > \"$COUNTER\"\n\
                 code=$(cat {})\necho \"run $n $PAD| n=$n;1;2\"\nexit $code",
                plugins.path("code").display()
            ),
        );
        PushSetup { plugins }
    }

    fn dir(&self) -> &Path {
        self.plugins.dir.path()
    }

    fn store(&self) -> PathBuf {
        self.dir().join("received.jsonl")
    }

    /// A CA, and a certificate for 127.0.0.1 it signed: (ca.pem, cert, key).
    fn certificates(&self) -> (PathBuf, PathBuf, PathBuf) {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        let paths = (
            self.dir().join("ca.pem"),
            self.dir().join("server.pem"),
            self.dir().join("server.key"),
        );
        std::fs::write(&paths.0, ca.pem()).unwrap();
        std::fs::write(&paths.1, cert.pem()).unwrap();
        std::fs::write(&paths.2, key.serialize_pem()).unwrap();
        // A client certificate from the same CA, for mutual TLS.
        let client_key = KeyPair::generate().unwrap();
        let client = CertificateParams::new(vec!["agent-under-test".to_owned()])
            .unwrap()
            .signed_by(&client_key, &ca)
            .unwrap();
        std::fs::write(self.dir().join("client.pem"), client.pem()).unwrap();
        std::fs::write(self.dir().join("client.key"), client_key.serialize_pem()).unwrap();
        paths
    }

    /// `agent.toml` with `checks` counting checks every `interval` and one
    /// push target at `url` with `push_extra` lines.
    fn config(
        &self,
        checks: usize,
        interval: &str,
        url: &str,
        push_extra: &str,
        pad: usize,
    ) -> PathBuf {
        let mut text = format!(
            "[agent]\nhostname = \"agent-under-test\"\nstate_dir = \"{}\"\nmax_check_spread = \"200ms\"\n\n\
             [[push]]\nname = \"central\"\nurl = \"{url}\"\ninterval = \"100ms\"\nheartbeat = \"1h\"\n{push_extra}\n\n",
            self.dir().join("state").display()
        );
        for i in 0..checks {
            text.push_str(&format!(
                "[[check]]\nname = \"c{i}\"\ncommand = \"{}\"\ninterval = \"{interval}\"\nretry_interval = \"{interval}\"\nattempts = 2\nenv = {{ COUNTER = \"{}\", PAD = \"{}\" }}\n\n",
                self.plugins.path("check_count").display(),
                self.plugins.path(&format!("counter{i}")).display(),
                "x".repeat(pad),
            ));
        }
        let path = self.dir().join("agent.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// The runs each check has made so far, by its counter file.
    fn runs(&self, check: usize) -> u64 {
        let text = std::fs::read_to_string(self.plugins.path(&format!("counter{check}")));
        text.ok().and_then(|t| t.trim().parse().ok()).unwrap_or(0)
    }

    fn received(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(self.store()).unwrap_or_default();
        text.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
    }
}

/// The run numbers of the result records of each check, in file order.
fn result_runs(records: &[Value]) -> BTreeMap<String, Vec<u64>> {
    let mut runs: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for record in records.iter().filter(|r| r["type"] == "result") {
        let summary = record["summary"].as_str().unwrap();
        let n = summary.split_whitespace().nth(1).unwrap().parse().unwrap();
        runs.entry(record["check"].as_str().unwrap().to_owned()).or_default().push(n);
    }
    runs
}

/// Polls `done` on the receiver's file for up to `limit`.
fn wait_for(setup: &PushSetup, limit: Duration, what: &str, done: impl Fn(&[Value]) -> bool) {
    let deadline = Instant::now() + limit;
    loop {
        let records = setup.received();
        if done(&records) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; {} records",
            records.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn https_receiver(setup: &PushSetup, listen: SocketAddr, token: Option<&str>) -> Receiver {
    let (_, cert, key) = (
        setup.dir().join("ca.pem"),
        setup.dir().join("server.pem"),
        setup.dir().join("server.key"),
    );
    Receiver::start(ReceiverConfig {
        listen,
        store: setup.store(),
        tls: Some(TlsFiles { cert, key, client_ca: None }),
        token: token.map(str::to_owned),
    })
    .unwrap()
}

fn url(receiver: &Receiver, scheme: &str) -> String {
    format!("{scheme}://{}/v1/push", receiver.addr())
}

#[test]
fn results_and_changes_arrive_once_in_order_over_https_with_a_token() {
    let setup = PushSetup::new();
    let (ca, _, _) = setup.certificates();
    let token = setup.dir().join("token");
    std::fs::write(&token, "s3cret\n").unwrap();
    let receiver = https_receiver(&setup, "127.0.0.1:0".parse().unwrap(), Some("s3cret"));
    let extra = format!("ca_file = \"{}\"\ntoken_file = \"{}\"", ca.display(), token.display());
    let config = setup.config(2, "100ms", &url(&receiver, "https"), &extra, 0);
    let agent = Agent::start(&config, setup.dir());

    wait_for(&setup, Duration::from_secs(20), "OK results", |records| {
        result_runs(records).values().filter(|runs| runs.len() >= 3).count() == 2
    });
    std::fs::write(setup.plugins.path("code"), "2").unwrap();
    wait_for(&setup, Duration::from_secs(20), "hard CRITICAL changes", |records| {
        records.iter().filter(|r| r["type"] == "change" && r["state_type"] == "hard").count() == 2
    });
    assert_eq!(agent.stop(), 0);

    let records = setup.received();
    let stats = receiver.stats();
    assert_eq!(stats.stored as usize, records.len());
    for record in &records {
        assert_eq!(record["agent"], "agent-under-test");
        assert_eq!(record["instance"].as_str().unwrap().len(), 32);
    }
    // Per agent, sequence numbers only grow: nothing twice, nothing out of
    // order.
    let seqs: Vec<u64> = records.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    for (check, runs) in result_runs(&records) {
        let expected: Vec<u64> = (1..=runs.len() as u64).collect();
        assert_eq!(runs, expected, "results of {check}");
    }
    // The change follows the result that caused it, with its state.
    let c0: Vec<&Value> = records.iter().filter(|r| r["check"] == "c0").collect();
    let soft = c0.iter().position(|r| r["type"] == "change" && r["to"] == "critical").unwrap();
    assert_eq!(c0[soft]["from"], "ok");
    assert_eq!(c0[soft]["state_type"], "soft");
    assert_eq!(c0[soft - 1]["type"], "result");
    assert_eq!(c0[soft - 1]["state"], "critical");
    assert_eq!(c0[soft - 1]["exit_code"], 2);
    assert_eq!(c0[soft - 1]["perfdata"][0]["label"], "n");
    let hard = c0.iter().position(|r| r["type"] == "change" && r["state_type"] == "hard").unwrap();
    assert_eq!(
        (c0[hard]["attempt"].as_u64(), c0[hard]["max_attempts"].as_u64()),
        (Some(2), Some(2))
    );

    // The ack is lost (as if the agent died before saving it): everything
    // is sent again, and the receiver drops all of it as duplicates.
    let before = setup.received().len();
    std::fs::remove_file(setup.dir().join("state/spool/central/acked")).unwrap();
    std::fs::write(setup.plugins.path("code"), "0").unwrap();
    let agent = Agent::start(&config, setup.dir());
    wait_for(&setup, Duration::from_secs(20), "the resend", |_| {
        receiver.stats().duplicates >= before as u64
    });
    assert_eq!(agent.stop(), 0);
    let records = setup.received();
    for (check, runs) in result_runs(&records) {
        let expected: Vec<u64> = (1..=runs.len() as u64).collect();
        assert_eq!(runs, expected, "results of {check} after the resend");
    }
}

/// The agent's resident set, from /proc.
fn rss_kib(agent: &Agent) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", agent.pid())).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The states each check changed to as hard changes, in file order.
fn hard_changes(records: &[Value]) -> BTreeMap<String, Vec<String>> {
    let mut changes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for record in records.iter().filter(|r| r["type"] == "change" && r["state_type"] == "hard") {
        let check = record["check"].as_str().unwrap().to_owned();
        changes.entry(check).or_default().push(record["to"].as_str().unwrap().to_owned());
    }
    changes
}

/// The scale: 100 checks every second, the receiver down for a
/// minute, the agent SIGKILLed half way through and started again, every
/// check going CRITICAL and back during the outage.
#[test]
fn a_receiver_outage_and_a_sigkill_during_it_lose_nothing() {
    let setup = PushSetup::new();
    setup.certificates();
    let receiver = https_receiver(&setup, "127.0.0.1:0".parse().unwrap(), None);
    let address = receiver.addr();
    let extra = format!("ca_file = \"{}\"", setup.dir().join("ca.pem").display());
    let checks = 100;
    let config = setup.config(checks, "1s", &url(&receiver, "https"), &extra, 0);
    let agent = Agent::start(&config, setup.dir());
    wait_for(&setup, Duration::from_secs(20), "first results", |records| {
        result_runs(records).len() == checks
    });

    receiver.stop();
    std::fs::write(setup.plugins.path("code"), "2").unwrap();
    let critical =
        |status: &Value| {
            status["checks"].as_array().unwrap().iter().all(|c| {
                c["state"] == "critical" && c["state_type"] == "hard" || c["name"] == "agent"
            })
        };
    agent.wait_until(critical, "every check hard CRITICAL");
    std::thread::sleep(Duration::from_secs(25));
    agent.signal(Signal::KILL);
    drop(agent);
    let agent = Agent::start(&config, setup.dir());
    std::fs::write(setup.plugins.path("code"), "0").unwrap();
    std::thread::sleep(Duration::from_secs(30));
    let receiver = https_receiver(&setup, address, None);

    // Everything the checks have run by now must arrive.
    let target: Vec<u64> = (0..checks).map(|i| setup.runs(i)).collect();
    wait_for(&setup, Duration::from_secs(60), "the backlog", |records| {
        let runs = result_runs(records);
        (0..checks).all(|i| {
            runs.get(&format!("c{i}")).and_then(|r| r.last()).is_some_and(|&n| n >= target[i])
        })
    });
    assert_eq!(agent.stop(), 0);

    let records = setup.received();
    let seqs: Vec<u64> = records.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "sequence out of order or repeated");
    let runs = result_runs(&records);
    assert_eq!(runs.len(), checks);
    for (check, runs) in runs {
        assert!(runs.windows(2).all(|w| w[0] < w[1]), "{check}: {runs:?}");
        // Only a run in flight when the agent was killed may be missing:
        // its plugin finished, but no agent was left to take the result.
        let missing = runs.last().unwrap() - runs.len() as u64;
        assert!(missing <= 1, "{check} lost {missing} results: {runs:?}");
    }
    let changes = hard_changes(&records);
    assert_eq!(changes.len(), checks);
    for (check, changes) in changes {
        assert_eq!(changes, ["critical", "ok"], "hard changes of {check}");
    }
    drop(receiver);
}

#[test]
fn a_damaged_spool_segment_is_skipped_with_a_log_line_and_the_rest_delivered() {
    let setup = PushSetup::new();
    let receiver =
        Receiver::start(ReceiverConfig::plain("127.0.0.1:0".parse().unwrap(), setup.store()))
            .unwrap();
    receiver.force(Some(Forced { status: 503, retry_after: Some(1) }));
    let config = setup.config(1, "50ms", &url(&receiver, "http"), "spool_max = \"64KiB\"", 200);
    let agent = Agent::start(&config, setup.dir());
    let spool = setup.dir().join("state/spool/central");
    let segments = || {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&spool)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "seg"))
            .collect();
        files.sort();
        files
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while segments().len() < 3 {
        assert!(Instant::now() < deadline, "the spool did not grow");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(agent.stop(), 0);
    assert!(receiver.stats().stored == 0);

    let first = segments().remove(0);
    let mut bytes = std::fs::read(&first).unwrap();
    bytes[600] ^= 0xff;
    std::fs::write(&first, bytes).unwrap();
    let runs = setup.runs(0);
    receiver.force(None);
    let agent = Agent::start(&config, setup.dir());
    wait_for(&setup, Duration::from_secs(20), "the spool", |records| {
        result_runs(records).get("c0").and_then(|r| r.last()).is_some_and(|&n| n >= runs)
    });
    assert_eq!(agent.stop(), 0);
    let log =
        std::fs::read_to_string(setup.dir().join(format!("agent-{}.log", std::process::id())));
    let log = log.unwrap();
    assert!(
        log.contains(&format!("{}: damaged record at byte", first.display())),
        "no log line naming the file: {log}"
    );
    let runs = &result_runs(&setup.received())["c0"];
    assert_eq!(runs[0], 1);
    let missing = runs.last().unwrap() - runs.len() as u64;
    assert_eq!(missing, 1, "exactly the damaged record is missing: {runs:?}");
}

#[test]
fn over_spool_max_the_oldest_records_are_dropped_and_counted() {
    let setup = PushSetup::new();
    let receiver =
        Receiver::start(ReceiverConfig::plain("127.0.0.1:0".parse().unwrap(), setup.store()))
            .unwrap();
    receiver.force(Some(Forced { status: 429, retry_after: Some(1) }));
    // 20 KB records every 20 ms against a 64 KiB bound.
    let config = setup.config(1, "20ms", &url(&receiver, "http"), "spool_max = \"64KiB\"", 20_000);
    let agent = Agent::start(&config, setup.dir());
    let evicted = |status: &Value| status["push"][0]["evicted"].as_u64().unwrap_or(0);
    let first = evicted(&agent.wait_until(|s| evicted(s) > 0, "evictions in status"));
    assert!(agent.log_text().contains("spool over its size limit"), "{}", agent.log_text());
    // Memory stays flat while 200 more records (4 MB) go through the spool
    // and are dropped: nothing of them is held past the bound.
    let rss_before = rss_kib(&agent);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        let (status, _) = agent.status();
        if evicted(&status) >= first + 200 {
            break status;
        }
        assert!(Instant::now() < deadline, "200 more evictions did not come: {}", evicted(&status));
        std::thread::sleep(Duration::from_millis(100));
    };
    let growth = rss_kib(&agent).saturating_sub(rss_before);
    assert!(growth < 1024, "RSS grew by {growth} KiB while 4 MB were evicted");
    let push = &status["push"][0];
    assert_eq!(push["name"], "central");
    assert!(push["queued"].as_u64().unwrap() > 0, "{push}");
    assert!(push["last_error"].as_str().unwrap().contains("server busy"), "{push}");
    let text = monchero().args(["status", "--config"]).arg(&config).output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("push central") && text.contains("dropped by spool_max"), "{text}");
    let spool_bytes: u64 = std::fs::read_dir(setup.dir().join("state/spool/central"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(spool_bytes < 80 * 1024, "spool holds {spool_bytes} bytes");
    receiver.force(None);
    let runs = setup.runs(0);
    wait_for(&setup, Duration::from_secs(20), "the rest", |records| {
        result_runs(records).get("c0").and_then(|r| r.last()).is_some_and(|&n| n >= runs)
    });
    assert_eq!(agent.stop(), 0);
    let runs = &result_runs(&setup.received())["c0"];
    assert!(runs[0] > 1, "the oldest should have been dropped: {runs:?}");
    assert!(runs.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn with_mutual_tls_only_an_agent_with_a_client_certificate_gets_through() {
    let setup = PushSetup::new();
    let (ca, cert, key) = setup.certificates();
    let receiver = Receiver::start(ReceiverConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        store: setup.store(),
        tls: Some(TlsFiles { cert, key, client_ca: Some(ca.clone()) }),
        token: None,
    })
    .unwrap();
    let ca_line = format!("ca_file = \"{}\"", ca.display());
    let config = setup.config(1, "100ms", &url(&receiver, "https"), &ca_line, 0);
    let agent = Agent::start(&config, setup.dir());
    let status = agent.wait_until(|s| s["push"][0]["last_error"].is_string(), "a TLS error");
    assert_eq!(status["push"][0]["last_success"], Value::Null);
    assert_eq!(agent.stop(), 0);
    assert_eq!(receiver.stats().stored, 0);

    let with_cert = format!(
        "{ca_line}\ncert_file = \"{}\"\nkey_file = \"{}\"",
        setup.dir().join("client.pem").display(),
        setup.dir().join("client.key").display()
    );
    let config = setup.config(1, "100ms", &url(&receiver, "https"), &with_cert, 0);
    let agent = Agent::start(&config, setup.dir());
    wait_for(&setup, Duration::from_secs(20), "results over mutual TLS", |records| {
        result_runs(records).get("c0").is_some_and(|runs| runs.len() >= 3)
    });
    assert_eq!(agent.stop(), 0);
}

#[test]
fn a_full_disk_is_logged_and_counted_and_checks_go_on() {
    let setup = PushSetup::new();
    let receiver =
        Receiver::start(ReceiverConfig::plain("127.0.0.1:0".parse().unwrap(), setup.store()))
            .unwrap();
    let config = setup.config(1, "100ms", &url(&receiver, "http"), "", 0);
    // Every write to the spool's segment fails with ENOSPC.
    let spool = setup.dir().join("state/spool/central");
    std::fs::create_dir_all(&spool).unwrap();
    std::os::unix::fs::symlink("/dev/full", spool.join(format!("{:020}.seg", 1))).unwrap();
    let agent = Agent::start(&config, setup.dir());
    let status = agent
        .wait_until(|s| s["push"][0]["write_failed"].as_u64() > Some(2), "failed writes counted");
    assert!(
        status["push"][0]["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("No space left on device"),
        "{status}"
    );
    assert_eq!(status["push"][0]["queued"], 0, "lost records are not queued: {status}");
    assert!(setup.runs(0) >= 3, "checks keep running");
    let log = agent.log_text();
    assert_eq!(agent.stop(), 0);
    assert_eq!(log.matches("Push spool failure").count(), 1, "logged once, not per record:\n{log}");
}

#[test]
fn an_idle_agent_sends_heartbeats() {
    let setup = PushSetup::new();
    let receiver =
        Receiver::start(ReceiverConfig::plain("127.0.0.1:0".parse().unwrap(), setup.store()))
            .unwrap();
    let config = setup.config(1, "1h", &url(&receiver, "http"), "", 0);
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("heartbeat = \"1h\"", "heartbeat = \"1s\"");
    std::fs::write(&config, text).unwrap();
    let agent = Agent::start(&config, setup.dir());
    wait_for(&setup, Duration::from_secs(20), "two heartbeats", |records| {
        records.iter().filter(|r| r["type"] == "heartbeat").count() >= 2
    });
    assert_eq!(agent.stop(), 0);
    let records = setup.received();
    let beat = records.iter().find(|r| r["type"] == "heartbeat").unwrap();
    assert!(beat["started_at"].is_string() && beat["evicted"] == 0, "{beat}");
    assert_eq!(result_runs(&records)["c0"], [1]);
}
