//! `builtin:swap [-w LIMIT] [-c LIMIT]`: free swap space, like `check_swap`.
//!
//! A LIMIT is the *free* swap below which to alert, as in `check_swap`:
//! `-w 20%` warns when less than 20% is free, `-c 500MB` is critical when
//! less than 500 MiB is (sizes need a unit; powers of 1024).
//!
//! Defaults `-w 20% -c 10%`: Linux parks idle pages in swap, so a swap half
//! used is normal and says nothing; a swap nearly full means the machine is
//! short of memory and will soon be out of it.
//!
//! No swap configured is OK ("no swap configured"), where `check_swap`
//! says CRITICAL: running without swap is a choice (most cloud images and
//! Kubernetes nodes do), not an outage, and the memory check watches what
//! matters there.
//!
//! Read from `/proc/meminfo` (SwapTotal, SwapFree), like the memory check,
//! so a container under lxcfs sees its own swap.

use std::path::Path;

use super::args::{self, Command, Limit, Spec};
use super::memory::{MEMINFO, meminfo_bytes};
use super::{BuiltinError, Outcome, floor_percent, human_bytes, percent, perf, read_text};
use crate::state::State;

pub(super) const NAME: &str = "swap";
pub(super) const USAGE: &str = "builtin:swap [-w LIMIT] [-c LIMIT]";
const PREFIX: &str = "SWAP";
const COMMAND: Command = Command {
    name: NAME,
    usage: USAGE,
    specs: &[Spec::value('w', "warning"), Spec::value('c', "critical")],
};

const DEFAULT_WARNING: Limit = Limit::Percent(20.0);
const DEFAULT_CRITICAL: Limit = Limit::Percent(10.0);

/// A parsed `builtin:swap`: lower limits on free swap.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Swap {
    warning: Option<Limit>,
    critical: Option<Limit>,
}

impl Swap {
    pub(super) fn parse(args: &[String]) -> Result<Swap, BuiltinError> {
        let mut warning = None;
        let mut critical = None;
        for opt in COMMAND.parse(args)? {
            match opt.short {
                'w' => COMMAND.set_once(&mut warning, opt, args::limit_with_text)?,
                _ => COMMAND.set_once(&mut critical, opt, args::limit_with_text)?,
            }
        }
        let (warning, critical) =
            args::check_limit_order(&COMMAND, (warning, critical), ('w', 'c'))?;
        let (warning, critical) =
            args::or_defaults(warning, critical, || (DEFAULT_WARNING, DEFAULT_CRITICAL));
        Ok(Swap { warning, critical })
    }

    pub(super) fn run(&self) -> Outcome {
        self.run_from(Path::new(MEMINFO))
    }

    fn run_from(&self, meminfo: &Path) -> Outcome {
        let text = match read_text(meminfo) {
            Ok(text) => text,
            Err(error) => return Outcome::unknown(PREFIX, error),
        };
        let field = |key| meminfo_bytes(&text, key);
        match (field("SwapTotal"), field("SwapFree")) {
            (Some(total), Some(free)) => self.evaluate(total, free),
            _ => Outcome::unknown(
                PREFIX,
                format!("no SwapTotal or SwapFree in {}", meminfo.display()),
            ),
        }
    }

    /// The result for `free` bytes of swap out of `total`.
    fn evaluate(&self, total: u64, free: u64) -> Outcome {
        if total == 0 {
            let mut outcome = Outcome::new(PREFIX, State::Ok, "no swap configured");
            outcome.perfdata = vec![perf("swap", 0.0, "B", (None, None), Some(0.0), Some(0.0))];
            return outcome;
        }
        let free = free.min(total);
        let below = |limit: Option<Limit>| limit.is_some_and(|limit| limit.alerts(free, total));
        let state = if below(self.critical) {
            State::Critical
        } else if below(self.warning) {
            State::Warning
        } else {
            State::Ok
        };
        let text = format!(
            "{}% free ({} of {})",
            floor_percent(percent(free, total)),
            human_bytes(free),
            human_bytes(total)
        );
        let mut outcome = Outcome::new(PREFIX, state, text);
        let used_threshold =
            |limit: Option<Limit>| limit.map(|limit| limit.used_threshold(total).to_string());
        outcome.perfdata = vec![perf(
            "swap",
            (total - free) as f64,
            "B",
            (used_threshold(self.warning), used_threshold(self.critical)),
            Some(0.0),
            Some(total as f64),
        )];
        outcome
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::builtin::BuiltinErrorKind;
    use crate::builtin::test_util::{rendered, words};

    const GIB: u64 = 1 << 30;

    fn swap(args: &[&str]) -> Swap {
        try_swap(args).unwrap()
    }

    fn try_swap(args: &[&str]) -> Result<Swap, BuiltinError> {
        let args = words(args);
        Swap::parse(&args)
    }

    #[test]
    fn defaults() {
        let outcome = swap(&[]).evaluate(2 * GIB, 1_879_048_192);
        assert_eq!(outcome.state, State::Ok);
        assert_eq!(outcome.summary, "SWAP OK - 87% free (1.8 GiB of 2.0 GiB)");
        assert_eq!(rendered(&outcome), ["swap=268435456B;1717986918;1932735283;0;2147483648"]);
        assert_eq!(swap(&[]).evaluate(100, 20).state, State::Ok);
        assert_eq!(swap(&[]).evaluate(100, 19).state, State::Warning);
        assert_eq!(swap(&[]).evaluate(100, 10).state, State::Warning);
        let critical = swap(&[]).evaluate(1000, 95);
        assert_eq!(critical.state, State::Critical);
        assert_eq!(critical.summary, "SWAP CRITICAL - 9% free (95 B of 1000 B)");
    }

    #[test]
    fn no_swap_is_ok() {
        let outcome = swap(&[]).evaluate(0, 0);
        assert_eq!(outcome.state, State::Ok);
        assert_eq!(outcome.summary, "SWAP OK - no swap configured");
        assert_eq!(rendered(&outcome), ["swap=0B;;;0;0"]);
    }

    #[test]
    fn size_limits() {
        let check = swap(&["-w", "1GB", "-c", "512MB"]);
        let outcome = check.evaluate(4 * GIB, 2 * GIB);
        assert_eq!(outcome.state, State::Ok);
        assert_eq!(rendered(&outcome), ["swap=2147483648B;3221225472;3758096384;0;4294967296"]);
        assert_eq!(check.evaluate(4 * GIB, GIB - 1).state, State::Warning);
        assert_eq!(check.evaluate(4 * GIB, GIB / 4).state, State::Critical);
        // Mixed kinds are fine.
        let mixed = swap(&["-w", "50%", "-c", "100MB"]);
        assert_eq!(mixed.evaluate(4 * GIB, GIB).state, State::Warning);
    }

    #[test]
    fn one_limit_alone() {
        let outcome = swap(&["-c", "5%"]).evaluate(100, 6);
        assert_eq!(outcome.state, State::Ok);
        assert_eq!(rendered(&outcome), ["swap=94B;;95;0;100"]);
    }

    #[test]
    fn free_above_total_is_clamped() {
        let outcome = swap(&[]).evaluate(100, 150);
        assert_eq!(outcome.summary, "SWAP OK - 100% free (100 B of 100 B)");
        assert_eq!(rendered(&outcome), ["swap=0B;80;90;0;100"]);
    }

    #[test]
    fn meminfo_problems_are_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meminfo");
        std::fs::write(&path, "MemTotal: 1000 kB\n").unwrap();
        let outcome = swap(&[]).run_from(&path);
        assert_eq!(outcome.state, State::Unknown);
        assert_eq!(
            outcome.summary,
            format!("SWAP UNKNOWN - no SwapTotal or SwapFree in {}", path.display())
        );
        std::fs::write(&path, "SwapTotal: 1000 kB\nSwapFree: 500 kB\n").unwrap();
        assert_eq!(
            swap(&[]).run_from(&path).summary,
            "SWAP OK - 50% free (500.0 KiB of 1000.0 KiB)"
        );
        let outcome = swap(&[]).run_from(&dir.path().join("nope"));
        assert!(
            outcome.summary.ends_with("nope: No such file or directory"),
            "{}",
            outcome.summary
        );
    }

    #[test]
    fn bad_options() {
        let message = |args: &[&str]| try_swap(args).unwrap_err().to_string();
        assert_eq!(
            message(&["-w", "20"]),
            r#"builtin:swap: -w: "20" is not a percentage or size (write 20% or 500MB)"#
        );
        assert_eq!(
            message(&["-w", "10%", "-c", "20%"]),
            "builtin:swap: -w 10% leaves less free space than -c 20%: \
             the warning limit must be the larger one"
        );
        let error = try_swap(&["-c", "1GB", "-c", "2GB"]).unwrap_err();
        assert_eq!(error.kind(), BuiltinErrorKind::RepeatedOption);
    }

    #[test]
    fn smoke_on_this_machine() {
        let outcome = swap(&[]).run();
        assert_ne!(outcome.state, State::Unknown, "{}", outcome.summary);
        assert!(outcome.summary.starts_with("SWAP "), "{}", outcome.summary);
        assert_eq!(outcome.perfdata.len(), 1);
        let item = &outcome.perfdata[0];
        assert_eq!((item.label.as_str(), item.uom.as_deref()), ("swap", Some("B")));
        assert!(item.value.unwrap() <= item.max.unwrap());
    }
}
