//! The state of a check over time: soft and hard states, and flap detection.
//!
//! A [`CheckState`] is everything the agent remembers about one check. Each
//! result is fed to [`CheckState::observe`], which debounces it into the
//! check's *hard* state and reports what changed as an [`Outcome`]. The
//! module is pure: no I/O, no clock (every time is passed in), no runtime,
//! and no allocation per result, so the daemon, a replay tool and a test all
//! drive it the same way.
//!
//! # Soft and hard states
//!
//! One bad result is often noise: a timeout during a backup, a dropped
//! packet. As in Nagios, a problem is first *soft*: the check is re-run at
//! its retry interval ([`CheckState::is_retrying`]) and the problem becomes
//! *hard* only after [`TrackerConfig::attempts`] consecutive non-OK results.
//! Actions and notifications are meant to fire on hard changes
//! ([`HardChange`]); soft states are for display.
//!
//! | current state            | result            | becomes                               | event    |
//! | ------------------------ | ----------------- | ------------------------------------- | -------- |
//! | hard OK                  | OK                | unchanged                             |          |
//! | hard OK                  | non-OK            | soft problem, attempt 1 (hard at once if `attempts` <= 1) | (Problem) |
//! | soft problem (attempt n) | non-OK            | attempt n + 1; hard at `attempts`     | Problem  |
//! | soft problem             | OK                | hard OK ("soft recovery")             |          |
//! | hard problem             | same non-OK       | unchanged                             |          |
//! | hard problem             | other non-OK      | hard at once                          | Change   |
//! | hard problem             | OK                | hard OK (soft OK if `recovery_attempts` > 1) | Recovery |
//! | soft OK (attempt n)      | OK                | attempt n + 1; hard OK at `recovery_attempts` | Recovery |
//! | soft OK                  | same non-OK       | back to the hard problem              |          |
//! | soft OK                  | other non-OK      | hard at once                          | Change   |
//!
//! A soft problem that clears never was a hard state, so it fires nothing:
//! nobody was told about it. A change between two problems is hard at once
//! because the service is already known to be broken; waiting would only
//! delay telling how.
//!
//! A configuration reload can change `attempts` between two results. An
//! attempt count at or above the new threshold counts as having reached
//! it, so a lowered threshold takes effect on the next result instead of
//! never.
//!
//! # Why recovery is immediate by default
//!
//! A failing result can be a fluke of the check itself (a timeout, a busy
//! network); an OK result is positive evidence that the service answered
//! correctly. Debouncing recoveries would only delay the all-clear and
//! overstate outages, which is why Nagios Core recovers services at once.
//! [`TrackerConfig::recovery_attempts`] exists for services that come back
//! briefly before failing again: their OK results are then a *soft OK*, and a
//! problem during it returns to the hard problem without a second Problem
//! event, because the problem was never resolved.
//!
//! # Flap detection
//!
//! A check that keeps changing state would fire an action on every change;
//! flap detection notices it so the daemon can hold those actions back. The
//! algorithm is Nagios Core's (`check_for_service_flapping` in
//! `base/flapping.c`): a ring of the last 21 result states gives 20
//! transitions; a transition that changes state weighs from 0.75 (oldest) to
//! 1.25 (newest), so recent changes count more; the percent state change is
//! the sum of the weights over 20, times 100. A check starts flapping when
//! the percent reaches [`FlapThresholds::high`] and stops when it falls to
//! [`FlapThresholds::low`]; between the two nothing changes, so a check near
//! one threshold does not toggle on every result. The thresholds are
//! inclusive, as in Nagios (`>= high`, `<= low`), which also lets a low
//! threshold of 0 mean "stop once the ring is steady".
//!
//! Two choices differ from Nagios Core, and both are deliberate:
//!
//! - Every result is recorded, soft ones included. Nagios skips soft
//!   problems, so a check bouncing between OK and a soft problem is never
//!   flapping there; here it is, which is what an operator looking at the
//!   history would call it.
//! - The ring of a check never run holds no states; its first result fills
//!   all 21 slots. This is what Nagios does when flap detection is enabled on
//!   a service. (For a new service Nagios fills the ring with OK, so a check
//!   that is CRITICAL from its first run counts a change from an OK it never
//!   had, 6.25%, enough to flap under a low threshold.) Here only changes
//!   between real results count: a new check flaps only if its results really
//!   alternate.
//!
//! With flap detection off ([`TrackerConfig::flap`] `None`) the history is
//! still recorded, so turning it on in a reload judges the real recent
//! results.
//!
//! # Persistence
//!
//! With the `serde` feature, [`CheckState`] serialises with its history (as
//! the list of recent states, oldest first) so the agent can save it and
//! restore it after a restart: a restored check neither fires again for a
//! change it already reported nor forgets a soft problem halfway through its
//! attempts. Times serialise as serde's `SystemTime` (seconds and
//! nanoseconds since the Unix epoch); a time before the epoch cannot be
//! serialised.

use std::time::SystemTime;

use crate::result::CheckResult;
use crate::state::State;

/// How many result states the flap detection ring holds (Nagios Core's
/// `MAX_STATE_HISTORY_ENTRIES`).
const HISTORY_LEN: usize = 21;

/// Weight of a state change at the oldest transition of the ring.
const LOW_CURVE: f64 = 0.75;

/// Weight of a state change at the newest transition of the ring.
const HIGH_CURVE: f64 = 1.25;

/// Whether a state is confirmed, as Nagios defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum StateType {
    /// Not confirmed yet: the check is being retried.
    Soft,
    /// Confirmed: changes between hard states are what actions fire on.
    Hard,
}

/// How results debounce into hard states, for one check.
///
/// The default is Nagios Core's for services with `max_check_attempts 3`:
/// three results to confirm a problem, one to confirm a recovery, flap
/// detection on with the default thresholds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackerConfig {
    /// Consecutive non-OK results that make a problem hard. 0 counts as 1.
    pub attempts: u32,
    /// Consecutive OK results that make a recovery hard. 0 counts as 1.
    pub recovery_attempts: u32,
    /// Flap detection thresholds; `None` turns flap detection off.
    pub flap: Option<FlapThresholds>,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig { attempts: 3, recovery_attempts: 1, flap: Some(FlapThresholds::default()) }
    }
}

/// Percent state change thresholds for flap detection, in percent (0-100).
///
/// The defaults are Nagios Core's for services: `low_service_flap_threshold`
/// 5.0 and `high_service_flap_threshold` 20.0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlapThresholds {
    /// At or below this a flapping check stops flapping.
    pub low: f64,
    /// At or above this a check starts flapping.
    pub high: f64,
}

impl Default for FlapThresholds {
    fn default() -> Self {
        FlapThresholds { low: 5.0, high: 20.0 }
    }
}

/// Everything known about one check's state; what the agent persists.
///
/// Build it with [`CheckState::new`] for a check never run, or restore it
/// with serde; change it only through [`CheckState::observe`].
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CheckState {
    /// The current state, soft or hard.
    pub state: State,
    /// Whether [`state`](Self::state) is confirmed.
    pub state_type: StateType,
    /// The attempt number, from 1: for a soft problem, the consecutive
    /// non-OK results so far; for a hard problem, `attempts`; for a soft OK,
    /// the consecutive OK results so far; for a hard OK, 1.
    pub attempt: u32,
    /// The last hard state: what actions have been fired for.
    pub hard_state: State,
    /// When [`state`](Self::state) last changed, soft or hard.
    pub since: SystemTime,
    /// When [`hard_state`](Self::hard_state) last changed.
    pub hard_since: SystemTime,
    /// When the last result was observed; `None` before the first.
    pub last_check: Option<SystemTime>,
    /// The last result; `None` before the first, or when only states were
    /// observed ([`CheckState::observe_state`]).
    pub last_result: Option<CheckResult>,
    /// Whether flap detection considers the check flapping.
    pub flapping: bool,
    /// Nagios's weighted percent state change over the last 21 results
    /// (0-100); 0 while flap detection is off.
    pub percent_state_change: f64,
    /// The ring of recent result states flap detection works on.
    #[cfg_attr(feature = "serde", serde(default))]
    history: History,
}

impl CheckState {
    /// A check never run yet: OK, hard, attempt 1, since `now`, no last check.
    ///
    /// Starting from hard OK is Nagios's `initial_state`: a check that is
    /// broken from its first run goes through its soft attempts and then
    /// reports a Problem, like any other problem.
    pub fn new(now: SystemTime) -> CheckState {
        CheckState {
            state: State::Ok,
            state_type: StateType::Hard,
            attempt: 1,
            hard_state: State::Ok,
            since: now,
            hard_since: now,
            last_check: None,
            last_result: None,
            flapping: false,
            percent_state_change: 0.0,
            history: History::default(),
        }
    }

    /// Records one result observed at `now` and returns what changed.
    ///
    /// Takes the result by value to keep it as
    /// [`last_result`](Self::last_result) without cloning.
    pub fn observe(
        &mut self,
        config: &TrackerConfig,
        result: CheckResult,
        now: SystemTime,
    ) -> Outcome {
        let outcome = self.observe_state(config, result.state, now);
        self.last_result = Some(result);
        outcome
    }

    /// Records one result state observed at `now` and returns what changed.
    ///
    /// For callers that only have a state (tests, replaying a log): leaves
    /// [`last_result`](Self::last_result) as it was.
    pub fn observe_state(
        &mut self,
        config: &TrackerConfig,
        state: State,
        now: SystemTime,
    ) -> Outcome {
        self.last_check = Some(now);
        let hard_change = self.debounce(config, state, now);
        let flapping = self.detect_flapping(config, state);
        Outcome { hard_change, flapping }
    }

    /// Whether the check is in a soft problem or a soft OK, and so should be
    /// re-run at its retry interval rather than its normal one.
    pub fn is_retrying(&self) -> bool {
        self.state_type == StateType::Soft
    }

    /// The recent result states, oldest first: at most 21, fewer while the
    /// check has not run that often.
    pub fn history(&self) -> impl Iterator<Item = State> + '_ {
        self.history.iter()
    }

    /// The soft/hard state machine; returns the hard change, if any.
    fn debounce(
        &mut self,
        config: &TrackerConfig,
        result: State,
        now: SystemTime,
    ) -> Option<HardChange> {
        // A threshold of 0 would make the comparisons below mean "before the
        // first result", which has no sensible reading; 1 is what was meant.
        let attempts = config.attempts.max(1);
        let recovery_attempts = config.recovery_attempts.max(1);
        // Classify by (type, hard state) rather than trusting every field to
        // agree, so a hand-edited or old state file cannot wedge the machine.
        match (self.state_type, self.hard_state.is_problem(), result.is_problem()) {
            // Hard OK.
            (StateType::Hard, false, false) => {
                self.set_state(State::Ok, now);
                self.attempt = 1;
                None
            }
            (StateType::Hard, false, true) => {
                self.set_state(result, now);
                self.attempt = 1;
                if self.attempt >= attempts {
                    self.harden(now)
                } else {
                    self.state_type = StateType::Soft;
                    None
                }
            }
            // Soft problem.
            (StateType::Soft, false, false) => {
                self.set_state(State::Ok, now);
                self.state_type = StateType::Hard;
                self.attempt = 1;
                None
            }
            (StateType::Soft, false, true) => {
                self.set_state(result, now);
                self.attempt = self.attempt.saturating_add(1);
                if self.attempt >= attempts {
                    // Clamped so that a hard problem always reads attempt
                    // = attempts, even after a reload lowered it.
                    self.attempt = attempts;
                    self.harden(now)
                } else {
                    None
                }
            }
            // Hard problem.
            (StateType::Hard, true, true) => {
                self.set_state(result, now);
                self.attempt = attempts;
                self.harden(now)
            }
            (StateType::Hard, true, false) => {
                self.set_state(State::Ok, now);
                self.attempt = 1;
                if self.attempt >= recovery_attempts {
                    self.harden(now)
                } else {
                    self.state_type = StateType::Soft;
                    None
                }
            }
            // Soft OK, on the way to a recovery.
            (StateType::Soft, true, false) => {
                self.set_state(State::Ok, now);
                self.attempt = self.attempt.saturating_add(1);
                if self.attempt >= recovery_attempts {
                    // Clamped like a problem's, so the event reports the
                    // threshold reached even after a reload lowered it.
                    self.attempt = recovery_attempts;
                    let change = self.harden(now);
                    self.attempt = 1;
                    change
                } else {
                    None
                }
            }
            (StateType::Soft, true, true) => {
                // The problem never went away: back to it, with an event only
                // if it is a different problem.
                self.set_state(result, now);
                self.attempt = attempts;
                self.harden(now)
            }
        }
    }

    fn set_state(&mut self, state: State, now: SystemTime) {
        if self.state != state {
            self.state = state;
            self.since = now;
        }
    }

    /// Makes the current state hard; reports a change only if the hard
    /// state is a different one.
    fn harden(&mut self, now: SystemTime) -> Option<HardChange> {
        self.state_type = StateType::Hard;
        let previous = self.hard_state;
        if previous == self.state {
            return None;
        }
        self.hard_state = self.state;
        self.hard_since = now;
        let kind = match (previous.is_problem(), self.state.is_problem()) {
            (false, _) => ChangeKind::Problem,
            (true, false) => ChangeKind::Recovery,
            (true, true) => ChangeKind::Change,
        };
        Some(HardChange { kind, previous, current: self.state, attempt: self.attempt })
    }

    fn detect_flapping(&mut self, config: &TrackerConfig, result: State) -> Option<FlapEvent> {
        self.history.push(result);
        let Some(thresholds) = config.flap else {
            self.percent_state_change = 0.0;
            // Whoever was told that flapping started must hear that it is
            // over, even when it is over because detection was turned off.
            return std::mem::take(&mut self.flapping)
                .then_some(FlapEvent::Stopped { percent: 0.0 });
        };
        let percent = self.history.percent_state_change();
        self.percent_state_change = percent;
        // The low test comes first, as in Nagios, so that thresholds given in
        // the wrong order settle on "not flapping" instead of toggling.
        if percent <= thresholds.low {
            std::mem::take(&mut self.flapping).then_some(FlapEvent::Stopped { percent })
        } else if percent >= thresholds.high && !self.flapping {
            self.flapping = true;
            Some(FlapEvent::Started { percent })
        } else {
            None
        }
    }
}

/// What one observation changed; `Outcome::default()` is "nothing".
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Outcome {
    /// The hard state changed: what actions fire on.
    pub hard_change: Option<HardChange>,
    /// The check started or stopped flapping. Can come with a hard change.
    pub flapping: Option<FlapEvent>,
}

/// A change of hard state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct HardChange {
    /// Which kind of change.
    pub kind: ChangeKind,
    /// The hard state before.
    pub previous: State,
    /// The hard state now.
    pub current: State,
    /// The attempt that made the change hard, that is the threshold reached:
    /// `attempts` for a Problem or a Change, `recovery_attempts` for a
    /// Recovery (1 by default). After a Recovery the check's own
    /// [`attempt`](CheckState::attempt) is back to 1.
    pub attempt: u32,
}

/// The kind of a [`HardChange`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum ChangeKind {
    /// Hard OK to a hard problem.
    Problem,
    /// A hard problem to hard OK.
    Recovery,
    /// One hard problem to another (WARNING to CRITICAL, say).
    Change,
}

impl ChangeKind {
    /// Lower-case name, as used in JSON and config (`"recovery"`).
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Problem => "problem",
            ChangeKind::Recovery => "recovery",
            ChangeKind::Change => "change",
        }
    }
}

/// A check started or stopped flapping.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum FlapEvent {
    /// The percent state change reached the high threshold.
    Started {
        /// The percent state change that crossed it.
        percent: f64,
    },
    /// The percent state change fell to the low threshold, or flap
    /// detection was turned off (then `percent` is 0).
    Stopped {
        /// The percent state change that crossed it.
        percent: f64,
    },
}

/// The last [`HISTORY_LEN`] result states, in a fixed ring so that recording
/// one costs no allocation.
///
/// Persisted as the list of recorded states, oldest first; the ring layout
/// (where it starts) is not part of the format.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(from = "Vec<State>", into = "Vec<State>"))]
struct History {
    /// Slots not yet recorded hold the first recorded state (see the module
    /// docs); before any, they hold OK and `len` is 0.
    states: [State; HISTORY_LEN],
    /// The slot the next state goes to, which is also the oldest one.
    next: usize,
    /// How many states were recorded, up to [`HISTORY_LEN`].
    len: usize,
}

impl Default for History {
    fn default() -> Self {
        History { states: [State::Ok; HISTORY_LEN], next: 0, len: 0 }
    }
}

impl History {
    fn push(&mut self, state: State) {
        if self.len == 0 {
            self.states = [state; HISTORY_LEN];
        }
        self.states[self.next] = state;
        self.next = (self.next + 1) % HISTORY_LEN;
        self.len = (self.len + 1).min(HISTORY_LEN);
    }

    /// The recorded states, oldest first.
    fn iter(&self) -> impl Iterator<Item = State> + '_ {
        let start = (self.next + HISTORY_LEN - self.len) % HISTORY_LEN;
        (0..self.len).map(move |i| self.states[(start + i) % HISTORY_LEN])
    }

    /// Nagios Core's curved percent state change over the whole ring.
    fn percent_state_change(&self) -> f64 {
        // Same operations in the same order as flapping.c, so that the
        // result matches Nagios to the bit and so do threshold decisions.
        let mut changes = 0.0;
        let mut last = self.states[self.next];
        for x in 1..HISTORY_LEN {
            let state = self.states[(self.next + x) % HISTORY_LEN];
            if state != last {
                changes += ((x - 1) as f64 * (HIGH_CURVE - LOW_CURVE)) / (HISTORY_LEN - 2) as f64
                    + LOW_CURVE;
            }
            last = state;
        }
        changes * 100.0 / (HISTORY_LEN - 1) as f64
    }
}

impl PartialEq for History {
    /// Equal when the same states were recorded: where the ring happens to
    /// start does not matter, and is not persisted.
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

#[cfg(feature = "serde")]
impl From<History> for Vec<State> {
    fn from(history: History) -> Self {
        history.iter().collect()
    }
}

#[cfg(feature = "serde")]
impl From<Vec<State>> for History {
    /// Replays the states, so a list longer than the ring (a hand-edited
    /// file) keeps its newest entries.
    fn from(states: Vec<State>) -> Self {
        let mut history = History::default();
        for state in states {
            history.push(state);
        }
        history
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use proptest::prelude::*;

    use super::*;

    const OK: State = State::Ok;
    const WARN: State = State::Warning;
    const CRIT: State = State::Critical;
    const UNKN: State = State::Unknown;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    fn config(attempts: u32, recovery_attempts: u32) -> TrackerConfig {
        TrackerConfig { attempts, recovery_attempts, flap: None }
    }

    fn flap_config(low: f64, high: f64) -> TrackerConfig {
        TrackerConfig {
            attempts: 1,
            recovery_attempts: 1,
            flap: Some(FlapThresholds { low, high }),
        }
    }

    /// Observes `states` one a second, the first at `at(start)`.
    fn feed(
        check: &mut CheckState,
        config: &TrackerConfig,
        start: u64,
        states: &[State],
    ) -> Vec<Outcome> {
        (start..).zip(states).map(|(t, &state)| check.observe_state(config, state, at(t))).collect()
    }

    fn only_change(outcome: Outcome) -> Option<HardChange> {
        assert_eq!(outcome.flapping, None);
        outcome.hard_change
    }

    fn change(
        kind: ChangeKind,
        previous: State,
        current: State,
        attempt: u32,
    ) -> Option<HardChange> {
        Some(HardChange { kind, previous, current, attempt })
    }

    /// A check in a hard problem (`state`) reached at `at(0)`.
    fn hard_problem(state: State, config: &TrackerConfig) -> CheckState {
        let mut check = CheckState::new(at(0));
        let mut outcome = Outcome::default();
        while outcome.hard_change.is_none() {
            outcome = check.observe_state(config, state, at(0));
        }
        assert_eq!((check.state_type, check.hard_state), (StateType::Hard, state));
        check
    }

    fn assert_state(
        check: &CheckState,
        state: State,
        state_type: StateType,
        attempt: u32,
        hard_state: State,
    ) {
        assert_eq!(
            (check.state, check.state_type, check.attempt, check.hard_state),
            (state, state_type, attempt, hard_state)
        );
    }

    #[test]
    fn defaults_are_nagios_service_defaults() {
        let config = TrackerConfig::default();
        assert_eq!(config.attempts, 3);
        assert_eq!(config.recovery_attempts, 1);
        assert_eq!(config.flap, Some(FlapThresholds { low: 5.0, high: 20.0 }));
    }

    #[test]
    fn new_check_is_hard_ok_attempt_1_never_checked() {
        let check = CheckState::new(at(0));
        assert_state(&check, OK, StateType::Hard, 1, OK);
        assert_eq!((check.since, check.hard_since), (at(0), at(0)));
        assert_eq!(check.last_check, None);
        assert_eq!(check.last_result, None);
        assert!(!check.flapping);
        assert_eq!(check.percent_state_change, 0.0);
        assert!(!check.is_retrying());
        assert_eq!(check.history().count(), 0);
    }

    #[test]
    fn hard_ok_plus_ok_stays_hard_ok_without_event() {
        let mut check = CheckState::new(at(0));
        let outcomes = feed(&mut check, &TrackerConfig::default(), 1, &[OK, OK, OK]);
        assert!(outcomes.iter().all(|outcome| *outcome == Outcome::default()));
        assert_state(&check, OK, StateType::Hard, 1, OK);
        assert_eq!((check.since, check.hard_since), (at(0), at(0)));
        assert_eq!(check.last_check, Some(at(3)));
    }

    #[test]
    fn hard_ok_plus_problem_goes_soft_attempt_1() {
        let mut check = CheckState::new(at(0));
        let outcome = check.observe_state(&config(3, 1), WARN, at(10));
        assert_eq!(only_change(outcome), None);
        assert_state(&check, WARN, StateType::Soft, 1, OK);
        assert_eq!((check.since, check.hard_since), (at(10), at(0)));
        assert!(check.is_retrying());
    }

    #[test]
    fn hard_ok_plus_problem_with_attempts_1_is_hard_problem_at_once() {
        let mut check = CheckState::new(at(0));
        let outcome = check.observe_state(&config(1, 1), CRIT, at(10));
        assert_eq!(only_change(outcome), change(ChangeKind::Problem, OK, CRIT, 1));
        assert_state(&check, CRIT, StateType::Hard, 1, CRIT);
        assert_eq!((check.since, check.hard_since), (at(10), at(10)));
        assert!(!check.is_retrying());
    }

    #[test]
    fn hard_ok_plus_problem_with_attempts_0_counts_as_1() {
        let mut check = CheckState::new(at(0));
        let outcome = check.observe_state(&config(0, 0), UNKN, at(10));
        assert_eq!(only_change(outcome), change(ChangeKind::Problem, OK, UNKN, 1));
        assert_state(&check, UNKN, StateType::Hard, 1, UNKN);
    }

    #[test]
    fn soft_problem_plus_problem_counts_attempts_until_hard() {
        let mut check = CheckState::new(at(0));
        let config = config(3, 1);
        let outcomes = feed(&mut check, &config, 1, &[CRIT, CRIT]);
        assert_eq!(outcomes, [Outcome::default(); 2]);
        assert_state(&check, CRIT, StateType::Soft, 2, OK);

        let outcome = check.observe_state(&config, CRIT, at(3));
        assert_eq!(only_change(outcome), change(ChangeKind::Problem, OK, CRIT, 3));
        assert_state(&check, CRIT, StateType::Hard, 3, CRIT);
        // `since` is when CRITICAL was first seen; `hard_since` when it was
        // confirmed.
        assert_eq!((check.since, check.hard_since), (at(1), at(3)));
        assert!(!check.is_retrying());
    }

    #[test]
    fn soft_problem_warning_to_critical_keeps_counting_and_hardens_the_latest() {
        let mut check = CheckState::new(at(0));
        let config = config(3, 1);
        feed(&mut check, &config, 1, &[WARN, CRIT]);
        assert_state(&check, CRIT, StateType::Soft, 2, OK);
        assert_eq!(check.since, at(2));

        let outcome = check.observe_state(&config, CRIT, at(3));
        assert_eq!(only_change(outcome), change(ChangeKind::Problem, OK, CRIT, 3));
        assert_eq!((check.since, check.hard_since), (at(2), at(3)));
    }

    #[test]
    fn soft_problem_plus_same_problem_keeps_since() {
        let mut check = CheckState::new(at(0));
        feed(&mut check, &config(5, 1), 1, &[WARN, WARN, WARN]);
        assert_state(&check, WARN, StateType::Soft, 3, OK);
        assert_eq!(check.since, at(1));
    }

    #[test]
    fn soft_problem_plus_ok_is_soft_recovery_without_event() {
        let mut check = CheckState::new(at(0));
        let config = config(3, 3);
        let outcomes = feed(&mut check, &config, 1, &[WARN, WARN, OK]);
        assert_eq!(outcomes, [Outcome::default(); 3]);
        // Hard OK at once, even with recovery_attempts 3: the hard state
        // never left OK, so there is nothing to debounce.
        assert_state(&check, OK, StateType::Hard, 1, OK);
        assert_eq!((check.since, check.hard_since), (at(3), at(0)));
        assert!(!check.is_retrying());

        // The next problem starts counting afresh.
        check.observe_state(&config, WARN, at(4));
        assert_state(&check, WARN, StateType::Soft, 1, OK);
    }

    #[test]
    fn hard_problem_plus_same_problem_is_unchanged() {
        let config = config(2, 1);
        let mut check = hard_problem(CRIT, &config);
        let before = check.clone();
        let outcome = check.observe_state(&config, CRIT, at(10));
        assert_eq!(only_change(outcome), None);
        assert_state(&check, CRIT, StateType::Hard, 2, CRIT);
        assert_eq!((check.since, check.hard_since), (before.since, before.hard_since));
    }

    #[test]
    fn hard_problem_warning_to_critical_is_change_at_once() {
        let config = config(3, 1);
        let mut check = hard_problem(WARN, &config);
        let outcome = check.observe_state(&config, CRIT, at(10));
        assert_eq!(only_change(outcome), change(ChangeKind::Change, WARN, CRIT, 3));
        assert_state(&check, CRIT, StateType::Hard, 3, CRIT);
        assert_eq!((check.since, check.hard_since), (at(10), at(10)));

        let outcome = check.observe_state(&config, UNKN, at(11));
        assert_eq!(only_change(outcome), change(ChangeKind::Change, CRIT, UNKN, 3));
    }

    #[test]
    fn hard_problem_plus_ok_recovers_at_once_by_default() {
        let config = TrackerConfig { flap: None, ..TrackerConfig::default() };
        let mut check = hard_problem(CRIT, &config);
        let outcome = check.observe_state(&config, OK, at(10));
        assert_eq!(only_change(outcome), change(ChangeKind::Recovery, CRIT, OK, 1));
        assert_state(&check, OK, StateType::Hard, 1, OK);
        assert_eq!((check.since, check.hard_since), (at(10), at(10)));
    }

    #[test]
    fn hard_problem_plus_ok_with_recovery_attempts_3_goes_soft_ok_then_recovers() {
        let config = config(2, 3);
        let mut check = hard_problem(CRIT, &config);

        let outcome = check.observe_state(&config, OK, at(10));
        assert_eq!(only_change(outcome), None);
        assert_state(&check, OK, StateType::Soft, 1, CRIT);
        assert!(check.is_retrying());
        assert_eq!((check.since, check.hard_since), (at(10), at(0)));

        let outcome = check.observe_state(&config, OK, at(11));
        assert_eq!(only_change(outcome), None);
        assert_state(&check, OK, StateType::Soft, 2, CRIT);

        let outcome = check.observe_state(&config, OK, at(12));
        assert_eq!(only_change(outcome), change(ChangeKind::Recovery, CRIT, OK, 3));
        assert_state(&check, OK, StateType::Hard, 1, OK);
        // The state has been OK since the first OK; it is hard since now.
        assert_eq!((check.since, check.hard_since), (at(10), at(12)));
        assert!(!check.is_retrying());
    }

    #[test]
    fn soft_ok_interrupted_by_same_problem_returns_to_hard_problem_without_event() {
        let config = config(3, 3);
        let mut check = hard_problem(CRIT, &config);
        feed(&mut check, &config, 10, &[OK, OK]);
        assert_state(&check, OK, StateType::Soft, 2, CRIT);

        let outcome = check.observe_state(&config, CRIT, at(12));
        assert_eq!(only_change(outcome), None);
        assert_state(&check, CRIT, StateType::Hard, 3, CRIT);
        assert_eq!((check.since, check.hard_since), (at(12), at(0)));

        // And the recovery count starts over.
        check.observe_state(&config, OK, at(13));
        assert_state(&check, OK, StateType::Soft, 1, CRIT);
    }

    #[test]
    fn soft_ok_interrupted_by_other_problem_is_change() {
        let config = config(3, 3);
        let mut check = hard_problem(CRIT, &config);
        check.observe_state(&config, OK, at(10));

        let outcome = check.observe_state(&config, WARN, at(11));
        assert_eq!(only_change(outcome), change(ChangeKind::Change, CRIT, WARN, 3));
        assert_state(&check, WARN, StateType::Hard, 3, WARN);
        assert_eq!((check.since, check.hard_since), (at(11), at(11)));
    }

    #[test]
    fn reload_lowering_attempts_below_the_attempt_hardens_on_next_problem() {
        let mut check = CheckState::new(at(0));
        feed(&mut check, &config(5, 1), 1, &[WARN, WARN, WARN]);
        assert_state(&check, WARN, StateType::Soft, 3, OK);

        let lowered = config(2, 1);
        let outcome = check.observe_state(&lowered, WARN, at(4));
        assert_eq!(only_change(outcome), change(ChangeKind::Problem, OK, WARN, 2));
        assert_state(&check, WARN, StateType::Hard, 2, WARN);
    }

    #[test]
    fn reload_to_attempts_1_hardens_a_soft_problem_on_next_problem() {
        let mut check = CheckState::new(at(0));
        check.observe_state(&config(3, 1), WARN, at(1));
        let outcome = check.observe_state(&config(1, 1), CRIT, at(2));
        assert_eq!(only_change(outcome), change(ChangeKind::Problem, OK, CRIT, 1));
        assert_state(&check, CRIT, StateType::Hard, 1, CRIT);
    }

    #[test]
    fn reload_raising_attempts_keeps_a_soft_problem_counting() {
        let mut check = CheckState::new(at(0));
        feed(&mut check, &config(3, 1), 1, &[WARN, WARN]);
        let raised = config(4, 1);
        let outcomes = feed(&mut check, &raised, 3, &[WARN, WARN]);
        assert_eq!(only_change(outcomes[0]), None);
        assert_eq!(only_change(outcomes[1]), change(ChangeKind::Problem, OK, WARN, 4));
    }

    #[test]
    fn reload_changing_attempts_renumbers_a_hard_problem() {
        let mut check = hard_problem(CRIT, &config(5, 1));
        assert_eq!(check.attempt, 5);
        let outcome = check.observe_state(&config(2, 1), CRIT, at(10));
        assert_eq!(only_change(outcome), None);
        assert_eq!(check.attempt, 2);
    }

    #[test]
    fn reload_lowering_recovery_attempts_during_soft_ok_recovers_on_next_ok() {
        let mut check = hard_problem(CRIT, &config(1, 5));
        feed(&mut check, &config(1, 5), 10, &[OK, OK, OK]);
        assert_state(&check, OK, StateType::Soft, 3, CRIT);
        let outcome = check.observe_state(&config(1, 2), OK, at(13));
        assert_eq!(only_change(outcome), change(ChangeKind::Recovery, CRIT, OK, 2));
        assert_state(&check, OK, StateType::Hard, 1, OK);
    }

    #[test]
    fn recovery_attempts_0_counts_as_1() {
        let config = config(1, 0);
        let mut check = hard_problem(WARN, &config);
        let outcome = check.observe_state(&config, OK, at(10));
        assert_eq!(only_change(outcome), change(ChangeKind::Recovery, WARN, OK, 1));
    }

    #[test]
    fn inconsistent_restored_state_does_not_wedge() {
        // A hard state whose fields disagree, as a hand-edited file could
        // have: the next results put it right.
        let mut check = CheckState::new(at(0));
        check.state = CRIT;
        check.attempt = 0;
        check.observe_state(&config(2, 1), OK, at(1));
        assert_state(&check, OK, StateType::Hard, 1, OK);

        let mut check = CheckState::new(at(0));
        check.state_type = StateType::Soft;
        check.attempt = u32::MAX;
        let outcome = check.observe_state(&config(3, 1), WARN, at(1));
        assert_eq!(only_change(outcome), change(ChangeKind::Problem, OK, WARN, 3));
    }

    #[test]
    fn observe_records_last_check_and_last_result() {
        let mut check = CheckState::new(at(0));
        let config = TrackerConfig::default();
        let first = sample_result(WARN, "DISK WARNING - 9% free");
        check.observe(&config, first.clone(), at(5));
        assert_eq!(check.last_check, Some(at(5)));
        assert_eq!(check.last_result, Some(first));
        assert_state(&check, WARN, StateType::Soft, 1, OK);

        let second = sample_result(OK, "DISK OK");
        check.observe(&config, second.clone(), at(6));
        assert_eq!(check.last_result, Some(second.clone()));

        // A bare state does not invent or clear a result.
        check.observe_state(&config, CRIT, at(7));
        assert_eq!(check.last_check, Some(at(7)));
        assert_eq!(check.last_result, Some(second));
    }

    #[test]
    fn change_kind_names() {
        assert_eq!(ChangeKind::Problem.as_str(), "problem");
        assert_eq!(ChangeKind::Recovery.as_str(), "recovery");
        assert_eq!(ChangeKind::Change.as_str(), "change");
    }

    #[test]
    fn history_keeps_the_last_21_states_oldest_first() {
        let mut check = CheckState::new(at(0));
        let states: Vec<State> = (0..30).map(|i| State::ALL[i % 4]).collect();
        feed(&mut check, &config(3, 1), 1, &states[..5]);
        assert_eq!(check.history().collect::<Vec<_>>(), states[..5]);
        feed(&mut check, &config(3, 1), 6, &states[5..]);
        assert_eq!(check.history().collect::<Vec<_>>(), states[9..]);
    }

    /// Percent after `n` results alternating CRITICAL/OK, starting with
    /// OK: changes at the newest `n - 1` transitions x = 20 - n + 1 ..= 19.
    /// Hand-computed from weight(x) = 0.75 + x * 0.5 / 19 and
    /// percent = sum * 100 / 20.
    const ALTERNATING: [(usize, f64); 5] = [
        (1, 0.0),
        (2, 6.25),                 // x = 19: 1.25
        (3, 12.368_421_052_631_5), // x = 18, 19: 1.5 + 37 / 38
        (4, 18.355_263_157_894_7), // x = 17..=19: 2.25 + 54 / 38
        (5, 24.210_526_315_789_5), // x = 16..=19: 3.0 + 70 / 38
    ];

    fn assert_percent(check: &CheckState, expected: f64) {
        let actual = check.percent_state_change;
        assert!((actual - expected).abs() < 1e-9, "percent {actual}, expected {expected}");
    }

    #[test]
    fn alternating_ok_critical_starts_flapping_at_24_2_percent() {
        let config = flap_config(5.0, 20.0);
        let mut check = CheckState::new(at(0));
        let sequence = [OK, CRIT, OK, CRIT, OK];
        for (t, (n, expected)) in (1..).zip(ALTERNATING) {
            let outcome = check.observe_state(&config, sequence[n - 1], at(t));
            assert_percent(&check, expected);
            if n < 5 {
                assert_eq!(outcome.flapping, None, "after {n} results");
                assert!(!check.flapping);
            } else {
                let percent = check.percent_state_change;
                assert_eq!(outcome.flapping, Some(FlapEvent::Started { percent }));
                assert!(check.flapping);
            }
        }
    }

    #[test]
    fn flapping_stops_only_at_the_low_threshold() {
        let config = flap_config(5.0, 20.0);
        let mut check = CheckState::new(at(0));
        feed(&mut check, &config, 1, &[OK, CRIT, OK, CRIT, OK]);
        assert!(check.flapping);

        // Steady OK from now: after k more results the four changes sit at
        // x = 16 - k ..= 19 - k, percent = 5 * (3 + (70 - 4k) / 38).
        let mut percents = Vec::new();
        for k in 1..=20 {
            let outcome = check.observe_state(&config, OK, at(10 + k));
            percents.push((check.percent_state_change, check.flapping, outcome.flapping));
        }
        // k = 9: 19.47%, below the high threshold, yet still flapping.
        assert!((percents[8].0 - 19.473_684_210_526_3).abs() < 1e-9);
        assert!(percents[8].1);
        // k = 17: the oldest change has left the ring: x = 0, 1, 2 remain,
        // 2.25 + 3 / 38.
        assert!((percents[16].0 - 11.644_736_842_105_3).abs() < 1e-9);
        // k = 18: x = 0, 1: 7.63%, still above 5.
        assert!((percents[17].0 - 7.631_578_947_368_4).abs() < 1e-9);
        assert!(percents[..18].iter().all(|&(_, flapping, event)| flapping && event.is_none()));
        // k = 19: x = 0 alone: 0.75 * 5 = 3.75%, at last below 5.
        assert_eq!(percents[18], (3.75, false, Some(FlapEvent::Stopped { percent: 3.75 })));
        assert_eq!(percents[19], (0.0, false, None));
    }

    #[test]
    fn fully_alternating_history_is_100_percent() {
        let config = flap_config(5.0, 20.0);
        let mut check = CheckState::new(at(0));
        let states: Vec<State> = (0..40).map(|i| if i % 2 == 0 { OK } else { WARN }).collect();
        feed(&mut check, &config, 1, &states);
        assert_eq!(check.percent_state_change, 100.0);
        assert!(check.flapping);
    }

    #[test]
    fn first_results_of_a_new_check_count_no_change_from_ok() {
        // A check CRITICAL from its first run: no phantom OK before it, so
        // not even a 1% threshold flags it.
        let config = flap_config(0.5, 1.0);
        let mut check = CheckState::new(at(0));
        let outcomes = feed(&mut check, &config, 1, &[CRIT; 5]);
        assert!(outcomes.iter().all(|outcome| outcome.flapping.is_none()));
        assert_eq!(check.percent_state_change, 0.0);
        assert!(!check.flapping);
    }

    #[test]
    fn flap_thresholds_are_inclusive_as_in_nagios() {
        // One change at the newest transition is exactly 6.25%.
        let config = flap_config(0.0, 6.25);
        let mut check = CheckState::new(at(0));
        feed(&mut check, &config, 1, &[OK]);
        let outcome = check.observe_state(&config, CRIT, at(2));
        assert_eq!(outcome.flapping, Some(FlapEvent::Started { percent: 6.25 }));

        // And a low threshold of 0 stops once the ring is steady.
        let outcomes = feed(&mut check, &config, 3, &[CRIT; 20]);
        let stops: Vec<_> = outcomes.iter().filter_map(|outcome| outcome.flapping).collect();
        assert_eq!(stops, [FlapEvent::Stopped { percent: 0.0 }]);
        assert_eq!(outcomes.last().unwrap().flapping, stops.last().copied());
    }

    #[test]
    fn flap_event_comes_with_the_hard_change_that_caused_it() {
        let config = flap_config(5.0, 20.0);
        let mut check = CheckState::new(at(0));
        feed(&mut check, &config, 1, &[OK, CRIT, OK, CRIT]);
        let outcome = check.observe_state(&config, OK, at(5));
        assert_eq!(outcome.hard_change, change(ChangeKind::Recovery, CRIT, OK, 1));
        assert!(matches!(outcome.flapping, Some(FlapEvent::Started { .. })));
    }

    #[test]
    fn soft_results_count_toward_flapping() {
        // Never hard (attempts 3), but bouncing: flapping all the same.
        let config = TrackerConfig::default();
        let mut check = CheckState::new(at(0));
        let outcomes = feed(&mut check, &config, 1, &[OK, WARN, OK, WARN, OK]);
        assert!(outcomes.iter().all(|outcome| outcome.hard_change.is_none()));
        assert!(check.flapping);
    }

    #[test]
    fn flap_none_never_flaps_but_keeps_history() {
        let config = config(1, 1);
        let mut check = CheckState::new(at(0));
        let states: Vec<State> = (0..30).map(|i| if i % 2 == 0 { OK } else { CRIT }).collect();
        let outcomes = feed(&mut check, &config, 1, &states);
        assert!(outcomes.iter().all(|outcome| outcome.flapping.is_none()));
        assert!(!check.flapping);
        assert_eq!(check.percent_state_change, 0.0);
        assert_eq!(check.history().count(), 21);

        // Turning detection on judges the real recent history at once.
        check.observe_state(&flap_config(5.0, 20.0), OK, at(100));
        assert!(check.flapping);
    }

    #[test]
    fn turning_flap_detection_off_while_flapping_reports_stopped() {
        let mut check = CheckState::new(at(0));
        feed(&mut check, &flap_config(5.0, 20.0), 1, &[OK, CRIT, OK, CRIT, OK]);
        assert!(check.flapping);
        let outcome = check.observe_state(&config(1, 1), CRIT, at(10));
        assert_eq!(outcome.flapping, Some(FlapEvent::Stopped { percent: 0.0 }));
        assert!(!check.flapping);
        assert_eq!(check.percent_state_change, 0.0);
    }

    #[test]
    fn history_equality_ignores_where_the_ring_starts() {
        let mut a = History::default();
        let mut b = History::default();
        for state in [OK, OK, WARN] {
            a.push(state);
        }
        for state in [CRIT, OK, OK, WARN] {
            b.push(state);
        }
        assert_ne!(a, b);
        let mut long_a = History::default();
        let mut long_b = History::default();
        for i in 0..30 {
            long_a.push(State::ALL[i % 4]);
        }
        for i in 0..34 {
            long_b.push(State::ALL[i % 4]);
        }
        assert_ne!(long_a.next, long_b.next);
        assert_eq!(long_a, long_b);
        assert_eq!(long_a.percent_state_change(), long_b.percent_state_change());
    }

    fn sample_result(state: State, summary: &str) -> CheckResult {
        use crate::result::{RawRun, Termination};

        let stdout = format!("{summary} | /=1820MB;1800;1900;0;2000 load1=0.5");
        CheckResult::from_run(RawRun {
            termination: &Termination::Exited(i32::from(state.exit_code())),
            stdout: &stdout,
            stderr: "",
            duration: Duration::from_micros(12_345),
            truncated: false,
            timeout_state: State::Unknown,
        })
    }

    /// Equal but for the last bit of the percent, which serde_json's default
    /// float parsing may lose. Nothing depends on that bit: the next result
    /// recomputes the percent from the history.
    #[cfg(feature = "serde")]
    fn assert_restored(back: &CheckState, check: &CheckState) {
        let (restored, saved) = (back.percent_state_change, check.percent_state_change);
        assert!((restored - saved).abs() < 1e-12, "percent {restored} restored as {saved}");
        let back = CheckState { percent_state_change: saved, ..back.clone() };
        assert_eq!(&back, check);
    }

    #[cfg(feature = "serde")]
    #[test]
    fn check_state_round_trips_through_json() {
        let config = TrackerConfig::default();
        let mut check = CheckState::new(at(0));
        for (t, state) in (1..).zip([OK, CRIT, OK, CRIT, OK, WARN, WARN, WARN, CRIT]) {
            check.observe(&config, sample_result(state, "DISK"), at(t) + Duration::from_nanos(7));
        }
        assert!(check.flapping);
        assert!(check.last_result.as_ref().unwrap().perfdata.len() == 2);

        let json = serde_json::to_value(&check).unwrap();
        assert_eq!(json["state"], "critical");
        assert_eq!(json["state_type"], "hard");
        assert_eq!(json["hard_state"], "critical");
        assert_eq!(
            json["history"],
            serde_json::json!([
                "ok", "critical", "ok", "critical", "ok", "warning", "warning", "warning",
                "critical"
            ])
        );
        let back: CheckState = serde_json::from_str(&json.to_string()).unwrap();
        assert_restored(&back, &check);

        // The restored check carries on exactly as the original would.
        let mut original = check;
        let mut restored = back;
        for (t, state) in (20..).zip([OK, OK, CRIT, WARN]) {
            assert_eq!(
                restored.observe_state(&config, state, at(t)),
                original.observe_state(&config, state, at(t))
            );
            assert_eq!(restored, original);
        }
    }

    #[cfg(feature = "serde")]
    #[test]
    fn restored_history_longer_than_the_ring_keeps_the_newest() {
        let mut json = serde_json::to_value(CheckState::new(at(0))).unwrap();
        let states: Vec<&str> = (0..25).map(|i| if i < 4 { "critical" } else { "ok" }).collect();
        json["history"] = serde_json::json!(states);
        let check: CheckState = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(check.history().collect::<Vec<_>>(), [OK; 21]);

        json.as_object_mut().unwrap().remove("history");
        let check: CheckState = serde_json::from_value(json).unwrap();
        assert_eq!(check.history().count(), 0);
    }

    #[cfg(feature = "serde")]
    #[test]
    fn events_serialise_in_lower_case() {
        let change =
            HardChange { kind: ChangeKind::Recovery, previous: CRIT, current: OK, attempt: 1 };
        assert_eq!(
            serde_json::to_value(change).unwrap(),
            serde_json::json!({"kind": "recovery", "previous": "critical", "current": "ok", "attempt": 1})
        );
        assert_eq!(
            serde_json::to_value(FlapEvent::Started { percent: 25.0 }).unwrap(),
            serde_json::json!({"started": {"percent": 25.0}})
        );
        assert_eq!(serde_json::to_value(StateType::Soft).unwrap(), "soft");
        let back: HardChange =
            serde_json::from_value(serde_json::to_value(change).unwrap()).unwrap();
        assert_eq!(back, change);
    }

    /// Nagios's computation written the plain way, over the full list of
    /// results: the ring must agree with it.
    fn reference_percent(results: &[State]) -> f64 {
        let Some(&first) = results.first() else { return 0.0 };
        let mut ring: Vec<State> = vec![first; HISTORY_LEN];
        ring.extend_from_slice(results);
        let ring = &ring[ring.len() - HISTORY_LEN..];
        let sum: f64 = ring
            .windows(2)
            .enumerate()
            .filter(|(_, pair)| pair[0] != pair[1])
            .map(|(x, _)| 0.75 + x as f64 * 0.5 / 19.0)
            .sum();
        sum * 100.0 / 20.0
    }

    fn any_state() -> impl Strategy<Value = State> {
        prop::sample::select(State::ALL.to_vec())
    }

    fn any_config() -> impl Strategy<Value = TrackerConfig> {
        (1..=5u32, 1..=4u32, any::<bool>()).prop_map(|(attempts, recovery_attempts, flap)| {
            TrackerConfig { attempts, recovery_attempts, flap: flap.then(FlapThresholds::default) }
        })
    }

    /// Sequences that dwell in one state as well as bounce, so that both
    /// hard states and flapping are reached.
    fn any_sequence() -> impl Strategy<Value = Vec<State>> {
        prop::collection::vec((any_state(), 1..6usize), 0..40).prop_map(|runs| {
            runs.into_iter().flat_map(|(state, n)| std::iter::repeat_n(state, n)).collect()
        })
    }

    proptest! {
        #[test]
        fn invariants_hold_for_any_sequence(config in any_config(), states in any_sequence()) {
            let mut check = CheckState::new(at(0));
            let max_attempt = config.attempts.max(config.recovery_attempts);
            let mut last_kind = None;
            for (t, &state) in (1..).zip(&states) {
                let before = check.clone();
                let outcome = check.observe_state(&config, state, at(t));

                // (a) a hard change iff the hard state changed, and it says how.
                match outcome.hard_change {
                    Some(change) => {
                        prop_assert_ne!(before.hard_state, check.hard_state);
                        prop_assert_eq!(change.previous, before.hard_state);
                        prop_assert_eq!(change.current, check.hard_state);
                        let kind = match (change.previous.is_problem(), change.current.is_problem()) {
                            (false, _) => ChangeKind::Problem,
                            (true, false) => ChangeKind::Recovery,
                            (true, true) => ChangeKind::Change,
                        };
                        prop_assert_eq!(change.kind, kind);
                        prop_assert!((1..=max_attempt).contains(&change.attempt));
                        prop_assert_eq!(check.hard_since, at(t));
                        // (e) no Problem after a Problem without a Recovery.
                        if change.kind == ChangeKind::Problem {
                            prop_assert_ne!(last_kind, Some(ChangeKind::Problem));
                        }
                        if change.kind != ChangeKind::Change {
                            last_kind = Some(change.kind);
                        }
                    }
                    None => {
                        prop_assert_eq!(before.hard_state, check.hard_state);
                        prop_assert_eq!(before.hard_since, check.hard_since);
                    }
                }
                // (b) hard means the state is the hard state; soft means it
                // is on the other side of OK from it.
                match check.state_type {
                    StateType::Hard => prop_assert_eq!(check.state, check.hard_state),
                    StateType::Soft => {
                        prop_assert_ne!(check.state.is_problem(), check.hard_state.is_problem());
                    }
                }
                prop_assert_eq!(check.is_retrying(), check.state_type == StateType::Soft);
                // (c) the attempt stays in range.
                prop_assert!((1..=max_attempt).contains(&check.attempt), "attempt {}", check.attempt);
                if check.state_type == StateType::Hard {
                    let expected = if check.state.is_problem() { config.attempts } else { 1 };
                    prop_assert_eq!(check.attempt, expected);
                }
                // `since` moves exactly when the state does.
                if check.state == before.state {
                    prop_assert_eq!(check.since, before.since);
                } else {
                    prop_assert_eq!(check.since, at(t));
                }
                // (d) percent in range, and flap events match the flag.
                prop_assert!((0.0..=100.0).contains(&check.percent_state_change));
                match outcome.flapping {
                    Some(FlapEvent::Started { percent }) => {
                        prop_assert!(!before.flapping && check.flapping);
                        prop_assert_eq!(percent, check.percent_state_change);
                    }
                    Some(FlapEvent::Stopped { percent }) => {
                        prop_assert!(before.flapping && !check.flapping);
                        prop_assert_eq!(percent, check.percent_state_change);
                    }
                    None => prop_assert_eq!(before.flapping, check.flapping),
                }
                if config.flap.is_none() {
                    prop_assert!(!check.flapping);
                    prop_assert_eq!(check.percent_state_change, 0.0);
                }
                prop_assert_eq!(check.last_check, Some(at(t)));
            }
            // The history is the last 21 results.
            let recent = &states[states.len().saturating_sub(HISTORY_LEN)..];
            prop_assert_eq!(check.history().collect::<Vec<_>>(), recent);
        }

        #[test]
        fn problems_harden_after_exactly_attempts_results(
            config in any_config(),
            problem in any_state().prop_filter("a problem", |state| state.is_problem()),
        ) {
            let mut check = CheckState::new(at(0));
            for t in 1..config.attempts {
                let outcome = check.observe_state(&config, problem, at(u64::from(t)));
                prop_assert_eq!(outcome.hard_change, None);
            }
            let outcome = check.observe_state(&config, problem, at(100));
            prop_assert_eq!(outcome.hard_change, change(ChangeKind::Problem, OK, problem, config.attempts));
        }

        #[test]
        fn percent_matches_nagios_reference(states in any_sequence()) {
            let config = flap_config(5.0, 20.0);
            let mut check = CheckState::new(at(0));
            for (t, i) in (1..).zip(0..states.len()) {
                check.observe_state(&config, states[i], at(t));
                let expected = reference_percent(&states[..=i]);
                prop_assert!(
                    (check.percent_state_change - expected).abs() < 1e-9,
                    "{} != {}", check.percent_state_change, expected
                );
            }
        }
    }

    #[cfg(feature = "serde")]
    proptest! {
        #[test]
        fn any_check_state_round_trips_through_json(config in any_config(), states in any_sequence()) {
            let mut check = CheckState::new(at(0));
            for (t, &state) in (1..).zip(&states) {
                check.observe_state(&config, state, at(t));
            }
            let json = serde_json::to_string(&check).unwrap();
            let back: CheckState = serde_json::from_str(&json).unwrap();
            assert_restored(&back, &check);
        }
    }
}
