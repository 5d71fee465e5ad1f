//! A guard that kills a plugin's whole process group.
//!
//! tokio's `kill_on_drop` (and the process-wrap crate) kill only the direct
//! child. A plugin that forked a helper and hung would leave that helper
//! behind on every timeout, so the runner starts each plugin as the leader
//! of its own process group and signals the group instead.

use std::os::unix::fs::MetadataExt;

use rustix::process::{Pid, Signal, kill_process_group, test_kill_process_group};

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

    /// Who owns the processes left in the group that we may not signal
    /// (EPERM: they changed user, e.g. through `sudo`); `None` when the
    /// group is empty or all of it is ours to kill.
    pub(crate) fn foreign_owner(&self) -> Option<String> {
        let pgid = self.pgid?;
        match test_kill_process_group(pgid) {
            Err(error) if error == rustix::io::Errno::PERM => Some(
                member_owner(pgid.as_raw_nonzero().get()).unwrap_or_else(|| "another user".into()),
            ),
            _ => None,
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

/// The owner of a process in group `pgid` that is not ours, found in
/// /proc: only read when a kill failed, so the scan costs nothing normally.
fn member_owner(pgid: i32) -> Option<String> {
    let own = rustix::process::getuid().as_raw();
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|entry| {
        let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
        // After "(comm)": state, ppid, pgrp.
        let pgrp: i32 = stat.rsplit_once(')')?.1.split_whitespace().nth(2)?.parse().ok()?;
        let uid = entry.metadata().ok()?.uid();
        (pgrp == pgid && uid != own).then(|| user_name(uid))
    })
}

/// `root` for uid 0, `uid N` otherwise (no NSS lookups in the agent).
pub(crate) fn user_name(uid: u32) -> String {
    if uid == 0 { "root".to_owned() } else { format!("uid {uid}") }
}
