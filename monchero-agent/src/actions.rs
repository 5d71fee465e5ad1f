//! Running actions on hard state changes and flapping events.
//!
//! The daemon hands every [`Event`] to [`Actions::dispatch`]; the actions
//! the check lists and whose `on` includes the event's trigger are queued
//! and run on a small pool, each under the plugin execution policy with the
//! event in its environment and as JSON on stdin. Runs report back over a
//! channel, so a slow or hanging action never delays checks or other
//! actions. The queue is bounded: past [`QUEUE_LIMIT`] the oldest runs are
//! dropped, counted and logged, never memory without limit.
//!
//! An action with a `rate_limit` goes through its [`Limiter`] first: over
//! the limit, the latest event of each check is held and goes out, with the
//! count of those it replaced, when the window has room
//! ([`Actions::release_held`]). Notifier actions (webhook, email) then go to
//! the durable [`Deliveries`] queue instead of the pool.
//!
//! `collect` actions are not dispatched by events: the daemon starts them
//! ([`Actions::collect`]) when [`crate::collect`] says a problem needs
//! them, and they run on the same pool, their output captured as written.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use monchero_core::collected::{Collected, combine_output};
use monchero_core::event::{Event, EventKind, Trigger};
use monchero_core::ratelimit::Limiter;
use monchero_core::result::Termination;
use monchero_core::runner::{RunInput, Runner, RunnerConfig};
use monchero_core::tracker::{ChangeKind, CheckState, HardChange, Outcome};
use monchero_core::{CheckResult, State};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::config::{ActionConfig, ActionKind, CheckConfig, CollectConfig};
use crate::delivery::Deliveries;

/// Actions running at once; more wait in the queue.
const MAX_RUNNING: usize = 4;
/// Queued runs kept at most.
pub const QUEUE_LIMIT: usize = 1000;

/// The last action run for a check, kept with its state and shown by
/// `monchero status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionRecord {
    pub action: String,
    pub event: EventKind,
    #[serde(with = "crate::status_report::rfc3339_serde")]
    pub at: SystemTime,
    /// Exit status 0 within the timeout.
    pub ok: bool,
    pub exit_code: Option<i32>,
    pub summary: String,
}

/// An action's plan for one hard problem of a check: when it runs next
/// (after its `delay`, or again after `repeat`) and whether it has run.
/// Kept with the check's state, so a restart neither forgets a repeat nor
/// runs a delayed action early.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Planned {
    /// The start of the hard problem it is for; a later one replaces it.
    pub hard_since: SystemTime,
    pub change: ChangeKind,
    pub previous: State,
    /// When to run it (again); `None` when nothing more is due.
    pub next: Option<SystemTime>,
    /// It ran for this problem, so the recovery is due to it too.
    pub sent: bool,
}

/// The circumstances of an event for [`Actions::dispatch`].
#[derive(Debug)]
pub struct Moment<'a> {
    /// The check flaps now.
    pub flapping: bool,
    /// When the check's current hard state began.
    pub hard_since: SystemTime,
    pub now: SystemTime,
    /// The check's plans, by action name.
    pub planned: &'a mut BTreeMap<String, Planned>,
}

/// A finished action run, on its way back to the daemon.
#[derive(Debug)]
pub struct ActionDone {
    pub action: Arc<ActionConfig>,
    pub event: Arc<Event>,
    pub ran: Ran,
}

/// What a finished run gave.
#[derive(Debug)]
pub enum Ran {
    /// A command action's result.
    Command(CheckResult),
    /// A collect action's output, for the problem segment it was started
    /// in; `None` when it never ran (dropped from a full queue).
    Collect { generation: u64, collected: Option<Collected> },
}

#[derive(Debug)]
struct Queued {
    action: Arc<ActionConfig>,
    event: Arc<Event>,
    /// For a collect: the problem segment it is for.
    generation: u64,
}

/// The action queue and pool.
#[derive(Debug)]
pub struct Actions {
    by_name: HashMap<String, Arc<ActionConfig>>,
    queue: VecDeque<Queued>,
    running: usize,
    dropped: u64,
    runner: Arc<Runner>,
    done_tx: mpsc::UnboundedSender<ActionDone>,
    /// Per rate-limited action, by name.
    limits: HashMap<String, Limiter<Arc<Event>>>,
    deliveries: Deliveries,
}

impl Actions {
    /// An empty pool; results arrive on the returned receiver. Notifier
    /// actions are handed to `deliveries`.
    pub fn new(deliveries: Deliveries) -> (Actions, mpsc::UnboundedReceiver<ActionDone>) {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let actions = Actions {
            by_name: HashMap::new(),
            queue: VecDeque::new(),
            running: 0,
            dropped: 0,
            runner: Arc::new(Runner::default()),
            done_tx,
            limits: HashMap::new(),
            deliveries,
        };
        (actions, done_rx)
    }

    /// Installs the actions of a (new) config. Runs already queued keep the
    /// definition they were queued with; a rate limit that did not change
    /// keeps its window and what it holds.
    pub fn configure(&mut self, actions: &[ActionConfig]) {
        self.by_name =
            actions.iter().map(|action| (action.name.clone(), Arc::new(action.clone()))).collect();
        let mut old = std::mem::take(&mut self.limits);
        for action in actions {
            let Some(rate) = action.rate_limit else { continue };
            let limiter = match old.remove(&action.name) {
                Some(limiter) if limiter.rate() == rate => limiter,
                _ => Limiter::new(rate),
            };
            self.limits.insert(action.name.clone(), limiter);
        }
        self.deliveries.configure(actions);
    }

    /// Queues the check's actions that subscribe to `event`, or plans them
    /// in `planned` when they wait (`delay`) or repeat (`repeat`). While a
    /// check flaps, only the flapping events themselves go out, as in
    /// Nagios: a notification per flap is noise.
    pub fn dispatch(&mut self, check: &CheckConfig, event: Event, moment: Moment<'_>) {
        let Moment { flapping, hard_since, now, planned } = moment;
        let is_flap_event =
            matches!(event.kind, EventKind::FlappingStart | EventKind::FlappingStop);
        // A new hard state ends what was planned for the previous one, also
        // for actions that do not subscribe to the new one.
        let before = if is_flap_event { BTreeMap::new() } else { std::mem::take(planned) };
        if flapping && !is_flap_event {
            info!(
                message = "Actions held back: the check is flapping.",
                check = %check.name,
                event = event.kind.as_str(),
            );
            return;
        }
        let trigger = Trigger::of(&event);
        let event = Arc::new(event);
        for name in &check.actions {
            let Some(action) = self.by_name.get(name).cloned() else { continue };
            // Collects start with the problem, not with its events.
            if !action.on.contains(&trigger) || matches!(action.kind, ActionKind::Collect(_)) {
                continue;
            }
            let change = match event.kind {
                EventKind::Problem => ChangeKind::Problem,
                EventKind::Change => ChangeKind::Change,
                // An action that waits (`delay`) tells of a recovery only if it
                // told of the problem.
                EventKind::Recovery if before.get(name).is_some_and(|plan| !plan.sent) => continue,
                // Recoveries and flapping events go out at once.
                _ => {
                    self.enqueue(action, event.clone());
                    continue;
                }
            };
            if action.delay.is_none() {
                self.enqueue(action.clone(), event.clone());
            }
            let next = action.delay.or(action.repeat).map(|wait| now + wait);
            if next.is_some() {
                let plan = Planned {
                    hard_since,
                    change,
                    previous: event.previous_state,
                    next,
                    sent: action.delay.is_none(),
                };
                planned.insert(name.clone(), plan);
            }
        }
        self.start();
    }

    /// Runs the planned actions that are due: a delayed first run, or a
    /// repeat, with what the check's collects gathered. Plans for a problem
    /// that is over or has changed are dropped. Returns whether any plan
    /// changed (ran, or was dropped).
    pub fn run_due(
        &mut self,
        check: &CheckConfig,
        host: &str,
        state: &CheckState,
        collected: &[Collected],
        planned: &mut BTreeMap<String, Planned>,
        now: SystemTime,
    ) -> bool {
        let mut changed = false;
        planned.retain(|name, plan| {
            let Some(action) = self.by_name.get(name).cloned() else {
                changed = true;
                return false;
            };
            if !state.hard_state.is_problem() || state.hard_since != plan.hard_since {
                changed = true;
                return false;
            }
            match plan.next {
                Some(next) if next <= now && !state.flapping => {
                    let change = HardChange {
                        kind: plan.change,
                        previous: plan.previous,
                        current: state.hard_state,
                        attempt: state.attempt,
                    };
                    let outcome = Outcome { hard_change: Some(change), flapping: None };
                    let attempts = check.tracker.attempts;
                    for mut event in
                        Event::from_outcome(&check.name, host, state, &outcome, attempts, now)
                    {
                        event.collected = collected.to_vec();
                        self.enqueue(action.clone(), Arc::new(event));
                    }
                    plan.sent = true;
                    plan.next = action.repeat.map(|every| now + every);
                    changed = true;
                }
                _ => {}
            }
            true
        });
        self.start();
        changed
    }

    /// The collect actions the check lists, by name.
    pub fn collects_of(&self, check: &CheckConfig) -> Vec<Arc<ActionConfig>> {
        check
            .actions
            .iter()
            .filter_map(|name| self.by_name.get(name))
            .filter(|action| matches!(action.kind, ActionKind::Collect(_)))
            .cloned()
            .collect()
    }

    /// Queues the collect action `name` with the event of the moment, for
    /// problem segment `generation`; its end comes back as [`Ran::Collect`].
    /// Returns false when no such collect is configured.
    pub fn collect(&mut self, name: &str, event: Arc<Event>, generation: u64) -> bool {
        let Some(action) = self.by_name.get(name).cloned() else { return false };
        if !matches!(action.kind, ActionKind::Collect(_)) {
            return false;
        }
        self.push(Queued { action, event, generation });
        self.start();
        true
    }

    /// Passes `event` through the action's rate limit, if it has one.
    fn enqueue(&mut self, action: Arc<ActionConfig>, event: Arc<Event>) {
        let Some(limiter) = self.limits.get_mut(&action.name) else {
            self.send(action, event);
            return;
        };
        let check = event.check.clone();
        let already_held = limiter.holds(&check);
        match limiter.offer(&check, event, tokio::time::Instant::now().into_std()) {
            Some(release) => self.send(action, with_suppressed(release.item, release.suppressed)),
            // Once per hold, not once per event of a flood.
            None if already_held => {}
            None => info!(
                message = "Action held back by its rate limit; the latest event goes out when it allows.",
                action = %action.name,
                check = %check,
            ),
        }
    }

    /// Sends the events rate limits held back, as far as they now allow.
    /// Checked with the flush, once a second.
    pub fn release_held(&mut self) {
        let now = tokio::time::Instant::now().into_std();
        let mut released = Vec::new();
        for (name, limiter) in &mut self.limits {
            if limiter.next_release().is_some_and(|at| at <= now) {
                released.extend(limiter.release(now).into_iter().map(|r| (name.clone(), r)));
            }
        }
        for (name, release) in released {
            let Some(action) = self.by_name.get(&name).cloned() else { continue };
            self.send(action, with_suppressed(release.item, release.suppressed));
        }
        self.start();
    }

    /// A notifier's event goes to the delivery queue, a command's to the pool.
    fn send(&mut self, action: Arc<ActionConfig>, event: Arc<Event>) {
        if action.kind.is_notifier() {
            self.deliveries.submit(&action.name, Arc::unwrap_or_clone(event));
            return;
        }
        self.push(Queued { action, event, generation: 0 });
    }

    /// Queues a run, dropping the oldest when the queue is full. A dropped
    /// collect is reported as ended, so events waiting for it go out.
    fn push(&mut self, queued: Queued) {
        if self.queue.len() == QUEUE_LIMIT
            && let Some(dropped) = self.queue.pop_front()
        {
            self.dropped += 1;
            warn!(
                message = "Action queue full; the oldest queued run was dropped.",
                action = %dropped.action.name,
                dropped_total = self.dropped,
            );
            if matches!(dropped.action.kind, ActionKind::Collect(_)) {
                let ran = Ran::Collect { generation: dropped.generation, collected: None };
                let done = ActionDone { action: dropped.action, event: dropped.event, ran };
                let _ = self.done_tx.send(done);
            }
        }
        self.queue.push_back(queued);
    }

    /// Starts queued runs while the pool has room.
    pub fn start(&mut self) {
        while self.running < MAX_RUNNING {
            let Some(Queued { action, event, generation }) = self.queue.pop_front() else { break };
            let done = self.done_tx.clone();
            match &action.kind {
                ActionKind::Command(command) => {
                    let command = command.clone();
                    let runner = self.runner.clone();
                    tokio::spawn(async move {
                        let env = event.env();
                        let json = serde_json::to_vec(&*event).unwrap_or_default();
                        let input = RunInput { env: &env, stdin: Some(&json) };
                        let result = runner.run_with_input(&command, action.timeout, input).await;
                        let _ = done.send(ActionDone { action, event, ran: Ran::Command(result) });
                    });
                }
                ActionKind::Collect(collect) => {
                    let collect = collect.clone();
                    tokio::spawn(async move {
                        let collected = run_collect(&action, &collect, &event).await;
                        let ran = Ran::Collect { generation, collected: Some(collected) };
                        let _ = done.send(ActionDone { action, event, ran });
                    });
                }
                ActionKind::Webhook(_) | ActionKind::Email(_) => continue,
            }
            self.running += 1;
        }
    }

    /// Books a finished run: logs it, frees its slot, starts the next one,
    /// and returns the record to keep with the check (for commands; a
    /// collect's output is kept by [`crate::collect`]).
    pub fn finish(&mut self, done: &ActionDone) -> Option<ActionRecord> {
        let (action, event) = (&done.action, &done.event);
        let result = match &done.ran {
            Ran::Command(result) => result,
            Ran::Collect { collected, .. } => {
                let Some(collected) = collected else { return None };
                self.running -= 1;
                info!(
                    message = "Collect ran.",
                    action = %action.name,
                    check = %event.check,
                    ended = %collected.ended,
                    bytes = collected.output.len(),
                    truncated = collected.truncated,
                );
                self.start();
                return None;
            }
        };
        self.running -= 1;
        let ok = result.state == State::Ok && !result.timed_out;
        if ok {
            info!(
                message = "Action ran.",
                action = %action.name,
                check = %event.check,
                event = event.kind.as_str(),
                summary = %result.summary,
            );
        } else {
            warn!(
                message = "Action failed.",
                action = %action.name,
                check = %event.check,
                event = event.kind.as_str(),
                exit_code = ?result.exit_code,
                summary = %result.summary,
            );
        }
        self.start();
        Some(ActionRecord {
            action: action.name.clone(),
            event: event.kind,
            at: SystemTime::now(),
            ok,
            exit_code: result.exit_code,
            summary: result.summary.clone(),
        })
    }

    /// Runs queued or running.
    pub fn busy(&self) -> usize {
        self.running + self.queue.len()
    }
}

/// Runs a collect action with the event of its moment and returns what it
/// gathered.
async fn run_collect(action: &ActionConfig, collect: &CollectConfig, event: &Event) -> Collected {
    // The output is the point, so the runner keeps as much as the action
    // may; stderr is capped lower by the runner itself.
    let runner =
        Runner::new(RunnerConfig { output_limit: collect.max_output, ..RunnerConfig::default() });
    let env = event.env();
    let json = serde_json::to_vec(event).unwrap_or_default();
    let started = SystemTime::now();
    let input = RunInput { env: &env, stdin: Some(&json) };
    let run = runner.capture(&collect.command, action.timeout, input).await;
    let dropped = run.stdout_truncated || run.stderr_truncated;
    let (output, truncated) = combine_output(&run.stdout, &run.stderr, collect.max_output, dropped);
    Collected {
        action: action.name.clone(),
        output,
        truncated,
        exit_code: match run.termination {
            Termination::Exited(code) => Some(code),
            _ => None,
        },
        ended: run.termination.describe(),
        at: started.duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs()),
        duration_ms: u64::try_from(run.duration.as_millis()).unwrap_or(u64::MAX),
    }
}

/// `event` with the count of events a rate limit kept back before it.
fn with_suppressed(event: Arc<Event>, suppressed: u64) -> Arc<Event> {
    if suppressed == 0 {
        return event;
    }
    let mut event = Arc::unwrap_or_clone(event);
    event.suppressed = suppressed;
    Arc::new(event)
}
