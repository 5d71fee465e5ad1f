//! `/metrics`: the agent's state in the OpenMetrics text format.
//!
//! The daemon hands out a [`MetricsSnapshot`] (over the same channel as
//! `status`), and a prometheus-client [`Collector`] renders it at scrape
//! time: nothing is updated per check result, so the hot path pays nothing
//! for metrics nobody scrapes. Perfdata names come from
//! `monchero_core::metric_name`; the list of every metric is in
//! `docs/api.md`.

use std::collections::BTreeMap;
use std::time::SystemTime;

use monchero_core::State;
use monchero_core::metric_name::{BaseUnit, LIMIT_PREFIX, MetricKind, PerfMetric, perfdata_metric};
use monchero_core::perfdata::PerfData;
use monchero_core::threshold::Range;
use monchero_core::tracker::StateType;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};
use serde::{Deserialize, Serialize};

use crate::self_check::AgentStats;
use crate::state_file::Snapshot;

/// The `Content-Type` of [`MetricsSnapshot::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What `/metrics` shows, taken from the daemon's state in one go.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MetricsSnapshot {
    pub checks: Vec<CheckMetrics>,
    pub agent: AgentCounters,
}

/// One check's series.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckMetrics {
    pub name: String,
    pub state: State,
    pub hard: bool,
    /// The last run's duration; `None` before the first run.
    pub duration_seconds: Option<f64>,
    /// When the last run finished, in seconds since the Unix epoch.
    pub last_run_seconds: Option<f64>,
    pub perfdata: Vec<PerfData>,
}

/// The agent's counters since it started.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AgentCounters {
    pub checks_run: u64,
    pub checks_skipped: u64,
    pub checks_timed_out: u64,
    pub action_failures: u64,
}

impl MetricsSnapshot {
    /// The metrics of the daemon's `snapshot` and `stats`.
    pub fn build(snapshot: &Snapshot, stats: &AgentStats) -> MetricsSnapshot {
        let checks = snapshot
            .checks
            .iter()
            .map(|(name, saved)| {
                let state = &saved.state;
                let result = state.last_result.as_ref();
                CheckMetrics {
                    name: name.clone(),
                    state: state.state,
                    hard: state.state_type == StateType::Hard,
                    duration_seconds: result.map(|result| result.duration.as_secs_f64()),
                    last_run_seconds: state.last_check.and_then(unix_seconds),
                    perfdata: result.map(|result| result.perfdata.clone()).unwrap_or_default(),
                }
            })
            .collect();
        let agent = AgentCounters {
            checks_run: stats.runs,
            checks_skipped: stats.skipped,
            checks_timed_out: stats.timed_out,
            action_failures: stats.action_failures,
        };
        MetricsSnapshot { checks, agent }
    }

    /// The OpenMetrics text, `# EOF` included.
    pub fn render(self) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(SnapshotCollector(self)));
        let mut text = String::new();
        // Writing to a String cannot fail, and every name and label is
        // escaped by the encoder; an error here would be a bug in it.
        if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &registry) {
            tracing::error!(message = "Cannot encode the metrics.", %error);
        }
        text
    }
}

fn unix_seconds(time: SystemTime) -> Option<f64> {
    time.duration_since(SystemTime::UNIX_EPOCH).ok().map(|since| since.as_secs_f64())
}

/// Renders a [`MetricsSnapshot`] when the registry is encoded.
#[derive(Debug)]
struct SnapshotCollector(MetricsSnapshot);

type Labels = Vec<(&'static str, String)>;

/// The series of one metric family: labels and value.
#[derive(Debug, Default)]
struct Family {
    series: Vec<(Labels, f64)>,
}

impl Collector for SnapshotCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let MetricsSnapshot { checks, agent } = &self.0;
        let per_check = |value: &dyn Fn(&CheckMetrics) -> Option<f64>| Family {
            series: checks
                .iter()
                .filter_map(|check| Some((vec![("check", check.name.clone())], value(check)?)))
                .collect(),
        };
        let state = per_check(&|check| Some(f64::from(check.state.exit_code())));
        gauge(
            &mut encoder,
            "monchero_check_state",
            "State of the check: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
            None,
            &state,
        )?;
        let hard = per_check(&|check| Some(if check.hard { 1.0 } else { 0.0 }));
        gauge(
            &mut encoder,
            "monchero_check_state_hard",
            "1 when the check's state is hard, 0 while it is soft.",
            None,
            &hard,
        )?;
        let duration = per_check(&|check| check.duration_seconds);
        gauge(
            &mut encoder,
            "monchero_check_duration",
            "Duration of the check's last run.",
            Some(&Unit::Seconds),
            &duration,
        )?;
        let last_run = per_check(&|check| check.last_run_seconds);
        gauge(
            &mut encoder,
            "monchero_check_last_run_timestamp",
            "When the check last ran, in seconds since the Unix epoch.",
            Some(&Unit::Seconds),
            &last_run,
        )?;

        let (values, limits) = perfdata_families(checks);
        // The encoder appends the unit to the name it is given, so it gets
        // the name without one; the test below holds the result to the
        // names `metric_name` documents.
        for ((kind, unit), family) in &values {
            let metric = PerfMetric { unit: *unit, kind: *kind, scale: 1.0 };
            let unit = unit.map(prometheus_unit);
            match kind {
                MetricKind::Gauge => gauge(
                    &mut encoder,
                    metric.prefix(),
                    "Perfdata value of a check, in the base unit of the name.",
                    unit.as_ref(),
                    family,
                )?,
                MetricKind::Counter => counter(
                    &mut encoder,
                    metric.prefix(),
                    "Perfdata counter (unit c) of a check.",
                    family,
                )?,
            }
        }
        for (unit, family) in &limits {
            let unit = unit.map(prometheus_unit);
            gauge(
                &mut encoder,
                LIMIT_PREFIX,
                "Perfdata limits of a check (min, max, warning and critical range ends), in the base unit of the name.",
                unit.as_ref(),
                family,
            )?;
        }

        let agent_counter = |value: u64| Family { series: vec![(Vec::new(), value as f64)] };
        counter(
            &mut encoder,
            "monchero_checks_run",
            "Check runs finished since the agent started.",
            &agent_counter(agent.checks_run),
        )?;
        counter(
            &mut encoder,
            "monchero_checks_skipped",
            "Regular runs skipped because a check could not keep its interval.",
            &agent_counter(agent.checks_skipped),
        )?;
        counter(
            &mut encoder,
            "monchero_checks_timed_out",
            "Check runs stopped by their timeout.",
            &agent_counter(agent.checks_timed_out),
        )?;
        counter(
            &mut encoder,
            "monchero_action_failures",
            "Action runs that failed or timed out.",
            &agent_counter(agent.action_failures),
        )?;
        Ok(())
    }
}

/// The perfdata of every check, sorted into families: values by kind and
/// unit, limits by unit. An item without a value (`U`) has no value series;
/// a label a plugin repeats keeps its first item, since Prometheus refuses
/// a scrape with two samples of one series.
#[allow(clippy::type_complexity)]
fn perfdata_families(
    checks: &[CheckMetrics],
) -> (BTreeMap<(MetricKind, Option<BaseUnit>), Family>, BTreeMap<Option<BaseUnit>, Family>) {
    let mut values: BTreeMap<(MetricKind, Option<BaseUnit>), Family> = BTreeMap::new();
    let mut limits: BTreeMap<Option<BaseUnit>, Family> = BTreeMap::new();
    for check in checks {
        let mut seen = std::collections::HashSet::new();
        for item in check.perfdata.iter().filter(|item| seen.insert(item.label.as_str())) {
            let metric = perfdata_metric(item.uom.as_deref());
            let labels = || vec![("check", check.name.clone()), ("label", item.label.clone())];
            if let Some(value) = item.value {
                let family = values.entry((metric.kind, metric.unit)).or_default();
                family.series.push((labels(), metric.to_base(value)));
            }
            let family = limits.entry(metric.unit).or_default();
            for (limit, value) in item_limits(item) {
                let mut labels = labels();
                labels.push(("limit", limit));
                family.series.push((labels, metric.to_base(value)));
            }
        }
    }
    limits.retain(|_, family| !family.series.is_empty());
    (values, limits)
}

/// An item's limits as (`limit` label, value): `min`, `max`, and the
/// finite ends of its ranges as `warning_low`, `warning_high`,
/// `critical_low`, `critical_high`; an `@` range (alert inside) gives
/// `warning_inside_low` and so on. A threshold that does not parse is left
/// out, as it is when the state is evaluated.
pub(crate) fn item_limits(item: &PerfData) -> Vec<(String, f64)> {
    let mut limits = Vec::new();
    limits.extend(item.min.map(|min| ("min".to_owned(), min)));
    limits.extend(item.max.map(|max| ("max".to_owned(), max)));
    for (level, text) in [("warning", &item.warn), ("critical", &item.crit)] {
        let Some(range) = text.as_deref().and_then(|text| Range::parse(text).ok()) else {
            continue;
        };
        let inside = if range.inside { "_inside" } else { "" };
        limits.extend(range.start.map(|low| (format!("{level}{inside}_low"), low)));
        limits.extend(range.end.map(|high| (format!("{level}{inside}_high"), high)));
    }
    limits
}

fn prometheus_unit(unit: BaseUnit) -> Unit {
    match unit {
        BaseUnit::Seconds => Unit::Seconds,
        BaseUnit::Bytes => Unit::Bytes,
        // prometheus-client's own `Ratios` would name it `_ratios`; the
        // convention (and our documented name) is `_ratio`.
        BaseUnit::Ratio => Unit::Other("ratio".to_owned()),
    }
}

fn gauge(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    family: &Family,
) -> Result<(), std::fmt::Error> {
    if family.series.is_empty() {
        return Ok(());
    }
    let mut metric =
        encoder.encode_descriptor(name, help, unit, ConstGauge::new(0.0).metric_type())?;
    for (labels, value) in &family.series {
        // An agent-wide series has no labels, and is the family's only one.
        if labels.is_empty() {
            return ConstGauge::new(*value).encode(metric);
        }
        ConstGauge::new(*value).encode(metric.encode_family(labels)?)?;
    }
    Ok(())
}

fn counter(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    family: &Family,
) -> Result<(), std::fmt::Error> {
    if family.series.is_empty() {
        return Ok(());
    }
    let mut metric =
        encoder.encode_descriptor(name, help, None, ConstCounter::new(0.0).metric_type())?;
    for (labels, value) in &family.series {
        // An agent-wide series has no labels, and is the family's only one.
        if labels.is_empty() {
            return ConstCounter::new(*value).encode(metric);
        }
        ConstCounter::new(*value).encode(metric.encode_family(labels)?)?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashMap;

    use monchero_core::output;

    use super::*;

    fn check(name: &str, state: State, hard: bool, plugin_output: &str) -> CheckMetrics {
        let perfdata = output::parse(plugin_output)
            .perfdata()
            .filter_map(Result::ok)
            .map(|datum| datum.to_owned_data())
            .collect();
        CheckMetrics {
            name: name.into(),
            state,
            hard,
            duration_seconds: Some(0.25),
            last_run_seconds: Some(1_800_000_000.0),
            perfdata,
        }
    }

    /// A small parser of the text format: sample name with labels → value;
    /// also checks that every family is declared once, before its samples.
    fn parse(text: &str) -> HashMap<String, f64> {
        assert!(text.ends_with("# EOF\n"), "{text}");
        let mut types = HashMap::new();
        let mut samples = HashMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (family, kind) = rest.split_once(' ').unwrap();
                assert!(
                    types.insert(family.to_owned(), kind.to_owned()).is_none(),
                    "{family} twice"
                );
            } else if !line.starts_with('#') {
                let (series, value) = line.rsplit_once(' ').unwrap();
                let name = series.split('{').next().unwrap();
                assert!(
                    types.keys().any(|family| name.starts_with(family.as_str())),
                    "{name} has no TYPE line"
                );
                assert!(
                    samples.insert(series.to_owned(), value.parse().unwrap()).is_none(),
                    "{series} twice"
                );
            }
        }
        samples
    }

    #[test]
    fn checks_perfdata_and_counters_render_with_stable_names_in_base_units() {
        let snapshot = MetricsSnapshot {
            checks: vec![
                check(
                    "disk",
                    State::Warning,
                    true,
                    "DISK WARNING | /=1820MB;1800;1900;0;2000 'free %'=9%;@5:10;~:3 time=12ms sent=42c users=3",
                ),
                check("ping", State::Ok, false, "PING OK | rta=0.5ms;100;200 bad=x"),
            ],
            agent: AgentCounters {
                checks_run: 7,
                checks_skipped: 1,
                checks_timed_out: 2,
                action_failures: 3,
            },
        };
        let samples = parse(&snapshot.render());
        let get = |series: &str| {
            *samples.get(series).unwrap_or_else(|| panic!("no {series} in {samples:#?}"))
        };
        assert_eq!(get(r#"monchero_check_state{check="disk"}"#), 1.0);
        assert_eq!(get(r#"monchero_check_state{check="ping"}"#), 0.0);
        assert_eq!(get(r#"monchero_check_state_hard{check="disk"}"#), 1.0);
        assert_eq!(get(r#"monchero_check_state_hard{check="ping"}"#), 0.0);
        assert_eq!(get(r#"monchero_check_duration_seconds{check="disk"}"#), 0.25);
        assert_eq!(get(r#"monchero_check_last_run_timestamp_seconds{check="ping"}"#), 1.8e9);
        assert_eq!(get(r#"monchero_perfdata_bytes{check="disk",label="/"}"#), 1820.0 * 1_048_576.0);
        assert_eq!(get(r#"monchero_perfdata_ratio{check="disk",label="free %"}"#), 0.09);
        assert_eq!(get(r#"monchero_perfdata_seconds{check="ping",label="rta"}"#), 0.0005);
        assert_eq!(get(r#"monchero_perfdata_counter_total{check="disk",label="sent"}"#), 42.0);
        assert_eq!(get(r#"monchero_perfdata{check="disk",label="users"}"#), 3.0);
        assert_eq!(
            get(r#"monchero_perfdata_limit_bytes{check="disk",label="/",limit="warning_high"}"#),
            1800.0 * 1_048_576.0
        );
        assert_eq!(
            get(r#"monchero_perfdata_limit_bytes{check="disk",label="/",limit="warning_low"}"#),
            0.0
        );
        assert_eq!(
            get(r#"monchero_perfdata_limit_bytes{check="disk",label="/",limit="max"}"#),
            2000.0 * 1_048_576.0
        );
        assert_eq!(
            get(
                r#"monchero_perfdata_limit_ratio{check="disk",label="free %",limit="warning_inside_high"}"#
            ),
            0.1
        );
        assert_eq!(
            get(
                r#"monchero_perfdata_limit_ratio{check="disk",label="free %",limit="critical_high"}"#
            ),
            0.03
        );
        assert!(
            !samples.contains_key(
                r#"monchero_perfdata_limit_ratio{check="disk",label="free %",limit="critical_low"}"#
            ),
            "~ is -infinity"
        );
        assert_eq!(get("monchero_checks_run_total"), 7.0);
        assert_eq!(get("monchero_checks_skipped_total"), 1.0);
        assert_eq!(get("monchero_checks_timed_out_total"), 2.0);
        assert_eq!(get("monchero_action_failures_total"), 3.0);
    }

    #[test]
    fn label_values_are_escaped_and_unknown_values_and_repeats_are_left_out() {
        let snapshot = MetricsSnapshot {
            checks: vec![check("we\"ird\nname", State::Unknown, true, "X | a=U b=1 b=2 'c\\d'=5")],
            agent: AgentCounters::default(),
        };
        let text = snapshot.render();
        let samples = parse(&text);
        assert_eq!(samples[r#"monchero_check_state{check="we\"ird\nname"}"#], 3.0);
        assert!(!text.contains(r#"label="a""#), "a has no value: {text}");
        assert_eq!(samples[r#"monchero_perfdata{check="we\"ird\nname",label="b"}"#], 1.0);
        assert_eq!(samples[r#"monchero_perfdata{check="we\"ird\nname",label="c\\d"}"#], 5.0);
    }

    #[test]
    fn a_check_not_run_yet_has_a_state_but_no_duration() {
        let mut unchecked = check("new", State::Ok, false, "");
        unchecked.duration_seconds = None;
        unchecked.last_run_seconds = None;
        let samples = parse(
            &MetricsSnapshot { checks: vec![unchecked], agent: AgentCounters::default() }.render(),
        );
        assert_eq!(samples[r#"monchero_check_state{check="new"}"#], 0.0);
        assert!(!samples.keys().any(|series| series.starts_with("monchero_check_duration")));
    }
}
