use std::fs;

use proptest::prelude::*;

use super::*;

fn small() -> SpoolConfig {
    SpoolConfig { max_bytes: 1 << 20, segment_bytes: 1024 }
}

fn payload(i: u64) -> Vec<u8> {
    format!("{{\"type\":\"result\",\"check\":\"c{i}\",\"summary\":\"{}\"}}", "x".repeat(40))
        .into_bytes()
}

fn fill(spool: &mut Spool, n: u64) {
    for i in 0..n {
        spool.append(&payload(i)).unwrap();
        spool.flush().unwrap();
    }
}

fn seqs(records: &[Record]) -> Vec<u64> {
    records.iter().map(|r| r.seq).collect()
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    files.sort();
    files
}

#[test]
fn sequence_numbers_continue_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), small()).unwrap();
    fill(&mut spool, 3);
    drop(spool);
    let mut spool = Spool::open(dir.path(), small()).unwrap();
    assert_eq!(spool.append(b"{}").unwrap(), 4);
    let all = spool.read(0, 100).unwrap();
    assert_eq!(seqs(&all), [1, 2, 3, 4]);
    assert_eq!(all[0].payload, payload(0));
    assert!(spool.take_events().is_empty());
}

#[test]
fn reads_are_batched_and_resume_where_they_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), small()).unwrap();
    fill(&mut spool, 50);
    assert!(segment_files(dir.path()).len() > 3, "the test needs several segments");
    let mut after = 0;
    let mut seen = Vec::new();
    loop {
        let batch = spool.read(after, 7).unwrap();
        if batch.is_empty() {
            break;
        }
        assert!(batch.len() <= 7);
        after = batch.last().unwrap().seq;
        seen.extend(seqs(&batch));
    }
    assert_eq!(seen, (1..=50).collect::<Vec<_>>());
    // A read from an arbitrary point (a retry after a failed send).
    assert_eq!(seqs(&spool.read(20, 3).unwrap()), [21, 22, 23]);
}

#[test]
fn acked_is_persisted_and_fully_acked_segments_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), small()).unwrap();
    fill(&mut spool, 50);
    let before = segment_files(dir.path()).len();
    spool.ack(40).unwrap();
    assert!(segment_files(dir.path()).len() < before);
    assert_eq!(spool.stats().unsent, 10);
    drop(spool);
    let mut spool = Spool::open(dir.path(), small()).unwrap();
    assert_eq!(spool.acked(), 40);
    assert_eq!(seqs(&spool.read(spool.acked(), 100).unwrap()), (41..=50).collect::<Vec<_>>());
    spool.ack(50).unwrap();
    assert_eq!(segment_files(dir.path()).len(), 1, "the current segment stays");
    drop(spool);
    // Everything acked and deleted: numbering still goes on.
    let mut spool = Spool::open(dir.path(), small()).unwrap();
    assert_eq!(spool.append(b"{}").unwrap(), 51);
}

#[test]
fn a_torn_last_record_is_cut_off_and_reported_with_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), small()).unwrap();
    fill(&mut spool, 3);
    drop(spool);
    let last = segment_files(dir.path()).pop().unwrap();
    let len = fs::metadata(&last).unwrap().len();
    let record_len = (frame::HEADER_LEN + payload(2).len()) as u64;
    // As a SIGKILL halfway through the third record's write leaves it.
    fs::OpenOptions::new().write(true).open(&last).unwrap().set_len(len - 10).unwrap();

    let mut spool = Spool::open(dir.path(), small()).unwrap();
    let events = spool.take_events();
    assert_eq!(events, [SpoolEvent::Truncated { path: last.clone(), offset: len - record_len }]);
    assert!(events[0].to_string().contains(&format!("{}: ", last.display())));
    assert_eq!(fs::metadata(&last).unwrap().len(), len - record_len);
    // The lost record's number is reused: it was never sent (reads sync
    // first, and this one was never complete).
    assert_eq!(spool.append(b"{}").unwrap(), 3);
    assert_eq!(seqs(&spool.read(0, 100).unwrap()), [1, 2, 3]);
}

#[test]
fn flipped_bytes_in_a_segment_skip_that_record_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), small()).unwrap();
    fill(&mut spool, 40);
    drop(spool);
    let first = segment_files(dir.path()).remove(0);
    let record_len = frame::HEADER_LEN + payload(0).len();
    let mut bytes = fs::read(&first).unwrap();
    let damaged_at = record_len + 40; // inside the second record's payload
    bytes[damaged_at] ^= 0xff;
    fs::write(&first, bytes).unwrap();

    let mut spool = Spool::open(dir.path(), small()).unwrap();
    let all = spool.read(0, 1000).unwrap();
    let expected: Vec<u64> = (1..=40).filter(|&s| s != 2).collect();
    assert_eq!(seqs(&all), expected);
    let events = spool.take_events();
    assert_eq!(
        events,
        [SpoolEvent::Damaged {
            path: first.clone(),
            offset: record_len as u64,
            skipped: record_len as u64,
            cause: "checksum mismatch",
        }]
    );
    assert_eq!(spool.stats().damaged, 1);
    // A retried read does not report the same damage again.
    spool.read(0, 1000).unwrap();
    assert!(spool.take_events().is_empty());
}

#[test]
fn a_garbage_segment_is_skipped_and_the_rest_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), small()).unwrap();
    fill(&mut spool, 40);
    drop(spool);
    let second = segment_files(dir.path()).remove(1);
    let len = fs::metadata(&second).unwrap().len() as usize;
    fs::write(&second, vec![0x5a; len]).unwrap();

    let mut spool = Spool::open(dir.path(), small()).unwrap();
    let all = spool.read(0, 1000).unwrap();
    assert!(all.len() < 40 && all.len() > 20, "got {}", all.len());
    assert_eq!(all.last().unwrap().seq, 40);
    let events = spool.take_events();
    assert!(
        matches!(&events[..], [SpoolEvent::Damaged { path, offset: 0, cause: "bad magic", .. }] if *path == second)
    );
}

#[test]
fn over_the_bound_the_oldest_segments_go_and_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let config = SpoolConfig { max_bytes: 8 * 1024, segment_bytes: 1024 };
    let mut spool = Spool::open(dir.path(), config).unwrap();
    fill(&mut spool, 500);
    let stats = spool.stats();
    assert!(stats.bytes <= 8 * 1024 + 1024, "bytes {}", stats.bytes);
    assert!(stats.evicted > 300, "evicted {}", stats.evicted);
    let events = spool.take_events();
    let evicted: u64 = events
        .iter()
        .map(|e| match e {
            SpoolEvent::Evicted { unsent, .. } => *unsent,
            other => panic!("unexpected {other}"),
        })
        .sum();
    assert_eq!(evicted, stats.evicted);
    // What is left is the newest, complete and in order.
    let left = spool.read(0, 1000).unwrap();
    assert_eq!(left.last().unwrap().seq, 500);
    assert_eq!(left.len() as u64, 500 - stats.evicted);
    assert_eq!(stats.unsent, 500 - stats.evicted);
    assert!(seqs(&left).windows(2).all(|w| w[1] == w[0] + 1));
}

#[test]
fn an_unreadable_acked_file_means_sending_everything_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), small()).unwrap();
    fill(&mut spool, 5);
    spool.ack(3).unwrap();
    drop(spool);
    fs::write(dir.path().join("acked"), "garbage\n").unwrap();
    let mut spool = Spool::open(dir.path(), small()).unwrap();
    let events = spool.take_events();
    assert!(matches!(&events[..], [SpoolEvent::AckedUnreadable { .. }]), "{events:?}");
    assert_eq!(spool.acked(), 0);
    assert_eq!(seqs(&spool.read(0, 100).unwrap()), [1, 2, 3, 4, 5]);
}

#[test]
fn the_oldest_unsent_time_is_known_after_a_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), small()).unwrap();
    let then = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
    spool.append_at(b"{}", then).unwrap();
    spool.append(b"{}").unwrap();
    spool.read(0, 1).unwrap();
    assert_eq!(spool.stats().oldest_unsent, Some(then));
    spool.ack(2).unwrap();
    assert_eq!(spool.stats().oldest_unsent, None);
}

#[test]
fn oversized_records_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), small()).unwrap();
    let error = spool.append(&vec![b' '; MAX_PAYLOAD + 1]).unwrap_err();
    assert!(matches!(error, SpoolError::TooLarge { .. }));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn any_bytes_appended_to_a_segment_never_panic_or_lose_earlier_records(
        garbage in proptest::collection::vec(any::<u8>(), 1..400),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), small()).unwrap();
        fill(&mut spool, 3);
        drop(spool);
        let last = segment_files(dir.path()).pop().unwrap();
        let mut file = fs::OpenOptions::new().append(true).open(&last).unwrap();
        file.write_all(&garbage).unwrap();
        drop(file);
        let mut spool = Spool::open(dir.path(), small()).unwrap();
        let records = spool.read(0, 100).unwrap();
        prop_assert_eq!(&seqs(&records)[..3], &[1, 2, 3]);
        let next = spool.append(b"{}").unwrap();
        prop_assert!(next > 3);
        let again = spool.read(3, 100).unwrap();
        prop_assert_eq!(again.last().map(|r| r.seq), Some(next));
    }
}

// Found by the `spool` fuzz target: a segment named for the last sequence
// number made the next append overflow.
#[test]
fn a_segment_claiming_the_last_sequence_number_refuses_appends() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(segment_path(dir.path(), u64::MAX), b"").unwrap();
    let mut spool = Spool::open(dir.path(), small()).unwrap();
    let error = spool.append(b"{}").unwrap_err();
    assert!(matches!(error, SpoolError::Exhausted { .. }), "{error}");
    assert!(error.to_string().contains("move the directory aside"), "{error}");
    assert_eq!(spool.read(0, 10).unwrap(), []);
}

// Found by the `spool` fuzz target: an `acked` file holding the largest
// number overflowed when the spool computed the next one.
#[test]
fn an_acked_file_claiming_the_last_sequence_number_opens() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(ACKED_FILE), format!("{}\n", u64::MAX)).unwrap();
    let mut spool = Spool::open(dir.path(), small()).unwrap();
    assert_eq!(spool.acked(), u64::MAX);
    assert!(matches!(spool.append(b"{}"), Err(SpoolError::Exhausted { .. })));
    assert_eq!(spool.stats().unsent, 0);
}

// Found by the `spool` fuzz target: a last segment holding records out of
// order made the next append reuse a number already read, so the record
// was never sent.
#[test]
fn numbering_continues_after_the_highest_record_of_the_last_segment() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = Vec::new();
    frame::encode(&mut bytes, 10, SystemTime::UNIX_EPOCH, b"{}");
    frame::encode(&mut bytes, 3, SystemTime::UNIX_EPOCH, b"{}");
    fs::write(segment_path(dir.path(), 1), bytes).unwrap();
    let mut spool = Spool::open(dir.path(), small()).unwrap();
    assert_eq!(spool.append(b"{}").unwrap(), 11);
    assert_eq!(seqs(&spool.read(0, 10).unwrap()), [10, 11]);
}
