//! The thread that owns one target's spool. All of the spool's file I/O
//! (writes, fsync, reads, compression of batches) happens here, so the
//! daemon's single-threaded loop only ever hands a record over a channel.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime};

use monchero_core::spool::{Spool, SpoolStats};
use tokio::sync::{oneshot, watch};
use tracing::{error, info, warn};

use super::batch::Batch;
use super::record;
use super::transport::Encoder;

/// How long an appended record may wait for fsync: the power-cut window.
const SYNC_EVERY: Duration = Duration::from_secs(1);

/// What the daemon and the sender ask of the spooler.
#[derive(Debug)]
pub enum Command {
    /// A record to append.
    Append(Arc<[u8]>),
    /// The next batch after the acknowledged sequence number, at most
    /// `max` records; `None` when nothing is unsent.
    Read { max: usize, reply: oneshot::Sender<Option<Batch>> },
    /// The receiver has everything up to this sequence number.
    Ack(u64),
    /// Sync and end the thread.
    Stop,
}

/// The spool side of a target's health.
#[derive(Debug, Clone, Default)]
pub struct SpoolHealth {
    pub stats: SpoolStats,
    /// Records lost because the spool could not be written.
    pub write_failed: u64,
    /// The last write or sync error, while it lasts.
    pub error: Option<String>,
}

/// One target's spool and what the thread keeps beside it.
#[derive(Debug)]
pub struct Spooler {
    pub name: String,
    pub spool: Spool,
    pub encoder: Encoder,
    pub heartbeat: Duration,
    pub started_at: SystemTime,
    pub health: watch::Sender<SpoolHealth>,
}

impl Spooler {
    /// Serves `commands` until `Stop` or until the daemon drops its end.
    pub fn run(mut self, commands: Receiver<Command>) {
        let mut state = State {
            last_append: Instant::now(),
            last_heartbeat: Instant::now(),
            last_sync: Instant::now(),
            appended: false,
            write_failed: 0,
            error: None,
        };
        self.log_events();
        loop {
            let mut stop = false;
            match commands.recv_timeout(SYNC_EVERY) {
                Ok(command) => {
                    stop = !self.handle(command, &mut state);
                    // Everything queued meanwhile goes out in one write.
                    while !stop {
                        let Ok(command) = commands.try_recv() else { break };
                        stop = !self.handle(command, &mut state);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => stop = true,
            }
            self.flush(&mut state);
            if stop || state.last_sync.elapsed() >= SYNC_EVERY {
                if let Err(error) = self.spool.sync() {
                    self.note(Err(error), &mut state);
                }
                state.last_sync = Instant::now();
                if !stop {
                    self.maybe_heartbeat(&mut state);
                }
            }
            self.log_events();
            self.publish(&state);
            if stop {
                break;
            }
        }
    }

    /// Handles one command; false for `Stop`.
    fn handle(&mut self, command: Command, state: &mut State) -> bool {
        match command {
            Command::Append(payload) => {
                state.last_append = Instant::now();
                state.appended = true;
                if let Err(error) = self.spool.append(&payload) {
                    state.write_failed += 1;
                    warn!(message = "Push record not spooled.", target = %self.name, %error);
                }
            }
            Command::Read { max, reply } => {
                self.flush(state);
                let batch = match self.spool.read(self.spool.acked(), max) {
                    Ok(records) => self.encoder.encode(&records),
                    Err(error) => {
                        self.note(Err(error), state);
                        None
                    }
                };
                // Damage met by the read is logged before its batch goes.
                self.log_events();
                let _ = reply.send(batch);
            }
            Command::Ack(seq) => {
                if let Err(error) = self.spool.ack(seq) {
                    self.note(Err(error), state);
                }
            }
            Command::Stop => return false,
        }
        true
    }

    /// Writes what was appended. Only a write of records shows the spool
    /// is writable again; an fsync with nothing written proves nothing.
    fn flush(&mut self, state: &mut State) {
        let appended = std::mem::take(&mut state.appended);
        let flushed = self.spool.flush();
        if flushed.is_err() || appended {
            self.note(flushed, state);
        }
    }

    /// A heartbeat once the target has been idle for `heartbeat`, only
    /// when nothing is waiting: during an outage one is enough. Targets
    /// with a steady heartbeat get one every `heartbeat` regardless.
    fn maybe_heartbeat(&mut self, state: &mut State) {
        let due = if self.encoder.steady_heartbeat() {
            state.last_heartbeat.elapsed() >= self.heartbeat
        } else {
            state.last_append.elapsed() >= self.heartbeat && self.spool.stats().unsent == 0
        };
        if !due {
            return;
        }
        let stats = self.spool.stats();
        let payload =
            record::heartbeat(SystemTime::now(), self.started_at, &stats, state.write_failed);
        state.last_append = Instant::now();
        state.last_heartbeat = state.last_append;
        state.appended = true;
        if let Err(error) = self.spool.append(&payload) {
            state.write_failed += 1;
            warn!(message = "Push heartbeat not spooled.", target = %self.name, %error);
        }
    }

    /// Counts and logs a failed write; logs once per distinct error, and
    /// once more when writing works again.
    fn note(&mut self, result: Result<(), monchero_core::spool::SpoolError>, state: &mut State) {
        match result {
            Ok(()) => {
                if state.error.take().is_some() {
                    info!(message = "Push spool writable again.", target = %self.name);
                }
            }
            Err(error) => {
                if let monchero_core::spool::SpoolError::Write { lost, .. } = &error {
                    state.write_failed += lost;
                }
                let text = error.to_string();
                if state.error.as_ref() != Some(&text) {
                    error!(message = "Push spool failure; checks go on, records may be lost.", target = %self.name, error = %text);
                }
                state.error = Some(text);
            }
        }
    }

    fn log_events(&mut self) {
        for event in self.spool.take_events() {
            warn!(message = "Push spool.", target = %self.name, event = %event);
        }
    }

    fn publish(&self, state: &State) {
        let health = SpoolHealth {
            stats: self.spool.stats(),
            write_failed: state.write_failed,
            error: state.error.clone(),
        };
        self.health.send_replace(health);
    }
}

/// What the loop keeps between commands.
#[derive(Debug)]
struct State {
    last_append: Instant,
    last_heartbeat: Instant,
    last_sync: Instant,
    /// Records were appended since the last flush.
    appended: bool,
    write_failed: u64,
    error: Option<String>,
}
