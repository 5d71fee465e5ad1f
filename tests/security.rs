//! The measures of docs/security.md, each shown on the real binary: files
//! others could change refused when running as root, secrets never shown.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::daemon::{Agent, Setup, quiet};
use crate::util::*;

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// `monchero config check`: (exit status, stderr and stdout).
fn config_check(config: &Path) -> (i32, String) {
    let output = monchero().args(["config", "check", "--config"]).arg(config).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    (output.status.code().unwrap_or(-1), text)
}

#[test]
fn as_root_files_others_could_change_are_refused_naming_file_and_mode() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: the rule applies to an agent running as root");
        return;
    }
    let setup = Setup::new();
    let web = quiet("web");
    let config = setup.config(&[&web], "");
    let plugin = setup.plugins.path("check_file");
    assert_eq!(config_check(&config).0, 0, "{}", config_check(&config).1);

    chmod(&plugin, 0o775);
    let (code, text) = config_check(&config);
    assert_eq!(code, 78, "{text}");
    assert!(text.contains(&format!("{}:", config.display())), "names the config line: {text}");
    assert!(
        text.contains(&format!("{} is writable by its group (mode 0775)", plugin.display())),
        "{text}"
    );
    // The daemon refuses to start on it too.
    let run = monchero().args(["run", "--config"]).arg(&config).output().unwrap();
    assert_eq!(run.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&run.stderr).contains("mode 0775"));
    chmod(&plugin, 0o755);

    chmod(&config, 0o666);
    let (code, text) = config_check(&config);
    assert_eq!(code, 78, "{text}");
    assert!(
        text.contains(&format!("{} is writable by others (mode 0666)", config.display())),
        "{text}"
    );
    chmod(&config, 0o644);

    let included = setup.dir().join("extra.toml");
    std::fs::write(&included, "").unwrap();
    std::os::unix::fs::chown(&included, Some(65534), None).unwrap();
    let text = std::fs::read_to_string(&config).unwrap();
    let with_include = text.replace("[agent]\n", "[agent]\ninclude = [\"extra.toml\"]\n");
    std::fs::write(&config, with_include).unwrap();
    let (code, text) = config_check(&config);
    assert_eq!(code, 78, "{text}");
    assert!(text.contains("extra.toml is owned by uid 65534, not root"), "{text}");
}

#[test]
fn secrets_from_files_are_never_logged_shown_or_saved() {
    let setup = Setup::new();
    let (token, password) = ("s3cret-push-token-4e1d", "s3cret-smtp-password-9b7a");
    let token_file = setup.plugins.path("push-token");
    let password_file = setup.plugins.path("smtp-password");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    std::fs::write(&password_file, format!("{password}\n")).unwrap();
    chmod(&token_file, 0o600);
    chmod(&password_file, 0o600);
    // Both servers refuse: every attempt fails and is logged with its error.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let web = quiet("web");
    let extra = format!(
        "[[push]]\nname = \"central\"\nurl = \"http://127.0.0.1:{port}/v1/push\"\ntoken_file = \"{}\"\ninterval = \"1s\"\n\n\
         [[action]]\nname = \"mail\"\nkind = \"email\"\nto = [\"ops@example.org\"]\nfrom = \"agent@example.org\"\n\
         smtp = \"smtp://127.0.0.1:{port}\"\nstarttls = \"never\"\nusername = \"agent\"\npassword_file = \"{}\"\n\n",
        token_file.display(),
        password_file.display()
    );
    let config = setup.config(&[&web], &extra);
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text.replace("attempts = 3\n", "attempts = 1\nactions = [\"mail\"]\n");
    std::fs::write(&config, text).unwrap();
    let agent = Agent::start(&config, setup.dir());
    setup.set_code(2);
    agent.check_now(&web);
    // Until both the push and the mail have failed at least once.
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        let log = agent.log_text();
        if log.contains("Push failed") && log.contains("Notification failed") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    let mut seen = vec![("log".to_owned(), agent.log_text())];
    for args in [&["status"][..], &["status", "--json"], &["status", "--changes", "1h"]] {
        let output = monchero().args(args).arg("--config").arg(&config).output().unwrap();
        seen.push((args.join(" "), String::from_utf8_lossy(&output.stdout).into_owned()));
        seen.push((args.join(" "), String::from_utf8_lossy(&output.stderr).into_owned()));
    }
    let (_, checked) = config_check(&config);
    seen.push(("config check".into(), checked));
    assert_eq!(agent.stop(), 0);
    let mut files = vec![setup.dir().join("state")];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().flatten().map(|e| e.path()));
        } else if let Ok(bytes) = std::fs::read(&path) {
            seen.push((path.display().to_string(), String::from_utf8_lossy(&bytes).into_owned()));
        }
    }
    assert!(
        seen.len() > 8,
        "the state directory holds files: {:?}",
        seen.iter().map(|s| &s.0).collect::<Vec<_>>()
    );
    for (place, text) in &seen {
        assert!(!text.contains(token) && !text.contains(password), "a secret in {place}:\n{text}");
    }
    let log = &seen[0].1;
    assert!(log.contains("Push failed") && log.contains("Notification failed"), "{log}");
}

#[test]
fn the_control_socket_is_0660_and_answers_only_the_three_requests() {
    use std::io::{Read, Write};
    use std::os::unix::fs::FileTypeExt;

    let setup = Setup::new();
    let config = setup.config(&[&quiet("web")], "");
    let agent = Agent::start(&config, setup.dir());
    let socket = std::fs::read_dir(setup.dir().join("state"))
        .unwrap()
        .flatten()
        .find(|e| e.file_type().is_ok_and(|t| t.is_socket()))
        .unwrap()
        .path();
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o660, "{}", socket.display());
    // Anything but status, run (configured checks, by name) and metrics is
    // refused; a command line is not a request.
    let mut stream = std::os::unix::net::UnixStream::connect(&socket).unwrap();
    stream.write_all(b"{\"request\":\"exec\",\"command\":\"touch /tmp/x\"}\n").unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    assert!(reply.contains("bad request: unknown variant `exec`"), "{reply}");
    agent.stop();
}
