//! The HTTP side of push: one reqwest client per target (rustls, the
//! pinned CA or the system roots, a client certificate, a bearer token or
//! basic auth), what a batch's sending came to ([`Outcome`]), and the push
//! protocol's requests and answers.

use std::time::{Duration, SystemTime};

use anyhow::Context;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE};
use serde::Deserialize;

use super::batch::{Batch, Body};
use crate::config::{PushConfig, password_line};
use crate::{http_error, retry_after};

/// The longest Retry-After honoured: a server asking for more is more
/// likely wrong than right, and the backlog would grow for hours.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// What the server made of one batch.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx: everything up to this sequence number is stored.
    Acked(u64),
    /// 429 or 503: try again after this long (Retry-After), or after the
    /// backoff when the server did not say.
    Busy(Option<Duration>),
    /// 413, 400, 415 or 422: this batch cannot be taken as it is.
    Rejected(String),
    /// Another 4xx (401, 403, 404...): the configuration is wrong; retried
    /// slowly so it works again once fixed on either side.
    Refused(String),
    /// No answer, a 5xx, or an answer that is not the protocol's.
    Failed(String),
    /// Sinks that send a batch in several requests, or drop what their
    /// server can never take: the records up to `acked` are done (`None`:
    /// none), `dropped` of the batch's records were given up on, and
    /// `rest` is what became of the remainder.
    Partly { acked: Option<u64>, dropped: u64, rest: Box<Outcome> },
}

/// An HTTP answer, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    /// Retry-After (seconds or an HTTP date), capped at [`MAX_RETRY_AFTER`].
    pub retry_after: Option<Duration>,
    pub text: String,
}

impl Answer {
    /// The status and the start of the body, for logs and `status`.
    pub fn said(&self) -> String {
        let body: String = self.text.trim().chars().take(200).collect();
        if body.is_empty() { self.status.to_string() } else { format!("{}: {body}", self.status) }
    }
}

/// A push target's HTTP client.
#[derive(Debug)]
pub struct Client {
    http: reqwest::Client,
    url: reqwest::Url,
    token: Option<String>,
}

/// The push protocol's success answer.
#[derive(Debug, Deserialize)]
struct AckedAnswer {
    acked: u64,
}

impl Client {
    /// The push-protocol client for `target`.
    pub fn new(target: &PushConfig) -> anyhow::Result<Client> {
        let token = bearer_token(target)?;
        Ok(Client { http: http_client(target)?, url: target.url.clone(), token })
    }

    /// POSTs `batch` and classifies the answer.
    pub async fn send(&self, batch: &Batch) -> Outcome {
        let Body::Bytes(body) = &batch.body else { return Outcome::Acked(batch.last) };
        let mut request = self
            .http
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(CONTENT_ENCODING, "gzip")
            .body(body.clone());
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        match exchange(request).await {
            Ok(answer) => classify(answer.status, answer.retry_after, &answer.text),
            Err(error) => Outcome::Failed(error),
        }
    }
}

/// The HTTP client for `target`, reading its CA, certificate and key
/// files (checked already by the config; read again in case they were
/// replaced, e.g. a renewed certificate). HTTP/1.1 only: every kind of
/// target sends one request after the other on one kept-alive connection.
pub fn http_client(target: &PushConfig) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(target.timeout)
        .timeout(target.timeout)
        .user_agent(concat!("monchero/", env!("CARGO_PKG_VERSION")))
        .http1_only();
    if let Some(path) = &target.ca_file {
        let pem = std::fs::read(path)
            .with_context(|| format!("cannot read ca_file {}", path.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("ca_file {} is not PEM", path.display()))?;
        builder = builder.tls_certs_only(certs);
    }
    if let Some((cert, key)) = &target.client_cert {
        let mut pem = std::fs::read(cert)
            .with_context(|| format!("cannot read cert_file {}", cert.display()))?;
        pem.push(b'\n');
        pem.extend(
            std::fs::read(key)
                .with_context(|| format!("cannot read key_file {}", key.display()))?,
        );
        let identity = reqwest::Identity::from_pem(&pem).with_context(|| {
            format!("{} and {} are not a PEM certificate and key", cert.display(), key.display())
        })?;
        builder = builder.identity(identity);
    }
    builder.build().context("cannot set up the HTTPS client")
}

/// The bearer token of `target`, read from its `token_file`.
pub fn bearer_token(target: &PushConfig) -> anyhow::Result<Option<String>> {
    let Some(path) = &target.token_file else { return Ok(None) };
    let token = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read token_file {}", path.display()))?;
    Ok(Some(token.trim().to_owned()))
}

/// The user and password of `target`'s basic auth, read from its file.
pub fn basic_auth(target: &PushConfig) -> anyhow::Result<Option<(String, String)>> {
    let Some((user, path)) = &target.basic_auth else { return Ok(None) };
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read password_file {}", path.display()))?;
    let password = password_line(&bytes)
        .with_context(|| format!("password_file {} holds no password", path.display()))?;
    Ok(Some((user.clone(), password)))
}

/// Sends `request` and reads the whole answer; the error is the transport
/// failure with its causes.
pub async fn exchange(request: reqwest::RequestBuilder) -> Result<Answer, String> {
    let response = request.send().await.map_err(|error| http_error::chain(&error))?;
    let status = response.status();
    let retry_after = retry_after::from_headers(response.headers(), SystemTime::now())
        .map(|wait| wait.min(MAX_RETRY_AFTER));
    let text = response.text().await.map_err(|error| http_error::chain(&error))?;
    Ok(Answer { status, retry_after, text })
}

/// What an answer means; see `docs/push-protocol.md`, "The answer".
fn classify(status: StatusCode, retry_after: Option<Duration>, body: &str) -> Outcome {
    let said = || {
        let body: String = body.trim().chars().take(200).collect();
        if body.is_empty() { status.to_string() } else { format!("{status}: {body}") }
    };
    match status.as_u16() {
        200..=299 => match serde_json::from_str::<AckedAnswer>(body) {
            Ok(answer) => Outcome::Acked(answer.acked),
            Err(_) => Outcome::Failed(format!(
                "the server answered {status} without {{\"acked\": N}}; is the url a push \
                 receiver?"
            )),
        },
        429 | 503 => Outcome::Busy(retry_after),
        400 | 413 | 415 | 422 => Outcome::Rejected(said()),
        400..=499 => Outcome::Refused(said()),
        _ => Outcome::Failed(said()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_map_to_what_the_protocol_says() {
        let ok = StatusCode::OK;
        assert_eq!(classify(ok, None, r#"{"acked": 42}"#), Outcome::Acked(42));
        assert!(matches!(classify(ok, None, "hello"), Outcome::Failed(_)));
        let secs = Some(Duration::from_secs(7));
        assert_eq!(classify(StatusCode::SERVICE_UNAVAILABLE, secs, ""), Outcome::Busy(secs));
        assert_eq!(classify(StatusCode::TOO_MANY_REQUESTS, None, ""), Outcome::Busy(None));
        assert!(matches!(classify(StatusCode::PAYLOAD_TOO_LARGE, None, ""), Outcome::Rejected(_)));
        assert_eq!(
            classify(StatusCode::UNAUTHORIZED, None, "bad token\n"),
            Outcome::Refused("401 Unauthorized: bad token".into())
        );
        assert!(matches!(classify(StatusCode::BAD_GATEWAY, None, ""), Outcome::Failed(_)));
    }
}
