//! Nagios threshold ranges and their evaluation.
//!
//! The syntax is the one of the Nagios Plugin Development Guidelines
//! ("Threshold and ranges") and of monitoring-plugins' `parse_range_string`:
//!
//! | text      | alerts when the value is            |
//! |-----------|-------------------------------------|
//! | `10`      | `< 0` or `> 10`                     |
//! | `10:`     | `< 10`                              |
//! | `~:10`    | `> 10`                              |
//! | `10:20`   | `< 10` or `> 20`                    |
//! | `@10:20`  | `>= 10` and `<= 20`                 |
//!
//! Endpoints are inclusive: they belong to the range. An empty start (`:10`)
//! means 0, as in the C code, and `~:` is the whole line.
//!
//! We are stricter than `strtod`, which the C code uses and which silently
//! stops at the first character it does not understand: `10x`, `inf`, `nan`
//! and `~5:10` are errors here, not 10, infinity or "−∞ to 10". A threshold
//! an operator wrote wrong should be reported, not guessed.
//!
//! ```
//! use monchero_core::State;
//! use monchero_core::threshold::{Range, Thresholds};
//!
//! let thresholds = Thresholds {
//!     warning: Some(Range::parse("80")?),
//!     critical: Some(Range::parse("90")?),
//! };
//! assert_eq!(thresholds.evaluate(85.0), State::Warning);
//! # Ok::<(), monchero_core::threshold::ThresholdError>(())
//! ```

use std::fmt;
use std::str::FromStr;

use crate::state::State;

/// A Nagios threshold range, as in the Nagios Plugin Development Guidelines.
///
/// A value inside `start..=end` is fine and one outside raises an alert,
/// unless `inside` is set (the `@` prefix), which inverts that.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    /// The lowest value in the range; `None` is −∞ (written `~`).
    pub start: Option<f64>,
    /// The highest value in the range; `None` is +∞ (an empty end).
    pub end: Option<f64>,
    /// Alert when the value is *inside* the range (the leading `@`).
    pub inside: bool,
}

impl Range {
    /// Parses a range such as `10`, `10:`, `~:10`, `10:20` or `@10:20`.
    ///
    /// White space around the text is ignored.
    pub fn parse(text: &str) -> Result<Range, ThresholdError> {
        let error = |kind| ThresholdError { text: text.to_owned(), kind };
        let (inside, body) = strip_inside(text.trim());
        if body.is_empty() {
            return Err(error(ThresholdErrorKind::Empty));
        }
        let (start, end) = match split_bounds(body) {
            Bounds::EndOnly(end) => (Some(Some(0.0)), parse_end(end)),
            Bounds::Both(start, end) => (parse_start(start), parse_end(end)),
        };
        let (Some(start), Some(end)) = (start, end) else {
            return Err(error(ThresholdErrorKind::BadNumber));
        };
        match (start, end) {
            (Some(low), Some(high)) if low > high => Err(error(ThresholdErrorKind::StartAfterEnd)),
            _ => Ok(Range { start, end, inside }),
        }
    }

    /// Whether `value` raises an alert: outside `start..=end`, or inside it
    /// with `@`. Endpoints are inclusive.
    ///
    /// NaN is never inside a bounded range, so it alerts on a normal range
    /// and does not on an `@` range, as in monitoring-plugins' `check_range`.
    pub fn alerts(&self, value: f64) -> bool {
        let above_start = self.start.is_none_or(|start| value >= start);
        let below_end = self.end.is_none_or(|end| value <= end);
        let within = above_start && below_end;
        within == self.inside
    }
}

/// Splits off the `@` that turns a range into an "alert inside" range.
fn strip_inside(text: &str) -> (bool, &str) {
    match text.strip_prefix('@') {
        Some(body) => (true, body),
        None => (false, text),
    }
}

/// The two shapes of a range body (after `@`): `end` alone, or `start:end`.
enum Bounds<'a> {
    EndOnly(&'a str),
    Both(&'a str, &'a str),
}

fn split_bounds(body: &str) -> Bounds<'_> {
    match body.split_once(':') {
        Some((start, end)) => Bounds::Both(start, end),
        None => Bounds::EndOnly(body),
    }
}

/// `Some(bound)` when `text` is a valid start; the inner `None` is −∞.
fn parse_start(text: &str) -> Option<Option<f64>> {
    match text {
        // The C code leaves an empty start at its default, 0.
        "" => Some(Some(0.0)),
        "~" => Some(None),
        _ => parse_number(text).map(Some),
    }
}

/// `Some(bound)` when `text` is a valid end; the inner `None` is +∞.
fn parse_end(text: &str) -> Option<Option<f64>> {
    match text {
        "" => Some(None),
        _ => parse_number(text).map(Some),
    }
}

/// Length of the longest prefix of `text` that is a decimal number: an
/// optional sign, digits with an optional `.` fraction (`.5` and `5.` count),
/// then an exponent only when digits follow the `e`. 0 when there is none.
///
/// Shared with the perfdata parser, where the rest of the field is the unit.
pub(crate) fn number_prefix_len(text: &str) -> usize {
    let bytes = text.as_bytes();
    let sign = usize::from(matches!(bytes.first(), Some(b'+' | b'-')));
    let int_digits = count_digits(&bytes[sign..]);
    let mut len = sign + int_digits;
    if bytes.get(len) == Some(&b'.') {
        let frac_digits = count_digits(&bytes[len + 1..]);
        if int_digits + frac_digits == 0 {
            return 0;
        }
        len += 1 + frac_digits;
    } else if int_digits == 0 {
        return 0;
    }
    len + exponent_len(&bytes[len..])
}

/// Length of an exponent (`e5`, `E-3`) at the start of `bytes`, or 0.
fn exponent_len(bytes: &[u8]) -> usize {
    if !matches!(bytes.first(), Some(b'e' | b'E')) {
        return 0;
    }
    let sign = usize::from(matches!(bytes.get(1), Some(b'+' | b'-')));
    match count_digits(&bytes[1 + sign..]) {
        0 => 0,
        digits => 1 + sign + digits,
    }
}

fn count_digits(bytes: &[u8]) -> usize {
    bytes.iter().take_while(|b| b.is_ascii_digit()).count()
}

/// Parses `text` when all of it is a finite number in the grammar of
/// [`number_prefix_len`]. `f64::from_str` alone would accept `inf` and `NaN`.
pub(crate) fn parse_number(text: &str) -> Option<f64> {
    if text.is_empty() || number_prefix_len(text) != text.len() {
        return None;
    }
    text.parse::<f64>().ok().filter(|value| value.is_finite())
}

impl FromStr for Range {
    type Err = ThresholdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Range::parse(text)
    }
}

/// The canonical form: `10` for `0:10`, `10:`, `~:10`, `~:`, `10:20`, with a
/// leading `@` for inside ranges. Parsing it gives back the same range.
impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.inside {
            f.write_str("@")?;
        }
        // Rust's `{}` for f64 never uses an exponent and prints the shortest
        // text that parses back to the same value. The `0.0` pattern also
        // matches -0.0, which parses back equal.
        match (self.start, self.end) {
            (Some(0.0), Some(end)) => write!(f, "{end}"),
            (Some(start), Some(end)) => write!(f, "{start}:{end}"),
            (Some(start), None) => write!(f, "{start}:"),
            (None, Some(end)) => write!(f, "~:{end}"),
            (None, None) => f.write_str("~:"),
        }
    }
}

/// The warning and critical ranges of one value.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Thresholds {
    /// Alerts with [`State::Warning`]; `None` never alerts.
    pub warning: Option<Range>,
    /// Alerts with [`State::Critical`]; `None` never alerts.
    pub critical: Option<Range>,
}

impl Thresholds {
    /// Parses optional warning and critical range texts; empty or white-space
    /// texts count as absent, as an empty perfdata field does.
    pub fn parse(warning: Option<&str>, critical: Option<&str>) -> Result<Self, ThresholdError> {
        Ok(Thresholds { warning: parse_optional(warning)?, critical: parse_optional(critical)? })
    }

    /// The state of `value`: critical when the critical range alerts, else
    /// warning when the warning range alerts, else OK.
    pub fn evaluate(&self, value: f64) -> State {
        let alerts = |range: Option<Range>| range.is_some_and(|range| range.alerts(value));
        if alerts(self.critical) {
            State::Critical
        } else if alerts(self.warning) {
            State::Warning
        } else {
            State::Ok
        }
    }
}

fn parse_optional(text: Option<&str>) -> Result<Option<Range>, ThresholdError> {
    match text {
        Some(text) if !text.trim().is_empty() => Range::parse(text).map(Some),
        _ => Ok(None),
    }
}

/// A range text that does not parse.
///
/// Its message names the text and the problem:
/// `invalid threshold "10:5": the start (10) is greater than the end (5)`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid threshold {text:?}: {}", Detail::new(.text, .kind))]
pub struct ThresholdError {
    text: String,
    kind: ThresholdErrorKind,
}

impl ThresholdError {
    /// The text that failed to parse, as given.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// What is wrong with it.
    pub fn kind(&self) -> ThresholdErrorKind {
        self.kind
    }
}

/// What is wrong with a range text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ThresholdErrorKind {
    /// There is no range at all: the text is empty, white space or just `@`.
    Empty,
    /// A bound is not a finite decimal number (`abc`, `10x`, `inf`, `1e999`,
    /// or `~` used as anything but the start).
    BadNumber,
    /// Both bounds are numbers, but the start is greater than the end.
    StartAfterEnd,
}

impl fmt::Display for ThresholdErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ThresholdErrorKind::Empty => "the range is empty",
            ThresholdErrorKind::BadNumber => "a bound is not a number",
            ThresholdErrorKind::StartAfterEnd => "the start is greater than the end",
        })
    }
}

/// The kind's message made specific by re-reading the text, which keeps the
/// error small and `Eq` (no floats stored).
struct Detail<'a> {
    text: &'a str,
    kind: ThresholdErrorKind,
}

impl<'a> Detail<'a> {
    fn new(text: &'a str, kind: &ThresholdErrorKind) -> Self {
        Detail { text, kind: *kind }
    }
}

impl fmt::Display for Detail<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (_, body) = strip_inside(self.text.trim());
        match (self.kind, split_bounds(body)) {
            (ThresholdErrorKind::BadNumber, Bounds::EndOnly(end)) => {
                write!(f, "{end:?} is not a number")
            }
            (ThresholdErrorKind::BadNumber, Bounds::Both(start, end)) => {
                let bad = if parse_start(start).is_none() { start } else { end };
                write!(f, "{bad:?} is not a number")
            }
            (ThresholdErrorKind::StartAfterEnd, Bounds::Both(start, end)) => {
                write!(f, "the start ({start}) is greater than the end ({end})")
            }
            (kind, _) => kind.fmt(f),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn range(text: &str) -> Range {
        Range::parse(text).unwrap()
    }

    fn bounds(start: Option<f64>, end: Option<f64>) -> Range {
        Range { start, end, inside: false }
    }

    fn error_kind(text: &str) -> ThresholdErrorKind {
        Range::parse(text).unwrap_err().kind()
    }

    #[test]
    fn plain_number_is_zero_to_number() {
        assert_eq!(range("10"), bounds(Some(0.0), Some(10.0)));
    }

    #[test]
    fn trailing_colon_is_open_ended() {
        assert_eq!(range("10:"), bounds(Some(10.0), None));
    }

    #[test]
    fn tilde_start_is_minus_infinity() {
        assert_eq!(range("~:10"), bounds(None, Some(10.0)));
        assert_eq!(range("~:"), bounds(None, None));
    }

    #[test]
    fn start_and_end() {
        assert_eq!(range("10:20"), bounds(Some(10.0), Some(20.0)));
        assert_eq!(range("-20:-10"), bounds(Some(-20.0), Some(-10.0)));
        assert_eq!(range("5:5"), bounds(Some(5.0), Some(5.0)));
    }

    #[test]
    fn empty_start_is_zero_as_in_the_c_code() {
        assert_eq!(range(":10"), bounds(Some(0.0), Some(10.0)));
        assert_eq!(range(":"), bounds(Some(0.0), None));
    }

    #[test]
    fn at_sign_inverts() {
        let inverted = range("@10:20");
        assert!(inverted.inside);
        assert_eq!((inverted.start, inverted.end), (Some(10.0), Some(20.0)));
        assert_eq!(range("@~:"), Range { inside: true, ..bounds(None, None) });
    }

    #[test]
    fn numbers_may_be_signed_decimal_or_scientific() {
        assert_eq!(range("1e3"), bounds(Some(0.0), Some(1000.0)));
        assert_eq!(range("-1.5E-1:+2.5e+1"), bounds(Some(-0.15), Some(25.0)));
        assert_eq!(range(".5:5."), bounds(Some(0.5), Some(5.0)));
        assert_eq!(range("0.000000"), bounds(Some(0.0), Some(0.0)));
    }

    #[test]
    fn surrounding_white_space_is_ignored() {
        assert_eq!(range("  10:20\t\n"), bounds(Some(10.0), Some(20.0)));
    }

    #[test]
    fn errors() {
        use ThresholdErrorKind::*;
        for (text, kind) in [
            ("", Empty),
            ("   ", Empty),
            ("@", Empty),
            ("abc", BadNumber),
            ("10x", BadNumber),
            ("inf", BadNumber),
            ("-inf:0", BadNumber),
            ("NaN", BadNumber),
            ("infinity:", BadNumber),
            ("1e999", BadNumber),
            ("~", BadNumber),
            ("~5:10", BadNumber),
            ("10:~", BadNumber),
            ("1:2:3", BadNumber),
            ("@@10", BadNumber),
            ("1e", BadNumber),
            ("-", BadNumber),
            (".", BadNumber),
            ("10 :20", BadNumber),
            ("0,5", BadNumber),
            ("10:5", StartAfterEnd),
            ("@-1:-2", StartAfterEnd),
        ] {
            assert_eq!(error_kind(text), kind, "{text:?}");
        }
    }

    #[test]
    fn error_messages_name_the_text_and_the_problem() {
        let message = |text| Range::parse(text).unwrap_err().to_string();
        assert_eq!(
            message("10:5"),
            r#"invalid threshold "10:5": the start (10) is greater than the end (5)"#
        );
        assert_eq!(message("10:abc"), r#"invalid threshold "10:abc": "abc" is not a number"#);
        assert_eq!(message("x:5"), r#"invalid threshold "x:5": "x" is not a number"#);
        assert_eq!(message("@inf"), r#"invalid threshold "@inf": "inf" is not a number"#);
        assert_eq!(message(""), r#"invalid threshold "": the range is empty"#);
    }

    #[test]
    fn error_accessors() {
        let error = Range::parse(" 10:5 ").unwrap_err();
        assert_eq!(error.text(), " 10:5 ");
        assert_eq!(error.kind(), ThresholdErrorKind::StartAfterEnd);
    }

    #[test]
    fn from_str_is_parse() {
        assert_eq!("~:10".parse::<Range>().unwrap(), range("~:10"));
        assert!("x".parse::<Range>().is_err());
    }

    #[test]
    fn endpoints_are_inclusive() {
        let outside = range("10");
        for value in [0.0, 5.0, 10.0] {
            assert!(!outside.alerts(value), "{value}");
        }
        for value in [-0.1, 10.1, -1e9, 1e9] {
            assert!(outside.alerts(value), "{value}");
        }

        let inside = range("@10:20");
        for value in [10.0, 15.0, 20.0] {
            assert!(inside.alerts(value), "{value}");
        }
        for value in [9.9, 20.1] {
            assert!(!inside.alerts(value), "{value}");
        }
    }

    #[test]
    fn open_ranges_alert_on_one_side() {
        let at_least_10 = range("10:");
        assert!(at_least_10.alerts(9.99));
        assert!(!at_least_10.alerts(10.0));
        assert!(!at_least_10.alerts(1e300));

        let at_most_10 = range("~:10");
        assert!(at_most_10.alerts(10.01));
        assert!(!at_most_10.alerts(10.0));
        assert!(!at_most_10.alerts(-1e300));

        assert!(!range("~:").alerts(42.0));
        assert!(range("@~:").alerts(42.0));
    }

    #[test]
    fn nan_is_outside_every_bounded_range() {
        assert!(range("10").alerts(f64::NAN));
        assert!(!range("@10").alerts(f64::NAN));
    }

    #[test]
    fn evaluate_checks_critical_before_warning() {
        let thresholds = Thresholds::parse(Some("80"), Some("90")).unwrap();
        assert_eq!(thresholds.evaluate(50.0), State::Ok);
        assert_eq!(thresholds.evaluate(80.0), State::Ok);
        assert_eq!(thresholds.evaluate(85.0), State::Warning);
        assert_eq!(thresholds.evaluate(95.0), State::Critical);
        assert_eq!(thresholds.evaluate(-1.0), State::Critical);

        // A critical range that alerts where the warning one does not.
        let odd = Thresholds { warning: Some(range("@0:10")), critical: Some(range("@5:6")) };
        assert_eq!(odd.evaluate(5.5), State::Critical);
        assert_eq!(odd.evaluate(2.0), State::Warning);
        assert_eq!(odd.evaluate(11.0), State::Ok);
    }

    #[test]
    fn missing_ranges_never_alert() {
        assert_eq!(Thresholds::default().evaluate(f64::MAX), State::Ok);
        let warning_only = Thresholds::parse(Some("1"), None).unwrap();
        assert_eq!(warning_only.evaluate(2.0), State::Warning);
        let critical_only = Thresholds::parse(Some(" "), Some("1")).unwrap();
        assert_eq!(critical_only.warning, None);
        assert_eq!(critical_only.evaluate(2.0), State::Critical);
    }

    #[test]
    fn thresholds_parse_reports_the_bad_range() {
        let error = Thresholds::parse(Some("1"), Some("x")).unwrap_err();
        assert_eq!(error.text(), "x");
    }

    #[test]
    fn display_is_canonical() {
        for (text, canonical) in [
            ("10", "10"),
            ("0:10", "10"),
            (":10", "10"),
            ("10:", "10:"),
            ("~:10", "~:10"),
            ("~:", "~:"),
            (":", "0:"),
            ("10:20", "10:20"),
            ("@10:20", "@10:20"),
            ("@10", "@10"),
            ("1e3:1.5E4", "1000:15000"),
            ("-0.5:.25", "-0.5:0.25"),
        ] {
            assert_eq!(range(text).to_string(), canonical, "{text:?}");
        }
    }

    #[test]
    fn number_prefix() {
        for (text, len) in [
            ("", 0),
            ("-", 0),
            (".", 0),
            ("e5", 0),
            ("5", 1),
            ("5.", 2),
            (".5", 2),
            ("-.5s", 3),
            ("1e", 1),
            ("1e+", 1),
            ("1e+3ms", 4),
            ("1.5E-3%", 6),
            ("12,5", 2),
            ("U", 0),
        ] {
            assert_eq!(number_prefix_len(text), len, "{text:?}");
        }
    }

    fn finite() -> impl Strategy<Value = f64> {
        use proptest::num::f64::{NEGATIVE, NORMAL, POSITIVE, SUBNORMAL, ZERO};
        prop_oneof![
            Just(0.0),
            (-1000i32..1000).prop_map(f64::from),
            POSITIVE | NEGATIVE | NORMAL | SUBNORMAL | ZERO,
        ]
    }

    fn valid_range() -> impl Strategy<Value = Range> {
        let bound = || proptest::option::of(finite());
        (bound(), bound(), any::<bool>()).prop_map(|(start, end, inside)| {
            let (start, end) = match (start, end) {
                (Some(a), Some(b)) if a > b => (Some(b), Some(a)),
                other => other,
            };
            Range { start, end, inside }
        })
    }

    proptest! {
        #[test]
        fn display_parses_back(range in valid_range()) {
            let text = range.to_string();
            prop_assert_eq!(Range::parse(&text), Ok(range), "{}", text);
        }

        #[test]
        fn parse_never_panics(text in "[-+@~:.0-9eE \tinfa]{0,16}") {
            if let Ok(range) = Range::parse(&text) {
                prop_assert_eq!(Range::parse(&range.to_string()), Ok(range));
            }
        }
    }
}
