//! Built-in checks that block in the kernel (issue #5: "a stale NFS mount
//! that hangs statfs: time-bounded, reported UNKNOWN, never blocks the
//! agent"). A FIFO nobody writes to is a real hang of a real built-in:
//! `builtin:log` opens it, and `open` waits for a writer forever.

use std::path::Path;

use serde_json::Value;

use crate::daemon::{Agent, check};
use crate::util::*;

/// Threads of `pid` asleep in a FIFO's `open`, waiting for a writer.
fn threads_in_fifo_open(pid: i32) -> usize {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return 0 };
    tasks
        .flatten()
        .filter(|task| {
            std::fs::read_to_string(task.path().join("wchan"))
                .is_ok_and(|wchan| wchan == "wait_for_partner")
        })
        .count()
}

fn mkfifo(path: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
}

fn last_check(status: &Value, name: &str) -> Option<String> {
    check(status, name)["last_check"].as_str().map(str::to_owned)
}

#[test]
fn a_check_stuck_in_the_kernel_strands_one_thread_and_the_others_keep_their_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "[agent]\nstate_dir = \"{state}\"\nmax_check_spread = \"1s\"\n\n\
             [[check]]\nname = \"stuck\"\ncommand = \"builtin:log -f {fifo} -e ERROR\"\n\
             interval = \"1s\"\nretry_interval = \"1s\"\ntimeout = \"200ms\"\n\n\
             [[check]]\nname = \"heartbeat\"\ncommand = \"builtin:memory\"\n\
             interval = \"1s\"\nretry_interval = \"1s\"\n",
            state = dir.path().join("state").display(),
            fifo = fifo.display(),
        ),
    )
    .unwrap();
    let agent = Agent::start(&config, dir.path());
    let pid = agent.pid().as_raw_nonzero().get();

    let status = agent.wait_until(
        |status| {
            check(status, "stuck")["summary"]
                .as_str()
                .is_some_and(|summary| summary.contains("previous run still blocked since"))
        },
        "a run of the stuck check to find the previous one still blocked",
    );
    let stuck = check(&status, "stuck");
    assert_eq!(stuck["state"], "unknown");
    let summary = stuck["summary"].as_str().unwrap();
    assert!(summary.starts_with("LOG UNKNOWN - previous run still blocked since 20"), "{summary}");
    assert!(
        summary.ends_with(&format!(
            "(reading {}); not started again until it returns",
            fifo.display()
        )),
        "{summary}"
    );

    // Several more intervals: the stuck check is due at each, the heartbeat
    // runs at each, and still one thread only waits on the FIFO.
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let status = agent.wait_until(
            |status| last_check(status, "heartbeat").is_some_and(|at| !seen.contains(&at)),
            "the heartbeat check to run again",
        );
        seen.push(last_check(&status, "heartbeat").unwrap());
        assert_eq!(threads_in_fifo_open(pid), 1, "threads stuck in open of the FIFO");
    }
    assert_eq!(check(&agent.status().0, "heartbeat")["state"], "ok");

    // A writer shows up: the stuck run returns, and the check runs again
    // (and finds that a FIFO cannot be followed like a file).
    let writer = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    let cannot_seek = format!("LOG UNKNOWN - cannot read {}: Illegal seek", fifo.display());
    agent.wait_until(
        |status| check(status, "stuck")["summary"] == cannot_seek.as_str(),
        "the check to run again once the FIFO has a writer",
    );
    assert_eq!(threads_in_fifo_open(pid), 0);
    drop(writer);
}

#[test]
fn check_now_gives_up_on_a_stuck_builtin_after_its_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);
    let mut cmd = monchero();
    cmd.args(["check-now", "--json", "--timeout", "300ms", "--", "builtin:log", "-f"])
        .arg(&fifo)
        .args(["-e", "ERROR"]);
    let run = run_json(cmd);
    assert_eq!(run.status, 3);
    assert_eq!(run.json["timed_out"], true);
    assert_eq!(
        run.json["summary"],
        format!(
            "LOG UNKNOWN - timed out after 300ms (reading {}); \
             not started again until that run returns",
            fifo.display()
        )
    );
}
