//! The webhook notifier: one HTTP(S) request per event, with reqwest on
//! rustls.
//!
//! The body is the action's template, or the event as JSON when it has
//! none. What the response means for the delivery is [`verdict`]: 2xx is
//! delivered; 408, 429 and 5xx are retried (honouring `Retry-After` on 429
//! and 503); other 4xx will not get better by retrying and fail for good.

use std::time::{Duration, SystemTime};

use anyhow::Context;
use monchero_core::event::Event;
use monchero_core::template::Escape;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};

use super::Attempt;
use crate::config::WebhookConfig;
use crate::{http_error, retry_after};

/// A configured webhook and its HTTP client.
#[derive(Debug)]
pub struct Webhook {
    client: reqwest::Client,
    config: WebhookConfig,
}

impl Webhook {
    /// The client for `config`: `timeout` per request, and with `ca_file`
    /// only those certificates trusted.
    pub fn new(config: WebhookConfig, timeout: Duration) -> anyhow::Result<Webhook> {
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("monchero/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &config.ca_file {
            let pem = std::fs::read(path)
                .with_context(|| format!("cannot read ca_file {}", path.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .with_context(|| format!("ca_file {} is not PEM", path.display()))?;
            builder = builder.tls_certs_only(certs);
        }
        let client = builder.build().context("cannot set up the HTTP client")?;
        Ok(Webhook { client, config })
    }

    /// One attempt to deliver `event`.
    pub async fn send(&self, event: &Event) -> Attempt {
        let (body, default_type) = match &self.config.body {
            Some(template) => {
                let kind = match self.config.escape {
                    Escape::Json => "application/json",
                    Escape::None => "text/plain; charset=utf-8",
                };
                (template.render(event, self.config.escape), kind)
            }
            None => (serde_json::to_string(event).unwrap_or_default(), "application/json"),
        };
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(default_type));
        for (name, template) in &self.config.headers {
            // Header values cannot hold line breaks; a summary can.
            let value: String = template
                .render(event, Escape::None)
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            let (Ok(name), Ok(value)) =
                (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(&value))
            else {
                return Attempt::Permanent(format!("header {name} cannot be sent: {value:?}"));
            };
            headers.insert(name, value);
        }
        let method = reqwest::Method::from_bytes(self.config.method.as_bytes())
            .unwrap_or(reqwest::Method::POST);
        let request = self.client.request(method, &self.config.url).headers(headers).body(body);
        match request.send().await {
            Ok(response) => {
                let retry_after = retry_after::from_headers(response.headers(), SystemTime::now());
                verdict(response.status(), retry_after)
            }
            // Hook URLs often hold the secret (Slack, Telegram): keep them
            // out of the summary, which goes to the log and the state.
            Err(error) => {
                Attempt::Retry { summary: http_error::brief(&error.without_url()), after: None }
            }
        }
    }
}

/// What an HTTP response status means for the delivery.
pub fn verdict(status: StatusCode, retry_after: Option<Duration>) -> Attempt {
    let summary = format!("HTTP {status}");
    if status.is_success() {
        Attempt::Delivered(summary)
    } else if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
        Attempt::Retry { summary, after: retry_after }
    } else if status == StatusCode::REQUEST_TIMEOUT || status.is_server_error() {
        Attempt::Retry { summary, after: None }
    } else if status.is_client_error() {
        Attempt::Permanent(format!("{summary}: the receiver refused the request"))
    } else {
        // 1xx and 3xx (redirects are followed, so one here is a loop).
        Attempt::Retry { summary, after: None }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_delivered_retried_or_failed_for_good() {
        let wait = Some(Duration::from_secs(30));
        assert_eq!(verdict(StatusCode::OK, None), Attempt::Delivered("HTTP 200 OK".into()));
        assert!(matches!(verdict(StatusCode::NO_CONTENT, wait), Attempt::Delivered(_)));
        assert_eq!(
            verdict(StatusCode::TOO_MANY_REQUESTS, wait),
            Attempt::Retry { summary: "HTTP 429 Too Many Requests".into(), after: wait }
        );
        assert!(matches!(
            verdict(StatusCode::SERVICE_UNAVAILABLE, wait),
            Attempt::Retry { after: Some(_), .. }
        ));
        // Retry-After only counts where the RFC gives it meaning for us.
        assert!(matches!(
            verdict(StatusCode::INTERNAL_SERVER_ERROR, wait),
            Attempt::Retry { after: None, .. }
        ));
        assert!(matches!(verdict(StatusCode::REQUEST_TIMEOUT, None), Attempt::Retry { .. }));
        assert_eq!(
            verdict(StatusCode::NOT_FOUND, None),
            Attempt::Permanent("HTTP 404 Not Found: the receiver refused the request".into())
        );
        assert!(matches!(verdict(StatusCode::UNAUTHORIZED, None), Attempt::Permanent(_)));
    }
}
