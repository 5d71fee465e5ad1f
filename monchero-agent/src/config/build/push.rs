//! `[[push]]` tables: the servers results and changes are delivered to.
//!
//! The files a target names (CA, client certificate and key, token) are
//! read and parsed here, so `monchero config check` reports a missing file
//! or a key that is not PEM at the line that names it, not at the first
//! send.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use super::{AgentConfig, Entry, Loader, RawPush, duration};
use crate::config::PushConfig;

const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(60);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_BATCH_MAX: usize = 500;
const DEFAULT_SPOOL_MAX: u64 = 64 << 20;
/// Below this the spool could hold only a handful of segments.
const MIN_SPOOL_MAX: u64 = 16 << 10;

impl Loader {
    /// Every `[[push]]` that is valid; each problem is reported.
    pub(super) fn pushes(
        &mut self,
        entries: &[Entry<RawPush>],
        agent: &AgentConfig,
    ) -> Vec<PushConfig> {
        let pushes = entries.iter().filter_map(|entry| self.push(entry, agent)).collect();
        self.duplicates(entries, "push");
        pushes
    }

    fn push(&mut self, entry: &Entry<RawPush>, agent: &AgentConfig) -> Option<PushConfig> {
        let raw = entry.parsed.value.as_ref()?;
        let name = self.name(entry, raw.name.as_ref(), "push");
        let name = name.filter(|name| {
            let usable = !name.starts_with('.')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
            if !usable {
                let message = format!(
                    "push name {name:?} names its spool directory, so it may only have letters, \
                     digits, \".\", \"_\" and \"-\" (and not start with \".\")"
                );
                let at = raw.name.as_ref().map_or(entry.span.start, |n| n.span().start);
                self.error(entry.file, at, message);
            }
            usable
        });
        let url = match &raw.url {
            Some(url) => self.push_url(entry.file, url),
            None => {
                self.missing(entry, "url", "url = \"https://monitor.example.net/v1/push\"");
                None
            }
        };
        let agent_name = match &raw.agent {
            Some(value) if value.get_ref().trim().is_empty() || has_control(value.get_ref()) => {
                let message = "agent must be a name with visible characters and no control \
                               characters; remove it to use [agent] hostname";
                self.error(entry.file, value.span().start, message.to_owned());
                None
            }
            Some(value) => Some(value.get_ref().clone()),
            None => Some(agent.hostname.clone()),
        };
        let ca_file = raw.ca_file.as_ref().and_then(|path| self.ca_file(entry.file, path));
        let client_cert = self.client_cert(entry, raw);
        let token_file = raw.token_file.as_ref().and_then(|path| self.token_file(entry.file, path));
        let batch_max = match &raw.batch_max {
            Some(max) if *max.get_ref() == 0 => {
                let message = "batch_max must be 1 or more: it is how many records one request \
                               carries at most";
                self.error(entry.file, max.span().start, message.to_owned());
                DEFAULT_BATCH_MAX
            }
            Some(max) => *max.get_ref(),
            None => DEFAULT_BATCH_MAX,
        };
        let spool_max = match &raw.spool_max {
            Some(max) if max.get_ref().0 < MIN_SPOOL_MAX => {
                let message = format!(
                    "spool_max must be at least 16KiB ({} bytes given): it bounds the backlog \
                     kept while the server is unreachable",
                    max.get_ref().0
                );
                self.error(entry.file, max.span().start, message);
                DEFAULT_SPOOL_MAX
            }
            Some(max) => max.get_ref().0,
            None => DEFAULT_SPOOL_MAX,
        };
        let kind = self.push_kind(entry, raw, agent_name.as_deref());
        let basic_auth = self.basic_auth(entry, raw);
        let headers = self.push_headers(entry.file, raw);
        let files_ok = raw.ca_file.is_none() == ca_file.is_none()
            && (raw.username.is_none() && raw.password_file.is_none()) == basic_auth.is_none()
            && raw.token_file.is_none() == token_file.is_none()
            && (raw.cert_file.is_none() && raw.key_file.is_none()) == client_cert.is_none();
        if !files_ok {
            return None;
        }
        Some(PushConfig {
            name: name?,
            url: url?,
            agent: agent_name?,
            ca_file,
            client_cert,
            token_file,
            interval: duration(&raw.interval).unwrap_or(DEFAULT_INTERVAL),
            heartbeat: duration(&raw.heartbeat).unwrap_or(DEFAULT_HEARTBEAT),
            timeout: duration(&raw.timeout).unwrap_or(DEFAULT_TIMEOUT),
            batch_max,
            spool_max,
            kind: kind?,
            basic_auth,
            headers: headers?,
        })
    }

    /// `url`: https anywhere, plain http only to this machine, where there
    /// is no network to protect the data on (a local relay, tests).
    fn push_url(&mut self, file: usize, url: &Spanned<String>) -> Option<reqwest::Url> {
        let at = url.span().start;
        let parsed = match reqwest::Url::parse(url.get_ref()) {
            Ok(parsed) => parsed,
            Err(cause) => {
                let message = format!(
                    "url {:?} is not a URL ({cause}); write e.g. \
                     \"https://monitor.example.net/v1/push\"",
                    url.get_ref()
                );
                self.error(file, at, message);
                return None;
            }
        };
        let host = parsed.host_str().unwrap_or_default();
        let loopback = host == "localhost"
            || host.trim_matches(['[', ']']).parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
        match parsed.scheme() {
            "https" => Some(parsed),
            "http" if loopback => Some(parsed),
            "http" => {
                let message = format!(
                    "url {:?} uses plain http, which would send results unencrypted over the \
                     network; use https (http is accepted only for 127.0.0.1, ::1 and \
                     localhost)",
                    url.get_ref()
                );
                self.error(file, at, message);
                None
            }
            scheme => {
                let message = format!("url {:?} must be https, not {scheme}", url.get_ref());
                self.error(file, at, message);
                None
            }
        }
    }

    /// Reads a file the config names; reports it at `path`'s place.
    pub(super) fn read_named(
        &mut self,
        file: usize,
        key: &str,
        path: &Spanned<String>,
    ) -> Option<(PathBuf, Vec<u8>)> {
        let full = self.absolute(path.get_ref());
        match std::fs::read(&full) {
            Ok(bytes) => Some((full, bytes)),
            Err(cause) => {
                let message = format!("cannot read {key} {}: {cause}", full.display());
                self.error(file, path.span().start, message);
                None
            }
        }
    }

    /// `cert_file` and `key_file`: both or neither, and usable together.
    fn client_cert(&mut self, entry: &Entry<RawPush>, raw: &RawPush) -> Option<(PathBuf, PathBuf)> {
        let (cert, key) = match (&raw.cert_file, &raw.key_file) {
            (Some(cert), Some(key)) => (cert, key),
            (None, None) => return None,
            (Some(cert), None) => {
                let message = "cert_file needs key_file: add the client certificate's private key";
                self.error(entry.file, cert.span().start, message.to_owned());
                return None;
            }
            (None, Some(key)) => {
                let message = "key_file needs cert_file: add the client certificate";
                self.error(entry.file, key.span().start, message.to_owned());
                return None;
            }
        };
        let (cert_path, mut pem) = self.read_named(entry.file, "cert_file", cert)?;
        let (key_path, key_pem) = self.read_named(entry.file, "key_file", key)?;
        pem.push(b'\n');
        pem.extend_from_slice(&key_pem);
        match reqwest::Identity::from_pem(&pem) {
            Ok(_) => Some((cert_path, key_path)),
            Err(cause) => {
                let message = format!(
                    "cert_file {} and key_file {} are not a usable PEM certificate and private \
                     key ({cause})",
                    cert_path.display(),
                    key_path.display()
                );
                self.error(entry.file, cert.span().start, message);
                None
            }
        }
    }

    fn token_file(&mut self, file: usize, path: &Spanned<String>) -> Option<PathBuf> {
        let (full, bytes) = self.read_named(file, "token_file", path)?;
        let token = String::from_utf8_lossy(&bytes);
        let token = token.trim();
        if token.is_empty() || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            let message = format!(
                "token_file {} must hold the bearer token on one line, without spaces",
                full.display()
            );
            self.error(file, path.span().start, message);
            return None;
        }
        Some(full)
    }
}

fn has_control(text: &str) -> bool {
    text.chars().any(char::is_control)
}
