//! The agent's certificate directory, written by `monchero cert enrol` and
//! by renewal, read by `[pull] cert_dir`:
//!
//! ```text
//! DIR/              0700
//!   ca.pem          the CA certificate (trust anchor for clients)
//!   crl.pem         the CA's revocation list, verified before it is installed
//!   current         symlink to the pair in use: current/key.pem (0600), current/cert.pem
//!   pair-XXXX/      one pair per issue; the previous ones are removed
//!   enrolment.json  the enrolment server and the certificate's names, for renewal
//!   pending.json    a queued request's id, with pending.key (0600) until collected
//! ```
//!
//! A new key and its certificate are written side by side in a new
//! directory, then `current` is switched to it with one rename: a crash
//! at any point leaves `current` on a complete, matching pair.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use rcgen::{KeyPair, PublicKeyData};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer};
use serde::{Deserialize, Serialize};

use crate::ca::{random_bytes, replace, replace_with_mode, write_new};

/// Where the certificate came from, for renewal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Enrolment {
    /// The enrolment server, `https://HOST:PORT`.
    pub server: String,
    /// The certificate's name (subject CN).
    pub name: String,
    /// Its other DNS names and IP addresses.
    #[serde(default)]
    pub san: Vec<String>,
}

/// A request the server queued, until it is collected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pending {
    /// The enrolment server it was sent to.
    pub server: String,
    /// The id the server gave it.
    pub id: String,
    /// The certificate's name.
    pub name: String,
    /// Its other DNS names and IP addresses.
    #[serde(default)]
    pub san: Vec<String>,
}

/// One certificate directory.
#[derive(Debug, Clone)]
pub struct CertDir {
    dir: PathBuf,
}

impl CertDir {
    /// The directory at `dir` (not created yet).
    pub fn new(dir: &Path) -> CertDir {
        CertDir { dir: dir.to_owned() }
    }

    /// `STATE_DIR/certs` under the default state directory: the agent
    /// writes there when it renews, so it must be the agent's to write,
    /// which `/etc` under the systemd sandbox is not.
    pub fn default_dir() -> PathBuf {
        crate::config::paths::default_state_dir().join("certs")
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The CA certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// The revocation list.
    pub fn crl_file(&self) -> PathBuf {
        self.dir.join("crl.pem")
    }

    /// The certificate in use.
    pub fn cert_file(&self) -> PathBuf {
        self.dir.join("current").join("cert.pem")
    }

    /// The key in use.
    pub fn key_file(&self) -> PathBuf {
        self.dir.join("current").join("key.pem")
    }

    /// Creates the directory (0700) if needed.
    pub fn create(&self) -> anyhow::Result<()> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .with_context(|| format!("cannot create {}", self.dir.display()))
    }

    /// Installs a key and its certificate as the pair in use. Refuses a
    /// certificate that is not for this key.
    pub fn install_pair(&self, key_pem: &str, cert_pem: &str) -> anyhow::Result<()> {
        check_pair(key_pem, cert_pem)?;
        let name = format!("pair-{}", crate::ticket::hex(&random_bytes::<8>()?));
        let pair = self.dir.join(&name);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&pair)
            .with_context(|| format!("cannot create {}", pair.display()))?;
        write_new(&pair.join("key.pem"), key_pem.as_bytes(), 0o600)?;
        write_new(&pair.join("cert.pem"), cert_pem.as_bytes(), 0o644)?;
        sync(&pair)?;
        let link = self.dir.join(format!("current.{name}"));
        std::os::unix::fs::symlink(&name, &link)
            .with_context(|| format!("cannot create {}", link.display()))?;
        let current = self.dir.join("current");
        std::fs::rename(&link, &current)
            .with_context(|| format!("cannot switch {} to {name}", current.display()))?;
        sync(&self.dir)?;
        self.remove_old_pairs(&name);
        Ok(())
    }

    /// Pairs other than `keep`: superseded, their keys no longer wanted.
    /// A failure to remove one costs disk only, so it is not an error.
    fn remove_old_pairs(&self, keep: &str) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with("pair-") && name != keep {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }

    /// Installs the CA certificate.
    pub fn install_ca(&self, pem: &str) -> anyhow::Result<()> {
        replace(&self.ca_file(), pem.as_bytes())
    }

    /// Installs a revocation list after checking it is signed by the
    /// installed CA.
    pub fn install_crl(&self, pem: &str) -> anyhow::Result<()> {
        let ca = std::fs::read(self.ca_file())
            .with_context(|| format!("cannot read {}", self.ca_file().display()))?;
        verify_crl(pem, &ca)?;
        replace(&self.crl_file(), pem.as_bytes())
    }

    /// The recorded enrolment; `None` when the directory has none (a
    /// certificate installed by hand is not renewed).
    pub fn enrolment(&self) -> anyhow::Result<Option<Enrolment>> {
        read_json(&self.dir.join("enrolment.json"))
    }

    /// Records where the certificate came from.
    pub fn save_enrolment(&self, enrolment: &Enrolment) -> anyhow::Result<()> {
        let json = serde_json::to_vec_pretty(enrolment).context("cannot encode the enrolment")?;
        replace(&self.dir.join("enrolment.json"), &json)
    }

    /// A queued request waiting to be collected, and its key.
    pub fn pending(&self) -> anyhow::Result<Option<(Pending, String)>> {
        let Some(pending) = read_json::<Pending>(&self.dir.join("pending.json"))? else {
            return Ok(None);
        };
        let path = self.dir.join("pending.key");
        let key = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Ok(Some((pending, key)))
    }

    /// Keeps a queued request's id and key until it is collected.
    pub fn save_pending(&self, pending: &Pending, key_pem: &str) -> anyhow::Result<()> {
        replace_with_mode(&self.dir.join("pending.key"), key_pem.as_bytes(), 0o600)?;
        let json = serde_json::to_vec_pretty(pending).context("cannot encode the request")?;
        replace(&self.dir.join("pending.json"), &json)
    }

    /// Forgets the queued request.
    pub fn clear_pending(&self) -> anyhow::Result<()> {
        for name in ["pending.json", "pending.key"] {
            let path = self.dir.join(name);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => {
                    return Err(error).with_context(|| format!("cannot remove {}", path.display()));
                }
            }
        }
        Ok(())
    }
}

/// Checks that `cert_pem` certifies the key in `key_pem`.
pub fn check_pair(key_pem: &str, cert_pem: &str) -> anyhow::Result<()> {
    let key = KeyPair::from_pem(key_pem).context("the key is not a PEM private key")?;
    let der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
        .context("the certificate is not PEM")?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der)
        .map_err(|error| anyhow::anyhow!("the certificate is unreadable: {error}"))?;
    anyhow::ensure!(
        cert.public_key().raw == key.subject_public_key_info().as_slice(),
        "the certificate is not for this key"
    );
    Ok(())
}

/// Checks that `cert_pem` is signed by the CA certificate `ca_pem`.
pub fn verify_issued(cert_pem: &str, ca_pem: &[u8]) -> anyhow::Result<()> {
    let ca = CertificateDer::from_pem_slice(ca_pem).context("the CA certificate is not PEM")?;
    let (_, ca) = x509_parser::parse_x509_certificate(&ca)
        .map_err(|error| anyhow::anyhow!("the CA certificate is unreadable: {error}"))?;
    let der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
        .context("the certificate is not PEM")?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der)
        .map_err(|error| anyhow::anyhow!("the certificate is unreadable: {error}"))?;
    cert.verify_signature(Some(ca.public_key()))
        .map_err(|error| anyhow::anyhow!("the certificate is not signed by the CA: {error}"))
}

/// Checks that the revocation list `pem` is signed by the CA certificate
/// `ca_pem`: anyone between the agent and the server could otherwise hand
/// it an empty list and un-revoke a stolen key.
pub fn verify_crl(pem: &str, ca_pem: &[u8]) -> anyhow::Result<()> {
    let ca = CertificateDer::from_pem_slice(ca_pem).context("the CA certificate is not PEM")?;
    let (_, ca) = x509_parser::parse_x509_certificate(&ca)
        .map_err(|error| anyhow::anyhow!("the CA certificate is unreadable: {error}"))?;
    let der = CertificateRevocationListDer::from_pem_slice(pem.as_bytes())
        .context("the revocation list is not PEM")?;
    let (_, crl) = x509_parser::parse_x509_crl(&der)
        .map_err(|error| anyhow::anyhow!("the revocation list is unreadable: {error}"))?;
    anyhow::ensure!(
        crl.issuer() == ca.subject(),
        "the revocation list is from {}, not from the CA {}",
        crl.issuer(),
        ca.subject()
    );
    crl.verify_signature(ca.public_key())
        .map_err(|error| anyhow::anyhow!("the revocation list is not signed by the CA: {error}"))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .with_context(|| format!("{} is damaged", path.display())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Flushes a directory's entries to disk.
fn sync(dir: &Path) -> anyhow::Result<()> {
    std::fs::File::open(dir)
        .and_then(|file| file.sync_all())
        .with_context(|| format!("cannot sync {}", dir.display()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use rcgen::{CertificateParams, DistinguishedName, DnType};

    use super::*;
    use crate::ca::Ca;

    const YEAR: Duration = Duration::from_secs(365 * 86400);

    fn mode(path: &Path) -> Option<u32> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).ok().map(|meta| meta.permissions().mode() & 0o777)
    }

    /// A key and a CA-signed certificate for it.
    fn pair(ca: &Ca, name: &str) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
        let mut subject = DistinguishedName::new();
        subject.push(DnType::CommonName, name);
        params.distinguished_name = subject;
        let csr = params.serialize_request(&key).unwrap().pem().unwrap();
        (key.serialize_pem(), ca.sign(&csr, YEAR).unwrap())
    }

    #[test]
    fn a_pair_is_installed_whole_and_replaces_the_previous_one() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::init(&dir.path().join("ca"), "Test CA", YEAR).unwrap();
        let certs = CertDir::new(&dir.path().join("certs"));
        certs.create().unwrap();
        let (key1, cert1) = pair(&ca, "web1");
        certs.install_pair(&key1, &cert1).unwrap();
        assert_eq!(std::fs::read_to_string(certs.key_file()).unwrap(), key1);
        assert_eq!(std::fs::read_to_string(certs.cert_file()).unwrap(), cert1);
        assert_eq!(mode(&certs.key_file()), Some(0o600));
        assert_eq!(mode(certs.path()), Some(0o700));

        let (key2, cert2) = pair(&ca, "web1");
        // A certificate for another key is refused and changes nothing.
        let error = format!("{:#}", certs.install_pair(&key2, &cert1).unwrap_err());
        assert!(error.contains("not for this key"), "{error}");
        assert_eq!(std::fs::read_to_string(certs.key_file()).unwrap(), key1);

        certs.install_pair(&key2, &cert2).unwrap();
        assert_eq!(std::fs::read_to_string(certs.key_file()).unwrap(), key2);
        assert_eq!(std::fs::read_to_string(certs.cert_file()).unwrap(), cert2);
        let pairs = std::fs::read_dir(certs.path())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("pair-"))
            .count();
        assert_eq!(pairs, 1, "the superseded key is gone");
    }

    #[test]
    fn a_crl_from_another_ca_is_refused_and_the_installed_one_kept() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::init(&dir.path().join("ca"), "Test CA", YEAR).unwrap();
        let other = Ca::init(&dir.path().join("other"), "Test CA", YEAR).unwrap();
        let certs = CertDir::new(&dir.path().join("certs"));
        certs.create().unwrap();
        certs.install_ca(&ca.ca_pem().unwrap()).unwrap();
        certs.install_crl(&ca.crl_pem().unwrap()).unwrap();
        let error = format!("{:#}", certs.install_crl(&other.crl_pem().unwrap()).unwrap_err());
        assert!(error.contains("not signed by the CA"), "{error}");
        assert_eq!(std::fs::read_to_string(certs.crl_file()).unwrap(), ca.crl_pem().unwrap());
        let garbage = format!("{:#}", certs.install_crl("garbage").unwrap_err());
        assert!(garbage.contains("not PEM"), "{garbage}");

        let (_, cert) = pair(&ca, "web1");
        verify_issued(&cert, ca.ca_pem().unwrap().as_bytes()).unwrap();
        assert!(verify_issued(&cert, other.ca_pem().unwrap().as_bytes()).is_err());
    }

    #[test]
    fn pending_requests_and_the_enrolment_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let certs = CertDir::new(dir.path());
        assert_eq!(certs.enrolment().unwrap(), None);
        assert!(certs.pending().unwrap().is_none());
        let pending = Pending {
            server: "https://127.0.0.1:1".into(),
            id: "ab".into(),
            name: "web1".into(),
            san: vec![],
        };
        certs.save_pending(&pending, "KEY").unwrap();
        assert_eq!(mode(&dir.path().join("pending.key")), Some(0o600));
        assert_eq!(certs.pending().unwrap(), Some((pending, "KEY".to_owned())));
        certs.clear_pending().unwrap();
        assert!(certs.pending().unwrap().is_none());
        std::fs::write(dir.path().join("enrolment.json"), "{").unwrap();
        let error = format!("{:#}", certs.enrolment().unwrap_err());
        assert!(error.contains("enrolment.json is damaged"), "{error}");
    }
}
