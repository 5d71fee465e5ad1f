//! Webhook and email actions, delivered by the real daemon to real
//! servers on 127.0.0.1.

use std::path::PathBuf;

use rustix::process::Signal;

use crate::daemon::{Agent, Setup, check, quiet};
use crate::receivers::{HttpServer, HttpsServer, SmtpServer, free_port, wait_for};

/// A config whose check (`attempts = 1`, no flap detection) uses the
/// actions named in `uses`, defined in `actions`.
fn config_with(setup: &Setup, uses: &[&str], actions: &str) -> (PathBuf, String) {
    let web = quiet("web");
    let config = setup.config(&[&web], actions);
    let names: Vec<String> = uses.iter().map(|name| format!("{name:?}")).collect();
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "attempts = 3",
        &format!("attempts = 1\nactions = [{}]\nflap_detection = false", names.join(", ")),
    );
    std::fs::write(&config, text).unwrap();
    (config, web)
}

fn pending_files(setup: &Setup) -> usize {
    std::fs::read_dir(setup.dir().join("state/deliveries")).map_or(0, |dir| dir.count())
}

#[test]
fn a_webhook_gets_the_template_the_headers_and_the_default_json() {
    let server = HttpServer::start(0, 200);
    let setup = Setup::new();
    let actions = format!(
        "[[action]]\nname = \"chat\"\nkind = \"webhook\"\nurl = \"{}\"\non = [\"critical\"]\n\
         headers = {{ Authorization = \"Bearer s3cret\", X-Check = \"{{{{check}}}}\" }}\n\
         body = '{{\"text\": \"{{{{check}}}} is {{{{state|upper}}}}: {{{{summary}}}}\", \"suppressed\": {{{{suppressed|raw}}}}}}'\n\n\
         [[action]]\nname = \"raw\"\nkind = \"webhook\"\nurl = \"{}\"\nmethod = \"put\"\non = [\"critical\"]\n",
        server.url("/chat"),
        server.url("/raw"),
    );
    let (config, web) = config_with(&setup, &["chat", "raw"], &actions);
    let agent = Agent::start(&config, setup.dir());

    setup.set_code(2);
    agent.check_now(&web);
    let mut requests = server.settled(2);
    assert_eq!(requests.len(), 2, "one request per action: {requests:?}");
    requests.sort_by(|a, b| a.path.cmp(&b.path));
    let (chat, raw) = (&requests[0], &requests[1]);

    assert_eq!((chat.method.as_str(), chat.path.as_str()), ("POST", "/chat"));
    assert_eq!(chat.header("authorization"), Some("Bearer s3cret"));
    assert_eq!(chat.header("x-check"), Some(web.as_str()));
    assert_eq!(chat.header("content-type"), Some("application/json"));
    assert_eq!(
        chat.json(),
        serde_json::json!({"text": format!("{web} is CRITICAL: state from file: 2"), "suppressed": 0})
    );

    assert_eq!((raw.method.as_str(), raw.path.as_str()), ("PUT", "/raw"));
    let event = raw.json();
    assert_eq!(event["kind"], "problem");
    assert_eq!(event["check"], web.as_str());
    assert_eq!(event["state"], "critical");
    assert_eq!(event["previous_state"], "ok");
    assert_eq!(event["summary"], "state from file: 2");
    assert_eq!(event["perfdata"][0]["label"], "v");
    assert_eq!(event["suppressed"], 0);

    let status = agent.wait_until(|s| s["deliveries_pending"] == 0, "no delivery pending");
    let record = &check(&status, &web)["last_action"];
    assert_eq!(record["ok"], true, "{record}");
    assert!(record["summary"].as_str().unwrap().starts_with("HTTP 200"), "{record}");
    assert_eq!(pending_files(&setup), 0, "delivered deliveries are deleted");
    assert_eq!(agent.stop(), 0);
}

#[test]
fn a_webhook_down_for_a_while_gets_the_delivery_once_it_is_back() {
    let port = free_port();
    let setup = Setup::new();
    let actions = format!(
        "[[action]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{port}/\"\n\
         retry_base = \"200ms\"\nretry_max = \"400ms\"\n"
    );
    let (config, web) = config_with(&setup, &["hook"], &actions);
    let agent = Agent::start(&config, setup.dir());

    setup.set_code(2);
    agent.check_now(&web);
    // Failed at least twice while nothing listens; kept on disk meanwhile.
    let status = agent.wait_until(
        |s| {
            let summary = check(s, &web)["last_action"]["summary"].as_str().unwrap_or("");
            summary.contains("cannot connect") && summary.contains("retry 2 ")
        },
        "failed attempts",
    );
    let record = &check(&status, &web)["last_action"];
    assert_eq!(record["ok"], false);
    let summary = record["summary"].as_str().unwrap();
    assert!(!summary.contains("127.0.0.1"), "a hook URL may hold a secret: {summary}");
    assert!(!agent.log_text().contains(&format!("127.0.0.1:{port}")), "{}", agent.log_text());
    assert_eq!(status["deliveries_pending"], 1);
    assert_eq!(pending_files(&setup), 1);
    let text = crate::util::monchero().args(["status", "--config"]).arg(&config).output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("[action hook failed]"), "{text}");
    assert!(text.contains("1 notification waiting to be delivered"), "{text}");

    let server = HttpServer::start(port, 200);
    let requests = server.settled(1);
    assert_eq!(requests.len(), 1, "delivered exactly once: {requests:?}");
    assert_eq!(requests[0].json()["kind"], "problem");
    let status = agent.wait_until(|s| check(s, &web)["last_action"]["ok"] == true, "success");
    assert_eq!(status["deliveries_pending"], 0);
    assert_eq!(pending_files(&setup), 0);
    assert_eq!(agent.stop(), 0);
}

#[test]
fn a_pending_delivery_survives_sigkill_and_arrives_once_after_the_restart() {
    let port = free_port();
    let setup = Setup::new();
    // Retries far apart: only the restart can bring the delivery back soon.
    let actions = format!(
        "[[action]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{port}/\"\n\
         retry_base = \"1h\"\n"
    );
    let (config, web) = config_with(&setup, &["hook"], &actions);
    let agent = Agent::start(&config, setup.dir());
    setup.set_code(2);
    agent.check_now(&web);
    agent.wait_until(|s| check(s, &web)["last_action"]["ok"] == false, "a failed attempt");
    agent.signal(Signal::KILL);
    drop(agent);
    assert_eq!(pending_files(&setup), 1, "the delivery is on disk");

    let server = HttpServer::start(port, 204);
    let agent = Agent::start(&config, setup.dir());
    let requests = server.settled(1);
    assert_eq!(requests.len(), 1, "{requests:?}");
    let event = requests[0].json();
    assert_eq!(
        (event["kind"].as_str(), event["check"].as_str()),
        (Some("problem"), Some(web.as_str()))
    );
    agent.wait_until(|s| s["deliveries_pending"] == 0, "the queue to empty");
    assert_eq!(pending_files(&setup), 0);

    // Nothing is sent again by a further restart.
    assert_eq!(agent.stop(), 0);
    let agent = Agent::start(&config, setup.dir());
    agent.check_now(&web);
    assert_eq!(server.settled(1).len(), 1);
    assert_eq!(agent.stop(), 0);
}

#[test]
fn a_refused_webhook_is_not_retried_and_shows_as_failed() {
    let server = HttpServer::start(0, 404);
    let setup = Setup::new();
    let actions = format!(
        "[[action]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{}\"\nretry_base = \"100ms\"\n",
        server.url("/gone")
    );
    let (config, web) = config_with(&setup, &["hook"], &actions);
    let agent = Agent::start(&config, setup.dir());
    setup.set_code(2);
    agent.check_now(&web);
    assert_eq!(server.settled(1).len(), 1, "a 404 is final");
    let status = agent.wait_until(|s| check(s, &web)["last_action"].is_object(), "the record");
    let record = &check(&status, &web)["last_action"];
    assert_eq!(record["ok"], false);
    assert_eq!(record["summary"], "HTTP 404 Not Found: the receiver refused the request");
    assert_eq!(status["deliveries_pending"], 0);
    assert_eq!(agent.stop(), 0);
}

#[test]
fn a_flood_of_changes_is_rate_limited_and_the_rest_counted() {
    let server = HttpServer::start(0, 200);
    let setup = Setup::new();
    let actions = format!(
        "[[action]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{}\"\n\
         on = [\"critical\", \"recovery\"]\nrate_limit = \"2/5s\"\n",
        server.url("/")
    );
    let (config, web) = config_with(&setup, &["hook"], &actions);
    let agent = Agent::start(&config, setup.dir());
    // Ten hard changes in a row: problem, recovery, problem, ...
    for code in [2, 0, 2, 0, 2, 0, 2, 0, 2, 0] {
        setup.set_code(code);
        agent.check_now(&web);
    }
    // Every event is either sent or counted in the `suppressed` of a later
    // one; the held one goes out when the window has room again.
    let accounted = || -> u64 {
        server.requests().iter().map(|r| 1 + r.json()["suppressed"].as_u64().unwrap()).sum()
    };
    wait_for(|| accounted() >= 10, "all ten events to be sent or counted");
    let requests = server.settled(1);
    assert_eq!(accounted(), 10, "{:?}", requests.iter().map(|r| r.json()).collect::<Vec<_>>());
    assert!(requests.len() < 10, "the limit held: {} requests", requests.len());
    assert!(requests.iter().any(|r| r.json()["suppressed"].as_u64() > Some(0)));
    let last = requests.last().unwrap().json();
    assert_eq!(last["kind"], "recovery", "the final state always goes out");
    assert_eq!(last["state"], "ok");
    assert_eq!(agent.stop(), 0);
}

#[test]
fn an_email_goes_through_a_real_smtp_server() {
    let setup = Setup::new();
    let smtp = SmtpServer::start(setup.dir());
    let actions = format!(
        "[[action]]\nname = \"mail\"\nkind = \"email\"\non = [\"critical\"]\n\
         to = [\"Ops <ops@example.org>\", \"oncall@example.org\"]\nfrom = \"monchero@example.org\"\n\
         smtp = \"smtp://127.0.0.1:{}\"\n",
        smtp.port
    );
    let (config, web) = config_with(&setup, &["mail"], &actions);
    let agent = Agent::start(&config, setup.dir());
    let host = agent.status().0["host"].as_str().unwrap().to_owned();
    setup.set_code(2);
    agent.check_now(&web);
    wait_for(|| !smtp.mails().is_empty(), "the mail");
    let status = agent.wait_until(|s| check(s, &web)["last_action"]["ok"] == true, "success");
    let mails = smtp.mails();
    assert_eq!(mails.len(), 1, "{mails:?}");
    let mail = &mails[0];
    assert_eq!(mail["from"], "monchero@example.org");
    assert_eq!(mail["to"], serde_json::json!(["ops@example.org", "oncall@example.org"]));
    let data = mail["data"].as_str().unwrap().replace("\r\n", "\n");
    assert!(data.contains(&format!("Subject: [{host}] {web} is CRITICAL\n")), "{data}");
    assert!(data.contains("To: Ops <ops@example.org>, oncall@example.org\n"), "{data}");
    assert!(data.contains(&format!("{web} on {host} is CRITICAL (was OK).")), "{data}");
    assert!(data.contains("\nstate from file: 2\n"), "{data}");
    let summary = check(&status, &web)["last_action"]["summary"].as_str().unwrap().to_owned();
    assert!(summary.starts_with("SMTP 250"), "{summary}");
    assert_eq!(agent.stop(), 0);
}

#[test]
fn an_email_can_go_through_sendmail() {
    let setup = Setup::new();
    let out = setup.plugins.path("sendmail.out");
    let sendmail = setup
        .plugins
        .script("sendmail", &format!("echo \"$@\" > {0}.args\ncat > {0}", out.display()));
    let actions = format!(
        "[[action]]\nname = \"mail\"\nkind = \"email\"\nto = [\"ops@example.org\"]\n\
         from = \"monchero@example.org\"\nsendmail = \"{}\"\n\
         subject = \"{{{{check}}}} {{{{event}}}}\"\nbody = \"Now {{{{state}}}}: {{{{summary}}}}\"\n",
        sendmail.display()
    );
    let (config, web) = config_with(&setup, &["mail"], &actions);
    let agent = Agent::start(&config, setup.dir());
    setup.set_code(2);
    agent.check_now(&web);
    agent.wait_until(|s| check(s, &web)["last_action"]["ok"] == true, "the mail to be handed over");
    let mail = std::fs::read_to_string(&out).unwrap().replace("\r\n", "\n");
    assert!(mail.contains(&format!("Subject: {web} problem\n")), "{mail}");
    assert!(mail.contains("To: ops@example.org\n"), "{mail}");
    assert!(mail.contains("Now critical: state from file: 2"), "{mail}");
    let args = std::fs::read_to_string(out.with_extension("out.args")).unwrap();
    assert!(args.contains("ops@example.org"), "{args}");
    assert_eq!(agent.stop(), 0);
}

#[test]
fn a_notifier_config_error_names_the_place() {
    let setup = Setup::new();
    let actions = "[[action]]\nname = \"hook\"\nkind = \"webhook\"\ncommand = \"/bin/true\"\n";
    let (config, _) = config_with(&setup, &["hook"], actions);
    let output = crate::util::monchero()
        .args(["config", "check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    let expected_tail = "command is not a setting of a webhook action; remove it (command belongs to kind = \"command\")";
    assert!(
        lines.iter().any(|line| line.ends_with(expected_tail) && line.contains("agent.toml:")),
        "{stderr}"
    );
    assert!(lines.iter().any(|line| line.contains("has no url")), "{stderr}");
    assert_ne!(output.status.code(), Some(0));
}

#[test]
fn a_pinned_private_ca_is_trusted_and_only_where_it_is_pinned() {
    let setup = Setup::new();
    let server = HttpsServer::start(setup.dir());
    let url = format!("https://127.0.0.1:{}/hook", server.port);
    let (web, db) = (quiet("web"), quiet("db"));
    let actions = format!(
        "[[action]]\nname = \"pinned\"\nkind = \"webhook\"\nurl = \"{url}\"\nca_file = \"{}\"\n\n\
         [[action]]\nname = \"system\"\nkind = \"webhook\"\nurl = \"{url}\"\nretry_base = \"1h\"\n",
        server.ca.display()
    );
    let config = setup.config(&[&web, &db], &actions);
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replacen("attempts = 3", "attempts = 1\nactions = [\"pinned\"]", 1)
        .replacen("attempts = 3", "attempts = 1\nactions = [\"system\"]", 1);
    std::fs::write(&config, text).unwrap();
    let agent = Agent::start(&config, setup.dir());
    setup.set_code(2);
    agent.check_now(&web);
    agent.check_now(&db);
    let status = agent.wait_until(
        |s| {
            check(s, &web)["last_action"]["ok"] == true
                && check(s, &db)["last_action"]["ok"] == false
        },
        "the pinned delivery to succeed and the other to fail",
    );
    let refused = check(&status, &db)["last_action"]["summary"].as_str().unwrap().to_owned();
    assert!(refused.contains("certificate"), "{refused}");
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0]["path"], "/hook");
    assert!(requests[0]["body"].as_str().unwrap().contains(&format!("\"check\":\"{web}\"")));
    assert_eq!(status["deliveries_pending"], 1, "the unverified one waits for a retry");
    assert_eq!(agent.stop(), 0);
}

#[test]
fn a_corrupt_delivery_file_is_moved_aside_and_named_and_the_rest_delivered() {
    let server = HttpServer::start(0, 200);
    let setup = Setup::new();
    let actions =
        format!("[[action]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{}\"\n", server.url("/"));
    let (config, web) = config_with(&setup, &["hook"], &actions);
    let queue = setup.dir().join("state/deliveries");
    std::fs::create_dir_all(&queue).unwrap();
    let bad = queue.join("00000000000000000001.json");
    std::fs::write(&bad, b"{\"version\": 1, \"id\": 1, \"act").unwrap();
    let agent = Agent::start(&config, setup.dir());
    let aside = queue.join("00000000000000000001.json.corrupt");
    assert!(aside.exists() && !bad.exists());
    let log = agent.log_text();
    assert!(log.contains("moved aside") && log.contains(&*aside.to_string_lossy()), "{log}");

    setup.set_code(2);
    agent.check_now(&web);
    assert_eq!(server.settled(1).len(), 1, "the queue works on");
    assert_eq!(agent.stop(), 0);
}
