//! `builtin:systemd [-u UNIT]... [--failed] [-w RANGE] [-c RANGE]
//! [-t SECONDS]`: systemd units, asked over D-Bus (see `systemd_bus.rs`).
//!
//! - `-u UNIT` (`--unit`, repeatable): CRITICAL unless the unit is active.
//!   A name without a type gets `.service`, as `systemctl` does
//!   (`-u nginx` is `nginx.service`). A unit systemd has not loaded (a
//!   typo, a package not installed) is CRITICAL `not-found`.
//! - Without `-u`, or with `--failed` (`-f`): the number of failed units,
//!   and their names. `-w`/`-c RANGE` are Nagios ranges on that number;
//!   default `-c 0`: critical at one failed unit.
//! - `-t SECONDS`: the deadline for connecting and every call
//!   (`--timeout`), default 10.
//!
//! On a machine or container without systemd (no system bus, or nothing
//! on it answering as `org.freedesktop.systemd1`) the check is UNKNOWN
//! `systemd is not running here: …`; it never waits past its deadline.
//!
//! Summaries: `SYSTEMD OK: nginx.service is active (running)`,
//! `SYSTEMD CRITICAL: nginx.service is failed (since
//! 2026-11-27T13:40:02Z)`, `SYSTEMD CRITICAL: 2 failed units:
//! backup.service, fstrim.timer`. Perfdata with `--failed`:
//! `failed=N;W;C;0`; with `-u`: `active=N;;;0;UNITS`, the units that are
//! active.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use super::args::{Command, RangeLevel, Spec, parse_timeout, range_thresholds};
use super::systemd_bus::{self, Answer, BusError, Query, UnitState};
use super::{BuiltinError, Outcome, SUMMARY_MAX, perf};
use crate::state::State;

pub(super) const NAME: &str = "systemd";
pub(super) const USAGE: &str =
    "builtin:systemd [-u UNIT]... [--failed] [-w RANGE] [-c RANGE] [-t SECONDS]";
const PREFIX: &str = "SYSTEMD";
const COMMAND: Command = Command {
    name: NAME,
    usage: USAGE,
    specs: &[
        Spec::value('u', "unit"),
        Spec::flag('f', "failed"),
        Spec::value('w', "warning"),
        Spec::value('c', "critical"),
        Spec::value('t', "timeout"),
    ],
};

const DEFAULT_CRITICAL: &str = "0";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Present when the machine was booted with systemd (sd_booted(3)).
const BOOTED_WITH_SYSTEMD: &str = "/run/systemd/system";

/// The unit types `systemctl` knows; a name ending in none gets `.service`.
const UNIT_TYPES: [&str; 11] = [
    "service",
    "socket",
    "target",
    "device",
    "mount",
    "automount",
    "swap",
    "timer",
    "path",
    "slice",
    "scope",
];

/// A parsed `builtin:systemd`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Systemd {
    units: Vec<String>,
    failed: bool,
    warning: Option<RangeLevel>,
    critical: Option<RangeLevel>,
    timeout: Duration,
}

impl Systemd {
    pub(super) fn parse(args: &[String]) -> Result<Systemd, BuiltinError> {
        let (mut units, mut failed) = (Vec::new(), false);
        let (mut warning, mut critical, mut timeout) = (None, None, None);
        for opt in COMMAND.parse(args)? {
            match opt.short {
                'u' => units
                    .push(unit_name(opt.value).map_err(|detail| COMMAND.bad_value('u', &detail))?),
                'f' => failed = true,
                'w' => COMMAND.set_once(&mut warning, opt, RangeLevel::parse)?,
                'c' => COMMAND.set_once(&mut critical, opt, RangeLevel::parse)?,
                _ => COMMAND.set_once(&mut timeout, opt, parse_timeout)?,
            }
        }
        let failed = failed || units.is_empty();
        if !failed && (warning.is_some() || critical.is_some()) {
            return Err(COMMAND.bad_value(
                if warning.is_some() { 'w' } else { 'c' },
                "levels apply to the number of failed units: add --failed, or drop them",
            ));
        }
        if warning.is_none() && critical.is_none() {
            critical = RangeLevel::parse(DEFAULT_CRITICAL).ok();
        }
        let timeout = timeout.unwrap_or(DEFAULT_TIMEOUT);
        Ok(Systemd { units, failed, warning, critical, timeout })
    }

    pub(super) fn activity(&self) -> String {
        "asking systemd over D-Bus".to_owned()
    }

    pub(super) fn run(&self) -> Outcome {
        let query = Query { units: &self.units, failed: self.failed };
        let booted = Path::new(BOOTED_WITH_SYSTEMD).exists();
        self.evaluate(systemd_bus::ask(&query, self.timeout), booted)
    }

    /// `booted`: whether `/run/systemd/system` exists, which explains a
    /// bus that cannot be reached.
    fn evaluate(&self, answer: Result<Answer, BusError>, booted: bool) -> Outcome {
        let answer = match answer {
            Ok(answer) => answer,
            Err(BusError::NotRunning(detail)) => {
                let mut text = format!("systemd is not running here: {detail}");
                if !booted {
                    text.push_str(&format!(
                        " ({BOOTED_WITH_SYSTEMD} does not exist: a container, or a system \
                         booted without systemd)"
                    ));
                }
                return unknown(text);
            }
            Err(BusError::TimedOut(after)) => {
                return unknown(format!("systemd did not answer within {} s", after.as_secs_f64()));
            }
            Err(BusError::Failed(detail)) => return unknown(detail),
        };
        let mut parts = Vec::new();
        let mut state = State::Ok;
        let mut long_output = String::new();
        let mut perfdata = Vec::new();
        if !self.units.is_empty() {
            let down: Vec<&UnitState> =
                answer.units.iter().filter(|unit| unit.active != "active").collect();
            if answer.units.len() > 1 {
                for unit in &answer.units {
                    let _ = writeln!(long_output, "{}", describe(unit));
                }
            }
            if down.is_empty() {
                parts.push(match answer.units.as_slice() {
                    [unit] => describe(unit),
                    units => format!("{} units active", units.len()),
                });
            } else {
                state = State::Critical;
                parts.extend(down.iter().take(SUMMARY_MAX).map(|unit| describe(unit)));
            }
            let active = (answer.units.len() - down.len()) as f64;
            let total = Some(answer.units.len() as f64);
            perfdata.push(perf("active", active, "", (None, None), Some(0.0), total));
        }
        if let Some(failed) = &answer.failed {
            let (thresholds, texts) = range_thresholds(&self.warning, &self.critical);
            let count = failed.len();
            state = state.worst(thresholds.evaluate(count as f64));
            parts.push(match count {
                0 => "no failed units".to_owned(),
                1 => format!("1 failed unit: {}", failed.join(", ")),
                _ => format!("{count} failed units: {}", list(failed)),
            });
            for name in failed {
                let _ = writeln!(long_output, "{name} is failed");
            }
            perfdata.push(perf("failed", count as f64, "", texts, Some(0.0), None));
        }
        let mut outcome = Outcome::with_summary(
            state,
            format!("{PREFIX} {}: {}", state.label(), parts.join("; ")),
        );
        outcome.long_output = long_output.trim_end().to_owned();
        outcome.perfdata = perfdata;
        outcome
    }
}

fn unknown(text: String) -> Outcome {
    Outcome::with_summary(State::Unknown, format!("{PREFIX} UNKNOWN: {text}"))
}

/// `nginx.service is failed (since 2026-11-27T13:40:02Z)`,
/// `ssh.service is active (running)`.
fn describe(unit: &UnitState) -> String {
    if unit.load == "not-found" {
        return format!("{} is not-found (no such unit is loaded)", unit.name);
    }
    match (unit.active.as_str(), unit.since) {
        ("active", _) => format!("{} is active ({})", unit.name, unit.sub),
        (active, Some(since)) => format!(
            "{} is {active} (since {})",
            unit.name,
            humantime::format_rfc3339_seconds(since)
        ),
        (active, None) => format!("{} is {active}", unit.name),
    }
}

/// Names for a summary, the first few and how many more.
fn list(names: &[String]) -> String {
    let shown = names.iter().take(SUMMARY_MAX).cloned().collect::<Vec<_>>().join(", ");
    match names.len().saturating_sub(SUMMARY_MAX) {
        0 => shown,
        more => format!("{shown} and {more} more"),
    }
}

/// A unit name as `systemctl` takes it: `.service` added to a name
/// without a type. Names systemd could never have are refused when the
/// config is read.
fn unit_name(text: &str) -> Result<String, String> {
    let valid = !text.is_empty()
        && text.len() <= 255
        && text.chars().all(|c| c.is_ascii_alphanumeric() || ":-_.\\@".contains(c));
    if !valid {
        return Err(format!(
            "{text:?} is not a unit name (letters, digits and :-_.\\@, e.g. nginx.service)"
        ));
    }
    let typed = text.rsplit_once('.').is_some_and(|(_, suffix)| UNIT_TYPES.contains(&suffix));
    Ok(if typed { text.to_owned() } else { format!("{text}.service") })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::{SystemTime, UNIX_EPOCH};

    use super::*;
    use crate::builtin::BuiltinErrorKind;
    use crate::builtin::test_util::{rendered, words};

    fn systemd(args: &[&str]) -> Result<Systemd, BuiltinError> {
        Systemd::parse(&words(args))
    }

    fn unit(name: &str, active: &str, sub: &str, since: Option<SystemTime>) -> UnitState {
        let load = if sub == "missing" { "not-found" } else { "loaded" };
        UnitState {
            name: name.to_owned(),
            load: load.to_owned(),
            active: active.to_owned(),
            sub: sub.to_owned(),
            since,
        }
    }

    fn at(seconds: u64) -> Option<SystemTime> {
        Some(UNIX_EPOCH + Duration::from_secs(seconds))
    }

    #[test]
    fn options_are_validated_when_the_config_is_read() {
        let check = systemd(&["-u", "nginx", "-u", "fstrim.timer", "-u", "getty@tty1"]).unwrap();
        assert_eq!(check.units, ["nginx.service", "fstrim.timer", "getty@tty1.service"]);
        assert!(!check.failed);
        assert!(systemd(&[]).unwrap().failed);
        assert!(systemd(&["-u", "a", "--failed"]).unwrap().failed);
        let error = systemd(&["-u", "nginx;rm"]).unwrap_err();
        assert_eq!(error.kind(), BuiltinErrorKind::BadValue);
        assert!(error.to_string().contains("is not a unit name"), "{error}");
        let error = systemd(&["-u", "nginx", "-w", "1"]).unwrap_err();
        assert!(error.to_string().contains("add --failed"), "{error}");
        assert!(systemd(&["-t", "0"]).is_err());
        assert!(systemd(&["-z"]).is_err());
    }

    #[test]
    fn an_active_unit_is_ok_and_any_other_state_critical_with_its_time() {
        let check = systemd(&["-u", "nginx"]).unwrap();
        let answer = |state: UnitState| Ok(Answer { units: vec![state], failed: None });
        let ok = check.evaluate(answer(unit("nginx.service", "active", "running", None)), true);
        assert_eq!(ok.state, State::Ok);
        assert_eq!(ok.summary, "SYSTEMD OK: nginx.service is active (running)");
        assert_eq!(rendered(&ok), ["active=1;;;0;1"]);
        let failed = check
            .evaluate(answer(unit("nginx.service", "failed", "failed", at(1_800_000_000))), true);
        assert_eq!(failed.state, State::Critical);
        assert_eq!(
            failed.summary,
            "SYSTEMD CRITICAL: nginx.service is failed (since 2027-01-15T08:00:00Z)"
        );
        assert_eq!(rendered(&failed), ["active=0;;;0;1"]);
        let missing =
            check.evaluate(answer(unit("nginx.service", "inactive", "missing", None)), true);
        assert_eq!(
            missing.summary,
            "SYSTEMD CRITICAL: nginx.service is not-found (no such unit is loaded)"
        );
        let starting =
            check.evaluate(answer(unit("nginx.service", "activating", "start", None)), true);
        assert_eq!(starting.state, State::Critical);
    }

    #[test]
    fn several_units_name_only_the_ones_down_in_the_summary() {
        let check = systemd(&["-u", "a", "-u", "b", "-u", "c"]).unwrap();
        let units = vec![
            unit("a.service", "active", "running", None),
            unit("b.service", "inactive", "dead", at(1_800_000_000)),
            unit("c.service", "active", "exited", None),
        ];
        let outcome = check.evaluate(Ok(Answer { units: units.clone(), failed: None }), true);
        assert_eq!(
            outcome.summary,
            "SYSTEMD CRITICAL: b.service is inactive (since 2027-01-15T08:00:00Z)"
        );
        assert_eq!(outcome.long_output.lines().count(), 3);
        let mut all_up = units;
        all_up[1] = unit("b.service", "active", "running", None);
        let outcome = check.evaluate(Ok(Answer { units: all_up, failed: None }), true);
        assert_eq!(outcome.summary, "SYSTEMD OK: 3 units active");
    }

    #[test]
    fn failed_units_are_counted_against_the_ranges() {
        let failed = |names: &[&str]| {
            Ok(Answer {
                units: Vec::new(),
                failed: Some(names.iter().map(|name| (*name).to_owned()).collect()),
            })
        };
        let check = systemd(&[]).unwrap();
        let none = check.evaluate(failed(&[]), true);
        assert_eq!((none.state, none.summary.as_str()), (State::Ok, "SYSTEMD OK: no failed units"));
        assert_eq!(rendered(&none), ["failed=0;;0;0"]);
        let two = check.evaluate(failed(&["backup.service", "fstrim.timer"]), true);
        assert_eq!(two.state, State::Critical);
        assert_eq!(two.summary, "SYSTEMD CRITICAL: 2 failed units: backup.service, fstrim.timer");
        let lenient = systemd(&["-w", "0", "-c", "3"]).unwrap();
        assert_eq!(lenient.evaluate(failed(&["a.service"]), true).state, State::Warning);
        let many: Vec<String> = (0..10).map(|i| format!("u{i}.service")).collect();
        let names: Vec<&str> = many.iter().map(String::as_str).collect();
        let outcome = check.evaluate(failed(&names), true);
        assert!(outcome.summary.ends_with("u7.service and 2 more"), "{}", outcome.summary);
    }

    #[test]
    fn no_systemd_is_unknown_and_says_why() {
        let check = systemd(&[]).unwrap();
        let gone = Err(BusError::NotRunning("cannot reach the system bus: No such file".into()));
        let outcome = check.evaluate(gone.clone(), false);
        assert_eq!(outcome.state, State::Unknown);
        assert_eq!(
            outcome.summary,
            "SYSTEMD UNKNOWN: systemd is not running here: cannot reach the system bus: No such \
             file (/run/systemd/system does not exist: a container, or a system booted without \
             systemd)"
        );
        let slow = check.evaluate(Err(BusError::TimedOut(Duration::from_secs(10))), true);
        assert_eq!(slow.summary, "SYSTEMD UNKNOWN: systemd did not answer within 10 s");
    }

    /// This machine, for real: where there is no systemd (a container, as
    /// CI's is), the check says so promptly; where there is, it answers.
    #[test]
    fn on_this_machine_it_answers_or_says_systemd_is_not_here() {
        let outcome = systemd(&["-t", "5"]).unwrap().run();
        if Path::new(BOOTED_WITH_SYSTEMD).exists() {
            assert!(outcome.summary.starts_with("SYSTEMD "), "{}", outcome.summary);
        } else {
            assert_eq!(outcome.state, State::Unknown);
            assert!(
                outcome.summary.starts_with("SYSTEMD UNKNOWN: systemd is not running here: "),
                "{}",
                outcome.summary
            );
        }
    }
}
