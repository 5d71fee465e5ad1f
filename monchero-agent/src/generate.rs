//! `monchero generate`: man pages and shell completions, printed to stdout
//! for the packaging step (`.ci/package`) to store, ripgrep-style.
//!
//! Both come from the clap definitions in `cli.rs`, so they cannot drift
//! from `--help`. Hidden from users: it is a build tool, not a feature.
//! There is one page per subcommand, as clap_mangen and git do:
//! `monchero(1)` lists them as `monchero-check-now(1)` and so on.

use std::io::{self, Write};

use clap::CommandFactory;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, italic, roman};

use crate::EX_USAGE;
use crate::cli::{Cli, GenerateCommand, ManArgs};

/// Runs `monchero generate ...`; returns the exit status.
pub fn run(command: &GenerateCommand) -> anyhow::Result<u8> {
    let mut out = Vec::new();
    match command {
        GenerateCommand::Man(args) => {
            if let Err(unknown) = man(args, &mut out) {
                eprintln!("monchero: {unknown}");
                return Ok(EX_USAGE);
            }
        }
        GenerateCommand::Completions { shell } => completions(*shell, &mut out),
    }
    match io::stdout().lock().write_all(&out) {
        // `monchero generate man | head` is not a failure (ripgrep's rule).
        Err(error) if error.kind() != io::ErrorKind::BrokenPipe => Err(error.into()),
        _ => Ok(0),
    }
}

/// Renders the page `args` names (or the list of pages) into `out`; the
/// error says which pages exist.
fn man(args: &ManArgs, out: &mut Vec<u8>) -> Result<(), String> {
    let pages = pages();
    if args.list {
        for page in &pages {
            out.extend_from_slice(page_name(page).as_bytes());
            out.push(b'\n');
        }
        return Ok(());
    }
    let Some(page) = pages.into_iter().find(|page| page_name(page) == args.page) else {
        let names: Vec<String> = self::pages().iter().map(page_name).collect();
        return Err(format!("no man page {:?}; pages: {}", args.page, names.join(", ")));
    };
    let top = page_name(&page) == "monchero";
    let man = Man::new(page)
        .date(env!("MONCHERO_BUILD_DATE"))
        .source(format!("monchero {}", env!("CARGO_PKG_VERSION")))
        .manual("Monchero manual");
    // Writing into a Vec cannot fail; the Result is the io::Write signature.
    let _ = if top { render_top(&man, out) } else { man.render(out) };
    Ok(())
}

/// Every page: the top command, then each visible subcommand, depth first.
fn pages() -> Vec<clap::Command> {
    // Built so every subcommand knows its full display name
    // ("monchero-config-check"); `help` is clap's, not ours to document.
    let mut root = Cli::command().disable_help_subcommand(true);
    root.build();
    let mut pages = Vec::new();
    collect(root, &mut pages);
    pages
}

fn collect(command: clap::Command, pages: &mut Vec<clap::Command>) {
    let subcommands: Vec<clap::Command> = command
        .get_subcommands()
        .filter(|sub| !sub.is_hide_set() && sub.get_name() != "help")
        .cloned()
        .collect();
    pages.push(command);
    for sub in subcommands {
        collect(sub, pages);
    }
}

fn page_name(command: &clap::Command) -> String {
    command.get_display_name().unwrap_or_else(|| command.get_name()).to_owned()
}

/// `monchero(1)`: clap_mangen's sections plus what an operator looks up in
/// a man page and `--help` does not say: exit statuses, environment, files.
fn render_top(man: &Man, out: &mut dyn Write) -> io::Result<()> {
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    man.render_subcommands_section(out)?;
    operator_sections().to_writer(out)?;
    man.render_version_section(out)
}

fn operator_sections() -> Roff {
    let mut roff = Roff::new();
    let entry = |roff: &mut Roff, term: &str, text: &str| {
        roff.control("TP", []);
        roff.text([bold(term)]);
        roff.text([roman(text)]);
    };

    roff.control("SH", ["EXIT STATUS"]);
    entry(
        &mut roff,
        "0, 1, 2, 3",
        "For status and check-now: the (worst) state, OK, WARNING, CRITICAL or UNKNOWN, \
         so check-now is itself a Nagios plugin wrapper.",
    );
    entry(&mut roff, "64", "The command line could not be understood.");
    entry(&mut roff, "70", "An internal error.");
    entry(&mut roff, "78", "The configuration has errors (config check, run).");

    roff.control("SH", ["ENVIRONMENT"]);
    entry(&mut roff, "MONCHERO_CONFIG", "The config file, when --config is not given.");
    entry(
        &mut roff,
        "MONCHERO_LOG",
        "What the daemon logs, in tracing's filter syntax (info by default; e.g. debug).",
    );
    entry(&mut roff, "NO_COLOR, CLICOLOR_FORCE", "Turn colour off, or on when not on a terminal.");

    roff.control("SH", ["FILES"]);
    entry(
        &mut roff,
        "/etc/monchero/agent.toml",
        "The config file when run as root, and the packaged service's.",
    );
    entry(
        &mut roff,
        "/etc/monchero/conf.d/*.toml",
        "More [[check]] and [[action]] files, as the packaged config includes them.",
    );
    entry(
        &mut roff,
        "/var/lib/monchero/state.json",
        "The state of every check, kept across restarts.",
    );
    entry(
        &mut roff,
        "/var/lib/monchero/monchero.sock",
        "The control socket that status and check-now use; mode 0660.",
    );
    entry(
        &mut roff,
        "~/.config/monchero/agent.toml, ~/.local/state/monchero/",
        "The config and state of an agent run by another user than root.",
    );

    roff.control("SH", ["SEE ALSO"]);
    roff.text([
        roman("systemctl(1), journalctl(1); "),
        italic("/usr/share/doc/monchero/"),
        roman(" for the configuration, installation and operations guides."),
    ]);
    roff
}

/// The completion script for `shell`.
fn completions(shell: clap_complete::Shell, out: &mut Vec<u8>) {
    clap_complete::generate(shell, &mut completion_command(), "monchero", out);
}

/// The command line without its hidden subcommands: clap_complete offers
/// hidden subcommands like the others, and clap cannot remove one, so the
/// top level is rebuilt from the visible parts.
fn completion_command() -> clap::Command {
    let full = Cli::command();
    let visible: Vec<clap::Command> =
        full.get_subcommands().filter(|sub| !sub.is_hide_set()).cloned().collect();
    clap::Command::new("monchero")
        .version(crate::cli::VERSION)
        .args(full.get_arguments().cloned())
        .subcommands(visible)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(name: &str) -> String {
        let mut out = Vec::new();
        let args = ManArgs { page: name.to_owned(), list: false };
        assert_eq!(man(&args, &mut out), Ok(()));
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn the_man_page_documents_the_subcommands_and_the_files() {
        let top = page("monchero");
        assert!(top.contains("\n.TH monchero 1 "), "{top}");
        assert!(top.contains("check\\-now"), "{top}");
        assert!(top.contains("/etc/monchero/agent.toml"), "{top}");
        assert!(!top.contains("monchero\\-generate"), "the hidden subcommand stays hidden");
        let check_now = page("monchero-check-now");
        assert!(check_now.contains("\\-\\-timeout"), "{check_now}");
    }

    #[test]
    fn every_subcommand_has_a_page() {
        let mut out = Vec::new();
        let args = ManArgs { page: String::new(), list: true };
        assert_eq!(man(&args, &mut out), Ok(()));
        let list = String::from_utf8_lossy(&out).into_owned();
        let names: Vec<&str> = list.lines().collect();
        assert_eq!(names.first(), Some(&"monchero"));
        for sub in Cli::command().get_subcommands() {
            let name = format!("monchero-{}", sub.get_name());
            assert_eq!(names.contains(&name.as_str()), !sub.is_hide_set(), "{name}: {names:?}");
        }
        assert!(names.contains(&"monchero-config-check"), "{names:?}");
    }

    #[test]
    fn an_unknown_page_is_an_error_naming_the_pages() {
        let args = ManArgs { page: "monchero-nope".to_owned(), list: false };
        let error = man(&args, &mut Vec::new()).err().unwrap_or_default();
        assert!(error.contains("monchero-check-now"), "{error}");
    }

    #[test]
    fn completions_exist_for_every_packaged_shell() {
        use clap_complete::Shell;
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let mut out = Vec::new();
            completions(shell, &mut out);
            let script = String::from_utf8_lossy(&out);
            assert!(script.contains("check-now"), "{shell}: {script}");
            assert!(script.contains("color"), "{shell}: the global --color is offered");
            assert!(!script.contains("generate"), "{shell}: the hidden subcommand is offered");
        }
    }
}
