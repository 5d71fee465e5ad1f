//! `monchero check list` and `monchero check list --plugins`.

use crate::util::monchero;

fn stdout_of(args: &[&str]) -> String {
    let output = monchero().args(args).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "monchero {args:?}");
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn builtins_are_listed_with_usage_and_example() {
    let text = stdout_of(&["check", "list"]);
    for usage in [
        "builtin:load [-w W1,W5,W15]",
        "builtin:cpu [-w PCT%] [-c PCT%]",
        "builtin:procs [-w RANGE] [-c RANGE] [-C COMMAND]",
        "builtin:file -f FILE",
        "builtin:log -f FILE -e REGEX",
        "builtin:tcp -H HOST -p PORT [-s SEND] [-e EXPECT] [-w SECONDS] [-c SECONDS] [-t SECONDS] [-S] [--sni NAME]",
        "builtin:http -H HOST | -I ADDRESS [-p PORT] [-u PATH] [-S]",
        "builtin:agent",
    ] {
        assert!(text.contains(usage), "{usage} missing from:\n{text}");
    }
    assert!(text.contains("e.g. builtin:disk -w 15% -c 5% -p / -p /var"), "{text}");
}

#[test]
fn plugins_with_a_definition_are_listed() {
    let text = stdout_of(&["check", "list", "--plugins"]);
    let line = text.lines().find(|line| line.starts_with("check_procs ")).unwrap();
    assert!(line.contains("procs.toml"), "{line}");
    assert!(line.contains("check_procs_zombies, check_procs_total, check_procs_sshd"), "{line}");
    if std::path::Path::new("/usr/lib/nagios/plugins/check_procs").exists() {
        assert!(line.contains(" installed "), "{line}");
    }
}

#[test]
fn check_needs_a_subcommand() {
    let output = monchero().arg("check").output().unwrap();
    assert_eq!(output.status.code(), Some(64));
}
