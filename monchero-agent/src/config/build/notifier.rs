//! Validation of the notifier kinds of `[[action]]` (`webhook`, `email`)
//! and of the keys every notifier shares (rate limit, retries).

use std::path::PathBuf;
use std::time::Duration;

use monchero_core::ratelimit::Rate;
use monchero_core::template::{Escape, Template};
use toml::Spanned;

use super::{Entry, HumanDuration, Loader};
use crate::config::raw::RawAction;
use crate::config::{EmailConfig, MailTransport, RetryPolicy, SmtpConfig, SmtpTls, WebhookConfig};

/// A notifier's rate limit unless it sets one: enough for a bad hour on a
/// small host, far too few to flood an inbox.
pub(super) const DEFAULT_RATE_LIMIT: Rate = Rate { count: 20, per: Duration::from_secs(600) };

const DEFAULT_RETRY: RetryPolicy = RetryPolicy {
    base: Duration::from_secs(10),
    max: Duration::from_secs(600),
    give_up_after: Duration::from_secs(24 * 3600),
};

const DEFAULT_SUBJECT: &str = "[{{host}}] {{check}} is {{state|upper}}";

const DEFAULT_MAIL_BODY: &str = "\
{{check}} on {{host}} is {{state|upper}} (was {{previous_state|upper}}).

{{summary}}
{{long_output}}

Event: {{event}}, attempt {{attempt}}/{{max_attempts}}, at {{timestamp}} (Unix time).
Events not sent since the last mail (rate limit): {{suppressed}}.

{{collected}}
-- 
monchero
";

/// The kinds of action, as the config names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Command,
    Webhook,
    Email,
    Collect,
}

/// Keys every kind accepts.
const COMMON: [&str; 4] = ["name", "kind", "on", "timeout"];
/// Keys of the kinds that act on hard changes; a collect runs once per
/// problem, at its start.
const TIMING: [&str; 2] = ["delay", "repeat"];
const COMMAND_KEYS: [&str; 4] = ["command", "shell", "recheck", "rate_limit"];
const COLLECT_KEYS: [&str; 4] = ["command", "shell", "when", "max_output"];
const NOTIFIER_KEYS: [&str; 4] = ["rate_limit", "retry_base", "retry_max", "retry_for"];
const WEBHOOK_KEYS: [&str; 5] = ["url", "method", "headers", "body", "ca_file"];
const EMAIL_KEYS: [&str; 9] =
    ["to", "from", "subject", "body", "smtp", "starttls", "username", "password_file", "sendmail"];

impl Kind {
    pub const NAMES: [&'static str; 4] = ["command", "webhook", "email", "collect"];
    const ALL: [Kind; 4] = [Kind::Command, Kind::Webhook, Kind::Email, Kind::Collect];

    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| kind.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Command => "command",
            Kind::Webhook => "webhook",
            Kind::Email => "email",
            Kind::Collect => "collect",
        }
    }

    /// "a command", "an email": for messages.
    pub fn with_article(self) -> &'static str {
        match self {
            Kind::Command => "a command",
            Kind::Webhook => "a webhook",
            Kind::Email => "an email",
            Kind::Collect => "a collect",
        }
    }

    /// Whether an action of this kind has `key`.
    pub fn accepts(self, key: &str) -> bool {
        COMMON.contains(&key)
            || match self {
                Kind::Command => TIMING.contains(&key) || COMMAND_KEYS.contains(&key),
                Kind::Webhook => {
                    TIMING.contains(&key)
                        || NOTIFIER_KEYS.contains(&key)
                        || WEBHOOK_KEYS.contains(&key)
                }
                Kind::Email => {
                    TIMING.contains(&key)
                        || NOTIFIER_KEYS.contains(&key)
                        || EMAIL_KEYS.contains(&key)
                }
                Kind::Collect => COLLECT_KEYS.contains(&key),
            }
    }

    /// Where `key`, which this kind does not take, belongs.
    pub fn hint(self, key: &str) -> String {
        if self == Kind::Collect && TIMING.contains(&key) {
            return " (a collect runs once when a check turns non-OK; delay and repeat belong \
                    to the actions that notify)"
                .to_owned();
        }
        let owner = Kind::ALL.into_iter().find(|kind| *kind != self && kind.accepts(key));
        match owner {
            Some(Kind::Command) if self != Kind::Command => {
                format!(" ({key} belongs to kind = \"command\")")
            }
            Some(other) => format!(" ({key} belongs to kind = {:?})", other.name()),
            None => String::new(),
        }
    }
}

/// The keys present in `raw` (other than the common ones) and where their
/// values are.
pub(super) fn present_keys(raw: &RawAction) -> Vec<(&'static str, usize)> {
    fn at<T>(value: &Option<Spanned<T>>) -> Option<usize> {
        value.as_ref().map(|value| value.span().start)
    }
    [
        ("delay", at(&raw.delay)),
        ("repeat", at(&raw.repeat)),
        ("command", at(&raw.command)),
        ("shell", at(&raw.shell)),
        ("recheck", at(&raw.recheck)),
        ("rate_limit", at(&raw.rate_limit)),
        ("retry_base", at(&raw.retry_base)),
        ("retry_max", at(&raw.retry_max)),
        ("retry_for", at(&raw.retry_for)),
        ("url", at(&raw.url)),
        ("method", at(&raw.method)),
        ("headers", at(&raw.headers)),
        ("body", at(&raw.body)),
        ("ca_file", at(&raw.ca_file)),
        ("to", at(&raw.to)),
        ("from", at(&raw.from)),
        ("subject", at(&raw.subject)),
        ("smtp", at(&raw.smtp)),
        ("starttls", at(&raw.starttls)),
        ("username", at(&raw.username)),
        ("password_file", at(&raw.password_file)),
        ("sendmail", at(&raw.sendmail)),
        ("when", at(&raw.when)),
        ("max_output", at(&raw.max_output)),
    ]
    .into_iter()
    .filter_map(|(key, at)| Some((key, at?)))
    .collect()
}

impl Loader {
    /// `rate_limit = "20/10m"`: a count, a slash and a window (`"5/h"`
    /// reads as five per hour).
    pub(super) fn rate_limit(&mut self, file: usize, text: &Spanned<String>) -> Option<Rate> {
        let value = text.get_ref().trim();
        let parsed = value.split_once('/').and_then(|(count, per)| {
            let count: u32 = count.trim().parse().ok().filter(|count| *count > 0)?;
            let per = per.trim();
            let per = humantime::parse_duration(per)
                .or_else(|_| humantime::parse_duration(&format!("1{per}")))
                .ok()
                .filter(|per| !per.is_zero())?;
            Some(Rate { count, per })
        });
        if parsed.is_none() {
            let message = format!(
                "rate_limit {value:?} is not a rate; write a count and a window, e.g. \
                 rate_limit = \"20/10m\" (at most 20 per 10 minutes)"
            );
            self.error(file, text.span().start, message);
        }
        parsed
    }

    /// `retry_base`, `retry_max`, `retry_for`.
    pub(super) fn retry_policy(&mut self, file: usize, raw: &RawAction) -> RetryPolicy {
        let mut positive = |value: &Option<Spanned<HumanDuration>>, key: &str, default| {
            let Some(value) = value else { return default };
            if value.get_ref().0.is_zero() {
                self.error(file, value.span().start, format!("{key} must be longer than 0s"));
                return default;
            }
            value.get_ref().0
        };
        let base = positive(&raw.retry_base, "retry_base", DEFAULT_RETRY.base);
        let max = positive(&raw.retry_max, "retry_max", DEFAULT_RETRY.max.max(base));
        let give_up_after = positive(&raw.retry_for, "retry_for", DEFAULT_RETRY.give_up_after);
        if max < base {
            let at = raw.retry_max.as_ref().map_or(0, |value| value.span().start);
            let message = format!(
                "retry_max ({}) must not be shorter than retry_base ({})",
                humantime::format_duration(max),
                humantime::format_duration(base)
            );
            self.error(file, at, message);
        }
        RetryPolicy { base, max, give_up_after }
    }

    /// A template from the config, its errors pointing into the string.
    fn template(&mut self, file: usize, text: &Spanned<String>, key: &str) -> Option<Template> {
        Template::parse(text.get_ref())
            .map_err(|error| {
                // The span starts at the opening quote; the offset is into
                // the value, which matches for strings without escapes.
                let at = text.span().start + 1 + error.offset;
                self.error(file, at, format!("{key}: {error}"));
            })
            .ok()
    }

    pub(super) fn webhook(
        &mut self,
        entry: &Entry<RawAction>,
        raw: &RawAction,
    ) -> Option<WebhookConfig> {
        let file = entry.file;
        let url = match &raw.url {
            Some(url) => match reqwest::Url::parse(url.get_ref()) {
                Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.has_host() => {
                    Some(url.get_ref().clone())
                }
                Ok(_) => {
                    let message = format!(
                        "url {:?} must start with http:// or https:// and name a host",
                        url.get_ref()
                    );
                    self.error(file, url.span().start, message);
                    None
                }
                Err(error) => {
                    let message = format!("url {:?} is not a URL: {error}", url.get_ref());
                    self.error(file, url.span().start, message);
                    None
                }
            },
            None => {
                self.missing(entry, "url", "url = \"https://hooks.example.org/...\"");
                None
            }
        };
        let method = match &raw.method {
            Some(method) => {
                let upper = method.get_ref().to_ascii_uppercase();
                match reqwest::Method::from_bytes(upper.as_bytes()) {
                    Ok(_) if !upper.is_empty() => Some(upper),
                    _ => {
                        let message = format!(
                            "method {:?} is not an HTTP method; use e.g. \"POST\" or \"PUT\"",
                            method.get_ref()
                        );
                        self.error(file, method.span().start, message);
                        None
                    }
                }
            }
            None => Some("POST".to_owned()),
        };
        let mut headers = Vec::new();
        let mut escape = Escape::Json;
        for (name, value) in raw.headers.iter().flat_map(|headers| &headers.get_ref().0) {
            if reqwest::header::HeaderName::from_bytes(name.get_ref().as_bytes()).is_err() {
                let message = format!(
                    "header name {:?} is not valid; a name is letters, digits and -",
                    name.get_ref()
                );
                self.error(file, name.span().start, message);
                continue;
            }
            let Some(template) = self.template(file, value, "headers") else { continue };
            if name.get_ref().eq_ignore_ascii_case("content-type")
                && !value.get_ref().to_ascii_lowercase().contains("json")
            {
                escape = Escape::None;
            }
            headers.push((name.get_ref().clone(), template));
        }
        let body = match &raw.body {
            Some(body) => Some(self.template(file, body, "body")?),
            None => None,
        };
        let ca_file = raw.ca_file.as_ref().and_then(|path| self.ca_file(file, path));
        Some(WebhookConfig { url: url?, method: method?, headers, body, escape, ca_file })
    }

    /// A PEM file of CA certificates, checked now so a typo is a config
    /// error rather than a failed delivery (or push).
    pub(super) fn ca_file(&mut self, file: usize, path: &Spanned<String>) -> Option<PathBuf> {
        let full = self.absolute(path.get_ref());
        let problem = match std::fs::read(&full) {
            Ok(pem) => match reqwest::Certificate::from_pem_bundle(&pem) {
                Ok(certs) if !certs.is_empty() => return Some(full),
                Ok(_) => "has no PEM certificate (-----BEGIN CERTIFICATE-----)".to_owned(),
                Err(error) => format!("is not a PEM certificate bundle: {error}"),
            },
            Err(error) => format!("cannot be read: {error}"),
        };
        let message = format!("ca_file {} {problem}", full.display());
        self.error(file, path.span().start, message);
        None
    }

    pub(super) fn email(
        &mut self,
        entry: &Entry<RawAction>,
        raw: &RawAction,
    ) -> Option<EmailConfig> {
        let file = entry.file;
        let mailbox = |text: &str| text.parse::<lettre::message::Mailbox>().is_ok();
        let to = match &raw.to {
            Some(list) if list.get_ref().is_empty() => {
                let message = "to = [] has no recipient; add at least one address";
                self.error(file, list.span().start, message.to_owned());
                None
            }
            Some(list) => {
                let mut to = Vec::new();
                for address in list.get_ref() {
                    if mailbox(address.get_ref()) {
                        to.push(address.get_ref().clone());
                    } else {
                        let message = format!(
                            "{:?} is not a mail address; write \"ops@example.org\" or \
                             \"Ops <ops@example.org>\"",
                            address.get_ref()
                        );
                        self.error(file, address.span().start, message);
                    }
                }
                (to.len() == list.get_ref().len()).then_some(to)
            }
            None => {
                self.missing(entry, "to", "to = [\"ops@example.org\"]");
                None
            }
        };
        let from = match &raw.from {
            Some(from) if mailbox(from.get_ref()) => Some(from.get_ref().clone()),
            Some(from) => {
                let message = format!(
                    "from {:?} is not a mail address; write \"monchero@example.org\" or \
                     \"Monchero <monchero@example.org>\"",
                    from.get_ref()
                );
                self.error(file, from.span().start, message);
                None
            }
            None => {
                self.missing(entry, "from", "from = \"monchero@example.org\"");
                None
            }
        };
        let subject = match &raw.subject {
            Some(subject) => self.template(file, subject, "subject"),
            None => Template::parse(DEFAULT_SUBJECT).ok(),
        };
        let body = match &raw.body {
            Some(body) => self.template(file, body, "body"),
            None => Template::parse(DEFAULT_MAIL_BODY).ok(),
        };
        let transport = self.mail_transport(entry, raw);
        Some(EmailConfig {
            to: to?,
            from: from?,
            subject: subject?,
            body: body?,
            transport: transport?,
        })
    }

    fn mail_transport(
        &mut self,
        entry: &Entry<RawAction>,
        raw: &RawAction,
    ) -> Option<MailTransport> {
        let file = entry.file;
        match (&raw.smtp, &raw.sendmail) {
            (Some(_), Some(sendmail)) => {
                let message = "an email action sends through smtp or sendmail, not both; \
                               remove one";
                self.error(file, sendmail.span().start, message.to_owned());
                None
            }
            (None, None) => {
                let message = format!(
                    "{} has neither smtp nor sendmail; add e.g. smtp = \"smtp://localhost:25\" \
                     or sendmail = \"/usr/sbin/sendmail\"",
                    entry.label
                );
                self.error(file, entry.span.start, message);
                None
            }
            (None, Some(sendmail)) => {
                for (key, value) in [("starttls", &raw.starttls), ("username", &raw.username)]
                    .into_iter()
                    .chain([("password_file", &raw.password_file)])
                {
                    if let Some(value) = value {
                        let message = format!("{key} is for smtp; sendmail does not use it");
                        self.error(file, value.span().start, message);
                    }
                }
                if sendmail.get_ref().is_empty() {
                    let message = "sendmail is empty; write e.g. sendmail = \"/usr/sbin/sendmail\"";
                    self.error(file, sendmail.span().start, message.to_owned());
                    return None;
                }
                Some(MailTransport::Sendmail(PathBuf::from(sendmail.get_ref())))
            }
            (Some(smtp), None) => self.smtp(file, smtp, raw).map(MailTransport::Smtp),
        }
    }

    fn smtp(&mut self, file: usize, smtp: &Spanned<String>, raw: &RawAction) -> Option<SmtpConfig> {
        let url = reqwest::Url::parse(smtp.get_ref()).ok();
        let parsed = url.as_ref().and_then(|url| {
            let implicit = match url.scheme() {
                "smtp" => false,
                "smtps" => true,
                _ => return None,
            };
            let host = url.host_str()?.trim_start_matches('[').trim_end_matches(']').to_owned();
            let port = url.port().unwrap_or(if implicit { 465 } else { 25 });
            let plain = url.path().is_empty() || url.path() == "/";
            (plain && url.username().is_empty()).then_some((implicit, host, port))
        });
        let Some((implicit, host, port)) = parsed else {
            let message = format!(
                "smtp {:?} is not an SMTP server URL; write smtp = \"smtp://HOST:PORT\" \
                 (STARTTLS) or \"smtps://HOST:PORT\" (TLS), and the login in username and \
                 password_file",
                smtp.get_ref()
            );
            self.error(file, smtp.span().start, message);
            return None;
        };
        let username = raw.username.as_ref().map(|name| name.get_ref().clone());
        let password_file = raw.password_file.as_ref().map(|path| self.absolute(path.get_ref()));
        match (&raw.username, &raw.password_file) {
            (Some(name), None) => {
                let message = "username needs password_file, the file the password is read from";
                self.error(file, name.span().start, message.to_owned());
            }
            (None, Some(path)) => {
                let message = "password_file needs username, the login it is the password of";
                self.error(file, path.span().start, message.to_owned());
            }
            _ => {}
        }
        let tls = match (&raw.starttls, implicit) {
            (Some(starttls), true) => {
                let message = "starttls is for smtp://; smtps:// is TLS from the start";
                self.error(file, starttls.span().start, message.to_owned());
                SmtpTls::Implicit
            }
            (None, true) => SmtpTls::Implicit,
            (Some(starttls), false) => match starttls.get_ref().as_str() {
                "required" => SmtpTls::Required,
                "opportunistic" => SmtpTls::Opportunistic,
                "never" => SmtpTls::Never,
                other => {
                    let message = format!(
                        "starttls {other:?} is not a choice; use \"required\", \
                         \"opportunistic\" or \"never\""
                    );
                    self.error(file, starttls.span().start, message);
                    return None;
                }
            },
            // A password must not cross the network in plain text.
            (None, false) if username.is_some() => SmtpTls::Required,
            (None, false) => SmtpTls::Opportunistic,
        };
        Some(SmtpConfig { host, port, tls, username, password_file })
    }
}
