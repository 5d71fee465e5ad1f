//! One run of a check at a time, and none while an earlier run is stuck.
//!
//! A run can block in the kernel where no timeout reaches it: `statvfs` on a
//! hung NFS mount, `open` of a FIFO nobody writes to. The agent stops
//! waiting for it after the check's timeout, but the thread stays stuck
//! until the kernel lets go. Starting the check again would strand one more
//! thread at every interval; instead a run that finds the previous one still
//! going returns at once, UNKNOWN, saying since when and on what the
//! previous run is stuck. So at most one thread per check is ever stuck.

use std::time::SystemTime;

use super::{Carried, Outcome};

/// Whether a run of the check is under way, and since when.
///
/// Clones share it, like [`Carried`]: the daemon runs a clone of the
/// configured check. Only clones share it, so what the earlier run is
/// stuck on is what this check does: the refusal asks the check, and a
/// run that is not refused allocates nothing here.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Busy(Carried<Option<SystemTime>>);

/// Held for the length of a run; clears the mark when the run returns, or
/// unwinds.
#[derive(Debug)]
pub(super) struct Entered<'a>(&'a Busy);

impl Busy {
    /// Marks a run as started at `now`; or, when the previous run has not
    /// returned yet, the time that one started.
    pub(super) fn enter(&self, now: SystemTime) -> Result<Entered<'_>, SystemTime> {
        let mut running = self.0.lock();
        if let Some(since) = *running {
            return Err(since);
        }
        *running = Some(now);
        Ok(Entered(self))
    }
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        *self.0.0.lock() = None;
    }
}

/// The outcome of a run refused because the previous one, doing
/// `activity` since `since`, has not returned.
pub(super) fn still_blocked(prefix: &str, activity: &str, since: SystemTime) -> Outcome {
    Outcome::unknown(
        prefix,
        format!(
            "previous run still blocked since {} ({activity}); not started again until it returns",
            humantime::format_rfc3339_seconds(since)
        ),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::state::State;

    #[test]
    fn a_second_run_during_the_first_is_refused_with_when_it_started() {
        let busy = Busy::default();
        let since = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let first = busy.enter(since).unwrap();
        let clone = busy.clone();
        assert_eq!(clone.enter(SystemTime::now()).unwrap_err(), since);
        drop(first);
        assert!(clone.enter(SystemTime::now()).is_ok());
    }

    #[test]
    fn the_refusal_says_since_when_and_on_what() {
        let since = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let refused = still_blocked("DISK", "in statfs on /mnt/nfs", since);
        assert_eq!(refused.state, State::Unknown);
        assert_eq!(
            refused.summary,
            "DISK UNKNOWN - previous run still blocked since 2027-01-15T08:00:00Z \
             (in statfs on /mnt/nfs); not started again until it returns"
        );
    }

    #[test]
    fn a_run_that_panics_does_not_leave_the_check_blocked() {
        let busy = Busy::default();
        let inside = busy.clone();
        let panicked = std::thread::spawn(move || {
            let _entered = inside.enter(SystemTime::now());
            panic!("a bug in a check");
        })
        .join();
        assert!(panicked.is_err());
        assert!(busy.enter(SystemTime::now()).is_ok());
    }
}
