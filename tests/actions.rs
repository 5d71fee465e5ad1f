//! Actions on hard state changes, run by the real daemon.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::daemon::{Agent, Setup, check, quiet};

/// Waits until `file` has `lines` lines, then a little longer to see that
/// no more arrive; returns them.
fn settled_lines(file: &Path, lines: usize) -> Vec<String> {
    let read = || -> Vec<String> {
        std::fs::read_to_string(file).unwrap_or_default().lines().map(str::to_owned).collect()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while read().len() < lines {
        assert!(
            Instant::now() < deadline,
            "expected {lines} lines in {}, have {:?}",
            file.display(),
            read()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Actions run asynchronously: give a wrongly repeated one time to show.
    std::thread::sleep(Duration::from_millis(300));
    read()
}

#[test]
fn an_action_fires_once_per_hard_change_with_the_event_in_env_and_stdin() {
    let setup = Setup::new();
    let log = setup.plugins.path("actions.log");
    let events = setup.plugins.path("events.jsonl");
    let action = setup.plugins.script(
        "notify",
        &format!(
            "echo \"$MONCHERO_EVENT $MONCHERO_CHECK $MONCHERO_STATE $MONCHERO_PREVIOUS_STATE $MONCHERO_STATE_TYPE $MONCHERO_ATTEMPT\" >> {}\ncat >> {}\necho >> {}",
            log.display(),
            events.display(),
            events.display()
        ),
    );
    let web = quiet("web");
    let extra = format!(
        "[[action]]\nname = \"notify\"\ncommand = \"{}\"\non = [\"critical\", \"recovery\"]\n",
        action.display()
    );
    let config = setup.config(&[&web], &extra);
    // This test flips the state often enough to count as flapping, which
    // holds actions back: flap detection is off here.
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("attempts = 3", "attempts = 2\nactions = [\"notify\"]\nflap_detection = false");
    std::fs::write(&config, text).unwrap();
    let agent = Agent::start(&config, setup.dir());

    // Soft problem, then a soft recovery: no action.
    setup.set_code(2);
    agent.check_now(&web);
    setup.set_code(0);
    agent.check_now(&web);
    // Hard problem on the second attempt: one action.
    setup.set_code(2);
    agent.check_now(&web);
    agent.check_now(&web);
    let lines = settled_lines(&log, 1);
    assert_eq!(lines, [format!("problem {web} CRITICAL OK HARD 2")]);
    // Still critical: nothing more. Then WARNING: not subscribed.
    agent.check_now(&web);
    setup.set_code(1);
    agent.check_now(&web);
    // Recovery is hard at once: one action.
    setup.set_code(0);
    agent.check_now(&web);
    let lines = settled_lines(&log, 2);
    assert_eq!(
        lines,
        [format!("problem {web} CRITICAL OK HARD 2"), format!("recovery {web} OK WARNING HARD 1")]
    );

    let json: Vec<Value> = std::fs::read_to_string(&events)
        .unwrap()
        .lines()
        .filter(|line| !line.is_empty())
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(json.len(), 2);
    assert_eq!(json[0]["kind"], "problem");
    assert_eq!(json[0]["check"], web.as_str());
    assert_eq!(json[0]["state"], "critical");
    assert_eq!(json[0]["summary"], "state from file: 2");
    assert_eq!(json[0]["perfdata"][0]["label"], "v");
    assert_eq!(json[1]["kind"], "recovery");

    let (status, _) = agent.status();
    assert_eq!(check(&status, &web)["last_action"]["action"], "notify");
    assert_eq!(check(&status, &web)["last_action"]["ok"], true);

    // A restart fires nothing again.
    assert_eq!(agent.stop(), 0);
    let agent = Agent::start(&config, setup.dir());
    agent.check_now(&web);
    assert_eq!(settled_lines(&log, 2).len(), 2);
    assert_eq!(agent.stop(), 0);
}

#[test]
fn a_hanging_action_is_killed_and_checks_keep_their_schedule() {
    let setup = Setup::new();
    let count = setup.plugins.path("count");
    let ticker =
        setup.plugins.script("check_tick", &format!("echo run >> {}\necho OK", count.display()));
    let hang = setup.plugins.script("hang", "sleep 300");
    let web = quiet("web");
    let extra = format!(
        "[[action]]\nname = \"hang\"\ncommand = \"{}\"\ntimeout = \"1s\"\n\n\
         [[check]]\nname = \"tick\"\ncommand = \"{}\"\ninterval = \"1s\"\n",
        hang.display(),
        ticker.display()
    );
    let config = setup.config(&[&web], &extra);
    let text = std::fs::read_to_string(&config).unwrap().replacen(
        "attempts = 3",
        "attempts = 1\nactions = [\"hang\"]",
        1,
    );
    std::fs::write(&config, text).unwrap();
    let agent = Agent::start(&config, setup.dir());

    setup.set_code(2);
    assert_eq!(agent.check_now(&web)["state"], "critical");
    let runs_before = std::fs::read_to_string(&count).unwrap_or_default().lines().count();
    std::thread::sleep(Duration::from_millis(2500));
    let runs_after = std::fs::read_to_string(&count).unwrap_or_default().lines().count();
    assert!(
        runs_after >= runs_before + 2,
        "the checks stalled: {runs_before} -> {runs_after} runs"
    );

    let status =
        agent.wait_until(|s| check(s, &web)["last_action"].is_object(), "the action to end");
    let action = &check(&status, &web)["last_action"];
    assert_eq!(action["ok"], false);
    assert_eq!(action["exit_code"], Value::Null);
    assert!(
        action["summary"].as_str().unwrap().starts_with("(plugin timed out after 1s)"),
        "{action}"
    );

    let text = crate::util::monchero().args(["status", "--config"]).arg(&config).output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("[action hang failed]"), "{text}");
    assert_eq!(agent.stop(), 0);
}

#[test]
fn recheck_runs_the_check_again_after_the_action() {
    let setup = Setup::new();
    let code = setup.plugins.path("code");
    // The "remediation" fixes what the check looks at.
    let fix = setup.plugins.script("fix", &format!("echo 0 > {}", code.display()));
    let web = quiet("web");
    let extra = format!(
        "[[action]]\nname = \"fix\"\ncommand = \"{}\"\non = [\"critical\"]\nrecheck = true\n",
        fix.display()
    );
    let config = setup.config(&[&web], &extra);
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("attempts = 3", "attempts = 1\nactions = [\"fix\"]");
    std::fs::write(&config, text).unwrap();
    let agent = Agent::start(&config, setup.dir());

    setup.set_code(2);
    assert_eq!(agent.check_now(&web)["state"], "critical");
    let status =
        agent.wait_until(|s| check(s, &web)["state"] == "ok", "the recheck to see the fix");
    assert_eq!(check(&status, &web)["state_type"], "hard");
    assert_eq!(agent.stop(), 0);
}

#[test]
fn a_flapping_check_sends_the_flapping_event_and_then_holds_back() {
    let setup = Setup::new();
    let log = setup.plugins.path("actions.log");
    let action =
        setup.plugins.script("notify", &format!("echo \"$MONCHERO_EVENT\" >> {}", log.display()));
    let web = quiet("web");
    let extra = format!(
        "[[action]]\nname = \"notify\"\ncommand = \"{}\"\non = [\"critical\", \"flapping\"]\n",
        action.display()
    );
    let config = setup.config(&[&web], &extra);
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("attempts = 3", "attempts = 1\nactions = [\"notify\"]");
    std::fs::write(&config, text).unwrap();
    let agent = Agent::start(&config, setup.dir());
    // CRITICAL and OK in turn: the percent state change passes 20% on the
    // fifth result (6.25, 12.4, 18.4, 24.2 after the first), as in Nagios.
    for code in [2, 0, 2, 0, 2, 0, 2, 0, 2, 0] {
        setup.set_code(code);
        agent.check_now(&web);
    }
    let lines = settled_lines(&log, 3);
    assert_eq!(lines, ["problem", "problem", "flapping_start"]);
    assert_eq!(check(&agent.status().0, &web)["flapping"], true);
    assert_eq!(agent.stop(), 0);
}

/// A config with one check (`attempts = 1`, no flap detection) whose
/// action `notify` logs `$MONCHERO_EVENT` lines, with `extra` action keys.
fn notify_setup(extra: &str) -> (Setup, std::path::PathBuf, std::path::PathBuf, String) {
    let setup = Setup::new();
    let log = setup.plugins.path("actions.log");
    let action =
        setup.plugins.script("notify", &format!("echo \"$MONCHERO_EVENT\" >> {}", log.display()));
    let web = quiet("web");
    let actions = format!(
        "[[action]]\nname = \"notify\"\ncommand = \"{}\"\non = [\"critical\", \"recovery\"]\n{extra}",
        action.display()
    );
    let config = setup.config(&[&web], &actions);
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("attempts = 3", "attempts = 1\nactions = [\"notify\"]\nflap_detection = false");
    std::fs::write(&config, text).unwrap();
    (setup, config, log, web)
}

fn lines_now(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file).unwrap_or_default().lines().map(str::to_owned).collect()
}

#[test]
fn a_delayed_action_waits_and_a_short_problem_sends_nothing() {
    let (setup, config, log, web) = notify_setup("delay = \"2s\"\n");
    let agent = Agent::start(&config, setup.dir());

    // A problem that is over within the delay: no problem, no recovery.
    setup.set_code(2);
    agent.check_now(&web);
    std::thread::sleep(Duration::from_millis(500));
    setup.set_code(0);
    agent.check_now(&web);
    std::thread::sleep(Duration::from_millis(3000));
    assert!(lines_now(&log).is_empty(), "{:?}", lines_now(&log));

    // A problem that lasts: the action runs after the delay, then the
    // recovery goes out too.
    setup.set_code(2);
    agent.check_now(&web);
    std::thread::sleep(Duration::from_millis(800));
    assert!(lines_now(&log).is_empty(), "ran before its delay: {:?}", lines_now(&log));
    assert_eq!(settled_lines(&log, 1), ["problem"]);
    setup.set_code(0);
    agent.check_now(&web);
    assert_eq!(settled_lines(&log, 2), ["problem", "recovery"]);
    assert_eq!(agent.stop(), 0);
}

#[test]
fn a_repeating_action_runs_while_the_problem_lasts_and_across_a_restart() {
    let (setup, config, log, web) = notify_setup("repeat = \"1s\"\n");
    let agent = Agent::start(&config, setup.dir());
    setup.set_code(2);
    agent.check_now(&web);
    assert_eq!(settled_lines(&log, 3), ["problem", "problem", "problem"]);
    // The plan is kept with the state: a restarted agent goes on repeating.
    assert_eq!(agent.stop(), 0);
    let before = lines_now(&log).len();
    let agent = Agent::start(&config, setup.dir());
    let again = settled_lines(&log, before + 1);
    assert!(again[before..].iter().all(|line| line == "problem"), "{again:?}");
    setup.set_code(0);
    agent.check_now(&web);
    let deadline = Instant::now() + Duration::from_secs(10);
    while lines_now(&log).last().map(String::as_str) != Some("recovery") {
        assert!(Instant::now() < deadline, "no recovery: {:?}", lines_now(&log));
        std::thread::sleep(Duration::from_millis(20));
    }
    let after_recovery = lines_now(&log).len();
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(lines_now(&log).len(), after_recovery, "repeats stop at the recovery");
    assert_eq!(agent.stop(), 0);
}
