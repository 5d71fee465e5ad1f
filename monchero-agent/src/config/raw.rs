//! The config's tables as written: serde structs that reject unknown keys,
//! every value kept with its place in the file.
//!
//! Each table (`[agent]`, one `[[check]]`, one `[[action]]`) is deserialized
//! on its own, and a key that fails is reported, taken out and the table
//! tried again, so one run reports every bad key instead of the first.
//! Everything is optional here: required keys and value ranges are checked
//! in `build`, where the message can name the check it is about.

use std::ops::Range;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use toml::Spanned;
use toml::de::{DeArray, DeTable, DeValue, ValueDeserializer};

use super::duration::HumanDuration;
use super::error::closest;
use super::size::ByteSize;

type Duration = Option<Spanned<HumanDuration>>;
type Strings = Option<Vec<Spanned<String>>>;

/// `[agent]`: the agent's own settings and the defaults of every check.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAgent {
    pub hostname: Option<Spanned<String>>,
    pub state_dir: Option<Spanned<String>>,
    pub socket: Option<Spanned<String>>,
    pub interval: Duration,
    pub retry_interval: Duration,
    pub timeout: Duration,
    pub attempts: Option<Spanned<u32>>,
    pub recovery_attempts: Option<Spanned<u32>>,
    pub timeout_state: Option<Spanned<String>>,
    pub flap_detection: Option<bool>,
    pub flap_low: Option<Spanned<f64>>,
    pub flap_high: Option<Spanned<f64>>,
    pub plugin_path: Strings,
    pub include: Strings,
    pub max_concurrent: Option<Spanned<usize>>,
    pub max_check_spread: Duration,
}

/// One `[[check]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCheck {
    pub name: Option<Spanned<String>>,
    pub command: Option<Spanned<String>>,
    pub shell: Option<bool>,
    pub interval: Duration,
    pub retry_interval: Duration,
    pub attempts: Option<Spanned<u32>>,
    pub recovery_attempts: Option<Spanned<u32>>,
    pub timeout: Duration,
    pub timeout_state: Option<Spanned<String>>,
    pub flap_detection: Option<bool>,
    pub actions: Strings,
    pub env: Option<Env>,
}

/// One `[[action]]`: the keys of every kind; `build` rejects those that do
/// not belong to the action's kind.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAction {
    pub name: Option<Spanned<String>>,
    pub kind: Option<Spanned<String>>,
    pub command: Option<Spanned<String>>,
    pub shell: Option<Spanned<bool>>,
    pub on: Option<Spanned<Vec<Spanned<String>>>>,
    pub timeout: Duration,
    pub recheck: Option<Spanned<bool>>,
    pub delay: Duration,
    pub repeat: Duration,
    pub rate_limit: Option<Spanned<String>>,
    pub retry_base: Duration,
    pub retry_max: Duration,
    pub retry_for: Duration,
    pub url: Option<Spanned<String>>,
    pub method: Option<Spanned<String>>,
    pub headers: Option<Spanned<Env>>,
    pub body: Option<Spanned<String>>,
    pub ca_file: Option<Spanned<String>>,
    pub to: Option<Spanned<Vec<Spanned<String>>>>,
    pub from: Option<Spanned<String>>,
    pub subject: Option<Spanned<String>>,
    pub smtp: Option<Spanned<String>>,
    pub starttls: Option<Spanned<String>>,
    pub username: Option<Spanned<String>>,
    pub password_file: Option<Spanned<String>>,
    pub sendmail: Option<Spanned<String>>,
    pub when: Option<Spanned<String>>,
    pub max_output: Option<Spanned<ByteSize>>,
}

/// One `[[push]]`: a server the agent sends results and changes to.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPush {
    pub name: Option<Spanned<String>>,
    pub url: Option<Spanned<String>>,
    pub agent: Option<Spanned<String>>,
    pub ca_file: Option<Spanned<String>>,
    pub cert_file: Option<Spanned<String>>,
    pub key_file: Option<Spanned<String>>,
    pub token_file: Option<Spanned<String>>,
    pub interval: Duration,
    pub heartbeat: Duration,
    pub timeout: Duration,
    pub batch_max: Option<Spanned<usize>>,
    pub spool_max: Option<Spanned<ByteSize>>,
    pub kind: Option<Spanned<String>>,
    pub host: Option<Spanned<String>>,
    pub create_objects: Option<Spanned<bool>>,
    pub username: Option<Spanned<String>>,
    pub password_file: Option<Spanned<String>>,
    pub headers: Option<Spanned<std::collections::BTreeMap<String, String>>>,
}

/// `[pull]`: the mTLS API listener.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPull {
    pub listen: Option<Spanned<Listen>>,
    pub ca_file: Option<Spanned<String>>,
    pub cert_file: Option<Spanned<String>>,
    pub key_file: Option<Spanned<String>>,
    pub crl_file: Option<Spanned<String>>,
    pub cert_dir: Option<Spanned<String>>,
    pub crl_refresh: Duration,
    pub allow: Strings,
    pub run_allowed: Strings,
    pub max_connections: Option<Spanned<usize>>,
}

/// `[metrics]`: `/metrics` over plain HTTP for a local Prometheus.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMetrics {
    pub listen: Option<Spanned<Listen>>,
    pub allow_remote: Option<bool>,
}

/// `[nrpe]`: the listener `check_nrpe` polls, without its
/// `[[nrpe.command]]` entries (each read on its own, as [`RawNrpeCommand`]).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNrpe {
    pub listen: Option<Spanned<Listen>>,
    pub allowed_hosts: Strings,
    pub tls: Option<Spanned<bool>>,
    pub cert: Option<Spanned<String>>,
    pub key: Option<Spanned<String>>,
    pub client_ca: Option<Spanned<String>>,
    pub allow_arguments: Option<bool>,
    pub command_timeout: Duration,
    pub connection_timeout: Duration,
    pub max_connections: Option<Spanned<usize>>,
}

/// One `[[nrpe.command]]`: a command `check_nrpe -c NAME` runs on demand.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNrpeCommand {
    pub name: Option<Spanned<String>>,
    pub command: Option<Spanned<String>>,
    pub timeout: Duration,
}

/// A `listen` value: one address, or an array of them.
#[derive(Debug)]
pub(super) enum Listen {
    One(String),
    Many(Vec<Spanned<String>>),
}

impl<'de> Deserialize<'de> for Listen {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ListenVisitor;
        impl<'de> Visitor<'de> for ListenVisitor {
            type Value = Listen;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(r#"an address like "127.0.0.1:9443", or an array of them"#)
            }
            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Listen, E> {
                Ok(Listen::One(value.to_owned()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Listen, A::Error> {
                let mut addresses = Vec::new();
                while let Some(address) = seq.next_element()? {
                    addresses.push(address);
                }
                Ok(Listen::Many(addresses))
            }
        }
        deserializer.deserialize_any(ListenVisitor)
    }
}

/// A table of strings in the order the parser yields it: a check's `env`,
/// a webhook's `headers`.
#[derive(Debug)]
pub(super) struct Env(pub Vec<(Spanned<String>, Spanned<String>)>);

impl<'de> Deserialize<'de> for Env {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EnvVisitor;
        impl<'de> Visitor<'de> for EnvVisitor {
            type Value = Env;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(r#"a table of strings like { LANG = "C" }"#)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Env, A::Error> {
                let mut vars = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    vars.push(entry);
                }
                Ok(Env(vars))
            }
        }
        deserializer.deserialize_map(EnvVisitor)
    }
}

/// Which table a key is in: decides the allowed keys and the hint for a key
/// written in the wrong table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Section {
    Agent,
    Check,
    Action,
    Pull,
    Metrics,
    Push,
    Nrpe,
    NrpeCommand,
}

impl Section {
    /// The keys serde accepts for the section, for suggestions; a test keeps
    /// them in step with the structs.
    pub fn keys(self) -> &'static [&'static str] {
        match self {
            Section::Agent => &[
                "hostname",
                "state_dir",
                "socket",
                "interval",
                "retry_interval",
                "timeout",
                "attempts",
                "recovery_attempts",
                "timeout_state",
                "flap_detection",
                "flap_low",
                "flap_high",
                "plugin_path",
                "include",
                "max_concurrent",
                "max_check_spread",
            ],
            Section::Check => &[
                "name",
                "command",
                "shell",
                "interval",
                "retry_interval",
                "attempts",
                "recovery_attempts",
                "timeout",
                "timeout_state",
                "flap_detection",
                "actions",
                "env",
            ],
            Section::Action => &[
                "name",
                "kind",
                "command",
                "shell",
                "on",
                "timeout",
                "recheck",
                "delay",
                "repeat",
                "rate_limit",
                "retry_base",
                "retry_max",
                "retry_for",
                "url",
                "method",
                "headers",
                "body",
                "ca_file",
                "to",
                "from",
                "subject",
                "smtp",
                "starttls",
                "username",
                "password_file",
                "sendmail",
                "when",
                "max_output",
            ],
            Section::Pull => &[
                "listen",
                "ca_file",
                "cert_file",
                "key_file",
                "crl_file",
                "cert_dir",
                "crl_refresh",
                "allow",
                "run_allowed",
                "max_connections",
            ],
            Section::Metrics => &["listen", "allow_remote"],
            Section::Nrpe => &[
                "listen",
                "allowed_hosts",
                "tls",
                "cert",
                "key",
                "client_ca",
                "allow_arguments",
                "command_timeout",
                "connection_timeout",
                "max_connections",
            ],
            Section::NrpeCommand => &["name", "command", "timeout"],
            Section::Push => &[
                "name",
                "url",
                "agent",
                "ca_file",
                "cert_file",
                "key_file",
                "token_file",
                "interval",
                "heartbeat",
                "timeout",
                "batch_max",
                "spool_max",
                "kind",
                "host",
                "create_objects",
                "username",
                "password_file",
                "headers",
            ],
        }
    }

    /// Why a key that another section accepts is wrong here.
    fn misplaced(self, key: &str) -> Option<String> {
        let in_section = |section: Section| section.keys().contains(&key);
        match self {
            Section::Agent if in_section(Section::Check) || in_section(Section::Action) => {
                Some(format!(
                    "{key:?} is a setting of a [[check]] or an [[action]]: is a [[check]] \
                     header missing above it?"
                ))
            }
            Section::Check if in_section(Section::Agent) => {
                Some(format!("{key:?} can only be set in [agent]"))
            }
            Section::Action if in_section(Section::Check) => {
                Some(format!("{key:?} is a [[check]] setting, not an [[action]] one"))
            }
            _ => None,
        }
    }
}

/// The message for `key`, which `section` does not have; `label` names the
/// table (`[[check]] "disk"`).
pub(super) fn unknown_key(key: &str, section: Section, label: &str) -> String {
    let keys = section.keys();
    if let Some(hint) = section.misplaced(key) {
        format!("unknown key {key:?} in {label}: {hint}")
    } else if let Some(close) = closest(key, keys) {
        format!("unknown key {key:?} in {label}: did you mean {close:?}?")
    } else {
        format!("unknown key {key:?} in {label}; remove it or use one of: {}", keys.join(", "))
    }
}

/// What deserializing one table produced.
#[derive(Debug)]
pub(super) struct Parsed<T> {
    /// The table without its bad keys; `None` only when an error could not
    /// be tied to a key.
    pub value: Option<T>,
    /// The keys that were present but wrong, so a later "missing key" check
    /// does not report them a second time.
    pub removed: Vec<String>,
}

/// Deserializes `table` (spanning `span` in its file) into `T`, calling
/// `report(offset, message)` for each key that is unknown or has a bad value.
pub(super) fn deserialize_table<'i, T: Deserialize<'i>>(
    mut table: DeTable<'i>,
    span: Range<usize>,
    section: Section,
    label: &str,
    report: &mut dyn FnMut(usize, String),
) -> Parsed<T> {
    let mut removed = Vec::new();
    loop {
        let value = Spanned::new(span.clone(), DeValue::Table(table.clone()));
        let error = match T::deserialize(ValueDeserializer::from(value)) {
            Ok(value) => return Parsed { value: Some(value), removed },
            Err(error) => error,
        };
        let at = error.span().map_or(span.start, |span| span.start);
        let culprit =
            table.iter().find(|(key, value)| key.span().contains(&at) || covers(value, at));
        let Some((key, value)) = culprit else {
            report(at, format!("{label}: {}", error.message()));
            return Parsed { value: None, removed };
        };
        let name = key.get_ref().to_string();
        let message = if key.span().contains(&at) {
            unknown_key(&name, section, label)
        } else {
            describe(error.message(), &name, value, at)
        };
        report(at, message);
        // A bad item of an array or value of a table goes alone, so the
        // rest of it is still checked; a bad key or value goes whole.
        let nested = table.get_mut(name.as_str()).is_some_and(|value| remove_item(value, at));
        if !nested {
            table.remove(name.as_str());
            removed.push(name);
        }
    }
}

/// Whether `at` is in `value`. A table made by dotted keys (`env.LANG = "C"`)
/// or a `[check.env]` header spans only its first key, so look inside.
fn covers(value: &Spanned<DeValue<'_>>, at: usize) -> bool {
    value.span().contains(&at)
        || match value.get_ref() {
            DeValue::Table(table) => table.values().any(|value| covers(value, at)),
            DeValue::Array(items) => items.iter().any(|value| covers(value, at)),
            _ => false,
        }
}

/// Removes the item of array or table `value` that holds `at`, if `at` is
/// inside one rather than on `value` itself.
fn remove_item(value: &mut Spanned<DeValue<'_>>, at: usize) -> bool {
    if value.span().start == at {
        return false;
    }
    match value.get_mut() {
        DeValue::Array(items) => {
            let Some(bad) = items.iter().position(|item| covers(item, at)) else { return false };
            let mut kept = DeArray::new();
            for (i, item) in items.iter().enumerate() {
                if i != bad {
                    kept.push(item.clone());
                }
            }
            *items = kept;
            true
        }
        DeValue::Table(entries) => {
            let bad = entries
                .iter()
                .find(|(key, value)| key.span().contains(&at) || covers(value, at))
                .map(|(key, _)| key.get_ref().to_string());
            bad.is_some_and(|key| entries.remove(key.as_str()).is_some())
        }
        _ => false,
    }
}

/// Turns serde's "invalid type: integer `30`, expected a string" into a
/// sentence about the key: "interval must be a duration string like "30s",
/// not 30". Custom messages (from `HumanDuration`) are written to follow the
/// key's name.
fn describe(message: &str, key: &str, value: &Spanned<DeValue<'_>>, at: usize) -> String {
    let subject = if at == value.span().start {
        key.to_owned()
    } else {
        match value.get_ref() {
            DeValue::Array(_) => format!("each item of {key}"),
            _ => format!("each value in {key}"),
        }
    };
    let mismatch =
        message.strip_prefix("invalid type: ").or_else(|| message.strip_prefix("invalid value: "));
    match mismatch.and_then(|rest| rest.rsplit_once(", expected ")) {
        Some((found, expected)) => {
            format!("{subject} must be {}, not {}", expected_phrase(expected), found_phrase(found))
        }
        None => format!("{subject} {message}"),
    }
}

fn expected_phrase(expected: &str) -> &str {
    match expected {
        "a boolean" => "true or false",
        "u32" | "usize" => "a positive whole number",
        "f64" => "a number",
        // Every array in the config is one of strings.
        "a sequence" => "an array of strings",
        other => other,
    }
}

fn found_phrase(found: &str) -> String {
    let literal = ["integer ", "floating point ", "boolean "]
        .iter()
        .find_map(|kind| found.strip_prefix(kind))
        .map(|value| value.trim_matches('`'));
    match (literal, found) {
        (Some(value), _) => value.to_owned(),
        (None, "sequence") => "an array".to_owned(),
        (None, "map") => "a table".to_owned(),
        (None, other) => other.strip_prefix("string ").unwrap_or(other).to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The keys in serde's own "expected one of" list for a section.
    fn serde_keys<'i, T: Deserialize<'i> + std::fmt::Debug>() -> Vec<String> {
        let error = toml::from_str::<T>("zzz_not_a_key = 1").unwrap_err();
        let message = error.message().to_owned();
        // serde writes "expected one of `a`, `b`, `c`", or "expected `a` or
        // `b`" for two keys.
        let list = message.split_once("expected one of ").map(|(_, list)| list.to_owned());
        let list = list.unwrap_or_else(|| {
            message.split_once("expected ").unwrap().1.replacen(" or ", ", ", 1)
        });
        list.split(", ").map(|key| key.trim_matches('`').to_owned()).collect()
    }

    #[test]
    fn section_keys_match_the_structs() {
        assert_eq!(serde_keys::<RawAgent>(), Section::Agent.keys());
        assert_eq!(serde_keys::<RawCheck>(), Section::Check.keys());
        assert_eq!(serde_keys::<RawAction>(), Section::Action.keys());
        assert_eq!(serde_keys::<RawPull>(), Section::Pull.keys());
        assert_eq!(serde_keys::<RawMetrics>(), Section::Metrics.keys());
        assert_eq!(serde_keys::<RawPush>(), Section::Push.keys());
        assert_eq!(serde_keys::<RawNrpe>(), Section::Nrpe.keys());
        assert_eq!(serde_keys::<RawNrpeCommand>(), Section::NrpeCommand.keys());
    }

    #[test]
    fn unknown_keys_get_a_suggestion_a_hint_or_the_list() {
        assert_eq!(
            unknown_key("intervall", Section::Check, r#"[[check]] "disk""#),
            r#"unknown key "intervall" in [[check]] "disk": did you mean "interval"?"#
        );
        assert_eq!(
            unknown_key("flap_low", Section::Check, "[[check]]"),
            r#"unknown key "flap_low" in [[check]]: "flap_low" can only be set in [agent]"#
        );
        assert_eq!(
            unknown_key("command", Section::Agent, "[agent]"),
            r#"unknown key "command" in [agent]: "command" is a setting of a [[check]] or an [[action]]: is a [[check]] header missing above it?"#
        );
        assert_eq!(
            unknown_key("zz", Section::Action, "[[action]]"),
            r#"unknown key "zz" in [[action]]; remove it or use one of: name, kind, command, shell, on, timeout, recheck, delay, repeat, rate_limit, retry_base, retry_max, retry_for, url, method, headers, body, ca_file, to, from, subject, smtp, starttls, username, password_file, sendmail, when, max_output"#
        );
    }

    #[test]
    fn reports_every_bad_key_of_a_table() {
        let text = "[[check]]\nname = 1\nintervall = \"5m\"\ntimeout = 30\nshell = \"yes\"\nactions = [\"a\", 2]\nenv = { A = \"x\", B = false }\n";
        let root = DeTable::parse(text).unwrap().into_inner();
        let entry = root.get("check").unwrap().get_ref().as_array().unwrap()[0].clone();
        let span = entry.span();
        let DeValue::Table(table) = entry.into_inner() else { panic!() };
        let mut found = Vec::new();
        let parsed: Parsed<RawCheck> =
            deserialize_table(table, span, Section::Check, "[[check]]", &mut |at, message| {
                found.push((at, message));
            });
        found.sort();
        let messages: Vec<_> = found.iter().map(|(at, m)| format!("{at}: {m}")).collect();
        assert_eq!(
            messages,
            [
                "17: name must be a string, not 1",
                r#"19: unknown key "intervall" in [[check]]: did you mean "interval"?"#,
                r#"46: timeout must be a duration string like "30s", not 30"#,
                r#"57: shell must be true or false, not "yes""#,
                "79: each item of actions must be a string, not 2",
                "103: each value in env must be a string, not false",
            ]
        );
        assert!(parsed.value.is_some());
        assert_eq!(parsed.removed, ["intervall", "name", "shell", "timeout"]);
    }
}
