//! `builtin:procs [-w RANGE] [-c RANGE] [-C COMMAND] [-u USER] [-s STATES]
//! [-a ARGS] [-k]`: the number of processes, like `check_procs`.
//!
//! - `-w`/`-c`: Nagios ranges on the count, as in `check_procs`: `-w 1:`
//!   warns when fewer than one process matches (a daemon that died),
//!   `-c 500` is critical above 500, `-w @0` warns when there is none.
//!   Without them the check is always OK and only counts.
//! - `-C COMMAND`: the process name, exactly, as in `/proc/PID/comm` (what
//!   `ps -o comm` and `check_procs -C` compare). The kernel keeps 15
//!   characters of it, so a longer `-C` could never match and is refused.
//! - `-u USER`: the effective user, by name or uid. Names are looked up in
//!   `/etc/passwd` at each run (a user created after the agent started is
//!   found); users known only to LDAP or another NSS source need the uid.
//! - `-s STATES`: processes in one of these states, the letters of
//!   `/proc/PID/stat`: `R` running, `S` sleeping, `D` uninterruptible
//!   (usually I/O), `Z` zombie, `T` stopped, `t` traced, `I` idle kernel
//!   thread, `X` dead. `-s Z` counts zombies, `-s DZ` either.
//!   `check_procs` matches the text of `ps`'s STAT column, which adds
//!   flags (`s`, `l`, `+`, `<`, `N`); those are not states and are refused.
//! - `-a ARGS`: the command line (`/proc/PID/cmdline`, arguments joined by
//!   spaces) contains ARGS. A kernel thread's command line is `[NAME]`, as
//!   `ps` shows it.
//! - `-k`: leave kernel threads out, as `check_procs -k` does.
//!
//! Filters combine with "and". Every process counts, the agent included,
//! where `check_procs` leaves out itself and its parent; the two counts
//! differ by those.
//!
//! Processes come and go while `/proc` is read: one that vanishes between
//! the directory listing and the read of its files is skipped without a
//! word, as `ps` does. A `stat` file that is there but does not parse is
//! UNKNOWN, naming the file: it means the kernel's format changed, not that
//! the process is gone.
//!
//! The summary is `check_procs`'s, filters in the order given:
//! `PROCS OK: 2 processes with command name 'sshd', UID = 0 (root)`, and
//! the perfdata `procs=2;W;C;0` with the ranges as written.

use std::io;
use std::path::Path;

use super::args::{Command, RangeLevel, Spec, range_thresholds};
use super::{BuiltinError, Outcome, io_error_text, perf};
use crate::state::State;

pub(super) const NAME: &str = "procs";
pub(super) const USAGE: &str =
    "builtin:procs [-w RANGE] [-c RANGE] [-C COMMAND] [-u USER] [-s STATES] [-a ARGS] [-k]";
const PREFIX: &str = "PROCS";
const COMMAND: Command = Command {
    name: NAME,
    usage: USAGE,
    specs: &[
        Spec::value('w', "warning"),
        Spec::value('c', "critical"),
        Spec::value('C', "command"),
        Spec::value('u', "user"),
        Spec::value('s', "state"),
        Spec::value('a', "argument-array"),
        Spec::flag('k', "no-kthreads"),
    ],
};

const PROC: &str = "/proc";
const PASSWD: &str = "/etc/passwd";

/// The longest process name the kernel keeps (`TASK_COMM_LEN` − 1).
const COMM_MAX: usize = 15;

/// The state letters of `/proc/PID/stat` (proc(5)), including those of
/// older kernels (`x`, `K`, `W`, `P`).
const STATES: &str = "RSDZTtXxKWPI";

/// `PF_KTHREAD` in the flags field of `/proc/PID/stat`: a kernel thread.
const PF_KTHREAD: u64 = 0x0020_0000;

/// A user as given to `-u`.
#[derive(Debug, Clone, PartialEq)]
enum User {
    Name(String),
    Id(u32),
}

/// One filter, in the order the options were given (the summary's order).
#[derive(Debug, Clone, PartialEq)]
enum Filter {
    Command(String),
    User(User),
    States(String),
    Args(String),
}

/// A parsed `builtin:procs`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Procs {
    warning: Option<RangeLevel>,
    critical: Option<RangeLevel>,
    filters: Vec<Filter>,
    no_kthreads: bool,
}

impl Procs {
    pub(super) fn parse(args: &[String]) -> Result<Procs, BuiltinError> {
        let (mut warning, mut critical) = (None, None);
        let (mut command, mut user, mut states, mut cmdline) = (None, None, None, None);
        let mut order = Vec::new();
        let mut no_kthreads = false;
        for opt in COMMAND.parse(args)? {
            match opt.short {
                'w' => COMMAND.set_once(&mut warning, opt, RangeLevel::parse)?,
                'c' => COMMAND.set_once(&mut critical, opt, RangeLevel::parse)?,
                'k' => no_kthreads = true,
                short => {
                    match short {
                        'C' => COMMAND.set_once(&mut command, opt, parse_command)?,
                        'u' => COMMAND.set_once(&mut user, opt, parse_user)?,
                        's' => COMMAND.set_once(&mut states, opt, parse_states)?,
                        _ => COMMAND.set_once(&mut cmdline, opt, not_empty)?,
                    }
                    order.push(short);
                }
            }
        }
        let filters = order
            .into_iter()
            .filter_map(|short| match short {
                'C' => command.take().map(Filter::Command),
                'u' => user.take().map(Filter::User),
                's' => states.take().map(Filter::States),
                _ => cmdline.take().map(Filter::Args),
            })
            .collect();
        Ok(Procs { warning, critical, filters, no_kthreads })
    }

    pub(super) fn run(&self) -> Outcome {
        self.run_from(Path::new(PROC), Path::new(PASSWD))
    }

    fn run_from(&self, proc: &Path, passwd: &Path) -> Outcome {
        let user = match self.resolve_user(passwd) {
            Ok(user) => user,
            Err(error) => return unknown(error),
        };
        match self.count(proc, user.as_ref().map(|(uid, _)| *uid)) {
            Ok(count) => self.evaluate(count, user.as_ref()),
            Err(error) => unknown(error),
        }
    }

    /// The uid of `-u` and its name for the summary; `None` without `-u`.
    fn resolve_user(&self, passwd: &Path) -> Result<Option<(u32, Option<String>)>, String> {
        let Some(user) = self.filters.iter().find_map(|filter| match filter {
            Filter::User(user) => Some(user),
            _ => None,
        }) else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(passwd);
        match user {
            // A uid needs no passwd file; the name only decorates the summary.
            User::Id(uid) => {
                let name = text.ok().and_then(|text| name_of(&text, *uid).map(str::to_owned));
                Ok(Some((*uid, name)))
            }
            User::Name(name) => {
                let text = text.map_err(|error| {
                    format!("cannot read {}: {}", passwd.display(), io_error_text(&error))
                })?;
                match uid_of(&text, name) {
                    Some(uid) => Ok(Some((uid, Some(name.clone())))),
                    None => Err(format!(
                        "no user '{name}' in {} (give a user known only to LDAP or another \
                         directory by its uid)",
                        passwd.display()
                    )),
                }
            }
        }
    }

    /// Counts the matching processes in `proc` (a `/proc`).
    fn count(&self, proc: &Path, uid: Option<u32>) -> Result<u64, String> {
        let entries = std::fs::read_dir(proc).map_err(|error| {
            format!("cannot read {}: {}", proc.display(), io_error_text(&error))
        })?;
        let mut count = 0;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name.to_str().filter(|name| name.bytes().all(|b| b.is_ascii_digit()))
            else {
                continue;
            };
            let dir = proc.join(pid);
            if self.matches(&dir, uid)? {
                count += 1;
            }
        }
        Ok(count)
    }

    /// Whether the process in `dir` passes every filter; `Ok(false)` too
    /// when it vanished meanwhile. Files are read only as far as needed,
    /// cheapest first: without filters, a process counts from its
    /// directory alone, which is what keeps a count of all processes cheap.
    fn matches(&self, dir: &Path, uid: Option<u32>) -> Result<bool, String> {
        let mut stat = LazyStat { dir, stat: None };
        if self.no_kthreads {
            let Some(stat) = stat.get()? else {
                return Ok(false);
            };
            if stat.flags & PF_KTHREAD != 0 {
                return Ok(false);
            }
        }
        for filter in &self.filters {
            let passes = match filter {
                Filter::Command(command) => match stat.get()? {
                    Some(stat) => *command == stat.comm,
                    None => return Ok(false),
                },
                Filter::States(states) => match stat.get()? {
                    Some(stat) => states.contains(stat.state),
                    None => return Ok(false),
                },
                Filter::User(_) => {
                    let status_path = dir.join("status");
                    let Some(status) = read_proc_file(&status_path)? else {
                        return Ok(false);
                    };
                    let Some(effective) = effective_uid(&String::from_utf8_lossy(&status)) else {
                        return Err(cannot_parse(&status_path, &status));
                    };
                    uid == Some(effective)
                }
                Filter::Args(wanted) => {
                    let Some(raw) = read_proc_file(&dir.join("cmdline"))? else {
                        return Ok(false);
                    };
                    // An empty command line (kernel threads, zombies) reads
                    // as `[comm]`, as `ps` shows it.
                    let text = match command_line(&raw) {
                        Some(text) => text,
                        None => match stat.get()? {
                            Some(stat) => format!("[{}]", stat.comm),
                            None => return Ok(false),
                        },
                    };
                    text.contains(wanted.as_str())
                }
            };
            if !passes {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The result for `count` matching processes; `user` is the resolved
    /// `-u`, for the summary.
    fn evaluate(&self, count: u64, user: Option<&(u32, Option<String>)>) -> Outcome {
        let (thresholds, levels) = range_thresholds(&self.warning, &self.critical);
        let state = thresholds.evaluate(count as f64);
        let noun = if count == 1 { "process" } else { "processes" };
        let mut text = format!("{count} {noun}");
        let described: Vec<String> =
            self.filters.iter().map(|filter| describe(filter, user)).collect();
        if !described.is_empty() {
            text.push_str(" with ");
            text.push_str(&described.join(", "));
        }
        let mut outcome =
            Outcome::with_summary(state, format!("{PREFIX} {}: {text}", state.label()));
        outcome.perfdata = vec![perf("procs", count as f64, "", levels, Some(0.0), None)];
        outcome
    }
}

/// `PROCS UNKNOWN: …`, in `check_procs`'s form.
fn unknown(text: String) -> Outcome {
    Outcome::with_summary(State::Unknown, format!("{PREFIX} UNKNOWN: {text}"))
}

/// A filter as `check_procs` words it.
fn describe(filter: &Filter, user: Option<&(u32, Option<String>)>) -> String {
    match filter {
        Filter::Command(command) => format!("command name '{command}'"),
        Filter::States(states) => format!("STATE = {states}"),
        Filter::Args(args) => format!("args '{args}'"),
        Filter::User(_) => match user {
            Some((uid, Some(name))) => format!("UID = {uid} ({name})"),
            Some((uid, None)) => format!("UID = {uid}"),
            None => String::new(),
        },
    }
}

fn not_empty(text: &str) -> Result<String, String> {
    if text.is_empty() { Err("the value is empty".to_owned()) } else { Ok(text.to_owned()) }
}

fn parse_command(text: &str) -> Result<String, String> {
    let command = not_empty(text)?;
    if command.len() > COMM_MAX {
        let kept: String = command.chars().take(COMM_MAX).collect();
        return Err(format!(
            "{command:?} is longer than the {COMM_MAX} characters the kernel keeps of a process \
             name, so it never matches (write {kept:?}, or match the command line with -a)"
        ));
    }
    Ok(command)
}

fn parse_user(text: &str) -> Result<User, String> {
    let user = not_empty(text)?;
    Ok(match user.parse::<u32>() {
        Ok(uid) => User::Id(uid),
        Err(_) => User::Name(user),
    })
}

fn parse_states(text: &str) -> Result<String, String> {
    let states = not_empty(text)?;
    match states.chars().find(|letter| !STATES.contains(*letter)) {
        Some(letter) => Err(format!(
            "{letter:?} is not a process state (use R, S, D, Z, T, t, I or X; the flags ps adds \
             to STAT, such as s, l, + or <, are not states)"
        )),
        None => Ok(states),
    }
}

/// A process's `stat`, read on first use.
struct LazyStat<'a> {
    dir: &'a Path,
    stat: Option<Stat>,
}

impl LazyStat<'_> {
    /// The parsed `stat`; `None` when the process is gone.
    fn get(&mut self) -> Result<Option<&Stat>, String> {
        if self.stat.is_none() {
            let path = self.dir.join("stat");
            let Some(text) = read_proc_file(&path)? else {
                return Ok(None);
            };
            let parsed = Stat::parse(&String::from_utf8_lossy(&text))
                .ok_or_else(|| cannot_parse(&path, &text))?;
            self.stat = Some(parsed);
        }
        Ok(self.stat.as_ref())
    }
}

/// The fields of `/proc/PID/stat` the filters use.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stat {
    comm: String,
    state: char,
    flags: u64,
}

impl Stat {
    /// Parses `1234 (name) S 1 1234 1234 0 -1 4194560 …`. The name is
    /// between the first `(` and the *last* `)`: it may hold both, and
    /// spaces.
    fn parse(text: &str) -> Option<Stat> {
        let open = text.find('(')?;
        let close = text.rfind(')')?;
        let comm = text.get(open + 1..close)?.to_owned();
        text[..open].trim().parse::<u32>().ok()?;
        // After the name: state ppid pgrp session tty_nr tpgid flags.
        let mut fields = text[close + 1..].split_ascii_whitespace();
        let mut state = fields.next()?.chars();
        let (Some(state), None) = (state.next(), state.next()) else {
            return None;
        };
        let flags = fields.nth(5)?.parse().ok()?;
        Some(Stat { comm, state, flags })
    }
}

/// The effective uid of a `/proc/PID/status` (`Uid:\t1000\t1000\t1000\t1000`:
/// real, effective, saved, filesystem), which `ps -o uid` shows.
fn effective_uid(status: &str) -> Option<u32> {
    let line = status.lines().find_map(|line| line.strip_prefix("Uid:"))?;
    line.split_ascii_whitespace().nth(1)?.parse().ok()
}

/// A `/proc/PID/cmdline` as `ps` shows it: arguments joined by spaces;
/// `None` when it is empty.
fn command_line(raw: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(raw);
    let joined = text.trim_end_matches('\0').replace('\0', " ");
    (!joined.is_empty()).then_some(joined)
}

/// The uid of `name` in the text of `/etc/passwd`.
fn uid_of(passwd: &str, name: &str) -> Option<u32> {
    passwd_entries(passwd).find(|&(entry, _)| entry == name).map(|(_, uid)| uid)
}

/// The first name with `uid` in the text of `/etc/passwd`.
fn name_of(passwd: &str, uid: u32) -> Option<&str> {
    passwd_entries(passwd).find(|&(_, entry)| entry == uid).map(|(name, _)| name)
}

/// `(name, uid)` of each well-formed `name:password:uid:…` line; comments
/// and NIS `+`/`-` lines do not parse as entries and are passed over.
fn passwd_entries(passwd: &str) -> impl Iterator<Item = (&str, u32)> {
    passwd.lines().filter_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next().filter(|name| !name.is_empty() && !name.starts_with('#'))?;
        let uid = fields.nth(1)?.parse().ok()?;
        Some((name, uid))
    })
}

/// Reads a file of a process; `None` when the process is gone: its
/// directory no longer exists (ENOENT), it exited while being read (ESRCH),
/// or the file came back empty, as `stat` does for a process being reaped.
fn read_proc_file(path: &Path) -> Result<Option<Vec<u8>>, String> {
    const ESRCH: i32 = 3;
    match std::fs::read(path) {
        Ok(bytes) if bytes.is_empty() && !path.ends_with("cmdline") => Ok(None),
        Ok(bytes) => Ok(Some(bytes)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) if error.raw_os_error() == Some(ESRCH) => Ok(None),
        Err(error) => Err(format!("cannot read {}: {}", path.display(), io_error_text(&error))),
    }
}

/// `cannot parse /proc/42/stat: "…"`, with the start of the text.
fn cannot_parse(path: &Path, text: &[u8]) -> String {
    let text = String::from_utf8_lossy(text);
    let start: String = text.trim().chars().take(80).collect();
    format!("cannot parse {}: {start:?}", path.display())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::builtin::BuiltinErrorKind;
    use crate::builtin::test_util::{rendered, words};

    const PASSWD_FIXTURE: &str = "\
root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
# a comment
www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin
+nisuser
broken:x:notanumber:0::/:/bin/false
sshd:x:105:65534::/run/sshd:/usr/sbin/nologin
";

    fn procs(args: &[&str]) -> Procs {
        try_procs(args).unwrap()
    }

    fn try_procs(args: &[&str]) -> Result<Procs, BuiltinError> {
        let args = words(args);
        Procs::parse(&args)
    }

    /// A fake `/proc` with the given processes: (pid, stat, status uid,
    /// cmdline). A `None` stat leaves the directory empty, as for a process
    /// that exited after the listing.
    fn fake_proc(processes: &[(u32, Option<&str>, u32, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for &(pid, stat, uid, cmdline) in processes {
            let process = dir.path().join(pid.to_string());
            std::fs::create_dir(&process).unwrap();
            if let Some(stat) = stat {
                std::fs::write(process.join("stat"), stat).unwrap();
                let status =
                    format!("Name:\tx\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\nGid:\t0\t0\t0\t0\n");
                std::fs::write(process.join("status"), status).unwrap();
                std::fs::write(process.join("cmdline"), cmdline).unwrap();
            }
        }
        std::fs::create_dir(dir.path().join("sys")).unwrap();
        std::fs::write(dir.path().join("loadavg"), "0 0 0").unwrap();
        dir
    }

    fn stat(pid: u32, comm: &str, state: char) -> String {
        format!("{pid} ({comm}) {state} 1 {pid} {pid} 0 -1 4194560 120 0 0 0 1 2 0 0 20 0 1 0")
    }

    fn kthread(pid: u32, comm: &str) -> String {
        format!("{pid} ({comm}) I 2 0 0 0 -1 69238880 0 0 0 0 0 0 0 0 0 -20 1 0")
    }

    fn machine() -> tempfile::TempDir {
        let sshd = stat(100, "sshd", 'S');
        let sshd_child = stat(101, "sshd", 'S');
        let zombie = stat(102, "defunct", 'Z');
        let worker = kthread(3, "kworker/0:1");
        let python = stat(200, "python3", 'R');
        fake_proc(&[
            (100, Some(&sshd), 0, "sshd: /usr/sbin/sshd -D [listener]\0"),
            (101, Some(&sshd_child), 105, "sshd: alice [priv]\0"),
            (102, Some(&zombie), 1000, ""),
            (3, Some(&worker), 0, ""),
            (200, Some(&python), 33, "/usr/bin/python3\0-m\0http.server\0"),
        ])
    }

    fn count(args: &[&str], proc: &Path) -> String {
        let passwd = proc.join("passwd");
        std::fs::write(&passwd, PASSWD_FIXTURE).unwrap();
        procs(args).run_from(proc, &passwd).summary
    }

    #[test]
    fn counts_and_filters() {
        let proc = machine();
        let proc = proc.path();
        assert_eq!(count(&[], proc), "PROCS OK: 5 processes");
        assert_eq!(count(&["-k"], proc), "PROCS OK: 4 processes");
        assert_eq!(count(&["-C", "sshd"], proc), "PROCS OK: 2 processes with command name 'sshd'");
        assert_eq!(count(&["-s", "Z"], proc), "PROCS OK: 1 process with STATE = Z");
        assert_eq!(count(&["-s", "RZ"], proc), "PROCS OK: 2 processes with STATE = RZ");
        assert_eq!(count(&["-u", "root"], proc), "PROCS OK: 2 processes with UID = 0 (root)");
        assert_eq!(count(&["-u", "0", "-k"], proc), "PROCS OK: 1 process with UID = 0 (root)");
        assert_eq!(count(&["-u", "1000"], proc), "PROCS OK: 1 process with UID = 1000");
        assert_eq!(
            count(&["-a", "http.server"], proc),
            "PROCS OK: 1 process with args 'http.server'"
        );
        assert_eq!(count(&["-a", "[kworker"], proc), "PROCS OK: 1 process with args '[kworker'");
        assert_eq!(
            count(&["-a", "sshd:", "-u", "sshd", "-C", "sshd", "-s", "S"], proc),
            "PROCS OK: 1 process with args 'sshd:', UID = 105 (sshd), command name 'sshd', \
             STATE = S"
        );
    }

    #[test]
    fn ranges_on_the_count() {
        let check = procs(&["-w", "1:", "-c", "@0", "-C", "nginx"]);
        let outcome = check.evaluate(0, None);
        assert_eq!(outcome.state, State::Critical);
        assert_eq!(outcome.summary, "PROCS CRITICAL: 0 processes with command name 'nginx'");
        assert_eq!(rendered(&outcome), ["procs=0;1:;@0;0"]);
        assert_eq!(check.evaluate(1, None).state, State::Ok);

        let check = procs(&["-w", "1:", "-C", "nginx"]);
        assert_eq!(check.evaluate(0, None).state, State::Warning);

        let check = procs(&["-w", "300", "-c", "500"]);
        assert_eq!(check.evaluate(300, None).state, State::Ok);
        assert_eq!(check.evaluate(301, None).state, State::Warning);
        let critical = check.evaluate(501, None);
        assert_eq!(critical.state, State::Critical);
        assert_eq!(rendered(&critical), ["procs=501;300;500;0"]);

        // No ranges: always OK, still counted.
        let outcome = procs(&[]).evaluate(1, None);
        assert_eq!(outcome.state, State::Ok);
        assert_eq!(outcome.summary, "PROCS OK: 1 process");
        assert_eq!(rendered(&outcome), ["procs=1;;;0"]);
    }

    #[test]
    fn vanished_processes_are_skipped() {
        let sshd = stat(100, "sshd", 'S');
        // 300 exited between the listing and the read of its stat; 301
        // between the read of its stat and that of its status.
        let proc = fake_proc(&[(100, Some(&sshd), 0, "sshd\0"), (300, None, 0, "")]);
        let gone = proc.path().join("301");
        std::fs::create_dir(&gone).unwrap();
        std::fs::write(gone.join("stat"), stat(301, "sshd", 'S')).unwrap();
        assert_eq!(
            count(&["-C", "sshd"], proc.path()),
            "PROCS OK: 2 processes with command name 'sshd'"
        );
        assert_eq!(
            count(&["-C", "sshd", "-u", "root"], proc.path()),
            "PROCS OK: 1 process with command name 'sshd', UID = 0 (root)"
        );
        assert_eq!(count(&["-a", "sshd"], proc.path()), "PROCS OK: 1 process with args 'sshd'");
        // A process being reaped reads as an empty stat.
        std::fs::write(gone.join("stat"), "").unwrap();
        assert_eq!(count(&["-k"], proc.path()), "PROCS OK: 1 process");
        // Without filters, every process listed counts: no file is read.
        assert_eq!(count(&[], proc.path()), "PROCS OK: 3 processes");
    }

    #[test]
    fn a_garbled_proc_file_is_unknown_and_named() {
        let proc = fake_proc(&[(7, Some("7 (init S 1"), 0, "")]);
        let outcome = procs(&["-s", "Z"]).run_from(proc.path(), Path::new(PASSWD));
        assert_eq!(outcome.state, State::Unknown);
        assert_eq!(
            outcome.summary,
            format!(
                "PROCS UNKNOWN: cannot parse {}/7/stat: \"7 (init S 1\"",
                proc.path().display()
            )
        );
        let status = proc.path().join("8");
        std::fs::create_dir(&status).unwrap();
        std::fs::write(status.join("stat"), stat(8, "x", 'S')).unwrap();
        std::fs::write(status.join("status"), "Name:\tx\n").unwrap();
        std::fs::remove_dir_all(proc.path().join("7")).unwrap();
        let outcome = procs(&["-u", "0"]).run_from(proc.path(), Path::new("/nonexistent"));
        assert_eq!(
            outcome.summary,
            format!(
                "PROCS UNKNOWN: cannot parse {}/8/status: \"Name:\\tx\"",
                proc.path().display()
            )
        );
    }

    #[test]
    fn an_unreadable_proc_is_unknown() {
        let outcome = procs(&[]).run_from(Path::new("/nonexistent/proc"), Path::new(PASSWD));
        assert_eq!(
            outcome.summary,
            "PROCS UNKNOWN: cannot read /nonexistent/proc: No such file or directory"
        );
    }

    #[test]
    fn users() {
        let proc = machine();
        let passwd = proc.path().join("passwd");
        std::fs::write(&passwd, PASSWD_FIXTURE).unwrap();
        let outcome = procs(&["-u", "nobody"]).run_from(proc.path(), &passwd);
        assert_eq!(outcome.state, State::Unknown);
        assert_eq!(
            outcome.summary,
            format!(
                "PROCS UNKNOWN: no user 'nobody' in {} (give a user known only to LDAP or another \
                 directory by its uid)",
                passwd.display()
            )
        );
        let outcome =
            procs(&["-u", "root"]).run_from(proc.path(), Path::new("/nonexistent/passwd"));
        assert_eq!(
            outcome.summary,
            "PROCS UNKNOWN: cannot read /nonexistent/passwd: No such file or directory"
        );
        // A uid works without a passwd file.
        let outcome = procs(&["-u", "0"]).run_from(proc.path(), Path::new("/nonexistent/passwd"));
        assert_eq!(outcome.summary, "PROCS OK: 2 processes with UID = 0");

        assert_eq!(uid_of(PASSWD_FIXTURE, "www-data"), Some(33));
        assert_eq!(uid_of(PASSWD_FIXTURE, "broken"), None);
        assert_eq!(uid_of(PASSWD_FIXTURE, "+nisuser"), None);
        assert_eq!(name_of(PASSWD_FIXTURE, 105), Some("sshd"));
        assert_eq!(name_of(PASSWD_FIXTURE, 4242), None);
    }

    #[test]
    fn stat_lines() {
        let parsed = Stat::parse("42 (tmux: server) S 1 42 42 0 -1 4194624 0 0").unwrap();
        assert_eq!(parsed, Stat { comm: "tmux: server".to_owned(), state: 'S', flags: 4_194_624 });
        // A name with parentheses and spaces.
        let parsed = Stat::parse("43 (a) b) (c) Z 1 0 0 0 -1 0 0").unwrap();
        assert_eq!((parsed.comm.as_str(), parsed.state), ("a) b) (c", 'Z'));
        for garbled in
            ["", "42 tmux S 1", "42 (tmux) SS 1 2 3 4 5 6", "x (a) S 1 2 3 4 5 6", "42 (a) S 1 2"]
        {
            assert_eq!(Stat::parse(garbled), None, "{garbled:?}");
        }
    }

    #[test]
    fn status_and_cmdline() {
        assert_eq!(effective_uid("Name:\tx\nUid:\t1000\t0\t0\t0\n"), Some(0));
        assert_eq!(effective_uid("Name:\tx\n"), None);
        assert_eq!(
            command_line(b"/usr/bin/python3\0-m\0http.server\0").as_deref(),
            Some("/usr/bin/python3 -m http.server")
        );
        assert_eq!(command_line(b""), None);
    }

    #[test]
    fn bad_options() {
        let message = |args: &[&str]| try_procs(args).unwrap_err().to_string();
        assert_eq!(
            message(&["-w", "lots"]),
            r#"builtin:procs: -w: invalid threshold "lots": "lots" is not a number (write e.g. 10, 1: or 2:50)"#
        );
        assert_eq!(
            message(&["-C", "systemd-journald"]),
            r#"builtin:procs: -C: "systemd-journald" is longer than the 15 characters the kernel keeps of a process name, so it never matches (write "systemd-journal", or match the command line with -a)"#
        );
        assert_eq!(
            message(&["-s", "Ss"]),
            "builtin:procs: -s: 's' is not a process state (use R, S, D, Z, T, t, I or X; the \
             flags ps adds to STAT, such as s, l, + or <, are not states)"
        );
        assert_eq!(message(&["-a", ""]), "builtin:procs: -a: the value is empty");
        assert_eq!(
            try_procs(&["-C", "a", "-C", "b"]).unwrap_err().kind(),
            BuiltinErrorKind::RepeatedOption
        );
        assert_eq!(try_procs(&["-m", "RSS"]).unwrap_err().kind(), BuiltinErrorKind::UnknownOption);
        assert_eq!(procs(&["-u", "33"]).filters, [Filter::User(User::Id(33))]);
        assert_eq!(
            procs(&["--user=www-data"]).filters,
            [Filter::User(User::Name("www-data".into()))]
        );
    }

    #[test]
    fn smoke_on_this_machine() {
        let outcome = procs(&["-w", "1:"]).run();
        assert_eq!(outcome.state, State::Ok, "{}", outcome.summary);
        assert!(outcome.summary.starts_with("PROCS OK: "), "{}", outcome.summary);
        assert!(outcome.perfdata[0].value.unwrap() >= 1.0);
        // This test runs as some user, whose processes include this one.
        let mine = std::fs::read_to_string("/proc/self/status").unwrap();
        let uid = effective_uid(&mine).unwrap().to_string();
        let outcome = procs(&["-u", &uid]).run();
        assert!(outcome.perfdata[0].value.unwrap() >= 1.0, "{}", outcome.summary);
    }
}
