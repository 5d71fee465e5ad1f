//! What actions receive: an [`Event`] for each hard state change and each
//! start or end of flapping, and the [`Trigger`]s actions subscribe to.
//!
//! Pure: building an event from a tracker [`Outcome`] and rendering it as
//! environment variables or JSON do no I/O. Running actions is
//! [`crate::runner`]'s job, deciding *when* is the agent's.
//!
//! Environment variables follow Nagios's macro conventions (upper-case
//! state names, `$SERVICESTATE$` → `MONCHERO_STATE`) so scripts written for
//! Nagios event handlers port with a rename; the JSON uses the lower-case
//! names of the rest of Monchero's JSON.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::collected::{self, Collected};
use crate::perfdata::PerfData;
use crate::state::State;
use crate::tracker::{ChangeKind, CheckState, FlapEvent, Outcome, StateType};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum EventKind {
    /// Hard OK to a hard problem.
    Problem,
    /// A hard problem back to hard OK.
    Recovery,
    /// One hard problem to another.
    Change,
    /// The check started flapping.
    FlappingStart,
    /// The check stopped flapping.
    FlappingStop,
}

impl EventKind {
    /// The name in `MONCHERO_EVENT` and the JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Problem => "problem",
            EventKind::Recovery => "recovery",
            EventKind::Change => "change",
            EventKind::FlappingStart => "flapping_start",
            EventKind::FlappingStop => "flapping_stop",
        }
    }
}

/// One event, with everything an action or notification needs.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// The check's name.
    pub check: String,
    /// The agent's host name.
    pub host: String,
    /// The state now.
    pub state: State,
    /// The hard state before the change (for flapping events, the hard
    /// state, which did not change).
    pub previous_state: State,
    /// Soft or hard; always hard for state changes.
    pub state_type: StateType,
    /// The attempt that made the change hard.
    pub attempt: u32,
    /// The check's `attempts`.
    pub max_attempts: u32,
    /// The result's first line.
    pub summary: String,
    /// The result's further lines.
    pub long_output: String,
    /// The result's performance data.
    pub perfdata: Vec<PerfData>,
    /// Percent state change, for flapping events.
    pub percent_state_change: f64,
    /// When it happened, in seconds since the Unix epoch.
    pub timestamp: u64,
    /// Events of the same check and action that a rate limit kept back
    /// since the action last went out (this one carries the count).
    #[cfg_attr(feature = "serde", serde(default))]
    pub suppressed: u64,
    /// What the check's `collect` actions gathered for this problem; empty
    /// for recoveries and flapping events.
    #[cfg_attr(feature = "serde", serde(default))]
    pub collected: Vec<Collected>,
}

impl Event {
    /// The events of one observation: a hard change and/or a flapping start
    /// or stop (at most two), built from the check's state after it.
    pub fn from_outcome(
        check: &str,
        host: &str,
        state: &CheckState,
        outcome: &Outcome,
        max_attempts: u32,
        now: SystemTime,
    ) -> impl Iterator<Item = Event> {
        let base = |kind, previous_state, attempt, percent| {
            let result = state.last_result.as_ref();
            Event {
                kind,
                check: check.to_owned(),
                host: host.to_owned(),
                state: state.state,
                previous_state,
                state_type: state.state_type,
                attempt,
                max_attempts,
                summary: result.map(|r| r.summary.clone()).unwrap_or_default(),
                long_output: result.map(|r| r.long_output.clone()).unwrap_or_default(),
                perfdata: result.map(|r| r.perfdata.clone()).unwrap_or_default(),
                percent_state_change: percent,
                timestamp: now.duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs()),
                suppressed: 0,
                collected: Vec::new(),
            }
        };
        let change = outcome.hard_change.map(|change| {
            let kind = match change.kind {
                ChangeKind::Problem => EventKind::Problem,
                ChangeKind::Recovery => EventKind::Recovery,
                ChangeKind::Change => EventKind::Change,
            };
            base(kind, change.previous, change.attempt, state.percent_state_change)
        });
        let flapping = outcome.flapping.map(|flap| {
            let (kind, percent) = match flap {
                FlapEvent::Started { percent } => (EventKind::FlappingStart, percent),
                FlapEvent::Stopped { percent } => (EventKind::FlappingStop, percent),
            };
            base(kind, state.hard_state, state.attempt, percent)
        });
        change.into_iter().chain(flapping)
    }

    /// The event as the environment of an action, Nagios-style.
    pub fn env(&self) -> Vec<(String, String)> {
        let state_type = match self.state_type {
            StateType::Soft => "SOFT",
            StateType::Hard => "HARD",
        };
        [
            ("MONCHERO_EVENT", self.kind.as_str().to_owned()),
            ("MONCHERO_CHECK", self.check.clone()),
            ("MONCHERO_HOSTNAME", self.host.clone()),
            ("MONCHERO_STATE", self.state.label().to_owned()),
            ("MONCHERO_PREVIOUS_STATE", self.previous_state.label().to_owned()),
            ("MONCHERO_STATE_TYPE", state_type.to_owned()),
            ("MONCHERO_ATTEMPT", self.attempt.to_string()),
            ("MONCHERO_MAX_ATTEMPTS", self.max_attempts.to_string()),
            ("MONCHERO_SUMMARY", self.summary.clone()),
            ("MONCHERO_LONG_OUTPUT", self.long_output.clone()),
            ("MONCHERO_TIMESTAMP", self.timestamp.to_string()),
            ("MONCHERO_SUPPRESSED", self.suppressed.to_string()),
            ("MONCHERO_COLLECTED", collected::join(&self.collected)),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
    }
}

/// A kind of event an action subscribes to (its `on` list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum Trigger {
    /// A hard change to WARNING.
    Warning,
    /// A hard change to CRITICAL.
    Critical,
    /// A hard change to UNKNOWN.
    Unknown,
    /// A hard problem back to OK.
    Recovery,
    /// Flapping started or stopped.
    Flapping,
}

impl Trigger {
    /// Every trigger, in the order the docs list them.
    pub const ALL: [Trigger; 5] = [
        Trigger::Warning,
        Trigger::Critical,
        Trigger::Unknown,
        Trigger::Recovery,
        Trigger::Flapping,
    ];

    /// The name used in the config's `on` lists.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Warning => "warning",
            Trigger::Critical => "critical",
            Trigger::Unknown => "unknown",
            Trigger::Recovery => "recovery",
            Trigger::Flapping => "flapping",
        }
    }

    /// The trigger with this config name.
    pub fn from_name(name: &str) -> Option<Trigger> {
        Trigger::ALL.into_iter().find(|trigger| trigger.as_str() == name)
    }

    /// The trigger an event answers to.
    pub fn of(event: &Event) -> Trigger {
        match event.kind {
            EventKind::Recovery => Trigger::Recovery,
            EventKind::FlappingStart | EventKind::FlappingStop => Trigger::Flapping,
            EventKind::Problem | EventKind::Change => match event.state {
                State::Warning => Trigger::Warning,
                State::Critical => Trigger::Critical,
                State::Unknown => Trigger::Unknown,
                // A change is always to a problem state; OK is a recovery.
                State::Ok => Trigger::Recovery,
            },
        }
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::tracker::TrackerConfig;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn events(state: &CheckState, outcome: &Outcome) -> Vec<Event> {
        Event::from_outcome("web", "host1", state, outcome, 3, at(1000)).collect()
    }

    #[test]
    fn a_hard_problem_is_one_event_with_the_nagios_environment() {
        let config = TrackerConfig { attempts: 2, ..TrackerConfig::default() };
        let mut state = CheckState::new(at(0));
        let soft = state.observe_state(&config, State::Critical, at(10));
        assert!(events(&state, &soft).is_empty(), "soft states make no events");
        let hard = state.observe_state(&config, State::Critical, at(20));
        let events = events(&state, &hard);
        assert_eq!(events.len(), 1);
        let event = &events[0];
        assert_eq!(event.kind, EventKind::Problem);
        assert_eq!(Trigger::of(event), Trigger::Critical);
        let env = event.env();
        let get =
            |name: &str| env.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str()).unwrap();
        assert_eq!(get("MONCHERO_EVENT"), "problem");
        assert_eq!(get("MONCHERO_CHECK"), "web");
        assert_eq!(get("MONCHERO_HOSTNAME"), "host1");
        assert_eq!(get("MONCHERO_STATE"), "CRITICAL");
        assert_eq!(get("MONCHERO_PREVIOUS_STATE"), "OK");
        assert_eq!(get("MONCHERO_STATE_TYPE"), "HARD");
        assert_eq!(get("MONCHERO_ATTEMPT"), "2");
        assert_eq!(get("MONCHERO_TIMESTAMP"), "1000");
        assert_eq!(get("MONCHERO_COLLECTED"), "");
    }

    #[test]
    fn collected_output_goes_into_the_environment_and_the_json() {
        let config = TrackerConfig { attempts: 1, ..TrackerConfig::default() };
        let mut state = CheckState::new(at(0));
        let hard = state.observe_state(&config, State::Critical, at(10));
        let mut event = events(&state, &hard).remove(0);
        event.collected.push(Collected {
            action: "ps".to_owned(),
            output: "PID CMD".to_owned(),
            truncated: false,
            exit_code: Some(0),
            ended: "exit status 0".to_owned(),
            at: 10,
            duration_ms: 3,
        });
        let env = event.env();
        let collected = env.iter().find(|(n, _)| n == "MONCHERO_COLLECTED").unwrap();
        assert_eq!(collected.1, "=== ps (exit status 0, 3 ms) ===\nPID CMD");
        #[cfg(feature = "serde")]
        {
            let json = serde_json::to_value(&event).unwrap();
            assert_eq!(json["collected"][0]["action"], "ps");
            assert_eq!(json["collected"][0]["output"], "PID CMD");
            let back: Event = serde_json::from_value(json).unwrap();
            assert_eq!(back, event);
        }
    }

    #[test]
    fn recoveries_and_changes_map_to_their_triggers() {
        let config = TrackerConfig { attempts: 1, ..TrackerConfig::default() };
        let mut state = CheckState::new(at(0));
        state.observe_state(&config, State::Warning, at(1));
        let change = state.observe_state(&config, State::Unknown, at(2));
        let event = &events(&state, &change)[0];
        assert_eq!((event.kind, Trigger::of(event)), (EventKind::Change, Trigger::Unknown));
        assert_eq!(event.previous_state, State::Warning);
        let recovery = state.observe_state(&config, State::Ok, at(3));
        let event = &events(&state, &recovery)[0];
        assert_eq!((event.kind, Trigger::of(event)), (EventKind::Recovery, Trigger::Recovery));
    }

    #[test]
    fn flapping_comes_as_its_own_event() {
        let config = TrackerConfig { attempts: 1, ..TrackerConfig::default() };
        let mut state = CheckState::new(at(0));
        let mut seen = Vec::new();
        for i in 0..30 {
            let result = if i % 2 == 0 { State::Critical } else { State::Ok };
            let outcome = state.observe_state(&config, result, at(i));
            seen.extend(events(&state, &outcome).into_iter().map(|e| e.kind));
        }
        assert!(seen.contains(&EventKind::FlappingStart), "{seen:?}");
        let event = seen.iter().position(|k| *k == EventKind::FlappingStart).unwrap();
        assert!(event > 0);
    }

    #[test]
    fn trigger_names_round_trip() {
        for trigger in Trigger::ALL {
            assert_eq!(Trigger::from_name(trigger.as_str()), Some(trigger));
            assert_eq!(trigger.to_string(), trigger.as_str());
        }
        assert_eq!(Trigger::from_name("problem"), None);
    }
}
