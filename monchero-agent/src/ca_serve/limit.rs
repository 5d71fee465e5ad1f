//! A per-address request budget for `ca serve`: a fixed window per client
//! IP address. Written here rather than taken from a crate because it is a
//! dozen lines over a map; `governor` and friends bring a clock abstraction
//! and more than this needs.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Addresses remembered at once; beyond that, windows that ended are
/// dropped, so the map stays bounded under a flood of source addresses.
const MAX_TRACKED: usize = 10_000;

/// At most `limit` requests per address per `window`.
#[derive(Debug)]
pub struct RateLimit {
    limit: u32,
    window: Duration,
    // A lock, not a task: `ca serve` is its own small process, outside the
    // agent's lock-free main loop, and the critical section is a map probe.
    seen: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl RateLimit {
    /// `limit` requests per `window` for each address.
    pub fn new(limit: u32, window: Duration) -> RateLimit {
        RateLimit { limit, window, seen: Mutex::new(HashMap::new()) }
    }

    /// Counts a request from `address` at `now`; `Err` with the time to
    /// wait when its budget is spent.
    pub fn admit(&self, address: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut seen = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.len() >= MAX_TRACKED {
            seen.retain(|_, (start, _)| now.duration_since(*start) < self.window);
        }
        let entry = seen.entry(address).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        if entry.1 >= self.limit {
            return Err(self.window.saturating_sub(now.duration_since(entry.0)));
        }
        entry.1 += 1;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn each_address_has_its_own_budget_per_window() {
        let limit = RateLimit::new(2, Duration::from_secs(60));
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let t0 = Instant::now();
        assert!(limit.admit(a, t0).is_ok());
        assert!(limit.admit(a, t0).is_ok());
        assert_eq!(limit.admit(a, t0 + Duration::from_secs(10)), Err(Duration::from_secs(50)));
        assert!(limit.admit(b, t0).is_ok(), "another address");
        assert!(limit.admit(a, t0 + Duration::from_secs(60)).is_ok(), "a new window");
    }
}
