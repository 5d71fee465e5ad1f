//! `kind = "icinga2"`: every check result becomes a passive check result
//! through the Icinga 2 REST API (`POST /v1/actions/process-check-result`),
//! heartbeats become the host's result, state changes need no request
//! (Icinga derives them from the results).
//!
//! The API takes one result per request, so a batch is sent as a series of
//! requests on one kept-alive connection, in spool order; the first that
//! fails stops the batch, and everything before it is acknowledged. With
//! `create_objects`, a host or service Icinga does not know is created as
//! a passive object and the result sent again.

use std::collections::HashSet;
use std::time::{SystemTime, UNIX_EPOCH};

use monchero_core::spool::Record;
use reqwest::header::ACCEPT;
use serde::Serialize;
use tracing::warn;

use super::batch::{Batch, Body};
use super::client::{self, Answer, Outcome};
use super::record::{self, Spooled};
use crate::config::PushConfig;

/// What a heartbeat tells Icinga about the host.
pub const ALIVE: &str = "Monchero agent alive";

/// The Icinga object a result is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Object {
    /// The host (heartbeats).
    Host,
    /// A service of the host, named after the check.
    Service(String),
}

/// One result, ready to POST.
#[derive(Debug)]
pub struct Submission {
    /// The spool sequence number of the record it came from.
    pub seq: u64,
    pub object: Object,
    /// The JSON body of `process-check-result`.
    pub body: Vec<u8>,
}

/// The body of `process-check-result`, as Icinga's API documents it.
#[derive(Debug, Serialize)]
struct CheckResult<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    service: Option<String>,
    exit_status: u8,
    plugin_output: String,
    performance_data: Vec<String>,
    check_source: &'a str,
    execution_start: f64,
    execution_end: f64,
}

/// Turns spooled records into submissions; runs on the spool thread.
#[derive(Debug, Clone)]
pub struct Encoder {
    /// The Icinga host object.
    pub host: String,
    /// `check_source`: the agent identity.
    pub source: String,
}

impl Encoder {
    /// The batch of `records`; `None` for no records.
    pub fn encode(&self, records: &[Record]) -> Option<Batch> {
        let last = records.last()?.seq;
        let submissions: Vec<Submission> = records
            .iter()
            .filter_map(|record| {
                let (object, body) = self.body(&record::parse(&record.payload)?)?;
                Some(Submission { seq: record.seq, object, body })
            })
            .collect();
        let body = if submissions.is_empty() { Body::Nothing } else { Body::Icinga(submissions) };
        Some(Batch { body, last, count: records.len() })
    }

    /// The object and request body of one record; `None` for a record
    /// that needs no request.
    fn body(&self, record: &Spooled) -> Option<(Object, Vec<u8>)> {
        let (object, body) = match record {
            Spooled::Result(result) => {
                let service = format!("{}!{}", self.host, result.check);
                let end = seconds(result.at);
                let mut output = result.summary.clone();
                if !result.long_output.is_empty() {
                    output.push('\n');
                    output.push_str(&result.long_output);
                }
                let body = CheckResult {
                    kind: "Service",
                    host: None,
                    service: Some(service),
                    exit_status: result.state.exit_code(),
                    plugin_output: output,
                    performance_data: result.perfdata.iter().map(ToString::to_string).collect(),
                    check_source: &self.source,
                    execution_start: end - result.duration_ms / 1000.0,
                    execution_end: end,
                };
                (Object::Service(result.check.clone()), serde_json::to_vec(&body))
            }
            Spooled::Heartbeat { at } => {
                let body = CheckResult {
                    kind: "Host",
                    host: Some(&self.host),
                    service: None,
                    exit_status: 0,
                    plugin_output: ALIVE.to_owned(),
                    performance_data: Vec::new(),
                    check_source: &self.source,
                    execution_start: seconds(*at),
                    execution_end: seconds(*at),
                };
                (Object::Host, serde_json::to_vec(&body))
            }
            Spooled::Change => return None,
        };
        Some((object, body.ok()?))
    }
}

fn seconds(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH).map_or(0.0, |since| since.as_secs_f64())
}

/// What became of one submission.
#[derive(Debug, PartialEq)]
enum Step {
    Done,
    /// Icinga can never take it (a body it refuses, an object that is
    /// not there and is not to be created).
    Dropped,
    /// Icinga has no such object (404), with what it said.
    Missing(String),
    /// Stop the batch here.
    Stop(Outcome),
}

/// The API client of one Icinga 2 target.
#[derive(Debug)]
pub struct Client {
    http: reqwest::Client,
    base: reqwest::Url,
    auth: Option<(String, String)>,
    host: String,
    create_objects: bool,
    /// Objects whose missing was logged, so a check that runs every
    /// second logs it once.
    reported: HashSet<String>,
}

impl Client {
    /// The client for `target`, whose kind is `icinga2` with `host`.
    pub fn new(target: &PushConfig, host: &str, create_objects: bool) -> anyhow::Result<Client> {
        Ok(Client {
            http: client::http_client(target)?,
            base: target.url.clone(),
            auth: client::basic_auth(target)?,
            host: host.to_owned(),
            create_objects,
            reported: HashSet::new(),
        })
    }

    /// Sends the batch's results in order, up to the first that fails.
    pub async fn send(&mut self, batch: &Batch) -> Outcome {
        let Body::Icinga(submissions) = &batch.body else { return Outcome::Acked(batch.last) };
        let mut dropped = 0;
        for submission in submissions {
            match self.submit(submission).await {
                Step::Done => {}
                Step::Dropped | Step::Missing(_) => dropped += 1,
                Step::Stop(outcome) => {
                    let acked = submission.seq.checked_sub(1);
                    return Outcome::Partly { acked, dropped, rest: Box::new(outcome) };
                }
            }
        }
        if dropped == 0 {
            Outcome::Acked(batch.last)
        } else {
            Outcome::Partly {
                acked: Some(batch.last),
                dropped,
                rest: Box::new(Outcome::Acked(batch.last)),
            }
        }
    }

    async fn submit(&mut self, submission: &Submission) -> Step {
        let said = match self.post(submission).await {
            Step::Missing(said) => said,
            step => return step,
        };
        let name = self.object_name(&submission.object);
        if !self.create_objects {
            if self.reported.insert(name.clone()) {
                warn!(message = "Icinga 2 has no such object; its results are dropped until it is created (or set create_objects = true).", object = %name, answer = %said);
            }
            return Step::Dropped;
        }
        if let Err(outcome) = self.create(&submission.object).await {
            return Step::Stop(outcome);
        }
        match self.post(submission).await {
            // Created a moment ago and gone again: someone deletes it.
            Step::Missing(_) => Step::Dropped,
            step => step,
        }
    }

    /// POSTs one result.
    async fn post(&self, submission: &Submission) -> Step {
        let mut url = self.base.clone();
        url.set_path("/v1/actions/process-check-result");
        let request = self.request(reqwest::Method::POST, url).body(submission.body.clone());
        match client::exchange(request).await {
            Ok(answer) => interpret(&answer),
            Err(error) => Step::Stop(Outcome::Failed(error)),
        }
    }

    /// Creates `object` as a passive object (and its host first, for a
    /// service); an object that exists already is fine.
    async fn create(&self, object: &Object) -> Result<(), Outcome> {
        self.put(&["hosts", &self.host]).await?;
        if let Object::Service(check) = object {
            self.put(&["services", &format!("{}!{check}", self.host)]).await?;
        }
        let name = self.object_name(object);
        tracing::info!(message = "Icinga 2 object created for Monchero's results.", object = %name);
        Ok(())
    }

    async fn put(&self, path: &[&str]) -> Result<(), Outcome> {
        let mut url = self.base.clone();
        url.set_path("/v1/objects");
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.extend(path);
        }
        let body = serde_json::json!({
            "attrs": {"check_command": "dummy", "enable_active_checks": false}
        });
        let request = self.request(reqwest::Method::PUT, url).body(body.to_string());
        let answer = client::exchange(request).await.map_err(Outcome::Failed)?;
        // Icinga answers 500 "Object ... already exists." for an object
        // made meanwhile, by another agent of the same host or by hand.
        if answer.status.is_success() || answer.text.contains("already exists") {
            return Ok(());
        }
        let name = path.join("/");
        match answer.status.as_u16() {
            401 | 403 => Err(Outcome::Refused(format!(
                "{} creating {name}; the ApiUser needs the permissions objects/create/host and \
                 objects/create/service",
                answer.said()
            ))),
            _ => Err(Outcome::Failed(format!("cannot create {name}: {}", answer.said()))),
        }
    }

    fn request(&self, method: reqwest::Method, url: reqwest::Url) -> reqwest::RequestBuilder {
        let request = self.http.request(method, url).header(ACCEPT, "application/json");
        match &self.auth {
            Some((user, password)) => request.basic_auth(user, Some(password)),
            None => request,
        }
    }

    fn object_name(&self, object: &Object) -> String {
        match object {
            Object::Host => self.host.clone(),
            Object::Service(check) => format!("{}!{check}", self.host),
        }
    }
}

/// What Icinga's answer to `process-check-result` means; what to do about
/// a missing object is for `Client::submit` to decide.
fn interpret(answer: &Answer) -> Step {
    match answer.status.as_u16() {
        200..=299 => Step::Done,
        404 => Step::Missing(answer.said()),
        // A body Icinga refuses will be refused again: retrying would
        // hold back every later result.
        400 => {
            warn!(message = "Icinga 2 refused a check result; it is dropped.", answer = %answer.said());
            Step::Dropped
        }
        401 | 403 => Step::Stop(Outcome::Refused(format!(
            "{}; check username and password_file or the client certificate, and that the \
             ApiUser has the permission actions/process-check-result",
            answer.said()
        ))),
        429 | 503 => Step::Stop(Outcome::Busy(answer.retry_after)),
        _ => Step::Stop(Outcome::Failed(answer.said())),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use reqwest::StatusCode;
    use serde_json::{Value, json};

    use super::*;

    fn record(seq: u64, payload: &str) -> Record {
        Record { seq, appended_at: UNIX_EPOCH, payload: payload.as_bytes().to_vec() }
    }

    #[test]
    fn results_and_heartbeats_become_icinga_check_results_and_changes_nothing() {
        let encoder = Encoder { host: "web-1".into(), source: "agent-a".into() };
        let records = [
            record(
                4,
                r#"{"type":"result","at":"2023-11-14T22:13:20.500Z","check":"disk","state":"critical","state_type":"hard","attempt":3,"max_attempts":3,"summary":"DISK CRITICAL","long_output":"/ 95%","perfdata":[{"label":"/ root","value":2.5,"uom":"GB","warn":"@1:2","crit":null,"min":0.0,"max":10.0}],"duration_ms":250.0,"exit_code":2,"timed_out":false}"#,
            ),
            record(
                5,
                r#"{"type":"change","at":"2023-11-14T22:13:20.500Z","check":"disk","from":"ok","to":"critical","state_type":"hard","attempt":3,"max_attempts":3,"summary":"x"}"#,
            ),
            record(
                6,
                r#"{"type":"heartbeat","at":"2023-11-14T22:14:00Z","started_at":"2023-11-14T22:00:00Z","evicted":0,"damaged":0,"write_failed":0}"#,
            ),
        ];
        let batch = encoder.encode(&records).unwrap();
        assert_eq!((batch.last, batch.count), (6, 3));
        let Body::Icinga(submissions) = &batch.body else { panic!("{batch:?}") };
        assert_eq!(submissions.len(), 2);
        assert_eq!(
            (submissions[0].seq, &submissions[0].object),
            (4, &Object::Service("disk".into()))
        );
        let service: Value = serde_json::from_slice(&submissions[0].body).unwrap();
        assert_eq!(
            service,
            json!({"type": "Service", "service": "web-1!disk", "exit_status": 2,
                   "plugin_output": "DISK CRITICAL\n/ 95%",
                   "performance_data": ["'/ root'=2.5GB;@1:2;;0;10"],
                   "check_source": "agent-a",
                   "execution_start": 1_700_000_000.25, "execution_end": 1_700_000_000.5})
        );
        assert_eq!((submissions[1].seq, &submissions[1].object), (6, &Object::Host));
        let host: Value = serde_json::from_slice(&submissions[1].body).unwrap();
        assert_eq!(
            host,
            json!({"type": "Host", "host": "web-1", "exit_status": 0,
                   "plugin_output": "Monchero agent alive", "performance_data": [],
                   "check_source": "agent-a",
                   "execution_start": 1_700_000_040.0, "execution_end": 1_700_000_040.0})
        );
        let changes = encoder.encode(&records[1..2]).unwrap();
        assert!(matches!(changes.body, Body::Nothing), "{changes:?}");
        assert!(encoder.encode(&[]).is_none());
    }

    fn answer(status: u16, text: &str, retry_after: Option<u64>) -> Step {
        interpret(&Answer {
            status: StatusCode::from_u16(status).unwrap(),
            retry_after: retry_after.map(Duration::from_secs),
            text: text.to_owned(),
        })
    }

    #[test]
    fn answers_mean_done_dropped_retry_later_or_fix_the_credentials() {
        assert_eq!(answer(200, r#"{"results":[{"code":200.0}]}"#, None), Step::Done);
        assert_eq!(answer(400, "Invalid request body", None), Step::Dropped);
        assert_eq!(
            answer(404, r#"{"error":404,"status":"No objects found."}"#, None),
            Step::Missing(r#"404 Not Found: {"error":404,"status":"No objects found."}"#.into())
        );
        for status in [401, 403] {
            let Step::Stop(Outcome::Refused(said)) = answer(status, "", None) else { panic!() };
            assert!(said.contains("password_file"), "{said}");
        }
        assert_eq!(
            answer(503, "", Some(7)),
            Step::Stop(Outcome::Busy(Some(Duration::from_secs(7))))
        );
        assert!(matches!(answer(500, "boom", None), Step::Stop(Outcome::Failed(_))));
    }
}
