//! The local control socket: how `monchero status` and `monchero check-now
//! NAME` talk to the running daemon.
//!
//! A Unix socket in the state directory, mode 0660, so access is the state
//! directory's owner and group: no network, no credentials to manage. One
//! request per connection, each a single line of JSON, answered by a single
//! line of JSON. The client side is synchronous (std), so `status` needs no
//! async runtime and answers in milliseconds.
//!
//! Bounds, so that a local user flooding or stalling the socket cannot keep
//! `status` from others: [`MAX_CONNECTIONS`] at once (more are answered
//! with an error and closed), [`MAX_REQUEST`] bytes per request, and
//! [`REQUEST_TIME`] to send it in full (a client that connects and sends
//! nothing, or a byte a second, is dropped), [`REPLY_TIME`] to read the
//! answer.

use std::io::{self, BufRead, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use monchero_core::CheckResult;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::metrics::MetricsSnapshot;
use crate::status_report::StatusReport;

/// Requests are small; anything longer is not ours.
pub const MAX_REQUEST: u64 = 64 * 1024;

/// Connections served at once. Each costs a task and a descriptor; a
/// `check-now --all` holds one for as long as its checks run.
pub const MAX_CONNECTIONS: usize = 64;

/// How long a client has to read its answer (a status of thousands of
/// checks is megabytes): one that stops reading gives its slot back.
pub const REPLY_TIME: Duration = Duration::from_secs(30);

/// How long a client has to send its whole request line. Our own client
/// sends it at once; this only ever stops idle or trickling connections.
pub const REQUEST_TIME: Duration = Duration::from_secs(5);

/// What a client asks.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum Request {
    /// The status report, with the state changes of the last
    /// `changes_within_secs` seconds when given; only the named `checks`
    /// when there are any (see [`StatusReport::build`]).
    Status {
        changes_within_secs: Option<u64>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        checks: Vec<String>,
    },
    /// Run these checks now (all of them when `all`), and answer with
    /// their results once every one has finished.
    Run { checks: Vec<String>, all: bool },
    /// What `/metrics` shows: every check's state and perfdata, and the
    /// agent's counters.
    Metrics,
}

/// What the daemon answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "response", rename_all = "snake_case")]
pub enum Response {
    Status(StatusReport),
    Ran { results: Vec<NamedResult> },
    Metrics(MetricsSnapshot),
    Error { message: String },
}

/// A check's result with its name: the contract's `check-now --json`
/// object.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NamedResult {
    pub name: String,
    #[serde(flatten)]
    pub result: CheckResult,
}

/// A request on its way to the daemon's main loop, with where to answer.
#[derive(Debug)]
pub struct Incoming {
    pub request: Request,
    pub reply: oneshot::Sender<Response>,
}

/// Listens on the socket and forwards each request to `to_daemon`.
#[derive(Debug)]
pub struct Server {
    listener: UnixListener,
    path: std::path::PathBuf,
    /// Rebinding failed and was logged; said again only once it works.
    rebind_failed: bool,
}

impl Server {
    /// Binds the socket. Refuses when another daemon answers on it (two
    /// agents on one state directory would overwrite each other's state);
    /// removes a socket left behind by one that died.
    pub fn bind(path: &Path) -> anyhow::Result<Server> {
        if UnixStream::connect(path).is_ok() {
            anyhow::bail!(
                "another monchero daemon is already running with the state directory {} \
                 (its socket {} answers)",
                path.parent().unwrap_or(path).display(),
                path.display()
            );
        }
        match std::fs::remove_file(path) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => {
                return Err(error)
                    .with_context(|| format!("cannot remove the stale socket {}", path.display()));
            }
            _ => {}
        }
        Ok(Server { listener: listen(path)?, path: path.to_owned(), rebind_failed: false })
    }

    /// Accepts connections until the daemon drops the receiving end.
    pub async fn serve(self, to_daemon: mpsc::Sender<Incoming>) {
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let mut look = tokio::time::interval(SOCKET_CHECK);
        let mut server = self;
        loop {
            let accepted = tokio::select! {
                accepted = server.listener.accept() => accepted,
                _ = look.tick() => {
                    server.rebind_if_removed();
                    continue;
                }
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(message = "Control socket accept failed.", %error);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                tokio::spawn(refuse(stream));
                continue;
            };
            let to_daemon = to_daemon.clone();
            tokio::spawn(async move {
                let _slot = slot;
                if let Err(error) = answer(stream, to_daemon).await {
                    tracing::debug!(message = "Control connection failed.", error = %format!("{error:#}"));
                }
            });
        }
    }
}

impl Server {
    /// Binds the socket again when its file is gone (the state directory
    /// removed by a clean-up script): otherwise `status` would find no
    /// daemon for as long as this one runs.
    fn rebind_if_removed(&mut self) {
        if self.path.exists() {
            return;
        }
        let made = self.path.parent().map_or(Ok(()), std::fs::create_dir_all);
        match made.map_err(anyhow::Error::from).and_then(|()| listen(&self.path)) {
            Ok(listener) => {
                self.listener = listener;
                self.rebind_failed = false;
                tracing::warn!(message = "The control socket was removed; it is listening again.", path = %self.path.display());
            }
            Err(error) if !self.rebind_failed => {
                self.rebind_failed = true;
                tracing::error!(message = "The control socket was removed and cannot be made again; retried every second.", error = %format!("{error:#}"));
            }
            Err(_) => {}
        }
    }
}

/// How often the server looks whether its socket file still exists.
const SOCKET_CHECK: Duration = Duration::from_secs(1);

/// A listening socket at `path`, mode 0660.
fn listen(path: &Path) -> anyhow::Result<UnixListener> {
    let listener =
        UnixListener::bind(path).with_context(|| format!("cannot listen on {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("cannot set the mode of {}", path.display()))?;
    Ok(listener)
}

async fn answer(
    stream: tokio::net::UnixStream,
    to_daemon: mpsc::Sender<Incoming>,
) -> anyhow::Result<()> {
    let (read, mut write) = stream.into_split();
    // Bytes, not a String: a request that is not UTF-8 is answered as a
    // bad request rather than dropped without a word.
    let mut line = Vec::new();
    let mut reader = tokio::io::BufReader::new(read.take(MAX_REQUEST));
    let read = tokio::time::timeout(REQUEST_TIME, reader.read_until(b'\n', &mut line)).await;
    let response = match read.map(|read| read.map(|n| n as u64)) {
        Err(_) => Response::Error {
            message: format!(
                "bad request: no complete request line within {}",
                humantime::format_duration(REQUEST_TIME)
            ),
        },
        Ok(Err(error)) => return Err(error.into()),
        Ok(Ok(MAX_REQUEST)) if !line.ends_with(b"\n") => {
            Response::Error { message: format!("bad request: longer than {MAX_REQUEST} bytes") }
        }
        Ok(Ok(_)) => match serde_json::from_slice::<Request>(&line) {
            Ok(request) => ask(&to_daemon, request).await?,
            Err(error) => Response::Error { message: format!("bad request: {error}") },
        },
    };
    tokio::time::timeout(REPLY_TIME, send(&mut write, &response))
        .await
        .context("the client did not read the answer")?
}

/// Answers a connection beyond [`MAX_CONNECTIONS`] with an error, so its
/// client says why instead of waiting.
async fn refuse(stream: tokio::net::UnixStream) {
    let (_, mut write) = stream.into_split();
    let message = format!("the agent is serving {MAX_CONNECTIONS} control connections; try again");
    let _ =
        tokio::time::timeout(REQUEST_TIME, send(&mut write, &Response::Error { message })).await;
}

async fn send(
    write: &mut tokio::net::unix::OwnedWriteHalf,
    response: &Response,
) -> anyhow::Result<()> {
    let mut json = serde_json::to_vec(response)?;
    json.push(b'\n');
    write.write_all(&json).await?;
    Ok(write.shutdown().await?)
}

/// Hands `request` to the daemon's main loop and waits for its answer: the
/// one way in for the control socket and the HTTP API alike, so both are
/// answered by the same code in the daemon.
pub async fn ask(to_daemon: &mpsc::Sender<Incoming>, request: Request) -> anyhow::Result<Response> {
    let (reply, answer) = oneshot::channel();
    to_daemon.send(Incoming { request, reply }).await.context("the daemon is shutting down")?;
    answer.await.context("the daemon dropped the request")
}

/// Why a client could not get an answer.
#[derive(Debug)]
pub enum ClientError {
    /// Nobody listens on the socket: the daemon is not running.
    NotRunning,
    /// Something else went wrong talking to it.
    Failed(anyhow::Error),
}

/// Sends one request and waits up to `timeout` for the answer.
pub fn request(path: &Path, request: &Request, timeout: Duration) -> Result<Response, ClientError> {
    let mut stream = match UnixStream::connect(path) {
        Ok(stream) => stream,
        Err(error) if gone(&error) => return Err(ClientError::NotRunning),
        Err(error) => {
            let error =
                anyhow::Error::new(error).context(format!("cannot connect to {}", path.display()));
            return Err(ClientError::Failed(error));
        }
    };
    let mut exchange = || -> anyhow::Result<Response> {
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        let mut json = serde_json::to_vec(request)?;
        json.push(b'\n');
        stream.write_all(&json)?;
        let mut line = String::new();
        io::BufReader::new(&stream).read_line(&mut line)?;
        anyhow::ensure!(!line.is_empty(), "the daemon closed the connection without answering");
        Ok(serde_json::from_str(&line)?)
    };
    exchange().with_context(|| format!("talking to the daemon on {}", path.display())).map_err(
        |error| match error.downcast_ref::<io::Error>() {
            Some(io_error) if gone(io_error) => ClientError::NotRunning,
            _ => ClientError::Failed(error),
        },
    )
}

/// The error says no daemon is there. Besides a missing socket or a refused
/// connection, a reset or broken pipe: a daemon killed while it spawned a
/// plugin leaves the listening socket open in the child until its exec
/// closes it, and a connection made meanwhile is then reset.
fn gone(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::NotFound
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
    )
}
