//! The ready-made plugin definitions in `plugins-compat/conf.d/`, through
//! the real binary: each file is a valid drop-in (`config check` of an
//! agent.toml that includes it), all of them together are too (their check
//! names do not clash), and every check whose plugin is installed runs
//! (`check-now --local`) to a real plugin state, not to "command not found".

use std::path::{Path, PathBuf};

use monchero_core::command::CommandLine;
use monchero_core::plugin_path::{DEFAULT_PLUGIN_PATH, find_plugin};
use serde_json::Value;
use tempfile::TempDir;

use crate::util::{monchero, run_json};

fn conf_d() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins-compat/conf.d")
}

/// Every drop-in, sorted.
fn drop_ins() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(conf_d())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 13, "{files:?}");
    files
}

/// The (name, command) of each `[[check]]` of a drop-in.
fn checks_of(file: &Path) -> Vec<(String, String)> {
    let table: toml::Table = toml::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    let checks = table["check"].as_array().unwrap();
    checks
        .iter()
        .map(|check| {
            let field = |key: &str| check[key].as_str().unwrap().to_owned();
            (field("name"), field("command"))
        })
        .collect()
}

/// An agent.toml in a fresh directory that includes `pattern`.
fn agent_config(pattern: &str) -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.toml");
    let text = format!(
        "[agent]\nstate_dir = '{}'\ninclude = ['{pattern}']\n",
        dir.path().join("state").display()
    );
    std::fs::write(&config, text).unwrap();
    (dir, config)
}

/// `monchero config check`: its exit status and stdout.
fn config_check(config: &Path) -> (i32, String, String) {
    let output =
        monchero().arg("config").arg("check").arg("--config").arg(config).output().unwrap();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (output.status.code().unwrap(), text(&output.stdout), text(&output.stderr))
}

#[test]
fn every_drop_in_is_a_valid_include() {
    for file in drop_ins() {
        let (_dir, config) = agent_config(&file.display().to_string());
        let (status, stdout, stderr) = config_check(&config);
        assert_eq!(status, 0, "{}: {stderr}", file.display());
        let count = checks_of(&file).len();
        assert!(
            stdout.contains(&format!(": OK ({count} checks, 0 actions")),
            "{}: {stdout}",
            file.display()
        );
    }
}

#[test]
fn all_drop_ins_together_have_unique_names() {
    let (_dir, config) = agent_config(&format!("{}/*.toml", conf_d().display()));
    let (status, stdout, stderr) = config_check(&config);
    assert_eq!(status, 0, "{stderr}");
    let total: usize = drop_ins().iter().map(|file| checks_of(file).len()).sum();
    assert!(stdout.contains(&format!(": OK ({total} checks, 0 actions")), "{stdout}");
}

/// Whether a command's traffic stays on this machine: tests send nothing
/// elsewhere. `check_ntp_time -H pool.ntp.org` would ask the Internet, and
/// `check_dns` asks the resolver in /etc/resolv.conf, wherever that is.
fn stays_here(command: &str) -> bool {
    let words: Vec<&str> = command.split_whitespace().collect();
    let host = words.windows(2).find(|pair| pair[0] == "-H").map(|pair| pair[1]);
    !words.first().is_some_and(|program| program.ends_with("check_dns"))
        && host.is_none_or(|host| matches!(host, "127.0.0.1" | "::1" | "localhost"))
}

#[test]
fn installed_plugins_run_to_a_real_state() {
    let mut ran = 0;
    for file in drop_ins() {
        let installed: Vec<String> = checks_of(&file)
            .into_iter()
            .filter(|(_, command)| {
                let program = CommandLine::parse(command).unwrap().program().to_owned();
                find_plugin(&program, DEFAULT_PLUGIN_PATH).is_some()
            })
            .map(|(name, _)| name)
            .collect();
        if installed.is_empty() || !checks_of(&file).iter().all(|(_, command)| stays_here(command))
        {
            continue;
        }
        let (_dir, config) = agent_config(&file.display().to_string());
        let mut cmd = monchero();
        cmd.args(["check-now", "--local", "--json", "--all", "--config"]).arg(&config);
        let run = run_json(cmd);
        assert!((0..=3).contains(&run.status), "{}: exit status {}", file.display(), run.status);
        let results = run.json.as_array().unwrap();
        for name in &installed {
            let result = results.iter().find(|result| result["name"] == name.as_str()).unwrap();
            let summary = result["summary"].as_str().unwrap();
            assert!(
                matches!(result["state"].as_str(), Some("ok" | "warning" | "critical" | "unknown")),
                "{name}: {result}"
            );
            assert!(
                result["exit_code"].as_i64().is_some_and(|code| (0..=3).contains(&code)),
                "{name} did not exit with a plugin state: {result}"
            );
            assert!(!summary.contains("command not found"), "{name}: {summary}");
            assert_ne!(result["timed_out"], Value::Bool(true), "{name}: {result}");
            ran += 1;
        }
    }
    // CI installs monitoring-plugins-basic and -standard: most definitions
    // have their plugin there.
    if Path::new("/usr/lib/nagios/plugins/check_disk").exists() {
        assert!(ran >= 10, "only {ran} checks ran");
    }
}
