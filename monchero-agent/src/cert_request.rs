//! `monchero cert request`: a new private key and a certificate request
//! (CSR) for `monchero ca sign`. The key is written with mode 0600 and
//! never travels; only the CSR goes to the CA. `cert enrol` and renewal
//! make theirs with [`new_key_and_csr`] too.

use std::path::{Path, PathBuf};

use anyhow::Context;
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};

use crate::ca::write_new;

/// The files `request` wrote.
#[derive(Debug)]
pub struct Requested {
    pub key: PathBuf,
    pub csr: PathBuf,
}

/// Makes `DIR/NAME.key` and `DIR/NAME.csr` for the holder `name` (subject
/// CN and first DNS name). `alt_names` are further DNS names or IP
/// addresses, e.g. the addresses a poller connects to the agent by.
/// Refuses to overwrite a key.
pub fn request(name: &str, alt_names: &[String], dir: &Path) -> anyhow::Result<Requested> {
    let (key, csr) = new_key_and_csr(name, alt_names)?;
    let requested =
        Requested { key: dir.join(format!("{name}.key")), csr: dir.join(format!("{name}.csr")) };
    // Both or neither: a key without its request would block a retry.
    anyhow::ensure!(!requested.csr.exists(), "{} already exists", requested.csr.display());
    write_new(&requested.key, key.serialize_pem().as_bytes(), 0o600)?;
    write_new(&requested.csr, csr.as_bytes(), 0o644)?;
    Ok(requested)
}

/// A new key and a PEM request for the holder `name` (subject CN and first
/// DNS name) and `alt_names` (DNS names or IP addresses); nothing written.
pub fn new_key_and_csr(name: &str, alt_names: &[String]) -> anyhow::Result<(KeyPair, String)> {
    anyhow::ensure!(!name.trim().is_empty(), "the name must not be empty");
    let names: Vec<String> = std::iter::once(name.to_owned())
        .chain(alt_names.iter().filter(|alt| *alt != name).cloned())
        .collect();
    let mut params = CertificateParams::new(names).with_context(|| {
        format!("{name:?} or one of the --san names is not a valid DNS name or IP address")
    })?;
    let mut subject = DistinguishedName::new();
    subject.push(DnType::CommonName, name);
    params.distinguished_name = subject;
    let key = KeyPair::generate().context("cannot generate a key")?;
    let csr = params.serialize_request(&key).context("cannot make the request")?;
    let csr = csr.pem().context("cannot encode the request")?;
    Ok((key, csr))
}
