//! Performance data: `'label'=value[UOM];[warn];[crit];[min];[max]`.
//!
//! The grammar is the one of the Nagios Plugin Development Guidelines
//! ("Performance data"). Items are separated by ASCII white space, newlines
//! included, so the perfdata of several output lines parses as one text.
//!
//! Parsing never fails as a whole: [`parse`] yields each item as `Ok` or as
//! an `Err` naming the malformed item, and goes on with the next one. Plugins
//! in the wild get details wrong (a decimal comma, a stray word), and one bad
//! item must not cost the good ones around it.
//!
//! Items borrow from the text: the parser allocates nothing, except the label
//! of an item whose quoted label holds an escaped quote (`''`).
//!
//! ```
//! use monchero_core::perfdata;
//!
//! let mut items = perfdata::parse("'free space'=41234MB;;;0;52489 time=abc");
//! let free = items.next().unwrap()?;
//! assert_eq!((free.label.as_ref(), free.value, free.uom), ("free space", Some(41234.0), "MB"));
//! assert_eq!(free.max, Some(52489.0));
//! assert!(items.next().unwrap().is_err());
//! assert!(items.next().is_none());
//! # Ok::<(), perfdata::PerfdataError<'_>>(())
//! ```

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::iter::FusedIterator;

use crate::threshold::{self, ThresholdError, Thresholds};

/// One performance data item, borrowed from the plugin output: no allocation
/// unless the label has a `''` escape.
#[derive(Debug, Clone, PartialEq)]
pub struct PerfDatum<'a> {
    /// The label, without its quotes and with `''` unescaped.
    pub label: Cow<'a, str>,
    /// The value; `None` for `U` ("could not be determined").
    pub value: Option<f64>,
    /// The unit of measure (`s`, `%`, `MB`, …); `""` when there is none.
    pub uom: &'a str,
    /// The warning range, as written; `None` when empty or omitted.
    pub warn: Option<&'a str>,
    /// The critical range, as written; `None` when empty or omitted.
    pub crit: Option<&'a str>,
    /// The smallest possible value; `None` when empty or omitted.
    pub min: Option<f64>,
    /// The largest possible value; `None` when empty or omitted.
    pub max: Option<f64>,
}

impl<'a> PerfDatum<'a> {
    /// Parses the warning and critical ranges.
    ///
    /// The item parser keeps them as text so that a bad range does not lose
    /// the value; this is where a bad range shows.
    pub fn thresholds(&self) -> Result<Thresholds, ThresholdError> {
        Thresholds::parse(self.warn, self.crit)
    }

    /// The owned form, for storage and JSON.
    pub fn to_owned_data(&self) -> PerfData {
        PerfData {
            label: self.label.clone().into_owned(),
            value: self.value,
            uom: (!self.uom.is_empty()).then(|| self.uom.to_owned()),
            warn: self.warn.map(str::to_owned),
            crit: self.crit.map(str::to_owned),
            min: self.min,
            max: self.max,
        }
    }
}

/// One performance data item, owned, for storage and JSON.
///
/// With the feature `serde` it serializes with exactly these field names.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PerfData {
    /// The label, unquoted and unescaped.
    pub label: String,
    /// The value; `None` for `U`.
    pub value: Option<f64>,
    /// The unit of measure; `None` when there is none (never `Some("")`).
    pub uom: Option<String>,
    /// The warning range, as written.
    pub warn: Option<String>,
    /// The critical range, as written.
    pub crit: Option<String>,
    /// The smallest possible value.
    pub min: Option<f64>,
    /// The largest possible value.
    pub max: Option<f64>,
}

impl PerfData {
    /// The borrowed form, to format or evaluate without cloning.
    pub fn as_datum(&self) -> PerfDatum<'_> {
        PerfDatum {
            label: Cow::Borrowed(&self.label),
            value: self.value,
            uom: self.uom.as_deref().unwrap_or(""),
            warn: self.warn.as_deref(),
            crit: self.crit.as_deref(),
            min: self.min,
            max: self.max,
        }
    }
}

/// Writes the guidelines' syntax, which [`parse`] reads back to the same item.
///
/// The label is quoted only when it must be (it holds white space, `=` or
/// `'`), trailing empty fields are left out, and a `None` value is `U`.
/// Round-tripping assumes what the parser guarantees: finite numbers, a unit
/// without digits, ranges without `;` or white space. A unit next to `U` is
/// not written, since the grammar has no place for it.
impl fmt::Display for PerfDatum<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_label(f, &self.label)?;
        f.write_char('=')?;
        match self.value {
            Some(value) => write_value(f, value, self.uom)?,
            None => f.write_char('U')?,
        }
        let fields = [
            self.warn.filter(|warn| !warn.is_empty()).map(Field::Text),
            self.crit.filter(|crit| !crit.is_empty()).map(Field::Text),
            self.min.map(Field::Number),
            self.max.map(Field::Number),
        ];
        let used = fields.iter().rposition(Option::is_some).map_or(0, |last| last + 1);
        for field in &fields[..used] {
            f.write_char(';')?;
            match field {
                Some(Field::Text(text)) => f.write_str(text)?,
                Some(Field::Number(number)) => write!(f, "{number}")?,
                None => {}
            }
        }
        Ok(())
    }
}

impl fmt::Display for PerfData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_datum().fmt(f)
    }
}

enum Field<'a> {
    Text(&'a str),
    Number(f64),
}

fn write_label(f: &mut fmt::Formatter<'_>, label: &str) -> fmt::Result {
    let needs_quotes = label.is_empty()
        || label.bytes().any(|b| b.is_ascii_whitespace() || b == b'=' || b == b'\'');
    if !needs_quotes {
        return f.write_str(label);
    }
    f.write_char('\'')?;
    for (index, part) in label.split('\'').enumerate() {
        if index > 0 {
            f.write_str("''")?;
        }
        f.write_str(part)?;
    }
    f.write_char('\'')
}

fn write_value(f: &mut fmt::Formatter<'_>, value: f64, uom: &str) -> fmt::Result {
    write!(f, "{value}")?;
    // `{}` prints 5.0 as "5"; followed by a unit ".x" that would read back as
    // the number "5." and the unit "x". A point of its own keeps them apart.
    if uom.starts_with('.') && value.fract() == 0.0 {
        f.write_char('.')?;
    }
    f.write_str(uom)
}

/// Parses a perfdata string (items separated by ASCII white space, newlines
/// included). Never fails as a whole: see [`Items`].
pub fn parse(text: &str) -> Items<'_> {
    Items::chained(text, "")
}

/// The items of a perfdata text, in order: each one parsed, or the error that
/// says why it could not be.
///
/// After an error, parsing resumes at the next white-space-separated item;
/// only an unterminated quote swallows the rest of the text.
#[derive(Debug, Clone)]
pub struct Items<'a> {
    current: &'a str,
    next: &'a str,
}

impl<'a> Items<'a> {
    /// The items of `first`, then those of `second`: the two perfdata parts
    /// of a plugin output, without joining them into a new string.
    pub(crate) fn chained(first: &'a str, second: &'a str) -> Self {
        Items { current: first, next: second }
    }

    /// The next item's raw text, or `None` when both parts are exhausted.
    fn next_item(&mut self) -> Option<&'a str> {
        loop {
            let rest = self.current.trim_ascii_start();
            if !rest.is_empty() {
                let (item, after) = split_item(rest);
                self.current = after;
                return Some(item);
            }
            if self.next.is_empty() {
                self.current = "";
                return None;
            }
            self.current = std::mem::take(&mut self.next);
        }
    }
}

impl<'a> Iterator for Items<'a> {
    type Item = Result<PerfDatum<'a>, PerfdataError<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_item().map(parse_item)
    }
}

impl FusedIterator for Items<'_> {}

/// Splits the first item off `text`, which starts with a non-blank byte.
///
/// A quoted label may hold white space, so the item ends at the first white
/// space after the closing quote; without one, the rest of the text is the
/// (malformed) item.
fn split_item(text: &str) -> (&str, &str) {
    let scan_from = if text.starts_with('\'') {
        match closing_quote(text) {
            Some(quote) => quote + 1,
            None => return (text.trim_ascii_end(), ""),
        }
    } else {
        0
    };
    let end = text[scan_from..]
        .bytes()
        .position(|b| b.is_ascii_whitespace())
        .map_or(text.len(), |offset| scan_from + offset);
    text.split_at(end)
}

/// The index of the quote that closes the label `text` starts with: the first
/// `'` after the opening one that is not part of a doubled `''`.
fn closing_quote(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut from = 1;
    loop {
        let quote = from + bytes.get(from..)?.iter().position(|&b| b == b'\'')?;
        if bytes.get(quote + 1) != Some(&b'\'') {
            return Some(quote);
        }
        from = quote + 2;
    }
}

fn parse_item(item: &str) -> Result<PerfDatum<'_>, PerfdataError<'_>> {
    let fail = |kind| PerfdataError { item, kind };
    let (label, data) = split_label(item).map_err(fail)?;
    if label.is_empty() {
        return Err(fail(PerfdataErrorKind::EmptyLabel));
    }
    let mut fields = data.split(';');
    let (value, uom) = parse_value(fields.next().unwrap_or("")).map_err(fail)?;
    let warn = fields.next().filter(|warn| !warn.is_empty());
    let crit = fields.next().filter(|crit| !crit.is_empty());
    let min = parse_limit(fields.next()).ok_or_else(|| fail(PerfdataErrorKind::BadMin))?;
    let max = parse_limit(fields.next()).ok_or_else(|| fail(PerfdataErrorKind::BadMax))?;
    Ok(PerfDatum { label, value, uom, warn, crit, min, max })
}

/// Splits `label=data`, unquoting a quoted label.
fn split_label(item: &str) -> Result<(Cow<'_, str>, &str), PerfdataErrorKind> {
    if !item.starts_with('\'') {
        let (label, data) = item.split_once('=').ok_or(PerfdataErrorKind::MissingEquals)?;
        return Ok((Cow::Borrowed(label), data));
    }
    let quote = closing_quote(item).ok_or(PerfdataErrorKind::UnterminatedQuote)?;
    let data = item[quote + 1..].strip_prefix('=').ok_or(PerfdataErrorKind::MissingEquals)?;
    let quoted = &item[1..quote];
    let label = if quoted.contains("''") {
        Cow::Owned(quoted.replace("''", "'"))
    } else {
        Cow::Borrowed(quoted)
    };
    Ok((label, data))
}

/// Splits the value field into the value (`None` for `U`) and its unit.
fn parse_value(field: &str) -> Result<(Option<f64>, &str), PerfdataErrorKind> {
    if field == "U" {
        return Ok((None, ""));
    }
    let (number, uom) = field.split_at(threshold::number_prefix_len(field));
    if number.is_empty() {
        return Err(PerfdataErrorKind::BadValue);
    }
    // A digit in the unit means the number did not end where the plugin
    // meant it to: `0,5` (decimal comma) is not 0 with the unit ",5".
    if uom.bytes().any(|b| b.is_ascii_digit()) {
        return Err(PerfdataErrorKind::BadUnit);
    }
    let value = threshold::parse_number(number).ok_or(PerfdataErrorKind::BadValue)?;
    Ok((Some(value), uom))
}

/// `Some(limit)` for an empty, omitted or numeric min/max field, `None` for
/// anything else.
fn parse_limit(field: Option<&str>) -> Option<Option<f64>> {
    match field {
        None | Some("") => Some(None),
        Some(text) => threshold::parse_number(text).map(Some),
    }
}

/// A perfdata item that does not follow the grammar.
///
/// Its message quotes the item: `malformed perfdata "load1=abc": the value is
/// not a number`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("malformed perfdata {item:?}: {kind}")]
pub struct PerfdataError<'a> {
    /// The raw text of the malformed item.
    pub item: &'a str,
    /// What is wrong with it.
    pub kind: PerfdataErrorKind,
}

/// What is wrong with a perfdata item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PerfdataErrorKind {
    /// There is no `=` after the label (`load1`, `|||`, `'a b' c`).
    MissingEquals,
    /// The label is empty (`=5`, `''=5`).
    EmptyLabel,
    /// A label opens a quote that nothing closes; the item is the rest of
    /// the text.
    UnterminatedQuote,
    /// The value is neither a number nor `U` (`abc`, `-`, empty, `1e999`).
    BadValue,
    /// The unit of measure holds a digit, so the value was not what it
    /// seems: a decimal comma (`0,5`) or two numbers run together.
    BadUnit,
    /// The minimum is neither empty nor a number.
    BadMin,
    /// The maximum is neither empty nor a number.
    BadMax,
}

impl fmt::Display for PerfdataErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PerfdataErrorKind::MissingEquals => "there is no '=' after the label",
            PerfdataErrorKind::EmptyLabel => "the label is empty",
            PerfdataErrorKind::UnterminatedQuote => "the quoted label has no closing quote",
            PerfdataErrorKind::BadValue => "the value is not a number",
            PerfdataErrorKind::BadUnit => "the unit of measure contains a digit",
            PerfdataErrorKind::BadMin => "the minimum is not a number",
            PerfdataErrorKind::BadMax => "the maximum is not a number",
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::state::State;
    use crate::threshold::Range;
    use proptest::prelude::*;

    fn one(text: &str) -> PerfDatum<'_> {
        let mut items = parse(text);
        let datum = items.next().unwrap().unwrap();
        assert!(items.next().is_none(), "more than one item in {text:?}");
        datum
    }

    fn error(text: &str) -> PerfdataErrorKind {
        let mut items = parse(text);
        let error = items.next().unwrap().unwrap_err();
        assert!(items.next().is_none(), "more than one item in {text:?}");
        error.kind
    }

    fn all(text: &str) -> Vec<Result<PerfDatum<'_>, PerfdataError<'_>>> {
        parse(text).collect()
    }

    fn datum(label: &str, value: f64, uom: &'static str) -> PerfDatum<'static> {
        PerfDatum {
            label: Cow::Owned(label.to_owned()),
            value: Some(value),
            uom,
            warn: None,
            crit: None,
            min: None,
            max: None,
        }
    }

    #[test]
    fn full_item() {
        assert_eq!(
            one("load1=0.350;15.000;30.000;0;100"),
            PerfDatum {
                warn: Some("15.000"),
                crit: Some("30.000"),
                min: Some(0.0),
                max: Some(100.0),
                ..datum("load1", 0.35, "")
            }
        );
    }

    #[test]
    fn every_unit_of_the_guidelines() {
        for uom in ["", "s", "ms", "us", "%", "B", "KB", "MB", "GB", "TB", "c"] {
            let text = format!("x=12.5{uom};1;2");
            let parsed = one(&text);
            assert_eq!((parsed.value, parsed.uom), (Some(12.5), uom));
        }
    }

    #[test]
    fn unknown_units_are_kept() {
        for uom in ["KiB", "°C", "req/s", "e", "E+", "x.", "x=y", "'"] {
            let text = format!("x=7{uom}");
            assert_eq!(one(&text).uom, uom, "{text:?}");
        }
        // A point right after the digits belongs to the number.
        assert_eq!((one("x=7.x").value, one("x=7.x").uom), (Some(7.0), "x"));
        assert_eq!(one("x=7..x").uom, ".x");
    }

    #[test]
    fn digits_in_the_unit_are_an_error() {
        assert_eq!(error("ratio=0,5"), PerfdataErrorKind::BadUnit);
        assert_eq!(error("x=1.2.3"), PerfdataErrorKind::BadUnit);
        assert_eq!(error("x=5s2"), PerfdataErrorKind::BadUnit);
    }

    #[test]
    fn quoted_labels() {
        assert_eq!(one("'free space'=1").label, "free space");
        assert_eq!(one("'a=b'=1").label, "a=b");
        assert_eq!(one("'C:\\ Label: x'=47%;80;90").label, "C:\\ Label: x");
        assert_eq!(one("'it''s'=1").label, "it's");
        assert_eq!(one("''''=1").label, "'");
        assert_eq!(one("'a''''b'=1").label, "a''b");
        assert_eq!(one("'tab\there'=1").label, "tab\there");
    }

    #[test]
    fn labels_borrow_unless_unescaped() {
        assert!(matches!(one("'a b'=1").label, Cow::Borrowed("a b")));
        assert!(matches!(one("plain=1").label, Cow::Borrowed("plain")));
        assert!(matches!(one("'it''s'=1").label, Cow::Owned(_)));
    }

    #[test]
    fn unquoted_label_runs_to_the_first_equals() {
        assert_eq!(one("/var/log=818MB").label, "/var/log");
        assert_eq!(one("it's=1").label, "it's");
        assert_eq!(one("a;b|c=1").label, "a;b|c");
        let odd = one("a=5=x");
        assert_eq!((odd.label.as_ref(), odd.uom), ("a", "=x"));
    }

    #[test]
    fn unknown_value() {
        let unknown = one("rta=U;100;500");
        assert_eq!((unknown.value, unknown.uom), (None, ""));
        assert_eq!(unknown.warn, Some("100"));
        assert_eq!(error("x=Ums"), PerfdataErrorKind::BadValue);
        assert_eq!(error("x=u"), PerfdataErrorKind::BadValue);
    }

    #[test]
    fn number_forms() {
        for (text, value) in [
            ("x=1e3", 1000.0),
            ("x=1E-3", 0.001),
            ("x=-2.5e+2", -250.0),
            ("x=+4", 4.0),
            ("x=-0.5", -0.5),
            ("x=.5", 0.5),
            ("x=5.", 5.0),
            ("x=0.000123", 0.000123),
            ("x=2147479552", 2_147_479_552.0),
        ] {
            assert_eq!(one(text).value, Some(value), "{text:?}");
        }
        // An exponent needs digits; otherwise the `e` starts the unit.
        let no_exponent = one("x=5e");
        assert_eq!((no_exponent.value, no_exponent.uom), (Some(5.0), "e"));
        let scientific_unit = one("x=1.5e3ms;;;-1e2;1E+4");
        assert_eq!(scientific_unit.value, Some(1500.0));
        assert_eq!(scientific_unit.uom, "ms");
        assert_eq!((scientific_unit.min, scientific_unit.max), (Some(-100.0), Some(10_000.0)));
    }

    #[test]
    fn bad_values() {
        for text in ["x=", "x=abc", "x=-", "x=.", "x=;1;2", "x=inf", "x=NaN", "x=1e999", "x=e5"] {
            assert_eq!(error(text), PerfdataErrorKind::BadValue, "{text:?}");
        }
    }

    #[test]
    fn empty_and_omitted_trailing_fields() {
        let bare = one("procs=112");
        assert_eq!((bare.warn, bare.crit, bare.min, bare.max), (None, None, None, None));
        let empty = one("procs=112;;;0;");
        assert_eq!((empty.warn, empty.crit, empty.min, empty.max), (None, None, Some(0.0), None));
        let crit_only = one("x=1;;5");
        assert_eq!((crit_only.warn, crit_only.crit), (None, Some("5")));
        let all_empty = one("x=1;;;;");
        assert_eq!(all_empty, datum("x", 1.0, ""));
    }

    #[test]
    fn extra_fields_are_ignored() {
        let extra = one("x=1;2;3;4;5;6;seven");
        assert_eq!((extra.min, extra.max), (Some(4.0), Some(5.0)));
    }

    #[test]
    fn thresholds_are_kept_raw_and_parsed_on_demand() {
        let item = one("x=1;@10:20;~:30");
        assert_eq!((item.warn, item.crit), (Some("@10:20"), Some("~:30")));
        let thresholds = item.thresholds().unwrap();
        assert_eq!(thresholds.warning, Some(Range::parse("@10:20").unwrap()));
        assert_eq!(thresholds.critical, Some(Range::parse("~:30").unwrap()));

        // A bad range does not lose the item; it shows in thresholds().
        let bad = one("x=1;abc;5");
        assert_eq!((bad.value, bad.warn), (Some(1.0), Some("abc")));
        assert_eq!(bad.thresholds().unwrap_err().text(), "abc");
    }

    #[test]
    fn bad_min_and_max() {
        assert_eq!(error("x=1;;;a"), PerfdataErrorKind::BadMin);
        assert_eq!(error("x=1;;;0;1%"), PerfdataErrorKind::BadMax);
        assert_eq!(error("x=1;;;0;inf"), PerfdataErrorKind::BadMax);
    }

    #[test]
    fn a_malformed_item_between_good_ones() {
        let items = all("a=1 b=abc c=3");
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].as_ref().unwrap().label, "a");
        assert_eq!(
            items[1],
            Err(PerfdataError { item: "b=abc", kind: PerfdataErrorKind::BadValue })
        );
        assert_eq!(items[2].as_ref().unwrap().value, Some(3.0));
    }

    #[test]
    fn malformed_items() {
        use PerfdataErrorKind::*;
        for (text, kind) in [
            ("load1", MissingEquals),
            ("|||", MissingEquals),
            ("=", EmptyLabel),
            ("=5", EmptyLabel),
            ("''=5", EmptyLabel),
            ("'", UnterminatedQuote),
            ("'a b=1", UnterminatedQuote),
            ("'a'b=1", MissingEquals),
            ("'a'", MissingEquals),
        ] {
            assert_eq!(error(text), kind, "{text:?}");
        }
    }

    #[test]
    fn a_quote_error_keeps_the_next_items() {
        let items = all("'a' b=1 c=2");
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].as_ref().unwrap_err().item, "'a'");
        assert_eq!(items[1].as_ref().unwrap().label, "b");
    }

    #[test]
    fn an_unterminated_quote_is_the_rest_of_the_text() {
        let items = all("a=1 'b c=2 d=3 \n");
        assert_eq!(items.len(), 2);
        assert_eq!(
            items[1],
            Err(PerfdataError { item: "'b c=2 d=3", kind: PerfdataErrorKind::UnterminatedQuote })
        );
    }

    #[test]
    fn any_ascii_white_space_separates_items() {
        let items = all(" a=1\tb=2\nc=3\r\nd=4\x0ce=5  ");
        let labels: Vec<_> =
            items.iter().map(|item| item.as_ref().unwrap().label.as_ref()).collect();
        assert_eq!(labels, ["a", "b", "c", "d", "e"]);
    }

    #[test]
    fn garbage_never_panics() {
        for text in [
            "",
            " ",
            "|||",
            "=",
            "'",
            "''",
            "'''",
            "=5",
            "\t",
            "\0",
            "a=\0",
            "'\0'=1",
            ";;;",
            "a=1;",
            "=;=;",
            "'é",
            "é=1é",
            "x=1;;;;;;;;",
            "'a''",
            "''''",
            "\u{feff}a=1",
        ] {
            for datum in parse(text).flatten() {
                let _ = datum.thresholds();
                let _ = datum.to_string();
            }
        }
        assert_eq!(all("").len(), 0);
        assert_eq!(all(" \n\t ").len(), 0);
    }

    #[test]
    fn error_message_quotes_the_item() {
        let error = parse("load1=abc").next().unwrap().unwrap_err();
        assert_eq!(
            error.to_string(),
            r#"malformed perfdata "load1=abc": the value is not a number"#
        );
        let control = parse("a=\x1b[31m").next().unwrap().unwrap_err();
        assert!(!control.to_string().contains('\x1b'), "escape codes must not reach logs");
    }

    #[test]
    fn chained_parts_are_read_in_order() {
        let labels: Vec<_> = Items::chained("a=1 b=2", "  c=3\n")
            .map(|item| item.unwrap().label.into_owned())
            .collect();
        assert_eq!(labels, ["a", "b", "c"]);
        assert_eq!(Items::chained("", "x=1").count(), 1);
        assert_eq!(Items::chained("'x", "y=1").count(), 2);
    }

    #[test]
    fn iterator_is_fused_and_clonable() {
        let mut items = parse("a=1");
        let copy = items.clone();
        assert!(items.next().is_some());
        assert!(items.next().is_none());
        assert!(items.next().is_none());
        assert_eq!(copy.count(), 1);
    }

    // monitoring-plugins 2.3 outputs, perfdata part only; the whole outputs
    // are tested in the output module.
    #[test]
    fn real_plugin_perfdata() {
        let load = all(
            "load1=0.350;15.000;30.000;0; load5=0.290;10.000;25.000;0; load15=0.220;5.000;20.000;0; ",
        );
        assert_eq!(load.len(), 3);
        let load15 = load[2].as_ref().unwrap();
        assert_eq!((load15.label.as_ref(), load15.value), ("load15", Some(0.22)));
        assert_eq!(
            (load15.warn, load15.crit, load15.min, load15.max),
            (Some("5.000"), Some("20.000"), Some(0.0), None)
        );
        let thresholds = load15.thresholds().unwrap();
        assert_eq!(
            thresholds.warning,
            Some(Range { start: Some(0.0), end: Some(5.0), inside: false })
        );
        assert_eq!(thresholds.evaluate(21.0), State::Critical);

        let swap = one("swap=2147479552B;0;0;0;2147479552");
        assert_eq!(
            (swap.value, swap.uom, swap.max),
            (Some(2_147_479_552.0), "B", Some(2_147_479_552.0))
        );
        // check_swap 2.3 writes unset free-space limits as "0", which range
        // syntax reads as 0:0. We report what the plugin wrote.
        assert_eq!(swap.thresholds().unwrap().evaluate(1.0), State::Critical);

        let ping = all("rta=0.051000ms;100.000000;500.000000;0.000000 pl=0%;20;60;0");
        let rta = ping[0].as_ref().unwrap();
        assert_eq!((rta.value, rta.uom, rta.min, rta.max), (Some(0.051), "ms", Some(0.0), None));
        let pl = ping[1].as_ref().unwrap();
        assert_eq!((pl.value, pl.uom, pl.crit), (Some(0.0), "%", Some("60")));
    }

    #[test]
    fn display_writes_the_guidelines_syntax() {
        for (text, canonical) in [
            ("load1=0.350;15.000;30.000;0;", "load1=0.35;15.000;30.000;0"),
            ("'free space'=1MB", "'free space'=1MB"),
            ("'plain'=1", "plain=1"),
            ("'it''s'=1", "'it''s'=1"),
            ("it's=1", "'it''s'=1"),
            ("'a=b'=1", "'a=b'=1"),
            ("x=U;;;;", "x=U"),
            ("x=1;;5", "x=1;;5"),
            ("x=1;;;;9", "x=1;;;;9"),
            ("x=1e3s", "x=1000s"),
            ("x=5..ms", "x=5..ms"),
            ("x=5.5.ms", "x=5.5.ms"),
            ("x=-0", "x=-0"),
        ] {
            let parsed = one(text);
            assert_eq!(parsed.to_string(), canonical, "{text:?}");
            assert_eq!(one(canonical), parsed, "{canonical:?}");
        }
    }

    #[test]
    fn owned_form_round_trips() {
        let borrowed = one("'it''s'=5MB;1;2;0;10");
        let owned = borrowed.to_owned_data();
        assert_eq!(
            owned,
            PerfData {
                label: "it's".into(),
                value: Some(5.0),
                uom: Some("MB".into()),
                warn: Some("1".into()),
                crit: Some("2".into()),
                min: Some(0.0),
                max: Some(10.0),
            }
        );
        assert_eq!(owned.as_datum(), borrowed);
        assert_eq!(owned.to_string(), borrowed.to_string());
        assert_eq!(one("x=1").to_owned_data().uom, None);
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serde_uses_the_field_names() {
        let owned = one("'a b'=U;1").to_owned_data();
        let json = serde_json::to_value(&owned).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "label": "a b", "value": null, "uom": null, "warn": "1",
                "crit": null, "min": null, "max": null,
            })
        );
        assert_eq!(serde_json::from_value::<PerfData>(json).unwrap(), owned);
    }

    fn finite() -> impl Strategy<Value = f64> {
        use proptest::num::f64::{NEGATIVE, NORMAL, POSITIVE, SUBNORMAL, ZERO};
        prop_oneof![
            (-1000i32..1000).prop_map(f64::from),
            POSITIVE | NEGATIVE | NORMAL | SUBNORMAL | ZERO,
        ]
    }

    const UNITS: &[&str] =
        &["s", "ms", "us", "%", "B", "KB", "MB", "GB", "TB", "c", "KiB", "°C", "req/s", ".x", "e"];

    fn perf_data() -> impl Strategy<Value = PerfData> {
        let label = "[a-zA-Z0-9 ='_/.:;|~@\t\\-éü€😀]{1,12}";
        let uom = proptest::option::of(proptest::sample::select(UNITS));
        let range = proptest::option::of("@?(~:)?[0-9]{1,3}(:[0-9]{0,3})?");
        (
            label,
            proptest::option::of(finite()),
            uom,
            range.clone(),
            range,
            proptest::option::of(finite()),
            proptest::option::of(finite()),
        )
            .prop_map(|(label, value, uom, warn, crit, min, max)| PerfData {
                label,
                value,
                // `U` has no unit in the grammar.
                uom: uom.filter(|_| value.is_some()).map(str::to_owned),
                warn,
                crit,
                min,
                max,
            })
    }

    proptest! {
        #[test]
        fn formatted_perfdata_parses_back(data in perf_data()) {
            let text = data.to_string();
            let mut items = parse(&text);
            let parsed = items.next().expect("one item").map(|datum| datum.to_owned_data());
            prop_assert_eq!(parsed, Ok(data), "{}", text);
            prop_assert!(items.next().is_none());
        }

        #[test]
        fn parsed_items_format_back_to_themselves(text in "[ a-z0-9'=;:~@.,eEU%+\\-]{0,40}") {
            for datum in parse(&text).flatten() {
                let formatted = datum.to_string();
                prop_assert_eq!(one(&formatted), datum, "{}", formatted);
            }
        }
    }
}
