//! A reqwest error in words: reqwest keeps the useful part (the TLS
//! refusal, the connect error) in `source()`, not in its own message.

/// The error and every cause in its chain, `: `-separated: the whole story,
/// for the last error of a push target or an enrolment.
pub fn chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A transport error in a sysadmin's words: what failed and its deepest
/// cause (`timed out: …`, `cannot connect: …`), for one-line summaries.
pub fn brief(error: &reqwest::Error) -> String {
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    causes.dedup();
    match causes.last() {
        Some(cause) => format!("{what}: {cause}"),
        None => format!("{what}: {error}"),
    }
}
