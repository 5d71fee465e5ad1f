//! Accepting connections: a bounded number at a time, the TLS handshake in
//! the connection's own task with a timeout, then HTTP/1.1 served by hyper.
//!
//! The handshake is never done inside the accept loop: one client that
//! connects and sends nothing would otherwise block every client after it.
//! When `max_connections` are open, new ones wait in the kernel's backlog
//! instead of costing memory here. What a connection is served with comes
//! from a watch channel at accept time, so a reload (new certificates, CRL,
//! access lists) applies to the next connection without dropping any.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::{Extension, Router};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};

use super::api::Client;
use super::tls;
use crate::bounded_listener::{Accepted, BoundedListener};

/// The longest a client may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest a client may take to send a request's headers, and to send
/// the next request on a kept-alive connection.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// What a listener serves new connections with.
#[derive(Debug, Clone)]
pub struct Served {
    /// `None` serves plain HTTP (the `[metrics]` listener).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub router: Router,
}

/// One listening socket and what it serves.
#[derive(Debug)]
pub struct Listener {
    socket: BoundedListener,
    served: watch::Receiver<Served>,
}

impl Listener {
    /// Binds `address`. Must be called inside the tokio runtime.
    pub fn bind(
        address: SocketAddr,
        served: watch::Receiver<Served>,
        max_connections: usize,
    ) -> anyhow::Result<Listener> {
        Ok(Listener { socket: BoundedListener::bind(address, max_connections)?, served })
    }

    /// The bound address (with the port the system chose for port 0).
    pub fn address(&self) -> SocketAddr {
        self.socket.address()
    }

    /// Accepts connections for as long as the runtime runs.
    pub async fn serve(self) {
        while let Some(Accepted { stream, peer, slot }) = self.socket.accept().await {
            let Served { tls, router } = self.served.borrow().clone();
            let tls = tls.map(TlsAcceptor::from);
            tokio::spawn(async move {
                connection(stream, peer, tls, router).await;
                drop(slot);
            });
        }
    }
}

async fn connection(stream: TcpStream, peer: SocketAddr, tls: Option<TlsAcceptor>, router: Router) {
    let Some(acceptor) = tls else {
        let client = Client { address: peer, names: Vec::new(), certificate: None };
        serve_http(stream, client, router).await;
        return;
    };
    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            warn!(message = "TLS handshake refused.", %peer, reason = %error);
            return;
        }
        Err(_) => {
            let reason = format!("no handshake within {} s", HANDSHAKE_TIMEOUT.as_secs());
            warn!(message = "TLS handshake refused.", %peer, %reason);
            return;
        }
    };
    let certificate =
        stream.get_ref().1.peer_certificates().and_then(|chain| chain.first()).cloned();
    let names = certificate.as_ref().map(tls::peer_names).unwrap_or_default();
    debug!(message = "Client connected.", %peer, names = ?names);
    serve_http(stream, Client { address: peer, names, certificate }, router).await;
}

async fn serve_http<S>(stream: S, client: Client, router: Router)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let peer = client.address;
    let service = TowerToHyperService::new(router.layer(Extension(client)));
    let served = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service)
        .await;
    if let Err(error) = served {
        debug!(message = "Connection ended with an error.", %peer, %error);
    }
}
