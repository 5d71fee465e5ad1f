//! What `collect` actions gathered when a check turned non-OK: one
//! [`Collected`] per action (its output, how it ended, when), attached to
//! the problem events that follow, as Sensu's check hooks do.
//!
//! Pure: cutting output to a size and joining several outputs into one text
//! for `MONCHERO_COLLECTED` and the `{{collected}}` template field do no
//! I/O. Running the commands is the agent's job.

use std::fmt::Write as _;

/// The most of all collected outputs joined together that an event's
/// environment (`MONCHERO_COLLECTED`) and templates (`{{collected}}`)
/// carry. Linux refuses to start a program with a single environment
/// string over 128 KiB (`MAX_ARG_STRLEN`, "Argument list too long"), which
/// would make the action itself fail; the JSON on stdin carries each
/// output up to its own `max_output`.
pub const JOINED_LIMIT: usize = 64 * 1024;

/// The line that ends output cut at its size limit.
pub const TRUNCATION_MARKER: &str = "\n[… output truncated by monchero]";

/// What one collect action gathered.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Collected {
    /// The action's name.
    pub action: String,
    /// Its stdout, then its stderr if it wrote any, cut to the action's
    /// `max_output` and then ending with [`TRUNCATION_MARKER`].
    pub output: String,
    /// Whether the output was cut.
    pub truncated: bool,
    /// The exit status, when it exited.
    pub exit_code: Option<i32>,
    /// How it ended, in words: `exit status 0`, `timed out after 5s and
    /// killed`, `killed by signal 9 (SIGKILL)`, `command not found: …`.
    pub ended: String,
    /// When it started, in seconds since the Unix epoch.
    pub at: u64,
    /// How long it ran, in milliseconds.
    pub duration_ms: u64,
}

/// `stdout`, then `stderr` after a newline when there is any, at most
/// `limit` bytes (cut on a character boundary) followed by
/// [`TRUNCATION_MARKER`] when cut; `truncated` says the runner already
/// dropped some. Returns the text and whether it was cut.
pub fn combine_output(stdout: &str, stderr: &str, limit: usize, truncated: bool) -> (String, bool) {
    let stdout = stdout.trim_end();
    let stderr = stderr.trim_end();
    let mut text = String::with_capacity((stdout.len() + stderr.len() + 1).min(limit));
    text.push_str(stdout);
    if !stderr.is_empty() {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(stderr);
    }
    let cut = text.len() > limit;
    if cut {
        text.truncate(floor_char_boundary(&text, limit));
    }
    if cut || truncated {
        text.push_str(TRUNCATION_MARKER);
    }
    (text, cut || truncated)
}

/// All outputs as one text: a header line per action (`=== NAME (ENDED,
/// DURATIONms) ===`) and its output, at most [`JOINED_LIMIT`] bytes plus
/// the marker. Empty when nothing was collected.
pub fn join(collected: &[Collected]) -> String {
    let mut text = String::new();
    for item in collected {
        if !text.is_empty() {
            text.push('\n');
        }
        let _ = writeln!(text, "=== {} ({}, {} ms) ===", item.action, item.ended, item.duration_ms);
        text.push_str(&item.output);
    }
    if text.len() > JOINED_LIMIT {
        text.truncate(floor_char_boundary(&text, JOINED_LIMIT));
        text.push_str(TRUNCATION_MARKER);
    }
    text
}

/// The largest index at most `limit` that is a character boundary.
fn floor_char_boundary(text: &str, limit: usize) -> usize {
    (0..=limit.min(text.len())).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn item(action: &str, output: &str) -> Collected {
        Collected {
            action: action.to_owned(),
            output: output.to_owned(),
            truncated: false,
            exit_code: Some(0),
            ended: "exit status 0".to_owned(),
            at: 1000,
            duration_ms: 12,
        }
    }

    #[test]
    fn stdout_then_stderr_trailing_space_trimmed() {
        assert_eq!(combine_output("a\nb\n", "", 100, false), ("a\nb".to_owned(), false));
        assert_eq!(combine_output("out\n", "err\n", 100, false), ("out\nerr".to_owned(), false));
        assert_eq!(combine_output("", "err", 100, false), ("err".to_owned(), false));
        assert_eq!(combine_output("", "", 100, false), (String::new(), false));
    }

    #[test]
    fn output_over_the_limit_is_cut_on_a_character_and_marked() {
        let (text, cut) = combine_output("ééééé", "", 5, false);
        assert!(cut);
        assert_eq!(text, format!("éé{TRUNCATION_MARKER}"));
        let (text, cut) = combine_output("short", "", 100, true);
        assert!(cut, "what the runner dropped counts as cut");
        assert_eq!(text, format!("short{TRUNCATION_MARKER}"));
    }

    #[test]
    fn joined_text_has_a_header_per_action() {
        let text = join(&[item("ps", "PID CMD\n1 init"), item("df", "/ 50%")]);
        assert_eq!(
            text,
            "=== ps (exit status 0, 12 ms) ===\nPID CMD\n1 init\n\
             === df (exit status 0, 12 ms) ===\n/ 50%"
        );
        assert_eq!(join(&[]), "");
    }

    #[test]
    fn joined_text_is_capped_for_the_environment() {
        let big = "x".repeat(JOINED_LIMIT);
        let text = join(&[item("a", &big), item("b", &big)]);
        assert_eq!(text.len(), JOINED_LIMIT + TRUNCATION_MARKER.len());
        assert!(text.ends_with(TRUNCATION_MARKER));
    }
}
