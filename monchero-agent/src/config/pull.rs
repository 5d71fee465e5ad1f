//! `[pull]` and `[metrics]`: the listeners a monitoring server or a local
//! Prometheus reaches the agent on, validated with the place of each
//! mistake. The certificate files are read here too, so `config check`
//! catches a wrong path or a key in the certificate's place before the
//! daemon starts.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use super::raw::{Listen, RawMetrics, RawPull};
use crate::cert_dir::CertDir;
use crate::pull::tls;

/// Connections served at once on the `[pull]` listener when
/// `max_connections` is not set.
const DEFAULT_MAX_CONNECTIONS: usize = 64;

/// How often the CRL is fetched from the enrolment server when
/// `crl_refresh` is not set.
const DEFAULT_CRL_REFRESH: Duration = Duration::from_secs(3600);

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
    /// Revocation lists (PEM) from the CA: certificates listed there fail
    /// the handshake.
    pub crl_file: Option<PathBuf>,
    /// Client certificate names (subject CN or DNS SAN) let in; `None`
    /// lets in every client the CA signed.
    pub allow: Option<Vec<String>>,
    /// Client names that may `POST /v1/checks/NAME/run`.
    pub run_allowed: Vec<String>,
    /// Connections served at once, handshakes included; more wait.
    pub max_connections: usize,
    /// The certificate directory `monchero cert enrol` filled, when the
    /// files above come from it: its certificate is renewed and its CRL
    /// refreshed from the enrolment server recorded there.
    pub cert_dir: Option<PathBuf>,
    /// How often the CRL is fetched (with `cert_dir`).
    pub crl_refresh: Duration,
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
/// `dir`. Keys in `removed` had bad values, already reported: they are not
/// reported missing as well. `None` when something was reported.
pub(super) fn build_pull(
    raw: &RawPull,
    header: usize,
    removed: &[String],
    dir: &Path,
    report: Report<'_>,
) -> Option<PullConfig> {
    let mut ok = true;
    let example = r#""0.0.0.0:9443""#;
    let listen = addresses(raw.listen.as_ref(), "[pull]", header, example, removed, report);
    let mut file =
        |value: &Option<Spanned<String>>, key: &str, load: &dyn Fn(&Path) -> anyhow::Result<()>| {
            let Some(value) = value else {
                if !removed.iter().any(|bad| bad == key) {
                    report(header, format!("[pull] needs {key}: the path of a PEM file"));
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
    let (ca_file, cert_file, key_file, crl_file, cert_dir) = match &raw.cert_dir {
        Some(value) => {
            for (key, given) in [
                ("ca_file", &raw.ca_file),
                ("cert_file", &raw.cert_file),
                ("key_file", &raw.key_file),
                ("crl_file", &raw.crl_file),
            ] {
                if let Some(given) = given {
                    let message = format!(
                        "{key} cannot be set with cert_dir, which holds the CA, certificate, key \
                         and CRL; remove one of the two"
                    );
                    report(given.span().start, message);
                    ok = false;
                }
            }
            let path = dir.join(value.get_ref());
            let path = std::path::absolute(&path).unwrap_or(path);
            let certs_dir = CertDir::new(&path);
            let checked = tls::load_certs(&certs_dir.ca_file())
                .and_then(|_| tls::load_certs(&certs_dir.cert_file()))
                .and_then(|_| tls::load_key(&certs_dir.key_file()))
                .and_then(|_| tls::load_crls(&certs_dir.crl_file()));
            match checked {
                Ok(_) => (
                    Some(certs_dir.ca_file()),
                    Some(certs_dir.cert_file()),
                    Some(certs_dir.key_file()),
                    Some(Some(certs_dir.crl_file())),
                    Some(path),
                ),
                Err(error) => {
                    let message = format!(
                        "cert_dir: {error:#} (fill the directory with `monchero cert enrol --dir \
                         {}`)",
                        path.display()
                    );
                    report(value.span().start, message);
                    (None, None, None, None, None)
                }
            }
        }
        None => {
            let ca_file = file(&raw.ca_file, "ca_file", &certs);
            let cert_file = file(&raw.cert_file, "cert_file", &certs);
            let key_file = file(&raw.key_file, "key_file", &|path| tls::load_key(path).map(drop));
            // Optional, unlike the others: `None` inside means "not set".
            let crl_file = match raw.crl_file {
                None => Some(None),
                Some(_) => file(&raw.crl_file, "crl_file", &|path| tls::load_crls(path).map(drop))
                    .map(Some),
            };
            (ca_file, cert_file, key_file, crl_file, None)
        }
    };
    if let (Some(refresh), None) = (&raw.crl_refresh, &raw.cert_dir) {
        let message = "crl_refresh needs cert_dir: the CRL is fetched from the enrolment server \
                       recorded there";
        report(refresh.span().start, message.to_owned());
        ok = false;
    }
    let crl_refresh =
        raw.crl_refresh.as_ref().map_or(DEFAULT_CRL_REFRESH, |refresh| refresh.get_ref().0);
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
        crl_file: crl_file?,
        allow,
        run_allowed,
        max_connections,
        cert_dir,
        crl_refresh,
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
    removed: &[String],
    report: Report<'_>,
) -> Option<MetricsConfig> {
    let example = r#""127.0.0.1:9100""#;
    let listen = addresses(raw.listen.as_ref(), "[metrics]", header, example, removed, report)?;
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
pub(super) fn addresses(
    listen: Option<&Spanned<Listen>>,
    table: &str,
    header: usize,
    example: &str,
    removed: &[String],
    report: Report<'_>,
) -> Option<Vec<SocketAddr>> {
    let Some(listen) = listen else {
        if !removed.iter().any(|bad| bad == "listen") {
            let message = format!("{table} needs listen: the address to listen on, e.g. {example}");
            report(header, message);
        }
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(super) mod tests {
    use std::path::Path;

    use rcgen::{CertificateParams, KeyPair};

    use crate::config::{Config, parse};

    /// A directory with `ca.pem`, `agent.pem` and `agent.key`, and the
    /// config `text` written in it, parsed; errors without the file name.
    /// Shared with the `[nrpe]` tests, which need the same files.
    pub(in crate::config) fn parse_in(dir: &Path, text: &str) -> Result<Config, Vec<String>> {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["agent".into()]).unwrap().self_signed(&key).unwrap();
        std::fs::write(dir.join("ca.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("agent.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("agent.key"), key.serialize_pem()).unwrap();
        let file = dir.join("agent.toml");
        parse(text, &file).map_err(|errors| {
            let prefix = format!("{}:", file.display());
            errors.0.iter().map(|e| e.to_string().replacen(&prefix, "", 1)).collect()
        })
    }

    const FILES: &str =
        "ca_file = \"ca.pem\"\ncert_file = \"agent.pem\"\nkey_file = \"agent.key\"\n";

    #[test]
    fn pull_and_metrics_are_off_unless_configured() {
        let dir = tempfile::tempdir().unwrap();
        let config = parse_in(dir.path(), "").unwrap();
        assert_eq!((config.pull, config.metrics), (None, None));
    }

    #[test]
    fn a_full_pull_table_with_relative_paths_and_an_address_list() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "[pull]\nlisten = [\"0.0.0.0:9443\", \"[::1]:9443\"]\n{FILES}allow = [\"prometheus\", \"admin\"]\nrun_allowed = [\"admin\"]\nmax_connections = 8\n\n[metrics]\nlisten = \"127.0.0.1:9100\"\n"
        );
        let config = parse_in(dir.path(), &text).unwrap();
        let pull = config.pull.unwrap();
        assert_eq!(pull.listen, ["0.0.0.0:9443".parse().unwrap(), "[::1]:9443".parse().unwrap()]);
        assert_eq!(pull.ca_file, dir.path().join("ca.pem"));
        assert_eq!(pull.key_file, dir.path().join("agent.key"));
        assert_eq!(pull.allow, Some(vec!["prometheus".into(), "admin".into()]));
        assert_eq!(pull.run_allowed, ["admin"]);
        assert_eq!(pull.max_connections, 8);
        assert_eq!(config.metrics.unwrap().listen, ["127.0.0.1:9100".parse().unwrap()]);
    }

    #[test]
    fn mistakes_point_at_the_value_to_fix() {
        let dir = tempfile::tempdir().unwrap();
        let text = "[pull]\nlisten = [\"127.0.0.1:9443\", \"localhost:9443\"]\nca_file = \"missing.pem\"\ncert_file = \"agent.key\"\nkey_file = \"agent.key\"\nallow = [\"\"]\nmax_connections = 0\nlisen = 1\n\n[metrics]\nlisten = \"0.0.0.0:9100\"\n";
        let errors = parse_in(dir.path(), text).unwrap_err();
        let missing = dir.path().join("missing.pem");
        let key = dir.path().join("agent.key");
        assert_eq!(
            errors,
            [
                "2:29: listen \"localhost:9443\" is not an IP address with a port, e.g. \"0.0.0.0:9443\" or \"[::1]:9443\" (host names are not resolved)".to_owned(),
                format!("3:11: ca_file: cannot read {}: No such file or directory (os error 2)", missing.display()),
                format!("4:13: cert_file: {} holds no certificate (no \"-----BEGIN CERTIFICATE-----\" block)", key.display()),
                "6:10: allow has an empty name; remove the \"\"".to_owned(),
                "7:19: max_connections must be 1 or more: it is how many clients are served at once".to_owned(),
                "8:1: unknown key \"lisen\" in [pull]: did you mean \"listen\"?".to_owned(),
                "11:10: [metrics] listen 0.0.0.0:9100 is not a loopback address: /metrics there is plain HTTP that anyone who can reach it may read; scrape remotely through [pull] (mTLS), or set allow_remote = true to serve it anyway".to_owned(),
            ]
        );
    }

    #[test]
    fn required_keys_are_named_at_the_header_and_remote_metrics_can_be_forced() {
        let dir = tempfile::tempdir().unwrap();
        let errors = parse_in(dir.path(), "[agent]\n\n[pull]\nallow = []\n").unwrap_err();
        assert_eq!(
            errors,
            [
                "3:1: [pull] needs listen: the address to listen on, e.g. \"0.0.0.0:9443\"",
                "3:1: [pull] needs ca_file: the path of a PEM file",
                "3:1: [pull] needs cert_file: the path of a PEM file",
                "3:1: [pull] needs key_file: the path of a PEM file",
            ]
        );
        let text = "[metrics]\nlisten = [\"0.0.0.0:9100\"]\nallow_remote = true\n";
        let config = parse_in(dir.path(), text).unwrap();
        assert_eq!(config.metrics.unwrap().listen, ["0.0.0.0:9100".parse().unwrap()]);
        let errors = parse_in(dir.path(), "[metrics]\nlisten = []\n").unwrap_err();
        assert_eq!(
            errors,
            ["2:10: listen must name at least one address, e.g. \"127.0.0.1:9100\""]
        );
        let errors = parse_in(dir.path(), "[metrics]\nlisten = 9100\n").unwrap_err();
        assert_eq!(
            errors,
            [
                "2:10: listen must be an address like \"127.0.0.1:9443\", or an array of them, not 9100"
            ],
            "a bad value is not reported missing as well"
        );
    }

    #[test]
    fn a_crl_file_must_hold_a_revocation_list() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!("[pull]\nlisten = \"127.0.0.1:1\"\n{FILES}crl_file = \"agent.pem\"\n");
        let errors = parse_in(dir.path(), &text).unwrap_err();
        let path = dir.path().join("agent.pem");
        assert_eq!(
            errors,
            [format!(
                "6:12: crl_file: {} holds no revocation list (no \"-----BEGIN X509 CRL-----\" block)",
                path.display()
            )]
        );
        let config =
            parse_in(dir.path(), &format!("[pull]\nlisten = \"127.0.0.1:1\"\n{FILES}")).unwrap();
        assert_eq!(config.pull.unwrap().crl_file, None);
    }

    #[test]
    fn cert_dir_takes_the_place_of_the_four_files() {
        let dir = tempfile::tempdir().unwrap();
        let ca =
            crate::ca::Ca::init(&dir.path().join("ca"), "Test CA", crate::ca::tests::YEAR).unwrap();
        let certs = crate::cert_dir::CertDir::new(&dir.path().join("certs"));
        certs.create().unwrap();
        let (key, csr) = crate::cert_request::new_key_and_csr("agent", &[]).unwrap();
        let cert = ca.sign(&csr, crate::ca::tests::YEAR).unwrap();
        certs.install_ca(&ca.ca_pem().unwrap()).unwrap();
        certs.install_crl(&ca.crl_pem().unwrap()).unwrap();
        certs.install_pair(&key.serialize_pem(), &cert).unwrap();

        let text = "[pull]\nlisten = \"127.0.0.1:1\"\ncert_dir = \"certs\"\ncrl_refresh = \"5m\"\n";
        let pull = parse_in(dir.path(), text).unwrap().pull.unwrap();
        assert_eq!(pull.cert_dir, Some(dir.path().join("certs")));
        assert_eq!(pull.cert_file, dir.path().join("certs/current/cert.pem"));
        assert_eq!(pull.key_file, dir.path().join("certs/current/key.pem"));
        assert_eq!(pull.crl_file, Some(dir.path().join("certs/crl.pem")));
        assert_eq!(pull.crl_refresh, std::time::Duration::from_secs(300));
        let default = "[pull]\nlisten = \"127.0.0.1:1\"\ncert_dir = \"certs\"\n";
        let pull = parse_in(dir.path(), default).unwrap().pull.unwrap();
        assert_eq!(pull.crl_refresh, std::time::Duration::from_secs(3600));
    }

    #[test]
    fn cert_dir_mistakes_point_at_the_value_to_fix() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "[pull]\nlisten = \"127.0.0.1:1\"\n{FILES}cert_dir = \"nope\"\ncrl_refresh = \"0s\"\n"
        );
        let errors = parse_in(dir.path(), &text).unwrap_err();
        let nope = dir.path().join("nope");
        assert_eq!(
            errors,
            [
                "3:11: ca_file cannot be set with cert_dir, which holds the CA, certificate, key and CRL; remove one of the two".to_owned(),
                "4:13: cert_file cannot be set with cert_dir, which holds the CA, certificate, key and CRL; remove one of the two".to_owned(),
                "5:12: key_file cannot be set with cert_dir, which holds the CA, certificate, key and CRL; remove one of the two".to_owned(),
                format!(
                    "6:12: cert_dir: cannot read {}: No such file or directory (os error 2) (fill the directory with `monchero cert enrol --dir {}`)",
                    nope.join("ca.pem").display(),
                    nope.display()
                ),
                "7:15: crl_refresh \"0s\" must be longer than zero; write e.g. \"30s\"".to_owned(),
            ]
        );
        let errors = parse_in(
            dir.path(),
            &format!("[pull]\nlisten = \"127.0.0.1:1\"\n{FILES}crl_refresh = \"1m\"\n"),
        )
        .unwrap_err();
        assert_eq!(
            errors,
            [
                "6:15: crl_refresh needs cert_dir: the CRL is fetched from the enrolment server recorded there"
            ]
        );
    }
}
