//! The TLS side of `[nrpe]`: the rustls server configuration, with a
//! client certificate from `client_ca` required when that is set (NRPE's
//! `ssl_client_certs = 2`). TLS 1.2 and 1.3 only; rustls has no anonymous
//! Diffie-Hellman, so `check_nrpe` must be given a CA (`-C`) or accept an
//! unverified certificate, never an unauthenticated channel.

use std::sync::Arc;

use anyhow::Context;
use rustls::RootCertStore;
use rustls::server::{ServerConfig, WebPkiClientVerifier};

use crate::config::NrpeTls;
use crate::pull::tls::{load_certs, load_key};

/// The server configuration for `tls`, read afresh from its files.
pub fn server_config(tls: &NrpeTls) -> anyhow::Result<Arc<ServerConfig>> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("the TLS library refuses TLS 1.2 and 1.3")?;
    let builder = match &tls.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in load_certs(ca)? {
                roots
                    .add(cert)
                    .with_context(|| format!("{} is not a usable CA certificate", ca.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .with_context(|| format!("cannot verify clients with {}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder
        .with_single_cert(load_certs(&tls.cert)?, load_key(&tls.key)?)
        .with_context(|| {
            format!(
                "the key {} does not fit the certificate {}",
                tls.key.display(),
                tls.cert.display()
            )
        })?;
    Ok(Arc::new(config))
}
