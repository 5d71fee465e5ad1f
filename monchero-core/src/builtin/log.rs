//! `builtin:log -f FILE -e REGEX [-w RANGE] [-c RANGE]`: lines matching a
//! pattern that were added to a log file since the previous run.
//!
//! - `-f FILE`: the log file (`--file`).
//! - `-e REGEX`: the pattern (`--regex`), in the syntax of Rust's `regex`
//!   crate (Perl-like, no look-around or backreferences; `(?i)` for case
//!   insensitivity). It is validated when the config is loaded. Lines are
//!   matched as bytes, so a log that is not UTF-8 is read all the same.
//! - `-w`/`-c RANGE`: Nagios ranges on the number of new matching lines,
//!   as in `check_procs`: `-w 0` warns on any, `-c 10` is critical above
//!   ten. Default `-w 0` (any new match is a WARNING), no critical.
//!
//! How the file is followed, as `tail -F` does:
//! - The first run starts at the end of the file and reports 0: what was
//!   logged before the agent started is not news.
//! - Each later run reads the lines added since. A line is counted once it
//!   is complete (ends with a newline); a line still being written waits
//!   for the next run.
//! - The check keeps the file open between runs. When the name comes to
//!   point at another file (logrotate renamed it and created a new one),
//!   the rest of the old file is read, then the new one from its start, so
//!   nothing logged around a rotation is missed. A file that shrank
//!   (truncated in place, `copytruncate`) is read from its start.
//! - A file that disappears is read to its end, then reported as missing
//!   (UNKNOWN) until it reappears; it is then read from its start.
//! - A run reads at most 8 MiB. When more was added (a log flood), the
//!   oldest part is skipped, the run reads the latest 8 MiB, and the summary
//!   says how much was skipped: matches in the skipped part are not
//!   counted.
//!
//! The position is kept in memory only: after an agent restart or a config
//! reload the check starts again at the end of the file, and lines logged
//! while the agent was down are not read.
//!
//! The summary shows the last matching line; the long output the last ten.
//! Perfdata: `matches=N;W;C;0`.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use regex::bytes::Regex;

use super::args::{Command, RangeLevel, Spec, range_thresholds};
use super::{BuiltinError, Carried, Outcome, human_bytes, io_error_text, perf};
use crate::threshold::Range;

pub(super) const NAME: &str = "log";
pub(super) const USAGE: &str = "builtin:log -f FILE -e REGEX [-w RANGE] [-c RANGE]";
const PREFIX: &str = "LOG";
const COMMAND: Command = Command {
    name: NAME,
    usage: USAGE,
    specs: &[
        Spec::value('f', "file"),
        Spec::value('e', "regex"),
        Spec::value('w', "warning"),
        Spec::value('c', "critical"),
    ],
};

/// The most a run reads: bounds the time and memory one run can take.
const READ_MAX: u64 = 8 * 1024 * 1024;

/// How many matching lines the long output shows (the last ones).
const KEPT_LINES: usize = 10;

/// How much of a matching line the output shows.
const LINE_MAX: usize = 300;

/// The compiled pattern; two are equal when written the same.
#[derive(Debug, Clone)]
struct Pattern(Regex);

impl PartialEq for Pattern {
    fn eq(&self, other: &Pattern) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

/// Where the check is in the file.
#[derive(Debug, Default)]
enum Position {
    /// Never opened: the first open starts at the end.
    #[default]
    Fresh,
    /// Following an open file (its device and inode) from `offset`.
    Following { file: File, identity: (u64, u64), offset: u64 },
    /// The followed file went away: when the name reappears, it is a new
    /// file, read from its start.
    Lost,
}

/// What one run found.
#[derive(Debug, Default)]
struct Scan {
    matches: u64,
    /// The last [`KEPT_LINES`] matching lines.
    last: VecDeque<String>,
    /// What happened to the file, for the summary.
    notes: Vec<String>,
}

/// A parsed `builtin:log`, with its position in the file.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Log {
    path: PathBuf,
    pattern: Pattern,
    warning: Option<RangeLevel>,
    critical: Option<RangeLevel>,
    position: Carried<Position>,
}

impl Log {
    pub(super) fn parse(args: &[String]) -> Result<Log, BuiltinError> {
        let (mut path, mut pattern, mut warning, mut critical) = (None, None, None, None);
        for opt in COMMAND.parse(args)? {
            match opt.short {
                'f' => COMMAND.set_once(&mut path, opt, parse_path)?,
                'e' => COMMAND.set_once(&mut pattern, opt, parse_pattern)?,
                'w' => COMMAND.set_once(&mut warning, opt, RangeLevel::parse)?,
                _ => COMMAND.set_once(&mut critical, opt, RangeLevel::parse)?,
            }
        }
        let Some(path) = path else {
            return Err(COMMAND.missing_option("-f FILE is required: the log file to follow"));
        };
        let Some(pattern) = pattern else {
            return Err(COMMAND.missing_option("-e REGEX is required: the lines to count"));
        };
        if warning.is_none() && critical.is_none() {
            warning = Some(RangeLevel { range: ANY, text: "0".to_owned() });
        }
        Ok(Log { path, pattern, warning, critical, position: Carried::default() })
    }

    pub(super) fn activity(&self) -> String {
        format!("reading {}", self.path.display())
    }

    pub(super) fn run(&self) -> Outcome {
        self.run_with(READ_MAX)
    }

    /// A run that reads at most `budget` bytes.
    fn run_with(&self, budget: u64) -> Outcome {
        let mut position = self.position.lock();
        let mut scan = Scan::default();
        match self.follow(&mut position, &mut scan, budget) {
            Ok(()) => self.evaluate(scan),
            Err(error) => Outcome::unknown(PREFIX, error),
        }
    }

    /// Reads what is new, moving `position` on; the error is the text of
    /// an UNKNOWN summary.
    fn follow(
        &self,
        position: &mut Position,
        scan: &mut Scan,
        mut budget: u64,
    ) -> Result<(), String> {
        let path = self.path.display();
        let current = match std::fs::metadata(&self.path) {
            Ok(meta) => Some((meta.dev(), meta.ino())),
            Err(error) if error.kind() == io::ErrorKind::NotFound => None,
            Err(error) => return Err(format!("cannot read {path}: {}", io_error_text(&error))),
        };
        if let Position::Following { file, identity, offset } = position {
            let replaced = current != Some(*identity);
            let len = file.metadata().map_err(|error| read_error(&self.path, &error))?.len();
            if len < *offset {
                scan.notes.push(format!("{path} was truncated; read from its start"));
                *offset = 0;
            }
            // A file that was replaced gets no more lines: its last one is
            // complete even without a newline.
            self.read_lines(file, offset, len, &mut budget, replaced, scan)
                .map_err(|error| read_error(&self.path, &error))?;
            if !replaced {
                return Ok(());
            }
        }
        if current.is_none() {
            if matches!(position, Position::Following { .. }) {
                scan.notes.push(format!(
                    "{path} was removed or renamed; it is read from its start when it reappears"
                ));
                *position = Position::Lost;
                return Ok(());
            }
            return Err(format!("cannot open {path}: No such file or directory"));
        }
        let mut file = match File::open(&self.path) {
            Ok(file) => file,
            Err(error) => return Err(format!("cannot open {path}: {}", io_error_text(&error))),
        };
        let meta = file.metadata().map_err(|error| read_error(&self.path, &error))?;
        let identity = (meta.dev(), meta.ino());
        let mut offset = match position {
            Position::Fresh => {
                scan.notes.push(format!("first run: following {path} from its end"));
                meta.len()
            }
            Position::Following { .. } => {
                scan.notes.push(format!("{path} was rotated; read the new file from its start"));
                0
            }
            Position::Lost => {
                scan.notes.push(format!("{path} is back; read from its start"));
                0
            }
        };
        self.read_lines(&mut file, &mut offset, meta.len(), &mut budget, false, scan)
            .map_err(|error| read_error(&self.path, &error))?;
        *position = Position::Following { file, identity, offset };
        Ok(())
    }

    /// Matches the lines of `file` from `offset` up to `len`, reading at
    /// most `budget` bytes (skipping ahead to the latest ones if there are
    /// more), and moves `offset` past the complete lines read. With `last`,
    /// a final line without a newline counts too.
    fn read_lines(
        &self,
        file: &mut File,
        offset: &mut u64,
        len: u64,
        budget: &mut u64,
        last: bool,
        scan: &mut Scan,
    ) -> io::Result<()> {
        let mut pending = len.saturating_sub(*offset);
        // After a skip the first line is a tail end, and not matched.
        let mut realign = false;
        if pending > *budget {
            let skipped = pending - *budget;
            scan.notes.push(format!(
                "skipped {} of {}: more was added since the last run than one run reads",
                human_bytes(skipped),
                self.path.display()
            ));
            *offset += skipped;
            pending = *budget;
            realign = true;
        }
        file.seek(SeekFrom::Start(*offset))?;
        let mut reader = BufReader::with_capacity(64 * 1024, (&*file).take(pending));
        let mut line = Vec::new();
        loop {
            line.clear();
            let read = reader.read_until(b'\n', &mut line)?;
            if read == 0 {
                break;
            }
            let complete = line.ends_with(b"\n");
            if !complete && !last && !realign {
                // Still being written: the next run reads it whole.
                break;
            }
            *offset += read as u64;
            *budget = budget.saturating_sub(read as u64);
            if std::mem::take(&mut realign) {
                continue;
            }
            let text = line.strip_suffix(b"\n").unwrap_or(&line);
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            if self.pattern.0.is_match(text) {
                scan.matches += 1;
                if scan.last.len() == KEPT_LINES {
                    scan.last.pop_front();
                }
                scan.last.push_back(shown(text));
            }
        }
        Ok(())
    }

    /// The result of a run.
    fn evaluate(&self, scan: Scan) -> Outcome {
        let (thresholds, levels) = range_thresholds(&self.warning, &self.critical);
        let state = thresholds.evaluate(scan.matches as f64);
        let pattern = self.pattern.0.as_str();
        let path = self.path.display();
        let mut text = match (scan.matches, scan.last.back()) {
            (0, _) | (_, None) => format!("no new line matches '{pattern}' in {path}"),
            (1, Some(line)) => format!("1 new line matches '{pattern}' in {path}: {line}"),
            (count, Some(line)) => {
                format!("{count} new lines match '{pattern}' in {path}; the last: {line}")
            }
        };
        if !scan.notes.is_empty() {
            let _ = write!(text, " ({})", scan.notes.join("; "));
        }
        let mut outcome = Outcome::new(PREFIX, state, text);
        if scan.last.len() > 1 {
            let shown = scan.last.len();
            let lines: Vec<String> = scan.last.into_iter().collect();
            outcome.long_output = format!("the last {shown} matching lines:\n{}", lines.join("\n"));
        }
        outcome.perfdata = vec![perf("matches", scan.matches as f64, "", levels, Some(0.0), None)];
        outcome
    }
}

/// `-w 0`: any match.
const ANY: Range = Range { start: Some(0.0), end: Some(0.0), inside: false };

/// A matching line for the output: valid UTF-8, control characters made
/// visible (a log line can hold anything), at most [`LINE_MAX`] characters.
fn shown(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let mut shown: String =
        text.chars().take(LINE_MAX).map(|c| if c.is_control() { ' ' } else { c }).collect();
    if text.chars().nth(LINE_MAX).is_some() {
        shown.push('…');
    }
    shown.trim().to_owned()
}

fn read_error(path: &Path, error: &io::Error) -> String {
    format!("cannot read {}: {}", path.display(), io_error_text(error))
}

fn parse_path(text: &str) -> Result<PathBuf, String> {
    if text.is_empty() { Err("the value is empty".to_owned()) } else { Ok(PathBuf::from(text)) }
}

fn parse_pattern(text: &str) -> Result<Pattern, String> {
    if text.is_empty() {
        return Err(
            "the pattern is empty, which matches every line (write e.g. 'error|fail')".to_owned()
        );
    }
    Regex::new(text).map(Pattern).map_err(|error| {
        // regex's message draws the pattern over several lines; the last
        // one says what is wrong.
        let message = error.to_string();
        let last = message.lines().last().unwrap_or_default();
        format!("{text:?} is not a valid regex: {}", last.trim_start_matches("error: "))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::Write as _;

    use super::*;
    use crate::builtin::BuiltinErrorKind;
    use crate::builtin::test_util::words;
    use crate::state::State;

    fn log(args: &[&str]) -> Log {
        try_log(args).unwrap()
    }

    fn try_log(args: &[&str]) -> Result<Log, BuiltinError> {
        let args = words(args);
        Log::parse(&args)
    }

    fn append(path: &Path, text: &str) {
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
        file.write_all(text.as_bytes()).unwrap();
    }

    /// A log file with some history, and a check following it.
    fn following(args: &[&str]) -> (tempfile::TempDir, PathBuf, Log) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        append(&path, "old error, before the agent started\n");
        let mut full = vec!["-f", path.to_str().unwrap()];
        full.extend_from_slice(args);
        let check = log(&full);
        (dir, path, check)
    }

    #[test]
    fn the_first_run_starts_at_the_end() {
        let (_dir, path, check) = following(&["-e", "error"]);
        let outcome = check.run();
        assert_eq!(outcome.state, State::Ok);
        assert_eq!(
            outcome.summary,
            format!(
                "LOG OK - no new line matches 'error' in {0} (first run: following {0} from its end)",
                path.display()
            )
        );
        assert_eq!(outcome.perfdata[0].to_string(), "matches=0;0;;0");
    }

    #[test]
    fn new_matching_lines_are_counted_once() {
        let (_dir, path, check) = following(&["-e", "(?i)error", "-w", "0", "-c", "2"]);
        check.run();
        append(&path, "all fine\nERROR: disk full\nok\nerror: again\n");
        let outcome = check.run();
        assert_eq!(outcome.state, State::Warning);
        assert_eq!(
            outcome.summary,
            format!(
                "LOG WARNING - 2 new lines match '(?i)error' in {}; the last: error: again",
                path.display()
            )
        );
        assert_eq!(
            outcome.long_output,
            "the last 2 matching lines:\nERROR: disk full\nerror: again"
        );
        assert_eq!(outcome.perfdata[0].to_string(), "matches=2;0;2;0");
        let outcome = check.run();
        assert_eq!(outcome.state, State::Ok, "nothing new");
        append(&path, "error 1\nerror 2\nerror 3\n");
        assert_eq!(check.run().state, State::Critical);
    }

    #[test]
    fn an_unfinished_line_waits_for_its_newline() {
        let (_dir, path, check) = following(&["-e", "error"]);
        check.run();
        append(&path, "error: half a li");
        assert_eq!(check.run().perfdata[0].value, Some(0.0));
        append(&path, "ne\r\n");
        let outcome = check.run();
        assert_eq!(outcome.perfdata[0].value, Some(1.0));
        assert!(outcome.summary.ends_with(": error: half a line"), "{}", outcome.summary);
    }

    #[test]
    fn a_rotated_file_is_read_to_its_end_then_the_new_one_from_its_start() {
        let (dir, path, check) = following(&["-e", "error"]);
        check.run();
        append(&path, "error A, before the rotation\nerror B, no newline");
        std::fs::rename(&path, dir.path().join("app.log.1")).unwrap();
        append(&path, "error C, in the new file\n");
        let outcome = check.run();
        assert_eq!(outcome.perfdata[0].value, Some(3.0), "{}", outcome.summary);
        assert_eq!(
            outcome.summary,
            format!(
                "LOG WARNING - 3 new lines match 'error' in {0}; the last: error C, in the new file \
                 ({0} was rotated; read the new file from its start)",
                path.display()
            )
        );
        append(&path, "error D\n");
        assert_eq!(check.run().perfdata[0].value, Some(1.0));
    }

    #[test]
    fn a_truncated_file_is_read_from_its_start() {
        let (_dir, path, check) = following(&["-e", "error"]);
        check.run();
        std::fs::write(&path, "error E\n").unwrap();
        let outcome = check.run();
        assert_eq!(outcome.perfdata[0].value, Some(1.0));
        assert!(
            outcome
                .summary
                .ends_with(&format!("({} was truncated; read from its start)", path.display())),
            "{}",
            outcome.summary
        );
    }

    #[test]
    fn a_removed_file_is_missing_until_it_comes_back() {
        let (_dir, path, check) = following(&["-e", "error"]);
        check.run();
        append(&path, "error F\n");
        std::fs::remove_file(&path).unwrap();
        let outcome = check.run();
        assert_eq!(outcome.perfdata[0].value, Some(1.0), "the last lines are still read");
        assert!(outcome.summary.contains("was removed or renamed"), "{}", outcome.summary);
        let outcome = check.run();
        assert_eq!(outcome.state, State::Unknown);
        assert_eq!(
            outcome.summary,
            format!("LOG UNKNOWN - cannot open {}: No such file or directory", path.display())
        );
        append(&path, "error G\n");
        let outcome = check.run();
        assert_eq!(outcome.perfdata[0].value, Some(1.0));
        assert!(outcome.summary.ends_with("is back; read from its start)"), "{}", outcome.summary);
    }

    #[test]
    fn a_missing_file_is_unknown_and_named() {
        let check = log(&["-f", "/nonexistent/app.log", "-e", "x"]);
        let outcome = check.run();
        assert_eq!(outcome.state, State::Unknown);
        assert_eq!(
            outcome.summary,
            "LOG UNKNOWN - cannot open /nonexistent/app.log: No such file or directory"
        );
    }

    #[test]
    fn a_flood_is_skipped_to_the_latest_lines() {
        let (_dir, path, check) = following(&["-e", "error"]);
        check.run();
        let flood: String = (0..20).map(|n| format!("error {n:02}\n")).collect();
        append(&path, &flood);
        // 9 bytes a line: the run reads the last 5 lines, and drops the
        // first of them, which after a skip is usually the tail of a line.
        let outcome = check.run_with(45);
        assert_eq!(outcome.perfdata[0].value, Some(4.0), "{}", outcome.summary);
        assert!(
            outcome.summary.contains(&format!(
                "the last: error 19 (skipped 135 B of {}: more was added since the last run than \
                 one run reads)",
                path.display()
            )),
            "{}",
            outcome.summary
        );
        assert_eq!(check.run_with(45).perfdata[0].value, Some(0.0), "caught up");
    }

    #[test]
    fn a_single_line_longer_than_a_run_reads_is_skipped() {
        let (_dir, path, check) = following(&["-e", "error"]);
        check.run();
        append(&path, &format!("error {}\n", "x".repeat(100)));
        let outcome = check.run_with(50);
        assert_eq!(outcome.perfdata[0].value, Some(0.0));
        append(&path, "error H\n");
        assert_eq!(check.run_with(50).perfdata[0].value, Some(1.0));
    }

    #[test]
    fn lines_are_shown_safely() {
        assert_eq!(shown(b"bell\x07 and \x1b[31mred"), "bell  and  [31mred");
        assert_eq!(shown(b"caf\xe9"), "caf\u{fffd}");
        let long = "y".repeat(400);
        assert_eq!(shown(long.as_bytes()).chars().count(), LINE_MAX + 1);
    }

    #[test]
    fn clones_share_the_position() {
        let (_dir, path, check) = following(&["-e", "error"]);
        check.run();
        let clone = check.clone();
        append(&path, "error I\n");
        assert_eq!(clone.run().perfdata[0].value, Some(1.0));
        assert_eq!(check.run().perfdata[0].value, Some(0.0));
        assert_eq!(check, log(&["-f", path.to_str().unwrap(), "-e", "error"]));
        assert_ne!(check, log(&["-f", path.to_str().unwrap(), "-e", "err"]));
    }

    #[test]
    fn bad_options() {
        let message = |args: &[&str]| try_log(args).unwrap_err().to_string();
        assert_eq!(
            message(&["-f", "/var/log/syslog", "-e", "(oops"]),
            r#"builtin:log: -e: "(oops" is not a valid regex: unclosed group"#
        );
        assert_eq!(
            message(&["-f", "/var/log/syslog", "-e", ""]),
            "builtin:log: -e: the pattern is empty, which matches every line (write e.g. 'error|fail')"
        );
        assert_eq!(
            message(&["-e", "x"]),
            "builtin:log: -f FILE is required: the log file to follow (usage: builtin:log -f FILE \
             -e REGEX [-w RANGE] [-c RANGE])"
        );
        assert_eq!(try_log(&["-f", "/x"]).unwrap_err().kind(), BuiltinErrorKind::MissingOption);
        assert_eq!(
            message(&["-f", "/x", "-e", "x", "-w", "many"]),
            r#"builtin:log: -w: invalid threshold "many": "many" is not a number (write e.g. 10, 1: or 2:50)"#
        );
        let check = log(&["-f", "/x", "-e", "x", "-c", "5"]);
        assert_eq!(
            (check.warning, check.critical.map(|level| level.text)),
            (None, Some("5".to_owned()))
        );
    }
}
