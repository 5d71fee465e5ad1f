//! Arbitrary bytes through everything the agent does with plugin output:
//! split it, parse every perfdata item and its thresholds, and format them.
//!
//! Beyond "no panic", it checks the round trip the agent relies on when it
//! stores perfdata as text: a parsed item, formatted, parses back to itself.
//!
//! Run with `cargo fuzz run output -s none` (stable) from monchero-core/.

#![no_main]

use libfuzzer_sys::fuzz_target;
use monchero_core::{output, perfdata, threshold::Range};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let parsed = output::parse(&text);
    assert!(!parsed.summary.contains('\n'));
    for item in parsed.perfdata() {
        let datum = match item {
            Ok(datum) => datum,
            Err(error) => {
                let _ = error.to_string();
                continue;
            }
        };
        match datum.thresholds() {
            Ok(thresholds) => {
                if let Some(value) = datum.value {
                    let _ = thresholds.evaluate(value);
                }
                for range in [thresholds.warning, thresholds.critical].into_iter().flatten() {
                    assert_eq!(Range::parse(&range.to_string()), Ok(range));
                }
            }
            Err(error) => {
                let _ = error.to_string();
            }
        }
        let formatted = datum.to_string();
        let mut reparsed = perfdata::parse(&formatted);
        assert_eq!(reparsed.next(), Some(Ok(datum.clone())), "{formatted}");
        assert_eq!(reparsed.next(), None);
        assert_eq!(datum.to_owned_data().as_datum(), datum);
    }
});
