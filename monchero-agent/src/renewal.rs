//! Certificate renewal and CRL refresh for `[pull] cert_dir`, in a task of
//! its own so the main loop never waits on the network.
//!
//! When a third of the certificate's lifetime remains, the task makes a
//! new key and request, sends it to the enrolment server recorded in the
//! directory over mutual TLS with the current certificate, and installs
//! the answer (pair switch, CRL). At start and every `crl_refresh` after,
//! it fetches the CRL, verifies it against the CA and installs it when it
//! changed. Each install is reported to the main loop, which reloads the pull listener's
//! TLS config; failures are reported too (for `builtin:agent`) and
//! retried with backoff.

use std::time::{Duration, SystemTime};

use anyhow::Context;
use monchero_core::backoff::Backoff;
use rustls_pki_types::CertificateDer;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{error, info, warn};
use x509_parser::extensions::GeneralName;

use crate::cert_dir::{CertDir, Enrolment};
use crate::enrol_client::{EnrolClient, Trust};
use crate::enrol_protocol::Answer;
use crate::pull::tls;

/// Retries of a failed renewal: soon, then up to once an hour.
const RETRY: Backoff = Backoff::new(Duration::from_secs(10), Duration::from_secs(3600));

/// What the task tells the main loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertEvent {
    /// A new key and certificate (and CRL) are installed.
    Renewed,
    /// A renewal failed; it is retried.
    RenewalFailed(String),
    /// A changed CRL is installed.
    CrlInstalled,
    /// The CRL was fetched and is unchanged, or installed: no CRL problem.
    CrlCurrent,
    /// Fetching or verifying the CRL failed; the installed one stays.
    CrlFailed(String),
}

/// Starts the task for the certificate directory `dir` when it records an
/// enrolment server; `None` (nothing to do) otherwise.
pub fn start(
    dir: &std::path::Path,
    crl_refresh: Duration,
) -> anyhow::Result<Option<mpsc::UnboundedReceiver<CertEvent>>> {
    let dir = CertDir::new(dir);
    let Some(enrolment) = dir.enrolment()? else {
        info!(message = "No enrolment server recorded in the certificate directory: certificates are not renewed.", dir = %dir.path().display());
        return Ok(None);
    };
    let (events, receiver) = mpsc::unbounded_channel();
    tokio::spawn(run(dir, enrolment, crl_refresh, events));
    Ok(Some(receiver))
}

async fn run(
    dir: CertDir,
    enrolment: Enrolment,
    crl_refresh: Duration,
    events: mpsc::UnboundedSender<CertEvent>,
) {
    let mut failures = 0;
    let mut retry_at: Option<Instant> = None;
    // At once first: revocations made while the agent was down apply now.
    let mut next_crl = Instant::now();
    loop {
        let renew_at = retry_at.unwrap_or_else(|| renewal_due(&dir));
        tokio::time::sleep_until(renew_at.min(next_crl)).await;
        let now = Instant::now();
        if now >= renew_at {
            match renew(&dir, &enrolment).await {
                Ok(()) => {
                    failures = 0;
                    retry_at = None;
                    next_crl = now + crl_refresh;
                    info!(message = "Certificate renewed with a new key.", server = %enrolment.server);
                    send(&events, CertEvent::Renewed);
                }
                Err(problem) => {
                    failures += 1;
                    let wait = RETRY.delay(failures, fastrand::f64());
                    retry_at = Some(now + wait);
                    let problem = format!("{problem:#}");
                    error!(message = "Certificate renewal failed; retrying.", error = %problem, retry_in_secs = wait.as_secs());
                    send(&events, CertEvent::RenewalFailed(problem));
                }
            }
        }
        if now >= next_crl {
            next_crl = now + crl_refresh;
            match refresh_crl(&dir, &enrolment).await {
                Ok(true) => {
                    info!(message = "New CRL installed.", server = %enrolment.server);
                    send(&events, CertEvent::CrlInstalled);
                }
                Ok(false) => send(&events, CertEvent::CrlCurrent),
                Err(problem) => {
                    let problem = format!("{problem:#}");
                    warn!(message = "CRL refresh failed; the installed CRL stays.", error = %problem);
                    send(&events, CertEvent::CrlFailed(problem));
                }
            }
        }
    }
}

fn send(events: &mpsc::UnboundedSender<CertEvent>, event: CertEvent) {
    // A closed channel means the daemon is stopping.
    let _ = events.send(event);
}

/// When the installed certificate is due for renewal: with a third of its
/// lifetime left. An unreadable certificate is due at once (a renewal
/// attempt then says what is wrong).
fn renewal_due(dir: &CertDir) -> Instant {
    let validity =
        tls::load_certs(&dir.cert_file()).ok().and_then(|certs| certs.first().and_then(validity));
    let Some((not_before, not_after)) = validity else { return Instant::now() };
    let at = renewal_time(not_before, not_after);
    let wait = at.duration_since(SystemTime::now()).unwrap_or_default();
    Instant::now() + wait
}

/// The moment a certificate valid from `not_before` to `not_after` has a
/// third of its lifetime left.
pub fn renewal_time(not_before: SystemTime, not_after: SystemTime) -> SystemTime {
    let lifetime = not_after.duration_since(not_before).unwrap_or_default();
    not_after - lifetime / 3
}

fn validity(cert: &CertificateDer<'_>) -> Option<(SystemTime, SystemTime)> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert).ok()?;
    let time = |t: x509_parser::time::ASN1Time| {
        Some(SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(t.timestamp()).ok()?))
    };
    Some((time(cert.validity().not_before)?, time(cert.validity().not_after)?))
}

/// The DNS names and IP addresses of the certificate other than `name`,
/// so the renewed one says the same.
fn alt_names(cert: &CertificateDer<'_>, name: &str) -> Vec<String> {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(cert) else { return Vec::new() };
    let Ok(Some(san)) = cert.subject_alternative_name() else { return Vec::new() };
    san.value
        .general_names
        .iter()
        .filter_map(|general| match general {
            GeneralName::DNSName(dns) => Some((*dns).to_owned()),
            GeneralName::IPAddress(bytes) => match bytes.len() {
                4 => {
                    <[u8; 4]>::try_from(*bytes).ok().map(|b| std::net::IpAddr::from(b).to_string())
                }
                16 => {
                    <[u8; 16]>::try_from(*bytes).ok().map(|b| std::net::IpAddr::from(b).to_string())
                }
                _ => None,
            },
            _ => None,
        })
        .filter(|alt| alt != name)
        .collect()
}

/// A client for the recorded server trusting the installed CA, presenting
/// the current certificate.
fn client(dir: &CertDir, enrolment: &Enrolment) -> anyhow::Result<EnrolClient> {
    let trust = Trust::Certificates(tls::load_certs(&dir.ca_file())?);
    let identity = (tls::load_certs(&dir.cert_file())?, tls::load_key(&dir.key_file())?);
    EnrolClient::new(&enrolment.server, &trust, Some(identity))
}

async fn renew(dir: &CertDir, enrolment: &Enrolment) -> anyhow::Result<()> {
    let current = tls::load_certs(&dir.cert_file())?;
    let current = current.first().context("no certificate installed")?;
    let alt = alt_names(current, &enrolment.name);
    let (key, csr) = crate::cert_request::new_key_and_csr(&enrolment.name, &alt)?;
    let answer = client(dir, enrolment)?.renew(&csr).await?;
    let Answer::Issued { certificate, ca, crl } = answer else {
        anyhow::bail!("the server answered a renewal with {answer:?}");
    };
    let installed_ca = std::fs::read(dir.ca_file())
        .with_context(|| format!("cannot read {}", dir.ca_file().display()))?;
    crate::cert_dir::verify_issued(&certificate, &installed_ca)?;
    anyhow::ensure!(
        ca.as_bytes() == installed_ca.as_slice(),
        "the server sent another CA certificate; enrol again to move to another CA"
    );
    dir.install_pair(&key.serialize_pem(), &certificate)?;
    if let Err(problem) = dir.install_crl(&crl) {
        warn!(message = "The CRL sent with the renewal was refused.", error = %format!("{problem:#}"));
    }
    Ok(())
}

/// Fetches and installs the CRL; `true` when it changed.
async fn refresh_crl(dir: &CertDir, enrolment: &Enrolment) -> anyhow::Result<bool> {
    let pem = client(dir, enrolment)?.crl().await?;
    let installed = std::fs::read_to_string(dir.crl_file()).unwrap_or_default();
    if pem == installed {
        return Ok(false);
    }
    dir.install_crl(&pem)?;
    Ok(true)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn renewal_starts_with_a_third_of_the_lifetime_left() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let end = start + Duration::from_secs(90 * 86400);
        assert_eq!(renewal_time(start, end), start + Duration::from_secs(60 * 86400));
        assert_eq!(renewal_time(end, start), start, "a nonsensical certificate is due at once");
    }

    #[test]
    fn renewal_keeps_the_alternative_names() {
        let params = rcgen::CertificateParams::new(vec![
            "web1".to_owned(),
            "web1.example".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ])
        .unwrap();
        let cert = params.self_signed(&rcgen::KeyPair::generate().unwrap()).unwrap();
        assert_eq!(alt_names(cert.der(), "web1"), ["web1.example", "127.0.0.1", "::1"]);
    }
}
