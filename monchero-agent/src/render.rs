//! Check results as an operator reads them in a terminal.

use std::borrow::Cow;
use std::io::{self, Write};
use std::time::Duration;

use monchero_core::CheckResult;
use monchero_core::perfdata::PerfData;
use owo_colors::OwoColorize;
use tabled::builder::Builder;
use tabled::settings::{Padding, Style};

use crate::color::Palette;

/// One coloured line (state, check name when there is one, summary,
/// duration and flags), then the long output, then a perfdata table.
pub fn write_result(
    out: &mut impl Write,
    name: Option<&str>,
    result: &CheckResult,
    palette: &Palette,
) -> io::Result<()> {
    let state = result.state;
    // Pad before styling: escape codes would count towards the width.
    write!(out, "{} ", format_args!("{:<8}", state.label()).style(palette.state(state)))?;
    if let Some(name) = name {
        write!(out, "{}  ", name.style(palette.strong()))?;
    }
    write!(
        out,
        "{}  {}",
        sanitize(&result.summary, false),
        format_args!("({})", Millis(result.duration)).style(palette.dim()),
    )?;
    if result.timed_out {
        write!(out, " {}", "[timed out]".style(palette.dim()))?;
    }
    if result.truncated {
        write!(out, " {}", "[output truncated]".style(palette.dim()))?;
    }
    writeln!(out)?;
    if !result.long_output.is_empty() {
        writeln!(out, "{}", sanitize(&result.long_output, true))?;
    }
    if !result.perfdata.is_empty() {
        writeln!(out)?;
        for line in perfdata_table(&result.perfdata).lines() {
            writeln!(out, "{}", line.trim_end())?;
        }
    }
    Ok(())
}

fn perfdata_table(perfdata: &[PerfData]) -> String {
    let number = |value: Option<f64>| value.map(|v| v.to_string()).unwrap_or_default();
    let text = |value: &Option<String>| {
        value.as_deref().map(|v| sanitize(v, false).into_owned()).unwrap_or_default()
    };
    let mut builder = Builder::default();
    builder.push_record(["label", "value", "warn", "crit", "min", "max"]);
    for item in perfdata {
        let value = match item.value {
            Some(value) => format!("{value}{}", item.uom.as_deref().unwrap_or("")),
            None => "U".to_owned(),
        };
        builder.push_record([
            sanitize(&item.label, false).into_owned(),
            value,
            text(&item.warn),
            text(&item.crit),
            number(item.min),
            number(item.max),
        ]);
    }
    let mut table = builder.build();
    table.with(Style::blank()).with(Padding::new(0, 3, 0, 0));
    table.to_string()
}

/// Plugin output is untrusted: control characters (escape sequences above
/// all) would drive the operator's terminal. They are shown as U+FFFD;
/// newlines and tabs survive where they mean something.
pub fn sanitize(text: &str, multiline: bool) -> Cow<'_, str> {
    let bad = |c: char| c.is_control() && !(c == '\t' || (multiline && c == '\n'));
    if text.chars().any(bad) {
        Cow::Owned(text.chars().map(|c| if bad(c) { '\u{fffd}' } else { c }).collect())
    } else {
        Cow::Borrowed(text)
    }
}

/// A run's duration: milliseconds below ten seconds, seconds above.
struct Millis(Duration);

impl std::fmt::Display for Millis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let millis = self.0.as_secs_f64() * 1000.0;
        if millis < 10.0 {
            write!(f, "{millis:.1} ms")
        } else if millis < 10_000.0 {
            write!(f, "{millis:.0} ms")
        } else {
            write!(f, "{:.1} s", millis / 1000.0)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_from_plugins_never_reach_the_terminal() {
        assert_eq!(sanitize("OK \x1b[2J done", false), "OK \u{fffd}[2J done");
        assert_eq!(sanitize("a\nb", true), "a\nb");
        assert_eq!(sanitize("a\nb", false), "a\u{fffd}b");
        assert!(matches!(sanitize("plain\ttext", false), Cow::Borrowed(_)));
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(Millis(Duration::from_micros(1500)).to_string(), "1.5 ms");
        assert_eq!(Millis(Duration::from_millis(250)).to_string(), "250 ms");
        assert_eq!(Millis(Duration::from_secs(61)).to_string(), "61.0 s");
    }
}
