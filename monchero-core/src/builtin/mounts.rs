//! Which filesystems `builtin:disk` and `builtin:inodes` look at, and
//! what `statvfs` says about them: the `-p`, `-x` and `-X` options, the
//! discovery of real mounted filesystems from `/proc/self/mountinfo`, and
//! `check_disk`'s arithmetic on the `statvfs` numbers.
//!
//! The rules of the discovery, and the reasons for each, are in the docs of
//! `builtin:disk` (`disk.rs`), which users read in `docs/checks.md`.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;

use super::args::{Command, Opt};
use super::{BuiltinError, io_error_text};

const MOUNTINFO: &str = "/proc/self/mountinfo";

/// Filesystem types never discovered (`disk.rs`'s module docs give the reasons).
const IGNORED_TYPES: &[&str] = &[
    // Kernel pseudo filesystems.
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devpts",
    "efivarfs",
    "fusectl",
    "hugetlbfs",
    "mqueue",
    "nfsd",
    "nsfs",
    "proc",
    "pstore",
    "rootfs",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "sysfs",
    "tracefs",
    // Userspace pseudo filesystems.
    "fuse.gvfsd-fuse",
    "fuse.lxcfs",
    "fuse.portal",
    "fuse.snapfuse",
    "fuse.squashfuse",
    // Memory-backed.
    "devtmpfs",
    "ramfs",
    "tmpfs",
    // Read-only images, full by construction.
    "cramfs",
    "erofs",
    "iso9660",
    "squashfs",
    // Network filesystems, whose statvfs can hang.
    "9p",
    "afs",
    "ceph",
    "cifs",
    "fuse.glusterfs",
    "fuse.rclone",
    "fuse.s3fs",
    "fuse.sshfs",
    "glusterfs",
    "lustre",
    "ncpfs",
    "nfs",
    "nfs4",
    "smb3",
    "smbfs",
    "vboxsf",
];

/// Which filesystems a check looks at: its `-p`, `-x` and `-X` options.
#[derive(Debug, Clone, PartialEq, Default)]
pub(super) struct Selection {
    /// `-p PATH`: the filesystems holding these paths, labelled as written,
    /// each once; when empty, the discovered mounts.
    pub(super) paths: Vec<String>,
    /// `-x PATH`: mount points the discovery leaves out.
    exclude_paths: Vec<String>,
    /// `-X FSTYPE`: filesystem types the discovery leaves out.
    exclude_types: Vec<String>,
}

impl Selection {
    /// Where a run calls `statvfs`, for a run that blocks there:
    /// `in statfs on /mnt/nfs`.
    pub(super) fn activity(&self) -> String {
        if self.paths.is_empty() {
            "in statfs on the mounted filesystems".to_owned()
        } else {
            format!("in statfs on {}", self.paths.join(", "))
        }
    }

    /// Takes a `-p`, `-x` or `-X` option; `Ok(false)` for any other, which
    /// is the caller's to handle.
    pub(super) fn take(&mut self, command: &Command, opt: Opt<'_>) -> Result<bool, BuiltinError> {
        let list = match opt.short {
            'p' => &mut self.paths,
            'x' => &mut self.exclude_paths,
            'X' => &mut self.exclude_types,
            _ => return Ok(false),
        };
        if opt.value.is_empty() {
            return Err(command.bad_value(opt.short, "the value is empty"));
        }
        if !list.iter().any(|known| known == opt.value) {
            list.push(opt.value.to_owned());
        }
        Ok(true)
    }

    /// Measures the `-p` paths, or else every discovered mount. The notes
    /// name mounts left out for a reason worth telling; the error is the
    /// text of an UNKNOWN summary.
    pub(super) fn measure(&self) -> Result<(Vec<Filesystem>, Vec<String>), String> {
        if !self.paths.is_empty() {
            return Ok((self.paths.iter().map(|path| measure(path)).collect(), Vec::new()));
        }
        // Bytes, not text: mount points need not be UTF-8.
        let mountinfo = std::fs::read(MOUNTINFO)
            .map_err(|error| format!("cannot read {MOUNTINFO}: {}", io_error_text(&error)))?;
        let mut notes = Vec::new();
        let filesystems = self
            .select(&mountinfo, is_file)
            .iter()
            .filter_map(|mount| measure_mount(mount, &mut notes))
            .collect();
        Ok((filesystems, notes))
    }

    /// The mounts to check, from the text of `/proc/self/mountinfo`;
    /// `is_file` tells a file mount point (the only I/O, passed in for the
    /// tests).
    fn select(&self, mountinfo: &[u8], is_file: impl Fn(&Path) -> bool) -> Vec<Mount> {
        let mounts: Vec<Mount> =
            mountinfo.split(|&b| b == b'\n').filter_map(Mount::parse).collect();
        let visible = visible(&mounts);

        let mut selected: Vec<Mount> = Vec::new();
        for (mount, _) in mounts.into_iter().zip(visible).filter(|&(_, visible)| visible) {
            // A file bind-mounted over a file (a container's /etc/hosts) is
            // not a filesystem anyone means; dropped before the
            // de-duplication, so that a directory mount of the same device
            // (a container's volume) is the one kept.
            if !self.wanted(&mount) || is_file(mount.os_path()) {
                continue;
            }
            match selected.iter_mut().find(|kept| kept.device == mount.device) {
                // A bind mount of the filesystem's root beats one of a
                // subdirectory mounted earlier.
                Some(kept) if kept.root != b"/" && mount.root == b"/" => *kept = mount,
                Some(_) => {}
                None => selected.push(mount),
            }
        }
        selected
    }

    fn wanted(&self, mount: &Mount) -> bool {
        let fstype = mount.fstype.as_str();
        if IGNORED_TYPES.contains(&fstype) || self.exclude_types.iter().any(|t| t == fstype) {
            return false;
        }
        if matches!(fstype, "overlay" | "aufs") && mount.path != b"/" {
            return false;
        }
        !self.exclude_paths.iter().any(|path| path.as_bytes() == mount.path)
    }
}

/// One mount from `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mount {
    /// The mount's id, unique in the namespace.
    id: u64,
    /// The id of the mount it is attached to.
    parent: u64,
    /// The mount point, unescaped, as bytes (paths need not be UTF-8).
    path: Vec<u8>,
    /// The directory of the filesystem mounted there (`/` unless a bind
    /// mount of a subdirectory or a btrfs subvolume).
    root: Vec<u8>,
    /// `major:minor`, the same for every mount of one filesystem.
    device: String,
    fstype: String,
    source: String,
}

impl Mount {
    /// Parses `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root
    /// rw,errors=continue` (proc(5)): the optional fields before `-` vary
    /// in number.
    fn parse(line: &[u8]) -> Option<Mount> {
        let mut fields = line.split(|&b| b == b' ').filter(|field| !field.is_empty());
        let mut number = || std::str::from_utf8(fields.next()?).ok()?.parse::<u64>().ok();
        let (id, parent) = (number()?, number()?);
        let device = String::from_utf8_lossy(fields.next()?).into_owned();
        let root = unescape(fields.next()?);
        let path = unescape(fields.next()?);
        let _options = fields.next()?;
        fields.find(|&field| field == b"-")?;
        let fstype = String::from_utf8_lossy(fields.next()?).into_owned();
        let source = String::from_utf8_lossy(&unescape(fields.next()?)).into_owned();
        Some(Mount { id, parent, path, root, device, fstype, source })
    }

    fn label(&self) -> String {
        String::from_utf8_lossy(&self.path).into_owned()
    }

    fn os_path(&self) -> &Path {
        Path::new(OsStr::from_bytes(&self.path))
    }
}

/// Which mounts path resolution reaches, by simulating it: from the root
/// mount, each component of a path enters the mount attached there (and
/// the mounts stacked on it, each attached to the one below at the same
/// path). A mount is visible when resolving its own mount point ends on it.
///
/// This finds mounts hidden by a mount on the same mount point and those
/// whose parent directory was mounted over, whatever the order of the lines
/// (children can come before their parent). Without a root mount, which
/// should not happen, every mount counts as visible.
fn visible(mounts: &[Mount]) -> Vec<bool> {
    let attached: HashMap<(u64, &[u8]), usize> = mounts
        .iter()
        .enumerate()
        .map(|(index, mount)| ((mount.parent, mount.path.as_slice()), index))
        .collect();
    let ids: HashSet<u64> = mounts.iter().map(|mount| mount.id).collect();
    let root = mounts.iter().position(|mount| mount.path == b"/" && !ids.contains(&mount.parent));
    let Some(root) = root else {
        return vec![true; mounts.len()];
    };
    // Enters the mounts stacked at `path` on `current`; the step bound
    // guards against a malformed table with a cycle.
    let enter = |mut current: usize, path: &[u8]| {
        for _ in 0..mounts.len() {
            match attached.get(&(mounts[current].id, path)) {
                Some(&next) if next != current => current = next,
                _ => break,
            }
        }
        current
    };
    mounts
        .iter()
        .enumerate()
        .map(|(index, mount)| {
            let mut current = enter(root, b"/");
            let components = mount.path.iter().enumerate().skip(1).filter(|&(_, &b)| b == b'/');
            for (end, _) in components {
                current = enter(current, &mount.path[..end]);
            }
            if mount.path.len() > 1 {
                current = enter(current, &mount.path);
            }
            current == index
        })
        .collect()
}

/// Undoes mountinfo's octal escapes (`\040` for a space, `\134` for `\`).
fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut rest = field;
    while let Some((&byte, tail)) = rest.split_first() {
        let octal = tail
            .get(..3)
            .filter(|digits| byte == b'\\' && digits.iter().all(|d| (b'0'..=b'7').contains(d)));
        match octal {
            Some(digits) => {
                let value = digits.iter().fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                out.push(value as u8);
                rest = &tail[3..];
            }
            None => {
                out.push(byte);
                rest = tail;
            }
        }
    }
    out
}

/// One checked filesystem: its label, where it comes from, and its usage
/// or the error that kept us from reading it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Filesystem {
    /// The mount point, or the `-p` path as written.
    pub(super) label: String,
    /// `ext4 /dev/vda`, for discovered mounts.
    pub(super) about: Option<String>,
    pub(super) usage: Result<Usage, String>,
}

/// Space and inodes of one filesystem, in `check_disk`'s terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Usage {
    /// Used + available: the space a non-root user sees.
    pub(super) total: u64,
    /// Bytes in use (blocks − free blocks).
    pub(super) used: u64,
    /// Bytes available to non-root users.
    pub(super) avail: u64,
    /// `None` when the filesystem has no fixed inode count (btrfs, vfat).
    pub(super) inodes: Option<Inodes>,
}

/// Inodes of one filesystem, counted like space: the total is used +
/// available to non-root users.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Inodes {
    pub(super) total: u64,
    pub(super) avail: u64,
}

/// The `statvfs` fields the check uses, apart from the syscall so the
/// arithmetic can be tested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Raw {
    frsize: u64,
    blocks: u64,
    bfree: u64,
    bavail: u64,
    files: u64,
    ffree: u64,
    favail: u64,
}

impl From<&rustix::fs::StatVfs> for Raw {
    fn from(stat: &rustix::fs::StatVfs) -> Raw {
        Raw {
            // f_frsize is the unit of the block counts; some old kernels
            // and filesystems leave it 0 and mean f_bsize.
            frsize: if stat.f_frsize > 0 { stat.f_frsize } else { stat.f_bsize },
            blocks: stat.f_blocks,
            bfree: stat.f_bfree,
            bavail: stat.f_bavail,
            files: stat.f_files,
            ffree: stat.f_ffree,
            favail: stat.f_favail,
        }
    }
}

impl Raw {
    fn usage(self) -> Usage {
        let used = self.blocks.saturating_sub(self.bfree).saturating_mul(self.frsize);
        let avail = self.bavail.saturating_mul(self.frsize);
        let inodes = (self.files > 0).then(|| {
            let used = self.files.saturating_sub(self.ffree);
            Inodes { total: used.saturating_add(self.favail), avail: self.favail }
        });
        Usage { total: used.saturating_add(avail), used, avail, inodes }
    }
}

/// Measures a discovered mount, or leaves it out (with a note when the
/// reason is worth telling).
fn measure_mount(mount: &Mount, notes: &mut Vec<String>) -> Option<Filesystem> {
    let about = format!("{} {}", mount.fstype, mount.source);
    match rustix::fs::statvfs(mount.os_path()) {
        // Zero blocks: a pseudo filesystem not in the list.
        Ok(stat) if stat.f_blocks == 0 => None,
        Ok(stat) => Some(Filesystem {
            label: mount.label(),
            about: Some(about),
            usage: Ok(Raw::from(&stat).usage()),
        }),
        // Another user's FUSE mount is closed even to root; it is theirs to
        // watch, not a broken disk.
        Err(errno) if errno == rustix::io::Errno::ACCESS || errno == rustix::io::Errno::PERM => {
            let error = io_error_text(&errno.into());
            notes.push(format!("skipped {}: {error}", mount.label()));
            None
        }
        Err(errno) => Some(Filesystem {
            label: mount.label(),
            about: Some(about),
            usage: Err(io_error_text(&errno.into())),
        }),
    }
}

/// Measures the filesystem holding a `-p` path, labelled as written.
fn measure(path: &str) -> Filesystem {
    let usage = rustix::fs::statvfs(path)
        .map(|stat| Raw::from(&stat).usage())
        .map_err(|errno| io_error_text(&errno.into()));
    Filesystem { label: path.to_owned(), about: None, usage }
}

/// Whether a mount point is a file. An error says nothing: statvfs will
/// meet it too and report it.
fn is_file(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|meta| !meta.is_dir())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::builtin::args::Spec;

    fn paths(mounts: &[Mount]) -> Vec<String> {
        mounts.iter().map(Mount::label).collect()
    }

    fn no_files(_: &Path) -> bool {
        false
    }

    #[test]
    fn options() {
        const COMMAND: Command = Command {
            name: "test",
            usage: "builtin:test [-p PATH]... [-x PATH]... [-X FSTYPE]...",
            specs: &[
                Spec::value('p', "path"),
                Spec::value('x', "exclude_device"),
                Spec::value('X', "exclude-type"),
                Spec::value('w', "warning"),
            ],
        };
        let args: Vec<String> = [
            "-p",
            "/",
            "--path=/var",
            "-p",
            "/",
            "--exclude_device",
            "/boot",
            "--exclude-type=vfat",
        ]
        .iter()
        .map(|arg| (*arg).to_owned())
        .collect();
        let mut selection = Selection::default();
        for opt in COMMAND.parse(&args).unwrap() {
            assert!(selection.take(&COMMAND, opt).unwrap());
        }
        assert_eq!(selection.paths, ["/", "/var"]);
        assert_eq!(
            selection,
            Selection { paths: selection.paths.clone(), ..excluding(&["/boot"], &["vfat"]) }
        );
        let not_ours = Opt { short: 'w', value: "5%" };
        assert!(!selection.take(&COMMAND, not_ours).unwrap());
        let empty = Opt { short: 'x', value: "" };
        assert_eq!(
            selection.take(&COMMAND, empty).unwrap_err().to_string(),
            "builtin:test: -x: the value is empty"
        );
    }

    fn excluding(paths: &[&str], types: &[&str]) -> Selection {
        let owned = |list: &[&str]| list.iter().map(|item| (*item).to_owned()).collect();
        Selection { paths: Vec::new(), exclude_paths: owned(paths), exclude_types: owned(types) }
    }

    #[test]
    fn statvfs_arithmetic_follows_check_disk() {
        let raw = Raw {
            frsize: 4096,
            blocks: 1000,
            bfree: 300,
            bavail: 250, // 50 blocks reserved for root
            files: 640,
            ffree: 600,
            favail: 600,
        };
        let usage = raw.usage();
        assert_eq!(usage.used, 700 * 4096);
        assert_eq!(usage.avail, 250 * 4096);
        assert_eq!(usage.total, 950 * 4096);
        assert_eq!(usage.inodes, Some(Inodes { total: 640, avail: 600 }));
        assert_eq!(Raw { files: 0, ffree: 0, favail: 0, ..raw }.usage().inodes, None);
        // A full filesystem whose reserve is in use: bavail 0, bfree > 0.
        let full = Raw { bfree: 20, bavail: 0, ..raw }.usage();
        assert_eq!((full.used, full.avail, full.total), (980 * 4096, 0, 980 * 4096));
    }

    const MOUNTINFO_FIXTURE: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
23 27 0:22 / /sys rw,relatime - sysfs sysfs rw
24 27 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw,size=12334460k
25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw
27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard
28 27 254:1 / /boot rw,relatime shared:2 master:3 - ext4 /dev/vda1 rw
29 27 254:0 /srv/data /data rw,relatime - ext4 /dev/vda rw
30 27 254:2 /@ /mnt/pool rw - btrfs /dev/vdb rw
31 27 254:2 /@home /home rw - btrfs /dev/vdb rw
32 27 0:40 / /var/lib/docker/overlay2/abc/merged rw - overlay overlay rw
33 27 0:41 / /mnt/nas rw - nfs4 nas:/export rw
34 27 7:0 / /snap/core/1 ro - squashfs /dev/loop0 ro
35 27 254:3 / /mnt/my\\040disk rw - xfs /dev/vdc rw
36 27 254:4 / /mnt/old rw - ext4 /dev/vdd rw
37 36 254:5 / /mnt/old rw - ext4 /dev/vde rw
38 28 254:6 / /boot/efi rw - vfat /dev/vda2 rw
39 27 0:50 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw
";

    #[test]
    fn discovery_keeps_real_filesystems_once() {
        let mounts = Selection::default().select(MOUNTINFO_FIXTURE.as_bytes(), no_files);
        assert_eq!(
            paths(&mounts),
            ["/", "/boot", "/mnt/pool", "/mnt/my disk", "/mnt/old", "/boot/efi"]
        );
        let old = &mounts[4];
        assert_eq!((old.device.as_str(), old.source.as_str()), ("254:5", "/dev/vde"));
        assert_eq!(mounts[0].fstype, "ext4");
    }

    #[test]
    fn discovery_prefers_the_root_of_a_filesystem() {
        let text = "\
20 1 8:1 / / rw - ext4 /dev/sda1 rw
29 20 254:0 /srv/data /data rw - ext4 /dev/vda rw
27 20 254:0 / /srv rw - ext4 /dev/vda rw
";
        assert_eq!(paths(&Selection::default().select(text.as_bytes(), no_files)), ["/", "/srv"]);
    }

    #[test]
    fn discovery_keeps_a_container_root_overlay() {
        let text = "\
100 90 0:60 / / rw - overlay overlay rw,lowerdir=/a,upperdir=/b
101 100 0:61 / /proc rw - proc proc rw
102 100 254:0 /var/lib/docker/containers/x/hosts /etc/hosts rw - ext4 /dev/vda rw
103 100 254:0 /var/lib/docker/volumes/v/_data /data rw - ext4 /dev/vda rw
";
        let hosts_is_a_file = |path: &Path| path == Path::new("/etc/hosts");
        assert_eq!(
            paths(&Selection::default().select(text.as_bytes(), hosts_is_a_file)),
            ["/", "/data"]
        );
    }

    #[test]
    fn hidden_mounts() {
        // Children listed before their parent, as on some systems.
        let text = "\
22 27 0:21 / /proc rw - proc proc rw
40 27 8:2 / /a rw - ext4 /dev/sda2 rw
41 40 8:3 / /a/b rw - ext4 /dev/sda3 rw
27 1 8:1 / / rw - ext4 /dev/sda1 rw
42 40 8:4 / /a rw - ext4 /dev/sda4 rw
43 42 8:5 / /a/b/c rw - ext4 /dev/sda5 rw
44 27 8:6 / /x rw - ext4 /dev/sda6 rw
45 44 8:7 / /x/y rw - ext4 /dev/sda7 rw
46 27 8:8 / /x rw - ext4 /dev/sda8 rw
47 27 8:9 / / rw - ext4 /dev/sda9 rw
";
        let mounts: Vec<Mount> = text.lines().filter_map(|l| Mount::parse(l.as_bytes())).collect();
        let marked: Vec<String> = mounts
            .iter()
            .zip(visible(&mounts))
            .map(|(mount, visible)| {
                format!("{}{}", mount.label(), if visible { "" } else { " hidden" })
            })
            .collect();
        assert_eq!(
            marked,
            [
                // / is itself mounted over by 47 (attached to 27 at /).
                "/proc hidden",
                "/a hidden",
                "/a/b hidden",
                "/ hidden",
                "/a hidden",
                "/a/b/c hidden",
                "/x hidden",
                "/x/y hidden",
                "/x hidden",
                "/",
            ]
        );
        // Without 47: /a is 42 on top of 40; 41 is under it, but 43, mounted
        // on 42, is reachable; /x/y went under 46.
        let without_47 = &mounts[..9];
        assert_eq!(visible(without_47), [true, false, false, true, true, true, false, false, true]);
    }

    #[test]
    fn no_root_mount_means_all_visible() {
        let mount = Mount::parse(b"5 4 8:1 / /data rw - ext4 /dev/sda1 rw").unwrap();
        assert_eq!(visible(&[mount]), [true]);
    }

    #[test]
    fn discovery_exclusions() {
        let check = excluding(&["/boot", "/mnt/my disk"], &["vfat", "btrfs"]);
        assert_eq!(paths(&check.select(MOUNTINFO_FIXTURE.as_bytes(), no_files)), ["/", "/mnt/old"]);
    }

    #[test]
    fn mountinfo_lines() {
        let mount = Mount::parse(
            b"36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue",
        )
        .unwrap();
        assert_eq!(
            mount,
            Mount {
                id: 36,
                parent: 35,
                path: b"/mnt2".to_vec(),
                root: b"/mnt1".to_vec(),
                device: "98:0".to_owned(),
                fstype: "ext3".to_owned(),
                source: "/dev/root".to_owned(),
            }
        );
        assert_eq!(Mount::parse(b""), None);
        assert_eq!(Mount::parse(b"36 35 98:0 / /mnt rw"), None);
        assert_eq!(Mount::parse(b"36 35 98:0 / /mnt rw -"), None);
        assert_eq!(Mount::parse(b"x 35 98:0 / /mnt rw - ext4 /dev/sda rw"), None);
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape(br"/a\040b"), b"/a b");
        assert_eq!(unescape(br"/tab\011nl\012bs\134"), b"/tab\tnl\nbs\\");
        assert_eq!(unescape(br"/not\09"), br"/not\09");
        assert_eq!(unescape(br"/end\04"), br"/end\04");
        assert_eq!(unescape(br"/\377"), b"/\xff");
    }

    #[test]
    fn is_file_tells_files_from_directories() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hosts");
        std::fs::write(&file, "").unwrap();
        assert!(is_file(&file));
        assert!(!is_file(dir.path()));
        assert!(!is_file(&dir.path().join("nope")));
    }
}
