//! The records the daemon pushes, as JSON: one per check result, one per
//! state change, and heartbeats. The layout is `docs/push-protocol.md`'s.
//!
//! A record is serialized once, without its sequence number (which the
//! spool assigns); the batch writer puts `seq` in front when it sends it.

use std::time::SystemTime;

use monchero_core::State;
use monchero_core::perfdata::PerfData;
use monchero_core::spool::SpoolStats;
use monchero_core::tracker::{CheckState, StateType};
use serde::Serialize;

use crate::state_file::ChangeRecord;

/// A check result with the check's state after it.
#[derive(Debug, Serialize)]
struct ResultRecord<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(serialize_with = "millis")]
    at: SystemTime,
    check: &'a str,
    state: State,
    state_type: StateType,
    attempt: u32,
    max_attempts: u32,
    summary: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    long_output: &'a str,
    perfdata: &'a [PerfData],
    duration_ms: f64,
    exit_code: Option<i32>,
    timed_out: bool,
}

/// A soft or hard state change.
#[derive(Debug, Serialize)]
struct ChangeRecordOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(serialize_with = "millis")]
    at: SystemTime,
    check: &'a str,
    from: State,
    to: State,
    state_type: StateType,
    attempt: u32,
    max_attempts: u32,
    summary: &'a str,
}

/// "Still here, nothing to say", with what the agent lost on its side.
#[derive(Debug, Serialize)]
struct Heartbeat {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(serialize_with = "millis")]
    at: SystemTime,
    #[serde(serialize_with = "millis")]
    started_at: SystemTime,
    evicted: u64,
    damaged: u64,
    write_failed: u64,
}

/// The payload of a result record for `check`, whose state has just
/// observed a result at `at`; `None` when it has no result (never after
/// `observe`).
pub fn result(
    check: &str,
    state: &CheckState,
    max_attempts: u32,
    at: SystemTime,
) -> Option<Vec<u8>> {
    let result = state.last_result.as_ref()?;
    let record = ResultRecord {
        kind: "result",
        at,
        check,
        state: state.state,
        state_type: state.state_type,
        attempt: state.attempt,
        max_attempts,
        summary: &result.summary,
        long_output: &result.long_output,
        perfdata: &result.perfdata,
        duration_ms: result.duration.as_secs_f64() * 1000.0,
        exit_code: result.exit_code,
        timed_out: result.timed_out,
    };
    serde_json::to_vec(&record).ok()
}

/// The payload of a change record.
pub fn change(change: &ChangeRecord) -> Option<Vec<u8>> {
    let record = ChangeRecordOut {
        kind: "change",
        at: change.at,
        check: &change.check,
        from: change.from,
        to: change.to,
        state_type: change.state_type,
        attempt: change.attempt,
        max_attempts: change.max_attempts,
        summary: &change.summary,
    };
    serde_json::to_vec(&record).ok()
}

/// The payload of a heartbeat.
pub fn heartbeat(
    at: SystemTime,
    started_at: SystemTime,
    spool: &SpoolStats,
    write_failed: u64,
) -> Vec<u8> {
    let record = Heartbeat {
        kind: "heartbeat",
        at,
        started_at,
        evicted: spool.evicted,
        damaged: spool.damaged,
        write_failed,
    };
    serde_json::to_vec(&record).unwrap_or_default()
}

/// Times to the millisecond: results of one check can be less than a
/// second apart, and the receiver orders and charts them.
fn millis<S: serde::Serializer>(time: &SystemTime, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&humantime::format_rfc3339_millis(*time))
}
