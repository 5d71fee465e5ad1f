//! `builtin:net [-i IFACE]... [-w PER_S] [-c PER_S]`: network interfaces'
//! errors, drops and throughput since the previous run, from
//! `/proc/net/dev`.
//!
//! - `-i IFACE` (repeatable): the interfaces to watch. Without it, every
//!   interface but `lo`. A named interface that does not exist (a VPN
//!   tunnel that went down) is CRITICAL.
//! - `-w`/`-c PER_S`: errors per second (receive + transmit), and drops per
//!   second, above which to alert; each is compared to the levels on its
//!   own. Defaults `-w 1 -c 10`. Errors are frames the card rejected (bad
//!   checksum, misaligned, overruns): any steady rate of them is a cable, a
//!   port or a driver to look at. Drops are packets the kernel discarded
//!   (full queues, no memory, and on many drivers frames of a protocol the
//!   host does not speak, which some networks send a few of every second):
//!   raise the levels on such a network rather than ignoring the check.
//!
//! Like `builtin:cpu`, the counters are cumulative: the figures are rates
//! over the time since the previous run, whose reading the check keeps in
//! memory, and a first run reads twice, 250 ms apart. An interface that
//! appeared since the previous run, or whose counters went backwards (the
//! driver was reloaded), has no rates until its next run; it is named in
//! the long output.
//!
//! Perfdata per interface, as rates per second: `eth0_rx=1234B;;;0
//! eth0_tx=567B;;;0 eth0_errors=0;1;10;0 eth0_drops=0;1;10;0`. The `B` of
//! the throughput means bytes *per second* (the perfdata grammar has no
//! rate units), so a graph of it is a graph of bandwidth.
//!
//! `/proc/net/dev` lists the interfaces of the agent's network namespace:
//! run in a container, the check sees the container's.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use super::args::{Command, Spec, or_defaults};
use super::{
    BuiltinError, Carried, Outcome, SUMMARY_MAX, human_bytes, perf, read_text, round_to,
    window_text,
};
use crate::state::State;
use crate::threshold::parse_number;

pub(super) const NAME: &str = "net";
pub(super) const USAGE: &str = "builtin:net [-i IFACE]... [-w PER_S] [-c PER_S]";
const PREFIX: &str = "NET";
const COMMAND: Command = Command {
    name: NAME,
    usage: USAGE,
    specs: &[
        Spec::value('i', "interface"),
        Spec::value('w', "warning"),
        Spec::value('c', "critical"),
    ],
};

const NET_DEV: &str = "/proc/net/dev";

const DEFAULT_WARNING: f64 = 1.0;
const DEFAULT_CRITICAL: f64 = 10.0;

/// The wait between the two readings of a first run (see `cpu.rs`).
const FIRST_RUN_WAIT: Duration = Duration::from_millis(250);

/// The counters of one interface that the check uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Counters {
    rx_bytes: u64,
    rx_errors: u64,
    rx_drops: u64,
    tx_bytes: u64,
    tx_errors: u64,
    tx_drops: u64,
}

/// Per second, between two readings.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Rates {
    rx: f64,
    tx: f64,
    errors: f64,
    drops: f64,
}

/// Every interface's counters, and when they were read.
type Reading = (Vec<(String, Counters)>, Instant);

/// A level in errors or drops per second, and its text as written.
#[derive(Debug, Clone, PartialEq)]
struct Level {
    value: f64,
    text: String,
}

impl Level {
    fn of(value: f64) -> Level {
        Level { value, text: value.to_string() }
    }
}

/// What became of one watched interface.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Measured(Rates),
    /// New since the previous reading, or its counters went backwards.
    Restarted,
    /// Named with `-i`, not in `/proc/net/dev`.
    Missing,
}

/// A parsed `builtin:net`, with the previous reading.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Net {
    interfaces: Vec<String>,
    warning: Option<Level>,
    critical: Option<Level>,
    previous: Carried<Option<Reading>>,
}

impl Net {
    pub(super) fn parse(args: &[String]) -> Result<Net, BuiltinError> {
        let (mut warning, mut critical) = (None, None);
        let mut interfaces: Vec<String> = Vec::new();
        for opt in COMMAND.parse(args)? {
            match opt.short {
                'w' => COMMAND.set_once(&mut warning, opt, parse_level)?,
                'c' => COMMAND.set_once(&mut critical, opt, parse_level)?,
                short if opt.value.is_empty() => {
                    return Err(COMMAND.bad_value(short, "the value is empty"));
                }
                _ if interfaces.iter().any(|known| known == opt.value) => {}
                _ => interfaces.push(opt.value.to_owned()),
            }
        }
        if let (Some(warning), Some(critical)) = (&warning, &critical) {
            if warning.value > critical.value {
                return Err(COMMAND.conflict(format!(
                    "-w {} is above -c {}: the warning level must be the lower one",
                    warning.text, critical.text
                )));
            }
        }
        let (warning, critical) = or_defaults(warning, critical, || {
            (Level::of(DEFAULT_WARNING), Level::of(DEFAULT_CRITICAL))
        });
        Ok(Net { interfaces, warning, critical, previous: Carried::default() })
    }

    pub(super) fn run(&self) -> Outcome {
        self.run_from(Path::new(NET_DEV), FIRST_RUN_WAIT)
    }

    fn run_from(&self, net_dev: &Path, wait: Duration) -> Outcome {
        let read = || -> Result<Reading, String> {
            let text = read_text(net_dev)?;
            let counters = parse_net_dev(&text)
                .map_err(|line| format!("cannot parse {}: {:?}", net_dev.display(), line.trim()))?;
            Ok((counters, Instant::now()))
        };
        let mut previous = self.previous.lock();
        let first = match read() {
            Ok(reading) => reading,
            Err(error) => return Outcome::unknown(PREFIX, error),
        };
        let (before, now) = match previous.take() {
            Some(before) => (before, first),
            None => {
                std::thread::sleep(wait);
                match read() {
                    Ok(second) => (first, second),
                    Err(error) => return Outcome::unknown(PREFIX, error),
                }
            }
        };
        let outcome = self.evaluate(&before.0, &now.0, now.1.duration_since(before.1));
        *previous = Some(now);
        outcome
    }

    /// The result for two readings `window` apart.
    fn evaluate(
        &self,
        before: &[(String, Counters)],
        now: &[(String, Counters)],
        window: Duration,
    ) -> Outcome {
        let find = |reading: &[(String, Counters)], name: &str| {
            reading.iter().find(|(known, _)| known == name).map(|&(_, counters)| counters)
        };
        let names: Vec<&str> = if self.interfaces.is_empty() {
            now.iter().map(|(name, _)| name.as_str()).filter(|&name| name != "lo").collect()
        } else {
            self.interfaces.iter().map(String::as_str).collect()
        };
        if names.is_empty() {
            return Outcome::unknown(
                PREFIX,
                "no network interface to check (there is only lo; watch it with -i lo)",
            );
        }
        let seconds = window.as_secs_f64();
        let seen: Vec<(&str, Seen)> = names
            .into_iter()
            .map(|name| {
                let seen = match (find(before, name), find(now, name)) {
                    (_, None) => Seen::Missing,
                    (Some(old), Some(new)) => {
                        rates(&old, &new, seconds).map_or(Seen::Restarted, Seen::Measured)
                    }
                    (None, Some(_)) => Seen::Restarted,
                };
                (name, seen)
            })
            .collect();
        let states: Vec<State> = seen.iter().map(|(_, seen)| self.state_of(seen)).collect();
        let state = states.iter().copied().fold(State::Ok, State::worst);

        let text = if state == State::Ok {
            ok_text(&seen, window)
        } else {
            let failing: Vec<String> = seen
                .iter()
                .zip(&states)
                .filter(|(_, iface_state)| iface_state.is_problem())
                .map(|((name, seen), _)| describe(name, seen))
                .collect();
            let mut text = failing[..failing.len().min(SUMMARY_MAX)].join("; ");
            if failing.len() > SUMMARY_MAX {
                let _ = write!(text, " (and {} more)", failing.len() - SUMMARY_MAX);
            }
            let _ = write!(text, ", over {}", window_text(window));
            text
        };
        let mut outcome = Outcome::new(PREFIX, state, text);
        let levels = || {
            (
                self.warning.as_ref().map(|level| level.text.clone()),
                self.critical.as_ref().map(|level| level.text.clone()),
            )
        };
        for (name, seen) in &seen {
            if let Seen::Measured(rates) = seen {
                let bytes = |direction: &str, value: f64| {
                    perf(
                        format!("{name}_{direction}"),
                        value.round(),
                        "B",
                        (None, None),
                        Some(0.0),
                        None,
                    )
                };
                let count = |kind: &str, value: f64| {
                    perf(
                        format!("{name}_{kind}"),
                        round_to(value, 2),
                        "",
                        levels(),
                        Some(0.0),
                        None,
                    )
                };
                outcome.perfdata.extend([
                    bytes("rx", rates.rx),
                    bytes("tx", rates.tx),
                    count("errors", rates.errors),
                    count("drops", rates.drops),
                ]);
            }
        }
        let restarted = seen.iter().any(|(_, seen)| *seen == Seen::Restarted);
        if seen.len() > 1 || restarted {
            let lines: Vec<String> = seen
                .iter()
                .zip(&states)
                .map(|((name, seen), iface_state)| {
                    format!("{}: {}", iface_state.label(), describe(name, seen))
                })
                .collect();
            outcome.long_output = lines.join("\n");
        }
        outcome
    }

    fn state_of(&self, seen: &Seen) -> State {
        let rates = match seen {
            Seen::Missing => return State::Critical,
            Seen::Restarted => return State::Ok,
            Seen::Measured(rates) => rates,
        };
        let worst = rates.errors.max(rates.drops);
        let above = |level: &Option<Level>| level.as_ref().is_some_and(|l| worst > l.value);
        if above(&self.critical) {
            State::Critical
        } else if above(&self.warning) {
            State::Warning
        } else {
            State::Ok
        }
    }
}

/// All well: one interface in full, or several summed up.
fn ok_text(seen: &[(&str, Seen)], window: Duration) -> String {
    let measured: Vec<&Rates> = seen
        .iter()
        .filter_map(|(_, seen)| match seen {
            Seen::Measured(rates) => Some(rates),
            _ => None,
        })
        .collect();
    let over = window_text(window);
    match (seen, measured.as_slice()) {
        ([(name, _)], [rates]) => format!("{name}: {}, over {over}", rates_text(rates)),
        (_, []) => format!(
            "{} watched, rates from the next run (new interfaces or reset counters)",
            interfaces_text(seen.len())
        ),
        _ => {
            let total = measured.iter().fold(
                Rates { rx: 0.0, tx: 0.0, errors: 0.0, drops: 0.0 },
                |sum, rates| Rates {
                    rx: sum.rx + rates.rx,
                    tx: sum.tx + rates.tx,
                    errors: sum.errors + rates.errors,
                    drops: sum.drops + rates.drops,
                },
            );
            format!("{}: {} in total, over {over}", interfaces_text(seen.len()), rates_text(&total))
        }
    }
}

fn interfaces_text(count: usize) -> String {
    if count == 1 { "1 interface".to_owned() } else { format!("{count} interfaces") }
}

/// `eth0 rx 1.2 MiB/s, tx 300 B/s, 0 errors/s, 0 drops/s`, or what
/// became of it.
fn describe(name: &str, seen: &Seen) -> String {
    match seen {
        Seen::Measured(rates) => format!("{name} {}", rates_text(rates)),
        Seen::Restarted => {
            format!("{name} is new or its counters were reset; rates from the next run")
        }
        Seen::Missing => format!("{name} not found in {NET_DEV}"),
    }
}

fn rates_text(rates: &Rates) -> String {
    format!(
        "rx {}/s, tx {}/s, {} errors/s, {} drops/s",
        human_bytes(rates.rx.round() as u64),
        human_bytes(rates.tx.round() as u64),
        round_to(rates.errors, 2),
        round_to(rates.drops, 2)
    )
}

/// The rates from `before` to `now`, `seconds` apart; `None` when a
/// counter went backwards.
fn rates(before: &Counters, now: &Counters, seconds: f64) -> Option<Rates> {
    let per_second = |pick: fn(&Counters) -> u64| {
        pick(now).checked_sub(pick(before)).map(|delta| delta as f64 / seconds.max(1e-9))
    };
    Some(Rates {
        rx: per_second(|c| c.rx_bytes)?,
        tx: per_second(|c| c.tx_bytes)?,
        errors: per_second(|c| c.rx_errors)? + per_second(|c| c.tx_errors)?,
        drops: per_second(|c| c.rx_drops)? + per_second(|c| c.tx_drops)?,
    })
}

fn parse_level(text: &str) -> Result<Level, String> {
    match parse_number(text) {
        Some(value) if value >= 0.0 => Ok(Level { value, text: text.to_owned() }),
        _ => Err(format!(
            "{text:?} is not a number of errors or drops per second (write e.g. 1 or 0.5)"
        )),
    }
}

/// The interfaces of `/proc/net/dev`, after its two header lines:
/// `  eth0: 109214611 5685 0 0 0 0 0 0 442306 4080 0 0 0 0 0 0`, 8 receive
/// counters (bytes packets errs drop fifo frame compressed multicast), then
/// 8 transmit ones (bytes packets errs drop fifo colls carrier compressed).
/// The error is the line that does not parse.
fn parse_net_dev(text: &str) -> Result<Vec<(String, Counters)>, &str> {
    let mut interfaces = Vec::new();
    for line in text.lines().filter(|line| !line.contains('|') && !line.trim().is_empty()) {
        let (name, numbers) = line.split_once(':').ok_or(line)?;
        let numbers: Vec<u64> = numbers
            .split_ascii_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map_err(|_| line)?;
        let &[rx_bytes, _, rx_errors, rx_drops, _, _, _, _, tx_bytes, _, tx_errors, tx_drops, ..] =
            numbers.as_slice()
        else {
            return Err(line);
        };
        let counters = Counters { rx_bytes, rx_errors, rx_drops, tx_bytes, tx_errors, tx_drops };
        interfaces.push((name.trim().to_owned(), counters));
    }
    Ok(interfaces)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::builtin::BuiltinErrorKind;
    use crate::builtin::test_util::{rendered, words};

    const NET_DEV_FIXTURE: &str = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:   22655     288    0    0    0     0          0         0    22655     288    0    0    0     0       0          0
  eth0: 109214611    5685    3    7    0     0          0         0   442306    4080    1    2    0     0       0          0
wlan0:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
";

    const MINUTE: Duration = Duration::from_secs(60);

    fn net(args: &[&str]) -> Net {
        try_net(args).unwrap()
    }

    fn try_net(args: &[&str]) -> Result<Net, BuiltinError> {
        let args = words(args);
        Net::parse(&args)
    }

    fn counters(rx_bytes: u64, tx_bytes: u64, errors: u64, drops: u64) -> Counters {
        Counters { rx_bytes, tx_bytes, rx_errors: errors, rx_drops: drops, ..Counters::default() }
    }

    fn reading(interfaces: &[(&str, Counters)]) -> Vec<(String, Counters)> {
        interfaces.iter().map(|&(name, counters)| (name.to_owned(), counters)).collect()
    }

    #[test]
    fn parsing() {
        let parsed = parse_net_dev(NET_DEV_FIXTURE).unwrap();
        assert_eq!(
            parsed,
            reading(&[
                ("lo", Counters { rx_bytes: 22655, tx_bytes: 22655, ..Counters::default() }),
                (
                    "eth0",
                    Counters {
                        rx_bytes: 109_214_611,
                        rx_errors: 3,
                        rx_drops: 7,
                        tx_bytes: 442_306,
                        tx_errors: 1,
                        tx_drops: 2,
                    }
                ),
                ("wlan0", Counters::default()),
            ])
        );
        assert_eq!(parse_net_dev("  eth0 1 2 3\n"), Err("  eth0 1 2 3"));
        assert_eq!(parse_net_dev("eth0: 1 2 3\n"), Err("eth0: 1 2 3"));
        assert_eq!(
            parse_net_dev("eth0: 1 2 3 4 5 6 7 8 9 10 x 12\n"),
            Err("eth0: 1 2 3 4 5 6 7 8 9 10 x 12")
        );
        assert_eq!(parse_net_dev(""), Ok(Vec::new()));
    }

    #[test]
    fn one_interface_in_full() {
        let before = reading(&[("lo", counters(0, 0, 0, 0)), ("eth0", counters(1000, 0, 0, 0))]);
        let now =
            reading(&[("lo", counters(99, 99, 0, 0)), ("eth0", counters(62_440, 6000, 0, 30))]);
        let outcome = net(&[]).evaluate(&before, &now, MINUTE);
        assert_eq!(outcome.state, State::Ok);
        assert_eq!(
            outcome.summary,
            "NET OK - eth0: rx 1.0 KiB/s, tx 100 B/s, 0 errors/s, 0.5 drops/s, over 60 s"
        );
        assert_eq!(
            rendered(&outcome),
            [
                "eth0_rx=1024B;;;0",
                "eth0_tx=100B;;;0",
                "eth0_errors=0;1;10;0",
                "eth0_drops=0.5;1;10;0"
            ]
        );
        assert_eq!(outcome.long_output, "");
    }

    #[test]
    fn several_interfaces_summed_then_the_failing_ones() {
        let before = reading(&[("eth0", counters(0, 0, 0, 0)), ("eth1", counters(0, 0, 0, 0))]);
        let now = reading(&[("eth0", counters(600, 60, 0, 0)), ("eth1", counters(600, 0, 0, 0))]);
        let outcome = net(&[]).evaluate(&before, &now, MINUTE);
        assert_eq!(
            outcome.summary,
            "NET OK - 2 interfaces: rx 20 B/s, tx 1 B/s, 0 errors/s, 0 drops/s in total, over 60 s"
        );
        assert_eq!(
            outcome.long_output,
            "OK: eth0 rx 10 B/s, tx 1 B/s, 0 errors/s, 0 drops/s\nOK: eth1 rx 10 B/s, tx 0 B/s, 0 errors/s, 0 drops/s"
        );

        let now =
            reading(&[("eth0", counters(600, 60, 120, 0)), ("eth1", counters(600, 0, 0, 900))]);
        let outcome = net(&[]).evaluate(&before, &now, MINUTE);
        assert_eq!(outcome.state, State::Critical);
        assert_eq!(
            outcome.summary,
            "NET CRITICAL - eth0 rx 10 B/s, tx 1 B/s, 2 errors/s, 0 drops/s; \
             eth1 rx 10 B/s, tx 0 B/s, 0 errors/s, 15 drops/s, over 60 s"
        );
        let outcome = net(&["-w", "1", "-c", "20"]).evaluate(&before, &now, MINUTE);
        assert_eq!(outcome.state, State::Warning);
        assert_eq!(rendered(&outcome)[3], "eth0_drops=0;1;20;0");
    }

    #[test]
    fn named_interfaces() {
        let before = reading(&[("lo", counters(0, 0, 0, 0)), ("eth0", counters(0, 0, 0, 0))]);
        let now = reading(&[("lo", counters(60, 60, 0, 0)), ("eth0", counters(0, 0, 0, 0))]);
        let outcome = net(&["-i", "lo"]).evaluate(&before, &now, MINUTE);
        assert_eq!(
            outcome.summary,
            "NET OK - lo: rx 1 B/s, tx 1 B/s, 0 errors/s, 0 drops/s, over 60 s"
        );
        let outcome = net(&["-i", "eth0", "-i", "tun0"]).evaluate(&before, &now, MINUTE);
        assert_eq!(outcome.state, State::Critical);
        assert_eq!(outcome.summary, "NET CRITICAL - tun0 not found in /proc/net/dev, over 60 s");
        assert_eq!(
            outcome.long_output,
            "OK: eth0 rx 0 B/s, tx 0 B/s, 0 errors/s, 0 drops/s\nCRITICAL: tun0 not found in /proc/net/dev"
        );
        let only_lo = reading(&[("lo", counters(0, 0, 0, 0))]);
        let outcome = net(&[]).evaluate(&only_lo, &only_lo, MINUTE);
        assert_eq!(outcome.state, State::Unknown);
        assert_eq!(
            outcome.summary,
            "NET UNKNOWN - no network interface to check (there is only lo; watch it with -i lo)"
        );
    }

    #[test]
    fn new_interfaces_and_reset_counters_wait_for_the_next_run() {
        let before = reading(&[("eth0", counters(5000, 0, 0, 0))]);
        let now = reading(&[("eth0", counters(100, 0, 0, 0)), ("tun0", counters(10, 0, 0, 0))]);
        let outcome = net(&[]).evaluate(&before, &now, MINUTE);
        assert_eq!(outcome.state, State::Ok);
        assert_eq!(
            outcome.summary,
            "NET OK - 2 interfaces watched, rates from the next run (new interfaces or reset counters)"
        );
        assert!(outcome.perfdata.is_empty());
        assert_eq!(
            outcome.long_output,
            "OK: eth0 is new or its counters were reset; rates from the next run\n\
             OK: tun0 is new or its counters were reset; rates from the next run"
        );
    }

    #[test]
    fn readings_carry_over_between_runs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dev");
        let line = |rx: u64| format!("  eth0: {rx} 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n");
        std::fs::write(&path, line(1000)).unwrap();
        let check = net(&[]);
        let outcome = check.run_from(&path, Duration::ZERO);
        assert!(outcome.summary.starts_with("NET OK - eth0: rx 0 B/s,"), "{}", outcome.summary);
        std::fs::write(&path, line(1_000_000_000)).unwrap();
        let outcome = check.run_from(&path, Duration::ZERO);
        let rx = outcome.perfdata[0].value.unwrap();
        assert!(rx > 0.0, "{outcome:?}");
    }

    #[test]
    fn unreadable_or_garbled_net_dev_is_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dev");
        let outcome = net(&[]).run_from(&path, Duration::ZERO);
        assert_eq!(outcome.state, State::Unknown);
        assert_eq!(
            outcome.summary,
            format!("NET UNKNOWN - cannot read {}: No such file or directory", path.display())
        );
        std::fs::write(&path, "eth0: lots\n").unwrap();
        let outcome = net(&[]).run_from(&path, Duration::ZERO);
        assert_eq!(
            outcome.summary,
            format!("NET UNKNOWN - cannot parse {}: \"eth0: lots\"", path.display())
        );
    }

    #[test]
    fn bad_options() {
        let message = |args: &[&str]| try_net(args).unwrap_err().to_string();
        assert_eq!(
            message(&["-w", "some"]),
            r#"builtin:net: -w: "some" is not a number of errors or drops per second (write e.g. 1 or 0.5)"#
        );
        assert_eq!(
            message(&["-w", "5", "-c", "1"]),
            "builtin:net: -w 5 is above -c 1: the warning level must be the lower one"
        );
        assert_eq!(message(&["-i", ""]), "builtin:net: -i: the value is empty");
        assert_eq!(try_net(&["-x"]).unwrap_err().kind(), BuiltinErrorKind::UnknownOption);
        assert_eq!(
            net(&["-i", "eth0", "--interface=eth0", "-i", "eth1"]).interfaces,
            ["eth0", "eth1"]
        );
    }

    #[test]
    fn smoke_on_this_machine() {
        let check = net(&["-i", "lo"]);
        let outcome = check.run();
        assert_eq!(outcome.state, State::Ok, "{}", outcome.summary);
        assert!(outcome.summary.starts_with("NET OK - lo: rx "), "{}", outcome.summary);
        let labels: Vec<&str> = outcome.perfdata.iter().map(|item| item.label.as_str()).collect();
        assert_eq!(labels, ["lo_rx", "lo_tx", "lo_errors", "lo_drops"]);
        assert_ne!(check.run().state, State::Unknown);
    }
}
