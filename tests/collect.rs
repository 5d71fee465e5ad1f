//! `collect` actions run by the real daemon: once per problem, their output
//! in the events that follow (stdin JSON, environment, webhook templates),
//! across a restart, held notifications, timeouts.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::daemon::{Agent, Setup, check, quiet};
use crate::receivers::{HttpServer, wait_for};
use crate::util::{read_pid, wait_dead};

/// A config whose one check has `attempts`, no flap detection, and the
/// actions `uses`, defined in `actions`.
fn config_with(setup: &Setup, attempts: u32, uses: &[&str], actions: &str) -> (PathBuf, String) {
    let web = quiet("web");
    let config = setup.config(&[&web], actions);
    let names: Vec<String> = uses.iter().map(|name| format!("{name:?}")).collect();
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "attempts = 3",
        &format!("attempts = {attempts}\nactions = [{}]\nflap_detection = false", names.join(", ")),
    );
    std::fs::write(&config, text).unwrap();
    (config, web)
}

/// A command action `notify` that appends the event JSON (stdin) to
/// `events.jsonl` and writes `$MONCHERO_COLLECTED` to `collected-env.txt`.
fn notify_action(setup: &Setup) -> String {
    let events = setup.plugins.path("events.jsonl");
    let env = setup.plugins.path("collected-env.txt");
    let script = setup.plugins.script(
        "notify",
        &format!(
            "cat >> {events}\necho >> {events}\nprintf '%s' \"$MONCHERO_COLLECTED\" > {env}",
            events = events.display(),
            env = env.display()
        ),
    );
    format!(
        "[[action]]\nname = \"notify\"\ncommand = \"{}\"\non = [\"critical\", \"recovery\"]\n\n",
        script.display()
    )
}

fn lines(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file).unwrap_or_default().lines().map(str::to_owned).collect()
}

/// The events `notify` received, once there are `count`.
fn events(setup: &Setup, count: usize) -> Vec<Value> {
    let file = setup.plugins.path("events.jsonl");
    let parse = || -> Vec<Value> {
        lines(&file)
            .iter()
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    wait_for(|| parse().len() >= count, &format!("{count} events"));
    parse()
}

#[test]
fn a_collect_runs_once_at_the_soft_failure_and_every_later_action_gets_its_output() {
    let server = HttpServer::start(0, 200);
    let setup = Setup::new();
    let runs = setup.plugins.path("collect-runs");
    let snap = setup.plugins.script(
        "snap",
        &format!(
            "echo \"$MONCHERO_EVENT $MONCHERO_STATE_TYPE $MONCHERO_ATTEMPT\" >> {}\n\
             echo 'PID %CPU \"quoted\"'\necho 'disk nearly full' >&2",
            runs.display()
        ),
    );
    let big = setup.plugins.script("big", "head -c 5000 /dev/zero | tr '\\0' x");
    let actions = format!(
        "{notify}[[action]]\nname = \"snap\"\nkind = \"collect\"\ncommand = \"{snap}\"\n\n\
         [[action]]\nname = \"big\"\nkind = \"collect\"\ncommand = \"{big}\"\nmax_output = \"100\"\n\n\
         [[action]]\nname = \"chat\"\nkind = \"webhook\"\nurl = \"{url}\"\non = [\"critical\"]\n\
         body = '{{\"text\": \"{{{{check}}}} is {{{{state|upper}}}}\\n{{{{collected}}}}\"}}'\n",
        notify = notify_action(&setup),
        snap = snap.display(),
        big = big.display(),
        url = server.url("/chat"),
    );
    let (config, web) = config_with(&setup, 2, &["snap", "big", "notify", "chat"], &actions);
    let agent = Agent::start(&config, setup.dir());

    // The soft failure: the collects run, with the moment's event.
    setup.set_code(2);
    agent.check_now(&web);
    wait_for(|| lines(&runs).len() == 1, "the collect to run at the soft failure");
    assert_eq!(lines(&runs), ["problem SOFT 1"]);
    let status = agent.wait_until(
        |s| check(s, &web)["collected"].as_array().is_some_and(|c| c.len() == 2),
        "status to show both collected outputs",
    );
    let shown: Vec<&str> = check(&status, &web)["collected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["action"].as_str().unwrap())
        .collect();
    assert_eq!(shown.len(), 2);
    assert!(shown.contains(&"snap") && shown.contains(&"big"), "{shown:?}");

    // The hard change: no second collect; the event carries the output.
    agent.check_now(&web);
    let problem = &events(&setup, 1)[0];
    assert_eq!(problem["kind"], "problem");
    let collected = problem["collected"].as_array().unwrap();
    let snap_out = collected.iter().find(|c| c["action"] == "snap").unwrap();
    assert_eq!(snap_out["output"], "PID %CPU \"quoted\"\ndisk nearly full");
    assert_eq!(snap_out["exit_code"], 0);
    assert_eq!(snap_out["ended"], "exit status 0");
    assert_eq!(snap_out["truncated"], false);
    let big_out = collected.iter().find(|c| c["action"] == "big").unwrap();
    assert_eq!(big_out["truncated"], true);
    let text = big_out["output"].as_str().unwrap();
    assert_eq!(text, format!("{}\n[… output truncated by monchero]", "x".repeat(100)));

    let env = std::fs::read_to_string(setup.plugins.path("collected-env.txt")).unwrap();
    assert!(env.contains("=== snap (exit status 0, "), "{env}");
    assert!(env.contains("PID %CPU \"quoted\"\ndisk nearly full"), "{env}");

    let request = &server.settled(1)[0];
    let body = request.json();
    let text = body["text"].as_str().unwrap();
    assert!(text.starts_with(&format!("{web} is CRITICAL\n=== ")), "{text}");
    assert!(text.contains("PID %CPU \"quoted\"\ndisk nearly full"), "{text}");
    assert_eq!(lines(&runs), ["problem SOFT 1"], "not again at the hard change");

    // The recovery carries nothing and clears what status shows.
    setup.set_code(0);
    agent.check_now(&web);
    let recovery = &events(&setup, 2)[1];
    assert_eq!(recovery["kind"], "recovery");
    assert_eq!(recovery["collected"], serde_json::json!([]));
    let status = agent.wait_until(|s| check(s, &web)["state"] == "ok", "the recovery");
    assert!(check(&status, &web).get("collected").is_none(), "{status}");

    // A new problem is a new episode: collected again.
    setup.set_code(2);
    agent.check_now(&web);
    wait_for(|| lines(&runs).len() == 2, "the collect to run for the new problem");
    assert_eq!(agent.stop(), 0);
}

#[test]
fn with_one_attempt_the_notification_waits_for_a_hanging_collect_until_its_timeout() {
    let setup = Setup::new();
    let pid = setup.plugins.path("hang.pid");
    let hang = setup
        .plugins
        .script("hang", &format!("echo $$ > {}\necho started\nexec sleep 300", pid.display()));
    let actions = format!(
        "{notify}[[action]]\nname = \"hang\"\nkind = \"collect\"\ncommand = \"{hang}\"\n\
         timeout = \"1s\"\n",
        notify = notify_action(&setup),
        hang = hang.display(),
    );
    let (config, web) = config_with(&setup, 1, &["hang", "notify"], &actions);
    let agent = Agent::start(&config, setup.dir());

    setup.set_code(2);
    assert_eq!(agent.check_now(&web)["state"], "critical");
    // The notification went out only once the collect had ended: it
    // carries what the collect printed and how it ended.
    let problem = &events(&setup, 1)[0];
    let collected = &problem["collected"][0];
    assert_eq!(collected["action"], "hang");
    assert_eq!(collected["output"], "started");
    assert_eq!(collected["ended"], "timed out after 1s and killed");
    assert_eq!(collected["exit_code"], Value::Null);
    assert!(wait_dead(read_pid(&pid)), "the collect's process was not killed");
    assert_eq!(agent.stop(), 0);
}

#[test]
fn after_a_restart_between_the_soft_failure_and_the_hard_change_the_event_has_the_output() {
    let setup = Setup::new();
    let runs = setup.plugins.path("collect-runs");
    let snap = setup
        .plugins
        .script("snap", &format!("echo run >> {}\necho 'before the restart'", runs.display()));
    let actions = format!(
        "{notify}[[action]]\nname = \"snap\"\nkind = \"collect\"\ncommand = \"{snap}\"\n\
         on = [\"critical\"]\n",
        notify = notify_action(&setup),
        snap = snap.display(),
    );
    let (config, web) = config_with(&setup, 2, &["snap", "notify"], &actions);
    let agent = Agent::start(&config, setup.dir());
    setup.set_code(2);
    agent.check_now(&web);
    agent.wait_until(|s| check(s, &web)["collected"][0]["action"] == "snap", "the output");
    let text = crate::util::monchero().args(["status", "--config"]).arg(&config).output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("[collected: snap]"), "{text}");
    assert_eq!(agent.stop(), 0);

    let agent = Agent::start(&config, setup.dir());
    agent.check_now(&web);
    let problem = &events(&setup, 1)[0];
    assert_eq!(problem["kind"], "problem");
    assert_eq!(problem["collected"][0]["output"], "before the restart");
    assert_eq!(lines(&runs), ["run"], "the restarted agent does not collect again");
    assert_eq!(agent.stop(), 0);
}

#[test]
fn a_check_waiting_for_its_collect_does_not_hold_other_checks_events() {
    let setup = Setup::new();
    let release = setup.plugins.path("release");
    // Waits for the test, not for a time: the order below is certain.
    let wait = setup.plugins.script(
        "wait",
        &format!("while [ ! -e {} ]; do sleep 0.05; done\necho released", release.display()),
    );
    let (web, db) = (quiet("web"), quiet("db"));
    let check_file = setup.plugins.path("check_file");
    let mut extra = format!(
        "{notify}[[action]]\nname = \"wait\"\nkind = \"collect\"\ncommand = \"{wait}\"\n\
         timeout = \"30s\"\n\n",
        notify = notify_action(&setup),
        wait = wait.display(),
    );
    for (name, actions) in [(&web, "\"wait\", \"notify\""), (&db, "\"notify\"")] {
        extra.push_str(&format!(
            "[[check]]\nname = \"{name}\"\ncommand = \"{}\"\ninterval = \"1h\"\n\
             retry_interval = \"1h\"\nattempts = 1\nflap_detection = false\n\
             actions = [{actions}]\n\n",
            check_file.display()
        ));
    }
    let config = setup.config(&[], &extra);
    let agent = Agent::start(&config, setup.dir());

    setup.set_code(2);
    agent.check_now(&web);
    agent.check_now(&db);
    let first = events(&setup, 1);
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0]["check"], db.as_str(), "the other check's event went out first");
    assert_eq!(first[0]["collected"], serde_json::json!([]));

    std::fs::write(&release, "").unwrap();
    let both = events(&setup, 2);
    assert_eq!(both[1]["check"], web.as_str());
    assert_eq!(both[1]["collected"][0]["output"], "released");
    assert_eq!(agent.stop(), 0);
}

#[test]
fn a_notification_waiting_for_a_collect_survives_sigkill_and_goes_out_after_the_restart() {
    let setup = Setup::new();
    let release = setup.plugins.path("release");
    let wait = setup
        .plugins
        .script("wait", &format!("while [ ! -e {} ]; do sleep 0.05; done", release.display()));
    let actions = format!(
        "{notify}[[action]]\nname = \"wait\"\nkind = \"collect\"\ncommand = \"{wait}\"\n\
         timeout = \"30s\"\n",
        notify = notify_action(&setup),
        wait = wait.display(),
    );
    let (config, web) = config_with(&setup, 1, &["wait", "notify"], &actions);
    let agent = Agent::start(&config, setup.dir());
    setup.set_code(2);
    agent.check_now(&web);
    let state = setup.dir().join("state/state.json");
    wait_for(
        || std::fs::read_to_string(&state).is_ok_and(|text| text.contains("\"held\"")),
        "the held event in the state file",
    );
    agent.signal(rustix::process::Signal::KILL);
    drop(agent);
    // Let the orphaned collect end; the killed agent sent nothing.
    std::fs::write(&release, "").unwrap();
    assert!(lines(&setup.plugins.path("events.jsonl")).is_empty());

    let agent = Agent::start(&config, setup.dir());
    let problem = &events(&setup, 1)[0];
    assert_eq!(problem["kind"], "problem");
    assert_eq!(problem["check"], web.as_str());
    assert_eq!(problem["collected"], serde_json::json!([]));
    assert_eq!(agent.stop(), 0);
    assert_eq!(events(&setup, 1).len(), 1, "sent once");
}
