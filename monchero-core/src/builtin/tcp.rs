//! `builtin:tcp -H HOST -p PORT [-s SEND] [-e EXPECT] [-w SECONDS]
//! [-c SECONDS] [-t SECONDS]`: a TCP connection, like `check_tcp`, whose
//! options these are.
//!
//! - `-H`/`-p`: where to connect (`--hostname`, `--port`); a name resolves
//!   to every address it has, tried in order.
//! - `-s SEND`: a string to send once connected (`--send`).
//! - `-e EXPECT`: a string the first answer must contain (`--expect`); an
//!   answer without it is WARNING, as `check_tcp` does by default.
//! - `-w`/`-c SECONDS`: response time limits (`--warning`, `--critical`).
//! - `-t SECONDS`: give up after this long (`--timeout`), default 10 as in
//!   `check_tcp`: CRITICAL `Socket timeout after 10 seconds`.
//!
//! Summary and perfdata are `check_tcp`'s: `TCP OK - 0.000 second response
//! time on 127.0.0.1 port 22 [SSH-2.0-OpenSSH_9.2p1] | time=0.000123s;;;0;10`.
//! A refused connection is CRITICAL with the same text `check_tcp` prints
//! (`connect to address 127.0.0.1 and port 1: Connection refused`); a name
//! that does not resolve is UNKNOWN.
//!
//! TLS (`check_tcp -S`, certificate expiry) is not here yet: it needs a TLS
//! library in the core.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use super::args::{Command, Spec};
use super::{BuiltinError, Outcome, io_error_text, perf};
use crate::state::State;

pub(super) const NAME: &str = "tcp";
pub(super) const USAGE: &str =
    "builtin:tcp -H HOST -p PORT [-s SEND] [-e EXPECT] [-w SECONDS] [-c SECONDS] [-t SECONDS]";
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
    ],
};

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
}

/// What the connection did.
#[derive(Debug, Clone, PartialEq)]
enum Probe {
    /// The name did not resolve.
    Unresolved(String),
    /// No address took the connection; the last error.
    Refused {
        address: String,
        error: String,
    },
    TimedOut,
    /// Connected (and, with `-s`/`-e`, exchanged) in `elapsed`; `answer` is
    /// what was read back, if anything was expected.
    Answered {
        elapsed: Duration,
        answer: Option<String>,
    },
}

impl Tcp {
    pub(super) fn parse(args: &[String]) -> Result<Tcp, BuiltinError> {
        let (mut host, mut port, mut send, mut expect) = (None, None, None, None);
        let (mut warning, mut critical, mut timeout) = (None, None, None);
        for opt in COMMAND.parse(args)? {
            match opt.short {
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
        Ok(Tcp { host, port, send, expect, warning, critical, timeout })
    }

    pub(super) fn run(&self) -> Outcome {
        self.evaluate(self.probe())
    }

    fn probe(&self) -> Probe {
        let started = Instant::now();
        let addresses: Vec<SocketAddr> = match (self.host.as_str(), self.port).to_socket_addrs() {
            Ok(addresses) => addresses.collect(),
            Err(error) => return Probe::Unresolved(io_error_text(&error)),
        };
        let mut last = Probe::Unresolved("the name has no address".to_owned());
        for address in addresses {
            let left = self.timeout.saturating_sub(started.elapsed());
            match TcpStream::connect_timeout(&address, left.max(Duration::from_millis(1))) {
                Ok(stream) => return self.exchange(stream, started),
                Err(error) if error.kind() == io::ErrorKind::TimedOut => return Probe::TimedOut,
                Err(error) => {
                    let address = address.ip().to_string();
                    last = Probe::Refused { address, error: io_error_text(&error) };
                }
            }
        }
        last
    }

    /// Sends `-s`, reads until `-e` shows up, the peer closes, or time is up.
    fn exchange(&self, mut stream: TcpStream, started: Instant) -> Probe {
        if let Some(send) = &self.send {
            if stream.write_all(send.as_bytes()).is_err() {
                return Probe::Answered { elapsed: started.elapsed(), answer: Some(String::new()) };
            }
        }
        let Some(expect) = &self.expect else {
            return Probe::Answered { elapsed: started.elapsed(), answer: None };
        };
        let mut answer = Vec::new();
        let mut chunk = [0u8; 1024];
        while answer.len() < ANSWER_LIMIT {
            let left = self.timeout.saturating_sub(started.elapsed());
            if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
                break;
            }
            match stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => answer.extend_from_slice(&chunk[..n]),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) if is_timeout(&error) && answer.is_empty() => return Probe::TimedOut,
                Err(_) => break,
            }
            if String::from_utf8_lossy(&answer).contains(expect.as_str()) {
                break;
            }
        }
        let answer = String::from_utf8_lossy(&answer).into_owned();
        Probe::Answered { elapsed: started.elapsed(), answer: Some(answer) }
    }

    fn evaluate(&self, probe: Probe) -> Outcome {
        let (host, port) = (&self.host, self.port);
        let (elapsed, answer) = match probe {
            Probe::Unresolved(error) => {
                return Outcome::unknown(PREFIX, format!("cannot resolve {host}: {error}"));
            }
            Probe::Refused { address, error } => {
                let text = format!("connect to address {address} and port {port}: {error}");
                return Outcome::with_summary(State::Critical, text);
            }
            Probe::TimedOut => {
                let text = format!("Socket timeout after {} seconds", self.timeout.as_secs_f64());
                return Outcome::with_summary(State::Critical, format!("CRITICAL - {text}"));
            }
            Probe::Answered { elapsed, answer } => (elapsed.as_secs_f64(), answer),
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
        outcome
    }
}

fn is_timeout(error: &io::Error) -> bool {
    matches!(error.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

fn parse_port(text: &str) -> Result<u16, String> {
    text.parse::<u16>()
        .ok()
        .filter(|port| *port > 0)
        .ok_or_else(|| format!("{text:?} is not a port number (1-65535)"))
}

fn parse_seconds(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|seconds| seconds.is_finite() && *seconds > 0.0)
        .ok_or_else(|| format!("{text:?} is not a number of seconds (write e.g. 2.5)"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
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
