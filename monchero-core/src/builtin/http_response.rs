//! Reading an HTTP/1.x response for `builtin:http`: the head with
//! `httparse`, then the body by its framing (chunked, Content-Length, or
//! up to the close), keeping at most `--max-size` of it.
//!
//! Why not an HTTP client crate: the check is synchronous, must stop every
//! read at the check's deadline, time each phase (connect, handshake, first
//! byte) and show the peer certificate, and must count the bytes on the
//! wire as `check_http` does. ureq hides the socket and the certificate,
//! and reqwest's blocking client brings a tokio runtime per call. What is
//! left to write is the body framing: a few dozen lines, tested below.

use std::io::{self, Read};
use std::time::Instant;

/// The most a response head may take; a server sending more is broken.
const HEAD_LIMIT: usize = 64 * 1024;
/// The most headers a head may have.
const MAX_HEADERS: usize = 100;
/// The longest chunk-size line (hex digits and extensions).
const CHUNK_LINE_LIMIT: usize = 4096;

/// A response as read.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Response {
    /// The first line as sent (`HTTP/1.1 200 OK`), without its line end.
    pub(super) status_line: String,
    pub(super) code: u16,
    /// The `Location` header, for following a redirect.
    pub(super) location: Option<String>,
    /// The body, decoded from chunks, at most the cap.
    pub(super) body: Vec<u8>,
    /// Bytes received, head and framing included, as `check_http` counts.
    pub(super) size: usize,
    /// The body went on past the cap; reading stopped there.
    pub(super) truncated: bool,
}

/// Why there is no response.
#[derive(Debug)]
pub(super) enum ReadError {
    /// The connection closed before any byte came.
    NoData,
    /// Not an HTTP/1.x response; the first line, as received.
    Malformed { first_line: String, reason: String },
    /// A read failed (a timeout is of kind `TimedOut`).
    Io(io::Error),
    /// The connection closed before the end of the body.
    Incomplete(String),
}

impl From<io::Error> for ReadError {
    fn from(error: io::Error) -> Self {
        ReadError::Io(error)
    }
}

/// Bytes from the wire, buffered, counted, with the time of the first.
struct Wire<R> {
    source: R,
    buf: Vec<u8>,
    start: usize,
    received: usize,
    first_byte: Option<Instant>,
}

impl<R: Read> Wire<R> {
    /// Reads more into the buffer; 0 at the end.
    fn fill(&mut self) -> io::Result<usize> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let mut chunk = [0u8; 16 * 1024];
        let n = loop {
            match self.source.read(&mut chunk) {
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                other => break other?,
            }
        };
        if n > 0 && self.first_byte.is_none() {
            self.first_byte = Some(Instant::now());
        }
        self.received += n;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    fn pending(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Takes up to `n` buffered bytes, reading when none are buffered; an
    /// empty slice at the end.
    fn take(&mut self, n: usize) -> io::Result<&[u8]> {
        if self.pending().is_empty() {
            self.fill()?;
        }
        let n = n.min(self.pending().len());
        let from = self.start;
        self.start += n;
        Ok(&self.buf[from..from + n])
    }

    /// One line (without CRLF) of at most `limit` bytes; `None` at the end.
    fn line(&mut self, limit: usize) -> Result<Option<String>, ReadError> {
        loop {
            if let Some(at) = self.pending().iter().position(|&b| b == b'\n') {
                let line = String::from_utf8_lossy(&self.pending()[..at]).trim_end().to_owned();
                self.start += at + 1;
                return Ok(Some(line));
            }
            if self.pending().len() > limit {
                return Err(ReadError::Incomplete("a chunk size line is too long".to_owned()));
            }
            if self.fill()? == 0 {
                return Ok(None);
            }
        }
    }
}

/// Reads a whole response: the head, then the body unless `head_only`
/// (a HEAD request), keeping at most `max_body` bytes of it.
///
/// Returns the response and when its first byte came.
pub(super) fn read(
    source: impl Read,
    head_only: bool,
    max_body: usize,
) -> Result<(Response, Option<Instant>), ReadError> {
    let mut wire = Wire { source, buf: Vec::new(), start: 0, received: 0, first_byte: None };
    let Head { status_line, code, location, framing } = read_head(&mut wire)?;
    let framing =
        if head_only || code < 200 || code == 204 || code == 304 { Framing::None } else { framing };
    let mut body = Body { data: Vec::new(), max: max_body, truncated: false };
    match framing {
        Framing::None => {}
        Framing::Length(length) => read_length(&mut wire, &mut body, length)?,
        Framing::Chunked => read_chunked(&mut wire, &mut body)?,
        Framing::UntilClose => read_until_close(&mut wire, &mut body)?,
    }
    let response = Response {
        status_line,
        code,
        location,
        body: body.data,
        size: wire.received,
        truncated: body.truncated,
    };
    Ok((response, wire.first_byte))
}

/// How the body's end is known.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

/// What the head says.
struct Head {
    status_line: String,
    code: u16,
    location: Option<String>,
    framing: Framing,
}

fn read_head<R: Read>(wire: &mut Wire<R>) -> Result<Head, ReadError> {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        let first_line = |buf: &[u8]| {
            let end = buf.iter().position(|&b| b == b'\r' || b == b'\n').unwrap_or(buf.len());
            String::from_utf8_lossy(&buf[..end.min(200)]).trim().to_owned()
        };
        match response.parse(wire.pending()) {
            Ok(httparse::Status::Complete(length)) => {
                let status_line = first_line(wire.pending());
                let code = response.code.unwrap_or(0);
                let framing = framing(response.headers).map_err(|reason| ReadError::Malformed {
                    first_line: status_line.clone(),
                    reason,
                })?;
                let location = response
                    .headers
                    .iter()
                    .find(|header| header.name.eq_ignore_ascii_case("location"))
                    .map(|header| String::from_utf8_lossy(header.value).trim().to_owned());
                wire.start += length;
                return Ok(Head { status_line, code, location, framing });
            }
            Ok(httparse::Status::Partial) if wire.pending().len() > HEAD_LIMIT => {
                return Err(ReadError::Malformed {
                    first_line: first_line(wire.pending()),
                    reason: format!("the response head is over {HEAD_LIMIT} bytes"),
                });
            }
            Ok(httparse::Status::Partial) => {}
            Err(error) => {
                return Err(ReadError::Malformed {
                    first_line: first_line(wire.pending()),
                    reason: error.to_string(),
                });
            }
        }
        if wire.fill()? == 0 {
            return Err(match wire.pending() {
                [] => ReadError::NoData,
                partial => ReadError::Malformed {
                    first_line: first_line(partial),
                    reason: "the connection closed within the response head".to_owned(),
                },
            });
        }
    }
}

/// The body's framing from the headers (RFC 9112 §6.3): chunked wins over
/// a length; conflicting lengths are an error.
fn framing(headers: &[httparse::Header<'_>]) -> Result<Framing, String> {
    let mut length = None;
    for header in headers {
        let value = String::from_utf8_lossy(header.value);
        if header.name.eq_ignore_ascii_case("transfer-encoding") {
            let last = value.rsplit(',').next().unwrap_or("").trim();
            if last.eq_ignore_ascii_case("chunked") {
                return Ok(Framing::Chunked);
            }
            return Ok(Framing::UntilClose);
        }
        if header.name.eq_ignore_ascii_case("content-length") {
            let parsed: u64 = value
                .trim()
                .parse()
                .map_err(|_| format!("Content-Length {:?} is not a number", value.trim()))?;
            if length.is_some_and(|known| known != parsed) {
                return Err("two different Content-Length headers".to_owned());
            }
            length = Some(parsed);
        }
    }
    Ok(length.map_or(Framing::UntilClose, Framing::Length))
}

/// The body kept so far, and whether it went past the cap.
struct Body {
    data: Vec<u8>,
    max: usize,
    truncated: bool,
}

impl Body {
    fn push(&mut self, bytes: &[u8]) {
        let room = self.max - self.data.len();
        if bytes.len() > room {
            self.truncated = true;
        }
        self.data.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }
}

fn read_length<R: Read>(wire: &mut Wire<R>, body: &mut Body, length: u64) -> Result<(), ReadError> {
    let mut left = length;
    while left > 0 && !body.truncated {
        let bytes = wire.take(usize::try_from(left).unwrap_or(usize::MAX))?;
        if bytes.is_empty() {
            return Err(ReadError::Incomplete(format!(
                "the connection closed {left} bytes before the end of the body (Content-Length {length})"
            )));
        }
        left -= bytes.len() as u64;
        body.push(bytes);
    }
    Ok(())
}

fn read_until_close<R: Read>(wire: &mut Wire<R>, body: &mut Body) -> Result<(), ReadError> {
    while !body.truncated {
        let bytes = wire.take(usize::MAX)?;
        if bytes.is_empty() {
            break;
        }
        body.push(bytes);
    }
    Ok(())
}

fn read_chunked<R: Read>(wire: &mut Wire<R>, body: &mut Body) -> Result<(), ReadError> {
    let incomplete = || ReadError::Incomplete("the connection closed within a chunk".to_owned());
    while !body.truncated {
        let line = wire.line(CHUNK_LINE_LIMIT)?.ok_or_else(incomplete)?;
        let digits = line.split(';').next().unwrap_or("").trim();
        let size = u64::from_str_radix(digits, 16)
            .map_err(|_| ReadError::Incomplete(format!("{line:?} is not a chunk size")))?;
        if size == 0 {
            // Trailers, up to the empty line; a server that closes instead
            // has still sent the whole body.
            while wire.line(CHUNK_LINE_LIMIT)?.is_some_and(|line| !line.is_empty()) {}
            return Ok(());
        }
        read_length(wire, body, size).map_err(|error| match error {
            ReadError::Incomplete(_) => incomplete(),
            other => other,
        })?;
        if body.truncated {
            break;
        }
        wire.line(CHUNK_LINE_LIMIT)?.ok_or_else(incomplete)?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A peer that sends `parts` one read at a time, then closes.
    struct Parts(Vec<Vec<u8>>);

    impl Read for Parts {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Ok(0);
            }
            let part = self.0.remove(0);
            buf[..part.len()].copy_from_slice(&part);
            Ok(part.len())
        }
    }

    fn parts(parts: &[&str]) -> Parts {
        Parts(parts.iter().map(|part| part.as_bytes().to_vec()).collect())
    }

    fn response(text: &[&str], max: usize) -> Response {
        read(parts(text), false, max).unwrap().0
    }

    #[test]
    fn content_length_bodies_end_at_the_length() {
        let head = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
        let got = response(&[head, "hel", "lo", "trailing junk"], 1024);
        assert_eq!(got.status_line, "HTTP/1.1 200 OK");
        assert_eq!((got.code, got.body.as_slice(), got.truncated), (200, &b"hello"[..], false));
        assert_eq!(got.size, head.len() + 5);
        let moved = response(&["HTTP/1.1 301 Moved\r\nLOCATION:  /next \r\n\r\n"], 1024);
        assert_eq!(moved.location.as_deref(), Some("/next"));
    }

    #[test]
    fn chunked_bodies_are_decoded_and_counted_as_sent() {
        let text = [
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            "4\r\nWiki\r\n5;ext=1\r\npedia\r",
            "\n0\r\nX-Trailer: 1\r\n\r\n",
        ];
        let got = response(&text, 1024);
        assert_eq!(got.body, b"Wikipedia");
        assert_eq!(got.size, text.iter().map(|part| part.len()).sum::<usize>());
    }

    #[test]
    fn bodies_without_framing_end_at_the_close() {
        let got = response(&["HTTP/1.0 200 OK\r\n\r\nall", " of it"], 1024);
        assert_eq!(got.body, b"all of it");
    }

    #[test]
    fn the_cap_stops_reading() {
        let got = response(&["HTTP/1.0 200 OK\r\n\r\n", "0123456789", "never read"], 4);
        assert_eq!((got.body.as_slice(), got.truncated), (&b"0123"[..], true));
        let chunked = [
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            "a\r\n0123456789\r\n0\r\n\r\n",
        ];
        let got = response(&chunked, 4);
        assert_eq!((got.body.as_slice(), got.truncated), (&b"0123"[..], true));
    }

    #[test]
    fn head_requests_and_bodiless_statuses_read_no_body() {
        let head = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
        let (got, first_byte) = read(parts(&[head]), true, 1024).unwrap();
        assert!(got.body.is_empty() && first_byte.is_some());
        let got = response(&["HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n"], 1024);
        assert_eq!(got.code, 304);
    }

    #[test]
    fn broken_responses_are_told_apart() {
        assert!(matches!(read(parts(&[]), false, 10), Err(ReadError::NoData)));
        let Err(ReadError::Malformed { first_line, .. }) =
            read(parts(&["SSH-2.0-OpenSSH\r\n"]), false, 10)
        else {
            panic!("not malformed")
        };
        assert_eq!(first_line, "SSH-2.0-OpenSSH");
        let short = read(parts(&["HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"]), false, 100);
        let Err(ReadError::Incomplete(text)) = short else { panic!("not incomplete") };
        assert_eq!(
            text,
            "the connection closed 7 bytes before the end of the body (Content-Length 10)"
        );
        let bad_chunk = ["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"];
        assert!(matches!(read(parts(&bad_chunk), false, 100), Err(ReadError::Incomplete(_))));
        let cut = read(parts(&["HTTP/1.1 200 OK\r\nContent-"]), false, 100);
        assert!(matches!(cut, Err(ReadError::Malformed { .. })));
        let lengths = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n";
        assert!(matches!(read(parts(&[lengths]), false, 100), Err(ReadError::Malformed { .. })));
    }

    #[test]
    fn an_endless_head_is_refused() {
        let mut endless = vec!["HTTP/1.1 200 OK\r\nX-Big: ".to_owned()];
        endless.extend((0..100).map(|_| "x".repeat(1000)));
        let refs: Vec<&str> = endless.iter().map(String::as_str).collect();
        assert!(matches!(read(parts(&refs), false, 100), Err(ReadError::Malformed { .. })));
    }
}
