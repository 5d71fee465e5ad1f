//! What a query gets back: the version for `_NRPE_CHECK`, the output and
//! state of a `[[nrpe.command]]` run now through the plugin runner, or the
//! fresh result of a configured `[[check]]` run now through the daemon (as
//! `check-now NAME` does), and NRPE's own wording for an unknown command.

use monchero_core::command::CommandLine;
use monchero_core::nrpe::Query;
use monchero_core::nrpe::query::HELLO_COMMAND;
use monchero_core::runner::{Runner, RunnerConfig};
use monchero_core::{CheckResult, State};
use tokio::sync::mpsc;

use crate::config::NrpeCommand;
use crate::control::{self, Incoming, Request, Response};
use crate::daemon::KEPT_OUTPUT;

use super::Served;

/// The state and text of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Sent as the packet's result code.
    pub state: State,
    /// The plugin's output as NRPE returns it: summary, perfdata after
    /// `|`, long output on the following lines.
    pub text: String,
}

impl Answer {
    fn unknown(text: String) -> Answer {
        Answer { state: State::Unknown, text }
    }
}

/// Answers `query` with what `served` configures.
pub async fn answer(query: &Query, served: &Served, to_daemon: &mpsc::Sender<Incoming>) -> Answer {
    if query.command == HELLO_COMMAND {
        let text = format!("NRPE v4.1.0 (Monchero {})", env!("CARGO_PKG_VERSION"));
        return Answer { state: State::Ok, text };
    }
    if let Some(command) = served.config.commands.iter().find(|c| c.name == query.command) {
        return run_command(command, query).await;
    }
    if served.checks.contains(&query.command) {
        if !query.arguments.is_empty() {
            let text = format!(
                "NRPE: '{}' is a configured check, which takes no arguments",
                query.command
            );
            return Answer::unknown(text);
        }
        return run_check(&query.command, to_daemon).await;
    }
    Answer::unknown(format!("NRPE: Command '{}' not defined", query.command))
}

/// Runs a `[[nrpe.command]]` with the query's arguments in its `$ARGn$`.
async fn run_command(command: &NrpeCommand, query: &Query) -> Answer {
    let line = match CommandLine::from_argv(query.substitute(&command.argv)) {
        Ok(line) => line,
        Err(error) => return Answer::unknown(format!("NRPE: {}: {error}", command.name)),
    };
    let runner = Runner::new(RunnerConfig {
        timeout: command.timeout,
        output_limit: KEPT_OUTPUT,
        ..RunnerConfig::default()
    });
    from_result(&runner.run(&line).await)
}

/// Runs the configured check `name` now, through the daemon.
async fn run_check(name: &str, to_daemon: &mpsc::Sender<Incoming>) -> Answer {
    let request = Request::Run { checks: vec![name.to_owned()], all: false };
    match control::ask(to_daemon, request).await {
        Ok(Response::Ran { results }) => match results.first() {
            Some(named) => from_result(&named.result),
            None => Answer::unknown(format!("NRPE: check '{name}' gave no result")),
        },
        Ok(Response::Error { message }) => Answer::unknown(format!("NRPE: {message}")),
        Ok(_) => Answer::unknown(format!("NRPE: check '{name}' got an unexpected answer")),
        Err(error) => Answer::unknown(format!("NRPE: {error:#}")),
    }
}

/// A result in the plugin-output form `check_nrpe` prints.
fn from_result(result: &CheckResult) -> Answer {
    let mut text = result.summary.clone();
    if !result.perfdata.is_empty() {
        text.push_str(" |");
        for datum in &result.perfdata {
            text.push(' ');
            text.push_str(&datum.to_string());
        }
    }
    if !result.long_output.is_empty() {
        text.push('\n');
        text.push_str(&result.long_output);
    }
    Answer { state: result.state, text }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use monchero_core::output;

    use super::*;

    #[test]
    fn a_result_reads_back_as_the_plugin_printed_it() {
        let printed = "DISK OK - 42% used | /=42%;80;90 /var=10MB\nsda1 fine\nsda2 fine";
        let parsed = output::parse(printed);
        let result = CheckResult {
            state: State::Ok,
            exit_code: Some(0),
            summary: parsed.summary.to_owned(),
            long_output: parsed.long_output.clone().into_owned(),
            perfdata: parsed.perfdata().filter_map(Result::ok).map(|d| d.to_owned_data()).collect(),
            duration: Duration::ZERO,
            timed_out: false,
            truncated: false,
        };
        assert_eq!(from_result(&result).text, printed);
    }
}
