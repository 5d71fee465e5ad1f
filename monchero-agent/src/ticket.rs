//! Enrolment tickets: `ticket = HMAC-SHA256(secret, name)` in hex, under a
//! secret kept in the CA directory (`ticket.key`, mode 0600).
//!
//! A ticket needs no storage: anyone with the CA directory can make one on
//! any machine, and `ca serve` checks one by recomputing it (as Icinga 2's
//! ticket salt works). A ticket is good for its one name only; rotating the
//! secret voids every ticket handed out so far.

use std::path::{Path, PathBuf};

use anyhow::Context;
use aws_lc_rs::hmac;

use crate::ca::{random_bytes, replace_with_mode, write_new};

/// The secret's file in a CA directory.
const SECRET_FILE: &str = "ticket.key";

/// The ticket secret of one CA directory.
#[derive(Debug)]
pub struct Tickets {
    key: hmac::Key,
}

impl Tickets {
    /// The secret of the CA in `dir`, made on first use (CA directories
    /// from before tickets existed have none).
    pub fn open(dir: &Path) -> anyhow::Result<Tickets> {
        let path = secret_path(dir);
        match std::fs::read_to_string(&path) {
            Ok(text) => Tickets::from_hex(text.trim()).with_context(|| {
                format!("{} is damaged: expected at least 32 hex digits", path.display())
            }),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let secret = random_bytes::<32>()?;
                write_new(&path, hex(&secret).as_bytes(), 0o600)?;
                Ok(Tickets { key: hmac::Key::new(hmac::HMAC_SHA256, &secret) })
            }
            Err(error) => Err(error).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Replaces the secret of the CA in `dir` with a new one: every ticket
    /// made before stops working.
    pub fn rotate(dir: &Path) -> anyhow::Result<Tickets> {
        let secret = random_bytes::<32>()?;
        replace_with_mode(&secret_path(dir), hex(&secret).as_bytes(), 0o600)?;
        Ok(Tickets { key: hmac::Key::new(hmac::HMAC_SHA256, &secret) })
    }

    fn from_hex(text: &str) -> Option<Tickets> {
        let secret = unhex(text).filter(|bytes| bytes.len() >= 16)?;
        Some(Tickets { key: hmac::Key::new(hmac::HMAC_SHA256, &secret) })
    }

    /// The ticket for the certificate name `name`.
    pub fn ticket(&self, name: &str) -> String {
        hex(hmac::sign(&self.key, name.as_bytes()).as_ref())
    }

    /// Whether `ticket` is the ticket for `name`, compared in constant time
    /// so the answer's timing does not reveal how much of a guess was right.
    pub fn is_valid(&self, name: &str, ticket: &str) -> bool {
        unhex(ticket.trim())
            .is_some_and(|tag| hmac::verify(&self.key, name.as_bytes(), &tag).is_ok())
    }
}

fn secret_path(dir: &Path) -> PathBuf {
    dir.join(SECRET_FILE)
}

/// Lower-case hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The bytes of a hexadecimal string (either case); `None` if it is not one.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    (text.len() % 2 == 0).then_some(())?;
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_ticket_is_the_hmac_of_the_name_and_fits_that_name_only() {
        let dir = tempfile::tempdir().unwrap();
        let tickets = Tickets::open(dir.path()).unwrap();
        let ticket = tickets.ticket("web1");
        assert_eq!(ticket.len(), 64);
        assert!(tickets.is_valid("web1", &ticket));
        assert!(tickets.is_valid("web1", &ticket.to_uppercase()), "hex in either case");
        assert!(!tickets.is_valid("web2", &ticket), "another name");
        assert!(!tickets.is_valid("web1", &ticket[..62]), "truncated");
        assert!(!tickets.is_valid("web1", "not hex at all"));
        let mode = std::fs::metadata(dir.path().join("ticket.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        // RFC 4231 test case 1: it is HMAC-SHA256 of the name, nothing else.
        std::fs::write(dir.path().join("ticket.key"), hex(&[0x0b; 20])).unwrap();
        let reopened = Tickets::open(dir.path()).unwrap();
        assert_eq!(
            reopened.ticket("Hi There"),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        assert!(!reopened.is_valid("web1", &ticket), "the secret decides");
    }

    #[test]
    fn tickets_survive_reopening_and_die_with_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let ticket = Tickets::open(dir.path()).unwrap().ticket("web1");
        assert!(Tickets::open(dir.path()).unwrap().is_valid("web1", &ticket));
        let rotated = Tickets::rotate(dir.path()).unwrap();
        assert!(!rotated.is_valid("web1", &ticket));
        assert!(Tickets::open(dir.path()).unwrap().is_valid("web1", &rotated.ticket("web1")));
    }

    #[test]
    fn a_damaged_secret_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ticket.key"), "short").unwrap();
        let error = format!("{:#}", Tickets::open(dir.path()).unwrap_err());
        assert!(error.contains("ticket.key is damaged"), "{error}");
    }
}
