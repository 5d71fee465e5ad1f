//! Splitting a plugin's output into summary, long output and perfdata.
//!
//! The layout is the multi-line form of the Nagios Plugin Development
//! Guidelines ("Plugin output"):
//!
//! ```text
//! TEXT OUTPUT | OPTIONAL PERFDATA
//! LONG TEXT LINE 1
//! LONG TEXT LINE 2
//! LONG TEXT LINE N | PERFDATA LINE 2
//! PERFDATA LINE 3
//! ```
//!
//! - The first line is the summary; what follows its first `|` is perfdata.
//! - Later lines are long output up to the first later line with a `|`: the
//!   text before that `|` ends the long output, and everything after it, all
//!   further lines included, is perfdata.
//! - The summary is trimmed of white space at both ends, the long output at
//!   its end. CRLF reads as LF.
//!
//! Parsing cannot fail and borrows from the text; the long output is copied
//! only when it has CRLF line ends to rewrite.
//!
//! # Where Nagios Core and Icinga 2 differ
//!
//! Nagios Core 4 (`parse_check_output`) follows the layout above; since 4.4
//! a `|` that starts the first line leaves the summary empty, as here. Its
//! worker reads output of any length, so the runner's cap is the only limit
//! here too.
//!
//! Icinga 2 (`PluginUtility::ParseCheckOutput`) looks for a `|` on every line
//! independently: lines after a perfdata line are long output again unless
//! they hold a `|` themselves, so `PERFDATA LINE 3` above is text to Icinga 2
//! and perfdata to Nagios and to us. It also splits lines at a lone `\r`.

use std::borrow::Cow;

use crate::perfdata;

/// A plugin's stdout split per the guidelines' multi-line form. Borrowed.
#[derive(Debug, Clone, PartialEq)]
pub struct Output<'a> {
    /// The first line up to its first `|`, trimmed; `""` for empty output.
    pub summary: &'a str,
    /// The later lines up to the first `|` among them, trimmed at the end,
    /// with CRLF turned into LF; `""` when there are no later lines.
    pub long_output: Cow<'a, str>,
    /// The perfdata after the first line's `|`, then after the later lines'.
    perfdata: [&'a str; 2],
}

/// Splits plugin output into summary, long output and perfdata.
pub fn parse(text: &str) -> Output<'_> {
    let (first_line, later_lines) = text.split_once('\n').unwrap_or((text, ""));
    let (summary, first_perfdata) = split_perfdata(first_line);
    let (long_output, later_perfdata) = split_perfdata(later_lines);
    Output {
        summary: summary.trim(),
        long_output: crlf_to_lf(long_output.trim_end()),
        perfdata: [first_perfdata.trim_ascii(), later_perfdata.trim_ascii()],
    }
}

/// Splits at the first `|`: the text before it, and the perfdata after it.
fn split_perfdata(text: &str) -> (&str, &str) {
    text.split_once('|').unwrap_or((text, ""))
}

/// Rewrites CRLF line ends, copying only when there is one; a lone `\r` is
/// text and stays.
fn crlf_to_lf(text: &str) -> Cow<'_, str> {
    if text.contains("\r\n") { Cow::Owned(text.replace("\r\n", "\n")) } else { Cow::Borrowed(text) }
}

impl<'a> Output<'a> {
    /// The perfdata items of the first line, then those of the later lines.
    pub fn perfdata(&self) -> perfdata::Items<'a> {
        let [first, later] = self.perfdata;
        perfdata::Items::chained(first, later)
    }

    /// The raw perfdata texts, trimmed: after the first line's `|`, and after
    /// the `|` on a later line (with all the lines that follow). Either may be
    /// empty.
    pub fn perfdata_text(&self) -> [&'a str; 2] {
        self.perfdata
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::perfdata::{PerfDatum, PerfdataErrorKind};
    use crate::state::State;
    use crate::threshold::Range;
    use proptest::prelude::*;

    /// monitoring-plugins 2.3 outputs, as the plugins print them.
    const CHECK_LOAD: &str = "OK - load average: 0.35, 0.29, 0.22|load1=0.350;15.000;30.000;0; load5=0.290;10.000;25.000;0; load15=0.220;5.000;20.000;0; \n";
    const CHECK_DISK: &str =
        "DISK OK - free space: / 41234 MB (78% inode=97%);| /=11234MB;42000;47000;0;52489\n";
    const CHECK_SWAP: &str =
        "SWAP OK - 100% free (2047 MB out of 2047 MB) |swap=2147479552B;0;0;0;2147479552\n";
    const CHECK_PROCS: &str = "PROCS OK: 112 processes | procs=112;;;0;\n";
    const CHECK_USERS: &str = "USERS OK - 1 users currently logged in |users=1;5;10;0\n";
    const CHECK_TCP: &str = "TCP OK - 0.000 second response time on 127.0.0.1 port 22|time=0.000123s;;;0.000000;10.000000\n";
    const CHECK_HTTP: &str = "HTTP OK: HTTP/1.0 200 OK - 1234 bytes in 0.002 second response time |time=0.001529s;;;0.000000;10.000000 size=1234B;;;0\n";
    const CHECK_PING: &str = "PING OK - Packet loss = 0%, RTA = 0.05 ms|rta=0.051000ms;100.000000;500.000000;0.000000 pl=0%;20;60;0\n";

    /// The multi-line example of the guidelines.
    const GUIDELINES_DISK: &str =
        "DISK OK - free space: / 3326 MB (56%); | /=2643MB;5948;5958;0;5968
/ 15272 MB (77%);
/boot 68 MB (69%);
/home 69357 MB (27%);
/var/log 819 MB (84%); | /boot=68MB;88;93;0;98
/home=69357MB;253404;253409;0;253414 
/var/log=818MB;970;975;0;980
";

    fn items<'a>(output: &Output<'a>) -> Vec<PerfDatum<'a>> {
        output.perfdata().map(|item| item.unwrap()).collect()
    }

    fn labels(output: &Output<'_>) -> Vec<String> {
        output.perfdata().map(|item| item.unwrap().label.into_owned()).collect()
    }

    fn range(text: &str) -> Option<Range> {
        Some(Range::parse(text).unwrap())
    }

    #[test]
    fn single_line_with_perfdata() {
        let output = parse("OK - fine | a=1 b=2");
        assert_eq!(output.summary, "OK - fine");
        assert_eq!(output.long_output, "");
        assert_eq!(output.perfdata_text(), ["a=1 b=2", ""]);
        assert_eq!(labels(&output), ["a", "b"]);
    }

    #[test]
    fn single_line_without_perfdata() {
        let output = parse("CRITICAL - down\n");
        assert_eq!(output.summary, "CRITICAL - down");
        assert_eq!(output.long_output, "");
        assert_eq!(output.perfdata_text(), ["", ""]);
        assert_eq!(output.perfdata().count(), 0);
    }

    #[test]
    fn empty_input() {
        for text in ["", "\n", "   ", "\r\n\r\n"] {
            let output = parse(text);
            assert_eq!(output.summary, "", "{text:?}");
            assert_eq!(output.long_output, "", "{text:?}");
            assert_eq!(output.perfdata().count(), 0, "{text:?}");
        }
    }

    #[test]
    fn summary_is_trimmed_at_both_ends() {
        assert_eq!(parse("  \tOK  \r\n").summary, "OK");
        assert_eq!(parse(" OK |a=1").summary, "OK");
        assert_eq!(parse("|a=1").summary, "");
        assert_eq!(labels(&parse("|a=1")), ["a"]);
    }

    #[test]
    fn only_the_first_pipe_of_the_first_line_splits() {
        let output = parse("OK | a=1 | b=2");
        assert_eq!(output.summary, "OK");
        assert_eq!(output.perfdata_text()[0], "a=1 | b=2");
        let parsed: Vec<_> = output.perfdata().collect();
        assert_eq!(parsed.len(), 3);
        assert_eq!(parsed[1].as_ref().unwrap_err().kind, PerfdataErrorKind::MissingEquals);
    }

    #[test]
    fn long_output_without_perfdata() {
        let output = parse("OK\nline 1\n  line 2  \n\n");
        assert_eq!(output.summary, "OK");
        assert_eq!(output.long_output, "line 1\n  line 2");
        assert_eq!(output.perfdata().count(), 0);
    }

    #[test]
    fn guidelines_generic_form() {
        let output = parse(
            "TEXT OUTPUT | OPTIONAL PERFDATA\nLONG TEXT LINE 1\nLONG TEXT LINE 2\n...\n\
             LONG TEXT LINE N | PERFDATA LINE 2\nPERFDATA LINE 3\nPERFDATA LINE 4\n...\n",
        );
        assert_eq!(output.summary, "TEXT OUTPUT");
        assert_eq!(output.long_output, "LONG TEXT LINE 1\nLONG TEXT LINE 2\n...\nLONG TEXT LINE N");
        assert_eq!(
            output.perfdata_text(),
            ["OPTIONAL PERFDATA", "PERFDATA LINE 2\nPERFDATA LINE 3\nPERFDATA LINE 4\n..."]
        );
    }

    #[test]
    fn guidelines_disk_example() {
        let output = parse(GUIDELINES_DISK);
        assert_eq!(output.summary, "DISK OK - free space: / 3326 MB (56%);");
        assert_eq!(
            output.long_output,
            "/ 15272 MB (77%);\n/boot 68 MB (69%);\n/home 69357 MB (27%);\n/var/log 819 MB (84%);"
        );
        assert!(matches!(output.long_output, Cow::Borrowed(_)));
        let parsed = items(&output);
        let labels: Vec<_> = parsed.iter().map(|datum| datum.label.as_ref()).collect();
        assert_eq!(labels, ["/", "/boot", "/home", "/var/log"]);
        assert_eq!(parsed[3].value, Some(818.0));
        assert_eq!(parsed[3].uom, "MB");
        assert_eq!(parsed[2].max, Some(253_414.0));
    }

    #[test]
    fn a_later_line_may_start_with_the_pipe() {
        let output = parse("OK\nmore\n| a=1\nb=2");
        assert_eq!(output.long_output, "more");
        assert_eq!(labels(&output), ["a", "b"]);
    }

    #[test]
    fn crlf_reads_as_lf() {
        let output = parse("OK | a=1\r\nline 1\r\nline\r2\r\nlast | b=2\r\nc=3\r\n");
        assert_eq!(output.summary, "OK");
        assert_eq!(output.long_output, "line 1\nline\r2\nlast");
        assert!(matches!(output.long_output, Cow::Owned(_)));
        assert_eq!(labels(&output), ["a", "b", "c"]);

        let trailing_only = parse("OK\r\nline 1\r\n");
        assert_eq!(trailing_only.long_output, "line 1");
        assert!(matches!(trailing_only.long_output, Cow::Borrowed(_)));
    }

    #[test]
    fn check_load() {
        let output = parse(CHECK_LOAD);
        assert_eq!(output.summary, "OK - load average: 0.35, 0.29, 0.22");
        let parsed = items(&output);
        assert_eq!(parsed.len(), 3);
        let expected = [
            ("load1", 0.35, "15.000", "30.000"),
            ("load5", 0.29, "10.000", "25.000"),
            ("load15", 0.22, "5.000", "20.000"),
        ];
        for (datum, (label, value, warn, crit)) in parsed.iter().zip(expected) {
            assert_eq!(datum.label, label);
            assert_eq!(datum.value, Some(value));
            assert_eq!(datum.uom, "");
            assert_eq!((datum.warn, datum.crit), (Some(warn), Some(crit)));
            assert_eq!((datum.min, datum.max), (Some(0.0), None));
        }
        let load1 = parsed[0].thresholds().unwrap();
        assert_eq!(load1.warning, range("0:15"));
        assert_eq!(load1.critical, range("0:30"));
        assert_eq!(load1.evaluate(0.35), State::Ok);
        assert_eq!(load1.evaluate(16.0), State::Warning);
    }

    #[test]
    fn check_disk() {
        let output = parse(CHECK_DISK);
        assert_eq!(output.summary, "DISK OK - free space: / 41234 MB (78% inode=97%);");
        let [root] = items(&output).try_into().unwrap();
        assert_eq!((root.label.as_ref(), root.value, root.uom), ("/", Some(11234.0), "MB"));
        assert_eq!((root.min, root.max), (Some(0.0), Some(52489.0)));
        let thresholds = root.thresholds().unwrap();
        assert_eq!((thresholds.warning, thresholds.critical), (range("42000"), range("47000")));
        assert_eq!(thresholds.evaluate(11234.0), State::Ok);
    }

    #[test]
    fn check_swap() {
        let output = parse(CHECK_SWAP);
        assert_eq!(output.summary, "SWAP OK - 100% free (2047 MB out of 2047 MB)");
        let [swap] = items(&output).try_into().unwrap();
        assert_eq!(
            (swap.label.as_ref(), swap.value, swap.uom),
            ("swap", Some(2_147_479_552.0), "B")
        );
        assert_eq!((swap.warn, swap.crit), (Some("0"), Some("0")));
        assert_eq!((swap.min, swap.max), (Some(0.0), Some(2_147_479_552.0)));
        assert_eq!(swap.thresholds().unwrap().warning, range("0:0"));
    }

    #[test]
    fn check_procs() {
        let output = parse(CHECK_PROCS);
        assert_eq!(output.summary, "PROCS OK: 112 processes");
        let [procs] = items(&output).try_into().unwrap();
        assert_eq!((procs.label.as_ref(), procs.value, procs.uom), ("procs", Some(112.0), ""));
        assert_eq!((procs.warn, procs.crit, procs.min, procs.max), (None, None, Some(0.0), None));
        assert_eq!(procs.thresholds().unwrap(), Default::default());
    }

    #[test]
    fn check_users() {
        let output = parse(CHECK_USERS);
        assert_eq!(output.summary, "USERS OK - 1 users currently logged in");
        let [users] = items(&output).try_into().unwrap();
        assert_eq!((users.label.as_ref(), users.value, users.uom), ("users", Some(1.0), ""));
        assert_eq!((users.min, users.max), (Some(0.0), None));
        let thresholds = users.thresholds().unwrap();
        assert_eq!((thresholds.warning, thresholds.critical), (range("5"), range("10")));
        assert_eq!(thresholds.evaluate(7.0), State::Warning);
    }

    #[test]
    fn check_tcp() {
        let output = parse(CHECK_TCP);
        assert_eq!(output.summary, "TCP OK - 0.000 second response time on 127.0.0.1 port 22");
        let [time] = items(&output).try_into().unwrap();
        assert_eq!((time.label.as_ref(), time.value, time.uom), ("time", Some(0.000123), "s"));
        assert_eq!((time.warn, time.crit, time.min, time.max), (None, None, Some(0.0), Some(10.0)));
    }

    #[test]
    fn check_http() {
        let output = parse(CHECK_HTTP);
        assert_eq!(
            output.summary,
            "HTTP OK: HTTP/1.0 200 OK - 1234 bytes in 0.002 second response time"
        );
        let [time, size] = items(&output).try_into().unwrap();
        assert_eq!((time.label.as_ref(), time.value, time.uom), ("time", Some(0.001529), "s"));
        assert_eq!((time.min, time.max), (Some(0.0), Some(10.0)));
        assert_eq!((size.label.as_ref(), size.value, size.uom), ("size", Some(1234.0), "B"));
        assert_eq!((size.min, size.max), (Some(0.0), None));
    }

    #[test]
    fn check_ping() {
        let output = parse(CHECK_PING);
        assert_eq!(output.summary, "PING OK - Packet loss = 0%, RTA = 0.05 ms");
        let [rta, pl] = items(&output).try_into().unwrap();
        assert_eq!((rta.label.as_ref(), rta.value, rta.uom), ("rta", Some(0.051), "ms"));
        assert_eq!((rta.min, rta.max), (Some(0.0), None));
        let rta_thresholds = rta.thresholds().unwrap();
        assert_eq!((rta_thresholds.warning, rta_thresholds.critical), (range("100"), range("500")));
        assert_eq!((pl.label.as_ref(), pl.value, pl.uom), ("pl", Some(0.0), "%"));
        assert_eq!(pl.thresholds().unwrap().evaluate(70.0), State::Critical);
    }

    #[test]
    fn a_malformed_item_keeps_its_neighbours() {
        let output = parse("OK | a=1 b=0,5 c=3\nlong | d=x e=5");
        let results: Vec<_> = output.perfdata().collect();
        let good: Vec<_> = results.iter().flatten().map(|datum| datum.label.as_ref()).collect();
        assert_eq!(good, ["a", "c", "e"]);
        let bad: Vec<_> =
            results.iter().filter_map(|item| item.as_ref().err()).map(|error| error.item).collect();
        assert_eq!(bad, ["b=0,5", "d=x"]);
    }

    #[test]
    fn perfdata_items_borrow_from_the_input() {
        let text = String::from("OK | 'a b'=1");
        let output = parse(&text);
        let datum = output.perfdata().next().unwrap().unwrap();
        drop(output);
        assert!(matches!(datum.label, Cow::Borrowed("a b")));
    }

    proptest! {
        #[test]
        fn any_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            exercise(&String::from_utf8_lossy(&bytes));
        }

        #[test]
        fn plugin_like_text_never_panics(text in "[ a-zA-Z0-9'=;:~@.,|%\r\n\t\\-]{0,200}") {
            exercise(&text);
        }
    }

    /// Runs everything a consumer would on `text` and checks what must hold
    /// for any input.
    fn exercise(text: &str) {
        let output = parse(text);
        assert!(!output.summary.contains('\n'));
        assert_eq!(output.summary, output.summary.trim());
        for item in output.perfdata() {
            match item {
                Ok(datum) => {
                    if let Ok(thresholds) = datum.thresholds() {
                        let _ = datum.value.map(|value| thresholds.evaluate(value));
                        for range in [thresholds.warning, thresholds.critical].into_iter().flatten()
                        {
                            assert_eq!(Range::parse(&range.to_string()), Ok(range));
                        }
                    }
                    let formatted = datum.to_string();
                    let reparsed: Vec<_> = perfdata::parse(&formatted).collect();
                    assert_eq!(reparsed, [Ok(datum.clone())], "{formatted}");
                }
                Err(error) => {
                    assert!(!error.item.is_empty());
                    let _ = error.to_string();
                }
            }
        }
    }
}
