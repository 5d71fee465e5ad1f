//! `monchero status`: the state of every check at a glance.
//!
//! Asks the running daemon over the control socket; when none answers,
//! reads the state file and says plainly that the data is stale and since
//! when. The exit status is the aggregate state, so scripts can use it;
//! `--wait-ok` makes it the last line of a deploy script.

use std::io::{self, IsTerminal, Write};
use std::time::{Duration, Instant, SystemTime};

use monchero_core::State;
use monchero_core::tracker::StateType;
use owo_colors::OwoColorize;

use crate::check_now::print;
use crate::cli::StatusArgs;
use crate::color::Palette;
use crate::config;
use crate::control::{self, ClientError, Request, Response};
use crate::push::TargetHealth;
use crate::render::sanitize;
use crate::state_file::ChangeRecord;
use crate::state_file::StateFile;
use crate::status_report::{CheckStatus, StatusReport, rfc3339};

/// A daemon that does not answer a status request in this time is wedged.
const STATUS_TIMEOUT: Duration = Duration::from_secs(5);
const WATCH_EVERY: Duration = Duration::from_secs(2);
const WAIT_OK_POLL: Duration = Duration::from_secs(1);

/// Shows the status; returns the exit status.
pub fn run(args: &StatusArgs, palette: &Palette) -> anyhow::Result<u8> {
    let path = args.config.config.clone().or_else(config::paths::client_fallback_config);
    let explicit = path.as_deref();
    let locations = match config::locations(explicit) {
        Some(locations) => locations,
        // Unreadable or not TOML: the full load says exactly what is wrong.
        None => match config::load(explicit) {
            Ok(config) => {
                config::Locations { state_dir: config.agent.state_dir, socket: config.agent.socket }
            }
            Err(errors) => {
                eprintln!("{errors}");
                return Ok(State::Unknown.exit_code());
            }
        },
    };
    let changes = args.changes.map(|window| window.as_secs().max(1));

    if args.wait_ok {
        return wait_ok(&locations, &args.names, args.timeout, palette);
    }
    loop {
        let Some(report) = fetch(&locations, changes, &args.names)? else {
            eprintln!(
                "monchero status: no state yet: no agent has run with the state directory {}",
                locations.state_dir.display()
            );
            return Ok(State::Unknown.exit_code());
        };
        if let Some(message) = missing_names(&report, &args.names) {
            eprintln!("{message}");
            return Ok(State::Unknown.exit_code());
        }
        if args.json {
            print(|out| {
                serde_json::to_writer(&mut *out, &report)?;
                writeln!(out)
            })?;
        } else {
            let redraw = args.watch && io::stdout().is_terminal();
            print(|out| {
                if redraw {
                    // Home and clear: redraw in place rather than scroll.
                    write!(out, "\x1b[H\x1b[2J")?;
                }
                render(out, &report, palette, terminal_width(), SystemTime::now())
            })?;
        }
        if !args.watch {
            return Ok(report.state.exit_code());
        }
        std::thread::sleep(WATCH_EVERY);
    }
}

/// The live report from the daemon, else the stale one from the state
/// file, else nothing.
fn fetch(
    locations: &config::Locations,
    changes_within_secs: Option<u64>,
    names: &[String],
) -> anyhow::Result<Option<StatusReport>> {
    let request = Request::Status { changes_within_secs, checks: names.to_vec() };
    let report = match control::request(&locations.socket, &request, STATUS_TIMEOUT) {
        Ok(Response::Status(report)) => report,
        Ok(other) => anyhow::bail!("the agent answered a status request with {other:?}"),
        Err(ClientError::Failed(error)) => return Err(error),
        Err(ClientError::NotRunning) => {
            let Some(snapshot) = StateFile::new(&locations.state_dir).read()? else {
                return Ok(None);
            };
            let window = changes_within_secs.map(Duration::from_secs);
            StatusReport::build(&snapshot, true, SystemTime::now(), window, names)
        }
    };
    Ok(Some(report))
}

/// Says which of the `names` asked for are not in `report`, if any: a
/// typo must not pass for an all-clear.
fn missing_names(report: &StatusReport, names: &[String]) -> Option<String> {
    let unknown: Vec<&str> = names
        .iter()
        .filter(|name| !report.checks.iter().any(|check| &check.name == *name))
        .map(String::as_str)
        .collect();
    (!unknown.is_empty()).then(|| {
        format!(
            "monchero status: no check is named {}; `monchero status` lists them",
            unknown.join(", ")
        )
    })
}

fn wait_ok(
    locations: &config::Locations,
    names: &[String],
    timeout: Duration,
    palette: &Palette,
) -> anyhow::Result<u8> {
    let deadline = Instant::now() + timeout;
    loop {
        let report = fetch(locations, None, names)?;
        if let Some(message) = report.as_ref().and_then(|report| missing_names(report, names)) {
            eprintln!("{message}");
            return Ok(State::Unknown.exit_code());
        }
        match &report {
            None => {
                eprintln!(
                    "monchero status: no agent has run with the state directory {}",
                    locations.state_dir.display()
                );
                return Ok(State::Unknown.exit_code());
            }
            Some(report) if report.stale => {
                eprintln!("monchero status: the agent is not running; its checks will not change");
                print(|out| render(out, report, palette, terminal_width(), SystemTime::now()))?;
                return Ok(State::Unknown.exit_code());
            }
            Some(report) if report.all_hard_ok() => {
                print(|out| render(out, report, palette, terminal_width(), SystemTime::now()))?;
                return Ok(0);
            }
            Some(report) if Instant::now() >= deadline => {
                eprintln!(
                    "monchero status: not every check was OK within {}",
                    humantime::format_duration(timeout)
                );
                print(|out| render(out, report, palette, terminal_width(), SystemTime::now()))?;
                // Not settled but nothing worse than OK (a soft recovery):
                // still not the all-clear the caller waited for.
                return Ok(match report.state {
                    State::Ok => State::Unknown.exit_code(),
                    state => state.exit_code(),
                });
            }
            Some(_) => std::thread::sleep(WAIT_OK_POLL),
        }
    }
}

/// The width to cut summaries to on a terminal; `None` (no cutting) when
/// the output goes to a file or a pipe, where every character matters.
fn terminal_width() -> Option<usize> {
    if !io::stdout().is_terminal() {
        return None;
    }
    if let Some(columns) = std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()) {
        return Some(columns);
    }
    rustix::termios::tcgetwinsize(io::stdout())
        .ok()
        .map(|size| usize::from(size.ws_col))
        .filter(|&w| w > 0)
}

/// The status as an operator reads it: one summary line, then one row per
/// check, worst first.
pub fn render(
    out: &mut impl Write,
    report: &StatusReport,
    palette: &Palette,
    width: Option<usize>,
    now: SystemTime,
) -> io::Result<()> {
    let counts = State::ALL.map(|state| report.checks.iter().filter(|c| c.state == state).count());
    write!(
        out,
        "{}  {}  ",
        report.host.style(palette.strong()),
        format_args!("{}", report.state).style(palette.state(report.state))
    )?;
    let mut parts: Vec<String> = [State::Critical, State::Warning, State::Unknown, State::Ok]
        .iter()
        .filter(|state| counts[usize::from(state.exit_code())] > 0)
        .map(|state| format!("{} {}", counts[usize::from(state.exit_code())], state.as_str()))
        .collect();
    if parts.is_empty() {
        parts.push("no checks".to_owned());
    }
    write!(out, "{}", parts.join(", "))?;
    if report.stale {
        let since = ago(&report.updated_at, now);
        let warning = format!("agent NOT RUNNING: data from {} ({since} ago)", report.updated_at);
        writeln!(out, "  {}", warning.style(palette.state(State::Warning)))?;
    } else {
        writeln!(
            out,
            "  {}",
            format_args!("· agent up {}", ago(&report.agent.started_at, now)).style(palette.dim())
        )?;
    }

    let name_width = report.checks.iter().map(|c| c.name.chars().count()).max().unwrap_or(0);
    for check in &report.checks {
        write_row(out, check, palette, name_width, width, now)?;
    }
    if report.deliveries_pending > 0 {
        let plural = if report.deliveries_pending == 1 { "" } else { "s" };
        let line = format!(
            "{} notification{plural} waiting to be delivered (see the agent's log)",
            report.deliveries_pending
        );
        writeln!(out, "{}", line.style(palette.state(State::Warning)))?;
    }
    for target in &report.push {
        write_push(out, target, palette, now)?;
    }
    if let Some(changes) = &report.changes {
        writeln!(out)?;
        if changes.is_empty() {
            writeln!(out, "{}", "No state changes in that period.".style(palette.dim()))?;
        }
        for change in changes {
            write_change(out, change, palette)?;
        }
    }
    Ok(())
}

fn write_row(
    out: &mut impl Write,
    check: &CheckStatus,
    palette: &Palette,
    name_width: usize,
    width: Option<usize>,
    now: SystemTime,
) -> io::Result<()> {
    let kind = match check.state_type {
        StateType::Hard => "HARD",
        StateType::Soft => "SOFT",
    };
    let attempt = format!("{kind} {}/{}", check.attempt, check.max_attempts);
    let since = ago(&check.since, now);
    let flapping = if check.flapping { " ~flapping" } else { "" };
    let failed_action = match &check.last_action {
        Some(action) if !action.ok => format!(" [action {} failed]", action.action),
        _ => String::new(),
    };
    // Where to look at 3 a.m.: the output itself is in `status --json`.
    let collected = if check.collected.is_empty() {
        String::new()
    } else {
        let names: Vec<&str> = check.collected.iter().map(|c| c.action.as_str()).collect();
        format!(" [collected: {}]", names.join(", "))
    };
    let prefix = format!("{:<8}  {attempt:<9} {since:>4}  {:<name_width$}  ", "", check.name);
    let summary = sanitize(&check.summary, false);
    let room = width.map(|w| {
        let marks = flapping.len() + failed_action.chars().count() + collected.chars().count();
        w.saturating_sub(prefix.chars().count() + marks)
    });
    let summary: String = match room {
        Some(room) if summary.chars().count() > room => {
            summary.chars().take(room.saturating_sub(1)).chain(['…']).collect()
        }
        _ => summary.into_owned(),
    };
    write!(
        out,
        "{}  {} {since:>4}  {:<name_width$}  {summary}",
        format_args!("{:<8}", check.state.label()).style(palette.state(check.state)),
        format_args!("{attempt:<9}").style(if check.state_type == StateType::Soft {
            palette.dim()
        } else {
            palette.plain()
        }),
        check.name,
    )?;
    // Styled only when present: an empty styled string still emits codes.
    for (mark, state) in [(flapping, State::Warning), (failed_action.as_str(), State::Critical)] {
        if !mark.is_empty() {
            write!(out, "{}", mark.style(palette.state(state)))?;
        }
    }
    if !collected.is_empty() {
        write!(out, "{}", collected.style(palette.dim()))?;
    }
    writeln!(out)
}

/// One push target: `push central  12 queued (oldest 40s)  sent 3s ago`,
/// with the last error and what was lost when there is any.
fn write_push(
    out: &mut impl Write,
    target: &TargetHealth,
    palette: &Palette,
    now: SystemTime,
) -> io::Result<()> {
    let since = |time: Option<SystemTime>| {
        time.map_or_else(|| "never".to_owned(), |t| format!("{} ago", ago(&rfc3339(t), now)))
    };
    let oldest = match target.oldest_unsent {
        Some(time) if target.queued > 0 => format!(" (oldest {})", ago(&rfc3339(time), now)),
        _ => String::new(),
    };
    let state = match target.oldest_unsent.and_then(|t| now.duration_since(t).ok()) {
        Some(age) if target.queued > 0 && age > crate::push::BACKLOG_WARNING => State::Warning,
        _ => State::Ok,
    };
    write!(
        out,
        "{}  {}  {}  last sent {}",
        format_args!("push {}", target.name).style(palette.strong()),
        format_args!("{} queued{oldest}", target.queued).style(palette.state(state)),
        target.url.style(palette.dim()),
        since(target.last_success),
    )?;
    let lost: Vec<String> = [
        (target.evicted, "dropped by spool_max"),
        (target.damaged, "damaged stretches skipped"),
        (target.write_failed, "not spooled (write failed)"),
        (target.rejected, "rejected by the server"),
    ]
    .iter()
    .filter(|(count, _)| *count > 0)
    .map(|(count, what)| format!("{count} {what}"))
    .collect();
    if !lost.is_empty() {
        write!(out, "  {}", lost.join(", ").style(palette.state(State::Warning)))?;
    }
    writeln!(out)?;
    if let Some(error) = &target.last_error {
        let line =
            format!("  last error {}: {}", since(target.last_error_at), sanitize(error, false));
        writeln!(out, "{}", line.style(palette.state(State::Warning)))?;
    }
    Ok(())
}

fn write_change(out: &mut impl Write, change: &ChangeRecord, palette: &Palette) -> io::Result<()> {
    let kind = match change.state_type {
        StateType::Hard => "HARD",
        StateType::Soft => "SOFT",
    };
    writeln!(
        out,
        "{}  {}  {} → {}  {kind} {}/{}  {}",
        rfc3339(change.at).style(palette.dim()),
        change.check,
        change.from.style(palette.state(change.from)),
        change.to.style(palette.state(change.to)),
        change.attempt,
        change.max_attempts,
        sanitize(&change.summary, false),
    )
}

/// How long ago an RFC 3339 time was, compactly: `42s`, `3m`, `5h`, `2d`.
fn ago(rfc3339: &str, now: SystemTime) -> String {
    let Ok(then) = humantime::parse_rfc3339(rfc3339) else { return "?".to_owned() };
    let secs = now.duration_since(then).unwrap_or_default().as_secs();
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        3600..172_800 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86400),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ages_are_compact() {
        let now = humantime::parse_rfc3339("2026-11-27T12:00:00Z").unwrap();
        assert_eq!(ago("2026-11-27T11:59:18Z", now), "42s");
        assert_eq!(ago("2026-11-27T11:57:00Z", now), "3m");
        assert_eq!(ago("2026-11-27T07:00:00Z", now), "5h");
        assert_eq!(ago("2026-11-24T12:00:00Z", now), "3d");
        assert_eq!(ago("garbage", now), "?");
    }
}
