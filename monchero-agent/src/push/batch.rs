//! A batch of spooled records ready to send, and the body of one request
//! of the push protocol: the batch document, gzip-compressed.

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
use monchero_core::spool::Record;

/// The protocol version in every batch.
pub const VERSION: u32 = 1;

/// A batch ready to send.
#[derive(Debug)]
pub struct Batch {
    /// What goes over the wire.
    pub body: Body,
    /// The highest sequence number in it.
    pub last: u64,
    /// How many records it holds.
    pub count: usize,
}

/// The encoded form of a batch, per kind of target.
#[derive(Debug)]
pub enum Body {
    /// One request body: the push protocol's gzip-compressed document, or
    /// a remote-write snappy-compressed WriteRequest.
    Bytes(Vec<u8>),
    /// Icinga 2's API takes one check result per request: these, in order.
    Icinga(Vec<super::icinga2::Submission>),
    /// The records hold nothing this kind of target is sent (state changes
    /// for Icinga 2 or remote write): acknowledged without a request.
    Nothing,
}

/// The batch of `records` from `agent`, instance `instance`; `None` for no
/// records.
///
/// Records are stored as JSON objects without their sequence number, so
/// `seq` is spliced in as the first member rather than each record being
/// parsed and serialized again: at thousands of records a second, that
/// round trip would be most of the agent's push CPU.
pub fn encode(agent: &str, instance: &str, records: &[Record]) -> Option<Batch> {
    let last = records.last()?.seq;
    let mut json =
        Vec::with_capacity(128 + records.iter().map(|r| r.payload.len() + 24).sum::<usize>());
    json.extend_from_slice(format!("{{\"version\":{VERSION},\"agent\":").as_bytes());
    json.extend_from_slice(serde_json::to_string(agent).unwrap_or_default().as_bytes());
    json.extend_from_slice(b",\"instance\":");
    json.extend_from_slice(serde_json::to_string(instance).unwrap_or_default().as_bytes());
    json.extend_from_slice(b",\"records\":[");
    let mut count = 0;
    for record in records {
        // Only the agent writes payloads, always as objects; anything else
        // is not forwarded.
        let Some(members) = record.payload.strip_prefix(b"{") else { continue };
        if count > 0 {
            json.push(b',');
        }
        json.extend_from_slice(format!("{{\"seq\":{}", record.seq).as_bytes());
        if members.first() != Some(&b'}') {
            json.push(b',');
        }
        json.extend_from_slice(members);
        count += 1;
    }
    json.extend_from_slice(b"]}");
    let mut encoder = GzEncoder::new(Vec::with_capacity(json.len() / 4), Compression::default());
    encoder.write_all(&json).ok()?;
    let body = encoder.finish().ok()?;
    Some(Batch { body: Body::Bytes(body), last, count })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::Read;
    use std::time::UNIX_EPOCH;

    use super::*;

    fn record(seq: u64, payload: &str) -> Record {
        Record { seq, appended_at: UNIX_EPOCH, payload: payload.as_bytes().to_vec() }
    }

    #[test]
    fn seq_is_spliced_into_each_record_and_the_body_is_gzip() {
        let records = [
            record(7, r#"{"type":"result","check":"disk"}"#),
            record(8, "{}"),
            record(9, "not an object"),
        ];
        let batch = encode("web-1 \"a\"", "abc", &records).unwrap();
        assert_eq!((batch.last, batch.count), (9, 2));
        let Body::Bytes(body) = &batch.body else { panic!("{batch:?}") };
        let mut json = String::new();
        flate2::read::GzDecoder::new(&body[..]).read_to_string(&mut json).unwrap();
        let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            doc,
            serde_json::json!({"version": 1, "agent": "web-1 \"a\"", "instance": "abc", "records": [
                {"seq": 7, "type": "result", "check": "disk"},
                {"seq": 8},
            ]})
        );
        assert!(encode("a", "b", &[]).is_none());
    }
}
