//! Durable delivery of notifications (webhook and email actions).
//!
//! Command actions run on the action pool; a notifier's event instead
//! becomes a [`Delivery`], saved in `STATE_DIR/deliveries/` ([`queue`])
//! *before* it is first attempted, retried with exponential backoff and
//! jitter ([`monchero_core::backoff::Backoff`]) until it is delivered, fails
//! for good (an HTTP 4xx other than 408 and 429, an SMTP 5xx) or is older
//! than its action's `retry_for`, and deleted then. A restarted agent
//! resumes what is on disk at once. Past [`MAX_PENDING`] pending deliveries
//! the oldest is dropped with a logged count: bounded, never memory or disk
//! without limit.
//!
//! The work runs in its own task, at most [`MAX_IN_FLIGHT`] attempts at a
//! time, and talks to the daemon over channels only: a slow or dead server
//! never delays a check. Each outcome comes back as a [`Report`], which the
//! daemon keeps as the check's last action record for `monchero status`.

pub mod email;
pub mod queue;
pub mod webhook;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use monchero_core::backoff::Backoff;
use monchero_core::event::{Event, EventKind};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until};
use tracing::{error, info, warn};

use crate::config::{ActionConfig, ActionKind};
use queue::Queue;

/// Pending deliveries kept at most; past it the oldest is dropped.
pub const MAX_PENDING: usize = 1000;
/// Attempts running at once.
pub const MAX_IN_FLIGHT: usize = 4;
/// Bumped when a delivery file's layout changes incompatibly.
const FORMAT_VERSION: u32 = 1;

/// One notification to deliver, as saved on disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub version: u32,
    /// Unique and increasing: the order deliveries were made in.
    pub id: u64,
    /// The action's name; its current definition is used for each attempt.
    pub action: String,
    #[serde(with = "crate::status_report::rfc3339_serde")]
    pub created: SystemTime,
    /// Failed attempts so far.
    pub attempts: u32,
    pub event: Event,
}

impl Delivery {
    /// A delivery file's content, or why it is unusable.
    pub fn decode(bytes: &[u8]) -> Result<Delivery, String> {
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|error| error.to_string())?;
        let version = value.get("version").and_then(serde_json::Value::as_u64);
        if version != Some(u64::from(FORMAT_VERSION)) {
            let found = version.map_or_else(|| "missing".to_owned(), |v| v.to_string());
            return Err(format!("format version {found} is not the supported {FORMAT_VERSION}"));
        }
        serde_json::from_value(value).map_err(|error| error.to_string())
    }
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// Accepted by the receiver.
    Delivered(String),
    /// Refused in a way retrying cannot fix.
    Permanent(String),
    /// Failed for now; retry, no sooner than `after` when the receiver said.
    Retry { summary: String, after: Option<Duration> },
}

/// An outcome for the daemon: the last action record of a check, and the
/// number of deliveries pending.
#[derive(Debug)]
pub struct Report {
    pub outcome: Option<Outcome>,
    pub pending: usize,
}

/// One attempt's outcome, for a check's last action record.
#[derive(Debug)]
pub struct Outcome {
    pub action: String,
    pub check: String,
    pub event: EventKind,
    pub ok: bool,
    pub summary: String,
}

#[derive(Debug)]
enum Message {
    Submit(Box<Delivery>),
    Configure(Vec<ActionConfig>),
}

/// The daemon's handle on the delivery task.
#[derive(Debug)]
pub struct Deliveries {
    tx: mpsc::UnboundedSender<Message>,
    queue: Queue,
    last_id: u64,
}

impl Deliveries {
    /// Opens the queue in `state_dir` (logging corrupt files it moves
    /// aside), resumes what it holds and starts the delivery task.
    pub fn start(
        state_dir: &Path,
        actions: &[ActionConfig],
        host: &str,
    ) -> anyhow::Result<(Deliveries, mpsc::UnboundedReceiver<Report>)> {
        let (queue, opened) = Queue::open(state_dir).with_context(|| {
            format!("cannot open the delivery queue in {}", state_dir.join(queue::DIR).display())
        })?;
        for (path, cause) in &opened.corrupt {
            error!(
                message = "A pending delivery was unreadable; it was moved aside and is not sent.",
                moved_to = %path.display(),
                cause = %cause,
            );
        }
        if !opened.deliveries.is_empty() {
            info!(message = "Resuming pending deliveries.", count = opened.deliveries.len());
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let (report_tx, report_rx) = mpsc::unbounded_channel();
        let now = Instant::now();
        let last_id = opened.deliveries.iter().map(|d| d.id).max().unwrap_or(0);
        let pending = opened
            .deliveries
            .into_iter()
            .map(|delivery| (delivery.id, Slot { delivery, due: now, running: false }))
            .collect();
        let mut worker = Worker {
            queue: queue.clone(),
            pending,
            notifiers: HashMap::new(),
            running: JoinSet::new(),
            tasks: HashMap::new(),
            reports: report_tx,
            rx,
            dropped: 0,
            host: host.to_owned(),
            limit: MAX_PENDING,
        };
        worker.configure(actions);
        worker.report(None);
        tokio::spawn(worker.run());
        Ok((Deliveries { tx, queue, last_id }, report_rx))
    }

    /// Saves a notification for `action` and hands it to the delivery
    /// task. The write is done here, by the daemon's loop, so it is on disk
    /// before the state that records the change is saved: a SIGKILL between
    /// the two may send it twice, never lose it. One small file per
    /// notification, and rate limits keep them few.
    pub fn submit(&mut self, action: &str, event: Event) {
        let created = SystemTime::now();
        let nanos = created.duration_since(UNIX_EPOCH).map_or(0, |since| since.as_nanos());
        let id = u64::try_from(nanos).unwrap_or(u64::MAX).max(self.last_id + 1);
        self.last_id = id;
        let delivery = Delivery {
            version: FORMAT_VERSION,
            id,
            action: action.to_owned(),
            created,
            attempts: 0,
            event,
        };
        if let Err(error) = self.queue.save(&delivery) {
            // Sending now is still better than not sending at all.
            error!(
                message = "Cannot save a delivery; it is attempted, but lost if the agent stops first.",
                path = %self.queue.path(id).display(),
                action = %action,
                %error,
            );
        }
        let _ = self.tx.send(Message::Submit(Box::new(delivery)));
    }

    /// Installs the actions of a (new) config; pending deliveries use the
    /// new definition of their action from their next attempt.
    pub fn configure(&self, actions: &[ActionConfig]) {
        let _ = self.tx.send(Message::Configure(actions.to_vec()));
    }
}

/// A notifier ready to send, built from its action's config.
#[derive(Debug)]
enum Notifier {
    Webhook(webhook::Webhook),
    Email(email::Mailer),
    /// Its client could not be built; attempts fail with this message.
    Broken(String),
}

impl Notifier {
    fn new(action: &ActionConfig, host: &str) -> Option<Notifier> {
        let notifier = match &action.kind {
            ActionKind::Command(_) | ActionKind::Collect(_) => return None,
            ActionKind::Webhook(config) => {
                match webhook::Webhook::new(config.clone(), action.timeout) {
                    Ok(webhook) => Notifier::Webhook(webhook),
                    Err(error) => Notifier::Broken(format!("{error:#}")),
                }
            }
            ActionKind::Email(config) => {
                Notifier::Email(email::Mailer::new(config.clone(), host, action.timeout))
            }
        };
        Some(notifier)
    }

    async fn send(&self, event: &Event) -> Attempt {
        match self {
            Notifier::Webhook(webhook) => webhook.send(event).await,
            Notifier::Email(mailer) => mailer.send(event).await,
            Notifier::Broken(message) => Attempt::Retry { summary: message.clone(), after: None },
        }
    }
}

#[derive(Debug)]
struct Slot {
    delivery: Delivery,
    due: Instant,
    running: bool,
}

#[derive(Debug)]
struct Worker {
    queue: Queue,
    pending: BTreeMap<u64, Slot>,
    notifiers: HashMap<String, (Arc<ActionConfig>, Arc<Notifier>)>,
    running: JoinSet<(u64, Attempt)>,
    /// Which delivery each running attempt is for, so a failed task's
    /// delivery is retried rather than stuck as running.
    tasks: HashMap<tokio::task::Id, u64>,
    reports: mpsc::UnboundedSender<Report>,
    rx: mpsc::UnboundedReceiver<Message>,
    dropped: u64,
    host: String,
    /// [`MAX_PENDING`], smaller in tests.
    limit: usize,
}

impl Worker {
    async fn run(mut self) {
        let far = Duration::from_secs(86400 * 365);
        loop {
            self.start_due();
            let next = if self.running.len() < MAX_IN_FLIGHT {
                self.pending.values().filter(|slot| !slot.running).map(|slot| slot.due).min()
            } else {
                None
            };
            let next = next.unwrap_or_else(|| Instant::now() + far);
            tokio::select! {
                message = self.rx.recv() => match message {
                    Some(Message::Submit(delivery)) => self.submit(*delivery).await,
                    Some(Message::Configure(actions)) => self.configure(&actions),
                    None => break,
                },
                Some(joined) = self.running.join_next_with_id(), if !self.running.is_empty() => {
                    match joined {
                        Ok((task, (id, attempt))) => {
                            self.tasks.remove(&task);
                            self.finish(id, attempt).await;
                        }
                        Err(error) => {
                            let id = self.tasks.remove(&error.id());
                            let summary = format!("the attempt failed unexpectedly: {error}");
                            if let Some(id) = id {
                                self.finish(id, Attempt::Retry { summary, after: None }).await;
                            }
                        }
                    }
                }
                () = sleep_until(next) => {}
            }
        }
    }

    fn configure(&mut self, actions: &[ActionConfig]) {
        self.notifiers = actions
            .iter()
            .filter_map(|action| {
                let notifier = Notifier::new(action, &self.host)?;
                Some((action.name.clone(), (Arc::new(action.clone()), Arc::new(notifier))))
            })
            .collect();
    }

    fn report(&self, outcome: Option<Outcome>) {
        let _ = self.reports.send(Report { outcome, pending: self.pending.len() });
    }

    /// Takes a saved delivery into the pending set, dropping the oldest
    /// one waiting when the set is full.
    async fn submit(&mut self, delivery: Delivery) {
        if self.pending.len() >= self.limit {
            let oldest = self.pending.iter().find(|(_, slot)| !slot.running).map(|(id, _)| *id);
            if let Some(id) = oldest {
                self.pending.remove(&id);
                self.remove_file(id).await;
                self.dropped += 1;
                warn!(
                    message = "Delivery queue full; the oldest pending delivery was dropped.",
                    limit = self.limit,
                    dropped_total = self.dropped,
                );
            }
        }
        let id = delivery.id;
        self.pending.insert(id, Slot { delivery, due: Instant::now(), running: false });
        self.report(None);
    }

    fn start_due(&mut self) {
        let now = Instant::now();
        let due: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, slot)| !slot.running && slot.due <= now)
            .map(|(id, _)| *id)
            .take(MAX_IN_FLIGHT.saturating_sub(self.running.len()))
            .collect();
        for id in due {
            let Some(slot) = self.pending.get_mut(&id) else { continue };
            slot.running = true;
            let notifier = self.notifiers.get(&slot.delivery.action).map(|(_, n)| n.clone());
            let event = slot.delivery.event.clone();
            let task = self.running.spawn(async move {
                let attempt = match notifier {
                    Some(notifier) => notifier.send(&event).await,
                    None => Attempt::Permanent(
                        "the action is no longer in the configuration".to_owned(),
                    ),
                };
                (id, attempt)
            });
            self.tasks.insert(task.id(), id);
        }
    }

    async fn finish(&mut self, id: u64, attempt: Attempt) {
        let Some(mut slot) = self.pending.remove(&id) else { return };
        let delivery = &mut slot.delivery;
        let event = &delivery.event;
        let (ok, summary, keep) = match attempt {
            Attempt::Delivered(summary) => {
                info!(
                    message = "Notification delivered.",
                    action = %delivery.action,
                    check = %event.check,
                    event = event.kind.as_str(),
                    %summary,
                );
                (true, summary, false)
            }
            Attempt::Permanent(summary) => {
                error!(
                    message = "Notification failed for good; it is not retried.",
                    action = %delivery.action,
                    check = %event.check,
                    event = event.kind.as_str(),
                    %summary,
                );
                (false, summary, false)
            }
            Attempt::Retry { summary, after } => {
                delivery.attempts += 1;
                let policy = self.notifiers.get(&delivery.action).map(|(action, _)| action.retry);
                let age = delivery.created.elapsed().unwrap_or_default();
                match policy {
                    Some(policy) if age < policy.give_up_after => {
                        let backoff = Backoff::new(policy.base, policy.max);
                        let wait = backoff
                            .delay(delivery.attempts, fastrand::f64())
                            .max(after.unwrap_or_default());
                        slot.due = Instant::now() + wait;
                        let summary = format!(
                            "{summary}; retry {} in {}",
                            delivery.attempts,
                            humantime::format_duration(Duration::from_secs(wait.as_secs().max(1)))
                        );
                        warn!(
                            message = "Notification failed; it will be retried.",
                            action = %delivery.action,
                            check = %event.check,
                            event = event.kind.as_str(),
                            %summary,
                        );
                        (false, summary, true)
                    }
                    _ => {
                        let summary = format!(
                            "{summary}; given up after {} attempts over {}",
                            delivery.attempts,
                            humantime::format_duration(Duration::from_secs(age.as_secs()))
                        );
                        error!(
                            message = "Notification given up.",
                            action = %delivery.action,
                            check = %event.check,
                            event = event.kind.as_str(),
                            %summary,
                        );
                        (false, summary, false)
                    }
                }
            }
        };
        let outcome = Outcome {
            action: delivery.action.clone(),
            check: delivery.event.check.clone(),
            event: delivery.event.kind,
            ok,
            summary,
        };
        if keep {
            slot.running = false;
            if let Err(error) = self.save(&slot.delivery).await {
                warn!(message = "Cannot save a delivery's retry count.", error = %format!("{error:#}"));
            }
            self.pending.insert(id, slot);
        } else {
            self.remove_file(id).await;
        }
        self.report(Some(outcome));
    }

    async fn save(&self, delivery: &Delivery) -> anyhow::Result<()> {
        let (queue, delivery) = (self.queue.clone(), delivery.clone());
        let path = queue.path(delivery.id);
        tokio::task::spawn_blocking(move || queue.save(&delivery))
            .await
            .context("the write was cancelled")?
            .with_context(|| format!("cannot write {}", path.display()))
    }

    async fn remove_file(&self, id: u64) {
        let queue = self.queue.clone();
        let removed = tokio::task::spawn_blocking(move || queue.remove(id)).await;
        if let Ok(Err(error)) = removed {
            // It would be sent again after a restart: worth a word.
            warn!(
                message = "Cannot delete a finished delivery.",
                path = %self.queue.path(id).display(),
                %error,
            );
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use monchero_core::State;
    use monchero_core::tracker::StateType;

    use super::*;

    #[test]
    fn past_its_limit_the_queue_drops_the_oldest_delivery() {
        let dir = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let (queue, _) = Queue::open(dir.path()).unwrap();
            let (reports, mut report_rx) = mpsc::unbounded_channel();
            let (_tx, rx) = mpsc::unbounded_channel();
            let mut worker = Worker {
                queue,
                pending: BTreeMap::new(),
                notifiers: HashMap::new(),
                running: JoinSet::new(),
                tasks: HashMap::new(),
                reports,
                rx,
                dropped: 0,
                host: "h1".into(),
                limit: 3,
            };
            for i in 0..5 {
                let mut saved = delivery(i + 1);
                saved.event.summary = format!("event {i}");
                worker.queue.save(&saved).unwrap();
                worker.submit(saved).await;
            }
            assert_eq!(worker.dropped, 2);
            assert_eq!(worker.pending.len(), 3);
            let mut last = None;
            while let Ok(report) = report_rx.try_recv() {
                last = Some(report.pending);
            }
            assert_eq!(last, Some(3), "the daemon hears the bounded count");
        });
        let (_, opened) = Queue::open(dir.path()).unwrap();
        let kept: Vec<&str> = opened.deliveries.iter().map(|d| d.event.summary.as_str()).collect();
        assert_eq!(kept, ["event 2", "event 3", "event 4"], "the newest are kept, on disk too");
    }

    #[test]
    fn a_delivery_file_of_another_format_is_refused() {
        let mut json = serde_json::to_value(delivery(5)).unwrap();
        let bytes = serde_json::to_vec(&json).unwrap();
        assert_eq!(Delivery::decode(&bytes).unwrap(), delivery(5));
        json["version"] = 2.into();
        let bytes = serde_json::to_vec(&json).unwrap();
        assert_eq!(
            Delivery::decode(&bytes).unwrap_err(),
            "format version 2 is not the supported 1"
        );
        assert!(Delivery::decode(b"garbage").unwrap_err().contains("expected value"));
    }

    /// A delivery with id `id` of a problem event.
    pub fn delivery(id: u64) -> Delivery {
        Delivery {
            version: FORMAT_VERSION,
            id,
            action: "hook".into(),
            created: UNIX_EPOCH + Duration::from_secs(1_795_788_000),
            attempts: 0,
            event: Event {
                kind: EventKind::Problem,
                check: "web".into(),
                host: "h1".into(),
                state: State::Critical,
                previous_state: State::Ok,
                state_type: StateType::Hard,
                attempt: 3,
                max_attempts: 3,
                summary: "down".into(),
                long_output: String::new(),
                perfdata: Vec::new(),
                percent_state_change: 0.0,
                timestamp: 1_795_788_000,
                suppressed: 2,
                collected: Vec::new(),
            },
        }
    }
}
