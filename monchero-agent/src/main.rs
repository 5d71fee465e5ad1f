//! `monchero`: the Monchero monitoring agent's command line.
//!
//! Thin on purpose: argument parsing, configuration and presentation live
//! here; running checks and keeping state is `monchero-core`'s job.

mod check_now;
mod cli;
mod color;
mod render;

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;

use crate::cli::{Cli, Command};

/// Exit status for a command line that cannot be understood (sysexits.h
/// EX_USAGE). Kept above 3 so a wrapper script never mistakes a typo for a
/// plugin state.
const EX_USAGE: u8 = 64;
/// Exit status for an internal failure (EX_SOFTWARE).
const EX_SOFTWARE: u8 = 70;

fn main() -> ExitCode {
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
    let colors = color::Palette::detect(cli.color);
    let outcome = match cli.command {
        Command::CheckNow(args) => check_now::run(&args, &colors),
    };
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("monchero: {error:#}");
            ExitCode::from(EX_SOFTWARE)
        }
    }
}
