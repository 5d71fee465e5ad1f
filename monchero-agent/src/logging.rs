//! Logs of the daemon: tracing events to stderr, which systemd's journal
//! captures with their priority prefix.

use tracing_subscriber::EnvFilter;

/// Logs at `info` unless MONCHERO_LOG (tracing's filter syntax, e.g.
/// `debug` or `monchero=debug`) says otherwise. Colour only on a terminal.
pub fn init() {
    let filter = EnvFilter::try_from_env("MONCHERO_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let under_journal = std::env::var_os("JOURNAL_STREAM").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()) && !under_journal);
    // The journal stamps every line itself.
    if under_journal {
        builder.without_time().init();
    } else {
        builder.init();
    }
}
