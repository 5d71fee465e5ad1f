//! Helpers for driving the binary: temporary plugins and result parsing.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

/// The binary under test.
pub fn monchero() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_monchero"));
    cmd.env_remove("NO_COLOR").env_remove("CLICOLOR_FORCE");
    cmd
}

/// A temporary directory holding test plugins.
pub struct Plugins {
    pub dir: TempDir,
}

impl Plugins {
    pub fn new() -> Plugins {
        Plugins { dir: tempfile::tempdir().unwrap() }
    }

    /// Writes an executable `/bin/sh` plugin and returns its path.
    pub fn script(&self, name: &str, body: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// What one `check-now --json` run gave.
pub struct Run {
    pub json: Value,
    pub status: i32,
    pub elapsed: Duration,
}

/// Runs `monchero check-now --json [extra...] -- plugin`.
pub fn check_now_json(plugin: &Path, extra: &[&str]) -> Run {
    let mut cmd = monchero();
    cmd.args(["check-now", "--json"]).args(extra).arg("--").arg(plugin);
    run_json(cmd)
}

pub fn run_json(mut cmd: Command) -> Run {
    let started = Instant::now();
    let output = cmd.output().unwrap();
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let json = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {stdout:?}\nstderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    Run { json, status: output.status.code().unwrap_or(-1), elapsed }
}

/// Whether a process is gone (or a zombie nobody has reaped yet).
pub fn process_is_dead(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The state is the first field after the command name in parentheses.
    stat.rsplit_once(')').is_none_or(|(_, rest)| rest.trim_start().starts_with(['Z', 'X']))
}

/// Polls `process_is_dead` for up to a second: SIGKILL is asynchronous.
pub fn wait_dead(pid: i32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        if process_is_dead(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

pub fn read_pid(path: &Path) -> i32 {
    std::fs::read_to_string(path).unwrap().trim().parse().unwrap()
}
