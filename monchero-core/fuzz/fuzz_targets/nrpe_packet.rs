//! Bytes from the network into the NRPE codec: the length check, the
//! decoder and the query parser must refuse anything without panicking, and
//! a packet that decodes must encode to one that decodes the same.

#![no_main]

use libfuzzer_sys::fuzz_target;
use monchero_core::nrpe::{Query, packet};

fuzz_target!(|bytes: &[u8]| {
    let _ = packet::packet_len(bytes);
    if let Ok(decoded) = packet::decode(bytes) {
        let _ = Query::parse(&decoded.buffer, true);
        let again = packet::decode(&decoded.encode());
        if decoded.buffer.len() < packet::V2_BUFFER_LEN {
            assert_eq!(again, Ok(decoded));
        }
    }
});
