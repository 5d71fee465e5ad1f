//! A simple NTP (SNTP) client: one request, one reply, over UDP.
//!
//! The packet is RFC 5905's 48-byte header; only what a client needs is
//! read from the reply. Written here rather than taken from a crate: the
//! NTP crates on crates.io are either whole daemons (ntpd-rs) or thin
//! clients that do not check the origin timestamp or the kiss-o'-death
//! codes, which are the parts that make an answer trustworthy.
//!
//! Timestamps are NTP's 64-bit fixed point (seconds since 1900, 32 bits of
//! fraction). Differences are taken as wrapping 64-bit subtractions, which
//! stay right across the 2036 era rollover as long as the two clocks are
//! within 68 years of each other.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::io_error_text;

/// The length of an NTP header without extensions.
pub(super) const PACKET_LEN: usize = 48;

/// Seconds from 1900-01-01 (NTP's epoch) to 1970-01-01 (Unix's).
const EPOCH_DELTA: u64 = 2_208_988_800;

/// Leap indicator 3: the server's clock is not synchronised.
pub(super) const LEAP_UNSYNCHRONISED: u8 = 3;

/// Mode 4: an answer from a server.
const MODE_SERVER: u8 = 4;

/// An NTP timestamp: seconds since 1900 in the high 32 bits, the fraction
/// in the low 32.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Timestamp(pub(super) u64);

impl Timestamp {
    /// The NTP timestamp of a wall-clock time.
    pub(super) fn from_system(time: SystemTime) -> Timestamp {
        let since_unix = time.duration_since(UNIX_EPOCH).unwrap_or_default();
        let seconds = since_unix.as_secs().wrapping_add(EPOCH_DELTA) & 0xFFFF_FFFF;
        let fraction = (u64::from(since_unix.subsec_nanos()) << 32) / 1_000_000_000;
        Timestamp((seconds << 32) | fraction)
    }

    /// `self − earlier` in seconds, negative when `self` is the earlier.
    pub(super) fn seconds_since(self, earlier: Timestamp) -> f64 {
        // Two's complement: the wrapping difference read as signed is the
        // short way round the 136-year era.
        self.0.wrapping_sub(earlier.0) as i64 as f64 / 4_294_967_296.0
    }
}

/// What a client reads from a server's reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Reply {
    pub(super) leap: u8,
    pub(super) mode: u8,
    pub(super) stratum: u8,
    /// For stratum 0, a kiss-o'-death code in ASCII (`RATE`, `DENY`).
    pub(super) reference_id: [u8; 4],
    /// Our transmit timestamp, echoed back.
    pub(super) origin: Timestamp,
    /// When the server received the request (T2).
    pub(super) receive: Timestamp,
    /// When the server sent the reply (T3).
    pub(super) transmit: Timestamp,
}

impl Reply {
    /// Reads a reply's header; anything shorter than a header is refused.
    pub(super) fn parse(bytes: &[u8]) -> Option<Reply> {
        let header: &[u8; PACKET_LEN] = bytes.get(..PACKET_LEN)?.try_into().ok()?;
        let timestamp = |at: usize| {
            let mut word = [0u8; 8];
            word.copy_from_slice(&header[at..at + 8]);
            Timestamp(u64::from_be_bytes(word))
        };
        Some(Reply {
            leap: header[0] >> 6,
            mode: header[0] & 0x07,
            stratum: header[1],
            reference_id: [header[12], header[13], header[14], header[15]],
            origin: timestamp(24),
            receive: timestamp(32),
            transmit: timestamp(40),
        })
    }

    /// Whether a server sent it (mode 4), rather than a client or a peer.
    pub(super) fn is_from_server(&self) -> bool {
        self.mode == MODE_SERVER
    }

    /// The kiss-o'-death code of a stratum 0 reply (`RATE`, `DENY`): four
    /// ASCII capitals by RFC 5905 (section 7.4); a stratum 0 reply without
    /// one is a server that is not synchronised yet.
    pub(super) fn kiss_code(&self) -> Option<String> {
        let is_code = self.reference_id.iter().all(u8::is_ascii_uppercase);
        (self.stratum == 0 && is_code)
            .then(|| self.reference_id.iter().map(|&byte| char::from(byte)).collect())
    }
}

/// A client request (version 4, mode 3) carrying `transmit`, which the
/// server echoes as the origin timestamp of its reply.
pub(super) fn request(transmit: Timestamp) -> [u8; PACKET_LEN] {
    let mut packet = [0u8; PACKET_LEN];
    packet[0] = (4 << 3) | 3;
    packet[40..48].copy_from_slice(&transmit.0.to_be_bytes());
    packet
}

/// The clock offset and round-trip delay of one exchange, in seconds
/// (RFC 5905, section 8): T1 sent, T2 received by the server, T3 sent by
/// the server, T4 received. A positive offset means the server is ahead.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Sample {
    pub(super) offset: f64,
    pub(super) delay: f64,
}

impl Sample {
    pub(super) fn new(sent: Timestamp, reply: &Reply, received: Timestamp) -> Sample {
        let (t1, t2, t3, t4) = (sent, reply.receive, reply.transmit, received);
        Sample {
            offset: (t2.seconds_since(t1) + t3.seconds_since(t4)) / 2.0,
            delay: t4.seconds_since(t1) - t3.seconds_since(t2),
        }
    }
}

/// Why no usable reply came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Failure {
    /// Nothing at all before the deadline.
    NoResponse,
    /// The host refused (ICMP port unreachable): no NTP server there.
    Refused,
    /// Only datagrams too short to be NTP (their length).
    Garbage(usize),
    /// Only replies whose origin timestamp is not our request's: stale
    /// answers to an earlier request, or forged ones.
    WrongOrigin,
    /// The socket itself failed.
    Socket(String),
}

/// Sends one request to `address` and waits up to `timeout` for its reply.
/// Datagrams that are not a reply to this request are skipped, so a stray
/// or forged packet cannot end the wait early.
pub(super) fn query(address: SocketAddr, timeout: Duration) -> Result<(Reply, Sample), Failure> {
    let started = Instant::now();
    let socket = bind_for(address).map_err(|error| Failure::Socket(io_error_text(&error)))?;
    // A connected socket only receives from the server's address.
    socket.connect(address).map_err(|error| Failure::Socket(io_error_text(&error)))?;
    let sent = Timestamp::from_system(SystemTime::now());
    socket.send(&request(sent)).map_err(|error| failure(&error))?;
    let mut skipped = Failure::NoResponse;
    let mut buffer = [0u8; 1024];
    loop {
        let left = timeout.saturating_sub(started.elapsed());
        if left.is_zero() {
            return Err(skipped);
        }
        socket
            .set_read_timeout(Some(left))
            .map_err(|error| Failure::Socket(io_error_text(&error)))?;
        let length = match socket.recv(&mut buffer) {
            Ok(length) => length,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) if is_timeout(&error) => return Err(skipped),
            Err(error) => return Err(failure(&error)),
        };
        let received = Timestamp::from_system(SystemTime::now());
        match Reply::parse(&buffer[..length]) {
            None => skipped = Failure::Garbage(length),
            Some(reply) if reply.origin != sent => skipped = Failure::WrongOrigin,
            Some(reply) => {
                let sample = Sample::new(sent, &reply, received);
                return Ok((reply, sample));
            }
        }
    }
}

fn bind_for(address: SocketAddr) -> io::Result<UdpSocket> {
    match address {
        SocketAddr::V4(_) => UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)),
        SocketAddr::V6(_) => UdpSocket::bind((Ipv6Addr::UNSPECIFIED, 0)),
    }
}

fn failure(error: &io::Error) -> Failure {
    if error.kind() == io::ErrorKind::ConnectionRefused {
        Failure::Refused
    } else {
        Failure::Socket(io_error_text(error))
    }
}

fn is_timeout(error: &io::Error) -> bool {
    matches!(error.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ts(seconds: f64) -> Timestamp {
        Timestamp((seconds * 4_294_967_296.0) as u64)
    }

    #[test]
    fn wall_clock_times_convert_to_ntp_timestamps() {
        let time = UNIX_EPOCH + Duration::new(1_700_000_000, 500_000_000);
        let stamp = Timestamp::from_system(time);
        assert_eq!(stamp.0 >> 32, 1_700_000_000 + EPOCH_DELTA);
        assert_eq!(stamp.0 & 0xFFFF_FFFF, 1 << 31);
    }

    #[test]
    fn differences_are_signed_and_survive_the_era_rollover() {
        assert_eq!(ts(10.5).seconds_since(ts(10.0)), 0.5);
        assert_eq!(ts(10.0).seconds_since(ts(10.5)), -0.5);
        // 2036-02-07: the 32-bit seconds wrap to 0.
        let before = Timestamp((0xFFFF_FFFFu64 << 32) | (1 << 31));
        let after = Timestamp(1 << 31);
        assert_eq!(after.seconds_since(before), 1.0);
    }

    #[test]
    fn offset_and_delay_follow_rfc_5905() {
        // The server is 2 s ahead; 0.1 s each way, 0.05 s inside the server.
        let reply = Reply {
            leap: 0,
            mode: 4,
            stratum: 2,
            reference_id: *b"GPS\0",
            origin: ts(100.0),
            receive: ts(102.1),
            transmit: ts(102.15),
        };
        let sample = Sample::new(ts(100.0), &reply, ts(100.25));
        assert!((sample.offset - 2.0).abs() < 1e-9, "{sample:?}");
        assert!((sample.delay - 0.2).abs() < 1e-9, "{sample:?}");
    }

    #[test]
    fn a_request_is_a_version_4_client_packet_carrying_its_time() {
        let packet = request(Timestamp(0x0102_0304_0506_0708));
        assert_eq!(packet[0], 0x23);
        assert_eq!(packet[40..48], [1, 2, 3, 4, 5, 6, 7, 8]);
        assert!(packet[1..40].iter().all(|&byte| byte == 0));
    }

    #[test]
    fn replies_are_parsed_field_by_field_and_short_ones_refused() {
        let mut packet = [0u8; PACKET_LEN];
        packet[0] = (3 << 6) | (4 << 3) | 4;
        packet[1] = 0;
        packet[12..16].copy_from_slice(b"RATE");
        packet[24..32].copy_from_slice(&7u64.to_be_bytes());
        let reply = Reply::parse(&packet).unwrap();
        assert_eq!((reply.leap, reply.mode, reply.stratum), (3, 4, 0));
        assert_eq!(reply.kiss_code().as_deref(), Some("RATE"));
        packet[12..16].copy_from_slice(&[0; 4]);
        assert_eq!(Reply::parse(&packet).unwrap().kiss_code(), None);
        assert_eq!(reply.origin, Timestamp(7));
        assert!(reply.is_from_server());
        assert_eq!(Reply::parse(&packet[..47]), None);
    }
}
