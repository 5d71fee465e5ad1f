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
    /// monchero ca init DIR; monchero ca serve DIR --listen 0.0.0.0:9444;
    /// monchero ca ticket DIR NAME; monchero ca sign DIR agent.csr|NAME;
    /// monchero ca list DIR; monchero ca revoke DIR NAME. See
    /// docs/certificates.md.
    #[command(subcommand)]
    Ca(CaCommand),

    /// Keys and certificate requests for `monchero ca sign`, and enrolment
    /// with `monchero ca serve`.
    #[command(subcommand)]
    Cert(CertCommand),

    /// Convert another agent's configuration to Monchero's.
    ///
    /// monchero import nrpe /etc/nagios/nrpe.cfg >> /etc/monchero/agent.toml
    #[command(subcommand)]
    Import(ImportCommand),

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
    /// (mode 0600, keep it there), an empty revocation list crl.pem and the
    /// ticket secret ticket.key (0600); prints the CA's fingerprint.
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
    /// Sign a certificate request: a PEM file (from `monchero cert
    /// request`), or a request `ca serve` queued, by its name or id (see
    /// `ca list`). Prints the certificate (PEM) and keeps a copy in
    /// DIR/issued/; a queued request's agent collects it.
    Sign {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// The request: a PEM file, or a queued request's name or id.
        #[arg(value_name = "CSR|NAME|ID")]
        csr: String,
        /// How long the certificate is valid.
        #[arg(long, value_name = "D", value_parser = parse_duration, default_value = "397days")]
        validity: Duration,
        /// Write the certificate to FILE (which must not exist) instead of
        /// standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Refuse a request `ca serve` queued (by name or id); its agent stops
    /// waiting.
    Refuse {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        #[arg(value_name = "NAME|ID")]
        request: String,
    },
    /// Print the enrolment ticket for the certificate name NAME: with it,
    /// `monchero cert enrol` is signed at once by `ca serve`.
    Ticket {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        #[arg(value_name = "NAME", required_unless_present = "rotate")]
        name: Option<String>,
        /// Replace the ticket secret first: every ticket made before stops
        /// working.
        #[arg(long)]
        rotate: bool,
    },
    /// Serve enrolment, renewal and the CRL over HTTPS (see
    /// docs/certificates.md); prints the address and the CA fingerprint.
    Serve {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// The address to listen on, e.g. 0.0.0.0:9444 (port 0: any free one).
        #[arg(long, value_name = "ADDRESS")]
        listen: std::net::SocketAddr,
        /// A DNS name or IP address agents reach this server by (repeat
        /// it); default: the host name.
        #[arg(long, value_name = "NAME_OR_IP")]
        name: Vec<String>,
        /// How long the certificates it signs are valid.
        #[arg(long, value_name = "D", value_parser = parse_duration, default_value = "90days")]
        lifetime: Duration,
    },
    /// List the certificates the CA signed (serial, names, expiry,
    /// revoked), then the requests waiting for `ca sign`.
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

/// `monchero import ...`.
#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Print the `[nrpe]` table and `[[nrpe.command]]` entries equivalent to an
    /// nrpe.cfg (following its include= and include_dir=) on stdout;
    /// directives with no Monchero equivalent are listed on stderr with
    /// their file and line.
    Nrpe {
        #[arg(value_name = "FILE")]
        file: PathBuf,
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
    /// Get a certificate from `monchero ca serve` and install it for
    /// `[pull] cert_dir`: a new key (0600), the certificate, the CA
    /// certificate and the CRL. Rerun it (or use --wait) to collect a
    /// request that was queued.
    #[command(group(clap::ArgGroup::new("trust").required(true).args(["ca_fingerprint", "ca_file"])))]
    Enrol(EnrolArgs),
}

/// Arguments of `monchero cert enrol`.
#[derive(Debug, Args)]
pub struct EnrolArgs {
    /// The enrolment server, https://HOST:PORT.
    #[arg(long, value_name = "URL")]
    pub server: String,
    /// The ticket from `monchero ca ticket DIR NAME`; without a valid one
    /// the request waits for `monchero ca sign`.
    #[arg(long, value_name = "T")]
    pub ticket: Option<String>,
    /// The SHA-256 fingerprint of the CA certificate (printed by `ca init`
    /// and `ca serve`): the only CA trusted on first contact.
    #[arg(long, value_name = "SHA256")]
    pub ca_fingerprint: Option<String>,
    /// Or the CA certificate itself (PEM).
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// The certificate's name; default: the host name.
    #[arg(long, value_name = "N")]
    pub name: Option<String>,
    /// Another DNS name or IP address for the certificate (repeat it).
    #[arg(long, value_name = "NAME_OR_IP")]
    pub san: Vec<String>,
    /// The certificate directory; default: STATE_DIR/certs of the default
    /// state directory (/var/lib/monchero/certs as root).
    #[arg(long, value_name = "D")]
    pub dir: Option<PathBuf>,
    /// When the request is queued, wait until it is signed or refused.
    #[arg(long)]
    pub wait: bool,
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
