//! A durable on-disk queue of records waiting to be sent: the push spool.
//!
//! Records are appended to segment files in one directory, each framed with
//! its length, sequence number, time and a CRC32 (see `frame`). Sequence
//! numbers start at 1 and only grow, across restarts: they are what a
//! receiver deduplicates on. The sender reads records after the last
//! acknowledged one, and [`Spool::ack`] persists how far the receiver has
//! accepted; segments whose records are all acknowledged are deleted.
//!
//! Durability is batched: [`Spool::append`] only encodes into memory,
//! [`Spool::flush`] writes what is buffered with one `write` (enough to
//! survive a SIGKILL), and [`Spool::sync`] also fsyncs (enough to survive
//! a power cut); [`Spool::read`] syncs first, so nothing is sent that a
//! crash could take back and reuse the sequence number of.
//!
//! The spool is bounded in bytes: past [`SpoolConfig::max_bytes`] the
//! oldest segment is deleted, and its unsent records are counted and
//! reported. Nothing read from disk is trusted: a damaged record (flipped
//! bytes, a length that makes no sense, a write cut short by SIGKILL) is
//! skipped and reported with its file and offset, never fatal. What the
//! caller should log is queued as [`SpoolEvent`]s ([`Spool::take_events`]);
//! the spool itself does no logging.
//!
//! Pure std I/O, no runtime: the agent gives each spool its own thread.
//!
//! ```
//! use monchero_core::spool::{Spool, SpoolConfig};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let mut spool = Spool::open(dir.path(), SpoolConfig::with_max_bytes(1 << 20)).unwrap();
//! assert_eq!(spool.append(b"{\"type\":\"heartbeat\"}").unwrap(), 1);
//! spool.append(b"{\"type\":\"heartbeat\"}").unwrap();
//! let batch = spool.read(0, 100).unwrap();
//! assert_eq!(batch.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2]);
//! spool.ack(2).unwrap();
//! assert_eq!(spool.stats().unsent, 0);
//! ```

mod acked;
mod error;
mod frame;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;

use std::collections::{HashSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub use error::{SpoolError, SpoolEvent};
use frame::Item;
pub use frame::{MAX_PAYLOAD, Record};

/// The name of the file holding the acknowledged sequence number.
const ACKED_FILE: &str = "acked";

/// How big a spool may grow and how it is cut into files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpoolConfig {
    /// The bound on all segments together; past it the oldest segment goes.
    pub max_bytes: u64,
    /// A segment is closed and a new one started once it reaches this size.
    pub segment_bytes: u64,
}

impl SpoolConfig {
    /// A bound of `max_bytes` in segments of a sixteenth of it (between
    /// 4 KiB and 1 MiB): eviction drops a small slice of the backlog at a
    /// time, and a read never loads more than one segment.
    pub fn with_max_bytes(max_bytes: u64) -> SpoolConfig {
        SpoolConfig { max_bytes, segment_bytes: (max_bytes / 16).clamp(4096, 1 << 20) }
    }
}

/// How the spool stands, for `status` and the self-check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SpoolStats {
    /// Records written and neither acknowledged nor evicted.
    pub unsent: u64,
    /// Bytes on disk and buffered, all segments together.
    pub bytes: u64,
    /// The highest acknowledged sequence number.
    pub acked: u64,
    /// The sequence number the next record gets.
    pub next_seq: u64,
    /// Unsent records dropped by the size bound since the spool was opened.
    pub evicted: u64,
    /// Damaged stretches met since the spool was opened.
    pub damaged: u64,
    /// When the oldest unsent record was appended, as far as the last read
    /// saw it; `None` when nothing is unsent or nothing was read yet.
    pub oldest_unsent: Option<SystemTime>,
}

/// One segment file. Its name is the lowest sequence number it may hold;
/// the next segment's name bounds its highest.
#[derive(Debug)]
struct Segment {
    path: PathBuf,
    first_seq: u64,
    /// On disk plus, for the last segment, what is buffered.
    bytes: u64,
}

/// Where the last read stopped, so the next one need not rescan.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    after: u64,
    segment: u64,
    offset: u64,
}

/// A spool directory, open for appending and reading. See the module docs.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    config: SpoolConfig,
    /// Oldest first; the last is the one appended to.
    segments: VecDeque<Segment>,
    file: File,
    /// The length of the current segment on disk.
    file_len: u64,
    /// Encoded records not written yet.
    buffer: Vec<u8>,
    buffered: u64,
    next_seq: u64,
    acked: u64,
    /// Written but not fsynced.
    unsynced: bool,
    cursor: Option<Cursor>,
    /// Damage already reported, so a retried read does not repeat it.
    reported: HashSet<(PathBuf, u64)>,
    events: Vec<SpoolEvent>,
    evicted: u64,
    damaged: u64,
    oldest_unsent: Option<SystemTime>,
}

impl Spool {
    /// Opens (or creates) the spool in `dir`. A last record cut short by a
    /// crash is cut off the file and reported; an unreadable acknowledged
    /// sequence is reported and taken as 0, so everything is sent again and
    /// the receiver drops the duplicates.
    pub fn open(dir: &Path, config: SpoolConfig) -> Result<Spool, SpoolError> {
        fs::create_dir_all(dir)
            .map_err(|source| SpoolError::CreateDir { path: dir.to_owned(), source })?;
        let mut events = Vec::new();
        let acked_path = dir.join(ACKED_FILE);
        let acked = match acked::read(&acked_path) {
            Ok(seq) => seq.unwrap_or(0),
            Err(error) => {
                events.push(SpoolEvent::AckedUnreadable {
                    path: acked_path,
                    cause: error.to_string(),
                });
                0
            }
        };
        let mut segments = list_segments(dir)?;
        let mut damaged = 0;
        let (next_seq, file_len) = match segments.back_mut() {
            Some(last) => {
                let (last_seq, len) = recover_tail(last, &mut events, &mut damaged)?;
                let next = last_seq.map_or(last.first_seq, |seq| seq.saturating_add(1));
                (next.max(acked.saturating_add(1)), len)
            }
            None => {
                let first_seq = acked.saturating_add(1);
                segments.push_back(Segment {
                    path: segment_path(dir, first_seq),
                    first_seq,
                    bytes: 0,
                });
                (first_seq, 0)
            }
        };
        let current = segments.back().map(|segment| segment.path.clone()).unwrap_or_default();
        let file = open_append(&current)?;
        sync_dir(dir)?;
        let mut spool = Spool {
            dir: dir.to_owned(),
            config,
            segments,
            file,
            file_len,
            buffer: Vec::new(),
            buffered: 0,
            next_seq,
            acked,
            unsynced: false,
            cursor: None,
            reported: HashSet::new(),
            events,
            evicted: 0,
            damaged,
            oldest_unsent: None,
        };
        spool.drop_acked();
        spool.enforce_bound();
        Ok(spool)
    }

    /// The directory the spool lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Queues `payload` in memory and returns its sequence number; nothing
    /// is written until [`flush`](Self::flush).
    pub fn append(&mut self, payload: &[u8]) -> Result<u64, SpoolError> {
        self.append_at(payload, SystemTime::now())
    }

    /// [`append`](Self::append) with the time to record for it.
    pub fn append_at(&mut self, payload: &[u8], at: SystemTime) -> Result<u64, SpoolError> {
        if payload.len() > MAX_PAYLOAD {
            return Err(SpoolError::TooLarge { len: payload.len() });
        }
        // Only damage gets a spool here (a segment named or a record or
        // `acked` file claiming the last numbers): refuse rather than wrap
        // around and hand the receiver numbers it has deduplicated away.
        if self.next_seq == u64::MAX {
            return Err(SpoolError::Exhausted { dir: self.dir.clone() });
        }
        let seq = self.next_seq;
        let before = self.buffer.len();
        frame::encode(&mut self.buffer, seq, at, payload);
        self.next_seq += 1;
        self.buffered += 1;
        if let Some(current) = self.segments.back_mut() {
            current.bytes += (self.buffer.len() - before) as u64;
        }
        Ok(seq)
    }

    /// Writes what is buffered (one `write`), then starts a new segment if
    /// the current one is full and evicts the oldest over the bound. On a
    /// write error (disk full) the buffered records are lost and counted in
    /// the error; the file is cut back to its last whole record.
    pub fn flush(&mut self) -> Result<(), SpoolError> {
        if !self.buffer.is_empty() {
            let written = self.file.write_all(&self.buffer);
            let lost = self.buffered;
            let len = self.buffer.len() as u64;
            self.buffer.clear();
            self.buffered = 0;
            if let Err(source) = written {
                // Best effort: a torn record at the end would otherwise be
                // reported as damage at the next start.
                let _ = self.file.set_len(self.file_len);
                // Never written, so never sent: the numbers can be reused.
                self.next_seq -= lost;
                if let Some(current) = self.segments.back_mut() {
                    current.bytes = self.file_len;
                }
                return Err(SpoolError::Write { path: self.current_path(), lost, source });
            }
            self.file_len += len;
            self.unsynced = true;
        }
        if self.file_len >= self.config.segment_bytes {
            self.rotate()?;
        }
        self.enforce_bound();
        Ok(())
    }

    /// [`flush`](Self::flush), then fsync: what was appended survives a
    /// power cut.
    pub fn sync(&mut self) -> Result<(), SpoolError> {
        self.flush()?;
        if self.unsynced {
            self.file
                .sync_data()
                .map_err(|source| SpoolError::Sync { path: self.current_path(), source })?;
            self.unsynced = false;
        }
        Ok(())
    }

    /// Up to `max_records` records (at least one if any) with a sequence
    /// number above `after`, oldest first, after syncing what is buffered.
    /// Damaged records are skipped and reported as events.
    pub fn read(&mut self, after: u64, max_records: usize) -> Result<Vec<Record>, SpoolError> {
        self.sync()?;
        let mut records = Vec::new();
        let (mut index, mut offset) = self.start_of(after);
        let mut last = after;
        while index < self.segments.len() && records.len() < max_records.max(1) {
            let path = self.segments[index].path.clone();
            let bytes = read_from(&path, offset)?;
            let mut end = offset;
            for item in frame::scan(&bytes, 0) {
                if records.len() >= max_records.max(1) {
                    break;
                }
                match item {
                    Item::Record { offset: at, record } => {
                        end = offset + (at + frame::HEADER_LEN + record.payload.len()) as u64;
                        if record.seq > last {
                            last = record.seq;
                            records.push(record);
                        }
                    }
                    Item::Damaged { offset: at, skipped, cause } => {
                        let at = offset + at as u64;
                        end = at + skipped as u64;
                        self.report(SpoolEvent::Damaged {
                            path: path.clone(),
                            offset: at,
                            skipped: skipped as u64,
                            cause,
                        });
                    }
                    Item::Truncated { offset: at } => {
                        let at = offset + at as u64;
                        end = offset + bytes.len() as u64;
                        self.report(SpoolEvent::Truncated { path: path.clone(), offset: at });
                    }
                }
            }
            if records.len() >= max_records.max(1) {
                let segment = self.segments[index].first_seq;
                self.cursor = Some(Cursor { after: last, segment, offset: end });
                break;
            }
            index += 1;
            offset = 0;
        }
        if after <= self.acked {
            self.oldest_unsent = records.first().map(|record| record.appended_at);
        }
        Ok(records)
    }

    /// Records that the receiver has everything up to `seq`: persists it
    /// and deletes the segments that hold nothing newer.
    pub fn ack(&mut self, seq: u64) -> Result<(), SpoolError> {
        let seq = seq.min(self.next_seq - 1);
        if seq <= self.acked {
            return Ok(());
        }
        let path = self.dir.join(ACKED_FILE);
        acked::write(&path, seq).map_err(|source| SpoolError::Ack { path, source })?;
        self.acked = seq;
        self.oldest_unsent = None;
        self.drop_acked();
        Ok(())
    }

    /// The highest acknowledged sequence number.
    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// How the spool stands.
    pub fn stats(&self) -> SpoolStats {
        let floor = self.segments.front().map_or(self.next_seq, |segment| segment.first_seq);
        let unsent = (self.next_seq - 1).saturating_sub(self.acked.max(floor.saturating_sub(1)));
        SpoolStats {
            unsent,
            bytes: self.segments.iter().map(|segment| segment.bytes).sum(),
            acked: self.acked,
            next_seq: self.next_seq,
            evicted: self.evicted,
            damaged: self.damaged,
            oldest_unsent: if unsent == 0 { None } else { self.oldest_unsent },
        }
    }

    /// What happened since the last call that the owner should log.
    pub fn take_events(&mut self) -> Vec<SpoolEvent> {
        std::mem::take(&mut self.events)
    }

    fn current_path(&self) -> PathBuf {
        self.segments.back().map(|segment| segment.path.clone()).unwrap_or_default()
    }

    /// The segment index and offset to read records after `after` from.
    fn start_of(&self, after: u64) -> (usize, u64) {
        if let Some(cursor) = self.cursor.filter(|cursor| cursor.after == after) {
            if let Some(index) = self.segments.iter().position(|s| s.first_seq == cursor.segment) {
                return (index, cursor.offset);
            }
        }
        let index =
            self.segments.iter().rposition(|segment| segment.first_seq <= after.saturating_add(1));
        (index.unwrap_or(0), 0)
    }

    fn report(&mut self, event: SpoolEvent) {
        let key = match &event {
            SpoolEvent::Damaged { path, offset, .. } | SpoolEvent::Truncated { path, offset } => {
                (path.clone(), *offset)
            }
            _ => return self.events.push(event),
        };
        if self.reported.insert(key) {
            self.damaged += 1;
            self.events.push(event);
        }
    }

    /// Closes the current segment (fsynced) and starts the next.
    fn rotate(&mut self) -> Result<(), SpoolError> {
        self.file
            .sync_data()
            .map_err(|source| SpoolError::Sync { path: self.current_path(), source })?;
        self.unsynced = false;
        let first_seq = self.next_seq;
        let path = segment_path(&self.dir, first_seq);
        self.file = open_append(&path)?;
        sync_dir(&self.dir)?;
        self.segments.push_back(Segment { path, first_seq, bytes: 0 });
        self.file_len = 0;
        Ok(())
    }

    /// Deletes closed segments whose records are all acknowledged.
    fn drop_acked(&mut self) {
        while self.segments.len() > 1 && self.segments[1].first_seq <= self.acked.saturating_add(1)
        {
            if let Some(segment) = self.segments.pop_front() {
                let _ = fs::remove_file(&segment.path);
            }
        }
    }

    /// Deletes the oldest closed segments while the spool is over its bound.
    fn enforce_bound(&mut self) {
        let mut total: u64 = self.segments.iter().map(|segment| segment.bytes).sum();
        while total > self.config.max_bytes && self.segments.len() > 1 {
            let Some(segment) = self.segments.pop_front() else { break };
            let next_first = self.segments.front().map_or(self.next_seq, |next| next.first_seq);
            let first = segment.first_seq.max(self.acked.saturating_add(1));
            let last = next_first.saturating_sub(1);
            let unsent = next_first.saturating_sub(first);
            total -= segment.bytes;
            let _ = fs::remove_file(&segment.path);
            if unsent > 0 {
                self.evicted += unsent;
                self.events.push(SpoolEvent::Evicted { path: segment.path, first, last, unsent });
            }
        }
    }
}

fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("{first_seq:020}.seg"))
}

/// The segment files of `dir`, oldest first. Other files are left alone.
fn list_segments(dir: &Path) -> Result<VecDeque<Segment>, SpoolError> {
    let read = |source| SpoolError::Read { path: dir.to_owned(), source };
    let mut segments = Vec::new();
    for entry in fs::read_dir(dir).map_err(read)? {
        let entry = entry.map_err(read)?;
        let name = entry.file_name();
        let Some(first_seq) = name
            .to_str()
            .and_then(|name| name.strip_suffix(".seg"))
            .and_then(|stem| stem.parse::<u64>().ok())
        else {
            continue;
        };
        let bytes = entry.metadata().map_err(read)?.len();
        segments.push(Segment { path: entry.path(), first_seq, bytes });
    }
    segments.sort_by_key(|segment| segment.first_seq);
    Ok(segments.into())
}

/// Scans the last segment after a start: returns its highest good sequence
/// number and its length once a damaged or cut-off tail has been cut off.
fn recover_tail(
    segment: &mut Segment,
    events: &mut Vec<SpoolEvent>,
    damaged: &mut u64,
) -> Result<(Option<u64>, u64), SpoolError> {
    let bytes = read_from(&segment.path, 0)?;
    let mut last_seq = None;
    let mut good_end = 0;
    let mut cut_short = false;
    for item in frame::scan(&bytes, 0) {
        // Damage in the middle is reported when it is read; only a bad
        // tail is cut here, so appends start on a clean boundary.
        match item {
            Item::Record { offset, record } => {
                good_end = offset + frame::HEADER_LEN + record.payload.len();
                // The highest, not the last: numbers must not be reused even
                // if the file holds records out of order.
                last_seq = last_seq.max(Some(record.seq));
                cut_short = false;
            }
            Item::Damaged { .. } => cut_short = false,
            Item::Truncated { .. } => cut_short = true,
        }
    }
    if good_end < bytes.len() {
        *damaged += 1;
        let (path, offset) = (segment.path.clone(), good_end as u64);
        events.push(if cut_short {
            SpoolEvent::Truncated { path, offset }
        } else {
            let skipped = (bytes.len() - good_end) as u64;
            SpoolEvent::Damaged { path, offset, skipped, cause: "damaged tail cut off" }
        });
        let file = OpenOptions::new()
            .write(true)
            .open(&segment.path)
            .map_err(|source| SpoolError::Open { path: segment.path.clone(), source })?;
        file.set_len(good_end as u64)
            .and_then(|()| file.sync_all())
            .map_err(|source| SpoolError::Write { path: segment.path.clone(), lost: 0, source })?;
    }
    segment.bytes = good_end as u64;
    Ok((last_seq, good_end as u64))
}

fn open_append(path: &Path) -> Result<File, SpoolError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| SpoolError::Open { path: path.to_owned(), source })
}

/// The bytes of `path` from `offset` to its length when opened: never
/// more, so a segment replaced by something endless (a device) cannot
/// exhaust memory.
fn read_from(path: &Path, offset: u64) -> Result<Vec<u8>, SpoolError> {
    let read = |source| SpoolError::Read { path: path.to_owned(), source };
    let mut file = File::open(path).map_err(read)?;
    let len = file.metadata().map_err(read)?.len();
    file.seek(SeekFrom::Start(offset)).map_err(read)?;
    let mut bytes = Vec::new();
    file.take(len.saturating_sub(offset)).read_to_end(&mut bytes).map_err(read)?;
    Ok(bytes)
}

fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(|source| SpoolError::Sync { path: dir.to_owned(), source })
}
