//! The HTTP API, version 1, and `/metrics`: routes, who may call them, and
//! errors as JSON with a stable code.
//!
//! Every handler asks the daemon's main loop through
//! [`control::ask`], with the same requests the
//! control socket sends, so `GET /v1/status` and `monchero status --json`
//! are the same document from the same code. `docs/api.md` documents each
//! route with examples.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tokio::sync::mpsc;
use tracing::warn;

use crate::config::PullConfig;
use crate::control::{self, Incoming, NamedResult, Request, Response as Answer};
use crate::metrics;
use crate::status_report::{CheckStatus, StatusReport};

/// Who is on the other end of a connection; the listener adds it to every
/// request.
#[derive(Debug, Clone)]
pub struct Client {
    /// The peer's address, for the log.
    pub address: SocketAddr,
    /// The names of its certificate (see `tls::peer_names`); empty on the
    /// plain `[metrics]` listener.
    pub names: Vec<String>,
    /// Its certificate, when it sent one (`ca serve`'s renewal reads it).
    pub certificate: Option<rustls_pki_types::CertificateDer<'static>>,
}

/// Which clients may do what, from `[pull]`.
#[derive(Debug, Clone, Default)]
pub struct Access {
    allow: Option<Vec<String>>,
    run_allowed: Vec<String>,
}

impl Access {
    /// The rules of `pull`.
    pub fn new(pull: &PullConfig) -> Access {
        Access { allow: pull.allow.clone(), run_allowed: pull.run_allowed.clone() }
    }

    fn lets_in(&self, client: &Client) -> bool {
        self.allow.as_ref().is_none_or(|allow| client.names.iter().any(|name| allow.contains(name)))
    }

    fn lets_run(&self, client: &Client) -> bool {
        client.names.iter().any(|name| self.run_allowed.contains(name))
    }
}

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct ApiState {
    to_daemon: mpsc::Sender<Incoming>,
    access: Arc<Access>,
}

impl ApiState {
    /// Handlers that reach the daemon through `to_daemon` and apply
    /// `access`.
    pub fn new(to_daemon: mpsc::Sender<Incoming>, access: Access) -> ApiState {
        ApiState { to_daemon, access: Arc::new(access) }
    }

    async fn ask(&self, request: Request) -> Result<Answer, ApiError> {
        control::ask(&self.to_daemon, request).await.map_err(|error| {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", format!("{error:#}"))
        })
    }

    /// The report of every check, or of the named ones.
    async fn status(&self, checks: Vec<String>) -> Result<StatusReport, ApiError> {
        match self.ask(Request::Status { changes_within_secs: None, checks }).await? {
            Answer::Status(report) => Ok(report),
            other => Err(ApiError::unexpected(&other)),
        }
    }
}

/// The routes of the mTLS listener.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/status", get(status))
        .route("/v1/checks/{name}", get(check))
        .route("/v1/checks/{name}/run", post(run))
        .route("/metrics", get(tls_metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// The routes of the plain `[metrics]` listener: `/metrics` alone.
pub fn metrics_router(state: ApiState) -> Router {
    Router::new()
        .route("/metrics", get(plain_metrics))
        .fallback(|| async {
            ApiError::not_found("only /metrics is served on this port; the API is on [pull]")
        })
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// A client the allow-list lets in; extracting it refuses everyone else
/// with 403, and logs the refusal.
#[derive(Debug)]
struct Allowed(Client);

impl FromRequestParts<ApiState> for Allowed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let Some(client) = parts.extensions.get::<Client>().cloned() else {
            return Err(ApiError::internal("the connection has no client identity"));
        };
        if state.access.lets_in(&client) {
            return Ok(Allowed(client));
        }
        warn!(
            message = "Client refused: not in the allow list.",
            peer = %client.address,
            names = ?client.names,
            path = %parts.uri.path(),
        );
        Err(ApiError::forbidden(format!(
            "the certificate names {} are not in [pull] allow",
            names_text(&client)
        )))
    }
}

fn names_text(client: &Client) -> String {
    if client.names.is_empty() { "(none)".to_owned() } else { client.names.join(", ") }
}

async fn health(_: Allowed, State(state): State<ApiState>) -> Result<impl IntoResponse, ApiError> {
    let report = state.status(Vec::new()).await?;
    Ok(Json(json!({"status": "ok", "host": report.host, "checks": report.checks.len()})))
}

async fn status(_: Allowed, State(state): State<ApiState>) -> Result<Json<StatusReport>, ApiError> {
    Ok(Json(state.status(Vec::new()).await?))
}

async fn check(
    _: Allowed,
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Json<CheckStatus>, ApiError> {
    let report = state.status(vec![name.clone()]).await?;
    report
        .checks
        .into_iter()
        .find(|check| check.name == name)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no check is named {name:?}")))
}

async fn run(
    Allowed(client): Allowed,
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Json<NamedResult>, ApiError> {
    if !state.access.lets_run(&client) {
        warn!(
            message = "Run refused: client not in run_allowed.",
            peer = %client.address,
            names = ?client.names,
            check = %name,
        );
        return Err(ApiError::forbidden(format!(
            "the certificate names {} are not in [pull] run_allowed",
            names_text(&client)
        )));
    }
    let request = Request::Run { checks: vec![name.clone()], all: false };
    match state.ask(request).await? {
        Answer::Ran { results } => results
            .into_iter()
            .next()
            .map(Json)
            .ok_or_else(|| ApiError::internal("the daemon ran nothing")),
        // The only refusal of a run by name: no such check.
        Answer::Error { message } => Err(ApiError::not_found(message)),
        other => Err(ApiError::unexpected(&other)),
    }
}

async fn tls_metrics(_: Allowed, State(state): State<ApiState>) -> Result<Response, ApiError> {
    plain_metrics(State(state)).await
}

async fn plain_metrics(State(state): State<ApiState>) -> Result<Response, ApiError> {
    match state.ask(Request::Metrics).await? {
        Answer::Metrics(snapshot) => {
            Ok(([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], snapshot.render()).into_response())
        }
        other => Err(ApiError::unexpected(&other)),
    }
}

async fn not_found(_: Allowed) -> ApiError {
    ApiError::not_found("no such endpoint; see docs/api.md")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that method; see docs/api.md",
    )
}

/// An error answer: `{"error": {"code": CODE, "message": TEXT}}`. The codes
/// are stable (`not_found`, `forbidden`, `method_not_allowed`,
/// `unavailable`, `internal`, and `ca serve`'s own); the messages are for
/// people.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
}

impl ApiError {
    /// An answer with `status` and the stable `code`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into(), retry_after: None }
    }

    /// Adds a `Retry-After` header of `seconds`.
    pub fn retry_after(self, seconds: u64) -> ApiError {
        ApiError { retry_after: Some(seconds), ..self }
    }

    fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    fn forbidden(message: String) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    fn internal(message: &str) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    fn unexpected(answer: &Answer) -> ApiError {
        let kind = match answer {
            Answer::Status(_) => "a status",
            Answer::Ran { .. } => "run results",
            Answer::Metrics(_) => "metrics",
            Answer::Error { .. } => "an error",
        };
        ApiError::internal(&format!(
            "the daemon answered with {kind}, which this request does not expect"
        ))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(names: &[&str]) -> Client {
        Client {
            address: SocketAddr::from(([127, 0, 0, 1], 1)),
            names: names.iter().map(|name| (*name).to_owned()).collect(),
            certificate: None,
        }
    }

    #[test]
    fn without_an_allow_list_every_certified_client_is_let_in_but_none_may_run() {
        let access = Access::default();
        assert!(access.lets_in(&client(&["anyone"])));
        assert!(!access.lets_run(&client(&["anyone"])));
    }

    #[test]
    fn the_allow_list_and_run_allowed_match_any_name_of_the_certificate() {
        let access = Access {
            allow: Some(vec!["prometheus".into(), "admin".into()]),
            run_allowed: vec!["admin".into()],
        };
        assert!(access.lets_in(&client(&["cn-other", "prometheus"])));
        assert!(!access.lets_in(&client(&["stranger"])));
        assert!(!access.lets_in(&client(&[])));
        assert!(access.lets_run(&client(&["admin"])));
        assert!(!access.lets_run(&client(&["prometheus"])));
    }
}
