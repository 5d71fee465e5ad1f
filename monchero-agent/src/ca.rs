//! `monchero ca`: a small certificate authority kept in one directory, for
//! the pull API's mutual TLS.
//!
//! The directory holds `ca.pem` (the CA certificate, given to agents as
//! `[pull] ca_file` and to clients as their trust anchor), `ca.key` (mode
//! 0600, never leaves the directory), `issued/SERIAL.pem` (every
//! certificate signed), `revoked` (one `SERIAL TIME` line per revoked
//! certificate) and `crl.pem`, the signed revocation list agents load as
//! `[pull] crl_file`. Revoking a name revokes every certificate issued to
//! it. Keys and certificates are made with rcgen.

use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams,
    CertificateSigningRequestParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, RevocationReason, RevokedCertParams,
    SerialNumber,
};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::pull::tls;

/// Lets a signed certificate be used a few minutes before its signing
/// time, for machines whose clocks are a little behind the CA's.
const CLOCK_SKEW: Duration = Duration::from_secs(300);

/// How long the CRL says it is good for; `ca revoke` issues a new one at
/// once whatever this says, and agents do not refuse an old one.
const CRL_VALIDITY: Duration = Duration::from_secs(30 * 86400);

/// An opened CA directory.
#[derive(Debug)]
pub struct Ca {
    dir: PathBuf,
    issuer: Issuer<'static, KeyPair>,
}

/// One certificate the CA signed, as `ca list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCert {
    /// Hexadecimal serial number; the file `issued/SERIAL.pem`.
    pub serial: String,
    /// The certificate's names (CN, then DNS SANs).
    pub names: Vec<String>,
    /// Its last valid second, RFC 3339.
    pub not_after: String,
    pub revoked: bool,
}

impl Ca {
    /// Creates a CA named `name` in `dir`, valid for `validity`. Refuses a
    /// directory that already holds a CA key: overwriting it would orphan
    /// every certificate signed so far.
    pub fn init(dir: &Path, name: &str, validity: Duration) -> anyhow::Result<Ca> {
        let key_path = dir.join("ca.key");
        anyhow::ensure!(
            !key_path.exists(),
            "{} already holds a CA ({}); remove the directory to start over",
            dir.display(),
            key_path.display()
        );
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir.join("issued"))
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let mut params = CertificateParams::default();
        let mut subject = DistinguishedName::new();
        subject.push(DnType::CommonName, name);
        params.distinguished_name = subject;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let now = SystemTime::now();
        params.not_before = (now - CLOCK_SKEW).into();
        params.not_after = (now + validity).into();
        params.serial_number = Some(random_serial()?);
        let key = KeyPair::generate().context("cannot generate the CA key")?;
        let cert = params.self_signed(&key).context("cannot sign the CA certificate")?;
        write_new(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
        write_new(&dir.join("ca.pem"), cert.pem().as_bytes(), 0o644)?;
        let ca = Ca { dir: dir.to_owned(), issuer: Issuer::new(params, key) };
        ca.write_crl(now)?;
        crate::ticket::Tickets::open(dir)?;
        Ok(ca)
    }

    /// The CA directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The CA certificate (PEM), as agents and clients trust it.
    pub fn ca_pem(&self) -> anyhow::Result<String> {
        let path = self.dir.join("ca.pem");
        std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))
    }

    /// The current revocation list (PEM), read afresh: `ca revoke` in
    /// another process rewrites it.
    pub fn crl_pem(&self) -> anyhow::Result<String> {
        let path = self.dir.join("crl.pem");
        std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))
    }

    /// The SHA-256 fingerprint of the CA certificate, in hex: what an agent
    /// is given to trust this CA on first contact.
    pub fn fingerprint(&self) -> anyhow::Result<String> {
        let path = self.dir.join("ca.pem");
        let der = CertificateDer::from_pem_file(&path)
            .with_context(|| format!("{} is not a PEM certificate", path.display()))?;
        Ok(fingerprint(&der))
    }

    /// Whether the certificate with the serial `serial` (hex) is revoked,
    /// from the revocation file as it is now.
    pub fn is_revoked(&self, serial: &str) -> anyhow::Result<bool> {
        Ok(self.revoked()?.iter().any(|(revoked, _)| revoked == serial))
    }

    /// A certificate and a fresh key for `ca serve`'s own TLS, for `names`
    /// (DNS names or IP addresses). Not kept in `issued/`: the key lives in
    /// memory only and dies with the process, so there is nothing to revoke.
    pub fn server_identity(
        &self,
        names: &[String],
        validity: Duration,
    ) -> anyhow::Result<(CertificateDer<'static>, KeyPair)> {
        let mut params = CertificateParams::new(names.to_vec()).with_context(|| {
            format!("{names:?}: each --name must be a DNS name or an IP address")
        })?;
        let mut subject = DistinguishedName::new();
        subject.push(DnType::CommonName, names.first().map_or("monchero-ca-serve", String::as_str));
        params.distinguished_name = subject;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let now = SystemTime::now();
        params.not_before = (now - CLOCK_SKEW).into();
        params.not_after = (now + validity).into();
        params.serial_number = Some(random_serial()?);
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().context("cannot generate a key")?;
        let cert = params.signed_by(&key, &self.issuer).context("cannot sign the certificate")?;
        Ok((cert.der().clone(), key))
    }

    /// Opens the CA in `dir`.
    pub fn open(dir: &Path) -> anyhow::Result<Ca> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).with_context(|| {
                format!(
                    "cannot read {} (is {} a CA made by `monchero ca init`?)",
                    path.display(),
                    dir.display()
                )
            })
        };
        let key = KeyPair::from_pem(&read("ca.key")?)
            .with_context(|| format!("{} is not a private key", dir.join("ca.key").display()))?;
        let issuer = Issuer::from_ca_cert_pem(&read("ca.pem")?, key)
            .with_context(|| format!("{} is not a CA certificate", dir.join("ca.pem").display()))?;
        Ok(Ca { dir: dir.to_owned(), issuer })
    }

    /// Signs the PEM certificate request `csr` for `validity`, for use as a
    /// TLS server (the agent) and client (Prometheus, a poller). The
    /// request must name its holder (subject CN or a DNS name): that is
    /// what `[pull] allow` and `ca revoke` go by. Returns the certificate's
    /// PEM, also kept in `issued/`.
    pub fn sign(&self, csr: &str, validity: Duration) -> anyhow::Result<String> {
        let mut request = CertificateSigningRequestParams::from_pem(csr)
            .context("not a valid PEM certificate request (CSR)")?;
        let now = SystemTime::now();
        let params = &mut request.params;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages =
            vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        // A short lifetime (tests, aggressive rotation) gets a short
        // backdate, or it would be mostly backdate and always due for renewal.
        params.not_before = (now - CLOCK_SKEW.min(validity / 10)).into();
        params.not_after = (now + validity).into();
        let serial = random_serial()?;
        params.serial_number = Some(serial.clone());
        params.use_authority_key_identifier_extension = true;
        let cert = request.signed_by(&self.issuer).context("cannot sign the request")?;
        anyhow::ensure!(
            !tls::peer_names(cert.der()).is_empty(),
            "the request names nobody: make it with `monchero cert request NAME`, or give it a \
             subject CN or a DNS name"
        );
        let pem = cert.pem();
        write_new(
            &self.dir.join("issued").join(format!("{}.pem", hex(&serial))),
            pem.as_bytes(),
            0o644,
        )?;
        Ok(pem)
    }

    /// Every certificate signed, oldest expiry first.
    pub fn list(&self) -> anyhow::Result<Vec<IssuedCert>> {
        let revoked = self.revoked()?;
        let dir = self.dir.join("issued");
        let entries =
            std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))?;
        let mut issued = Vec::new();
        for entry in entries {
            let path = entry.with_context(|| format!("cannot read {}", dir.display()))?.path();
            let der = CertificateDer::from_pem_file(&path)
                .with_context(|| format!("{} is not a PEM certificate", path.display()))?;
            let (_, cert) = x509_parser::parse_x509_certificate(&der).map_err(|error| {
                anyhow::anyhow!("{} is not a certificate: {error}", path.display())
            })?;
            let serial = hex(&SerialNumber::from_slice(cert.raw_serial()));
            let not_after = cert.validity().not_after.timestamp();
            let not_after = u64::try_from(not_after)
                .map(|secs| {
                    crate::status_report::rfc3339(
                        SystemTime::UNIX_EPOCH + Duration::from_secs(secs),
                    )
                })
                .unwrap_or_else(|_| cert.validity().not_after.to_string());
            issued.push(IssuedCert {
                revoked: revoked.iter().any(|(revoked, _)| *revoked == serial),
                serial,
                names: tls::peer_names(&der),
                not_after,
            });
        }
        issued.sort_by(|a, b| a.not_after.cmp(&b.not_after).then_with(|| a.serial.cmp(&b.serial)));
        Ok(issued)
    }

    /// Revokes every certificate issued to `name` and writes a new CRL;
    /// returns how many were newly revoked. Agents refuse them once they
    /// load the new `crl.pem`.
    pub fn revoke(&self, name: &str) -> anyhow::Result<usize> {
        let issued = self.list()?;
        let matching: Vec<&IssuedCert> =
            issued.iter().filter(|cert| cert.names.iter().any(|n| n == name)).collect();
        anyhow::ensure!(
            !matching.is_empty(),
            "no certificate was issued to {name:?}; see `monchero ca list`"
        );
        let now = SystemTime::now();
        let mut lines = String::new();
        let fresh: Vec<&&IssuedCert> = matching.iter().filter(|cert| !cert.revoked).collect();
        for cert in &fresh {
            let _ = writeln!(lines, "{} {}", cert.serial, crate::status_report::rfc3339(now));
        }
        let path = self.dir.join("revoked");
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o644)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        file.write_all(lines.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
        self.write_crl(now)?;
        Ok(fresh.len())
    }

    /// The revoked serials and when they were revoked.
    fn revoked(&self) -> anyhow::Result<Vec<(String, SystemTime)>> {
        let path = self.dir.join("revoked");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => {
                return Err(error).with_context(|| format!("cannot read {}", path.display()));
            }
        };
        text.lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty())
            .map(|(index, line)| {
                let parsed = line.split_once(' ').and_then(|(serial, at)| {
                    Some((serial.to_owned(), humantime::parse_rfc3339(at.trim()).ok()?))
                });
                parsed.with_context(|| {
                    format!(
                        "{}:{}: expected \"SERIAL RFC3339-TIME\", found {line:?}",
                        path.display(),
                        index + 1
                    )
                })
            })
            .collect()
    }

    /// Signs and writes `crl.pem` listing every revoked serial.
    fn write_crl(&self, now: SystemTime) -> anyhow::Result<()> {
        let revoked_certs = self
            .revoked()?
            .into_iter()
            .map(|(serial, at)| {
                let bytes = unhex(&serial).with_context(|| {
                    format!("bad serial {serial:?} in {}", self.dir.join("revoked").display())
                })?;
                Ok(RevokedCertParams {
                    serial_number: SerialNumber::from_slice(&bytes),
                    revocation_time: at.into(),
                    reason_code: Some(RevocationReason::CessationOfOperation),
                    invalidity_date: None,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let seconds = now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs();
        let params = CertificateRevocationListParams {
            this_update: now.into(),
            next_update: (now + CRL_VALIDITY).into(),
            // Increases with every CRL, as RFC 5280 asks.
            crl_number: SerialNumber::from_slice(&seconds.to_be_bytes()),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let crl = params.signed_by(&self.issuer).context("cannot sign the revocation list")?;
        let pem = crl.pem().context("cannot encode the revocation list")?;
        replace(&self.dir.join("crl.pem"), pem.as_bytes())
    }
}

/// A positive 16-byte serial number from the system's secure random
/// source: unpredictable serials are what keeps a chosen-prefix collision
/// from turning a signed request into a different certificate.
fn random_serial() -> anyhow::Result<SerialNumber> {
    let mut bytes = random_bytes::<16>()?;
    // Positive and 16 bytes long once DER-encoded.
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    Ok(SerialNumber::from_slice(&bytes))
}

/// The SHA-256 fingerprint of a DER certificate, lower-case hex.
pub fn fingerprint(der: &[u8]) -> String {
    crate::ticket::hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der).as_ref())
}

/// `N` bytes from the system's secure random source.
pub fn random_bytes<const N: usize>() -> anyhow::Result<[u8; N]> {
    let mut bytes = [0u8; N];
    rustls::crypto::aws_lc_rs::default_provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| anyhow::anyhow!("the system's random number generator failed"))?;
    Ok(bytes)
}

/// A serial number in hexadecimal, as `issued/` and `revoked` name it.
pub fn hex(serial: &SerialNumber) -> String {
    crate::ticket::hex(serial.as_ref())
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    crate::ticket::unhex(text)
}

/// Replaces `path` atomically (temp file, fsync, rename), as the state
/// file is written: an agent reading the CRL never sees half of one.
pub fn replace(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    replace_with_mode(path, contents, 0o644)
}

/// [`replace`] with the file's `mode`.
pub fn replace_with_mode(path: &Path, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    // A leftover from a crash may have another mode; `mode` applies only
    // to a new file.
    let _ = std::fs::remove_file(&tmp);
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.with_context(|| format!("cannot write {}", path.display()))
}

/// Writes a file that must not exist yet, with `mode`.
pub fn write_new(path: &Path, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(contents).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use std::os::unix::fs::PermissionsExt;

    use rustls_pki_types::CertificateRevocationListDer;

    use super::*;

    pub(crate) const YEAR: Duration = Duration::from_secs(365 * 86400);

    fn csr(names: Vec<String>, common_name: Option<&str>) -> String {
        let mut params = CertificateParams::new(names).unwrap();
        // Without a name, an empty subject (rcgen's default has a CN).
        let mut subject = DistinguishedName::new();
        if let Some(name) = common_name {
            subject.push(DnType::CommonName, name);
        }
        params.distinguished_name = subject;
        params.serialize_request(&KeyPair::generate().unwrap()).unwrap().pem().unwrap()
    }

    /// The serials (hex) the CRL in `dir` lists.
    fn crl_serials(dir: &Path) -> Vec<String> {
        let der = CertificateRevocationListDer::from_pem_file(dir.join("crl.pem")).unwrap();
        let (_, crl) = x509_parser::parse_x509_crl(&der).unwrap();
        crl.iter_revoked_certificates()
            .map(|revoked| hex(&SerialNumber::from_slice(revoked.raw_serial())))
            .collect()
    }

    #[test]
    fn init_keeps_the_key_private_and_refuses_to_overwrite_a_ca() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca");
        Ca::init(&ca, "Test CA", YEAR).unwrap();
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&ca.join("ca.key")), 0o600);
        assert_eq!(mode(&ca), 0o700);
        assert!(crl_serials(&ca).is_empty());
        let again = format!("{:#}", Ca::init(&ca, "Test CA", YEAR).unwrap_err());
        assert!(again.contains("already holds a CA"), "{again}");
        let missing = format!("{:#}", Ca::open(&dir.path().join("nope")).unwrap_err());
        assert!(missing.contains("monchero ca init"), "{missing}");
    }

    #[test]
    fn signed_certificates_are_listed_and_revoked_by_name_into_the_crl() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::init(dir.path(), "Test CA", YEAR).unwrap();
        ca.sign(&csr(vec!["web1".into(), "10.0.0.1".into()], Some("web1")), YEAR).unwrap();
        ca.sign(&csr(vec![], Some("prometheus")), YEAR).unwrap();
        ca.sign(&csr(vec![], Some("prometheus")), YEAR).unwrap();
        let listed = ca.list().unwrap();
        assert_eq!(listed.len(), 3);
        assert!(listed.iter().any(|cert| cert.names == ["web1"]));
        assert!(listed.iter().all(|cert| !cert.revoked));

        assert_eq!(ca.revoke("prometheus").unwrap(), 2);
        assert_eq!(ca.revoke("prometheus").unwrap(), 0, "already revoked");
        let listed = Ca::open(dir.path()).unwrap().list().unwrap();
        let mut revoked: Vec<String> =
            listed.iter().filter(|cert| cert.revoked).map(|cert| cert.serial.clone()).collect();
        let mut in_crl = crl_serials(dir.path());
        revoked.sort();
        in_crl.sort();
        assert_eq!(revoked.len(), 2);
        assert_eq!(in_crl, revoked);
        let unknown = format!("{:#}", ca.revoke("nobody").unwrap_err());
        assert!(unknown.contains("no certificate was issued to \"nobody\""), "{unknown}");
    }

    #[test]
    fn a_request_must_name_its_holder_and_be_a_request() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::init(dir.path(), "Test CA", YEAR).unwrap();
        let nameless = format!("{:#}", ca.sign(&csr(vec![], None), YEAR).unwrap_err());
        assert!(nameless.contains("names nobody"), "{nameless}");
        let garbage = format!("{:#}", ca.sign("not a CSR", YEAR).unwrap_err());
        assert!(garbage.contains("not a valid PEM certificate request"), "{garbage}");
        assert!(ca.list().unwrap().is_empty(), "nothing was issued");
    }

    #[test]
    fn a_damaged_revocation_file_is_named_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::init(dir.path(), "Test CA", YEAR).unwrap();
        ca.sign(&csr(vec![], Some("a")), YEAR).unwrap();
        std::fs::write(dir.path().join("revoked"), "\ngarbage\n").unwrap();
        let error = format!("{:#}", ca.revoke("a").unwrap_err());
        assert!(
            error.ends_with("revoked:2: expected \"SERIAL RFC3339-TIME\", found \"garbage\""),
            "{error}"
        );
    }
}
