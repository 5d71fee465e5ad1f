//! Rate limiting with coalescing, per notifier action.
//!
//! A check that changes state a thousand times a minute must not send a
//! thousand mails. A [`Limiter`] lets at most `count` items out in any
//! window of `per` (a sliding window, so a burst at the end of one window
//! and the start of the next cannot double the rate). An item over the limit
//! is not lost without trace: the latest one of each key (each check) is
//! *held*, replacing the one held before, and the replaced ones are counted.
//! The held item goes out as soon as the window has room again, carrying the
//! count of items suppressed before it, so the receiver always learns the
//! final state and how much it did not see.
//!
//! Pure: time is passed in, so the policy is tested without sleeping.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// `count` per `per`, as in the config's `rate_limit = "20/10m"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Items let out per window; at least 1.
    pub count: u32,
    /// The window.
    pub per: Duration,
}

/// An item let out, with how many items of its key were suppressed since
/// the last one of that key went out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release<T> {
    /// The item.
    pub item: T,
    /// Items of the same key that were not let out before this one.
    pub suppressed: u64,
}

#[derive(Debug)]
struct Held<T> {
    item: T,
    /// Items replaced while held; the held one itself is not counted.
    replaced: u64,
}

/// A sliding-window rate limiter that holds back the latest item per key.
#[derive(Debug)]
pub struct Limiter<T> {
    rate: Rate,
    /// When the items of the current window went out, oldest first; never
    /// more than `rate.count`.
    sent: VecDeque<Instant>,
    held: BTreeMap<String, Held<T>>,
}

impl<T> Limiter<T> {
    /// A limiter with nothing sent yet. A `count` of 0 is taken as 1.
    pub fn new(rate: Rate) -> Limiter<T> {
        let rate = Rate { count: rate.count.max(1), per: rate.per };
        Limiter { rate, sent: VecDeque::new(), held: BTreeMap::new() }
    }

    /// The rate in force.
    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// Offers `item` of `key` at `now`: let out at once when the window has
    /// room (with the count of the key's items suppressed before it, a held
    /// one included), else held until [`release`](Self::release) finds room.
    pub fn offer(&mut self, key: &str, item: T, now: Instant) -> Option<Release<T>> {
        if self.try_take(now) {
            let suppressed = self.held.remove(key).map_or(0, |held| held.replaced + 1);
            return Some(Release { item, suppressed });
        }
        match self.held.get_mut(key) {
            Some(held) => {
                held.item = item;
                held.replaced += 1;
            }
            None => {
                self.held.insert(key.to_owned(), Held { item, replaced: 0 });
            }
        }
        None
    }

    /// The held items the window has room for at `now`.
    pub fn release(&mut self, now: Instant) -> Vec<Release<T>> {
        let mut out = Vec::new();
        while !self.held.is_empty() && self.try_take(now) {
            let Some((_, held)) = self.held.pop_first() else { break };
            out.push(Release { item: held.item, suppressed: held.replaced });
        }
        out
    }

    /// How many items are held back.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Whether an item of `key` is held back.
    pub fn holds(&self, key: &str) -> bool {
        self.held.contains_key(key)
    }

    /// When [`release`](Self::release) will next find room, if anything is
    /// held.
    pub fn next_release(&self) -> Option<Instant> {
        if self.held.is_empty() {
            return None;
        }
        match self.sent.front() {
            Some(first) if self.sent.len() >= self.rate.count as usize => {
                Some(*first + self.rate.per)
            }
            _ => self.sent.back().copied(),
        }
    }

    fn try_take(&mut self, now: Instant) -> bool {
        while self.sent.front().is_some_and(|sent| now.duration_since(*sent) >= self.rate.per) {
            self.sent.pop_front();
        }
        if self.sent.len() >= self.rate.count as usize {
            return false;
        }
        self.sent.push_back(now);
        true
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    fn limiter(count: u32, per: Duration) -> Limiter<u32> {
        Limiter::new(Rate { count, per })
    }

    #[test]
    fn a_flood_goes_out_at_the_rate_and_the_rest_is_counted() {
        let start = Instant::now();
        let mut limiter = limiter(3, 60 * SEC);
        let mut out = Vec::new();
        for i in 0..1000 {
            let now = start + Duration::from_millis(i * 60);
            out.extend(limiter.offer("web", u32::try_from(i).unwrap(), now));
            out.extend(limiter.release(now));
        }
        // Under 60 s of offers: three in the window, the rest held.
        assert_eq!(
            out.iter().map(|r| (r.item, r.suppressed)).collect::<Vec<_>>(),
            [(0, 0), (1, 0), (2, 0)]
        );
        assert_eq!(limiter.next_release(), Some(start + 60 * SEC));
        // When the window moves on, the latest one goes out with the count.
        out.extend(limiter.release(start + 60 * SEC));
        assert_eq!((out[3].item, out[3].suppressed), (999, 996), "the last state goes out");
        let counted: u64 = out.iter().map(|r| 1 + r.suppressed).sum();
        assert_eq!(counted, 1000, "everything is let out or counted");
        assert_eq!(limiter.held(), 0);
    }

    #[test]
    fn a_fresh_item_takes_over_the_held_one_and_its_count() {
        let start = Instant::now();
        let mut limiter = limiter(1, 10 * SEC);
        assert_eq!(limiter.offer("a", 1, start), Some(Release { item: 1, suppressed: 0 }));
        assert!(!limiter.holds("a"));
        assert_eq!(limiter.offer("a", 2, start + SEC), None);
        assert!(limiter.holds("a") && !limiter.holds("b"));
        assert_eq!(limiter.offer("a", 3, start + 2 * SEC), None);
        assert_eq!(limiter.next_release(), Some(start + 10 * SEC));
        assert!(limiter.release(start + 9 * SEC).is_empty());
        assert_eq!(
            limiter.offer("a", 4, start + 10 * SEC),
            Some(Release { item: 4, suppressed: 2 })
        );
        assert_eq!(limiter.held(), 0);
        assert_eq!(limiter.next_release(), None);
    }

    #[test]
    fn keys_are_held_apart_and_released_in_turn() {
        let start = Instant::now();
        let mut limiter = limiter(1, SEC);
        assert!(limiter.offer("a", 1, start).is_some());
        assert!(limiter.offer("b", 2, start).is_none());
        assert!(limiter.offer("c", 3, start).is_none());
        assert_eq!(limiter.release(start + SEC), [Release { item: 2, suppressed: 0 }]);
        assert_eq!(limiter.release(start + 2 * SEC), [Release { item: 3, suppressed: 0 }]);
    }

    #[test]
    fn the_window_slides() {
        let start = Instant::now();
        let mut limiter = limiter(2, 10 * SEC);
        assert!(limiter.offer("a", 1, start).is_some());
        assert!(limiter.offer("a", 2, start + 9 * SEC).is_some());
        // A fixed window would reset at 10 s and let two more out.
        assert!(limiter.offer("a", 3, start + 10 * SEC).is_some());
        assert!(limiter.offer("a", 4, start + 11 * SEC).is_none());
        assert_eq!(limiter.rate(), Rate { count: 2, per: 10 * SEC });
        assert_eq!(Limiter::<u8>::new(Rate { count: 0, per: SEC }).rate().count, 1);
    }
}
