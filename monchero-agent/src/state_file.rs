//! The state of every check on disk, so it survives restarts and so
//! `monchero status` can answer when the daemon is not running.
//!
//! Writes are atomic (temp file, fsync, rename, fsync of the directory): a
//! SIGKILL or power cut at any moment leaves either the old file or the new
//! one, never a torn one. The daemon batches writes: a state change is on
//! disk within [`crate::daemon::FLUSH_EVERY`], results that changed no
//! state within [`crate::daemon::FLUSH_RESULTS_EVERY`], so 1000 results a
//! second do not mean 1000 writes a second. A file that cannot be read back is moved aside with
//! a timestamp and the agent starts fresh rather than refusing to run.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Context;
use monchero_core::State;
use monchero_core::tracker::{CheckState, StateType};
use serde::{Deserialize, Serialize};

use crate::actions::{ActionRecord, Planned};
use crate::collect::Collection;

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
    /// What collect actions gathered in the current problem, and events
    /// waiting for them; each output is capped by its action's
    /// `max_output`.
    #[serde(default, skip_serializing_if = "Collection::is_empty")]
    pub collection: Collection,
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
    /// The result's summary, cut to [`CHANGE_SUMMARY_LIMIT`].
    pub summary: String,
}

/// The most of a summary a change record keeps. The history holds up to
/// 2000 changes and is rewritten with the state; a plugin whose summary is
/// 64 KiB of noise made it 16 MiB in the soak test. A person reading the
/// history needs the first line's gist; the check's last result keeps it
/// whole.
pub const CHANGE_SUMMARY_LIMIT: usize = 256;

/// `text` cut to at most `limit` bytes on a character boundary, with an
/// ellipsis when it was cut.
pub fn brief(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_owned();
    }
    let end = (0..=limit.saturating_sub('…'.len_utf8()))
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    format!("{}…", &text[..end])
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
#[derive(Debug)]
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
        self.begin(snapshot)?.commit()
    }

    /// The first half of [`save`](Self::save): encodes the snapshot
    /// straight into a temporary file beside the state file, through the
    /// page cache, with no buffer the size of the state (a state of several
    /// megabytes, encoded into one buffer at every write, kept glibc's heap
    /// at its high-water mark). The daemon does this on its loop, where
    /// the snapshot lives, and [`PendingWrite::commit`] off it.
    pub fn begin(&self, snapshot: &Snapshot) -> anyhow::Result<PendingWrite> {
        let dir = self.path.parent().unwrap_or(Path::new(".")).to_owned();
        let tmp = self.path.with_extension("json.tmp");
        let written = (|| {
            let file = match create(&tmp) {
                // The state directory was removed under a running agent (a
                // cleanup script, a tmpfs remounted): make it again rather
                // than keep the state only in memory until a restart.
                Err(error) if error.kind() == io::ErrorKind::NotFound => {
                    fs::create_dir_all(&dir)?;
                    create(&tmp)?
                }
                opened => opened?,
            };
            let mut out = BufWriter::with_capacity(64 * 1024, file);
            serde_json::to_writer(&mut out, snapshot)?;
            out.into_inner().map_err(io::IntoInnerError::into_error)
        })();
        match written {
            Ok(file) => Ok(PendingWrite { file, tmp, dir, path: self.path.clone() }),
            Err(error) => {
                // A full disk must not leave a half-written temp file behind.
                let _ = fs::remove_file(&tmp);
                Err(error).with_context(|| format!("cannot write {}", self.path.display()))
            }
        }
    }
}

fn create(path: &Path) -> io::Result<File> {
    OpenOptions::new().write(true).create(true).truncate(true).open(path)
}

/// A state written to its temporary file, not yet in place.
#[derive(Debug)]
pub struct PendingWrite {
    file: File,
    tmp: PathBuf,
    dir: PathBuf,
    path: PathBuf,
}

impl PendingWrite {
    /// Makes the write durable and puts it in place: fsync of the file,
    /// rename over the state file, fsync of the directory. Slow on a busy
    /// disk, so the daemon runs it on a blocking thread.
    pub fn commit(self) -> anyhow::Result<()> {
        let committed = (|| {
            if let Err(error) = self.file.sync_all() {
                let _ = fs::remove_file(&self.tmp);
                return Err(error);
            }
            fs::rename(&self.tmp, &self.path)?;
            File::open(&self.dir)?.sync_all()
        })();
        committed.with_context(|| format!("cannot write {}", self.path.display()))
    }
}

/// The snapshot in `bytes`, refused when it is not JSON of this layout or
/// names another format version.
pub(crate) fn decode(bytes: &[u8]) -> anyhow::Result<Snapshot> {
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
            SavedCheck {
                max_attempts: 3,
                state,
                last_action: None,
                planned: BTreeMap::new(),
                collection: Default::default(),
            },
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
    fn a_state_directory_removed_under_the_agent_is_made_again() {
        let dir = tempfile::tempdir().unwrap();
        let state_dir = dir.path().join("state");
        let file = StateFile::new(&state_dir);
        file.save(&snapshot()).unwrap();
        fs::remove_dir_all(&state_dir).unwrap();
        file.save(&snapshot()).unwrap();
        assert!(matches!(file.load().unwrap(), Loaded::Snapshot(_)));
    }

    #[test]
    fn brief_cuts_on_a_character_boundary_with_an_ellipsis() {
        assert_eq!(brief("short", 256), "short");
        let cut = brief(&"é".repeat(300), 256);
        assert!(cut.len() <= 256 && cut.ends_with('…'), "{cut}");
        assert_eq!(cut.chars().filter(|&c| c == 'é').count(), 126);
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
