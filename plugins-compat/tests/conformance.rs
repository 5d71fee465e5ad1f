//! Conformance of the runner and parsers against Debian's monitoring-plugins.
//!
//! Each test asks a real plugin for something specific (thresholds, a port,
//! a URL) and checks that what monchero-core parsed is what was asked for,
//! and that evaluating the parsed thresholds against the parsed values
//! gives the state the plugin itself reported: the strongest check that
//! range semantics and perfdata parsing agree with the C implementation.
//!
//! `.ci/run` installs monitoring-plugins-basic and -standard.

#![allow(clippy::unwrap_used)]

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use monchero_core::perfdata::PerfData;
use monchero_core::threshold::{Range, Thresholds};
use monchero_core::{CheckResult, State};

mod common;
use common::{item, plugin};

fn thresholds(item: &PerfData) -> Thresholds {
    item.as_datum().thresholds().unwrap()
}

/// The state our threshold evaluation gives for the plugin's own perfdata.
fn evaluated(result: &CheckResult) -> State {
    result
        .perfdata
        .iter()
        .filter_map(|item| Some(thresholds(item).evaluate(item.value?)))
        .fold(State::Ok, State::worst)
}

fn range(text: &str) -> Range {
    Range::parse(text).unwrap()
}

/// Every item prints in the guidelines' syntax and parses back the same.
fn assert_round_trips(result: &CheckResult) {
    for item in &result.perfdata {
        let text = item.to_string();
        let again: Vec<_> = monchero_core::perfdata::parse(&text).collect();
        assert_eq!(again.len(), 1, "{text}");
        assert_eq!(&again[0].as_ref().unwrap().to_owned_data(), item, "{text}");
    }
}

#[tokio::test]
async fn check_dummy_states_and_summaries() {
    for (code, state, prefix) in [
        (0, State::Ok, "OK"),
        (1, State::Warning, "WARNING"),
        (2, State::Critical, "CRITICAL"),
        (3, State::Unknown, "UNKNOWN"),
    ] {
        let result = plugin(&format!("check_dummy {code} 'all is well'")).await;
        assert_eq!(result.state, state);
        assert_eq!(result.summary, format!("{prefix}: all is well"));
        assert!(result.perfdata.is_empty());
    }
    let result = plugin("check_dummy 4").await;
    assert_eq!(result.state, State::Unknown);
    assert_eq!(result.summary, "UNKNOWN: Status 4 is not a supported error state");
}

#[tokio::test]
async fn check_load_reports_the_thresholds_it_was_given() {
    let result = plugin("check_load -w 1000,900,800 -c 2000,1900,1800").await;
    assert_eq!(result.state, State::Ok);
    assert!(result.summary.starts_with("LOAD OK - total load average: "), "{}", result.summary);
    for (label, warn, crit) in
        [("load1", 1000.0, 2000.0), ("load5", 900.0, 1900.0), ("load15", 800.0, 1800.0)]
    {
        let load = item(&result, label);
        assert!(load.value.unwrap() >= 0.0);
        assert_eq!(load.uom, None);
        assert_eq!(load.min, Some(0.0));
        assert_eq!(load.max, None);
        assert_eq!(
            thresholds(load).warning,
            Some(Range { start: Some(0.0), end: Some(warn), inside: false })
        );
        assert_eq!(thresholds(load).critical, Some(range(&crit.to_string())));
    }
    assert_round_trips(&result);
}

#[tokio::test]
async fn check_load_state_agrees_with_our_range_evaluation() {
    // Whatever the machine's load, the plugin's state and ours must agree.
    for args in [
        "-w 0,0,0 -c 1000,1000,1000",
        "-w 0.01,0.01,0.01 -c 0.02,0.02,0.02",
        "-r -w 0.5,0.5,0.5 -c 1,1,1",
    ] {
        let result = plugin(&format!("check_load {args}")).await;
        assert_eq!(evaluated(&result), result.state, "{args}: {result:?}");
    }
    let scaled = plugin("check_load -r -w 0.5,0.5,0.5 -c 1,1,1").await;
    assert_eq!(item(&scaled, "load1").warn, None, "empty threshold fields are None");
    assert_eq!(item(&scaled, "scaled_load1").warn.as_deref(), Some("0.500"));
}

#[tokio::test]
async fn check_disk_bytes_and_percent_thresholds() {
    let result = plugin("check_disk -w 10% -c 5% -p /").await;
    assert!(result.summary.starts_with("DISK "), "{}", result.summary);
    let root = item(&result, "/");
    assert_eq!(root.uom.as_deref(), Some("B"));
    assert_eq!(root.min, Some(0.0));
    let size = root.max.unwrap();
    let used = root.value.unwrap();
    assert!(used > 0.0 && used <= size);
    // check_disk turns "10% free" into an absolute used-bytes threshold.
    let limits = thresholds(root);
    let warn_at = limits.warning.unwrap().end.unwrap();
    let crit_at = limits.critical.unwrap().end.unwrap();
    assert!((warn_at / size - 0.90).abs() < 0.01, "warn {warn_at} of {size}");
    assert!((crit_at / size - 0.95).abs() < 0.01, "crit {crit_at} of {size}");
    assert_eq!(evaluated(&result), result.state);
    assert_round_trips(&result);

    let full = plugin("check_disk -w 100% -c 100% -p /").await;
    assert_eq!(full.state, State::Critical);
    assert_eq!(evaluated(&full), State::Critical);
}

#[tokio::test]
async fn check_swap_perfdata_in_bytes() {
    let result = plugin("check_swap -w 10% -c 5%").await;
    assert!(result.summary.starts_with("SWAP "), "{}", result.summary);
    let swap = item(&result, "swap");
    assert_eq!(swap.uom.as_deref(), Some("B"));
    assert_eq!(swap.min, Some(0.0));
    assert!(swap.value.unwrap() <= swap.max.unwrap());
    assert_round_trips(&result);
}

#[tokio::test]
async fn check_procs_counts_against_the_given_ranges() {
    let result = plugin("check_procs -w 5000 -c 10000").await;
    assert_eq!(result.state, State::Ok);
    let procs = item(&result, "procs");
    assert!(procs.value.unwrap() >= 1.0);
    assert_eq!(procs.warn.as_deref(), Some("5000"));
    assert_eq!(procs.crit.as_deref(), Some("10000"));
    assert_eq!(evaluated(&result), State::Ok);

    // This test process alone is one; with cargo and the shell, more than 2.
    let result = plugin("check_procs -w 1 -c 2").await;
    assert_eq!(result.state, State::Critical);
    assert_eq!(evaluated(&result), State::Critical);

    // An inverted range: alert when the count is inside 0..=100000.
    let result = plugin("check_procs -w @0:100000 -c @0:200000").await;
    assert_eq!(result.state, State::Critical);
    assert_eq!(thresholds(item(&result, "procs")).critical, Some(range("@0:200000")));
    assert_eq!(evaluated(&result), State::Critical);
}

#[tokio::test]
async fn check_users_thresholds() {
    let result = plugin("check_users -w 50 -c 100").await;
    assert_eq!(result.state, State::Ok);
    let users = item(&result, "users");
    assert_eq!(thresholds(users).warning, Some(range("50")));
    assert_eq!(users.min, Some(0.0));
    assert_eq!(evaluated(&result), result.state);
}

#[tokio::test]
async fn check_tcp_against_a_loopback_port() {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let result = plugin(&format!("check_tcp -H 127.0.0.1 -p {port} -w 5 -c 9")).await;
    assert_eq!(result.state, State::Ok, "{result:?}");
    assert!(result.summary.starts_with("TCP OK - "), "{}", result.summary);
    assert!(result.summary.ends_with(&format!("response time on 127.0.0.1 port {port}")));
    let time = item(&result, "time");
    assert_eq!(time.uom.as_deref(), Some("s"));
    assert!(time.value.unwrap() < 5.0);
    assert_eq!(time.warn.as_deref(), Some("5.000000"));
    assert_eq!(time.crit.as_deref(), Some("9.000000"));
    assert_eq!(time.min, Some(0.0));
    assert_eq!(time.max, Some(10.0));
    assert_round_trips(&result);
    drop(listener);

    // The port is closed now: connection refused is critical.
    let result = plugin(&format!("check_tcp -H 127.0.0.1 -p {port}")).await;
    assert_eq!(result.state, State::Critical);
    assert!(result.summary.contains("Connection refused"), "{}", result.summary);
}

/// Python's http.server on a free loopback port, serving `dir`.
struct HttpServer {
    child: Child,
    port: u16,
}

impl HttpServer {
    fn start(dir: &std::path::Path) -> HttpServer {
        let port =
            TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap().local_addr().unwrap().port();
        let child = Command::new("python3")
            .args(["-m", "http.server", &port.to_string(), "--bind", "127.0.0.1", "--directory"])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 is needed for the HTTP server (.ci/run installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
            assert!(Instant::now() < deadline, "http.server did not start on port {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        HttpServer { child, port }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn check_http_against_a_loopback_server() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("health.txt"), "status: all good\n").unwrap();
    let server = HttpServer::start(dir.path());
    let port = server.port;

    let result = plugin(&format!(
        "check_http -H 127.0.0.1 -p {port} -u /health.txt -s 'all good' -w 2 -c 4"
    ))
    .await;
    assert_eq!(result.state, State::Ok, "{result:?}");
    assert!(result.summary.starts_with("HTTP OK: HTTP/1.0 200 OK"), "{}", result.summary);
    let time = item(&result, "time");
    assert_eq!(time.uom.as_deref(), Some("s"));
    assert_eq!(thresholds(time).warning, Some(range("2")));
    assert_eq!(thresholds(time).critical, Some(range("4")));
    let size = item(&result, "size");
    assert_eq!(size.uom.as_deref(), Some("B"));
    assert!(size.value.unwrap() >= 17.0, "headers plus the 17-byte body");
    assert_eq!(evaluated(&result), State::Ok);
    assert_round_trips(&result);

    // check_http treats a 4xx status as a warning, 5xx as critical.
    let missing = plugin(&format!("check_http -H 127.0.0.1 -p {port} -u /missing")).await;
    assert_eq!(missing.state, State::Warning);
    assert!(missing.summary.starts_with("HTTP WARNING: HTTP/1.0 404"), "{}", missing.summary);

    let wrong =
        plugin(&format!("check_http -H 127.0.0.1 -p {port} -u /health.txt -s 'all bad'")).await;
    assert_eq!(wrong.state, State::Critical);
    assert!(wrong.summary.contains("string 'all bad' not found"), "{}", wrong.summary);
}
