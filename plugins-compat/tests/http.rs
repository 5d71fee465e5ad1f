//! `builtin:http` and `builtin:tcp -S` against real servers on 127.0.0.1
//! (Python's http.server, plain and with TLS, and a port that never
//! answers), side by side with `check_http` and `check_tcp` where the
//! plugin behaves the same: the same state, and the same summary once the
//! measured time is set aside.
//!
//! Where they differ on purpose, only ours is asserted: the plugins do
//! not verify the certificate chain (`check_http --help` says so), the
//! built-ins do.

#![allow(clippy::unwrap_used)]

use monchero_core::builtin::BuiltinCheck;
use monchero_core::{CheckResult, State};

mod common;
mod servers;
use common::{item, plugin};
use servers::{Pki, PyServer, closed_port, in_days, silent_port};

/// Runs a built-in check from its name and words.
fn ours(name: &str, args: &[&str]) -> CheckResult {
    let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
    BuiltinCheck::from_args(name, &args).unwrap().run()
}

/// A summary with its measured time replaced by `T`, for comparing
/// `... - 160 bytes in 0.001 second response time` with the plugin's.
fn shape(summary: &str) -> String {
    let Some(end) = summary.find(" second response time") else {
        return summary.to_owned();
    };
    let start = summary[..end].rfind(' ').map_or(0, |at| at + 1);
    format!("{}T{}", &summary[..start], &summary[end..])
}

/// A directory with `health.txt`.
fn site() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("health.txt"), "status: all good\n").unwrap();
    dir
}

/// Both on the same options: the same state and summary shape.
async fn twins(ours_args: &[&str], theirs: &str) -> (CheckResult, CheckResult) {
    let (a, b) = (ours("http", ours_args), plugin(theirs).await);
    assert_eq!(a.state, b.state, "ours {a:?}\ntheirs {b:?}");
    assert_eq!(shape(&a.summary), shape(&b.summary), "ours {a:?}\ntheirs {b:?}");
    (a, b)
}

#[tokio::test]
async fn a_page_is_ok_with_check_https_summary_and_size() {
    let dir = site();
    let server = PyServer::http(dir.path());
    let port = server.port.to_string();
    let args = [
        "-I",
        "127.0.0.1",
        "-p",
        &port,
        "-u",
        "/health.txt",
        "-s",
        "all good",
        "-w",
        "2",
        "-c",
        "4",
    ];
    let (a, b) =
        twins(&args, &format!("check_http {}", args.join(" ").replace("all good", "'all good'")))
            .await;
    assert_eq!(a.state, State::Ok);
    assert!(a.summary.starts_with("HTTP OK: HTTP/1.0 200 OK - "), "{}", a.summary);
    // The same bytes on the wire: head (the same length of date) and body.
    assert_eq!(item(&a, "size").value, item(&b, "size").value);
    assert_eq!(item(&a, "size").uom.as_deref(), Some("B"));
    let time = item(&a, "time");
    assert_eq!((time.warn.as_deref(), time.crit.as_deref()), (Some("2"), Some("4")));
    assert!(time.value.unwrap() < 4.0);
    assert_eq!((time.min, time.max), (item(&b, "time").min, item(&b, "time").max));
    item(&a, "time_connect");
    item(&a, "time_firstbyte");
}

#[tokio::test]
async fn statuses_map_as_in_check_http() {
    let dir = site();
    let server = PyServer::http(dir.path());
    let port = server.port.to_string();
    for (path, state) in [
        ("/missing", State::Warning),
        ("/status/503", State::Critical),
        ("/status/500", State::Critical),
        ("/redirect", State::Ok),
        ("/status/204", State::Ok),
    ] {
        let args = ["-I", "127.0.0.1", "-p", &port, "-u", path];
        let (a, _) = twins(&args, &format!("check_http {}", args.join(" "))).await;
        assert_eq!(a.state, state, "{path}: {}", a.summary);
    }
}

#[tokio::test]
async fn expect_and_body_checks_agree_with_check_http() {
    let dir = site();
    let server = PyServer::http(dir.path());
    let port = server.port.to_string();
    let base = ["-I", "127.0.0.1", "-p", &port];
    let cases: [(&[&str], &str, State); 4] = [
        (&["-u", "/missing", "-e", "404"], "-u /missing -e 404", State::Ok),
        (&["-u", "/missing", "-e", "200,301"], "-u /missing -e 200,301", State::Critical),
        (&["-u", "/health.txt", "-s", "all bad"], "-u /health.txt -s 'all bad'", State::Critical),
        (
            &["-u", "/health.txt", "-r", "^status: (up|ok)$"],
            "-u /health.txt -r '^status: (up|ok)$'",
            State::Critical,
        ),
    ];
    for (extra, theirs, state) in cases {
        let args: Vec<&str> = base.iter().chain(extra).copied().collect();
        let (a, _) = twins(&args, &format!("check_http {} {theirs}", base.join(" "))).await;
        assert_eq!(a.state, state, "{extra:?}: {}", a.summary);
    }
    let found = ours("http", &[&base[..], &["-u", "/health.txt", "-r", "^status: all"]].concat());
    assert_eq!(found.state, State::Ok, "{}", found.summary);
}

#[tokio::test]
async fn redirects_are_followed_with_f_follow_as_in_check_http() {
    let dir = site();
    let server = PyServer::http(dir.path());
    let port = server.port.to_string();
    let args =
        ["-I", "127.0.0.1", "-p", &port, "-u", "/redirect", "-f", "follow", "-s", "all good"];
    let (a, _) =
        twins(&args, &format!("check_http {}", args.join(" ").replace("all good", "'all good'")))
            .await;
    assert_eq!(a.state, State::Ok);
    assert!(a.summary.starts_with("HTTP OK: HTTP/1.0 200 OK - "), "{}", a.summary);
    let args = ["-I", "127.0.0.1", "-p", &port, "-u", "/redirect", "-f", "critical"];
    let (a, _) = twins(&args, &format!("check_http {}", args.join(" "))).await;
    assert_eq!(a.state, State::Critical);
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_as_in_check_http() {
    let (_listener, port) = silent_port();
    let port = port.to_string();
    let args = ["-I", "127.0.0.1", "-p", &port, "-t", "1"];
    let theirs = format!("check_http {}", args.join(" "));
    let owned: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
    let ours =
        tokio::task::spawn_blocking(move || BuiltinCheck::from_args("http", &owned).unwrap().run());
    let (a, b) = (ours.await.unwrap(), plugin(&theirs).await);
    assert_eq!((a.state, b.state), (State::Critical, State::Critical), "{a:?}\n{b:?}");
    assert_eq!(a.summary, "CRITICAL - Socket timeout after 1 seconds");
    assert_eq!(a.summary, b.summary);
}

#[tokio::test]
async fn a_closed_port_is_critical_in_the_same_words() {
    let port = closed_port().to_string();
    let args = ["-I", "127.0.0.1", "-p", &port];
    let (a, _) = twins(&args, &format!("check_http {}", args.join(" "))).await;
    assert_eq!(a.state, State::Critical);
    assert_eq!(
        a.summary,
        format!("connect to address 127.0.0.1 and port {port}: Connection refused")
    );
}

#[tokio::test]
async fn https_with_the_test_ca_is_ok_like_check_http() {
    let dir = site();
    let pki = Pki::new(dir.path());
    let leaf = pki.leaf("leaf", in_days(90));
    let server = PyServer::https(dir.path(), &leaf.cert, &leaf.key);
    let port = server.port.to_string();
    let ca = pki.ca.to_str().unwrap();
    let args =
        ["-I", "127.0.0.1", "-H", "localhost", "-p", &port, "-S", "--sni", "-u", "/health.txt"];
    let (a, b) = (
        ours("http", &[&args[..], &["--ca-file", ca]].concat()),
        plugin(&format!("check_http {}", args.join(" "))).await,
    );
    assert_eq!((a.state, b.state), (State::Ok, State::Ok), "{a:?}\n{b:?}");
    assert_eq!(shape(&a.summary), shape(&b.summary));
    assert!(item(&a, "time_ssl").value.unwrap() > 0.0);
}

#[tokio::test]
async fn an_unknown_ca_a_wrong_name_and_an_expired_certificate_are_critical() {
    let dir = site();
    let pki = Pki::new(dir.path());
    let good = pki.leaf("good", in_days(90));
    let server = PyServer::https(dir.path(), &good.cert, &good.key);
    let port = server.port.to_string();
    let ca = pki.ca.to_str().unwrap();

    let unknown = ours("http", &["-I", "127.0.0.1", "-H", "localhost", "-p", &port, "-S"]);
    assert_eq!(unknown.state, State::Critical);
    assert_eq!(
        unknown.summary,
        format!(
            "HTTP CRITICAL - 127.0.0.1 port {port}: invalid certificate: issued by an unknown CA \
             (UnknownIssuer): no trusted root signs its chain"
        )
    );

    let wrong = ours(
        "http",
        &["-I", "127.0.0.1", "-H", "wrong.example", "-p", &port, "-S", "--ca-file", ca],
    );
    assert_eq!(wrong.state, State::Critical);
    assert_eq!(
        wrong.summary,
        format!(
            "HTTP CRITICAL - 127.0.0.1 port {port}: invalid certificate: certificate not valid for \
             name \"wrong.example\"; certificate is only valid for DnsName(\"localhost\") or \
             IpAddress(127.0.0.1)"
        )
    );

    let expired = pki.leaf("expired", in_days(-3));
    let old = PyServer::https(dir.path(), &expired.cert, &expired.key);
    let port = old.port.to_string();
    let result =
        ours("http", &["-I", "127.0.0.1", "-H", "localhost", "-p", &port, "-S", "--ca-file", ca]);
    assert_eq!(result.state, State::Critical);
    assert!(result.summary.contains("invalid certificate: expired on "), "{}", result.summary);

    // The same for builtin:tcp -S.
    let tcp = ours("tcp", &["-H", "127.0.0.1", "-p", &server.port.to_string(), "-S"]);
    assert_eq!(tcp.state, State::Critical);
    assert!(tcp.summary.contains("issued by an unknown CA (UnknownIssuer)"), "{}", tcp.summary);
}

#[tokio::test]
async fn certificate_expiry_follows_check_http() {
    let dir = site();
    let pki = Pki::new(dir.path());
    let ca = pki.ca.to_str().unwrap();
    let soon = pki.leaf("soon", in_days(5));
    let soon_server = PyServer::https(dir.path(), &soon.cert, &soon.key);
    let later = pki.leaf("later", in_days(90));
    let later_server = PyServer::https(dir.path(), &later.cert, &later.key);

    for (server, days, state) in [
        (&soon_server, "30,7", State::Critical),
        (&soon_server, "30,3", State::Warning),
        (&later_server, "30,7", State::Ok),
    ] {
        let port = server.port.to_string();
        let args = ["-I", "127.0.0.1", "-H", "localhost", "-p", &port, "-C", days];
        let a = ours("http", &[&args[..], &["--ca-file", ca]].concat());
        let b = plugin(&format!("check_http {} --sni", args.join(" "))).await;
        assert_eq!((a.state, b.state), (state, state), "-C {days}\nours {a:?}\ntheirs {b:?}");
        // check_http writes the date in local time, we in UTC: the whole
        // summary agrees when the machine runs on UTC, the words before
        // the date always.
        if b.summary.contains("+0000") {
            assert_eq!(a.summary, b.summary);
        }
        let until_date = |summary: &str| {
            summary.split(" (").next().unwrap().split(" on ").next().unwrap().to_owned()
        };
        assert_eq!(until_date(&a.summary), until_date(&b.summary), "ours {a:?}\ntheirs {b:?}");
    }
    let port = soon_server.port.to_string();
    let tcp = ours("tcp", &["-H", "127.0.0.1", "-p", &port, "-D", "30,3", "--ca-file", ca]);
    assert_eq!(tcp.state, State::Warning, "{}", tcp.summary);
    assert!(
        tcp.summary.starts_with("WARNING - Certificate 'localhost' expires in 5 day(s)"),
        "{}",
        tcp.summary
    );
}

#[tokio::test]
async fn tcp_with_tls_is_ok_like_check_tcp() {
    let dir = site();
    let pki = Pki::new(dir.path());
    let leaf = pki.leaf("leaf", in_days(90));
    let server = PyServer::https(dir.path(), &leaf.cert, &leaf.key);
    let port = server.port.to_string();
    let ca = pki.ca.to_str().unwrap();
    let args = ["-H", "127.0.0.1", "-p", &port, "-S", "-w", "5", "-c", "9"];
    let a = ours("tcp", &[&args[..], &["--ca-file", ca]].concat());
    let b = plugin(&format!("check_tcp {}", args.join(" "))).await;
    assert_eq!((a.state, b.state), (State::Ok, State::Ok), "{a:?}\n{b:?}");
    let tail = format!("second response time on 127.0.0.1 port {port}");
    assert!(a.summary.ends_with(&tail) && b.summary.ends_with(&tail), "{a:?}\n{b:?}");
    assert!(item(&a, "time_ssl").value.unwrap() > 0.0);
    // --sni names what the certificate must carry.
    let named =
        ours("tcp", &["-H", "127.0.0.1", "-p", &port, "--sni", "localhost", "--ca-file", ca]);
    assert_eq!(named.state, State::Ok, "{}", named.summary);
    let wrong =
        ours("tcp", &["-H", "127.0.0.1", "-p", &port, "--sni", "other.example", "--ca-file", ca]);
    assert_eq!(wrong.state, State::Critical, "{}", wrong.summary);
}
