//! Each plugin run in a cgroup v2 of its own, so that a timed-out run can
//! be ended even when its processes belong to another user.
//!
//! A process-group kill is bound by the usual signal permission: a plugin
//! run through `sudo` (or any set-user-ID program) becomes root, and an
//! agent running as `monchero` gets EPERM for it. Writing `1` to a
//! cgroup's `cgroup.kill` (Linux 5.14) needs only write access to that
//! file, so a cgroup delegated to the agent (systemd's `Delegate=yes`)
//! kills everything in a run's cgroup, whoever owns it.
//!
//! The agent's own cgroup is used when it is not the hierarchy's root and
//! the agent may create cgroups in it: that is what delegation looks like.
//! A run is moved into its cgroup right after it is spawned (`clone3` with
//! `CLONE_INTO_CGROUP` would start it there, but needs `unsafe`, which
//! this crate forbids). Whatever the plugin forked before the move was
//! born in the agent's cgroup; the members of the run's process group
//! found there are moved after it, until none is left. A process that
//! left the group (setsid) within those microseconds stays outside.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why runs cannot be given cgroups of their own.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// No cgroup v2 hierarchy is mounted (a cgroup v1-only system).
    #[error("no cgroup v2 hierarchy is mounted (looked in /proc/self/mountinfo)")]
    NoHierarchy,
    /// The agent runs in the hierarchy's root cgroup, which belongs to the
    /// system, not to the agent.
    #[error("the agent runs in the root cgroup: nothing is delegated to it")]
    NotDelegated,
    /// The agent's cgroup exists but it may not create cgroups in it.
    #[error("cannot create a cgroup in {path}: {source}")]
    NotWritable {
        /// The agent's cgroup directory.
        path: PathBuf,
        /// What the kernel said.
        source: io::Error,
    },
    /// The kernel is older than 5.14: no `cgroup.kill`.
    #[error("{path} has no cgroup.kill (Linux 5.14 or later is needed)")]
    NoKill {
        /// The cgroup that lacks it.
        path: PathBuf,
    },
    /// Reading the process's own cgroup failed.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file that could not be read.
        path: PathBuf,
        /// What the kernel said.
        source: io::Error,
    },
}

/// Where runs get their cgroups: a directory delegated to the agent.
#[derive(Debug)]
pub struct Cgroups {
    base: PathBuf,
    /// The agent's own cgroup, where a plugin's early children are born
    /// (the same as `base` when the agent found it by [`Cgroups::discover`]).
    origin: PathBuf,
    next: AtomicU64,
    /// Run cgroups a background child of a finished plugin still keeps
    /// populated; reused once it has gone.
    lingering: Mutex<Vec<PathBuf>>,
    /// Empty run cgroups ready for the next run. Creating and removing a
    /// cgroup took about 90 µs (a loop of mkdir and rmdir on the test
    /// machine), against 0.27 ms of agent CPU per check in all; moving a
    /// process into an existing one is one write.
    free: Mutex<Vec<PathBuf>>,
}

/// Empty run cgroups kept for reuse; beyond this many running at once,
/// the extra ones are removed when their run ends.
const KEEP_FREE: usize = 256;

impl Cgroups {
    /// The agent's own cgroup, when it is delegated to the agent.
    pub fn discover() -> Result<Cgroups, CgroupError> {
        let mountinfo = read(Path::new("/proc/self/mountinfo"))?;
        let mount = cgroup2_mount(&mountinfo).ok_or(CgroupError::NoHierarchy)?;
        let own = read(Path::new("/proc/self/cgroup"))?;
        let path = own_cgroup(&own).ok_or(CgroupError::NoHierarchy)?;
        if path == "/" {
            return Err(CgroupError::NotDelegated);
        }
        Cgroups::at(mount.join(path.trim_start_matches('/')))
    }

    /// Runs get cgroups under `base`, which must be a cgroup v2 directory
    /// the agent may create cgroups in.
    pub fn at(base: PathBuf) -> Result<Cgroups, CgroupError> {
        let origin = own_cgroup_dir().unwrap_or_else(|| base.clone());
        let cgroups = Cgroups {
            base,
            origin,
            next: AtomicU64::new(0),
            lingering: Mutex::new(Vec::new()),
            free: Mutex::new(Vec::new()),
        };
        // A probe: creating and removing one cgroup proves both rights and
        // shows whether the kernel has cgroup.kill.
        let probe = cgroups.create(&format!("probe-{}", std::process::id()))?;
        let has_kill = probe.join("cgroup.kill").exists();
        let _ = fs::remove_dir(&probe);
        if !has_kill {
            return Err(CgroupError::NoKill { path: cgroups.base.clone() });
        }
        Ok(cgroups)
    }

    /// The directory runs get their cgroups in.
    pub fn base(&self) -> &Path {
        &self.base
    }

    fn create(&self, name: &str) -> Result<PathBuf, CgroupError> {
        let path = self.base.join(name);
        match fs::create_dir(&path) {
            Ok(()) => Ok(path),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(path),
            Err(source) => Err(CgroupError::NotWritable { path: self.base.clone(), source }),
        }
    }

    /// Moves the process `pid` (just spawned, leader of its own process
    /// group) into a new cgroup of its own, with whatever it forked before
    /// the move.
    pub fn enter(&self, pid: u32) -> io::Result<RunCgroup<'_>> {
        self.sweep();
        let reused = self.free.lock().ok().and_then(|mut free| free.pop());
        let path = match reused {
            Some(path) => path,
            None => {
                let n = self.next.fetch_add(1, Ordering::Relaxed);
                self.create(&format!("run-{}-{n}", std::process::id()))
                    .map_err(|error| io::Error::other(error.to_string()))?
            }
        };
        let run = RunCgroup { path, cgroups: self };
        let procs = run.path.join("cgroup.procs");
        fs::write(&procs, pid.to_string())?;
        // A child the plugin forked before the move was born in the agent's
        // cgroup, and a child of that one too: move every member of the
        // plugin's process group still found there until none is left.
        // A fork inherits its parent's cgroup, so this ends; that cgroup
        // normally holds only the agent, so it is one short read.
        for _ in 0..16 {
            let strays = self.strays(pid);
            if strays.is_empty() {
                break;
            }
            for stray in strays {
                let _ = fs::write(&procs, stray.to_string());
            }
        }
        Ok(run)
    }

    /// Processes in the agent's cgroup that belong to process group `pgid`.
    fn strays(&self, pgid: u32) -> Vec<u32> {
        let listed = fs::read_to_string(self.origin.join("cgroup.procs")).unwrap_or_default();
        listed
            .lines()
            .filter_map(|line| line.parse::<u32>().ok())
            .filter(|&pid| pid != std::process::id() && process_group_of(pid) == Some(pgid))
            .collect()
    }

    /// Lingering cgroups whose last process has gone become free again.
    fn sweep(&self) {
        let Ok(mut lingering) = self.lingering.lock() else { return };
        if lingering.is_empty() {
            return;
        }
        let (empty, busy): (Vec<_>, Vec<_>) =
            lingering.drain(..).partition(|path| !populated(path));
        *lingering = busy;
        drop(lingering);
        for path in empty {
            self.release(path);
        }
    }

    /// Keeps an empty run cgroup for the next run, or removes it.
    fn release(&self, path: PathBuf) {
        match self.free.lock() {
            Ok(mut free) if free.len() < KEEP_FREE => free.push(path),
            _ => {
                let _ = fs::remove_dir(&path);
            }
        }
    }
}

impl Drop for Cgroups {
    /// Removes the run cgroups it made that are empty; the rest go with
    /// the delegated cgroup when the service stops.
    fn drop(&mut self) {
        let free = self.free.get_mut().map(std::mem::take).unwrap_or_default();
        let lingering = self.lingering.get_mut().map(std::mem::take).unwrap_or_default();
        for path in free.into_iter().chain(lingering) {
            let _ = fs::remove_dir(path);
        }
    }
}

/// One run's cgroup; given back for reuse when dropped, or later if
/// something the plugin started in the background still lives in it.
#[derive(Debug)]
pub struct RunCgroup<'a> {
    path: PathBuf,
    cgroups: &'a Cgroups,
}

impl RunCgroup<'_> {
    /// Kills every process in the cgroup, whoever owns it.
    pub fn kill(&self) -> io::Result<()> {
        fs::write(self.path.join("cgroup.kill"), "1")
    }

    /// Whether any process is left in it.
    pub fn populated(&self) -> bool {
        populated(&self.path)
    }
}

impl Drop for RunCgroup<'_> {
    fn drop(&mut self) {
        let path = std::mem::take(&mut self.path);
        if !populated(&path) {
            self.cgroups.release(path);
        } else if let Ok(mut lingering) = self.cgroups.lingering.lock() {
            lingering.push(path);
        }
    }
}

/// Whether any process is in the cgroup at `path`.
fn populated(path: &Path) -> bool {
    fs::read_to_string(path.join("cgroup.events"))
        .map(|events| events.lines().any(|line| line == "populated 1"))
        .unwrap_or(false)
}

/// The directory of this process's own cgroup v2.
fn own_cgroup_dir() -> Option<PathBuf> {
    let mount = cgroup2_mount(&fs::read_to_string("/proc/self/mountinfo").ok()?)?;
    let own = fs::read_to_string("/proc/self/cgroup").ok()?;
    Some(mount.join(own_cgroup(&own)?.trim_start_matches('/')))
}

/// The process group of `pid`, from /proc/PID/stat.
fn process_group_of(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After "(comm)": state, ppid, pgrp.
    stat.rsplit_once(')')?.1.split_whitespace().nth(2)?.parse().ok()
}

fn read(path: &Path) -> Result<String, CgroupError> {
    fs::read_to_string(path).map_err(|source| CgroupError::Read { path: path.to_owned(), source })
}

/// The mount point of the cgroup2 file system in a mountinfo text.
fn cgroup2_mount(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        // "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER"
        let (before, after) = line.split_once(" - ")?;
        let fstype = after.split_whitespace().next()?;
        let mount_point = before.split_whitespace().nth(4)?;
        (fstype == "cgroup2").then(|| PathBuf::from(mount_point))
    })
}

/// The process's cgroup v2 path ("0::/system.slice/monchero.service").
fn own_cgroup(proc_cgroup: &str) -> Option<&str> {
    proc_cgroup.lines().find_map(|line| line.strip_prefix("0::"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::process::CommandExt;

    use super::*;

    #[test]
    fn finds_the_cgroup2_mount_among_v1_ones() {
        let mountinfo = "\
35 25 0:30 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 25 0:35 / /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw
";
        assert_eq!(cgroup2_mount(mountinfo), Some(PathBuf::from("/sys/fs/cgroup/unified")));
        assert_eq!(cgroup2_mount("35 25 0:30 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw"), None);
    }

    #[test]
    fn reads_the_v2_line_of_proc_self_cgroup() {
        let own = "4:memory:/x\n0::/system.slice/monchero.service\n";
        assert_eq!(own_cgroup(own), Some("/system.slice/monchero.service"));
        assert_eq!(own_cgroup("4:memory:/x\n"), None);
    }

    #[test]
    fn a_run_and_what_it_forked_before_the_move_are_killed_with_its_cgroup() {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
        let Some(mount) = cgroup2_mount(&mountinfo) else {
            eprintln!("skipped: no cgroup v2 hierarchy here");
            return;
        };
        let base = mount.join(format!("monchero-unit-{}", std::process::id()));
        if fs::create_dir(&base).is_err() {
            eprintln!("skipped: cannot create a cgroup in {}", mount.display());
            return;
        }
        let cgroups = Cgroups::at(base.clone());
        // A shell that forks a child at once, in its own process group, as
        // the runner starts plugins; both must end up in the run's cgroup.
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & exec sleep 30"])
            .process_group(0)
            .spawn()
            .unwrap();
        let result = cgroups.map(|cgroups| {
            std::thread::sleep(std::time::Duration::from_millis(50));
            let run = cgroups.enter(child.id()).unwrap();
            let moved = fs::read_to_string(run.path.join("cgroup.procs")).unwrap();
            run.kill().unwrap();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while run.populated() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            let outcome = (moved.lines().count(), run.populated());
            let used = run.path.clone();
            drop(run);
            // The next run reuses the empty cgroup instead of making one.
            let mut next = std::process::Command::new("sleep").arg("30").spawn().unwrap();
            let again = cgroups.enter(next.id()).unwrap();
            assert_eq!(again.path, used);
            again.kill().unwrap();
            let _ = next.wait();
            outcome
        });
        let _ = child.kill();
        let _ = child.wait();
        let _ = fs::remove_dir(&base);
        let (moved, populated) = match result {
            Ok(outcome) => outcome,
            Err(CgroupError::NoKill { .. }) => {
                eprintln!("skipped: this kernel has no cgroup.kill");
                return;
            }
            Err(error) => panic!("{error}"),
        };
        assert_eq!(moved, 2, "the shell and the child it forked before the move");
        assert!(!populated, "cgroup.kill ended both");
    }

    #[test]
    fn a_directory_that_is_no_cgroup_is_refused_with_its_path() {
        let dir = std::env::temp_dir().join(format!("monchero-no-cgroup-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let error = Cgroups::at(dir.clone()).unwrap_err();
        fs::remove_dir_all(&dir).unwrap();
        assert!(matches!(error, CgroupError::NoKill { .. }), "{error}");
        assert!(error.to_string().contains(&dir.display().to_string()), "{error}");
    }
}
