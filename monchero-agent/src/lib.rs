//! `monchero`: the Monchero monitoring agent's command line.
//!
//! Thin on purpose: argument parsing, configuration, the daemon's wiring
//! and presentation live here; running checks and keeping their state is
//! `monchero-core`'s job.
//!
//! A library only so that the fuzz targets (`monchero-agent/fuzz/`) can
//! reach the config and state file loaders: the modules stay private, the
//! binary (`main.rs`) calls [`main`], and [`fuzzing`] is the one door in.

mod actions;
mod bounded_listener;
mod ca;
mod ca_command;
mod ca_serve;
mod cert_dir;
mod cert_enrol;
mod cert_request;
mod check_list;
mod check_now;
mod cli;
mod collect;
mod color;
mod config;
mod control;
mod daemon;
mod delivery;
mod enrol_client;
mod enrol_protocol;
#[doc(hidden)]
pub mod fuzzing;
mod generate;
mod http_error;
mod import_nrpe;
mod logging;
mod metrics;
mod notify;
mod nrpe;
mod pull;
mod push;
mod render;
mod renewal;
mod retry_after;
mod self_check;
mod state_file;
mod status;
mod status_report;
mod ticket;

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;

use crate::cli::{Cli, Command, ConfigCommand};

/// Exit status for a command line that cannot be understood (sysexits.h
/// EX_USAGE). Kept above 3 so a wrapper script never mistakes a typo for a
/// plugin state.
const EX_USAGE: u8 = 64;
/// Exit status for an internal failure (EX_SOFTWARE).
const EX_SOFTWARE: u8 = 70;
/// Exit status for a configuration with errors (EX_CONFIG).
const EX_CONFIG: u8 = 78;

/// `monchero`'s entry point: parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return match error.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => ExitCode::SUCCESS,
                _ => ExitCode::from(EX_USAGE),
            };
        }
    };
    let palette = color::Palette::detect(cli.color);
    let outcome = match cli.command {
        Command::Run(args) => {
            logging::init();
            daemon::run(args.config.config.as_deref())
        }
        Command::Status(args) => status::run(&args, &palette),
        Command::CheckNow(args) => check_now::run(&args, &palette),
        Command::Config(ConfigCommand::Check(args)) => Ok(config_check(args.config.as_deref())),
        Command::Check(cli::CheckSubcommand::List { plugins }) => check_list::run(plugins),
        Command::Ca(command) => ca_command::run(command),
        Command::Cert(cli::CertCommand::Request { name, san, dir }) => {
            cert_request::request(&name, &san, &dir).map(|requested| {
                println!("{}\n{}", requested.key.display(), requested.csr.display());
                0
            })
        }
        Command::Cert(cli::CertCommand::Enrol(args)) => Ok(cert_enrol::run(&args)),
        Command::Import(cli::ImportCommand::Nrpe { file }) => Ok(import_nrpe(&file)),
        Command::Generate(command) => generate::run(&command),
    };
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("monchero: {error:#}");
            ExitCode::from(EX_SOFTWARE)
        }
    }
}

/// `monchero import nrpe FILE`: the TOML on stdout, what was not converted
/// on stderr; a file that cannot be read or understood is a config error.
fn import_nrpe(path: &std::path::Path) -> u8 {
    match import_nrpe::import(path) {
        Ok(import) => {
            for note in &import.notes {
                eprintln!("{note}");
            }
            print!("{}", import.toml);
            0
        }
        Err(error) => {
            eprintln!("{error}");
            EX_CONFIG
        }
    }
}

/// `monchero config check`: every error, or what the config holds.
fn config_check(path: Option<&std::path::Path>) -> u8 {
    match config::load(path) {
        Ok(config) => {
            for warning in &config.warnings {
                eprintln!("warning: {warning}");
            }
            println!(
                "{}: OK ({} checks, {} actions; state in {})",
                config.source,
                config.checks.len(),
                config.actions.len(),
                config.agent.state_dir.display()
            );
            0
        }
        Err(errors) => {
            eprintln!("{errors}");
            EX_CONFIG
        }
    }
}
