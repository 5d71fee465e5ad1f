//! When each check runs next: one timer queue for all checks.
//!
//! Pure bookkeeping, no clock and no runtime: the caller passes `now` in and
//! sleeps until [`Schedule::next_due`] itself. One binary heap serves every
//! check, so 1000 checks cost one timer in the runtime, not 1000.
//!
//! Three rules shape the times:
//! - **Spread:** a check's first run is offset into its interval by a
//!   stable hash of its name, so 1000 checks with the same interval do not
//!   all fire in the same second after a start, and a restart keeps each
//!   check's phase.
//! - **No drift:** regular runs happen at `anchor + k × interval`, computed
//!   from the planned time, never from when the previous run finished.
//! - **Overload is counted, not queued:** when a check's next slot has
//!   already passed (its run took longer than the interval, or the agent
//!   could not start it in time), the missed slots are skipped and counted
//!   rather than run back to back.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// The time of a check's first run after `start`: `start` plus a stable
/// offset within `interval` derived from the check's name.
pub fn first_run(start: Instant, interval: Duration, name: &str) -> Instant {
    let nanos = interval.as_nanos();
    if nanos == 0 {
        return start;
    }
    let offset = u128::from(fnv1a(name.as_bytes())) % nanos;
    // The offset is below `interval`, which is a Duration: it fits.
    start + Duration::from_nanos(u64::try_from(offset).unwrap_or(u64::MAX))
}

/// FNV-1a, 64 bit. std's `DefaultHasher` may change between Rust releases,
/// and a check's phase should survive an upgrade of the agent.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The next regular slot for a check anchored at `anchor`: the first
/// `anchor + k × interval` that is later than `planned`, skipping slots
/// already in the past at `now`. Returns the slot and how many slots were
/// skipped.
pub fn next_slot(
    anchor: Instant,
    interval: Duration,
    planned: Instant,
    now: Instant,
) -> (Instant, u64) {
    let interval_ns = interval.as_nanos().max(1);
    let slot_after = |t: Instant| -> u128 {
        // Index of the first slot strictly after t.
        t.checked_duration_since(anchor).map_or(0, |since| since.as_nanos() / interval_ns + 1)
    };
    let regular = slot_after(planned);
    // A slot equal to `now` is still runnable: not skipped.
    let first_runnable = now
        .checked_duration_since(anchor)
        .map_or(0, |since| since.as_nanos().div_ceil(interval_ns));
    let index = regular.max(first_runnable);
    let skipped = u64::try_from(index - regular).unwrap_or(u64::MAX);
    let offset = interval_ns.saturating_mul(index);
    let offset = Duration::from_nanos(u64::try_from(offset).unwrap_or(u64::MAX));
    (anchor + offset, skipped)
}

/// A queue of (due time, check) pairs.
///
/// Each check has at most one entry: the caller pushes a check again only
/// after its run has finished, which is what keeps two runs of the same
/// check from overlapping.
#[derive(Debug, Default, Clone)]
pub struct Schedule {
    queue: BinaryHeap<Reverse<(Instant, usize)>>,
}

impl Schedule {
    /// An empty schedule.
    pub fn new() -> Schedule {
        Schedule::default()
    }

    /// Plans check number `check` at `due`.
    pub fn push(&mut self, check: usize, due: Instant) {
        self.queue.push(Reverse((due, check)));
    }

    /// When the earliest planned run is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.queue.peek().map(|Reverse((due, _))| *due)
    }

    /// The earliest check due at or before `now`, with its planned time.
    pub fn pop_due(&mut self, now: Instant) -> Option<(usize, Instant)> {
        match self.queue.peek() {
            Some(Reverse((due, _))) if *due <= now => {
                self.queue.pop().map(|Reverse((due, check))| (check, due))
            }
            _ => None,
        }
    }

    /// Removes every planned run (for a config reload).
    pub fn clear(&mut self) {
        self.queue.clear();
    }

    /// How many checks are waiting.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether no check is waiting.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn first_runs_spread_over_the_interval_and_are_stable() {
        let start = Instant::now();
        let offsets: Vec<Duration> =
            (0..1000).map(|i| first_run(start, MIN, &format!("check-{i}")) - start).collect();
        assert!(offsets.iter().all(|offset| *offset < MIN));
        // No one-second bucket gets more than a few times its fair share (1000/60).
        let mut buckets = [0u32; 60];
        for offset in &offsets {
            buckets[offset.as_secs() as usize] += 1;
        }
        assert!(buckets.iter().all(|&n| n <= 40), "{buckets:?}");
        assert_eq!(first_run(start, MIN, "check-7") - start, offsets[7], "stable for a name");
        assert_eq!(first_run(start, Duration::ZERO, "x"), start);
    }

    #[test]
    fn the_hash_is_fixed_across_releases() {
        // FNV-1a test vector: a check's phase must not move on upgrade.
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn regular_slots_come_from_the_plan_not_the_finish_time() {
        let anchor = Instant::now();
        let planned = anchor + 3 * MIN;
        // The run finished 2 s late: the next slot is still anchor + 4 min.
        let (next, skipped) = next_slot(anchor, MIN, planned, planned + Duration::from_secs(2));
        assert_eq!(next, anchor + 4 * MIN);
        assert_eq!(skipped, 0);
    }

    #[test]
    fn slots_missed_under_overload_are_skipped_and_counted() {
        let anchor = Instant::now();
        let planned = anchor + MIN;
        // The run ended 150 s after it was planned: the slots at 2 and 3
        // minutes have passed.
        let now = planned + Duration::from_secs(150);
        let (next, skipped) = next_slot(anchor, MIN, planned, now);
        assert_eq!(next, anchor + 4 * MIN);
        assert_eq!(skipped, 2);
        // Exactly on a slot boundary, that slot is still taken.
        let (next, skipped) = next_slot(anchor, MIN, planned, anchor + 2 * MIN);
        assert_eq!((next, skipped), (anchor + 2 * MIN, 0));
    }

    #[test]
    fn returning_from_retries_lands_back_on_the_grid() {
        let anchor = Instant::now();
        // Planned slot long ago (retries in between); now is mid-interval.
        let now = anchor + 5 * MIN + Duration::from_secs(20);
        let (next, _) = next_slot(anchor, MIN, anchor + 5 * MIN, now);
        assert_eq!(next, anchor + 6 * MIN);
    }

    #[test]
    fn the_queue_hands_out_due_checks_in_time_order() {
        let now = Instant::now();
        let mut schedule = Schedule::new();
        schedule.push(2, now + Duration::from_secs(2));
        schedule.push(0, now);
        schedule.push(1, now + Duration::from_secs(1));
        assert_eq!(schedule.next_due(), Some(now));
        assert_eq!(schedule.pop_due(now + Duration::from_secs(1)), Some((0, now)));
        assert_eq!(
            schedule.pop_due(now + Duration::from_secs(1)),
            Some((1, now + Duration::from_secs(1)))
        );
        assert_eq!(schedule.pop_due(now + Duration::from_secs(1)), None);
        assert_eq!(schedule.len(), 1);
        schedule.clear();
        assert!(schedule.is_empty());
    }
}
