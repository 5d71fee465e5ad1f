//! Running actions on hard state changes and flapping events.
//!
//! The daemon hands every [`Event`] to [`Actions::dispatch`]; the actions
//! the check lists and whose `on` includes the event's trigger are queued
//! and run on a small pool, each under the plugin execution policy with the
//! event in its environment and as JSON on stdin. Runs report back over a
//! channel, so a slow or hanging action never delays checks or other
//! actions. The queue is bounded: past [`QUEUE_LIMIT`] the oldest runs are
//! dropped, counted and logged, never memory without limit.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::SystemTime;

use monchero_core::event::{Event, EventKind, Trigger};
use monchero_core::runner::{RunInput, Runner};
use monchero_core::{CheckResult, State};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::config::{ActionConfig, CheckConfig};

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

/// A finished action run, on its way back to the daemon.
#[derive(Debug)]
pub struct ActionDone {
    pub action: Arc<ActionConfig>,
    pub event: Arc<Event>,
    pub result: CheckResult,
}

#[derive(Debug)]
struct Queued {
    action: Arc<ActionConfig>,
    event: Arc<Event>,
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
}

impl Actions {
    /// An empty pool; results arrive on the returned receiver.
    pub fn new() -> (Actions, mpsc::UnboundedReceiver<ActionDone>) {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let actions = Actions {
            by_name: HashMap::new(),
            queue: VecDeque::new(),
            running: 0,
            dropped: 0,
            runner: Arc::new(Runner::default()),
            done_tx,
        };
        (actions, done_rx)
    }

    /// Installs the actions of a (new) config. Runs already queued keep the
    /// definition they were queued with.
    pub fn configure(&mut self, actions: &[ActionConfig]) {
        self.by_name =
            actions.iter().map(|action| (action.name.clone(), Arc::new(action.clone()))).collect();
    }

    /// Queues the check's actions that subscribe to `event`. While a check
    /// flaps, only the flapping events themselves go out, as in Nagios:
    /// a notification per flap is noise.
    pub fn dispatch(&mut self, check: &CheckConfig, event: Event, flapping: bool) {
        let is_flap_event =
            matches!(event.kind, EventKind::FlappingStart | EventKind::FlappingStop);
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
            let Some(action) = self.by_name.get(name) else { continue };
            if !action.on.contains(&trigger) {
                continue;
            }
            if self.queue.len() == QUEUE_LIMIT {
                self.queue.pop_front();
                self.dropped += 1;
                warn!(
                    message = "Action queue full; the oldest queued run was dropped.",
                    dropped_total = self.dropped,
                );
            }
            self.queue.push_back(Queued { action: action.clone(), event: event.clone() });
        }
        self.start();
    }

    /// Starts queued runs while the pool has room.
    pub fn start(&mut self) {
        while self.running < MAX_RUNNING {
            let Some(Queued { action, event }) = self.queue.pop_front() else { break };
            self.running += 1;
            let (runner, done) = (self.runner.clone(), self.done_tx.clone());
            tokio::spawn(async move {
                let env = event.env();
                let json = serde_json::to_vec(&*event).unwrap_or_default();
                let input = RunInput { env: &env, stdin: Some(&json) };
                let result = runner.run_with_input(&action.command, action.timeout, input).await;
                let _ = done.send(ActionDone { action, event, result });
            });
        }
    }

    /// Books a finished run: logs it, frees its slot, starts the next one,
    /// and returns the record to keep with the check.
    pub fn finish(&mut self, done: &ActionDone) -> ActionRecord {
        self.running -= 1;
        let (action, event, result) = (&done.action, &done.event, &done.result);
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
        ActionRecord {
            action: action.name.clone(),
            event: event.kind,
            at: SystemTime::now(),
            ok,
            exit_code: result.exit_code,
            summary: result.summary.clone(),
        }
    }

    /// Runs queued or running.
    pub fn busy(&self) -> usize {
        self.running + self.queue.len()
    }
}
