//! `monchero ca init | sign | list | revoke`: the command-line side of
//! [`crate::ca`].

use std::io::Write;

use anyhow::Context;

use crate::ca::{Ca, write_new};
use crate::cli::CaCommand;

/// Runs one `ca` subcommand; returns the exit status.
pub fn run(command: CaCommand) -> anyhow::Result<u8> {
    match command {
        CaCommand::Init { dir, name, validity } => {
            Ca::init(&dir, &name, validity)?;
            println!("{}", dir.join("ca.pem").display());
        }
        CaCommand::Sign { dir, csr, validity, out } => {
            let request = std::fs::read_to_string(&csr)
                .with_context(|| format!("cannot read {}", csr.display()))?;
            let pem = Ca::open(&dir)?
                .sign(&request, validity)
                .with_context(|| format!("cannot sign {}", csr.display()))?;
            match out {
                Some(path) => write_new(&path, pem.as_bytes(), 0o644)?,
                None => std::io::stdout().write_all(pem.as_bytes())?,
            }
        }
        CaCommand::List { dir } => {
            let mut out = std::io::stdout().lock();
            for cert in Ca::open(&dir)?.list()? {
                let revoked = if cert.revoked { "  REVOKED" } else { "" };
                writeln!(
                    out,
                    "{}  {}  until {}{revoked}",
                    cert.serial,
                    cert.names.join(","),
                    cert.not_after
                )?;
            }
        }
        CaCommand::Revoke { dir, name } => {
            let count = Ca::open(&dir)?.revoke(&name)?;
            println!(
                "{count} certificate(s) of {name:?} newly revoked; {} is updated: copy it to \
                 the agents' [pull] crl_file and reload them",
                dir.join("crl.pem").display()
            );
        }
    }
    Ok(0)
}
