//! `monchero check list`: the built-in checks, with what they measure and
//! their options; with `--plugins`, which monitoring-plugins have a
//! ready-made definition in `plugins-compat/conf.d/` and whether they are
//! installed.
//!
//! The definitions are embedded in the binary (they are small), so the
//! answer does not depend on where a package put them.

use std::collections::BTreeSet;
use std::io::{self, Write};
use std::path::Path;

use monchero_core::builtin::BUILTINS;
use monchero_core::command::CommandLine;
use monchero_core::plugin_path::{DEFAULT_PLUGIN_PATH, find_plugin};

/// The drop-in definitions: file name and text.
const DROP_INS: &[(&str, &str)] = &[
    ("disk.toml", include_str!("../../plugins-compat/conf.d/disk.toml")),
    ("dns.toml", include_str!("../../plugins-compat/conf.d/dns.toml")),
    ("http.toml", include_str!("../../plugins-compat/conf.d/http.toml")),
    ("load.toml", include_str!("../../plugins-compat/conf.d/load.toml")),
    ("mysql.toml", include_str!("../../plugins-compat/conf.d/mysql.toml")),
    ("ntp.toml", include_str!("../../plugins-compat/conf.d/ntp.toml")),
    ("pgsql.toml", include_str!("../../plugins-compat/conf.d/pgsql.toml")),
    ("ping.toml", include_str!("../../plugins-compat/conf.d/ping.toml")),
    ("procs.toml", include_str!("../../plugins-compat/conf.d/procs.toml")),
    ("smtp.toml", include_str!("../../plugins-compat/conf.d/smtp.toml")),
    ("ssh.toml", include_str!("../../plugins-compat/conf.d/ssh.toml")),
    ("swap.toml", include_str!("../../plugins-compat/conf.d/swap.toml")),
    ("users.toml", include_str!("../../plugins-compat/conf.d/users.toml")),
];

/// `builtin:agent` lives in the agent, not in `BUILTINS`.
const AGENT: (&str, &str, &str) = (
    "agent",
    "the agent itself: whether it keeps up with its schedule, skipped runs, memory",
    "builtin:agent",
);

/// Prints the list; returns the exit status.
pub fn run(plugins: bool) -> anyhow::Result<u8> {
    let mut out = io::stdout().lock();
    let written = if plugins {
        let dirs: Vec<&Path> = DEFAULT_PLUGIN_PATH.iter().map(Path::new).collect();
        write_plugins(&mut out, &dirs)
    } else {
        write_builtins(&mut out)
    };
    match written {
        Ok(()) => Ok(0),
        // `monchero check list | head` closes the pipe early; not an error.
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(0),
        Err(error) => Err(error.into()),
    }
}

fn write_builtins(out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "Built-in checks: command = \"builtin:NAME OPTIONS\", run inside the agent.")?;
    writeln!(out)?;
    let width = BUILTINS.iter().map(|info| info.name.len()).max().unwrap_or(0).max(AGENT.0.len());
    for info in BUILTINS {
        writeln!(out, "{:width$}  {}", info.name, info.description)?;
        writeln!(out, "{:width$}  {}", "", info.usage)?;
        writeln!(out, "{:width$}  e.g. {}", "", info.example)?;
    }
    writeln!(out, "{:width$}  {}", AGENT.0, AGENT.1)?;
    writeln!(out, "{:width$}  {}", "", AGENT.2)?;
    writeln!(out)?;
    writeln!(
        out,
        "docs/checks.md describes each one. `monchero check list --plugins` lists the \
         monitoring-plugins with ready-made definitions."
    )
}

/// One drop-in definition: its file, and the plugins its checks run.
struct DropIn {
    file: &'static str,
    plugins: BTreeSet<String>,
    checks: Vec<String>,
}

/// The plugins and check names of a drop-in's `[[check]]` tables.
fn read_drop_in(file: &'static str, text: &str) -> DropIn {
    let table: toml::Table = toml::from_str(text).unwrap_or_default();
    let mut drop_in = DropIn { file, plugins: BTreeSet::new(), checks: Vec::new() };
    let checks = table.get("check").and_then(toml::Value::as_array).cloned().unwrap_or_default();
    for check in &checks {
        if let Some(name) = check.get("name").and_then(toml::Value::as_str) {
            drop_in.checks.push(name.to_owned());
        }
        let command = check.get("command").and_then(toml::Value::as_str).unwrap_or_default();
        if let Ok(command) = CommandLine::parse(command) {
            drop_in.plugins.insert(command.program().to_owned());
        }
    }
    drop_in
}

fn write_plugins(out: &mut impl Write, dirs: &[&Path]) -> io::Result<()> {
    let drop_ins: Vec<DropIn> =
        DROP_INS.iter().map(|&(file, text)| read_drop_in(file, text)).collect();
    let dir_list: Vec<String> = dirs.iter().map(|dir| dir.display().to_string()).collect();
    writeln!(
        out,
        "Ready-made definitions (plugins-compat/conf.d/ in the Monchero sources; copy one to \
         conf.d/ and edit it). Plugins are looked for in {}.",
        dir_list.join(", ")
    )?;
    writeln!(out)?;
    let rows: Vec<(String, &str, &DropIn)> = drop_ins
        .iter()
        .flat_map(|drop_in| {
            drop_in.plugins.iter().map(move |plugin| {
                let installed = find_plugin(plugin, dirs).is_some();
                (plugin.clone(), if installed { "installed" } else { "missing" }, drop_in)
            })
        })
        .collect();
    let width = rows.iter().map(|(plugin, _, _)| plugin.len()).max().unwrap_or(0);
    for (plugin, installed, drop_in) in &rows {
        writeln!(
            out,
            "{plugin:width$}  {installed:9}  {:10}  checks: {}",
            drop_in.file,
            drop_in.checks.join(", ")
        )?;
    }
    let defined: BTreeSet<&str> = rows.iter().map(|(plugin, _, _)| plugin.as_str()).collect();
    let others: BTreeSet<String> = installed_plugins(dirs)
        .into_iter()
        .filter(|plugin| !defined.contains(plugin.as_str()))
        .collect();
    writeln!(out)?;
    if others.is_empty() {
        writeln!(out, "No other plugin is installed.")
    } else {
        let others: Vec<String> = others.into_iter().collect();
        writeln!(out, "Installed plugins without a definition: {}", others.join(", "))
    }
}

/// The `check_*` programs in `dirs`.
fn installed_plugins(dirs: &[&Path]) -> BTreeSet<String> {
    dirs.iter()
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| name.starts_with("check_"))
        .filter(|name| find_plugin(name, dirs).is_some())
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn every_drop_in_names_its_checks_and_plugins() {
        for &(file, text) in DROP_INS {
            let drop_in = read_drop_in(file, text);
            assert!(!drop_in.checks.is_empty(), "{file} has no [[check]]");
            assert!(
                drop_in.plugins.iter().all(|plugin| plugin.starts_with("check_")),
                "{file}: {:?}",
                drop_in.plugins
            );
        }
    }

    #[test]
    fn every_drop_in_file_is_embedded() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins-compat/conf.d");
        let on_disk: BTreeSet<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .filter(|name| name.ends_with(".toml"))
            .collect();
        let embedded: BTreeSet<String> =
            DROP_INS.iter().map(|(file, _)| (*file).to_owned()).collect();
        assert_eq!(embedded, on_disk);
    }

    #[test]
    fn builtins_list_every_check_with_its_usage() {
        let mut out = Vec::new();
        write_builtins(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        // Names are padded to the longest one.
        let width = BUILTINS.iter().map(|info| info.name.len()).max().unwrap();
        for info in BUILTINS {
            assert!(text.contains(info.usage), "{text}");
            let line = format!("\n{:width$}  {}", info.name, info.description);
            assert!(text.contains(&line), "{text}");
        }
        assert!(text.contains("builtin:agent"), "{text}");
    }

    #[test]
    fn plugins_are_marked_installed_or_missing() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["check_disk", "check_foo", "not_a_plugin"] {
            let path = dir.path().join(name);
            std::fs::write(&path, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let mut out = Vec::new();
        write_plugins(&mut out, &[dir.path()]).unwrap();
        let text = String::from_utf8(out).unwrap();
        let line = |plugin: &str| {
            let found = text.lines().find(|line| line.starts_with(&format!("{plugin} ")));
            found.unwrap().split_whitespace().collect::<Vec<_>>().join(" ")
        };
        assert_eq!(line("check_disk"), "check_disk installed disk.toml checks: check_disk");
        assert_eq!(line("check_mysql"), "check_mysql missing mysql.toml checks: check_mysql");
        assert!(text.ends_with("Installed plugins without a definition: check_foo\n"), "{text}");
    }
}
