//! `[pull]` and `[metrics]` with real clients on 127.0.0.1: curl with good
//! and bad client certificates, a client that never handshakes, and a real
//! Prometheus scraping `/metrics` over mutual TLS.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustix::process::Signal;
use serde_json::Value;

use crate::daemon::{Agent, Setup, check, quiet};
use crate::util::monchero;

/// A CA for the test, the agent's certificate, and client certificates
/// (shared with tests/nrpe.rs).
pub struct Pki {
    dir: PathBuf,
    ca: Issuer<'static, KeyPair>,
}

impl Pki {
    /// A CA named `name`, written to `DIR/NAME-ca.pem`.
    pub fn new(dir: &Path, name: &str) -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = common_name(&format!("{name} test CA"));
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(dir.join(format!("{name}-ca.pem")), cert.pem()).unwrap();
        Pki { dir: dir.to_owned(), ca: Issuer::new(params, key) }
    }

    /// Signs a certificate for `name` and writes `NAME.pem` and `NAME.key`;
    /// returns their paths.
    pub fn issue(&self, name: &str, server: bool, expired: bool) -> (PathBuf, PathBuf) {
        let names = if server { vec![name.to_owned(), "127.0.0.1".to_owned()] } else { vec![] };
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name = common_name(name);
        params.extended_key_usages = vec![if server {
            ExtendedKeyUsagePurpose::ServerAuth
        } else {
            ExtendedKeyUsagePurpose::ClientAuth
        }];
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        let (cert_path, key_path) =
            (self.dir.join(format!("{name}.pem")), self.dir.join(format!("{name}.key")));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        (cert_path, key_path)
    }
}

fn common_name(name: &str) -> DistinguishedName {
    let mut subject = DistinguishedName::new();
    subject.push(DnType::CommonName, name);
    subject
}

/// An agent with `[pull]` (and `[metrics]`) on ports the system picked, a
/// check `web` that has run once, and certificates for the clients
/// `prometheus` and `admin` (allowed; only admin may run checks),
/// `stranger` (same CA, not allowed), `intruder` (another CA) and
/// `prometheus-old` (expired).
struct Pull {
    setup: Setup,
    agent: Agent,
    web: String,
    api: SocketAddr,
    metrics: SocketAddr,
}

impl Pull {
    fn start() -> Pull {
        let setup = Setup::new();
        let dir = setup.dir().to_owned();
        let pki = Pki::new(&dir, "monchero");
        pki.issue("agent", true, false);
        for client in ["admin", "stranger"] {
            pki.issue(client, false, false);
        }
        let old = pki.issue("prometheus", false, true);
        std::fs::rename(old.0, dir.join("prometheus-old.pem")).unwrap();
        std::fs::rename(old.1, dir.join("prometheus-old.key")).unwrap();
        pki.issue("prometheus", false, false);
        Pki::new(&dir, "other").issue("intruder", false, false);

        setup.plugins.script("check_disk", "echo 'DISK OK | /=100MB;200;300;0;1000 free=90%'");
        let web = quiet("web");
        let extra = format!(
            "[[check]]\nname = \"disk\"\ncommand = \"{}\"\ninterval = \"1h\"\n\n\
             [pull]\nlisten = \"127.0.0.1:0\"\nca_file = \"monchero-ca.pem\"\n\
             cert_file = \"agent.pem\"\nkey_file = \"agent.key\"\n\
             allow = [\"prometheus\", \"admin\"]\nrun_allowed = [\"admin\"]\n\n\
             [metrics]\nlisten = \"127.0.0.1:0\"\n",
            setup.plugins.path("check_disk").display()
        );
        let config = setup.config(&[&web], &extra);
        let agent = Agent::start(&config, &dir);
        agent.check_now(&web);
        agent.check_now("disk");
        let log = agent.log_text();
        let api = listening(&log, "Pull API listening");
        let metrics = listening(&log, "Metrics listening");
        Pull { setup, agent, web, api, metrics }
    }

    fn dir(&self) -> &Path {
        self.setup.dir()
    }

    /// `curl` against the API as `client` (`None`: no certificate):
    /// (exit status, HTTP status, body).
    fn curl(&self, client: Option<&str>, method: &str, path: &str) -> (i32, u16, String) {
        let client = client.map(|name| {
            (self.dir().join(format!("{name}.pem")), self.dir().join(format!("{name}.key")))
        });
        let url = format!("https://{}{path}", self.api);
        curl(&self.dir().join("monchero-ca.pem"), client.as_ref(), method, &url)
    }

    /// The JSON body of a request that must answer `status`.
    fn json(&self, client: &str, method: &str, path: &str, status: u16) -> Value {
        let (exit, code, body) = self.curl(Some(client), method, path);
        assert_eq!((exit, code), (0, status), "{method} {path} as {client}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
    }
}

/// `curl -X METHOD URL` trusting `ca`, with the client certificate and key
/// `client`: (exit status, HTTP status, body).
fn curl(
    ca: &Path,
    client: Option<&(PathBuf, PathBuf)>,
    method: &str,
    url: &str,
) -> (i32, u16, String) {
    let mut cmd = Command::new("curl");
    cmd.args(["--silent", "--show-error", "--max-time", "10", "-X", method])
        .args(["--write-out", "\n%{http_code}"])
        .arg("--cacert")
        .arg(ca);
    if let Some((cert, key)) = client {
        cmd.arg("--cert").arg(cert).arg("--key").arg(key);
    }
    let output = cmd.arg(url).output().expect("curl (Debian package curl) must be installed");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let (body, code) = stdout.rsplit_once('\n').unwrap_or(("", &stdout));
    (output.status.code().unwrap_or(-1), code.parse().unwrap_or(0), body.to_owned())
}

/// The address last logged after `message` (`... address=127.0.0.1:PORT`):
/// a log shared by several runs of an agent holds the earlier ones too.
fn listening(log: &str, message: &str) -> SocketAddr {
    log.lines()
        .rfind(|line| line.contains(message))
        .and_then(|line| line.split("address=").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|address| address.parse().ok())
        .unwrap_or_else(|| panic!("no {message:?} with an address in the log:\n{log}"))
}

fn without_updated_at(mut status: Value) -> Value {
    status.as_object_mut().unwrap().remove("updated_at");
    status
}

#[test]
fn a_client_with_a_good_certificate_gets_the_same_status_as_monchero_status() {
    let pull = Pull::start();
    let api = pull.json("prometheus", "GET", "/v1/status", 200);
    let (local, _) = pull.agent.status();
    assert_eq!(without_updated_at(api), without_updated_at(local));

    let web = pull.json("prometheus", "GET", &format!("/v1/checks/{}", pull.web), 200);
    let (local, _) = pull.agent.status();
    assert_eq!(web, *check(&local, &pull.web));
    assert_eq!(web["summary"], "state from file: 0");

    let missing = pull.json("prometheus", "GET", "/v1/checks/nope", 404);
    assert_eq!(missing["error"]["code"], "not_found");
    let health = pull.json("prometheus", "GET", "/v1/health", 200);
    assert_eq!(health["status"], "ok");
    let wrong_method = pull.json("prometheus", "DELETE", "/v1/status", 405);
    assert_eq!(wrong_method["error"]["code"], "method_not_allowed");
}

#[test]
fn no_certificate_another_ca_and_an_expired_one_are_refused_at_the_handshake_and_logged() {
    let pull = Pull::start();
    for client in [None, Some("intruder"), Some("prometheus-old")] {
        let (exit, code, body) = pull.curl(client, "GET", "/v1/status");
        assert_ne!(exit, 0, "{client:?} got through: {code} {body}");
        assert_eq!(code, 0, "{client:?} got an HTTP answer: {body}");
    }
    // The refusal is logged by the agent's task once it sees the alert.
    let deadline = Instant::now() + Duration::from_secs(5);
    let refusals = loop {
        let log = pull.agent.log_text();
        let refusals: Vec<String> = log
            .lines()
            .filter(|line| line.contains("TLS handshake refused"))
            .map(str::to_owned)
            .collect();
        if refusals.len() >= 3 || Instant::now() > deadline {
            break refusals;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(refusals.len(), 3, "{refusals:#?}");
    assert!(refusals.iter().all(|line| line.contains("peer=127.0.0.1:")), "{refusals:#?}");
    let reasons = refusals.join("\n").to_lowercase();
    assert!(reasons.contains("no certificate"), "{reasons}");
    assert!(reasons.contains("unknownissuer"), "{reasons}");
    assert!(reasons.contains("expired"), "{reasons}");
}

#[test]
fn names_outside_the_allow_list_get_403_and_only_run_allowed_clients_run_checks() {
    let pull = Pull::start();
    let refused = pull.json("stranger", "GET", "/v1/status", 403);
    assert_eq!(refused["error"]["code"], "forbidden");
    assert!(refused["error"]["message"].as_str().unwrap().contains("stranger"), "{refused}");
    assert!(pull.agent.log_text().contains("Client refused: not in the allow list."));

    let run = format!("/v1/checks/{}/run", pull.web);
    let refused = pull.json("prometheus", "POST", &run, 403);
    assert_eq!(refused["error"]["code"], "forbidden");
    assert!(pull.agent.log_text().contains("Run refused: client not in run_allowed."));

    pull.setup.set_code(2);
    let ran = pull.json("admin", "POST", &run, 200);
    assert_eq!(ran["name"], pull.web.as_str());
    assert_eq!(ran["state"], "critical");
    assert_eq!(ran["exit_code"], 2);
    assert_eq!(ran["perfdata"][0]["label"], "v");
    let (status, _) = pull.agent.status();
    assert_eq!(check(&status, &pull.web)["state"], "critical", "the run counted");
    let missing = pull.json("admin", "POST", "/v1/checks/nope/run", 404);
    assert_eq!(missing["error"]["code"], "not_found");
}

#[test]
fn a_client_that_never_handshakes_does_not_block_the_next_one() {
    let pull = Pull::start();
    let mut stalled = TcpStream::connect(pull.api).unwrap();
    // Half a ClientHello header, then nothing.
    stalled.write_all(&[0x16, 0x03]).unwrap();
    let silent = TcpStream::connect(pull.api).unwrap();
    let status = pull.json("prometheus", "GET", "/v1/status", 200);
    assert_eq!(status["stale"], false);
    drop((stalled, silent));
}

#[test]
fn plain_metrics_serve_only_metrics_and_the_api_serves_them_too() {
    let pull = Pull::start();
    let output = Command::new("curl")
        .args(["--silent", "--show-error", "--fail"])
        .arg(format!("http://{}/metrics", pull.metrics))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(text.contains(&format!("monchero_check_state{{check=\"{}\"}} 0", pull.web)), "{text}");
    assert!(text.ends_with("# EOF\n"), "{text}");
    let api = Command::new("curl")
        .args(["--silent", "--write-out", "%{http_code}"])
        .arg(format!("http://{}/v1/status", pull.metrics))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&api.stdout).ends_with("404"), "{api:?}");

    let (exit, code, body) = pull.curl(Some("prometheus"), "GET", "/metrics");
    assert_eq!((exit, code), (0, 200));
    assert!(body.contains("monchero_checks_run_total"), "{body}");
}

/// A Prometheus server from Debian's `prometheus` package, killed when
/// dropped.
struct Prometheus {
    child: Child,
    address: SocketAddr,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    fn start(dir: &Path, target: SocketAddr) -> Prometheus {
        // Prometheus takes no port 0; a port free a moment ago is free now
        // on a test machine.
        let address = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
                 scrape_configs:\n  - job_name: monchero\n    scheme: https\n\
                 \x20   tls_config:\n      ca_file: {dir}/monchero-ca.pem\n\
                 \x20     cert_file: {dir}/prometheus.pem\n      key_file: {dir}/prometheus.key\n\
                 \x20   static_configs:\n      - targets: ['{target}']\n",
                dir = dir.display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
            .arg(format!("--web.listen-address={address}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("prometheus (Debian package prometheus) must be installed");
        Prometheus { child, address }
    }

    /// The result vector of an instant query.
    fn query(&self, query: &str) -> Vec<Value> {
        let output = Command::new("curl")
            .args(["--silent", "--get", "--data-urlencode"])
            .arg(format!("query={query}"))
            .arg(format!("http://{}/api/v1/query", self.address))
            .output()
            .unwrap();
        let json: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
        json["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    /// Polls `query` until it has a result (scrapes are once a second).
    fn wait_for(&self, query: &str, dir: &Path) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let result = self.query(query);
            if !result.is_empty() {
                return result;
            }
            assert!(
                Instant::now() < deadline,
                "Prometheus has no {query}; its log:\n{}",
                std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

#[test]
fn a_real_prometheus_scrapes_check_states_and_perfdata_over_mutual_tls() {
    let pull = Pull::start();
    let prometheus = Prometheus::start(pull.dir(), pull.api);
    let states = prometheus.wait_for("monchero_check_state", pull.dir());
    let web = states
        .iter()
        .find(|series| series["metric"]["check"] == pull.web.as_str())
        .unwrap_or_else(|| panic!("no state of {} in {states:?}", pull.web));
    assert_eq!(web["value"][1], "0");
    let disk =
        prometheus.wait_for("monchero_perfdata_bytes{check=\"disk\",label=\"/\"}", pull.dir());
    assert_eq!(disk[0]["value"][1], (100 * 1024 * 1024).to_string());
    let free = prometheus.wait_for("monchero_perfdata_ratio{check=\"disk\"}", pull.dir());
    assert_eq!(free[0]["value"][1], "0.9");
    let limit = prometheus.wait_for(
        "monchero_perfdata_limit_bytes{check=\"disk\",limit=\"critical_high\"}",
        pull.dir(),
    );
    assert_eq!(limit[0]["value"][1], (300 * 1024 * 1024).to_string());
}

/// SIGHUP, and waits until the pull API says it reloaded.
fn reload(agent: &Agent) {
    let before = agent.log_text().matches("Pull API reloaded").count();
    agent.signal(Signal::HUP);
    let deadline = Instant::now() + Duration::from_secs(10);
    while agent.log_text().matches("Pull API reloaded").count() == before {
        assert!(Instant::now() < deadline, "no reload:\n{}", agent.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_reload_applies_new_access_lists_without_a_restart() {
    let pull = Pull::start();
    let refused = pull.json("stranger", "GET", "/v1/status", 403);
    assert_eq!(refused["error"]["code"], "forbidden");
    let config = pull.dir().join("agent.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let widened = text.replace("allow = [\"prometheus\", \"admin\"]", "allow = [\"stranger\"]");
    assert_ne!(text, widened);
    std::fs::write(&config, widened).unwrap();
    reload(&pull.agent);
    let status = pull.json("stranger", "GET", "/v1/status", 200);
    assert_eq!(status["stale"], false);
    let refused = pull.json("prometheus", "GET", "/v1/status", 403);
    assert_eq!(refused["error"]["code"], "forbidden");
}

/// Runs `monchero ARGS` in `dir`; panics unless it exits 0; its stdout.
fn monchero_in(dir: &Path, args: &[&str]) -> String {
    let output = monchero().current_dir(dir).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "monchero {args:?}: {stderr}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn certificates_from_monchero_ca_get_in_and_a_revoked_one_is_refused() {
    let setup = Setup::new();
    let dir = setup.dir().to_owned();
    monchero_in(&dir, &["ca", "init", "ca"]);
    assert_eq!(mode(&dir.join("ca/ca.key")), 0o600);
    assert_eq!(mode(&dir.join("ca")), 0o700);
    monchero_in(&dir, &["cert", "request", "agent", "--san", "127.0.0.1"]);
    monchero_in(&dir, &["cert", "request", "prometheus"]);
    assert_eq!(mode(&dir.join("agent.key")), 0o600);
    monchero_in(&dir, &["ca", "sign", "ca", "agent.csr", "--out", "agent.pem"]);
    let signed = monchero_in(&dir, &["ca", "sign", "ca", "prometheus.csr"]);
    std::fs::write(dir.join("prometheus.pem"), signed).unwrap();

    let web = quiet("web");
    let pull = "[pull]\nlisten = \"127.0.0.1:0\"\nca_file = \"ca/ca.pem\"\ncrl_file = \"ca/crl.pem\"\n\
                cert_file = \"agent.pem\"\nkey_file = \"agent.key\"\nallow = [\"prometheus\"]\n";
    let config = setup.config(&[&web], pull);
    let client = (dir.join("prometheus.pem"), dir.join("prometheus.key"));
    let get_status = |agent: &Agent| {
        let api = listening(&agent.log_text(), "Pull API listening");
        curl(&dir.join("ca/ca.pem"), Some(&client), "GET", &format!("https://{api}/v1/status"))
    };

    let agent = Agent::start(&config, &dir);
    let (exit, code, body) = get_status(&agent);
    assert_eq!((exit, code), (0, 200), "{body}");

    let revoked = monchero_in(&dir, &["ca", "revoke", "ca", "prometheus"]);
    assert!(revoked.starts_with("1 certificate(s)"), "{revoked}");
    let list = monchero_in(&dir, &["ca", "list", "ca"]);
    let prometheus = list.lines().find(|line| line.contains("prometheus")).unwrap();
    assert!(prometheus.ends_with("REVOKED"), "{list}");
    let agent_line = list.lines().find(|line| line.contains("agent")).unwrap();
    assert!(!agent_line.contains("REVOKED"), "{list}");

    // A reload reads the new CRL; the listener stays where it is.
    reload(&agent);
    let (exit, code, body) = get_status(&agent);
    assert_ne!(exit, 0, "a revoked certificate got through: {code} {body}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !agent.log_text().contains("Revoked") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = agent.log_text();
    let refusal = log.lines().find(|line| line.contains("TLS handshake refused"));
    assert!(refusal.is_some_and(|line| line.contains("Revoked")), "{log}");
}
