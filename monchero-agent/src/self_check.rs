//! `builtin:agent`: the agent watching itself — whether it keeps up with
//! its schedule, how late checks start, and how much memory it holds.

use std::time::{Duration, SystemTime};

use monchero_core::perfdata::PerfData;
use monchero_core::{CheckResult, State};

/// Start lateness, in power-of-two microsecond buckets: bucket `i` holds
/// latenesses below `2^i` µs. Fixed size, so recording never allocates.
#[derive(Debug, Clone, Default)]
pub struct Lateness {
    buckets: [u64; 32],
    count: u64,
}

impl Lateness {
    /// Records one run that started `late` after its planned time.
    pub fn record(&mut self, late: Duration) {
        let micros = u64::try_from(late.as_micros()).unwrap_or(u64::MAX);
        let bucket = (u64::BITS - micros.leading_zeros()) as usize;
        self.buckets[bucket.min(self.buckets.len() - 1)] += 1;
        self.count += 1;
    }

    /// The upper bound of the bucket holding quantile `q` (0..=1).
    pub fn quantile(&self, q: f64) -> Duration {
        if self.count == 0 {
            return Duration::ZERO;
        }
        let rank = ((self.count as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (bucket, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Duration::from_micros(1u64 << bucket);
            }
        }
        Duration::from_micros(1u64 << (self.buckets.len() - 1))
    }
}

/// Counters the daemon keeps about itself.
#[derive(Debug, Clone, Default)]
pub struct AgentStats {
    /// Runs finished since the agent started.
    pub runs: u64,
    /// Regular slots skipped because a check could not keep its interval.
    pub skipped: u64,
    /// Runs stopped by their timeout.
    pub timed_out: u64,
    /// Plugin runs that could not be started (fork or exec failed).
    pub spawn_failures: u64,
    /// The cause of the latest of those, for the self-check's summary.
    pub last_spawn_failure: Option<String>,
    /// `spawn_failures` at the previous self-check.
    pub spawn_failures_at_last_check: u64,
    /// Timed-out runs whose processes could not be killed (another user's,
    /// no cgroup): each may still be running.
    pub unkillable: u64,
    /// Action runs that failed or timed out.
    pub action_failures: u64,
    /// How late runs started against their planned time.
    pub lateness: Lateness,
    /// The last state file write failed (disk full, permissions).
    pub state_write_error: Option<String>,
    /// State file writes started.
    pub state_writes: u64,
    /// Time the main loop spent encoding the state for those writes: the
    /// part of a write that can delay the schedule (the fsyncs and the
    /// rename run on a blocking thread).
    pub state_encoding: Duration,
    /// `skipped` at the previous self-check, to tell new skips from old.
    pub skipped_at_last_check: u64,
    /// When the `[pull]` certificate expires, if the API is on.
    pub pull_cert_expires: Option<SystemTime>,
    /// The last renewal of the `[pull]` certificate failed (it is retried).
    pub cert_renewal_error: Option<String>,
    /// The last CRL refresh failed (the installed CRL stays).
    pub crl_refresh_error: Option<String>,
    /// Push targets whose oldest unsent record is older than
    /// `crate::push::BACKLOG_WARNING`: (target, records queued, age).
    pub push_backlog: Vec<(String, u64, Duration)>,
}

/// How long before the `[pull]` certificate expires the self-check warns:
/// time to renew it before pollers are locked out.
pub const CERT_WARNING: Duration = Duration::from_secs(30 * 86400);

/// The self-check's result at `now`. WARNING when slots were skipped since
/// the last self-check, a push backlog is old, or the `[pull]` certificate
/// expires within [`CERT_WARNING`]; CRITICAL when the state cannot be saved or that
/// certificate has expired.
pub fn run(stats: &mut AgentStats, checks: usize, now: SystemTime) -> CheckResult {
    let rss = resident_bytes();
    let new_skips = stats.skipped - stats.skipped_at_last_check;
    stats.skipped_at_last_check = stats.skipped;
    let (p50, p99) = (stats.lateness.quantile(0.5), stats.lateness.quantile(0.99));
    let mut problems = Vec::new();
    if let Some(error) = &stats.state_write_error {
        problems.push((State::Critical, format!("cannot save state: {error}")));
    }
    // (when, time left; `None` once expired)
    let cert = stats.pull_cert_expires.map(|at| (at, at.duration_since(now).ok()));
    match cert {
        Some((at, None)) => problems.push((
            State::Critical,
            format!("the [pull] certificate expired at {}", crate::status_report::rfc3339(at)),
        )),
        Some((at, Some(left))) if left < CERT_WARNING => problems.push((
            State::Warning,
            format!(
                "the [pull] certificate expires in {} days ({}): renew it",
                left.as_secs() / 86400,
                crate::status_report::rfc3339(at)
            ),
        )),
        _ => {}
    }
    if let Some(error) = &stats.cert_renewal_error {
        problems.push((State::Warning, format!("certificate renewal failed (retrying): {error}")));
    }
    if let Some(error) = &stats.crl_refresh_error {
        problems.push((State::Warning, format!("CRL refresh failed: {error}")));
    }
    if let Some((target, queued, age)) = stats.push_backlog.first() {
        let age = humantime::format_duration(Duration::from_secs(age.as_secs()));
        problems.push((
            State::Warning,
            format!("push target {target}: {queued} records unsent for {age}"),
        ));
    }
    let new_spawn_failures = stats.spawn_failures - stats.spawn_failures_at_last_check;
    stats.spawn_failures_at_last_check = stats.spawn_failures;
    if let (true, Some(cause)) = (new_spawn_failures > 0, &stats.last_spawn_failure) {
        problems.push((
            State::Warning,
            format!("{new_spawn_failures} plugin runs could not start; the last: {cause}"),
        ));
    }
    if stats.unkillable > 0 {
        problems.push((
            State::Warning,
            format!(
                "{} timed-out plugin runs could not be killed (owned by another user, no \
                 delegated cgroup)",
                stats.unkillable
            ),
        ));
    }
    if new_skips > 0 {
        let message = format!("{new_skips} runs skipped: checks cannot keep their interval");
        problems.push((State::Warning, message));
    }
    let state = problems.iter().map(|(state, _)| *state).fold(State::Ok, State::worst);
    let problem: String = problems.iter().map(|(_, message)| format!(" - {message}")).collect();
    let summary = format!(
        "AGENT {}{problem} - {checks} checks, {} runs, {} skipped, p99 start lateness {:.1} ms, RSS {:.1} MiB",
        state.label(),
        stats.runs,
        stats.skipped,
        p99.as_secs_f64() * 1000.0,
        rss.unwrap_or(0) as f64 / (1024.0 * 1024.0),
    );
    let gauge = |label: &str, value: f64, uom: &str| PerfData {
        label: label.to_owned(),
        value: Some(value),
        uom: (!uom.is_empty()).then(|| uom.to_owned()),
        warn: None,
        crit: None,
        min: Some(0.0),
        max: None,
    };
    let mut perfdata = vec![
        gauge("checks", checks as f64, ""),
        gauge("runs", stats.runs as f64, "c"),
        gauge("skipped", stats.skipped as f64, "c"),
        gauge("timed_out", stats.timed_out as f64, "c"),
        gauge("spawn_failures", stats.spawn_failures as f64, "c"),
        gauge("unkillable", stats.unkillable as f64, "c"),
        gauge("lateness_p50", p50.as_secs_f64(), "s"),
        gauge("lateness_p99", p99.as_secs_f64(), "s"),
        gauge("state_writes", stats.state_writes as f64, "c"),
        gauge("state_encoding", stats.state_encoding.as_secs_f64(), "s"),
    ];
    if let Some(rss) = rss {
        perfdata.push(gauge("rss", rss as f64, "B"));
    }
    if let Some((_, Some(left))) = cert {
        perfdata.push(gauge("pull_cert_validity", left.as_secs_f64(), "s"));
    }
    CheckResult {
        state,
        exit_code: None,
        summary,
        long_output: String::new(),
        perfdata,
        duration: Duration::ZERO,
        timed_out: false,
        truncated: false,
    }
}

/// VmRSS from /proc/self/status.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn lateness_quantiles_come_from_power_of_two_buckets() {
        let mut lateness = Lateness::default();
        assert_eq!(lateness.quantile(0.99), Duration::ZERO);
        for _ in 0..98 {
            lateness.record(Duration::from_micros(300));
        }
        lateness.record(Duration::from_millis(40));
        lateness.record(Duration::from_secs(2));
        assert_eq!(lateness.quantile(0.5), Duration::from_micros(512));
        assert_eq!(lateness.quantile(0.99), Duration::from_micros(65536));
        assert_eq!(lateness.quantile(1.0), Duration::from_micros(1 << 21));
    }

    #[test]
    fn new_skips_warn_once_and_write_errors_are_critical() {
        let mut stats = AgentStats { skipped: 3, ..AgentStats::default() };
        let now = SystemTime::now();
        let result = run(&mut stats, 5, now);
        assert_eq!(result.state, State::Warning);
        assert!(result.summary.starts_with("AGENT WARNING - 3 runs skipped"), "{}", result.summary);
        assert_eq!(run(&mut stats, 5, now).state, State::Ok, "the same skips do not warn again");
        stats.state_write_error = Some("No space left on device".into());
        let result = run(&mut stats, 5, now);
        assert_eq!(result.state, State::Critical);
        assert!(result.summary.contains("cannot save state: No space left on device"));
        assert!(result.perfdata.iter().any(|p| p.label == "rss" && p.value.unwrap_or(0.0) > 0.0));
    }

    #[test]
    fn state_writes_and_their_encoding_time_are_reported() {
        let mut stats = AgentStats {
            state_writes: 7,
            state_encoding: Duration::from_millis(1500),
            ..AgentStats::default()
        };
        let result = run(&mut stats, 5, SystemTime::now());
        let value = |label: &str| result.perfdata.iter().find(|p| p.label == label).unwrap().value;
        assert_eq!(value("state_writes"), Some(7.0));
        assert_eq!(value("state_encoding"), Some(1.5));
    }

    #[test]
    fn failed_renewals_and_crl_refreshes_warn_until_they_succeed() {
        let mut stats = AgentStats {
            cert_renewal_error: Some("cannot reach https://ca:9444/".into()),
            crl_refresh_error: Some("the revocation list is not signed by the CA".into()),
            ..Default::default()
        };
        let result = run(&mut stats, 1, SystemTime::now());
        assert_eq!(result.state, State::Warning);
        assert!(
            result.summary.contains(
                "certificate renewal failed (retrying): cannot reach https://ca:9444/ - CRL \
                 refresh failed: the revocation list is not signed by the CA"
            ),
            "{}",
            result.summary
        );
        stats.cert_renewal_error = None;
        stats.crl_refresh_error = None;
        assert_eq!(run(&mut stats, 1, SystemTime::now()).state, State::Ok);
    }

    #[test]
    fn the_pull_certificate_warns_thirty_days_ahead_and_is_critical_once_expired() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let day = Duration::from_secs(86400);
        let mut stats =
            AgentStats { pull_cert_expires: Some(now + 31 * day), ..Default::default() };
        let result = run(&mut stats, 1, now);
        assert_eq!(result.state, State::Ok, "{}", result.summary);
        let validity = result.perfdata.iter().find(|p| p.label == "pull_cert_validity").unwrap();
        assert_eq!(validity.value, Some((31 * day).as_secs_f64()));

        stats.pull_cert_expires = Some(now + 29 * day + Duration::from_secs(5));
        let result = run(&mut stats, 1, now);
        assert_eq!(result.state, State::Warning);
        assert!(
            result.summary.starts_with(
                "AGENT WARNING - the [pull] certificate expires in 29 days (2027-02-13T08:00:05Z): renew it"
            ),
            "{}",
            result.summary
        );

        stats.pull_cert_expires = Some(now - day);
        let result = run(&mut stats, 1, now);
        assert_eq!(result.state, State::Critical);
        assert!(
            result.summary.contains("the [pull] certificate expired at 2027-01-14T08:00:00Z"),
            "{}",
            result.summary
        );
        assert!(!result.perfdata.iter().any(|p| p.label == "pull_cert_validity"));
    }

    #[test]
    fn failed_starts_warn_once_and_unkillable_runs_keep_warning() {
        let mut stats = AgentStats {
            spawn_failures: 4,
            last_spawn_failure: Some("cannot run /x: fork failed with EAGAIN".into()),
            ..AgentStats::default()
        };
        let result = run(&mut stats, 1, SystemTime::now());
        assert_eq!(result.state, State::Warning);
        assert!(
            result.summary.contains(
                "4 plugin runs could not start; the last: cannot run /x: fork failed with EAGAIN"
            ),
            "{}",
            result.summary
        );
        assert_eq!(run(&mut stats, 1, SystemTime::now()).state, State::Ok);
        stats.unkillable = 1;
        for _ in 0..2 {
            let result = run(&mut stats, 1, SystemTime::now());
            assert!(
                result.summary.contains("1 timed-out plugin runs could not be killed"),
                "{}",
                result.summary
            );
        }
    }

    #[test]
    fn an_old_push_backlog_warns() {
        let backlog = vec![("central".into(), 120, Duration::from_secs(420))];
        let mut stats = AgentStats { push_backlog: backlog, ..AgentStats::default() };
        let result = run(&mut stats, 5, SystemTime::now());
        assert_eq!(result.state, State::Warning);
        assert!(
            result
                .summary
                .starts_with("AGENT WARNING - push target central: 120 records unsent for 7m"),
            "{}",
            result.summary
        );
        stats.push_backlog.clear();
        assert_eq!(run(&mut stats, 5, SystemTime::now()).state, State::Ok);
    }
}
