//! `monchero ca serve`: the enrolment endpoint over HTTPS. Agents send
//! certificate requests with a ticket (signed at once) or without one
//! (queued for `monchero ca sign`), renew over mutual TLS with their
//! current certificate, and fetch the CRL.
//!
//! The server's own certificate is issued by the CA at every start, for
//! the `--name`s given, with a key that only ever lives in memory; agents
//! trust it through the CA certificate they pinned by fingerprint. The
//! chain sent includes the CA certificate so an agent can match that
//! fingerprint on first contact. Connections are accepted by the pull
//! listener (bounded, handshake timeout); `api` holds the routes,
//! `validate` the signing rules, `queue` the waiting requests, `limit`
//! the per-address budget, owned by a task.

pub mod api;
mod limit;
pub mod queue;
pub mod validate;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rustls::RootCertStore;
use rustls::server::{ServerConfig, WebPkiClientVerifier};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::watch;
use tracing::info;

use crate::ca::Ca;
use crate::pull::listener::{Listener, Served};

/// How long the server's own certificate is valid; it is made anew at
/// every start.
const SERVER_CERT_VALIDITY: Duration = Duration::from_secs(397 * 86400);

/// Connections served at once.
const MAX_CONNECTIONS: usize = 64;

/// What `ca serve` was asked for.
#[derive(Debug)]
pub struct ServeOptions<'a> {
    /// The CA directory.
    pub dir: &'a Path,
    /// The address to listen on.
    pub listen: SocketAddr,
    /// The server certificate's names; the host name when empty.
    pub names: Vec<String>,
    /// The lifetime of the certificates it signs.
    pub lifetime: Duration,
}

/// Runs the endpoint until the process is stopped. Prints the address it
/// listens on and the CA's fingerprint first (to stdout, for scripts and
/// for the operator to hand to agents).
pub fn run(options: ServeOptions<'_>) -> anyhow::Result<u8> {
    crate::logging::init();
    let ca = Ca::open(options.dir)?;
    crate::ticket::Tickets::open(options.dir)?;
    let names = if options.names.is_empty() {
        vec![rustix::system::uname().nodename().to_string_lossy().into_owned()]
    } else {
        options.names
    };
    let tls = server_config(&ca, &names)?;
    let fingerprint = ca.fingerprint()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let router = api::router(api::ServeState::new(ca, options.lifetime));
        let (_keep, served) = watch::channel(Served { tls: Some(tls), router });
        let listener = Listener::bind(options.listen, served, MAX_CONNECTIONS)?;
        let address = listener.address();
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on https://{address}")?;
        writeln!(out, "CA fingerprint (SHA-256): {fingerprint}")?;
        out.flush()?;
        drop(out);
        info!(message = "Enrolment server listening.", %address, names = ?names, %fingerprint);
        listener.serve().await;
        Ok(0)
    })
}

/// TLS 1.2+ with a fresh certificate from the CA; a client certificate is
/// optional (enrolment has none yet) but must be from this CA when sent.
fn server_config(ca: &Ca, names: &[String]) -> anyhow::Result<Arc<ServerConfig>> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let ca_cert = CertificateDer::from_pem_slice(ca.ca_pem()?.as_bytes())
        .context("the CA certificate is not PEM")?;
    let mut roots = RootCertStore::empty();
    roots.add(ca_cert.clone()).context("the CA certificate is not usable as a trust anchor")?;
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .context("cannot verify clients with the CA certificate")?;
    let (cert, key) = ca.server_identity(names, SERVER_CERT_VALIDITY)?;
    let key = PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("the TLS library refuses TLS 1.2 and 1.3")?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![cert, ca_cert], key)
        .context("cannot use the server certificate")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
