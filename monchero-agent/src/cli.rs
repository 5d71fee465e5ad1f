//! The command-line interface, declared with clap's derive API.

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Monchero: runs Nagios/Icinga plugins and built-in checks, keeps their
/// state, and acts when it changes.
#[derive(Debug, Parser)]
#[command(name = "monchero", version, about, max_term_width = 100)]
pub struct Cli {
    /// When to colour the output: auto (on a terminal, unless NO_COLOR is
    /// set), always or never.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true)]
    pub color: ColorChoice,

    #[command(subcommand)]
    pub command: Command,
}

/// The `--color` choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Colour on a terminal, unless NO_COLOR is set.
    Auto,
    /// Always colour (also when piped).
    Always,
    /// Never colour.
    Never,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a plugin now and show its result; exits with its state (0-3).
    ///
    /// Example: monchero check-now -- check_load -w 5,4,3 -c 10,8,6
    #[command(name = "check-now")]
    CheckNow(CheckNowArgs),
}

/// Arguments of `monchero check-now`.
#[derive(Debug, Args)]
pub struct CheckNowArgs {
    /// Print the result as JSON instead of text.
    #[arg(long)]
    pub json: bool,

    /// Kill the plugin after this long (e.g. 10s, 1m30s; a bare number is
    /// seconds).
    #[arg(long, value_name = "D", value_parser = parse_duration, default_value = "60s")]
    pub timeout: Duration,

    /// The plugin and its arguments, after `--`. A bare name is looked up in
    /// the monitoring-plugins directories, then on PATH.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// A duration as people write it: `30s`, `5m`, `1h30m`, or plain seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(secs)
            .map_err(|_| format!("{text:?} is not a usable number of seconds"));
    }
    humantime::parse_duration(text)
        .map_err(|error| format!("{text:?}: {error} (write e.g. 30s, 5m, 1h)"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn durations_accept_units_and_bare_seconds() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2.5"), Ok(Duration::from_millis(2500)));
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("soon").unwrap_err().contains("write e.g. 30s"));
    }

    #[test]
    fn the_cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
