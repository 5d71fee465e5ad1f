//! Where the agent looks for its config and keeps its state by default.
//!
//! Root gets the system locations a package and a systemd unit expect; any
//! other user gets the XDG base directories, so `monchero run` works for a
//! person trying it out without write access to `/etc` or `/var`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The config file read when `--config` is not given:
/// `/etc/monchero/agent.toml` for root, otherwise
/// `$XDG_CONFIG_HOME/monchero/agent.toml` (`~/.config/monchero/agent.toml`).
pub fn default_config_path() -> PathBuf {
    config_path_for(is_root(), var("XDG_CONFIG_HOME"), var("HOME"))
}

/// The config a client command (`status`, `check-now`) reads when
/// `--config` is not given and the user has none of their own: the system
/// agent's `/etc/monchero/agent.toml`, when it is readable. An operator in
/// group monchero then sees the system agent with a plain `monchero
/// status`, while `monchero run` never picks up a config meant for the
/// system daemon. `None` means the usual default applies.
pub fn client_fallback_config() -> Option<PathBuf> {
    let own = default_config_path();
    let system = PathBuf::from(SYSTEM_CONFIG);
    let use_system = !own.exists() && own != system && std::fs::File::open(&system).is_ok();
    use_system.then_some(system)
}

/// The control socket of an agent whose state is in `state_dir`, when the
/// config names none.
pub fn default_socket(state_dir: &Path) -> PathBuf {
    state_dir.join("monchero.sock")
}

/// Where a package installs the system agent's config.
const SYSTEM_CONFIG: &str = "/etc/monchero/agent.toml";

/// The state directory used when `[agent] state_dir` is not set:
/// `/var/lib/monchero` for root, otherwise `$XDG_STATE_HOME/monchero`
/// (`~/.local/state/monchero`).
pub fn default_state_dir() -> PathBuf {
    state_dir_for(is_root(), var("XDG_STATE_HOME"), var("HOME"))
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn var(name: &str) -> Option<OsString> {
    std::env::var_os(name)
}

/// The XDG directory from its variable, or `$HOME/<fallback>`. The XDG spec
/// says a relative value is invalid and must be ignored.
fn xdg_dir(xdg: Option<OsString>, home: Option<OsString>, fallback: &str) -> Option<PathBuf> {
    xdg.map(PathBuf::from).filter(|dir| dir.is_absolute()).or_else(|| {
        home.map(PathBuf::from).filter(|home| home.is_absolute()).map(|h| h.join(fallback))
    })
}

fn config_path_for(root: bool, xdg: Option<OsString>, home: Option<OsString>) -> PathBuf {
    let system = PathBuf::from("/etc/monchero/agent.toml");
    if root {
        return system;
    }
    // Without a home there is no per-user place; the system config is the
    // one a person would expect to be read.
    xdg_dir(xdg, home, ".config").map_or(system, |dir| dir.join("monchero").join("agent.toml"))
}

fn state_dir_for(root: bool, xdg: Option<OsString>, home: Option<OsString>) -> PathBuf {
    if root {
        return PathBuf::from("/var/lib/monchero");
    }
    // Without a home, a per-user directory under the temporary directory:
    // /var/lib is not writable, and two users must not share one state.
    xdg_dir(xdg, home, ".local/state").map_or_else(
        || {
            let uid = rustix::process::geteuid().as_raw();
            std::env::temp_dir().join(format!("monchero-{uid}"))
        },
        |dir| dir.join("monchero"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(text: &str) -> Option<OsString> {
        Some(text.into())
    }

    #[test]
    fn root_uses_the_system_locations() {
        assert_eq!(
            config_path_for(true, os("/x"), os("/root")),
            PathBuf::from("/etc/monchero/agent.toml")
        );
        assert_eq!(state_dir_for(true, os("/x"), os("/root")), PathBuf::from("/var/lib/monchero"));
    }

    #[test]
    fn users_get_xdg_directories_then_home() {
        assert_eq!(
            config_path_for(false, os("/cfg"), os("/home/u")),
            PathBuf::from("/cfg/monchero/agent.toml")
        );
        assert_eq!(
            config_path_for(false, None, os("/home/u")),
            PathBuf::from("/home/u/.config/monchero/agent.toml")
        );
        assert_eq!(state_dir_for(false, os("/st"), os("/home/u")), PathBuf::from("/st/monchero"));
        assert_eq!(
            state_dir_for(false, os("relative"), os("/home/u")),
            PathBuf::from("/home/u/.local/state/monchero"),
            "a relative XDG directory is ignored"
        );
    }

    #[test]
    fn users_without_a_home_still_get_a_path() {
        assert_eq!(config_path_for(false, None, None), PathBuf::from("/etc/monchero/agent.toml"));
        let state = state_dir_for(false, None, os(""));
        assert!(state.starts_with(std::env::temp_dir()), "{state:?}");
        assert!(state.to_string_lossy().contains("monchero-"), "{state:?}");
    }
}
