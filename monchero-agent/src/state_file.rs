//! The state of every check on disk, so it survives restarts and so
//! `monchero status` can answer when the daemon is not running.
//!
//! Writes are atomic (temp file, fsync, rename, fsync of the directory): a
//! SIGKILL or power cut at any moment leaves either the old file or the new
//! one, never a torn one. The daemon batches writes (at most one per
//! [`crate::daemon::FLUSH_EVERY`]), so 1000 results a second do not mean
//! 1000 writes a second. A file that cannot be read back is moved aside with
//! a timestamp and the agent starts fresh rather than refusing to run.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Context;
use monchero_core::State;
use monchero_core::tracker::{CheckState, StateType};
use serde::{Deserialize, Serialize};

use crate::actions::{ActionRecord, Planned};

/// Bumped when the layout changes incompatibly.
const FORMAT_VERSION: u32 = 1;

/// How many state changes the history keeps for `status --changes`.
pub const CHANGE_LOG_LIMIT: usize = 2000;

/// The state file's content.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    pub version: u32,
    pub host: String,
    pub saved_at: SystemTime,
    pub agent_started: SystemTime,
    pub pid: u32,
    pub checks: BTreeMap<String, SavedCheck>,
    pub changes: VecDeque<ChangeRecord>,
    /// Notifications waiting in `STATE_DIR/deliveries/` to be delivered.
    #[serde(default)]
    pub deliveries_pending: usize,
}

/// One check as saved: its tracker state, the attempt limit in force and
/// the last action run for it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedCheck {
    pub max_attempts: u32,
    pub state: CheckState,
    #[serde(default)]
    pub last_action: Option<ActionRecord>,
    /// Delayed and repeating actions planned for the current problem.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub planned: BTreeMap<String, Planned>,
}

/// One state change (soft or hard), for the history an operator reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeRecord {
    #[serde(with = "crate::status_report::rfc3339_serde")]
    pub at: SystemTime,
    pub check: String,
    pub from: State,
    pub to: State,
    pub state_type: StateType,
    pub attempt: u32,
    pub max_attempts: u32,
    pub summary: String,
}

impl Snapshot {
    /// An empty snapshot for an agent starting now.
    pub fn new(host: String, now: SystemTime) -> Snapshot {
        Snapshot {
            version: FORMAT_VERSION,
            host,
            saved_at: now,
            agent_started: now,
            pid: std::process::id(),
            checks: BTreeMap::new(),
            changes: VecDeque::new(),
            deliveries_pending: 0,
        }
    }

    /// Appends to the change history, dropping the oldest beyond the limit.
    pub fn record_change(&mut self, change: ChangeRecord) {
        if self.changes.len() == CHANGE_LOG_LIMIT {
            self.changes.pop_front();
        }
        self.changes.push_back(change);
    }
}

/// The state file of one state directory.
#[derive(Debug, Clone)]
pub struct StateFile {
    path: PathBuf,
}

/// What [`StateFile::load`] found.
#[derive(Debug)]
pub enum Loaded {
    /// A good snapshot.
    Snapshot(Box<Snapshot>),
    /// No state file yet.
    Missing,
    /// The file was unreadable and has been moved to this path.
    MovedAside { to: PathBuf, cause: String },
}

impl StateFile {
    /// The state file in `state_dir`.
    pub fn new(state_dir: &Path) -> StateFile {
        StateFile { path: state_dir.join("state.json") }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the snapshot without touching anything (for `monchero status`).
    pub fn read(&self) -> anyhow::Result<Option<Snapshot>> {
        let bytes = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => {
                return Err(error).with_context(|| format!("cannot read {}", self.path.display()));
            }
        };
        decode(&bytes)
            .map(Some)
            .with_context(|| format!("{} is not a valid state file", self.path.display()))
    }

    /// Reads the snapshot for the daemon: a corrupt file is moved aside so
    /// the agent can start fresh, and the caller logs where it went.
    pub fn load(&self) -> anyhow::Result<Loaded> {
        let bytes = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Loaded::Missing),
            Err(error) => {
                return Err(error).with_context(|| format!("cannot read {}", self.path.display()));
            }
        };
        match decode(&bytes) {
            Ok(snapshot) => Ok(Loaded::Snapshot(Box::new(snapshot))),
            Err(cause) => {
                let to = self.aside_path(SystemTime::now());
                fs::rename(&self.path, &to).with_context(|| {
                    format!(
                        "cannot move the corrupt {} aside to {}",
                        self.path.display(),
                        to.display()
                    )
                })?;
                Ok(Loaded::MovedAside { to, cause: format!("{cause:#}") })
            }
        }
    }

    fn aside_path(&self, now: SystemTime) -> PathBuf {
        let stamp = humantime::format_rfc3339_seconds(now).to_string().replace(':', "");
        self.path.with_file_name(format!("state.json.corrupt-{stamp}"))
    }

    /// Writes the snapshot atomically.
    pub fn save(&self, snapshot: &Snapshot) -> anyhow::Result<()> {
        let json = serde_json::to_vec(snapshot).context("cannot encode the state")?;
        self.write_atomically(&json)
            .with_context(|| format!("cannot write {}", self.path.display()))
    }

    fn write_atomically(&self, bytes: &[u8]) -> io::Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let tmp = self.path.with_extension("json.tmp");
        let written = (|| {
            let mut file = OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
            file.write_all(bytes)?;
            file.sync_all()
        })();
        if let Err(error) = written {
            // A full disk must not leave a half-written temp file behind.
            let _ = fs::remove_file(&tmp);
            return Err(error);
        }
        fs::rename(&tmp, &self.path)?;
        File::open(dir)?.sync_all()
    }
}

fn decode(bytes: &[u8]) -> anyhow::Result<Snapshot> {
    let snapshot: Snapshot = serde_json::from_slice(bytes)?;
    anyhow::ensure!(
        snapshot.version == FORMAT_VERSION,
        "format version {} is not the supported {FORMAT_VERSION}",
        snapshot.version
    );
    Ok(snapshot)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn snapshot() -> Snapshot {
        let now = SystemTime::now();
        let mut snapshot = Snapshot::new("web1".into(), now);
        let mut state = CheckState::new(now);
        state.observe_state(&Default::default(), State::Critical, now);
        snapshot.checks.insert(
            "disk".into(),
            SavedCheck { max_attempts: 3, state, last_action: None, planned: BTreeMap::new() },
        );
        snapshot
    }

    #[test]
    fn saves_and_loads_back_the_same_state() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::new(dir.path());
        let original = snapshot();
        file.save(&original).unwrap();
        let Loaded::Snapshot(loaded) = file.load().unwrap() else { panic!("not loaded") };
        assert_eq!(loaded.host, "web1");
        assert_eq!(loaded.checks["disk"].state, original.checks["disk"].state);
        assert!(!dir.path().join("state.json.tmp").exists());
    }

    #[test]
    fn a_missing_file_is_a_fresh_start() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(StateFile::new(dir.path()).load().unwrap(), Loaded::Missing));
        assert!(StateFile::new(dir.path()).read().unwrap().is_none());
    }

    #[test]
    fn a_corrupt_file_is_moved_aside_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::new(dir.path());
        fs::write(file.path(), b"{\"version\":1,\"host\":").unwrap();
        assert!(file.read().unwrap_err().to_string().contains("is not a valid state file"));
        let Loaded::MovedAside { to, cause } = file.load().unwrap() else { panic!("not moved") };
        assert!(!file.path().exists());
        assert_eq!(fs::read(&to).unwrap(), b"{\"version\":1,\"host\":", "the bad file is kept");
        assert!(to.file_name().unwrap().to_str().unwrap().starts_with("state.json.corrupt-"));
        assert!(cause.contains("EOF"), "{cause}");
    }

    #[test]
    fn a_failed_write_keeps_the_previous_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::new(dir.path());
        file.save(&snapshot()).unwrap();
        let before = fs::read(file.path()).unwrap();
        // A directory where the temp file should go makes the write fail.
        fs::create_dir(dir.path().join("state.json.tmp")).unwrap();
        assert!(file.save(&Snapshot::new("other".into(), SystemTime::now())).is_err());
        assert_eq!(fs::read(file.path()).unwrap(), before);
    }

    #[test]
    fn the_change_log_is_bounded() {
        let mut snapshot = snapshot();
        let change = ChangeRecord {
            at: SystemTime::now(),
            check: "disk".into(),
            from: State::Ok,
            to: State::Critical,
            state_type: StateType::Soft,
            attempt: 1,
            max_attempts: 3,
            summary: String::new(),
        };
        for _ in 0..CHANGE_LOG_LIMIT + 5 {
            snapshot.record_change(change.clone());
        }
        assert_eq!(snapshot.changes.len(), CHANGE_LOG_LIMIT);
    }
}
