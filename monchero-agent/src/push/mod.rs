//! Push: durable delivery of results and state changes to central servers
//! (`[[push]]` targets), as `docs/push-protocol.md` specifies.
//!
//! Each target has a spool in `STATE_DIR/spool/NAME/` owned by a thread of
//! its own (`spooler`), and a delivery task (`sender`) that reads batches
//! from it, sends them and acknowledges what the server stored. What the
//! batches look like on the wire depends on the target's kind
//! (`transport`): the push protocol (`client`, `batch`), Icinga 2 check
//! results (`icinga2`) or Prometheus remote write (`remote_write`). The daemon only calls [`Push::record_result`], which hands records
//! to every target's spooler over a channel: a slow disk or a dead server
//! never reaches the check loop.

mod batch;
mod client;
mod icinga2;
mod record;
mod remote_write;
mod sender;
mod spooler;
mod transport;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use monchero_core::spool::{Spool, SpoolConfig};
use serde::Serialize;
use tokio::sync::watch;
use tracing::{error, info};

use crate::config::PushConfig;
use crate::state_file::ChangeRecord;
use monchero_core::tracker::CheckState;
use sender::{Delivery, SendHealth};
use spooler::{Command, SpoolHealth, Spooler};

/// A backlog older than this turns the self-check (`builtin:agent`)
/// WARNING: long enough to ride out a server restart or a short network
/// blip without noise, short enough that a silent outage is seen.
pub const BACKLOG_WARNING: Duration = Duration::from_secs(300);

/// How one target stands, for `status`.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct TargetHealth {
    /// The target's name.
    pub name: String,
    /// Its URL.
    pub url: String,
    /// Records waiting to be sent.
    pub queued: u64,
    /// When the oldest of them was recorded.
    #[serde(with = "opt_time")]
    pub oldest_unsent: Option<SystemTime>,
    /// When the server last stored a batch.
    #[serde(with = "opt_time")]
    pub last_success: Option<SystemTime>,
    /// The last failure, to send or to spool.
    pub last_error: Option<String>,
    /// When it happened.
    #[serde(with = "opt_time")]
    pub last_error_at: Option<SystemTime>,
    /// Unsent records dropped by the spool bound since the agent started.
    pub evicted: u64,
    /// Damaged spool records skipped since the agent started.
    pub damaged: u64,
    /// Records lost because the spool could not be written.
    pub write_failed: u64,
    /// Records the server rejected and that were dropped.
    pub rejected: u64,
}

/// The running push targets.
#[derive(Debug, Default)]
pub struct Push {
    configs: Vec<PushConfig>,
    targets: Vec<Target>,
}

#[derive(Debug)]
struct Target {
    name: String,
    url: String,
    spooler: mpsc::Sender<Command>,
    thread: Option<std::thread::JoinHandle<()>>,
    delivery: tokio::task::JoinHandle<()>,
    spool_health: watch::Receiver<SpoolHealth>,
    send_health: watch::Receiver<SendHealth>,
}

impl Push {
    /// Starts every target of `configs`. A target that cannot start (its
    /// spool directory cannot be created) is logged and left out; the
    /// agent and the other targets run on. Must run inside the runtime.
    pub fn start(configs: &[PushConfig], state_dir: &Path, started_at: SystemTime) -> Push {
        let mut targets = Vec::new();
        for config in configs {
            match Target::start(config, state_dir, started_at) {
                Ok(target) => {
                    info!(message = "Push target started.", target = %config.name, url = %config.url);
                    targets.push(target);
                }
                Err(error) => {
                    error!(message = "Push target not started; its records are not kept.", target = %config.name, error = format!("{error:#}"));
                }
            }
        }
        Push { configs: configs.to_vec(), targets }
    }

    /// Whether there is no target to record for.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// Records the result `state` has just observed, and the change it
    /// made if any (the result first, as it caused the change).
    pub fn record_result(
        &self,
        check: &str,
        state: &CheckState,
        max_attempts: u32,
        at: SystemTime,
        change: Option<&ChangeRecord>,
    ) {
        if let Some(payload) = record::result(check, state, max_attempts, at) {
            self.record(payload);
        }
        if let Some(payload) = change.and_then(record::change) {
            self.record(payload);
        }
    }

    /// Hands `payload` to every target.
    fn record(&self, payload: Vec<u8>) {
        let payload: Arc<[u8]> = payload.into();
        for target in &self.targets {
            let _ = target.spooler.send(Command::Append(payload.clone()));
        }
    }

    /// Each target's health.
    pub fn health(&self) -> Vec<TargetHealth> {
        self.targets.iter().map(Target::health).collect()
    }

    /// Targets whose oldest unsent record is older than
    /// [`BACKLOG_WARNING`]: (name, records queued, age), oldest first.
    pub fn old_backlogs(&self, now: SystemTime) -> Vec<(String, u64, Duration)> {
        let mut old: Vec<_> = self
            .health()
            .into_iter()
            .filter_map(|health| {
                let age = now.duration_since(health.oldest_unsent?).ok()?;
                (age > BACKLOG_WARNING).then_some((health.name, health.queued, age))
            })
            .collect();
        old.sort_by_key(|&(_, _, age)| std::cmp::Reverse(age));
        old
    }

    /// After a reload: restarts the targets if their configuration changed.
    pub fn reconfigure(
        &mut self,
        configs: &[PushConfig],
        state_dir: &Path,
        started_at: SystemTime,
    ) {
        if configs == self.configs.as_slice() {
            return;
        }
        self.stop();
        *self = Push::start(configs, state_dir, started_at);
    }

    /// Syncs every spool and stops the targets; what is unsent stays in the
    /// spools for the next start.
    pub fn stop(&mut self) {
        for target in &mut self.targets {
            target.delivery.abort();
            let _ = target.spooler.send(Command::Stop);
            if let Some(thread) = target.thread.take() {
                let _ = thread.join();
            }
        }
        self.targets.clear();
    }
}

impl Target {
    fn start(
        config: &PushConfig,
        state_dir: &Path,
        started_at: SystemTime,
    ) -> anyhow::Result<Target> {
        let dir = state_dir.join("spool").join(&config.name);
        let spool = Spool::open(&dir, SpoolConfig::with_max_bytes(config.spool_max))?;
        let instance = instance(&dir)?;
        let transport = transport::Transport::new(config)?;
        let (spool_tx, spool_health) = watch::channel(SpoolHealth::default());
        let (send_tx, send_health) = watch::channel(SendHealth::default());
        let (commands, receiver) = mpsc::channel();
        let spooler = Spooler {
            name: config.name.clone(),
            spool,
            encoder: transport::Encoder::new(config, instance),
            heartbeat: config.heartbeat,
            started_at,
            health: spool_tx,
        };
        let thread = std::thread::Builder::new()
            .name(format!("push-{}", config.name))
            .spawn(move || spooler.run(receiver))
            .context("cannot start the spool thread")?;
        let delivery = Delivery {
            name: config.name.clone(),
            transport,
            spooler: commands.clone(),
            interval: config.interval,
            batch_max: config.batch_max,
            health: send_tx,
        };
        let delivery = tokio::spawn(delivery.run());
        Ok(Target {
            name: config.name.clone(),
            url: config.url.to_string(),
            spooler: commands,
            thread: Some(thread),
            delivery,
            spool_health,
            send_health,
        })
    }

    fn health(&self) -> TargetHealth {
        let spool = self.spool_health.borrow().clone();
        let send = self.send_health.borrow().clone();
        let (last_error, last_error_at) = match (&spool.error, send.last_error) {
            (Some(error), _) => (Some(error.clone()), Some(SystemTime::now())),
            (None, error) => (error, send.last_error_at),
        };
        TargetHealth {
            name: self.name.clone(),
            url: self.url.clone(),
            queued: spool.stats.unsent,
            oldest_unsent: spool.stats.oldest_unsent,
            last_success: send.last_success,
            last_error,
            last_error_at,
            evicted: spool.stats.evicted,
            damaged: spool.stats.damaged,
            write_failed: spool.write_failed,
            rejected: send.rejected,
        }
    }
}

/// The instance id of the spool in `dir`: made once, with the spool's
/// sequence numbering, and kept beside it. A new spool (a wiped state
/// directory) starts numbering at 1 again, and its new instance id tells
/// the receiver that this is a new sequence, not duplicates.
fn instance(dir: &Path) -> anyhow::Result<String> {
    let path: PathBuf = dir.join("instance");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let id = text.trim();
        if id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()) {
            return Ok(id.to_owned());
        }
    }
    let id = format!("{:032x}", fastrand::u128(..));
    let tmp = dir.join("instance.tmp");
    std::fs::write(&tmp, format!("{id}\n"))
        .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
        .and_then(|()| std::fs::rename(&tmp, &path))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(id)
}

/// Optional times as RFC 3339 (or null) in `status --json`.
mod opt_time {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        time: &Option<SystemTime>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match time {
            Some(time) => serializer.collect_str(&humantime::format_rfc3339_seconds(*time)),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<SystemTime>, D::Error> {
        let text = Option::<String>::deserialize(deserializer)?;
        text.map(|text| humantime::parse_rfc3339(&text).map_err(serde::de::Error::custom))
            .transpose()
    }
}
