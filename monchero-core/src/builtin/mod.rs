//! Built-in checks: load, memory, swap and disk, run natively in-process.
//!
//! A check whose command is `builtin:NAME ARGS...` (e.g. `builtin:disk -w 20%
//! -c 10% -p /`) runs here instead of as a plugin. Each one reads a `/proc`
//! file or calls `statvfs`, which costs microseconds, where a plugin costs a
//! fork and an exec: cheap enough to run every few seconds, and available on
//! a machine without monitoring-plugins installed, which is what lets the
//! agent's embedded default config work anywhere.
//!
//! | check | like | measures | defaults |
//! | --- | --- | --- | --- |
//! | `builtin:load [-w W1,W5,W15] [-c C1,C5,C15] [-r]` | `check_load` | `/proc/loadavg`, alerts above | warning 2, 1.5, 1.2 and critical 4, 3, 2 *per CPU* |
//! | `builtin:memory [-w PCT%] [-c PCT%]` | — | used = MemTotal − MemAvailable, alerts above | `-w 90% -c 95%` |
//! | `builtin:swap [-w LIMIT] [-c LIMIT]` | `check_swap` | free swap, alerts below | `-w 20% -c 10%` |
//! | `builtin:disk [-w LIMIT] [-c LIMIT] [-W PCT%] [-K PCT%] [-p PATH]... [-x PATH]... [-X FSTYPE]...` | `check_disk` | free space and inodes, alerts below | `-w 20% -c 10% -W 10% -K 5%` |
//!
//! Option names are those of the monitoring-plugins equivalents, so a Nagios
//! user can move a command line over; [`BUILTINS`] lists them for
//! `monchero check list`. A `LIMIT` is free space as a percentage (`20%`) or
//! as a size (`500MB`); as in `check_disk`, size units are powers of 1024
//! (`MB` is MiB).
//!
//! **Defaults** apply per pair: when neither `-w` nor `-c` is given, both
//! take their defaults; when one is given, the other is not checked. Filling
//! in only the missing one could put a default critical level before the
//! user's own warning level, which would be worse than no level at all.
//!
//! **Results** have the shape of a plugin's: a state, a summary that reads
//! like the monitoring-plugins one (`LOAD OK - load average: 0.12, 0.30,
//! 0.25`), perfdata with units and the thresholds, `exit_code: None`, the
//! measured duration.
//!
//! **Errors:** [`BuiltinCheck::from_args`] validates every option, so a bad
//! one is a config error a sysadmin reads when the config is loaded, never a
//! surprise at run time. [`BuiltinCheck::run`] never fails and never panics:
//! an unreadable `/proc` file is an UNKNOWN result naming the file.
//!
//! Inside, every check is three parts: parsing its options, reading (files,
//! syscalls) and evaluating (pure: text and numbers in, result out). The
//! tests feed the pure parts fixture text and numbers.

use std::fmt;
use std::io;
use std::path::Path;
use std::time::Instant;

use crate::perfdata::PerfData;
use crate::result::CheckResult;
use crate::state::State;

mod args;
mod disk;
mod load;
mod memory;
mod swap;

/// A parsed, validated built-in check, ready to run many times.
///
/// Two checks are equal when they were given the same options (a config
/// reload can keep a check that did not change).
#[derive(Debug, Clone, PartialEq)]
pub struct BuiltinCheck {
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Load(load::Load),
    Memory(memory::Memory),
    Swap(swap::Swap),
    Disk(disk::Disk),
}

impl BuiltinCheck {
    /// Parses a command line's words: `name` without the `builtin:` prefix
    /// (a prefix is tolerated), then the options, e.g.
    /// `("disk", ["-w", "20%", "-c", "10%", "-p", "/"])`.
    ///
    /// Every option is validated here, so [`run`](Self::run) cannot meet a
    /// bad one.
    pub fn from_args(name: &str, args: &[String]) -> Result<BuiltinCheck, BuiltinError> {
        let name = name.strip_prefix("builtin:").unwrap_or(name);
        let kind = match name {
            load::NAME => Kind::Load(load::Load::parse(args)?),
            memory::NAME => Kind::Memory(memory::Memory::parse(args)?),
            swap::NAME => Kind::Swap(swap::Swap::parse(args)?),
            disk::NAME => Kind::Disk(disk::Disk::parse(args)?),
            _ => return Err(BuiltinError::unknown_check(name)),
        };
        Ok(BuiltinCheck { kind })
    }

    /// The check's name, without the prefix (`"disk"`).
    pub fn name(&self) -> &str {
        match self.kind {
            Kind::Load(_) => load::NAME,
            Kind::Memory(_) => memory::NAME,
            Kind::Swap(_) => swap::NAME,
            Kind::Disk(_) => disk::NAME,
        }
    }

    /// Runs the check now and returns its result.
    ///
    /// Synchronous and cheap (it reads `/proc` and calls `statvfs`), but
    /// `statvfs` can block on a hung network mount: callers run it on a
    /// blocking thread under a timeout.
    pub fn run(&self) -> CheckResult {
        let started = Instant::now();
        let outcome = match &self.kind {
            Kind::Load(check) => check.run(),
            Kind::Memory(check) => check.run(),
            Kind::Swap(check) => check.run(),
            Kind::Disk(check) => check.run(),
        };
        outcome.into_result(started.elapsed())
    }
}

/// One built-in check, as `monchero check list` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltinInfo {
    /// The name after `builtin:` (`"disk"`).
    pub name: &'static str,
    /// What it measures, in one line.
    pub description: &'static str,
    /// Its synopsis (`builtin:disk [-w LIMIT] ...`).
    pub usage: &'static str,
}

/// Every built-in check, in the order `monchero check list` shows them.
pub const BUILTINS: &[BuiltinInfo] = &[
    BuiltinInfo {
        name: load::NAME,
        description: "load average over 1, 5 and 15 minutes (per CPU with -r); alerts above the thresholds",
        usage: load::USAGE,
    },
    BuiltinInfo {
        name: memory::NAME,
        description: "memory in use (MemTotal - MemAvailable) in percent; alerts above the thresholds",
        usage: memory::USAGE,
    },
    BuiltinInfo {
        name: swap::NAME,
        description: "free swap space (percent or size); alerts below the limits",
        usage: swap::USAGE,
    },
    BuiltinInfo {
        name: disk::NAME,
        description: "free space and inodes of mounted filesystems (percent or size); alerts below the limits",
        usage: disk::USAGE,
    },
];

/// A built-in check's command line that cannot be used: an unknown check,
/// an unknown option, a bad value.
///
/// The message is for the sysadmin who wrote the config and names the
/// check, the option and what to write instead:
/// `builtin:disk: -w: "20" is not a percentage or size (write 20% or 500MB)`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("builtin:{check}: {message}")]
pub struct BuiltinError {
    check: String,
    kind: BuiltinErrorKind,
    message: String,
}

/// What is wrong with a built-in check's command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BuiltinErrorKind {
    /// There is no built-in check of that name; the message lists the known
    /// ones.
    UnknownCheck,
    /// An option the check does not have (`-z`); the message shows the usage.
    UnknownOption,
    /// A word that is not an option (`builtin:load 5`); no built-in takes
    /// positional arguments.
    UnexpectedArgument,
    /// An option that takes a value came last, or before another option.
    MissingValue,
    /// An option that may appear once appeared twice (`-w 5 -w 6`).
    RepeatedOption,
    /// An option's value is malformed or out of range (`-w 20`, `-c 150%`),
    /// or a flag was given a value (`--percpu=yes`).
    BadValue,
    /// The warning and critical levels are the wrong way round: the warning
    /// level would never be reached before the critical one.
    ConflictingThresholds,
}

impl BuiltinError {
    /// The check's name as given, without the `builtin:` prefix.
    pub fn check(&self) -> &str {
        &self.check
    }

    /// What kind of mistake it is.
    pub fn kind(&self) -> BuiltinErrorKind {
        self.kind
    }

    fn new(check: &str, kind: BuiltinErrorKind, message: String) -> Self {
        BuiltinError { check: check.to_owned(), kind, message }
    }

    fn unknown_check(name: &str) -> Self {
        let known: Vec<&str> = BUILTINS.iter().map(|info| info.name).collect();
        let message = format!("no such built-in check (known: {})", known.join(", "));
        BuiltinError::new(name, BuiltinErrorKind::UnknownCheck, message)
    }
}

/// What a check found, before the duration is known.
#[derive(Debug, Clone, PartialEq)]
struct Outcome {
    state: State,
    summary: String,
    long_output: String,
    perfdata: Vec<PerfData>,
}

impl Outcome {
    /// An outcome whose summary reads `PREFIX STATE - text`, as the
    /// monitoring-plugins ones do.
    fn new(prefix: &str, state: State, text: impl fmt::Display) -> Outcome {
        Outcome {
            state,
            summary: format!("{prefix} {} - {text}", state.label()),
            long_output: String::new(),
            perfdata: Vec::new(),
        }
    }

    fn unknown(prefix: &str, text: impl fmt::Display) -> Outcome {
        Outcome::new(prefix, State::Unknown, text)
    }

    fn into_result(self, duration: std::time::Duration) -> CheckResult {
        CheckResult {
            state: self.state,
            exit_code: None,
            summary: self.summary,
            long_output: self.long_output,
            perfdata: self.perfdata,
            duration,
            timed_out: false,
            truncated: false,
        }
    }
}

/// A perfdata item with a value, a unit and min/max.
fn perf(
    label: impl Into<String>,
    value: f64,
    uom: &str,
    thresholds: (Option<String>, Option<String>),
    min: Option<f64>,
    max: Option<f64>,
) -> PerfData {
    PerfData {
        label: label.into(),
        value: Some(value),
        uom: (!uom.is_empty()).then(|| uom.to_owned()),
        warn: thresholds.0,
        crit: thresholds.1,
        min,
        max,
    }
}

/// Reads a whole (small, `/proc`) text file; the error names the file.
fn read_text(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map_err(|error| format!("cannot read {}: {}", path.display(), io_error_text(&error)))
}

/// An I/O error as a sentence: `No such file or directory`, without the
/// `(os error 2)` that `io::Error` appends, which means nothing to the
/// operator reading a summary.
fn io_error_text(error: &io::Error) -> String {
    let text = error.to_string();
    match text.rfind(" (os error ") {
        Some(at) if text.ends_with(')') => text[..at].to_owned(),
        _ => text,
    }
}

/// `used` of `total` in percent; 0 when `total` is 0.
fn percent(part: u64, total: u64) -> f64 {
    if total == 0 { 0.0 } else { part as f64 * 100.0 / total as f64 }
}

/// A percentage for a summary, rounded *towards the alarm*: a value shown
/// next to a level never looks on the safe side of it while alerting
/// (90.2% used shows as 91%, 9.8% free as 9%). The small slack keeps
/// float noise (23.0000001) from moving an exact value.
fn ceil_percent(value: f64) -> u64 {
    (value - 1e-9).ceil().max(0.0) as u64
}

/// See [`ceil_percent`]: for "free" percentages, where low is bad.
fn floor_percent(value: f64) -> u64 {
    (value + 1e-9).floor().max(0.0) as u64
}

/// A number rounded to `decimals` places for perfdata, so it does not carry
/// float noise (`0.19500000000000001`).
fn round_to(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

/// Bytes for people: `512 B`, `3.6 GiB`, one decimal, powers of 1024.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    // 1023.96 would print as "1024.0 KiB"; move up a unit before that.
    while value >= 1023.95 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn words(args: &[&str]) -> Vec<String> {
        args.iter().map(|arg| (*arg).to_owned()).collect()
    }

    #[test]
    fn from_args_knows_every_listed_builtin() {
        for info in BUILTINS {
            let check = BuiltinCheck::from_args(info.name, &[]).unwrap();
            assert_eq!(check.name(), info.name);
            assert!(info.usage.starts_with(&format!("builtin:{} ", info.name)), "{}", info.usage);
        }
    }

    #[test]
    fn checks_compare_by_options() {
        let disk = |args: &[&str]| BuiltinCheck::from_args("disk", &words(args)).unwrap();
        assert_eq!(disk(&["-p", "/"]), disk(&["--path=/"]));
        assert_ne!(disk(&["-p", "/"]), disk(&["-p", "/var"]));
    }

    #[test]
    fn the_prefix_is_tolerated() {
        let check = BuiltinCheck::from_args("builtin:disk", &words(&["-p", "/"])).unwrap();
        assert_eq!(check.name(), "disk");
    }

    #[test]
    fn unknown_check_lists_the_known_ones() {
        let error = BuiltinCheck::from_args("dsk", &[]).unwrap_err();
        assert_eq!(error.kind(), BuiltinErrorKind::UnknownCheck);
        assert_eq!(error.check(), "dsk");
        assert_eq!(
            error.to_string(),
            "builtin:dsk: no such built-in check (known: load, memory, swap, disk)"
        );
    }

    #[test]
    fn errors_name_the_check() {
        let error = BuiltinCheck::from_args("disk", &words(&["-w", "20"])).unwrap_err();
        assert_eq!(error.kind(), BuiltinErrorKind::BadValue);
        assert_eq!(
            error.to_string(),
            r#"builtin:disk: -w: "20" is not a percentage or size (write 20% or 500MB)"#
        );
    }

    #[test]
    fn run_fills_the_plugin_fields() {
        let check = BuiltinCheck::from_args("memory", &[]).unwrap();
        let result = check.run();
        assert_eq!(result.exit_code, None);
        assert!(!result.timed_out);
        assert!(!result.truncated);
        assert!(result.duration > std::time::Duration::ZERO);
    }

    #[test]
    fn io_errors_drop_the_os_error_number() {
        let error = io::Error::from_raw_os_error(2);
        assert_eq!(io_error_text(&error), "No such file or directory");
        let custom = io::Error::other("stream did not contain valid UTF-8");
        assert_eq!(io_error_text(&custom), "stream did not contain valid UTF-8");
    }

    #[test]
    fn read_text_names_the_file() {
        assert_eq!(
            read_text(Path::new("/nonexistent/loadavg")).unwrap_err(),
            "cannot read /nonexistent/loadavg: No such file or directory"
        );
    }

    #[test]
    fn percentages_round_towards_the_alarm() {
        assert_eq!(ceil_percent(90.2), 91);
        assert_eq!(ceil_percent(90.0), 90);
        assert_eq!(ceil_percent(23.000_000_000_01), 23);
        assert_eq!(ceil_percent(0.0), 0);
        assert_eq!(floor_percent(9.8), 9);
        assert_eq!(floor_percent(10.0), 10);
        assert_eq!(floor_percent(9.999_999_999_99), 10);
        assert_eq!(percent(1, 0), 0.0);
        assert_eq!(percent(1, 4), 25.0);
    }

    #[test]
    fn human_bytes_uses_binary_units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1024), "1.0 KiB");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3_865_470_566), "3.6 GiB");
        assert_eq!(human_bytes(1024 * 1024 - 1), "1.0 MiB");
        assert_eq!(human_bytes(u64::MAX), "16.0 EiB");
    }

    #[test]
    fn round_to_removes_float_noise() {
        assert_eq!(round_to(0.39 / 2.0, 3), 0.195);
        assert_eq!(round_to(1.2 * 3.0, 2), 3.6);
    }
}
