//! `builtin:file -f FILE [-w AGE] [-c AGE] [-W SIZE] [-C SIZE] [-i]`: a
//! file's age and size, like `check_file_age`, whose options these are.
//!
//! For "did last night's backup run": a dump, a heartbeat file a cron job
//! touches, a spool that must not be empty.
//!
//! - `-f FILE`: the file (`--file`). Symbolic links are followed.
//! - `-w`/`-c AGE`: alert when the file was last modified longer ago than
//!   AGE (`--warning-age`, `--critical-age`). Seconds as in
//!   `check_file_age` (`-w 3600`), or with units: `90s`, `10m`, `1h30m`,
//!   `2d`, `1w`. Defaults `check_file_age`'s, `-w 240 -c 600`, when
//!   neither is given.
//! - `-W`/`-C SIZE`: alert when the file is *smaller* than SIZE
//!   (`--warning-size`, `--critical-size`): bytes as in `check_file_age`
//!   (`-C 1`: critical when empty), or with a unit (`10MB`, powers of
//!   1024). Not checked unless given.
//! - `-i`: a missing file is OK (`--ignore-missing`); without it, CRITICAL.
//!
//! A file that cannot be looked at for another reason (a directory on the
//! way that is not searchable) is UNKNOWN, naming the file and the cause.
//! A modification time in the future (clock skew, a copy with `cp -p` from
//! a machine ahead of this one) counts as age 0, and the long output says
//! so.
//!
//! Summary and perfdata are `check_file_age`'s: `FILE_AGE OK: /var/backups/db.dump
//! is 3600 seconds old and 1048576 bytes | age=3600s;86400;172800;0
//! size=1048576B;1024:;1:;0`. The size levels are written as the ranges
//! they are (`1024:`, alert below 1024), where `check_file_age` writes the
//! bare number, which the range syntax reads as the opposite.

use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::args::{self, Command, Spec};
use super::{BuiltinError, Outcome, io_error_text, perf};
use crate::state::State;

pub(super) const NAME: &str = "file";
pub(super) const USAGE: &str = "builtin:file -f FILE [-w AGE] [-c AGE] [-W SIZE] [-C SIZE] [-i]";
const PREFIX: &str = "FILE_AGE";
const COMMAND: Command = Command {
    name: NAME,
    usage: USAGE,
    specs: &[
        Spec::value('f', "file"),
        Spec::value('w', "warning-age"),
        Spec::value('c', "critical-age"),
        Spec::value('W', "warning-size"),
        Spec::value('C', "critical-size"),
        Spec::flag('i', "ignore-missing"),
    ],
};

/// `check_file_age`'s defaults, in seconds.
const DEFAULT_WARNING_AGE: u64 = 240;
const DEFAULT_CRITICAL_AGE: u64 = 600;

/// A parsed `builtin:file`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct FileCheck {
    path: PathBuf,
    /// Maximum ages in seconds.
    age: (Option<u64>, Option<u64>),
    /// Minimum sizes in bytes.
    size: (Option<u64>, Option<u64>),
    ignore_missing: bool,
}

/// What looking at the file found.
#[derive(Debug, Clone, PartialEq)]
enum Found {
    Missing,
    /// It could not be looked at; the cause, as a sentence.
    Unreadable(String),
    /// Seconds since its last modification (negative: in the future), and
    /// its size in bytes.
    File {
        age: i64,
        size: u64,
    },
}

impl FileCheck {
    pub(super) fn parse(args: &[String]) -> Result<FileCheck, BuiltinError> {
        let mut path = None;
        let (mut warning_age, mut critical_age) = (None, None);
        let (mut warning_size, mut critical_size) = (None, None);
        let mut ignore_missing = false;
        for opt in COMMAND.parse(args)? {
            match opt.short {
                'f' => COMMAND.set_once(&mut path, opt, parse_path)?,
                'w' => COMMAND.set_once(&mut warning_age, opt, parse_age)?,
                'c' => COMMAND.set_once(&mut critical_age, opt, parse_age)?,
                'W' => COMMAND.set_once(&mut warning_size, opt, parse_file_size)?,
                'C' => COMMAND.set_once(&mut critical_size, opt, parse_file_size)?,
                _ => ignore_missing = true,
            }
        }
        let Some(path) = path else {
            return Err(COMMAND.missing_option("-f FILE is required: the file to watch"));
        };
        if let (Some(warning), Some(critical)) = (warning_age, critical_age) {
            if warning > critical {
                return Err(COMMAND.conflict(format!(
                    "-w {warning}s is above -c {critical}s: the warning age must be the lower one"
                )));
            }
        }
        if let (Some(warning), Some(critical)) = (warning_size, critical_size) {
            if warning < critical {
                return Err(COMMAND.conflict(format!(
                    "-W {warning}B is below -C {critical}B: the warning size must be the larger one"
                )));
            }
        }
        let age = args::or_defaults(warning_age, critical_age, || {
            (DEFAULT_WARNING_AGE, DEFAULT_CRITICAL_AGE)
        });
        Ok(FileCheck { path, age, size: (warning_size, critical_size), ignore_missing })
    }

    pub(super) fn activity(&self) -> String {
        format!("in stat of {}", self.path.display())
    }

    pub(super) fn run(&self) -> Outcome {
        self.evaluate(look(&self.path, SystemTime::now()))
    }

    fn evaluate(&self, found: Found) -> Outcome {
        let path = self.path.display();
        let (age, size) = match found {
            Found::Missing if self.ignore_missing => {
                return with_state(
                    State::Ok,
                    format!("{path} doesn't exist, but ignore-missing was set"),
                );
            }
            Found::Missing => {
                return with_state(State::Critical, format!("File not found - {path}"));
            }
            Found::Unreadable(error) => {
                return with_state(State::Unknown, format!("cannot stat {path}: {error}"));
            }
            Found::File { age, size } => (age, size),
        };
        let shown_age = age.max(0).unsigned_abs();
        let older = |limit: Option<u64>| limit.is_some_and(|limit| shown_age > limit);
        let smaller = |limit: Option<u64>| limit.is_some_and(|limit| size < limit);
        let state = if older(self.age.1) || smaller(self.size.1) {
            State::Critical
        } else if older(self.age.0) || smaller(self.size.0) {
            State::Warning
        } else {
            State::Ok
        };
        let mut outcome =
            with_state(state, format!("{path} is {shown_age} seconds old and {size} bytes"));
        if age < 0 {
            outcome.long_output = format!(
                "its modification time is {} seconds in the future: is a clock wrong?",
                age.unsigned_abs()
            );
        }
        let levels = |(warning, critical): (Option<u64>, Option<u64>), suffix: &str| {
            (warning.map(|w| format!("{w}{suffix}")), critical.map(|c| format!("{c}{suffix}")))
        };
        outcome.perfdata = vec![
            perf("age", shown_age as f64, "s", levels(self.age, ""), Some(0.0), None),
            perf("size", size as f64, "B", levels(self.size, ":"), Some(0.0), None),
        ];
        outcome
    }
}

/// `FILE_AGE STATE: text`, `check_file_age`'s form.
fn with_state(state: State, text: String) -> Outcome {
    Outcome::with_summary(state, format!("{PREFIX} {}: {text}", state.label()))
}

/// Looks at the file as of `now`.
fn look(path: &Path, now: SystemTime) -> Found {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Found::Missing,
        Err(error) => return Found::Unreadable(io_error_text(&error)),
    };
    let age = match meta.modified() {
        Ok(modified) => match now.duration_since(modified) {
            Ok(age) => i64::try_from(age.as_secs()).unwrap_or(i64::MAX),
            Err(ahead) => i64::try_from(ahead.duration().as_secs()).map_or(i64::MIN, |s| -s),
        },
        Err(error) => return Found::Unreadable(io_error_text(&error)),
    };
    Found::File { age, size: meta.len() }
}

fn parse_path(text: &str) -> Result<PathBuf, String> {
    if text.is_empty() { Err("the value is empty".to_owned()) } else { Ok(PathBuf::from(text)) }
}

/// `3600` (seconds, as `check_file_age` takes them) or `1h`, `1h30m`,
/// `90s`, `2d`, `1w`.
fn parse_age(text: &str) -> Result<u64, String> {
    let error = || format!("{text:?} is not an age (write seconds, or e.g. 10m, 1h30m, 2d)");
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(seconds);
    }
    let mut total: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let units = rest[digits..].bytes().take_while(u8::is_ascii_alphabetic).count();
        let (number, unit) = (&rest[..digits], &rest[digits..digits + units]);
        let scale: u64 = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            "w" => 604_800,
            _ => return Err(error()),
        };
        let value: u64 = number.parse().map_err(|_| error())?;
        total =
            value.checked_mul(scale).and_then(|part| total.checked_add(part)).ok_or_else(error)?;
        rest = &rest[digits + units..];
    }
    if text.is_empty() { Err(error()) } else { Ok(total) }
}

/// Bytes, as `check_file_age` takes them (`-C 1`), or a size with a unit.
fn parse_file_size(text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(bytes) => Ok(bytes),
        Err(_) => args::parse_size(text),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::builtin::BuiltinErrorKind;
    use crate::builtin::test_util::{rendered, words};

    fn check(args: &[&str]) -> FileCheck {
        try_check(args).unwrap()
    }

    fn try_check(args: &[&str]) -> Result<FileCheck, BuiltinError> {
        let args = words(args);
        FileCheck::parse(&args)
    }

    #[test]
    fn age_and_size() {
        let check =
            check(&["-f", "/var/backups/db.dump", "-w", "1d", "-c", "2d", "-W", "1KB", "-C", "1"]);
        let outcome = check.evaluate(Found::File { age: 3600, size: 1_048_576 });
        assert_eq!(outcome.state, State::Ok);
        assert_eq!(
            outcome.summary,
            "FILE_AGE OK: /var/backups/db.dump is 3600 seconds old and 1048576 bytes"
        );
        assert_eq!(rendered(&outcome), ["age=3600s;86400;172800;0", "size=1048576B;1024:;1:;0"]);
        let state = |age, size| check.evaluate(Found::File { age, size }).state;
        assert_eq!(state(86_400, 1024), State::Ok);
        assert_eq!(state(86_401, 1024), State::Warning);
        assert_eq!(state(172_801, 1024), State::Critical);
        assert_eq!(state(10, 1023), State::Warning);
        assert_eq!(state(10, 0), State::Critical);
    }

    #[test]
    fn check_file_age_defaults() {
        let check = check(&["-f", "/tmp/heartbeat"]);
        let outcome = check.evaluate(Found::File { age: 1, size: 6 });
        assert_eq!(outcome.summary, "FILE_AGE OK: /tmp/heartbeat is 1 seconds old and 6 bytes");
        assert_eq!(rendered(&outcome), ["age=1s;240;600;0", "size=6B;;;0"]);
        assert_eq!(check.evaluate(Found::File { age: 241, size: 0 }).state, State::Warning);
        assert_eq!(check.evaluate(Found::File { age: 601, size: 0 }).state, State::Critical);
        // One level alone leaves the other unchecked.
        let critical_only = super::tests::check(&["-f", "/x", "-c", "3600"]);
        assert_eq!(critical_only.evaluate(Found::File { age: 3000, size: 0 }).state, State::Ok);
        assert_eq!(
            rendered(&critical_only.evaluate(Found::File { age: 1, size: 0 }))[0],
            "age=1s;;3600;0"
        );
    }

    #[test]
    fn missing_files() {
        let outcome = check(&["-f", "/nope"]).evaluate(Found::Missing);
        assert_eq!(outcome.state, State::Critical);
        assert_eq!(outcome.summary, "FILE_AGE CRITICAL: File not found - /nope");
        assert!(outcome.perfdata.is_empty());
        let outcome = check(&["-f", "/nope", "-i"]).evaluate(Found::Missing);
        assert_eq!(outcome.state, State::Ok);
        assert_eq!(outcome.summary, "FILE_AGE OK: /nope doesn't exist, but ignore-missing was set");
        let outcome =
            check(&["-f", "/root/x"]).evaluate(Found::Unreadable("Permission denied".to_owned()));
        assert_eq!(outcome.state, State::Unknown);
        assert_eq!(outcome.summary, "FILE_AGE UNKNOWN: cannot stat /root/x: Permission denied");
    }

    #[test]
    fn a_future_modification_time_is_age_zero() {
        let outcome = check(&["-f", "/x"]).evaluate(Found::File { age: -30, size: 1 });
        assert_eq!(outcome.state, State::Ok);
        assert_eq!(outcome.summary, "FILE_AGE OK: /x is 0 seconds old and 1 bytes");
        assert_eq!(
            outcome.long_output,
            "its modification time is 30 seconds in the future: is a clock wrong?"
        );
    }

    #[test]
    fn a_file_that_vanishes_between_runs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("heartbeat");
        std::fs::write(&path, "alive\n").unwrap();
        let check = check(&["-f", path.to_str().unwrap(), "-w", "1h", "-c", "2h"]);
        let outcome = check.run();
        assert_eq!(outcome.state, State::Ok, "{}", outcome.summary);
        assert!(outcome.summary.ends_with("seconds old and 6 bytes"), "{}", outcome.summary);
        std::fs::remove_file(&path).unwrap();
        let outcome = check.run();
        assert_eq!(outcome.state, State::Critical);
        assert_eq!(
            outcome.summary,
            format!("FILE_AGE CRITICAL: File not found - {}", path.display())
        );
    }

    #[test]
    fn looking_at_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "12345").unwrap();
        let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
        assert_eq!(
            look(&path, modified + Duration::from_secs(90)),
            Found::File { age: 90, size: 5 }
        );
        assert_eq!(
            look(&path, modified - Duration::from_secs(5)),
            Found::File { age: -5, size: 5 }
        );
        assert_eq!(look(&dir.path().join("nope"), modified), Found::Missing);
        // A file where a directory should be: not missing, not a file.
        assert_eq!(
            look(&path.join("below"), modified),
            Found::Unreadable("Not a directory".to_owned())
        );
    }

    #[test]
    fn ages() {
        for (text, seconds) in [
            ("600", 600),
            ("90s", 90),
            ("10m", 600),
            ("1h30m", 5400),
            ("2d", 172_800),
            ("1w", 604_800),
            ("0", 0),
        ] {
            assert_eq!(parse_age(text).unwrap(), seconds, "{text}");
        }
        for text in ["", "10x", "1.5h", "h", "-5", "10 m", "99999999999999999999w"] {
            assert_eq!(
                parse_age(text).unwrap_err(),
                format!("{text:?} is not an age (write seconds, or e.g. 10m, 1h30m, 2d)")
            );
        }
        assert_eq!(parse_file_size("4096").unwrap(), 4096);
        assert_eq!(parse_file_size("1MB").unwrap(), 1 << 20);
        assert!(parse_file_size("lots").is_err());
    }

    #[test]
    fn bad_options() {
        let message = |args: &[&str]| try_check(args).unwrap_err().to_string();
        assert_eq!(
            message(&[]),
            "builtin:file: -f FILE is required: the file to watch (usage: builtin:file -f FILE \
             [-w AGE] [-c AGE] [-W SIZE] [-C SIZE] [-i])"
        );
        assert_eq!(try_check(&[]).unwrap_err().kind(), BuiltinErrorKind::MissingOption);
        assert_eq!(
            message(&["-f", "/x", "-w", "2h", "-c", "1h"]),
            "builtin:file: -w 7200s is above -c 3600s: the warning age must be the lower one"
        );
        assert_eq!(
            message(&["-f", "/x", "-W", "1", "-C", "1KB"]),
            "builtin:file: -W 1B is below -C 1024B: the warning size must be the larger one"
        );
        assert_eq!(message(&["-f", ""]), "builtin:file: -f: the value is empty");
        assert_eq!(
            try_check(&["-f", "/x", "-p", "/y"]).unwrap_err().kind(),
            BuiltinErrorKind::UnknownOption
        );
        let long =
            check(&["--file=/x", "--warning-age=1m", "--critical-size", "1", "--ignore-missing"]);
        assert_eq!(
            long,
            FileCheck {
                path: "/x".into(),
                age: (Some(60), None),
                size: (None, Some(1)),
                ignore_missing: true
            }
        );
    }
}
