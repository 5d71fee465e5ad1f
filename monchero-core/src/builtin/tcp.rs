//! `builtin:tcp -H HOST -p PORT [-s SEND] [-e EXPECT] [-w SECONDS]
//! [-c SECONDS] [-t SECONDS] [-S] [--sni NAME] [-D DAYS[,DAYS]]
//! [--ca-file PEM]`: a TCP connection, like `check_tcp`, whose options
//! these are.
//!
//! - `-H`/`-p`: where to connect (`--hostname`, `--port`); a name resolves
//!   to every address it has, tried in order.
//! - `-s SEND`: a string to send once connected (`--send`).
//! - `-e EXPECT`: a string the first answer must contain (`--expect`); an
//!   answer without it is WARNING, as `check_tcp` does by default.
//! - `-w`/`-c SECONDS`: response time limits (`--warning`, `--critical`).
//! - `-t SECONDS`: give up after this long (`--timeout`), default 10 as in
//!   `check_tcp`: CRITICAL `Socket timeout after 10 seconds`.
//! - `-S`: TLS (`--ssl`); the chain is verified against the system's CAs,
//!   or only those in `--ca-file PEM`, and the certificate must carry
//!   `--sni NAME` (default `-H`), which is also sent as SNI. A refused
//!   chain is CRITICAL, naming why.
//! - `-D DAYS_WARN[,DAYS_CRIT]`: certificate expiry, as `check_tcp -D`
//!   (implies `-S`); a certificate within those days is the result, in
//!   `check_tcp`'s words, and the connection stops there.
//!
//! Summary and perfdata are `check_tcp`'s: `TCP OK - 0.000 second response
//! time on 127.0.0.1 port 22 [SSH-2.0-OpenSSH_9.2p1] | time=0.000123s;;;0;10`.
//! A refused connection is CRITICAL with the same text `check_tcp` prints
//! (`connect to address 127.0.0.1 and port 1: Connection refused`); a name
//! that does not resolve is UNKNOWN.
//! With TLS the perfdata adds `time_connect` and `time_ssl` (the
//! handshake), as `check_http -E` names them.

use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::args::{Command, Spec, parse_port, parse_seconds};
use super::conn::{self, Failure, Stream, Target, Timings, TlsTarget, phase};
use super::tls::{ExpiryDays, unix_now};
use super::{BuiltinError, Outcome, perf};
use crate::state::State;

pub(super) const NAME: &str = "tcp";
pub(super) const USAGE: &str = "builtin:tcp -H HOST -p PORT [-s SEND] [-e EXPECT] [-w SECONDS] \
     [-c SECONDS] [-t SECONDS] [-S] [--sni NAME] [-D DAYS_WARN[,DAYS_CRIT]] [--ca-file PEM]";
const PREFIX: &str = "TCP";
const COMMAND: Command = Command {
    name: NAME,
    usage: USAGE,
    specs: &[
        Spec::value('H', "hostname"),
        Spec::value('p', "port"),
        Spec::value('s', "send"),
        Spec::value('e', "expect"),
        Spec::value('w', "warning"),
        Spec::value('c', "critical"),
        Spec::value('t', "timeout"),
        Spec::flag('S', "ssl"),
        Spec::long_value(SNI, "sni"),
        Spec::value('D', "certificate"),
        Spec::long_value(CA_FILE, "ca-file"),
    ],
};
/// Keys of the options without a letter.
const SNI: char = '\u{1}';
const CA_FILE: char = '\u{2}';

/// `check_tcp`'s default timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The most of an answer read while looking for `-e`.
const ANSWER_LIMIT: usize = 4096;

/// A parsed `builtin:tcp`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Tcp {
    host: String,
    port: u16,
    send: Option<String>,
    expect: Option<String>,
    warning: Option<f64>,
    critical: Option<f64>,
    timeout: Duration,
    tls: Option<Tls>,
}

/// `-S` and what goes with it.
#[derive(Debug, Clone, PartialEq)]
struct Tls {
    /// `--sni`, else `-H`.
    name: String,
    ca_file: Option<PathBuf>,
    expiry: Option<ExpiryDays>,
}

/// What the connection did.
#[derive(Debug, Clone, PartialEq)]
enum Probe {
    Failed(Failure),
    /// A leaf certificate within `-D`, or unreadable: the result, before
    /// anything is sent.
    Certificate(State, String),
    /// Connected (and, with `-s`/`-e`, exchanged) in `elapsed`; `answer` is
    /// what was read back, if anything was expected; `certificate` is the
    /// `-D` verdict when it passed.
    Answered {
        elapsed: Duration,
        timings: Timings,
        answer: Option<String>,
        certificate: Option<String>,
    },
}

impl Tcp {
    pub(super) fn parse(args: &[String]) -> Result<Tcp, BuiltinError> {
        let (mut host, mut port, mut send, mut expect) = (None, None, None, None);
        let (mut warning, mut critical, mut timeout) = (None, None, None);
        let (mut ssl, mut sni, mut expiry, mut ca_file) = (false, None, None, None);
        for opt in COMMAND.parse(args)? {
            match opt.short {
                'S' => ssl = true,
                SNI => COMMAND.set_once(&mut sni, opt, |text| Ok(text.to_owned()))?,
                'D' => COMMAND.set_once(&mut expiry, opt, ExpiryDays::parse)?,
                CA_FILE => COMMAND.set_once(&mut ca_file, opt, |text| Ok(PathBuf::from(text)))?,
                'H' => COMMAND.set_once(&mut host, opt, |text| Ok(text.to_owned()))?,
                'p' => COMMAND.set_once(&mut port, opt, parse_port)?,
                's' => COMMAND.set_once(&mut send, opt, |text| Ok(text.to_owned()))?,
                'e' => COMMAND.set_once(&mut expect, opt, |text| Ok(text.to_owned()))?,
                'w' => COMMAND.set_once(&mut warning, opt, parse_seconds)?,
                'c' => COMMAND.set_once(&mut critical, opt, parse_seconds)?,
                _ => COMMAND.set_once(&mut timeout, opt, parse_seconds)?,
            }
        }
        let Some(host) = host else {
            return Err(COMMAND.missing_option("-H HOST is required: the host to connect to"));
        };
        let Some(port) = port else {
            return Err(COMMAND.missing_option("-p PORT is required: the port to connect to"));
        };
        if let (Some(warning), Some(critical)) = (warning, critical) {
            if warning > critical {
                return Err(COMMAND.conflict(format!(
                    "-w {warning} is above -c {critical}: the warning time must be the lower one"
                )));
            }
        }
        let timeout = timeout.map_or(DEFAULT_TIMEOUT, Duration::from_secs_f64);
        let tls = (ssl || expiry.is_some() || sni.is_some() || ca_file.is_some()).then(|| Tls {
            name: sni.unwrap_or_else(|| host.clone()),
            ca_file,
            expiry,
        });
        Ok(Tcp { host, port, send, expect, warning, critical, timeout, tls })
    }

    pub(super) fn run(&self) -> Outcome {
        self.evaluate(self.probe())
    }

    fn probe(&self) -> Probe {
        let started = Instant::now();
        let deadline = started + self.timeout;
        let tls = self
            .tls
            .as_ref()
            .map(|tls| TlsTarget { name: &tls.name, ca_file: tls.ca_file.as_deref() });
        let target = Target { host: &self.host, port: self.port, tls };
        let (mut stream, timings) = match conn::open(&target, deadline) {
            Ok(opened) => opened,
            Err(failure) => return Probe::Failed(failure),
        };
        let certificate = match (self.tls.as_ref().and_then(|tls| tls.expiry), stream.leaf()) {
            (Some(days), Some(leaf)) => match leaf {
                Ok(leaf) => match days.evaluate(&leaf, unix_now()) {
                    (State::Ok, text) => Some(text),
                    (state, text) => return Probe::Certificate(state, text),
                },
                Err(text) => {
                    return Probe::Certificate(State::Critical, format!("CRITICAL - {text}"));
                }
            },
            _ => None,
        };
        match self.exchange(&mut stream, deadline) {
            Ok(answer) => {
                Probe::Answered { elapsed: started.elapsed(), timings, answer, certificate }
            }
            Err(failure) => Probe::Failed(failure),
        }
    }

    /// Sends `-s`, reads until `-e` shows up, the peer closes, or time is up.
    fn exchange(&self, stream: &mut Stream, deadline: Instant) -> Result<Option<String>, Failure> {
        if let Some(send) = &self.send {
            if stream.write_before(send.as_bytes(), deadline).is_err() {
                return Ok(Some(String::new()));
            }
        }
        let Some(expect) = &self.expect else {
            return Ok(None);
        };
        let mut answer = Vec::new();
        let mut chunk = [0u8; 1024];
        while answer.len() < ANSWER_LIMIT {
            match stream.read_before(&mut chunk, deadline) {
                Ok(0) => break,
                Ok(n) => answer.extend_from_slice(&chunk[..n]),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) if conn::is_timeout(&error) && answer.is_empty() => {
                    return Err(Failure::TimedOut);
                }
                Err(_) => break,
            }
            if String::from_utf8_lossy(&answer).contains(expect.as_str()) {
                break;
            }
        }
        Ok(Some(String::from_utf8_lossy(&answer).into_owned()))
    }

    fn evaluate(&self, probe: Probe) -> Outcome {
        let (host, port) = (&self.host, self.port);
        let (elapsed, timings, answer, certificate) = match probe {
            Probe::Failed(failure) => return self.failed(failure),
            Probe::Certificate(state, text) => return Outcome::with_summary(state, text),
            Probe::Answered { elapsed, timings, answer, certificate } => {
                (elapsed.as_secs_f64(), timings, answer, certificate)
            }
        };
        let first_line = answer.as_deref().map(|answer| answer.lines().next().unwrap_or("").trim());
        let unexpected = match (&self.expect, &answer) {
            (Some(expect), Some(answer)) => !answer.contains(expect.as_str()),
            _ => false,
        };
        let state = if unexpected {
            State::Warning
        } else if self.critical.is_some_and(|limit| elapsed > limit) {
            State::Critical
        } else if self.warning.is_some_and(|limit| elapsed > limit) {
            State::Warning
        } else {
            State::Ok
        };
        let mut outcome = if unexpected {
            let text =
                format!("Unexpected response from host/socket: {}", first_line.unwrap_or(""));
            Outcome::new(PREFIX, state, text)
        } else {
            let text = format!("{elapsed:.3} second response time on {host} port {port}");
            match first_line.filter(|line| !line.is_empty()) {
                Some(line) => Outcome::new(PREFIX, state, format!("{text} [{line}]")),
                None => Outcome::new(PREFIX, state, text),
            }
        };
        let limits = (self.warning.map(|w| w.to_string()), self.critical.map(|c| c.to_string()));
        let max = Some(self.timeout.as_secs_f64());
        outcome.perfdata.push(perf("time", elapsed, "s", limits, Some(0.0), max));
        if let Some(handshake) = timings.tls {
            outcome.perfdata.push(phase("time_connect", timings.connect));
            outcome.perfdata.push(phase("time_ssl", handshake));
        }
        if let Some(text) = certificate {
            outcome.long_output = text;
        }
        outcome
    }

    /// A connection that did not come about, in `check_tcp`'s words where
    /// it has some.
    fn failed(&self, failure: Failure) -> Outcome {
        let (host, port) = (&self.host, self.port);
        match failure {
            Failure::Unresolved(error) => {
                Outcome::unknown(PREFIX, format!("cannot resolve {host}: {error}"))
            }
            Failure::Refused { address, error } => {
                let text = format!("connect to address {address} and port {port}: {error}");
                Outcome::with_summary(State::Critical, text)
            }
            Failure::TimedOut => {
                let text = format!("Socket timeout after {} seconds", self.timeout.as_secs_f64());
                Outcome::with_summary(State::Critical, format!("CRITICAL - {text}"))
            }
            Failure::TlsSetup(text) => Outcome::unknown(PREFIX, text),
            Failure::TlsRefused(text) => {
                Outcome::new(PREFIX, State::Critical, format!("{host} port {port}: {text}"))
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::Write;
    use std::net::{Ipv4Addr, TcpListener};

    use super::*;
    use crate::builtin::BuiltinErrorKind;
    use crate::builtin::test_util::{rendered, words};

    fn tcp(args: &[&str]) -> Result<Tcp, BuiltinError> {
        Tcp::parse(&words(args))
    }

    /// A listener on a free loopback port that greets each connection.
    fn server(greeting: &'static str) -> u16 {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let _ = stream.write_all(greeting.as_bytes());
            }
        });
        port
    }

    #[test]
    fn options_are_validated_when_the_config_is_read() {
        let error = tcp(&["-p", "22"]).unwrap_err();
        assert_eq!(error.kind(), BuiltinErrorKind::MissingOption);
        assert!(
            tcp(&["-H", "h", "-p", "0"]).unwrap_err().to_string().contains("not a port number")
        );
        assert!(tcp(&["-H", "h", "-p", "22", "-w", "-1"]).is_err());
        let error = tcp(&["-H", "h", "-p", "22", "-w", "5", "-c", "1"]).unwrap_err();
        assert_eq!(error.kind(), BuiltinErrorKind::ConflictingThresholds);
    }

    #[test]
    fn a_listening_port_is_ok_with_check_tcps_summary_and_perfdata() {
        let port = server("SSH-2.0-Test\r\n");
        let port_text = port.to_string();
        let check = tcp(&["-H", "127.0.0.1", "-p", &port_text, "-w", "5", "-c", "9"]).unwrap();
        let outcome = check.run();
        assert_eq!(outcome.state, State::Ok);
        let expected = format!("second response time on 127.0.0.1 port {port}");
        assert!(outcome.summary.starts_with("TCP OK - "), "{}", outcome.summary);
        assert!(outcome.summary.ends_with(&expected), "{}", outcome.summary);
        let perf = &outcome.perfdata[0];
        assert_eq!((perf.label.as_str(), perf.uom.as_deref()), ("time", Some("s")));
        assert_eq!((perf.warn.as_deref(), perf.crit.as_deref()), (Some("5"), Some("9")));
        assert_eq!((perf.min, perf.max), (Some(0.0), Some(10.0)));
    }

    #[test]
    fn expect_shows_the_answer_and_warns_when_it_is_not_there() {
        let port = server("SSH-2.0-Test\r\n").to_string();
        let good = tcp(&["-H", "127.0.0.1", "-p", &port, "-e", "SSH-2.0"]).unwrap().run();
        assert_eq!(good.state, State::Ok);
        assert!(good.summary.ends_with("[SSH-2.0-Test]"), "{}", good.summary);
        let bad = tcp(&["-H", "127.0.0.1", "-p", &port, "-e", "220 smtp"]).unwrap().run();
        assert_eq!(bad.state, State::Warning);
        assert_eq!(bad.summary, "TCP WARNING - Unexpected response from host/socket: SSH-2.0-Test");
    }

    #[test]
    fn a_closed_port_is_critical_in_check_tcps_words() {
        let port =
            TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap().local_addr().unwrap().port();
        let outcome = tcp(&["-H", "127.0.0.1", "-p", &port.to_string()]).unwrap().run();
        assert_eq!(outcome.state, State::Critical);
        assert_eq!(
            outcome.summary,
            format!("connect to address 127.0.0.1 and port {port}: Connection refused")
        );
        assert!(rendered(&outcome).is_empty());
    }

    #[test]
    fn a_silent_peer_times_out_when_an_answer_is_expected() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port().to_string();
        // The kernel completes the handshake; nobody ever writes.
        let check = tcp(&["-H", "127.0.0.1", "-p", &port, "-e", "hello", "-t", "0.3"]).unwrap();
        let outcome = check.run();
        assert_eq!(outcome.state, State::Critical);
        assert_eq!(outcome.summary, "CRITICAL - Socket timeout after 0.3 seconds");
        drop(listener);
    }
}
