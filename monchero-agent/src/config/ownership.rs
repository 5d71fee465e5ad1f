//! What an agent running as root refuses to trust: a config file, an
//! included file, or a plugin or action program that a user other than
//! root could change, since whoever can change it runs commands as root.
//!
//! The rule is sshd's `StrictModes` and sudo's for sudoers: the file and
//! every directory above it must belong to root and not be writable by
//! group or others. A root-owned directory with the sticky bit (`/tmp`)
//! is allowed, as it only lets others replace their own files.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

const GROUP_OR_OTHER_WRITE: u32 = 0o022;
const STICKY: u32 = 0o1000;

/// Why `path` cannot be trusted by an agent running as root; `None` when
/// it can, or when it cannot be examined (a missing file is reported by
/// the checks that need it).
pub(super) fn untrusted(path: &Path) -> Option<String> {
    let file = std::fs::metadata(path).ok()?;
    if let Some(reason) = reason(path, &file, false) {
        return Some(reason);
    }
    // The directories above it, as the path is written and after links.
    let resolved = path.canonicalize().ok()?;
    resolved.ancestors().skip(1).find_map(|dir| {
        let meta = std::fs::metadata(dir).ok()?;
        reason(dir, &meta, true).map(|why| format!("{why} (it holds {})", path.display()))
    })
}

fn reason(path: &Path, meta: &std::fs::Metadata, directory: bool) -> Option<String> {
    let mode = meta.mode() & 0o7777;
    if meta.uid() != 0 {
        return Some(format!(
            "{} is owned by uid {}, not root, and the agent runs as root: whoever owns it \
             could run commands as root; chown root {0}",
            path.display(),
            meta.uid()
        ));
    }
    let sticky = directory && mode & STICKY != 0;
    if mode & GROUP_OR_OTHER_WRITE != 0 && !sticky {
        return Some(format!(
            "{} is writable by {} (mode {mode:04o}) and the agent runs as root: they could \
             run commands as root; chmod go-w {0}",
            path.display(),
            if mode & 0o002 != 0 { "others" } else { "its group" },
        ));
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn group_or_world_writable_files_and_directories_are_named_with_their_mode() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: ownership is only judged for root, and these files are not root's");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("check_x");
        std::fs::write(&file, "#!/bin/sh\n").unwrap();
        chmod(&file, 0o755);
        assert_eq!(untrusted(&file), None);

        chmod(&file, 0o775);
        let why = untrusted(&file).unwrap();
        assert!(why.contains("check_x is writable by its group (mode 0775)"), "{why}");
        chmod(&file, 0o757);
        assert!(untrusted(&file).unwrap().contains("writable by others (mode 0757)"));

        chmod(&file, 0o755);
        chmod(dir.path(), 0o777);
        let why = untrusted(&file).unwrap();
        assert!(why.contains("mode 0777") && why.contains("(it holds "), "{why}");
        chmod(dir.path(), 0o1777);
        assert_eq!(untrusted(&file), None, "a sticky root directory like /tmp is fine");

        std::os::unix::fs::chown(&file, Some(65534), None).unwrap();
        let why = untrusted(&file).unwrap();
        assert!(why.contains("is owned by uid 65534, not root"), "{why}");
    }
}
