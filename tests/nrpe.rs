//! `[nrpe]` against the real `check_nrpe` (Debian's nagios-nrpe-plugin) on
//! 127.0.0.1: protocol versions 2, 3 and 4, plain and over TLS with client
//! certificates, commands and configured checks, arguments, allowed_hosts,
//! reloads, malformed packets sent over raw TCP; and `monchero import nrpe`.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use monchero_core::nrpe::{Packet, Version};
use rustix::process::Signal;

use crate::daemon::{Agent, Setup, quiet};
use crate::pull::Pki;
use crate::util::monchero;

const CHECK_NRPE: &str = "/usr/lib/nagios/plugins/check_nrpe";

/// An agent with `[nrpe]` on a port the system picked.
struct Nrpe {
    setup: Setup,
    agent: Agent,
    address: SocketAddr,
}

impl Nrpe {
    /// Starts an agent with the check `web` (the Setup's plugin) and `nrpe`,
    /// the body of its `[nrpe]` table (listen is added), followed by
    /// `commands`.
    fn start(setup: Setup, web: &str, nrpe: &str, commands: &str) -> Nrpe {
        let config = write_config(&setup, web, nrpe, commands);
        let agent = Agent::start(&config, setup.dir());
        let address = wait_for_log(&agent, "NRPE listening.")
            .split("address=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|address| address.parse().ok())
            .unwrap();
        Nrpe { setup, agent, address }
    }

    /// `check_nrpe -H 127.0.0.1 -p PORT ARGS...`: (exit status, stdout).
    fn check_nrpe(&self, args: &[&str]) -> (i32, String) {
        let output = Command::new(CHECK_NRPE)
            .args(["-H", "127.0.0.1", "-p", &self.address.port().to_string(), "-t", "20"])
            .args(args)
            .output()
            .expect("check_nrpe (Debian package nagios-nrpe-plugin) must be installed");
        (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Sends `bytes` over a fresh connection, half-closes, and returns what
    /// came back before the agent closed the connection. The agent may
    /// close (even reset) before it has everything: refusing at the header
    /// is the point, so errors writing and reading count as no answer.
    fn raw(&self, bytes: &[u8]) -> Vec<u8> {
        let mut stream = TcpStream::connect(self.address).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let _ = stream.write_all(bytes);
        let _ = stream.shutdown(Shutdown::Write);
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        answer
    }

    fn dir(&self) -> &Path {
        self.setup.dir()
    }
}

fn write_config(setup: &Setup, web: &str, nrpe: &str, commands: &str) -> PathBuf {
    let extra = format!("[nrpe]\nlisten = \"127.0.0.1:0\"\n{nrpe}\n{commands}");
    setup.config(&[web], &extra)
}

/// The last log line holding `text`, waiting up to 10 s for it.
fn wait_for_log(agent: &Agent, text: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = agent.log_text();
        if let Some(line) = log.lines().rfind(|line| line.contains(text)) {
            return line.to_owned();
        }
        assert!(Instant::now() < deadline, "no {text:?} in the log:\n{log}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Commands `code0`..`code3`, each printing a summary with perfdata and a
/// long output line, and exiting with its number.
fn state_commands(setup: &Setup) -> String {
    let mut commands = String::new();
    for code in 0..=3 {
        let name = format!("code{code}");
        let script = setup.plugins.script(
            &name,
            &format!(
                "echo 'STATE {code} | value={code}ms;1;2;0;'\necho 'detail {code}'\nexit {code}"
            ),
        );
        commands.push_str(&format!(
            "[[nrpe.command]]\nname = \"{name}\"\ncommand = \"{}\"\n\n",
            script.display()
        ));
    }
    commands
}

#[test]
fn check_nrpe_gets_output_and_state_in_every_protocol_version() {
    let setup = Setup::new();
    let web = quiet("web");
    let commands = state_commands(&setup);
    let nrpe = Nrpe::start(setup, &web, "tls = false\n", &commands);

    for (flag, version) in [("-2", 2), ("-3", 3), ("-4", 4)] {
        for code in 0..=3 {
            let command = format!("code{code}");
            let (exit, stdout) = nrpe.check_nrpe(&["-n", flag, "-c", &command]);
            assert_eq!(
                (exit, stdout.as_str()),
                (code, format!("STATE {code} | value={code}ms;1;2;0\ndetail {code}\n").as_str()),
                "check_nrpe {flag} -c {command}"
            );
            let answered = wait_for_log(&nrpe.agent, &format!("command={command}"));
            assert!(answered.contains(&format!("version={version}")), "{answered}");
        }
    }

    let (exit, stdout) = nrpe.check_nrpe(&["-n"]);
    assert_eq!(exit, 0);
    assert!(stdout.starts_with("NRPE v4.1.0 (Monchero "), "{stdout}");

    let (exit, stdout) = nrpe.check_nrpe(&["-n", "-c", "check_nothing"]);
    assert_eq!((exit, stdout.as_str()), (3, "NRPE: Command 'check_nothing' not defined\n"));

    let (exit, stdout) = nrpe.check_nrpe(&["-n", "-c", "code1", "-a", "x"]);
    assert_eq!(exit, 3);
    assert!(stdout.contains("arguments, and allow_arguments is off"), "{stdout}");
}

#[test]
fn a_configured_check_runs_now_through_the_daemon() {
    let setup = Setup::new();
    let web = quiet("web");
    let nrpe = Nrpe::start(setup, &web, "tls = false\n", "");
    for code in [2, 0] {
        nrpe.setup.set_code(code);
        let (exit, stdout) = nrpe.check_nrpe(&["-n", "-c", &web]);
        assert_eq!(
            (exit, stdout),
            (i32::from(code), format!("state from file: {code} | v={code};1;2\n"))
        );
    }
    let (status, _) = nrpe.agent.status();
    let check = crate::daemon::check(&status, &web);
    assert_eq!(check["summary"], "state from file: 0", "the daemon kept the fresh result");
    assert!(!check["last_check"].is_null());
}

#[test]
fn arguments_are_whole_words_when_allowed_and_nasty_ones_are_refused() {
    let setup = Setup::new();
    let web = quiet("web");
    let script = setup.plugins.script(
        "echo_args",
        "printf 'ARGS %s:' \"$#\"; for a in \"$@\"; do printf ' [%s]' \"$a\"; done; echo",
    );
    let commands = format!(
        "[[nrpe.command]]\nname = \"echo_args\"\ncommand = \"{} -w $ARG1$ --label=$ARG2$ $ARG3$\"\n",
        script.display()
    );
    let nrpe = Nrpe::start(setup, &web, "tls = false\nallow_arguments = true\n", &commands);

    let (exit, stdout) = nrpe.check_nrpe(&["-n", "-c", "echo_args", "-a", "two words", "$HOME *"]);
    assert_eq!(
        (exit, stdout.as_str()),
        (0, "ARGS 3: [-w] [two words] [--label=$HOME *]\n"),
        "no splitting, no expansion, and an unset $ARG3$ alone is dropped"
    );
    for nasty in ["a;reboot", "`id`", "x|y", "$(id)"] {
        let (exit, stdout) = nrpe.check_nrpe(&["-n", "-c", "echo_args", "-a", nasty]);
        assert_eq!(exit, 3, "{nasty}: {stdout}");
        assert!(stdout.starts_with("NRPE: request refused: "), "{nasty}: {stdout}");
    }
    wait_for_log(&nrpe.agent, "NRPE query refused.");
}

#[test]
fn tls_with_client_certificates_from_the_ca_only() {
    let setup = Setup::new();
    let web = quiet("web");
    let pki = Pki::new(setup.dir(), "ca");
    pki.issue("agent", true, false);
    pki.issue("nagios", false, false);
    Pki::new(setup.dir(), "other").issue("intruder", false, false);
    let commands = state_commands(&setup);
    let tls = "cert = \"agent.pem\"\nkey = \"agent.key\"\nclient_ca = \"ca-ca.pem\"\n";
    let nrpe = Nrpe::start(setup, &web, tls, &commands);
    let file = |name: &str| nrpe.dir().join(name).display().to_string();
    let (ca, cert, key) = (file("ca-ca.pem"), file("nagios.pem"), file("nagios.key"));

    for flag in ["-2", "-4"] {
        let (exit, stdout) =
            nrpe.check_nrpe(&[flag, "-A", &ca, "-C", &cert, "-K", &key, "-c", "code2"]);
        assert_eq!((exit, stdout.as_str()), (2, "STATE 2 | value=2ms;1;2;0\ndetail 2\n"));
    }
    let (exit, stdout) = nrpe.check_nrpe(&["-A", &ca, "-C", &cert, "-K", &key]);
    assert_eq!(exit, 0);
    assert!(stdout.starts_with("NRPE v4.1.0 (Monchero "), "{stdout}");

    let (exit, stdout) = nrpe.check_nrpe(&["-A", &ca, "-c", "code0"]);
    assert_eq!(exit, 3, "no client certificate: {stdout}");
    assert!(wait_for_log(&nrpe.agent, "NRPE TLS handshake refused.").contains("no certificates"));
    let (intruder, intruder_key) = (file("intruder.pem"), file("intruder.key"));
    let (exit, stdout) =
        nrpe.check_nrpe(&["-A", &ca, "-C", &intruder, "-K", &intruder_key, "-c", "code0"]);
    assert_eq!(exit, 3, "a certificate from another CA: {stdout}");
    let (exit, stdout) = nrpe.check_nrpe(&["-n", "-c", "code0"]);
    assert_eq!(exit, 3, "plain text on a TLS listener: {stdout}");
}

/// A v4 query for `text` with its bytes changed by `damage`.
fn damaged(text: &str, damage: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut bytes = Packet::query(Version::V4, text).encode();
    damage(&mut bytes);
    bytes
}

#[test]
fn refused_hosts_and_malformed_packets_are_logged_and_the_listener_keeps_serving() {
    let setup = Setup::new();
    let web = quiet("web");
    let commands = state_commands(&setup);
    let refusing = "tls = false\nallowed_hosts = [\"127.0.0.2\"]\nconnection_timeout = \"1s\"\n";
    let nrpe = Nrpe::start(setup, &web, refusing, &commands);

    let (exit, stdout) = nrpe.check_nrpe(&["-n", "-c", "code0"]);
    assert_eq!(exit, 3, "{stdout}");
    let refused = wait_for_log(&nrpe.agent, "not in allowed_hosts");
    assert!(refused.contains("peer=127.0.0.1:"), "{refused}");

    // A reload lets this host in, on the same listener, with a new command.
    let allowing = "tls = false\nallowed_hosts = [\"127.0.0.2\", \"127.0.0.0/8\"]\n\
                    connection_timeout = \"1s\"\n";
    let added =
        format!("{commands}[[nrpe.command]]\nname = \"added\"\ncommand = \"/bin/echo ADDED\"\n");
    write_config(&nrpe.setup, &web, allowing, &added);
    nrpe.agent.signal(Signal::HUP);
    wait_for_log(&nrpe.agent, "NRPE reloaded");
    assert_eq!(nrpe.check_nrpe(&["-n", "-c", "code0"]).0, 0);
    assert_eq!(nrpe.check_nrpe(&["-n", "-c", "added"]), (0, "ADDED\n".to_owned()));

    let header = |length: i32| {
        let mut bytes = vec![0, 4, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        bytes.extend_from_slice(&length.to_be_bytes());
        bytes
    };
    let cases: [(&str, Vec<u8>, &str); 5] = [
        ("bad CRC", damaged("code0", |bytes| bytes[20] ^= 1), "CRC32 mismatch"),
        ("too short", vec![0, 2, 0, 1, 0], "less than a packet header"),
        ("absurd buffer_length", header(0x7fff_ffff), "buffer length 2147483647 is out of bounds"),
        ("garbage", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".repeat(40), "is not supported"),
        ("truncated", damaged("code0", |bytes| bytes.truncate(18)), "less than the 22 bytes"),
    ];
    for (what, bytes, reason) in cases {
        assert!(nrpe.raw(&bytes).is_empty(), "{what}: closed without an answer");
        let logged = wait_for_log(&nrpe.agent, reason);
        assert!(logged.contains("NRPE request refused.") && logged.contains("peer=127.0.0.1:"));
        let (exit, stdout) = nrpe.check_nrpe(&["-n", "-c", "code1"]);
        assert_eq!(
            (exit, stdout.as_str()),
            (1, "STATE 1 | value=1ms;1;2;0\ndetail 1\n"),
            "after {what}"
        );
    }

    // A client that connects and sends nothing is let go after
    // connection_timeout; the others are served meanwhile.
    let mut silent = TcpStream::connect(nrpe.address).unwrap();
    assert_eq!(nrpe.check_nrpe(&["-n", "-c", "code2"]).0, 2);
    silent.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut answer = Vec::new();
    silent.read_to_end(&mut answer).unwrap();
    assert!(answer.is_empty());
    assert!(wait_for_log(&nrpe.agent, "no complete query within 1s").contains("peer=127.0.0.1:"));
    assert_eq!(nrpe.check_nrpe(&["-n", "-c", "code3"]).0, 3);
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/nrpe").join(name)
}

#[test]
fn import_nrpe_converts_an_nrpe_cfg_that_config_check_accepts() {
    let output = monchero().args(["import", "nrpe"]).arg(fixture("nrpe.cfg")).output().unwrap();
    let (stdout, stderr) =
        (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    for expected in [
        "listen = [\"127.0.0.1:5666\"]\n",
        "allowed_hosts = [\"127.0.0.1\", \"::1\", \"10.20.0.0/16\"]\n",
        "tls = false\n",
        "allow_arguments = true\n",
        "command_timeout = \"60s\"\nconnection_timeout = \"300s\"\n",
        "name = \"check_disk\"\ncommand = \"/usr/lib/nagios/plugins/check_disk -w $ARG1$ -c $ARG2$ -p $ARG3$\"\n",
        "name = \"check_load\"\ncommand = \"/usr/lib/nagios/plugins/check_load -w 8,6,4 -c 12,10,8\"\n",
        "name = \"check_mysql\"\n",
    ] {
        assert!(stdout.contains(expected), "{expected:?} missing from:\n{stdout}");
    }
    let cfg = fixture("nrpe.cfg").display().to_string();
    for expected in [
        format!("{cfg}:7: log_facility is not converted"),
        format!("{cfg}:24: ssl_version is not converted"),
        "\"nagios.example.org\" is a host name".to_owned(),
        "nrpe_local.cfg:2: command[check_load] replaces the one at".to_owned(),
        "mysql.cfg:2: command[check_mysql_slow] uses the shell's \"|\"".to_owned(),
        format!("{cfg}:26: ssl_client_certs=2 is not converted"),
    ] {
        assert!(stderr.contains(&expected), "{expected:?} missing from:\n{stderr}");
    }

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.toml");
    std::fs::write(&config, format!("[agent]\nstate_dir = \"state\"\n\n{stdout}")).unwrap();
    let check = monchero().args(["config", "check", "--config"]).arg(&config).output().unwrap();
    assert_eq!(check.status.code(), Some(0), "{}", String::from_utf8_lossy(&check.stderr));

    let broken = dir.path().join("nrpe.cfg");
    std::fs::write(&broken, "server_port=5666\ncommand_timeout=soon\n").unwrap();
    let output = monchero().args(["import", "nrpe"]).arg(&broken).output().unwrap();
    assert_eq!(output.status.code(), Some(78));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        format!(
            "{}:2: command_timeout=soon must be a number of seconds above 0\n",
            broken.display()
        )
    );
}
