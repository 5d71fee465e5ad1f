//! `kind = "remote_write"`: check results as Prometheus remote write 1.0
//! samples: a protobuf `WriteRequest`, snappy block compressed, POSTed
//! with the spec's headers.
//!
//! The series are those of the pull `/metrics` (state, hard, duration,
//! last run, every perfdata value and limit, named by
//! `monchero_core::metric_name`), with `job="monchero"` and
//! `instance=AGENT` added, each sample at the time of its result. Spooled
//! records arrive in order, so the samples of a series do too: Prometheus
//! refuses a sample older than the newest one it has of that series.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use monchero_core::metric_name::perfdata_metric;
use monchero_core::spool::Record;
use monchero_core::tracker::StateType;
use prost::Message;
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderName, HeaderValue};
use tracing::warn;

use super::batch::{Batch, Body};
use super::client::{self, Answer, Outcome};
use super::record::{self, Spooled, SpooledResult};
use crate::config::PushConfig;
use crate::metrics::item_limits;

/// The `job` label of every series: what a scrape job for the agent is
/// conventionally called.
pub const JOB: &str = "monchero";

/// The spec's `WriteRequest` (only the fields 1.0 requires). The messages
/// are declared by hand with prost's derive: five fields do not justify
/// protoc and a build script.
#[derive(Clone, PartialEq, Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// One series: its labels, sorted by name, and its samples, oldest first.
#[derive(Clone, PartialEq, Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

/// A label pair; `__name__` is the metric name.
#[derive(Clone, PartialEq, Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// A value at a time in milliseconds since the Unix epoch.
#[derive(Clone, PartialEq, Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// A series' labels, sorted by name.
type Labels = Vec<(String, String)>;

/// Turns spooled records into a compressed `WriteRequest`; runs on the
/// spool thread.
#[derive(Debug, Clone)]
pub struct Encoder {
    /// The `instance` label: the agent identity.
    pub instance: String,
}

impl Encoder {
    /// The batch of `records`; `None` for no records.
    pub fn encode(&self, records: &[Record]) -> Option<Batch> {
        let last = records.last()?.seq;
        let mut series: BTreeMap<Labels, Vec<Sample>> = BTreeMap::new();
        for record in records {
            let Some(Spooled::Result(result)) = record::parse(&record.payload) else { continue };
            for (labels, sample) in self.samples(&result) {
                let samples = series.entry(labels).or_default();
                // Two results in one millisecond: Prometheus would refuse
                // the second sample, and the whole request with it.
                if samples.last().is_none_or(|previous| previous.timestamp < sample.timestamp) {
                    samples.push(sample);
                }
            }
        }
        let body = if series.is_empty() {
            Body::Nothing
        } else {
            let request = WriteRequest {
                timeseries: series
                    .into_iter()
                    .map(|(labels, samples)| TimeSeries {
                        labels: labels
                            .into_iter()
                            .map(|(name, value)| Label { name, value })
                            .collect(),
                        samples,
                    })
                    .collect(),
            };
            Body::Bytes(snap::raw::Encoder::new().compress_vec(&request.encode_to_vec()).ok()?)
        };
        Some(Batch { body, last, count: records.len() })
    }

    /// The samples of one result, with their series' labels.
    fn samples(&self, result: &SpooledResult) -> Vec<(Labels, Sample)> {
        let timestamp = millis(result.at);
        let mut samples = Vec::new();
        let mut push = |name: &str, extra: &[(&str, &str)], value: f64| {
            let mut labels: Labels = [
                ("__name__", name),
                ("check", result.check.as_str()),
                ("instance", self.instance.as_str()),
                ("job", JOB),
            ]
            .iter()
            .chain(extra)
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
            labels.sort();
            samples.push((labels, Sample { value, timestamp }));
        };
        push("monchero_check_state", &[], f64::from(result.state.exit_code()));
        let hard = if result.state_type == StateType::Hard { 1.0 } else { 0.0 };
        push("monchero_check_state_hard", &[], hard);
        push("monchero_check_duration_seconds", &[], result.duration_ms / 1000.0);
        push("monchero_check_last_run_timestamp_seconds", &[], timestamp as f64 / 1000.0);
        // As in /metrics: a label a plugin repeats keeps its first item.
        let mut seen = std::collections::HashSet::new();
        for item in result.perfdata.iter().filter(|item| seen.insert(item.label.as_str())) {
            let metric = perfdata_metric(item.uom.as_deref());
            let label = [("label", item.label.as_str())];
            if let Some(value) = item.value {
                push(&metric.name(), &label, metric.to_base(value));
            }
            let limit_name = metric.limit_name();
            for (limit, value) in item_limits(item) {
                let extra = [("label", item.label.as_str()), ("limit", limit.as_str())];
                push(&limit_name, &extra, metric.to_base(value));
            }
        }
        samples
    }
}

fn millis(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |since| i64::try_from(since.as_millis()).unwrap_or(i64::MAX))
}

/// The HTTP client of one remote-write target.
#[derive(Debug)]
pub struct Client {
    http: reqwest::Client,
    url: reqwest::Url,
    token: Option<String>,
    auth: Option<(String, String)>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl Client {
    /// The client for `target`.
    pub fn new(target: &PushConfig) -> anyhow::Result<Client> {
        // Checked by the config already.
        let headers = target
            .headers
            .iter()
            .filter_map(|(name, value)| {
                Some((
                    HeaderName::from_bytes(name.as_bytes()).ok()?,
                    HeaderValue::from_str(value).ok()?,
                ))
            })
            .collect();
        Ok(Client {
            http: client::http_client(target)?,
            url: target.url.clone(),
            token: client::bearer_token(target)?,
            auth: client::basic_auth(target)?,
            headers,
        })
    }

    /// POSTs `batch` and classifies the answer.
    pub async fn send(&self, batch: &Batch) -> Outcome {
        let Body::Bytes(body) = &batch.body else { return Outcome::Acked(batch.last) };
        let mut request = self
            .http
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/x-protobuf")
            .header(CONTENT_ENCODING, "snappy")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .body(body.clone());
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        } else if let Some((user, password)) = &self.auth {
            request = request.basic_auth(user, Some(password));
        }
        match client::exchange(request).await {
            Ok(answer) => classify(&answer, batch),
            Err(error) => Outcome::Failed(error),
        }
    }
}

/// What an answer means, as the remote-write spec says: 2xx stored; 4xx
/// other than 429 will never be stored (out of order, too old, malformed),
/// so retrying cannot help; 429 and 5xx are retried.
fn classify(answer: &Answer, batch: &Batch) -> Outcome {
    match answer.status.as_u16() {
        200..=299 => Outcome::Acked(batch.last),
        400 | 409 | 413 | 422 => {
            warn!(message = "Remote-write receiver refused a batch; its records are dropped, as retrying cannot help.", records = batch.count, answer = %answer.said());
            Outcome::Partly {
                acked: Some(batch.last),
                dropped: batch.count as u64,
                rest: Box::new(Outcome::Acked(batch.last)),
            }
        }
        429 | 500..=599 => Outcome::Busy(answer.retry_after),
        _ => Outcome::Refused(answer.said()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use reqwest::StatusCode;

    use super::*;

    #[test]
    fn a_write_request_encodes_as_the_protobuf_spec_says() {
        let request = WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![Label { name: "__name__".into(), value: "up".into() }],
                samples: vec![Sample { value: 1.0, timestamp: 1000 }],
            }],
        };
        // Worked out by hand from the protobuf wire format: field 1
        // (length-delimited, 0x0a) holds the series; in it field 1 a label
        // (0x0a, 14 bytes: 0x0a 8 "__name__" 0x12 2 "up") and field 2 a
        // sample (0x12, 12 bytes: 0x09 and 1.0 as a little-endian double,
        // 0x10 and 1000 as the varint e8 07).
        let mut expected = vec![0x0a, 30, 0x0a, 14, 0x0a, 8];
        expected.extend_from_slice(b"__name__");
        expected.extend_from_slice(&[0x12, 2]);
        expected.extend_from_slice(b"up");
        expected
            .extend_from_slice(&[0x12, 12, 0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x10, 0xe8, 0x07]);
        assert_eq!(request.encode_to_vec(), expected);
        assert_eq!(WriteRequest::decode(&expected[..]).unwrap(), request);
    }

    fn record(seq: u64, at: &str, state: &str, perfdata: &str) -> Record {
        let payload = format!(
            r#"{{"type":"result","at":"{at}","check":"disk","state":"{state}","state_type":"hard","attempt":1,"max_attempts":3,"summary":"s","perfdata":[{perfdata}],"duration_ms":250.0,"exit_code":0,"timed_out":false}}"#
        );
        Record { seq, appended_at: UNIX_EPOCH, payload: payload.into_bytes() }
    }

    #[test]
    fn results_become_sorted_series_with_samples_in_order() {
        let item = r#"{"label":"/","value":2.0,"uom":"MB","warn":null,"crit":"~:3","min":null,"max":null}"#;
        let records = [
            record(1, "2023-11-14T22:13:20.000Z", "ok", item),
            record(2, "2023-11-14T22:13:20.000Z", "critical", item),
            record(3, "2023-11-14T22:13:21.500Z", "warning", ""),
            Record { seq: 4, appended_at: UNIX_EPOCH, payload: br#"{"type":"change"}"#.to_vec() },
        ];
        let encoder = Encoder { instance: "web-1".into() };
        let batch = encoder.encode(&records).unwrap();
        assert_eq!((batch.last, batch.count), (4, 4));
        let Body::Bytes(body) = &batch.body else { panic!("{batch:?}") };
        let raw = snap::raw::Decoder::new().decompress_vec(body).unwrap();
        let request = WriteRequest::decode(&raw[..]).unwrap();
        let find = |name: &str| {
            request
                .timeseries
                .iter()
                .find(|series| series.labels[0].value == name)
                .unwrap_or_else(|| panic!("no {name} in {request:?}"))
        };
        let state = find("monchero_check_state");
        let labels: Vec<_> =
            state.labels.iter().map(|l| (l.name.as_str(), l.value.as_str())).collect();
        assert_eq!(
            labels,
            [
                ("__name__", "monchero_check_state"),
                ("check", "disk"),
                ("instance", "web-1"),
                ("job", "monchero")
            ]
        );
        // The second result of the same millisecond is left out.
        let values: Vec<_> = state.samples.iter().map(|s| (s.value, s.timestamp)).collect();
        assert_eq!(values, [(0.0, 1_700_000_000_000), (1.0, 1_700_000_001_500)]);
        let bytes = find("monchero_perfdata_bytes");
        assert_eq!(
            bytes.samples,
            [Sample { value: 2.0 * 1024.0 * 1024.0, timestamp: 1_700_000_000_000 }]
        );
        assert_eq!(bytes.labels[4].name, "label");
        let limit = find("monchero_perfdata_limit_bytes");
        let names: Vec<_> = limit.labels.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["__name__", "check", "instance", "job", "label", "limit"]);
        assert_eq!(limit.labels[5].value, "critical_high");
        assert_eq!(find("monchero_check_duration_seconds").samples[0].value, 0.25);
        assert_eq!(
            find("monchero_check_last_run_timestamp_seconds").samples[1].value,
            1_700_000_001.5
        );
        let nothing = encoder.encode(&records[3..]).unwrap();
        assert!(matches!(nothing.body, Body::Nothing));
    }

    #[test]
    fn answers_mean_stored_dropped_or_retried() {
        let batch = Batch { body: Body::Nothing, last: 9, count: 3 };
        let answer = |status: u16, retry: Option<u64>| {
            let answer = Answer {
                status: StatusCode::from_u16(status).unwrap(),
                retry_after: retry.map(Duration::from_secs),
                text: "out of order sample".into(),
            };
            classify(&answer, &batch)
        };
        assert_eq!(answer(204, None), Outcome::Acked(9));
        assert_eq!(
            answer(400, None),
            Outcome::Partly { acked: Some(9), dropped: 3, rest: Box::new(Outcome::Acked(9)) }
        );
        assert_eq!(answer(429, Some(5)), Outcome::Busy(Some(Duration::from_secs(5))));
        assert_eq!(answer(502, None), Outcome::Busy(None));
        assert!(matches!(answer(401, None), Outcome::Refused(_)));
    }
}
