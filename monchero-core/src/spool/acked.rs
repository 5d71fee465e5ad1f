//! The acknowledged sequence number on disk: one small text file replaced
//! atomically, so a crash leaves the old number or the new one.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

/// Reads the number in `path`: `Ok(None)` when the file does not exist,
/// `Err` with the cause when it exists but does not hold a number.
pub(super) fn read(path: &Path) -> io::Result<Option<u64>> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    text.trim().parse().map(Some).map_err(|_| {
        let shown: String = text.chars().take(40).collect();
        io::Error::new(io::ErrorKind::InvalidData, format!("not a sequence number: {shown:?}"))
    })
}

/// Replaces `path` with `seq`: temp file, fsync, rename, fsync of the
/// directory.
pub(super) fn write(path: &Path, seq: u64) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = File::create(&tmp)?;
    writeln!(file, "{seq}")?;
    file.sync_all()?;
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}
