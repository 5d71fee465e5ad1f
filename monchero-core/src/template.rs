//! Notification templates: text with `{{field}}` placeholders filled from an
//! [`Event`].
//!
//! Deliberately tiny, no loops or conditions: a notifier's body is a
//! message, not a program, and every template is checked when the config is
//! loaded, so a typo in a field name is a config error with its place, not a
//! broken message at 3 a.m.
//!
//! A placeholder is `{{field}}` or `{{field|filter}}`; spaces inside the
//! braces are ignored. Filters: `upper`, `lower` (change case), `json`
//! (escape for the inside of a JSON string) and `raw` (no escaping at all).
//! How a placeholder without `json` or `raw` is escaped is the caller's
//! choice ([`Escape`]): a webhook whose body is JSON escapes every value by
//! default, so a plugin's output with a quote in it cannot break the JSON
//! or inject fields.
//!
//! ```
//! use monchero_core::template::{Escape, Template};
//! # use monchero_core::event::{Event, EventKind};
//! # use monchero_core::State;
//! # use monchero_core::tracker::StateType;
//! # let event = Event {
//! #     kind: EventKind::Problem, check: "web".into(), host: "h1".into(),
//! #     state: State::Critical, previous_state: State::Ok, state_type: StateType::Hard,
//! #     attempt: 3, max_attempts: 3, summary: "HTTP \"503\"".into(),
//! #     long_output: String::new(), perfdata: Vec::new(), percent_state_change: 0.0,
//! #     timestamp: 0, suppressed: 0, collected: Vec::new(),
//! # };
//! let template = Template::parse(r#"{"text": "{{check}} is {{state|upper}}: {{summary}}"}"#)?;
//! assert_eq!(
//!     template.render(&event, Escape::Json),
//!     r#"{"text": "web is CRITICAL: HTTP \"503\""}"#
//! );
//! # Ok::<(), monchero_core::template::TemplateError>(())
//! ```

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::event::Event;
use crate::tracker::StateType;

/// The fields a placeholder can name, in the order the docs list them.
pub const FIELDS: [&str; 15] = [
    "check",
    "host",
    "hostname",
    "state",
    "previous_state",
    "state_type",
    "event",
    "attempt",
    "max_attempts",
    "summary",
    "long_output",
    "timestamp",
    "percent_state_change",
    "suppressed",
    "collected",
];

/// The filters a placeholder can apply.
pub const FILTERS: [&str; 4] = ["upper", "lower", "json", "raw"];

/// How placeholder values are escaped unless a filter says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// Inserted as they are (mail bodies, plain-text webhooks).
    None,
    /// Escaped for the inside of a JSON string (JSON webhook bodies).
    Json,
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Field { field: &'static str, filter: Filter },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Filter {
    None,
    Upper,
    Lower,
    Json,
    Raw,
}

/// Why a template cannot be used, and where in its text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct TemplateError {
    /// Byte offset of the problem in the template's text.
    pub offset: usize,
    /// What is wrong.
    pub kind: TemplateErrorKind,
}

/// What is wrong with a template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateErrorKind {
    /// `{{` without its `}}`.
    #[error("a placeholder opened with {{{{ is not closed with }}}}")]
    Unclosed,
    /// A field name that events do not have.
    #[error("{{{{{0}}}}} is not a field; use one of: {fields}", fields = FIELDS.join(", "))]
    UnknownField(String),
    /// A filter name that does not exist.
    #[error("|{0} is not a filter; use one of: {filters}", filters = FILTERS.join(", "))]
    UnknownFilter(String),
}

impl Template {
    /// Parses `text`, checking every placeholder's field and filter.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = text;
        let mut offset = 0;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            let inner_start = open + 2;
            let Some(close) = rest[inner_start..].find("}}") else {
                return Err(TemplateError {
                    offset: offset + open,
                    kind: TemplateErrorKind::Unclosed,
                });
            };
            let inner = &rest[inner_start..inner_start + close];
            let at = offset + inner_start;
            let (name, filter) = match inner.split_once('|') {
                Some((name, filter)) => (name.trim(), Some(filter.trim())),
                None => (inner.trim(), None),
            };
            let Some(field) = FIELDS.iter().find(|field| **field == name) else {
                let kind = TemplateErrorKind::UnknownField(name.to_owned());
                return Err(TemplateError { offset: at, kind });
            };
            let filter = match filter {
                None => Filter::None,
                Some("upper") => Filter::Upper,
                Some("lower") => Filter::Lower,
                Some("json") => Filter::Json,
                Some("raw") => Filter::Raw,
                Some(other) => {
                    let kind = TemplateErrorKind::UnknownFilter(other.to_owned());
                    return Err(TemplateError { offset: at, kind });
                }
            };
            parts.push(Part::Field { field, filter });
            let consumed = inner_start + close + 2;
            rest = &rest[consumed..];
            offset += consumed;
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Template { parts })
    }

    /// The text with every placeholder replaced by the event's value.
    pub fn render(&self, event: &Event, escape: Escape) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Field { field, filter } => {
                    let value = value(event, field);
                    let value = match filter {
                        Filter::Upper => Cow::Owned(value.to_uppercase()),
                        Filter::Lower => Cow::Owned(value.to_lowercase()),
                        _ => value,
                    };
                    let json = match filter {
                        Filter::Json => true,
                        Filter::Raw => false,
                        _ => escape == Escape::Json,
                    };
                    if json {
                        escape_json(&value, &mut out);
                    } else {
                        out.push_str(&value);
                    }
                }
            }
        }
        out
    }

    /// Whether the template has no placeholders (a fixed text).
    pub fn is_fixed(&self) -> bool {
        self.parts.iter().all(|part| matches!(part, Part::Text(_)))
    }
}

fn value<'e>(event: &'e Event, field: &str) -> Cow<'e, str> {
    match field {
        "check" => Cow::Borrowed(&event.check),
        "host" | "hostname" => Cow::Borrowed(&event.host),
        "state" => Cow::Borrowed(state_name(event.state)),
        "previous_state" => Cow::Borrowed(state_name(event.previous_state)),
        "state_type" => Cow::Borrowed(match event.state_type {
            StateType::Soft => "soft",
            StateType::Hard => "hard",
        }),
        "event" => Cow::Borrowed(event.kind.as_str()),
        "attempt" => Cow::Owned(event.attempt.to_string()),
        "max_attempts" => Cow::Owned(event.max_attempts.to_string()),
        "summary" => Cow::Borrowed(&event.summary),
        "long_output" => Cow::Borrowed(&event.long_output),
        "timestamp" => Cow::Owned(event.timestamp.to_string()),
        "percent_state_change" => Cow::Owned(format!("{:.1}", event.percent_state_change)),
        "suppressed" => Cow::Owned(event.suppressed.to_string()),
        "collected" => Cow::Owned(crate::collected::join(&event.collected)),
        // `parse` admits only the names above.
        _ => Cow::Borrowed(""),
    }
}

/// States in the lower case of Monchero's JSON; `|upper` gives Nagios's.
fn state_name(state: crate::State) -> &'static str {
    match state {
        crate::State::Ok => "ok",
        crate::State::Warning => "warning",
        crate::State::Critical => "critical",
        crate::State::Unknown => "unknown",
    }
}

/// JSON string escaping (RFC 8259 §7), without the surrounding quotes.
fn escape_json(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::State;
    use crate::event::EventKind;

    fn event() -> Event {
        Event {
            kind: EventKind::Recovery,
            check: "disk".into(),
            host: "web1".into(),
            state: State::Ok,
            previous_state: State::Critical,
            state_type: StateType::Hard,
            attempt: 1,
            max_attempts: 3,
            summary: "DISK OK - \"/\" 40% used\\".into(),
            long_output: "line 1\nline\t2\u{1}".into(),
            perfdata: Vec::new(),
            percent_state_change: 12.345,
            timestamp: 1_795_788_000,
            suppressed: 4,
            collected: vec![crate::collected::Collected {
                action: "ps".into(),
                output: "PID \"CMD\"".into(),
                truncated: false,
                exit_code: Some(0),
                ended: "exit status 0".into(),
                at: 1_795_787_990,
                duration_ms: 5,
            }],
        }
    }

    #[test]
    fn fills_every_field() {
        let all: Vec<String> = FIELDS.iter().map(|f| format!("{{{{{f}}}}}")).collect();
        let text = Template::parse(&all.join("|")).unwrap().render(&event(), Escape::None);
        assert_eq!(
            text,
            "disk|web1|web1|ok|critical|hard|recovery|1|3|DISK OK - \"/\" 40% used\\|\
             line 1\nline\t2\u{1}|1795788000|12.3|4|\
             === ps (exit status 0, 5 ms) ===\nPID \"CMD\""
        );
    }

    #[test]
    fn collected_output_is_json_escaped_in_a_json_body() {
        let template = Template::parse(r#"{"text": "{{collected}}"}"#).unwrap();
        let body = template.render(&event(), Escape::Json);
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["text"], "=== ps (exit status 0, 5 ms) ===\nPID \"CMD\"");
    }

    #[test]
    fn json_escaping_keeps_a_json_body_valid_whatever_the_plugin_printed() {
        let template = Template::parse(
            r#"{"s": "{{summary}}", "l": "{{ long_output }}", "r": {{attempt|raw}}}"#,
        )
        .unwrap();
        let body = template.render(&event(), Escape::Json);
        assert_eq!(
            body,
            r#"{"s": "DISK OK - \"/\" 40% used\\", "l": "line 1\nline\t2\u0001", "r": 1}"#
        );
        let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed["s"], event().summary.as_str());
        assert_eq!(parsed["l"], event().long_output.as_str());
    }

    #[test]
    fn filters_change_case_and_choose_the_escaping() {
        let template =
            Template::parse("{{state|upper}} {{ previous_state | upper }} {{check|upper}} {{summary|json}} {{summary|raw}}")
                .unwrap();
        let mut upper = event();
        upper.check = "Web".into();
        assert_eq!(
            template.render(&upper, Escape::None),
            r#"OK CRITICAL WEB DISK OK - \"/\" 40% used\\ DISK OK - "/" 40% used\"#
        );
        let lower = Template::parse("{{check|lower}}").unwrap();
        assert_eq!(lower.render(&upper, Escape::Json), "web");
    }

    #[test]
    fn text_without_placeholders_and_lone_braces_pass_through() {
        let template = Template::parse("{ \"a\": 1 } } {").unwrap();
        assert!(template.is_fixed());
        assert_eq!(template.render(&event(), Escape::Json), "{ \"a\": 1 } } {");
        assert!(!Template::parse("{{check}}").unwrap().is_fixed());
    }

    #[test]
    fn bad_placeholders_are_errors_with_their_place() {
        let error = Template::parse("ok {{chek}}").unwrap_err();
        assert_eq!(error.offset, 5);
        assert_eq!(error.kind, TemplateErrorKind::UnknownField("chek".into()));
        assert!(error.to_string().starts_with("{{chek}} is not a field; use one of: check, host"));
        let error = Template::parse("{{state|shout}}").unwrap_err();
        assert_eq!(
            (error.offset, error.to_string().starts_with("|shout is not a filter")),
            (2, true)
        );
        let error = Template::parse("a {{state").unwrap_err();
        assert_eq!((error.offset, error.kind), (2, TemplateErrorKind::Unclosed));
    }
}
