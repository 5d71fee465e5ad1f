//! The command-line interface, declared with clap's derive API.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// What `monchero --version` prints after the name: the crate version, the
/// git commit and the build date, which build.rs provides ("unknown"
/// commit outside a git checkout), e.g. `0.1.0 (abc123456 2026-11-27)`.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("MONCHERO_GIT_COMMIT"),
    " ",
    env!("MONCHERO_BUILD_DATE"),
    ")"
);

/// Monchero: runs Nagios/Icinga plugins and built-in checks, keeps their
/// state, and acts when it changes.
#[derive(Debug, Parser)]
#[command(name = "monchero", version = VERSION, about, max_term_width = 100)]
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
    /// Run the agent in the foreground (as systemd runs it).
    ///
    /// Without a config file it monitors this machine with built-in checks
    /// (load, memory, swap, disk, the agent itself).
    Run(RunArgs),

    /// Show the state of every check and the aggregate state.
    ///
    /// Exits with the aggregate state (0 OK, 1 WARNING, 2 CRITICAL,
    /// 3 UNKNOWN), so scripts can use it. Works when the agent is not
    /// running, from its last saved state.
    Status(StatusArgs),

    /// Run a plugin, or configured checks, now; exits with the (worst) state.
    ///
    /// Ad hoc: monchero check-now -- check_load -w 5,4,3 -c 10,8,6
    /// Configured: monchero check-now disk web   (or --all)
    #[command(name = "check-now")]
    CheckNow(CheckNowArgs),

    /// Work with the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),

    /// List the built-in checks, or the plugins with ready-made definitions.
    #[command(subcommand)]
    Check(CheckSubcommand),

    /// A small certificate authority for the pull API's mutual TLS.
    ///
    /// monchero ca init /etc/monchero/ca; monchero ca sign /etc/monchero/ca
    /// agent.csr > agent.pem; monchero ca list /etc/monchero/ca; monchero
    /// ca revoke /etc/monchero/ca NAME. See docs/certificates.md.
    #[command(subcommand)]
    Ca(CaCommand),

    /// Keys and certificate requests for `monchero ca sign`.
    #[command(subcommand)]
    Cert(CertCommand),

    /// Print man pages and shell completions, for packagers (hidden).
    #[command(subcommand, hide = true)]
    Generate(GenerateCommand),
}

/// `--config FILE`, shared by every command that reads the config.
#[derive(Debug, Args)]
pub struct ConfigArg {
    /// The config file. Default: /etc/monchero/agent.toml as root,
    /// $XDG_CONFIG_HOME/monchero/agent.toml otherwise; without one, the
    /// embedded default config.
    #[arg(long, short = 'c', value_name = "FILE", env = "MONCHERO_CONFIG")]
    pub config: Option<PathBuf>,
}

/// Arguments of `monchero run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub config: ConfigArg,
}

/// Arguments of `monchero status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub config: ConfigArg,

    /// Print the status as JSON.
    #[arg(long)]
    pub json: bool,

    /// Redraw every two seconds until interrupted.
    #[arg(long, conflicts_with_all = ["json", "wait_ok"])]
    pub watch: bool,

    /// Also list every state change of this recent period (e.g. 30m).
    #[arg(long, value_name = "D", value_parser = parse_duration)]
    pub changes: Option<Duration>,

    /// Wait until every check is in a hard OK state; exit 0 then, or with
    /// the aggregate state when --timeout passes first.
    #[arg(long)]
    pub wait_ok: bool,

    /// How long --wait-ok waits.
    #[arg(long, value_name = "D", value_parser = parse_duration, default_value = "5m", requires = "wait_ok")]
    pub timeout: Duration,

    /// Only these checks, each with its whole summary; the exit status is
    /// their worst state. Without names every check is listed, summaries
    /// cut to 1 KiB.
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
}

/// Arguments of `monchero check-now`.
#[derive(Debug, Args)]
pub struct CheckNowArgs {
    #[command(flatten)]
    pub config: ConfigArg,

    /// Print the result as JSON instead of text.
    #[arg(long)]
    pub json: bool,

    /// For an ad-hoc command: kill the plugin, or give up on the built-in
    /// check, after this long (e.g. 10s, 1m30s; a bare number is seconds).
    #[arg(long, value_name = "D", value_parser = parse_duration, default_value = "60s")]
    pub timeout: Duration,

    /// Run every configured check.
    #[arg(long, conflicts_with = "names")]
    pub all: bool,

    /// Run configured checks in this process instead of asking the running
    /// agent: their state and actions are not updated.
    #[arg(long)]
    pub local: bool,

    /// Configured checks to run, by name.
    #[arg(value_name = "NAME", conflicts_with = "command")]
    pub names: Vec<String>,

    /// A plugin and its arguments to run ad hoc, after `--`. A bare name is
    /// looked up in the monitoring-plugins directories, then on PATH;
    /// `builtin:NAME` runs a built-in check.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// `monchero config ...`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the config; print every error as FILE:LINE:COLUMN: cause.
    Check(ConfigArg),
}

/// `monchero generate ...`: assets built from these very definitions, so
/// the man pages and completions never disagree with `--help`.
/// `monchero ca ...`.
#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Create a CA in DIR: ca.pem (give it to agents and clients), ca.key
    /// (mode 0600, keep it there) and an empty revocation list crl.pem.
    Init {
        /// The CA directory; created with mode 0700.
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// The CA certificate's common name.
        #[arg(long, default_value = "Monchero CA")]
        name: String,
        /// How long the CA certificate is valid.
        #[arg(long, value_name = "D", value_parser = parse_duration, default_value = "10years")]
        validity: Duration,
    },
    /// Sign a certificate request (from `monchero cert request`); prints the
    /// certificate (PEM) and keeps a copy in DIR/issued/.
    Sign {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// The request, in PEM.
        #[arg(value_name = "CSR")]
        csr: PathBuf,
        /// How long the certificate is valid.
        #[arg(long, value_name = "D", value_parser = parse_duration, default_value = "397days")]
        validity: Duration,
        /// Write the certificate to FILE (which must not exist) instead of
        /// standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// List the certificates the CA signed: serial, names, expiry, revoked.
    List {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// Revoke every certificate issued to NAME and rewrite DIR/crl.pem;
    /// agents with `[pull] crl_file` refuse them once reloaded with it.
    Revoke {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        #[arg(value_name = "NAME")]
        name: String,
    },
}

/// `monchero cert ...`.
#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// Make NAME.key (mode 0600) and NAME.csr in --dir for `monchero ca
    /// sign`. NAME becomes the certificate's common name and DNS name.
    Request {
        #[arg(value_name = "NAME")]
        name: String,
        /// Another DNS name or IP address the certificate is for (repeat
        /// it), e.g. the address pollers connect to the agent by.
        #[arg(long, value_name = "NAME_OR_IP")]
        san: Vec<String>,
        /// Where to write the two files.
        #[arg(long, value_name = "DIR", default_value = ".")]
        dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum GenerateCommand {
    /// Print a man page (roff) to stdout.
    Man(ManArgs),
    /// Print the completion script for a shell to stdout.
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Arguments of `monchero generate man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// The page to print: `monchero` (the default) or one per subcommand,
    /// e.g. `monchero-check-now`.
    #[arg(value_name = "PAGE", default_value = "monchero", conflicts_with = "list")]
    pub page: String,

    /// Print the name of every page instead, one per line.
    #[arg(long)]
    pub list: bool,
}

/// `monchero check ...`
#[derive(Debug, Subcommand)]
pub enum CheckSubcommand {
    /// List the built-in checks: what each measures, its options, an example.
    List {
        /// Instead, list the monitoring-plugins that have a ready-made
        /// definition, and whether each is installed.
        #[arg(long)]
        plugins: bool,
    },
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
