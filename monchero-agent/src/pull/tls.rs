//! The TLS side of the pull listener: loading the PEM files, the rustls
//! server configuration that demands a client certificate from the
//! configured CA, and the names a client certificate carries.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use rustls::RootCertStore;
use rustls::server::{ServerConfig, WebPkiClientVerifier};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use x509_parser::extensions::GeneralName;

use crate::config::PullConfig;

/// Every certificate in the PEM file at `path`; at least one.
pub fn load_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|error| pem_error(path, error))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "{} holds no certificate (no \"-----BEGIN CERTIFICATE-----\" block)",
        path.display()
    );
    Ok(certs)
}

/// Every revocation list in the PEM file at `path`; at least one.
pub fn load_crls(path: &Path) -> anyhow::Result<Vec<CertificateRevocationListDer<'static>>> {
    let crls = CertificateRevocationListDer::pem_file_iter(path)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|error| pem_error(path, error))?;
    anyhow::ensure!(
        !crls.is_empty(),
        "{} holds no revocation list (no \"-----BEGIN X509 CRL-----\" block)",
        path.display()
    );
    Ok(crls)
}

/// The private key in the PEM file at `path` (PKCS#8, PKCS#1 or SEC1).
pub fn load_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path).map_err(|error| match error {
        rustls_pki_types::pem::Error::NoItemsFound => anyhow::anyhow!(
            "{} holds no private key (no \"-----BEGIN PRIVATE KEY-----\" block)",
            path.display()
        ),
        error => pem_error(path, error),
    })
}

fn pem_error(path: &Path, error: rustls_pki_types::pem::Error) -> anyhow::Error {
    match error {
        rustls_pki_types::pem::Error::Io(error) => {
            anyhow::anyhow!("cannot read {}: {error}", path.display())
        }
        error => anyhow::anyhow!("{} is not valid PEM: {error}", path.display()),
    }
}

/// The server configuration for `[pull]`: TLS 1.2 and 1.3 only, the
/// agent's certificate, and a client certificate signed by `ca_file`
/// required (expired and unknown ones fail the handshake).
pub fn server_config(pull: &PullConfig) -> anyhow::Result<Arc<ServerConfig>> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = RootCertStore::empty();
    for cert in load_certs(&pull.ca_file)? {
        roots.add(cert).with_context(|| {
            format!("{} is not a usable CA certificate", pull.ca_file.display())
        })?;
    }
    let mut verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
    if let Some(crl_file) = &pull.crl_file {
        verifier = verifier.with_crls(load_crls(crl_file)?);
    }
    let verifier = verifier
        .build()
        .with_context(|| format!("cannot verify clients with {}", pull.ca_file.display()))?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("the TLS library refuses TLS 1.2 and 1.3")?
        .with_client_cert_verifier(verifier)
        .with_single_cert(load_certs(&pull.cert_file)?, load_key(&pull.key_file)?)
        .with_context(|| {
            format!(
                "the key {} does not fit the certificate {}",
                pull.key_file.display(),
                pull.cert_file.display()
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The names a client certificate identifies its holder by: the subject's
/// common names, then its DNS subject alternative names. What `allow` and
/// `run_allowed` match against.
pub fn peer_names(cert: &CertificateDer<'_>) -> Vec<String> {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(cert) else {
        return Vec::new();
    };
    let mut names: Vec<String> = cert
        .subject()
        .iter_common_name()
        .filter_map(|name| name.as_str().ok())
        .map(str::to_owned)
        .collect();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            // A CN repeated as a DNS name (the usual way) is one name.
            if let GeneralName::DNSName(name) = name
                && !names.iter().any(|known| known == name)
            {
                names.push((*name).to_owned());
            }
        }
    }
    names
}

/// The end of `cert`'s validity; `None` if it cannot be read.
pub fn not_after(cert: &CertificateDer<'_>) -> Option<SystemTime> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert).ok()?;
    let seconds = u64::try_from(cert.validity().not_after.timestamp()).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(seconds))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};

    use super::*;

    #[test]
    fn names_are_the_common_name_and_the_dns_alternative_names() {
        let mut params =
            CertificateParams::new(vec!["prom.example".into(), "10.0.0.1".into()]).unwrap();
        let mut subject = DistinguishedName::new();
        subject.push(DnType::CommonName, "prometheus");
        params.distinguished_name = subject;
        let cert = params.self_signed(&KeyPair::generate().unwrap()).unwrap();
        assert_eq!(peer_names(cert.der()), ["prometheus", "prom.example"]);
    }

    #[test]
    fn the_expiry_is_read_from_the_certificate() {
        let mut params = CertificateParams::new(vec!["agent".into()]).unwrap();
        params.not_after = rcgen::date_time_ymd(2030, 1, 1);
        let cert = params.self_signed(&KeyPair::generate().unwrap()).unwrap();
        let expected = SystemTime::UNIX_EPOCH + Duration::from_secs(1_893_456_000);
        assert_eq!(not_after(cert.der()), Some(expected));
    }

    #[test]
    fn garbage_has_no_names() {
        assert!(peer_names(&CertificateDer::from(vec![0x30, 0x03, 1, 2, 3])).is_empty());
    }

    #[test]
    fn a_key_where_a_certificate_belongs_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.pem");
        std::fs::write(&path, KeyPair::generate().unwrap().serialize_pem()).unwrap();
        let error = format!("{:#}", load_certs(&path).unwrap_err());
        assert!(error.contains("holds no certificate"), "{error}");
        assert!(load_key(&path).is_ok());
        let missing = format!("{:#}", load_key(&dir.path().join("nope.pem")).unwrap_err());
        assert!(missing.starts_with("cannot read"), "{missing}");
    }
}
