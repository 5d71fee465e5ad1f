//! `[pull]` and `[metrics]`: the listeners a monitoring server or a local
//! Prometheus reaches the agent on, validated with the place of each
//! mistake. The certificate files are read here too, so `config check`
//! catches a wrong path or a key in the certificate's place before the
//! daemon starts.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use toml::Spanned;

use super::raw::{Listen, RawMetrics, RawPull};
use crate::pull::tls;

/// Connections served at once on the `[pull]` listener when
/// `max_connections` is not set.
const DEFAULT_MAX_CONNECTIONS: usize = 64;

/// `[pull]`: the HTTPS API, open only to clients with a certificate from
/// `ca_file`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullConfig {
    /// Addresses to listen on.
    pub listen: Vec<SocketAddr>,
    /// The CA whose certificates clients must present (PEM).
    pub ca_file: PathBuf,
    /// The agent's own certificate chain (PEM).
    pub cert_file: PathBuf,
    /// The agent's private key (PEM).
    pub key_file: PathBuf,
    /// Client certificate names (subject CN or DNS SAN) let in; `None`
    /// lets in every client the CA signed.
    pub allow: Option<Vec<String>>,
    /// Client names that may `POST /v1/checks/NAME/run`.
    pub run_allowed: Vec<String>,
    /// Connections served at once, handshakes included; more wait.
    pub max_connections: usize,
}

/// `[metrics]`: `/metrics` over plain HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Addresses to listen on: loopback unless `allow_remote`.
    pub listen: Vec<SocketAddr>,
}

/// Where a value was written, for errors: a byte offset in the main file.
type Report<'a> = &'a mut dyn FnMut(usize, String);

/// Builds `[pull]`, whose header is at `header`; relative paths start at
/// `dir`. `None` when something was reported.
pub(super) fn build_pull(
    raw: &RawPull,
    header: usize,
    dir: &Path,
    report: Report<'_>,
) -> Option<PullConfig> {
    let mut ok = true;
    let listen = addresses(raw.listen.as_ref(), "[pull]", header, r#""0.0.0.0:9443""#, report);
    ok &= listen.is_some();
    let mut file = |value: &Option<Spanned<String>>, key: &str, load: &dyn Fn(&Path) -> String| {
        let Some(value) = value else {
            report(header, format!("[pull] needs {key}: the path of a PEM file"));
            return None;
        };
        let path = dir.join(value.get_ref());
        let path = std::path::absolute(&path).unwrap_or(path);
        let problem = load(&path);
        if problem.is_empty() {
            return Some(path);
        }
        report(value.span().start, format!("{key}: {problem}"));
        None
    };
    let problem =
        |result: anyhow::Result<()>| result.err().map(|e| format!("{e:#}")).unwrap_or_default();
    let ca_file = file(&raw.ca_file, "ca_file", &|path| problem(tls::load_certs(path).map(drop)));
    let cert_file =
        file(&raw.cert_file, "cert_file", &|path| problem(tls::load_certs(path).map(drop)));
    let key_file = file(&raw.key_file, "key_file", &|path| problem(tls::load_key(path).map(drop)));
    let allow = raw.allow.as_ref().map(|names| names_of(names, "allow", report));
    let run_allowed = raw
        .run_allowed
        .as_ref()
        .map(|names| names_of(names, "run_allowed", report))
        .unwrap_or_default();
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
    Some(PullConfig {
        listen: listen?,
        ca_file: ca_file?,
        cert_file: cert_file?,
        key_file: key_file?,
        allow,
        run_allowed,
        max_connections,
    })
    .filter(|_| ok)
}

/// Builds `[metrics]`. A non-loopback address is refused unless
/// `allow_remote = true`: the endpoint is plain HTTP without
/// authentication, and what it shows (check names, disk sizes, process
/// counts) helps an attacker.
pub(super) fn build_metrics(
    raw: &RawMetrics,
    header: usize,
    report: Report<'_>,
) -> Option<MetricsConfig> {
    let listen =
        addresses(raw.listen.as_ref(), "[metrics]", header, r#""127.0.0.1:9100""#, report)?;
    if raw.allow_remote != Some(true) {
        let spans = listen_spans(raw.listen.as_ref()?);
        let mut ok = true;
        for (address, at) in listen.iter().zip(spans) {
            if !address.ip().is_loopback() {
                let message = format!(
                    "[metrics] listen {address} is not a loopback address: /metrics there is \
                     plain HTTP that anyone who can reach it may read; scrape remotely through \
                     [pull] (mTLS), or set allow_remote = true to serve it anyway"
                );
                report(at, message);
                ok = false;
            }
        }
        if !ok {
            return None;
        }
    }
    Some(MetricsConfig { listen })
}

/// The addresses of a `listen` value, each error at the address it is
/// about.
fn addresses(
    listen: Option<&Spanned<Listen>>,
    table: &str,
    header: usize,
    example: &str,
    report: Report<'_>,
) -> Option<Vec<SocketAddr>> {
    let Some(listen) = listen else {
        report(header, format!("{table} needs listen: the address to listen on, e.g. {example}"));
        return None;
    };
    let texts: Vec<&str> = match listen.get_ref() {
        Listen::One(text) => vec![text],
        Listen::Many(texts) => texts.iter().map(|text| text.get_ref().as_str()).collect(),
    };
    if texts.is_empty() {
        report(
            listen.span().start,
            format!("listen must name at least one address, e.g. {example}"),
        );
        return None;
    }
    let mut ok = true;
    let mut parsed = Vec::with_capacity(texts.len());
    for (text, at) in texts.iter().zip(listen_spans(listen)) {
        match text.parse::<SocketAddr>() {
            Ok(address) => parsed.push(address),
            Err(_) => {
                let message = format!(
                    "listen {text:?} is not an IP address with a port, e.g. {example} or \
                     \"[::1]:9443\" (host names are not resolved)"
                );
                report(at, message);
                ok = false;
            }
        }
    }
    ok.then_some(parsed)
}

/// Where each address of a `listen` value is written.
fn listen_spans(listen: &Spanned<Listen>) -> Vec<usize> {
    match listen.get_ref() {
        Listen::One(_) => vec![listen.span().start],
        Listen::Many(texts) => texts.iter().map(|text| text.span().start).collect(),
    }
}

fn names_of(names: &[Spanned<String>], key: &str, report: Report<'_>) -> Vec<String> {
    let mut kept = Vec::with_capacity(names.len());
    for name in names {
        if name.get_ref().trim().is_empty() {
            report(name.span().start, format!("{key} has an empty name; remove the \"\""));
        } else {
            kept.push(name.get_ref().clone());
        }
    }
    kept
}
