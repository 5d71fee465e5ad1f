//! Enrolment requests waiting for an operator: one JSON file per request
//! in the CA directory's `requests/`, named by its random id. `ca serve`
//! adds them, `ca list` shows them, `ca sign` / `ca refuse` settle them,
//! and the agent polls `GET /v1/enrol/{id}` for the outcome.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::ca::{random_bytes, replace};

/// Requests pending at once; more are refused, so a flood of requests
/// without tickets cannot fill the disk.
pub const MAX_PENDING: usize = 1000;

/// Where a queued request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Waiting for `ca sign` or `ca refuse`.
    Pending,
    /// Signed; the certificate is in the request.
    Issued,
    /// Refused by an operator.
    Refused,
}

/// One queued request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Queued {
    /// 32 hex digits, random: knowing it is what lets a client collect the
    /// certificate.
    pub id: String,
    /// The name the request is for (its subject CN).
    pub name: String,
    /// Every DNS name it asks for.
    pub dns_names: Vec<String>,
    /// The PEM request.
    pub csr: String,
    /// Who sent it, for the operator deciding.
    pub peer: String,
    /// When it came, RFC 3339.
    pub received: String,
    /// Pending, issued or refused.
    pub status: Status,
    /// The signed certificate (PEM), once issued.
    #[serde(default)]
    pub certificate: Option<String>,
}

/// The `requests/` directory of one CA.
#[derive(Debug, Clone)]
pub struct Queue {
    dir: PathBuf,
}

impl Queue {
    /// The queue of the CA in `ca_dir`.
    pub fn new(ca_dir: &Path) -> Queue {
        Queue { dir: ca_dir.join("requests") }
    }

    /// Queues a request; returns it with its new id. Refused when
    /// [`MAX_PENDING`] are waiting already.
    pub fn add(
        &self,
        name: &str,
        dns_names: &[String],
        csr: &str,
        peer: &str,
    ) -> anyhow::Result<Queued> {
        let pending = self.list()?.iter().filter(|q| q.status == Status::Pending).count();
        anyhow::ensure!(
            pending < MAX_PENDING,
            "{pending} requests are waiting already; sign or refuse some (monchero ca list)"
        );
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .with_context(|| format!("cannot create {}", self.dir.display()))?;
        let queued = Queued {
            id: crate::ticket::hex(&random_bytes::<16>()?),
            name: name.to_owned(),
            dns_names: dns_names.to_vec(),
            csr: csr.to_owned(),
            peer: peer.to_owned(),
            received: crate::status_report::rfc3339(SystemTime::now()),
            status: Status::Pending,
            certificate: None,
        };
        self.save(&queued)?;
        Ok(queued)
    }

    /// Writes `queued` back (atomically).
    pub fn save(&self, queued: &Queued) -> anyhow::Result<()> {
        let json = serde_json::to_vec_pretty(queued).context("cannot encode a request")?;
        replace(&self.path(&queued.id), &json)
    }

    /// The request with `id`; `None` for an unknown id or one that is not
    /// an id at all (so a crafted id can never name another file).
    pub fn get(&self, id: &str) -> anyhow::Result<Option<Queued>> {
        if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let path = self.path(id);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .with_context(|| format!("{} is damaged", path.display())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Every request, oldest first. A damaged file is named in the error.
    pub fn list(&self) -> anyhow::Result<Vec<Queued>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => {
                return Err(error).with_context(|| format!("cannot read {}", self.dir.display()));
            }
        };
        let mut all = Vec::new();
        for entry in entries {
            let path = entry.with_context(|| format!("cannot read {}", self.dir.display()))?.path();
            if path.extension().is_none_or(|ext| ext != "json") {
                continue;
            }
            let bytes =
                std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            all.push(
                serde_json::from_slice::<Queued>(&bytes)
                    .with_context(|| format!("{} is damaged", path.display()))?,
            );
        }
        all.sort_by(|a, b| a.received.cmp(&b.received).then_with(|| a.id.cmp(&b.id)));
        Ok(all)
    }

    /// The one pending request that `which` names, by id or by name.
    pub fn find_pending(&self, which: &str) -> anyhow::Result<Queued> {
        let matching: Vec<Queued> = self
            .list()?
            .into_iter()
            .filter(|q| q.status == Status::Pending && (q.id == which || q.name == which))
            .collect();
        match matching.len() {
            0 => anyhow::bail!(
                "{which:?} is neither a CSR file nor a pending request's name or id; see \
                 `monchero ca list`"
            ),
            1 => Ok(matching.into_iter().next().context("one request")?),
            n => anyhow::bail!(
                "{n} requests for {which:?} are pending; give the id of the one to settle \
                 (monchero ca list)"
            ),
        }
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_queued_found_by_name_or_id_and_settled() {
        let dir = tempfile::tempdir().unwrap();
        let queue = Queue::new(dir.path());
        assert!(queue.list().unwrap().is_empty());
        let first = queue.add("web1", &["web1".into()], "CSR", "127.0.0.1:5000").unwrap();
        assert_eq!(queue.find_pending("web1").unwrap(), first);
        assert_eq!(queue.find_pending(&first.id).unwrap(), first);
        let second = queue.add("web1", &[], "CSR2", "127.0.0.1:5001").unwrap();
        let ambiguous = format!("{:#}", queue.find_pending("web1").unwrap_err());
        assert!(ambiguous.contains("2 requests for \"web1\""), "{ambiguous}");

        let mut issued = second.clone();
        issued.status = Status::Issued;
        issued.certificate = Some("CERT".into());
        queue.save(&issued).unwrap();
        assert_eq!(queue.get(&second.id).unwrap(), Some(issued));
        assert_eq!(queue.find_pending("web1").unwrap(), first, "only pending ones count");
    }

    #[test]
    fn ids_that_are_not_ids_name_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let queue = Queue::new(dir.path());
        assert_eq!(queue.get("../ca").unwrap(), None);
        assert_eq!(queue.get(&"0".repeat(32)).unwrap(), None);
    }

    #[test]
    fn a_damaged_request_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let queue = Queue::new(dir.path());
        let queued = queue.add("web1", &[], "CSR", "peer").unwrap();
        let path = dir.path().join("requests").join(format!("{}.json", queued.id));
        std::fs::write(&path, "{").unwrap();
        let error = format!("{:#}", queue.list().unwrap_err());
        assert!(error.contains(&format!("{} is damaged", path.display())), "{error}");
    }
}
