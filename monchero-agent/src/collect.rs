//! `collect` actions in a check's problem: which are due at a result, what
//! they gathered (kept with the check's state until it recovers), and the
//! events that wait for the ones still running.
//!
//! A problem episode runs from the first non-OK result after OK to the
//! recovery; a change between two hard problem states starts a new
//! segment of it. Each collect runs once per segment, at the first result
//! whose state it subscribes to (`when = "soft"`) or once that state is
//! hard (`when = "hard"`), never on every soft retry. A problem or change
//! event that arrives while the check's collects run is held, and goes out
//! with their output once they have all finished; their timeouts bound
//! the wait. Events of other checks never wait.
//!
//! No I/O here: the daemon starts the runs on the action pool and reports
//! their ends back.

use std::time::SystemTime;

use monchero_core::collected::Collected;
use monchero_core::event::{Event, EventKind, Trigger};
use monchero_core::tracker::{ChangeKind, CheckState, Outcome, StateType};
use serde::{Deserialize, Serialize};

use crate::config::{CollectConfig, CollectWhen};

/// The most events of one check held for its collects. A check changing
/// state faster than its collects finish would otherwise pile up events,
/// each with a copy of the output, in memory and in the state file; past
/// this many they all go out at once, in order, without waiting longer.
pub const HELD_LIMIT: usize = 32;

/// One check's collection in its current problem.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Collection {
    /// Counts problem segments; a run started in an earlier one is stale
    /// when it ends and its output is not kept.
    #[serde(default)]
    pub generation: u64,
    /// What finished in this segment, one per action, in the order they
    /// finished.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<Collected>,
    /// Events waiting for the running collects, oldest first. Saved, so an
    /// agent stopped meanwhile sends them when it starts again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held: Vec<Held>,
    /// Runs in progress, by action and generation. Not saved: a restart
    /// ends them.
    #[serde(skip)]
    running: Vec<(String, u64)>,
}

/// An event waiting for collects, with what dispatching it needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Held {
    pub event: Event,
    /// The segment it belongs to: collects of this one add their output.
    pub generation: u64,
    /// Whether the check flapped when the event happened.
    pub flapping: bool,
    /// When the check's hard state began, then.
    pub hard_since: SystemTime,
    /// When it happened.
    pub at: SystemTime,
}

/// A collect action as [`Collection::observe`] sees it.
#[derive(Debug, Clone, Copy)]
pub struct CollectAction<'a> {
    pub name: &'a str,
    pub config: &'a CollectConfig,
    pub on: &'a [Trigger],
}

impl Collection {
    /// Nothing collected, running or held: not written to the state file.
    pub fn is_empty(&self) -> bool {
        self.outputs.is_empty() && self.held.is_empty() && self.running.is_empty()
    }

    /// Whether any collect runs.
    pub fn is_running(&self) -> bool {
        !self.running.is_empty()
    }

    /// Takes in the check's state after a result and returns the collects
    /// to start now (marked running, in this generation). A recovery
    /// clears what was collected; a hard change to another problem starts
    /// a new segment. While the check flaps nothing is collected: its
    /// problem events are held back anyway.
    pub fn observe<'a>(
        &mut self,
        state: &CheckState,
        outcome: &Outcome,
        actions: &[CollectAction<'a>],
    ) -> Vec<&'a str> {
        let in_problem = state.state.is_problem() || state.hard_state.is_problem();
        let new_segment = outcome.hard_change.is_some_and(|c| c.kind == ChangeKind::Change);
        if !in_problem || new_segment {
            if !self.outputs.is_empty() || self.is_running() {
                self.generation += 1;
            }
            self.outputs.clear();
        }
        if !state.state.is_problem() || state.flapping {
            return Vec::new();
        }
        let Some(trigger) = problem_trigger(state) else { return Vec::new() };
        let mut due = Vec::new();
        for action in actions {
            let hard_enough =
                action.config.when == CollectWhen::Soft || state.state_type == StateType::Hard;
            let done = self.outputs.iter().any(|out| out.action == action.name)
                || self
                    .running
                    .iter()
                    .any(|(name, g)| name == action.name && *g == self.generation);
            if hard_enough && !done && action.on.contains(&trigger) {
                self.running.push((action.name.to_owned(), self.generation));
                due.push(action.name);
            }
        }
        due
    }

    /// Admits an event of the check: a problem or change gets what was
    /// collected so far. It is held while collects run, and any event is
    /// held behind one already held, so they go out in order. Returns the
    /// events to dispatch now: this one when it need not wait, or all held
    /// ones when they reach [`HELD_LIMIT`].
    pub fn admit(&mut self, mut held: Held) -> Vec<Held> {
        if carries_output(held.event.kind) {
            held.event.collected.clone_from(&self.outputs);
        }
        let wait = if carries_output(held.event.kind) {
            self.is_running() || !self.held.is_empty()
        } else {
            !self.held.is_empty()
        };
        if !wait {
            return vec![held];
        }
        self.held.push(held);
        if self.held.len() >= HELD_LIMIT { std::mem::take(&mut self.held) } else { Vec::new() }
    }

    /// Books the end of a collect started in `generation`: its output
    /// (`None` when it never ran) is kept if that segment is still the
    /// current one and added to the events waiting in it. Returns the held
    /// events once nothing runs any more.
    pub fn finished(
        &mut self,
        action: &str,
        generation: u64,
        collected: Option<Collected>,
    ) -> Vec<Held> {
        if let Some(at) = self.running.iter().position(|(n, g)| n == action && *g == generation) {
            self.running.remove(at);
        }
        if let Some(collected) = collected {
            for held in &mut self.held {
                if held.generation == generation && carries_output(held.event.kind) {
                    held.event.collected.retain(|out| out.action != action);
                    held.event.collected.push(collected.clone());
                }
            }
            if generation == self.generation {
                self.outputs.retain(|out| out.action != action);
                self.outputs.push(collected);
            }
        }
        self.release_if_idle()
    }

    /// The held events, if no collect runs (after a restart, for one).
    pub fn release_if_idle(&mut self) -> Vec<Held> {
        if self.is_running() { Vec::new() } else { std::mem::take(&mut self.held) }
    }
}

/// Problems and changes carry collected output; recoveries and flapping
/// events none: the output describes a problem that is over or is not
/// what they are about.
pub fn carries_output(kind: EventKind) -> bool {
    matches!(kind, EventKind::Problem | EventKind::Change)
}

/// The trigger of the check's current problem state.
fn problem_trigger(state: &CheckState) -> Option<Trigger> {
    match state.state {
        monchero_core::State::Warning => Some(Trigger::Warning),
        monchero_core::State::Critical => Some(Trigger::Critical),
        monchero_core::State::Unknown => Some(Trigger::Unknown),
        monchero_core::State::Ok => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use monchero_core::State;
    use monchero_core::command::CommandLine;
    use monchero_core::tracker::TrackerConfig;

    use super::*;

    const PROBLEMS: [Trigger; 3] = [Trigger::Warning, Trigger::Critical, Trigger::Unknown];

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn config(when: CollectWhen) -> CollectConfig {
        CollectConfig { command: CommandLine::parse("/bin/ps").unwrap(), when, max_output: 100 }
    }

    fn output(action: &str, text: &str) -> Collected {
        Collected {
            action: action.to_owned(),
            output: text.to_owned(),
            truncated: false,
            exit_code: Some(0),
            ended: "exit status 0".to_owned(),
            at: 0,
            duration_ms: 1,
        }
    }

    /// Feeds `states` to a check with `attempts`; returns what each result
    /// started.
    fn run(
        collection: &mut Collection,
        attempts: u32,
        actions: &[CollectAction<'_>],
        states: &[State],
    ) -> Vec<Vec<String>> {
        let tracker = TrackerConfig { attempts, flap: None, ..TrackerConfig::default() };
        let mut state = CheckState::new(at(0));
        let mut started = Vec::new();
        for (i, result) in states.iter().enumerate() {
            let outcome = state.observe_state(&tracker, *result, at(i as u64 + 1));
            let due = collection.observe(&state, &outcome, actions);
            for name in &due {
                collection.finished(name, collection.generation, Some(output(name, "x")));
            }
            started.push(due.into_iter().map(str::to_owned).collect());
        }
        started
    }

    #[test]
    fn a_soft_collect_runs_at_the_first_failure_only() {
        let soft = config(CollectWhen::Soft);
        let actions = [CollectAction { name: "ps", config: &soft, on: &PROBLEMS }];
        let mut collection = Collection::default();
        let started = run(
            &mut collection,
            3,
            &actions,
            &[State::Ok, State::Critical, State::Critical, State::Critical, State::Critical],
        );
        assert_eq!(started, [vec![], vec!["ps"], vec![], vec![], vec![]]);
        assert_eq!(collection.outputs.len(), 1);
    }

    #[test]
    fn a_hard_collect_waits_for_the_hard_change() {
        let hard = config(CollectWhen::Hard);
        let actions = [CollectAction { name: "df", config: &hard, on: &PROBLEMS }];
        let mut collection = Collection::default();
        let started =
            run(&mut collection, 2, &actions, &[State::Critical, State::Critical, State::Critical]);
        assert_eq!(started, [vec![], vec!["df"], vec![]]);
    }

    #[test]
    fn a_change_between_problems_collects_again_and_a_recovery_clears() {
        let soft = config(CollectWhen::Soft);
        let actions = [CollectAction { name: "ps", config: &soft, on: &PROBLEMS }];
        let mut collection = Collection::default();
        let started = run(
            &mut collection,
            1,
            &actions,
            &[State::Warning, State::Warning, State::Critical, State::Ok, State::Critical],
        );
        assert_eq!(started, [vec!["ps"], vec![], vec!["ps"], vec![], vec!["ps"]]);
        assert_eq!(collection.generation, 2, "the change and the recovery end a segment");
    }

    #[test]
    fn on_selects_the_state_that_starts_a_collect() {
        let soft = config(CollectWhen::Soft);
        let actions = [CollectAction { name: "ps", config: &soft, on: &[Trigger::Critical] }];
        let mut collection = Collection::default();
        let started =
            run(&mut collection, 3, &actions, &[State::Warning, State::Critical, State::Critical]);
        assert_eq!(started, [vec![], vec!["ps"], vec![]]);
    }

    fn held(kind: EventKind, generation: u64) -> Held {
        let tracker = TrackerConfig { attempts: 1, flap: None, ..TrackerConfig::default() };
        let mut state = CheckState::new(at(0));
        let outcome = state.observe_state(&tracker, State::Critical, at(1));
        let mut event = Event::from_outcome("web", "h", &state, &outcome, 1, at(1)).next().unwrap();
        event.kind = kind;
        Held { event, generation, flapping: false, hard_since: at(1), at: at(1) }
    }

    #[test]
    fn events_wait_for_running_collects_and_leave_in_order_with_the_output() {
        let soft = config(CollectWhen::Soft);
        let actions = [
            CollectAction { name: "ps", config: &soft, on: &PROBLEMS },
            CollectAction { name: "df", config: &soft, on: &PROBLEMS },
        ];
        let tracker = TrackerConfig { attempts: 1, flap: None, ..TrackerConfig::default() };
        let mut state = CheckState::new(at(0));
        let outcome = state.observe_state(&tracker, State::Critical, at(1));
        let mut collection = Collection::default();
        assert_eq!(collection.observe(&state, &outcome, &actions), ["ps", "df"]);
        assert!(collection.admit(held(EventKind::Problem, 0)).is_empty(), "held while running");
        assert!(collection.admit(held(EventKind::Recovery, 0)).is_empty(), "held behind it");
        assert!(collection.finished("ps", 0, Some(output("ps", "PID"))).is_empty());
        let released = collection.finished("df", 0, None);
        let kinds: Vec<EventKind> = released.iter().map(|h| h.event.kind).collect();
        assert_eq!(kinds, [EventKind::Problem, EventKind::Recovery]);
        assert_eq!(released[0].event.collected, [output("ps", "PID")]);
        assert!(released[1].event.collected.is_empty(), "recoveries carry nothing");
        // Nothing running: a later problem event goes at once, with the output.
        let now = collection.admit(held(EventKind::Change, 0));
        assert_eq!(now[0].event.collected, [output("ps", "PID")]);
    }

    #[test]
    fn held_events_are_bounded_and_leave_in_order_at_the_bound() {
        let mut collection = Collection::default();
        collection.running.push(("ps".into(), 0));
        for i in 1..HELD_LIMIT {
            let mut event = held(EventKind::Problem, 0);
            event.event.attempt = u32::try_from(i).unwrap();
            assert!(collection.admit(event).is_empty());
        }
        let flushed = collection.admit(held(EventKind::Recovery, 0));
        assert_eq!(flushed.len(), HELD_LIMIT);
        assert_eq!(flushed[0].event.attempt, 1);
        assert_eq!(flushed[HELD_LIMIT - 1].event.kind, EventKind::Recovery);
        assert!(collection.held.is_empty());
    }

    #[test]
    fn a_stale_collect_does_not_keep_its_output_but_still_releases() {
        let mut collection =
            Collection { running: vec![("ps".into(), 0)], ..Collection::default() };
        collection.generation = 1;
        assert!(collection.admit(held(EventKind::Problem, 1)).is_empty());
        let released = collection.finished("ps", 0, Some(output("ps", "old")));
        assert_eq!(released.len(), 1);
        assert!(released[0].event.collected.is_empty());
        assert!(collection.outputs.is_empty());
    }

    #[test]
    fn held_events_survive_a_restart_and_go_out_at_once() {
        let mut collection = Collection::default();
        collection.running.push(("ps".into(), 0));
        assert!(collection.admit(held(EventKind::Problem, 0)).is_empty());
        let saved = serde_json::to_string(&collection).unwrap();
        let mut restored: Collection = serde_json::from_str(&saved).unwrap();
        assert!(!restored.is_running());
        assert_eq!(restored.release_if_idle().len(), 1);
    }
}
