//! From TOML text to a validated [`Config`]: reading the main file and its
//! includes, applying defaults, and checking everything a person can get
//! wrong, with the place of each mistake.
//!
//! The order of work: parse each file with spans; deserialize `[agent]` and
//! every `[[check]]` and `[[action]]` on its own (see `raw`); then build the
//! actions, then the checks (which refer to actions by name). Each step goes
//! on after an error, so one run reports as many problems as it can; an
//! entry that could not be built is left out of the later cross-checks
//! rather than reported again.

mod push;
mod push_kind;

use std::collections::HashMap;
use std::ops::Range;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use monchero_core::State;
use monchero_core::builtin::BuiltinCheck;
use monchero_core::command::{CommandLine, CommandLineError};
use monchero_core::plugin_path::{DEFAULT_PLUGIN_PATH, find_plugin};

use super::ownership;
use monchero_core::tracker::{FlapThresholds, TrackerConfig};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::duration::HumanDuration;
use super::error::{Diagnostics, SourceFile, closest};
use super::raw::{
    Parsed, RawAction, RawAgent, RawCheck, RawMetrics, RawNrpe, RawNrpeCommand, RawPull, RawPush,
    Section, deserialize_table,
};
use super::{
    ActionConfig, ActionKind, ActionTrigger, AgentConfig, CheckCommand, CheckConfig, CollectConfig,
    CollectWhen, Config, ConfigErrors, ConfigSource, MetricsConfig, NrpeConfig, PullConfig, nrpe,
    paths, pull,
};

mod notifier;

/// What errors call the embedded default config.
const EMBEDDED: &str = "<embedded>";

const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
const MAX_DEFAULT_RETRY_INTERVAL: Duration = Duration::from_secs(15);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_ACTION_TIMEOUT: Duration = Duration::from_secs(30);
/// A collect's output kept unless it sets `max_output`: a `ps` sorted by
/// CPU or fifty log lines, not a whole log.
const DEFAULT_COLLECT_OUTPUT: usize = 16 * 1024;
/// The most a collect may keep: its output is kept with the check's state,
/// rewritten with the state file and sent with every problem event.
const MAX_COLLECT_OUTPUT: usize = 1024 * 1024;
/// What a collect's `on` may list: it runs when a check turns non-OK.
const COLLECT_TRIGGERS: [ActionTrigger; 3] =
    [ActionTrigger::Warning, ActionTrigger::Critical, ActionTrigger::Unknown];
const DEFAULT_MAX_CONCURRENT: usize = 64;
const DEFAULT_MAX_CHECK_SPREAD: Duration = Duration::from_secs(10);

/// The config in `text`, read from `file`.
pub(super) fn parse_file(text: &str, file: &Path) -> Result<Config, ConfigErrors> {
    let dir = file.parent().unwrap_or(Path::new("")).to_owned();
    let loader = Loader::new(file.display().to_string(), text, dir, Some(file));
    loader.run(ConfigSource::File(file.to_owned()))
}

/// The embedded default config; its relative paths, if any, start from the
/// current directory.
pub(super) fn parse_embedded(text: &str) -> Result<Config, ConfigErrors> {
    Loader::new(EMBEDDED.to_owned(), text, PathBuf::new(), None).run(ConfigSource::Embedded)
}

/// The state of one load: the files read so far (the main one first) and
/// what was found wrong in them.
#[derive(Debug)]
struct Loader {
    files: Vec<SourceFile>,
    diags: Diagnostics,
    /// The main file's directory: where include patterns and relative paths
    /// start.
    dir: PathBuf,
    /// The main file, so an include pattern that matches it skips it.
    main: Option<PathBuf>,
    /// The agent runs as root: files others could change are refused
    /// (`ownership.rs`).
    strict: bool,
}

/// One `[[check]]` or `[[action]]` table, deserialized, and where it is.
#[derive(Debug)]
struct Entry<T> {
    file: usize,
    /// The table's header (`[[check]]`), where "missing key" errors point.
    span: Range<usize>,
    /// How messages name the table: `[[check]] "disk"`, or `this [[check]]`.
    label: String,
    /// Its `name` if that is a string, even when the rest is broken.
    name: Option<String>,
    /// Where that name is written.
    name_at: Option<usize>,
    parsed: Parsed<T>,
}

impl<T> Entry<T> {
    /// Whether `key` was present but invalid, and so already reported.
    fn was_removed(&self, key: &str) -> bool {
        self.parsed.removed.iter().any(|removed| removed == key)
    }
}

/// The tables of all files, in reading order.
#[derive(Debug, Default)]
struct Tables {
    agent: Option<RawAgent>,
    checks: Vec<Entry<RawCheck>>,
    actions: Vec<Entry<RawAction>>,
    /// `[pull]`, where its header is, and its keys already reported.
    pull: Option<(RawPull, usize, Vec<String>)>,
    /// `[metrics]`, where its header is, and its keys already reported.
    metrics: Option<(RawMetrics, usize, Vec<String>)>,
    pushes: Vec<Entry<RawPush>>,
    /// `[nrpe]` and its `[[nrpe.command]]` entries.
    nrpe: Option<nrpe::RawNrpeTables>,
}

/// `[agent]`'s defaults for every check.
#[derive(Debug)]
struct CheckDefaults {
    interval: Option<Duration>,
    retry_interval: Option<Duration>,
    timeout: Duration,
    attempts: u32,
    recovery_attempts: u32,
    timeout_state: State,
    flap_detection: bool,
    flap: FlapThresholds,
}

impl Loader {
    fn new(name: String, text: &str, dir: PathBuf, main: Option<&Path>) -> Loader {
        Loader {
            files: vec![SourceFile { name, text: text.to_owned() }],
            diags: Diagnostics::default(),
            dir,
            main: main.map(|path| path.canonicalize().unwrap_or_else(|_| path.to_owned())),
            strict: rustix::process::geteuid().is_root(),
        }
    }

    fn error(&mut self, file: usize, offset: usize, message: String) {
        self.diags.error(&self.files, file, offset, message);
    }

    fn warning(&mut self, file: usize, offset: usize, message: String) {
        self.diags.warning(&self.files, file, offset, message);
    }

    fn run(mut self, source: ConfigSource) -> Result<Config, ConfigErrors> {
        let mut tables = Tables::default();
        if !read_tables(&self.files, &mut self.diags, 0, &mut tables) {
            // Without a document there is no include list to follow, and a
            // half-recovered document would only add confusing errors.
            return Err(ConfigErrors(self.diags.finish().0));
        }
        if let ConfigSource::File(path) = &source {
            self.refuse_untrusted(0, 0, path);
        }
        let raw_agent = tables.agent.take().unwrap_or_default();
        let (agent, defaults) = self.agent(&raw_agent);
        if let Some(patterns) = &raw_agent.include {
            self.include(patterns, &mut tables);
        }
        let actions = self.actions(&tables.actions);
        let checks = self.checks(&tables.checks, &tables.actions, &agent, &defaults);
        if tables.checks.is_empty() {
            let message = "the config defines no checks, so the agent has nothing to run; \
                           add a [[check]]";
            self.warning(0, 0, message.to_owned());
        }
        self.unused_actions(&tables);
        let (pull, metrics) = self.listeners(&tables);
        let push = self.pushes(&tables.pushes, &agent);
        let nrpe = self.nrpe(&tables, &checks);

        let (errors, warnings) = self.diags.finish();
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        Ok(Config { source, agent, checks, actions, pull, metrics, push, nrpe, warnings })
    }

    /// `[pull]` and `[metrics]`, which only the main file can have.
    fn listeners(&mut self, tables: &Tables) -> (Option<PullConfig>, Option<MetricsConfig>) {
        let dir = self.dir.clone();
        let (files, diags) = (&self.files, &mut self.diags);
        let mut report = |at: usize, message: String| diags.error(files, 0, at, message);
        let pull = tables
            .pull
            .as_ref()
            .and_then(|(raw, at, removed)| pull::build_pull(raw, *at, removed, &dir, &mut report));
        let metrics = tables
            .metrics
            .as_ref()
            .and_then(|(raw, at, removed)| pull::build_metrics(raw, *at, removed, &mut report));
        (pull, metrics)
    }

    /// `[nrpe]`, which only the main file can have.
    fn nrpe(&mut self, tables: &Tables, checks: &[CheckConfig]) -> Option<NrpeConfig> {
        let dir = self.dir.clone();
        let names: Vec<&str> = checks.iter().map(|check| check.name.as_str()).collect();
        let (files, diags) = (&self.files, &mut self.diags);
        let mut report = |at: usize, message: String| diags.error(files, 0, at, message);
        nrpe::build_nrpe(tables.nrpe.as_ref()?, &dir, &names, &mut report)
    }

    /// `[agent]`: the agent's settings and the defaults for checks.
    fn agent(&mut self, raw: &RawAgent) -> (AgentConfig, CheckDefaults) {
        let hostname = match &raw.hostname {
            Some(name) if name.get_ref().trim().is_empty() => {
                let message = format!(
                    "hostname must not be empty; remove it to use the system's host name ({})",
                    system_hostname()
                );
                self.error(0, name.span().start, message);
                system_hostname()
            }
            Some(name) => name.get_ref().clone(),
            None => system_hostname(),
        };
        let state_dir = match &raw.state_dir {
            Some(dir) if dir.get_ref().is_empty() => {
                let message = format!(
                    "state_dir must not be empty; remove it to use {}",
                    paths::default_state_dir().display()
                );
                self.error(0, dir.span().start, message);
                paths::default_state_dir()
            }
            Some(dir) => self.absolute(dir.get_ref()),
            None => paths::default_state_dir(),
        };
        let socket = match &raw.socket {
            Some(path) if path.get_ref().is_empty() => {
                let message = format!(
                    "socket must not be empty; remove it to use {}",
                    paths::default_socket(&state_dir).display()
                );
                self.error(0, path.span().start, message);
                paths::default_socket(&state_dir)
            }
            Some(path) => self.absolute(path.get_ref()),
            None => paths::default_socket(&state_dir),
        };
        let plugin_path = match &raw.plugin_path {
            Some(dirs) => {
                for dir in dirs.iter().filter(|dir| dir.get_ref().is_empty()) {
                    let message = "plugin_path has an empty directory; remove the \"\"";
                    self.error(0, dir.span().start, message.to_owned());
                }
                dirs.iter()
                    .filter(|dir| !dir.get_ref().is_empty())
                    .map(|dir| self.absolute(dir.get_ref()))
                    .collect()
            }
            None => DEFAULT_PLUGIN_PATH.iter().map(PathBuf::from).collect(),
        };
        let max_concurrent = match &raw.max_concurrent {
            Some(max) if *max.get_ref() == 0 => {
                let message = "max_concurrent must be 1 or more: it is how many checks may \
                               run at the same time";
                self.error(0, max.span().start, message.to_owned());
                DEFAULT_MAX_CONCURRENT
            }
            Some(max) => *max.get_ref(),
            None => DEFAULT_MAX_CONCURRENT,
        };
        let timeout_state = self.state(0, raw.timeout_state.as_ref()).unwrap_or(State::Unknown);
        let defaults = CheckDefaults {
            interval: duration(&raw.interval),
            retry_interval: duration(&raw.retry_interval),
            timeout: duration(&raw.timeout).unwrap_or(DEFAULT_TIMEOUT),
            attempts: self.attempts(0, raw.attempts.as_ref()).unwrap_or(3),
            recovery_attempts: self
                .recovery_attempts(0, raw.recovery_attempts.as_ref())
                .unwrap_or(1),
            timeout_state,
            flap_detection: raw.flap_detection.unwrap_or(true),
            flap: self.flap_thresholds(raw),
        };
        let max_check_spread = duration(&raw.max_check_spread).unwrap_or(DEFAULT_MAX_CHECK_SPREAD);
        let agent = AgentConfig {
            hostname,
            state_dir,
            socket,
            max_concurrent,
            max_check_spread,
            plugin_path,
            timeout_state,
        };
        (agent, defaults)
    }

    /// `flap_low` and `flap_high`: percentages, low below high.
    fn flap_thresholds(&mut self, raw: &RawAgent) -> FlapThresholds {
        let defaults = FlapThresholds::default();
        let mut percentage = |value: &Option<Spanned<f64>>, key: &str, default: f64| match value {
            Some(value) if !(0.0..=100.0).contains(value.get_ref()) => {
                let message =
                    format!("{key} must be a percentage from 0 to 100, not {}", value.get_ref());
                self.error(0, value.span().start, message);
                None
            }
            Some(value) => Some(*value.get_ref()),
            None => Some(default),
        };
        let low = percentage(&raw.flap_low, "flap_low", defaults.low);
        let high = percentage(&raw.flap_high, "flap_high", defaults.high);
        let (Some(low), Some(high)) = (low, high) else { return defaults };
        if low >= high {
            // Point at whichever the user wrote; flap_low when both.
            let at = raw.flap_low.as_ref().or(raw.flap_high.as_ref()).map_or(0, |v| v.span().start);
            let message = format!(
                "flap_low ({low}) must be lower than flap_high ({high}): a check starts \
                 flapping at flap_high percent of state changes and stops at flap_low"
            );
            self.error(0, at, message);
            return defaults;
        }
        FlapThresholds { low, high }
    }

    fn attempts(&mut self, file: usize, value: Option<&Spanned<u32>>) -> Option<u32> {
        let why = "it is how many non-OK results in a row make a problem hard (1 makes it \
                   hard at once)";
        self.at_least_one(file, value, "attempts", why)
    }

    fn recovery_attempts(&mut self, file: usize, value: Option<&Spanned<u32>>) -> Option<u32> {
        let why = "it is how many OK results in a row make a recovery hard (1 makes it \
                   hard at once)";
        self.at_least_one(file, value, "recovery_attempts", why)
    }

    fn at_least_one(
        &mut self,
        file: usize,
        value: Option<&Spanned<u32>>,
        key: &str,
        why: &str,
    ) -> Option<u32> {
        let value = value?;
        if *value.get_ref() == 0 {
            self.error(file, value.span().start, format!("{key} must be 1 or more: {why}"));
            return None;
        }
        Some(*value.get_ref())
    }

    /// A `timeout_state` value.
    fn state(&mut self, file: usize, value: Option<&Spanned<String>>) -> Option<State> {
        let value = value?;
        match value.get_ref().parse() {
            Ok(state) => Some(state),
            Err(_) => {
                let message = format!(
                    "timeout_state {:?} is not a state; use \"ok\", \"warning\", \"critical\" \
                     or \"unknown\"",
                    value.get_ref()
                );
                self.error(file, value.span().start, message);
                None
            }
        }
    }

    /// A path from the config, relative to the config file's directory.
    fn absolute(&self, path: &str) -> PathBuf {
        let path = self.dir.join(path);
        std::path::absolute(&path).unwrap_or(path)
    }

    /// Reads the files the include patterns match, in sorted order, each
    /// once, never the main file itself.
    fn include(&mut self, patterns: &[Spanned<String>], tables: &mut Tables) {
        let mut seen: Vec<PathBuf> = self.main.iter().cloned().collect();
        for pattern in patterns {
            let at = pattern.span().start;
            for path in self.expand(pattern.get_ref(), at) {
                let canonical = path.canonicalize().unwrap_or_else(|_| path.clone());
                if seen.contains(&canonical) {
                    continue;
                }
                seen.push(canonical);
                match std::fs::read_to_string(&path) {
                    Ok(text) => {
                        self.refuse_untrusted(0, at, &path);
                        let name = path.display().to_string();
                        self.files.push(SourceFile { name, text });
                        let file = self.files.len() - 1;
                        read_tables(&self.files, &mut self.diags, file, tables);
                    }
                    Err(error) => {
                        let message =
                            format!("cannot read included file {}: {error}", path.display());
                        self.error(0, at, message);
                    }
                }
            }
        }
    }

    /// The files `pattern` matches, sorted.
    fn expand(&mut self, pattern: &str, at: usize) -> Vec<PathBuf> {
        if pattern.trim().is_empty() {
            let message = "include pattern is empty; write e.g. \"conf.d/*.toml\"";
            self.error(0, at, message.to_owned());
            return Vec::new();
        }
        // Checked alone first so the error's position is in the user's text,
        // not in the directory prefixed to it.
        if let Err(error) = glob::Pattern::new(pattern) {
            let message = format!(
                "include pattern {pattern:?} is not a valid glob: {} at character {}; \
                 write e.g. \"conf.d/*.toml\"",
                error.msg,
                error.pos + 1
            );
            self.error(0, at, message);
            return Vec::new();
        }
        let full = if Path::new(pattern).is_absolute() || self.dir.as_os_str().is_empty() {
            pattern.to_owned()
        } else {
            let dir = glob::Pattern::escape(&self.dir.to_string_lossy());
            format!("{}/{pattern}", dir.trim_end_matches('/'))
        };
        // Like a shell: `*` does not match editors' hidden lock and backup
        // files.
        let options =
            glob::MatchOptions { require_literal_leading_dot: true, ..Default::default() };
        let Ok(found) = glob::glob_with(&full, options) else {
            let message = format!("include pattern {pattern:?} is not a valid glob");
            self.error(0, at, message);
            return Vec::new();
        };
        let mut paths = Vec::new();
        for path in found {
            match path {
                Ok(path) if path.is_file() => paths.push(path),
                Ok(_) => {}
                Err(error) => {
                    let message = format!(
                        "cannot read {} to expand include pattern {pattern:?}: {}",
                        error.path().display(),
                        error.error()
                    );
                    self.error(0, at, message);
                }
            }
        }
        if paths.is_empty() && !pattern.contains(['*', '?', '[']) {
            let message = format!(
                "included file {full} does not exist; create it, or remove {pattern:?} from \
                 include"
            );
            self.error(0, at, message);
        }
        paths.sort();
        paths
    }

    fn actions(&mut self, entries: &[Entry<RawAction>]) -> Vec<ActionConfig> {
        let actions: Vec<ActionConfig> =
            entries.iter().filter_map(|entry| self.action(entry)).collect();
        self.duplicates(entries, "action");
        actions
    }

    fn action(&mut self, entry: &Entry<RawAction>) -> Option<ActionConfig> {
        let raw = entry.parsed.value.as_ref()?;
        let name = self.name(entry, raw.name.as_ref(), "action");
        let what = match &name {
            Some(name) => format!("action {name:?}"),
            None => "this action".to_owned(),
        };
        let kind = self.action_kind(entry, raw, &what);
        let collect = raw.kind.as_ref().is_some_and(|kind| kind.get_ref() == "collect");
        let on = match &raw.on {
            Some(list) => {
                if list.get_ref().is_empty() {
                    let message = format!(
                        "{what} has on = [], so it never runs; list the changes it should run \
                         on, e.g. on = [\"critical\", \"recovery\"]"
                    );
                    self.warning(entry.file, list.span().start, message);
                }
                let mut on = Vec::new();
                for trigger in list.get_ref() {
                    match ActionTrigger::from_name(trigger.get_ref()) {
                        Some(parsed) if collect && !COLLECT_TRIGGERS.contains(&parsed) => {
                            let message = format!(
                                "{what} is a collect, which runs when a check turns non-OK; \
                                 on takes only \"warning\", \"critical\" and \"unknown\", \
                                 not {:?}",
                                trigger.get_ref()
                            );
                            self.error(entry.file, trigger.span().start, message);
                        }
                        Some(parsed) if on.contains(&parsed) => {}
                        Some(parsed) => on.push(parsed),
                        None => {
                            let message = trigger_message(trigger.get_ref());
                            self.error(entry.file, trigger.span().start, message);
                        }
                    }
                }
                on
            }
            None if collect => COLLECT_TRIGGERS.to_vec(),
            None => ActionTrigger::ALL.to_vec(),
        };
        let timeout = duration(&raw.timeout).unwrap_or(DEFAULT_ACTION_TIMEOUT);
        let recheck = raw.recheck.as_ref().is_some_and(|recheck| *recheck.get_ref());
        let (delay, repeat) = (duration(&raw.delay), duration(&raw.repeat));
        let rate_limit = raw.rate_limit.as_ref().map(|text| self.rate_limit(entry.file, text));
        let retry = self.retry_policy(entry.file, raw);
        let kind = kind?;
        let rate_limit = match rate_limit {
            Some(parsed) => Some(parsed?),
            None if kind.is_notifier() => Some(notifier::DEFAULT_RATE_LIMIT),
            None => None,
        };
        Some(ActionConfig {
            name: name?,
            kind,
            on,
            timeout,
            recheck,
            delay,
            repeat,
            rate_limit,
            retry,
        })
    }

    /// The action's `kind` and the keys of that kind; keys of other kinds
    /// are errors.
    fn action_kind(
        &mut self,
        entry: &Entry<RawAction>,
        raw: &RawAction,
        what: &str,
    ) -> Option<ActionKind> {
        let kind = match &raw.kind {
            Some(kind) => match notifier::Kind::from_name(kind.get_ref()) {
                Some(parsed) => parsed,
                None => {
                    let names = notifier::Kind::NAMES;
                    let message = match closest(kind.get_ref(), &names) {
                        Some(close) => format!(
                            "kind {:?} is not an action kind: did you mean {close:?}?",
                            kind.get_ref()
                        ),
                        None => format!(
                            "kind {:?} is not an action kind; use \"command\", \"webhook\", \
                             \"email\" or \"collect\"",
                            kind.get_ref()
                        ),
                    };
                    self.error(entry.file, kind.span().start, message);
                    return None;
                }
            },
            None if raw.command.is_none() && raw.url.is_some() => {
                let message = format!(
                    "{what} has a url but no kind; add kind = \"webhook\" (or a command to run)"
                );
                self.error(entry.file, entry.span.start, message);
                return None;
            }
            None if raw.command.is_none() && raw.to.is_some() => {
                let message = format!(
                    "{what} has recipients (to) but no kind; add kind = \"email\" (or a \
                     command to run)"
                );
                self.error(entry.file, entry.span.start, message);
                return None;
            }
            None => notifier::Kind::Command,
        };
        let mut misplaced = false;
        for (key, at) in notifier::present_keys(raw) {
            if !kind.accepts(key) {
                let message = format!(
                    "{key} is not a setting of {} action; remove it{}",
                    kind.with_article(),
                    kind.hint(key)
                );
                self.error(entry.file, at, message);
                misplaced = true;
            }
        }
        let built = match kind {
            notifier::Kind::Command => {
                self.command_action(entry, raw, what).map(ActionKind::Command)
            }
            notifier::Kind::Webhook => self.webhook(entry, raw).map(ActionKind::Webhook),
            notifier::Kind::Email => self.email(entry, raw).map(ActionKind::Email),
            notifier::Kind::Collect => self.collect_action(entry, raw, what),
        };
        if misplaced { None } else { built }
    }

    /// A collect action's command, `when` and `max_output`.
    fn collect_action(
        &mut self,
        entry: &Entry<RawAction>,
        raw: &RawAction,
        what: &str,
    ) -> Option<ActionKind> {
        let command = self.command_action(entry, raw, what);
        let when = match &raw.when {
            None => Some(CollectWhen::Soft),
            Some(when) => match when.get_ref().as_str() {
                "soft" => Some(CollectWhen::Soft),
                "hard" => Some(CollectWhen::Hard),
                other => {
                    let message = format!(
                        "when = {other:?} is not a moment to collect at; use \"soft\" (at the \
                         first non-OK result) or \"hard\" (at the hard change)"
                    );
                    self.error(entry.file, when.span().start, message);
                    None
                }
            },
        };
        let max_output = match &raw.max_output {
            None => Some(DEFAULT_COLLECT_OUTPUT),
            Some(size) => match usize::try_from(size.get_ref().0) {
                Ok(bytes) if bytes <= MAX_COLLECT_OUTPUT => Some(bytes),
                _ => {
                    let message = format!(
                        "max_output must be at most 1MiB ({} bytes given): the output is kept \
                         with the check's state until it recovers",
                        size.get_ref().0
                    );
                    self.error(entry.file, size.span().start, message);
                    None
                }
            },
        };
        Some(ActionKind::Collect(CollectConfig {
            command: command?,
            when: when?,
            max_output: max_output?,
        }))
    }

    /// A command action's command line.
    fn command_action(
        &mut self,
        entry: &Entry<RawAction>,
        raw: &RawAction,
        what: &str,
    ) -> Option<CommandLine> {
        match &raw.command {
            Some(command) if command.get_ref().trim_start().starts_with("builtin:") => {
                let message = "an action's command cannot be a builtin: check; give the program \
                               or script to run";
                self.error(entry.file, command.span().start, message.to_owned());
                None
            }
            Some(command) => {
                let shell = raw.shell.as_ref().is_some_and(|shell| *shell.get_ref());
                let line = self.command_line(entry.file, command, shell, Owner::Action);
                if let Some(line) = &line {
                    let at = command.span().start;
                    self.warn_if_missing(entry.file, at, line, &[], Owner::Action, what);
                    self.refuse_untrusted_program(entry.file, at, line);
                }
                line
            }
            None => {
                self.missing(entry, "command", Owner::Action.example());
                None
            }
        }
    }

    fn checks(
        &mut self,
        entries: &[Entry<RawCheck>],
        actions: &[Entry<RawAction>],
        agent: &AgentConfig,
        defaults: &CheckDefaults,
    ) -> Vec<CheckConfig> {
        let checks =
            entries.iter().filter_map(|entry| self.check(entry, agent, defaults)).collect();
        self.duplicates(entries, "check");
        // An action whose table is broken still counts as defined: its own
        // error is reported, and every check using it need not be.
        let defined: Vec<&str> = actions.iter().filter_map(|a| a.name.as_deref()).collect();
        for entry in entries {
            let Some(raw) = &entry.parsed.value else { continue };
            for action in raw.actions.iter().flatten() {
                let action_name = action.get_ref();
                if defined.contains(&action_name.as_str()) {
                    continue;
                }
                let check = entry
                    .name
                    .as_deref()
                    .map_or("this check".to_owned(), |n| format!("check {n:?}"));
                let message = match closest(action_name, &defined) {
                    Some(close) => format!(
                        "{check} uses action {action_name:?}, which is not defined: did you mean \
                         {close:?}?"
                    ),
                    None => format!(
                        "{check} uses action {action_name:?}, which is not defined; define it \
                         in an [[action]] with name = {action_name:?}"
                    ),
                };
                self.error(entry.file, action.span().start, message);
            }
        }
        checks
    }

    fn check(
        &mut self,
        entry: &Entry<RawCheck>,
        agent: &AgentConfig,
        defaults: &CheckDefaults,
    ) -> Option<CheckConfig> {
        let raw = entry.parsed.value.as_ref()?;
        let name = self.name(entry, raw.name.as_ref(), "check");
        let what = match &name {
            Some(name) => format!("check {name:?}"),
            None => "this check".to_owned(),
        };
        let command = match &raw.command {
            Some(command) => self.check_command(entry.file, command, raw, agent, &what),
            None => {
                self.missing(entry, "command", "command = \"builtin:disk\"");
                None
            }
        };
        let interval = duration(&raw.interval).or(defaults.interval).unwrap_or(DEFAULT_INTERVAL);
        let retry_interval = duration(&raw.retry_interval)
            .or(defaults.retry_interval)
            .unwrap_or(interval.min(MAX_DEFAULT_RETRY_INTERVAL));
        let attempts = self.attempts(entry.file, raw.attempts.as_ref());
        let recovery_attempts = self.recovery_attempts(entry.file, raw.recovery_attempts.as_ref());
        let tracker = TrackerConfig {
            attempts: attempts.unwrap_or(defaults.attempts),
            recovery_attempts: recovery_attempts.unwrap_or(defaults.recovery_attempts),
            flap: raw.flap_detection.unwrap_or(defaults.flap_detection).then_some(defaults.flap),
        };
        let timeout_state = self.state(entry.file, raw.timeout_state.as_ref());
        let mut actions: Vec<String> = Vec::new();
        for action in raw.actions.iter().flatten() {
            if !actions.contains(action.get_ref()) {
                actions.push(action.get_ref().clone());
            }
        }
        let env = self.env(entry.file, raw);
        Some(CheckConfig {
            name: name?,
            command: command?,
            interval,
            retry_interval,
            timeout: duration(&raw.timeout).unwrap_or(defaults.timeout),
            tracker,
            timeout_state: timeout_state.unwrap_or(defaults.timeout_state),
            actions,
            env,
        })
    }

    /// A check's command: a built-in, or a plugin resolved on plugin_path.
    fn check_command(
        &mut self,
        file: usize,
        command: &Spanned<String>,
        raw: &RawCheck,
        agent: &AgentConfig,
        what: &str,
    ) -> Option<CheckCommand> {
        let at = command.span().start;
        let shell = raw.shell.unwrap_or(false);
        if !command.get_ref().trim_start().starts_with("builtin:") {
            let mut line = self.command_line(file, command, shell, Owner::Check)?;
            line.resolve_plugin(&agent.plugin_path);
            self.warn_if_missing(file, at, &line, &agent.plugin_path, Owner::Check, what);
            self.refuse_untrusted_program(file, at, &line);
            return Some(CheckCommand::Plugin(line));
        }
        if shell {
            let message =
                "builtin: checks run inside the agent, not in a shell; remove shell = true";
            self.error(file, at, message.to_owned());
            return None;
        }
        let CommandLine::Exec { program, args } =
            self.command_line(file, command, false, Owner::Check)?
        else {
            return None;
        };
        let name = program.strip_prefix("builtin:").unwrap_or(&program);
        if name == "agent" {
            if !args.is_empty() {
                let message = "builtin:agent takes no arguments; remove them";
                self.error(file, at, message.to_owned());
                return None;
            }
            return Some(CheckCommand::AgentSelf);
        }
        match BuiltinCheck::from_args(name, &args) {
            Ok(check) => Some(CheckCommand::Builtin(check)),
            Err(error) => {
                self.error(file, at, error.to_string());
                None
            }
        }
    }

    /// `command` split with shell quoting, or as a `/bin/sh -c` script.
    fn command_line(
        &mut self,
        file: usize,
        command: &Spanned<String>,
        shell: bool,
        owner: Owner,
    ) -> Option<CommandLine> {
        let text = command.get_ref();
        let parsed = if shell { CommandLine::shell(text) } else { CommandLine::parse(text) };
        parsed
            .map_err(|error| {
                let message = match error {
                    CommandLineError::Empty => format!(
                        "command has nothing to run; write the program and its arguments, e.g. \
                         {}",
                        owner.example()
                    ),
                    CommandLineError::BadQuoting(_) => "command has an unterminated quote or \
                        a trailing backslash; close the quote, or put a backslash before a quote \
                        meant literally"
                        .to_owned(),
                    other => format!("command cannot be run: {other}"),
                };
                self.error(file, command.span().start, message);
            })
            .ok()
    }

    /// An error at `at` when the agent runs as root and `path` could be
    /// changed by another user.
    fn refuse_untrusted(&mut self, file: usize, at: usize, path: &Path) {
        if self.strict
            && let Some(why) = ownership::untrusted(path)
        {
            self.error(file, at, why);
        }
    }

    /// [`refuse_untrusted`](Self::refuse_untrusted) for the program a
    /// command runs, when it names a file (a bare name not found is
    /// reported as missing).
    fn refuse_untrusted_program(&mut self, file: usize, at: usize, line: &CommandLine) {
        if let CommandLine::Exec { program, .. } = line
            && Path::new(program).is_absolute()
        {
            self.refuse_untrusted(file, at, Path::new(program));
        }
    }

    /// A warning when the program of `line` is not installed: the agent runs
    /// anyway, and the check says UNKNOWN until it is.
    fn warn_if_missing(
        &mut self,
        file: usize,
        at: usize,
        line: &CommandLine,
        plugin_path: &[PathBuf],
        owner: Owner,
        what: &str,
    ) {
        let CommandLine::Exec { program, .. } = line else { return };
        let (noun, consequence) = (owner.program(), owner.consequence());
        let message = if !program.contains('/') {
            if find_plugin(program, &path_dirs()).is_some() {
                return;
            }
            let looked = if plugin_path.is_empty() {
                "on PATH".to_owned()
            } else {
                let dirs: Vec<_> =
                    plugin_path.iter().map(|dir| dir.display().to_string()).collect();
                format!("in plugin_path ({}) nor on PATH", dirs.join(", "))
            };
            format!(
                "{noun} {program:?} is not {looked}; {what} {consequence} until it is installed"
            )
        } else if Path::new(program).is_absolute() && !is_executable(Path::new(program)) {
            format!(
                "{noun} {program:?} does not exist or is not executable; {what} {consequence} until \
                 it is"
            )
        } else {
            return;
        };
        self.warning(file, at, message);
    }

    /// A check's `env`, with names and values the OS can take.
    fn env(&mut self, file: usize, raw: &RawCheck) -> Vec<(String, String)> {
        let mut env = Vec::new();
        for (key, value) in raw.env.iter().flat_map(|env| &env.0) {
            let (key_text, value_text) = (key.get_ref(), value.get_ref());
            if key_text.is_empty() || key_text.contains(['=', '\0']) {
                let message = format!(
                    "env variable name {key_text:?} is not usable; a name must not be empty or \
                     contain \"=\" or a NUL character"
                );
                self.error(file, key.span().start, message);
            } else if value_text.contains('\0') {
                let message = format!("env variable {key_text} must not contain a NUL character");
                self.error(file, value.span().start, message);
            } else {
                env.push((key_text.clone(), value_text.clone()));
            }
        }
        env
    }

    /// The `name` of a check or action: present, not empty, printable.
    fn name<T>(
        &mut self,
        entry: &Entry<T>,
        name: Option<&Spanned<String>>,
        kind: &str,
    ) -> Option<String> {
        let Some(name) = name else {
            if !entry.was_removed("name") {
                let message = format!(
                    "this [[{kind}]] has no name; add name = \"...\" with a name no other {kind} \
                     has"
                );
                self.error(entry.file, entry.span.start, message);
            }
            return None;
        };
        let text = name.get_ref();
        if text.trim().is_empty() || text.chars().any(char::is_control) {
            let message = format!(
                "{kind} name {text:?} is not usable; a name must have visible characters and no \
                 control characters"
            );
            self.error(entry.file, name.span().start, message);
            return None;
        }
        Some(text.clone())
    }

    /// "Missing key" for a required key, unless it was there and invalid.
    fn missing<T>(&mut self, entry: &Entry<T>, key: &str, example: &str) {
        if entry.was_removed(key) {
            return;
        }
        let message = format!("{} has no {key}; add e.g. {example}", entry.label);
        self.error(entry.file, entry.span.start, message);
    }

    /// A name used twice: the second one is the error, and says where the
    /// first one is.
    fn duplicates<T>(&mut self, entries: &[Entry<T>], kind: &str) {
        let mut first: HashMap<&str, (usize, usize)> = HashMap::new();
        for entry in entries {
            let Some(name) = &entry.name else { continue };
            let Some(&(file, offset)) = first.get(name.as_str()) else {
                first.insert(name, (entry.file, entry.span.start));
                continue;
            };
            let line = self.files[file].line_of(offset);
            let place = if file == entry.file {
                format!("line {line}")
            } else {
                format!("{}:{line}", self.files[file].name)
            };
            let message = format!(
                "{kind} name {name:?} is already used by the [[{kind}]] at {place}; give each \
                 {kind} a unique name"
            );
            let at = name_offset(entry);
            self.error(entry.file, at, message);
        }
    }

    /// Warnings for actions no check refers to: usually a typo elsewhere.
    fn unused_actions(&mut self, tables: &Tables) {
        let used: Vec<&str> = tables
            .checks
            .iter()
            .filter_map(|entry| entry.parsed.value.as_ref())
            .flat_map(|raw| raw.actions.iter().flatten())
            .map(|action| action.get_ref().as_str())
            .collect();
        for entry in &tables.actions {
            let Some(name) = &entry.name else { continue };
            if !used.contains(&name.as_str()) {
                let message = format!(
                    "action {name:?} is not used by any check; add it to the actions of the \
                     checks it is for, or remove it"
                );
                let at = name_offset(entry);
                self.warning(entry.file, at, message);
            }
        }
    }
}

/// Where an entry's `name` value is, or its header when it has none.
fn name_offset<T>(entry: &Entry<T>) -> usize {
    entry.name_at.unwrap_or(entry.span.start)
}

/// Whose command a message is about: the words differ.
#[derive(Debug, Clone, Copy)]
enum Owner {
    Check,
    Action,
}

impl Owner {
    /// An example of a command.
    fn example(self) -> &'static str {
        match self {
            Owner::Check => "command = \"check_http -H localhost\"",
            Owner::Action => "command = \"/usr/local/bin/notify-admin\"",
        }
    }

    /// What the program is called.
    fn program(self) -> &'static str {
        match self {
            Owner::Check => "plugin",
            Owner::Action => "program",
        }
    }

    /// What happens while the program is missing.
    fn consequence(self) -> &'static str {
        match self {
            Owner::Check => "reports UNKNOWN",
            Owner::Action => "fails",
        }
    }
}

fn trigger_message(trigger: &str) -> String {
    let names: Vec<&str> = ActionTrigger::ALL.iter().map(|t| t.as_str()).collect();
    match closest(trigger, &names) {
        Some(close) => format!("{trigger:?} is not an action trigger: did you mean {close:?}?"),
        None => format!(
            "{trigger:?} is not an action trigger; on takes \"warning\", \"critical\", \
             \"unknown\", \"recovery\" and \"flapping\""
        ),
    }
}

fn duration(value: &Option<Spanned<HumanDuration>>) -> Option<Duration> {
    value.as_ref().map(|value| value.get_ref().0)
}

pub(super) fn system_hostname() -> String {
    rustix::system::uname().nodename().to_string_lossy().into_owned()
}

/// The directories of `PATH`, as the runner will search them.
fn path_dirs() -> Vec<PathBuf> {
    std::env::var_os("PATH").map(|path| std::env::split_paths(&path).collect()).unwrap_or_default()
}

fn is_executable(path: &Path) -> bool {
    path.metadata().is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// Parses file `file` and adds its tables to `tables`; false when its TOML
/// syntax is broken (the syntax errors are reported).
fn read_tables(
    files: &[SourceFile],
    diags: &mut Diagnostics,
    file: usize,
    tables: &mut Tables,
) -> bool {
    let text = &files[file].text;
    let (root, syntax_errors) = DeTable::parse_recoverable(text);
    if !syntax_errors.is_empty() {
        for error in syntax_errors {
            let span = error.span().unwrap_or(0..0);
            diags.error(files, file, span.start, syntax_message(error.message(), text, span));
        }
        return false;
    }
    let mut report = |at: usize, message: String| diags.error(files, file, at, message);
    for (key, value) in root.into_inner() {
        let key_at = key.span().start;
        let value_span = value.span();
        match (key.get_ref().as_ref(), value.into_inner()) {
            ("agent", DeValue::Table(table)) if file == 0 => {
                let parsed: Parsed<RawAgent> =
                    deserialize_table(table, value_span, Section::Agent, "[agent]", &mut report);
                tables.agent = parsed.value;
            }
            ("agent", _) if file == 0 => {
                let message = "agent must be a table: write [agent] on a line of its own, and \
                               its settings below it";
                report(value_span.start, message.to_owned());
            }
            ("agent", _) => {
                let message = format!(
                    "[agent] is not allowed in an included file; move these settings to the \
                     [agent] table of {}",
                    files[0].name
                );
                report(value_span.start, message);
            }
            ("pull", DeValue::Table(table)) if file == 0 => {
                let parsed: Parsed<RawPull> = deserialize_table(
                    table,
                    value_span.clone(),
                    Section::Pull,
                    "[pull]",
                    &mut report,
                );
                tables.pull = parsed.value.map(|raw| (raw, value_span.start, parsed.removed));
            }
            ("metrics", DeValue::Table(table)) if file == 0 => {
                let parsed: Parsed<RawMetrics> = deserialize_table(
                    table,
                    value_span.clone(),
                    Section::Metrics,
                    "[metrics]",
                    &mut report,
                );
                tables.metrics = parsed.value.map(|raw| (raw, value_span.start, parsed.removed));
            }
            ("nrpe", DeValue::Table(mut table)) if file == 0 => {
                // Each [[nrpe.command]] is read on its own, so a mistake in
                // one is reported at its key, not as the whole array.
                let commands = table.remove("command");
                let parsed: Parsed<RawNrpe> = deserialize_table(
                    table,
                    value_span.clone(),
                    Section::Nrpe,
                    "[nrpe]",
                    &mut report,
                );
                let commands = nrpe_commands(commands, &mut report);
                tables.nrpe = parsed.value.map(|raw| nrpe::RawNrpeTables {
                    raw,
                    header: value_span.start,
                    removed: parsed.removed,
                    commands,
                });
            }
            (table @ ("pull" | "metrics" | "nrpe"), _) => {
                let message = if file == 0 {
                    format!("{table} must be a table: write [{table}] on a line of its own")
                } else {
                    format!(
                        "[{table}] is not allowed in an included file; move it to {}",
                        files[0].name
                    )
                };
                report(value_span.start, message);
            }
            ("check", DeValue::Array(items)) => {
                for item in items.iter() {
                    if let Some(entry) = entry(file, item, Section::Check, &mut report) {
                        tables.checks.push(entry);
                    }
                }
            }
            ("action", DeValue::Array(items)) => {
                for item in items.iter() {
                    if let Some(entry) = entry(file, item, Section::Action, &mut report) {
                        tables.actions.push(entry);
                    }
                }
            }
            ("push", DeValue::Array(items)) => {
                for item in items.iter() {
                    if let Some(entry) = entry(file, item, Section::Push, &mut report) {
                        tables.pushes.push(entry);
                    }
                }
            }
            (kind @ ("check" | "action" | "push"), _) => {
                let message = format!(
                    "{kind} must be written [[{kind}]], with double brackets: each {kind} is one \
                     entry of a list"
                );
                report(value_span.start, message);
            }
            (other, _) => report(key_at, top_level_message(other, file, &files[0].name)),
        }
    }
    true
}

/// The `[[nrpe.command]]` entries, each deserialized on its own, with
/// where its header is and its keys already reported.
fn nrpe_commands(
    commands: Option<Spanned<DeValue<'_>>>,
    report: &mut dyn FnMut(usize, String),
) -> Vec<(RawNrpeCommand, usize, Vec<String>)> {
    let Some(commands) = commands else { return Vec::new() };
    let DeValue::Array(items) = commands.get_ref() else {
        let message = "command in [nrpe] must be written [[nrpe.command]], with double \
                       brackets: each command is one entry of a list";
        report(commands.span().start, message.to_owned());
        return Vec::new();
    };
    let mut entries = Vec::with_capacity(items.len());
    for item in items.iter() {
        let DeValue::Table(table) = item.get_ref() else {
            let message = "each nrpe command must be a table: write [[nrpe.command]] and its \
                           keys below it";
            report(item.span().start, message.to_owned());
            continue;
        };
        let name = table.get("name").and_then(|name| name.get_ref().as_str());
        let label = match name {
            Some(name) => format!("[[nrpe.command]] {name:?}"),
            None => "this [[nrpe.command]]".to_owned(),
        };
        let parsed: Parsed<RawNrpeCommand> =
            deserialize_table(table.clone(), item.span(), Section::NrpeCommand, &label, report);
        if let Some(raw) = parsed.value {
            entries.push((raw, item.span().start, parsed.removed));
        }
    }
    entries
}

/// One `[[check]]` or `[[action]]` item, deserialized on its own.
fn entry<T: for<'i> serde::Deserialize<'i>>(
    file: usize,
    item: &Spanned<DeValue<'_>>,
    section: Section,
    report: &mut dyn FnMut(usize, String),
) -> Option<Entry<T>> {
    let kind = match section {
        Section::Check => "check",
        Section::Push => "push",
        _ => "action",
    };
    let DeValue::Table(table) = item.get_ref() else {
        let message =
            format!("each {kind} must be a table: write [[{kind}]] and its keys below it");
        report(item.span().start, message);
        return None;
    };
    let name_value = table.get("name").filter(|name| name.get_ref().is_str());
    let name = name_value.and_then(|name| name.get_ref().as_str()).map(str::to_owned);
    let name_at = name_value.map(|name| name.span().start);
    let label = match &name {
        Some(name) => format!("[[{kind}]] {name:?}"),
        None => format!("this [[{kind}]]"),
    };
    let parsed = deserialize_table(table.clone(), item.span(), section, &label, report);
    Some(Entry { file, span: item.span(), label, name, name_at, parsed })
}

/// A top-level key other than agent, check and action.
fn top_level_message(key: &str, file: usize, main: &str) -> String {
    let unknown = format!("unknown key {key:?} at the top level");
    if Section::Agent.keys().contains(&key) {
        if file == 0 {
            format!("{unknown}; {key:?} belongs in [agent]; move it below the [agent] header")
        } else {
            format!(
                "{unknown}; {key:?} is an [agent] setting, which only the main config ({main}) \
                 can have"
            )
        }
    } else if Section::Check.keys().contains(&key) || Section::Action.keys().contains(&key) {
        format!(
            "{unknown}; {key:?} belongs in a [[check]] or an [[action]]; is the header missing \
             above it?"
        )
    } else if let Some(close) =
        closest(key, &["agent", "check", "action", "pull", "metrics", "push", "nrpe"])
    {
        format!("{unknown}: did you mean {close:?}?")
    } else {
        format!(
            "{unknown}; a config has only [agent], [[check]], [[action]], [pull], [metrics], \
             [[push]] and [nrpe] tables"
        )
    }
}

/// The TOML parser's message, made specific where it can be.
fn syntax_message(message: &str, text: &str, span: Range<usize>) -> String {
    let message = message.replace('\n', "; ");
    if message == "duplicate key" {
        if let Some(key) = text.get(span) {
            return format!(
                "duplicate key {:?}: it is already defined above in the same table; keep only one",
                key.trim_matches(['"', '\''])
            );
        }
    }
    format!("TOML syntax error: {message}")
}
