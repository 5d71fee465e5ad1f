//! The agent's side of the enrolment API: an HTTPS client that trusts only
//! the CA it was told about, and the four calls.
//!
//! On first contact the agent has no CA certificate yet, only the
//! fingerprint the operator gave it. [`PinnedCa`] looks for a certificate
//! with that fingerprint in the chain the server sends and verifies the
//! server against it alone; no match fails the handshake, before any
//! request is sent. Trust on first use would let whoever answers first
//! become the agent's CA.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use reqwest::StatusCode;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::enrol_protocol::{Answer, EnrolRequest, ErrorAnswer, RenewRequest};
use crate::http_error;

/// How long one call may take, connection included.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Which CA the client trusts.
#[derive(Debug, Clone)]
pub enum Trust {
    /// The CA certificate with this SHA-256 fingerprint (32 bytes), found
    /// in the server's chain.
    Fingerprint(Vec<u8>),
    /// These CA certificates.
    Certificates(Vec<CertificateDer<'static>>),
}

impl Trust {
    /// Whether the CA certificate `der` is the trusted one.
    pub fn accepts_ca(&self, der: &[u8]) -> bool {
        match self {
            Trust::Fingerprint(fingerprint) => {
                crate::ticket::unhex(&crate::ca::fingerprint(der)).as_ref() == Some(fingerprint)
            }
            Trust::Certificates(certs) => certs.iter().any(|cert| cert.as_ref() == der),
        }
    }
}

/// Reads a fingerprint as `ca init` prints it, or with colons (as openssl
/// prints it), in either case, with or without a `sha256:` prefix.
pub fn parse_fingerprint(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    let text =
        text.strip_prefix("sha256:").or_else(|| text.strip_prefix("SHA256:")).unwrap_or(text);
    let hex: String = text.chars().filter(|c| *c != ':').collect();
    crate::ticket::unhex(&hex).filter(|bytes| bytes.len() == 32)
}

/// An HTTPS client for the enrolment server at `server`.
#[derive(Debug, Clone)]
pub struct EnrolClient {
    http: reqwest::Client,
    server: reqwest::Url,
}

impl EnrolClient {
    /// A client trusting `trust`, presenting `identity` (certificate chain
    /// and key) when given: renewal authenticates with it.
    pub fn new(
        server: &str,
        trust: &Trust,
        identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    ) -> anyhow::Result<EnrolClient> {
        let server = reqwest::Url::parse(server)
            .with_context(|| format!("{server:?} is not a URL like https://HOST:PORT"))?;
        anyhow::ensure!(
            server.scheme() == "https",
            "{server} is not https://: enrolment only runs over TLS"
        );
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier: Arc<dyn ServerCertVerifier> = match trust {
            Trust::Fingerprint(fingerprint) => {
                Arc::new(PinnedCa { fingerprint: fingerprint.clone(), provider: provider.clone() })
            }
            Trust::Certificates(certs) => webpki_verifier(certs, &provider)?,
        };
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .context("the TLS library refuses TLS 1.2 and 1.3")?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let tls = match identity {
            Some((chain, key)) => builder
                .with_client_auth_cert(chain, key)
                .context("the key does not fit the certificate")?,
            None => builder.with_no_client_auth(),
        };
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(TIMEOUT)
            .timeout(TIMEOUT)
            .user_agent(concat!("monchero/", env!("CARGO_PKG_VERSION")))
            .http1_only()
            .build()
            .context("cannot set up the HTTPS client")?;
        Ok(EnrolClient { http, server })
    }

    /// `POST /v1/enrol`.
    pub async fn enrol(&self, csr: &str, ticket: Option<&str>) -> anyhow::Result<Answer> {
        let body = EnrolRequest { csr: csr.to_owned(), ticket: ticket.map(str::to_owned) };
        self.answer(self.http.post(self.url("v1/enrol")?).json(&body)).await
    }

    /// `GET /v1/enrol/{id}`.
    pub async fn poll(&self, id: &str) -> anyhow::Result<Answer> {
        self.answer(self.http.get(self.url(&format!("v1/enrol/{id}"))?)).await
    }

    /// `POST /v1/renew`.
    pub async fn renew(&self, csr: &str) -> anyhow::Result<Answer> {
        let body = RenewRequest { csr: csr.to_owned() };
        self.answer(self.http.post(self.url("v1/renew")?).json(&body)).await
    }

    /// `GET /v1/crl`: the PEM revocation list, not yet verified.
    pub async fn crl(&self) -> anyhow::Result<String> {
        let response = self.send(self.http.get(self.url("v1/crl")?)).await?;
        let status = response.status();
        let text = response.text().await.map_err(|error| self.failed(&error))?;
        anyhow::ensure!(status.is_success(), "{}", refusal(status, &text));
        Ok(text)
    }

    fn url(&self, path: &str) -> anyhow::Result<reqwest::Url> {
        self.server.join(path).with_context(|| format!("bad server URL {}", self.server))
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<reqwest::Response> {
        request.send().await.map_err(|error| self.failed(&error))
    }

    async fn answer(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Answer> {
        let response = self.send(request).await?;
        let status = response.status();
        let text = response.text().await.map_err(|error| self.failed(&error))?;
        anyhow::ensure!(status.is_success(), "{}", refusal(status, &text));
        serde_json::from_str(&text).with_context(|| {
            format!("{} answered something that is not the enrolment API", self.server)
        })
    }

    fn failed(&self, error: &reqwest::Error) -> anyhow::Error {
        anyhow::anyhow!("cannot reach {}: {}", self.server, http_error::chain(error))
    }
}

/// The server's error answer as a sentence.
fn refusal(status: StatusCode, body: &str) -> String {
    match serde_json::from_str::<ErrorAnswer>(body) {
        Ok(answer) => format!(
            "the server refused ({status}, {}): {}",
            answer.error.code, answer.error.message
        ),
        Err(_) => format!("the server answered {status}: {}", body.trim()),
    }
}

fn webpki_verifier(
    roots: &[CertificateDer<'static>],
    provider: &Arc<CryptoProvider>,
) -> anyhow::Result<Arc<WebPkiServerVerifier>> {
    let mut store = RootCertStore::empty();
    for cert in roots {
        store.add(cert.clone()).context("the CA certificate is not usable as a trust anchor")?;
    }
    WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
        .build()
        .context("cannot verify servers with the CA certificate")
}

/// Verifies the server against the CA certificate with a given
/// fingerprint, taken from the chain the server sends.
#[derive(Debug)]
struct PinnedCa {
    fingerprint: Vec<u8>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedCa {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let trust = Trust::Fingerprint(self.fingerprint.clone());
        let Some(ca) = intermediates.iter().find(|cert| trust.accepts_ca(cert)) else {
            return Err(rustls::Error::General(format!(
                "the server's certificate chain has no CA with the fingerprint {} (is it the \
                 right server, and the fingerprint `monchero ca serve` printed?)",
                crate::ticket::hex(&self.fingerprint)
            )));
        };
        let verifier = webpki_verifier(&[ca.clone().into_owned()], &self.provider)
            .map_err(|error| rustls::Error::General(format!("{error:#}")))?;
        verifier.verify_server_cert(end_entity, &[], server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_read_in_the_usual_spellings() {
        let hex = "ab".repeat(32);
        let expected = vec![0xab; 32];
        assert_eq!(parse_fingerprint(&hex), Some(expected.clone()));
        assert_eq!(parse_fingerprint(&hex.to_uppercase()), Some(expected.clone()));
        let colons = vec!["AB"; 32].join(":");
        assert_eq!(parse_fingerprint(&format!("sha256:{colons}")), Some(expected));
        assert_eq!(parse_fingerprint("abcd"), None, "too short");
        assert_eq!(parse_fingerprint(&"zz".repeat(32)), None);
    }
}
