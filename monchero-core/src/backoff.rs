//! Retry delays: exponential backoff with jitter.
//!
//! Anything the agent sends somewhere (a webhook, a mail, a batch of
//! results) is retried when it fails, and thousands of agents whose server
//! went away must not come back in lockstep when it returns. So each retry
//! waits twice as long as the one before, up to a cap, and a random part of
//! that wait spreads the fleet out ("equal jitter": half the delay is fixed,
//! half is random, so a retry never comes sooner than half the backoff).
//!
//! Pure: the caller supplies the random number, so tests are exact and this
//! module needs no source of randomness.
//!
//! ```
//! use std::time::Duration;
//! use monchero_core::backoff::Backoff;
//!
//! let backoff = Backoff::new(Duration::from_secs(10), Duration::from_secs(3600));
//! // The third retry waits between 20 s and 40 s.
//! assert_eq!(backoff.delay(3, 0.0), Duration::from_secs(20));
//! assert_eq!(backoff.delay(3, 0.5), Duration::from_secs(30));
//! // Far out, the cap holds.
//! assert_eq!(backoff.delay(40, 1.0), Duration::from_secs(3600));
//! ```

use std::time::Duration;

/// An exponential backoff policy: `base`, doubled per attempt, capped at
/// `max`, with equal jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    base: Duration,
    max: Duration,
}

impl Backoff {
    /// A policy whose first retry waits about `base` and no retry waits
    /// more than `max` (`max` below `base` is taken as `base`).
    pub const fn new(base: Duration, max: Duration) -> Backoff {
        let max = if max.as_nanos() < base.as_nanos() { base } else { max };
        Backoff { base, max }
    }

    /// The wait before retry number `attempt` (1 for the first retry; 0 is
    /// taken as 1). `random` is a uniform number in `[0, 1]` (values outside
    /// are clamped); the wait is `d/2 + random·d/2` for the capped
    /// exponential delay `d = min(max, base·2^(attempt−1))`.
    pub fn delay(&self, attempt: u32, random: f64) -> Duration {
        let full = self.ceiling(attempt);
        let random = if random.is_nan() { 0.0 } else { random.clamp(0.0, 1.0) };
        full / 2 + full.mul_f64(random) / 2
    }

    /// The delay before jitter for retry number `attempt`: the longest wait
    /// [`delay`](Self::delay) can return for it.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(63);
        self.base
            .checked_mul(1u32.checked_shl(doublings).unwrap_or(u32::MAX))
            .map_or(self.max, |d| d.min(self.max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn doubles_per_attempt_up_to_the_cap() {
        let backoff = Backoff::new(SEC, 100 * SEC);
        let ceilings: Vec<_> = (0..10).map(|a| backoff.ceiling(a).as_secs()).collect();
        assert_eq!(ceilings, [1, 1, 2, 4, 8, 16, 32, 64, 100, 100]);
        assert_eq!(backoff.ceiling(u32::MAX), 100 * SEC);
    }

    #[test]
    fn jitter_stays_between_half_and_all_of_the_delay() {
        let backoff = Backoff::new(10 * SEC, 3600 * SEC);
        assert_eq!(backoff.delay(2, 0.0), 10 * SEC);
        assert_eq!(backoff.delay(2, 1.0), 20 * SEC);
        assert_eq!(backoff.delay(2, 7.0), 20 * SEC);
        assert_eq!(backoff.delay(2, -1.0), 10 * SEC);
        assert_eq!(backoff.delay(2, f64::NAN), 10 * SEC);
    }

    #[test]
    fn a_cap_below_the_base_is_the_base() {
        let backoff = Backoff::new(10 * SEC, SEC);
        assert_eq!(backoff.delay(5, 1.0), 10 * SEC);
    }
}
