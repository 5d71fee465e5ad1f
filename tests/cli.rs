//! Exit statuses and messages for mistakes on the command line.

use crate::util::monchero;

fn status_of(args: &[&str]) -> (i32, String) {
    let output = monchero().args(args).output().unwrap();
    (output.status.code().unwrap(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn usage_errors_exit_64_never_a_plugin_state() {
    for args in [
        &["check-now"][..],
        &["check-now", "--json"],
        &["check-now", "check_load"],
        &["check-now", "--timeout", "soon", "--", "true"],
        &["check-now", "--", ""],
        &["frobnicate"],
        &[],
    ] {
        let (status, stderr) = status_of(args);
        assert_eq!(status, 64, "monchero {args:?}: {stderr}");
        assert!(!stderr.is_empty(), "monchero {args:?} explains itself");
    }
}

#[test]
fn a_bad_timeout_says_how_to_write_one() {
    let (_, stderr) = status_of(&["check-now", "--timeout", "soon", "--", "true"]);
    assert!(stderr.contains("write e.g. 30s, 5m, 1h"), "{stderr}");
}

#[test]
fn help_and_version_exit_0() {
    let output = monchero().arg("--help").output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&output.stdout).contains("check-now"));
    let output = monchero().arg("--version").output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("monchero "));
}
