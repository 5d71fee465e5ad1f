//! A spool directory holding a segment file of arbitrary bytes, opened and
//! read back as the push sender does after a crash or a disk error.
//!
//! The first byte chooses the setting: bit 0 re-signs every frame the bytes
//! hold (so the fuzzer reaches records with wild sequence numbers and times
//! instead of stopping at the CRC), bits 1-2 the segment's name (its first
//! sequence number), bits 3-4 the acknowledged-sequence file, bit 5 a
//! second segment with the same bytes. The rest is the segment.
//!
//! Beyond "no panic": every read makes progress (sequence numbers only
//! grow, so reading to the end terminates), damage is reported inside the
//! file, and a record appended afterwards is read back and acknowledged.
//!
//! Run with `cargo fuzz run spool -s none` (stable) from monchero-core/.

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use monchero_core::spool::{Spool, SpoolConfig, SpoolEvent};

const MAGIC: &[u8; 4] = b"MSR1";
const HEADER_LEN: usize = 28;

/// A directory of its own per process, on tmpfs when there is one: the
/// spool fsyncs, and a disk would make each run cost milliseconds.
fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let shm = PathBuf::from("/dev/shm");
        let base = if shm.is_dir() { shm } else { std::env::temp_dir() };
        base.join(format!("monchero-fuzz-spool-{}", std::process::id()))
    })
}

/// Recomputes the CRC of every frame whose magic and length fit in `bytes`.
fn resign(bytes: &mut [u8]) {
    let mut at = 0;
    while at + HEADER_LEN <= bytes.len() {
        if &bytes[at..at + 4] == MAGIC {
            let mut len = [0; 4];
            len.copy_from_slice(&bytes[at + 4..at + 8]);
            let end = (at + HEADER_LEN).checked_add(u32::from_le_bytes(len) as usize);
            if let Some(end) = end.filter(|&end| end <= bytes.len()) {
                let mut hasher = crc32fast::Hasher::new();
                hasher.update(&bytes[at + 4..at + 24]);
                hasher.update(&bytes[at + HEADER_LEN..end]);
                bytes[at + 24..at + HEADER_LEN].copy_from_slice(&hasher.finalize().to_le_bytes());
                at = end;
                continue;
            }
        }
        at += 1;
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let mut segment = rest.to_vec();
    if flags & 1 != 0 {
        resign(&mut segment);
    }
    let first_seq: u64 = match (flags >> 1) & 3 {
        0 => 1,
        1 => 2,
        2 => 1 << 40,
        _ => u64::MAX,
    };
    let acked = match (flags >> 3) & 3 {
        0 => None,
        1 => Some("0\n".to_owned()),
        2 => Some(format!("{}\n", u64::MAX)),
        _ => Some("seven\n".to_owned()),
    };

    let dir = dir();
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("the fuzz directory");
    std::fs::write(dir.join(format!("{first_seq:020}.seg")), &segment).expect("a segment");
    if flags & 32 != 0 {
        let second = first_seq.saturating_add(3);
        std::fs::write(dir.join(format!("{second:020}.seg")), &segment).expect("a segment");
    }
    if let Some(acked) = acked {
        std::fs::write(dir.join("acked"), acked).expect("the acked file");
    }

    let mut spool = match Spool::open(dir, SpoolConfig::with_max_bytes(1 << 20)) {
        Ok(spool) => spool,
        Err(error) => {
            assert!(!error.to_string().is_empty());
            return;
        }
    };
    let mut after = spool.acked();
    // Each read returns at least one record past `after` or nothing, so
    // the records in the bytes bound the number of reads.
    let most_reads = 2 * (segment.len() / HEADER_LEN + 2);
    let mut reads = 0;
    loop {
        reads += 1;
        assert!(reads <= most_reads, "reading the spool does not end");
        let records = match spool.read(after, 7) {
            Ok(records) => records,
            Err(error) => {
                assert!(!error.to_string().is_empty());
                return;
            }
        };
        let Some(last) = records.last() else { break };
        for record in &records {
            assert!(record.seq > after, "read went backwards: {} after {after}", record.seq);
            after = record.seq;
        }
        assert_eq!(after, last.seq);
    }
    for event in spool.take_events() {
        assert!(!event.to_string().is_empty());
        if let SpoolEvent::Damaged { offset, skipped, .. } = event {
            assert!(offset + skipped <= segment.len() as u64, "damage past the end");
        }
    }

    let stats = spool.stats();
    let Ok(seq) = spool.append(b"{\"type\":\"heartbeat\"}") else {
        return;
    };
    assert_eq!(seq, stats.next_seq);
    if spool.flush().is_err() {
        return;
    }
    let Ok(records) = spool.read(after.max(spool.acked()), usize::MAX) else {
        return;
    };
    assert_eq!(records.last().map(|record| record.seq), Some(seq), "the appended record is lost");
    if spool.ack(seq).is_ok() {
        assert_eq!(spool.stats().unsent, 0);
    }
});
