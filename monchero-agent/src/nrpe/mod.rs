//! `[nrpe]`: an NRPE-compatible listener, so a Nagios or Icinga server that
//! polls hosts with `check_nrpe` can poll Monchero unchanged.
//!
//! `allowed` holds `allowed_hosts`, `tls` the rustls configuration,
//! `listener` the accept loop and the exchange of one packet each way,
//! `answer` what a query gets back. The packet codec itself is
//! `monchero_core::nrpe`. Configured checks are run through the daemon's
//! main loop over its request channel, as `check-now NAME` does; nothing
//! here holds state of its own.

pub mod allowed;
mod answer;
mod listener;
mod tls;

use std::collections::HashSet;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};

use crate::config::{CheckConfig, NrpeConfig};
use crate::control::Incoming;
use listener::Listener;

/// What new connections are served with; replaced on a reload.
#[derive(Debug, Clone)]
pub struct Served {
    /// `[nrpe]` as configured.
    config: Arc<NrpeConfig>,
    /// `None` for plain text (`tls = false`).
    tls: Option<Arc<rustls::ServerConfig>>,
    /// The configured `[[check]]` names a query may ask for.
    checks: Arc<HashSet<String>>,
}

impl Served {
    /// Reads the TLS files afresh.
    fn new(config: &NrpeConfig, checks: &[CheckConfig]) -> anyhow::Result<Served> {
        let tls = config.tls.as_ref().map(tls::server_config).transpose()?;
        let checks = checks.iter().map(|check| check.name.clone()).collect();
        Ok(Served { config: Arc::new(config.clone()), tls, checks: Arc::new(checks) })
    }
}

/// The running listeners, and how a reload reaches them.
#[derive(Debug)]
pub struct Nrpe {
    running: Option<(NrpeConfig, watch::Sender<Served>)>,
}

/// Binds every `[nrpe]` address, then serves each in a task of its own.
/// Nothing is served unless every address could be bound. Must be called
/// inside the tokio runtime.
pub fn start(
    config: Option<&NrpeConfig>,
    checks: &[CheckConfig],
    to_daemon: &mpsc::Sender<Incoming>,
) -> anyhow::Result<Nrpe> {
    let Some(config) = config else { return Ok(Nrpe { running: None }) };
    let (sender, served) = watch::channel(Served::new(config, checks)?);
    let mut listeners = Vec::with_capacity(config.listen.len());
    for address in &config.listen {
        listeners.push(Listener::bind(
            *address,
            served.clone(),
            config.max_connections,
            to_daemon.clone(),
        )?);
    }
    let mode = if config.tls.is_some() { "TLS" } else { "plain text" };
    for listener in listeners {
        info!(message = "NRPE listening.", address = %listener.address(), %mode);
        tokio::spawn(listener.serve());
    }
    Ok(Nrpe { running: Some((config.clone(), sender)) })
}

impl Nrpe {
    /// Applies a reloaded config (SIGHUP): certificates are read again even
    /// when their paths did not change, and `allowed_hosts`, the commands,
    /// the check names, arguments and timeouts are replaced for every
    /// connection from now on. Addresses and the connection limit, and
    /// turning `[nrpe]` on or off, need a restart; a failure keeps what
    /// runs.
    pub fn reload(&mut self, config: Option<&NrpeConfig>, checks: &[CheckConfig]) {
        match (&mut self.running, config) {
            (None, None) => {}
            (Some((running, sender)), Some(config))
                if (&running.listen, running.max_connections)
                    == (&config.listen, config.max_connections) =>
            {
                match Served::new(config, checks) {
                    Ok(served) => {
                        sender.send_replace(served);
                        *running = config.clone();
                        info!(message = "NRPE reloaded: certificates, allowed_hosts and commands.");
                    }
                    Err(error) => {
                        let error = format!("{error:#}");
                        error!(message = "NRPE reload failed; it keeps its previous certificates and commands.", %error);
                    }
                }
            }
            _ => warn!(
                message = "[nrpe] was turned on or off, or its listen or max_connections changed; restart the agent to apply that."
            ),
        }
    }
}
