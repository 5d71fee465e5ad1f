//! Runs one plugin under the agent's execution policy.
//!
//! - The command is executed directly (or by `/bin/sh -c` when asked), with
//!   stdin on `/dev/null`, as the leader of its own process group.
//!   `Command::process_group` is used rather than a `pre_exec` hook so that
//!   the standard library keeps its `posix_spawn` fast path.
//! - Most plugins exit within milliseconds having written less than a pipe
//!   holds. Their output is read in one go after the exit, without
//!   registering the pipes with the reactor: that registration, its
//!   wake-ups and the extra reads cost more than the rest of a run's
//!   bookkeeping. A plugin still running after [`QUIET_WINDOW`] (or one
//!   that is fed stdin) has stdout and stderr read concurrently as it
//!   writes, into capped buffers; output past the cap is read and dropped,
//!   so the plugin never blocks on a full pipe and memory stays bounded.
//! - On timeout the whole group gets SIGTERM, then SIGKILL after
//!   [`RunnerConfig::kill_grace`].
//! - After the plugin exits, a background child that still holds the pipes
//!   gets [`RunnerConfig::output_grace`] to finish writing; then the group
//!   is killed and the result returned.
//!
//! Interpretation of what happened (exit code to state, summaries) is
//! [`CheckResult::from_run`]'s job, not the runner's.

use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::pipe::{PipeFlags, pipe_with};
use rustix::process::Signal;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe::Receiver;
use tokio::process::{Child, ChildStdin, Command};
use tokio::time::{Instant, sleep, sleep_until, timeout};

use crate::cgroup::{Cgroups, RunCgroup};
use crate::command::CommandLine;
use crate::process_group::{ProcessGroup, user_name};
use crate::result::{CheckResult, RawRun, SpawnFailure, SpawnFailureKind, Termination};
use crate::state::State;

/// The timeout a plugin gets unless configured otherwise (Nagios Core's
/// `service_check_timeout` default).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The most stdout kept per run. Nagios Core keeps 8 KiB and Icinga 2 has no
/// limit; 1 MiB keeps any real plugin's output whole while bounding memory.
pub const DEFAULT_OUTPUT_LIMIT: usize = 1024 * 1024;

/// stderr is only a fallback for the summary, so less of it is kept.
const STDERR_LIMIT: usize = 64 * 1024;

/// How long to keep reading after SIGKILL, for output already in the pipe.
const FINAL_DRAIN: Duration = Duration::from_millis(100);

/// How long a plugin may run before its output is read as it writes rather
/// than after its exit. Until then a plugin that fills a pipe (64 KiB)
/// waits for the reader: a delay of at most this long, for the rare plugin
/// that writes that much.
pub const QUIET_WINDOW: Duration = Duration::from_millis(100);

/// How the runner executes plugins.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// Wall-clock limit for one run, from spawn to exit.
    pub timeout: Duration,
    /// The state reported when a run times out.
    pub timeout_state: State,
    /// Bytes of stdout kept; the rest is drained and dropped.
    pub output_limit: usize,
    /// Between SIGTERM and SIGKILL on timeout.
    pub kill_grace: Duration,
    /// How long after the plugin's exit a background child may keep its
    /// stdout open before it is killed and the result returned.
    pub output_grace: Duration,
    /// Variables added to (or replacing) the agent's environment.
    pub env: Vec<(String, String)>,
    /// Start plugins with only [`RunnerConfig::env`], not the agent's own.
    pub env_clear: bool,
    /// Working directory of the plugin; the agent's own when `None`.
    pub cwd: Option<PathBuf>,
    /// Where each run gets a cgroup of its own, so a timeout can end it
    /// whoever its processes belong to; process groups alone when `None`.
    pub cgroups: Option<Arc<Cgroups>>,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        RunnerConfig {
            timeout: DEFAULT_TIMEOUT,
            timeout_state: State::Unknown,
            output_limit: DEFAULT_OUTPUT_LIMIT,
            kill_grace: Duration::from_millis(500),
            output_grace: Duration::from_millis(500),
            env: Vec::new(),
            env_clear: false,
            cwd: None,
            cgroups: None,
        }
    }
}

/// Inputs of one run beyond the command, for actions: an event in the
/// environment and as JSON on stdin.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunInput<'a> {
    /// Variables for this run only, on top of [`RunnerConfig::env`].
    pub env: &'a [(String, String)],
    /// What the process reads on stdin; `/dev/null` when `None`.
    pub stdin: Option<&'a [u8]>,
}

/// One run as the runner observed it, before any interpretation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    /// How it ended.
    pub termination: Termination,
    /// Standard output, invalid UTF-8 replaced.
    pub stdout: String,
    /// Standard error, invalid UTF-8 replaced; at most 64 KiB.
    pub stderr: String,
    /// Wall-clock duration.
    pub duration: Duration,
    /// stdout went past the output limit; the rest was dropped.
    pub stdout_truncated: bool,
    /// stderr went past its limit; the rest was dropped.
    pub stderr_truncated: bool,
}

/// Bytes as text without copying them when they are valid UTF-8, which
/// nearly all plugin output is.
fn into_text(data: Vec<u8>) -> String {
    String::from_utf8(data)
        .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned())
}

/// Runs plugins; cheap to share (`&Runner`) between concurrent runs.
#[derive(Debug, Clone, Default)]
pub struct Runner {
    config: RunnerConfig,
}

impl Runner {
    /// A runner with this configuration.
    pub fn new(config: RunnerConfig) -> Runner {
        Runner { config }
    }

    /// The configuration in use.
    pub fn config(&self) -> &RunnerConfig {
        &self.config
    }

    /// Runs `command` with the configured timeout.
    pub async fn run(&self, command: &CommandLine) -> CheckResult {
        self.run_with_timeout(command, self.config.timeout).await
    }

    /// Runs `command` with a timeout of its own (a check's `timeout`).
    ///
    /// Cancel-safe: dropping the future kills the plugin's process group.
    pub async fn run_with_timeout(&self, command: &CommandLine, limit: Duration) -> CheckResult {
        self.run_with_input(command, limit, RunInput::default()).await
    }

    /// Like [`run_with_timeout`](Self::run_with_timeout), with how the run
    /// ended beside its result, for a caller that counts what went wrong
    /// (fork failures, runs that could not be killed).
    pub async fn run_observed(&self, command: &CommandLine, limit: Duration) -> Observed {
        let run = self.capture(command, limit, RunInput::default()).await;
        Observed { result: self.interpret(&run), termination: run.termination }
    }

    /// Runs `command` with a timeout and per-run input (an action's event).
    ///
    /// Cancel-safe: dropping the future kills the process group.
    pub async fn run_with_input(
        &self,
        command: &CommandLine,
        limit: Duration,
        input: RunInput<'_>,
    ) -> CheckResult {
        let run = self.capture(command, limit, input).await;
        self.interpret(&run)
    }

    /// A captured run as a plugin's result.
    fn interpret(&self, run: &Captured) -> CheckResult {
        // stderr only matters when it becomes the summary, so its overflow
        // only counts then.
        let truncated = run.stdout_truncated || (run.stdout.is_empty() && run.stderr_truncated);
        CheckResult::from_run(RawRun {
            termination: &run.termination,
            stdout: &run.stdout,
            stderr: &run.stderr,
            duration: run.duration,
            truncated,
            timeout_state: self.config.timeout_state,
        })
    }

    /// Runs `command` like [`run_with_input`](Self::run_with_input) but
    /// returns what happened uninterpreted: the ending and both streams as
    /// they were written (capped), for commands whose output is the point
    /// (`collect` actions) rather than a plugin's state.
    ///
    /// Cancel-safe: dropping the future kills the process group.
    pub async fn capture(
        &self,
        command: &CommandLine,
        limit: Duration,
        input: RunInput<'_>,
    ) -> Captured {
        let started = Instant::now();
        let mut stdout = Capture::new(self.config.output_limit);
        let mut stderr = Capture::new(STDERR_LIMIT.min(self.config.output_limit));
        let termination = match self.spawn(command, &input) {
            Ok((child, pipes)) => {
                let io = Io { stdin: input.stdin, stdout: &mut stdout, stderr: &mut stderr };
                self.supervise(child, pipes, started + limit, limit, io).await
            }
            Err(error) => Termination::SpawnFailed(spawn_failure(command, &error)),
        };
        Captured {
            termination,
            stdout: into_text(stdout.data),
            stderr: into_text(stderr.data),
            duration: started.elapsed(),
            stdout_truncated: stdout.truncated,
            stderr_truncated: stderr.truncated,
        }
    }

    /// Starts the process with its stdout and stderr on pipes of our own,
    /// so that their read ends stay plain descriptors until they need the
    /// reactor.
    fn spawn(&self, command: &CommandLine, input: &RunInput<'_>) -> io::Result<(Child, Pipes)> {
        let (stdout, stdout_writer) = pipe_with(PipeFlags::CLOEXEC)?;
        let (stderr, stderr_writer) = pipe_with(PipeFlags::CLOEXEC)?;
        let mut cmd = self.command(command, input);
        cmd.stdout(stdout_writer).stderr(stderr_writer);
        let child = cmd.spawn()?;
        // The command holds the write ends; until it is gone the pipes
        // never reach end of file.
        drop(cmd);
        Ok((child, Pipes { stdout, stderr }))
    }

    fn command(&self, command: &CommandLine, input: &RunInput<'_>) -> Command {
        let mut cmd = match command {
            CommandLine::Exec { program, args } => {
                let mut cmd = Command::new(program);
                cmd.args(args);
                cmd
            }
            CommandLine::Shell(script) => {
                let mut cmd = Command::new("/bin/sh");
                cmd.arg("-c").arg(script);
                cmd
            }
        };
        if self.config.env_clear {
            cmd.env_clear();
        }
        cmd.envs(self.config.env.iter().chain(input.env).map(|(k, v)| (k, v)));
        if let Some(cwd) = &self.config.cwd {
            cmd.current_dir(cwd);
        }
        cmd.stdin(if input.stdin.is_some() { Stdio::piped() } else { dev_null() })
            .process_group(0)
            .kill_on_drop(true);
        cmd
    }

    /// Waits for the plugin while draining its output, enforcing the
    /// deadline and the post-exit grace.
    async fn supervise(
        &self,
        mut child: Child,
        pipes: Pipes,
        deadline: Instant,
        limit: Duration,
        io: Io<'_>,
    ) -> Termination {
        let group = ProcessGroup::led_by(child.id());
        // A run that cannot get a cgroup still has its process group.
        let cgroup =
            self.config.cgroups.as_ref().zip(child.id()).and_then(|(c, pid)| c.enter(pid).ok());
        let mut exited = None;
        if io.stdin.is_none() {
            let window = sleep_until(deadline.min(Instant::now() + QUIET_WINDOW));
            tokio::select! {
                status = child.wait() => {
                    if pipes.writers_gone() {
                        io.stdout.drain(&pipes.stdout);
                        io.stderr.drain(&pipes.stderr);
                        group.release();
                        return termination(status);
                    }
                    exited = Some(status);
                }
                () = window => {}
            }
        }

        let in_pipe = child.stdin.take();
        let reading = async {
            tokio::join!(
                feed(in_pipe, io.stdin),
                io.stdout.fill(Receiver::from_owned_fd(pipes.stdout).ok()),
                io.stderr.fill(Receiver::from_owned_fd(pipes.stderr).ok())
            );
        };
        tokio::pin!(reading);
        let mut eof = false;

        let expiry = sleep_until(deadline);
        tokio::pin!(expiry);
        let status = match exited {
            Some(status) => status,
            None => loop {
                tokio::select! {
                    status = child.wait() => break status,
                    () = &mut reading, if !eof => eof = true,
                    () = &mut expiry => {
                        let left = self.stop(&mut child, &group, cgroup.as_ref(), &mut reading, eof).await;
                        return match left {
                            None => Termination::TimedOut(limit),
                            Some(owner) => Termination::Unkillable { after: limit, owner },
                        };
                    }
                }
            },
        };

        if !eof && timeout(self.config.output_grace, &mut reading).await.is_err() {
            // The plugin is gone but something it started still holds the
            // pipe. It would hold it on every run; stop it now.
            group.signal(Signal::KILL);
            if let Some(cgroup) = &cgroup {
                let _ = cgroup.kill();
            }
            let _ = timeout(FINAL_DRAIN, &mut reading).await;
        }
        group.release();
        termination(status)
    }

    /// SIGTERM to the group, SIGKILL after the grace (and `cgroup.kill`),
    /// reap the leader. Returns who owns what could not be killed.
    async fn stop(
        &self,
        child: &mut Child,
        group: &ProcessGroup,
        cgroup: Option<&RunCgroup<'_>>,
        reading: &mut (impl Future<Output = ()> + Unpin),
        mut eof: bool,
    ) -> Option<String> {
        group.signal(Signal::TERM);
        let grace = sleep(self.config.kill_grace);
        tokio::pin!(grace);
        loop {
            tokio::select! {
                _ = child.wait() => break,
                () = &mut *reading, if !eof => eof = true,
                () = &mut grace => break,
            }
        }
        // Also when the leader exited on SIGTERM: its children may not have.
        group.signal(Signal::KILL);
        if let Some(cgroup) = cgroup {
            let _ = cgroup.kill();
        }
        // A leader that left the group (setsid) is still our child.
        let _ = child.start_kill();
        // A leader that became another user ignores our SIGKILL: waiting
        // for it would hold the check forever. tokio reaps it if it ever ends.
        let leader_gone = timeout(self.config.kill_grace, child.wait()).await.is_ok();
        if !eof {
            let _ = timeout(FINAL_DRAIN, reading).await;
        }
        let left = self.left_over(group, cgroup).await;
        match (left, leader_gone) {
            (Some(owner), _) => Some(owner),
            (None, true) => None,
            (None, false) => {
                let owner = child
                    .id()
                    .and_then(|pid| std::fs::metadata(format!("/proc/{pid}")).ok())
                    .map(|meta| meta.uid());
                Some(match owner {
                    // Ours, yet alive after SIGKILL: blocked in the kernel
                    // (a hung NFS mount), where no signal reaches.
                    Some(uid) if uid == rustix::process::getuid().as_raw() => {
                        format!("{}, stuck in the kernel", user_name(uid))
                    }
                    Some(uid) => user_name(uid),
                    None => "another user".to_owned(),
                })
            }
        }
    }

    /// Who owns processes of the run still alive after SIGKILL: in its
    /// cgroup, which `cgroup.kill` empties whoever owns them (polled: the
    /// kill is asynchronous), or in its group, where only our own die.
    async fn left_over(
        &self,
        group: &ProcessGroup,
        cgroup: Option<&RunCgroup<'_>>,
    ) -> Option<String> {
        let Some(cgroup) = cgroup else { return group.foreign_owner() };
        let deadline = Instant::now() + self.config.kill_grace;
        while cgroup.populated() {
            if Instant::now() >= deadline {
                return Some(group.foreign_owner().unwrap_or_else(|| "another user".to_owned()));
            }
            sleep(Duration::from_millis(10)).await;
        }
        None
    }
}

fn termination(status: io::Result<ExitStatus>) -> Termination {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) => Termination::Exited(code),
            (None, Some(signal)) => Termination::Signaled(signal),
            (None, None) => Termination::SpawnFailed(SpawnFailure {
                program: String::new(),
                kind: SpawnFailureKind::Other(format!("unexpected wait status {status}")),
            }),
        },
        Err(error) => Termination::SpawnFailed(SpawnFailure {
            program: String::new(),
            kind: SpawnFailureKind::Other(format!("waiting for the plugin failed: {error}")),
        }),
    }
}

fn spawn_failure(command: &CommandLine, error: &io::Error) -> SpawnFailure {
    const ENOEXEC: i32 = 8;
    const EAGAIN: i32 = 11;
    let kind = match error.kind() {
        io::ErrorKind::NotFound => SpawnFailureKind::NotFound,
        io::ErrorKind::PermissionDenied => SpawnFailureKind::PermissionDenied,
        _ if error.raw_os_error() == Some(ENOEXEC) => SpawnFailureKind::NotExecutable,
        _ if error.raw_os_error() == Some(EAGAIN) => SpawnFailureKind::ProcessLimit,
        _ => SpawnFailureKind::Other(error.to_string()),
    };
    SpawnFailure { program: command.program().to_owned(), kind }
}

/// `/dev/null` for a plugin's stdin. `Stdio::null()` opens the device
/// anew for every spawn, and that path lookup was 5% of the agent's CPU
/// per check; a duplicate of one descriptor opened once costs a `fcntl`.
fn dev_null() -> Stdio {
    static DEV_NULL: OnceLock<Option<File>> = OnceLock::new();
    DEV_NULL
        .get_or_init(|| File::open("/dev/null").ok())
        .as_ref()
        .and_then(|file| file.try_clone().ok())
        .map_or_else(Stdio::null, Stdio::from)
}

/// A run's result and how it ended.
#[derive(Debug, Clone)]
pub struct Observed {
    /// What the check reports.
    pub result: CheckResult,
    /// How the process ended, as the runner saw it.
    pub termination: Termination,
}

/// The read ends of a run's stdout and stderr pipes.
struct Pipes {
    stdout: OwnedFd,
    stderr: OwnedFd,
}

impl Pipes {
    /// No process holds a write end any more (the kernel reports hang-up),
    /// so reading both to end of file cannot block. A background child of
    /// the plugin that kept its stdout makes this false.
    fn writers_gone(&self) -> bool {
        let mut fds =
            [PollFd::new(&self.stdout, PollFlags::IN), PollFd::new(&self.stderr, PollFlags::IN)];
        let now = Timespec { tv_sec: 0, tv_nsec: 0 };
        poll(&mut fds, Some(&now)).is_ok()
            && fds.iter().all(|fd| fd.revents().contains(PollFlags::HUP))
    }
}

/// The streams of one run.
struct Io<'a> {
    stdin: Option<&'a [u8]>,
    stdout: &'a mut Capture,
    stderr: &'a mut Capture,
}

/// Writes the run's input and closes stdin. A process that exits without
/// reading it makes the write fail, which is its business, not an error.
async fn feed(pipe: Option<ChildStdin>, input: Option<&[u8]>) {
    if let (Some(mut pipe), Some(input)) = (pipe, input) {
        let _ = pipe.write_all(input).await;
    }
}

/// One output stream, kept up to a limit and drained beyond it.
#[derive(Debug)]
struct Capture {
    data: Vec<u8>,
    limit: usize,
    truncated: bool,
}

impl Capture {
    fn new(limit: usize) -> Capture {
        Capture { data: Vec::new(), limit, truncated: false }
    }

    async fn fill(&mut self, pipe: Option<impl AsyncRead + Unpin>) {
        let Some(mut pipe) = pipe else { return };
        let mut chunk = [0u8; 4096];
        loop {
            match pipe.read(&mut chunk).await {
                Ok(0) => return,
                Ok(n) => self.keep(&chunk[..n]),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                // A read error on a pipe means the other end is unusable;
                // what was read so far is the output.
                Err(_) => return,
            }
        }
    }

    /// Reads a pipe whose writers are all gone to its end, blocking-free:
    /// what is left is in the pipe's buffer.
    fn drain(&mut self, pipe: &OwnedFd) {
        let mut chunk = [0u8; 4096];
        loop {
            match rustix::io::read(pipe, &mut chunk) {
                Ok(0) => return,
                Ok(n) => self.keep(&chunk[..n]),
                Err(rustix::io::Errno::INTR) => {}
                Err(_) => return,
            }
        }
    }

    fn keep(&mut self, bytes: &[u8]) {
        let room = self.limit - self.data.len();
        if bytes.len() > room {
            self.truncated = true;
        }
        self.data.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sh(script: &str) -> CommandLine {
        CommandLine::shell(script).unwrap()
    }

    fn runner(config: RunnerConfig) -> Runner {
        Runner::new(config)
    }

    #[tokio::test]
    async fn exit_code_and_output_become_the_result() {
        let result = Runner::default().run(&sh("echo 'WARN - hot | t=41C;40;50'; exit 1")).await;
        assert_eq!(result.state, State::Warning);
        assert_eq!(result.summary, "WARN - hot");
        assert_eq!(result.perfdata[0].uom.as_deref(), Some("C"));
        assert!(!result.timed_out);
    }

    #[tokio::test]
    async fn timeout_kills_the_group_and_returns_promptly() {
        let config =
            RunnerConfig { timeout: Duration::from_millis(300), ..RunnerConfig::default() };
        let started = std::time::Instant::now();
        let result = runner(config).run(&sh("trap '' TERM; sleep 30 & sleep 30")).await;
        assert!(result.timed_out);
        assert_eq!(result.state, State::Unknown);
        assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    }

    #[tokio::test]
    async fn output_past_the_limit_is_drained_and_dropped() {
        let config = RunnerConfig { output_limit: 1000, ..RunnerConfig::default() };
        let result = runner(config).run(&sh("head -c 300000 /dev/zero | tr '\\0' x; exit 2")).await;
        assert_eq!(result.state, State::Critical);
        assert!(result.truncated);
        assert_eq!(result.summary.len(), 1000);
    }

    #[tokio::test]
    async fn output_larger_than_a_pipe_arrives_whole() {
        // More than the pipe holds: the plugin waits for the reader until
        // the quiet window ends, then is read as it writes.
        let result = Runner::default().run(&sh("head -c 200000 /dev/zero | tr '\\0' x")).await;
        assert_eq!(result.state, State::Ok);
        assert!(!result.truncated);
        assert_eq!(result.summary.len(), 200_000);
    }

    #[tokio::test]
    async fn a_quick_plugin_has_both_streams_read_after_its_exit() {
        let result = Runner::default().run(&sh("echo 'fine | x=1'; echo noise >&2")).await;
        assert_eq!((result.state, result.summary.as_str()), (State::Ok, "fine"));
        let result = Runner::default().run(&sh("echo 'cannot open /etc/x' >&2; exit 2")).await;
        assert_eq!(
            (result.state, result.summary.as_str()),
            (State::Critical, "cannot open /etc/x")
        );
    }

    #[tokio::test]
    async fn configured_environment_and_directory_reach_the_plugin() {
        let dir = tempfile::tempdir().unwrap();
        let config = RunnerConfig {
            env: vec![("MONCHERO_TEST".into(), "yes".into())],
            cwd: Some(dir.path().to_owned()),
            ..RunnerConfig::default()
        };
        let result = runner(config).run(&sh("echo \"$MONCHERO_TEST $(pwd)\"")).await;
        assert_eq!(result.summary, format!("yes {}", dir.path().display()));
    }

    #[tokio::test]
    async fn a_cleared_environment_keeps_only_the_configured_variables() {
        let config = RunnerConfig {
            env: vec![("ONLY".into(), "this".into())],
            env_clear: true,
            ..RunnerConfig::default()
        };
        let result = runner(config).run(&sh("echo \"${HOME:-no home} $ONLY\"")).await;
        assert_eq!(result.summary, "no home this");
    }

    #[tokio::test]
    async fn per_run_input_reaches_stdin_and_the_environment() {
        let env = [("MONCHERO_CHECK".to_owned(), "web".to_owned())];
        let input = RunInput { env: &env, stdin: Some(b"{\"state\":\"critical\"}") };
        let command = sh("read line; echo \"$MONCHERO_CHECK got $line\"");
        let result =
            Runner::default().run_with_input(&command, Duration::from_secs(5), input).await;
        assert_eq!(result.summary, "web got {\"state\":\"critical\"}");
        // A process that ignores a large input does not hang the run.
        let big = vec![b'x'; 1 << 20];
        let input = RunInput { env: &[], stdin: Some(&big) };
        let result = Runner::default()
            .run_with_input(&sh("echo ignored"), Duration::from_secs(5), input)
            .await;
        assert_eq!(result.summary, "ignored");
        assert!(!result.timed_out);
    }

    #[tokio::test]
    async fn dropping_the_run_kills_the_plugin_group() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let script = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
        let command = sh(&script);
        let runner = Runner::default();
        let run = runner.run(&command);
        let _ = timeout(Duration::from_millis(300), run).await;
        let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
        // Give the kernel a moment to deliver SIGKILL.
        let mut alive = true;
        for _ in 0..50 {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // Gone, or a zombie awaiting its (dead) parent's reaper.
            if stat.is_empty() || stat.contains(") Z ") {
                alive = false;
                break;
            }
            sleep(Duration::from_millis(20)).await;
        }
        assert!(!alive, "background child {pid} survived a cancelled run");
    }
}
