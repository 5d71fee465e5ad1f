//! Arbitrary text through `Range::parse`, the threshold syntax operators
//! write on command lines (`-w 10:20`) and plugins echo in perfdata.
//!
//! Beyond "no panic": a range that parses formats to text that parses back
//! to itself, and `alerts` agrees with the definition (outside
//! `start..=end` alerts, inverted by `@`) on the values where a mistake
//! hides: the bounds, just past them, zero, the infinities and NaN.
//!
//! Run with `cargo fuzz run range -s none` (stable) from monchero-core/.

#![no_main]

use libfuzzer_sys::fuzz_target;
use monchero_core::threshold::{Range, Thresholds};
use monchero_core::State;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let range = match Range::parse(&text) {
        Ok(range) => range,
        Err(error) => {
            assert!(!error.to_string().is_empty());
            return;
        }
    };
    if let (Some(start), Some(end)) = (range.start, range.end) {
        assert!(start <= end, "{text:?} parsed to an empty range {range:?}");
    }
    let canonical = range.to_string();
    assert_eq!(Range::parse(&canonical), Ok(range), "{text:?} formatted as {canonical:?}");

    let mut probes = vec![0.0, -0.0, f64::INFINITY, f64::NEG_INFINITY, f64::NAN, f64::MAX, f64::MIN];
    for bound in [range.start, range.end].into_iter().flatten() {
        probes.extend([bound, bound.next_up(), bound.next_down()]);
    }
    let thresholds = Thresholds { warning: None, critical: Some(range) };
    for value in probes {
        let within = range.start.is_none_or(|start| value >= start)
            && range.end.is_none_or(|end| value <= end);
        let alerts = range.alerts(value);
        assert_eq!(alerts, within == range.inside, "{range:?} at {value}");
        let expected = if alerts { State::Critical } else { State::Ok };
        assert_eq!(thresholds.evaluate(value), expected);
    }
});
