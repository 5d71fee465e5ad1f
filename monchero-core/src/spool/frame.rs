//! How one record is laid out in a segment file, and how a segment is read
//! back without trusting a single byte of it.
//!
//! ```text
//! magic "MSR1" | length u32 LE | seq u64 LE | appended_at u64 LE (ms) | crc32 u32 LE | payload
//! ```
//!
//! The CRC covers length, seq, time and payload, so a flipped bit anywhere in
//! a record is caught. The magic lets a reader that met a damaged record find
//! the next good one by scanning forward: a damaged length cannot send it
//! past records that are still intact.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The four bytes every record starts with.
pub(super) const MAGIC: [u8; 4] = *b"MSR1";

/// Bytes before the payload.
pub(super) const HEADER_LEN: usize = 28;

/// The largest payload a record may have. A length beyond it is damage,
/// never a reason to allocate.
pub const MAX_PAYLOAD: usize = 16 * 1024 * 1024;

/// One record as read back from a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its sequence number, unique and increasing within a spool.
    pub seq: u64,
    /// When it was appended (millisecond precision).
    pub appended_at: SystemTime,
    /// The bytes given to [`Spool::append`](super::Spool::append).
    pub payload: Vec<u8>,
}

/// Appends the frame of one record to `out`.
pub(super) fn encode(out: &mut Vec<u8>, seq: u64, appended_at: SystemTime, payload: &[u8]) {
    let millis = appended_at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let millis = u64::try_from(millis).unwrap_or(u64::MAX);
    // Payloads are bounded by MAX_PAYLOAD before they get here.
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&MAGIC);
    let start = out.len();
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&millis.to_le_bytes());
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&out[start..]);
    hasher.update(payload);
    out.extend_from_slice(&hasher.finalize().to_le_bytes());
    out.extend_from_slice(payload);
}

/// What [`decode`] found at an offset.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Decoded {
    /// A good record, `len` bytes long in the file.
    Record { record: Record, len: usize },
    /// The bytes end inside a record: a write cut short (SIGKILL, power
    /// loss) when at the end of the last segment.
    Truncated,
    /// Not a valid record: wrong magic, impossible length or bad checksum.
    Corrupt(&'static str),
}

/// Decodes the record at the start of `bytes` (which must not be empty).
pub(super) fn decode(bytes: &[u8]) -> Decoded {
    let Some(header) = bytes.get(..HEADER_LEN) else {
        // A short tail that is not even the start of a record is damage,
        // not a cut-off write.
        let prefix = &bytes[..bytes.len().min(MAGIC.len())];
        return if MAGIC.starts_with(prefix) {
            Decoded::Truncated
        } else {
            Decoded::Corrupt("bad magic")
        };
    };
    if header[..4] != MAGIC {
        return Decoded::Corrupt("bad magic");
    }
    let field = |at: usize| -> [u8; 8] {
        let mut buf = [0; 8];
        buf.copy_from_slice(&header[at..at + 8]);
        buf
    };
    let mut len_bytes = [0; 4];
    len_bytes.copy_from_slice(&header[4..8]);
    let len = u32::from_le_bytes(len_bytes) as usize;
    if len > MAX_PAYLOAD {
        return Decoded::Corrupt("impossible length");
    }
    let seq = u64::from_le_bytes(field(8));
    let millis = u64::from_le_bytes(field(16));
    let mut crc_bytes = [0; 4];
    crc_bytes.copy_from_slice(&header[24..28]);
    let Some(payload) = bytes.get(HEADER_LEN..HEADER_LEN + len) else {
        return Decoded::Truncated;
    };
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&header[4..24]);
    hasher.update(payload);
    if hasher.finalize() != u32::from_le_bytes(crc_bytes) {
        return Decoded::Corrupt("checksum mismatch");
    }
    let appended_at = UNIX_EPOCH + Duration::from_millis(millis);
    Decoded::Record {
        record: Record { seq, appended_at, payload: payload.to_vec() },
        len: HEADER_LEN + len,
    }
}

/// One thing a scan of a segment met.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Item {
    /// A good record at this offset.
    Record { offset: usize, record: Record },
    /// Damaged bytes from `offset`, `skipped` bytes long, up to the next
    /// good record or the end.
    Damaged { offset: usize, skipped: usize, cause: &'static str },
    /// The segment ends inside a record starting at `offset`.
    Truncated { offset: usize },
}

/// Every record of a segment's bytes from `offset` on, with the damage
/// between them. Never fails and never panics, whatever the bytes.
pub(super) fn scan(bytes: &[u8], mut offset: usize) -> Vec<Item> {
    let mut items = Vec::new();
    while offset < bytes.len() {
        match decode(&bytes[offset..]) {
            Decoded::Record { record, len } => {
                items.push(Item::Record { offset, record });
                offset += len;
            }
            Decoded::Truncated if next_good(bytes, offset + 1).is_none() => {
                items.push(Item::Truncated { offset });
                break;
            }
            Decoded::Truncated => {
                let next = next_good(bytes, offset + 1).unwrap_or(bytes.len());
                let cause = "length runs past the next record";
                items.push(Item::Damaged { offset, skipped: next - offset, cause });
                offset = next;
            }
            Decoded::Corrupt(cause) => {
                let next = next_good(bytes, offset + 1).unwrap_or(bytes.len());
                items.push(Item::Damaged { offset, skipped: next - offset, cause });
                offset = next;
            }
        }
    }
    items
}

/// The offset of the first good record at or after `from`.
fn next_good(bytes: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while at < bytes.len() {
        let found = bytes[at..].windows(MAGIC.len()).position(|window| window == MAGIC)?;
        at += found;
        if matches!(decode(&bytes[at..]), Decoded::Record { .. }) {
            return Some(at);
        }
        at += 1;
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frame(seq: u64, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode(&mut out, seq, UNIX_EPOCH + Duration::from_millis(1_700_000_000_123), payload);
        out
    }

    fn seqs(items: &[Item]) -> Vec<u64> {
        items
            .iter()
            .filter_map(|item| match item {
                Item::Record { record, .. } => Some(record.seq),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_record_round_trips_with_its_time() {
        let bytes = frame(7, b"{\"a\":1}");
        let Decoded::Record { record, len } = decode(&bytes) else { panic!() };
        assert_eq!(len, bytes.len());
        assert_eq!(record.seq, 7);
        assert_eq!(record.payload, b"{\"a\":1}");
        assert_eq!(record.appended_at, UNIX_EPOCH + Duration::from_millis(1_700_000_000_123));
    }

    #[test]
    fn every_flipped_byte_is_caught() {
        let good = frame(1, b"payload");
        for at in 0..good.len() {
            let mut bytes = good.clone();
            bytes[at] ^= 0x40;
            assert!(
                !matches!(decode(&bytes), Decoded::Record { .. }),
                "flip at byte {at} not detected"
            );
        }
    }

    #[test]
    fn a_damaged_record_is_skipped_and_the_next_found() {
        let mut bytes = frame(1, b"one");
        let second = bytes.len();
        bytes.extend(frame(2, b"two"));
        let third = bytes.len();
        bytes.extend(frame(3, b"three"));
        bytes[second + 5] ^= 0xff; // the length of record 2
        let items = scan(&bytes, 0);
        assert_eq!(seqs(&items), [1, 3]);
        assert_eq!(
            items[1],
            Item::Damaged {
                offset: second,
                skipped: third - second,
                cause: "length runs past the next record"
            }
        );
    }

    #[test]
    fn a_cut_off_tail_is_reported_as_truncated() {
        let mut bytes = frame(1, b"one");
        let second = bytes.len();
        bytes.extend(frame(2, b"two"));
        for cut in second + 1..bytes.len() {
            let items = scan(&bytes[..cut], 0);
            assert_eq!(seqs(&items), [1]);
            assert_eq!(items[1], Item::Truncated { offset: second }, "cut at {cut}");
        }
    }

    #[test]
    fn an_absurd_length_is_damage_not_an_allocation() {
        let mut bytes = frame(1, b"x");
        bytes[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(&bytes), Decoded::Corrupt("impossible length"));
    }

    proptest! {
        #[test]
        fn any_bytes_appended_never_panic_and_keep_the_good_records(
            garbage in proptest::collection::vec(any::<u8>(), 0..300),
            flip in any::<usize>(),
        ) {
            let mut bytes = frame(1, b"first");
            let good_len = bytes.len();
            bytes.extend(&garbage);
            let items = scan(&bytes, 0);
            prop_assert_eq!(seqs(&items).first().copied(), Some(1));
            // Damage anywhere, then a scan from any offset: no panic.
            let at = flip % bytes.len();
            bytes[at] ^= 0x01;
            let _ = scan(&bytes, flip % (bytes.len() + 1));
            prop_assert!(good_len <= bytes.len());
        }
    }
}
