//! The task that delivers one target's spool: every `interval` it sends
//! batches until nothing is unsent, and on failure waits as the answer or
//! the backoff says. It runs on the daemon's runtime but only awaits the
//! network and the spooler, so checks never wait for it.

use std::sync::mpsc::Sender;
use std::time::{Duration, SystemTime};

use monchero_core::backoff::Backoff;
use tokio::sync::{oneshot, watch};
use tracing::{info, warn};

use super::client::Outcome;
use super::spooler::Command;
use super::transport::Transport;

/// Retries start about a second apart and back off to five minutes.
const BACKOFF: Backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(300));

/// The sending side of a target's health.
#[derive(Debug, Clone, Default)]
pub struct SendHealth {
    pub last_success: Option<SystemTime>,
    pub last_error: Option<String>,
    pub last_error_at: Option<SystemTime>,
    /// Records the server rejected (one by one for the push protocol) or
    /// could never take, and that were dropped.
    pub rejected: u64,
}

/// One target's delivery loop.
#[derive(Debug)]
pub struct Delivery {
    pub name: String,
    pub transport: Transport,
    pub spooler: Sender<Command>,
    pub interval: Duration,
    pub batch_max: usize,
    pub health: watch::Sender<SendHealth>,
}

impl Delivery {
    /// Runs until the spooler is gone.
    pub async fn run(mut self) {
        let mut failures: u32 = 0;
        let mut batch_max = self.batch_max;
        loop {
            let (reply, answer) = oneshot::channel();
            if self.spooler.send(Command::Read { max: batch_max, reply }).is_err() {
                return;
            }
            let Ok(Some(batch)) = answer.await else {
                tokio::time::sleep(self.interval).await;
                continue;
            };
            let outcome = match self.transport.send(&batch).await {
                Outcome::Partly { acked, dropped, rest } => {
                    if let Some(seq) = acked {
                        let _ = self.spooler.send(Command::Ack(seq.min(batch.last)));
                    }
                    if dropped > 0 {
                        self.health.send_modify(|h| h.rejected += dropped);
                    }
                    *rest
                }
                outcome => outcome,
            };
            let wait = match outcome {
                Outcome::Acked(seq) => {
                    // A server cannot have stored what it was not sent: an
                    // ack beyond the batch must not drop unsent records.
                    let seq = seq.min(batch.last);
                    if failures > 0 {
                        info!(message = "Push delivers again.", target = %self.name);
                    }
                    failures = 0;
                    batch_max = self.batch_max;
                    let _ = self.spooler.send(Command::Ack(seq));
                    self.health.send_modify(|h| h.last_success = Some(SystemTime::now()));
                    // A server that stores less than it was sent is
                    // telling the agent to slow down.
                    if seq < batch.last { Some(self.interval) } else { None }
                }
                Outcome::Busy(retry_after) => {
                    failures += 1;
                    let wait =
                        retry_after.unwrap_or_else(|| BACKOFF.delay(failures, fastrand::f64()));
                    self.failed(
                        format!("server busy; retrying in {}", humantime::format_duration(wait)),
                        failures,
                    );
                    Some(wait)
                }
                Outcome::Rejected(said) if batch.count > 1 => {
                    // Halving finds the record the server cannot take
                    // without holding back the others for long.
                    batch_max = (batch.count / 2).max(1);
                    self.failed(format!("batch rejected ({said}); retrying in smaller batches"), 1);
                    None
                }
                Outcome::Rejected(said) => {
                    let _ = self.spooler.send(Command::Ack(batch.last));
                    self.health.send_modify(|h| h.rejected += 1);
                    warn!(message = "Push record rejected by the server and dropped.", target = %self.name, seq = batch.last, answer = %said);
                    None
                }
                Outcome::Refused(said) => {
                    failures += 1;
                    self.failed(format!("{said}; check the url, token or certificate"), failures);
                    Some(BACKOFF.delay(u32::MAX, fastrand::f64()))
                }
                Outcome::Failed(error) => {
                    failures += 1;
                    self.failed(error, failures);
                    Some(BACKOFF.delay(failures, fastrand::f64()))
                }
                // Transports never nest partial outcomes.
                Outcome::Partly { .. } => Some(self.interval),
            };
            if let Some(wait) = wait {
                tokio::time::sleep(wait).await;
            }
        }
    }

    /// Records an error; logs the first of a run of failures, not each.
    fn failed(&self, error: String, failures: u32) {
        if failures <= 1 {
            warn!(message = "Push failed; records stay in the spool and are retried.", target = %self.name, %error);
        }
        self.health.send_modify(|h| {
            h.last_error = Some(error);
            h.last_error_at = Some(SystemTime::now());
        });
    }
}
