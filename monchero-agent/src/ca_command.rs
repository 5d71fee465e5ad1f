//! `monchero ca init | sign | refuse | ticket | serve | list | revoke`: the
//! command-line side of [`crate::ca`], [`crate::ticket`] and
//! [`crate::ca_serve`].

use std::io::Write;
use std::path::Path;

use anyhow::Context;

use crate::ca::{Ca, write_new};
use crate::ca_serve::queue::{Queue, Status};
use crate::cli::CaCommand;
use crate::ticket::Tickets;

/// Runs one `ca` subcommand; returns the exit status.
pub fn run(command: CaCommand) -> anyhow::Result<u8> {
    match command {
        CaCommand::Init { dir, name, validity } => {
            let ca = Ca::init(&dir, &name, validity)?;
            println!("{}", dir.join("ca.pem").display());
            println!("CA fingerprint (SHA-256): {}", ca.fingerprint()?);
        }
        CaCommand::Sign { dir, csr, validity, out } => {
            let ca = Ca::open(&dir)?;
            let pem = if Path::new(&csr).is_file() {
                let request =
                    std::fs::read_to_string(&csr).with_context(|| format!("cannot read {csr}"))?;
                ca.sign(&request, validity).with_context(|| format!("cannot sign {csr}"))?
            } else {
                sign_queued(&ca, &csr, validity)?
            };
            match out {
                Some(path) => write_new(&path, pem.as_bytes(), 0o644)?,
                None => std::io::stdout().write_all(pem.as_bytes())?,
            }
        }
        CaCommand::Refuse { dir, request } => {
            Ca::open(&dir)?;
            let queue = Queue::new(&dir);
            let mut queued = queue.find_pending(&request)?;
            queued.status = Status::Refused;
            queue.save(&queued)?;
            println!("request {} for {:?} refused", queued.id, queued.name);
        }
        CaCommand::Ticket { dir, name, rotate } => {
            Ca::open(&dir)?;
            let tickets = if rotate { Tickets::rotate(&dir)? } else { Tickets::open(&dir)? };
            if rotate {
                eprintln!("the ticket secret is new: tickets made before no longer work");
            }
            if let Some(name) = name {
                anyhow::ensure!(!name.trim().is_empty(), "the name must not be empty");
                println!("{}", tickets.ticket(&name));
            }
        }
        CaCommand::Serve { dir, listen, name, lifetime } => {
            return crate::ca_serve::run(crate::ca_serve::ServeOptions {
                dir: &dir,
                listen,
                names: name,
                lifetime,
            });
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
            let pending: Vec<_> = Queue::new(&dir)
                .list()?
                .into_iter()
                .filter(|queued| queued.status == Status::Pending)
                .collect();
            if !pending.is_empty() {
                writeln!(out, "\npending requests (monchero ca sign DIR NAME|ID, or ca refuse):")?;
            }
            for queued in pending {
                writeln!(
                    out,
                    "{}  {}  names {}  from {}  at {}  PENDING",
                    queued.id,
                    queued.name,
                    queued.dns_names.join(","),
                    queued.peer,
                    queued.received
                )?;
            }
        }
        CaCommand::Revoke { dir, name } => {
            let count = Ca::open(&dir)?.revoke(&name)?;
            println!(
                "{count} certificate(s) of {name:?} newly revoked; {} is updated: agents enrolled \
                 with `cert enrol` fetch it from `ca serve`; copy it to the others' [pull] \
                 crl_file and reload them",
                dir.join("crl.pem").display()
            );
        }
    }
    Ok(0)
}

/// Signs the pending request `which` (name or id) for its agent to collect.
fn sign_queued(ca: &Ca, which: &str, validity: std::time::Duration) -> anyhow::Result<String> {
    let queue = Queue::new(ca.dir());
    let mut queued = queue.find_pending(which)?;
    let pem = ca
        .sign(&queued.csr, validity)
        .with_context(|| format!("cannot sign request {} for {:?}", queued.id, queued.name))?;
    queued.status = Status::Issued;
    queued.certificate = Some(pem.clone());
    queue.save(&queued)?;
    eprintln!(
        "request {} for {:?} signed; its agent collects the certificate",
        queued.id, queued.name
    );
    Ok(pem)
}
