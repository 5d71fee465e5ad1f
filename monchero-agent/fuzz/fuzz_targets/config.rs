//! Arbitrary text as the agent's config file: what `config check`, the
//! start and every SIGHUP reload read. An operator's typo, a half-saved
//! file or a binary dropped into conf.d must give errors that point inside
//! the text, never a panic.
//!
//! Run with `cargo fuzz run config -s none` (stable) from monchero-agent/.

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

/// An empty directory of its own for the file to be "in", so that relative
/// includes and secret files find nothing and every run sees the same.
fn file() -> &'static PathBuf {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("monchero-fuzz-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("the fuzz directory");
        dir.join("agent.toml")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    monchero_agent::fuzzing::config(text, file());
});
