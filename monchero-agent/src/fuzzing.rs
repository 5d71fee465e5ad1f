//! Entry points for the fuzz targets in `monchero-agent/fuzz/`: the two
//! loaders that read files a person or a crash may have broken, driven the
//! way the agent drives them. Not an API: hidden from the docs, and the
//! only reason the agent is a library at all.
//!
//! Each function panics only when the agent would have misbehaved on the
//! input (a panic, or an error that points outside the text), which is
//! what the fuzzer reports.

use std::path::Path;
use std::time::{Duration, SystemTime};

use monchero_core::State;
use monchero_core::tracker::TrackerConfig;

use crate::config;
use crate::state_file;
use crate::status_report::StatusReport;

/// Loads `text` as the config file `file` (`config check`, start and
/// reload all go through this), and checks that every error it reports
/// for `file` points at a place inside `text`.
///
/// Includes and secret files are resolved from `file`'s directory: give it
/// an empty one so runs do not depend on what lies around.
pub fn config(text: &str, file: &Path) {
    let Err(errors) = config::parse(text, file) else {
        return;
    };
    assert!(!errors.0.is_empty(), "a failed load must say why");
    let name = file.display().to_string();
    let lines = text.split('\n').count();
    for error in errors.0.iter().filter(|error| error.file == name) {
        assert!(error.line >= 1 && error.line <= lines, "{error} is past the end of the text");
        let line_chars =
            text.split('\n').nth(error.line - 1).map_or(0, |line| line.chars().count());
        assert!(error.column >= 1 && error.column <= line_chars + 1, "{error} is past its line");
        assert!(!error.message.is_empty());
    }
    let _ = errors.to_string();
}

/// Decodes `bytes` as the state file, then does with a snapshot what the
/// agent does: `status` renders it as JSON, and the daemon feeds each
/// restored check a new result.
pub fn state_file(bytes: &[u8]) {
    let Ok(mut snapshot) = state_file::decode(bytes) else {
        return;
    };
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let report = StatusReport::build(&snapshot, true, now, Some(Duration::from_secs(86_400)), &[]);
    let _ = serde_json::to_string(&report);
    let tracker = TrackerConfig::default();
    for saved in snapshot.checks.values_mut() {
        let _ = saved.state.observe_state(&tracker, State::Critical, now);
        let _ = saved.state.observe_state(&tracker, State::Ok, now);
    }
}
