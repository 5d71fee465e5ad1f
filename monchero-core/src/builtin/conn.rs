//! A connection for the network checks (`tcp`, `http`): TCP to each
//! address a name resolves to, in order, then TLS when asked, under one
//! deadline that every connect, handshake step, read and write honours, so
//! `-t` bounds the whole exchange and a silent peer can never hang a run.

use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::{Duration, Instant};

use rustls::{ClientConnection, StreamOwned};

use super::tls::{self, Leaf, TlsFailure};
use super::{io_error_text, perf};
use crate::perfdata::PerfData;

/// Where to connect, and how.
#[derive(Debug, Clone, Copy)]
pub(super) struct Target<'a> {
    /// A name or an address to connect to.
    pub(super) host: &'a str,
    pub(super) port: u16,
    /// `Some` for TLS.
    pub(super) tls: Option<TlsTarget<'a>>,
}

/// The TLS side of a [`Target`].
#[derive(Debug, Clone, Copy)]
pub(super) struct TlsTarget<'a> {
    /// The name the certificate must carry, also sent as SNI.
    pub(super) name: &'a str,
    /// Trust only these CAs instead of the system's.
    pub(super) ca_file: Option<&'a Path>,
}

/// Why there is no connection.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Failure {
    /// The name did not resolve.
    Unresolved(String),
    /// No address took the connection; the last one tried and its error.
    Refused { address: String, error: String },
    /// The deadline passed.
    TimedOut,
    /// TLS could not even start (an unreadable `--ca-file`).
    TlsSetup(String),
    /// The TLS handshake failed or the certificate was refused.
    TlsRefused(String),
}

/// How long each step took.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Timings {
    pub(super) connect: Duration,
    /// The handshake, for TLS.
    pub(super) tls: Option<Duration>,
}

/// An open connection, plain or TLS.
#[derive(Debug)]
pub(super) enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

/// Connects to `target` before `deadline`.
pub(super) fn open(target: &Target<'_>, deadline: Instant) -> Result<(Stream, Timings), Failure> {
    let started = Instant::now();
    let socket = connect(target.host, target.port, deadline)?;
    let connect = started.elapsed();
    let Some(tls) = target.tls else {
        return Ok((Stream::Plain(socket), Timings { connect, tls: None }));
    };
    let config = tls::client_config(tls.ca_file).map_err(from_tls)?;
    let handshake_started = Instant::now();
    let stream = tls::handshake(socket, tls.name, config, deadline).map_err(from_tls)?;
    let timings = Timings { connect, tls: Some(handshake_started.elapsed()) };
    Ok((Stream::Tls(Box::new(stream)), timings))
}

fn from_tls(failure: TlsFailure) -> Failure {
    match failure {
        TlsFailure::Setup(text) => Failure::TlsSetup(text),
        TlsFailure::TimedOut => Failure::TimedOut,
        TlsFailure::Refused(text) => Failure::TlsRefused(text),
    }
}

fn connect(host: &str, port: u16, deadline: Instant) -> Result<TcpStream, Failure> {
    let addresses: Vec<SocketAddr> = match (host, port).to_socket_addrs() {
        Ok(addresses) => addresses.collect(),
        Err(error) => return Err(Failure::Unresolved(io_error_text(&error))),
    };
    let mut last = Failure::Unresolved("the name has no address".to_owned());
    for address in addresses {
        let left = remaining(deadline).ok_or(Failure::TimedOut)?;
        match TcpStream::connect_timeout(&address, left) {
            Ok(stream) => return Ok(stream),
            Err(error) if error.kind() == io::ErrorKind::TimedOut => return Err(Failure::TimedOut),
            Err(error) => {
                let address = address.ip().to_string();
                last = Failure::Refused { address, error: io_error_text(&error) };
            }
        }
    }
    Err(last)
}

impl Stream {
    /// Reads what is there, waiting at most until `deadline`. A TLS peer
    /// that closes without close_notify reads as the end (see
    /// [`tls::read_tolerant`]). A timeout is an error of kind `TimedOut`.
    pub(super) fn read_before(&mut self, buf: &mut [u8], deadline: Instant) -> io::Result<usize> {
        set_deadline(self.socket(), deadline)?;
        let read = match self {
            Stream::Plain(socket) => socket.read(buf),
            Stream::Tls(stream) => tls::read_tolerant(stream, buf),
        };
        read.map_err(|error| {
            if is_timeout(&error) { io::Error::from(io::ErrorKind::TimedOut) } else { error }
        })
    }

    /// Writes all of `data`, waiting at most until `deadline`.
    pub(super) fn write_before(&mut self, data: &[u8], deadline: Instant) -> io::Result<()> {
        set_deadline(self.socket(), deadline)?;
        match self {
            Stream::Plain(socket) => io::Write::write_all(socket, data),
            Stream::Tls(stream) => tls::write_all(stream, data),
        }
    }

    /// The peer's leaf certificate, for TLS.
    pub(super) fn leaf(&self) -> Option<Result<Leaf, String>> {
        match self {
            Stream::Plain(_) => None,
            Stream::Tls(stream) => Some(Leaf::of(&stream.conn)),
        }
    }

    fn socket(&self) -> &TcpStream {
        match self {
            Stream::Plain(socket) => socket,
            Stream::Tls(stream) => &stream.sock,
        }
    }
}

/// A step's duration as perfdata, without levels.
pub(super) fn phase(label: &str, time: Duration) -> PerfData {
    perf(label, time.as_secs_f64(), "s", (None, None), Some(0.0), None)
}

/// Time left before `deadline`, `None` once it has passed.
pub(super) fn remaining(deadline: Instant) -> Option<Duration> {
    Some(deadline.saturating_duration_since(Instant::now())).filter(|left| !left.is_zero())
}

/// Makes the socket's next reads and writes give up at `deadline`.
pub(super) fn set_deadline(socket: &TcpStream, deadline: Instant) -> io::Result<()> {
    let left = remaining(deadline).ok_or(io::ErrorKind::TimedOut)?;
    socket.set_read_timeout(Some(left))?;
    socket.set_write_timeout(Some(left))
}

/// Whether an I/O error is a socket timeout (`EAGAIN` from `SO_RCVTIMEO`
/// reads as `WouldBlock`).
pub(super) fn is_timeout(error: &io::Error) -> bool {
    matches!(error.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::net::{Ipv4Addr, TcpListener};

    use super::*;

    #[test]
    fn a_refused_connection_names_the_address() {
        let port =
            TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap().local_addr().unwrap().port();
        let target = Target { host: "127.0.0.1", port, tls: None };
        let deadline = Instant::now() + Duration::from_secs(5);
        assert_eq!(
            open(&target, deadline).unwrap_err(),
            Failure::Refused {
                address: "127.0.0.1".to_owned(),
                error: "Connection refused".to_owned()
            }
        );
    }

    #[test]
    fn a_silent_peer_times_out_in_the_handshake() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let tls = Some(TlsTarget { name: "localhost", ca_file: None });
        let target = Target { host: "127.0.0.1", port, tls };
        let deadline = Instant::now() + Duration::from_millis(300);
        assert_eq!(open(&target, deadline).unwrap_err(), Failure::TimedOut);
        drop(listener);
    }

    #[test]
    fn a_plain_server_is_not_a_tls_one() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let _ = io::Write::write_all(&mut stream, b"HTTP/1.0 400 Bad Request\r\n\r\n");
            }
        });
        let tls = Some(TlsTarget { name: "localhost", ca_file: None });
        let target = Target { host: "127.0.0.1", port, tls };
        let deadline = Instant::now() + Duration::from_secs(5);
        let Failure::TlsRefused(text) = open(&target, deadline).unwrap_err() else {
            panic!("not refused")
        };
        assert!(text.starts_with("TLS handshake failed: "), "{text}");
    }

    #[test]
    fn a_past_deadline_leaves_no_time() {
        assert_eq!(remaining(Instant::now() - Duration::from_millis(1)), None);
        assert!(remaining(Instant::now() + Duration::from_secs(1)).is_some());
    }
}
