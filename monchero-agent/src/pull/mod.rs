//! Pull: the agent answering over the network. `[pull]` opens the HTTPS API
//! (mutual TLS: only clients with a certificate from the configured CA get
//! past the handshake), `[metrics]` serves `/metrics` over plain HTTP for a
//! Prometheus on the same machine.
//!
//! Both talk to the daemon's main loop the way the control socket does, over
//! its request channel; nothing here holds state of its own. `tls` loads
//! the certificates and names the client, `listener` accepts connections,
//! `api` holds the routes.

pub mod api;
pub mod listener;
pub mod tls;

use std::time::SystemTime;

use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};

use crate::config::{MetricsConfig, PullConfig};
use crate::control::Incoming;
use listener::{Listener, Served};

/// Connections served at once on a `[metrics]` listener: a local Prometheus
/// or two.
const METRICS_MAX_CONNECTIONS: usize = 16;

/// The running listeners, and how a reload reaches them.
#[derive(Debug)]
pub struct Pull {
    to_daemon: mpsc::Sender<Incoming>,
    /// `[pull]` as running, and where its listeners take their TLS config
    /// and routes from.
    api: Option<(PullConfig, watch::Sender<Served>)>,
    metrics: Option<MetricsConfig>,
    /// When the served certificate expires.
    cert_expires: Option<SystemTime>,
}

/// Binds every configured listener, then serves each in a task of its own.
/// Nothing is served unless every address could be bound. Must be called
/// inside the tokio runtime.
pub fn start(
    pull: Option<&PullConfig>,
    metrics: Option<&MetricsConfig>,
    to_daemon: &mpsc::Sender<Incoming>,
) -> anyhow::Result<Pull> {
    let mut listeners = Vec::new();
    let mut api = None;
    let mut cert_expires = None;
    if let Some(pull) = pull {
        let (sender, served) = watch::channel(served_api(pull, to_daemon)?);
        cert_expires = cert_expiry(pull);
        for address in &pull.listen {
            let listener = Listener::bind(*address, served.clone(), pull.max_connections)?;
            listeners.push(("Pull API listening (mTLS).", listener));
        }
        api = Some((pull.clone(), sender));
    }
    if let Some(metrics) = metrics {
        let state = api::ApiState::new(to_daemon.clone(), api::Access::default());
        // Nothing of it changes on a reload: the sender can go.
        let (_, served) = watch::channel(Served { tls: None, router: api::metrics_router(state) });
        for address in &metrics.listen {
            let listener = Listener::bind(*address, served.clone(), METRICS_MAX_CONNECTIONS)?;
            listeners.push(("Metrics listening (plain HTTP).", listener));
        }
    }
    for (message, listener) in listeners {
        info!(message = %message, address = %listener.address());
        tokio::spawn(listener.serve());
    }
    Ok(Pull { to_daemon: to_daemon.clone(), api, metrics: metrics.cloned(), cert_expires })
}

/// When the agent's certificate (the first in `cert_file`) expires.
fn cert_expiry(pull: &PullConfig) -> Option<SystemTime> {
    tls::load_certs(&pull.cert_file).ok()?.first().and_then(tls::not_after)
}

/// The TLS config and routes of `[pull]`, read afresh from its files.
fn served_api(pull: &PullConfig, to_daemon: &mpsc::Sender<Incoming>) -> anyhow::Result<Served> {
    let state = api::ApiState::new(to_daemon.clone(), api::Access::new(pull));
    Ok(Served { tls: Some(tls::server_config(pull)?), router: api::router(state) })
}

impl Pull {
    /// When the certificate `[pull]` serves expires; `None` when it is off.
    pub fn cert_expires(&self) -> Option<SystemTime> {
        self.cert_expires
    }

    /// Reads the certificate, key, CA and CRL files again with the running
    /// config, after renewal or a CRL refresh replaced them; a failure
    /// keeps what runs.
    pub fn reload_certificates(&mut self) {
        let Some((running, sender)) = &mut self.api else { return };
        match served_api(running, &self.to_daemon) {
            Ok(served) => {
                sender.send_replace(served);
                self.cert_expires = cert_expiry(running);
                info!(message = "Pull API reloaded its certificates and CRL.");
            }
            Err(error) => {
                let error = format!("{error:#}");
                error!(message = "Pull API certificate reload failed; it keeps its previous certificates.", %error);
            }
        }
    }

    /// Applies a reloaded config (SIGHUP). The certificate, key, CA and CRL
    /// files are read again, even when their paths did not change (a
    /// renewed certificate, a new `crl.pem`), and `allow` / `run_allowed`
    /// are replaced, for every connection from now on. Addresses and
    /// connection limits, and turning `[pull]` or `[metrics]` on or off,
    /// need a restart; a failure keeps what runs.
    pub fn reload(&mut self, pull: Option<&PullConfig>, metrics: Option<&MetricsConfig>) {
        if metrics != self.metrics.as_ref() {
            warn!(message = "[metrics] changed; restart the agent to apply that.");
        }
        let restart = "[pull] was turned on or off, or its listen or max_connections changed; \
                       restart the agent to apply that.";
        match (&mut self.api, pull) {
            (None, None) => {}
            (Some((running, sender)), Some(pull))
                if (&running.listen, running.max_connections)
                    == (&pull.listen, pull.max_connections) =>
            {
                match served_api(pull, &self.to_daemon) {
                    Ok(served) => {
                        sender.send_replace(served);
                        self.cert_expires = cert_expiry(pull);
                        *running = pull.clone();
                        info!(message = "Pull API reloaded: certificates, CRL and access lists.");
                    }
                    Err(error) => {
                        let error = format!("{error:#}");
                        error!(message = "Pull API reload failed; it keeps its previous certificates and access lists.", %error);
                    }
                }
            }
            _ => warn!(message = restart),
        }
    }
}
