//! When each check runs next: one timer queue for all checks.
//!
//! Pure bookkeeping, no clock and no runtime: the caller passes `now` in and
//! sleeps until [`Schedule::next_due`] itself. One binary heap serves every
//! check, so 1000 checks cost one timer in the runtime, not 1000.
//!
//! Three rules shape the times:
//! - **Spread:** a check's first run is offset into a short start-up window
//!   and its regular runs into its interval, both by a stable hash of its
//!   name, so 1000 checks with the same interval do not all fire in the same
//!   second, and a restart keeps each check's phase.
//! - **No drift:** regular runs happen at `anchor + k × interval`, computed
//!   from the planned time, never from when the previous run finished.
//! - **Overload is counted, not queued:** when a check's next slot has
//!   already passed (its run took longer than the interval, or the agent
//!   could not start it in time), the missed slots are skipped and counted
//!   rather than run back to back.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// When a check runs after the agent starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Its first run: within `spread` of the start, so a fresh agent has a
    /// full picture within seconds even for checks with long intervals.
    pub first: Instant,
    /// The origin of its grid of regular runs, `anchor + k × interval`:
    /// offset within the whole interval, so steady-state runs are spread
    /// evenly rather than bunched into the start-up window.
    pub anchor: Instant,
}

/// The plan of a check called `name` for an agent started at `start`. Both
/// offsets come from a stable hash of the name, so a restart keeps each
/// check's phase.
pub fn plan(start: Instant, interval: Duration, spread: Duration, name: &str) -> Plan {
    let hash = fnv1a(name.as_bytes());
    Plan {
        first: start + offset(hash, interval.min(spread)),
        anchor: start + offset(hash, interval),
    }
}

/// `hash` reduced into `0..window`.
fn offset(hash: u64, window: Duration) -> Duration {
    let nanos = window.as_nanos();
    if nanos == 0 {
        return Duration::ZERO;
    }
    // Below `window`, which is a Duration: it fits.
    Duration::from_nanos(u64::try_from(u128::from(hash) % nanos).unwrap_or(u64::MAX))
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
    fn regular_runs_spread_over_the_interval_and_are_stable() {
        let start = Instant::now();
        let spread = Duration::from_secs(10);
        let plans: Vec<Plan> =
            (0..1000).map(|i| plan(start, MIN, spread, &format!("check-{i}"))).collect();
        assert!(plans.iter().all(|p| p.anchor - start < MIN && p.first - start < spread));
        // No one-second bucket gets more than a few times its fair share (1000/60).
        let mut buckets = [0u32; 60];
        for p in &plans {
            buckets[(p.anchor - start).as_secs() as usize] += 1;
        }
        assert!(buckets.iter().all(|&n| n <= 40), "{buckets:?}");
        assert_eq!(plan(start, MIN, spread, "check-7"), plans[7], "stable for a name");
    }

    #[test]
    fn first_runs_come_within_the_spread_or_the_interval() {
        let start = Instant::now();
        let p = plan(start, Duration::from_secs(3600), Duration::from_secs(10), "disk");
        assert!(p.first - start < Duration::from_secs(10));
        let short = plan(start, Duration::from_secs(2), Duration::from_secs(10), "disk");
        assert!(short.first - start < Duration::from_secs(2));
        let none = plan(start, Duration::ZERO, Duration::ZERO, "x");
        assert_eq!((none.first, none.anchor), (start, start));
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
