//! The result of one check run, and how the way a plugin ended maps to a
//! state and a summary.
//!
//! This is where the plugin execution policy's *interpretation* lives; the
//! runner only observes the process. Keeping it pure means a built-in check,
//! a replayed result and a real plugin all become a [`CheckResult`] the same
//! way.

use std::fmt;
use std::time::Duration;

use crate::output;
use crate::perfdata::PerfData;
use crate::state::State;

/// The outcome of one check run, owned, ready to store or serialise.
///
/// With the `serde` feature it serialises to the agent's JSON shape
/// (`duration_ms` as a number of milliseconds).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CheckResult {
    /// The state the run maps to.
    pub state: State,
    /// The plugin's exit code; `None` when it did not exit by itself
    /// (signal, timeout, could not be started) or for built-in checks.
    pub exit_code: Option<i32>,
    /// The first line of output, trimmed; names the cause when the agent
    /// overrode the plugin's own state.
    pub summary: String,
    /// The output lines after the first, without perfdata.
    pub long_output: String,
    /// The perfdata items that parsed; malformed items are skipped.
    pub perfdata: Vec<PerfData>,
    /// Wall-clock time from start to the result.
    #[cfg_attr(feature = "serde", serde(rename = "duration_ms", with = "duration_ms"))]
    pub duration: Duration,
    /// The run was stopped by the timeout.
    pub timed_out: bool,
    /// Output beyond the capture limit was dropped.
    pub truncated: bool,
}

/// How a plugin run ended, as the runner observed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Termination {
    /// The process exited with this status code.
    Exited(i32),
    /// The process was killed by this signal number (not by us).
    Signaled(i32),
    /// The timeout expired and the agent killed the process group.
    TimedOut(Duration),
    /// The timeout expired and processes of the run could not be killed:
    /// they belong to another user (a plugin run through `sudo`) and no
    /// cgroup held the run. The user is named (`root`, or `uid N`).
    Unkillable {
        /// The timeout that expired.
        after: Duration,
        /// Who owns the processes left running.
        owner: String,
    },
    /// The command could not be started at all.
    SpawnFailed(SpawnFailure),
}

impl Termination {
    /// How the run ended, in words, for output shown as it is (a
    /// `collect` action's): `exit status 1`, `killed by signal 9
    /// (SIGKILL)`, `timed out after 5s and killed`, that it could not be
    /// killed, or why it did not start.
    pub fn describe(&self) -> String {
        match self {
            Termination::Exited(code) => format!("exit status {code}"),
            Termination::Signaled(signal) => {
                format!("killed by signal {signal} ({})", signal_name(*signal))
            }
            Termination::TimedOut(after) => {
                format!("timed out after {} and killed", DisplayDuration(*after))
            }
            Termination::Unkillable { after, owner } => {
                format!(
                    "timed out after {} and could not be killed: owned by {owner}",
                    DisplayDuration(*after)
                )
            }
            Termination::SpawnFailed(failure) => failure.to_string(),
        }
    }
}

/// Why a command could not be started, in an operator's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpawnFailure {
    /// The program that was to be run.
    pub program: String,
    /// What went wrong.
    pub kind: SpawnFailureKind,
}

/// The cause of a [`SpawnFailure`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpawnFailureKind {
    /// No such file, or not found on the search path.
    NotFound,
    /// The file exists but may not be executed (mode, mount options).
    PermissionDenied,
    /// The kernel does not recognise the file as a program (a script
    /// without a `#!` line, a binary for another architecture).
    NotExecutable,
    /// fork failed with EAGAIN: the agent's user is at its process limit
    /// (`RLIMIT_NPROC`, a pids cgroup) or the system at `kernel.pid_max`.
    ProcessLimit,
    /// Any other operating-system error, as its message.
    Other(String),
}

impl fmt::Display for SpawnFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let program = &self.program;
        match &self.kind {
            SpawnFailureKind::NotFound => write!(f, "command not found: {program}"),
            SpawnFailureKind::PermissionDenied => {
                write!(f, "permission denied running {program} (is it executable?)")
            }
            SpawnFailureKind::NotExecutable => {
                write!(f, "{program} is not an executable program (a script without a #! line?)")
            }
            SpawnFailureKind::ProcessLimit => write!(
                f,
                "cannot run {program}: fork failed with EAGAIN: the process limit is reached \
                 (RLIMIT_NPROC of the agent's user, a pids cgroup or kernel.pid_max)"
            ),
            SpawnFailureKind::Other(message) => write!(f, "cannot run {program}: {message}"),
        }
    }
}

/// What a run produced, as raw as the runner captured it.
#[derive(Debug, Clone, Copy)]
pub struct RawRun<'a> {
    /// How it ended.
    pub termination: &'a Termination,
    /// Standard output, already decoded (lossily) as text.
    pub stdout: &'a str,
    /// Standard error, kept apart from stdout.
    pub stderr: &'a str,
    /// Wall-clock duration.
    pub duration: Duration,
    /// Whether either stream hit the capture limit.
    pub truncated: bool,
    /// The state to report when the run timed out (UNKNOWN by default).
    pub timeout_state: State,
}

impl CheckResult {
    /// Interprets a finished run under the plugin execution policy.
    ///
    /// - exit 0-3 is the state; any other ending is UNKNOWN (or the timeout
    ///   state) with the cause in brackets before the plugin's own summary;
    /// - an empty stdout takes its summary from stderr's first line, as
    ///   Nagios Core does, so a crashing plugin's message is not lost.
    pub fn from_run(run: RawRun<'_>) -> CheckResult {
        let parsed = output::parse(run.stdout);
        let perfdata =
            parsed.perfdata().filter_map(Result::ok).map(|item| item.to_owned_data()).collect();
        let (summary, long_output) = if parsed.summary.is_empty() && parsed.long_output.is_empty() {
            stderr_summary(run.stderr)
        } else {
            (parsed.summary.to_owned(), parsed.long_output.into_owned())
        };

        let (state, exit_code, cause) = interpret(run.termination, run.timeout_state);
        let summary = match cause {
            None if summary.is_empty() => "(No output returned from plugin)".to_owned(),
            None => summary,
            Some(cause) if summary.is_empty() => format!("({cause})"),
            Some(cause) => format!("({cause}) {summary}"),
        };
        CheckResult {
            state,
            exit_code,
            summary,
            long_output,
            perfdata,
            duration: run.duration,
            timed_out: matches!(
                run.termination,
                Termination::TimedOut(_) | Termination::Unkillable { .. }
            ),
            truncated: run.truncated,
        }
    }
}

fn stderr_summary(stderr: &str) -> (String, String) {
    let stderr = stderr.trim();
    let (first, rest) = stderr.split_once('\n').unwrap_or((stderr, ""));
    (first.trim_end().to_owned(), rest.replace("\r\n", "\n").trim_end().to_owned())
}

/// The state, exit code and (when the plugin's own state does not stand)
/// the cause to put in front of the summary.
fn interpret(
    termination: &Termination,
    timeout_state: State,
) -> (State, Option<i32>, Option<String>) {
    match termination {
        Termination::Exited(code) => match State::from_exit_code(*code) {
            Some(state) => (state, Some(*code), None),
            None => (State::Unknown, Some(*code), Some(exit_code_cause(*code))),
        },
        Termination::Signaled(signal) => (
            State::Unknown,
            None,
            Some(format!("plugin killed by signal {signal} ({})", signal_name(*signal))),
        ),
        Termination::TimedOut(after) => (
            timeout_state,
            None,
            Some(format!("plugin timed out after {}", DisplayDuration(*after))),
        ),
        Termination::Unkillable { after, owner } => (
            timeout_state,
            None,
            Some(format!(
                "plugin timed out after {} and could not be killed: owned by {owner}",
                DisplayDuration(*after)
            )),
        ),
        Termination::SpawnFailed(failure) => (State::Unknown, None, Some(failure.to_string())),
    }
}

fn exit_code_cause(code: i32) -> String {
    // 126 and 127 are what a shell reports when it cannot run the command it
    // was given; name that, since "out of range" alone sends people looking
    // in the wrong place.
    match code {
        126 => "exit status 126: command not executable".to_owned(),
        127 => "exit status 127: command not found".to_owned(),
        _ => format!("exit status {code} is not a plugin state (0-3)"),
    }
}

/// Linux signal names for the numbers a plugin can die of.
fn signal_name(signal: i32) -> &'static str {
    match signal {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        5 => "SIGTRAP",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        10 => "SIGUSR1",
        11 => "SIGSEGV",
        12 => "SIGUSR2",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        24 => "SIGXCPU",
        25 => "SIGXFSZ",
        _ => "unnamed signal",
    }
}

/// Seconds with at most millisecond precision and no trailing zeros, as
/// people write timeouts: `10s`, `1.5s`, `0.25s`.
struct DisplayDuration(Duration);

impl fmt::Display for DisplayDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0.as_millis();
        let (secs, frac) = (millis / 1000, millis % 1000);
        if frac == 0 {
            write!(f, "{secs}s")
        } else {
            let frac = format!("{frac:03}");
            write!(f, "{secs}.{}s", frac.trim_end_matches('0'))
        }
    }
}

#[cfg(feature = "serde")]
mod duration_ms {
    //! `Duration` as a JSON number of milliseconds, fractional to the
    //! microsecond: plugin runs are often well under a millisecond.

    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        let micros = duration.as_micros() as f64;
        serializer.serialize_f64(micros / 1000.0)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let millis = f64::deserialize(deserializer)?;
        Duration::try_from_secs_f64(millis / 1000.0).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn run(termination: Termination, stdout: &str, stderr: &str) -> CheckResult {
        CheckResult::from_run(RawRun {
            termination: &termination,
            stdout,
            stderr,
            duration: Duration::from_millis(12),
            truncated: false,
            timeout_state: State::Unknown,
        })
    }

    #[test]
    fn endings_are_described_in_words() {
        assert_eq!(Termination::Exited(0).describe(), "exit status 0");
        assert_eq!(Termination::Signaled(9).describe(), "killed by signal 9 (SIGKILL)");
        let timed_out = Termination::TimedOut(Duration::from_millis(1500));
        assert_eq!(timed_out.describe(), "timed out after 1.5s and killed");
        let missing = SpawnFailure { program: "/x".into(), kind: SpawnFailureKind::NotFound };
        assert_eq!(Termination::SpawnFailed(missing).describe(), "command not found: /x");
    }

    #[test]
    fn exit_codes_zero_to_three_are_the_state() {
        for state in State::ALL {
            let code = i32::from(state.exit_code());
            let result = run(Termination::Exited(code), "fine | x=1", "");
            assert_eq!(result.state, state);
            assert_eq!(result.exit_code, Some(code));
            assert_eq!(result.summary, "fine");
            assert_eq!(result.perfdata.len(), 1);
        }
    }

    #[test]
    fn other_exit_codes_are_unknown_and_named() {
        let result = run(Termination::Exited(4), "OK all good", "");
        assert_eq!(result.state, State::Unknown);
        assert_eq!(result.exit_code, Some(4));
        assert_eq!(result.summary, "(exit status 4 is not a plugin state (0-3)) OK all good");

        let result = run(Termination::Exited(127), "", "sh: 1: check_nope: not found");
        assert_eq!(result.state, State::Unknown);
        assert_eq!(
            result.summary,
            "(exit status 127: command not found) sh: 1: check_nope: not found"
        );
        assert_eq!(
            run(Termination::Exited(255), "", "").summary,
            "(exit status 255 is not a plugin state (0-3))"
        );
    }

    #[test]
    fn signal_death_is_unknown_with_the_signal_named() {
        let result = run(Termination::Signaled(11), "", "");
        assert_eq!(result.state, State::Unknown);
        assert_eq!(result.exit_code, None);
        assert_eq!(result.summary, "(plugin killed by signal 11 (SIGSEGV))");
    }

    #[test]
    fn timeout_uses_the_configured_state_and_keeps_partial_output() {
        let termination = Termination::TimedOut(Duration::from_millis(1500));
        let result = CheckResult::from_run(RawRun {
            termination: &termination,
            stdout: "checking...",
            stderr: "",
            duration: Duration::from_millis(1600),
            truncated: false,
            timeout_state: State::Critical,
        });
        assert_eq!(result.state, State::Critical);
        assert!(result.timed_out);
        assert_eq!(result.summary, "(plugin timed out after 1.5s) checking...");
    }

    #[test]
    fn spawn_failures_name_the_program() {
        let failure = |kind| {
            Termination::SpawnFailed(SpawnFailure {
                program: "/usr/lib/nagios/plugins/check_x".into(),
                kind,
            })
        };
        let result = run(failure(SpawnFailureKind::NotFound), "", "");
        assert_eq!(result.state, State::Unknown);
        assert_eq!(result.summary, "(command not found: /usr/lib/nagios/plugins/check_x)");
        let result = run(failure(SpawnFailureKind::ProcessLimit), "", "");
        assert!(result.summary.contains("fork failed with EAGAIN"), "{}", result.summary);
        let result = run(failure(SpawnFailureKind::PermissionDenied), "", "");
        assert!(
            result.summary.contains("permission denied running /usr/lib/nagios/plugins/check_x")
        );
    }

    #[test]
    fn a_run_that_could_not_be_killed_is_a_timeout_naming_the_owner() {
        let termination =
            Termination::Unkillable { after: Duration::from_secs(2), owner: "root".into() };
        let result = run(termination, "", "");
        assert!(result.timed_out);
        assert_eq!(result.state, State::Unknown);
        assert!(
            result.summary.contains("timed out after 2s and could not be killed: owned by root"),
            "{}",
            result.summary
        );
    }

    #[test]
    fn empty_stdout_takes_the_first_line_of_stderr() {
        let result = run(
            Termination::Exited(2),
            " \n",
            "Traceback (most recent call last):\r\n  File \"x\", line 1\r\nKeyError: 'a'\n",
        );
        assert_eq!(result.summary, "Traceback (most recent call last):");
        assert_eq!(result.long_output, "  File \"x\", line 1\nKeyError: 'a'");
    }

    #[test]
    fn stderr_is_ignored_when_stdout_has_output() {
        let result = run(Termination::Exited(0), "OK\n", "warning: deprecated option\n");
        assert_eq!(result.summary, "OK");
        assert_eq!(result.long_output, "");
    }

    #[test]
    fn no_output_at_all_says_so() {
        assert_eq!(run(Termination::Exited(0), "", "").summary, "(No output returned from plugin)");
    }

    #[test]
    fn durations_display_as_people_write_them() {
        assert_eq!(DisplayDuration(Duration::from_secs(10)).to_string(), "10s");
        assert_eq!(DisplayDuration(Duration::from_millis(250)).to_string(), "0.25s");
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serialises_to_the_contract_shape() {
        let result = run(Termination::Exited(1), "LOAD WARNING | load1=5;4;8;0;", "");
        let json = serde_json::to_value(&result).unwrap();
        assert_eq!(json["state"], "warning");
        assert_eq!(json["exit_code"], 1);
        assert_eq!(json["duration_ms"], 12.0);
        assert_eq!(json["timed_out"], false);
        assert_eq!(json["perfdata"][0]["label"], "load1");
        assert_eq!(json["perfdata"][0]["warn"], "4");
        assert_eq!(json["perfdata"][0]["max"], serde_json::Value::Null);
        let back: CheckResult = serde_json::from_value(json).unwrap();
        assert_eq!(back, result);
    }
}
