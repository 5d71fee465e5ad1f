//! `monchero check-now`: run a plugin ad hoc, or configured checks now, and
//! show the results. The exit status is the (worst) state, so the command
//! is itself a valid plugin wrapper.
//!
//! Configured checks run inside the daemon when it is running, so their
//! state (and actions) update at once: the operator who fixed something
//! sees the recovery immediately. With `--local`, or when no daemon
//! answers, they run in this process and change nothing.

use std::io::{self, Write};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use monchero_core::builtin::BuiltinCheck;
use monchero_core::command::CommandLine;
use monchero_core::plugin_path::DEFAULT_PLUGIN_PATH;
use monchero_core::runner::{Runner, RunnerConfig};
use monchero_core::{CheckResult, State};
use serde::Serialize;

use crate::EX_USAGE;
use crate::cli::CheckNowArgs;
use crate::color::Palette;
use crate::config::{self, CheckCommand, CheckConfig};
use crate::control::{self, ClientError, NamedResult, Request, Response};
use crate::daemon;
use crate::render;

/// The `check-now --json` object for an ad-hoc command (no name).
#[derive(Debug, Serialize)]
struct AdHoc<'a> {
    name: Option<&'a str>,
    #[serde(flatten)]
    result: &'a CheckResult,
}

/// How long to wait for the daemon to run the requested checks: their
/// timeouts plus slack, since they may queue behind `max_concurrent`.
const DAEMON_SLACK: Duration = Duration::from_secs(30);

/// Runs what was asked and prints the results; returns the exit status.
pub fn run(args: &CheckNowArgs, palette: &Palette) -> anyhow::Result<u8> {
    if !args.command.is_empty() {
        return ad_hoc(args, palette);
    }
    if args.names.is_empty() && !args.all {
        eprintln!(
            "monchero check-now: say what to run: check names, --all, or -- COMMAND [ARGS...]\n\n\
             Usage: monchero check-now [--json] NAME... | --all | -- COMMAND [ARGS...]"
        );
        return Ok(EX_USAGE);
    }
    configured(args, palette)
}

fn ad_hoc(args: &CheckNowArgs, palette: &Palette) -> anyhow::Result<u8> {
    let (program, rest) =
        args.command.split_first().map_or(("", &[][..]), |(p, r)| (p.as_str(), r));
    let result = if let Some(name) = program.strip_prefix("builtin:") {
        match BuiltinCheck::from_args(name, rest) {
            // Bounded like a plugin: a builtin:log on a FIFO or a disk on a
            // hung mount must not hang the command. The stuck thread is
            // left behind; the process exits without waiting for it.
            Ok(check) => {
                let runtime = runtime()?;
                let timeout = args.timeout;
                let result =
                    runtime.block_on(daemon::run_builtin(Arc::new(check), timeout, State::Unknown));
                runtime.shutdown_background();
                result
            }
            Err(error) => {
                eprintln!("monchero check-now: {error}");
                return Ok(EX_USAGE);
            }
        }
    } else {
        let mut command = match CommandLine::from_argv(args.command.clone()) {
            Ok(command) => command,
            Err(error) => {
                eprintln!("monchero check-now: {error}");
                return Ok(EX_USAGE);
            }
        };
        command.resolve_plugin(DEFAULT_PLUGIN_PATH);
        let runner = Runner::new(RunnerConfig { timeout: args.timeout, ..RunnerConfig::default() });
        runtime()?.block_on(runner.run(&command))
    };
    let state = result.state;
    print(|out| {
        if args.json {
            json_line(out, &AdHoc { name: None, result: &result })
        } else {
            render::write_result(out, None, &result, palette)
        }
    })?;
    Ok(state.exit_code())
}

fn configured(args: &CheckNowArgs, palette: &Palette) -> anyhow::Result<u8> {
    let path = args.config.config.clone().or_else(config::paths::client_fallback_config);
    let config = match config::load(path.as_deref()) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("{errors}");
            return Ok(EX_USAGE);
        }
    };
    let specs: Vec<&CheckConfig> = if args.all {
        config.checks.iter().collect()
    } else {
        let mut specs = Vec::new();
        for name in &args.names {
            match config.checks.iter().find(|check| &check.name == name) {
                Some(spec) => specs.push(spec),
                None => {
                    let known: Vec<&str> = config.checks.iter().map(|c| c.name.as_str()).collect();
                    eprintln!(
                        "monchero check-now: no check is named {name:?} in {}; configured checks: {}",
                        config.source,
                        known.join(", ")
                    );
                    return Ok(EX_USAGE);
                }
            }
        }
        specs
    };

    let results = if args.local {
        run_locally(&specs)?
    } else {
        let wait = specs.iter().map(|spec| spec.timeout).max().unwrap_or_default() + DAEMON_SLACK;
        let request = Request::Run { checks: args.names.clone(), all: args.all };
        match control::request(&config.agent.socket, &request, wait) {
            Ok(Response::Ran { results }) => results,
            Ok(Response::Error { message }) => anyhow::bail!("the agent refused: {message}"),
            Ok(other @ (Response::Status(_) | Response::Metrics(_))) => {
                anyhow::bail!("the agent answered a run request with {other:?}, not results")
            }
            Err(ClientError::NotRunning) => {
                eprintln!(
                    "monchero check-now: the agent is not running; running here, its state is not updated"
                );
                run_locally(&specs)?
            }
            Err(ClientError::Failed(error)) => return Err(error),
        }
    };

    let worst = results.iter().map(|named| named.result.state).fold(State::Ok, State::worst);
    print(|out| {
        if args.json && (args.all || results.len() > 1) {
            json_line(out, &results)
        } else if args.json {
            results.iter().try_for_each(|named| json_line(out, named))
        } else {
            results.iter().try_for_each(|named| {
                render::write_result(out, Some(&named.name), &named.result, palette)
            })
        }
    })?;
    Ok(worst.exit_code())
}

/// Runs configured checks in this process, concurrently.
fn run_locally(specs: &[&CheckConfig]) -> anyhow::Result<Vec<NamedResult>> {
    let runtime = runtime()?;
    let tasks: Vec<_> = specs
        .iter()
        .map(|spec| {
            let spec = (*spec).clone();
            runtime.spawn(async move {
                let result = run_one(&spec).await;
                NamedResult { name: spec.name, result }
            })
        })
        .collect();
    let results = runtime.block_on(async {
        let mut results = Vec::with_capacity(tasks.len());
        for task in tasks {
            results.push(task.await.context("a check's task failed")?);
        }
        Ok(results)
    });
    // A built-in check that timed out still holds a blocking thread;
    // dropping the runtime would wait for it.
    runtime.shutdown_background();
    results
}

async fn run_one(spec: &CheckConfig) -> CheckResult {
    match &spec.command {
        CheckCommand::Plugin(command) => daemon::runner_for(spec).run(command).await,
        CheckCommand::Builtin(check) => {
            daemon::run_builtin(Arc::new(check.clone()), spec.timeout, spec.timeout_state).await
        }
        CheckCommand::AgentSelf => CheckResult {
            state: State::Unknown,
            exit_code: None,
            summary: "the agent check runs only inside the running agent".to_owned(),
            long_output: String::new(),
            perfdata: Vec::new(),
            duration: Duration::ZERO,
            timed_out: false,
            truncated: false,
        },
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn json_line(out: &mut impl Write, value: &impl Serialize) -> io::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    writeln!(out)
}

/// Writes to stdout; a reader that closed the pipe early (`| head`) wanted
/// no more, which is not an error.
pub fn print(
    write: impl FnOnce(&mut io::BufWriter<io::StdoutLock<'static>>) -> io::Result<()>,
) -> anyhow::Result<()> {
    // stdout is line-buffered, and a JSON document is one long line: without
    // a buffer of our own it goes out in 1 KiB writes.
    let mut out = io::BufWriter::with_capacity(64 * 1024, io::stdout().lock());
    match write(&mut out).and_then(|()| out.flush()) {
        Err(error) if error.kind() != io::ErrorKind::BrokenPipe => {
            Err(error).context("cannot write to stdout")
        }
        _ => Ok(()),
    }
}
