//! `monchero check-now -- COMMAND...`: run one plugin ad hoc and show the
//! result. The exit status is the result's state, so the command is itself
//! a valid plugin wrapper.

use std::io::{self, Write};

use anyhow::Context;
use monchero_core::CheckResult;
use monchero_core::command::CommandLine;
use monchero_core::plugin_path::DEFAULT_PLUGIN_PATH;
use monchero_core::runner::{Runner, RunnerConfig};
use serde::Serialize;

use crate::EX_USAGE;
use crate::cli::CheckNowArgs;
use crate::color::Palette;
use crate::render;

/// The `check-now --json` object: the result with the check's name (none
/// for an ad-hoc command).
#[derive(Debug, Serialize)]
struct JsonResult<'a> {
    name: Option<&'a str>,
    #[serde(flatten)]
    result: &'a CheckResult,
}

/// Runs the command and prints its result; returns the exit status.
pub fn run(args: &CheckNowArgs, palette: &Palette) -> anyhow::Result<u8> {
    let mut command = match CommandLine::from_argv(args.command.clone()) {
        Ok(command) => command,
        Err(error) => {
            eprintln!("monchero check-now: {error}");
            return Ok(EX_USAGE);
        }
    };
    command.resolve_plugin(DEFAULT_PLUGIN_PATH);
    let runner = Runner::new(RunnerConfig { timeout: args.timeout, ..RunnerConfig::default() });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(runner.run(&command));

    let mut out = io::stdout().lock();
    let written = if args.json {
        write_json(&mut out, &result)
    } else {
        render::write_result(&mut out, &result, palette)
    };
    match written.and_then(|()| out.flush()) {
        // A reader that closed the pipe early (`| head`) wanted no more;
        // the state is still the answer.
        Err(error) if error.kind() != io::ErrorKind::BrokenPipe => {
            Err(error).context("cannot write the result to stdout")
        }
        _ => Ok(result.state.exit_code()),
    }
}

fn write_json(out: &mut impl Write, result: &CheckResult) -> io::Result<()> {
    serde_json::to_writer(&mut *out, &JsonResult { name: None, result })?;
    writeln!(out)
}
