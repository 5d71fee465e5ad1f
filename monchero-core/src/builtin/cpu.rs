//! `builtin:cpu [-w PCT%] [-c PCT%]`: CPU utilisation since the previous
//! run, from `/proc/stat`.
//!
//! "Used" is the share of CPU time spent on anything but idling and waiting
//! for I/O: user + nice + system + irq + softirq + steal over the total
//! (guest time is already inside user and nice). iowait is not work (the
//! CPU was free to run something else) and is reported on its own in the
//! perfdata, as is steal, the time a hypervisor gave to other guests.
//!
//! The figure is an average over the time since the check's previous run,
//! normally its interval: the kernel's counters are cumulative, and two
//! readings of them are needed. The check keeps the previous reading in
//! memory; on its first run (after an agent start or a config reload) it
//! takes two readings 250 ms apart instead, which delays that one result
//! by as much. So does a run after the counters went backwards (CPU
//! hotplug).
//!
//! Defaults `-w 90% -c 95%`, alerting above. Since the value is already an
//! average over the interval (a minute by default), and a problem is
//! confirmed only after `attempts` results in a row, these fire for a
//! machine that has been saturated for minutes, not for a build's burst.
//!
//! `/proc/stat` is the whole machine's, also inside a container (unless
//! lxcfs provides the container's own).
//!
//! Perfdata: `used=12.3%;90;95;0;100 user=8.1%;;;0;100
//! system=3.2%;;;0;100 iowait=0.4%;;;0;100 steal=1%;;;0;100`, where user
//! includes nice and system includes irq and softirq.

use std::path::Path;
use std::time::{Duration, Instant};

use super::args::{Command, Percent, Spec, percent_levels};
use super::{BuiltinError, Carried, Outcome, ceil_percent, perf, read_text, round_to};
use crate::state::State;

pub(super) const NAME: &str = "cpu";
pub(super) const USAGE: &str = "builtin:cpu [-w PCT%] [-c PCT%]";
const PREFIX: &str = "CPU";
const COMMAND: Command = Command {
    name: NAME,
    usage: USAGE,
    specs: &[Spec::value('w', "warning"), Spec::value('c', "critical")],
};

const STAT: &str = "/proc/stat";

const DEFAULT_WARNING: f64 = 90.0;
const DEFAULT_CRITICAL: f64 = 95.0;

/// The wait between the two readings of a first run: long enough for the
/// counters (in 10 ms ticks) to move by a meaningful amount, short enough
/// not to hold up a run.
const FIRST_RUN_WAIT: Duration = Duration::from_millis(250);

/// The first line of `/proc/stat`: cumulative time in each mode, in ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Ticks {
    user: u64,
    nice: u64,
    system: u64,
    idle: u64,
    iowait: u64,
    irq: u64,
    softirq: u64,
    steal: u64,
}

impl Ticks {
    fn total(&self) -> u64 {
        self.user
            + self.nice
            + self.system
            + self.idle
            + self.iowait
            + self.irq
            + self.softirq
            + self.steal
    }
}

/// Where the time between two readings went, in percent.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Shares {
    used: f64,
    user: f64,
    system: f64,
    iowait: f64,
    steal: f64,
}

/// A reading and when it was taken.
type Reading = (Ticks, Instant);

/// A parsed `builtin:cpu`, with the previous reading.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Cpu {
    warning: Option<Percent>,
    critical: Option<Percent>,
    previous: Carried<Option<Reading>>,
}

impl Cpu {
    pub(super) fn parse(args: &[String]) -> Result<Cpu, BuiltinError> {
        let (warning, critical) =
            percent_levels(&COMMAND, args, (DEFAULT_WARNING, DEFAULT_CRITICAL))?;
        Ok(Cpu { warning, critical, previous: Carried::default() })
    }

    pub(super) fn run(&self) -> Outcome {
        self.run_from(Path::new(STAT), FIRST_RUN_WAIT)
    }

    fn run_from(&self, stat: &Path, wait: Duration) -> Outcome {
        let read = || -> Result<Reading, String> {
            let text = read_text(stat)?;
            let ticks = parse_stat(&text).ok_or_else(|| {
                let line = text.lines().next().unwrap_or_default();
                format!("cannot parse {}: {line:?}", stat.display())
            })?;
            Ok((ticks, Instant::now()))
        };
        let mut previous = self.previous.lock();
        let now = match read() {
            Ok(reading) => reading,
            Err(error) => return Outcome::unknown(PREFIX, error),
        };
        let (before, now) = match previous.filter(|before| shares(before.0, now.0).is_some()) {
            Some(before) => (before, now),
            None => {
                std::thread::sleep(wait);
                match read() {
                    Ok(later) => (now, later),
                    Err(error) => return Outcome::unknown(PREFIX, error),
                }
            }
        };
        *previous = Some(now);
        match shares(before.0, now.0) {
            Some(shares) => self.evaluate(shares, now.1.duration_since(before.1)),
            None => Outcome::unknown(
                PREFIX,
                format!("the counters in {} did not move in {:?}", stat.display(), wait),
            ),
        }
    }

    /// The result for these shares, measured over `window`.
    fn evaluate(&self, shares: Shares, window: Duration) -> Outcome {
        let above = |level: &Option<Percent>| level.as_ref().is_some_and(|l| shares.used > l.value);
        let state = if above(&self.critical) {
            State::Critical
        } else if above(&self.warning) {
            State::Warning
        } else {
            State::Ok
        };
        let whole = |value: f64| value.round() as u64;
        let text = format!(
            "{}% used (user {}%, system {}%, steal {}%), iowait {}%, over {}",
            ceil_percent(shares.used),
            whole(shares.user),
            whole(shares.system),
            whole(shares.steal),
            whole(shares.iowait),
            window_text(window)
        );
        let mut outcome = Outcome::new(PREFIX, state, text);
        let as_written = |level: &Option<Percent>| level.as_ref().map(|l| l.text.clone());
        let share = |label: &str, value: f64, levels| {
            perf(label, round_to(value, 2), "%", levels, Some(0.0), Some(100.0))
        };
        outcome.perfdata = vec![
            share("used", shares.used, (as_written(&self.warning), as_written(&self.critical))),
            share("user", shares.user, (None, None)),
            share("system", shares.system, (None, None)),
            share("iowait", shares.iowait, (None, None)),
            share("steal", shares.steal, (None, None)),
        ];
        outcome
    }
}

/// `60 s`, or `0.25 s` for a first run's short window.
fn window_text(window: Duration) -> String {
    let seconds = window.as_secs_f64();
    if seconds < 10.0 { format!("{seconds:.2} s") } else { format!("{seconds:.0} s") }
}

/// The shares between two readings; `None` when no time passed or a
/// counter went backwards.
fn shares(before: Ticks, now: Ticks) -> Option<Shares> {
    let delta = |pick: fn(&Ticks) -> u64| pick(&now).checked_sub(pick(&before));
    let total = delta(Ticks::total).filter(|&total| total > 0)? as f64;
    let share = |ticks: u64| ticks as f64 * 100.0 / total;
    let user = delta(|t| t.user)? + delta(|t| t.nice)?;
    let system = delta(|t| t.system)? + delta(|t| t.irq)? + delta(|t| t.softirq)?;
    let steal = delta(|t| t.steal)?;
    let iowait = delta(|t| t.iowait)?;
    // Not used in a share, but idle going backwards means the counters
    // were reset (CPU hotplug) as surely as any other.
    delta(|t| t.idle)?;
    Some(Shares {
        used: share(user + system + steal),
        user: share(user),
        system: share(system),
        iowait: share(iowait),
        steal: share(steal),
    })
}

/// The `cpu` line of `/proc/stat` (`cpu  131091 0 31037 321212 3994 0 163
/// 170 0 0`). Kernels before 2.6.11 have fewer fields; the missing ones
/// count as 0.
fn parse_stat(text: &str) -> Option<Ticks> {
    let line = text.lines().find(|line| line.split_ascii_whitespace().next() == Some("cpu"))?;
    let numbers: Vec<u64> =
        line.split_ascii_whitespace().skip(1).map(str::parse).collect::<Result<_, _>>().ok()?;
    if numbers.len() < 4 {
        return None;
    }
    let field = |index: usize| numbers.get(index).copied().unwrap_or(0);
    Some(Ticks {
        user: field(0),
        nice: field(1),
        system: field(2),
        idle: field(3),
        iowait: field(4),
        irq: field(5),
        softirq: field(6),
        steal: field(7),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::builtin::BuiltinErrorKind;
    use crate::builtin::test_util::{rendered, words};

    fn cpu(args: &[&str]) -> Cpu {
        try_cpu(args).unwrap()
    }

    fn try_cpu(args: &[&str]) -> Result<Cpu, BuiltinError> {
        let args = words(args);
        Cpu::parse(&args)
    }

    fn ticks(user: u64, system: u64, idle: u64, iowait: u64, steal: u64) -> Ticks {
        Ticks { user, system, idle, iowait, steal, ..Ticks::default() }
    }

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn shares_between_readings() {
        let before = Ticks {
            user: 100,
            nice: 10,
            system: 50,
            idle: 1000,
            iowait: 5,
            irq: 1,
            softirq: 4,
            steal: 0,
        };
        let now = Ticks {
            user: 160,
            nice: 20,
            system: 70,
            idle: 1880,
            iowait: 25,
            irq: 2,
            softirq: 9,
            steal: 10,
        };
        // Deltas: user 60 + nice 10, system 20 + irq 1 + softirq 5, idle
        // 880, iowait 20, steal 10: total 1006.
        let shares = shares(before, now).unwrap();
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        assert!(close(shares.user, 70.0 * 100.0 / 1006.0));
        assert!(close(shares.system, 26.0 * 100.0 / 1006.0));
        assert!(close(shares.used, 106.0 * 100.0 / 1006.0));
        assert!(close(shares.iowait, 20.0 * 100.0 / 1006.0));
        assert!(close(shares.steal, 10.0 * 100.0 / 1006.0));
        assert_eq!(super::shares(now, now), None, "no time passed");
        assert_eq!(super::shares(now, before), None, "counters went back");
    }

    #[test]
    fn evaluation() {
        let shares = shares(ticks(0, 0, 0, 0, 0), ticks(80, 10, 100, 8, 2)).unwrap();
        let outcome = cpu(&[]).evaluate(shares, MINUTE);
        assert_eq!(outcome.state, State::Ok);
        assert_eq!(
            outcome.summary,
            "CPU OK - 46% used (user 40%, system 5%, steal 1%), iowait 4%, over 60 s"
        );
        let outcome = cpu(&["-w", "40%", "-c", "50%"]).evaluate(shares, MINUTE);
        assert_eq!(outcome.state, State::Warning);
        assert_eq!(
            rendered(&outcome),
            [
                "used=46%;40;50;0;100",
                "user=40%;;;0;100",
                "system=5%;;;0;100",
                "iowait=4%;;;0;100",
                "steal=1%;;;0;100",
            ]
        );
        let busy = super::shares(ticks(0, 0, 0, 0, 0), ticks(96, 0, 4, 0, 0)).unwrap();
        let outcome = cpu(&[]).evaluate(busy, Duration::from_millis(250));
        assert_eq!(outcome.state, State::Critical);
        assert_eq!(
            outcome.summary,
            "CPU CRITICAL - 96% used (user 96%, system 0%, steal 0%), iowait 0%, over 0.25 s"
        );
        assert_eq!(rendered(&outcome)[0], "used=96%;90;95;0;100");
        // At the level is not above it.
        let at = super::shares(ticks(0, 0, 0, 0, 0), ticks(90, 0, 10, 0, 0)).unwrap();
        assert_eq!(cpu(&[]).evaluate(at, MINUTE).state, State::Ok);
    }

    #[test]
    fn stat_lines() {
        let text = "cpu  131091 0 31037 321212 3994 0 163 170 0 0\ncpu0 65000 0 15000 160000 2000 0 80 85 0 0\nintr 1 2 3\n";
        assert_eq!(
            parse_stat(text),
            Some(Ticks {
                user: 131_091,
                nice: 0,
                system: 31_037,
                idle: 321_212,
                iowait: 3994,
                irq: 0,
                softirq: 163,
                steal: 170
            })
        );
        assert_eq!(
            parse_stat("cpu 1 2 3 4\n"),
            Some(Ticks { user: 1, nice: 2, system: 3, idle: 4, ..Ticks::default() })
        );
        for garbled in ["", "cpu 1 2 3\n", "cpu a b c d\n", "cpu0 1 2 3 4\n", "cpu 1 2 3 -4\n"] {
            assert_eq!(parse_stat(garbled), None, "{garbled:?}");
        }
    }

    #[test]
    fn first_run_takes_two_readings_then_keeps_the_last() {
        let dir = tempfile::tempdir().unwrap();
        let stat = dir.path().join("stat");
        std::fs::write(&stat, "cpu  100 0 0 900 0 0 0 0 0 0\n").unwrap();
        let check = cpu(&[]);
        // Both readings of the first run see the same file: nothing moved.
        let outcome = check.run_from(&stat, Duration::ZERO);
        assert_eq!(outcome.state, State::Unknown);
        assert_eq!(
            outcome.summary,
            format!("CPU UNKNOWN - the counters in {} did not move in 0ns", stat.display())
        );
        // Now 50 of 100 new ticks were busy.
        std::fs::write(&stat, "cpu  150 0 0 950 0 0 0 0 0 0\n").unwrap();
        let outcome = check.run_from(&stat, Duration::ZERO);
        assert_eq!(rendered(&outcome)[0], "used=50%;90;95;0;100");
        // A clone is the same check and carries on from the same reading.
        let clone = check.clone();
        std::fs::write(&stat, "cpu  250 0 0 950 0 0 0 0 0 0\n").unwrap();
        assert_eq!(rendered(&clone.run_from(&stat, Duration::ZERO))[0], "used=100%;90;95;0;100");
        assert_eq!(check, cpu(&[]), "what a check has seen takes no part in equality");
    }

    #[test]
    fn unreadable_or_garbled_stat_is_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let stat = dir.path().join("stat");
        let outcome = cpu(&[]).run_from(&stat, Duration::ZERO);
        assert_eq!(
            outcome.summary,
            format!("CPU UNKNOWN - cannot read {}: No such file or directory", stat.display())
        );
        std::fs::write(&stat, "cpu  lots of time\n").unwrap();
        let outcome = cpu(&[]).run_from(&stat, Duration::ZERO);
        assert_eq!(outcome.state, State::Unknown);
        assert_eq!(
            outcome.summary,
            format!("CPU UNKNOWN - cannot parse {}: \"cpu  lots of time\"", stat.display())
        );
    }

    #[test]
    fn bad_options() {
        let message = |args: &[&str]| try_cpu(args).unwrap_err().to_string();
        assert_eq!(
            message(&["-w", "90"]),
            r#"builtin:cpu: -w: "90" is not a percentage (write 90%)"#
        );
        assert_eq!(
            message(&["-w", "95%", "-c", "90%"]),
            "builtin:cpu: -w 95% is above -c 90%: the warning level must be the lower one"
        );
        assert_eq!(try_cpu(&["-r"]).unwrap_err().kind(), BuiltinErrorKind::UnknownOption);
    }

    #[test]
    fn smoke_on_this_machine() {
        let check = cpu(&[]);
        let first = check.run();
        assert_ne!(first.state, State::Unknown, "{}", first.summary);
        assert!(first.summary.starts_with("CPU "), "{}", first.summary);
        std::thread::sleep(Duration::from_millis(50));
        let second = check.run();
        let used = second.perfdata[0].value.unwrap();
        assert!((0.0..=100.0).contains(&used), "{second:?}");
    }
}
