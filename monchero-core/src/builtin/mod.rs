//! Built-in checks, run natively in-process.
//!
//! A check whose command is `builtin:NAME ARGS...` (e.g. `builtin:disk -w 20%
//! -c 10% -p /`) runs here instead of as a plugin. Each one reads a `/proc`
//! file, calls `statvfs` or opens a connection (`tcp`, `http`, `ntp`,
//! `systemd`), which costs
//! microseconds where a plugin costs a fork and an exec: cheap enough to
//! run every few seconds, and available on
//! a machine without monitoring-plugins installed, which is what lets the
//! agent's embedded default config work anywhere.
//!
//! | check | like | measures | defaults |
//! | --- | --- | --- | --- |
//! | `builtin:load [-w W1,W5,W15] [-c C1,C5,C15] [-r]` | `check_load` | `/proc/loadavg`, alerts above | warning 2, 1.5, 1.2 and critical 4, 3, 2 *per CPU* |
//! | `builtin:cpu [-w PCT%] [-c PCT%]` | — | CPU busy since the previous run, from `/proc/stat`, alerts above | `-w 90% -c 95%` |
//! | `builtin:memory [-w PCT%] [-c PCT%]` | — | used = MemTotal − MemAvailable, alerts above | `-w 90% -c 95%` |
//! | `builtin:swap [-w LIMIT] [-c LIMIT]` | `check_swap` | free swap, alerts below | `-w 20% -c 10%` |
//! | `builtin:disk [-w LIMIT] [-c LIMIT] [-W PCT%] [-K PCT%] [-p PATH]... [-x PATH]... [-X FSTYPE]...` | `check_disk` | free space and inodes, alerts below | `-w 20% -c 10% -W 10% -K 5%` |
//! | `builtin:inodes [-W PCT%] [-K PCT%] [-p PATH]... [-x PATH]... [-X FSTYPE]...` | `check_disk -W -K` | free inodes, alerts below | `-W 10% -K 5%` |
//! | `builtin:net [-i IFACE]... [-w PER_S] [-c PER_S]` | — | errors, drops and throughput since the previous run, from `/proc/net/dev` | `-w 1 -c 10` per second |
//! | `builtin:procs [-w RANGE] [-c RANGE] [-C COMMAND] [-u USER] [-s STATES] [-a ARGS] [-k]` | `check_procs` | matching processes in `/proc` | none: counts |
//! | `builtin:file -f FILE [-w AGE] [-c AGE] [-W SIZE] [-C SIZE] [-i]` | `check_file_age` | a file's age and size | `-w 240 -c 600` seconds |
//! | `builtin:log -f FILE -e REGEX [-w RANGE] [-c RANGE]` | — | new lines matching REGEX since the previous run | `-w 0` |
//! | `builtin:tcp -H HOST -p PORT [-s SEND] [-e EXPECT] [-w SECONDS] [-c SECONDS] [-t SECONDS] [-S] [--sni NAME] [-D DAYS[,DAYS]] [--ca-file PEM]` | `check_tcp` | a TCP (or TLS) connection, its response time and certificate | timeout 10 s |
//! | `builtin:http -H HOST \| -I ADDRESS [-p PORT] [-u PATH] [-S] [-e STRING,...] [-s STRING] [-r REGEX] [-w SECONDS] [-c SECONDS] [-C DAYS[,DAYS]] ...` | `check_http` | an HTTP(S) request: status, body, response time, certificate | timeout 10 s; 4xx WARNING, 5xx CRITICAL |
//! | `builtin:ntp -H HOST [-p PORT] [-w RANGE] [-c RANGE] [-t SECONDS] [-q] [-o SECONDS]` | `check_ntp_time` | the clock's offset from an NTP server | `-w 60 -c 120` seconds |
//! | `builtin:systemd [-u UNIT]... [--failed] [-w RANGE] [-c RANGE] [-t SECONDS]` | `systemctl is-active`, `--failed` | units' active state, or failed units, over D-Bus | `-c 0` failed units |
//!
//! Option names are those of the monitoring-plugins equivalents, so a Nagios
//! user can move a command line over; [`BUILTINS`] lists them for
//! `monchero check list`. A `LIMIT` is free space as a percentage (`20%`) or
//! as a size (`500MB`); as in `check_disk`, size units are powers of 1024
//! (`MB` is MiB). A `RANGE` is a Nagios threshold range (`10`, `1:`, `@0`).
//!
//! **Defaults** apply per pair: when neither `-w` nor `-c` is given, both
//! take their defaults; when one is given, the other is not checked. Filling
//! in only the missing one could put a default critical level before the
//! user's own warning level, which would be worse than no level at all.
//!
//! **Results** have the shape of a plugin's: a state, a summary that reads
//! like the monitoring-plugins one (`LOAD OK - load average: 0.12, 0.30,
//! 0.25`, `PROCS OK: 2 processes with command name 'sshd'`), perfdata with
//! units and the thresholds, `exit_code: None`, the measured duration.
//!
//! **State between runs:** `cpu` and `net` compare cumulative counters with
//! those of the previous run, and `log` continues where the previous run
//! stopped. They keep that inside the [`BuiltinCheck`], in memory: a
//! restarted agent starts them afresh (a reload keeps a check whose
//! options did not change). Clones share
//! it (a clone is the same check), and it takes no part in equality.
//!
//! **Errors:** [`BuiltinCheck::from_args`] validates every option, so a bad
//! one is a config error a sysadmin reads when the config is loaded, never a
//! surprise at run time. [`BuiltinCheck::run`] never fails and never panics:
//! an unreadable or unparseable `/proc` file is an UNKNOWN result naming the
//! file.
//!
//! Inside, every check is three parts: parsing its options, reading (files,
//! syscalls) and evaluating (pure: text and numbers in, result out). The
//! tests feed the pure parts fixture text and numbers. `docs/checks.md` is
//! the user's reference.

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use crate::perfdata::PerfData;
use crate::result::CheckResult;
use crate::state::State;

mod args;
mod busy;
mod conn;
mod cpu;
mod disk;
mod file;
mod http;
mod http_response;
mod inodes;
mod load;
mod log;
mod memory;
mod mounts;
mod net;
mod ntp;
mod procs;
mod sntp;
mod swap;
mod systemd;
mod systemd_bus;
mod tcp;
mod tls;

/// A parsed, validated built-in check, ready to run many times.
///
/// Two checks are equal when they were given the same options (a config
/// reload can keep a check that did not change).
#[derive(Debug, Clone, PartialEq)]
pub struct BuiltinCheck {
    kind: Kind,
    busy: busy::Busy,
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Load(load::Load),
    Cpu(cpu::Cpu),
    Memory(memory::Memory),
    Swap(swap::Swap),
    Disk(disk::Disk),
    Inodes(inodes::InodeCheck),
    Net(net::Net),
    Procs(procs::Procs),
    File(file::FileCheck),
    Log(log::Log),
    Tcp(tcp::Tcp),
    Http(Box<http::Http>),
    Ntp(ntp::Ntp),
    Systemd(systemd::Systemd),
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
            cpu::NAME => Kind::Cpu(cpu::Cpu::parse(args)?),
            memory::NAME => Kind::Memory(memory::Memory::parse(args)?),
            swap::NAME => Kind::Swap(swap::Swap::parse(args)?),
            disk::NAME => Kind::Disk(disk::Disk::parse(args)?),
            inodes::NAME => Kind::Inodes(inodes::InodeCheck::parse(args)?),
            net::NAME => Kind::Net(net::Net::parse(args)?),
            procs::NAME => Kind::Procs(procs::Procs::parse(args)?),
            file::NAME => Kind::File(file::FileCheck::parse(args)?),
            log::NAME => Kind::Log(log::Log::parse(args)?),
            tcp::NAME => Kind::Tcp(tcp::Tcp::parse(args)?),
            http::NAME => Kind::Http(Box::new(http::Http::parse(args)?)),
            ntp::NAME => Kind::Ntp(ntp::Ntp::parse(args)?),
            systemd::NAME => Kind::Systemd(systemd::Systemd::parse(args)?),
            _ => return Err(BuiltinError::unknown_check(name)),
        };
        Ok(BuiltinCheck { kind, busy: busy::Busy::default() })
    }

    /// The check's name, without the prefix (`"disk"`).
    pub fn name(&self) -> &str {
        match self.kind {
            Kind::Load(_) => load::NAME,
            Kind::Cpu(_) => cpu::NAME,
            Kind::Memory(_) => memory::NAME,
            Kind::Swap(_) => swap::NAME,
            Kind::Disk(_) => disk::NAME,
            Kind::Inodes(_) => inodes::NAME,
            Kind::Net(_) => net::NAME,
            Kind::Procs(_) => procs::NAME,
            Kind::File(_) => file::NAME,
            Kind::Log(_) => log::NAME,
            Kind::Tcp(_) => tcp::NAME,
            Kind::Http(_) => http::NAME,
            Kind::Ntp(_) => ntp::NAME,
            Kind::Systemd(_) => systemd::NAME,
        }
    }

    /// Runs the check now and returns its result.
    ///
    /// Synchronous and cheap (it reads `/proc` and calls `statvfs`), but
    /// `statvfs` can block on a hung network mount, the first run of `cpu`
    /// and `net` waits 250 ms between two readings, and `log` reads up to
    /// 8 MiB: callers run it on a blocking thread under a timeout.
    ///
    /// While an earlier run of this check (or of a clone) has not returned,
    /// a run returns at once, UNKNOWN, naming what the earlier one is stuck
    /// on: a caller that gave up waiting strands at most one thread per
    /// check, however often it runs the check again.
    pub fn run(&self) -> CheckResult {
        let started = Instant::now();
        let outcome = match self.busy.enter(SystemTime::now()) {
            Ok(_entered) => self.run_kind(),
            Err(since) => busy::still_blocked(&self.name().to_uppercase(), &self.activity(), since),
        };
        outcome.into_result(started.elapsed())
    }

    /// What a run spends its time on, and may block in, in words for a
    /// summary: `in statfs on /mnt/nfs`, `reading /var/log/syslog`.
    pub fn activity(&self) -> String {
        match &self.kind {
            Kind::Load(_)
            | Kind::Cpu(_)
            | Kind::Memory(_)
            | Kind::Swap(_)
            | Kind::Net(_)
            | Kind::Procs(_) => "reading /proc".to_owned(),
            Kind::Disk(check) => check.activity(),
            Kind::Inodes(check) => check.activity(),
            Kind::File(check) => check.activity(),
            Kind::Log(check) => check.activity(),
            Kind::Tcp(_) | Kind::Http(_) => "connecting".to_owned(),
            Kind::Ntp(check) => check.activity(),
            Kind::Systemd(check) => check.activity(),
        }
    }

    fn run_kind(&self) -> Outcome {
        match &self.kind {
            Kind::Load(check) => check.run(),
            Kind::Cpu(check) => check.run(),
            Kind::Memory(check) => check.run(),
            Kind::Swap(check) => check.run(),
            Kind::Disk(check) => check.run(),
            Kind::Inodes(check) => check.run(),
            Kind::Net(check) => check.run(),
            Kind::Procs(check) => check.run(),
            Kind::File(check) => check.run(),
            Kind::Log(check) => check.run(),
            Kind::Tcp(check) => check.run(),
            Kind::Http(check) => check.run(),
            Kind::Ntp(check) => check.run(),
            Kind::Systemd(check) => check.run(),
        }
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
    /// A command line that uses it (`builtin:disk -w 15% -c 5% -p /`).
    pub example: &'static str,
}

/// Every built-in check, in the order `monchero check list` shows them.
pub const BUILTINS: &[BuiltinInfo] = &[
    BuiltinInfo {
        name: load::NAME,
        description: "load average over 1, 5 and 15 minutes (per CPU with -r); alerts above the thresholds",
        usage: load::USAGE,
        example: "builtin:load -r -w 2,1.5,1.2 -c 4,3,2",
    },
    BuiltinInfo {
        name: cpu::NAME,
        description: "CPU time in use since the previous run, in percent (iowait and steal apart); alerts above the thresholds",
        usage: cpu::USAGE,
        example: "builtin:cpu -w 90% -c 95%",
    },
    BuiltinInfo {
        name: memory::NAME,
        description: "memory in use (MemTotal - MemAvailable) in percent; alerts above the thresholds",
        usage: memory::USAGE,
        example: "builtin:memory -w 90% -c 95%",
    },
    BuiltinInfo {
        name: swap::NAME,
        description: "free swap space (percent or size); alerts below the limits",
        usage: swap::USAGE,
        example: "builtin:swap -w 20% -c 10%",
    },
    BuiltinInfo {
        name: disk::NAME,
        description: "free space and inodes of mounted filesystems (percent or size); alerts below the limits",
        usage: disk::USAGE,
        example: "builtin:disk -w 15% -c 5% -p / -p /var",
    },
    BuiltinInfo {
        name: inodes::NAME,
        description: "free inodes of mounted filesystems, in percent; alerts below the limits",
        usage: inodes::USAGE,
        example: "builtin:inodes -W 10% -K 5%",
    },
    BuiltinInfo {
        name: net::NAME,
        description: "network errors, drops and throughput per second since the previous run; alerts above the thresholds",
        usage: net::USAGE,
        example: "builtin:net -i eth0 -w 1 -c 10",
    },
    BuiltinInfo {
        name: procs::NAME,
        description: "number of processes, filtered by name, user, state or arguments; alerts outside the ranges",
        usage: procs::USAGE,
        example: "builtin:procs -C sshd -w 1: -c 1:",
    },
    BuiltinInfo {
        name: file::NAME,
        description: "a file's age and size (a backup, a heartbeat); alerts when older or smaller, or missing",
        usage: file::USAGE,
        example: "builtin:file -f /var/backups/db.dump -w 1d -c 2d -C 1",
    },
    BuiltinInfo {
        name: log::NAME,
        description: "new lines of a log file matching a regex since the previous run; alerts outside the ranges",
        usage: log::USAGE,
        example: "builtin:log -f /var/log/syslog -e 'I/O error' -c 0",
    },
    BuiltinInfo {
        name: tcp::NAME,
        description: "a TCP connection, optionally TLS, sending a string and expecting one back; alerts on the response time and certificate expiry",
        usage: tcp::USAGE,
        example: "builtin:tcp -H 127.0.0.1 -p 22 -e SSH- -w 1 -c 5",
    },
    BuiltinInfo {
        name: http::NAME,
        description: "an HTTP(S) request: status, body string or regex, response time, TLS chain and certificate expiry",
        usage: http::USAGE,
        example: "builtin:http -H 127.0.0.1 -u /health -s ok -w 2 -c 5",
    },
    BuiltinInfo {
        name: ntp::NAME,
        description: "the clock's offset from an NTP server (SNTP); alerts outside the ranges, or when the server is unsynchronised",
        usage: ntp::USAGE,
        example: "builtin:ntp -H ntp.example.net -w 0.5 -c 1",
    },
    BuiltinInfo {
        name: systemd::NAME,
        description: "systemd units over D-Bus: each -u UNIT must be active; without -u, the number of failed units",
        usage: systemd::USAGE,
        example: "builtin:systemd -u nginx -u postgresql",
    },
];

/// The most items (filesystems, interfaces) a summary names; the long
/// output has them all.
const SUMMARY_MAX: usize = 8;

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
    /// An option the check cannot do without was not given (`builtin:file`
    /// without `-f`); the message shows the usage.
    MissingOption,
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

    /// An outcome whose summary is written whole, for checks whose
    /// monitoring-plugins twin writes `PROCS OK: …` rather than
    /// `PREFIX STATE - …`.
    fn with_summary(state: State, summary: String) -> Outcome {
        Outcome { state, summary, long_output: String::new(), perfdata: Vec::new() }
    }

    fn into_result(self, duration: Duration) -> CheckResult {
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

/// What a check keeps from one run to the next: the previous reading of a
/// counter, the position in a log file.
///
/// Clones share it: the daemon runs a clone of the configured check, and a
/// clone is the same check. It takes no part in equality, which is about
/// options (a reload keeps a check whose options did not change).
struct Carried<T>(Arc<Mutex<T>>);

impl<T> Carried<T> {
    /// The state, for the length of a run; runs of the same check take
    /// turns. A run that panicked while holding it can have left it stale
    /// at worst, so a poisoned lock is taken over rather than passed on.
    fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T: Default> Default for Carried<T> {
    fn default() -> Self {
        Carried(Arc::new(Mutex::new(T::default())))
    }
}

impl<T> Clone for Carried<T> {
    fn clone(&self) -> Self {
        Carried(Arc::clone(&self.0))
    }
}

impl<T> PartialEq for Carried<T> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl<T> fmt::Debug for Carried<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Carried(..)")
    }
}

/// How long a rate or average was measured over: `60 s`, or `0.25 s` for
/// a first run's short window.
fn window_text(window: Duration) -> String {
    let seconds = window.as_secs_f64();
    if seconds < 10.0 { format!("{seconds:.2} s") } else { format!("{seconds:.0} s") }
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

/// Helpers shared by the built-in checks' tests.
#[cfg(test)]
mod test_util {
    use super::Outcome;

    /// Command-line words from literals, as a config would split them.
    pub fn words(args: &[&str]) -> Vec<String> {
        args.iter().map(|arg| (*arg).to_owned()).collect()
    }

    /// An outcome's perfdata in the guidelines' syntax, for exact asserts.
    pub fn rendered(outcome: &Outcome) -> Vec<String> {
        outcome.perfdata.iter().map(ToString::to_string).collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::builtin::test_util::words;

    #[test]
    fn from_args_knows_every_listed_builtin() {
        for info in BUILTINS {
            let words = shlex_free_split(info.example);
            let (name, args) = words.split_first().unwrap();
            let check = BuiltinCheck::from_args(name, args).unwrap();
            assert_eq!(check.name(), info.name);
            assert!(info.usage.starts_with(&format!("builtin:{} ", info.name)), "{}", info.usage);
        }
    }

    /// Splits an example on spaces, keeping a '…' quoted word whole.
    fn shlex_free_split(text: &str) -> Vec<String> {
        let mut words = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find(|c: char| c != ' ') {
            rest = &rest[start..];
            let (word, tail) = match rest.strip_prefix('\'') {
                Some(quoted) => quoted.split_once('\'').unwrap(),
                None => rest.split_once(' ').unwrap_or((rest, "")),
            };
            words.push(word.to_owned());
            rest = tail;
        }
        words
    }

    #[test]
    fn carried_state_is_shared_by_clones_and_ignored_by_equality() {
        let carried: Carried<u32> = Carried::default();
        let clone = carried.clone();
        *clone.lock() += 1;
        assert_eq!(*carried.lock(), 1);
        assert_eq!(carried, Carried(Arc::new(Mutex::new(7))));
        assert_eq!(format!("{carried:?}"), "Carried(..)");
    }

    #[test]
    fn windows_read_as_seconds() {
        assert_eq!(window_text(Duration::from_secs(60)), "60 s");
        assert_eq!(window_text(Duration::from_millis(250)), "0.25 s");
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
            "builtin:dsk: no such built-in check (known: load, cpu, memory, swap, disk, inodes, \
             net, procs, file, log, tcp, http, ntp, systemd)"
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
