//! The plugin execution policy of the contract, one test per policy line.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::util::*;

#[test]
fn an_ok_result_has_the_contract_json_shape() {
    let plugins = Plugins::new();
    let plugin = plugins.script("check_fine", "echo 'OK - fine | load=0.5;1;2;0;'");
    let run = check_now_json(&plugin, &[]);
    assert_eq!(run.status, 0);
    let json = run.json;
    assert_eq!(json["name"], Value::Null);
    assert_eq!(json["state"], "ok");
    assert_eq!(json["exit_code"], 0);
    assert_eq!(json["summary"], "OK - fine");
    assert_eq!(json["long_output"], "");
    assert_eq!(
        json["perfdata"],
        json!([{"label": "load", "value": 0.5, "uom": null, "warn": "1", "crit": "2", "min": 0.0, "max": null}])
    );
    assert!(json["duration_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(json["timed_out"], false);
    assert_eq!(json["truncated"], false);
}

#[test]
fn exit_codes_0_to_3_are_the_state_and_our_exit_status() {
    let plugins = Plugins::new();
    for (code, state) in [(0, "ok"), (1, "warning"), (2, "critical"), (3, "unknown")] {
        let plugin =
            plugins.script(&format!("check_{code}"), &format!("echo 'state {code}'; exit {code}"));
        let run = check_now_json(&plugin, &[]);
        assert_eq!(run.json["state"], state);
        assert_eq!(run.json["exit_code"], code);
        assert_eq!(run.status, code, "monchero's own exit status is the state");
    }
}

#[test]
fn other_exit_codes_are_unknown_with_the_cause_named() {
    let plugins = Plugins::new();
    for (code, cause) in [
        (4, "(exit status 4 is not a plugin state (0-3)) said something"),
        (127, "(exit status 127: command not found) said something"),
        (255, "(exit status 255 is not a plugin state (0-3)) said something"),
    ] {
        let plugin = plugins
            .script(&format!("check_{code}"), &format!("echo 'said something'; exit {code}"));
        let run = check_now_json(&plugin, &[]);
        assert_eq!(run.json["state"], "unknown");
        assert_eq!(run.json["exit_code"], code);
        assert_eq!(run.json["summary"], cause);
        assert_eq!(run.status, 3);
    }
}

#[test]
fn death_by_signal_is_unknown_and_names_the_signal() {
    let plugins = Plugins::new();
    let plugin = plugins.script("check_segv", "echo 'about to crash'; kill -SEGV $$");
    let run = check_now_json(&plugin, &[]);
    assert_eq!(run.json["state"], "unknown");
    assert_eq!(run.json["exit_code"], Value::Null);
    assert_eq!(run.json["summary"], "(plugin killed by signal 11 (SIGSEGV)) about to crash");
    assert_eq!(run.status, 3);
}

#[test]
fn a_missing_command_is_unknown_and_named() {
    let plugins = Plugins::new();
    let missing = plugins.path("check_missing");
    let run = check_now_json(&missing, &[]);
    assert_eq!(run.json["state"], "unknown");
    assert_eq!(run.json["exit_code"], Value::Null);
    assert_eq!(run.json["summary"], format!("(command not found: {})", missing.display()));
    assert_eq!(run.status, 3);

    let mut cmd = monchero();
    cmd.args(["check-now", "--json", "--", "check_surely_not_installed_anywhere"]);
    let run = run_json(cmd);
    assert_eq!(run.json["summary"], "(command not found: check_surely_not_installed_anywhere)");
}

#[test]
fn a_non_executable_command_is_unknown_and_named() {
    let plugins = Plugins::new();
    let plugin = plugins.path("check_noexec");
    std::fs::write(&plugin, "#!/bin/sh\necho OK\n").unwrap();
    let run = check_now_json(&plugin, &[]);
    assert_eq!(run.json["state"], "unknown");
    assert_eq!(
        run.json["summary"],
        format!("(permission denied running {} (is it executable?))", plugin.display())
    );
}

#[test]
fn a_hung_plugin_and_its_grandchild_are_killed_within_the_timeout() {
    let plugins = Plugins::new();
    let pidfile = plugins.path("grandchild.pid");
    // The plugin ignores SIGTERM, so only the SIGKILL that follows stops it.
    let plugin = plugins.script(
        "check_hang",
        &format!(
            "trap '' TERM\nsleep 300 &\necho $! > {}\necho 'checking...'\nsleep 300",
            pidfile.display()
        ),
    );
    let run = check_now_json(&plugin, &["--timeout", "1s"]);
    assert_eq!(run.json["state"], "unknown");
    assert_eq!(run.json["timed_out"], true);
    assert_eq!(run.json["exit_code"], Value::Null);
    assert_eq!(run.json["summary"], "(plugin timed out after 1s) checking...");
    assert!(run.elapsed < Duration::from_secs(3), "took {:?} with a 1s timeout", run.elapsed);
    let grandchild = read_pid(&pidfile);
    assert!(wait_dead(grandchild), "grandchild {grandchild} is still running");
}

#[test]
fn a_background_child_holding_stdout_does_not_hold_the_result() {
    let plugins = Plugins::new();
    let pidfile = plugins.path("bg.pid");
    let plugin = plugins.script(
        "check_bg",
        &format!(
            "sleep 300 &\necho $! > {}\necho 'OK - started helper'\nexit 0",
            pidfile.display()
        ),
    );
    let run = check_now_json(&plugin, &["--timeout", "30s"]);
    assert_eq!(run.json["state"], "ok");
    assert_eq!(run.json["summary"], "OK - started helper");
    assert_eq!(run.json["timed_out"], false);
    assert!(run.elapsed < Duration::from_secs(3), "took {:?}", run.elapsed);
    let child = read_pid(&pidfile);
    assert!(wait_dead(child), "the helper holding our pipe was left running");
}

#[test]
fn huge_output_is_capped_with_bounded_memory() {
    let plugins = Plugins::new();
    // 256 MiB of output; the agent runs with 64 MiB of data segment, so
    // buffering even a quarter of it would abort the process.
    let plugin = plugins.script("check_noisy", "head -c 268435456 /dev/zero | tr '\\0' x\nexit 1");
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.arg("-c")
        .arg("ulimit -d 65536 && exec \"$0\" check-now --json -- \"$1\"")
        .arg(env!("CARGO_BIN_EXE_monchero"))
        .arg(&plugin);
    let run = run_json(cmd);
    assert_eq!(run.json["state"], "warning");
    assert_eq!(run.json["truncated"], true);
    let summary = run.json["summary"].as_str().unwrap();
    assert!(summary.len() <= 1024 * 1024, "kept {} bytes", summary.len());
    assert!(summary.len() >= 1000 * 1000 && summary.bytes().all(|b| b == b'x'));
    assert_eq!(run.status, 1);
}

#[test]
fn ten_mib_of_output_is_truncated_not_lost() {
    let plugins = Plugins::new();
    let plugin = plugins.script(
        "check_10mib",
        "echo 'OK - big | size=10485760B'\nhead -c 10485760 /dev/zero | tr '\\0' y",
    );
    let run = check_now_json(&plugin, &[]);
    assert_eq!(run.json["state"], "ok");
    assert_eq!(run.json["summary"], "OK - big");
    assert_eq!(run.json["truncated"], true);
    assert_eq!(run.json["perfdata"][0]["value"], 10485760.0);
}

#[test]
fn invalid_utf8_is_replaced_not_fatal() {
    let plugins = Plugins::new();
    let plugin = plugins.script("check_latin1", "printf 'OK - caf\\351 \\377 fine | t=1\\n'");
    let run = check_now_json(&plugin, &[]);
    assert_eq!(run.json["state"], "ok");
    assert_eq!(run.json["summary"], "OK - caf\u{fffd} \u{fffd} fine");
    assert_eq!(run.json["perfdata"][0]["label"], "t");
}

#[test]
fn crlf_reads_as_lf() {
    let plugins = Plugins::new();
    let plugin = plugins.script(
        "check_crlf",
        "printf 'WARNING - dos\\r\\nline two\\r\\nline three | x=1\\r\\n'; exit 1",
    );
    let run = check_now_json(&plugin, &[]);
    assert_eq!(run.json["summary"], "WARNING - dos");
    assert_eq!(run.json["long_output"], "line two\nline three");
    assert_eq!(run.json["perfdata"][0]["value"], 1.0);
}

#[test]
fn a_plugin_reading_stdin_gets_end_of_file_at_once() {
    let plugins = Plugins::new();
    let plugin = plugins.script(
        "check_stdin",
        "if read line; then echo \"CRITICAL - read $line\"; exit 2; fi\necho 'OK - stdin is empty'",
    );
    let mut cmd = monchero();
    cmd.args(["check-now", "--json", "--timeout", "20s", "--"]).arg(&plugin);
    // Our own stdin stays open and silent: the plugin must not inherit it.
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    let started = Instant::now();
    let stdin = child.stdin.take().unwrap();
    let output = child.wait_with_output().unwrap();
    drop(stdin);
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["summary"], "OK - stdin is empty");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn stderr_is_the_summary_only_when_stdout_is_empty() {
    let plugins = Plugins::new();
    let plugin = plugins.script(
        "check_crash",
        "echo 'check_crash: cannot open /etc/x.conf' >&2\necho 'more detail' >&2\nexit 2",
    );
    let run = check_now_json(&plugin, &[]);
    assert_eq!(run.json["state"], "critical");
    assert_eq!(run.json["summary"], "check_crash: cannot open /etc/x.conf");
    assert_eq!(run.json["long_output"], "more detail");

    let plugin =
        plugins.script("check_chatty", "echo 'noise on stderr' >&2\necho 'OK - real output'");
    let run = check_now_json(&plugin, &[]);
    assert_eq!(run.json["summary"], "OK - real output");
}

#[test]
fn malformed_perfdata_items_are_skipped_and_the_rest_kept() {
    let plugins = Plugins::new();
    let plugin = plugins.script("check_messy", "echo 'OK | good=1 bad=abc also_good=2ms;;;;'");
    let run = check_now_json(&plugin, &[]);
    let labels: Vec<&str> = run.json["perfdata"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["good", "also_good"]);
    assert_eq!(run.json["perfdata"][1]["uom"], "ms");
}

#[test]
fn bare_names_are_found_in_the_monitoring_plugins_directory() {
    let check_dummy = std::path::Path::new("/usr/lib/nagios/plugins/check_dummy");
    assert!(check_dummy.exists(), "install Debian's monitoring-plugins-basic (.ci/run does)");
    let mut cmd = monchero();
    cmd.args(["check-now", "--json", "--", "check_dummy", "2", "disk on fire"]);
    let run = run_json(cmd);
    assert_eq!(run.json["state"], "critical");
    assert_eq!(run.json["summary"], "CRITICAL: disk on fire");
    assert_eq!(run.status, 2);
}

#[test]
fn human_output_is_one_line_then_long_output_then_perfdata() {
    let plugins = Plugins::new();
    let plugin = plugins.script(
        "check_human",
        "echo 'DISK WARNING - / 91% | /=91%;90;95;0;100 inodes=12%'\necho 'detail line'\nexit 1",
    );
    let output = monchero().args(["check-now", "--"]).arg(&plugin).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(!text.contains('\x1b'), "no colour when stdout is not a terminal: {text:?}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("WARNING  DISK WARNING - / 91%  ("), "{text}");
    assert!(lines[0].ends_with(" ms)"), "{text}");
    assert_eq!(lines[1], "detail line");
    let header: Vec<&str> = lines[3].split_whitespace().collect();
    assert_eq!(header, ["label", "value", "warn", "crit", "min", "max"]);
    let disk: Vec<&str> = lines[4].split_whitespace().collect();
    assert_eq!(disk, ["/", "91%", "90", "95", "0", "100"]);
    let inodes: Vec<&str> = lines[5].split_whitespace().collect();
    assert_eq!(inodes, ["inodes", "12%"]);
}

#[test]
fn colour_follows_the_flag_and_no_color() {
    let plugins = Plugins::new();
    let plugin = plugins.script("check_red", "echo 'CRITICAL - \x1b[31mred\x1b[0m'; exit 2");
    let forced =
        monchero().args(["--color", "always", "check-now", "--"]).arg(&plugin).output().unwrap();
    let text = String::from_utf8(forced.stdout).unwrap();
    assert!(text.starts_with("\x1b[31;1mCRITICAL"), "{text:?}");
    assert!(
        text.contains("CRITICAL - \u{fffd}[31mred\u{fffd}[0m"),
        "plugin escapes are neutralised: {text:?}"
    );

    let forced = monchero()
        .env("CLICOLOR_FORCE", "1")
        .args(["check-now", "--"])
        .arg(&plugin)
        .output()
        .unwrap();
    assert!(forced.stdout.starts_with(b"\x1b["));
    let no_color = monchero()
        .env("CLICOLOR_FORCE", "1")
        .env("NO_COLOR", "1")
        .args(["check-now", "--"])
        .arg(&plugin)
        .output()
        .unwrap();
    assert!(no_color.stdout.starts_with(b"CRITICAL"));
}

#[test]
fn a_closed_stdout_pipe_is_not_an_error() {
    let plugins = Plugins::new();
    let plugin = plugins.script("check_long", "echo 'WARNING - long'; seq 1 100000; exit 1");
    let mut child = monchero()
        .args(["check-now", "--"])
        .arg(&plugin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(1),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
