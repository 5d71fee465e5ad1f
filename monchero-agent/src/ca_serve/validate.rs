//! What `ca serve` checks before it signs: the names a request asks for,
//! whether a ticket covers them, and for a renewal that the client's
//! current certificate is valid, names the same holder and is being
//! replaced by a new key. Pure functions over DER, so each rule has a test.

use std::time::SystemTime;

use rcgen::CertificateSigningRequestParams;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateSigningRequestDer};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

/// What a certificate request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requested {
    /// The subject's common name: the holder's name.
    pub name: String,
    /// DNS names in the subject alternative names.
    pub dns_names: Vec<String>,
    /// The DER SubjectPublicKeyInfo of the key to be certified.
    pub public_key: Vec<u8>,
}

/// Why a request is refused: a stable code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// `bad_csr`, `name_mismatch`, `same_key`, `expired`.
    pub code: &'static str,
    /// For people.
    pub message: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Refusal {}

impl Refusal {
    fn new(code: &'static str, message: impl Into<String>) -> Refusal {
        Refusal { code, message: message.into() }
    }
}

/// Reads a PEM certificate request, checking its signature (the sender
/// holds the key) and that it names its holder in the subject CN.
pub fn inspect(csr_pem: &str) -> Result<Requested, Refusal> {
    let der =
        CertificateSigningRequestDer::from_pem_slice(csr_pem.as_bytes()).map_err(|error| {
            Refusal::new("bad_csr", format!("not a PEM certificate request: {error}"))
        })?;
    CertificateSigningRequestParams::from_der(&der).map_err(|error| {
        Refusal::new("bad_csr", format!("the certificate request does not verify: {error}"))
    })?;
    let (_, csr) = x509_parser::certification_request::X509CertificationRequest::from_der(&der)
        .map_err(|error| {
            Refusal::new("bad_csr", format!("unreadable certificate request: {error}"))
        })?;
    let info = &csr.certification_request_info;
    let name = info
        .subject
        .iter_common_name()
        .find_map(|cn| cn.as_str().ok())
        .filter(|name| !name.trim().is_empty())
        .ok_or_else(|| {
            Refusal::new("bad_csr", "the request has no subject CN: make it with monchero")
        })?
        .to_owned();
    let mut dns_names = Vec::new();
    for extension in csr.requested_extensions().into_iter().flatten() {
        if let x509_parser::extensions::ParsedExtension::SubjectAlternativeName(san) = extension {
            for general in &san.general_names {
                if let GeneralName::DNSName(dns) = general {
                    dns_names.push((*dns).to_owned());
                }
            }
        }
    }
    Ok(Requested { name, dns_names, public_key: info.subject_pki.raw.to_vec() })
}

/// Whether a ticket for `requested.name` may sign the request at once: only
/// when every name the certificate would carry is that name (IP addresses
/// aside, which no access list matches). A ticket for `web1` must not buy a
/// certificate that also says `admin`.
pub fn ticket_covers(requested: &Requested) -> bool {
    requested.dns_names.iter().all(|dns| *dns == requested.name)
}

/// The client's current certificate, as far as renewal cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Current {
    /// Serial number, hex, as the CA's revocation file lists it.
    pub serial: String,
    /// The subject CN.
    pub name: Option<String>,
    /// CN and DNS names.
    pub names: Vec<String>,
    /// The DER SubjectPublicKeyInfo of its key.
    pub public_key: Vec<u8>,
    /// The start of its validity.
    pub not_before: SystemTime,
    /// The end of its validity.
    pub not_after: SystemTime,
}

/// Reads the client certificate a renewal came with.
pub fn current(der: &CertificateDer<'_>) -> Result<Current, Refusal> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|error| {
        Refusal::new("bad_certificate", format!("unreadable client certificate: {error}"))
    })?;
    let time = |t: x509_parser::time::ASN1Time| {
        let seconds = u64::try_from(t.timestamp()).unwrap_or(0);
        SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(seconds)
    };
    Ok(Current {
        serial: crate::ticket::hex(cert.raw_serial()),
        name: cert.subject().iter_common_name().find_map(|cn| cn.as_str().ok()).map(str::to_owned),
        names: crate::pull::tls::peer_names(der),
        public_key: cert.public_key().raw.to_vec(),
        not_before: time(cert.validity().not_before),
        not_after: time(cert.validity().not_after),
    })
}

/// Whether `requested` may replace `current` at `now`: same holder, no
/// new names, a new key, and a certificate still valid.
pub fn check_renewal(
    requested: &Requested,
    current: &Current,
    now: SystemTime,
) -> Result<(), Refusal> {
    if now > current.not_after || now < current.not_before {
        return Err(Refusal::new(
            "expired",
            "the client certificate is not valid now; enrol again with a ticket",
        ));
    }
    if current.name.as_deref() != Some(requested.name.as_str()) {
        return Err(Refusal::new(
            "name_mismatch",
            format!(
                "the request is for {:?} but the client certificate is {:?}",
                requested.name,
                current.name.as_deref().unwrap_or("")
            ),
        ));
    }
    if let Some(extra) = requested.dns_names.iter().find(|dns| !current.names.contains(dns)) {
        return Err(Refusal::new(
            "name_mismatch",
            format!("the request adds the name {extra:?}, which the current certificate lacks"),
        ));
    }
    if requested.public_key == current.public_key {
        return Err(Refusal::new(
            "same_key",
            "the request reuses the current key; renewal needs a new key",
        ));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, PublicKeyData};

    use super::*;

    fn csr(cn: &str, names: &[&str], key: &KeyPair) -> String {
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .unwrap();
        let mut subject = DistinguishedName::new();
        subject.push(DnType::CommonName, cn);
        params.distinguished_name = subject;
        params.serialize_request(key).unwrap().pem().unwrap()
    }

    fn cert(cn: &str, key: &KeyPair, expiry_year: i32) -> Current {
        let mut params = CertificateParams::new(vec![cn.to_owned()]).unwrap();
        let mut subject = DistinguishedName::new();
        subject.push(DnType::CommonName, cn);
        params.distinguished_name = subject;
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(expiry_year, 1, 1);
        current(params.self_signed(key).unwrap().der()).unwrap()
    }

    fn at(year: i32) -> SystemTime {
        let days = u64::try_from(year - 1970).unwrap() * 36525 / 100;
        SystemTime::UNIX_EPOCH + Duration::from_secs(days * 86400)
    }

    #[test]
    fn a_request_is_read_with_its_names_and_key() {
        let key = KeyPair::generate().unwrap();
        let requested = inspect(&csr("web1", &["web1", "127.0.0.1"], &key)).unwrap();
        assert_eq!(requested.name, "web1");
        assert_eq!(requested.dns_names, ["web1"]);
        assert_eq!(requested.public_key, key.subject_public_key_info());
        assert!(ticket_covers(&requested));
        let greedy = inspect(&csr("web1", &["web1", "admin"], &key)).unwrap();
        assert!(!ticket_covers(&greedy), "a ticket for web1 must not buy 'admin'");
    }

    #[test]
    fn garbage_and_nameless_requests_are_refused() {
        assert_eq!(inspect("garbage").unwrap_err().code, "bad_csr");
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["x".to_owned()]).unwrap();
        params.distinguished_name = DistinguishedName::new();
        let nameless = params.serialize_request(&key).unwrap().pem().unwrap();
        assert!(inspect(&nameless).unwrap_err().message.contains("no subject CN"));
    }

    #[test]
    fn renewal_needs_the_same_name_a_new_key_and_a_valid_certificate() {
        let old = KeyPair::generate().unwrap();
        let new = KeyPair::generate().unwrap();
        let current = cert("web1", &old, 2040);
        let now = at(2030);
        let fresh = inspect(&csr("web1", &["web1"], &new)).unwrap();
        assert_eq!(check_renewal(&fresh, &current, now), Ok(()));

        let same_key = inspect(&csr("web1", &["web1"], &old)).unwrap();
        assert_eq!(check_renewal(&same_key, &current, now).unwrap_err().code, "same_key");

        let other = inspect(&csr("web2", &["web2"], &new)).unwrap();
        assert_eq!(check_renewal(&other, &current, now).unwrap_err().code, "name_mismatch");
        let added = inspect(&csr("web1", &["web1", "admin"], &new)).unwrap();
        let refusal = check_renewal(&added, &current, now).unwrap_err();
        assert_eq!(refusal.code, "name_mismatch");
        assert!(refusal.message.contains("\"admin\""), "{refusal}");

        let expired = cert("web1", &old, 2025);
        assert_eq!(check_renewal(&fresh, &expired, now).unwrap_err().code, "expired");
    }
}
