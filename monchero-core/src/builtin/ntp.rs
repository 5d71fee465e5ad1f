//! `builtin:ntp -H HOST [-p PORT] [-w RANGE] [-c RANGE] [-t SECONDS] [-q]
//! [-o SECONDS]`: the local clock's offset from an NTP server, like
//! `check_ntp_time`, whose options these are.
//!
//! - `-H HOST`: the NTP server (`--hostname`), required as in
//!   `check_ntp_time`: there is no server every machine may ask. A name
//!   resolves to every address it has; they are asked in turn until one
//!   answers.
//! - `-p PORT`: its port (`--port`), default 123.
//! - `-w`/`-c RANGE`: Nagios ranges on the absolute offset in seconds
//!   (`--warning`, `--critical`), default `-w 60 -c 120` as in
//!   `check_ntp_time`.
//! - `-t SECONDS`: how long to wait for the answer (`--timeout`), default
//!   10.
//! - `-q`: UNKNOWN rather than CRITICAL when the server answers but gives
//!   no usable offset (`--quiet`).
//! - `-o SECONDS`: the offset the server is expected to have, subtracted
//!   before the thresholds (`--time-offset`).
//!
//! One request, one reply (see `sntp.rs`): a reply counts only when it
//! echoes our request's transmit time as its origin, comes from a server
//! (mode 4), and the server is synchronised. A server whose leap indicator
//! is 3 (not synchronised) or that sends a kiss code (stratum 0: `INIT`,
//! or a kiss-o'-death, `RATE`, `DENY`) gives no usable offset: CRITICAL
//! `Offset unknown`, as `check_ntp_time` says, or UNKNOWN with `-q`. No
//! answer at all is
//! CRITICAL `No response from NTP server`, with or without `-q`, as in
//! `check_ntp_time`.
//!
//! Summary and perfdata are `check_ntp_time`'s: `NTP OK: Offset 0.000012
//! secs | offset=0.000012s;60;120;`, thresholds as written. The round-trip
//! delay is in the long output.
//!
//! Without `-H`, the kernel's own view (adjtimex: `STA_UNSYNC`, maximum
//! error) would answer "is this clock synchronised" with no server; no
//! well-kept crate exposes adjtimex without `unsafe` in our code, which
//! the workspace denies, so it is not offered.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use super::args::{Command, RangeLevel, Spec, parse_port, parse_timeout, range_thresholds};
use super::sntp::{self, Failure, LEAP_UNSYNCHRONISED, Reply, Sample};
use super::{BuiltinError, Outcome, io_error_text, perf, round_to};
use crate::state::State;

pub(super) const NAME: &str = "ntp";
pub(super) const USAGE: &str =
    "builtin:ntp -H HOST [-p PORT] [-w RANGE] [-c RANGE] [-t SECONDS] [-q] [-o SECONDS]";
const PREFIX: &str = "NTP";
const COMMAND: Command = Command {
    name: NAME,
    usage: USAGE,
    specs: &[
        Spec::value('H', "hostname"),
        Spec::value('p', "port"),
        Spec::value('w', "warning"),
        Spec::value('c', "critical"),
        Spec::value('t', "timeout"),
        Spec::flag('q', "quiet"),
        Spec::value('o', "time-offset"),
    ],
};

const DEFAULT_PORT: u16 = 123;
/// `check_ntp_time`'s defaults, in seconds.
const DEFAULT_WARNING: &str = "60";
const DEFAULT_CRITICAL: &str = "120";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A parsed `builtin:ntp`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Ntp {
    host: String,
    port: u16,
    warning: Option<RangeLevel>,
    critical: Option<RangeLevel>,
    timeout: Duration,
    quiet: bool,
    expected_offset: f64,
}

/// What asking the server gave.
#[derive(Debug, Clone, PartialEq)]
enum Asked {
    Unresolved(String),
    Failed(Failure),
    Answered(Reply, Sample),
}

impl Ntp {
    pub(super) fn parse(args: &[String]) -> Result<Ntp, BuiltinError> {
        let (mut host, mut port, mut warning, mut critical) = (None, None, None, None);
        let (mut timeout, mut expected_offset, mut quiet) = (None, None, false);
        for opt in COMMAND.parse(args)? {
            match opt.short {
                'H' => COMMAND.set_once(&mut host, opt, |text| Ok(text.to_owned()))?,
                'p' => COMMAND.set_once(&mut port, opt, parse_port)?,
                'w' => COMMAND.set_once(&mut warning, opt, RangeLevel::parse)?,
                'c' => COMMAND.set_once(&mut critical, opt, RangeLevel::parse)?,
                't' => COMMAND.set_once(&mut timeout, opt, parse_timeout)?,
                'q' => quiet = true,
                _ => COMMAND.set_once(&mut expected_offset, opt, parse_offset)?,
            }
        }
        let Some(host) = host else {
            return Err(COMMAND.missing_option("-H HOST is required: the NTP server to ask"));
        };
        let (warning, critical) = if warning.is_none() && critical.is_none() {
            let default = |text: &str| RangeLevel::parse(text).ok();
            (default(DEFAULT_WARNING), default(DEFAULT_CRITICAL))
        } else {
            (warning, critical)
        };
        Ok(Ntp {
            host,
            port: port.unwrap_or(DEFAULT_PORT),
            warning,
            critical,
            timeout: timeout.unwrap_or(DEFAULT_TIMEOUT),
            quiet,
            expected_offset: expected_offset.unwrap_or(0.0),
        })
    }

    pub(super) fn activity(&self) -> String {
        format!("asking the NTP server {} port {}", self.host, self.port)
    }

    pub(super) fn run(&self) -> Outcome {
        self.evaluate(self.ask())
    }

    fn ask(&self) -> Asked {
        let addresses: Vec<SocketAddr> = match (self.host.as_str(), self.port).to_socket_addrs() {
            Ok(addresses) => addresses.collect(),
            Err(error) => return Asked::Unresolved(io_error_text(&error)),
        };
        if addresses.is_empty() {
            return Asked::Unresolved("the name has no address".to_owned());
        }
        // The timeout is shared by the addresses, so the check as a whole
        // keeps to it.
        let share = self.timeout / u32::try_from(addresses.len()).unwrap_or(u32::MAX);
        let mut last = Failure::NoResponse;
        for address in addresses {
            match sntp::query(address, share) {
                Ok((reply, sample)) => return Asked::Answered(reply, sample),
                Err(failure) => last = failure,
            }
        }
        Asked::Failed(last)
    }

    fn evaluate(&self, asked: Asked) -> Outcome {
        let server = format!("{} port {}", self.host, self.port);
        let (reply, sample) = match asked {
            Asked::Unresolved(error) => {
                return Outcome::unknown(PREFIX, format!("cannot resolve {}: {error}", self.host));
            }
            Asked::Failed(failure) => {
                let why = match failure {
                    Failure::NoResponse => {
                        format!("no answer from {server} within {} s", self.timeout.as_secs_f64())
                    }
                    Failure::Refused => format!("{server} refused (no NTP server there)"),
                    Failure::Garbage(length) => format!(
                        "{server} answered {length} bytes, not an NTP packet ({} or more)",
                        sntp::PACKET_LEN
                    ),
                    Failure::WrongOrigin => format!(
                        "{server} answered, but not to our request (origin timestamp differs: \
                         a stale or forged reply)"
                    ),
                    Failure::Socket(error) => format!("cannot ask {server}: {error}"),
                };
                let summary = format!("NTP CRITICAL: No response from NTP server ({why})");
                return Outcome::with_summary(State::Critical, summary);
            }
            Asked::Answered(reply, sample) => (reply, sample),
        };
        if let Some(why) = unusable(&reply) {
            let state = if self.quiet { State::Unknown } else { State::Critical };
            let summary = format!("NTP {}: Offset unknown ({server} {why})", state.label());
            return Outcome::with_summary(state, summary);
        }
        let offset = round_to(sample.offset - self.expected_offset, 9);
        let (thresholds, texts) = range_thresholds(&self.warning, &self.critical);
        let state = thresholds.evaluate(offset.abs());
        let mut outcome = Outcome::with_summary(
            state,
            format!("{PREFIX} {}: Offset {offset} secs", state.label()),
        );
        outcome.long_output = format!(
            "server {server}, stratum {}, round-trip delay {} s",
            reply.stratum,
            round_to(sample.delay, 6)
        );
        outcome.perfdata.push(perf("offset", offset, "s", texts, None, None));
        outcome
    }
}

/// Why a reply gives no offset to trust, if it does not.
fn unusable(reply: &Reply) -> Option<String> {
    if !reply.is_from_server() {
        Some(format!("answered in mode {}, not as a server (4)", reply.mode))
    } else if let Some(code) = reply.kiss_code() {
        // RFC 5905, 7.4: DENY, RSTR and RATE tell a client to go away (or
        // slow down); the others (INIT, STEP, ...) are a server with no
        // time to give yet.
        Some(match code.as_str() {
            "DENY" | "RSTR" | "RATE" => {
                format!("sent a kiss-o'-death ({code}): it refuses to serve us now")
            }
            _ => format!("has no time to give (kiss code {code})"),
        })
    } else if reply.leap == LEAP_UNSYNCHRONISED || reply.stratum == 0 {
        // chrony and ntpd answer so before their first sync: stratum 0
        // with no code, leap indicator 3.
        Some(format!(
            "is not synchronised (leap indicator {}, stratum {})",
            reply.leap, reply.stratum
        ))
    } else if reply.transmit.0 == 0 {
        Some("sent no transmit time".to_owned())
    } else {
        None
    }
}

fn parse_offset(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|seconds| seconds.is_finite())
        .ok_or_else(|| format!("{text:?} is not a number of seconds (write e.g. -1.5)"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::net::{Ipv4Addr, UdpSocket};

    use super::*;
    use crate::builtin::BuiltinErrorKind;
    use crate::builtin::sntp::{PACKET_LEN, Timestamp};
    use crate::builtin::test_util::{rendered, words};

    fn ntp(args: &[&str]) -> Result<Ntp, BuiltinError> {
        Ntp::parse(&words(args))
    }

    fn reply(leap: u8, stratum: u8) -> Reply {
        Reply {
            leap,
            mode: 4,
            stratum,
            reference_id: *b"RATE",
            origin: Timestamp(1),
            receive: Timestamp(2),
            transmit: Timestamp(3),
        }
    }

    fn answered(leap: u8, stratum: u8, offset: f64) -> Asked {
        Asked::Answered(reply(leap, stratum), Sample { offset, delay: 0.0002 })
    }

    #[test]
    fn options_are_validated_when_the_config_is_read() {
        assert_eq!(ntp(&[]).unwrap_err().kind(), BuiltinErrorKind::MissingOption);
        assert!(ntp(&["-H", "h", "-p", "0"]).unwrap_err().to_string().contains("not a port"));
        assert!(ntp(&["-H", "h", "-t", "0"]).unwrap_err().to_string().contains("seconds"));
        assert!(ntp(&["-H", "h", "-w", "x"]).is_err());
        assert!(ntp(&["-H", "h", "-o", "soon"]).is_err());
        let check = ntp(&["-H", "h"]).unwrap();
        assert_eq!((check.port, check.timeout), (123, Duration::from_secs(10)));
    }

    #[test]
    fn the_offset_is_judged_by_its_size_with_check_ntp_times_defaults() {
        let check = ntp(&["-H", "127.0.0.1"]).unwrap();
        let ok = check.evaluate(answered(0, 2, -0.000012));
        assert_eq!(ok.state, State::Ok);
        assert_eq!(ok.summary, "NTP OK: Offset -0.000012 secs");
        assert_eq!(rendered(&ok), ["offset=-0.000012s;60;120"]);
        assert_eq!(
            ok.long_output,
            "server 127.0.0.1 port 123, stratum 2, round-trip delay 0.0002 s"
        );
        assert_eq!(check.evaluate(answered(0, 2, -61.0)).state, State::Warning);
        let critical = check.evaluate(answered(0, 2, 121.5));
        assert_eq!(critical.summary, "NTP CRITICAL: Offset 121.5 secs");
    }

    #[test]
    fn an_expected_offset_is_taken_off_first() {
        let check = ntp(&["-H", "h", "-w", "0.5", "-c", "1", "-o", "30"]).unwrap();
        let outcome = check.evaluate(answered(0, 2, 30.2));
        assert_eq!(outcome.state, State::Ok);
        assert_eq!(rendered(&outcome), ["offset=0.2s;0.5;1"]);
    }

    #[test]
    fn an_unsynchronised_server_or_a_kiss_of_death_gives_no_offset() {
        let check = ntp(&["-H", "127.0.0.1", "-p", "1234"]).unwrap();
        let unsynchronised = check.evaluate(answered(3, 2, 0.0));
        assert_eq!(unsynchronised.state, State::Critical);
        assert_eq!(
            unsynchronised.summary,
            "NTP CRITICAL: Offset unknown (127.0.0.1 port 1234 is not synchronised \
             (leap indicator 3, stratum 2))"
        );
        assert!(unsynchronised.perfdata.is_empty());
        let kiss = check.evaluate(answered(0, 0, 0.0));
        assert_eq!(
            kiss.summary,
            "NTP CRITICAL: Offset unknown (127.0.0.1 port 1234 sent a kiss-o'-death (RATE): \
             it refuses to serve us now)"
        );
        let mut starting = reply(3, 0);
        starting.reference_id = *b"INIT";
        let asked = Asked::Answered(starting, Sample { offset: 0.0, delay: 0.0 });
        assert!(check.evaluate(asked).summary.ends_with("has no time to give (kiss code INIT))"));
        let mut before_first_sync = reply(3, 0);
        before_first_sync.reference_id = [0; 4];
        let asked = Asked::Answered(before_first_sync, Sample { offset: 0.0, delay: 0.0 });
        assert!(check.evaluate(asked).summary.ends_with("(leap indicator 3, stratum 0))"));
        let quiet = ntp(&["-H", "127.0.0.1", "-p", "1234", "-q"]).unwrap();
        assert_eq!(quiet.evaluate(answered(3, 2, 0.0)).state, State::Unknown);
    }

    /// A UDP "server" on loopback that answers each request with `answer`
    /// (given the request), or stays silent for `None`.
    fn server(answer: fn(&[u8]) -> Option<Vec<u8>>) -> u16 {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = socket.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 512];
            while let Ok((length, from)) = socket.recv_from(&mut buffer) {
                if let Some(reply) = answer(&buffer[..length]) {
                    let _ = socket.send_to(&reply, from);
                }
            }
        });
        port
    }

    fn run(port: u16) -> Outcome {
        let port = port.to_string();
        ntp(&["-H", "127.0.0.1", "-p", &port, "-t", "0.3"]).unwrap().run()
    }

    /// A well-formed synchronised reply to `request`, with `origin` as the
    /// echoed timestamp.
    fn good_reply(request: &[u8], origin: [u8; 8]) -> Vec<u8> {
        let now = Timestamp::from_system(std::time::SystemTime::now()).0.to_be_bytes();
        let mut packet = vec![0u8; PACKET_LEN];
        packet[0] = (4 << 3) | 4;
        packet[1] = 3;
        packet[24..32].copy_from_slice(&origin);
        packet[32..40].copy_from_slice(&now);
        packet[40..48].copy_from_slice(&now);
        assert_eq!(request.len(), PACKET_LEN);
        packet
    }

    #[test]
    fn a_server_that_echoes_our_request_gives_an_offset() {
        let port = server(|request| {
            let origin: [u8; 8] = request[40..48].try_into().unwrap();
            Some(good_reply(request, origin))
        });
        let outcome = run(port);
        assert_eq!(outcome.state, State::Ok, "{}", outcome.summary);
        assert!(outcome.summary.starts_with("NTP OK: Offset "), "{}", outcome.summary);
        assert!(outcome.perfdata[0].value.unwrap().abs() < 1.0);
    }

    #[test]
    fn garbage_is_no_answer() {
        let port = server(|_| Some(b"hello".to_vec()));
        let outcome = run(port);
        assert_eq!(outcome.state, State::Critical);
        assert_eq!(
            outcome.summary,
            format!(
                "NTP CRITICAL: No response from NTP server (127.0.0.1 port {port} answered 5 \
                 bytes, not an NTP packet (48 or more))"
            )
        );
    }

    #[test]
    fn a_reply_to_another_request_is_refused() {
        let port = server(|request| Some(good_reply(request, [9; 8])));
        let outcome = run(port);
        assert_eq!(outcome.state, State::Critical);
        assert!(outcome.summary.contains("origin timestamp differs"), "{}", outcome.summary);
    }

    #[test]
    fn a_silent_server_is_critical_within_the_timeout() {
        let port = server(|_| None);
        let outcome = run(port);
        assert_eq!(outcome.state, State::Critical);
        assert_eq!(
            outcome.summary,
            format!(
                "NTP CRITICAL: No response from NTP server (no answer from 127.0.0.1 port \
                 {port} within 0.3 s)"
            )
        );
    }

    #[test]
    fn a_closed_port_is_refused() {
        let port = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap().local_addr().unwrap().port();
        let outcome = run(port);
        assert_eq!(outcome.state, State::Critical);
        assert!(outcome.summary.ends_with("refused (no NTP server there))"), "{}", outcome.summary);
    }
}
