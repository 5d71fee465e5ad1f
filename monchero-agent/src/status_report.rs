//! The `status --json` document: built from a [`Snapshot`], whether the
//! snapshot is the daemon's live one (over the control socket) or the state
//! file of a daemon that is not running (then `stale` is true). One builder
//! for both, so the two can never disagree on shape.

use std::time::{Duration, SystemTime};

use monchero_core::State;
use monchero_core::collected::Collected;
use monchero_core::perfdata::PerfData;
use monchero_core::tracker::StateType;
use serde::{Deserialize, Serialize};

use crate::actions::ActionRecord;
use crate::push::TargetHealth;
use crate::state_file::{ChangeRecord, Snapshot, brief};

/// The most of a check's summary the full listing carries. A plugin may
/// print a 64 KiB first line; a hundred of them made every `status --json`
/// of a 2000-check agent 7 MiB, which the daemon built and sent each time
/// and a person could not read. Naming the check shows it whole.
pub const STATUS_SUMMARY_LIMIT: usize = 1024;

/// The contract's `status --json` object, plus agent details.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusReport {
    pub host: String,
    /// The worst current state of all checks.
    pub state: State,
    /// True when read from the state file because no daemon answered.
    pub stale: bool,
    /// When this data was current (RFC 3339).
    pub updated_at: String,
    pub agent: AgentInfo,
    /// Notifications (webhook, email) waiting to be delivered or retried.
    #[serde(default)]
    pub deliveries_pending: usize,
    pub checks: Vec<CheckStatus>,
    /// State changes in the requested window, oldest first; only present
    /// when asked for (`status --changes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<Vec<ChangeRecord>>,
    /// Each push target's health; only from a running daemon, and only
    /// when `[[push]]` targets are configured.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub push: Vec<TargetHealth>,
}

/// The daemon that produced the data.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentInfo {
    pub pid: u32,
    pub started_at: String,
}

/// One check's row.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckStatus {
    pub name: String,
    pub state: State,
    pub state_type: StateType,
    pub attempt: u32,
    pub max_attempts: u32,
    /// When the current state began (RFC 3339).
    pub since: String,
    pub last_check: Option<String>,
    pub summary: String,
    pub perfdata: Vec<PerfData>,
    pub flapping: bool,
    /// The last action run for this check, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_action: Option<ActionRecord>,
    /// What collect actions gathered in the current problem; absent once
    /// the check has recovered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub collected: Vec<CollectedStatus>,
}

/// One collect action's output as `status` shows it: whole in the events,
/// the first [`STATUS_OUTPUT_LIMIT`] bytes here, so that a status reply
/// for many failing checks stays small.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CollectedStatus {
    pub action: String,
    /// When it ran (RFC 3339).
    pub at: String,
    pub ended: String,
    pub exit_code: Option<i32>,
    pub duration_ms: u64,
    /// The output was cut at the action's `max_output`.
    pub truncated: bool,
    /// The output's first [`STATUS_OUTPUT_LIMIT`] bytes.
    pub output: String,
}

/// The most of each collected output a status reply carries.
pub const STATUS_OUTPUT_LIMIT: usize = 4096;

impl CollectedStatus {
    fn of(collected: &Collected) -> CollectedStatus {
        CollectedStatus {
            action: collected.action.clone(),
            at: rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs(collected.at)),
            ended: collected.ended.clone(),
            exit_code: collected.exit_code,
            duration_ms: collected.duration_ms,
            truncated: collected.truncated,
            output: brief(&collected.output, STATUS_OUTPUT_LIMIT),
        }
    }
}

/// The last second RFC 3339's four-digit year can write: 9999-12-31T23:59:59Z.
const LAST_WRITABLE_SECOND: Duration = Duration::from_secs(253_402_300_799);

/// RFC 3339 in UTC with second precision, as the contract shows times.
///
/// Times outside 1970..=9999 are written as the nearest end: humantime
/// panics on them, and a damaged state file or a clock set far off can
/// hold one (found by the `state_file` fuzz target).
pub fn rfc3339(time: SystemTime) -> String {
    let time = time.clamp(SystemTime::UNIX_EPOCH, SystemTime::UNIX_EPOCH + LAST_WRITABLE_SECOND);
    humantime::format_rfc3339_seconds(time).to_string()
}

/// `SystemTime` as an RFC 3339 string in JSON (`#[serde(with = ...)]`),
/// so records keep one shape in the state file and in `status --json`.
pub mod rfc3339_serde {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(time: &SystemTime, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::rfc3339(*time))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SystemTime, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_rfc3339(&text).map_err(serde::de::Error::custom)
    }
}

impl StatusReport {
    /// The report for `snapshot`. `changes_within` selects the history
    /// window to include, measured back from `now`. With no `names` it
    /// lists every check, summaries cut to [`STATUS_SUMMARY_LIMIT`]; with
    /// names, only those checks (names that match none are left out), each
    /// summary whole, and `state` is theirs.
    pub fn build(
        snapshot: &Snapshot,
        stale: bool,
        now: SystemTime,
        changes_within: Option<Duration>,
        names: &[String],
    ) -> StatusReport {
        let summary_limit = if names.is_empty() { STATUS_SUMMARY_LIMIT } else { usize::MAX };
        let mut checks: Vec<CheckStatus> = snapshot
            .checks
            .iter()
            .filter(|(name, _)| names.is_empty() || names.contains(name))
            .map(|(name, saved)| {
                let state = &saved.state;
                let result = state.last_result.as_ref();
                CheckStatus {
                    name: name.clone(),
                    state: state.state,
                    state_type: state.state_type,
                    attempt: state.attempt,
                    max_attempts: saved.max_attempts,
                    since: rfc3339(state.since),
                    last_check: state.last_check.map(rfc3339),
                    summary: result.map_or_else(
                        || "(not checked yet)".to_owned(),
                        |r| brief(&r.summary, summary_limit),
                    ),
                    perfdata: result.map(|r| r.perfdata.clone()).unwrap_or_default(),
                    flapping: state.flapping,
                    last_action: saved.last_action.clone(),
                    collected: saved.collection.outputs.iter().map(CollectedStatus::of).collect(),
                }
            })
            .collect();
        // Worst first, then by name: what needs attention is on top.
        checks.sort_by(|a, b| b.state.cmp(&a.state).then_with(|| a.name.cmp(&b.name)));
        let state = checks.iter().map(|check| check.state).fold(State::Ok, State::worst);
        let changes = changes_within.map(|window| {
            let from = now.checked_sub(window).unwrap_or(SystemTime::UNIX_EPOCH);
            snapshot.changes.iter().filter(|change| change.at >= from).cloned().collect()
        });
        StatusReport {
            host: snapshot.host.clone(),
            state,
            stale,
            updated_at: rfc3339(if stale { snapshot.saved_at } else { now }),
            agent: AgentInfo { pid: snapshot.pid, started_at: rfc3339(snapshot.agent_started) },
            deliveries_pending: snapshot.deliveries_pending,
            checks,
            changes,
            push: Vec::new(),
        }
    }

    /// Whether every check is in a hard OK state (`status --wait-ok`).
    pub fn all_hard_ok(&self) -> bool {
        self.checks
            .iter()
            .all(|check| check.state == State::Ok && check.state_type == StateType::Hard)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use monchero_core::tracker::{CheckState, TrackerConfig};

    use super::*;
    use crate::state_file::SavedCheck;

    fn snapshot(states: &[(&str, State)]) -> Snapshot {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut snapshot = Snapshot::new("web1".into(), now);
        let config = TrackerConfig { attempts: 1, ..TrackerConfig::default() };
        for (name, state) in states {
            let mut check = CheckState::new(now);
            check.observe_state(&config, *state, now);
            snapshot.checks.insert(
                (*name).into(),
                SavedCheck {
                    max_attempts: 1,
                    state: check,
                    last_action: None,
                    planned: Default::default(),
                    collection: Default::default(),
                },
            );
        }
        snapshot
    }

    #[test]
    fn rows_are_sorted_worst_first_and_the_aggregate_is_the_worst() {
        let snapshot = snapshot(&[
            ("b-ok", State::Ok),
            ("a-unknown", State::Unknown),
            ("z-warning", State::Warning),
            ("c-critical", State::Critical),
            ("a-critical", State::Critical),
        ]);
        let report = StatusReport::build(&snapshot, false, snapshot.saved_at, None, &[]);
        let names: Vec<&str> = report.checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["a-critical", "c-critical", "z-warning", "a-unknown", "b-ok"]);
        assert_eq!(report.state, State::Critical);
        assert!(!report.all_hard_ok());
    }

    #[test]
    fn the_json_has_the_contract_fields() {
        let snapshot = snapshot(&[("disk", State::Warning)]);
        let report = StatusReport::build(&snapshot, true, SystemTime::now(), None, &[]);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["host"], "web1");
        assert_eq!(json["state"], "warning");
        assert_eq!(json["stale"], true);
        assert_eq!(json["updated_at"], "2027-01-15T08:00:00Z");
        let check = &json["checks"][0];
        assert_eq!(check["name"], "disk");
        assert_eq!(check["state"], "warning");
        assert_eq!(check["state_type"], "hard");
        assert_eq!(check["attempt"], 1);
        assert_eq!(check["max_attempts"], 1);
        assert_eq!(check["since"], "2027-01-15T08:00:00Z");
        assert_eq!(check["last_check"], "2027-01-15T08:00:00Z");
        assert!(check["perfdata"].is_array());
        assert!(json.get("changes").is_none());
    }

    #[test]
    fn changes_in_the_window_show_with_rfc3339_times_and_survive_the_file() {
        let mut snapshot = snapshot(&[("disk", State::Warning)]);
        let at = |secs| SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        for (secs, to) in
            [(1_800_000_000 - 7200, State::Critical), (1_800_000_000 - 60, State::Warning)]
        {
            snapshot.record_change(ChangeRecord {
                at: at(secs),
                check: "disk".into(),
                from: State::Ok,
                to,
                state_type: StateType::Hard,
                attempt: 3,
                max_attempts: 3,
                summary: "DISK WARNING".into(),
            });
        }
        let report = StatusReport::build(
            &snapshot,
            false,
            at(1_800_000_000),
            Some(Duration::from_secs(1800)),
            &[],
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["changes"].as_array().unwrap().len(), 1, "only the last 30 minutes");
        assert_eq!(json["changes"][0]["at"], "2027-01-15T07:59:00Z");
        assert_eq!(json["changes"][0]["to"], "warning");
        let stored: crate::state_file::Snapshot =
            serde_json::from_slice(&serde_json::to_vec(&snapshot).unwrap()).unwrap();
        assert_eq!(stored.changes, snapshot.changes);
    }

    fn with_summary(snapshot: &mut Snapshot, name: &str, summary: &str) {
        let result = monchero_core::CheckResult::from_run(monchero_core::result::RawRun {
            termination: &monchero_core::result::Termination::Exited(1),
            stdout: summary,
            stderr: "",
            duration: Duration::ZERO,
            truncated: false,
            timeout_state: State::Unknown,
        });
        snapshot.checks.get_mut(name).unwrap().state.last_result = Some(result);
    }

    #[test]
    fn the_listing_cuts_long_summaries_and_a_named_check_shows_its_whole() {
        let mut snapshot = snapshot(&[("noisy", State::Warning), ("disk", State::Ok)]);
        let noise = "x".repeat(64 * 1024);
        with_summary(&mut snapshot, "noisy", &noise);
        let all = StatusReport::build(&snapshot, false, snapshot.saved_at, None, &[]);
        let listed = &all.checks[0];
        assert_eq!(listed.name, "noisy");
        assert!(listed.summary.len() <= STATUS_SUMMARY_LIMIT, "{}", listed.summary.len());
        assert!(listed.summary.ends_with('…'));
        let named =
            StatusReport::build(&snapshot, false, snapshot.saved_at, None, &["noisy".into()]);
        assert_eq!(named.checks.len(), 1);
        assert_eq!(named.checks[0].summary, noise);
        assert_eq!(named.state, State::Warning);
        let ok = StatusReport::build(&snapshot, false, snapshot.saved_at, None, &["disk".into()]);
        assert_eq!(ok.checks.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["disk"]);
        assert_eq!(ok.state, State::Ok, "the state of the named checks only");
    }

    // Found by the `state_file` fuzz target: a state file whose times lie
    // past the year 9999 made `status` (and the daemon's status reply)
    // panic while formatting them.
    #[test]
    fn times_past_year_9999_or_before_1970_are_written_as_the_nearest_end() {
        let far = SystemTime::UNIX_EPOCH + Duration::from_secs(300_000_000_000);
        assert_eq!(rfc3339(far), "9999-12-31T23:59:59Z");
        let before = SystemTime::UNIX_EPOCH - Duration::from_secs(1);
        assert_eq!(rfc3339(before), "1970-01-01T00:00:00Z");
        let mut snapshot = snapshot(&[("disk", State::Ok)]);
        snapshot.checks.get_mut("disk").unwrap().state.since = far;
        let report = StatusReport::build(&snapshot, true, far, None, &[]);
        assert_eq!(report.checks[0].since, "9999-12-31T23:59:59Z");
    }

    #[test]
    fn collected_output_shows_with_its_time_and_cut_short() {
        let mut snapshot = snapshot(&[("disk", State::Critical)]);
        let saved = snapshot.checks.get_mut("disk").unwrap();
        saved.collection.outputs.push(Collected {
            action: "ps".into(),
            output: "x".repeat(10_000),
            truncated: false,
            exit_code: Some(0),
            ended: "exit status 0".into(),
            at: 1_800_000_000,
            duration_ms: 4,
        });
        let report = StatusReport::build(&snapshot, false, snapshot.saved_at, None, &[]);
        let json = serde_json::to_value(&report).unwrap();
        let shown = &json["checks"][0]["collected"][0];
        assert_eq!(shown["action"], "ps");
        assert_eq!(shown["at"], "2027-01-15T08:00:00Z");
        assert_eq!(shown["ended"], "exit status 0");
        let output = shown["output"].as_str().unwrap();
        assert!(output.len() <= STATUS_OUTPUT_LIMIT && output.ends_with('…'), "{}", output.len());
    }

    #[test]
    fn an_empty_agent_is_ok() {
        let report = StatusReport::build(
            &snapshot(&[]),
            false,
            SystemTime::now(),
            Some(Duration::from_secs(60)),
            &[],
        );
        assert_eq!(report.state, State::Ok);
        assert!(report.all_hard_ok());
        assert_eq!(report.changes.unwrap().len(), 0);
    }
}
