//! The keys of `[[push]]` that depend on its `kind`: `host` and
//! `create_objects` (Icinga 2), `headers` (remote write), and HTTP basic
//! auth (`username`, `password_file`) for the kinds whose servers use it.

use super::{Entry, Loader, RawPush};
use crate::config::{PushKind, password_line};
use reqwest::header::{HeaderName, HeaderValue};

/// Headers the remote-write sink sets itself: a second value would make
/// the request ambiguous or break it.
const RESERVED_HEADERS: [&str; 5] = [
    "content-type",
    "content-encoding",
    "content-length",
    "host",
    "x-prometheus-remote-write-version",
];

impl Loader {
    /// `kind` and the keys only one kind has. `agent` is the target's
    /// identity, Icinga's host name unless `host` says otherwise.
    pub(super) fn push_kind(
        &mut self,
        entry: &Entry<RawPush>,
        raw: &RawPush,
        agent: Option<&str>,
    ) -> Option<PushKind> {
        let kind = raw.kind.as_ref().map_or("monchero", |kind| kind.get_ref().as_str());
        let file = entry.file;
        let mut ok = true;
        let mut only = |loader: &mut Loader, key: &str, span: Option<usize>, allowed: &str| {
            if let Some(at) = span {
                let message = format!(
                    "{key} applies to kind = \"{allowed}\" only, and this target is {kind:?}"
                );
                loader.error(file, at, message);
                ok = false;
            }
        };
        if kind != "icinga2" {
            only(self, "host", raw.host.as_ref().map(|v| v.span().start), "icinga2");
            let at = raw.create_objects.as_ref().map(|v| v.span().start);
            only(self, "create_objects", at, "icinga2");
        }
        if kind != "remote_write" {
            only(self, "headers", raw.headers.as_ref().map(|v| v.span().start), "remote_write");
        }
        let kind = match kind {
            "monchero" => {
                if let Some(user) = &raw.username {
                    let message = "username and password_file are for kind = \"icinga2\" and \
                                   \"remote_write\"; the push protocol authenticates with \
                                   token_file or cert_file and key_file";
                    self.error(file, user.span().start, message.to_owned());
                    ok = false;
                }
                PushKind::Monchero
            }
            "icinga2" => {
                if let Some(token) = &raw.token_file {
                    let message = "Icinga 2's API takes no bearer token: authenticate with \
                                   username and password_file (an ApiUser) or cert_file and \
                                   key_file";
                    self.error(file, token.span().start, message.to_owned());
                    ok = false;
                }
                let has_auth = raw.username.is_some() || raw.password_file.is_some();
                let has_cert = raw.cert_file.is_some() || raw.key_file.is_some();
                if !has_auth && !has_cert {
                    let message = format!(
                        "{} (kind = \"icinga2\") needs credentials: username and password_file \
                         of an ApiUser, or cert_file and key_file",
                        entry.label
                    );
                    self.error(file, entry.span.start, message);
                    ok = false;
                }
                let host = match &raw.host {
                    Some(host) if host.get_ref().trim().is_empty() || has_bad(host.get_ref()) => {
                        let message = "host must be the name of an Icinga host object: visible \
                                       characters, no \"!\" and no control characters";
                        self.error(file, host.span().start, message.to_owned());
                        ok = false;
                        None
                    }
                    Some(host) => Some(host.get_ref().clone()),
                    None if agent.is_some_and(has_bad) => {
                        let message = format!(
                            "{} (kind = \"icinga2\") names the Icinga host after the agent, \
                             and that name has a \"!\"; set host = \"...\"",
                            entry.label
                        );
                        self.error(file, entry.span.start, message);
                        ok = false;
                        None
                    }
                    None => agent.map(str::to_owned),
                };
                let create_objects = raw.create_objects.as_ref().is_some_and(|v| *v.get_ref());
                PushKind::Icinga2 { host: host?, create_objects }
            }
            "remote_write" => PushKind::RemoteWrite,
            other => {
                let message = format!(
                    "kind {other:?} is not a push kind; use \"monchero\" (the default), \
                     \"icinga2\" or \"remote_write\""
                );
                let at = raw.kind.as_ref().map_or(entry.span.start, |kind| kind.span().start);
                self.error(file, at, message);
                return None;
            }
        };
        ok.then_some(kind)
    }

    /// `username` and `password_file`: both or neither; the password is
    /// the file's first line.
    pub(super) fn basic_auth(
        &mut self,
        entry: &Entry<RawPush>,
        raw: &RawPush,
    ) -> Option<(String, std::path::PathBuf)> {
        let (user, password) = match (&raw.username, &raw.password_file) {
            (Some(user), Some(password)) => (user, password),
            (None, None) => return None,
            (Some(user), None) => {
                let message = "username needs password_file: the file holding its password";
                self.error(entry.file, user.span().start, message.to_owned());
                return None;
            }
            (None, Some(password)) => {
                let message = "password_file needs username";
                self.error(entry.file, password.span().start, message.to_owned());
                return None;
            }
        };
        if user.get_ref().is_empty() || user.get_ref().contains(':') || has_control(user.get_ref())
        {
            let message = "username must not be empty and may hold no \":\" and no control \
                           characters (HTTP basic auth cannot carry them)";
            self.error(entry.file, user.span().start, message.to_owned());
            return None;
        }
        let (path, bytes) = self.read_named(entry.file, "password_file", password)?;
        if password_line(&bytes).is_none() {
            let message = format!(
                "password_file {} must hold the password on its first line, in UTF-8",
                path.display()
            );
            self.error(entry.file, password.span().start, message);
            return None;
        }
        Some((user.get_ref().clone(), path))
    }

    /// `headers`: names and values HTTP can carry, none the sink sets.
    pub(super) fn push_headers(
        &mut self,
        file: usize,
        raw: &RawPush,
    ) -> Option<Vec<(String, String)>> {
        let Some(headers) = &raw.headers else { return Some(Vec::new()) };
        let at = headers.span().start;
        let mut valid = Vec::new();
        for (name, value) in headers.get_ref() {
            let problem = if HeaderName::from_bytes(name.as_bytes()).is_err() {
                Some(format!("{name:?} is not an HTTP header name"))
            } else if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                Some(format!("{name} is set by the remote-write sink itself"))
            } else if HeaderValue::from_str(value).is_err() {
                Some(format!("the value of {name} is not a valid HTTP header value"))
            } else {
                None
            };
            match problem {
                Some(problem) => self.error(file, at, format!("headers: {problem}")),
                None => valid.push((name.clone(), value.clone())),
            }
        }
        (valid.len() == headers.get_ref().len()).then_some(valid)
    }
}

fn has_control(text: &str) -> bool {
    text.chars().any(char::is_control)
}

/// Icinga names a service `HOST!SERVICE`: a host name with `!` cannot be
/// told apart.
fn has_bad(text: &str) -> bool {
    text.contains('!') || has_control(text)
}
