//! A guard that kills a plugin's whole process group.
//!
//! tokio's `kill_on_drop` (and the process-wrap crate) kill only the direct
//! child. A plugin that forked a helper and hung would leave that helper
//! behind on every timeout, so the runner starts each plugin as the leader
//! of its own process group and signals the group instead.

use rustix::process::{Pid, Signal, kill_process_group};

/// The process group of one running plugin. Dropping an armed guard (for
/// example when the future running the plugin is cancelled) kills the group.
#[derive(Debug)]
pub(crate) struct ProcessGroup {
    pgid: Option<Pid>,
}

impl ProcessGroup {
    /// The group led by the child with this pid (started with
    /// `process_group(0)`, so its pgid is its pid).
    pub(crate) fn led_by(pid: Option<u32>) -> ProcessGroup {
        let pgid = pid.and_then(|pid| i32::try_from(pid).ok()).and_then(Pid::from_raw);
        ProcessGroup { pgid }
    }

    /// Sends `signal` to every process still in the group.
    pub(crate) fn signal(&self, signal: Signal) {
        if let Some(pgid) = self.pgid {
            // ESRCH (group already empty) is the normal case after a clean
            // exit; nothing else can usefully be done with an error here.
            let _ = kill_process_group(pgid, signal);
        }
    }

    /// Leaves the group alone from now on: the plugin finished and whatever
    /// it started in the background without holding our pipes may live on.
    pub(crate) fn release(mut self) {
        self.pgid = None;
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.signal(Signal::KILL);
    }
}
