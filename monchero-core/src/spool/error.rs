//! What can go wrong with a spool: errors that stop an operation, and
//! events that only need to be logged.

use std::io;
use std::path::PathBuf;

/// An operation on the spool failed; the spool stays usable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpoolError {
    /// The spool directory could not be created.
    #[error("cannot create the spool directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A segment could not be opened or created.
    #[error("cannot open spool segment {path}: {source}")]
    Open {
        /// The segment file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A segment or the directory could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Buffered records could not be written (a full disk, usually); they
    /// are lost.
    #[error("cannot write to spool segment {path}: {source}; {lost} records were lost")]
    Write {
        /// The segment file.
        path: PathBuf,
        /// Records that were buffered and are now dropped.
        lost: u64,
        /// Why.
        source: io::Error,
    },
    /// fsync failed: what was written may not survive a power cut.
    #[error("cannot sync {path} to disk: {source}")]
    Sync {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The acknowledged sequence number could not be saved; the records
    /// will be sent again after a restart and the receiver drops them.
    #[error("cannot save the acknowledged sequence number in {path}: {source}")]
    Ack {
        /// The `acked` file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Every sequence number is used: a damaged segment name, record or
    /// `acked` file claimed the last one. Nothing more can be spooled
    /// until the directory is moved aside; the agent then starts a new
    /// instance, numbered from 1, which receivers accept as new.
    #[error(
        "the spool in {dir} has used every sequence number (a damaged file claims the last one); \
         stop the agent and move the directory aside, and it starts a new numbering"
    )]
    Exhausted {
        /// The spool directory.
        dir: PathBuf,
    },
    /// A record larger than [`MAX_PAYLOAD`](super::MAX_PAYLOAD).
    #[error("a record of {len} bytes is larger than the spool takes (16 MiB)")]
    TooLarge {
        /// Its size.
        len: usize,
    },
}

/// Something the spool met that its owner should log; never an error.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpoolEvent {
    /// Bytes that are not a valid record were skipped.
    Damaged {
        /// The segment file.
        path: PathBuf,
        /// Where the damage starts, in bytes from the start of the file.
        offset: u64,
        /// How many bytes were skipped to the next good record (or the end).
        skipped: u64,
        /// What was wrong: bad magic, impossible length, checksum mismatch.
        cause: &'static str,
    },
    /// A segment ends inside a record: a write cut short by a crash.
    Truncated {
        /// The segment file.
        path: PathBuf,
        /// Where the cut-off record starts.
        offset: u64,
    },
    /// The size bound deleted a segment holding unsent records.
    Evicted {
        /// The deleted segment.
        path: PathBuf,
        /// The first unsent sequence number it held.
        first: u64,
        /// The last sequence number it could hold.
        last: u64,
        /// How many unsent records went with it (at most).
        unsent: u64,
    },
    /// The acknowledged sequence number was unreadable and taken as 0.
    AckedUnreadable {
        /// The `acked` file.
        path: PathBuf,
        /// Why.
        cause: String,
    },
}

impl std::fmt::Display for SpoolEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SpoolEvent::Damaged { path, offset, skipped, cause } => write!(
                f,
                "spool segment {}: damaged record at byte {offset} ({cause}); skipped {skipped} \
                 bytes to the next good record",
                path.display()
            ),
            SpoolEvent::Truncated { path, offset } => write!(
                f,
                "spool segment {}: the record at byte {offset} was cut short (the agent stopped \
                 while writing it); it was dropped",
                path.display()
            ),
            SpoolEvent::Evicted { path, first, last, unsent } => write!(
                f,
                "spool over its size limit (spool_max): deleted {} with {unsent} unsent records \
                 (seq {first} to {last})",
                path.display()
            ),
            SpoolEvent::AckedUnreadable { path, cause } => write!(
                f,
                "cannot read the acknowledged sequence number in {} ({cause}); everything in \
                 the spool is sent again and the receiver drops the duplicates",
                path.display()
            ),
        }
    }
}
