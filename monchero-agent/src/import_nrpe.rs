//! `monchero import nrpe FILE`: an `nrpe.cfg` turned into the equivalent
//! `[nrpe]` table and `[[nrpe.command]]` entries.
//!
//! The file is read as NRPE reads it: `name=value` lines, `#` comments,
//! `include=` files and the `*.cfg` files under `include_dir=` (recursively,
//! in name order) read where they are named, a later `command[NAME]`
//! replacing an earlier one. An include that cannot be read is skipped with
//! a note, as NRPE goes on without it. Directives with no Monchero
//! equivalent are listed with their file and line, never silently dropped.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// How deep includes may nest: deeper is a loop NRPE would recurse into
/// until it runs out of file descriptors.
const MAX_DEPTH: usize = 16;

/// NRPE's `server_port` default.
const DEFAULT_PORT: u16 = 5666;

/// What an import produced.
#[derive(Debug)]
pub struct Import {
    /// The TOML to add to the agent's main config file.
    pub toml: String,
    /// What was not converted, or converted with a change, each naming
    /// `FILE:LINE`.
    pub notes: Vec<String>,
}

/// A value and where it was set.
#[derive(Debug, Clone)]
struct At<T> {
    value: T,
    place: String,
}

/// The directives that convert, as found.
#[derive(Debug, Default)]
struct Settings {
    server_address: Option<At<String>>,
    server_port: Option<At<u16>>,
    allowed_hosts: Option<At<String>>,
    dont_blame_nrpe: Option<bool>,
    command_timeout: Option<u64>,
    connection_timeout: Option<u64>,
    ssl_client_certs: Option<At<u8>>,
    ssl_cert_file: Option<String>,
    ssl_privatekey_file: Option<String>,
    ssl_cacert_file: Option<String>,
    /// `(name, command line, place)`, in the order first defined.
    commands: Vec<(String, String, String)>,
}

#[derive(Debug, Default)]
struct Reader {
    settings: Settings,
    notes: Vec<String>,
    /// Files already being read, so an include loop is an error, not a hang.
    open: HashSet<PathBuf>,
}

/// Reads `path` and what it includes.
pub fn import(path: &Path) -> anyhow::Result<Import> {
    let mut reader = Reader::default();
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read the NRPE config", path.display()))?;
    reader.read(path, &text, 0)?;
    let toml = reader.toml(path);
    Ok(Import { toml, notes: reader.notes })
}

impl Reader {
    fn read(&mut self, path: &Path, text: &str, depth: usize) -> anyhow::Result<()> {
        let key = path.canonicalize().unwrap_or_else(|_| path.to_owned());
        if !self.open.insert(key.clone()) {
            bail!("{}: included again from a file it includes (an include loop)", path.display());
        }
        for (index, line) in text.lines().enumerate() {
            let place = format!("{}:{}", path.display(), index + 1);
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((name, value)) = line.split_once('=') else {
                bail!("{place}: {line:?} is not a directive: expected NAME=VALUE");
            };
            self.directive(path, name.trim(), value.trim(), &place, depth)?;
        }
        self.open.remove(&key);
        Ok(())
    }

    fn directive(
        &mut self,
        path: &Path,
        name: &str,
        value: &str,
        place: &str,
        depth: usize,
    ) -> anyhow::Result<()> {
        let at = |value| At { value, place: place.to_owned() };
        let settings = &mut self.settings;
        if let Some(command) = name.strip_prefix("command[").and_then(|n| n.strip_suffix(']')) {
            return self.command(command, value, place);
        }
        match name {
            "include" => self.include(path, value, place, depth)?,
            "include_dir" => self.include_dir(path, value, place, depth)?,
            "server_address" => settings.server_address = Some(at(value.to_owned())),
            "server_port" => {
                let port = value.parse::<u16>().ok().filter(|port| *port > 0);
                let port = port.with_context(|| {
                    format!("{place}: server_port={value} is not a port number (1-65535)")
                })?;
                settings.server_port = Some(At { value: port, place: place.to_owned() });
            }
            "allowed_hosts" => settings.allowed_hosts = Some(at(value.to_owned())),
            "dont_blame_nrpe" => settings.dont_blame_nrpe = Some(flag(name, value, place)?),
            "command_timeout" => settings.command_timeout = Some(seconds(name, value, place)?),
            "connection_timeout" => {
                settings.connection_timeout = Some(seconds(name, value, place)?);
            }
            "ssl_client_certs" => {
                let level = value.parse::<u8>().ok().filter(|level| *level <= 2);
                let level = level.with_context(|| {
                    format!("{place}: ssl_client_certs={value} must be 0, 1 or 2")
                })?;
                settings.ssl_client_certs = Some(At { value: level, place: place.to_owned() });
            }
            "ssl_cert_file" => settings.ssl_cert_file = Some(value.to_owned()),
            "ssl_privatekey_file" => settings.ssl_privatekey_file = Some(value.to_owned()),
            "ssl_cacert_file" => settings.ssl_cacert_file = Some(value.to_owned()),
            other => self.notes.push(format!("{place}: {other} is not converted")),
        }
        Ok(())
    }

    fn command(&mut self, name: &str, line: &str, place: &str) -> anyhow::Result<()> {
        if name.is_empty() {
            bail!("{place}: command[] has no name between the brackets");
        }
        if monchero_core::command::CommandLine::parse(line).is_err() {
            bail!(
                "{place}: command[{name}] has nothing to run, an unterminated quote or a \
                 trailing backslash"
            );
        }
        if let Some(operator) = shell_syntax(line) {
            self.notes.push(format!(
                "{place}: command[{name}] uses the shell's {operator:?}: NRPE ran it through \
                 /bin/sh, Monchero runs the program directly; put the pipeline in a script"
            ));
        }
        let commands = &mut self.settings.commands;
        if let Some(earlier) = commands.iter_mut().find(|(known, _, _)| known == name) {
            self.notes.push(format!(
                "{place}: command[{name}] replaces the one at {}, as in NRPE",
                earlier.2
            ));
            earlier.1 = line.to_owned();
            earlier.2 = place.to_owned();
        } else {
            commands.push((name.to_owned(), line.to_owned(), place.to_owned()));
        }
        Ok(())
    }

    fn include(
        &mut self,
        from: &Path,
        value: &str,
        place: &str,
        depth: usize,
    ) -> anyhow::Result<()> {
        if depth >= MAX_DEPTH {
            bail!("{place}: includes nest more than {MAX_DEPTH} deep");
        }
        let path = relative_to(from, value);
        match std::fs::read_to_string(&path) {
            Ok(text) => self.read(&path, &text, depth + 1),
            Err(error) => {
                self.notes.push(format!(
                    "{place}: include={value} cannot be read ({error}); skipped, as NRPE does"
                ));
                Ok(())
            }
        }
    }

    fn include_dir(
        &mut self,
        from: &Path,
        value: &str,
        place: &str,
        depth: usize,
    ) -> anyhow::Result<()> {
        let dir = relative_to(from, value);
        let mut files = Vec::new();
        if let Err(error) = cfg_files(&dir, &mut files, 0) {
            self.notes.push(format!(
                "{place}: include_dir={value} cannot be read ({error}); skipped, as NRPE does"
            ));
            return Ok(());
        }
        for file in files {
            self.include(from, &file.display().to_string(), place, depth)?;
        }
        Ok(())
    }

    /// The Monchero TOML for what was read.
    fn toml(&mut self, source: &Path) -> String {
        let settings = std::mem::take(&mut self.settings);
        let mut out = String::new();
        let _ = writeln!(out, "# Converted from {} by `monchero import nrpe`.", source.display());
        out.push_str("[nrpe]\n");
        let port = settings.server_port.as_ref().map_or(DEFAULT_PORT, |port| port.value);
        let _ = writeln!(
            out,
            "listen = [{}]",
            quote(&self.listen(settings.server_address.clone(), port))
        );
        if let Some(hosts) = &settings.allowed_hosts {
            let hosts = self.hosts(hosts);
            let list: Vec<String> = hosts.iter().map(|host| quote(host)).collect();
            let _ = writeln!(out, "allowed_hosts = [{}]", list.join(", "));
        }
        self.tls(&mut out, &settings);
        let _ = writeln!(out, "allow_arguments = {}", settings.dont_blame_nrpe.unwrap_or(false));
        if let Some(seconds) = settings.command_timeout {
            let _ = writeln!(out, "command_timeout = \"{seconds}s\"");
        }
        if let Some(seconds) = settings.connection_timeout {
            let _ = writeln!(out, "connection_timeout = \"{seconds}s\"");
        }
        for (name, line, place) in &settings.commands {
            let _ = writeln!(out, "\n# {place}");
            out.push_str("[[nrpe.command]]\n");
            let _ = writeln!(out, "name = {}", quote(name));
            let _ = writeln!(out, "command = {}", quote(line));
        }
        out
    }

    /// `server_address` and the port as a socket address. NRPE accepts a
    /// host name there; Monchero listens on addresses only.
    fn listen(&mut self, address: Option<At<String>>, port: u16) -> String {
        let Some(address) = address else { return format!("0.0.0.0:{port}") };
        match address.value.parse::<IpAddr>() {
            Ok(IpAddr::V4(ip)) => format!("{ip}:{port}"),
            Ok(IpAddr::V6(ip)) => format!("[{ip}]:{port}"),
            Err(_) => {
                self.notes.push(format!(
                    "{}: server_address={} is not an IP address; listening on 0.0.0.0 \
                     instead: put the address it resolves to in listen",
                    address.place, address.value
                ));
                format!("0.0.0.0:{port}")
            }
        }
    }

    /// The `allowed_hosts` entries Monchero can take: addresses and CIDR
    /// ranges; names are left out with a note.
    fn hosts(&mut self, hosts: &At<String>) -> Vec<String> {
        let mut kept = Vec::new();
        for host in hosts.value.split(',').map(str::trim).filter(|host| !host.is_empty()) {
            if crate::nrpe::allowed::HostPattern::parse(host).is_ok() {
                kept.push(host.to_owned());
            } else {
                self.notes.push(format!(
                    "{}: allowed_hosts entry {host:?} is a host name, which Monchero does not \
                     resolve: add its address to allowed_hosts",
                    hosts.place
                ));
            }
        }
        kept
    }

    /// `tls`, `cert`, `key` and `client_ca`. Without a certificate NRPE
    /// encrypted with anonymous Diffie-Hellman, which rustls does not offer:
    /// the result is plain text, said loudly.
    fn tls(&mut self, out: &mut String, settings: &Settings) {
        let client_certs = settings.ssl_client_certs.as_ref();
        match (&settings.ssl_cert_file, &settings.ssl_privatekey_file) {
            (Some(cert), Some(key)) => {
                out.push_str("tls = true\n");
                let _ = writeln!(out, "cert = {}", quote(cert));
                let _ = writeln!(out, "key = {}", quote(key));
                match (&settings.ssl_cacert_file, client_certs) {
                    (Some(ca), Some(level)) if level.value > 0 => {
                        if level.value == 1 {
                            self.notes.push(format!(
                                "{}: ssl_client_certs=1 (ask) becomes required: Monchero asks \
                                 for a client certificate only to require it",
                                level.place
                            ));
                        }
                        let _ = writeln!(out, "client_ca = {}", quote(ca));
                    }
                    (None, Some(level)) if level.value > 0 => self.notes.push(format!(
                        "{}: ssl_client_certs={} without ssl_cacert_file: client certificates \
                         are not checked; set client_ca to require them",
                        level.place, level.value
                    )),
                    _ => {}
                }
            }
            _ => {
                if let Some(level) = client_certs.filter(|level| level.value > 0) {
                    self.notes.push(format!(
                        "{}: ssl_client_certs={} is not converted: client certificates need the \
                         agent's own certificate (ssl_cert_file, ssl_privatekey_file) and a CA \
                         (ssl_cacert_file)",
                        level.place, level.value
                    ));
                }
                out.push_str(
                    "# nrpe.cfg names no certificate: NRPE used anonymous Diffie-Hellman, which\n\
                     # Monchero does not offer. Plain text (check_nrpe -n) until cert and key\n\
                     # are set; see docs/migrating-from-nrpe.md.\n",
                );
                out.push_str("tls = false\n");
                self.notes.push(
                    "no ssl_cert_file and ssl_privatekey_file: NRPE's anonymous TLS has no \
                     Monchero equivalent; the result has tls = false (check_nrpe -n) until \
                     you give it a certificate"
                        .to_owned(),
                );
            }
        }
    }
}

/// `0` or `1`.
fn flag(name: &str, value: &str, place: &str) -> anyhow::Result<bool> {
    match value {
        "0" => Ok(false),
        "1" => Ok(true),
        _ => bail!("{place}: {name}={value} must be 0 or 1"),
    }
}

/// A positive number of seconds.
fn seconds(name: &str, value: &str, place: &str) -> anyhow::Result<u64> {
    value
        .parse::<u64>()
        .ok()
        .filter(|seconds| *seconds > 0)
        .with_context(|| format!("{place}: {name}={value} must be a number of seconds above 0"))
}

/// `value` as a path: relative ones start at `from`'s directory.
fn relative_to(from: &Path, value: &str) -> PathBuf {
    from.parent().unwrap_or(Path::new("")).join(value)
}

/// The `*.cfg` files under `dir`, in name order, subdirectories included.
fn cfg_files(dir: &Path, files: &mut Vec<PathBuf>, depth: usize) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> =
        std::fs::read_dir(dir)?.filter_map(Result::ok).map(|entry| entry.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() && depth < MAX_DEPTH {
            cfg_files(&path, files, depth + 1)?;
        } else if path.extension().is_some_and(|ext| ext == "cfg") && path.is_file() {
            files.push(path);
        }
    }
    Ok(())
}

/// The first shell operator in `line` that only a shell gives meaning to.
fn shell_syntax(line: &str) -> Option<&'static str> {
    ["|", "&&", ";", ">", "<", "`", "$(", "*", "~"].into_iter().find(|op| line.contains(op))
}

/// `text` as a TOML string.
fn quote(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn import_text(text: &str) -> anyhow::Result<Import> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nrpe.cfg");
        std::fs::write(&path, text).unwrap();
        import(&path)
    }

    #[test]
    fn settings_and_commands_convert_and_the_rest_is_listed() {
        let text = "# a comment\nlog_facility=daemon\nserver_port=5667\nserver_address=192.0.2.1\n\
                    allowed_hosts=127.0.0.1, 10.0.0.0/8,nagios.example.org\ndont_blame_nrpe=1\n\
                    command_timeout=30\ncommand[check_disk]=/usr/lib/nagios/plugins/check_disk -w $ARG1$ -p \"/srv/my data\"\n\
                    command[check_disk]=/bin/true\n";
        let import = import_text(text).unwrap();
        assert!(import.toml.contains("listen = [\"192.0.2.1:5667\"]\n"), "{}", import.toml);
        assert!(import.toml.contains("allowed_hosts = [\"127.0.0.1\", \"10.0.0.0/8\"]\n"));
        assert!(import.toml.contains("allow_arguments = true\ncommand_timeout = \"30s\"\n"));
        assert!(import.toml.contains("name = \"check_disk\"\ncommand = \"/bin/true\"\n"));
        let notes = import.notes.join("\n");
        assert!(notes.contains("nrpe.cfg:2: log_facility is not converted"), "{notes}");
        assert!(notes.contains("\"nagios.example.org\" is a host name"), "{notes}");
        assert!(notes.contains("nrpe.cfg:9: command[check_disk] replaces the one at"), "{notes}");
        assert!(notes.contains("tls = false"), "{notes}");
    }

    #[test]
    fn bad_values_name_their_file_and_line() {
        let error = import_text("server_port=5666\n\nserver_port=http\n").unwrap_err();
        assert!(
            error
                .to_string()
                .ends_with("nrpe.cfg:3: server_port=http is not a port number (1-65535)"),
            "{error}"
        );
        let error = import_text("just words\n").unwrap_err();
        assert!(
            error
                .to_string()
                .ends_with("nrpe.cfg:1: \"just words\" is not a directive: expected NAME=VALUE")
        );
        let error = import_text("dont_blame_nrpe=yes\n").unwrap_err();
        assert!(error.to_string().contains("must be 0 or 1"));
        let error = import_text("command[x]=/bin/echo 'open\n").unwrap_err();
        assert!(
            error
                .to_string()
                .contains("nrpe.cfg:1: command[x] has nothing to run, an unterminated quote")
        );
    }

    #[test]
    fn an_include_loop_is_an_error_and_a_missing_include_a_note() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nrpe.cfg");
        std::fs::write(&path, "include=nrpe.cfg\n").unwrap();
        assert!(import(&path).unwrap_err().to_string().contains("include loop"));
        std::fs::write(&path, "include=/nonexistent/nrpe_local.cfg\n").unwrap();
        let import = import(&path).unwrap();
        assert!(
            import.notes[0]
                .contains("nrpe.cfg:1: include=/nonexistent/nrpe_local.cfg cannot be read")
        );
    }
}
