//! What differs between the kinds of push target: how a batch of spooled
//! records is encoded (on the spool thread) and how it is sent and its
//! answers read (in the delivery task). The spool, the sender loop with
//! its backoff and Retry-After, and the health shown by `status` are the
//! same for every kind.

use monchero_core::spool::Record;

use super::batch::{self, Batch};
use super::client::{self, Outcome};
use super::{icinga2, remote_write};
use crate::config::{PushConfig, PushKind};

/// Encodes batches for one target.
#[derive(Debug, Clone)]
pub enum Encoder {
    /// The push protocol's batch document.
    Monchero { agent: String, instance: String },
    /// Icinga 2 check results.
    Icinga2(icinga2::Encoder),
    /// A remote-write `WriteRequest`.
    RemoteWrite(remote_write::Encoder),
}

impl Encoder {
    /// The encoder for `target`, whose spool has the instance id `instance`.
    pub fn new(target: &PushConfig, instance: String) -> Encoder {
        let agent = target.agent.clone();
        match &target.kind {
            PushKind::Monchero => Encoder::Monchero { agent, instance },
            PushKind::Icinga2 { host, .. } => {
                Encoder::Icinga2(icinga2::Encoder { host: host.clone(), source: agent })
            }
            PushKind::RemoteWrite => {
                Encoder::RemoteWrite(remote_write::Encoder { instance: agent })
            }
        }
    }

    /// The batch of `records`; `None` for no records.
    pub fn encode(&self, records: &[Record]) -> Option<Batch> {
        match self {
            Encoder::Monchero { agent, instance } => batch::encode(agent, instance, records),
            Encoder::Icinga2(encoder) => encoder.encode(records),
            Encoder::RemoteWrite(encoder) => encoder.encode(records),
        }
    }

    /// Whether heartbeats go out on a fixed beat even while results flow:
    /// Icinga shows them as the host's state, which must stay fresh
    /// however busy the checks are.
    pub fn steady_heartbeat(&self) -> bool {
        matches!(self, Encoder::Icinga2(_))
    }
}

/// Sends batches to one target.
#[derive(Debug)]
pub enum Transport {
    Monchero(client::Client),
    Icinga2(icinga2::Client),
    RemoteWrite(remote_write::Client),
}

impl Transport {
    /// The transport for `target`, reading the files it names.
    pub fn new(target: &PushConfig) -> anyhow::Result<Transport> {
        Ok(match &target.kind {
            PushKind::Monchero => Transport::Monchero(client::Client::new(target)?),
            PushKind::Icinga2 { host, create_objects } => {
                Transport::Icinga2(icinga2::Client::new(target, host, *create_objects)?)
            }
            PushKind::RemoteWrite => Transport::RemoteWrite(remote_write::Client::new(target)?),
        })
    }

    /// Sends `batch` and says what became of it.
    pub async fn send(&mut self, batch: &Batch) -> Outcome {
        match self {
            Transport::Monchero(client) => client.send(batch).await,
            Transport::Icinga2(client) => client.send(batch).await,
            Transport::RemoteWrite(client) => client.send(batch).await,
        }
    }
}
