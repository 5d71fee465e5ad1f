//! `monchero run`: the daemon.
//!
//! One task owns all state — the checks, their tracker states, the
//! schedule — and reacts to five things in a `select!` loop: a check is due,
//! a run finished, a control request arrived, a signal, and the flush timer.
//! Runs execute as their own tasks and report back over a channel, so
//! nothing the plugins do can block the loop, and no lock is ever taken.
//!
//! Signals: SIGHUP reloads the config (a config with errors is rejected and
//! the old one keeps running), SIGTERM and SIGINT stop scheduling, wait a
//! bounded time for running checks, save the state and exit 0.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use monchero_core::builtin::BuiltinCheck;
use monchero_core::cgroup::Cgroups;
use monchero_core::command::CommandLine;
use monchero_core::event::Event;
use monchero_core::result::{RawRun, Termination};
use monchero_core::runner::{Observed, Runner, RunnerConfig};
use monchero_core::schedule::{Schedule, next_slot, plan};
use monchero_core::tracker::{ChangeKind, CheckState, HardChange, Outcome};
use monchero_core::{CheckResult, State};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};
use tracing::{error, info, warn};

use crate::EX_CONFIG;
use crate::actions::{ActionDone, ActionRecord, Actions, Moment, Planned, Ran};
use crate::collect::{CollectAction, Collection, Held};
use crate::config::{self, ActionKind, CheckCommand, CheckConfig, Config};
use crate::control::{self, Incoming, NamedResult, Request, Response};
use crate::delivery::{self, Deliveries};
use crate::metrics::MetricsSnapshot;
use crate::notify;
use crate::nrpe;
use crate::pull;
use crate::push::Push;
use crate::renewal::{self, CertEvent};
use crate::self_check::{self, AgentStats};
use crate::state_file::{
    CHANGE_SUMMARY_LIMIT, ChangeRecord, Loaded, SavedCheck, Snapshot, StateFile, brief,
};
use crate::status_report::StatusReport;

/// The longest the state on disk lags behind a state change (an attempt,
/// a soft or hard change, an action) in memory.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// The longest the state on disk lags behind results that changed no state
/// (a new summary, perfdata, last-check time). Rewriting the whole file
/// for those every second was the agent's largest user-space cost with
/// 1000 checks; after a crash they are the cheapest thing to lose, since
/// the next run of each check brings them back.
pub const FLUSH_RESULTS_EVERY: Duration = Duration::from_secs(10);

/// How early a check may start to share a wakeup with one due before it.
const START_AHEAD: Duration = Duration::from_millis(10);

/// How long a stopping daemon waits for running checks.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// What the state file misses of the state in memory, least to most urgent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Dirty {
    Clean,
    /// Only results that changed no state: written within
    /// [`FLUSH_RESULTS_EVERY`].
    Results,
    /// A state change, an action or the set of checks: written within
    /// [`FLUSH_EVERY`].
    States,
}

/// Runs the daemon in the foreground until SIGTERM or SIGINT; returns the
/// exit status.
pub fn run(config_path: Option<&Path>) -> anyhow::Result<u8> {
    let config = match config::load(config_path) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("{errors}");
            error!(message = "The configuration has errors; the agent did not start.");
            return Ok(EX_CONFIG);
        }
    };
    for warning in &config.warnings {
        warn!(message = "Configuration warning.", %warning);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let daemon = Daemon::start(config, config_path.map(Path::to_owned))?;
        daemon.serve().await?;
        Ok(0)
    })
}

/// The next event of the renewal task; never, without one.
async fn next_cert_event(
    events: &mut Option<mpsc::UnboundedReceiver<CertEvent>>,
) -> Option<CertEvent> {
    match events {
        Some(events) => events.recv().await,
        None => std::future::pending().await,
    }
}

/// A finished run, on its way back to the main loop.
#[derive(Debug)]
struct Done {
    spec: Arc<CheckConfig>,
    run: u64,
    result: CheckResult,
    /// How a plugin's process ended; `None` for built-in checks.
    termination: Option<Termination>,
}

/// One configured check and where it stands in the schedule.
#[derive(Debug)]
struct Slot {
    spec: Arc<CheckConfig>,
    job: Job,
    /// The start of its grid of regular runs.
    anchor: Instant,
    /// The due time of its live schedule entry; older entries are stale.
    planned: Instant,
    running: bool,
    /// Runs started so far; a `check-now` request waits for a later one.
    runs_started: u64,
}

/// What a run executes, shared with the run's task without copying.
#[derive(Debug, Clone)]
enum Job {
    Plugin(Arc<Runner>, Arc<CommandLine>),
    Builtin(Arc<BuiltinCheck>),
    AgentSelf,
}

impl Job {
    /// The job for `spec`. A built-in check whose options did not change
    /// keeps its job across a reload: `cpu`, `net` and `log` measure
    /// between runs, and a fresh one would lose that (`log` would skip the
    /// lines written meanwhile).
    fn new(spec: &CheckConfig, previous: Option<&Job>) -> Job {
        match (&spec.command, previous) {
            (CheckCommand::Builtin(check), Some(Job::Builtin(running))) if **running == *check => {
                Job::Builtin(running.clone())
            }
            _ => Job::fresh(spec),
        }
    }

    fn fresh(spec: &CheckConfig) -> Job {
        match &spec.command {
            CheckCommand::Plugin(command) => {
                Job::Plugin(Arc::new(runner_for(spec)), Arc::new(command.clone()))
            }
            CheckCommand::Builtin(check) => Job::Builtin(Arc::new(check.clone())),
            CheckCommand::AgentSelf => Job::AgentSelf,
        }
    }
}

/// The output kept of a configured check's run (the rest is read and
/// dropped, `truncated: true`). The daemon keeps every check's last result
/// in memory, in the state file it rewrites and in every `status` reply:
/// a check that prints a megabyte on each run would make all three a
/// megabyte larger, and a hundred of them stalled the agent in the soak
/// test. 64 KiB is eight times Nagios's classic 8 KiB and more than any
/// real plugin's summary and long output; `check-now -- COMMAND` keeps
/// the runner's 1 MiB for looking at a plugin by hand.
pub const KEPT_OUTPUT: usize = 64 * 1024;

/// The cgroup runs are contained in, found once when the daemon starts;
/// unset (no cgroups) for `check-now --local`.
static CGROUPS: OnceLock<Option<Arc<Cgroups>>> = OnceLock::new();

/// Finds the cgroup delegated to the agent, and says what a missing one
/// means for the operator.
fn discover_cgroups() -> Option<Arc<Cgroups>> {
    // Root may signal any plugin, whatever user it became; and creating
    // cgroups in a service's cgroup that systemd did not delegate would
    // interfere with systemd's own management of it.
    if rustix::process::geteuid().is_root() {
        info!(
            message = "The agent runs as root: process groups are enough to end any plugin run; no cgroups are made."
        );
        return None;
    }
    match Cgroups::discover() {
        Ok(cgroups) => {
            info!(message = "Each plugin run gets a cgroup of its own.", base = %cgroups.base().display());
            Some(Arc::new(cgroups))
        }
        Err(cause) => {
            info!(
                message = "No cgroup is delegated to the agent: a timed-out plugin that runs as another user (sudo) cannot be killed and is reported so.",
                %cause
            );
            None
        }
    }
}

/// The runner that executes a configured plugin check.
pub fn runner_for(spec: &CheckConfig) -> Runner {
    Runner::new(RunnerConfig {
        cgroups: CGROUPS.get().cloned().flatten(),
        timeout: spec.timeout,
        timeout_state: spec.timeout_state,
        env: spec.env.clone(),
        output_limit: KEPT_OUTPUT,
        ..RunnerConfig::default()
    })
}

/// A `check-now NAME` request waiting for fresh results.
#[derive(Debug)]
struct PendingRun {
    wanted: Vec<Wanted>,
    reply: oneshot::Sender<Response>,
}

/// One check a `check-now` request waits for.
#[derive(Debug)]
struct Wanted {
    spec: Arc<CheckConfig>,
    /// Runs numbered below this started before the request and don't count.
    first_run: u64,
    result: Option<CheckResult>,
}

struct Daemon {
    config: Config,
    config_path: Option<PathBuf>,
    slots: Vec<Slot>,
    index: HashMap<String, usize>,
    schedule: Schedule,
    /// Due checks waiting for a free `max_concurrent` slot, oldest first.
    ready: VecDeque<usize>,
    in_flight: usize,
    snapshot: Snapshot,
    state_file: StateFile,
    dirty: Dirty,
    /// When the state file was last written.
    saved: Instant,
    /// The write of the state file in progress, on a blocking thread.
    writing: Option<JoinHandle<anyhow::Result<()>>>,
    /// A change that actions acted on waits to be saved.
    save_soon: bool,
    stats: AgentStats,
    pending: Vec<PendingRun>,
    done_tx: mpsc::UnboundedSender<Done>,
    done_rx: mpsc::UnboundedReceiver<Done>,
    control_rx: mpsc::Receiver<Incoming>,
    actions: Actions,
    action_rx: mpsc::UnboundedReceiver<ActionDone>,
    delivery_rx: mpsc::UnboundedReceiver<delivery::Report>,
    socket: PathBuf,
    pull: pull::Pull,
    nrpe: nrpe::Nrpe,
    push: Push,
    /// Renewal and CRL refresh of `[pull] cert_dir`, when it records an
    /// enrolment server.
    cert_events: Option<mpsc::UnboundedReceiver<CertEvent>>,
}

impl Daemon {
    fn start(config: Config, config_path: Option<PathBuf>) -> anyhow::Result<Daemon> {
        let state_dir = config.agent.state_dir.clone();
        std::fs::create_dir_all(&state_dir).with_context(|| {
            format!("cannot create the state directory {}", state_dir.display())
        })?;
        let state_file = StateFile::new(&state_dir);
        CGROUPS.get_or_init(discover_cgroups);
        let now = SystemTime::now();
        let mut snapshot = match state_file.load()? {
            Loaded::Snapshot(snapshot) => {
                info!(message = "State restored.", path = %state_file.path().display(), checks = snapshot.checks.len());
                *snapshot
            }
            Loaded::Missing => Snapshot::new(config.agent.hostname.clone(), now),
            Loaded::MovedAside { to, cause } => {
                error!(
                    message = "The state file was unreadable; it was moved aside and the agent starts fresh.",
                    moved_to = %to.display(),
                    cause
                );
                Snapshot::new(config.agent.hostname.clone(), now)
            }
        };
        snapshot.host.clone_from(&config.agent.hostname);
        snapshot.agent_started = now;
        snapshot.pid = std::process::id();

        let socket = config.agent.socket.clone();
        if let Some(dir) = socket.parent() {
            std::fs::create_dir_all(dir).with_context(|| {
                format!("cannot create the directory of the control socket {}", socket.display())
            })?;
        }
        let server = control::Server::bind(&socket)?;
        let (control_tx, control_rx) = mpsc::channel(64);
        let pull = pull::start(config.pull.as_ref(), config.metrics.as_ref(), &control_tx)?;
        // A damaged enrolment record stops renewal, not the agent: the
        // certificate in use is still good, and builtin:agent says why.
        let mut renewal_error = None;
        let cert_events = match config.pull.as_ref().and_then(|p| Some((p.cert_dir.as_ref()?, p))) {
            Some((dir, pull)) => renewal::start(dir, pull.crl_refresh).unwrap_or_else(|problem| {
                let problem = format!("{problem:#}");
                error!(message = "Certificate renewal is off.", error = %problem);
                renewal_error = Some(problem);
                None
            }),
            None => None,
        };
        let nrpe = nrpe::start(config.nrpe.as_ref(), &config.checks, &control_tx)?;
        tokio::spawn(server.serve(control_tx));

        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let (deliveries, delivery_rx) =
            Deliveries::start(&state_dir, &config.actions, &config.agent.hostname)?;
        let (actions, action_rx) = Actions::new(deliveries);
        let push = Push::start(&config.push, &state_dir, now);
        let mut daemon = Daemon {
            config,
            config_path,
            slots: Vec::new(),
            index: HashMap::new(),
            schedule: Schedule::new(),
            ready: VecDeque::new(),
            in_flight: 0,
            snapshot,
            state_file,
            dirty: Dirty::States,
            saved: Instant::now(),
            writing: None,
            save_soon: false,
            stats: AgentStats {
                pull_cert_expires: pull.cert_expires(),
                cert_renewal_error: renewal_error,
                ..AgentStats::default()
            },
            pending: Vec::new(),
            done_tx,
            done_rx,
            control_rx,
            actions,
            action_rx,
            delivery_rx,
            socket,
            pull,
            nrpe,
            push,
            cert_events,
        };
        daemon.rebuild(Instant::now(), now);
        daemon.release_saved_held();
        info!(
            message = "Agent started.",
            config = %daemon.config.source,
            checks = daemon.slots.len(),
            state_dir = %state_dir.display(),
        );
        Ok(daemon)
    }

    /// Builds the slots and the schedule from `self.config`, keeping the
    /// state and schedule phase of checks that existed before (a reload).
    fn rebuild(&mut self, now: Instant, wall: SystemTime) {
        let mut old: HashMap<String, Slot> =
            self.slots.drain(..).map(|slot| (slot.spec.name.clone(), slot)).collect();
        self.index.clear();
        self.schedule.clear();
        self.ready.clear();
        self.actions.configure(&self.config.actions);
        for spec in &self.config.checks {
            let job = Job::new(spec, old.get(&spec.name).map(|slot| &slot.job));
            let spec = Arc::new(spec.clone());
            let fresh = || {
                plan(now.into_std(), spec.interval, self.config.agent.max_check_spread, &spec.name)
            };
            let slot = match old.remove(&spec.name) {
                Some(previous) if previous.spec.interval == spec.interval => {
                    Slot { spec: spec.clone(), job, ..previous }
                }
                Some(previous) => {
                    let plan = fresh();
                    let (anchor, planned) =
                        (Instant::from_std(plan.anchor), Instant::from_std(plan.first));
                    Slot { spec: spec.clone(), job, anchor, planned, ..previous }
                }
                None => {
                    let plan = fresh();
                    let (anchor, planned) =
                        (Instant::from_std(plan.anchor), Instant::from_std(plan.first));
                    Slot {
                        spec: spec.clone(),
                        job,
                        anchor,
                        planned,
                        running: false,
                        runs_started: 0,
                    }
                }
            };
            let saved =
                self.snapshot.checks.entry(spec.name.clone()).or_insert_with(|| SavedCheck {
                    max_attempts: spec.tracker.attempts,
                    state: CheckState::new(wall),
                    last_action: None,
                    planned: Default::default(),
                    collection: Collection::default(),
                });
            saved.max_attempts = spec.tracker.attempts;
            if !slot.running {
                self.schedule.push(self.slots.len(), slot.planned.into_std());
            }
            self.index.insert(spec.name.clone(), self.slots.len());
            self.slots.push(slot);
        }
        // Checks removed from the config leave the state with them.
        self.snapshot.checks.retain(|name, _| self.index.contains_key(name));
        self.dirty = Dirty::States;
    }

    async fn serve(mut self) -> anyhow::Result<()> {
        let mut hangup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
        let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
        let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
        let mut flush = tokio::time::interval(FLUSH_EVERY);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The watchdog is pinged from this loop, not from a task of its own:
        // a wedged scheduler must look dead to systemd.
        let watchdog_every = notify::watchdog_interval();
        let mut watchdog =
            tokio::time::interval(watchdog_every.unwrap_or(Duration::from_secs(3600)));
        watchdog.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        notify::ready(&self.summary());
        let far_future = Instant::now() + Duration::from_secs(86400 * 365);

        loop {
            let due = self.schedule.next_due().map_or(far_future, Instant::from_std);
            tokio::select! {
                () = sleep_until(due) => self.start_due(),
                Some(done) = self.done_rx.recv() => self.finish(done),
                Some(done) = self.action_rx.recv() => self.action_finished(done),
                Some(report) = self.delivery_rx.recv() => self.delivery_report(report),
                Some(incoming) = self.control_rx.recv() => self.handle(incoming),
                Some(event) = next_cert_event(&mut self.cert_events) => self.cert_event(event),
                _ = flush.tick() => {
                    self.run_planned_actions();
                    self.actions.release_held();
                    self.flush();
                }
                written = write_finished(&mut self.writing) => self.written(written),
                _ = watchdog.tick(), if watchdog_every.is_some() => notify::watchdog(),
                _ = hangup.recv() => self.reload(),
                _ = terminate.recv() => { info!(message = "Received SIGTERM, stopping."); break; }
                _ = interrupt.recv() => { info!(message = "Received SIGINT, stopping."); break; }
            }
            // Once the results that came together are applied, not once per
            // result: a hundred checks failing at once make one write.
            if self.save_soon && self.done_rx.is_empty() && self.writing.is_none() {
                self.save_soon = false;
                self.flush();
            }
        }
        notify::stopping();
        self.shutdown().await;
        Ok(())
    }

    fn start_due(&mut self) {
        let now = Instant::now();
        // Checks due within the next few milliseconds start with this
        // wakeup instead of each costing one of their own: at 100 checks a
        // second, wakeups are a large share of the agent's CPU per check.
        while let Some((index, due)) = self.schedule.pop_due((now + START_AHEAD).into_std()) {
            let slot = &self.slots[index];
            // An entry superseded by a `check-now` or a reload.
            if slot.running || slot.planned.into_std() != due {
                continue;
            }
            self.ready.push_back(index);
        }
        self.start_ready(now);
    }

    fn start_ready(&mut self, now: Instant) {
        while self.in_flight < self.config.agent.max_concurrent {
            let Some(index) = self.ready.pop_front() else { break };
            if self.slots[index].running {
                continue;
            }
            self.launch(index, now);
        }
    }

    fn launch(&mut self, index: usize, now: Instant) {
        let slot = &mut self.slots[index];
        slot.running = true;
        slot.runs_started += 1;
        self.in_flight += 1;
        self.stats.lateness.record(now.saturating_duration_since(slot.planned));
        let (spec, job, run) = (slot.spec.clone(), slot.job.clone(), slot.runs_started);
        let done = self.done_tx.clone();
        match job {
            Job::AgentSelf => {
                self.stats.push_backlog = self.push.old_backlogs(SystemTime::now());
                let result = self_check::run(&mut self.stats, self.slots.len(), SystemTime::now());
                let _ = done.send(Done { spec, run, result, termination: None });
            }
            Job::Plugin(runner, command) => {
                tokio::spawn(async move {
                    let Observed { result, termination } =
                        runner.run_observed(&command, spec.timeout).await;
                    let _ = done.send(Done { spec, run, result, termination: Some(termination) });
                });
            }
            Job::Builtin(check) => {
                tokio::spawn(async move {
                    let result = run_builtin(check, spec.timeout, spec.timeout_state).await;
                    let _ = done.send(Done { spec, run, result, termination: None });
                });
            }
        }
    }

    fn finish(&mut self, done: Done) {
        self.in_flight -= 1;
        let now = Instant::now();
        let wall = SystemTime::now();
        self.stats.runs += 1;
        if done.result.timed_out {
            self.stats.timed_out += 1;
        }
        match &done.termination {
            Some(Termination::SpawnFailed(failure)) => {
                self.stats.spawn_failures += 1;
                self.stats.last_spawn_failure = Some(failure.to_string());
            }
            Some(Termination::Unkillable { owner, .. }) => {
                self.stats.unkillable += 1;
                error!(
                    message = "A timed-out plugin could not be killed; its processes keep running.",
                    check = %done.spec.name,
                    %owner,
                    help = "run the agent with a delegated cgroup (docs/security.md)",
                );
            }
            _ => {}
        }
        self.answer_pending(&done);
        // A check removed by a reload while it ran.
        let Some(&index) = self.index.get(&done.spec.name) else {
            self.start_ready(now);
            return;
        };
        let slot = &mut self.slots[index];
        slot.running = false;
        let spec = slot.spec.clone();
        let Some(saved) = self.snapshot.checks.get_mut(&spec.name) else {
            self.start_ready(now);
            return;
        };
        let before = (saved.state.state, saved.state.state_type, saved.state.attempt);
        let outcome = saved.state.observe(&spec.tracker, done.result, wall);
        let host = &self.snapshot.host;
        let state = &saved.state;
        let events: Vec<Event> =
            Event::from_outcome(&spec.name, host, state, &outcome, spec.tracker.attempts, wall)
                .collect();
        let flapping = state.flapping;
        let retrying = state.is_retrying();
        let dirty = if (state.state, state.state_type, state.attempt) == before {
            Dirty::Results
        } else {
            Dirty::States
        };
        let change =
            ((state.state, state.state_type) != (before.0, before.1)).then(|| ChangeRecord {
                at: wall,
                check: spec.name.clone(),
                from: before.0,
                to: state.state,
                state_type: state.state_type,
                attempt: state.attempt,
                max_attempts: spec.tracker.attempts,
                summary: state
                    .last_result
                    .as_ref()
                    .map(|r| brief(&r.summary, CHANGE_SUMMARY_LIMIT))
                    .unwrap_or_default(),
            });
        if !self.push.is_empty() {
            let attempts = spec.tracker.attempts;
            self.push.record_result(&spec.name, state, attempts, wall, change.as_ref());
        }
        if let Some(change) = change {
            log_change(&change);
            self.snapshot.record_change(change);
        }
        if let Some(change) = outcome.hard_change {
            info!(
                message = "Hard state change.",
                check = %spec.name,
                event = change.kind.as_str(),
                previous = %change.previous,
                state = %change.current,
            );
        }
        if let Some(flapping) = outcome.flapping {
            info!(message = "Flapping.", check = %spec.name, event = ?flapping);
        }
        let collecting = self.start_collects(&spec, &outcome, wall);
        // Most results change nothing: look the check up again only for events.
        let saved = if events.is_empty() { None } else { self.snapshot.checks.get_mut(&spec.name) };
        let acted = saved.is_some() && !spec.actions.is_empty();
        if let Some(saved) = saved {
            let hard_since = saved.state.hard_since;
            let generation = saved.collection.generation;
            for event in events {
                let held = Held { event, generation, flapping, hard_since, at: wall };
                for held in saved.collection.admit(held) {
                    dispatch_held(&mut self.actions, &spec, &mut saved.planned, held);
                }
            }
        }
        let dirty = if collecting { Dirty::States } else { dirty };
        self.dirty = self.dirty.max(dirty);
        // Saved before the next flush tick: an agent killed in between would
        // see the change again after a restart and act on it twice.
        self.save_soon |= acted;

        let slot = &mut self.slots[index];
        let next = if retrying {
            now + spec.retry_interval
        } else {
            let (next, skipped) = next_slot(
                slot.anchor.into_std(),
                spec.interval,
                slot.planned.into_std(),
                now.into_std(),
            );
            if skipped > 0 {
                self.stats.skipped += skipped;
                warn!(message = "Check could not keep its interval; runs skipped.", check = %spec.name, skipped);
            }
            Instant::from_std(next)
        };
        slot.planned = next;
        self.schedule.push(index, next.into_std());
        self.start_ready(now);
    }

    /// Starts the check's collect actions that its new state makes due
    /// (see [`crate::collect`]), each with the event of this moment: a
    /// problem (soft or hard) or a change. Returns whether what is kept
    /// for the check changed.
    fn start_collects(&mut self, spec: &CheckConfig, outcome: &Outcome, wall: SystemTime) -> bool {
        let Some(saved) = self.snapshot.checks.get_mut(&spec.name) else { return false };
        let configs = self.actions.collects_of(spec);
        if configs.is_empty() && saved.collection.is_empty() {
            return false;
        }
        let views: Vec<CollectAction<'_>> = configs
            .iter()
            .filter_map(|action| match &action.kind {
                ActionKind::Collect(config) => {
                    Some(CollectAction { name: &action.name, config, on: &action.on })
                }
                _ => None,
            })
            .collect();
        // `observe` only bumps the generation, clears outputs and adds runs:
        // comparing these is enough, and cheaper than copying outputs of up
        // to a megabyte each on every result.
        let before = (saved.collection.generation, saved.collection.outputs.len());
        let due = saved.collection.observe(&saved.state, outcome, &views);
        if due.is_empty() {
            return (saved.collection.generation, saved.collection.outputs.len()) != before;
        }
        let state = &saved.state;
        let previous = outcome.hard_change.map_or(state.hard_state, |change| change.previous);
        let kind = if previous.is_problem() { ChangeKind::Change } else { ChangeKind::Problem };
        let change = HardChange { kind, previous, current: state.state, attempt: state.attempt };
        let moment = Outcome { hard_change: Some(change), flapping: None };
        let host = &self.snapshot.host;
        let attempts = spec.tracker.attempts;
        let generation = saved.collection.generation;
        if let Some(event) =
            Event::from_outcome(&spec.name, host, state, &moment, attempts, wall).next()
        {
            let event = Arc::new(event);
            for name in due {
                if !self.actions.collect(name, event.clone(), generation) {
                    // Only a collect the pool does not know: book its end
                    // at once, so nothing waits for it.
                    saved.collection.finished(name, generation, None);
                }
            }
        }
        true
    }

    /// Dispatches events that waited for a check's collects.
    fn dispatch_released(&mut self, check: &str, released: Vec<Held>) {
        if released.is_empty() {
            return;
        }
        // A check removed by a reload took its events with it.
        let Some(&index) = self.index.get(check) else { return };
        let spec = self.slots[index].spec.clone();
        let Some(saved) = self.snapshot.checks.get_mut(check) else { return };
        for held in released {
            dispatch_held(&mut self.actions, &spec, &mut saved.planned, held);
        }
        self.dirty = Dirty::States;
        // Saved soon, like any event acted on: not twice after a restart.
        self.save_soon = true;
    }

    /// Sends the events that waited for collects when the agent stopped:
    /// those collects ended with it.
    fn release_saved_held(&mut self) {
        let waiting: Vec<String> = self
            .snapshot
            .checks
            .iter()
            .filter(|(_, saved)| !saved.collection.held.is_empty())
            .map(|(name, _)| name.clone())
            .collect();
        for name in waiting {
            let released = self
                .snapshot
                .checks
                .get_mut(&name)
                .map(|saved| saved.collection.release_if_idle())
                .unwrap_or_default();
            info!(message = "Events that waited for collects at the last stop go out now.", check = %name, events = released.len());
            self.dispatch_released(&name, released);
        }
    }

    fn action_finished(&mut self, done: ActionDone) {
        let record = self.actions.finish(&done);
        if let Ran::Collect { generation, collected } = done.ran {
            let check = &done.event.check;
            let Some(saved) = self.snapshot.checks.get_mut(check) else { return };
            let released = saved.collection.finished(&done.action.name, generation, collected);
            self.dirty = Dirty::States;
            self.dispatch_released(check, released);
            return;
        }
        let Some(record) = record else { return };
        if !record.ok {
            self.stats.action_failures += 1;
        }
        let check = &done.event.check;
        if let Some(saved) = self.snapshot.checks.get_mut(check) {
            saved.last_action = Some(record);
            self.dirty = Dirty::States;
        }
        if done.action.recheck {
            if let Some(&index) = self.index.get(check) {
                self.run_soon(index, Instant::now());
                self.start_due();
            }
        }
    }

    /// Keeps a notifier's outcome as the check's last action record, so
    /// `status` marks a failing notifier as it marks a failing command.
    fn delivery_report(&mut self, report: delivery::Report) {
        self.snapshot.deliveries_pending = report.pending;
        self.dirty = Dirty::States;
        let Some(outcome) = report.outcome else { return };
        if let Some(saved) = self.snapshot.checks.get_mut(&outcome.check) {
            saved.last_action = Some(ActionRecord {
                action: outcome.action,
                event: outcome.event,
                at: SystemTime::now(),
                ok: outcome.ok,
                exit_code: None,
                summary: outcome.summary,
            });
        }
    }

    /// Applies what renewal or a CRL refresh did: new files are served
    /// from the next connection on; problems go to `builtin:agent`.
    fn cert_event(&mut self, event: CertEvent) {
        match event {
            CertEvent::Renewed => {
                self.stats.cert_renewal_error = None;
                self.stats.crl_refresh_error = None;
                self.pull.reload_certificates();
                self.stats.pull_cert_expires = self.pull.cert_expires();
            }
            CertEvent::RenewalFailed(error) => self.stats.cert_renewal_error = Some(error),
            CertEvent::CrlInstalled => {
                self.stats.crl_refresh_error = None;
                self.pull.reload_certificates();
            }
            CertEvent::CrlCurrent => self.stats.crl_refresh_error = None,
            CertEvent::CrlFailed(error) => self.stats.crl_refresh_error = Some(error),
        }
    }

    /// Runs delayed and repeating actions that are due (checked with the
    /// flush, once a second: their times are in seconds and minutes).
    fn run_planned_actions(&mut self) {
        let now = SystemTime::now();
        let host = &self.snapshot.host;
        for (name, saved) in &mut self.snapshot.checks {
            let Some(&index) = self.index.get(name) else { continue };
            if !saved.planned.is_empty() {
                let spec = &self.slots[index].spec;
                let (state, collected) = (&saved.state, &saved.collection.outputs);
                if self.actions.run_due(spec, host, state, collected, &mut saved.planned, now) {
                    self.dirty = Dirty::States;
                }
            }
        }
    }

    /// Plans a check for `now`, superseding its planned run; a running
    /// check gets its next run as soon as this one finishes.
    fn run_soon(&mut self, index: usize, now: Instant) {
        let slot = &mut self.slots[index];
        slot.planned = now;
        if !slot.running {
            self.schedule.push(index, now.into_std());
        }
    }

    fn answer_pending(&mut self, done: &Done) {
        if self.pending.is_empty() {
            return;
        }
        for wanted in self.pending.iter_mut().flat_map(|pending| &mut pending.wanted) {
            if wanted.result.is_none()
                && wanted.spec.name == done.spec.name
                && done.run >= wanted.first_run
            {
                wanted.result = Some(done.result.clone());
            }
        }
        let (complete, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|pending| pending.wanted.iter().all(|wanted| wanted.result.is_some()));
        self.pending = waiting;
        for pending in complete {
            let results = pending
                .wanted
                .into_iter()
                .filter_map(|wanted| {
                    Some(NamedResult { name: wanted.spec.name.clone(), result: wanted.result? })
                })
                .collect();
            let _ = pending.reply.send(Response::Ran { results });
        }
    }

    fn handle(&mut self, incoming: Incoming) {
        let response = match incoming.request {
            Request::Status { changes_within_secs, checks } => {
                let window = changes_within_secs.map(Duration::from_secs);
                let mut report =
                    StatusReport::build(&self.snapshot, false, SystemTime::now(), window, &checks);
                report.push = self.push.health();
                Response::Status(report)
            }
            Request::Metrics => {
                Response::Metrics(MetricsSnapshot::build(&self.snapshot, &self.stats))
            }
            Request::Run { checks, all } => match self.request_runs(&checks, all) {
                Ok(wanted) => {
                    self.pending.push(PendingRun { wanted, reply: incoming.reply });
                    self.start_due();
                    return;
                }
                Err(message) => Response::Error { message },
            },
        };
        let _ = incoming.reply.send(response);
    }

    /// Plans the named checks for now; returns what the request waits for.
    fn request_runs(&mut self, names: &[String], all: bool) -> Result<Vec<Wanted>, String> {
        let indices: Vec<usize> = if all {
            (0..self.slots.len()).collect()
        } else {
            names
                .iter()
                .map(|name| {
                    self.index.get(name).copied().ok_or_else(|| {
                        let known: Vec<&str> =
                            self.slots.iter().map(|s| s.spec.name.as_str()).collect();
                        format!(
                            "no check is named {name:?}; configured checks: {}",
                            known.join(", ")
                        )
                    })
                })
                .collect::<Result<_, _>>()?
        };
        let now = Instant::now();
        let mut wanted = Vec::with_capacity(indices.len());
        for index in indices {
            // A run already going started before the request: wait for the
            // one after it, which `finish` schedules at once.
            let first_run = self.slots[index].runs_started + 1;
            self.run_soon(index, now);
            wanted.push(Wanted { spec: self.slots[index].spec.clone(), first_run, result: None });
        }
        Ok(wanted)
    }

    /// Starts writing the state file if a state changed, or if results did
    /// and the file is [`FLUSH_RESULTS_EVERY`] old, unless a write is still
    /// in progress (then the next tick does it). Encoding reads the live
    /// state, so it happens here, into the page cache; the fsyncs and the
    /// rename, tens of milliseconds on a busy disk, happen on a blocking
    /// thread, so the checks keep their schedule meanwhile.
    fn flush(&mut self) {
        let due = match self.dirty {
            Dirty::Clean => false,
            Dirty::Results => self.saved.elapsed() >= FLUSH_RESULTS_EVERY,
            Dirty::States => true,
        };
        if !due || self.writing.is_some() {
            return;
        }
        self.snapshot.saved_at = SystemTime::now();
        let encoding = Instant::now();
        let pending = match self.state_file.begin(&self.snapshot) {
            Ok(pending) => pending,
            Err(error) => return self.written(Err(error)),
        };
        self.stats.state_writes += 1;
        self.stats.state_encoding += encoding.elapsed();
        self.writing = Some(tokio::task::spawn_blocking(move || pending.commit()));
        self.dirty = Dirty::Clean;
        self.saved = Instant::now();
    }

    fn written(&mut self, result: anyhow::Result<()>) {
        match result {
            Ok(()) => {
                if self.stats.state_write_error.take().is_some() {
                    info!(message = "State file written again.", path = %self.state_file.path().display());
                }
            }
            Err(error) => {
                // Written again on the next tick, with whatever changed since.
                self.dirty = Dirty::States;
                let error = format!("{error:#}");
                // Once per distinct failure, not once a second.
                if self.stats.state_write_error.as_ref() != Some(&error) {
                    error!(message = "Cannot save the state; it is kept in memory and retried.", %error);
                }
                self.stats.state_write_error = Some(error);
            }
        }
    }

    /// Waits for a write in progress, then writes the state as it is now.
    async fn final_flush(&mut self) {
        if self.writing.is_some() {
            let written = write_finished(&mut self.writing).await;
            self.written(written);
        }
        self.snapshot.saved_at = SystemTime::now();
        let saved = self.state_file.save(&self.snapshot);
        self.written(saved);
    }

    /// One line for `systemctl status`.
    fn summary(&self) -> String {
        format!(
            "Running {} checks; state in {}.",
            self.slots.len(),
            self.config.agent.state_dir.display()
        )
    }

    fn reload(&mut self) {
        info!(message = "Received SIGHUP, reloading the configuration.");
        notify::reloading();
        match config::load(self.config_path.as_deref()) {
            Ok(config)
                if config.agent.state_dir != self.config.agent.state_dir
                    || config.agent.socket != self.config.agent.socket =>
            {
                warn!(
                    message = "Reload rejected: state_dir or socket changed; restart the agent to move them.",
                    state_dir = %config.agent.state_dir.display(),
                    socket = %config.agent.socket.display(),
                );
            }
            Ok(config) => {
                self.pull.reload(config.pull.as_ref(), config.metrics.as_ref());
                self.stats.pull_cert_expires = self.pull.cert_expires();
                self.nrpe.reload(config.nrpe.as_ref(), &config.checks);
                for warning in &config.warnings {
                    warn!(message = "Configuration warning.", %warning);
                }
                self.config = config;
                let state_dir = &self.config.agent.state_dir;
                self.push.reconfigure(&self.config.push, state_dir, self.snapshot.agent_started);
                self.rebuild(Instant::now(), SystemTime::now());
                info!(message = "Configuration reloaded.", checks = self.slots.len());
            }
            Err(errors) => {
                error!(message = "Reload rejected; the previous configuration keeps running.", errors = %errors);
                notify::ready(&format!("Reload rejected (config errors). {}", self.summary()));
                return;
            }
        }
        notify::ready(&self.summary());
    }

    async fn shutdown(mut self) {
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        if self.in_flight > 0 {
            info!(message = "Waiting for running checks.", running = self.in_flight);
        }
        while self.in_flight > 0 {
            match tokio::time::timeout_at(deadline, self.done_rx.recv()).await {
                Ok(Some(done)) => {
                    self.in_flight -= 1;
                    self.record_final(done);
                }
                _ => {
                    warn!(
                        message = "Checks still running at exit were abandoned.",
                        running = self.in_flight
                    );
                    break;
                }
            }
        }
        while self.actions.busy() > 0 {
            match tokio::time::timeout_at(deadline, self.action_rx.recv()).await {
                Ok(Some(done)) => self.action_finished(done),
                _ => {
                    let count = self.actions.busy();
                    warn!(
                        message = "Actions still queued or running at exit were abandoned.",
                        count
                    );
                    break;
                }
            }
        }
        self.final_flush().await;
        self.push.stop();
        let _ = std::fs::remove_file(&self.socket);
        info!(message = "Agent stopped.");
    }

    /// A result that arrives during shutdown: its state counts, but
    /// nothing is scheduled any more.
    fn record_final(&mut self, done: Done) {
        if let Some(saved) = self.snapshot.checks.get_mut(&done.spec.name) {
            let wall = SystemTime::now();
            let (before, before_type) = (saved.state.state, saved.state.state_type);
            saved.state.observe(&done.spec.tracker, done.result, wall);
            let state = &saved.state;
            // The change history is not updated any more, but the push
            // receiver must see this change.
            let attempts = done.spec.tracker.attempts;
            let change =
                ((state.state, state.state_type) != (before, before_type)).then(|| ChangeRecord {
                    at: wall,
                    check: done.spec.name.clone(),
                    from: before,
                    to: state.state,
                    state_type: state.state_type,
                    attempt: state.attempt,
                    max_attempts: attempts,
                    summary: state
                        .last_result
                        .as_ref()
                        .map(|r| r.summary.clone())
                        .unwrap_or_default(),
                });
            self.push.record_result(&done.spec.name, state, attempts, wall, change.as_ref());
        }
    }
}

/// Hands an event, held or not, to the actions with its moment.
fn dispatch_held(
    actions: &mut Actions,
    spec: &CheckConfig,
    planned: &mut BTreeMap<String, Planned>,
    held: Held,
) {
    let Held { event, flapping, hard_since, at, .. } = held;
    actions.dispatch(spec, event, Moment { flapping, hard_since, now: at, planned });
}

fn log_change(change: &ChangeRecord) {
    let (check, from, to) = (&change.check, change.from, change.to);
    let kind = format!("{:?}", change.state_type).to_uppercase();
    let attempt = format!("{}/{}", change.attempt, change.max_attempts);
    if to == State::Ok {
        info!(message = "State change.", %check, %from, %to, state_type = %kind, %attempt, summary = %change.summary);
    } else {
        warn!(message = "State change.", %check, %from, %to, state_type = %kind, %attempt, summary = %change.summary);
    }
}

/// The outcome of the state write in progress; pending while there is none.
/// Cancel-safe: the write goes on and is awaited again on the next call.
async fn write_finished(
    writing: &mut Option<JoinHandle<anyhow::Result<()>>>,
) -> anyhow::Result<()> {
    let Some(handle) = writing else { return std::future::pending().await };
    let result = handle.await;
    *writing = None;
    result.unwrap_or_else(|error| Err(anyhow::anyhow!("the state writer failed: {error}")))
}

/// Runs a built-in check on a blocking thread, with the check's timeout:
/// statvfs on a dead network mount blocks, and must not block the loop.
///
/// A run that times out leaves its thread stuck where the kernel holds it;
/// the check itself refuses to start again until that thread returns
/// ([`BuiltinCheck::run`]), so a stuck check costs one thread, not one per
/// interval.
pub async fn run_builtin(
    check: Arc<BuiltinCheck>,
    limit: Duration,
    timeout_state: State,
) -> CheckResult {
    let started = Instant::now();
    let activity = check.activity();
    let prefix = check.name().to_uppercase();
    match tokio::time::timeout(limit, tokio::task::spawn_blocking(move || check.run())).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => CheckResult::from_run(RawRun {
            termination: &Termination::Exited(State::Unknown.exit_code().into()),
            stdout: "built-in check failed unexpectedly; see the agent log",
            stderr: "",
            duration: started.elapsed(),
            truncated: false,
            timeout_state,
        }),
        Err(_) => CheckResult {
            state: timeout_state,
            exit_code: None,
            summary: format!(
                "{prefix} {} - timed out after {} ({activity}); \
                 not started again until that run returns",
                timeout_state.label(),
                humantime::format_duration(limit),
            ),
            long_output: String::new(),
            perfdata: Vec::new(),
            duration: started.elapsed(),
            timed_out: true,
            truncated: false,
        },
    }
}
