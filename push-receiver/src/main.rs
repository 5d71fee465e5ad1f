//! `monchero-push-receiver`: the reference receiver as a program, for
//! trying the agent against by hand and for load tests.
//!
//! ```text
//! monchero-push-receiver --listen 127.0.0.1:8443 --store records.jsonl \
//!     [--cert server.pem --key server.key [--client-ca ca.pem]] [--token-file FILE]
//! ```

use std::path::PathBuf;

use anyhow::{Context, bail};
use monchero_push_receiver::{Receiver, ReceiverConfig, TlsFiles};

fn main() -> anyhow::Result<()> {
    let mut listen = None;
    let mut store = None;
    let (mut cert, mut key, mut client_ca, mut token) = (None, None, None, None);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => listen = Some(value()?.parse().context("--listen takes HOST:PORT")?),
            "--store" => store = Some(PathBuf::from(value()?)),
            "--cert" => cert = Some(PathBuf::from(value()?)),
            "--key" => key = Some(PathBuf::from(value()?)),
            "--client-ca" => client_ca = Some(PathBuf::from(value()?)),
            "--token-file" => {
                let path = value()?;
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {path}"))?;
                token = Some(text.trim().to_owned());
            }
            other => bail!("unknown argument {other:?}; see the usage in the source's header"),
        }
    }
    let tls = match (cert, key) {
        (Some(cert), Some(key)) => Some(TlsFiles { cert, key, client_ca }),
        (None, None) => None,
        _ => bail!("--cert and --key go together"),
    };
    let config = ReceiverConfig {
        listen: listen.context("--listen HOST:PORT is required")?,
        store: store.context("--store FILE is required")?,
        tls,
        token,
    };
    let receiver = Receiver::start(config)?;
    eprintln!("listening on {}", receiver.addr());
    loop {
        std::thread::park();
    }
}
