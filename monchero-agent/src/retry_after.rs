//! `Retry-After` (RFC 9110 §10.2.3), read the same way by every sender:
//! notification webhooks and push targets alike.

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};

/// The wait a response's `Retry-After` asks for, if it has a readable one.
pub fn from_headers(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    parse(headers.get(RETRY_AFTER)?.to_str().ok()?, now)
}

/// A `Retry-After` value: delay seconds or an HTTP date, as a wait from
/// `now`. A date in the past is no wait; garbage is `None`.
pub fn parse(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or_default())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_seconds_and_dates() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2026 07:28:00 GMT").unwrap();
        assert_eq!(parse("120", now), Some(Duration::from_secs(120)));
        assert_eq!(parse(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(parse("Wed, 21 Oct 2026 07:29:30 GMT", now), Some(Duration::from_secs(90)));
        assert_eq!(parse("Wed, 21 Oct 2026 07:00:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(parse("soon", now), None);
        assert_eq!(parse("-5", now), None);
    }

    #[test]
    fn reads_the_header() {
        let now = SystemTime::UNIX_EPOCH;
        let mut headers = HeaderMap::new();
        assert_eq!(from_headers(&headers, now), None);
        headers.insert(RETRY_AFTER, "30".parse().unwrap());
        assert_eq!(from_headers(&headers, now), Some(Duration::from_secs(30)));
    }
}
