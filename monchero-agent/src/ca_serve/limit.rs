//! A per-address request budget for `ca serve`: a fixed window per client
//! IP address. Written here rather than taken from a crate because it is a
//! dozen lines over a map; `governor` and friends bring a clock abstraction
//! and more than this needs. The map is owned by one task that handlers
//! ask over a channel ([`Limiter`]), as the agent's state is: no locks.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

/// Addresses remembered at once; beyond that, windows that ended are
/// dropped, so the map stays bounded under a flood of source addresses.
const MAX_TRACKED: usize = 10_000;

/// At most `limit` requests per address per `window`.
#[derive(Debug)]
pub struct RateLimit {
    limit: u32,
    window: Duration,
    seen: HashMap<IpAddr, (Instant, u32)>,
}

impl RateLimit {
    /// `limit` requests per `window` for each address.
    pub fn new(limit: u32, window: Duration) -> RateLimit {
        RateLimit { limit, window, seen: HashMap::new() }
    }

    /// Counts a request from `address` at `now`; `Err` with the time to
    /// wait when its budget is spent.
    pub fn admit(&mut self, address: IpAddr, now: Instant) -> Result<(), Duration> {
        let window = self.window;
        if self.seen.len() >= MAX_TRACKED {
            self.seen.retain(|_, (start, _)| now.duration_since(*start) < window);
        }
        let entry = self.seen.entry(address).or_insert((now, 0));
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

/// A question to the task that owns a [`RateLimit`].
type Ask = (IpAddr, oneshot::Sender<Result<(), Duration>>);

/// The handle handlers share: asks the task that owns the budget.
#[derive(Debug, Clone)]
pub struct Limiter {
    asks: mpsc::Sender<Ask>,
}

impl Limiter {
    /// Starts the task owning `limit`. Must be called inside the runtime.
    pub fn start(mut limit: RateLimit) -> Limiter {
        let (asks, mut questions) = mpsc::channel::<Ask>(256);
        tokio::spawn(async move {
            while let Some((address, answer)) = questions.recv().await {
                let _ = answer.send(limit.admit(address, Instant::now()));
            }
        });
        Limiter { asks }
    }

    /// Counts a request from `address`; `Err` with the time to wait when
    /// its budget is spent.
    pub async fn admit(&self, address: IpAddr) -> Result<(), Duration> {
        let (answer, answered) = oneshot::channel();
        // The task lives as long as the runtime: a lost answer only happens
        // at shutdown, when admitting no longer matters.
        if self.asks.send((address, answer)).await.is_err() {
            return Ok(());
        }
        answered.await.unwrap_or(Ok(()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn each_address_has_its_own_budget_per_window() {
        let mut limit = RateLimit::new(2, Duration::from_secs(60));
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let t0 = Instant::now();
        assert!(limit.admit(a, t0).is_ok());
        assert!(limit.admit(a, t0).is_ok());
        assert_eq!(limit.admit(a, t0 + Duration::from_secs(10)), Err(Duration::from_secs(50)));
        assert!(limit.admit(b, t0).is_ok(), "another address");
        assert!(limit.admit(a, t0 + Duration::from_secs(60)).is_ok(), "a new window");
    }
}
