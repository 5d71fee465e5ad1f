//! The NRPE protocol, as `check_nrpe` and the NRPE daemon speak it: the
//! packet layout of versions 2, 3 and 4 ([`packet`]) and what a query's
//! text asks for ([`query`]: the command name, its `!`-separated arguments,
//! and the characters NRPE refuses in them).
//!
//! Pure: no I/O and no runtime, so a fuzzer reaches it directly. The agent's
//! listener reads a header, asks [`packet::packet_len`] how much more to
//! read, then [`packet::decode`]s the whole packet.

pub mod packet;
pub mod query;

pub use packet::{Packet, PacketError, PacketType, Version};
pub use query::{Query, QueryError};
