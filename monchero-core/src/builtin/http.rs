//! `builtin:http`: an HTTP(S) request, like `check_http`, whose options,
//! status rules and words these are.
//!
//! - `-H HOST` (`--hostname`): the virtual host, sent as `Host:` (a
//!   `:port` suffix is kept in the header only); `-I ADDRESS`
//!   (`--IP-address`): where to connect instead of `-H`. One is required.
//! - `-p PORT` (default 80, or 443 with TLS), `-u PATH` (`--url`, default
//!   `/`), `-j METHOD` (`--method`, default `GET`), `-k 'Name: value'`
//!   (`--header`, repeatable).
//! - `-S` (`--ssl`): TLS, the chain verified against the system's CAs or
//!   `--ca-file PEM`, for the name `-H` (else `-I`), which is also sent as
//!   SNI whenever it is a name. `--sni` is accepted for `check_http`
//!   command lines and changes nothing: SNI is always sent, as
//!   `check_curl` does. A refused chain is CRITICAL, naming why.
//! - `-C DAYS_WARN[,DAYS_CRIT]` (`--certificate`): only the certificate's
//!   expiry is checked, as `check_http -C` does (implies `-S`).
//! - `-e STRING[,STRING...]` (`--expect`): the status line must contain
//!   one of them, and then no other status rule applies. Without it: 5xx is
//!   CRITICAL, 4xx WARNING, 1xx-3xx OK, a code outside 100-599 CRITICAL.
//! - `-f ok|warning|critical|follow|sticky|stickyport` (`--onredirect`):
//!   the state of a 3xx (default ok: not followed), or follow its
//!   `Location` up to 15 times (`sticky` keeps connecting to the same
//!   address, `stickyport` to the same port too).
//! - `-s STRING` (`--string`), `-r REGEX` (`--regex`, lines matched as
//!   POSIX `REG_NEWLINE` does): the body must contain or match them, else
//!   CRITICAL.
//! - `-w`/`-c SECONDS`: response time limits; `-t SECONDS` (`--timeout`,
//!   default 10) bounds the whole exchange: CRITICAL `Socket timeout after
//!   10 seconds`.
//! - `--max-size SIZE` (default 1MB): the most of the body read and
//!   searched; the rest is not read.
//!
//! Summary and perfdata are `check_http`'s: `HTTP OK: HTTP/1.1 200 OK -
//! 1234 bytes in 0.004 second response time | time=0.004s;;;0 size=1234B;;;0`,
//! then `time_connect`, `time_ssl` (TLS) and `time_firstbyte`, as
//! `check_http -E` names them. The size counts every byte received, head
//! included, as `check_http` does.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use regex::bytes::{Regex, RegexBuilder};

use super::args::{Command, Spec, parse_port, parse_seconds, parse_size};
use super::conn::{self, Failure, Stream, Target, Timings, TlsTarget, phase};
use super::http_response::{self, ReadError, Response};
use super::tls::{ExpiryDays, unix_now};
use super::{BuiltinError, Outcome, human_bytes, perf};
use crate::state::State;

pub(super) const NAME: &str = "http";
pub(super) const USAGE: &str = "builtin:http -H HOST | -I ADDRESS [-p PORT] [-u PATH] [-S] \
     [--ca-file PEM] [-e STRING[,STRING...]] [-s STRING] [-r REGEX] [-w SECONDS] [-c SECONDS] \
     [-C DAYS_WARN[,DAYS_CRIT]] [-t SECONDS] [-j METHOD] [-k 'Name: value']... [-f ok|warning|critical|follow] \
     [--max-size SIZE]";
const PREFIX: &str = "HTTP";
const COMMAND: Command = Command {
    name: NAME,
    usage: USAGE,
    specs: &[
        Spec::value('H', "hostname"),
        Spec::value('I', "IP-address"),
        Spec::value('p', "port"),
        Spec::value('u', "url"),
        Spec::flag('S', "ssl"),
        Spec::long_flag(SNI, "sni"),
        Spec::long_value(CA_FILE, "ca-file"),
        Spec::value('e', "expect"),
        Spec::value('s', "string"),
        Spec::value('r', "regex"),
        Spec::value('w', "warning"),
        Spec::value('c', "critical"),
        Spec::value('C', "certificate"),
        Spec::value('t', "timeout"),
        Spec::value('j', "method"),
        Spec::value('k', "header"),
        Spec::value('f', "onredirect"),
        Spec::long_value(MAX_SIZE, "max-size"),
    ],
};
/// Keys of the options without a letter.
const SNI: char = '\u{1}';
const CA_FILE: char = '\u{2}';
const MAX_SIZE: char = '\u{3}';

/// `check_http`'s default timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The body kept by default: enough for any health page, bounded memory.
const DEFAULT_MAX_SIZE: usize = 1024 * 1024;
/// `check_http`'s default `--max-redirs`.
const MAX_REDIRECTS: usize = 15;
/// `check_http` shows at most this much of `-s` in a summary.
const SHOWN_STRING_MAX: usize = 29;

/// A parsed `builtin:http`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Http {
    /// `-H` as given, `:port` included.
    host: Option<String>,
    /// Where to connect: `-I`, else `-H` without its `:port`.
    address: String,
    port: u16,
    path: String,
    method: String,
    headers: Vec<String>,
    tls: Option<Tls>,
    expect: Option<String>,
    string: Option<String>,
    regex: Option<Pattern>,
    warning: Option<f64>,
    critical: Option<f64>,
    timeout: Duration,
    max_size: usize,
    onredirect: OnRedirect,
}

/// `-f`: what a 3xx answer means.
#[derive(Debug, Clone, Copy, PartialEq)]
enum OnRedirect {
    /// It is the result, in this state.
    State(State),
    /// Ask where it points; `sticky` keeps the address, `sticky_port` the
    /// port too.
    Follow { sticky: bool, sticky_port: bool },
}

/// `-S` and what goes with it.
#[derive(Debug, Clone, PartialEq)]
struct Tls {
    /// The name the certificate must carry: `-H` without `:port`, else `-I`.
    name: String,
    ca_file: Option<PathBuf>,
    /// `-C`: check only this.
    expiry: Option<ExpiryDays>,
}

/// `-r`, compiled; two are equal when written the same.
#[derive(Debug, Clone)]
struct Pattern(Regex);

impl PartialEq for Pattern {
    fn eq(&self, other: &Pattern) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

/// What the request did.
#[derive(Debug)]
enum Exchange {
    Failed(Failure),
    /// `-C`: the certificate's verdict.
    Certificate {
        state: State,
        text: String,
        timings: Timings,
    },
    NoResponse(ReadError),
    Answered {
        response: Response,
        elapsed: Duration,
        timings: Timings,
        first_byte: Duration,
    },
}

impl Http {
    pub(super) fn parse(args: &[String]) -> Result<Http, BuiltinError> {
        let mut raw = Raw::default();
        for opt in COMMAND.parse(args)? {
            let text = |text: &str| Ok(text.to_owned());
            match opt.short {
                'H' => COMMAND.set_once(&mut raw.host, opt, parse_host)?,
                'I' => COMMAND.set_once(&mut raw.address, opt, parse_host)?,
                'p' => COMMAND.set_once(&mut raw.port, opt, parse_port)?,
                'u' => COMMAND.set_once(&mut raw.path, opt, parse_path)?,
                'S' => raw.ssl = true,
                SNI => {}
                CA_FILE => {
                    COMMAND.set_once(&mut raw.ca_file, opt, |text| Ok(PathBuf::from(text)))?
                }
                'e' => COMMAND.set_once(&mut raw.expect, opt, text)?,
                's' => COMMAND.set_once(&mut raw.string, opt, text)?,
                'r' => COMMAND.set_once(&mut raw.regex, opt, parse_pattern)?,
                'w' => COMMAND.set_once(&mut raw.warning, opt, parse_seconds)?,
                'c' => COMMAND.set_once(&mut raw.critical, opt, parse_seconds)?,
                'C' => COMMAND.set_once(&mut raw.expiry, opt, ExpiryDays::parse)?,
                't' => COMMAND.set_once(&mut raw.timeout, opt, parse_seconds)?,
                'j' => COMMAND.set_once(&mut raw.method, opt, parse_method)?,
                'f' => COMMAND.set_once(&mut raw.onredirect, opt, parse_onredirect)?,
                'k' => raw.headers.push(
                    parse_header(opt.value).map_err(|detail| COMMAND.bad_value('k', &detail))?,
                ),
                _ => COMMAND.set_once(&mut raw.max_size, opt, parse_max_size)?,
            }
        }
        raw.build()
    }

    pub(super) fn run(&self) -> Outcome {
        let started = Instant::now();
        let deadline = started + self.timeout;
        let OnRedirect::Follow { sticky, sticky_port } = self.onredirect else {
            return self.evaluate(self.exchange(started, deadline));
        };
        // As check_http does: each hop is this check with the target the
        // Location names, and the last answer is judged as if asked first.
        let mut hop = self.clone();
        for _ in 0..=MAX_REDIRECTS {
            let exchange = hop.exchange(started, deadline);
            let location = match &exchange {
                Exchange::Answered { response, .. }
                    if self.expect.is_none() && (300..400).contains(&response.code) =>
                {
                    response.location.clone()
                }
                _ => return hop.evaluate(exchange),
            };
            let Some(location) = location else {
                let text = "HTTP UNKNOWN - Could not find redirect location";
                return Outcome::with_summary(State::Unknown, text.to_owned());
            };
            hop = match hop.redirected(&location, sticky, sticky_port) {
                Some(next) if next.url() == hop.url() && next.address == hop.address => {
                    let text = format!(
                        "HTTP WARNING - redirection creates an infinite loop - {}",
                        next.url()
                    );
                    return Outcome::with_summary(State::Warning, text);
                }
                Some(next) => next,
                None => {
                    let text =
                        format!("HTTP UNKNOWN - Could not parse redirect location - {location}");
                    return Outcome::with_summary(State::Unknown, text);
                }
            };
        }
        let text = format!(
            "HTTP WARNING - maximum redirection depth {MAX_REDIRECTS} exceeded - {}",
            hop.url()
        );
        Outcome::with_summary(State::Warning, text)
    }

    /// This check aimed where `location` points: an absolute URL, a path,
    /// or a path relative to the current one. `None` when it is not one.
    fn redirected(&self, location: &str, sticky: bool, sticky_port: bool) -> Option<Http> {
        let mut next = self.clone();
        let (tls, rest) = if let Some(rest) = location.strip_prefix("https://") {
            (true, Some(rest))
        } else if let Some(rest) = location.strip_prefix("http://") {
            (false, Some(rest))
        } else if let Some(rest) = location.strip_prefix("//") {
            (self.tls.is_some(), Some(rest))
        } else {
            (self.tls.is_some(), None)
        };
        let path = match rest {
            Some(rest) => {
                let (authority, path) = rest.find('/').map_or((rest, "/"), |at| rest.split_at(at));
                parse_host(authority).ok()?;
                let port = if has_port(authority) {
                    let (_, port) = authority.rsplit_once(':')?;
                    parse_port(port).ok()?
                } else if tls {
                    443
                } else {
                    80
                };
                next.host = Some(authority.to_owned());
                if !sticky {
                    next.address = strip_port(authority).to_owned();
                }
                if !sticky_port {
                    next.port = port;
                }
                next.tls = tls.then(|| Tls {
                    name: strip_port(authority).to_owned(),
                    ca_file: self.tls.as_ref().and_then(|tls| tls.ca_file.clone()),
                    expiry: None,
                });
                path.to_owned()
            }
            None if location.starts_with('/') => location.to_owned(),
            None => {
                let base = self.path.rsplit_once('/').map_or("", |(base, _)| base);
                format!("{base}/{location}")
            }
        };
        next.path = parse_path(&path).ok()?;
        Some(next)
    }

    fn exchange(&self, started: Instant, deadline: Instant) -> Exchange {
        let tls = self
            .tls
            .as_ref()
            .map(|tls| TlsTarget { name: &tls.name, ca_file: tls.ca_file.as_deref() });
        let target = Target { host: &self.address, port: self.port, tls };
        let (mut stream, timings) = match conn::open(&target, deadline) {
            Ok(opened) => opened,
            Err(failure) => return Exchange::Failed(failure),
        };
        if let Some(days) = self.tls.as_ref().and_then(|tls| tls.expiry) {
            let (state, text) = match stream.leaf() {
                Some(Ok(leaf)) => days.evaluate(&leaf, unix_now()),
                Some(Err(text)) => (State::Critical, format!("CRITICAL - {text}")),
                None => (State::Unknown, "UNKNOWN - no TLS session".to_owned()),
            };
            return Exchange::Certificate { state, text, timings };
        }
        let sent = Instant::now();
        if let Err(error) = stream.write_before(self.request().as_bytes(), deadline) {
            return Exchange::NoResponse(ReadError::Io(error));
        }
        let source = Deadlined { stream: &mut stream, deadline };
        match http_response::read(source, self.method == "HEAD", self.max_size) {
            Ok((response, first_byte)) => Exchange::Answered {
                response,
                elapsed: started.elapsed(),
                timings,
                first_byte: first_byte
                    .map_or(Duration::ZERO, |at| at.saturating_duration_since(sent)),
            },
            Err(error) => Exchange::NoResponse(error),
        }
    }

    /// The request head. HTTP/1.1 with `Connection: close`, so the body
    /// may end at the close as well as by its framing.
    fn request(&self) -> String {
        let host = self.host.as_deref().unwrap_or(&self.address);
        let default_port = if self.tls.is_some() { 443 } else { 80 };
        let bare_ipv6 = host.contains(':') && !host.starts_with('[') && !has_port(host);
        let named = if bare_ipv6 { format!("[{host}]") } else { host.to_owned() };
        let host = if self.port == default_port || has_port(host) {
            named
        } else {
            format!("{named}:{}", self.port)
        };
        let mut request = format!(
            "{} {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: monchero/{} (builtin:http)\r\n\
             Connection: close\r\n",
            self.method,
            self.path,
            env!("CARGO_PKG_VERSION"),
        );
        for header in &self.headers {
            request.push_str(header);
            request.push_str("\r\n");
        }
        request.push_str("\r\n");
        request
    }

    fn evaluate(&self, exchange: Exchange) -> Outcome {
        let (response, elapsed, timings, first_byte) = match exchange {
            Exchange::Failed(failure) => return self.failed(failure),
            Exchange::NoResponse(error) => return self.no_response(error),
            Exchange::Certificate { state, text, timings } => {
                let mut outcome = Outcome::with_summary(state, text);
                self.push_timings(&mut outcome, timings, None);
                return outcome;
            }
            Exchange::Answered { response, elapsed, timings, first_byte } => {
                (response, elapsed, timings, first_byte)
            }
        };
        let (mut state, first) = match self.status_verdict(&response) {
            Ok(verdict) => verdict,
            Err(outcome) => return *outcome,
        };
        let mut problems = Vec::new();
        let body = String::from_utf8_lossy(&response.body);
        if let Some(string) = &self.string {
            if !body.contains(string.as_str()) {
                problems.push(format!("string '{}' not found on '{}'", shown(string), self.url()));
                state = State::Critical;
            }
        }
        if let Some(pattern) = &self.regex {
            if !pattern.0.is_match(&response.body) {
                problems.push("pattern not found".to_owned());
                state = State::Critical;
            }
        }
        let seconds = elapsed.as_secs_f64();
        if self.critical.is_some_and(|limit| seconds > limit) {
            state = state.worst(State::Critical);
        } else if self.warning.is_some_and(|limit| seconds > limit) {
            state = state.worst(State::Warning);
        }
        let message =
            if problems.is_empty() { first } else { format!("{first} - {}", problems.join(", ")) };
        let summary = format!(
            "HTTP {}: {message} - {} bytes in {seconds:.3} second response time",
            state.label(),
            response.size
        );
        let mut outcome = Outcome::with_summary(state, summary);
        let limits = (self.warning.map(|w| w.to_string()), self.critical.map(|c| c.to_string()));
        let max = Some(self.timeout.as_secs_f64());
        outcome.perfdata.push(perf("time", seconds, "s", limits, Some(0.0), max));
        outcome.perfdata.push(perf(
            "size",
            response.size as f64,
            "B",
            (None, None),
            Some(0.0),
            None,
        ));
        self.push_timings(&mut outcome, timings, Some(first_byte));
        if response.truncated {
            outcome.long_output = format!(
                "The body was cut at {} (--max-size): -s and -r saw only that much.",
                human_bytes(self.max_size as u64)
            );
        }
        outcome
    }

    /// The status line's verdict and the summary's first words, or the
    /// whole outcome when the status line ends the check.
    fn status_verdict(&self, response: &Response) -> Result<(State, String), Box<Outcome>> {
        let line = &response.status_line;
        let expected = self.expect.as_deref().unwrap_or("HTTP/1.");
        if !expected.split(',').any(|wanted| line.contains(wanted)) {
            return Err(Box::new(self.invalid_response(line)));
        }
        if let Some(expect) = &self.expect {
            return Ok((State::Ok, format!("Status line output matched \"{expect}\"")));
        }
        let state = match response.code {
            500..=599 => State::Critical,
            400..=499 => State::Warning,
            300..=399 => match self.onredirect {
                OnRedirect::State(state) => state,
                OnRedirect::Follow { .. } => State::Ok,
            },
            100..=299 => State::Ok,
            _ => {
                let text = format!("HTTP CRITICAL: Invalid Status ({line})");
                return Err(Box::new(Outcome::with_summary(State::Critical, text)));
            }
        };
        Ok((state, line.clone()))
    }

    fn invalid_response(&self, line: &str) -> Outcome {
        let text = if self.port == 80 {
            format!("HTTP CRITICAL - Invalid HTTP response received from host: {line}")
        } else {
            format!(
                "HTTP CRITICAL - Invalid HTTP response received from host on port {}: {line}",
                self.port
            )
        };
        Outcome::with_summary(State::Critical, text)
    }

    fn push_timings(&self, outcome: &mut Outcome, timings: Timings, first_byte: Option<Duration>) {
        outcome.perfdata.push(phase("time_connect", timings.connect));
        if let Some(handshake) = timings.tls {
            outcome.perfdata.push(phase("time_ssl", handshake));
        }
        if let Some(first_byte) = first_byte {
            outcome.perfdata.push(phase("time_firstbyte", first_byte));
        }
    }

    /// No connection, in `check_http`'s words where it has some.
    fn failed(&self, failure: Failure) -> Outcome {
        let (address, port) = (&self.address, self.port);
        match failure {
            Failure::Unresolved(error) => {
                Outcome::unknown(PREFIX, format!("cannot resolve {address}: {error}"))
            }
            Failure::Refused { address, error } => {
                let mut outcome = Outcome::with_summary(
                    State::Critical,
                    format!("connect to address {address} and port {port}: {error}"),
                );
                outcome.long_output = "HTTP CRITICAL - Unable to open TCP socket".to_owned();
                outcome
            }
            Failure::TimedOut => self.timed_out(),
            Failure::TlsSetup(text) => Outcome::unknown(PREFIX, text),
            Failure::TlsRefused(text) => {
                Outcome::new(PREFIX, State::Critical, format!("{address} port {port}: {text}"))
            }
        }
    }

    fn no_response(&self, error: ReadError) -> Outcome {
        let critical = |text: String| Outcome::with_summary(State::Critical, text);
        match error {
            ReadError::NoData => critical("HTTP CRITICAL - No data received from host".to_owned()),
            ReadError::Io(error) if conn::is_timeout(&error) => self.timed_out(),
            ReadError::Io(error) => critical(format!(
                "HTTP CRITICAL - Error on receive: {}",
                super::io_error_text(&error)
            )),
            ReadError::Malformed { first_line, reason } => {
                let mut outcome = self.invalid_response(&first_line);
                outcome.long_output = reason;
                outcome
            }
            ReadError::Incomplete(text) => critical(format!("HTTP CRITICAL - {text}")),
        }
    }

    fn timed_out(&self) -> Outcome {
        let text =
            format!("CRITICAL - Socket timeout after {} seconds", self.timeout.as_secs_f64());
        Outcome::with_summary(State::Critical, text)
    }

    /// The URL as `check_http` shows it in a summary.
    fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let host = self.host.as_deref().map_or(self.address.as_str(), strip_port);
        format!("{scheme}://{host}:{}{}", self.port, self.path)
    }
}

/// The options as given, before defaults and cross-checks.
#[derive(Default)]
struct Raw {
    host: Option<String>,
    address: Option<String>,
    port: Option<u16>,
    path: Option<String>,
    ssl: bool,
    ca_file: Option<PathBuf>,
    expect: Option<String>,
    string: Option<String>,
    regex: Option<Pattern>,
    warning: Option<f64>,
    critical: Option<f64>,
    expiry: Option<ExpiryDays>,
    timeout: Option<f64>,
    method: Option<String>,
    headers: Vec<String>,
    max_size: Option<usize>,
    onredirect: Option<OnRedirect>,
}

impl Raw {
    fn build(self) -> Result<Http, BuiltinError> {
        let address = match (&self.address, &self.host) {
            (Some(address), _) => address.clone(),
            (None, Some(host)) => strip_port(host).to_owned(),
            (None, None) => {
                return Err(
                    COMMAND.missing_option("-H HOST or -I ADDRESS is required: the server to ask")
                );
            }
        };
        if let (Some(warning), Some(critical)) = (self.warning, self.critical) {
            if warning > critical {
                return Err(COMMAND.conflict(format!(
                    "-w {warning} is above -c {critical}: the warning time must be the lower one"
                )));
            }
        }
        let tls = (self.ssl || self.expiry.is_some() || self.ca_file.is_some()).then(|| Tls {
            name: self
                .host
                .as_deref()
                .map_or_else(|| address.clone(), |host| strip_port(host).to_owned()),
            ca_file: self.ca_file,
            expiry: self.expiry,
        });
        let port = self.port.unwrap_or(if tls.is_some() { 443 } else { 80 });
        Ok(Http {
            host: self.host,
            address,
            port,
            path: self.path.unwrap_or_else(|| "/".to_owned()),
            method: self.method.unwrap_or_else(|| "GET".to_owned()),
            headers: self.headers,
            tls,
            expect: self.expect,
            string: self.string,
            regex: self.regex,
            warning: self.warning,
            critical: self.critical,
            timeout: self.timeout.map_or(DEFAULT_TIMEOUT, Duration::from_secs_f64),
            max_size: self.max_size.unwrap_or(DEFAULT_MAX_SIZE),
            onredirect: self.onredirect.unwrap_or(OnRedirect::State(State::Ok)),
        })
    }
}

/// Reads from a stream, each read bounded by the deadline.
struct Deadlined<'a> {
    stream: &'a mut Stream,
    deadline: Instant,
}

impl std::io::Read for Deadlined<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.stream.read_before(buf, self.deadline)
    }
}

/// `example.com:8080` → `example.com`; an IPv6 address (`::1`, `[::1]:443`)
/// keeps its colons.
fn strip_port(host: &str) -> &str {
    if let Some(bracketed) = host.strip_prefix('[') {
        return bracketed.split_once(']').map_or(bracketed, |(address, _)| address);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.parse::<u16>().is_ok() => name,
        _ => host,
    }
}

fn has_port(host: &str) -> bool {
    match host.strip_prefix('[') {
        Some(rest) => rest.contains("]:"),
        None => strip_port(host) != host,
    }
}

/// `-s` as `check_http` shows it: long strings cut, with `...`.
fn shown(string: &str) -> String {
    if string.chars().count() <= SHOWN_STRING_MAX {
        return string.to_owned();
    }
    let cut: String = string.chars().take(SHOWN_STRING_MAX - 3).collect();
    format!("{cut}...")
}

/// Text that goes into the request head must not break it.
fn one_line(text: &str, what: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err(format!("the {what} is empty"));
    }
    if text.chars().any(|c| c.is_control()) {
        return Err(format!(
            "{text:?}: the {what} must not contain control characters (line breaks)"
        ));
    }
    Ok(())
}

fn parse_host(text: &str) -> Result<String, String> {
    one_line(text, "host")?;
    if text.contains(char::is_whitespace) || text.contains('/') {
        return Err(format!("{text:?} is not a host name or address (write e.g. www.example.org)"));
    }
    Ok(text.to_owned())
}

fn parse_path(text: &str) -> Result<String, String> {
    one_line(text, "path")?;
    if !text.starts_with('/') || text.contains(' ') {
        return Err(format!("{text:?} is not a path (write e.g. /health, without spaces)"));
    }
    Ok(text.to_owned())
}

fn parse_method(text: &str) -> Result<String, String> {
    if text.is_empty() || !text.chars().all(|c| c.is_ascii_alphabetic() || c == '-' || c == '_') {
        return Err(format!("{text:?} is not an HTTP method (write e.g. GET, HEAD or OPTIONS)"));
    }
    Ok(text.to_ascii_uppercase())
}

fn parse_header(text: &str) -> Result<String, String> {
    one_line(text, "header")?;
    match text.split_once(':') {
        Some((name, _)) if !name.is_empty() && !name.contains(char::is_whitespace) => {
            Ok(text.to_owned())
        }
        _ => Err(format!("{text:?} is not a header (write 'Name: value')")),
    }
}

fn parse_pattern(text: &str) -> Result<Pattern, String> {
    // check_http compiles with REG_NEWLINE: ^ and $ match at line ends.
    RegexBuilder::new(text).multi_line(true).build().map(Pattern).map_err(|error| {
        let message = error.to_string();
        let last = message.lines().last().unwrap_or_default();
        format!("{text:?} is not a valid regex: {}", last.trim_start_matches("error: "))
    })
}

fn parse_onredirect(text: &str) -> Result<OnRedirect, String> {
    Ok(match text {
        "ok" => OnRedirect::State(State::Ok),
        "warning" => OnRedirect::State(State::Warning),
        "critical" => OnRedirect::State(State::Critical),
        "follow" => OnRedirect::Follow { sticky: false, sticky_port: false },
        "sticky" => OnRedirect::Follow { sticky: true, sticky_port: false },
        "stickyport" => OnRedirect::Follow { sticky: true, sticky_port: true },
        _ => {
            return Err(format!(
                "{text:?} is not one of ok, warning, critical, follow, sticky, stickyport"
            ));
        }
    })
}

fn parse_max_size(text: &str) -> Result<usize, String> {
    let bytes = parse_size(text)?;
    usize::try_from(bytes)
        .ok()
        .filter(|bytes| *bytes > 0)
        .ok_or_else(|| format!("{text:?} is not a usable size (write e.g. 1MB)"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{Ipv4Addr, TcpListener};

    use super::*;
    use crate::builtin::BuiltinErrorKind;
    use crate::builtin::test_util::{rendered, words};

    fn http(args: &[&str]) -> Result<Http, BuiltinError> {
        Http::parse(&words(args))
    }

    fn answered(status_line: &str, code: u16, body: &str, size: usize) -> Exchange {
        let response = Response {
            status_line: status_line.to_owned(),
            code,
            location: None,
            body: body.as_bytes().to_vec(),
            size,
            truncated: false,
        };
        let timings = Timings { connect: Duration::from_millis(1), tls: None };
        let elapsed = Duration::from_millis(4);
        Exchange::Answered { response, elapsed, timings, first_byte: Duration::from_millis(2) }
    }

    fn evaluate(args: &[&str], exchange: Exchange) -> Outcome {
        http(args).unwrap().evaluate(exchange)
    }

    #[test]
    fn options_are_validated_when_the_config_is_read() {
        let kind = |args: &[&str]| http(args).unwrap_err().kind();
        assert_eq!(kind(&["-u", "/"]), BuiltinErrorKind::MissingOption);
        assert_eq!(
            kind(&["-H", "h", "-w", "5", "-c", "1"]),
            BuiltinErrorKind::ConflictingThresholds
        );
        let message = |args: &[&str]| http(args).unwrap_err().to_string();
        assert_eq!(
            message(&["-H", "h", "-u", "health"]),
            r#"builtin:http: -u: "health" is not a path (write e.g. /health, without spaces)"#
        );
        assert_eq!(
            message(&["-H", "h", "-k", "NoColon"]),
            r#"builtin:http: -k: "NoColon" is not a header (write 'Name: value')"#
        );
        assert_eq!(
            message(&["-H", "h", "-k", "X-A: 1\r\nX-B: 2"]),
            r#"builtin:http: -k: "X-A: 1\r\nX-B: 2": the header must not contain control characters (line breaks)"#
        );
        assert_eq!(
            message(&["-H", "h", "-j", "GET /"]),
            r#"builtin:http: -j: "GET /" is not an HTTP method (write e.g. GET, HEAD or OPTIONS)"#
        );
        assert!(
            message(&["-H", "h", "-r", "("])
                .starts_with(r#"builtin:http: -r: "(" is not a valid regex: "#)
        );
        assert_eq!(
            message(&["-H", "h", "--max-size", "10"]),
            r#"builtin:http: --max-size: "10" has no unit (write 10MB, or 10B for bytes)"#
        );
        assert!(message(&["-H", "h", "-C", "7,30"]).contains("write the larger first"));
    }

    #[test]
    fn tls_options_set_the_port_and_the_name() {
        let plain = http(&["-H", "www.example.org"]).unwrap();
        assert_eq!(
            (plain.port, plain.address.as_str(), plain.tls.is_none()),
            (80, "www.example.org", true)
        );
        let tls = http(&["-H", "www.example.org:8443", "-I", "127.0.0.1", "-S", "--sni"]).unwrap();
        assert_eq!((tls.port, tls.address.as_str()), (443, "127.0.0.1"));
        assert_eq!(tls.tls.as_ref().unwrap().name, "www.example.org");
        let certificate = http(&["-I", "127.0.0.1", "-C", "30,7"]).unwrap();
        let tls = certificate.tls.unwrap();
        assert_eq!((certificate.port, tls.name.as_str()), (443, "127.0.0.1"));
        assert_eq!(tls.expiry, Some(ExpiryDays { warning: 30, critical: 7 }));
    }

    #[test]
    fn the_request_is_http_1_1_with_the_virtual_host() {
        let request = http(&[
            "-H",
            "www.example.org",
            "-p",
            "8080",
            "-u",
            "/health?full=1",
            "-k",
            "X-Token: abc",
            "-j",
            "head",
        ])
        .unwrap()
        .request();
        assert_eq!(
            request,
            format!(
                "HEAD /health?full=1 HTTP/1.1\r\nHost: www.example.org:8080\r\nUser-Agent: monchero/{} \
                 (builtin:http)\r\nConnection: close\r\nX-Token: abc\r\n\r\n",
                env!("CARGO_PKG_VERSION")
            )
        );
        let host = |args: &[&str]| {
            let request = http(args).unwrap().request();
            request.lines().nth(1).unwrap().to_owned()
        };
        assert_eq!(host(&["-H", "example.org:5000"]), "Host: example.org:5000");
        assert_eq!(host(&["-H", "example.org", "-S"]), "Host: example.org");
        assert_eq!(host(&["-I", "::1", "-p", "8080"]), "Host: [::1]:8080");
        assert_eq!(host(&["-I", "::1"]), "Host: [::1]");
    }

    #[test]
    fn status_codes_map_as_in_check_http() {
        let state =
            |line: &str, code: u16| evaluate(&["-H", "h"], answered(line, code, "", 10)).state;
        assert_eq!(state("HTTP/1.1 200 OK", 200), State::Ok);
        assert_eq!(state("HTTP/1.1 301 Moved Permanently", 301), State::Ok);
        assert_eq!(state("HTTP/1.1 404 Not Found", 404), State::Warning);
        assert_eq!(state("HTTP/1.1 503 Service Unavailable", 503), State::Critical);
        let odd = evaluate(&["-H", "h"], answered("HTTP/1.1 099 Odd", 99, "", 10));
        assert_eq!(odd.state, State::Critical);
        assert_eq!(odd.summary, "HTTP CRITICAL: Invalid Status (HTTP/1.1 099 Odd)");
    }

    #[test]
    fn a_good_answer_reads_like_check_http() {
        let outcome = evaluate(
            &["-H", "h", "-w", "1", "-c", "2"],
            answered("HTTP/1.1 200 OK", 200, "hi", 1234),
        );
        assert_eq!(outcome.state, State::Ok);
        assert_eq!(
            outcome.summary,
            "HTTP OK: HTTP/1.1 200 OK - 1234 bytes in 0.004 second response time"
        );
        assert_eq!(
            rendered(&outcome),
            [
                "time=0.004s;1;2;0;10",
                "size=1234B;;;0",
                "time_connect=0.001s;;;0",
                "time_firstbyte=0.002s;;;0"
            ]
        );
    }

    #[test]
    fn expect_replaces_the_status_rules() {
        let outcome = evaluate(
            &["-H", "h", "-e", "404,410"],
            answered("HTTP/1.1 404 Not Found", 404, "", 10),
        );
        assert_eq!(outcome.state, State::Ok);
        assert_eq!(
            outcome.summary,
            r#"HTTP OK: Status line output matched "404,410" - 10 bytes in 0.004 second response time"#
        );
        let outcome = evaluate(
            &["-H", "h", "-p", "8080", "-e", "200"],
            answered("HTTP/1.1 302 Found", 302, "", 10),
        );
        assert_eq!(outcome.state, State::Critical);
        assert_eq!(
            outcome.summary,
            "HTTP CRITICAL - Invalid HTTP response received from host on port 8080: HTTP/1.1 302 Found"
        );
    }

    #[test]
    fn body_mismatches_are_critical_and_named() {
        let args =
            ["-H", "h", "-p", "8080", "-u", "/health", "-s", "all good", "-r", "^status: up$"];
        let outcome = evaluate(&args, answered("HTTP/1.1 200 OK", 200, "status: down\n", 50));
        assert_eq!(outcome.state, State::Critical);
        assert_eq!(
            outcome.summary,
            "HTTP CRITICAL: HTTP/1.1 200 OK - string 'all good' not found on \
             'http://h:8080/health', pattern not found - 50 bytes in 0.004 second response time"
        );
        let outcome =
            evaluate(&args, answered("HTTP/1.1 200 OK", 200, "x\nstatus: up\nall good", 50));
        assert_eq!(outcome.state, State::Ok);
        let long = "a string longer than twenty-nine characters";
        let outcome = evaluate(&["-H", "h", "-s", long], answered("HTTP/1.1 200 OK", 200, "", 5));
        assert!(
            outcome.summary.contains("string 'a string longer than twent...' not found"),
            "{}",
            outcome.summary
        );
    }

    #[test]
    fn redirects_take_the_state_of_onredirect() {
        let moved = || answered("HTTP/1.1 302 Found", 302, "", 10);
        assert_eq!(evaluate(&["-H", "h"], moved()).state, State::Ok);
        assert_eq!(evaluate(&["-H", "h", "-f", "warning"], moved()).state, State::Warning);
        assert_eq!(evaluate(&["-H", "h", "-f", "critical"], moved()).state, State::Critical);
        assert_eq!(
            http(&["-H", "h", "-f", "maybe"]).unwrap_err().to_string(),
            r#"builtin:http: -f: "maybe" is not one of ok, warning, critical, follow, sticky, stickyport"#
        );
    }

    #[test]
    fn locations_become_the_next_hop() {
        let check =
            http(&["-H", "www.example.org", "-I", "10.0.0.1", "-p", "8080", "-u", "/a/b"]).unwrap();
        let hop = |location: &str, sticky: bool| check.redirected(location, sticky, false).unwrap();
        let relative = hop("c?x=1", false);
        assert_eq!((relative.path.as_str(), relative.port), ("/a/c?x=1", 8080));
        assert_eq!(relative.address, "10.0.0.1");
        let absolute = hop("/login", false);
        assert_eq!(absolute.url(), "http://www.example.org:8080/login");
        let elsewhere = hop("https://secure.example.org/x", false);
        assert_eq!(elsewhere.url(), "https://secure.example.org:443/x");
        assert_eq!(elsewhere.address, "secure.example.org");
        assert_eq!(elsewhere.tls.as_ref().unwrap().name, "secure.example.org");
        let sticky = hop("http://other.example.org:9000/", true);
        assert_eq!((sticky.address.as_str(), sticky.port), ("10.0.0.1", 9000));
        let sticky_port = check.redirected("http://other.example.org:9000/", true, true).unwrap();
        assert_eq!(sticky_port.port, 8080);
        assert!(check.redirected("http://bad host/", false, false).is_none());
        assert!(check.redirected("/with space", false, false).is_none());
    }

    #[test]
    fn a_cut_body_is_said_in_the_long_output() {
        let check = http(&["-H", "h", "--max-size", "1KB"]).unwrap();
        let Exchange::Answered { mut response, elapsed, timings, first_byte } =
            answered("HTTP/1.1 200 OK", 200, "x", 5000)
        else {
            unreachable!()
        };
        response.truncated = true;
        let outcome = check.evaluate(Exchange::Answered { response, elapsed, timings, first_byte });
        assert_eq!(outcome.state, State::Ok);
        assert_eq!(
            outcome.long_output,
            "The body was cut at 1.0 KiB (--max-size): -s and -r saw only that much."
        );
    }

    #[test]
    fn slow_answers_alert_on_the_time() {
        let state = |args: &[&str]| evaluate(args, answered("HTTP/1.1 200 OK", 200, "", 5)).state;
        assert_eq!(state(&["-H", "h", "-w", "0.001"]), State::Warning);
        assert_eq!(state(&["-H", "h", "-w", "0.001", "-c", "0.002"]), State::Critical);
        assert_eq!(state(&["-H", "h", "-w", "1"]), State::Ok);
        // A 404 that is also slow is not made better by the time.
        let outcome =
            evaluate(&["-H", "h", "-c", "0.001"], answered("HTTP/1.1 404 Not Found", 404, "", 5));
        assert_eq!(outcome.state, State::Critical);
    }

    #[test]
    fn failures_read_like_check_http() {
        let check = http(&["-H", "h", "-p", "8080", "-t", "0.5"]).unwrap();
        let refused = check.evaluate(Exchange::Failed(Failure::Refused {
            address: "127.0.0.1".to_owned(),
            error: "Connection refused".to_owned(),
        }));
        assert_eq!(refused.state, State::Critical);
        assert_eq!(
            refused.summary,
            "connect to address 127.0.0.1 and port 8080: Connection refused"
        );
        assert_eq!(refused.long_output, "HTTP CRITICAL - Unable to open TCP socket");
        let timeout = check.evaluate(Exchange::Failed(Failure::TimedOut));
        assert_eq!(
            (timeout.state, timeout.summary.as_str()),
            (State::Critical, "CRITICAL - Socket timeout after 0.5 seconds")
        );
        let nothing = check.evaluate(Exchange::NoResponse(ReadError::NoData));
        assert_eq!(nothing.summary, "HTTP CRITICAL - No data received from host");
        let garbage = check.evaluate(Exchange::NoResponse(ReadError::Malformed {
            first_line: "SSH-2.0-OpenSSH".to_owned(),
            reason: "invalid HTTP version".to_owned(),
        }));
        assert_eq!(
            garbage.summary,
            "HTTP CRITICAL - Invalid HTTP response received from host on port 8080: SSH-2.0-OpenSSH"
        );
        let setup =
            check.evaluate(Exchange::Failed(Failure::TlsSetup("--ca-file /x: gone".to_owned())));
        assert_eq!(
            (setup.state, setup.summary.as_str()),
            (State::Unknown, "HTTP UNKNOWN - --ca-file /x: gone")
        );
    }

    /// A loopback server that reads a request and answers `reply`, once
    /// per connection; returns its port.
    fn server(reply: &'static str) -> u16 {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request);
                let _ = stream.write_all(reply.as_bytes());
            }
        });
        port
    }

    #[test]
    fn a_loopback_server_answers() {
        let port = server("HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nall good").to_string();
        let outcome = http(&["-I", "127.0.0.1", "-p", &port, "-s", "good"]).unwrap().run();
        assert_eq!(outcome.state, State::Ok, "{}", outcome.summary);
        assert!(
            outcome.summary.starts_with("HTTP OK: HTTP/1.1 200 OK - 46 bytes in "),
            "{}",
            outcome.summary
        );
    }

    #[test]
    fn follow_goes_where_location_points_and_stops_at_loops() {
        let target = server("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nhere");
        let moved: &'static str = Box::leak(
            format!("HTTP/1.1 301 Moved\r\nLocation: http://127.0.0.1:{target}/x\r\n\r\n")
                .into_boxed_str(),
        );
        let port = server(moved).to_string();
        let outcome =
            http(&["-I", "127.0.0.1", "-p", &port, "-f", "follow", "-s", "here"]).unwrap().run();
        assert_eq!(outcome.state, State::Ok, "{}", outcome.summary);
        assert!(outcome.summary.starts_with("HTTP OK: HTTP/1.1 200 OK - "), "{}", outcome.summary);
        let looping = server("HTTP/1.1 302 Found\r\nLocation: /\r\n\r\n").to_string();
        let outcome = http(&["-I", "127.0.0.1", "-p", &looping, "-f", "follow"]).unwrap().run();
        assert_eq!(outcome.state, State::Warning);
        assert_eq!(
            outcome.summary,
            format!(
                "HTTP WARNING - redirection creates an infinite loop - http://127.0.0.1:{looping}/"
            )
        );
        let nowhere = server("HTTP/1.1 302 Found\r\n\r\n").to_string();
        let outcome = http(&["-I", "127.0.0.1", "-p", &nowhere, "-f", "follow"]).unwrap().run();
        assert_eq!(outcome.state, State::Unknown);
    }

    #[test]
    fn a_server_that_never_answers_times_out() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port().to_string();
        let outcome = http(&["-I", "127.0.0.1", "-p", &port, "-t", "0.3"]).unwrap().run();
        assert_eq!(outcome.state, State::Critical);
        assert_eq!(outcome.summary, "CRITICAL - Socket timeout after 0.3 seconds");
        drop(listener);
    }
}
