//! The JSON of the enrolment API (`docs/certificates.md`), shared by
//! `ca serve` and the agent's client so the two cannot drift apart.

use serde::{Deserialize, Serialize};

/// `POST /v1/enrol`: a certificate request, with or without a ticket.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolRequest {
    /// The PEM certificate request.
    pub csr: String,
    /// `monchero ca ticket`'s answer for the request's name; without a
    /// valid one the request waits for `monchero ca sign`.
    #[serde(default)]
    pub ticket: Option<String>,
}

/// `POST /v1/renew`: a request for a new certificate, sent with the
/// current one as the client certificate.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenewRequest {
    /// The PEM certificate request, for a new key.
    pub csr: String,
}

/// What an enrolment or renewal stands at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Answer {
    /// Signed: the certificate, the CA's and the current revocation list,
    /// all PEM.
    Issued { certificate: String, ca: String, crl: String },
    /// Queued until an operator runs `monchero ca sign`; poll
    /// `GET /v1/enrol/{id}`.
    Pending { id: String },
    /// An operator refused it (`monchero ca refuse`).
    Refused { id: String },
}

/// An error answer: `{"error": {"code": ..., "message": ...}}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorAnswer {
    /// What went wrong.
    pub error: ErrorBody,
}

/// The inside of an [`ErrorAnswer`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A stable code, e.g. `bad_csr`, `name_mismatch`, `same_key`.
    pub code: String,
    /// For people.
    pub message: String,
}
