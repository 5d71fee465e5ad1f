//! `[nrpe]` and its `[[nrpe.command]]` entries: the listener `check_nrpe`
//! polls, validated with the place of each mistake. Certificate and key
//! files are read here, so `config check` catches a wrong path before the
//! daemon starts.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use monchero_core::command::CommandLine;
use toml::Spanned;

use super::pull::addresses;
use super::raw::{RawNrpe, RawNrpeCommand};
use crate::nrpe::allowed::HostPattern;
use crate::pull::tls;

/// NRPE's own `command_timeout` default.
const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a client may take to send its query (NRPE's
/// `connection_timeout` is 300 s; a poller sends at once, so a silent
/// client is let go much sooner).
const DEFAULT_CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once when `max_connections` is not set.
const DEFAULT_MAX_CONNECTIONS: usize = 64;
/// Who may connect when `allowed_hosts` is not set: this machine, as in the
/// `nrpe.cfg` Debian installs.
const DEFAULT_ALLOWED_HOSTS: [&str; 2] = ["127.0.0.1", "::1"];

/// `[nrpe]`: an NRPE-compatible listener.
#[derive(Debug, Clone, PartialEq)]
pub struct NrpeConfig {
    /// Addresses to listen on.
    pub listen: Vec<SocketAddr>,
    /// Clients let in; others are closed before anything is read.
    pub allowed_hosts: Vec<HostPattern>,
    /// TLS settings; `None` when `tls = false` (`check_nrpe -n`).
    pub tls: Option<NrpeTls>,
    /// Whether a query may carry `!`-separated arguments (NRPE's
    /// `dont_blame_nrpe`).
    pub allow_arguments: bool,
    /// The default limit on a command's run.
    pub command_timeout: Duration,
    /// How long a client may take to complete TLS and send its query.
    pub connection_timeout: Duration,
    /// Connections served at once; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// The `[[nrpe.command]]` entries, in file order.
    pub commands: Vec<NrpeCommand>,
}

/// The TLS files of `[nrpe]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NrpeTls {
    /// The agent's certificate chain (PEM).
    pub cert: PathBuf,
    /// The agent's private key (PEM).
    pub key: PathBuf,
    /// When set, clients must present a certificate from this CA (NRPE's
    /// `ssl_client_certs = 2`).
    pub client_ca: Option<PathBuf>,
}

/// One `[[nrpe.command]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NrpeCommand {
    /// What `check_nrpe -c` names.
    pub name: String,
    /// The program and its arguments, split with shell quoting; `$ARGn$`
    /// is replaced inside each element at run time.
    pub argv: Vec<String>,
    /// The limit on one run.
    pub timeout: Duration,
}

/// `[nrpe]` as read: the table, where its header is, the keys already
/// reported, and each `[[nrpe.command]]` with its span and reported keys.
#[derive(Debug)]
pub(super) struct RawNrpeTables {
    pub raw: RawNrpe,
    pub header: usize,
    pub removed: Vec<String>,
    pub commands: Vec<(RawNrpeCommand, usize, Vec<String>)>,
}

/// Where a value was written, for errors: a byte offset in the main file.
type Report<'a> = &'a mut dyn FnMut(usize, String);

/// Builds `[nrpe]`; relative paths start at `dir`. `checks` are the
/// configured check names, which a command may not reuse. `None` when
/// something was reported.
pub(super) fn build_nrpe(
    tables: &RawNrpeTables,
    dir: &Path,
    checks: &[&str],
    report: Report<'_>,
) -> Option<NrpeConfig> {
    let RawNrpeTables { raw, header, removed, commands } = tables;
    let mut ok = true;
    let example = r#""0.0.0.0:5666""#;
    let listen = addresses(raw.listen.as_ref(), "[nrpe]", *header, example, removed, report);
    let allowed_hosts = match &raw.allowed_hosts {
        None => {
            DEFAULT_ALLOWED_HOSTS.iter().filter_map(|host| HostPattern::parse(host).ok()).collect()
        }
        Some(hosts) => {
            let mut parsed = Vec::with_capacity(hosts.len());
            for host in hosts {
                match HostPattern::parse(host.get_ref()) {
                    Ok(pattern) => parsed.push(pattern),
                    Err(error) => {
                        report(host.span().start, format!("allowed_hosts: {error}"));
                        ok = false;
                    }
                }
            }
            parsed
        }
    };
    let tls = build_tls(raw, *header, removed, dir, report);
    let max_connections = match &raw.max_connections {
        Some(max) if *max.get_ref() == 0 => {
            let message = "max_connections must be 1 or more: it is how many clients are \
                           served at once";
            report(max.span().start, message.to_owned());
            ok = false;
            DEFAULT_MAX_CONNECTIONS
        }
        Some(max) => *max.get_ref(),
        None => DEFAULT_MAX_CONNECTIONS,
    };
    let command_timeout =
        raw.command_timeout.as_ref().map_or(DEFAULT_COMMAND_TIMEOUT, |d| d.get_ref().0);
    let connection_timeout =
        raw.connection_timeout.as_ref().map_or(DEFAULT_CONNECTION_TIMEOUT, |d| d.get_ref().0);
    let mut built = Vec::with_capacity(commands.len());
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (command, at, removed) in commands {
        let Some(entry) = build_command(command, *at, removed, command_timeout, report) else {
            ok = false;
            continue;
        };
        let name_at = command.name.as_ref().map_or(*at, |name| name.span().start);
        if seen.insert(entry.name.clone(), name_at).is_some() {
            let message = format!(
                "nrpe command name {:?} is already used by another [[nrpe.command]]; give each \
                 a unique name",
                entry.name
            );
            report(name_at, message);
            ok = false;
        } else if checks.contains(&entry.name.as_str()) {
            let message = format!(
                "nrpe command name {:?} is also a [[check]]'s name; check_nrpe -c {} would be \
                 ambiguous: rename one (a query naming a [[check]] runs that check already)",
                entry.name, entry.name
            );
            report(name_at, message);
            ok = false;
        }
        built.push(entry);
    }
    Some(NrpeConfig {
        listen: listen?,
        allowed_hosts,
        tls: tls?,
        allow_arguments: raw.allow_arguments.unwrap_or(false),
        command_timeout,
        connection_timeout,
        max_connections,
        commands: built,
    })
    .filter(|_| ok)
}

/// `tls`, `cert`, `key` and `client_ca`: `Some(None)` for plain text.
fn build_tls(
    raw: &RawNrpe,
    header: usize,
    removed: &[String],
    dir: &Path,
    report: Report<'_>,
) -> Option<Option<NrpeTls>> {
    if raw.tls.as_ref().is_some_and(|tls| !*tls.get_ref()) {
        let mut ok = true;
        for (key, value) in [("cert", &raw.cert), ("key", &raw.key), ("client_ca", &raw.client_ca)]
        {
            if let Some(value) = value {
                let message = format!(
                    "{key} is set but tls = false: remove {key}, or remove tls = false to \
                     serve TLS"
                );
                report(value.span().start, message);
                ok = false;
            }
        }
        return ok.then_some(None);
    }
    let mut file = |value: &Option<Spanned<String>>,
                    key: &str,
                    load: &dyn Fn(&Path) -> anyhow::Result<()>|
     -> Option<PathBuf> {
        let Some(value) = value else {
            if !removed.iter().any(|bad| bad == key) {
                let message = format!(
                    "[nrpe] needs {key}: the path of a PEM file (or tls = false for \
                     check_nrpe -n, plain text)"
                );
                report(header, message);
            }
            return None;
        };
        let path = dir.join(value.get_ref());
        let path = std::path::absolute(&path).unwrap_or(path);
        match load(&path) {
            Ok(()) => Some(path),
            Err(error) => {
                report(value.span().start, format!("{key}: {error:#}"));
                None
            }
        }
    };
    let certs = |path: &Path| tls::load_certs(path).map(drop);
    let cert = file(&raw.cert, "cert", &certs);
    let key = file(&raw.key, "key", &|path| tls::load_key(path).map(drop));
    let client_ca = match raw.client_ca {
        None => Some(None),
        Some(_) => file(&raw.client_ca, "client_ca", &certs).map(Some),
    };
    Some(Some(NrpeTls { cert: cert?, key: key?, client_ca: client_ca? }))
}

/// One `[[nrpe.command]]` whose header is at `at`.
fn build_command(
    raw: &RawNrpeCommand,
    at: usize,
    removed: &[String],
    default_timeout: Duration,
    report: Report<'_>,
) -> Option<NrpeCommand> {
    let was_removed = |key: &str| removed.iter().any(|bad| bad == key);
    let name = match &raw.name {
        Some(name) if name.get_ref().is_empty() || !valid_name(name.get_ref()) => {
            let message = format!(
                "nrpe command name {:?} cannot be asked for: check_nrpe sends names without \
                 \"!\", white space or shell metacharacters",
                name.get_ref()
            );
            report(name.span().start, message);
            None
        }
        Some(name) => Some(name.get_ref().clone()),
        None => {
            if !was_removed("name") {
                report(
                    at,
                    "this [[nrpe.command]] has no name; add e.g. name = \"check_load\"".into(),
                );
            }
            None
        }
    };
    let argv = match &raw.command {
        Some(command) => match CommandLine::parse(command.get_ref()) {
            Ok(CommandLine::Exec { program, args }) => {
                Some(std::iter::once(program).chain(args).collect::<Vec<_>>())
            }
            Ok(CommandLine::Shell(_)) | Err(_) => {
                let message = "command has nothing to run, an unterminated quote or a trailing \
                               backslash; write the program and its arguments, e.g. \
                               \"/usr/lib/nagios/plugins/check_load -w $ARG1$ -c $ARG2$\"";
                report(command.span().start, message.to_owned());
                None
            }
        },
        None => {
            if !was_removed("command") {
                let message = "this [[nrpe.command]] has no command; add e.g. command = \
                               \"/usr/lib/nagios/plugins/check_load -r -w 4,3,2 -c 8,6,4\"";
                report(at, message.to_owned());
            }
            None
        }
    };
    let timeout = raw.timeout.as_ref().map_or(default_timeout, |d| d.get_ref().0);
    Some(NrpeCommand { name: name?, argv: argv?, timeout })
}

/// Whether `check_nrpe` can send `name` as a command: no argument
/// separator, no white space, none of the characters NRPE refuses.
fn valid_name(name: &str) -> bool {
    !name.chars().any(|c| {
        c == '!'
            || c.is_whitespace()
            || c.is_control()
            || monchero_core::nrpe::query::NASTY_METACHARS.contains(c)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use crate::config::pull::tests::parse_in;

    #[test]
    fn a_full_nrpe_table_with_defaults_filled_in() {
        let dir = tempfile::tempdir().unwrap();
        let text = "[nrpe]\nlisten = [\"127.0.0.1:5666\", \"[::1]:5666\"]\nallowed_hosts = [\"10.0.0.0/8\"]\ncert = \"agent.pem\"\nkey = \"agent.key\"\nclient_ca = \"agent.pem\"\nallow_arguments = true\ncommand_timeout = \"30s\"\n\n[[nrpe.command]]\nname = \"check_load\"\ncommand = \"check_load -w '$ARG1$' -c $ARG2$\"\n\n[[nrpe.command]]\nname = \"slow\"\ncommand = \"/bin/sleep 5\"\ntimeout = \"1s\"\n";
        let nrpe = parse_in(dir.path(), text).unwrap().nrpe.unwrap();
        assert_eq!(nrpe.listen.len(), 2);
        assert_eq!(nrpe.allowed_hosts[0].to_string(), "10.0.0.0/8");
        let tls = nrpe.tls.unwrap();
        assert_eq!(tls.client_ca, Some(dir.path().join("agent.pem")));
        assert!(nrpe.allow_arguments);
        assert_eq!(nrpe.connection_timeout, Duration::from_secs(10));
        assert_eq!(nrpe.commands[0].argv, ["check_load", "-w", "$ARG1$", "-c", "$ARG2$"]);
        assert_eq!(nrpe.commands[0].timeout, Duration::from_secs(30));
        assert_eq!(nrpe.commands[1].timeout, Duration::from_secs(1));

        let plain = parse_in(dir.path(), "[nrpe]\nlisten = \"127.0.0.1:5666\"\ntls = false\n");
        let plain = plain.unwrap().nrpe.unwrap();
        assert_eq!((plain.tls, plain.allow_arguments), (None, false));
        let hosts: Vec<String> = plain.allowed_hosts.iter().map(ToString::to_string).collect();
        assert_eq!(hosts, ["127.0.0.1", "::1"]);
    }

    #[test]
    fn mistakes_point_at_the_value_to_fix() {
        let dir = tempfile::tempdir().unwrap();
        let text = "[[check]]\nname = \"disk\"\ncommand = \"/bin/true\"\n\n[nrpe]\nlisten = \"127.0.0.1:5666\"\nallowed_hosts = [\"nagios.example.org\"]\ntls = false\ncert = \"agent.pem\"\nmax_connections = 0\ndont_blame_nrpe = 1\n\n[[nrpe.command]]\nname = \"disk\"\ncommand = \"/bin/true\"\n\n[[nrpe.command]]\nname = \"a b\"\ncommand = \"'open\"\ntimout = \"1s\"\n\n[[nrpe.command]]\ncommand = \"/bin/true\"\n";
        let errors = parse_in(dir.path(), text).unwrap_err();
        assert_eq!(
            errors,
            [
                "7:18: allowed_hosts: \"nagios.example.org\" is not an IP address or a CIDR range like \"10.0.0.0/8\" (host names are not resolved)",
                "9:8: cert is set but tls = false: remove cert, or remove tls = false to serve TLS",
                "10:19: max_connections must be 1 or more: it is how many clients are served at once",
                "11:1: unknown key \"dont_blame_nrpe\" in [nrpe]; remove it or use one of: listen, allowed_hosts, tls, cert, key, client_ca, allow_arguments, command_timeout, connection_timeout, max_connections",
                "14:8: nrpe command name \"disk\" is also a [[check]]'s name; check_nrpe -c disk would be ambiguous: rename one (a query naming a [[check]] runs that check already)",
                "18:8: nrpe command name \"a b\" cannot be asked for: check_nrpe sends names without \"!\", white space or shell metacharacters",
                "19:11: command has nothing to run, an unterminated quote or a trailing backslash; write the program and its arguments, e.g. \"/usr/lib/nagios/plugins/check_load -w $ARG1$ -c $ARG2$\"",
                "20:1: unknown key \"timout\" in [[nrpe.command]] \"a b\": did you mean \"timeout\"?",
                "22:1: this [[nrpe.command]] has no name; add e.g. name = \"check_load\"",
            ]
        );
        let errors = parse_in(dir.path(), "[nrpe]\nlisten = \"127.0.0.1:5666\"\n").unwrap_err();
        assert_eq!(
            errors,
            [
                "1:1: [nrpe] needs cert: the path of a PEM file (or tls = false for check_nrpe -n, plain text)",
                "1:1: [nrpe] needs key: the path of a PEM file (or tls = false for check_nrpe -n, plain text)",
            ]
        );
    }
}
