//! Certificate enrolment end to end with the real binary: `ca init`, `ca
//! serve` on 127.0.0.1, `ca ticket`, `cert enrol` on the agent's side, the
//! agent's `[pull]` listener serving curl with the enrolled certificate,
//! renewal with a new key by the running agent, and a revocation reaching
//! the listener through the agent's CRL refresh.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::daemon::{Agent, Setup};
use crate::util::monchero;

/// A `monchero ca serve` on a port the system picked, killed when dropped.
struct Serve {
    child: Child,
    url: String,
    fingerprint: String,
    log: PathBuf,
}

impl Serve {
    fn start(ca: &Path, extra: &[&str]) -> Serve {
        let log = ca.with_extension("serve.log");
        let mut child = monchero()
            .args(["ca", "serve"])
            .arg(ca)
            .args(["--listen", "127.0.0.1:0", "--name", "127.0.0.1"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut next = || lines.next().and_then(Result::ok).unwrap_or_default();
        let url = next().trim_start_matches("listening on ").to_owned();
        let fingerprint = next().rsplit(' ').next().unwrap_or_default().to_owned();
        assert!(url.starts_with("https://127.0.0.1:"), "ca serve printed {url:?}");
        assert_eq!(fingerprint.len(), 64, "ca serve printed {fingerprint:?}");
        Serve { child, url, fingerprint, log }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(args: &[&str]) -> Output {
    monchero().args(args).output().unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn path(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// `ca init DIR`, checked.
fn ca_init(ca: &Path) {
    let init = run(&["ca", "init", path(ca)]);
    assert!(init.status.success(), "{}", text(&init));
}

fn ticket(ca: &Path, name: &str) -> String {
    let output = run(&["ca", "ticket", path(ca), name]);
    assert!(output.status.success(), "{}", text(&output));
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// A client certificate for `name` the offline way: `cert request`, then
/// `ca sign` the file. Returns (certificate, key).
fn offline_client(ca: &Path, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let request = run(&["cert", "request", name, "--dir", path(dir)]);
    assert!(request.status.success(), "{}", text(&request));
    let (csr, cert) = (dir.join(format!("{name}.csr")), dir.join(format!("{name}.pem")));
    let sign = run(&["ca", "sign", path(ca), path(&csr), "--validity", "1h", "--out", path(&cert)]);
    assert!(sign.status.success(), "{}", text(&sign));
    (cert, dir.join(format!("{name}.key")))
}

/// `curl` as `client` against `url`, trusting `ca`: (exit status, HTTP
/// status).
fn curl(ca: &Path, client: &(PathBuf, PathBuf), url: &str) -> (i32, u16) {
    let output = Command::new("curl")
        .args(["--silent", "--max-time", "10", "--output", "/dev/null"])
        .args(["--write-out", "%{http_code}", "--cacert"])
        .arg(ca)
        .arg("--cert")
        .arg(&client.0)
        .arg("--key")
        .arg(&client.1)
        .arg(url)
        .output()
        .expect("curl (Debian package curl) must be installed");
    let code = String::from_utf8_lossy(&output.stdout).trim().parse().unwrap_or(0);
    (output.status.code().unwrap_or(-1), code)
}

/// The base64 body of the first certificate the server at `url` sends
/// (curl's `%{certs}`), or of the first PEM certificate in `pem`.
fn first_cert(pem: &str) -> String {
    let body = pem.split("-----BEGIN CERTIFICATE-----").nth(1).unwrap_or_default();
    let body = body.split("-----END CERTIFICATE-----").next().unwrap_or_default();
    body.split_whitespace().collect()
}

fn served_cert(ca: &Path, client: &(PathBuf, PathBuf), url: &str) -> String {
    let output = Command::new("curl")
        .args(["--silent", "--max-time", "10", "--output", "/dev/null"])
        .args(["--write-out", "%{certs}", "--cacert"])
        .arg(ca)
        .arg("--cert")
        .arg(&client.0)
        .arg("--key")
        .arg(&client.1)
        .arg(url)
        .output()
        .unwrap();
    first_cert(&String::from_utf8_lossy(&output.stdout))
}

/// Polls `done` every 100 ms until it holds or `limit` passes.
fn wait_for(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The address the agent's `[pull]` listener logged.
fn pull_address(agent: &Agent) -> String {
    let log = agent.log_text();
    log.lines()
        .rfind(|line| line.contains("Pull API listening"))
        .and_then(|line| line.split("address=").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no pull address in the log:\n{log}"))
        .to_owned()
}

#[test]
fn enrolled_agent_serves_curl_renews_with_a_new_key_and_applies_revocations() {
    let setup = Setup::new();
    let dir = setup.dir();
    let ca = dir.join("ca");
    ca_init(&ca);
    // Short-lived certificates: the agent renews after two thirds of 15 s,
    // long enough for the setup below to see the first certificate served.
    let serve = Serve::start(&ca, &["--lifetime", "15s"]);
    let certs = dir.join("certs");
    let enrol = run(&[
        "cert",
        "enrol",
        "--server",
        &serve.url,
        "--ticket",
        &ticket(&ca, "agent"),
        "--ca-fingerprint",
        &serve.fingerprint,
        "--name",
        "agent",
        "--san",
        "127.0.0.1",
        "--dir",
        path(&certs),
    ]);
    assert_eq!(enrol.status.code(), Some(0), "{}", text(&enrol));
    let key = certs.join("current/key.pem");
    assert_eq!(mode(&key), 0o600);
    assert_eq!(mode(&certs), 0o700);
    let first_key = std::fs::read(&key).unwrap();
    let first_cert_pem = std::fs::read(certs.join("current/cert.pem")).unwrap();

    let prometheus = offline_client(&ca, dir, "prometheus");
    let admin = offline_client(&ca, dir, "admin");
    let extra = format!(
        "[[check]]\nname = \"self\"\ncommand = \"builtin:agent\"\ninterval = \"1h\"\n\n\
         [pull]\nlisten = \"127.0.0.1:0\"\ncert_dir = \"{}\"\ncrl_refresh = \"1s\"\n",
        certs.display()
    );
    let config = setup.config(&[], &extra);
    let agent = Agent::start(&config, dir);
    let url = format!("https://{}/v1/health", pull_address(&agent));
    let trusted = certs.join("ca.pem");
    assert_eq!(curl(&trusted, &prometheus, &url), (0, 200));
    assert_eq!(curl(&trusted, &admin, &url), (0, 200));
    let served = served_cert(&trusted, &prometheus, &url);
    assert_eq!(served, first_cert(&String::from_utf8_lossy(&first_cert_pem)));

    // Renewal: a new key and a new certificate, installed by the agent.
    wait_for(Duration::from_secs(30), "the agent to renew its certificate", || {
        std::fs::read(certs.join("current/cert.pem")).unwrap() != first_cert_pem
    });
    assert_ne!(std::fs::read(&key).unwrap(), first_key, "renewal must use a new key");
    assert_eq!(mode(&certs.join("current/key.pem")), 0o600);
    let list = run(&["ca", "list", path(&ca)]);
    let serials: Vec<&str> = std::str::from_utf8(&list.stdout)
        .unwrap()
        .lines()
        .filter(|line| line.contains("  agent,127.0.0.1  ") || line.contains("  agent  "))
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    assert!(serials.len() >= 2, "a second certificate for agent: {}", text(&list));
    assert_ne!(serials[0], serials[1]);
    wait_for(Duration::from_secs(10), "the listener to reload", || {
        agent.log_text().contains("Pull API reloaded its certificates")
    });
    assert_eq!(curl(&trusted, &prometheus, &url), (0, 200), "served with the new certificate");
    assert_ne!(
        served_cert(&trusted, &prometheus, &url),
        served,
        "the listener serves a renewed one"
    );
    assert!(serve.log_text().contains("Certificate renewed"), "{}", serve.log_text());

    // Revocation reaches the listener through the CRL refresh.
    let revoke = run(&["ca", "revoke", path(&ca), "admin"]);
    assert!(revoke.status.success(), "{}", text(&revoke));
    wait_for(Duration::from_secs(15), "the agent to refuse the revoked admin", || {
        curl(&trusted, &admin, &url).0 != 0
    });
    assert_eq!(curl(&trusted, &admin, &url).1, 0, "refused at the handshake, no HTTP answer");
    assert_eq!(curl(&trusted, &prometheus, &url), (0, 200), "others are still let in");
    assert!(agent.log_text().contains("New CRL installed"), "{}", agent.log_text());

    // With the enrolment server gone, the next renewal fails: builtin:agent
    // (and so `monchero status`) says so.
    drop(serve);
    let mut summary = String::new();
    wait_for(Duration::from_secs(40), "builtin:agent to report the failed renewal", || {
        let result = agent.check_now("self");
        summary = result["summary"].as_str().unwrap_or_default().to_owned();
        summary.contains("certificate renewal failed (retrying): cannot reach")
    });
    assert!(summary.starts_with("AGENT WARNING"), "{summary}");
}

#[test]
fn a_wrong_fingerprint_sends_nothing_and_a_wrong_ticket_waits_for_ca_sign() {
    let setup = Setup::new();
    let dir = setup.dir();
    let ca = dir.join("ca");
    ca_init(&ca);
    let serve = Serve::start(&ca, &[]);
    let certs = dir.join("certs");
    let enrol =
        |ticket: &str, trust: [&str; 2], wait: bool| {
            let mut cmd = monchero();
            cmd.args(["cert", "enrol", "--server", &serve.url, "--ticket", ticket])
                .args(trust)
                .args(["--name", "web1", "--dir", path(&certs)]);
            if wait {
                cmd.arg("--wait");
            }
            cmd
        };
    let good_ticket = ticket(&ca, "web1");

    // The API as any HTTPS client sees it: the CRL needs no client
    // certificate; a broken request gets a JSON error with a stable code.
    let plain = |args: &[&str], path: &str| {
        let output = Command::new("curl")
            .args(["--silent", "--max-time", "10", "--write-out", "\n%{http_code}", "--cacert"])
            .arg(ca.join("ca.pem"))
            .args(args)
            .arg(format!("{}{path}", serve.url))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let (body, code) = stdout.rsplit_once('\n').unwrap_or_default();
        (code.to_owned(), body.to_owned())
    };
    let (code, crl) = plain(&[], "/v1/crl");
    assert_eq!(code, "200");
    assert!(crl.starts_with("-----BEGIN X509 CRL-----"), "{crl}");
    let json = ["-H", "content-type: application/json", "-X", "POST", "-d", r#"{"csr": "x"}"#];
    let (code, body) = plain(&json, "/v1/enrol");
    assert_eq!(code, "400");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["error"]["code"],
        "bad_csr"
    );

    let wrong = "00".repeat(32);
    let output = enrol(&good_ticket, ["--ca-fingerprint", &wrong], false).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("fingerprint"), "{}", text(&output));
    let list = run(&["ca", "list", path(&ca)]);
    assert_eq!(String::from_utf8_lossy(&list.stdout), "", "nothing was sent to the CA");
    assert!(!certs.join("current").exists());

    let bad =
        enrol("not-the-ticket", ["--ca-fingerprint", &serve.fingerprint], false).output().unwrap();
    assert_eq!(bad.status.code(), Some(75), "queued, not failed: {}", text(&bad));
    let list = String::from_utf8(run(&["ca", "list", path(&ca)]).stdout).unwrap();
    assert!(list.contains("  web1  ") && list.contains("PENDING"), "{list}");
    assert!(serve.log_text().contains("wrong ticket"), "{}", serve.log_text());
    assert_eq!(mode(&certs.join("pending.key")), 0o600);

    // --wait collects it once the operator signs; the CA file works as
    // the trust anchor as well as the fingerprint.
    let ca_file = ca.join("ca.pem");
    let mut waiting = enrol("not-the-ticket", ["--ca-file", path(&ca_file)], true)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let sign = run(&["ca", "sign", path(&ca), "web1"]);
    assert!(sign.status.success(), "{}", text(&sign));
    let mut status = None;
    wait_for(Duration::from_secs(20), "enrol --wait to collect the certificate", || {
        status = waiting.try_wait().unwrap();
        status.is_some()
    });
    assert_eq!(status.and_then(|s| s.code()), Some(0));
    assert_eq!(mode(&certs.join("current/key.pem")), 0o600);
    assert!(!certs.join("pending.key").exists(), "the pending key became the current one");
    let check = run(&[
        "config",
        "check",
        "--config",
        path(&setup.config(
            &[],
            &format!("[pull]\nlisten = \"127.0.0.1:0\"\ncert_dir = \"{}\"\n", certs.display()),
        )),
    ]);
    assert!(check.status.success(), "{}", text(&check));
}

#[test]
fn enrol_exit_statuses_tell_usage_config_and_failure_apart() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let enrol = |trust: [&str; 2]| {
        let output = monchero()
            .args(["cert", "enrol", "--server", "https://127.0.0.1:1", "--dir", path(&certs)])
            .args(trust)
            .output()
            .unwrap();
        (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
    };
    let (code, stderr) = enrol(["--ca-fingerprint", "zz"]);
    assert_eq!(code, Some(64), "{stderr}");
    assert!(stderr.contains("is not a SHA-256 fingerprint"), "{stderr}");
    let (code, stderr) = enrol(["--ca-file", "/nonexistent/ca.pem"]);
    assert_eq!(code, Some(78), "{stderr}");
    assert!(stderr.contains("cannot read /nonexistent/ca.pem"), "{stderr}");
    // Nothing listens on port 1.
    let (code, stderr) = enrol(["--ca-fingerprint", &"ab".repeat(32)]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("cannot reach https://127.0.0.1:1/"), "{stderr}");
}
