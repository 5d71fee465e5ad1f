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
mod listener;
pub mod tls;

use tokio::sync::mpsc;
use tracing::info;

use crate::config::{MetricsConfig, PullConfig};
use crate::control::Incoming;
use listener::Listener;

/// Connections served at once on a `[metrics]` listener: a local Prometheus
/// or two.
const METRICS_MAX_CONNECTIONS: usize = 16;

/// Binds every configured listener, then serves each in a task of its own.
/// Nothing is served unless every address could be bound. Must be called
/// inside the tokio runtime.
pub fn start(
    pull: Option<&PullConfig>,
    metrics: Option<&MetricsConfig>,
    to_daemon: &mpsc::Sender<Incoming>,
) -> anyhow::Result<()> {
    let mut listeners = Vec::new();
    if let Some(pull) = pull {
        let tls = tls::server_config(pull)?;
        let router = api::router(api::ApiState::new(to_daemon.clone(), api::Access::new(pull)));
        for address in &pull.listen {
            let listener =
                Listener::bind(*address, Some(tls.clone()), pull.max_connections, router.clone())?;
            listeners.push(("Pull API listening (mTLS).", listener));
        }
    }
    if let Some(metrics) = metrics {
        let state = api::ApiState::new(to_daemon.clone(), api::Access::default());
        let router = api::metrics_router(state);
        for address in &metrics.listen {
            let listener = Listener::bind(*address, None, METRICS_MAX_CONNECTIONS, router.clone())?;
            listeners.push(("Metrics listening (plain HTTP).", listener));
        }
    }
    for (message, listener) in listeners {
        info!(message = %message, address = %listener.address());
        tokio::spawn(listener.serve());
    }
    Ok(())
}
