//! NRPE packets (`include/common.h` of NRPE 4), all integers big-endian:
//!
//! - version 2: a fixed 1036 bytes: int16 version, int16 type (1 query,
//!   2 response), uint32 CRC32, int16 result code, a 1024-byte
//!   NUL-terminated buffer and 2 bytes of struct padding;
//! - versions 3 and 4: int16 version, int16 type, uint32 CRC32, int16
//!   result code, int16 alignment, int32 buffer length, then the buffer.
//!   NRPE sizes these from its C struct, whose padding it counted two ways:
//!   a version 4 packet is the 16-byte header plus the buffer, a version 3
//!   packet carries 3 bytes more after the buffer.
//!
//! The CRC32 (the common IEEE polynomial) covers the whole packet with the
//! CRC field, and for versions 3 and 4 the alignment field, set to zero.

use thiserror::Error;

/// The header common to versions 3 and 4; a version 2 packet is longer, so
/// reading this many bytes first is right for every version.
pub const HEADER_LEN: usize = 16;
/// The size of a version 2 packet.
pub const V2_PACKET_LEN: usize = 1036;
/// The size of a version 2 packet's buffer, its terminating NUL included.
pub const V2_BUFFER_LEN: usize = 1024;
/// The largest buffer NRPE accepts in a version 3 or 4 packet (its
/// `read_packet` refuses more).
pub const MAX_BUFFER_LEN: usize = 65536;
/// Where the buffer of a version 2 packet starts.
const V2_BUFFER_AT: usize = 10;
/// The bytes a version 3 packet carries after its buffer.
const V3_TRAILER: usize = 3;

/// A protocol version `check_nrpe` can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// Fixed-size packets with a 1024-byte buffer (`check_nrpe -2`).
    V2,
    /// Variable-size packets (`check_nrpe -3`); the NRPE 4 daemon itself
    /// no longer accepts them.
    V3,
    /// Variable-size packets, `check_nrpe`'s default since NRPE 3.2.
    V4,
}

impl Version {
    /// The number on the wire.
    pub fn number(self) -> i16 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
            Version::V4 => 4,
        }
    }

    fn from_number(number: i16) -> Result<Version, PacketError> {
        match number {
            2 => Ok(Version::V2),
            3 => Ok(Version::V3),
            4 => Ok(Version::V4),
            other => Err(PacketError::Version(other)),
        }
    }
}

/// Whether a packet asks or answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketType {
    /// From `check_nrpe`: a command to run.
    Query,
    /// From the daemon: the command's output and state.
    Response,
}

impl PacketType {
    fn number(self) -> i16 {
        match self {
            PacketType::Query => 1,
            PacketType::Response => 2,
        }
    }
}

/// One decoded packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// The protocol version; a response goes out in its query's.
    pub version: Version,
    /// Query or response.
    pub packet_type: PacketType,
    /// The state (0-3) in a response; unused in a query.
    pub result_code: i16,
    /// The text up to the buffer's first NUL; invalid UTF-8 is replaced.
    pub buffer: String,
}

/// Why a packet was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PacketError {
    /// Fewer bytes than a header.
    #[error("the packet is {0} bytes long, shorter than the {HEADER_LEN}-byte NRPE header")]
    TooShort(usize),
    /// A version other than 2, 3 or 4.
    #[error("NRPE packet version {0} is not supported (only 2, 3 and 4 are)")]
    Version(i16),
    /// A type other than query and response.
    #[error("packet type {0} is neither a query (1) nor a response (2)")]
    Type(i16),
    /// A version 3 or 4 buffer length of zero, negative or over the limit.
    #[error("buffer length {0} is out of bounds (1 to {MAX_BUFFER_LEN} bytes)")]
    BufferLength(i32),
    /// The packet is not as long as its header says.
    #[error("the packet is {got} bytes long, its header announces {expected}")]
    Length {
        /// Bytes given.
        got: usize,
        /// Bytes the header calls for.
        expected: usize,
    },
    /// The checksum does not match the contents: damage, or not NRPE.
    #[error("CRC32 mismatch: the packet says {sent:08x}, its contents give {computed:08x}")]
    Crc {
        /// The CRC32 in the packet.
        sent: u32,
        /// The CRC32 of what arrived.
        computed: u32,
    },
    /// The buffer has no terminating NUL.
    #[error("the packet's buffer is not NUL-terminated")]
    Unterminated,
}

/// The total length of the packet `header` starts (its first
/// [`HEADER_LEN`] bytes or more), from its version and, for versions 3 and
/// 4, its buffer length, which is bounds-checked here so that nobody reads
/// or allocates for an absurd one.
pub fn packet_len(header: &[u8]) -> Result<usize, PacketError> {
    let Some(header) = header.get(..HEADER_LEN) else {
        return Err(PacketError::TooShort(header.len()));
    };
    match Version::from_number(i16_at(header, 0))? {
        Version::V2 => Ok(V2_PACKET_LEN),
        Version::V3 => Ok(HEADER_LEN + buffer_len(header)? + V3_TRAILER),
        Version::V4 => Ok(HEADER_LEN + buffer_len(header)?),
    }
}

/// Decodes and validates a whole packet: version, length, CRC32, type and
/// the NUL that ends the buffer.
pub fn decode(bytes: &[u8]) -> Result<Packet, PacketError> {
    let expected = packet_len(bytes)?;
    if bytes.len() != expected {
        return Err(PacketError::Length { got: bytes.len(), expected });
    }
    let version = Version::from_number(i16_at(bytes, 0))?;
    let sent = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    let computed = crc(bytes, version);
    if sent != computed {
        return Err(PacketError::Crc { sent, computed });
    }
    let packet_type = match i16_at(bytes, 2) {
        1 => PacketType::Query,
        2 => PacketType::Response,
        other => return Err(PacketError::Type(other)),
    };
    let buffer = match version {
        Version::V2 => &bytes[V2_BUFFER_AT..V2_BUFFER_AT + V2_BUFFER_LEN],
        Version::V3 | Version::V4 => &bytes[HEADER_LEN..HEADER_LEN + buffer_len(bytes)?],
    };
    let end = buffer.iter().position(|&byte| byte == 0).ok_or(PacketError::Unterminated)?;
    Ok(Packet {
        version,
        packet_type,
        result_code: i16_at(bytes, 8),
        buffer: String::from_utf8_lossy(&buffer[..end]).into_owned(),
    })
}

impl Packet {
    /// A query for `text` (`command!arg1!arg2`).
    pub fn query(version: Version, text: &str) -> Packet {
        Packet { version, packet_type: PacketType::Query, result_code: 0, buffer: text.to_owned() }
    }

    /// A response carrying `output` with state `result_code`.
    pub fn response(version: Version, result_code: i16, output: &str) -> Packet {
        Packet {
            version,
            packet_type: PacketType::Response,
            result_code,
            buffer: output.to_owned(),
        }
    }

    /// The packet's bytes. The text stops at its first NUL, and is cut to
    /// what the version can carry, at a character boundary: 1023 bytes for
    /// version 2 (as NRPE cuts), 65535 for versions 3 and 4.
    pub fn encode(&self) -> Vec<u8> {
        let text = self.buffer.split('\0').next().unwrap_or_default();
        let limit = match self.version {
            Version::V2 => V2_BUFFER_LEN - 1,
            Version::V3 | Version::V4 => MAX_BUFFER_LEN - 1,
        };
        let text = cut(text, limit);
        let mut bytes = Vec::with_capacity(HEADER_LEN + text.len() + 4);
        bytes.extend_from_slice(&self.version.number().to_be_bytes());
        bytes.extend_from_slice(&self.packet_type.number().to_be_bytes());
        bytes.extend_from_slice(&[0; 4]);
        bytes.extend_from_slice(&self.result_code.to_be_bytes());
        match self.version {
            Version::V2 => {
                bytes.extend_from_slice(text.as_bytes());
                bytes.resize(V2_PACKET_LEN, 0);
            }
            Version::V3 | Version::V4 => {
                bytes.extend_from_slice(&[0; 2]);
                // At most MAX_BUFFER_LEN, so it fits.
                let length = i32::try_from(text.len() + 1).unwrap_or(i32::MAX);
                bytes.extend_from_slice(&length.to_be_bytes());
                bytes.extend_from_slice(text.as_bytes());
                bytes.push(0);
                if self.version == Version::V3 {
                    bytes.extend_from_slice(&[0; V3_TRAILER]);
                }
            }
        }
        let crc = crc(&bytes, self.version);
        bytes[4..8].copy_from_slice(&crc.to_be_bytes());
        bytes
    }
}

/// `text` cut to at most `limit` bytes at a character boundary, so the
/// cut never splits a character into invalid UTF-8.
fn cut(text: &str, limit: usize) -> &str {
    let mut end = limit.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The CRC32 of `bytes` with the CRC field (and for versions 3 and 4 the
/// alignment field) taken as zero, which is how NRPE computes it.
fn crc(bytes: &[u8], version: Version) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&bytes[..4]);
    hasher.update(&[0; 4]);
    match version {
        Version::V2 => hasher.update(&bytes[8..]),
        Version::V3 | Version::V4 => {
            hasher.update(&bytes[8..10]);
            hasher.update(&[0; 2]);
            hasher.update(&bytes[12..]);
        }
    }
    hasher.finalize()
}

/// The buffer length of a version 3 or 4 header, bounds-checked.
fn buffer_len(header: &[u8]) -> Result<usize, PacketError> {
    let length = i32::from_be_bytes([header[12], header[13], header[14], header[15]]);
    match usize::try_from(length) {
        Ok(length) if (1..=MAX_BUFFER_LEN).contains(&length) => Ok(length),
        _ => Err(PacketError::BufferLength(length)),
    }
}

fn i16_at(bytes: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([bytes[at], bytes[at + 1]])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// A v2 query as `check_nrpe -2 -c check_load` builds it, byte by byte
    /// from NRPE's struct layout, with the CRC32 it computes.
    fn v2_query(text: &str) -> Vec<u8> {
        let mut bytes = vec![0, 2, 0, 1, 0, 0, 0, 0, 0, 0];
        bytes.extend_from_slice(text.as_bytes());
        bytes.resize(V2_PACKET_LEN, 0);
        let crc = crc32fast::hash(&bytes);
        bytes[4..8].copy_from_slice(&crc.to_be_bytes());
        bytes
    }

    #[test]
    fn a_v2_query_built_like_check_nrpe_decodes() {
        let packet = decode(&v2_query("check_load")).unwrap();
        assert_eq!(packet, Packet::query(Version::V2, "check_load"));
        assert_eq!(packet.encode(), v2_query("check_load"));
    }

    #[test]
    fn a_v4_query_padded_to_1036_bytes_like_check_nrpe_decodes() {
        // check_nrpe never sends less than a v2 packet's size: the buffer
        // length is 1036 - 16 and the rest of the buffer is NULs.
        let mut bytes = vec![0, 4, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        bytes.extend_from_slice(&1020_i32.to_be_bytes());
        bytes.extend_from_slice(b"_NRPE_CHECK");
        bytes.resize(1036, 0);
        let crc = crc32fast::hash(&bytes);
        bytes[4..8].copy_from_slice(&crc.to_be_bytes());
        assert_eq!(packet_len(&bytes), Ok(1036));
        assert_eq!(decode(&bytes), Ok(Packet::query(Version::V4, "_NRPE_CHECK")));
    }

    #[test]
    fn a_v3_packet_carries_three_bytes_after_its_buffer() {
        let bytes = Packet::response(Version::V3, 1, "LOAD WARNING").encode();
        assert_eq!(bytes.len(), HEADER_LEN + "LOAD WARNING".len() + 1 + 3);
        assert_eq!(packet_len(&bytes), Ok(bytes.len()));
        assert_eq!(decode(&bytes).unwrap().result_code, 1);
    }

    #[test]
    fn every_refusal_has_its_reason() {
        let good = Packet::query(Version::V4, "check_disk").encode();
        assert_eq!(decode(&good[..10]), Err(PacketError::TooShort(10)));

        let mut version = good.clone();
        version[1] = 1;
        assert_eq!(decode(&version), Err(PacketError::Version(1)));

        let mut crc = good.clone();
        crc[HEADER_LEN] ^= 0x20;
        assert!(matches!(decode(&crc), Err(PacketError::Crc { .. })));

        let mut absurd = good.clone();
        absurd[12..16].copy_from_slice(&0x7fff_ffff_i32.to_be_bytes());
        assert_eq!(packet_len(&absurd), Err(PacketError::BufferLength(0x7fff_ffff)));
        absurd[12..16].copy_from_slice(&(-1_i32).to_be_bytes());
        assert_eq!(decode(&absurd), Err(PacketError::BufferLength(-1)));
        absurd[12..16].copy_from_slice(&0_i32.to_be_bytes());
        assert_eq!(decode(&absurd), Err(PacketError::BufferLength(0)));

        assert_eq!(
            decode(&good[..good.len() - 1]),
            Err(PacketError::Length { got: good.len() - 1, expected: good.len() })
        );

        let mut kind = Packet::query(Version::V2, "x").encode();
        kind[3] = 7;
        let fixed = crc32fast::hash(&[&kind[..4], &[0; 4], &kind[8..]].concat());
        kind[4..8].copy_from_slice(&fixed.to_be_bytes());
        assert_eq!(decode(&kind), Err(PacketError::Type(7)));

        let mut unterminated = vec![0, 2, 0, 1, 0, 0, 0, 0, 0, 0];
        unterminated.resize(V2_PACKET_LEN, b'a');
        let fixed = crc32fast::hash(&unterminated);
        unterminated[4..8].copy_from_slice(&fixed.to_be_bytes());
        assert_eq!(decode(&unterminated), Err(PacketError::Unterminated));
    }

    #[test]
    fn v2_output_is_cut_to_1023_bytes_at_a_character_boundary() {
        let long = "é".repeat(600);
        let packet = decode(&Packet::response(Version::V2, 0, &long).encode()).unwrap();
        assert_eq!(packet.buffer.len(), 1022);
        let ascii = "x".repeat(2000);
        let packet = decode(&Packet::response(Version::V2, 0, &ascii).encode()).unwrap();
        assert_eq!(packet.buffer.len(), 1023);
        let v4 = decode(&Packet::response(Version::V4, 0, &ascii).encode()).unwrap();
        assert_eq!(v4.buffer, ascii);
    }

    fn version() -> impl Strategy<Value = Version> {
        prop_oneof![Just(Version::V2), Just(Version::V3), Just(Version::V4)]
    }

    proptest! {
        #[test]
        fn round_trip(
            version in version(),
            response in any::<bool>(),
            result_code in any::<i16>(),
            text in "[^\0]{0,300}",
        ) {
            let packet_type = if response { PacketType::Response } else { PacketType::Query };
            let packet = Packet { version, packet_type, result_code, buffer: text };
            let bytes = packet.encode();
            prop_assert_eq!(packet_len(&bytes), Ok(bytes.len()));
            prop_assert_eq!(decode(&bytes), Ok(packet));
        }

        #[test]
        fn no_bytes_make_it_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1100)) {
            let _ = packet_len(&bytes);
            let _ = decode(&bytes);
        }

        #[test]
        fn no_header_on_a_real_packet_makes_it_panic(
            version in version(),
            header in proptest::collection::vec(any::<u8>(), HEADER_LEN),
        ) {
            let mut bytes = Packet::query(version, "check_users").encode();
            bytes[..HEADER_LEN].copy_from_slice(&header);
            let _ = decode(&bytes);
        }
    }
}
