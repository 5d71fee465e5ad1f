//! The config layer end to end: text in, `Config` or exact error text out.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use monchero_core::State;
use monchero_core::command::CommandLine;
use monchero_core::plugin_path::DEFAULT_PLUGIN_PATH;
use monchero_core::tracker::FlapThresholds;

use super::*;

const FILE: &str = "/etc/monchero/agent.toml";

fn parsed(text: &str) -> Config {
    match parse(text, Path::new(FILE)) {
        Ok(config) => config,
        Err(errors) => panic!("unexpected errors:\n{errors}"),
    }
}

/// Every error, as `monchero config check` prints it.
fn errors(text: &str) -> Vec<String> {
    errors_in(text, Path::new(FILE))
}

fn errors_in(text: &str, file: &Path) -> Vec<String> {
    match parse(text, file) {
        Ok(_) => panic!("no errors"),
        Err(errors) => errors.0.iter().map(ToString::to_string).collect(),
    }
}

fn warnings(config: &Config) -> Vec<String> {
    config.warnings.iter().map(ToString::to_string).collect()
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn the_embedded_default_is_valid_and_needs_no_plugin() {
    let config = build::parse_embedded(DEFAULT_CONFIG).unwrap();
    assert_eq!(config.source, ConfigSource::Embedded);
    assert_eq!(warnings(&config), Vec::<String>::new());
    let names: Vec<&str> = config.checks.iter().map(|check| check.name.as_str()).collect();
    assert_eq!(names, ["load", "memory", "swap", "disk", "agent"]);
    assert!(config.actions.is_empty());
    for check in &config.checks {
        assert!(!matches!(check.command, CheckCommand::Plugin(_)), "{}", check.name);
        assert_eq!(check.tracker.attempts, 3);
        assert!(
            check.interval >= Duration::from_secs(30) && check.interval <= Duration::from_secs(60)
        );
    }
    assert!(matches!(config.checks[4].command, CheckCommand::AgentSelf));
    assert_eq!(config.agent.state_dir, paths::default_state_dir());
}

#[test]
fn defaults_fill_in_what_is_not_written() {
    let config = parsed("[[check]]\nname = \"load\"\ncommand = \"builtin:load\"\n");
    assert_eq!(config.source, ConfigSource::File(PathBuf::from(FILE)));
    assert_eq!(config.agent.hostname, build::system_hostname());
    assert!(!config.agent.hostname.is_empty());
    assert_eq!(config.agent.state_dir, paths::default_state_dir());
    assert_eq!(config.agent.max_concurrent, 64);
    assert_eq!(config.agent.timeout_state, State::Unknown);
    let plugin_path: Vec<PathBuf> = DEFAULT_PLUGIN_PATH.iter().map(PathBuf::from).collect();
    assert_eq!(config.agent.plugin_path, plugin_path);
    let check = &config.checks[0];
    assert_eq!(check.interval, Duration::from_secs(60));
    assert_eq!(check.retry_interval, Duration::from_secs(15));
    assert_eq!(check.timeout, Duration::from_secs(60));
    assert_eq!(check.tracker.attempts, 3);
    assert_eq!(check.tracker.recovery_attempts, 1);
    assert_eq!(check.tracker.flap, Some(FlapThresholds { low: 5.0, high: 20.0 }));
    assert_eq!(check.timeout_state, State::Unknown);
    assert!(check.actions.is_empty() && check.env.is_empty());
}

#[test]
fn retry_interval_defaults_to_the_interval_when_shorter() {
    let config =
        parsed("[[check]]\nname = \"l\"\ncommand = \"builtin:load\"\ninterval = \"10s\"\n");
    assert_eq!(config.checks[0].retry_interval, Duration::from_secs(10));
}

#[test]
fn agent_settings_are_defaults_that_checks_override() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"
[agent]
hostname = "web-1"
state_dir = "state"
interval = "5m"
retry_interval = "1m"
timeout = "20s"
attempts = 5
recovery_attempts = 2
timeout_state = "critical"
flap_detection = false
flap_low = 10
flap_high = 30.5
plugin_path = ["plugins", "/opt/plugins"]
max_concurrent = 8

[[check]]
name = "inherits"
command = "builtin:load"

[[check]]
name = "overrides"
command = "builtin:load"
interval = "30s"
retry_interval = "10s"
timeout = "5s"
attempts = 1
recovery_attempts = 3
timeout_state = "warning"
flap_detection = true
actions = ["mail", "mail"]
env = { LANG = "C", TZ = "UTC" }

[[action]]
name = "mail"
command = "/bin/true"
on = ["critical", "recovery", "critical"]
timeout = "1m"
"#;
    let config = parse(text, &dir.path().join("agent.toml")).unwrap();
    assert_eq!(config.agent.hostname, "web-1");
    assert_eq!(config.agent.state_dir, dir.path().join("state"));
    assert_eq!(
        config.agent.plugin_path,
        [dir.path().join("plugins"), PathBuf::from("/opt/plugins")]
    );
    assert_eq!(config.agent.max_concurrent, 8);
    assert_eq!(config.agent.timeout_state, State::Critical);

    let inherits = &config.checks[0];
    assert_eq!(inherits.interval, Duration::from_secs(300));
    assert_eq!(inherits.retry_interval, Duration::from_secs(60));
    assert_eq!(inherits.timeout, Duration::from_secs(20));
    assert_eq!(inherits.tracker.attempts, 5);
    assert_eq!(inherits.tracker.recovery_attempts, 2);
    assert_eq!(inherits.tracker.flap, None);
    assert_eq!(inherits.timeout_state, State::Critical);

    let overrides = &config.checks[1];
    assert_eq!(overrides.interval, Duration::from_secs(30));
    assert_eq!(overrides.retry_interval, Duration::from_secs(10));
    assert_eq!(overrides.timeout, Duration::from_secs(5));
    assert_eq!(overrides.tracker.attempts, 1);
    assert_eq!(overrides.tracker.recovery_attempts, 3);
    assert_eq!(overrides.tracker.flap, Some(FlapThresholds { low: 10.0, high: 30.5 }));
    assert_eq!(overrides.timeout_state, State::Warning);
    assert_eq!(overrides.actions, ["mail"]);
    assert_eq!(overrides.env, [("LANG".into(), "C".into()), ("TZ".into(), "UTC".into())]);

    let mail = &config.actions[0];
    assert_eq!(mail.name, "mail");
    assert_eq!(mail.kind, ActionKind::Command(CommandLine::parse("/bin/true").unwrap()));
    assert_eq!(mail.rate_limit, None, "commands are not rate-limited unless asked");
    assert_eq!(mail.on, [ActionTrigger::Critical, ActionTrigger::Recovery]);
    assert_eq!(mail.timeout, Duration::from_secs(60));
    assert_eq!(warnings(&config), Vec::<String>::new());
}

#[test]
fn actions_default_to_every_trigger_and_30_seconds() {
    let config = parsed(
        "[[check]]\nname = \"c\"\ncommand = \"builtin:load\"\nactions = [\"a\"]\n\
         [[action]]\nname = \"a\"\ncommand = \"/bin/true\"\n",
    );
    assert_eq!(config.actions[0].on, ActionTrigger::ALL);
    assert_eq!(config.actions[0].timeout, Duration::from_secs(30));
    let triggers: Vec<String> = ActionTrigger::ALL.iter().map(ToString::to_string).collect();
    assert_eq!(triggers, ["warning", "critical", "unknown", "recovery", "flapping"]);
}

#[test]
fn commands_become_builtins_plugins_or_shell_scripts() {
    let plugins = tempfile::tempdir().unwrap();
    let plugin = plugins.path().join("check_thing");
    std::fs::write(&plugin, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let text = format!(
        r#"
[agent]
plugin_path = ["{}"]

[[check]]
name = "thing"
command = "check_thing -w 'a b'"

[[check]]
name = "piped"
command = "check_thing | head -1"
shell = true

[[check]]
name = "disk"
command = "builtin:disk -w 15% -p /"

[[check]]
name = "self"
command = "builtin:agent"

[[check]]
name = "sh"
command = "sh -c true"
"#,
        plugins.path().display()
    );
    let config = parsed(&text);
    let CheckCommand::Plugin(thing) = &config.checks[0].command else { panic!() };
    assert_eq!(
        *thing,
        CommandLine::Exec {
            program: plugin.display().to_string(),
            args: vec!["-w".into(), "a b".into()]
        }
    );
    let CheckCommand::Plugin(piped) = &config.checks[1].command else { panic!() };
    assert_eq!(*piped, CommandLine::Shell("check_thing | head -1".into()));
    let CheckCommand::Builtin(disk) = &config.checks[2].command else { panic!() };
    assert_eq!(disk.name(), "disk");
    assert!(matches!(config.checks[3].command, CheckCommand::AgentSelf));
    let CheckCommand::Plugin(sh) = &config.checks[4].command else { panic!() };
    assert_eq!(sh.program(), "sh", "found on PATH, left for the runner's lookup");
    assert_eq!(warnings(&config), Vec::<String>::new());
}

#[test]
fn a_plugin_that_is_not_installed_is_a_warning() {
    let text = "[agent]\nplugin_path = [\"/nonexistent/plugins\"]\n\
                [[check]]\nname = \"web\"\ncommand = \"check_nothere_xyz -H x\"\n\
                [[check]]\nname = \"abs\"\ncommand = \"/nonexistent/check_y\"\n";
    let config = parsed(text);
    assert_eq!(
        warnings(&config),
        [
            r#"/etc/monchero/agent.toml:5:11: plugin "check_nothere_xyz" is not in plugin_path (/nonexistent/plugins) nor on PATH; check "web" reports UNKNOWN until it is installed"#,
            r#"/etc/monchero/agent.toml:8:11: plugin "/nonexistent/check_y" does not exist or is not executable; check "abs" reports UNKNOWN until it is"#,
        ]
    );
    let CheckCommand::Plugin(web) = &config.checks[0].command else { panic!() };
    assert_eq!(web.program(), "check_nothere_xyz", "left bare");
}

#[test]
fn other_warnings_unused_actions_empty_on_no_checks() {
    let config = parsed("[[action]]\nname = \"mail\"\ncommand = \"/bin/true\"\non = []\n");
    assert_eq!(
        warnings(&config),
        [
            "/etc/monchero/agent.toml:1:1: the config defines no checks, so the agent has nothing to run; add a [[check]]",
            r#"/etc/monchero/agent.toml:2:8: action "mail" is not used by any check; add it to the actions of the checks it is for, or remove it"#,
            r#"/etc/monchero/agent.toml:4:6: action "mail" has on = [], so it never runs; list the changes it should run on, e.g. on = ["critical", "recovery"]"#,
        ]
    );
}

#[test]
fn syntax_errors_carry_the_toml_message_and_our_position() {
    assert_eq!(
        errors("[agent]\ninterval = \"1m\n"),
        ["/etc/monchero/agent.toml:2:15: TOML syntax error: invalid basic string, expected `\"`"]
    );
    assert_eq!(
        errors("[[check]]\nname = \"a\"\nname = \"b\"\n"),
        [
            r#"/etc/monchero/agent.toml:3:1: duplicate key "name": it is already defined above in the same table; keep only one"#
        ]
    );
}

#[test]
fn unknown_keys_suggest_the_closest_known_one() {
    assert_eq!(
        errors("[[check]]\nname = \"disk\"\ncommand = \"builtin:disk\"\nintervall = \"5m\"\n"),
        [
            r#"/etc/monchero/agent.toml:4:1: unknown key "intervall" in [[check]] "disk": did you mean "interval"?"#
        ]
    );
    assert_eq!(
        errors("[agent]\nfoo = 1\n[[checks]]\nname = \"x\"\n[check.x]\n"),
        [
            r#"/etc/monchero/agent.toml:2:1: unknown key "foo" in [agent]; remove it or use one of: hostname, state_dir, socket, interval, retry_interval, timeout, attempts, recovery_attempts, timeout_state, flap_detection, flap_low, flap_high, plugin_path, include, max_concurrent, max_check_spread"#,
            r#"/etc/monchero/agent.toml:3:3: unknown key "checks" at the top level: did you mean "check"?"#,
            "/etc/monchero/agent.toml:5:2: check must be written [[check]], with double brackets: each check is one entry of a list",
        ]
    );
}

#[test]
fn wrong_types_and_bad_durations_name_the_key() {
    let text = r#"[[check]]
name = "disk"
command = "builtin:disk"
interval = 30
retry_interval = "5 minuts"
timeout = "0s"
attempts = "3"
shell = "yes"
actions = "mail"
"#;
    assert_eq!(
        errors(text),
        [
            r#"/etc/monchero/agent.toml:4:12: interval must be a duration string like "30s", not 30"#,
            r#"/etc/monchero/agent.toml:5:18: retry_interval "5 minuts" is not a duration (unknown time unit "minuts", supported units: ns, us/µs, ms, sec, min, hours, days, weeks, months, years (and few variations)); write e.g. "30s", "5m" or "1h30m""#,
            r#"/etc/monchero/agent.toml:6:11: timeout "0s" must be longer than zero; write e.g. "30s""#,
            r#"/etc/monchero/agent.toml:7:12: attempts must be a positive whole number, not "3""#,
            r#"/etc/monchero/agent.toml:8:9: shell must be true or false, not "yes""#,
            r#"/etc/monchero/agent.toml:9:11: actions must be an array of strings, not "mail""#,
        ]
    );
}

#[test]
fn duplicate_names_point_at_the_second_and_name_the_first() {
    let text = "[[check]]\nname = \"disk\"\ncommand = \"builtin:disk\"\n\
                [[check]]\nname = \"disk\"\ncommand = \"builtin:disk -p /\"\n\
                [[action]]\nname = \"a\"\ncommand = \"/bin/true\"\n\
                [[action]]\nname = \"a\"\ncommand = \"/bin/false\"\n";
    assert_eq!(
        errors(text),
        [
            r#"/etc/monchero/agent.toml:5:8: check name "disk" is already used by the [[check]] at line 1; give each check a unique name"#,
            r#"/etc/monchero/agent.toml:11:8: action name "a" is already used by the [[action]] at line 7; give each action a unique name"#,
        ]
    );
}

#[test]
fn missing_names_and_commands() {
    let text = "[[check]]\ncommand = \"builtin:load\"\n[[check]]\nname = \"web\"\n\
                [[action]]\n[[check]]\nname = \"\"\ncommand = \"builtin:load\"\n";
    assert_eq!(
        errors(text),
        [
            r#"/etc/monchero/agent.toml:1:1: this [[check]] has no name; add name = "..." with a name no other check has"#,
            r#"/etc/monchero/agent.toml:3:1: [[check]] "web" has no command; add e.g. command = "builtin:disk""#,
            r#"/etc/monchero/agent.toml:5:1: this [[action]] has no name; add name = "..." with a name no other action has"#,
            r#"/etc/monchero/agent.toml:5:1: this [[action]] has no command; add e.g. command = "/usr/local/bin/notify-admin""#,
            r#"/etc/monchero/agent.toml:7:8: check name "" is not usable; a name must have visible characters and no control characters"#,
        ]
    );
}

#[test]
fn commands_that_cannot_be_split() {
    let text = "[[check]]\nname = \"a\"\ncommand = \"  ''  \"\n\
                [[check]]\nname = \"b\"\ncommand = \"check_x -H 'oops\"\n\
                [[action]]\nname = \"c\"\ncommand = \" \"\nshell = true\n";
    assert_eq!(
        errors(text),
        [
            r#"/etc/monchero/agent.toml:3:11: command has nothing to run; write the program and its arguments, e.g. command = "check_http -H localhost""#,
            "/etc/monchero/agent.toml:6:11: command has an unterminated quote or a trailing backslash; close the quote, or put a backslash before a quote meant literally",
            r#"/etc/monchero/agent.toml:9:11: command has nothing to run; write the program and its arguments, e.g. command = "/usr/local/bin/notify-admin""#,
        ]
    );
}

/// The list an unknown `builtin:` name is answered with; it grows with
/// every new built-in check.
fn known_builtins() -> String {
    let names: Vec<&str> = monchero_core::builtin::BUILTINS.iter().map(|info| info.name).collect();
    names.join(", ")
}

#[test]
fn builtin_errors_point_at_the_command() {
    let text = "[[check]]\nname = \"a\"\ncommand = \"builtin:dsk\"\n\
                [[check]]\nname = \"b\"\ncommand = \"builtin:disk -w 20\"\n\
                [[check]]\nname = \"c\"\ncommand = \"builtin:agent now\"\n\
                [[check]]\nname = \"d\"\ncommand = \"builtin:load\"\nshell = true\n\
                [[action]]\nname = \"e\"\ncommand = \"builtin:load\"\n";
    assert_eq!(
        errors(text),
        [
            format!(
                "/etc/monchero/agent.toml:3:11: builtin:dsk: no such built-in check (known: {})",
                known_builtins()
            )
            .as_str(),
            r#"/etc/monchero/agent.toml:6:11: builtin:disk: -w: "20" is not a percentage or size (write 20% or 500MB)"#,
            "/etc/monchero/agent.toml:9:11: builtin:agent takes no arguments; remove them",
            "/etc/monchero/agent.toml:12:11: builtin: checks run inside the agent, not in a shell; remove shell = true",
            "/etc/monchero/agent.toml:16:11: an action's command cannot be a builtin: check; give the program or script to run",
        ]
    );
}

#[test]
fn actions_a_check_uses_must_be_defined() {
    let text = "[[check]]\nname = \"web\"\ncommand = \"builtin:load\"\nactions = [\"pager\", \"mial\"]\n\
                [[action]]\nname = \"mail\"\ncommand = \"/bin/true\"\n";
    assert_eq!(
        errors(text),
        [
            r#"/etc/monchero/agent.toml:4:12: check "web" uses action "pager", which is not defined; define it in an [[action]] with name = "pager""#,
            r#"/etc/monchero/agent.toml:4:21: check "web" uses action "mial", which is not defined: did you mean "mail"?"#,
        ]
    );
}

#[test]
fn values_out_of_range() {
    let text = r#"[agent]
timeout_state = "warn"
attempts = 0
flap_low = 25
flap_high = 20
max_concurrent = 0

[[check]]
name = "a"
command = "builtin:load"
recovery_attempts = 0
timeout_state = "bad"
actions = ["x"]

[[action]]
name = "x"
command = "/bin/true"
on = ["problem", "recovry"]
"#;
    assert_eq!(
        errors(text),
        [
            r#"/etc/monchero/agent.toml:2:17: timeout_state "warn" is not a state; use "ok", "warning", "critical" or "unknown""#,
            "/etc/monchero/agent.toml:3:12: attempts must be 1 or more: it is how many non-OK results in a row make a problem hard (1 makes it hard at once)",
            "/etc/monchero/agent.toml:4:12: flap_low (25) must be lower than flap_high (20): a check starts flapping at flap_high percent of state changes and stops at flap_low",
            "/etc/monchero/agent.toml:6:18: max_concurrent must be 1 or more: it is how many checks may run at the same time",
            "/etc/monchero/agent.toml:11:21: recovery_attempts must be 1 or more: it is how many OK results in a row make a recovery hard (1 makes it hard at once)",
            r#"/etc/monchero/agent.toml:12:17: timeout_state "bad" is not a state; use "ok", "warning", "critical" or "unknown""#,
            r#"/etc/monchero/agent.toml:18:7: "problem" is not an action trigger; on takes "warning", "critical", "unknown", "recovery" and "flapping""#,
            r#"/etc/monchero/agent.toml:18:18: "recovry" is not an action trigger: did you mean "recovery"?"#,
        ]
    );
    assert_eq!(
        errors("[agent]\nflap_high = 120\n"),
        ["/etc/monchero/agent.toml:2:13: flap_high must be a percentage from 0 to 100, not 120"]
    );
}

#[test]
fn env_names_and_values_must_be_usable() {
    let text = "[[check]]\nname = \"a\"\ncommand = \"builtin:load\"\n\
                env = { \"A=B\" = \"x\", C = 1, D = \"a\\u0000b\" }\n";
    assert_eq!(
        errors(text),
        [
            r#"/etc/monchero/agent.toml:4:9: env variable name "A=B" is not usable; a name must not be empty or contain "=" or a NUL character"#,
            "/etc/monchero/agent.toml:4:26: each value in env must be a string, not 1",
            "/etc/monchero/agent.toml:4:33: env variable D must not contain a NUL character",
        ]
    );
}

#[test]
fn every_problem_is_reported_in_one_run_in_file_order() {
    let text = r#"[agent]
intervall = "1m"

[[check]]
name = "one"
command = "builtin:nope"
actions = ["missing"]
colour = "red"

[[check]]
name = "two"
command = "check_x 'unterminated"
interval = "soon"
"#;
    assert_eq!(
        errors(text),
        [
            r#"/etc/monchero/agent.toml:2:1: unknown key "intervall" in [agent]: did you mean "interval"?"#,
            format!(
                "/etc/monchero/agent.toml:6:11: builtin:nope: no such built-in check (known: {})",
                known_builtins()
            )
            .as_str(),
            r#"/etc/monchero/agent.toml:7:12: check "one" uses action "missing", which is not defined; define it in an [[action]] with name = "missing""#,
            r#"/etc/monchero/agent.toml:8:1: unknown key "colour" in [[check]] "one"; remove it or use one of: name, command, shell, interval, retry_interval, attempts, recovery_attempts, timeout, timeout_state, flap_detection, actions, env"#,
            "/etc/monchero/agent.toml:12:11: command has an unterminated quote or a trailing backslash; close the quote, or put a backslash before a quote meant literally",
            r#"/etc/monchero/agent.toml:13:12: interval "soon" is not a duration (expected number at 0); write e.g. "30s", "5m" or "1h30m""#,
        ]
    );
}

#[test]
fn includes_add_checks_after_the_main_files_own_in_sorted_order() {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("agent.toml");
    write(
        &dir.path().join("conf.d/b.toml"),
        "[[check]]\nname = \"b\"\ncommand = \"builtin:load\"\n",
    );
    write(
        &dir.path().join("conf.d/a.toml"),
        "[[check]]\nname = \"a\"\ncommand = \"builtin:load\"\nactions = [\"mail\"]\n\
         [[action]]\nname = \"mail\"\ncommand = \"/bin/true\"\n",
    );
    write(&dir.path().join("conf.d/.a.toml.swp"), "not toml");
    write(&dir.path().join("conf.d/notes.txt"), "not toml");
    // `*.toml` also matches the main file, which must not be read twice.
    let text = "[agent]\ninclude = [\"conf.d/*.toml\", \"*.toml\", \"conf.d/a.toml\"]\n\
                [[check]]\nname = \"main\"\ncommand = \"builtin:load\"\n";
    write(&main, text);
    let config = load(Some(&main)).unwrap();
    let names: Vec<&str> = config.checks.iter().map(|check| check.name.as_str()).collect();
    assert_eq!(names, ["main", "a", "b"]);
    assert_eq!(config.actions[0].name, "mail");
    assert_eq!(config.source, ConfigSource::File(main));
}

#[test]
fn errors_in_included_files_carry_their_path() {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("agent.toml");
    let web = dir.path().join("conf.d/web.toml");
    write(
        &web,
        "[agent]\ninterval = \"1m\"\n\n[[check]]\nname = \"main\"\ncommand = \"builtin:load\"\n\
         interval = 5\n",
    );
    let broken = dir.path().join("conf.d/x.toml");
    write(&broken, "[[check\n");
    let text = "[agent]\ninclude = [\"conf.d/*.toml\", \"conf.d/[.toml\", \"missing.toml\"]\n\
                [[check]]\nname = \"main\"\ncommand = \"builtin:load\"\n";
    let main_name = main.display().to_string();
    let errors = errors_in(text, &main);
    assert_eq!(
        errors,
        [
            format!(
                r#"{main_name}:2:29: include pattern "conf.d/[.toml" is not a valid glob: invalid range pattern at character 8; write e.g. "conf.d/*.toml""#
            ),
            format!(
                r#"{main_name}:2:46: included file {}/missing.toml does not exist; create it, or remove "missing.toml" from include"#,
                dir.path().display()
            ),
            format!(
                "{}:1:1: [agent] is not allowed in an included file; move these settings to the [agent] table of {main_name}",
                web.display()
            ),
            format!(
                r#"{}:5:8: check name "main" is already used by the [[check]] at {main_name}:3; give each check a unique name"#,
                web.display()
            ),
            format!(
                r#"{}:7:12: interval must be a duration string like "30s", not 5"#,
                web.display()
            ),
            format!(
                "{}:1:8: TOML syntax error: unclosed array table, expected `]]`",
                broken.display()
            ),
        ]
    );
}

#[test]
fn a_missing_or_unreadable_config_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    let errors = load(Some(&missing)).unwrap_err();
    assert_eq!(
        errors.to_string(),
        format!(
            "{}:1:1: cannot read the config file: No such file or directory (os error 2); check the path given to --config",
            missing.display()
        )
    );
    let errors = load(Some(dir.path())).unwrap_err();
    assert_eq!(
        errors.to_string(),
        format!(
            "{}:1:1: cannot read the config file: Is a directory (os error 21); check the path given to --config",
            dir.path().display()
        )
    );
}

#[test]
fn sources_display_for_messages() {
    assert_eq!(ConfigSource::File(PathBuf::from(FILE)).to_string(), FILE);
    assert_eq!(ConfigSource::Embedded.to_string(), "the embedded default config");
}

#[test]
fn keys_in_the_wrong_table_say_where_they_belong() {
    let text = r#"interval = "1m"
[agent]
command = "builtin:load"

[[check]]
command = "builtin:load"
flap_low = 3

[[action]]
name = "a"
command = "/bin/true"
interval = "1m"

[[check]]
name = "b"
command = "builtin:load"
actions = ["a"]
"#;
    assert_eq!(
        errors(text),
        [
            r#"/etc/monchero/agent.toml:1:1: unknown key "interval" at the top level; "interval" belongs in [agent]; move it below the [agent] header"#,
            r#"/etc/monchero/agent.toml:3:1: unknown key "command" in [agent]: "command" is a setting of a [[check]] or an [[action]]: is a [[check]] header missing above it?"#,
            r#"/etc/monchero/agent.toml:5:1: this [[check]] has no name; add name = "..." with a name no other check has"#,
            r#"/etc/monchero/agent.toml:7:1: unknown key "flap_low" in this [[check]]: "flap_low" can only be set in [agent]"#,
            r#"/etc/monchero/agent.toml:12:1: unknown key "interval" in [[action]] "a": "interval" is a [[check]] setting, not an [[action]] one"#,
        ]
    );
    assert_eq!(
        errors("agent = 1\ncheck = [1]\naction = \"x\"\nname = \"n\"\n"),
        [
            "/etc/monchero/agent.toml:1:9: agent must be a table: write [agent] on a line of its own, and its settings below it",
            "/etc/monchero/agent.toml:2:10: each check must be a table: write [[check]] and its keys below it",
            "/etc/monchero/agent.toml:3:10: action must be written [[action]], with double brackets: each action is one entry of a list",
            r#"/etc/monchero/agent.toml:4:1: unknown key "name" at the top level; "name" belongs in a [[check]] or an [[action]]; is the header missing above it?"#,
        ]
    );
}

#[test]
fn env_can_be_a_sub_table_or_dotted_keys() {
    let text = "[[check]]\nname = \"a\"\ncommand = \"builtin:load\"\nenv.LANG = \"C\"\n\
                [[check]]\nname = \"b\"\ncommand = \"builtin:load\"\n[check.env]\nTZ = \"UTC\"\nX = 1\n";
    assert_eq!(
        errors(text),
        ["/etc/monchero/agent.toml:10:5: each value in env must be a string, not 1"]
    );
    let config = parsed(&text.replace("X = 1\n", ""));
    assert_eq!(config.checks[0].env, [("LANG".into(), "C".into())]);
    assert_eq!(config.checks[1].env, [("TZ".into(), "UTC".into())]);
}

#[test]
fn inline_tables_work_like_headers() {
    let config = parsed(
        "agent = { attempts = 2 }\ncheck = [{ name = \"a\", command = \"builtin:load\" }]\n",
    );
    assert_eq!(config.checks[0].tracker.attempts, 2);
    assert_eq!(
        errors("check = [{ name = \"a\", comand = \"builtin:load\" }]\n"),
        [
            r#"/etc/monchero/agent.toml:1:10: [[check]] "a" has no command; add e.g. command = "builtin:disk""#,
            r#"/etc/monchero/agent.toml:1:24: unknown key "comand" in [[check]] "a": did you mean "command"?"#,
        ]
    );
}

#[test]
fn an_action_program_that_is_not_installed_is_a_warning() {
    let text = "[[check]]\nname = \"c\"\ncommand = \"builtin:load\"\nactions = [\"page\"]\n\
                [[action]]\nname = \"page\"\ncommand = \"notify_nothere_xyz --urgent\"\n";
    assert_eq!(
        warnings(&parsed(text)),
        [
            r#"/etc/monchero/agent.toml:7:11: program "notify_nothere_xyz" is not on PATH; action "page" fails until it is installed"#
        ]
    );
}

#[test]
fn without_a_config_file_load_falls_back_to_the_embedded_default() {
    // Only where the machine has no config of its own at the default path.
    if matches!(paths::default_config_path().try_exists(), Ok(false)) {
        let config = load(None).unwrap();
        assert_eq!(config.source, ConfigSource::Embedded);
        assert_eq!(config.checks.len(), 5);
    }
}

#[test]
fn locations_are_found_without_validating_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.toml");
    let read = |text: &str| {
        std::fs::write(&path, text).unwrap();
        super::locations(Some(&path))
    };
    let at = |state_dir: PathBuf, socket: PathBuf| Some(super::Locations { state_dir, socket });
    // The [agent] table alone is parsed; a broken check does not matter.
    assert_eq!(
        read("[agent]\nstate_dir = \"st\"\n\n[[check]]\nname = \"x\"\nintervall = 5\n"),
        at(dir.path().join("st"), dir.path().join("st/monchero.sock"))
    );
    assert_eq!(
        read("[agent]\nstate_dir = \"/st\"\nsocket = \"/run/m/m.sock\"\n"),
        at(PathBuf::from("/st"), PathBuf::from("/run/m/m.sock"))
    );
    // Dotted keys and tables after checks are read by a full parse.
    assert_eq!(
        read("agent.state_dir = \"/srv/st\"\n"),
        at(PathBuf::from("/srv/st"), PathBuf::from("/srv/st/monchero.sock"))
    );
    assert_eq!(
        read("[[check]]\nname = \"x\"\n[agent]\nstate_dir = \"/a\"\n"),
        at(PathBuf::from("/a"), PathBuf::from("/a/monchero.sock"))
    );
    let default = super::paths::default_state_dir();
    assert_eq!(
        read("[[check]]\nname = \"x\"\n"),
        at(default.clone(), super::paths::default_socket(&default))
    );
    assert_eq!(read("[agent\n"), None, "not TOML");
    assert_eq!(read("[agent]\nsocket = 5\n"), None, "not a path");
    assert_eq!(super::locations(Some(&dir.path().join("missing.toml"))), None);
}

/// A config with one check using action `n`, defined by `action`.
fn with_action(action: &str) -> String {
    format!(
        "[[check]]\nname = \"c\"\ncommand = \"builtin:load\"\nactions = [\"n\"]\n\n\
         [[action]]\nname = \"n\"\n{action}"
    )
}

#[test]
fn notifiers_get_their_defaults() {
    let config = parsed(&with_action(
        "kind = \"webhook\"\nurl = \"https://hooks.example.org/x\"\n\
         headers = { Authorization = \"Bearer t\", Title = \"{{check}}\" }\n",
    ));
    let hook = &config.actions[0];
    let ActionKind::Webhook(webhook) = &hook.kind else { panic!("{hook:?}") };
    assert_eq!(webhook.url, "https://hooks.example.org/x");
    assert_eq!(webhook.method, "POST");
    assert_eq!(webhook.body, None, "the event as JSON");
    assert_eq!(webhook.escape, monchero_core::template::Escape::Json);
    assert_eq!(webhook.headers.len(), 2);
    assert_eq!(
        hook.rate_limit,
        Some(monchero_core::ratelimit::Rate { count: 20, per: Duration::from_secs(600) })
    );
    assert_eq!(hook.retry.base, Duration::from_secs(10));
    assert_eq!(hook.retry.max, Duration::from_secs(600));
    assert_eq!(hook.retry.give_up_after, Duration::from_secs(86400));

    let config = parsed(&with_action(
        "kind = \"email\"\nto = [\"Ops <ops@example.org>\"]\nfrom = \"mon@example.org\"\n\
         smtp = \"smtp://mail.example.org:587\"\nusername = \"mon\"\n\
         password_file = \"/etc/monchero/smtp.pass\"\nrate_limit = \"5/h\"\nretry_for = \"1h\"\n",
    ));
    let mail = &config.actions[0];
    let ActionKind::Email(email) = &mail.kind else { panic!("{mail:?}") };
    let MailTransport::Smtp(smtp) = &email.transport else { panic!("{email:?}") };
    assert_eq!((smtp.host.as_str(), smtp.port), ("mail.example.org", 587));
    assert_eq!(smtp.tls, SmtpTls::Required, "a password never goes out in plain text");
    assert_eq!(mail.rate_limit.unwrap().per, Duration::from_secs(3600));
    assert_eq!(mail.retry.give_up_after, Duration::from_secs(3600));

    let config = parsed(&with_action(
        "kind = \"email\"\nto = [\"ops@example.org\"]\nfrom = \"mon@example.org\"\n\
         smtp = \"smtps://mail.example.org\"\n",
    ));
    let ActionKind::Email(email) = &config.actions[0].kind else { panic!() };
    assert!(
        matches!(&email.transport, MailTransport::Smtp(s) if s.port == 465 && s.tls == SmtpTls::Implicit)
    );
    let config = parsed(&with_action(
        "kind = \"email\"\nto = [\"ops@example.org\"]\nfrom = \"mon@example.org\"\n\
         sendmail = \"/usr/sbin/sendmail\"\nheaders = {}\n"
            .replace("headers = {}\n", "")
            .as_str(),
    ));
    let ActionKind::Email(email) = &config.actions[0].kind else { panic!() };
    assert_eq!(email.transport, MailTransport::Sendmail("/usr/sbin/sendmail".into()));
}

#[test]
fn notifier_mistakes_are_reported_where_they_are() {
    let check = |action: &str, expected: &[&str]| {
        let found = errors(&with_action(action));
        let found: Vec<&str> =
            found.iter().map(|e| e.strip_prefix("/etc/monchero/").unwrap_or(e)).collect();
        assert_eq!(found, expected, "for {action:?}");
    };
    check(
        "kind = \"webhok\"\nurl = \"http://x\"\n",
        &["agent.toml:8:8: kind \"webhok\" is not an action kind: did you mean \"webhook\"?"],
    );
    check(
        "url = \"http://x\"\n",
        &[
            "agent.toml:6:1: action \"n\" has a url but no kind; add kind = \"webhook\" (or a command to run)",
        ],
    );
    check(
        "kind = \"webhook\"\n",
        &[
            "agent.toml:6:1: [[action]] \"n\" has no url; add e.g. url = \"https://hooks.example.org/...\"",
        ],
    );
    check(
        "kind = \"webhook\"\nurl = \"ftp://x/\"\ncommand = \"/bin/true\"\nsmtp = \"smtp://x\"\n",
        &[
            "agent.toml:9:7: url \"ftp://x/\" must start with http:// or https:// and name a host",
            "agent.toml:10:11: command is not a setting of a webhook action; remove it (command belongs to kind = \"command\")",
            "agent.toml:11:8: smtp is not a setting of a webhook action; remove it (smtp belongs to kind = \"email\")",
        ],
    );
    check(
        "kind = \"webhook\"\nurl = \"http://x\"\nbody = \"{\\\"t\\\": 1, {{chek}}\"\n",
        &[
            "agent.toml:10:20: body: {{chek}} is not a field; use one of: check, host, hostname, state, previous_state, state_type, event, attempt, max_attempts, summary, long_output, timestamp, percent_state_change, suppressed, collected",
        ],
    );
    check(
        "kind = \"webhook\"\nurl = \"http://x\"\nbody = '{{check|shout}}'\nrate_limit = \"lots\"\n",
        &[
            "agent.toml:10:11: body: |shout is not a filter; use one of: upper, lower, json, raw",
            "agent.toml:11:14: rate_limit \"lots\" is not a rate; write a count and a window, e.g. rate_limit = \"20/10m\" (at most 20 per 10 minutes)",
        ],
    );
    check(
        "kind = \"webhook\"\nurl = \"http://x\"\nca_file = \"/nonexistent/ca.pem\"\n",
        &[
            "agent.toml:10:11: ca_file /nonexistent/ca.pem cannot be read: No such file or directory (os error 2)",
        ],
    );
    check(
        "kind = \"email\"\nto = [\"not an address\"]\nfrom = \"m@x.org\"\n",
        &[
            "agent.toml:6:1: [[action]] \"n\" has neither smtp nor sendmail; add e.g. smtp = \"smtp://localhost:25\" or sendmail = \"/usr/sbin/sendmail\"",
            "agent.toml:9:7: \"not an address\" is not a mail address; write \"ops@example.org\" or \"Ops <ops@example.org>\"",
        ],
    );
    check(
        "kind = \"email\"\nto = [\"a@x.org\"]\nfrom = \"m@x.org\"\nsmtp = \"smtps://x\"\n\
         starttls = \"required\"\nusername = \"u\"\nrecheck = true\n",
        &[
            "agent.toml:12:12: starttls is for smtp://; smtps:// is TLS from the start",
            "agent.toml:13:12: username needs password_file, the file the password is read from",
            "agent.toml:14:11: recheck is not a setting of an email action; remove it (recheck belongs to kind = \"command\")",
        ],
    );
}

#[test]
fn the_ready_templates_in_the_docs_load_and_make_valid_json() {
    let docs = include_str!("../../../docs/actions.md");
    let (mut names, mut tables) = (Vec::new(), String::new());
    for block in docs.split("```toml\n").skip(1) {
        let block = block.split("```").next().unwrap();
        if block.contains("kind = \"webhook\"") || block.contains("kind = \"email\"") {
            tables.push_str(block);
            tables.push('\n');
            names.extend(block.lines().filter_map(|line| line.strip_prefix("name = ")));
        }
    }
    let text = format!(
        "[[check]]\nname = \"c\"\ncommand = \"builtin:load\"\nactions = [{}]\n\n{tables}",
        names.join(", ")
    );
    let config = parsed(&text);
    assert_eq!(config.actions.len(), names.len());
    assert!(names.len() >= 7, "{names:?}");
    let mut event = crate::delivery::tests::delivery(0).event;
    event.summary = "disk \"/\" full\\".into();
    event.long_output = "line 1\nline 2".into();
    let mut json_bodies = 0;
    for action in &config.actions {
        let ActionKind::Webhook(webhook) = &action.kind else { continue };
        let Some(body) = &webhook.body else { continue };
        if webhook.escape == monchero_core::template::Escape::Json {
            let rendered = body.render(&event, webhook.escape);
            let parsed: Result<serde_json::Value, _> = serde_json::from_str(&rendered);
            assert!(parsed.is_ok(), "{}: {rendered}", action.name);
            json_bodies += 1;
        }
    }
    assert_eq!(json_bodies, 4, "Slack, Telegram, Teams and the collect example");
}

#[test]
fn push_targets_get_defaults_and_the_agent_s_hostname() {
    let config = parsed(
        "[agent]\nhostname = \"web-1\"\n[[check]]\nname = \"a\"\ncommand = \"builtin:load\"\n\
         [[push]]\nname = \"central\"\nurl = \"https://monitor.example.net/v1/push\"\n\
         [[push]]\nname = \"local\"\nurl = \"http://127.0.0.1:8080/v1/push\"\nagent = \"w1\"\n\
         interval = \"1s\"\nbatch_max = 50\nspool_max = \"1MiB\"\n",
    );
    let [central, local] = &config.push[..] else { panic!("{:?}", config.push) };
    assert_eq!(central.agent, "web-1");
    assert_eq!(central.interval, Duration::from_secs(10));
    assert_eq!(central.heartbeat, Duration::from_secs(60));
    assert_eq!(central.timeout, Duration::from_secs(10));
    assert_eq!((central.batch_max, central.spool_max), (500, 64 << 20));
    assert_eq!(local.agent, "w1");
    assert_eq!(
        (local.interval, local.batch_max, local.spool_max),
        (Duration::from_secs(1), 50, 1 << 20)
    );
}

#[test]
fn push_mistakes_are_reported_where_they_are() {
    let text = "[[check]]\nname = \"a\"\ncommand = \"builtin:load\"\n\
                [[push]]\nname = \"central\"\nurl = \"http://monitor.example.net/v1/push\"\n\
                cert_file = \"/nonexistent/client.pem\"\nspool_max = \"1KiB\"\nintervall = \"5s\"\n\
                [[push]]\nname = \"bad/name\"\n\
                [[push]]\nname = \"t\"\nurl = \"https://x\"\ntoken_file = \"/nonexistent/token\"\n";
    assert_eq!(
        errors(text),
        [
            "/etc/monchero/agent.toml:6:7: url \"http://monitor.example.net/v1/push\" uses plain http, which would send results unencrypted over the network; use https (http is accepted only for 127.0.0.1, ::1 and localhost)",
            "/etc/monchero/agent.toml:7:13: cert_file needs key_file: add the client certificate's private key",
            "/etc/monchero/agent.toml:8:13: spool_max must be at least 16KiB (1024 bytes given): it bounds the backlog kept while the server is unreachable",
            "/etc/monchero/agent.toml:9:1: unknown key \"intervall\" in [[push]] \"central\": did you mean \"interval\"?",
            "/etc/monchero/agent.toml:10:1: [[push]] \"bad/name\" has no url; add e.g. url = \"https://monitor.example.net/v1/push\"",
            "/etc/monchero/agent.toml:11:8: push name \"bad/name\" names its spool directory, so it may only have letters, digits, \".\", \"_\" and \"-\" (and not start with \".\")",
            "/etc/monchero/agent.toml:15:14: cannot read token_file /nonexistent/token: No such file or directory (os error 2)",
        ]
    );
}

#[test]
fn icinga2_and_remote_write_targets_take_their_own_keys() {
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("password");
    write(&password, "s3cret\nignored\n");
    let text = format!(
        "[agent]\nhostname = \"web-1\"\n[[check]]\nname = \"a\"\ncommand = \"builtin:load\"\n\
         [[push]]\nname = \"icinga\"\nkind = \"icinga2\"\nurl = \"https://icinga.example.net:5665\"\n\
         username = \"monchero\"\npassword_file = \"{p}\"\ncreate_objects = true\n\
         [[push]]\nname = \"mimir\"\nkind = \"remote_write\"\nurl = \"https://mimir.example.net/api/v1/push\"\n\
         username = \"tenant\"\npassword_file = \"{p}\"\nheaders = {{ X-Scope-OrgID = \"team-a\" }}\n\
         [[push]]\nname = \"central\"\nurl = \"https://monitor.example.net/v1/push\"\n",
        p = password.display()
    );
    let config = parsed(&text);
    let [icinga, mimir, central] = &config.push[..] else { panic!("{:?}", config.push) };
    assert_eq!(icinga.kind, PushKind::Icinga2 { host: "web-1".into(), create_objects: true });
    assert_eq!(icinga.basic_auth, Some(("monchero".into(), password.clone())));
    assert_eq!(mimir.kind, PushKind::RemoteWrite);
    assert_eq!(mimir.headers, [("X-Scope-OrgID".to_owned(), "team-a".to_owned())]);
    assert_eq!((&central.kind, &central.basic_auth), (&PushKind::Monchero, &None));
    assert_eq!(password_line(b"s3cret\r\nx"), Some("s3cret".into()));
    assert_eq!(password_line(b"\n"), None);
}

#[test]
fn kind_specific_mistakes_are_reported_where_they_are() {
    let text = "[[check]]\nname = \"a\"\ncommand = \"builtin:load\"\n\
                [[push]]\nname = \"a\"\nkind = \"graphite\"\nurl = \"https://x\"\n\
                [[push]]\nname = \"b\"\nkind = \"icinga2\"\nurl = \"https://x\"\ntoken_file = \"/nonexistent\"\n\
                [[push]]\nname = \"c\"\nkind = \"remote_write\"\nurl = \"https://x\"\nhost = \"h\"\n\
                username = \"u\"\nheaders = { Content-Type = \"text/plain\" }\n\
                [[push]]\nname = \"d\"\nurl = \"https://x\"\nusername = \"u\"\npassword_file = \"/nonexistent\"\n\
                [[push]]\nname = \"e\"\nkind = \"icinga2\"\nurl = \"https://x\"\nhost = \"a!b\"\n\
                cert_file = \"/nonexistent/c.pem\"\nkey_file = \"/nonexistent/c.key\"\n";
    assert_eq!(
        errors(text),
        [
            "/etc/monchero/agent.toml:6:8: kind \"graphite\" is not a push kind; use \"monchero\" (the default), \"icinga2\" or \"remote_write\"",
            "/etc/monchero/agent.toml:8:1: [[push]] \"b\" (kind = \"icinga2\") needs credentials: username and password_file of an ApiUser, or cert_file and key_file",
            "/etc/monchero/agent.toml:12:14: cannot read token_file /nonexistent: No such file or directory (os error 2)",
            "/etc/monchero/agent.toml:12:14: Icinga 2's API takes no bearer token: authenticate with username and password_file (an ApiUser) or cert_file and key_file",
            "/etc/monchero/agent.toml:17:8: host applies to kind = \"icinga2\" only, and this target is \"remote_write\"",
            "/etc/monchero/agent.toml:18:12: username needs password_file: the file holding its password",
            "/etc/monchero/agent.toml:19:11: headers: Content-Type is set by the remote-write sink itself",
            "/etc/monchero/agent.toml:23:12: username and password_file are for kind = \"icinga2\" and \"remote_write\"; the push protocol authenticates with token_file or cert_file and key_file",
            "/etc/monchero/agent.toml:24:17: cannot read password_file /nonexistent: No such file or directory (os error 2)",
            "/etc/monchero/agent.toml:29:8: host must be the name of an Icinga host object: visible characters, no \"!\" and no control characters",
            "/etc/monchero/agent.toml:30:13: cannot read cert_file /nonexistent/c.pem: No such file or directory (os error 2)",
        ]
    );
}

#[test]
fn collect_actions_default_to_soft_16k_and_the_problem_states() {
    let config = parsed(
        "[[check]]\nname = \"c\"\ncommand = \"builtin:load\"\nactions = [\"ps\", \"log\"]\n\
         [[action]]\nname = \"ps\"\nkind = \"collect\"\ncommand = \"ps -eo pid,args\"\n\
         [[action]]\nname = \"log\"\nkind = \"collect\"\ncommand = \"tail -n 50 /var/log/syslog | cat\"\n\
         shell = true\nwhen = \"hard\"\nmax_output = \"1MiB\"\non = [\"critical\"]\ntimeout = \"5s\"\n",
    );
    let ps = &config.actions[0];
    let ActionKind::Collect(collect) = &ps.kind else { panic!("{ps:?}") };
    assert_eq!(collect.command, CommandLine::parse("ps -eo pid,args").unwrap());
    assert_eq!(collect.when, CollectWhen::Soft);
    assert_eq!(collect.max_output, 16 * 1024);
    assert_eq!(ps.on, [ActionTrigger::Warning, ActionTrigger::Critical, ActionTrigger::Unknown]);
    assert_eq!(ps.rate_limit, None);
    assert!(!ps.kind.is_notifier());

    let log = &config.actions[1];
    let ActionKind::Collect(collect) = &log.kind else { panic!("{log:?}") };
    assert_eq!(collect.command, CommandLine::shell("tail -n 50 /var/log/syslog | cat").unwrap());
    assert_eq!(collect.when, CollectWhen::Hard);
    assert_eq!(collect.max_output, 1024 * 1024);
    assert_eq!(log.on, [ActionTrigger::Critical]);
    assert_eq!(log.timeout, Duration::from_secs(5));
}

#[test]
fn collect_actions_reject_what_does_not_fit_them_with_its_place() {
    let text = "[[check]]\nname = \"c\"\ncommand = \"builtin:load\"\nactions = [\"ps\"]\n\
                [[action]]\nname = \"ps\"\nkind = \"collect\"\ncommand = \"/bin/ps\"\n\
                when = \"later\"\nmax_output = \"2MiB\"\non = [\"critical\", \"recovery\"]\n\
                repeat = \"5m\"\nrecheck = true\nurl = \"http://127.0.0.1/\"\n";
    assert_eq!(
        errors(text),
        [
            format!(
                "{FILE}:9:8: when = \"later\" is not a moment to collect at; use \"soft\" (at the \
                 first non-OK result) or \"hard\" (at the hard change)"
            ),
            format!(
                "{FILE}:10:14: max_output must be at most 1MiB (2097152 bytes given): the output \
                 is kept with the check's state until it recovers"
            ),
            format!(
                "{FILE}:11:19: action \"ps\" is a collect, which runs when a check turns non-OK; \
                 on takes only \"warning\", \"critical\" and \"unknown\", not \"recovery\""
            ),
            format!(
                "{FILE}:12:10: repeat is not a setting of a collect action; remove it (a collect \
                 runs once when a check turns non-OK; delay and repeat belong to the actions that \
                 notify)"
            ),
            format!(
                "{FILE}:13:11: recheck is not a setting of a collect action; remove it (recheck \
                 belongs to kind = \"command\")"
            ),
            format!(
                "{FILE}:14:7: url is not a setting of a collect action; remove it (url belongs to \
                 kind = \"webhook\")"
            ),
        ]
    );
    let missing = "[[check]]\nname = \"c\"\ncommand = \"builtin:load\"\nactions = [\"ps\"]\n\
                   [[action]]\nname = \"ps\"\nkind = \"collect\"\n";
    assert_eq!(errors(missing).len(), 1, "{:?}", errors(missing));
    assert!(
        errors(missing)[0].starts_with(&format!("{FILE}:5:1: [[action]] \"ps\" has no command"))
    );
    let command_with_when = "[[check]]\nname = \"c\"\ncommand = \"builtin:load\"\nactions = [\"n\"]\n\
                             [[action]]\nname = \"n\"\ncommand = \"/bin/true\"\nwhen = \"soft\"\n";
    assert_eq!(
        errors(command_with_when),
        [format!(
            "{FILE}:8:8: when is not a setting of a command action; remove it (when belongs to \
             kind = \"collect\")"
        )]
    );
}
