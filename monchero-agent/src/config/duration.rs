//! Durations as people write them in the config: `"30s"`, `"5m"`, `"1h30m"`.

use std::fmt;
use std::time::Duration;

use serde::de::{Deserialize, Deserializer, Error, Visitor};

/// A humantime duration string, longer than zero: every duration in the
/// config is an interval or a timeout, and zero makes neither sense.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HumanVisitor;
        impl Visitor<'_> for HumanVisitor {
            type Value = HumanDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#"a duration string like "30s""#)
            }
            // The message follows the key's name (see `raw::describe`).
            fn visit_str<E: Error>(self, text: &str) -> Result<HumanDuration, E> {
                match humantime::parse_duration(text.trim()) {
                    Ok(duration) if duration.is_zero() => Err(E::custom(format!(
                        r#"{text:?} must be longer than zero; write e.g. "30s""#
                    ))),
                    Ok(duration) => Ok(HumanDuration(duration)),
                    Err(cause) => Err(E::custom(format!(
                        r#"{text:?} is not a duration ({cause}); write e.g. "30s", "5m" or "1h30m""#
                    ))),
                }
            }
        }
        deserializer.deserialize_str(HumanVisitor)
    }
}
