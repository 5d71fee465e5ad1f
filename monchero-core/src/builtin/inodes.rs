//! `builtin:inodes [-W PCT%] [-K PCT%] [-p PATH]... [-x PATH]...
//! [-X FSTYPE]...`: free inodes per filesystem, like `check_disk`'s inode
//! options.
//!
//! A filesystem can run out of inodes with free space left (a mail spool,
//! a cache of small files), and then nothing can create a file on it.
//! `builtin:disk` watches inodes too; this check is for watching them
//! alone, with levels of their own, or on filesystems whose space another
//! check watches.
//!
//! - `-W`/`-K`: free inodes below which to alert, in percent, as
//!   `check_disk -W/-K`. Defaults `-W 10% -K 5%`, those of `builtin:disk`.
//! - `-p`, `-x`, `-X`: which filesystems, exactly as in `builtin:disk` (the
//!   same discovery of real mounted filesystems, shared in `mounts.rs`).
//!
//! Filesystems that have no fixed inode count (btrfs, vfat, some FUSE
//! filesystems report 0) cannot run out of them; they are left out and
//! named in the long output. Free is what a non-root user can use, as for
//! space. A filesystem that cannot be read is CRITICAL, as in
//! `builtin:disk`.
//!
//! Perfdata per filesystem, labelled by mount point: used inodes, the
//! levels turned into used inodes, 0 and the total:
//! `'/'=421473;15099494;15938355;0;16777216`.

use std::fmt::Write as _;

use super::args::{self, Command, Limit, LimitPair, Spec};
use super::mounts::{Filesystem, Inodes, Selection};
use super::{BuiltinError, Outcome, SUMMARY_MAX, floor_percent, percent, perf};
use crate::state::State;

pub(super) const NAME: &str = "inodes";
pub(super) const USAGE: &str =
    "builtin:inodes [-W PCT%] [-K PCT%] [-p PATH]... [-x PATH]... [-X FSTYPE]...";
const PREFIX: &str = "INODES";
const COMMAND: Command = Command {
    name: NAME,
    usage: USAGE,
    specs: &[
        Spec::value('W', "iwarning"),
        Spec::value('K', "icritical"),
        Spec::value('p', "path"),
        Spec::value('x', "exclude_device"),
        Spec::value('X', "exclude-type"),
    ],
};

const DEFAULT_WARNING: Limit = Limit::Percent(10.0);
const DEFAULT_CRITICAL: Limit = Limit::Percent(5.0);

/// A parsed `builtin:inodes`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct InodeCheck {
    limits: LimitPair,
    selection: Selection,
}

/// One filesystem with an inode count, or the error that kept us from
/// reading it.
#[derive(Debug, Clone, PartialEq)]
struct Measured {
    label: String,
    inodes: Result<Inodes, String>,
}

impl InodeCheck {
    pub(super) fn parse(args: &[String]) -> Result<InodeCheck, BuiltinError> {
        let (mut warning, mut critical) = (None, None);
        let mut selection = Selection::default();
        for opt in COMMAND.parse(args)? {
            match opt.short {
                'W' => COMMAND.set_once(&mut warning, opt, args::percent_limit_with_text)?,
                'K' => COMMAND.set_once(&mut critical, opt, args::percent_limit_with_text)?,
                _ => {
                    selection.take(&COMMAND, opt)?;
                }
            }
        }
        let (warning, critical) =
            args::check_limit_order(&COMMAND, (warning, critical), ('W', 'K'))?;
        let limits = args::or_defaults(warning, critical, || (DEFAULT_WARNING, DEFAULT_CRITICAL));
        Ok(InodeCheck { limits, selection })
    }

    pub(super) fn activity(&self) -> String {
        self.selection.activity()
    }

    pub(super) fn run(&self) -> Outcome {
        match self.selection.measure() {
            Ok((filesystems, mut notes)) => {
                let measured = with_inodes(filesystems, &mut notes);
                self.evaluate(&measured, &notes)
            }
            Err(error) => Outcome::unknown(PREFIX, error),
        }
    }

    /// The result for these filesystems, with `notes` (those left out) at
    /// the end of the long output.
    fn evaluate(&self, filesystems: &[Measured], notes: &[String]) -> Outcome {
        if filesystems.is_empty() {
            let mut outcome = Outcome::unknown(
                PREFIX,
                "no filesystem with an inode count to check (all excluded, or none has a fixed \
                 number of inodes)",
            );
            outcome.long_output = notes.join("\n");
            return outcome;
        }
        let states: Vec<State> = filesystems.iter().map(|fs| self.state_of(fs)).collect();
        let state = states.iter().copied().fold(State::Ok, State::worst);
        let shown: Vec<&Measured> = filesystems
            .iter()
            .zip(&states)
            .filter(|(_, fs_state)| state == State::Ok || fs_state.is_problem())
            .map(|(fs, _)| fs)
            .collect();
        let mut outcome = Outcome::new(PREFIX, state, summary_text(&shown));
        outcome.perfdata = filesystems
            .iter()
            .filter_map(|fs| {
                let inodes = fs.inodes.as_ref().ok()?;
                let threshold = |limit: Option<Limit>| {
                    limit.map(|limit| limit.used_threshold(inodes.total).to_string())
                };
                Some(perf(
                    fs.label.clone(),
                    (inodes.total - inodes.avail) as f64,
                    "",
                    (threshold(self.limits.0), threshold(self.limits.1)),
                    Some(0.0),
                    Some(inodes.total as f64),
                ))
            })
            .collect();
        if filesystems.len() > 1 || !notes.is_empty() {
            let mut lines: Vec<String> = filesystems
                .iter()
                .zip(&states)
                .map(|(fs, fs_state)| format!("{}: {}", fs_state.label(), detail(fs)))
                .collect();
            lines.extend(notes.iter().cloned());
            outcome.long_output = lines.join("\n");
        }
        outcome
    }

    fn state_of(&self, fs: &Measured) -> State {
        let Ok(inodes) = &fs.inodes else {
            return State::Critical;
        };
        let below = |limit: Option<Limit>| {
            limit.is_some_and(|limit| limit.alerts(inodes.avail, inodes.total))
        };
        if below(self.limits.1) {
            State::Critical
        } else if below(self.limits.0) {
            State::Warning
        } else {
            State::Ok
        }
    }
}

/// Keeps the filesystems that have an inode count (and those that could
/// not be read, which are CRITICAL); notes the others.
fn with_inodes(filesystems: Vec<Filesystem>, notes: &mut Vec<String>) -> Vec<Measured> {
    filesystems
        .into_iter()
        .filter_map(|fs| {
            let inodes = match fs.usage {
                Err(error) => Err(error),
                Ok(usage) => match usage.inodes {
                    Some(inodes) => Ok(inodes),
                    None => {
                        let about = fs.about.map(|about| format!(" ({about})")).unwrap_or_default();
                        notes.push(format!(
                            "skipped {}{about}: no fixed number of inodes",
                            fs.label
                        ));
                        return None;
                    }
                },
            };
            Some(Measured { label: fs.label, inodes })
        })
        .collect()
}

/// `free inodes: / 16355743 (97%); /var 1203 (3%);`, problems first.
fn summary_text(shown: &[&Measured]) -> String {
    let listed = &shown[..shown.len().min(SUMMARY_MAX)];
    let mut parts: Vec<String> = listed
        .iter()
        .filter_map(|fs| {
            fs.inodes.as_ref().err().map(|error| format!("{} is not accessible: {error}", fs.label))
        })
        .collect();
    let measured: Vec<String> = listed
        .iter()
        .filter_map(|fs| fs.inodes.as_ref().ok().map(|inodes| (fs, inodes)))
        .map(|(fs, inodes)| {
            format!(
                "{} {} ({}%);",
                fs.label,
                inodes.avail,
                floor_percent(percent(inodes.avail, inodes.total))
            )
        })
        .collect();
    if !measured.is_empty() {
        parts.push(format!("free inodes: {}", measured.join(" ")));
    }
    let mut text = parts.join("; ");
    if shown.len() > listed.len() {
        let _ = write!(text, " (and {} more)", shown.len() - listed.len());
    }
    text
}

/// A long-output line: `/ 16355743 of 16777216 inodes free (97%)`.
fn detail(fs: &Measured) -> String {
    match &fs.inodes {
        Err(error) => format!("{} is not accessible: {error}", fs.label),
        Ok(inodes) => format!(
            "{} {} of {} inodes free ({}%)",
            fs.label,
            inodes.avail,
            inodes.total,
            floor_percent(percent(inodes.avail, inodes.total))
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::builtin::BuiltinErrorKind;
    use crate::builtin::mounts::Usage;
    use crate::builtin::test_util::{rendered, words};

    fn check(args: &[&str]) -> InodeCheck {
        try_check(args).unwrap()
    }

    fn try_check(args: &[&str]) -> Result<InodeCheck, BuiltinError> {
        let args = words(args);
        InodeCheck::parse(&args)
    }

    fn fs(label: &str, total: u64, avail: u64) -> Measured {
        Measured { label: label.to_owned(), inodes: Ok(Inodes { total, avail }) }
    }

    #[test]
    fn all_ok_lists_every_filesystem() {
        let filesystems = [fs("/", 16_777_216, 16_355_743), fs("/boot", 65_536, 65_000)];
        let outcome = check(&[]).evaluate(&filesystems, &[]);
        assert_eq!(outcome.state, State::Ok);
        assert_eq!(
            outcome.summary,
            "INODES OK - free inodes: / 16355743 (97%); /boot 65000 (99%);"
        );
        assert_eq!(
            rendered(&outcome),
            ["/=421473;15099494;15938355;0;16777216", "/boot=536;58982;62259;0;65536"]
        );
        assert_eq!(
            outcome.long_output,
            "OK: / 16355743 of 16777216 inodes free (97%)\nOK: /boot 65000 of 65536 inodes free (99%)"
        );
    }

    #[test]
    fn limits_are_strictly_below() {
        let check = check(&[]);
        let state = |avail| check.state_of(&fs("/", 1000, avail));
        assert_eq!(state(100), State::Ok);
        assert_eq!(state(99), State::Warning);
        assert_eq!(state(50), State::Warning);
        assert_eq!(state(49), State::Critical);
    }

    #[test]
    fn a_problem_shows_only_the_failing_filesystems() {
        let filesystems = [fs("/", 1000, 900), fs("/var/spool", 1000, 30)];
        let outcome = check(&["-W", "20%", "-K", "5%"]).evaluate(&filesystems, &[]);
        assert_eq!(outcome.state, State::Critical);
        assert_eq!(outcome.summary, "INODES CRITICAL - free inodes: /var/spool 30 (3%);");
        assert_eq!(rendered(&outcome)[1], "/var/spool=970;800;950;0;1000");
    }

    #[test]
    fn filesystems_without_inodes_are_left_out_and_named() {
        let usage = |inodes| Usage { total: 100, used: 50, avail: 50, inodes };
        let filesystems = vec![
            Filesystem {
                label: "/".to_owned(),
                about: Some("ext4 /dev/vda".to_owned()),
                usage: Ok(usage(Some(Inodes { total: 10, avail: 9 }))),
            },
            Filesystem {
                label: "/mnt/pool".to_owned(),
                about: Some("btrfs /dev/vdb".to_owned()),
                usage: Ok(usage(None)),
            },
            Filesystem {
                label: "/nope".to_owned(),
                about: None,
                usage: Err("No such file or directory".to_owned()),
            },
        ];
        let mut notes = Vec::new();
        let measured = with_inodes(filesystems, &mut notes);
        assert_eq!(notes, ["skipped /mnt/pool (btrfs /dev/vdb): no fixed number of inodes"]);
        let outcome = check(&[]).evaluate(&measured, &notes);
        assert_eq!(outcome.state, State::Critical);
        assert_eq!(
            outcome.summary,
            "INODES CRITICAL - /nope is not accessible: No such file or directory"
        );
        assert_eq!(
            outcome.long_output,
            "OK: / 9 of 10 inodes free (90%)\n\
             CRITICAL: /nope is not accessible: No such file or directory\n\
             skipped /mnt/pool (btrfs /dev/vdb): no fixed number of inodes"
        );
        let outcome = check(&[]).evaluate(&[], &notes);
        assert_eq!(outcome.state, State::Unknown);
        assert_eq!(outcome.long_output, notes[0]);
    }

    #[test]
    fn bad_options() {
        let message = |args: &[&str]| try_check(args).unwrap_err().to_string();
        assert_eq!(
            message(&["-W", "5%", "-K", "10%"]),
            "builtin:inodes: -W 5% leaves less free space than -K 10%: \
             the warning limit must be the larger one"
        );
        assert_eq!(
            message(&["-W", "10"]),
            r#"builtin:inodes: -W: "10" is not a percentage (write 10%)"#
        );
        assert_eq!(try_check(&["-w", "10%"]).unwrap_err().kind(), BuiltinErrorKind::UnknownOption);
        assert_eq!(check(&["-K", "2%"]).limits, (None, Some(Limit::Percent(2.0))));
    }

    #[test]
    fn smoke_on_this_machine() {
        let outcome = check(&["-p", "/"]).run();
        assert_ne!(outcome.state, State::Unknown, "{}", outcome.summary);
        assert!(outcome.summary.starts_with("INODES "), "{}", outcome.summary);
        let outcome = check(&[]).run();
        assert!(outcome.perfdata.iter().all(|item| item.value <= item.max), "{outcome:?}");
    }
}
