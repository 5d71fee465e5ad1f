//! Tells systemd how the daemon is doing (sd_notify(3)): ready, reloading,
//! stopping, still alive.
//!
//! Every function is a no-op when NOTIFY_SOCKET is unset, that is whenever
//! the agent was not started by systemd with `Type=notify`. A failure to
//! notify is logged at debug level and never stops the agent: monitoring
//! that keeps running is worth more than a message systemd will time out on.

use std::time::Duration;

use sd_notify::NotifyState;

/// The agent is up: config loaded, state restored, control socket bound.
/// `status` is the one-line text `systemctl status` shows.
pub fn ready(status: &str) {
    let status = one_line(status);
    send(&[NotifyState::Ready, NotifyState::Status(&status)]);
}

/// A reload began; [`ready`] ends it.
pub fn reloading() {
    if !enabled() {
        return;
    }
    // sd_notify(3) asks for MONOTONIC_USEC with RELOADING=1, so systemd can
    // tell this reload from an earlier one; without it the reload is still
    // announced.
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[
            NotifyState::Reloading,
            now,
            NotifyState::Status("Reloading the configuration."),
        ]),
        Err(error) => {
            tracing::debug!(message = "Cannot read the monotonic clock for systemd.", %error);
            send(&[NotifyState::Reloading, NotifyState::Status("Reloading the configuration.")]);
        }
    }
}

/// The agent is shutting down (after SIGTERM or SIGINT).
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("Stopping.")]);
}

/// The main loop is alive; due every [`watchdog_interval`].
pub fn watchdog() {
    send(&[NotifyState::Watchdog]);
}

/// How often to call [`watchdog`]: half of systemd's `WatchdogSec=`, as
/// sd_watchdog_enabled(3) recommends, so one late ping is not fatal. `None`
/// when systemd watches nothing (no `WatchdogSec=`, or WATCHDOG_PID names
/// another process) or nobody listens.
pub fn watchdog_interval() -> Option<Duration> {
    if !enabled() {
        return None;
    }
    half(sd_notify::watchdog_enabled())
}

fn half(timeout: Option<Duration>) -> Option<Duration> {
    timeout.filter(|timeout| !timeout.is_zero()).map(|timeout| timeout / 2)
}

fn enabled() -> bool {
    std::env::var_os("NOTIFY_SOCKET").is_some()
}

fn send(states: &[NotifyState<'_>]) {
    if !enabled() {
        return;
    }
    if let Err(error) = sd_notify::notify(states) {
        tracing::debug!(message = "Cannot notify systemd.", %error);
    }
}

/// The notify protocol is one `KEY=value` per line: a newline in a status
/// text (from a plugin's summary, say) would start a bogus assignment.
fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watchdog_is_pinged_at_half_its_timeout() {
        assert_eq!(half(Some(Duration::from_secs(60))), Some(Duration::from_secs(30)));
        assert_eq!(half(Some(Duration::ZERO)), None, "WatchdogSec=0 means no watchdog");
        assert_eq!(half(None), None);
    }

    #[test]
    fn status_texts_stay_on_one_line() {
        assert_eq!(one_line("3 checks\nREADY=1\r\n"), "3 checks READY=1  ");
    }
}
