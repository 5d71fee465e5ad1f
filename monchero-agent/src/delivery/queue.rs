//! Pending deliveries on disk: one JSON file per delivery in
//! `STATE_DIR/deliveries/`, named by its id so a listing sorts oldest first.
//!
//! A delivery is saved before it is first attempted and rewritten after
//! each failed attempt; every write goes to a temp file that is synced and
//! renamed over the old one, then the directory is synced, so a SIGKILL or
//! power cut leaves the old version or the new one, never a torn file. One
//! file per delivery (rather than one journal) keeps a rewrite small and
//! means a corrupt file costs one delivery, not the queue: it is moved aside
//! with a `.corrupt` suffix and named in the log, never fatal.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::Delivery;

/// The state directory's subdirectory holding pending deliveries.
pub const DIR: &str = "deliveries";

/// The pending deliveries of one state directory.
#[derive(Debug, Clone)]
pub struct Queue {
    dir: PathBuf,
}

/// What [`Queue::open`] found.
#[derive(Debug, Default)]
pub struct Opened {
    /// Readable deliveries, oldest first.
    pub deliveries: Vec<Delivery>,
    /// Unreadable files, each moved aside: (new path, why it was unreadable).
    pub corrupt: Vec<(PathBuf, String)>,
}

impl Queue {
    /// The queue in `state_dir`, created if missing, and what it holds.
    /// Temp files of writes a crash interrupted are removed: the delivery
    /// they were writing either still has its previous complete file, or
    /// was never saved.
    pub fn open(state_dir: &Path) -> io::Result<(Queue, Opened)> {
        let dir = state_dir.join(DIR);
        fs::create_dir_all(&dir)?;
        let queue = Queue { dir };
        let mut opened = Opened::default();
        let mut names: Vec<String> = Vec::new();
        for entry in fs::read_dir(&queue.dir)? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if name.ends_with(".tmp") {
                let _ = fs::remove_file(queue.dir.join(&name));
            } else if name.ends_with(".json") {
                names.push(name);
            }
        }
        names.sort();
        for name in names {
            let path = queue.dir.join(&name);
            let decoded = fs::read(&path)
                .map_err(|error| error.to_string())
                .and_then(|bytes| Delivery::decode(&bytes));
            match decoded {
                Ok(delivery) => opened.deliveries.push(delivery),
                Err(cause) => {
                    let aside = path.with_extension("json.corrupt");
                    fs::rename(&path, &aside)?;
                    opened.corrupt.push((aside, cause));
                }
            }
        }
        Ok((queue, opened))
    }

    /// The file of delivery `id`.
    pub fn path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("{id:020}.json"))
    }

    /// Writes `delivery` atomically.
    pub fn save(&self, delivery: &Delivery) -> io::Result<()> {
        let bytes = serde_json::to_vec(delivery)?;
        let path = self.path(delivery.id);
        let tmp = path.with_extension("json.tmp");
        let written = (|| {
            let mut file = OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
            file.write_all(&bytes)?;
            file.sync_all()
        })();
        if let Err(error) = written {
            // A full disk must not leave a half-written temp file behind.
            let _ = fs::remove_file(&tmp);
            return Err(error);
        }
        fs::rename(&tmp, &path)?;
        File::open(&self.dir)?.sync_all()
    }

    /// Forgets delivery `id` (delivered, failed for good, or dropped).
    pub fn remove(&self, id: u64) -> io::Result<()> {
        match fs::remove_file(self.path(id)) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::delivery::tests::delivery;

    #[test]
    fn saved_deliveries_come_back_oldest_first_and_removed_ones_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let (queue, opened) = Queue::open(dir.path()).unwrap();
        assert!(opened.deliveries.is_empty());
        for id in [30, 10, 20] {
            queue.save(&delivery(id)).unwrap();
        }
        let mut retried = delivery(10);
        retried.attempts = 4;
        queue.save(&retried).unwrap();
        queue.remove(20).unwrap();
        queue.remove(99).unwrap();
        let (_, opened) = Queue::open(dir.path()).unwrap();
        let found: Vec<(u64, u32)> = opened.deliveries.iter().map(|d| (d.id, d.attempts)).collect();
        assert_eq!(found, [(10, 4), (30, 0)]);
        assert_eq!(opened.deliveries[0], retried);
    }

    #[test]
    fn a_corrupt_file_is_moved_aside_and_the_rest_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (queue, _) = Queue::open(dir.path()).unwrap();
        queue.save(&delivery(1)).unwrap();
        fs::write(queue.path(2), b"{\"version\":1,\"id\":").unwrap();
        fs::write(queue.path(3), b"{\"version\":99}").unwrap();
        // A write cut short by a crash.
        fs::write(queue.path(4).with_extension("json.tmp"), b"{\"ver").unwrap();
        let (_, opened) = Queue::open(dir.path()).unwrap();
        assert_eq!(opened.deliveries.iter().map(|d| d.id).collect::<Vec<_>>(), [1]);
        assert_eq!(opened.corrupt.len(), 2);
        let (aside, cause) = &opened.corrupt[0];
        assert!(aside.to_string_lossy().ends_with("00000000000000000002.json.corrupt"));
        assert_eq!(fs::read(aside).unwrap(), b"{\"version\":1,\"id\":", "kept for a post-mortem");
        assert!(cause.contains("EOF"), "{cause}");
        assert!(opened.corrupt[1].1.contains("format version 99"), "{:?}", opened.corrupt[1]);
        assert!(!queue.path(2).exists());
        assert!(!queue.path(4).with_extension("json.tmp").exists());
        let (_, again) = Queue::open(dir.path()).unwrap();
        assert!(again.corrupt.is_empty(), "moved aside once, not again");
    }

    #[test]
    fn a_failed_write_keeps_the_previous_version() {
        let dir = tempfile::tempdir().unwrap();
        let (queue, _) = Queue::open(dir.path()).unwrap();
        queue.save(&delivery(7)).unwrap();
        let before = fs::read(queue.path(7)).unwrap();
        fs::create_dir(queue.path(7).with_extension("json.tmp")).unwrap();
        let mut changed = delivery(7);
        changed.attempts = 9;
        assert!(queue.save(&changed).is_err());
        assert_eq!(fs::read(queue.path(7)).unwrap(), before);
    }
}
