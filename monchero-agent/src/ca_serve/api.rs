//! The routes of `ca serve`: `POST /v1/enrol`, `GET /v1/enrol/{id}`,
//! `POST /v1/renew` and `GET /v1/crl`, with JSON errors with stable codes
//! (the pull API's [`ApiError`]). `docs/certificates.md` documents them.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use tracing::{info, warn};

use super::limit::{Limiter, RateLimit};
use super::queue::{Queue, Status};
use super::validate::{self, Refusal};
use crate::ca::Ca;
use crate::enrol_protocol::{Answer, EnrolRequest, RenewRequest};
use crate::pull::api::{ApiError, Client};
use crate::ticket::Tickets;

/// The largest request body taken: a CSR is about 500 bytes in PEM, a
/// large RSA one a few KiB.
const MAX_BODY: usize = 16 * 1024;

/// Enrolments and renewals per client address per minute.
const REQUESTS_PER_MINUTE: u32 = 30;

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct ServeState {
    ca: Arc<Ca>,
    queue: Queue,
    lifetime: Duration,
    limit: Limiter,
}

impl ServeState {
    /// Handlers over `ca`, signing for `lifetime`. Must be called inside
    /// the runtime.
    pub fn new(ca: Ca, lifetime: Duration) -> ServeState {
        ServeState {
            queue: Queue::new(ca.dir()),
            ca: Arc::new(ca),
            lifetime,
            limit: Limiter::start(RateLimit::new(REQUESTS_PER_MINUTE, Duration::from_secs(60))),
        }
    }

    async fn admit(&self, client: &Client) -> Result<(), ApiError> {
        self.limit.admit(client.address.ip()).await.map_err(|wait| {
            warn!(message = "Enrolment request refused: rate limit.", peer = %client.address);
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "too many requests from {}; retry in {} s",
                    client.address.ip(),
                    wait.as_secs() + 1
                ),
            )
            .retry_after(wait.as_secs() + 1)
        })
    }

    /// Signs `csr` and answers with everything the agent installs.
    fn issue(&self, csr: &str) -> Result<Answer, ApiError> {
        let certificate = self.ca.sign(csr, self.lifetime).map_err(internal)?;
        self.issued(certificate)
    }

    fn issued(&self, certificate: String) -> Result<Answer, ApiError> {
        Ok(Answer::Issued {
            certificate,
            ca: self.ca.ca_pem().map_err(internal)?,
            crl: self.ca.crl_pem().map_err(internal)?,
        })
    }
}

/// The routes.
pub fn router(state: ServeState) -> Router {
    Router::new()
        .route("/v1/enrol", post(enrol))
        .route("/v1/enrol/{id}", get(poll))
        .route("/v1/renew", post(renew))
        .route("/v1/crl", get(crl))
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such endpoint; see docs/certificates.md",
            )
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not take that method; see docs/certificates.md",
            )
        })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

async fn enrol(
    Extension(client): Extension<Client>,
    State(state): State<ServeState>,
    body: Result<Json<EnrolRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<Answer>), ApiError> {
    state.admit(&client).await?;
    let Json(request) = body.map_err(rejected)?;
    let requested = validate::inspect(&request.csr).map_err(bad_request)?;
    let tickets = Tickets::open(state.ca.dir()).map_err(internal)?;
    let name = &requested.name;
    let peer = client.address;
    match request.ticket.as_deref() {
        Some(ticket) if tickets.is_valid(name, ticket) => {
            if validate::ticket_covers(&requested) {
                let answer = state.issue(&request.csr)?;
                info!(message = "Enrolment signed (valid ticket).", %name, %peer);
                return Ok((StatusCode::OK, Json(answer)));
            }
            info!(
                message = "Enrolment queued: the request asks for names beyond its ticket's.",
                %name, %peer, dns_names = ?requested.dns_names,
            );
        }
        Some(_) => warn!(message = "Enrolment with a wrong ticket; queued.", %name, %peer),
        None => info!(message = "Enrolment without a ticket; queued.", %name, %peer),
    }
    let queued = state
        .queue
        .add(name, &requested.dns_names, &request.csr, &peer.to_string())
        .map_err(|error| {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "queue_full", format!("{error:#}"))
        })?;
    Ok((StatusCode::ACCEPTED, Json(Answer::Pending { id: queued.id })))
}

async fn poll(
    State(state): State<ServeState>,
    Path(id): Path<String>,
) -> Result<Json<Answer>, ApiError> {
    let queued = state.queue.get(&id).map_err(internal)?.ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no enrolment request {id:?}"))
    })?;
    let answer = match (queued.status, queued.certificate) {
        (Status::Issued, Some(certificate)) => state.issued(certificate)?,
        (Status::Refused, _) => Answer::Refused { id: queued.id },
        _ => Answer::Pending { id: queued.id },
    };
    Ok(Json(answer))
}

async fn renew(
    Extension(client): Extension<Client>,
    State(state): State<ServeState>,
    body: Result<Json<RenewRequest>, JsonRejection>,
) -> Result<Json<Answer>, ApiError> {
    state.admit(&client).await?;
    let Some(certificate) = &client.certificate else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "certificate_required",
            "renewal needs the current certificate as the TLS client certificate",
        ));
    };
    let Json(request) = body.map_err(rejected)?;
    let current = validate::current(certificate).map_err(bad_request)?;
    if state.ca.is_revoked(&current.serial).map_err(internal)? {
        warn!(message = "Renewal refused: certificate revoked.", names = ?current.names, peer = %client.address);
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "revoked",
            "the client certificate is revoked; enrol again with a new ticket",
        ));
    }
    let requested = validate::inspect(&request.csr).map_err(bad_request)?;
    validate::check_renewal(&requested, &current, SystemTime::now()).map_err(|refusal| {
        warn!(message = "Renewal refused.", reason = %refusal, names = ?current.names, peer = %client.address);
        let status = if refusal.code == "same_key" { StatusCode::BAD_REQUEST } else { StatusCode::FORBIDDEN };
        ApiError::new(status, refusal.code, refusal.message)
    })?;
    let answer = state.issue(&request.csr)?;
    info!(message = "Certificate renewed.", name = %requested.name, peer = %client.address);
    Ok(Json(answer))
}

async fn crl(State(state): State<ServeState>) -> Result<Response, ApiError> {
    let pem = state.ca.crl_pem().map_err(internal)?;
    Ok(([(header::CONTENT_TYPE, "application/x-pem-file")], pem).into_response())
}

fn rejected(rejection: JsonRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the request body is over {MAX_BODY} bytes"),
        );
    }
    ApiError::new(StatusCode::BAD_REQUEST, "bad_request", rejection.body_text())
}

fn bad_request(refusal: Refusal) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, refusal.code, refusal.message)
}

fn internal(error: anyhow::Error) -> ApiError {
    let message = format!("{error:#}");
    warn!(message = "Enrolment server error.", error = %message);
    // The details (paths in the CA directory) are for the operator's log.
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "the CA could not answer; see its log",
    )
}
