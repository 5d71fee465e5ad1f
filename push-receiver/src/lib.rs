//! A reference receiver of Monchero's push protocol v1
//! (`docs/push-protocol.md`), for the end-to-end tests and the load test.
//!
//! It does what the protocol asks of a server and no more: it takes
//! gzip-compressed batches on `POST /v1/push` over HTTPS (rustls, optional
//! client certificates) or plain HTTP, checks a bearer token if given,
//! drops records it already has by (agent, instance, seq), appends the new
//! ones to a JSON Lines file and fsyncs it before answering
//! `{"acked": N}`. A test can make it answer 503 or 429 with Retry-After,
//! and stop and start it; on start it reads its file back, so it still
//! knows what it has.
//!
//! ```no_run
//! use monchero_push_receiver::{Receiver, ReceiverConfig};
//!
//! let receiver = Receiver::start(ReceiverConfig::plain("127.0.0.1:0".parse().unwrap(), "records.jsonl".into())).unwrap();
//! println!("POST batches to http://{}/v1/push", receiver.addr());
//! receiver.stop();
//! ```

mod handler;
mod store;
mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;

pub use store::Stats;

/// How long a client may take for its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Certificate files for HTTPS.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The server's certificate chain (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
    /// When set, clients must present a certificate signed by this CA.
    pub client_ca: Option<PathBuf>,
}

/// What a receiver listens on and where it keeps records.
#[derive(Debug, Clone)]
pub struct ReceiverConfig {
    /// The address to bind (port 0 picks a free one).
    pub listen: SocketAddr,
    /// The JSON Lines file accepted records are appended to.
    pub store: PathBuf,
    /// HTTPS when set, plain HTTP otherwise.
    pub tls: Option<TlsFiles>,
    /// The bearer token clients must send, if any.
    pub token: Option<String>,
}

impl ReceiverConfig {
    /// Plain HTTP, no token.
    pub fn plain(listen: SocketAddr, store: PathBuf) -> ReceiverConfig {
        ReceiverConfig { listen, store, tls: None, token: None }
    }
}

/// An answer forced on every request instead of the protocol's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forced {
    /// The HTTP status.
    pub status: u16,
    /// The Retry-After header, in seconds.
    pub retry_after: Option<u64>,
}

/// State shared by the connections.
#[derive(Debug)]
struct Shared {
    store: Mutex<store::Store>,
    forced: Mutex<Option<Forced>>,
    token: Option<String>,
}

/// A running receiver, on a thread of its own; stopped when dropped.
#[derive(Debug)]
pub struct Receiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    /// Binds, loads the store and starts serving.
    pub fn start(config: ReceiverConfig) -> anyhow::Result<Receiver> {
        let store = store::Store::open(&config.store)?;
        let acceptor = config.tls.as_ref().map(tls::acceptor).transpose()?;
        let listener = std::net::TcpListener::bind(config.listen)
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            store: Mutex::new(store),
            forced: Mutex::new(None),
            token: config.token,
        });
        let (shutdown, stopped) = oneshot::channel();
        let serving = shared.clone();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let thread = std::thread::Builder::new().name("push-receiver".into()).spawn(move || {
            runtime.block_on(serve(listener, acceptor, serving, stopped));
        })?;
        Ok(Receiver { addr, shared, shutdown: Some(shutdown), thread: Some(thread) })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Makes every request get `forced` (e.g. 503 with Retry-After), or the
    /// protocol's answer again with `None`.
    pub fn force(&self, forced: Option<Forced>) {
        *lock(&self.shared.forced) = forced;
    }

    /// What it has received so far.
    pub fn stats(&self) -> Stats {
        lock(&self.shared.store).stats()
    }

    /// Stops listening and closes every connection.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.halt();
    }
}

/// A poisoned lock only means a handler panicked mid-way; the data is a
/// counter and a file handle, still usable.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn serve(
    listener: std::net::TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<Shared>,
    mut stopped: oneshot::Receiver<()>,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
    loop {
        let stream = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        let shared = shared.clone();
        let acceptor = acceptor.clone();
        // The handshake runs in the connection's own task, so a client
        // that stalls in it cannot hold up the accept loop.
        tokio::spawn(async move {
            let service = service_fn(move |request| handler::handle(shared.clone(), request));
            let http = hyper::server::conn::http1::Builder::new();
            match acceptor {
                Some(acceptor) => {
                    let Ok(Ok(stream)) =
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                    else {
                        return;
                    };
                    let _ = http.serve_connection(TokioIo::new(stream), service).await;
                }
                None => {
                    let _ = http.serve_connection(TokioIo::new(stream), service).await;
                }
            }
        });
    }
}
