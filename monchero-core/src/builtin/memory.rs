//! `builtin:memory [-w PCT%] [-c PCT%]`: memory in use, in percent.
//!
//! "Used" is MemTotal − MemAvailable from `/proc/meminfo`: MemAvailable is
//! the kernel's own estimate of what can be allocated without swapping,
//! page cache and reclaimable slab included, so a machine whose memory is
//! "full" of cache does not alert. (Kernels before 3.14 lack it; there the
//! estimate is MemFree + Buffers + Cached, what `free` used to show.)
//!
//! Defaults `-w 90% -c 95%`: below 10% available the kernel starts
//! reclaiming hard, below 5% the OOM killer is near.
//!
//! `/proc/meminfo` rather than `sysinfo(2)`: in a container under lxcfs it
//! is the container's memory, and only it has MemAvailable.

use std::path::Path;

use super::args::{Command, Percent, Spec, percent_levels};
use super::{BuiltinError, Outcome, ceil_percent, human_bytes, percent, perf, read_text, round_to};
use crate::state::State;

pub(super) const NAME: &str = "memory";
pub(super) const USAGE: &str = "builtin:memory [-w PCT%] [-c PCT%]";
const PREFIX: &str = "MEMORY";
const COMMAND: Command = Command {
    name: NAME,
    usage: USAGE,
    specs: &[Spec::value('w', "warning"), Spec::value('c', "critical")],
};

pub(super) const MEMINFO: &str = "/proc/meminfo";

const DEFAULT_WARNING: f64 = 90.0;
const DEFAULT_CRITICAL: f64 = 95.0;

/// A parsed `builtin:memory`: levels on the used percentage.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Memory {
    warning: Option<Percent>,
    critical: Option<Percent>,
}

impl Memory {
    pub(super) fn parse(args: &[String]) -> Result<Memory, BuiltinError> {
        let (warning, critical) =
            percent_levels(&COMMAND, args, (DEFAULT_WARNING, DEFAULT_CRITICAL))?;
        Ok(Memory { warning, critical })
    }

    pub(super) fn run(&self) -> Outcome {
        self.run_from(Path::new(MEMINFO))
    }

    fn run_from(&self, meminfo: &Path) -> Outcome {
        match read_text(meminfo) {
            Ok(text) => self.evaluate_meminfo(&text, meminfo),
            Err(error) => Outcome::unknown(PREFIX, error),
        }
    }

    fn evaluate_meminfo(&self, text: &str, path: &Path) -> Outcome {
        let Some(total) = meminfo_bytes(text, "MemTotal") else {
            return Outcome::unknown(PREFIX, format!("no MemTotal in {}", path.display()));
        };
        let available = meminfo_bytes(text, "MemAvailable").or_else(|| {
            let field = |key| meminfo_bytes(text, key);
            Some(field("MemFree")? + field("Buffers").unwrap_or(0) + field("Cached").unwrap_or(0))
        });
        let Some(available) = available else {
            return Outcome::unknown(
                PREFIX,
                format!("neither MemAvailable nor MemFree in {}", path.display()),
            );
        };
        if total == 0 {
            return Outcome::unknown(PREFIX, format!("MemTotal is 0 in {}", path.display()));
        }
        self.evaluate(total, available)
    }

    /// The result for `available` bytes out of `total`.
    fn evaluate(&self, total: u64, available: u64) -> Outcome {
        let used = total.saturating_sub(available);
        let used_percent = percent(used, total);
        let above =
            |level: &Option<Percent>| level.as_ref().is_some_and(|l| used_percent > l.value);
        let state = if above(&self.critical) {
            State::Critical
        } else if above(&self.warning) {
            State::Warning
        } else {
            State::Ok
        };
        let text = format!(
            "{}% used ({} of {})",
            ceil_percent(used_percent),
            human_bytes(used),
            human_bytes(total)
        );
        let mut outcome = Outcome::new(PREFIX, state, text);
        let in_bytes = |level: &Option<Percent>| {
            level.as_ref().map(|l| ((total as f64 * l.value / 100.0).floor() as u64).to_string())
        };
        let as_written = |level: &Option<Percent>| level.as_ref().map(|l| l.text.clone());
        outcome.perfdata = vec![
            perf(
                "used",
                used as f64,
                "B",
                (in_bytes(&self.warning), in_bytes(&self.critical)),
                Some(0.0),
                Some(total as f64),
            ),
            perf(
                "used_pct",
                round_to(used_percent, 2),
                "%",
                (as_written(&self.warning), as_written(&self.critical)),
                Some(0.0),
                Some(100.0),
            ),
        ];
        outcome
    }
}

/// A `/proc/meminfo` field in bytes (`MemTotal:  24684084 kB`). The kernel
/// writes every size field in kB, meaning KiB; a field without a unit
/// (`HugePages_Total`) is a count and returned as is.
pub(super) fn meminfo_bytes(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (name, rest) = line.split_once(':')?;
        if name != key {
            return None;
        }
        let mut words = rest.split_ascii_whitespace();
        let number: u64 = words.next()?.parse().ok()?;
        match words.next() {
            Some("kB") => number.checked_mul(1024),
            None => Some(number),
            Some(_) => None,
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::builtin::BuiltinErrorKind;
    use crate::builtin::test_util::{rendered, words};

    const MEMINFO_FIXTURE: &str = "\
MemTotal:       16384000 kB
MemFree:         1024000 kB
MemAvailable:   12615680 kB
Buffers:          204800 kB
Cached:          8192000 kB
SwapCached:            0 kB
SwapTotal:       2097148 kB
SwapFree:        1835004 kB
HugePages_Total:       0
";

    fn memory(args: &[&str]) -> Memory {
        try_memory(args).unwrap()
    }

    fn try_memory(args: &[&str]) -> Result<Memory, BuiltinError> {
        let args = words(args);
        Memory::parse(&args)
    }

    #[test]
    fn fixture_with_defaults() {
        let outcome = memory(&[]).evaluate_meminfo(MEMINFO_FIXTURE, Path::new(MEMINFO));
        assert_eq!(outcome.state, State::Ok);
        // 16384000 - 12615680 = 3768320 kB used, 23.0%.
        assert_eq!(outcome.summary, "MEMORY OK - 23% used (3.6 GiB of 15.6 GiB)");
        assert_eq!(
            rendered(&outcome),
            ["used=3858759680B;15099494400;15938355200;0;16777216000", "used_pct=23%;90;95;0;100",]
        );
    }

    #[test]
    fn levels_alert_above() {
        let gib = 1 << 30;
        let check = memory(&["-w", "80%", "-c", "90%"]);
        assert_eq!(check.evaluate(100 * gib, 20 * gib).state, State::Ok);
        let warning = check.evaluate(100 * gib, 15 * gib);
        assert_eq!(warning.state, State::Warning);
        assert_eq!(warning.summary, "MEMORY WARNING - 85% used (85.0 GiB of 100.0 GiB)");
        assert_eq!(check.evaluate(100 * gib, 5 * gib).state, State::Critical);
        assert_eq!(check.evaluate(100 * gib, 10 * gib).state, State::Warning);
    }

    #[test]
    fn shown_percentage_rounds_up() {
        let outcome = memory(&[]).evaluate(1000, 98);
        assert_eq!(outcome.state, State::Warning);
        assert_eq!(outcome.summary, "MEMORY WARNING - 91% used (902 B of 1000 B)");
        assert_eq!(rendered(&outcome), ["used=902B;900;950;0;1000", "used_pct=90.2%;90;95;0;100"]);
    }

    #[test]
    fn one_level_alone() {
        let outcome = memory(&["-c", "97.5%"]).evaluate(1000, 30);
        assert_eq!(outcome.state, State::Ok);
        assert_eq!(rendered(&outcome), ["used=970B;;975;0;1000", "used_pct=97%;;97.5;0;100"]);
    }

    #[test]
    fn old_kernels_without_memavailable() {
        let old = "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 50 kB\nCached: 250 kB\n";
        let outcome = memory(&[]).evaluate_meminfo(old, Path::new(MEMINFO));
        assert_eq!(outcome.summary, "MEMORY OK - 60% used (600.0 KiB of 1000.0 KiB)");
    }

    #[test]
    fn broken_meminfo_is_unknown() {
        let path = Path::new(MEMINFO);
        let summary = |text: &str| memory(&[]).evaluate_meminfo(text, path).summary;
        assert_eq!(summary(""), "MEMORY UNKNOWN - no MemTotal in /proc/meminfo");
        assert_eq!(
            summary("MemTotal: 1000 kB\n"),
            "MEMORY UNKNOWN - neither MemAvailable nor MemFree in /proc/meminfo"
        );
        assert_eq!(
            summary("MemTotal: 0 kB\nMemAvailable: 0 kB\n"),
            "MEMORY UNKNOWN - MemTotal is 0 in /proc/meminfo"
        );
        let outcome = memory(&[]).run_from(Path::new("/nonexistent/meminfo"));
        assert_eq!(outcome.state, State::Unknown);
        assert_eq!(
            outcome.summary,
            "MEMORY UNKNOWN - cannot read /nonexistent/meminfo: No such file or directory"
        );
    }

    #[test]
    fn meminfo_fields() {
        assert_eq!(meminfo_bytes(MEMINFO_FIXTURE, "MemTotal"), Some(16_384_000 * 1024));
        assert_eq!(meminfo_bytes(MEMINFO_FIXTURE, "SwapFree"), Some(1_835_004 * 1024));
        assert_eq!(meminfo_bytes(MEMINFO_FIXTURE, "HugePages_Total"), Some(0));
        assert_eq!(meminfo_bytes(MEMINFO_FIXTURE, "Mem"), None);
        assert_eq!(meminfo_bytes("MemTotal: lots kB", "MemTotal"), None);
        assert_eq!(meminfo_bytes("MemTotal: 5 MB", "MemTotal"), None);
    }

    #[test]
    fn bad_options() {
        let message = |args: &[&str]| try_memory(args).unwrap_err().to_string();
        assert_eq!(
            message(&["-w", "90"]),
            r#"builtin:memory: -w: "90" is not a percentage (write 90%)"#
        );
        assert_eq!(
            message(&["-c", "101%"]),
            r#"builtin:memory: -c: "101%" is not between 0% and 100%"#
        );
        assert_eq!(
            message(&["-w", "95%", "-c", "90%"]),
            "builtin:memory: -w 95% is above -c 90%: the warning level must be the lower one"
        );
        assert_eq!(try_memory(&["-r"]).unwrap_err().kind(), BuiltinErrorKind::UnknownOption);
    }

    #[test]
    fn smoke_on_this_machine() {
        let outcome = memory(&[]).run();
        assert_ne!(outcome.state, State::Unknown, "{}", outcome.summary);
        assert!(outcome.summary.starts_with("MEMORY "), "{}", outcome.summary);
        assert!(outcome.summary.contains("% used ("), "{}", outcome.summary);
        let labels: Vec<&str> = outcome.perfdata.iter().map(|item| item.label.as_str()).collect();
        assert_eq!(labels, ["used", "used_pct"]);
        let used = &outcome.perfdata[0];
        assert_eq!(used.uom.as_deref(), Some("B"));
        assert!(used.value.unwrap() <= used.max.unwrap());
    }
}
