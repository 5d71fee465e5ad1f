//! Sizes as people write them in the config: `"64MiB"`, `"512 KiB"`, or a
//! plain number of bytes.

use std::fmt;

use serde::de::{Deserialize, Deserializer, Error, Visitor};

/// A size in bytes, larger than zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

/// The units a size may end with, and their factors.
const UNITS: [(&str, u64); 7] = [
    ("B", 1),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("KB", 1000),
    ("MB", 1000 * 1000),
    ("GB", 1000 * 1000 * 1000),
];

/// Parses `"64MiB"`, `"1.5 GB"`, `"4096"`; the message says what to write.
pub fn parse(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let split = trimmed.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let unit = unit.trim();
    let factor = if unit.is_empty() {
        Some(1)
    } else {
        UNITS.iter().find(|(name, _)| name.eq_ignore_ascii_case(unit)).map(|&(_, f)| f)
    };
    let bytes = match (number.parse::<f64>(), factor) {
        (Ok(value), Some(factor)) if value.is_finite() => value * factor as f64,
        _ => {
            return Err(format!(
                r#"{text:?} is not a size; write e.g. "64MiB", "512KiB" or a number of bytes"#
            ));
        }
    };
    if bytes < 1.0 || bytes >= u64::MAX as f64 {
        return Err(format!(r#"{text:?} must be at least one byte; write e.g. "64MiB""#));
    }
    Ok(bytes as u64)
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SizeVisitor;
        impl Visitor<'_> for SizeVisitor {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#"a size like "64MiB""#)
            }
            // The message follows the key's name (see `raw::describe`).
            fn visit_str<E: Error>(self, text: &str) -> Result<ByteSize, E> {
                parse(text).map(ByteSize).map_err(E::custom)
            }
            fn visit_i64<E: Error>(self, bytes: i64) -> Result<ByteSize, E> {
                match u64::try_from(bytes) {
                    Ok(bytes) if bytes > 0 => Ok(ByteSize(bytes)),
                    _ => Err(E::custom(format!(
                        r#"must be a positive size like "64MiB", not {bytes}"#
                    ))),
                }
            }
        }
        deserializer.deserialize_any(SizeVisitor)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn units_binary_and_decimal() {
        assert_eq!(parse("64MiB"), Ok(64 << 20));
        assert_eq!(parse("512 kib"), Ok(512 << 10));
        assert_eq!(parse("1.5GB"), Ok(1_500_000_000));
        assert_eq!(parse("4096"), Ok(4096));
        assert!(parse("64 parsecs").unwrap_err().contains("is not a size"));
        assert!(parse("0MiB").unwrap_err().contains("at least one byte"));
        assert!(parse("").is_err());
    }
}
