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

/// Whether a run of the check is under way, and what it waits on.
///
/// Clones share it, like [`Carried`]: the daemon runs a clone of the
/// configured check.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Busy(Carried<Option<Running>>);

/// The run under way.
#[derive(Debug)]
struct Running {
    since: SystemTime,
    activity: String,
}

/// Held for the length of a run; clears the mark when the run returns, or
/// unwinds.
#[derive(Debug)]
pub(super) struct Entered<'a>(&'a Busy);

impl Busy {
    /// Marks a run as started, doing `activity` (`reading /var/log/syslog`);
    /// or, when the previous run has not returned yet, the outcome that
    /// says so.
    pub(super) fn enter(
        &self,
        prefix: &str,
        activity: String,
        now: SystemTime,
    ) -> Result<Entered<'_>, Outcome> {
        let mut running = self.0.lock();
        if let Some(previous) = running.as_ref() {
            let since = humantime::format_rfc3339_seconds(previous.since);
            return Err(Outcome::unknown(
                prefix,
                format!(
                    "previous run still blocked since {since} ({}); \
                     not started again until it returns",
                    previous.activity
                ),
            ));
        }
        *running = Some(Running { since: now, activity });
        Ok(Entered(self))
    }
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        *self.0.0.lock() = None;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::state::State;

    #[test]
    fn a_second_run_during_the_first_is_refused_with_what_blocks_it() {
        let busy = Busy::default();
        let since = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let first = busy.enter("DISK", "in statfs on /mnt/nfs".to_owned(), since).unwrap();
        let clone = busy.clone();
        let refused = clone.enter("DISK", "anything".to_owned(), SystemTime::now()).unwrap_err();
        assert_eq!(refused.state, State::Unknown);
        assert_eq!(
            refused.summary,
            "DISK UNKNOWN - previous run still blocked since 2027-01-15T08:00:00Z \
             (in statfs on /mnt/nfs); not started again until it returns"
        );
        drop(first);
        assert!(clone.enter("DISK", "again".to_owned(), SystemTime::now()).is_ok());
    }

    #[test]
    fn a_run_that_panics_does_not_leave_the_check_blocked() {
        let busy = Busy::default();
        let inside = busy.clone();
        let panicked = std::thread::spawn(move || {
            let _entered = inside.enter("LOG", "reading x".to_owned(), SystemTime::now());
            panic!("a bug in a check");
        })
        .join();
        assert!(panicked.is_err());
        assert!(busy.enter("LOG", "reading x".to_owned(), SystemTime::now()).is_ok());
    }
}
