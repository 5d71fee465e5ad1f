//! `builtin:http` through the real binary: `check-now` against Python's
//! http.server on 127.0.0.1, and a bad option caught by `config check`
//! with the file, line and column.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use crate::util::{monchero, run_json};

/// Python's http.server on a free loopback port, serving `dir`; killed
/// when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(dir: &std::path::Path) -> Server {
        let script = "import functools, http.server, sys\n\
                      class Quiet(http.server.SimpleHTTPRequestHandler):\n    \
                      def log_message(self, *args): pass\n\
                      server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), \
                      functools.partial(Quiet, directory=sys.argv[1]))\n\
                      print(server.server_address[1], flush=True)\n\
                      server.serve_forever()\n";
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(script)
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 is needed for the HTTP server (.ci/run installs it)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line.trim().parse().unwrap_or_else(|_| panic!("no port: {line:?}"));
        Server { child, port }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn check_now_asks_a_loopback_server() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("health.txt"), "status: all good\n").unwrap();
    let server = Server::start(dir.path());
    let port = server.port.to_string();
    let mut cmd = monchero();
    cmd.args(["check-now", "--json", "--", "builtin:http", "-I", "127.0.0.1", "-p", &port]).args([
        "-u",
        "/health.txt",
        "-s",
        "all good",
        "-w",
        "5",
        "-c",
        "9",
    ]);
    let run = run_json(cmd);
    assert_eq!(run.status, 0, "{}", run.json);
    assert_eq!(run.json["state"], "ok");
    let summary = run.json["summary"].as_str().unwrap();
    assert!(summary.starts_with("HTTP OK: HTTP/1.0 200 OK - "), "{summary}");
    let labels: Vec<&str> = run.json["perfdata"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["time", "size", "time_connect", "time_firstbyte"]);

    let mut cmd = monchero();
    cmd.args(["check-now", "--json", "--", "builtin:http", "-I", "127.0.0.1", "-p", &port])
        .args(["-u", "/missing"]);
    let run = run_json(cmd);
    assert_eq!((run.status, &run.json["state"]), (1, &serde_json::json!("warning")));
}

#[test]
fn a_bad_option_is_a_config_error_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.toml");
    let text = format!(
        "[agent]\nstate_dir = '{}'\n\n[[check]]\nname = 'web'\ncommand = \"builtin:http -H localhost -u health\"\n",
        dir.path().join("state").display()
    );
    std::fs::write(&config, text).unwrap();
    let output = monchero().args(["config", "check", "--config"]).arg(&config).output().unwrap();
    assert_eq!(output.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("{}:6:11: ", config.display())), "{stderr}");
    assert!(
        stderr.contains(
            r#"builtin:http: -u: "health" is not a path (write e.g. /health, without spaces)"#
        ),
        "{stderr}"
    );
}
