//! One request: authentication, decompression, validation, dedupe.

use std::io::Read;
use std::sync::Arc;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::{Shared, lock};

/// The path batches are POSTed to.
pub const PATH: &str = "/v1/push";

/// The largest body taken, compressed and decompressed.
const MAX_BODY: usize = 16 << 20;
const MAX_JSON: u64 = 64 << 20;

/// A batch as the protocol defines it.
#[derive(Debug, Deserialize)]
struct Batch {
    version: u32,
    agent: String,
    instance: String,
    records: Vec<Map<String, Value>>,
}

type Answer = Response<Full<Bytes>>;

/// Answers one request; never fails (errors are answers).
pub async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Answer, hyper::Error> {
    Ok(answer(&shared, request).await.unwrap_or_else(|answer| answer))
}

async fn answer(shared: &Shared, request: Request<Incoming>) -> Result<Answer, Answer> {
    if request.uri().path() != PATH {
        return Err(plain(StatusCode::NOT_FOUND, "the push endpoint is POST /v1/push"));
    }
    if request.method() != Method::POST {
        return Err(plain(StatusCode::METHOD_NOT_ALLOWED, "use POST"));
    }
    if let Some(token) = &shared.token {
        let expected = format!("Bearer {token}");
        if request.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok()) != Some(&expected) {
            return Err(plain(StatusCode::UNAUTHORIZED, "missing or wrong bearer token"));
        }
    }
    let forced = *lock(&shared.forced);
    if let Some(forced) = forced {
        let status = StatusCode::from_u16(forced.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        let mut answer = plain(status, "forced answer");
        if let Some(secs) = forced.retry_after {
            answer.headers_mut().insert(RETRY_AFTER, secs.into());
        }
        return Err(answer);
    }
    let gzip = match request.headers().get(CONTENT_ENCODING).map(|v| v.as_bytes()) {
        Some(b"gzip") => true,
        None | Some(b"identity") => false,
        Some(_) => {
            return Err(plain(StatusCode::UNSUPPORTED_MEDIA_TYPE, "use Content-Encoding: gzip"));
        }
    };
    let body = Limited::new(request.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|_| plain(StatusCode::PAYLOAD_TOO_LARGE, "body over 16 MiB"))?
        .to_bytes();
    let mut json = Vec::new();
    if gzip {
        flate2::read::GzDecoder::new(&body[..])
            .take(MAX_JSON)
            .read_to_end(&mut json)
            .map_err(|e| plain(StatusCode::BAD_REQUEST, &format!("bad gzip: {e}")))?;
    } else {
        json = body.to_vec();
    }
    let batch: Batch = serde_json::from_slice(&json)
        .map_err(|e| plain(StatusCode::BAD_REQUEST, &format!("not a v1 batch: {e}")))?;
    if batch.version != 1 {
        return Err(plain(StatusCode::BAD_REQUEST, "unsupported version; this receiver speaks 1"));
    }
    let mut previous = 0;
    for record in &batch.records {
        let seq = record.get("seq").and_then(Value::as_u64).unwrap_or(0);
        let typed = record.get("type").and_then(Value::as_str).is_some();
        if seq <= previous || !typed {
            return Err(plain(
                StatusCode::BAD_REQUEST,
                "each record needs a type and a seq above the one before",
            ));
        }
        previous = seq;
    }
    let acked = lock(&shared.store)
        .accept(&batch.agent, &batch.instance, batch.records)
        .map_err(|e| plain(StatusCode::SERVICE_UNAVAILABLE, &format!("{e:#}")))?;
    let mut answer = Response::new(Full::new(Bytes::from(format!("{{\"acked\":{acked}}}"))));
    answer.headers_mut().insert(
        CONTENT_TYPE,
        "application/json".parse().map_err(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, ""))?,
    );
    Ok(answer)
}

fn plain(status: StatusCode, text: &str) -> Answer {
    let mut answer = Response::new(Full::new(Bytes::from(format!("{text}\n"))));
    *answer.status_mut() = status;
    answer
}
