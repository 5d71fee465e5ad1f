//! Finding a plugin that the config names without a directory.
//!
//! Nagios configs say `$USER1$/check_load`; Monchero users write
//! `check_load` and the agent looks in the directories where distributions
//! install the monitoring-plugins, before falling back to `PATH`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::command::CommandLine;

/// Where distributions put the monitoring-plugins, most common first:
/// Debian and Ubuntu, Fedora/RHEL/SUSE (64-bit), Arch and Alpine, and the
/// prefixes of source installs of Nagios and the plugins.
pub const DEFAULT_PLUGIN_PATH: &[&str] = &[
    "/usr/lib/nagios/plugins",
    "/usr/lib64/nagios/plugins",
    "/usr/lib/monitoring-plugins",
    "/usr/local/nagios/libexec",
    "/usr/local/libexec/monitoring-plugins",
];

/// The first executable file called `program` in `dirs`, if `program` is a
/// bare name (no `/`).
pub fn find_plugin<P: AsRef<Path>>(program: &str, dirs: &[P]) -> Option<PathBuf> {
    if program.contains('/') || program.is_empty() {
        return None;
    }
    dirs.iter().map(|dir| dir.as_ref().join(program)).find(|path| is_executable(path))
}

fn is_executable(path: &Path) -> bool {
    path.metadata().is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

impl CommandLine {
    /// Replaces a bare program name by its path in `dirs` when it is found
    /// there; otherwise leaves it for the usual `PATH` lookup.
    pub fn resolve_plugin<P: AsRef<Path>>(&mut self, dirs: &[P]) {
        if let CommandLine::Exec { program, .. } = self {
            if let Some(found) = find_plugin(program, dirs) {
                *program = found.to_string_lossy().into_owned();
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn finds_executables_only_for_bare_names() {
        let dir = tempfile::tempdir().unwrap();
        let plugin = dir.path().join("check_thing");
        std::fs::write(&plugin, "#!/bin/sh\n").unwrap();
        std::fs::write(dir.path().join("check_data"), "").unwrap();
        std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let dirs = [PathBuf::from("/nonexistent"), dir.path().to_owned()];

        assert_eq!(find_plugin("check_thing", &dirs), Some(plugin.clone()));
        assert_eq!(find_plugin("check_data", &dirs), None, "not executable");
        assert_eq!(find_plugin("./check_thing", &dirs), None, "has a directory");

        let mut command = CommandLine::parse("check_thing -w 1").unwrap();
        command.resolve_plugin(&dirs);
        assert_eq!(command.program(), plugin.to_str().unwrap());
        let mut command = CommandLine::parse("sh -c true").unwrap();
        command.resolve_plugin(&dirs);
        assert_eq!(command.program(), "sh");
    }
}
