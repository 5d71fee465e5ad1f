//! `builtin:load [-w W1,W5,W15] [-c C1,C5,C15] [-r]`: the load average, as
//! `check_load` reports it.
//!
//! Alerts when a load average is *above* its level. A single number applies
//! to all three averages. With `-r` the averages are divided by the number
//! of CPUs first (the levels are then per CPU) and the perfdata carries
//! both, as in `check_load` 2.3.
//!
//! Without `-w`/`-c` the levels are per CPU, scaled to this machine:
//! warning 2, 1.5, 1.2 and critical 4, 3, 2 times the CPU count. A load of
//! 1 per CPU is a machine exactly busy; 1.2 per CPU for 15 minutes means
//! work has been queueing for a long time, while the shorter averages get
//! more slack because builds and cron bursts spike them harmlessly. Fixed
//! numbers (`check_load -w 15,10,5`, a common copy-paste) would be too tight
//! for a 2-core VM's bursts or meaningless on a 64-core host; scaling makes
//! `builtin:load` with no options sensible on any machine.
//!
//! The CPU count is the number of `processor` entries in `/proc/cpuinfo`:
//! the load average is machine-wide, so it is divided by the machine's
//! CPUs, not by a container's CPU quota as `available_parallelism` would
//! (it is only the fallback). Under lxcfs both files are the container's.

use std::path::Path;

use super::args::{Command, Spec};
use super::{BuiltinError, Outcome, perf, read_text, round_to};
use crate::perfdata::PerfData;
use crate::state::State;
use crate::threshold::parse_number;

pub(super) const NAME: &str = "load";
pub(super) const USAGE: &str = "builtin:load [-w W1,W5,W15] [-c C1,C5,C15] [-r]";
const PREFIX: &str = "LOAD";
const COMMAND: Command = Command {
    name: NAME,
    usage: USAGE,
    specs: &[Spec::value('w', "warning"), Spec::value('c', "critical"), Spec::flag('r', "percpu")],
};

const LOADAVG: &str = "/proc/loadavg";
const CPUINFO: &str = "/proc/cpuinfo";

/// Default warning levels per CPU, for the 1, 5 and 15 minute averages.
const DEFAULT_WARNING_PER_CPU: [f64; 3] = [2.0, 1.5, 1.2];
/// Default critical levels per CPU.
const DEFAULT_CRITICAL_PER_CPU: [f64; 3] = [4.0, 3.0, 2.0];

const MINUTES: [u32; 3] = [1, 5, 15];

/// One level: its value and its text, as written, for the perfdata.
#[derive(Debug, Clone, PartialEq)]
struct Level {
    value: f64,
    text: String,
}

impl Level {
    /// A computed level, written without float noise (`3.6`, not
    /// `3.5999999999999996`).
    fn computed(value: f64) -> Level {
        let value = round_to(value, 2);
        Level { value, text: value.to_string() }
    }
}

type Levels = [Level; 3];

#[derive(Debug, Clone, PartialEq)]
enum Thresholds {
    /// Neither `-w` nor `-c`: the per-CPU defaults, resolved at run time
    /// since they depend on the CPU count.
    Default,
    Given {
        warning: Option<Levels>,
        critical: Option<Levels>,
    },
}

/// A parsed `builtin:load`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Load {
    thresholds: Thresholds,
    per_cpu: bool,
}

impl Load {
    pub(super) fn parse(args: &[String]) -> Result<Load, BuiltinError> {
        let mut warning = None;
        let mut critical = None;
        let mut per_cpu = false;
        for opt in COMMAND.parse(args)? {
            match opt.short {
                'w' => COMMAND.set_once(&mut warning, opt, parse_levels)?,
                'c' => COMMAND.set_once(&mut critical, opt, parse_levels)?,
                _ => per_cpu = true,
            }
        }
        if let (Some(warning), Some(critical)) = (&warning, &critical) {
            check_order(warning, critical)?;
        }
        let thresholds = if warning.is_none() && critical.is_none() {
            Thresholds::Default
        } else {
            Thresholds::Given { warning, critical }
        };
        Ok(Load { thresholds, per_cpu })
    }

    pub(super) fn run(&self) -> Outcome {
        self.run_from(Path::new(LOADAVG), Path::new(CPUINFO))
    }

    fn run_from(&self, loadavg: &Path, cpuinfo: &Path) -> Outcome {
        let averages = match read_text(loadavg) {
            Ok(text) => match parse_loadavg(&text) {
                Some(averages) => averages,
                None => {
                    let text = text.trim();
                    return Outcome::unknown(
                        PREFIX,
                        format!("cannot parse {}: {text:?}", loadavg.display()),
                    );
                }
            },
            Err(error) => return Outcome::unknown(PREFIX, error),
        };
        let cpus = if self.needs_cpus() { cpu_count(cpuinfo) } else { 1 };
        self.evaluate(averages, cpus)
    }

    fn needs_cpus(&self) -> bool {
        self.per_cpu || self.thresholds == Thresholds::Default
    }

    /// The result for these three averages on a machine with `cpus` CPUs.
    fn evaluate(&self, averages: [f64; 3], cpus: usize) -> Outcome {
        let cpus = cpus.max(1);
        let (warning, critical) = match &self.thresholds {
            Thresholds::Given { warning, critical } => (warning.clone(), critical.clone()),
            Thresholds::Default => {
                // The defaults are per CPU: as is with -r, scaled up without.
                let scale = if self.per_cpu { 1.0 } else { cpus as f64 };
                let levels =
                    |per_cpu: [f64; 3]| per_cpu.map(|level| Level::computed(level * scale));
                (Some(levels(DEFAULT_WARNING_PER_CPU)), Some(levels(DEFAULT_CRITICAL_PER_CPU)))
            }
        };
        let compared =
            if self.per_cpu { averages.map(|load| load / cpus as f64) } else { averages };

        let mut state = State::Ok;
        for (index, &value) in compared.iter().enumerate() {
            let above = |levels: &Option<Levels>| {
                levels.as_ref().is_some_and(|levels| value > levels[index].value)
            };
            if above(&critical) {
                state = state.worst(State::Critical);
            } else if above(&warning) {
                state = state.worst(State::Warning);
            }
        }

        let [one, five, fifteen] = averages;
        let text = if self.per_cpu {
            let [s1, s5, s15] = compared;
            let cpus_word = if cpus == 1 { "CPU" } else { "CPUs" };
            format!(
                "load average per CPU: {s1:.2}, {s5:.2}, {s15:.2} \
                 (total {one:.2}, {five:.2}, {fifteen:.2} on {cpus} {cpus_word})"
            )
        } else {
            format!("load average: {one:.2}, {five:.2}, {fifteen:.2}")
        };
        let mut outcome = Outcome::new(PREFIX, state, text);
        outcome.perfdata = perfdata(averages, compared, self.per_cpu, &warning, &critical);
        outcome
    }
}

/// `load1=…;W;C;0` for each average; with `-r`, as in `check_load` 2.3, the
/// raw average without levels followed by `scaled_load1=…;W;C;0`.
fn perfdata(
    averages: [f64; 3],
    scaled: [f64; 3],
    per_cpu: bool,
    warning: &Option<Levels>,
    critical: &Option<Levels>,
) -> Vec<PerfData> {
    let level = |levels: &Option<Levels>, index: usize| {
        levels.as_ref().map(|levels| levels[index].text.clone())
    };
    let mut items = Vec::new();
    for (index, minutes) in MINUTES.into_iter().enumerate() {
        let thresholds = (level(warning, index), level(critical, index));
        if per_cpu {
            items.push(perf(
                format!("load{minutes}"),
                averages[index],
                "",
                (None, None),
                Some(0.0),
                None,
            ));
            let value = round_to(scaled[index], 3);
            items.push(perf(
                format!("scaled_load{minutes}"),
                value,
                "",
                thresholds,
                Some(0.0),
                None,
            ));
        } else {
            items.push(perf(
                format!("load{minutes}"),
                averages[index],
                "",
                thresholds,
                Some(0.0),
                None,
            ));
        }
    }
    items
}

/// Parses `-w 15,10,5` or `-w 5` (all three the same).
fn parse_levels(text: &str) -> Result<Levels, String> {
    let error = || {
        format!(
            "{text:?} is not one or three comma-separated numbers \
             (write e.g. 5 or 15,10,5)"
        )
    };
    let levels = text
        .split(',')
        .map(|part| {
            let part = part.trim();
            match parse_number(part) {
                Some(value) if value >= 0.0 => Ok(Level { value, text: part.to_owned() }),
                _ => Err(error()),
            }
        })
        .collect::<Result<Vec<Level>, String>>()?;
    match <[Level; 3]>::try_from(levels) {
        Ok(three) => Ok(three),
        Err(levels) if levels.len() == 1 => {
            let one = &levels[0];
            Ok([one.clone(), one.clone(), one.clone()])
        }
        Err(_) => Err(error()),
    }
}

/// `check_load` refuses a critical level below the warning one; so do we.
fn check_order(warning: &Levels, critical: &Levels) -> Result<(), BuiltinError> {
    for ((warning, critical), minutes) in warning.iter().zip(critical).zip(MINUTES) {
        if warning.value > critical.value {
            return Err(COMMAND.conflict(format!(
                "the warning level for load{minutes} ({}) is above the critical one ({})",
                warning.text, critical.text
            )));
        }
    }
    Ok(())
}

/// The three averages of `/proc/loadavg` (`0.39 0.92 0.71 1/83 32606`).
fn parse_loadavg(text: &str) -> Option<[f64; 3]> {
    let mut fields = text.split_ascii_whitespace().map(parse_number);
    let averages = [fields.next()??, fields.next()??, fields.next()??];
    averages.iter().all(|&load| load >= 0.0).then_some(averages)
}

/// The CPUs the load average is spread over: `processor` entries in
/// `/proc/cpuinfo`, else `available_parallelism`, else 1.
fn cpu_count(cpuinfo: &Path) -> usize {
    let counted = read_text(cpuinfo).map(|text| count_processors(&text)).unwrap_or(0);
    if counted > 0 {
        return counted;
    }
    std::thread::available_parallelism().map_or(1, |count| count.get())
}

/// Counts `processor : N` lines (x86, ARM, RISC-V, POWER) and s390's
/// `processor N: …` lines.
fn count_processors(cpuinfo: &str) -> usize {
    cpuinfo
        .lines()
        .filter(|line| {
            line.split([' ', '\t', ':']).next() == Some("processor") && line.contains(':')
        })
        .count()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::builtin::BuiltinErrorKind;
    use crate::builtin::test_util::{rendered, words};

    fn load(args: &[&str]) -> Load {
        try_load(args).unwrap()
    }

    fn try_load(args: &[&str]) -> Result<Load, BuiltinError> {
        let args = words(args);
        Load::parse(&args)
    }

    #[test]
    fn default_levels_scale_with_the_cpus() {
        let outcome = load(&[]).evaluate([0.39, 0.92, 0.71], 2);
        assert_eq!(outcome.state, State::Ok);
        assert_eq!(outcome.summary, "LOAD OK - load average: 0.39, 0.92, 0.71");
        assert_eq!(outcome.long_output, "");
        assert_eq!(
            rendered(&outcome),
            ["load1=0.39;4;8;0", "load5=0.92;3;6;0", "load15=0.71;2.4;4;0"]
        );

        let outcome = load(&[]).evaluate([0.39, 0.92, 0.71], 3);
        assert_eq!(
            rendered(&outcome),
            ["load1=0.39;6;12;0", "load5=0.92;4.5;9;0", "load15=0.71;3.6;6;0"]
        );
    }

    #[test]
    fn default_levels_alert() {
        // 2 CPUs: warning 4, 3, 2.4; critical 8, 6, 4.
        assert_eq!(load(&[]).evaluate([4.0, 3.0, 2.4], 2).state, State::Ok);
        assert_eq!(load(&[]).evaluate([4.01, 0.0, 0.0], 2).state, State::Warning);
        assert_eq!(load(&[]).evaluate([0.0, 0.0, 2.5], 2).state, State::Warning);
        assert_eq!(load(&[]).evaluate([5.0, 6.5, 2.5], 2).state, State::Critical);
        assert_eq!(
            load(&[]).evaluate([9.0, 0.0, 0.0], 2).summary,
            "LOAD CRITICAL - load average: 9.00, 0.00, 0.00"
        );
    }

    #[test]
    fn given_levels_are_kept_as_written() {
        let check = load(&["-w", "15,10,5", "-c", "30,25,20"]);
        let outcome = check.evaluate([0.41, 0.37, 0.33], 8);
        assert_eq!(outcome.state, State::Ok);
        assert_eq!(
            rendered(&outcome),
            ["load1=0.41;15;30;0", "load5=0.37;10;25;0", "load15=0.33;5;20;0"]
        );
        assert_eq!(check.evaluate([16.0, 0.0, 0.0], 8).state, State::Warning);
        assert_eq!(check.evaluate([16.0, 0.0, 20.5], 8).state, State::Critical);

        let check = load(&["-w", "1.50", "-c", "3"]);
        let outcome = check.evaluate([1.6, 0.1, 0.1], 1);
        assert_eq!(outcome.state, State::Warning);
        assert_eq!(outcome.summary, "LOAD WARNING - load average: 1.60, 0.10, 0.10");
        assert_eq!(
            rendered(&outcome),
            ["load1=1.6;1.50;3;0", "load5=0.1;1.50;3;0", "load15=0.1;1.50;3;0"]
        );
    }

    #[test]
    fn one_level_alone_leaves_the_other_unchecked() {
        let check = load(&["-c", "10"]);
        let outcome = check.evaluate([9.0, 9.0, 9.0], 1);
        assert_eq!(outcome.state, State::Ok);
        assert_eq!(rendered(&outcome)[0], "load1=9;;10;0");
        assert_eq!(check.evaluate([11.0, 0.0, 0.0], 1).state, State::Critical);
        assert_eq!(load(&["-w", "1"]).evaluate([99.0, 0.0, 0.0], 1).state, State::Warning);
    }

    #[test]
    fn per_cpu() {
        let check = load(&["-r", "-w", "0.9", "-c", "1.5"]);
        let outcome = check.evaluate([0.39, 2.0, 3.2], 2);
        assert_eq!(outcome.state, State::Critical);
        assert_eq!(
            outcome.summary,
            "LOAD CRITICAL - load average per CPU: 0.20, 1.00, 1.60 (total 0.39, 2.00, 3.20 on 2 CPUs)"
        );
        assert_eq!(
            rendered(&outcome),
            [
                "load1=0.39;;;0",
                "scaled_load1=0.195;0.9;1.5;0",
                "load5=2;;;0",
                "scaled_load5=1;0.9;1.5;0",
                "load15=3.2;;;0",
                "scaled_load15=1.6;0.9;1.5;0",
            ]
        );
        let one_cpu = check.evaluate([0.5, 0.5, 0.5], 1);
        assert_eq!(
            one_cpu.summary,
            "LOAD OK - load average per CPU: 0.50, 0.50, 0.50 (total 0.50, 0.50, 0.50 on 1 CPU)"
        );
    }

    #[test]
    fn per_cpu_with_default_levels() {
        let outcome = load(&["-r"]).evaluate([3.0, 1.0, 1.0], 2);
        assert_eq!(outcome.state, State::Ok);
        assert_eq!(rendered(&outcome)[1], "scaled_load1=1.5;2;4;0");
        assert_eq!(rendered(&outcome)[5], "scaled_load15=0.5;1.2;2;0");
        assert_eq!(load(&["-r"]).evaluate([0.0, 0.0, 2.6], 2).state, State::Warning);
    }

    #[test]
    fn zero_cpus_counts_as_one() {
        let outcome = load(&["-r", "-w", "1", "-c", "2"]).evaluate([1.5, 0.0, 0.0], 0);
        assert_eq!(outcome.state, State::Warning);
    }

    #[test]
    fn bad_levels() {
        let message = |args: &[&str]| try_load(args).unwrap_err().to_string();
        assert_eq!(
            message(&["-w", "1,2"]),
            r#"builtin:load: -w: "1,2" is not one or three comma-separated numbers (write e.g. 5 or 15,10,5)"#
        );
        assert_eq!(
            message(&["-c", "high"]),
            r#"builtin:load: -c: "high" is not one or three comma-separated numbers (write e.g. 5 or 15,10,5)"#
        );
        assert_eq!(
            message(&["-w", "-1"]),
            r#"builtin:load: -w: "-1" is not one or three comma-separated numbers (write e.g. 5 or 15,10,5)"#
        );
        assert_eq!(
            message(&["-w", "15,10,5", "-c", "30,5,20"]),
            "builtin:load: the warning level for load5 (10) is above the critical one (5)"
        );
        let error = try_load(&["-w", "5", "-c", "4"]).unwrap_err();
        assert_eq!(error.kind(), BuiltinErrorKind::ConflictingThresholds);
        assert_eq!(try_load(&["-x"]).unwrap_err().kind(), BuiltinErrorKind::UnknownOption);
        assert_eq!(
            try_load(&["-w", "5", "-w", "6"]).unwrap_err().kind(),
            BuiltinErrorKind::RepeatedOption
        );
        // Spaces after the commas, as in a quoted argument, are fine.
        assert!(try_load(&["-w", "15, 10, 5", "-c", "30,25,20"]).is_ok());
    }

    #[test]
    fn loadavg_parsing() {
        assert_eq!(parse_loadavg("0.39 0.92 0.71 1/83 32606\n"), Some([0.39, 0.92, 0.71]));
        assert_eq!(parse_loadavg("12.00 7.50 3.25"), Some([12.0, 7.5, 3.25]));
        assert_eq!(parse_loadavg("0.39 0.92"), None);
        assert_eq!(parse_loadavg("a b c"), None);
        assert_eq!(parse_loadavg("-1 0 0"), None);
        assert_eq!(parse_loadavg(""), None);
    }

    #[test]
    fn processor_counting() {
        let x86 = "processor\t: 0\nvendor_id\t: GenuineIntel\n\nprocessor\t: 1\nvendor_id\t: GenuineIntel\n";
        assert_eq!(count_processors(x86), 2);
        let s390 = "vendor_id       : IBM/S390\n# processors    : 2\nprocessor 0: version = FF\nprocessor 1: version = FF\n";
        assert_eq!(count_processors(s390), 2);
        assert_eq!(count_processors(""), 0);
        assert_eq!(count_processors("processors: 4\n"), 0);
    }

    #[test]
    fn unreadable_or_garbled_loadavg_is_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("loadavg");
        let outcome = load(&[]).run_from(&missing, &missing);
        assert_eq!(outcome.state, State::Unknown);
        assert_eq!(
            outcome.summary,
            format!("LOAD UNKNOWN - cannot read {}: No such file or directory", missing.display())
        );
        assert!(outcome.perfdata.is_empty());

        std::fs::write(&missing, "garbage\n").unwrap();
        let outcome = load(&[]).run_from(&missing, &missing);
        assert_eq!(
            outcome.summary,
            format!("LOAD UNKNOWN - cannot parse {}: \"garbage\"", missing.display())
        );
    }

    #[test]
    fn cpu_count_falls_back_to_available_parallelism() {
        let expected = std::thread::available_parallelism().unwrap().get();
        assert_eq!(cpu_count(Path::new("/nonexistent/cpuinfo")), expected);
    }

    #[test]
    fn smoke_on_this_machine() {
        let outcome = load(&[]).run();
        assert_ne!(outcome.state, State::Unknown, "{}", outcome.summary);
        assert!(outcome.summary.starts_with("LOAD "), "{}", outcome.summary);
        assert!(outcome.summary.contains(" - load average: "), "{}", outcome.summary);
        let labels: Vec<&str> = outcome.perfdata.iter().map(|item| item.label.as_str()).collect();
        assert_eq!(labels, ["load1", "load5", "load15"]);
        assert!(outcome.perfdata.iter().all(|item| item.warn.is_some() && item.crit.is_some()));
        assert!(cpu_count(Path::new(CPUINFO)) >= 1);
    }
}
