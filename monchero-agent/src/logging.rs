//! Logs of the daemon: tracing events to the systemd journal when the
//! agent runs under systemd, with their priority (`journalctl -p warning`
//! works) and fields (`journalctl CHECK=web`); to stderr otherwise.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Logs at `info` unless MONCHERO_LOG (tracing's filter syntax, e.g.
/// `debug` or `monchero=debug`) says otherwise. Colour only on a terminal.
pub fn init() {
    let filter =
        || EnvFilter::try_from_env("MONCHERO_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // systemd sets JOURNAL_STREAM when stderr is connected to the journal.
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        if let Ok(journal) = tracing_journald::layer() {
            tracing_subscriber::registry().with(filter()).with(journal).init();
            return;
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
