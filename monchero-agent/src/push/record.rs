//! The records the daemon pushes, as JSON: one per check result, one per
//! state change, and heartbeats. The layout is `docs/push-protocol.md`'s.
//!
//! A record is serialized once, without its sequence number (which the
//! spool assigns); the batch writer puts `seq` in front when it sends it.
//! The sinks that speak another protocol read it back with [`parse`].

use std::time::SystemTime;

use monchero_core::State;
use monchero_core::perfdata::PerfData;
use monchero_core::spool::SpoolStats;
use monchero_core::tracker::{CheckState, StateType};
use serde::{Deserialize, Serialize};

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

/// A spooled record as the Icinga 2 and remote-write sinks read it back.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Spooled {
    /// A check result.
    Result(SpooledResult),
    /// A state change: those sinks' servers derive changes themselves.
    Change,
    /// The agent is alive.
    Heartbeat {
        #[serde(deserialize_with = "from_rfc3339")]
        at: SystemTime,
    },
}

/// The fields of a result record the other sinks use.
#[derive(Debug, Deserialize)]
pub struct SpooledResult {
    #[serde(deserialize_with = "from_rfc3339")]
    pub at: SystemTime,
    pub check: String,
    pub state: State,
    pub state_type: StateType,
    pub summary: String,
    #[serde(default)]
    pub long_output: String,
    #[serde(default)]
    pub perfdata: Vec<PerfData>,
    pub duration_ms: f64,
}

/// Reads a spooled payload back; `None` for one the agent did not write
/// (a damaged record passes the CRC only by accident) or of a newer layout.
pub fn parse(payload: &[u8]) -> Option<Spooled> {
    serde_json::from_slice(payload).ok()
}

fn from_rfc3339<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<SystemTime, D::Error> {
    let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
    humantime::parse_rfc3339(&text).map_err(serde::de::Error::custom)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn records_read_back_as_written() {
        let at = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let beat = heartbeat(at, UNIX_EPOCH, &SpoolStats::default(), 0);
        assert!(matches!(parse(&beat), Some(Spooled::Heartbeat { at: read }) if read == at));
        let text = r#"{"type":"result","at":"2023-11-14T22:13:20.123Z","check":"disk","state":"warning","state_type":"soft","attempt":1,"max_attempts":3,"summary":"DISK WARNING","perfdata":[{"label":"/","value":5.0,"uom":"MB","warn":"4","crit":null,"min":0.0,"max":null}],"duration_ms":12.5,"exit_code":1,"timed_out":false}"#;
        let Some(Spooled::Result(result)) = parse(text.as_bytes()) else { panic!() };
        assert_eq!((result.at, result.check.as_str()), (at, "disk"));
        assert_eq!((result.state, result.state_type), (State::Warning, StateType::Soft));
        assert_eq!(result.perfdata[0].to_string(), "/=5MB;4;;0");
        assert!(matches!(parse(br#"{"type":"change","at":"x"}"#), Some(Spooled::Change)));
        assert!(parse(b"{\"type\":\"other\"}").is_none());
    }
}
