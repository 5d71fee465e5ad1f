//! How a perfdata item becomes a Prometheus metric: its name, its type and
//! the factor that brings its value to a base unit.
//!
//! Prometheus asks for base units named in the metric (`_seconds`,
//! `_bytes`) and for ratios rather than percentages, so a value measured in
//! `ms` and one in `s` land in the same series family and can be compared.
//! The mapping is a pure function, shared by every sink that exports
//! perfdata (the `/metrics` endpoint and the remote-write sink), so the names
//! stay the same everywhere; they are documented in `docs/api.md` and must
//! not change.
//!
//! ```
//! use monchero_core::metric_name::{perfdata_metric, BaseUnit};
//!
//! let metric = perfdata_metric(Some("MB"));
//! assert_eq!(metric.name(), "monchero_perfdata_bytes");
//! assert_eq!(metric.unit, Some(BaseUnit::Bytes));
//! assert_eq!(metric.to_base(2.0), 2.0 * 1024.0 * 1024.0);
//! ```

/// The prefix of every perfdata metric.
pub const PERFDATA_PREFIX: &str = "monchero_perfdata";

/// The family of counter perfdata (unit `c`); its samples end in `_total`.
/// A family of its own: a counter named `monchero_perfdata` would clash
/// with the unitless gauge family of that name.
pub const COUNTER_FAMILY: &str = "monchero_perfdata_counter";

/// The prefix of the series holding perfdata limits (warning and critical
/// range ends, min, max).
pub const LIMIT_PREFIX: &str = "monchero_perfdata_limit";

/// A base unit a perfdata value is converted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BaseUnit {
    /// From `s`, `ms`, `us`, `µs`, `ns`.
    Seconds,
    /// From `B`, `KB`, `MB`, `GB`, `TB`, `PB` (powers of 1024, as the
    /// monitoring-plugins write them: check_disk's `MB` is 2^20 bytes) and
    /// `KiB` … `PiB`.
    Bytes,
    /// From `%`: 0 to 1, as Prometheus conventions ask for ratios.
    Ratio,
}

impl BaseUnit {
    /// The name suffix, without the underscore: `seconds`, `bytes`, `ratio`.
    pub fn as_str(self) -> &'static str {
        match self {
            BaseUnit::Seconds => "seconds",
            BaseUnit::Bytes => "bytes",
            BaseUnit::Ratio => "ratio",
        }
    }
}

/// Whether a series only goes up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MetricKind {
    /// Any value (the default for perfdata).
    Gauge,
    /// A monotonic counter: the `c` unit of the plugin guidelines.
    Counter,
}

/// How a perfdata item of one unit is exported.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PerfMetric {
    /// The base unit in the name, if the plugin's unit maps to one.
    pub unit: Option<BaseUnit>,
    /// Gauge or counter.
    pub kind: MetricKind,
    /// What a value in the plugin's unit is multiplied by to reach the
    /// base unit.
    pub scale: f64,
}

impl PerfMetric {
    /// The name of the samples as Prometheus stores them:
    /// `monchero_perfdata[_UNIT]`, or `monchero_perfdata_counter_total` for
    /// a counter. Unrecognised units give the plain `monchero_perfdata`: the
    /// value is kept as the plugin wrote it.
    pub fn name(&self) -> String {
        match self.kind {
            MetricKind::Gauge => self.family(),
            MetricKind::Counter => format!("{}_total", self.family()),
        }
    }

    /// The OpenMetrics family name: [`name`](Self::name) without a
    /// counter's `_total`.
    pub fn family(&self) -> String {
        self.stem(self.prefix())
    }

    /// The family name without its unit suffix, for encoders that append
    /// the unit themselves.
    pub fn prefix(&self) -> &'static str {
        match self.kind {
            MetricKind::Gauge => PERFDATA_PREFIX,
            MetricKind::Counter => COUNTER_FAMILY,
        }
    }

    /// The family name of this unit's limits:
    /// `monchero_perfdata_limit[_UNIT]`. Always a gauge: a counter's limits
    /// do not count anything.
    pub fn limit_name(&self) -> String {
        self.stem(LIMIT_PREFIX)
    }

    /// `value`, in the plugin's unit, converted to the base unit.
    pub fn to_base(&self, value: f64) -> f64 {
        value * self.scale
    }

    fn stem(&self, prefix: &str) -> String {
        match self.unit {
            Some(unit) => format!("{prefix}_{}", unit.as_str()),
            None => prefix.to_owned(),
        }
    }
}

/// The metric for a perfdata item whose unit of measurement is `uom`
/// (`None` or empty: no unit).
pub fn perfdata_metric(uom: Option<&str>) -> PerfMetric {
    let gauge = |unit, scale| PerfMetric { unit: Some(unit), kind: MetricKind::Gauge, scale };
    const KIB: f64 = 1024.0;
    match uom.unwrap_or("") {
        "s" => gauge(BaseUnit::Seconds, 1.0),
        "ms" => gauge(BaseUnit::Seconds, 1e-3),
        "us" | "µs" => gauge(BaseUnit::Seconds, 1e-6),
        "ns" => gauge(BaseUnit::Seconds, 1e-9),
        "B" => gauge(BaseUnit::Bytes, 1.0),
        "KB" | "kB" | "KiB" => gauge(BaseUnit::Bytes, KIB),
        "MB" | "MiB" => gauge(BaseUnit::Bytes, KIB * KIB),
        "GB" | "GiB" => gauge(BaseUnit::Bytes, KIB * KIB * KIB),
        "TB" | "TiB" => gauge(BaseUnit::Bytes, KIB * KIB * KIB * KIB),
        "PB" | "PiB" => gauge(BaseUnit::Bytes, KIB * KIB * KIB * KIB * KIB),
        "%" => gauge(BaseUnit::Ratio, 0.01),
        "c" => PerfMetric { unit: None, kind: MetricKind::Counter, scale: 1.0 },
        _ => PerfMetric { unit: None, kind: MetricKind::Gauge, scale: 1.0 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_units_become_seconds() {
        for (uom, scale) in [("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("µs", 1e-6), ("ns", 1e-9)] {
            let metric = perfdata_metric(Some(uom));
            assert_eq!(metric.name(), "monchero_perfdata_seconds", "{uom}");
            assert_eq!(metric.limit_name(), "monchero_perfdata_limit_seconds", "{uom}");
            assert_eq!(metric.to_base(2.0), 2.0 * scale, "{uom}");
        }
    }

    #[test]
    fn byte_units_become_bytes_in_powers_of_1024() {
        let cases = [
            ("B", 1.0),
            ("KB", 1024.0),
            ("kB", 1024.0),
            ("MB", 1_048_576.0),
            ("GB", 1_073_741_824.0),
            ("TB", 1_099_511_627_776.0),
            ("GiB", 1_073_741_824.0),
        ];
        for (uom, scale) in cases {
            let metric = perfdata_metric(Some(uom));
            assert_eq!(metric.name(), "monchero_perfdata_bytes", "{uom}");
            assert_eq!(metric.to_base(1.0), scale, "{uom}");
        }
    }

    #[test]
    fn percentages_become_ratios() {
        let metric = perfdata_metric(Some("%"));
        assert_eq!(metric.name(), "monchero_perfdata_ratio");
        assert_eq!(metric.to_base(42.0), 0.42);
        assert_eq!(metric.kind, MetricKind::Gauge);
    }

    #[test]
    fn the_counter_unit_is_a_total_with_plain_limits() {
        let metric = perfdata_metric(Some("c"));
        assert_eq!(metric.kind, MetricKind::Counter);
        assert_eq!(metric.name(), "monchero_perfdata_counter_total");
        assert_eq!(metric.family(), "monchero_perfdata_counter");
        assert_eq!(metric.limit_name(), "monchero_perfdata_limit");
        assert_eq!(metric.to_base(7.0), 7.0);
    }

    #[test]
    fn no_unit_or_an_unknown_one_is_a_plain_gauge_kept_as_written() {
        for uom in [None, Some(""), Some("users"), Some("b"), Some("Mb")] {
            let metric = perfdata_metric(uom);
            assert_eq!(metric.name(), "monchero_perfdata", "{uom:?}");
            assert_eq!(metric.unit, None);
            assert_eq!(metric.to_base(3.5), 3.5);
        }
    }
}
