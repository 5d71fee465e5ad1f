//! `builtin:disk [-w LIMIT] [-c LIMIT] [-W PCT%] [-K PCT%] [-p PATH]...
//! [-x PATH]... [-X FSTYPE]...`: free space and inodes, like `check_disk`.
//!
//! - `-w`/`-c`: free space below which to alert, in percent (`20%`) or as a
//!   size (`500MB`; as in `check_disk`, units are powers of 1024: `MB` is
//!   MiB). Defaults `-w 20% -c 10%`.
//! - `-W`/`-K`: free inodes below which to alert, in percent. Defaults
//!   `-W 10% -K 5%`. Filesystems without an inode count (btrfs) skip it.
//! - `-p PATH` (repeatable): check the filesystem holding PATH, labelled
//!   PATH. One that cannot be read is CRITICAL, as in `check_disk`:
//!   `DISK CRITICAL - /nope is not accessible: No such file or directory`.
//! - Without `-p`: every real mounted filesystem, from
//!   `/proc/self/mountinfo`; `-x PATH` and `-X FSTYPE` (repeatable) leave
//!   some out. They apply to this discovery only: a `-p` path is always
//!   checked.
//!
//! "Real" means, unlike `check_disk`, which checks everything `df` shows:
//! - no kernel pseudo filesystems (`proc`, `sysfs`, `cgroup2`, …, and any
//!   reporting zero blocks);
//! - no memory-backed ones (`tmpfs`, `devtmpfs`, `ramfs`): their use is
//!   memory, which `builtin:memory` watches; check one with `-p /run`;
//! - no read-only images (`squashfs` snaps, `iso9660`, `erofs`), which are
//!   always 100% full by construction;
//! - no network filesystems (`nfs`, `cifs`, `sshfs`, …): `statvfs` on a hung
//!   server blocks, and the local disks' result would time out with it;
//!   name them with `-p` to check them;
//! - no `overlay` except at `/`: the other overlays are container layers of
//!   the disk that holds them, and `/` is a container's root;
//! - no mount points that are files (a container's `/etc/hosts`);
//! - a filesystem mounted several times (bind mounts, btrfs subvolumes)
//!   once, under its first mount of the filesystem's root;
//! - no mount hidden by another (one on the same mount point, or on a
//!   directory above it): only what path resolution reaches.
//!
//! The numbers are `check_disk`'s: free is what a non-root user can use
//! (`f_bavail`), used is `f_blocks − f_bfree`, and percentages are of used +
//! free (root's reserved blocks left out), so they agree with `df`.
//! Perfdata is per filesystem, as in `check_disk` 2.3:
//! `'/'=usedB;warnB;critB;0;totalB`, the levels turned into used bytes.
//! One deliberate difference: `check_disk` takes that total, and the levels
//! derived from it, from *all* blocks, reserve included, while it alerts on
//! used + free; with a large reserve its graphed levels sit far from where
//! it alerts. Here the total is used + free too, so a graph's levels are
//! exactly where the check alerts.
//!
//! The summary lists every filesystem when all are OK, only the failing

use std::fmt::Write as _;

use super::args::{self, Command, Limit, LimitPair, Spec};
use super::mounts::{Filesystem, Selection};
use super::{BuiltinError, Outcome, SUMMARY_MAX, floor_percent, human_bytes, percent, perf};
use crate::state::State;

pub(super) const NAME: &str = "disk";
pub(super) const USAGE: &str = "builtin:disk [-w LIMIT] [-c LIMIT] [-W PCT%] [-K PCT%] \
                                [-p PATH]... [-x PATH]... [-X FSTYPE]...";
const PREFIX: &str = "DISK";
const COMMAND: Command = Command {
    name: NAME,
    usage: USAGE,
    specs: &[
        Spec::value('w', "warning"),
        Spec::value('c', "critical"),
        Spec::value('W', "iwarning"),
        Spec::value('K', "icritical"),
        Spec::value('p', "path"),
        Spec::value('x', "exclude_device"),
        Spec::value('X', "exclude-type"),
    ],
};

const DEFAULT_WARNING: Limit = Limit::Percent(20.0);
const DEFAULT_CRITICAL: Limit = Limit::Percent(10.0);
const DEFAULT_INODE_WARNING: Limit = Limit::Percent(10.0);
const DEFAULT_INODE_CRITICAL: Limit = Limit::Percent(5.0);

/// A parsed `builtin:disk`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Disk {
    space: LimitPair,
    inodes: LimitPair,
    selection: Selection,
}

impl Disk {
    pub(super) fn parse(args: &[String]) -> Result<Disk, BuiltinError> {
        let (mut warning, mut critical, mut inode_warning, mut inode_critical) =
            (None, None, None, None);
        let mut selection = Selection::default();
        for opt in COMMAND.parse(args)? {
            match opt.short {
                'w' => COMMAND.set_once(&mut warning, opt, args::limit_with_text)?,
                'c' => COMMAND.set_once(&mut critical, opt, args::limit_with_text)?,
                'W' => COMMAND.set_once(&mut inode_warning, opt, args::percent_limit_with_text)?,
                'K' => COMMAND.set_once(&mut inode_critical, opt, args::percent_limit_with_text)?,
                _ => {
                    selection.take(&COMMAND, opt)?;
                }
            }
        }
        let (warning, critical) =
            args::check_limit_order(&COMMAND, (warning, critical), ('w', 'c'))?;
        let (inode_warning, inode_critical) =
            args::check_limit_order(&COMMAND, (inode_warning, inode_critical), ('W', 'K'))?;
        Ok(Disk {
            space: args::or_defaults(warning, critical, || (DEFAULT_WARNING, DEFAULT_CRITICAL)),
            inodes: args::or_defaults(inode_warning, inode_critical, || {
                (DEFAULT_INODE_WARNING, DEFAULT_INODE_CRITICAL)
            }),
            selection,
        })
    }

    pub(super) fn activity(&self) -> String {
        self.selection.activity()
    }

    pub(super) fn run(&self) -> Outcome {
        match self.selection.measure() {
            Ok((filesystems, notes)) => self.evaluate(&filesystems, &notes),
            Err(error) => Outcome::unknown(PREFIX, error),
        }
    }

    /// The result for these filesystems, with `notes` (skipped mounts) at
    /// the end of the long output.
    fn evaluate(&self, filesystems: &[Filesystem], notes: &[String]) -> Outcome {
        if filesystems.is_empty() {
            let mut outcome = Outcome::unknown(
                PREFIX,
                "no filesystem to check (all excluded, or none mounted but pseudo filesystems)",
            );
            outcome.long_output = notes.join("\n");
            return outcome;
        }
        let states: Vec<State> = filesystems.iter().map(|fs| self.state_of(fs)).collect();
        let state = states.iter().copied().fold(State::Ok, State::worst);

        let shown: Vec<&Filesystem> = filesystems
            .iter()
            .zip(&states)
            .filter(|(_, fs_state)| state == State::Ok || fs_state.is_problem())
            .map(|(fs, _)| fs)
            .collect();
        let mut outcome = Outcome::new(PREFIX, state, summary_text(&shown));

        outcome.perfdata = filesystems
            .iter()
            .filter_map(|fs| {
                let usage = fs.usage.as_ref().ok()?;
                let threshold = |limit: Option<Limit>| {
                    limit.map(|limit| limit.used_threshold(usage.total).to_string())
                };
                Some(perf(
                    fs.label.clone(),
                    usage.used as f64,
                    "B",
                    (threshold(self.space.0), threshold(self.space.1)),
                    Some(0.0),
                    Some(usage.total as f64),
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

    fn state_of(&self, fs: &Filesystem) -> State {
        let Ok(usage) = &fs.usage else {
            return State::Critical;
        };
        let level = |(warning, critical): LimitPair, free, total| {
            let below = |limit: Option<Limit>| limit.is_some_and(|limit| limit.alerts(free, total));
            if below(critical) {
                State::Critical
            } else if below(warning) {
                State::Warning
            } else {
                State::Ok
            }
        };
        let space = level(self.space, usage.avail, usage.total);
        let inodes =
            usage.inodes.map_or(State::Ok, |inodes| level(self.inodes, inodes.avail, inodes.total));
        space.worst(inodes)
    }
}

/// `/nope is not accessible: …; free space: / 81104 MiB (87% inode=97%);`
fn summary_text(shown: &[&Filesystem]) -> String {
    let listed = &shown[..shown.len().min(SUMMARY_MAX)];
    let mut parts: Vec<String> = listed
        .iter()
        .filter_map(|fs| {
            fs.usage.as_ref().err().map(|error| format!("{} is not accessible: {error}", fs.label))
        })
        .collect();
    let measured: Vec<String> = listed
        .iter()
        .filter_map(|fs| fs.usage.as_ref().ok().map(|usage| (fs, usage)))
        .map(|(fs, usage)| {
            let mut text = format!(
                "{} {} MiB ({}%",
                fs.label,
                usage.avail / (1024 * 1024),
                floor_percent(percent(usage.avail, usage.total))
            );
            if let Some(inodes) = usage.inodes {
                let _ =
                    write!(text, " inode={}%", floor_percent(percent(inodes.avail, inodes.total)));
            }
            text.push_str(");");
            text
        })
        .collect();
    if !measured.is_empty() {
        parts.push(format!("free space: {}", measured.join(" ")));
    }
    let mut text = parts.join("; ");
    if shown.len() > listed.len() {
        let _ = write!(text, " (and {} more)", shown.len() - listed.len());
    }
    text
}

/// A long-output line: `/ 79.2 GiB free of 92.5 GiB (85%), inodes 97% free (ext4 /dev/vda)`.
fn detail(fs: &Filesystem) -> String {
    let mut text = match &fs.usage {
        Err(error) => format!("{} is not accessible: {error}", fs.label),
        Ok(usage) => {
            let mut text = format!(
                "{} {} free of {} ({}%)",
                fs.label,
                human_bytes(usage.avail),
                human_bytes(usage.total),
                floor_percent(percent(usage.avail, usage.total))
            );
            if let Some(inodes) = usage.inodes {
                let free = floor_percent(percent(inodes.avail, inodes.total));
                let _ = write!(text, ", inodes {free}% free");
            }
            text
        }
    };
    if let Some(about) = &fs.about {
        let _ = write!(text, " ({about})");
    }
    text
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::builtin::BuiltinErrorKind;
    use crate::builtin::mounts::{Inodes, Usage};
    use crate::builtin::test_util::{rendered, words};

    const GIB: u64 = 1 << 30;

    fn disk(args: &[&str]) -> Disk {
        try_disk(args).unwrap()
    }

    fn try_disk(args: &[&str]) -> Result<Disk, BuiltinError> {
        let args = words(args);
        Disk::parse(&args)
    }

    fn usage(total: u64, avail: u64, inodes: Option<(u64, u64)>) -> Usage {
        Usage {
            total,
            used: total - avail,
            avail,
            inodes: inodes.map(|(total, avail)| Inodes { total, avail }),
        }
    }

    fn fs(label: &str, usage: Usage) -> Filesystem {
        Filesystem { label: label.to_owned(), about: None, usage: Ok(usage) }
    }

    #[test]
    fn all_ok_lists_every_filesystem() {
        let filesystems = [
            fs("/", usage(100 * GIB, 87 * GIB, Some((1000, 975)))),
            fs("/boot", usage(1000 * 1024 * 1024, 800 * 1024 * 1024, Some((100, 99)))),
        ];
        let outcome = disk(&[]).evaluate(&filesystems, &[]);
        assert_eq!(outcome.state, State::Ok);
        assert_eq!(
            outcome.summary,
            "DISK OK - free space: / 89088 MiB (87% inode=97%); /boot 800 MiB (80% inode=99%);"
        );
        assert_eq!(
            rendered(&outcome),
            [
                "/=13958643712B;85899345920;96636764160;0;107374182400",
                "/boot=209715200B;838860800;943718400;0;1048576000",
            ]
        );
        assert_eq!(
            outcome.long_output,
            "OK: / 87.0 GiB free of 100.0 GiB (87%), inodes 97% free\n\
             OK: /boot 800.0 MiB free of 1000.0 MiB (80%), inodes 99% free"
        );
    }

    #[test]
    fn one_filesystem_has_no_long_output() {
        let outcome = disk(&["-p", "/"]).evaluate(&[fs("/", usage(100, 50, None))], &[]);
        assert_eq!(outcome.summary, "DISK OK - free space: / 0 MiB (50%);");
        assert_eq!(outcome.long_output, "");
        assert_eq!(rendered(&outcome), ["/=50B;80;90;0;100"]);
    }

    #[test]
    fn a_problem_shows_only_the_failing_filesystems() {
        let filesystems = [
            fs("/", usage(100 * GIB, 50 * GIB, None)),
            fs("/data", usage(100 * GIB, 15 * GIB, None)),
            fs("/var", usage(100 * GIB, 5 * GIB, Some((100, 50)))),
        ];
        let outcome = disk(&[]).evaluate(&filesystems, &[]);
        assert_eq!(outcome.state, State::Critical);
        assert_eq!(
            outcome.summary,
            "DISK CRITICAL - free space: /data 15360 MiB (15%); /var 5120 MiB (5% inode=50%);"
        );
        assert_eq!(rendered(&outcome).len(), 3);
        assert_eq!(
            outcome.long_output,
            "OK: / 50.0 GiB free of 100.0 GiB (50%)\n\
             WARNING: /data 15.0 GiB free of 100.0 GiB (15%)\n\
             CRITICAL: /var 5.0 GiB free of 100.0 GiB (5%), inodes 50% free"
        );
    }

    #[test]
    fn limits_are_strictly_below() {
        let check = disk(&[]);
        let state = |avail| check.state_of(&fs("/", usage(100, avail, None)));
        assert_eq!(state(20), State::Ok);
        assert_eq!(state(19), State::Warning);
        assert_eq!(state(10), State::Warning);
        assert_eq!(state(9), State::Critical);
    }

    #[test]
    fn inode_limits() {
        let check = disk(&["-W", "20%", "-K", "10%"]);
        let state =
            |inodes_avail| check.state_of(&fs("/", usage(100, 90, Some((1000, inodes_avail)))));
        assert_eq!(state(200), State::Ok);
        assert_eq!(state(199), State::Warning);
        assert_eq!(state(99), State::Critical);
        // Defaults: 10% and 5%.
        let state =
            |inodes_avail| disk(&[]).state_of(&fs("/", usage(100, 90, Some((1000, inodes_avail)))));
        assert_eq!(state(100), State::Ok);
        assert_eq!(state(99), State::Warning);
        assert_eq!(state(49), State::Critical);
        // No inode count: not checked.
        assert_eq!(disk(&[]).state_of(&fs("/", usage(100, 90, None))), State::Ok);
    }

    #[test]
    fn size_limits() {
        let check = disk(&["-w", "2GB", "-c", "500MB", "-p", "/"]);
        let outcome = check.evaluate(&[fs("/", usage(10 * GIB, GIB, None))], &[]);
        assert_eq!(outcome.state, State::Warning);
        assert_eq!(outcome.summary, "DISK WARNING - free space: / 1024 MiB (10%);");
        assert_eq!(rendered(&outcome), ["/=9663676416B;8589934592;10213130240;0;10737418240"]);
        let critical = check.evaluate(&[fs("/", usage(10 * GIB, 400 * 1024 * 1024, None))], &[]);
        assert_eq!(critical.state, State::Critical);
    }

    #[test]
    fn one_limit_alone() {
        let outcome = disk(&["-c", "5%"]).evaluate(&[fs("/", usage(100, 6, None))], &[]);
        assert_eq!(outcome.state, State::Ok);
        assert_eq!(rendered(&outcome), ["/=94B;;95;0;100"]);
    }

    #[test]
    fn inaccessible_path_is_critical() {
        let filesystems = [
            Filesystem {
                label: "/nope".to_owned(),
                about: None,
                usage: Err("No such file or directory".to_owned()),
            },
            fs("/", usage(100 * GIB, 50 * GIB, None)),
        ];
        let outcome = disk(&[]).evaluate(&filesystems[..1], &[]);
        assert_eq!(outcome.state, State::Critical);
        assert_eq!(
            outcome.summary,
            "DISK CRITICAL - /nope is not accessible: No such file or directory"
        );
        assert!(outcome.perfdata.is_empty());

        let both = [filesystems[0].clone(), fs("/tmp", usage(100, 1, None))];
        let outcome = disk(&[]).evaluate(&both, &[]);
        assert_eq!(
            outcome.summary,
            "DISK CRITICAL - /nope is not accessible: No such file or directory; \
             free space: /tmp 0 MiB (1%);"
        );
        assert_eq!(rendered(&outcome), ["/tmp=99B;80;90;0;100"]);
    }

    #[test]
    fn nonexistent_path_on_this_machine() {
        let outcome = disk(&["-p", "/nonexistent/monchero"]).run();
        assert_eq!(outcome.state, State::Critical);
        assert_eq!(
            outcome.summary,
            "DISK CRITICAL - /nonexistent/monchero is not accessible: No such file or directory"
        );
    }

    #[test]
    fn long_summaries_are_capped() {
        let filesystems: Vec<Filesystem> =
            (0..10).map(|n| fs(&format!("/d{n}"), usage(100, 50, None))).collect();
        let outcome = disk(&[]).evaluate(&filesystems, &[]);
        assert!(outcome.summary.ends_with("/d7 0 MiB (50%); (and 2 more)"), "{}", outcome.summary);
        assert_eq!(outcome.long_output.lines().count(), 10);
        assert_eq!(outcome.perfdata.len(), 10);
    }

    #[test]
    fn nothing_to_check_is_unknown() {
        let notes = ["skipped /run/user/1000/gvfs: Permission denied".to_owned()];
        let outcome = disk(&[]).evaluate(&[], &notes);
        assert_eq!(outcome.state, State::Unknown);
        assert_eq!(
            outcome.summary,
            "DISK UNKNOWN - no filesystem to check (all excluded, or none mounted but pseudo filesystems)"
        );
        assert_eq!(outcome.long_output, notes[0]);
    }

    #[test]
    fn notes_go_to_the_long_output() {
        let notes = ["skipped /x: Permission denied".to_owned()];
        let outcome = disk(&[]).evaluate(&[fs("/", usage(100, 50, None))], &notes);
        assert_eq!(
            outcome.long_output,
            "OK: / 50 B free of 100 B (50%)\nskipped /x: Permission denied"
        );
    }

    #[test]
    fn options() {
        let check = disk(&["-p", "/", "-p", "/var", "-p", "/", "--path=/srv"]);
        assert_eq!(check.selection.paths, ["/", "/var", "/srv"]);
        assert_eq!(check.space, (Some(DEFAULT_WARNING), Some(DEFAULT_CRITICAL)));
        assert_eq!(check.inodes, (Some(Limit::Percent(10.0)), Some(Limit::Percent(5.0))));
        let check = disk(&["-w", "15%", "-c", "1GB", "-K", "2%"]);
        assert_eq!(check.space, (Some(Limit::Percent(15.0)), Some(Limit::Bytes(GIB))));
        assert_eq!(check.inodes, (None, Some(Limit::Percent(2.0))));
    }

    #[test]
    fn bad_options() {
        let message = |args: &[&str]| try_disk(args).unwrap_err().to_string();
        assert_eq!(
            message(&["-w", "20"]),
            r#"builtin:disk: -w: "20" is not a percentage or size (write 20% or 500MB)"#
        );
        assert_eq!(
            message(&["-W", "500MB"]),
            r#"builtin:disk: -W: "500MB" is not a percentage (write e.g. 20%)"#
        );
        assert_eq!(
            message(&["-W", "5%", "-K", "10%"]),
            "builtin:disk: -W 5% leaves less free space than -K 10%: \
             the warning limit must be the larger one"
        );
        assert_eq!(message(&["-p", ""]), "builtin:disk: -p: the value is empty");
        assert_eq!(try_disk(&["-p"]).unwrap_err().kind(), BuiltinErrorKind::MissingValue);
        assert_eq!(try_disk(&["/"]).unwrap_err().kind(), BuiltinErrorKind::UnexpectedArgument);
        assert_eq!(try_disk(&["-u", "GB"]).unwrap_err().kind(), BuiltinErrorKind::UnknownOption);
    }

    #[test]
    fn smoke_root_on_this_machine() {
        let outcome = disk(&["-p", "/"]).run();
        assert_ne!(outcome.state, State::Unknown, "{}", outcome.summary);
        assert!(outcome.summary.starts_with("DISK "), "{}", outcome.summary);
        assert!(outcome.summary.contains("free space: / "), "{}", outcome.summary);
        assert_eq!(outcome.perfdata.len(), 1);
        let root = &outcome.perfdata[0];
        assert_eq!((root.label.as_str(), root.uom.as_deref()), ("/", Some("B")));
        assert!(root.value.unwrap() <= root.max.unwrap());
        assert!(root.warn.is_some() && root.crit.is_some());
    }

    #[test]
    fn smoke_discovery_on_this_machine() {
        let outcome = disk(&[]).run();
        assert_ne!(outcome.state, State::Unknown, "{}", outcome.summary);
        assert!(outcome.perfdata.iter().any(|item| item.label == "/"), "{outcome:?}");
        for item in &outcome.perfdata {
            assert!(!item.label.starts_with("/proc") && !item.label.starts_with("/sys"), "{item}");
        }
    }
}
