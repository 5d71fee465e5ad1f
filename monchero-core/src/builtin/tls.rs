//! TLS for the network checks (`tcp -S`, `http -S`): which CAs are
//! trusted, the handshake under a deadline, why a chain was refused in
//! words a sysadmin reads, and `check_http`'s certificate expiry rule
//! (`http -C`, `tcp -D`).
//!
//! The chain is verified, unlike `check_http` and `check_tcp` (which only
//! read the dates): a certificate nobody can trust is a broken service for
//! every real client. rustls with aws-lc-rs is the one crypto backend of
//! the whole tree.
//!
//! The system roots come from rustls-native-certs rather than
//! rustls-platform-verifier: on Linux the latter reads the same
//! distribution bundle (`/etc/ssl/certs`) through the same crate and adds
//! a verifier layer and more dependencies for nothing an agent needs here.
//! `--ca-file PEM` replaces them for a private CA.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{CertificateError, ClientConfig, ClientConnection, RootCertStore};
use x509_parser::time::ASN1Time;

use super::conn::{is_timeout, set_deadline};
use crate::state::State;

/// Why no TLS session came about.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum TlsFailure {
    /// The trusted CAs could not be loaded (an unreadable `--ca-file`): the
    /// check cannot tell, UNKNOWN.
    Setup(String),
    /// The deadline passed during the handshake.
    TimedOut,
    /// The peer or its certificate was refused: CRITICAL.
    Refused(String),
}

/// The client configuration trusting the system's CAs, or only those in
/// `ca_file`.
///
/// The system bundle is parsed once per process (about 150 certificates,
/// milliseconds each run otherwise); a CA file is read at every run, so a
/// renewed private CA needs no agent restart.
pub(super) fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, TlsFailure> {
    static SYSTEM: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    let Some(path) = ca_file else {
        if let Some(config) = SYSTEM.get() {
            return Ok(Arc::clone(config));
        }
        // A failure is not kept: installing ca-certificates later must work
        // without a restart.
        let config = build_config(system_roots()?)?;
        return Ok(Arc::clone(SYSTEM.get_or_init(|| config)));
    };
    build_config(file_roots(path)?)
}

fn build_config(roots: RootCertStore) -> Result<Arc<ClientConfig>, TlsFailure> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| TlsFailure::Setup(format!("TLS setup: {error}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn system_roots() -> Result<RootCertStore, TlsFailure> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        let detail = found.errors.first().map(|error| format!(" ({error})")).unwrap_or_default();
        return Err(TlsFailure::Setup(format!(
            "no trusted CA certificates found on this system{detail}: install ca-certificates \
             or give --ca-file"
        )));
    }
    Ok(roots)
}

fn file_roots(path: &Path) -> Result<RootCertStore, TlsFailure> {
    let setup =
        |detail: String| TlsFailure::Setup(format!("--ca-file {}: {detail}", path.display()));
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|error| setup(pem_error_text(&error)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| setup(pem_error_text(&error)))?;
    if certs.is_empty() {
        return Err(setup("no PEM certificate in the file".to_owned()));
    }
    let mut roots = RootCertStore::empty();
    for (index, cert) in certs.into_iter().enumerate() {
        roots.add(cert).map_err(|error| setup(format!("certificate {}: {error}", index + 1)))?;
    }
    Ok(roots)
}

fn pem_error_text(error: &rustls::pki_types::pem::Error) -> String {
    match error {
        rustls::pki_types::pem::Error::Io(error) => super::io_error_text(error),
        other => other.to_string(),
    }
}

/// Runs the handshake on a connected socket, verifying the chain against
/// `config`'s roots and `name` (a DNS name or an IP address; a DNS name is
/// also sent as SNI).
///
/// Driven by hand rather than with `complete_io`, so that every read and
/// write waits at most until `deadline` and a peer that closes mid-way is
/// told apart from one that refuses.
pub(super) fn handshake(
    mut socket: TcpStream,
    name: &str,
    config: Arc<ClientConfig>,
    deadline: Instant,
) -> Result<rustls::StreamOwned<ClientConnection, TcpStream>, TlsFailure> {
    let server_name = ServerName::try_from(name.to_owned()).map_err(|_| {
        TlsFailure::Setup(format!("{name:?} is not a host name or address TLS can verify"))
    })?;
    let mut conn = ClientConnection::new(config, server_name)
        .map_err(|error| TlsFailure::Setup(format!("TLS setup: {error}")))?;
    let io_failure = |error: io::Error| {
        if is_timeout(&error) {
            TlsFailure::TimedOut
        } else {
            TlsFailure::Refused(format!("TLS handshake failed: {}", super::io_error_text(&error)))
        }
    };
    while conn.is_handshaking() {
        set_deadline(&socket, deadline).map_err(io_failure)?;
        if conn.wants_write() {
            conn.write_tls(&mut socket).map_err(io_failure)?;
            continue;
        }
        if conn.read_tls(&mut socket).map_err(io_failure)? == 0 {
            return Err(TlsFailure::Refused(
                "TLS handshake failed: the server closed the connection".to_owned(),
            ));
        }
        if let Err(error) = conn.process_new_packets() {
            // Tell the server why, as a browser would; it changes nothing here.
            let _ = conn.write_tls(&mut socket);
            return Err(TlsFailure::Refused(refusal_text(&error)));
        }
    }
    Ok(rustls::StreamOwned::new(conn, socket))
}

/// A refused handshake as a summary's words: what is wrong with the
/// certificate when that is the reason, rustls's own words otherwise.
fn refusal_text(error: &rustls::Error) -> String {
    let rustls::Error::InvalidCertificate(reason) = error else {
        return format!("TLS handshake failed: {error}");
    };
    let text = match reason {
        CertificateError::UnknownIssuer => {
            "issued by an unknown CA (UnknownIssuer): no trusted root signs its chain".to_owned()
        }
        CertificateError::Expired => "expired".to_owned(),
        CertificateError::ExpiredContext { time, not_after } => {
            let days = time.as_secs().saturating_sub(not_after.as_secs()) / 86_400;
            format!("expired on {} ({days} days ago)", date_text(not_after.as_secs()))
        }
        CertificateError::NotValidYetContext { not_before, .. } => {
            format!("not valid before {}", date_text(not_before.as_secs()))
        }
        CertificateError::BadSignature => "bad signature in the chain (BadSignature)".to_owned(),
        CertificateError::Revoked => "revoked".to_owned(),
        // rustls words the name mismatch well ("certificate not valid for
        // name ...; certificate is only valid for ...").
        other => other.to_string(),
    };
    format!("invalid certificate: {text}")
}

/// A Unix time as `check_http` writes a date (`%c %z`), in UTC:
/// `Wed Dec  2 13:00:00 2026 +0000`.
fn date_text(unix: u64) -> String {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    let Some(time) = i64::try_from(unix).ok().and_then(|secs| ASN1Time::from_timestamp(secs).ok())
    else {
        return format!("{unix} (Unix time)");
    };
    // ASN1Time writes `Dec  2 13:00:00 2026 +00:00`; 1 January 1970 was a
    // Thursday.
    let weekday = WEEKDAYS[(unix / 86_400 % 7) as usize];
    format!("{weekday} {}", time.to_string().replace("+00:00", "+0000"))
}

/// Now, in Unix seconds, for certificate expiry.
pub(super) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| i64::try_from(since.as_secs()).unwrap_or(i64::MAX))
}

/// What the expiry rule needs from a leaf certificate.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Leaf {
    /// The subject's common name, or its whole subject when it has none.
    pub(super) name: String,
    /// notAfter, in Unix seconds.
    pub(super) not_after: i64,
}

impl Leaf {
    /// Reads the leaf of a session: the first certificate the peer sent.
    pub(super) fn of(conn: &ClientConnection) -> Result<Leaf, String> {
        let der = conn
            .peer_certificates()
            .and_then(|certs| certs.first())
            .ok_or_else(|| "the server sent no certificate".to_owned())?;
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|error| format!("cannot read the server's certificate: {error}"))?;
        let subject = cert.subject();
        let name = subject
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map_or_else(|| subject.to_string(), str::to_owned);
        Ok(Leaf { name, not_after: cert.validity().not_after.timestamp() })
    }
}

/// `-C`/`-D DAYS_WARN[,DAYS_CRIT]`: alert when the leaf certificate
/// expires within that many days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ExpiryDays {
    pub(super) warning: u32,
    /// 0 when not given, as in `check_http`.
    pub(super) critical: u32,
}

impl ExpiryDays {
    /// Parses `30` or `30,7`.
    pub(super) fn parse(text: &str) -> Result<ExpiryDays, String> {
        let days = |part: &str| {
            part.trim().parse::<u32>().map_err(|_| {
                format!(
                    "{text:?} is not a number of days (write e.g. 30 or 30,7: warning, critical)"
                )
            })
        };
        let (warning, critical) = match text.split_once(',') {
            Some((warning, critical)) => (days(warning)?, days(critical)?),
            None => (days(text)?, 0),
        };
        if critical > warning {
            return Err(format!(
                "{text:?}: the critical number of days ({critical}) is above the warning one \
                 ({warning}); write the larger first"
            ));
        }
        Ok(ExpiryDays { warning, critical })
    }

    /// `check_http`'s rule and words (`sslutils.c`), with whole days
    /// counted down from notAfter: WARNING within `warning` days, CRITICAL
    /// within `critical` days, on the last day and once expired.
    pub(super) fn evaluate(self, leaf: &Leaf, now: i64) -> (State, String) {
        let left = leaf.not_after - now;
        let days = left / 86_400;
        let (name, date) = (&leaf.name, date_text(u64::try_from(leaf.not_after).unwrap_or(0)));
        let state_at = |days: i64| {
            if days > i64::from(self.critical) { State::Warning } else { State::Critical }
        };
        if left < 0 {
            return (
                State::Critical,
                format!("CRITICAL - Certificate '{name}' expired on {date}."),
            );
        }
        if days > i64::from(self.warning) {
            return (State::Ok, format!("OK - Certificate '{name}' will expire on {date}."));
        }
        let state = state_at(days);
        let text = if days > 0 {
            format!("Certificate '{name}' expires in {days} day(s) ({date}).")
        } else if left >= 3600 {
            format!("Certificate '{name}' expires in {} hours ({date})", left / 3600)
        } else {
            format!("Certificate '{name}' expires in {} minutes ({date})", left / 60)
        };
        (state, format!("{} - {text}", state.label()))
    }
}

/// A TLS stream read and written like a socket, whose peer may close
/// without TLS's close_notify: many HTTP servers do, and the body's length
/// (or its absence) already says whether anything is missing.
pub(super) fn read_tolerant(
    stream: &mut rustls::StreamOwned<ClientConnection, TcpStream>,
    buf: &mut [u8],
) -> io::Result<usize> {
    match stream.read(buf) {
        Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
        other => other,
    }
}

/// Writes all of `data` and flushes it into the socket.
pub(super) fn write_all(
    stream: &mut rustls::StreamOwned<ClientConnection, TcpStream>,
    data: &[u8],
) -> io::Result<()> {
    stream.write_all(data)?;
    stream.flush()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;
    const NOW: i64 = 1_800_000_000;

    fn leaf(seconds_left: i64) -> Leaf {
        Leaf { name: "www.example.org".to_owned(), not_after: NOW + seconds_left }
    }

    #[test]
    fn expiry_days_parse_as_check_http() {
        assert_eq!(ExpiryDays::parse("30,7").unwrap(), ExpiryDays { warning: 30, critical: 7 });
        assert_eq!(ExpiryDays::parse("14").unwrap(), ExpiryDays { warning: 14, critical: 0 });
        assert!(ExpiryDays::parse("x").unwrap_err().contains("not a number of days"));
        assert!(ExpiryDays::parse("30,-1").is_err());
        assert!(ExpiryDays::parse("7,30").unwrap_err().contains("write the larger first"));
    }

    #[test]
    fn expiry_follows_check_http() {
        let days = ExpiryDays { warning: 30, critical: 7 };
        let (state, text) = days.evaluate(&leaf(90 * DAY), NOW);
        assert_eq!(state, State::Ok);
        assert!(text.starts_with("OK - Certificate 'www.example.org' will expire on "), "{text}");
        let (state, text) = days.evaluate(&leaf(20 * DAY + 5), NOW);
        assert_eq!(state, State::Warning);
        assert!(
            text.starts_with("WARNING - Certificate 'www.example.org' expires in 20 day(s) ("),
            "{text}"
        );
        // Five days left is inside the critical seven.
        assert_eq!(days.evaluate(&leaf(5 * DAY + 5), NOW).0, State::Critical);
        assert_eq!(days.evaluate(&leaf(7 * DAY + 5), NOW).0, State::Critical);
        assert_eq!(days.evaluate(&leaf(8 * DAY + 5), NOW).0, State::Warning);
        assert_eq!(days.evaluate(&leaf(30 * DAY + 5), NOW).0, State::Warning);
        assert_eq!(days.evaluate(&leaf(31 * DAY + 5), NOW).0, State::Ok);
        let (state, text) = days.evaluate(&leaf(5 * 3600 + 10), NOW);
        assert_eq!(state, State::Critical);
        assert!(text.contains("expires in 5 hours"), "{text}");
        let (_, text) = days.evaluate(&leaf(10 * 60 + 10), NOW);
        assert!(text.contains("expires in 10 minutes"), "{text}");
        let (state, text) = days.evaluate(&leaf(-DAY), NOW);
        assert_eq!(state, State::Critical);
        assert!(text.starts_with("CRITICAL - Certificate 'www.example.org' expired on "), "{text}");
    }

    #[test]
    fn expiry_without_a_critical_level_is_critical_only_on_the_last_day() {
        let days = ExpiryDays { warning: 14, critical: 0 };
        assert_eq!(days.evaluate(&leaf(DAY + 5), NOW).0, State::Warning);
        assert_eq!(days.evaluate(&leaf(3600), NOW).0, State::Critical);
    }

    #[test]
    fn dates_read_like_check_https() {
        assert_eq!(date_text(1_800_000_000), "Fri Jan 15 08:00:00 2027 +0000");
    }

    #[test]
    fn refusals_name_the_reason() {
        let unknown = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        assert_eq!(
            refusal_text(&unknown),
            "invalid certificate: issued by an unknown CA (UnknownIssuer): no trusted root signs \
             its chain"
        );
        let expired = rustls::Error::InvalidCertificate(CertificateError::ExpiredContext {
            time: rustls::pki_types::UnixTime::since_unix_epoch(std::time::Duration::from_secs(
                1_800_000_000 + 3 * 86_400,
            )),
            not_after: rustls::pki_types::UnixTime::since_unix_epoch(
                std::time::Duration::from_secs(1_800_000_000),
            ),
        });
        assert_eq!(
            refusal_text(&expired),
            "invalid certificate: expired on Fri Jan 15 08:00:00 2027 +0000 (3 days ago)"
        );
        let alert = rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure);
        assert_eq!(
            refusal_text(&alert),
            "TLS handshake failed: received fatal alert: HandshakeFailure"
        );
    }

    #[test]
    fn an_unreadable_ca_file_is_named() {
        let error = client_config(Some(Path::new("/nonexistent/ca.pem"))).unwrap_err();
        assert_eq!(
            error,
            TlsFailure::Setup(
                "--ca-file /nonexistent/ca.pem: No such file or directory".to_owned()
            )
        );
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let TlsFailure::Setup(text) = client_config(Some(&empty)).unwrap_err() else {
            panic!("not a setup failure")
        };
        assert!(text.ends_with("no PEM certificate in the file"), "{text}");
    }
}
