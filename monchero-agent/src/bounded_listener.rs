//! A TCP listening socket that holds a bounded number of connections at a
//! time, shared by every TCP listener of the agent (`[pull]`, `[metrics]`,
//! `[nrpe]`, `monchero ca serve`).
//!
//! A connection takes a slot before it is accepted, so when all slots are
//! in use new clients wait in the kernel's backlog instead of costing
//! memory here; the slot is freed when the connection's task drops it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::warn;

/// One listening socket and its connection slots.
#[derive(Debug)]
pub struct BoundedListener {
    tcp: TcpListener,
    address: SocketAddr,
    slots: Arc<Semaphore>,
}

/// An accepted connection and the slot it holds until dropped.
pub struct Accepted {
    /// The connection.
    pub stream: TcpStream,
    /// The client's address.
    pub peer: SocketAddr,
    /// Held by the connection's task; dropping it lets the next one in.
    pub slot: OwnedSemaphorePermit,
}

impl BoundedListener {
    /// Binds `address`. Must be called inside the tokio runtime.
    pub fn bind(address: SocketAddr, max_connections: usize) -> anyhow::Result<BoundedListener> {
        let std = std::net::TcpListener::bind(address)
            .with_context(|| format!("cannot listen on {address}"))?;
        std.set_nonblocking(true).with_context(|| format!("cannot listen on {address}"))?;
        let tcp =
            TcpListener::from_std(std).with_context(|| format!("cannot listen on {address}"))?;
        let address = tcp.local_addr().unwrap_or(address);
        Ok(BoundedListener { tcp, address, slots: Arc::new(Semaphore::new(max_connections)) })
    }

    /// The bound address (with the port the system chose for port 0).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Waits for a free slot, then for the next connection. `None` once the
    /// slots are closed (the runtime is shutting down).
    pub async fn accept(&self) -> Option<Accepted> {
        let slot = self.slots.clone().acquire_owned().await.ok()?;
        loop {
            match self.tcp.accept().await {
                Ok((stream, peer)) => return Some(Accepted { stream, peer, slot }),
                Err(error) => {
                    // EMFILE and the like: pause rather than spin.
                    warn!(message = "Accepting a connection failed.", address = %self.address, %error);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}
