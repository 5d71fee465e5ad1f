//! `monchero cert enrol`: a new key and request, sent to `monchero ca
//! serve`, and the answer installed into the certificate directory (see
//! [`crate::cert_dir`]). A queued request is kept (id and key) so that
//! running the command again, or `--wait`, collects it.

use std::time::Duration;

use anyhow::Context;
use monchero_core::backoff::Backoff;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::cert_dir::{CertDir, Enrolment, Pending};
use crate::cli::EnrolArgs;
use crate::enrol_client::{EnrolClient, Trust, parse_fingerprint};
use crate::enrol_protocol::Answer;

/// Exit status for a request that was queued and not waited for
/// (sysexits.h EX_TEMPFAIL: run the command again later).
const EX_TEMPFAIL: u8 = 75;

/// How `--wait` polls a queued request: soon at first, then at most once a
/// minute.
const POLL: Backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));

/// Runs `cert enrol`; returns the exit status (0 installed, 1 failed or
/// refused, 64 bad arguments, 75 queued, 78 unreadable CA file).
pub fn run(args: &EnrolArgs) -> u8 {
    let trust = match trust(args) {
        Ok(trust) => trust,
        Err((code, error)) => {
            eprintln!("monchero: {error:#}");
            return code;
        }
    };
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        .and_then(|runtime| runtime.block_on(enrol(args, &trust)));
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("monchero: {error:#}");
            1
        }
    }
}

fn trust(args: &EnrolArgs) -> Result<Trust, (u8, anyhow::Error)> {
    if let Some(text) = &args.ca_fingerprint {
        return parse_fingerprint(text).map(Trust::Fingerprint).ok_or_else(|| {
            let error = anyhow::anyhow!(
                "--ca-fingerprint {text:?} is not a SHA-256 fingerprint (64 hex digits, as \
                 `monchero ca init` and `ca serve` print it)"
            );
            (crate::EX_USAGE, error)
        });
    }
    let path = args
        .ca_file
        .as_deref()
        .ok_or_else(|| (crate::EX_USAGE, anyhow::anyhow!("give --ca-fingerprint or --ca-file")))?;
    crate::pull::tls::load_certs(path)
        .map(Trust::Certificates)
        .map_err(|error| (crate::EX_CONFIG, error))
}

async fn enrol(args: &EnrolArgs, trust: &Trust) -> anyhow::Result<u8> {
    let dir = CertDir::new(&args.dir.clone().unwrap_or_else(CertDir::default_dir));
    dir.create()?;
    let client = EnrolClient::new(&args.server, trust, None)?;
    if let Some((pending, key)) = dir.pending()? {
        if pending.server == args.server {
            eprintln!("collecting request {} for {:?}", pending.id, pending.name);
            return collect(&dir, &client, trust, &pending, &key, args.wait).await;
        }
        eprintln!(
            "forgetting request {} to {}: enrolling with {}",
            pending.id, pending.server, args.server
        );
        dir.clear_pending()?;
    }
    let name = match &args.name {
        Some(name) => name.clone(),
        None => rustix::system::uname().nodename().to_string_lossy().into_owned(),
    };
    let (key, csr) = crate::cert_request::new_key_and_csr(&name, &args.san)?;
    let key = key.serialize_pem();
    let pending = match client.enrol(&csr, args.ticket.as_deref()).await? {
        Answer::Pending { id } => {
            Pending { server: args.server.clone(), id, name, san: args.san.clone() }
        }
        answer => {
            let pending = Pending {
                server: args.server.clone(),
                id: String::new(),
                name,
                san: args.san.clone(),
            };
            return settle(&dir, trust, &pending, &key, answer);
        }
    };
    dir.save_pending(&pending, &key)?;
    eprintln!(
        "request {} for {:?} is queued: the ticket is missing or wrong. On the CA: monchero ca \
         sign CA_DIR {}",
        pending.id, pending.name, pending.id
    );
    collect(&dir, &client, trust, &pending, &key, args.wait).await
}

/// Polls a queued request: once, or with `wait` until it is settled.
async fn collect(
    dir: &CertDir,
    client: &EnrolClient,
    trust: &Trust,
    pending: &Pending,
    key: &str,
    wait: bool,
) -> anyhow::Result<u8> {
    let mut attempt = 0;
    loop {
        match client.poll(&pending.id).await {
            Ok(Answer::Pending { .. }) => {}
            Ok(answer) => return settle(dir, trust, pending, key, answer),
            Err(error) if wait => eprintln!("monchero: {error:#}; retrying"),
            Err(error) => return Err(error),
        }
        if !wait {
            eprintln!(
                "still pending; run this command again once it is signed, or with --wait to \
                 wait for it"
            );
            return Ok(EX_TEMPFAIL);
        }
        attempt += 1;
        tokio::time::sleep(POLL.delay(attempt, fastrand::f64())).await;
    }
}

/// Installs an issued certificate, or reports a refusal.
fn settle(
    dir: &CertDir,
    trust: &Trust,
    pending: &Pending,
    key: &str,
    answer: Answer,
) -> anyhow::Result<u8> {
    let (certificate, ca, crl) = match answer {
        Answer::Issued { certificate, ca, crl } => (certificate, ca, crl),
        Answer::Refused { id } => {
            dir.clear_pending()?;
            eprintln!("monchero: the CA refused request {id}");
            return Ok(1);
        }
        Answer::Pending { id } => anyhow::bail!("request {id} is still pending"),
    };
    let ca_der = CertificateDer::from_pem_slice(ca.as_bytes())
        .context("the server sent a CA certificate that is not PEM")?;
    anyhow::ensure!(
        trust.accepts_ca(&ca_der),
        "the server sent a CA certificate other than the one trusted (fingerprint {}); nothing \
         was installed",
        crate::ca::fingerprint(&ca_der)
    );
    crate::cert_dir::verify_issued(&certificate, ca.as_bytes())?;
    dir.install_ca(&ca)?;
    dir.install_crl(&crl)?;
    dir.install_pair(key, &certificate)?;
    dir.save_enrolment(&Enrolment {
        server: pending.server.clone(),
        name: pending.name.clone(),
        san: pending.san.clone(),
    })?;
    dir.clear_pending()?;
    println!("installed {} and {}", dir.key_file().display(), dir.cert_file().display());
    println!("[pull]\ncert_dir = {:?}", dir.path().display().to_string());
    Ok(0)
}
