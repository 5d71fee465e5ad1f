//! Option parsing shared by the built-in checks: a small getopt, and the
//! value types the checks share (percentages, sizes, free-space limits).
//!
//! The syntax is getopt's, as the monitoring-plugins parse theirs, so their
//! command lines carry over: `-w 20%`, `-w20%`, `--warning 20%`,
//! `--warning=20%`, clustered flags (`-rw5`). Errors are [`BuiltinError`]s
//! that name the check and the option.

use super::{BuiltinError, BuiltinErrorKind};
use crate::threshold::{Range, Thresholds, number_prefix_len, parse_number};

/// One option a check accepts.
#[derive(Debug, Clone, Copy)]
pub(super) struct Spec {
    short: char,
    long: &'static str,
    takes_value: bool,
    /// Only `--long` reaches it; `short` is then a key the check matches
    /// on, never typed (check_tcp's `--sni` has no letter).
    long_only: bool,
}

impl Spec {
    /// An option with a value: `-w 20%`.
    pub(super) const fn value(short: char, long: &'static str) -> Spec {
        Spec { short, long, takes_value: true, long_only: false }
    }

    /// A flag: `-r`.
    pub(super) const fn flag(short: char, long: &'static str) -> Spec {
        Spec { short, long, takes_value: false, long_only: false }
    }

    /// An option with a value and no letter: `--ca-file FILE`. `key` is
    /// what [`Opt::short`] holds for it; messages show `--long`.
    pub(super) const fn long_value(key: char, long: &'static str) -> Spec {
        Spec { short: key, long, takes_value: true, long_only: true }
    }

    /// A flag with no letter: `--sni`.
    pub(super) const fn long_flag(key: char, long: &'static str) -> Spec {
        Spec { short: key, long, takes_value: false, long_only: true }
    }

    /// How messages name it: `-w`, or `--ca-file` when it has no letter.
    fn display(&self) -> String {
        if self.long_only { format!("--{}", self.long) } else { format!("-{}", self.short) }
    }
}

/// One option as found on the command line: its short name, and its value
/// (empty for a flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Opt<'a> {
    pub(super) short: char,
    pub(super) value: &'a str,
}

/// What a check's option parser needs to know to word its errors.
#[derive(Debug, Clone, Copy)]
pub(super) struct Command {
    /// The check's name (`"disk"`).
    pub(super) name: &'static str,
    /// Its synopsis, shown after an unknown option.
    pub(super) usage: &'static str,
    /// The options it accepts.
    pub(super) specs: &'static [Spec],
}

impl Command {
    /// Splits `args` into options, in order.
    pub(super) fn parse<'a>(&self, args: &'a [String]) -> Result<Vec<Opt<'a>>, BuiltinError> {
        let mut opts = Vec::new();
        let mut words = args.iter().map(String::as_str);
        while let Some(word) = words.next() {
            if word == "--" {
                // getopt's end of options; no built-in takes operands.
                return match words.next() {
                    Some(operand) => Err(self.unexpected(operand)),
                    None => Ok(opts),
                };
            }
            if let Some(long) = word.strip_prefix("--") {
                opts.push(self.long_option(long, &mut words)?);
            } else if let Some(cluster) = word.strip_prefix('-').filter(|rest| !rest.is_empty()) {
                self.short_options(cluster, &mut words, &mut opts)?;
            } else {
                return Err(self.unexpected(word));
            }
        }
        Ok(opts)
    }

    fn long_option<'a>(
        &self,
        long: &'a str,
        words: &mut impl Iterator<Item = &'a str>,
    ) -> Result<Opt<'a>, BuiltinError> {
        let (name, inline) = match long.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (long, None),
        };
        let spec = self
            .specs
            .iter()
            .find(|spec| spec.long == name)
            .ok_or_else(|| self.unknown_option(&format!("--{name}")))?;
        match (spec.takes_value, inline) {
            (true, Some(value)) => Ok(Opt { short: spec.short, value }),
            (true, None) => Ok(Opt { short: spec.short, value: self.next_value(spec, words)? }),
            (false, None) => Ok(Opt { short: spec.short, value: "" }),
            (false, Some(_)) => Err(self.error(
                BuiltinErrorKind::BadValue,
                format!("--{name} takes no value (write --{name})"),
            )),
        }
    }

    /// `-r`, `-w20%`, `-w 20%`, `-rw 20%`: flags may be clustered; an option
    /// with a value takes the rest of the word, or the next word.
    fn short_options<'a>(
        &self,
        cluster: &'a str,
        words: &mut impl Iterator<Item = &'a str>,
        opts: &mut Vec<Opt<'a>>,
    ) -> Result<(), BuiltinError> {
        for (at, short) in cluster.char_indices() {
            let spec = self
                .specs
                .iter()
                .find(|spec| spec.short == short && !spec.long_only)
                .ok_or_else(|| self.unknown_option(&format!("-{short}")))?;
            if !spec.takes_value {
                opts.push(Opt { short, value: "" });
                continue;
            }
            let rest = &cluster[at + short.len_utf8()..];
            let value = if rest.is_empty() { self.next_value(spec, words)? } else { rest };
            opts.push(Opt { short, value });
            return Ok(());
        }
        Ok(())
    }

    /// The word after an option that takes a value. A word that looks like
    /// another option (`-c`, not `-5`) means the value was forgotten: saying
    /// so beats reporting `"-c" is not a percentage`.
    fn next_value<'a>(
        &self,
        spec: &Spec,
        words: &mut impl Iterator<Item = &'a str>,
    ) -> Result<&'a str, BuiltinError> {
        let looks_like_option = |word: &str| {
            word.strip_prefix('-')
                .and_then(|rest| rest.chars().next())
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '-')
        };
        match words.next() {
            Some(word) if !looks_like_option(word) => Ok(word),
            _ => Err(self.error(
                BuiltinErrorKind::MissingValue,
                format!("{} needs a value (usage: {})", spec.display(), self.usage),
            )),
        }
    }

    /// Stores an option that may be given once, parsed by `parse`, whose
    /// error text follows the option name: `-w: "20" is not a percentage`.
    pub(super) fn set_once<T>(
        &self,
        slot: &mut Option<T>,
        opt: Opt<'_>,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<(), BuiltinError> {
        if slot.is_some() {
            return Err(self.error(
                BuiltinErrorKind::RepeatedOption,
                format!("{} is given twice", self.option_name(opt.short)),
            ));
        }
        let value = parse(opt.value).map_err(|detail| self.bad_value(opt.short, &detail))?;
        *slot = Some(value);
        Ok(())
    }

    pub(super) fn bad_value(&self, short: char, detail: &str) -> BuiltinError {
        self.error(BuiltinErrorKind::BadValue, format!("{}: {detail}", self.option_name(short)))
    }

    /// `-w`, or `--ca-file` for an option without a letter.
    fn option_name(&self, short: char) -> String {
        match self.specs.iter().find(|spec| spec.short == short) {
            Some(spec) => spec.display(),
            None => format!("-{short}"),
        }
    }

    /// An option the check cannot do without was not given.
    pub(super) fn missing_option(&self, detail: &str) -> BuiltinError {
        self.error(BuiltinErrorKind::MissingOption, format!("{detail} (usage: {})", self.usage))
    }

    pub(super) fn conflict(&self, detail: String) -> BuiltinError {
        self.error(BuiltinErrorKind::ConflictingThresholds, detail)
    }

    fn unknown_option(&self, option: &str) -> BuiltinError {
        self.error(
            BuiltinErrorKind::UnknownOption,
            format!("unknown option {option:?} (usage: {})", self.usage),
        )
    }

    fn unexpected(&self, word: &str) -> BuiltinError {
        self.error(
            BuiltinErrorKind::UnexpectedArgument,
            format!("unexpected argument {word:?} (usage: {})", self.usage),
        )
    }

    fn error(&self, kind: BuiltinErrorKind, message: String) -> BuiltinError {
        BuiltinError::new(self.name, kind, message)
    }
}

/// When neither level of a pair is given, both take their defaults; when
/// one is, the other stays unset (see the module docs for why).
pub(super) fn or_defaults<T>(
    warning: Option<T>,
    critical: Option<T>,
    defaults: impl FnOnce() -> (T, T),
) -> (Option<T>, Option<T>) {
    if warning.is_none() && critical.is_none() {
        let (warning, critical) = defaults();
        (Some(warning), Some(critical))
    } else {
        (warning, critical)
    }
}

/// The `-w`/`-c` used-percentage levels of a check that takes only those
/// (`cpu`, `memory`): parsed, in order, and defaulted as a pair.
pub(super) fn percent_levels(
    command: &Command,
    args: &[String],
    defaults: (f64, f64),
) -> Result<(Option<Percent>, Option<Percent>), BuiltinError> {
    let (mut warning, mut critical) = (None, None);
    for opt in command.parse(args)? {
        match opt.short {
            'w' => command.set_once(&mut warning, opt, Percent::parse)?,
            _ => command.set_once(&mut critical, opt, Percent::parse)?,
        }
    }
    check_percent_order(command, &warning, &critical)?;
    Ok(or_defaults(warning, critical, || (Percent::of(defaults.0), Percent::of(defaults.1))))
}

/// Refuses a warning level above the critical one, for levels that alert
/// *above* them (used percentages).
fn check_percent_order(
    command: &Command,
    warning: &Option<Percent>,
    critical: &Option<Percent>,
) -> Result<(), BuiltinError> {
    match (warning, critical) {
        (Some(warning), Some(critical)) if warning.value > critical.value => {
            Err(command.conflict(format!(
                "-w {}% is above -c {}%: the warning level must be the lower one",
                warning.text, critical.text
            )))
        }
        _ => Ok(()),
    }
}

/// A Nagios threshold range (`10`, `1:`, `@0`), and its text as written,
/// which perfdata carries as it is, as the monitoring-plugins do.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct RangeLevel {
    pub(super) range: Range,
    pub(super) text: String,
}

impl RangeLevel {
    pub(super) fn parse(text: &str) -> Result<RangeLevel, String> {
        Range::parse(text)
            .map(|range| RangeLevel { range, text: text.trim().to_owned() })
            .map_err(|error| format!("{error} (write e.g. 10, 1: or 2:50)"))
    }
}

/// A warning and a critical range level as [`Thresholds`], and their texts
/// for the perfdata.
pub(super) fn range_thresholds(
    warning: &Option<RangeLevel>,
    critical: &Option<RangeLevel>,
) -> (Thresholds, (Option<String>, Option<String>)) {
    let range = |level: &Option<RangeLevel>| level.as_ref().map(|level| level.range);
    let text = |level: &Option<RangeLevel>| level.as_ref().map(|level| level.text.clone());
    (
        Thresholds { warning: range(warning), critical: range(critical) },
        (text(warning), text(critical)),
    )
}

/// A percentage from 0 to 100, and its number as written (without the
/// `%`), for perfdata thresholds "as written".
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Percent {
    pub(super) value: f64,
    pub(super) text: String,
}

impl Percent {
    /// Parses `90%`. The `%` is required: in `check_swap` a bare number is
    /// bytes, and guessing which one was meant would hide the mistake.
    pub(super) fn parse(text: &str) -> Result<Percent, String> {
        let Some(number) = text.strip_suffix('%') else {
            return Err(format!("{text:?} is not a percentage (write {})", percent_hint(text)));
        };
        let Some(value) = parse_number(number) else {
            return Err(format!("{text:?} is not a percentage (write e.g. 20%)"));
        };
        if !(0.0..=100.0).contains(&value) {
            return Err(format!("{text:?} is not between 0% and 100%"));
        }
        Ok(Percent { value, text: number.to_owned() })
    }

    /// A default level, as if written.
    pub(super) fn of(value: f64) -> Percent {
        Percent { value, text: value.to_string() }
    }
}

/// `20%` for a bare `20`, a generic example for anything else.
fn percent_hint(text: &str) -> String {
    match parse_number(text) {
        Some(_) => format!("{text}%"),
        None => "e.g. 20%".to_owned(),
    }
}

/// Size units: all powers of 1024, as in `check_disk`, where `MB` means
/// 1024 × 1024 bytes. Matched without regard to case.
const SIZE_UNITS: &[(&str, u32)] = &[
    ("b", 0),
    ("k", 1),
    ("kb", 1),
    ("kib", 1),
    ("m", 2),
    ("mb", 2),
    ("mib", 2),
    ("g", 3),
    ("gb", 3),
    ("gib", 3),
    ("t", 4),
    ("tb", 4),
    ("tib", 4),
    ("p", 5),
    ("pb", 5),
    ("pib", 5),
];

/// Parses a size with a unit (`500MB`, `1.5GiB`, `4096B`) into bytes.
pub(super) fn parse_size(text: &str) -> Result<u64, String> {
    let (number, unit) = text.split_at(number_prefix_len(text));
    let value =
        parse_number(number).ok_or_else(|| format!("{text:?} is not a size (write e.g. 500MB)"))?;
    if unit.is_empty() {
        return Err(format!("{text:?} has no unit (write {text}MB, or {text}B for bytes)"));
    }
    let exponent = SIZE_UNITS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(unit))
        .map(|&(_, exponent)| exponent)
        .ok_or_else(|| {
            format!(
                "{text:?} has an unknown unit {unit:?} (use B, KB, MB, GB, TB or PB, \
                 powers of 1024)"
            )
        })?;
    if value < 0.0 {
        return Err(format!("{text:?} is negative"));
    }
    let bytes = (value * 1024f64.powi(exponent as i32)).floor();
    if bytes >= u64::MAX as f64 {
        return Err(format!("{text:?} is too large"));
    }
    Ok(bytes as u64)
}

/// A lower limit on free space: a percentage of the total or an amount.
/// Alerts when less is free.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Limit {
    /// Percent of the total (`20%`).
    Percent(f64),
    /// Bytes (`500MB`).
    Bytes(u64),
}

impl Limit {
    /// Parses `20%` or `500MB`.
    pub(super) fn parse(text: &str) -> Result<Limit, String> {
        if text.ends_with('%') {
            return Percent::parse(text).map(|percent| Limit::Percent(percent.value));
        }
        let prefix = number_prefix_len(text);
        if prefix > 0 && prefix < text.len() {
            return parse_size(text).map(Limit::Bytes);
        }
        Err(format!("{text:?} is not a percentage or size (write {} or 500MB)", percent_hint(text)))
    }

    /// Whether `free` out of `total` is below the limit. Nothing can alert
    /// on a percentage of nothing.
    pub(super) fn alerts(self, free: u64, total: u64) -> bool {
        match self {
            Limit::Percent(_) if total == 0 => false,
            Limit::Percent(percent) => super::percent(free, total) < percent,
            Limit::Bytes(bytes) => free < bytes,
        }
    }

    /// The used amount above which the limit alerts: the threshold in a
    /// perfdata item whose value is the used amount, as `check_disk` writes
    /// it (truncated to whole units).
    pub(super) fn used_threshold(self, total: u64) -> u64 {
        match self {
            Limit::Percent(percent) => (total as f64 * (100.0 - percent) / 100.0).floor() as u64,
            Limit::Bytes(bytes) => total.saturating_sub(bytes),
        }
    }

    /// Whether a warning limit `self` lies on the wrong side of a critical
    /// limit: it would demand less free space, so the check would go
    /// critical first. Only comparable when both are of the same kind.
    pub(super) fn below(self, critical: Limit) -> bool {
        match (self, critical) {
            (Limit::Percent(warning), Limit::Percent(critical)) => warning < critical,
            (Limit::Bytes(warning), Limit::Bytes(critical)) => warning < critical,
            _ => false,
        }
    }
}

/// A limit as given on the command line, with its text for error messages.
pub(super) type Written = (Limit, String);

/// A warning and a critical limit, either possibly unset.
pub(super) type LimitPair = (Option<Limit>, Option<Limit>);

/// Checks a pair of free-space limits for [`Limit::below`] and drops their
/// texts; `(w, c)` are the options' letters.
pub(super) fn check_limit_order(
    command: &Command,
    (warning, critical): (Option<Written>, Option<Written>),
    (w, c): (char, char),
) -> Result<LimitPair, BuiltinError> {
    if let (Some((warning, w_text)), Some((critical, c_text))) = (&warning, &critical) {
        if warning.below(*critical) {
            return Err(command.conflict(format!(
                "-{w} {w_text} leaves less free space than -{c} {c_text}: \
                 the warning limit must be the larger one"
            )));
        }
    }
    Ok((warning.map(|(limit, _)| limit), critical.map(|(limit, _)| limit)))
}

/// Parses a limit and keeps its text, for error messages.
pub(super) fn limit_with_text(text: &str) -> Result<Written, String> {
    Limit::parse(text).map(|limit| (limit, text.to_owned()))
}

/// Parses a percentage-only limit (`-W`, `-K`) and keeps its text.
pub(super) fn percent_limit_with_text(text: &str) -> Result<Written, String> {
    Percent::parse(text).map(|percent| (Limit::Percent(percent.value), text.to_owned()))
}

/// A TCP or UDP port: 1 to 65535.
pub(super) fn parse_port(text: &str) -> Result<u16, String> {
    text.parse::<u16>()
        .ok()
        .filter(|port| *port > 0)
        .ok_or_else(|| format!("{text:?} is not a port number (1-65535)"))
}

/// A response time level: seconds, above zero (`-w 2.5`).
pub(super) fn parse_seconds(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|seconds| seconds.is_finite() && *seconds > 0.0)
        .ok_or_else(|| format!("{text:?} is not a number of seconds (write e.g. 2.5)"))
}

/// A run's own time limit: seconds, above zero, at most an hour (`-t 10`).
pub(super) fn parse_timeout(text: &str) -> Result<std::time::Duration, String> {
    text.parse::<f64>()
        .ok()
        .filter(|seconds| seconds.is_finite() && *seconds > 0.0 && *seconds <= 3600.0)
        .map(std::time::Duration::from_secs_f64)
        .ok_or_else(|| format!("{text:?} is not a number of seconds up to 3600 (write e.g. 2.5)"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::builtin::test_util::words;

    const SPECS: &[Spec] =
        &[Spec::value('w', "warning"), Spec::value('c', "critical"), Spec::flag('r', "percpu")];
    const COMMAND: Command =
        Command { name: "test", usage: "builtin:test [-w W] [-r]", specs: SPECS };

    fn parse(args: &[&str]) -> Result<Vec<(char, String)>, BuiltinError> {
        let args = words(args);
        COMMAND
            .parse(&args)
            .map(|opts| opts.into_iter().map(|opt| (opt.short, opt.value.to_owned())).collect())
    }

    fn opts(pairs: &[(char, &str)]) -> Vec<(char, String)> {
        pairs.iter().map(|&(short, value)| (short, value.to_owned())).collect()
    }

    #[test]
    fn getopt_forms() {
        let expected = opts(&[('w', "20%"), ('c', "10%"), ('r', "")]);
        for args in [
            &["-w", "20%", "-c", "10%", "-r"][..],
            &["-w20%", "-c10%", "-r"],
            &["--warning", "20%", "--critical=10%", "--percpu"],
        ] {
            assert_eq!(parse(args).unwrap(), expected, "{args:?}");
        }
        assert_eq!(parse(&["-rw", "5"]).unwrap(), opts(&[('r', ""), ('w', "5")]));
        assert_eq!(parse(&["-rw5"]).unwrap(), opts(&[('r', ""), ('w', "5")]));
        assert_eq!(parse(&["-w", "-5"]).unwrap(), opts(&[('w', "-5")]));
        assert_eq!(parse(&["-w", "5", "--"]).unwrap(), opts(&[('w', "5")]));
        assert_eq!(parse(&[]).unwrap(), opts(&[]));
    }

    #[test]
    fn getopt_errors() {
        let kind = |args: &[&str]| parse(args).unwrap_err().kind();
        assert_eq!(kind(&["-z"]), BuiltinErrorKind::UnknownOption);
        assert_eq!(kind(&["-rz"]), BuiltinErrorKind::UnknownOption);
        assert_eq!(kind(&["--zap"]), BuiltinErrorKind::UnknownOption);
        assert_eq!(kind(&["5"]), BuiltinErrorKind::UnexpectedArgument);
        assert_eq!(kind(&["-"]), BuiltinErrorKind::UnexpectedArgument);
        assert_eq!(kind(&["--", "-w"]), BuiltinErrorKind::UnexpectedArgument);
        assert_eq!(kind(&["-w"]), BuiltinErrorKind::MissingValue);
        assert_eq!(kind(&["-w", "-c", "5"]), BuiltinErrorKind::MissingValue);
        assert_eq!(kind(&["--warning"]), BuiltinErrorKind::MissingValue);
        assert_eq!(kind(&["--percpu=yes"]), BuiltinErrorKind::BadValue);
    }

    #[test]
    fn getopt_messages() {
        let message = |args: &[&str]| parse(args).unwrap_err().to_string();
        assert_eq!(
            message(&["-z"]),
            r#"builtin:test: unknown option "-z" (usage: builtin:test [-w W] [-r])"#
        );
        assert_eq!(
            message(&["--zap=1"]),
            r#"builtin:test: unknown option "--zap" (usage: builtin:test [-w W] [-r])"#
        );
        assert_eq!(
            message(&["five"]),
            r#"builtin:test: unexpected argument "five" (usage: builtin:test [-w W] [-r])"#
        );
        assert_eq!(
            message(&["-w"]),
            "builtin:test: -w needs a value (usage: builtin:test [-w W] [-r])"
        );
        assert_eq!(
            message(&["--percpu=1"]),
            "builtin:test: --percpu takes no value (write --percpu)"
        );
    }

    #[test]
    fn long_only_options_are_named_by_their_long_name() {
        const SPECS: &[Spec] =
            &[Spec::long_value('\u{1}', "ca-file"), Spec::long_flag('\u{2}', "sni")];
        const LONG: Command = Command { name: "test", usage: "builtin:test", specs: SPECS };
        let args = words(&["--ca-file", "/a.pem", "--sni"]);
        let opts: Vec<(char, &str)> =
            LONG.parse(&args).unwrap().into_iter().map(|opt| (opt.short, opt.value)).collect();
        assert_eq!(opts, [('\u{1}', "/a.pem"), ('\u{2}', "")]);
        let error = LONG.parse(&words(&["--ca-file"])).unwrap_err();
        assert_eq!(
            error.to_string(),
            "builtin:test: --ca-file needs a value (usage: builtin:test)"
        );
        assert_eq!(LONG.bad_value('\u{1}', "bad").to_string(), "builtin:test: --ca-file: bad");
        let mut slot = Some(());
        let error =
            LONG.set_once(&mut slot, Opt { short: '\u{1}', value: "x" }, |_| Ok(())).unwrap_err();
        assert_eq!(error.to_string(), "builtin:test: --ca-file is given twice");
        // The key is not a letter anyone can type as a short option.
        assert_eq!(
            LONG.parse(&words(&["-\u{1}"])).unwrap_err().kind(),
            BuiltinErrorKind::UnknownOption
        );
    }

    #[test]
    fn set_once_rejects_repeats_and_wraps_value_errors() {
        let mut slot = None;
        let opt = Opt { short: 'w', value: "20" };
        let error = COMMAND.set_once(&mut slot, opt, Percent::parse).unwrap_err();
        assert_eq!(error.to_string(), r#"builtin:test: -w: "20" is not a percentage (write 20%)"#);
        let opt = Opt { short: 'w', value: "20%" };
        COMMAND.set_once(&mut slot, opt, Percent::parse).unwrap();
        let error = COMMAND.set_once(&mut slot, opt, Percent::parse).unwrap_err();
        assert_eq!(error.kind(), BuiltinErrorKind::RepeatedOption);
        assert_eq!(error.to_string(), "builtin:test: -w is given twice");
    }

    #[test]
    fn range_levels() {
        let level = RangeLevel::parse(" 1: ").unwrap();
        assert_eq!(level, RangeLevel { range: Range::parse("1:").unwrap(), text: "1:".to_owned() });
        assert_eq!(
            RangeLevel::parse("x").unwrap_err(),
            r#"invalid threshold "x": "x" is not a number (write e.g. 10, 1: or 2:50)"#
        );
        let (thresholds, texts) = range_thresholds(&Some(level), &None);
        assert_eq!(thresholds.evaluate(0.0), crate::State::Warning);
        assert_eq!(texts, (Some("1:".to_owned()), None));
    }

    #[test]
    fn percent_order() {
        let percent = |text: &str| Some(Percent::parse(text).unwrap());
        assert!(check_percent_order(&COMMAND, &percent("90%"), &percent("95%")).is_ok());
        assert!(check_percent_order(&COMMAND, &percent("90%"), &None).is_ok());
        assert_eq!(
            check_percent_order(&COMMAND, &percent("96%"), &percent("95%"))
                .unwrap_err()
                .to_string(),
            "builtin:test: -w 96% is above -c 95%: the warning level must be the lower one"
        );
        let missing = COMMAND.missing_option("-f is required");
        assert_eq!(missing.kind(), BuiltinErrorKind::MissingOption);
        assert_eq!(
            missing.to_string(),
            "builtin:test: -f is required (usage: builtin:test [-w W] [-r])"
        );
    }

    #[test]
    fn percentages() {
        assert_eq!(Percent::parse("90%").unwrap(), Percent { value: 90.0, text: "90".into() });
        assert_eq!(Percent::parse("2.5%").unwrap().value, 2.5);
        assert_eq!(Percent::parse("0%").unwrap().value, 0.0);
        assert_eq!(Percent::parse("100%").unwrap().value, 100.0);
        for (text, message) in [
            ("90", r#""90" is not a percentage (write 90%)"#),
            ("abc", r#""abc" is not a percentage (write e.g. 20%)"#),
            ("x%", r#""x%" is not a percentage (write e.g. 20%)"#),
            ("%", r#""%" is not a percentage (write e.g. 20%)"#),
            ("150%", r#""150%" is not between 0% and 100%"#),
            ("-1%", r#""-1%" is not between 0% and 100%"#),
            ("", r#""" is not a percentage (write e.g. 20%)"#),
        ] {
            assert_eq!(Percent::parse(text).unwrap_err(), message, "{text:?}");
        }
        assert_eq!(Percent::of(90.0).text, "90");
        assert_eq!(Percent::of(2.5).text, "2.5");
    }

    #[test]
    fn sizes_are_powers_of_1024() {
        for (text, bytes) in [
            ("4096B", 4096),
            ("1k", 1024),
            ("1KB", 1024),
            ("1KiB", 1024),
            ("500MB", 500 * 1024 * 1024),
            ("500mb", 500 * 1024 * 1024),
            ("1.5GB", 3 * 512 * 1024 * 1024),
            ("2GiB", 2 << 30),
            ("1TB", 1 << 40),
            ("1PB", 1 << 50),
            ("0MB", 0),
        ] {
            assert_eq!(parse_size(text).unwrap(), bytes, "{text:?}");
        }
        for (text, message) in [
            ("500", r#""500" has no unit (write 500MB, or 500B for bytes)"#),
            (
                "5XB",
                r#""5XB" has an unknown unit "XB" (use B, KB, MB, GB, TB or PB, powers of 1024)"#,
            ),
            ("MB", r#""MB" is not a size (write e.g. 500MB)"#),
            ("-5MB", r#""-5MB" is negative"#),
            ("99999999PB", r#""99999999PB" is too large"#),
        ] {
            assert_eq!(parse_size(text).unwrap_err(), message, "{text:?}");
        }
    }

    #[test]
    fn limits() {
        assert_eq!(Limit::parse("20%").unwrap(), Limit::Percent(20.0));
        assert_eq!(Limit::parse("2GB").unwrap(), Limit::Bytes(2 << 30));
        assert_eq!(
            Limit::parse("20").unwrap_err(),
            r#""20" is not a percentage or size (write 20% or 500MB)"#
        );
        assert_eq!(
            Limit::parse("lots").unwrap_err(),
            r#""lots" is not a percentage or size (write e.g. 20% or 500MB)"#
        );
        assert_eq!(
            Limit::parse("5 GB").unwrap_err(),
            r#""5 GB" has an unknown unit " GB" (use B, KB, MB, GB, TB or PB, powers of 1024)"#
        );
        assert_eq!(Limit::parse("120%").unwrap_err(), r#""120%" is not between 0% and 100%"#);
    }

    #[test]
    fn limits_alert_below() {
        let percent = Limit::Percent(20.0);
        assert!(percent.alerts(19, 100));
        assert!(!percent.alerts(20, 100));
        assert!(!percent.alerts(0, 0));
        let bytes = Limit::Bytes(500);
        assert!(bytes.alerts(499, 100_000));
        assert!(!bytes.alerts(500, 100_000));
        assert!(bytes.alerts(0, 0));
    }

    #[test]
    fn used_thresholds_match_check_disk() {
        // check_disk 2.3, -w 10% -c 5%:
        // /=12528386048B;243497277849;257024904396;0;270552530944
        let total = 270_552_530_944;
        assert_eq!(Limit::Percent(10.0).used_threshold(total), 243_497_277_849);
        assert_eq!(Limit::Percent(5.0).used_threshold(total), 257_024_904_396);
        assert_eq!(Limit::Bytes(1000).used_threshold(total), total - 1000);
        assert_eq!(Limit::Bytes(1000).used_threshold(10), 0);
    }

    #[test]
    fn limit_order() {
        assert!(Limit::Percent(10.0).below(Limit::Percent(20.0)));
        assert!(!Limit::Percent(20.0).below(Limit::Percent(20.0)));
        assert!(Limit::Bytes(1).below(Limit::Bytes(2)));
        assert!(!Limit::Bytes(1).below(Limit::Percent(50.0)));
        let pair = |w: &str, c: &str| {
            check_limit_order(
                &COMMAND,
                (Some(limit_with_text(w).unwrap()), Some(limit_with_text(c).unwrap())),
                ('w', 'c'),
            )
        };
        assert_eq!(
            pair("10%", "20%").unwrap_err().to_string(),
            "builtin:test: -w 10% leaves less free space than -c 20%: \
             the warning limit must be the larger one"
        );
        assert_eq!(
            pair("20%", "10%").unwrap(),
            (Some(Limit::Percent(20.0)), Some(Limit::Percent(10.0)))
        );
        assert!(pair("1GB", "50%").is_ok());
    }

    #[test]
    fn defaults_fill_only_an_empty_pair() {
        assert_eq!(or_defaults(None, None, || (1, 2)), (Some(1), Some(2)));
        assert_eq!(or_defaults(Some(5), None, || (1, 2)), (Some(5), None));
        assert_eq!(or_defaults(None, Some(5), || (1, 2)), (None, Some(5)));
    }
}
