//! The agent's configuration: a TOML file with `[agent]`, `[[check]]`,
//! `[[action]]`, `[pull]`, `[metrics]`, `[[push]]` and `[nrpe]` tables, plus the files its `include` patterns name.
//!
//! [`load`] finds and reads the file (or falls back to the embedded default
//! config, [`DEFAULT_CONFIG`]), [`parse`] turns text into a validated
//! [`Config`] with every default filled in. Both report *every* problem they
//! can find, each as `FILE:LINE:COLUMN: MESSAGE` pointing at the key or value
//! to edit, in [`ConfigErrors`]. Things that let the agent run but deserve a
//! look (a plugin that is not installed yet) are [`Config::warnings`].
//!
//! The user documentation of every key is `docs/configuration.md`.

mod build;
mod duration;
mod error;
mod nrpe;
mod ownership;
pub mod paths;
mod pull;
mod raw;
mod size;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use monchero_core::State;
use monchero_core::builtin::BuiltinCheck;
use monchero_core::command::CommandLine;
use monchero_core::ratelimit::Rate;
use monchero_core::template::{Escape, Template};
use monchero_core::tracker::TrackerConfig;

pub use error::{ConfigError, ConfigErrors};
pub use nrpe::{NrpeCommand, NrpeConfig, NrpeTls};
pub use pull::{MetricsConfig, PullConfig};

/// The config `monchero run` uses when there is no config file: built-in
/// checks of the machine it runs on, no plugins needed.
pub const DEFAULT_CONFIG: &str = include_str!("default.toml");

/// A validated configuration with all defaults applied.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where it was read from.
    pub source: ConfigSource,
    /// The `[agent]` settings.
    pub agent: AgentConfig,
    /// Every `[[check]]`, in file order; those of included files follow the
    /// main file's own, file by file in sorted order.
    pub checks: Vec<CheckConfig>,
    /// Every `[[action]]`, in the same order.
    pub actions: Vec<ActionConfig>,
    /// `[pull]`: the mTLS API; off when absent.
    pub pull: Option<PullConfig>,
    /// `[metrics]`: `/metrics` over plain HTTP; off when absent.
    pub metrics: Option<MetricsConfig>,
    /// Every `[[push]]` target, in the same order.
    pub push: Vec<PushConfig>,
    /// `[nrpe]`: the listener `check_nrpe` polls; off when absent.
    pub nrpe: Option<NrpeConfig>,
    /// Problems that do not stop the agent, e.g. a plugin not installed yet
    /// (its check reports UNKNOWN until it is).
    pub warnings: Vec<ConfigError>,
}

/// Where a [`Config`] came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// A file: the one given with `--config`, or the default path.
    File(PathBuf),
    /// [`DEFAULT_CONFIG`], because no file was found.
    Embedded,
}

impl fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigSource::File(path) => write!(f, "{}", path.display()),
            ConfigSource::Embedded => f.write_str("the embedded default config"),
        }
    }
}

/// The agent's own settings, from `[agent]`.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentConfig {
    /// The name actions and `status` report; default: the system's host name.
    pub hostname: String,
    /// Where state is kept; a relative path in the file is relative to the
    /// file's directory. Default: [`paths::default_state_dir`].
    pub state_dir: PathBuf,
    /// The control socket `status` and `check-now NAME` talk to; a relative
    /// path is relative to the file's directory. Default:
    /// `STATE_DIR/monchero.sock`; the packages use `/run/monchero/`.
    pub socket: PathBuf,
    /// How many checks may run at once; default 64.
    pub max_concurrent: usize,
    /// The window over which checks' first runs after a start are spread
    /// (Nagios's `max_service_check_spread`); default 10 s, so a fresh
    /// agent has a full picture within seconds.
    pub max_check_spread: Duration,
    /// Where bare plugin names are looked up before `PATH`; default
    /// `monchero_core::plugin_path::DEFAULT_PLUGIN_PATH`.
    pub plugin_path: Vec<PathBuf>,
    /// The default state of a check that times out; default UNKNOWN.
    pub timeout_state: State,
}

/// One check with every setting resolved.
#[derive(Debug, Clone)]
pub struct CheckConfig {
    /// Unique among the checks.
    pub name: String,
    /// What to run.
    pub command: CheckCommand,
    /// Time between runs while the state is OK or hard; default `[agent]
    /// interval`, else 60 s.
    pub interval: Duration,
    /// Time between runs while a problem is soft; default `[agent]
    /// retry_interval`, else the shorter of `interval` and 15 s.
    pub retry_interval: Duration,
    /// Longest a run may take; default `[agent] timeout`, else 60 s.
    pub timeout: Duration,
    /// Soft/hard debouncing and flap detection.
    pub tracker: TrackerConfig,
    /// The state of a run that timed out.
    pub timeout_state: State,
    /// Names of the actions to run on this check's hard changes; each one is
    /// an [`ActionConfig`] of the same config.
    pub actions: Vec<String>,
    /// Variables added to the plugin's environment, in file order.
    pub env: Vec<(String, String)>,
}

/// What a check runs.
#[derive(Debug, Clone)]
pub enum CheckCommand {
    /// An external plugin. A bare program name is already resolved against
    /// `plugin_path`; one not found there is left for the `PATH` lookup.
    Plugin(CommandLine),
    /// `builtin:NAME ARGS...`: a check run in-process.
    Builtin(BuiltinCheck),
    /// `builtin:agent`: the agent's own health, which only the daemon knows.
    AgentSelf,
}

/// One `[[action]]`: what runs or is sent on the hard state changes it
/// subscribes to.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionConfig {
    /// Unique among the actions; what checks list in `actions`.
    pub name: String,
    /// What it does.
    pub kind: ActionKind,
    /// The changes it runs on, without duplicates; default all of them.
    pub on: Vec<ActionTrigger>,
    /// Longest a run (a command, one HTTP request, one mail) may take;
    /// default 30 s.
    pub timeout: Duration,
    /// Run the check again as soon as the action finishes: the remediation
    /// loop ("restart the service, then see whether it is back").
    pub recheck: bool,
    /// Run on a problem only once it has lasted this long (Nagios's
    /// `first_notification_delay`); a problem gone sooner sends nothing,
    /// not even its recovery.
    pub delay: Option<Duration>,
    /// Run again this often while the problem lasts (Nagios's
    /// `notification_interval`).
    pub repeat: Option<Duration>,
    /// At most this many runs per window, per action; the latest event of
    /// each check over the limit is held and sent with the count of those
    /// skipped. Default: none for commands, 20 per 10 minutes for notifiers.
    pub rate_limit: Option<Rate>,
    /// How a notifier's failed deliveries are retried.
    pub retry: RetryPolicy,
}

/// What an action does.
#[derive(Debug, Clone, PartialEq)]
pub enum ActionKind {
    /// `kind = "command"`: runs a program with the event.
    Command(CommandLine),
    /// `kind = "webhook"`: an HTTP(S) request.
    Webhook(WebhookConfig),
    /// `kind = "email"`: a mail over SMTP or sendmail.
    Email(EmailConfig),
    /// `kind = "collect"`: runs a program when a check turns non-OK and
    /// attaches its output to the problem events that follow.
    Collect(CollectConfig),
}

impl ActionKind {
    /// Whether deliveries go through the durable queue (notifiers) rather
    /// than the action pool (commands, collects).
    pub fn is_notifier(&self) -> bool {
        matches!(self, ActionKind::Webhook(_) | ActionKind::Email(_))
    }
}

/// A `collect` action: what it runs and when, and how much of its output
/// is kept.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectConfig {
    /// The command, under the plugin execution policy.
    pub command: CommandLine,
    /// At the first non-OK result or only at the hard change.
    pub when: CollectWhen,
    /// The most of its output kept (stdout, then stderr), in bytes.
    pub max_output: usize,
}

/// When a `collect` action runs in a problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollectWhen {
    /// At the first non-OK result (`when = "soft"`, the default), so the
    /// data is from the moment of failure.
    Soft,
    /// At the hard change (`when = "hard"`).
    Hard,
}

/// Retries of a notifier's failed delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The first retry waits about this long (`retry_base`, default 10 s);
    /// each further one twice as long.
    pub base: Duration,
    /// No retry waits longer (`retry_max`, default 10 min).
    pub max: Duration,
    /// A delivery still failing this long after its event is given up
    /// (`retry_for`, default 24 h).
    pub give_up_after: Duration,
}

/// A webhook: where and what to send.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookConfig {
    /// An http:// or https:// URL.
    pub url: String,
    /// Default POST.
    pub method: String,
    /// Extra headers, values as templates (no escaping).
    pub headers: Vec<(String, Template)>,
    /// The body; `None` sends the event as JSON.
    pub body: Option<Template>,
    /// How placeholders in `body` are escaped: JSON unless a `Content-Type`
    /// header says the body is something else.
    pub escape: Escape,
    /// PEM certificates trusted instead of the system's roots.
    pub ca_file: Option<PathBuf>,
}

/// A mail notifier.
#[derive(Debug, Clone, PartialEq)]
pub struct EmailConfig {
    /// Recipients, as `addr@example.org` or `Name <addr@example.org>`.
    pub to: Vec<String>,
    /// The sender.
    pub from: String,
    /// Subject template.
    pub subject: Template,
    /// Body template (plain text).
    pub body: Template,
    /// How the mail leaves the host.
    pub transport: MailTransport,
}

/// How a mail is handed on.
#[derive(Debug, Clone, PartialEq)]
pub enum MailTransport {
    /// An SMTP server.
    Smtp(SmtpConfig),
    /// A local sendmail-compatible program.
    Sendmail(PathBuf),
}

/// An SMTP server and how to talk to it.
#[derive(Debug, Clone, PartialEq)]
pub struct SmtpConfig {
    /// Host name or address.
    pub host: String,
    /// Port; default 25 for smtp://, 465 for smtps://.
    pub port: u16,
    /// Transport security.
    pub tls: SmtpTls,
    /// Login, with the password read from `password_file` at each send.
    pub username: Option<String>,
    /// Holds the password (its first line); never copied into logs or state.
    pub password_file: Option<PathBuf>,
}

/// Transport security of an SMTP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// smtps://: TLS from the first byte.
    Implicit,
    /// STARTTLS, refusing to go on without it.
    Required,
    /// STARTTLS when the server offers it, plain text otherwise.
    Opportunistic,
    /// Plain text (a relay on localhost).
    Never,
}

/// One `[[push]]`: a server that results and state changes are delivered
/// to, through a spool of their own (see `crate::push`).
#[derive(Debug, Clone, PartialEq)]
pub struct PushConfig {
    /// Unique among the targets; names the spool directory
    /// (`STATE_DIR/spool/NAME`).
    pub name: String,
    /// Where batches are POSTed: https, or http to a loopback address.
    pub url: reqwest::Url,
    /// The identity sent with every batch; default `[agent] hostname`.
    pub agent: String,
    /// The CA the server's certificate must chain to instead of the
    /// system's roots (pinning).
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key (PEM) for mutual TLS.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// A file holding a bearer token.
    pub token_file: Option<PathBuf>,
    /// How often the spool is flushed and a batch sent; default 10 s.
    pub interval: Duration,
    /// A heartbeat record goes out after this long without any record;
    /// default 60 s.
    pub heartbeat: Duration,
    /// Limit on connecting and on each request; default 10 s.
    pub timeout: Duration,
    /// Most records in one batch; default 500.
    pub batch_max: usize,
    /// The spool's bound in bytes; default 64 MiB.
    pub spool_max: u64,
    /// What the server speaks; `kind` in the file, default `monchero`.
    pub kind: PushKind,
    /// HTTP basic auth: the user name and the file holding the password.
    pub basic_auth: Option<(String, PathBuf)>,
    /// Extra HTTP headers sent with every request (`headers`, remote write
    /// only: e.g. `X-Scope-OrgID` for Mimir's tenants).
    pub headers: Vec<(String, String)>,
}

/// The protocol of a push target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushKind {
    /// Monchero's own push protocol (`docs/push-protocol.md`).
    Monchero,
    /// Passive check results through the Icinga 2 REST API; `url` is the
    /// API's base (`https://icinga.example.net:5665`).
    Icinga2 {
        /// The Icinga host object the services belong to; default the
        /// agent identity.
        host: String,
        /// Whether a missing host or service is created as a passive object.
        create_objects: bool,
    },
    /// Prometheus remote write 1.0; `url` is the receiver's endpoint.
    RemoteWrite,
}

/// The password in a `password_file`: its first line, without the line
/// end; `None` when there is none or it is not UTF-8.
pub fn password_line(bytes: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(bytes).ok()?;
    let line = text.lines().next()?.trim_end_matches('\r');
    (!line.is_empty()).then(|| line.to_owned())
}

/// A kind of event an action subscribes to; the names are the config's.
pub use monchero_core::event::Trigger as ActionTrigger;

/// Loads the configuration.
///
/// `explicit` is the `--config` path: it must exist, and an error names it
/// otherwise. Without it the default path ([`paths::default_config_path`])
/// is read if it exists, and [`DEFAULT_CONFIG`] is used if it does not; a
/// default file that exists but cannot be read is an error, never a silent
/// fallback.
pub fn load(explicit: Option<&Path>) -> Result<Config, ConfigErrors> {
    let path = match explicit {
        Some(path) => path.to_owned(),
        None => {
            let path = paths::default_config_path();
            if matches!(path.try_exists(), Ok(false)) {
                return build::parse_embedded(DEFAULT_CONFIG);
            }
            path
        }
    };
    let text = std::fs::read_to_string(&path).map_err(|error| {
        let hint = if explicit.is_some() {
            "check the path given to --config"
        } else {
            "fix its permissions, or remove it to run on the embedded default config"
        };
        ConfigErrors(vec![ConfigError {
            file: path.display().to_string(),
            line: 1,
            column: 1,
            message: format!("cannot read the config file: {error}; {hint}"),
        }])
    })?;
    parse(&text, &path)
}

/// Where a running agent keeps its state and listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locations {
    /// `[agent] state_dir`, or the default.
    pub state_dir: PathBuf,
    /// `[agent] socket`, or the default in `state_dir`.
    pub socket: PathBuf,
}

/// The state directory and socket a config names, without validating the
/// rest: what `status` needs, fast with a thousand checks, and still there
/// while an operator's edit has broken the config (the agent runs on its
/// last good one). `None` when the file cannot be read or is not TOML.
pub fn locations(explicit: Option<&Path>) -> Option<Locations> {
    let path = explicit.map_or_else(paths::default_config_path, Path::to_owned);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound && explicit.is_none() => {
            let state_dir = paths::default_state_dir();
            return Some(Locations { socket: paths::default_socket(&state_dir), state_dir });
        }
        Err(_) => return None,
    };
    // Parsing a thousand [[check]] tables to read two keys was most of
    // `status`'s time: parse the [agent] table alone when it is written
    // the usual way, the whole file otherwise.
    let table: toml::Table = agent_section(&text).unwrap_or(&text).parse().ok()?;
    let agent = table.get("agent");
    let dir = path.parent().unwrap_or(Path::new("."));
    let setting = |key: &str| match agent.and_then(|agent| agent.get(key)) {
        Some(value) => value.as_str().map(|value| Some(dir.join(value))),
        None => Some(None),
    };
    let state_dir = setting("state_dir")?.unwrap_or_else(paths::default_state_dir);
    let socket = setting("socket")?.unwrap_or_else(|| paths::default_socket(&state_dir));
    Some(Locations { state_dir, socket })
}

/// The text of a `[agent]` table header up to the next table header, when
/// the file has exactly one such header and no other mention of `agent` a
/// TOML parser could read as that table (dotted keys, inline tables).
fn agent_section(text: &str) -> Option<&str> {
    let header = |line: &str| line.trim_start().starts_with('[');
    let mut offset = 0;
    let mut start = None;
    let mut end = text.len();
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        if trimmed == "[agent]" {
            if start.is_some() {
                return None;
            }
            start = Some(offset);
        } else if start.is_some() && end == text.len() && header(line) {
            end = offset;
        } else if !header(line) && trimmed.starts_with("agent") {
            return None;
        }
        offset += line.len();
    }
    start.map(|start| &text[start..end])
}

/// Parses config `text` as if it had been read from `file`: errors name
/// `file`, and `include` patterns and relative paths start from its
/// directory. Used by [`load`], by tests, and for a reload.
pub fn parse(text: &str, file: &Path) -> Result<Config, ConfigErrors> {
    build::parse_file(text, file)
}
