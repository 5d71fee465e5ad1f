//! Accepting `check_nrpe` connections: the peer checked against
//! `allowed_hosts` before a byte is read, a bounded number of connections
//! at a time, then in the connection's own task the TLS handshake and the
//! query under `connection_timeout`, the answer, and the close.
//!
//! A packet that fails validation (size, version, CRC32) is logged with the
//! peer's address and the connection closed, as NRPE does; the listener
//! goes on serving. What a connection is served with comes from a watch
//! channel at accept time, so a reload applies to the next connection.

use std::net::SocketAddr;

use anyhow::Context;
use monchero_core::State;
use monchero_core::nrpe::packet::{self, HEADER_LEN};
use monchero_core::nrpe::{Packet, PacketType, Query};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, timeout_at};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

use super::Served;
use super::allowed::allowed;
use super::answer::answer;
use crate::bounded_listener::{Accepted, BoundedListener};
use crate::control::Incoming;

/// One listening socket.
#[derive(Debug)]
pub struct Listener {
    socket: BoundedListener,
    served: watch::Receiver<Served>,
    to_daemon: mpsc::Sender<Incoming>,
}

impl Listener {
    /// Binds `address`. Must be called inside the tokio runtime.
    pub fn bind(
        address: SocketAddr,
        served: watch::Receiver<Served>,
        max_connections: usize,
        to_daemon: mpsc::Sender<Incoming>,
    ) -> anyhow::Result<Listener> {
        let socket = BoundedListener::bind(address, max_connections)?;
        Ok(Listener { socket, served, to_daemon })
    }

    /// The bound address.
    pub fn address(&self) -> SocketAddr {
        self.socket.address()
    }

    /// Accepts connections for as long as the runtime runs.
    pub async fn serve(self) {
        while let Some(Accepted { stream, peer, slot }) = self.socket.accept().await {
            let served = self.served.borrow().clone();
            if !allowed(&served.config.allowed_hosts, peer.ip()) {
                warn!(message = "NRPE connection refused: the address is not in allowed_hosts.", %peer);
                continue;
            }
            let to_daemon = self.to_daemon.clone();
            tokio::spawn(async move {
                connection(stream, peer, served, to_daemon).await;
                drop(slot);
            });
        }
    }
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    served: Served,
    to_daemon: mpsc::Sender<Incoming>,
) {
    let limit = served.config.connection_timeout;
    // One deadline for the handshake and the query together: a client
    // cannot double its time by being slow at both.
    let deadline = Instant::now() + limit;
    match &served.tls {
        None => exchange(stream, peer, deadline, &served, &to_daemon).await,
        Some(config) => {
            let acceptor = TlsAcceptor::from(config.clone());
            let stream = match timeout_at(deadline, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => {
                    warn!(message = "NRPE TLS handshake refused.", %peer, reason = %error);
                    return;
                }
                Err(_) => {
                    let reason =
                        format!("no handshake within {}", humantime::format_duration(limit));
                    warn!(message = "NRPE TLS handshake refused.", %peer, %reason);
                    return;
                }
            };
            exchange(stream, peer, deadline, &served, &to_daemon).await;
        }
    }
}

/// Reads one query, answers it and closes.
async fn exchange<S>(
    mut stream: S,
    peer: SocketAddr,
    deadline: Instant,
    served: &Served,
    to_daemon: &mpsc::Sender<Incoming>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let limit = served.config.connection_timeout;
    let packet = match timeout_at(deadline, read_packet(&mut stream)).await {
        Ok(Ok(packet)) => packet,
        Ok(Err(error)) => {
            warn!(message = "NRPE request refused.", %peer, reason = %format!("{error:#}"));
            return;
        }
        Err(_) => {
            let reason = format!("no complete query within {}", humantime::format_duration(limit));
            warn!(message = "NRPE request refused.", %peer, %reason);
            return;
        }
    };
    let version = packet.version;
    let reply = match Query::parse(&packet.buffer, served.config.allow_arguments) {
        Ok(query) => {
            debug!(message = "NRPE query.", %peer, command = %query.command);
            let answer = answer(&query, served, to_daemon).await;
            info!(
                message = "NRPE query answered.",
                %peer,
                version = version.number(),
                command = %query.command,
                state = %answer.state.as_str()
            );
            Packet::response(version, i16::from(answer.state.exit_code()), &answer.text)
        }
        Err(error) => {
            warn!(message = "NRPE query refused.", %peer, reason = %error);
            let text = format!("NRPE: request refused: {error}");
            Packet::response(version, i16::from(State::Unknown.exit_code()), &text)
        }
    };
    if let Err(error) = write_reply(&mut stream, &reply).await {
        debug!(message = "NRPE answer not delivered.", %peer, %error);
    }
}

/// Reads and validates one query packet.
async fn read_packet<S: AsyncRead + Unpin>(stream: &mut S) -> anyhow::Result<Packet> {
    let mut bytes = vec![0; HEADER_LEN];
    stream.read_exact(&mut bytes).await.context("the client sent less than a packet header")?;
    let length = packet::packet_len(&bytes)?;
    bytes.resize(length, 0);
    stream.read_exact(&mut bytes[HEADER_LEN..]).await.with_context(|| {
        format!("the client sent less than the {length} bytes its header announces")
    })?;
    let packet = packet::decode(&bytes)?;
    anyhow::ensure!(
        packet.packet_type == PacketType::Query,
        "the client sent a response packet, not a query"
    );
    Ok(packet)
}

async fn write_reply<S: AsyncWrite + Unpin>(stream: &mut S, reply: &Packet) -> std::io::Result<()> {
    stream.write_all(&reply.encode()).await?;
    stream.flush().await?;
    stream.shutdown().await
}
