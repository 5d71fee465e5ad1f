//! `builtin:disk [-w LIMIT] [-c LIMIT] [-W PCT%] [-K PCT%] [-p PATH]...
//! [-x PATH]... [-X FSTYPE]...`: free space and inodes, like `check_disk`.
//!
//! - `-w`/`-c`: free space below which to alert, in percent (`20%`) or as a
//!   size (`500MB`; as in `check_disk`, units are powers of 1024: `MB` is
//!   MiB). Defaults `-w 20% -c 10%`.
//! - `-W`/`-K`: free inodes below which to alert, in percent. Defaults
//!   `-W 10% -K 5%`. Filesystems without an inode count (btrfs) skip it.
//! - `-p PATH` (repeatable): check the filesystem holding PATH, labelled
//!   PATH. One that cannot be read is CRITICAL, as in `check_disk`:
//!   `DISK CRITICAL - /nope is not accessible: No such file or directory`.
//! - Without `-p`: every real mounted filesystem, from
//!   `/proc/self/mountinfo`; `-x PATH` and `-X FSTYPE` (repeatable) leave
//!   some out. They apply to this discovery only: a `-p` path is always
//!   checked.
//!
//! "Real" means, unlike `check_disk`, which checks everything `df` shows:
//! - no kernel pseudo filesystems (`proc`, `sysfs`, `cgroup2`, …, and any
//!   reporting zero blocks);
//! - no memory-backed ones (`tmpfs`, `devtmpfs`, `ramfs`): their use is
//!   memory, which `builtin:memory` watches; check one with `-p /run`;
//! - no read-only images (`squashfs` snaps, `iso9660`, `erofs`), which are
//!   always 100% full by construction;
//! - no network filesystems (`nfs`, `cifs`, `sshfs`, …): `statvfs` on a hung
//!   server blocks, and the local disks' result would time out with it;
//!   name them with `-p` to check them;
//! - no `overlay` except at `/`: the other overlays are container layers of
//!   the disk that holds them, and `/` is a container's root;
//! - no mount points that are files (a container's `/etc/hosts`);
//! - a filesystem mounted several times (bind mounts, btrfs subvolumes)
//!   once, under its first mount of the filesystem's root;
//! - no mount hidden by another (one on the same mount point, or on a
//!   directory above it): only what path resolution reaches.
//!
//! The numbers are `check_disk`'s: free is what a non-root user can use
//! (`f_bavail`), used is `f_blocks − f_bfree`, and percentages are of used +
//! free (root's reserved blocks left out), so they agree with `df`.
//! Perfdata is per filesystem, as in `check_disk` 2.3:
//! `'/'=usedB;warnB;critB;0;totalB`, the levels turned into used bytes.
//! One deliberate difference: `check_disk` takes that total, and the levels
//! derived from it, from *all* blocks, reserve included, while it alerts on
//! used + free; with a large reserve its graphed levels sit far from where
//! it alerts. Here the total is used + free too, so a graph's levels are
//! exactly where the check alerts.
//!
//! The summary lists every filesystem when all are OK, only the failing
//! ones otherwise, at most [`SUMMARY_MAX`]; the long output lists all.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;

use super::args::{self, Command, Limit, LimitPair, Spec};
use super::{BuiltinError, Outcome, floor_percent, human_bytes, io_error_text, percent, perf};
use crate::state::State;

pub(super) const NAME: &str = "disk";
pub(super) const USAGE: &str = "builtin:disk [-w LIMIT] [-c LIMIT] [-W PCT%] [-K PCT%] \
                                [-p PATH]... [-x PATH]... [-X FSTYPE]...";
const PREFIX: &str = "DISK";
const COMMAND: Command = Command {
    name: NAME,
    usage: USAGE,
    specs: &[
        Spec::value('w', "warning"),
        Spec::value('c', "critical"),
        Spec::value('W', "iwarning"),
        Spec::value('K', "icritical"),
        Spec::value('p', "path"),
        Spec::value('x', "exclude_device"),
        Spec::value('X', "exclude-type"),
    ],
};

const MOUNTINFO: &str = "/proc/self/mountinfo";

const DEFAULT_WARNING: Limit = Limit::Percent(20.0);
const DEFAULT_CRITICAL: Limit = Limit::Percent(10.0);
const DEFAULT_INODE_WARNING: Limit = Limit::Percent(10.0);
const DEFAULT_INODE_CRITICAL: Limit = Limit::Percent(5.0);

/// The most filesystems the summary names; the long output has them all.
const SUMMARY_MAX: usize = 8;

/// Filesystem types never discovered (see the module docs for the reasons).
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

/// A parsed `builtin:disk`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Disk {
    space: LimitPair,
    inodes: LimitPair,
    paths: Vec<String>,
    exclude_paths: Vec<String>,
    exclude_types: Vec<String>,
}

impl Disk {
    pub(super) fn parse(args: &[String]) -> Result<Disk, BuiltinError> {
        let (mut warning, mut critical, mut inode_warning, mut inode_critical) =
            (None, None, None, None);
        let mut paths = Vec::new();
        let mut exclude_paths = Vec::new();
        let mut exclude_types = Vec::new();
        for opt in COMMAND.parse(args)? {
            let value = opt.value.to_owned();
            match opt.short {
                'w' => COMMAND.set_once(&mut warning, opt, args::limit_with_text)?,
                'c' => COMMAND.set_once(&mut critical, opt, args::limit_with_text)?,
                'W' => COMMAND.set_once(&mut inode_warning, opt, args::percent_limit_with_text)?,
                'K' => COMMAND.set_once(&mut inode_critical, opt, args::percent_limit_with_text)?,
                short if value.is_empty() => {
                    return Err(COMMAND.bad_value(short, "the value is empty"));
                }
                'p' if !paths.contains(&value) => paths.push(value),
                'p' => {}
                'x' => exclude_paths.push(value),
                _ => exclude_types.push(value),
            }
        }
        let (warning, critical) =
            args::check_limit_order(&COMMAND, (warning, critical), ('w', 'c'))?;
        let (inode_warning, inode_critical) =
            args::check_limit_order(&COMMAND, (inode_warning, inode_critical), ('W', 'K'))?;
        Ok(Disk {
            space: args::or_defaults(warning, critical, || (DEFAULT_WARNING, DEFAULT_CRITICAL)),
            inodes: args::or_defaults(inode_warning, inode_critical, || {
                (DEFAULT_INODE_WARNING, DEFAULT_INODE_CRITICAL)
            }),
            paths,
            exclude_paths,
            exclude_types,
        })
    }

    pub(super) fn run(&self) -> Outcome {
        let mut notes = Vec::new();
        let filesystems: Vec<Filesystem> = if self.paths.is_empty() {
            // Bytes, not text: mount points need not be UTF-8.
            let mountinfo = match std::fs::read(MOUNTINFO) {
                Ok(bytes) => bytes,
                Err(error) => {
                    let error = io_error_text(&error);
                    return Outcome::unknown(PREFIX, format!("cannot read {MOUNTINFO}: {error}"));
                }
            };
            let mounts = self.select(&mountinfo, is_file);
            mounts.iter().filter_map(|mount| measure_mount(mount, &mut notes)).collect()
        } else {
            self.paths.iter().map(|path| measure(path)).collect()
        };
        self.evaluate(&filesystems, &notes)
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

    /// The result for these filesystems, with `notes` (skipped mounts) at
    /// the end of the long output.
    fn evaluate(&self, filesystems: &[Filesystem], notes: &[String]) -> Outcome {
        if filesystems.is_empty() {
            let mut outcome = Outcome::unknown(
                PREFIX,
                "no filesystem to check (all excluded, or none mounted but pseudo filesystems)",
            );
            outcome.long_output = notes.join("\n");
            return outcome;
        }
        let states: Vec<State> = filesystems.iter().map(|fs| self.state_of(fs)).collect();
        let state = states.iter().copied().fold(State::Ok, State::worst);

        let shown: Vec<&Filesystem> = filesystems
            .iter()
            .zip(&states)
            .filter(|(_, fs_state)| state == State::Ok || fs_state.is_problem())
            .map(|(fs, _)| fs)
            .collect();
        let mut outcome = Outcome::new(PREFIX, state, summary_text(&shown));

        outcome.perfdata = filesystems
            .iter()
            .filter_map(|fs| {
                let usage = fs.usage.as_ref().ok()?;
                let threshold = |limit: Option<Limit>| {
                    limit.map(|limit| limit.used_threshold(usage.total).to_string())
                };
                Some(perf(
                    fs.label.clone(),
                    usage.used as f64,
                    "B",
                    (threshold(self.space.0), threshold(self.space.1)),
                    Some(0.0),
                    Some(usage.total as f64),
                ))
            })
            .collect();

        if filesystems.len() > 1 || !notes.is_empty() {
            let mut lines: Vec<String> = filesystems
                .iter()
                .zip(&states)
                .map(|(fs, fs_state)| format!("{}: {}", fs_state.label(), fs.detail()))
                .collect();
            lines.extend(notes.iter().cloned());
            outcome.long_output = lines.join("\n");
        }
        outcome
    }

    fn state_of(&self, fs: &Filesystem) -> State {
        let Ok(usage) = &fs.usage else {
            return State::Critical;
        };
        let level = |(warning, critical): LimitPair, free, total| {
            let below = |limit: Option<Limit>| limit.is_some_and(|limit| limit.alerts(free, total));
            if below(critical) {
                State::Critical
            } else if below(warning) {
                State::Warning
            } else {
                State::Ok
            }
        };
        let space = level(self.space, usage.avail, usage.total);
        let inodes =
            usage.inodes.map_or(State::Ok, |inodes| level(self.inodes, inodes.avail, inodes.total));
        space.worst(inodes)
    }
}

/// `/nope is not accessible: …; free space: / 81104 MiB (87% inode=97%);`
fn summary_text(shown: &[&Filesystem]) -> String {
    let listed = &shown[..shown.len().min(SUMMARY_MAX)];
    let mut parts: Vec<String> = listed
        .iter()
        .filter_map(|fs| {
            fs.usage.as_ref().err().map(|error| format!("{} is not accessible: {error}", fs.label))
        })
        .collect();
    let measured: Vec<String> = listed
        .iter()
        .filter_map(|fs| fs.usage.as_ref().ok().map(|usage| (fs, usage)))
        .map(|(fs, usage)| {
            let mut text = format!(
                "{} {} MiB ({}%",
                fs.label,
                usage.avail / (1024 * 1024),
                floor_percent(percent(usage.avail, usage.total))
            );
            if let Some(inodes) = usage.inodes {
                let _ =
                    write!(text, " inode={}%", floor_percent(percent(inodes.avail, inodes.total)));
            }
            text.push_str(");");
            text
        })
        .collect();
    if !measured.is_empty() {
        parts.push(format!("free space: {}", measured.join(" ")));
    }
    let mut text = parts.join("; ");
    if shown.len() > listed.len() {
        let _ = write!(text, " (and {} more)", shown.len() - listed.len());
    }
    text
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
struct Filesystem {
    label: String,
    /// `ext4 /dev/vda`, for discovered mounts.
    about: Option<String>,
    usage: Result<Usage, String>,
}

impl Filesystem {
    /// A long-output line: `/ 79.2 GiB free of 92.5 GiB (85%), inodes 97% free (ext4 /dev/vda)`.
    fn detail(&self) -> String {
        let mut text = match &self.usage {
            Err(error) => format!("{} is not accessible: {error}", self.label),
            Ok(usage) => {
                let mut text = format!(
                    "{} {} free of {} ({}%)",
                    self.label,
                    human_bytes(usage.avail),
                    human_bytes(usage.total),
                    floor_percent(percent(usage.avail, usage.total))
                );
                if let Some(inodes) = usage.inodes {
                    let free = floor_percent(percent(inodes.avail, inodes.total));
                    let _ = write!(text, ", inodes {free}% free");
                }
                text
            }
        };
        if let Some(about) = &self.about {
            let _ = write!(text, " ({about})");
        }
        text
    }
}

/// Space and inodes of one filesystem, in `check_disk`'s terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Usage {
    /// Used + available: the space a non-root user sees.
    total: u64,
    /// Bytes in use (blocks − free blocks).
    used: u64,
    /// Bytes available to non-root users.
    avail: u64,
    /// `None` when the filesystem has no fixed inode count (btrfs, vfat).
    inodes: Option<Inodes>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Inodes {
    total: u64,
    avail: u64,
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
    use crate::builtin::BuiltinErrorKind;

    const GIB: u64 = 1 << 30;

    fn disk(args: &[&str]) -> Disk {
        try_disk(args).unwrap()
    }

    fn try_disk(args: &[&str]) -> Result<Disk, BuiltinError> {
        let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
        Disk::parse(&args)
    }

    fn usage(total: u64, avail: u64, inodes: Option<(u64, u64)>) -> Usage {
        Usage {
            total,
            used: total - avail,
            avail,
            inodes: inodes.map(|(total, avail)| Inodes { total, avail }),
        }
    }

    fn fs(label: &str, usage: Usage) -> Filesystem {
        Filesystem { label: label.to_owned(), about: None, usage: Ok(usage) }
    }

    fn rendered(outcome: &Outcome) -> Vec<String> {
        outcome.perfdata.iter().map(ToString::to_string).collect()
    }

    fn paths(mounts: &[Mount]) -> Vec<String> {
        mounts.iter().map(Mount::label).collect()
    }

    fn no_files(_: &Path) -> bool {
        false
    }

    #[test]
    fn all_ok_lists_every_filesystem() {
        let filesystems = [
            fs("/", usage(100 * GIB, 87 * GIB, Some((1000, 975)))),
            fs("/boot", usage(1000 * 1024 * 1024, 800 * 1024 * 1024, Some((100, 99)))),
        ];
        let outcome = disk(&[]).evaluate(&filesystems, &[]);
        assert_eq!(outcome.state, State::Ok);
        assert_eq!(
            outcome.summary,
            "DISK OK - free space: / 89088 MiB (87% inode=97%); /boot 800 MiB (80% inode=99%);"
        );
        assert_eq!(
            rendered(&outcome),
            [
                "/=13958643712B;85899345920;96636764160;0;107374182400",
                "/boot=209715200B;838860800;943718400;0;1048576000",
            ]
        );
        assert_eq!(
            outcome.long_output,
            "OK: / 87.0 GiB free of 100.0 GiB (87%), inodes 97% free\n\
             OK: /boot 800.0 MiB free of 1000.0 MiB (80%), inodes 99% free"
        );
    }

    #[test]
    fn one_filesystem_has_no_long_output() {
        let outcome = disk(&["-p", "/"]).evaluate(&[fs("/", usage(100, 50, None))], &[]);
        assert_eq!(outcome.summary, "DISK OK - free space: / 0 MiB (50%);");
        assert_eq!(outcome.long_output, "");
        assert_eq!(rendered(&outcome), ["/=50B;80;90;0;100"]);
    }

    #[test]
    fn a_problem_shows_only_the_failing_filesystems() {
        let filesystems = [
            fs("/", usage(100 * GIB, 50 * GIB, None)),
            fs("/data", usage(100 * GIB, 15 * GIB, None)),
            fs("/var", usage(100 * GIB, 5 * GIB, Some((100, 50)))),
        ];
        let outcome = disk(&[]).evaluate(&filesystems, &[]);
        assert_eq!(outcome.state, State::Critical);
        assert_eq!(
            outcome.summary,
            "DISK CRITICAL - free space: /data 15360 MiB (15%); /var 5120 MiB (5% inode=50%);"
        );
        assert_eq!(rendered(&outcome).len(), 3);
        assert_eq!(
            outcome.long_output,
            "OK: / 50.0 GiB free of 100.0 GiB (50%)\n\
             WARNING: /data 15.0 GiB free of 100.0 GiB (15%)\n\
             CRITICAL: /var 5.0 GiB free of 100.0 GiB (5%), inodes 50% free"
        );
    }

    #[test]
    fn limits_are_strictly_below() {
        let check = disk(&[]);
        let state = |avail| check.state_of(&fs("/", usage(100, avail, None)));
        assert_eq!(state(20), State::Ok);
        assert_eq!(state(19), State::Warning);
        assert_eq!(state(10), State::Warning);
        assert_eq!(state(9), State::Critical);
    }

    #[test]
    fn inode_limits() {
        let check = disk(&["-W", "20%", "-K", "10%"]);
        let state =
            |inodes_avail| check.state_of(&fs("/", usage(100, 90, Some((1000, inodes_avail)))));
        assert_eq!(state(200), State::Ok);
        assert_eq!(state(199), State::Warning);
        assert_eq!(state(99), State::Critical);
        // Defaults: 10% and 5%.
        let state =
            |inodes_avail| disk(&[]).state_of(&fs("/", usage(100, 90, Some((1000, inodes_avail)))));
        assert_eq!(state(100), State::Ok);
        assert_eq!(state(99), State::Warning);
        assert_eq!(state(49), State::Critical);
        // No inode count: not checked.
        assert_eq!(disk(&[]).state_of(&fs("/", usage(100, 90, None))), State::Ok);
    }

    #[test]
    fn size_limits() {
        let check = disk(&["-w", "2GB", "-c", "500MB", "-p", "/"]);
        let outcome = check.evaluate(&[fs("/", usage(10 * GIB, GIB, None))], &[]);
        assert_eq!(outcome.state, State::Warning);
        assert_eq!(outcome.summary, "DISK WARNING - free space: / 1024 MiB (10%);");
        assert_eq!(rendered(&outcome), ["/=9663676416B;8589934592;10213130240;0;10737418240"]);
        let critical = check.evaluate(&[fs("/", usage(10 * GIB, 400 * 1024 * 1024, None))], &[]);
        assert_eq!(critical.state, State::Critical);
    }

    #[test]
    fn one_limit_alone() {
        let outcome = disk(&["-c", "5%"]).evaluate(&[fs("/", usage(100, 6, None))], &[]);
        assert_eq!(outcome.state, State::Ok);
        assert_eq!(rendered(&outcome), ["/=94B;;95;0;100"]);
    }

    #[test]
    fn inaccessible_path_is_critical() {
        let filesystems = [
            Filesystem {
                label: "/nope".to_owned(),
                about: None,
                usage: Err("No such file or directory".to_owned()),
            },
            fs("/", usage(100 * GIB, 50 * GIB, None)),
        ];
        let outcome = disk(&[]).evaluate(&filesystems[..1], &[]);
        assert_eq!(outcome.state, State::Critical);
        assert_eq!(
            outcome.summary,
            "DISK CRITICAL - /nope is not accessible: No such file or directory"
        );
        assert!(outcome.perfdata.is_empty());

        let both = [filesystems[0].clone(), fs("/tmp", usage(100, 1, None))];
        let outcome = disk(&[]).evaluate(&both, &[]);
        assert_eq!(
            outcome.summary,
            "DISK CRITICAL - /nope is not accessible: No such file or directory; \
             free space: /tmp 0 MiB (1%);"
        );
        assert_eq!(rendered(&outcome), ["/tmp=99B;80;90;0;100"]);
    }

    #[test]
    fn nonexistent_path_on_this_machine() {
        let outcome = disk(&["-p", "/nonexistent/monchero"]).run();
        assert_eq!(outcome.state, State::Critical);
        assert_eq!(
            outcome.summary,
            "DISK CRITICAL - /nonexistent/monchero is not accessible: No such file or directory"
        );
    }

    #[test]
    fn long_summaries_are_capped() {
        let filesystems: Vec<Filesystem> =
            (0..10).map(|n| fs(&format!("/d{n}"), usage(100, 50, None))).collect();
        let outcome = disk(&[]).evaluate(&filesystems, &[]);
        assert!(outcome.summary.ends_with("/d7 0 MiB (50%); (and 2 more)"), "{}", outcome.summary);
        assert_eq!(outcome.long_output.lines().count(), 10);
        assert_eq!(outcome.perfdata.len(), 10);
    }

    #[test]
    fn nothing_to_check_is_unknown() {
        let notes = ["skipped /run/user/1000/gvfs: Permission denied".to_owned()];
        let outcome = disk(&[]).evaluate(&[], &notes);
        assert_eq!(outcome.state, State::Unknown);
        assert_eq!(
            outcome.summary,
            "DISK UNKNOWN - no filesystem to check (all excluded, or none mounted but pseudo filesystems)"
        );
        assert_eq!(outcome.long_output, notes[0]);
    }

    #[test]
    fn notes_go_to_the_long_output() {
        let notes = ["skipped /x: Permission denied".to_owned()];
        let outcome = disk(&[]).evaluate(&[fs("/", usage(100, 50, None))], &notes);
        assert_eq!(
            outcome.long_output,
            "OK: / 50 B free of 100 B (50%)\nskipped /x: Permission denied"
        );
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
        let mounts = disk(&[]).select(MOUNTINFO_FIXTURE.as_bytes(), no_files);
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
        assert_eq!(paths(&disk(&[]).select(text.as_bytes(), no_files)), ["/", "/srv"]);
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
        assert_eq!(paths(&disk(&[]).select(text.as_bytes(), hosts_is_a_file)), ["/", "/data"]);
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
        let check = disk(&["-x", "/boot", "-X", "vfat", "-X", "btrfs", "-x", "/mnt/my disk"]);
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
    fn options() {
        let check = disk(&["-p", "/", "-p", "/var", "-p", "/", "--path=/srv"]);
        assert_eq!(check.paths, ["/", "/var", "/srv"]);
        assert_eq!(check.space, (Some(DEFAULT_WARNING), Some(DEFAULT_CRITICAL)));
        assert_eq!(check.inodes, (Some(Limit::Percent(10.0)), Some(Limit::Percent(5.0))));
        let check = disk(&["-w", "15%", "-c", "1GB", "-K", "2%"]);
        assert_eq!(check.space, (Some(Limit::Percent(15.0)), Some(Limit::Bytes(GIB))));
        assert_eq!(check.inodes, (None, Some(Limit::Percent(2.0))));
        let check = disk(&["--exclude_device", "/boot", "--exclude-type=vfat"]);
        assert_eq!(
            (check.exclude_paths.as_slice(), check.exclude_types.as_slice()),
            (&["/boot".to_owned()][..], &["vfat".to_owned()][..])
        );
    }

    #[test]
    fn bad_options() {
        let message = |args: &[&str]| try_disk(args).unwrap_err().to_string();
        assert_eq!(
            message(&["-w", "20"]),
            r#"builtin:disk: -w: "20" is not a percentage or size (write 20% or 500MB)"#
        );
        assert_eq!(
            message(&["-W", "500MB"]),
            r#"builtin:disk: -W: "500MB" is not a percentage (write e.g. 20%)"#
        );
        assert_eq!(
            message(&["-W", "5%", "-K", "10%"]),
            "builtin:disk: -W 5% leaves less free space than -K 10%: \
             the warning limit must be the larger one"
        );
        assert_eq!(message(&["-p", ""]), "builtin:disk: -p: the value is empty");
        assert_eq!(try_disk(&["-p"]).unwrap_err().kind(), BuiltinErrorKind::MissingValue);
        assert_eq!(try_disk(&["/"]).unwrap_err().kind(), BuiltinErrorKind::UnexpectedArgument);
        assert_eq!(try_disk(&["-u", "GB"]).unwrap_err().kind(), BuiltinErrorKind::UnknownOption);
    }

    #[test]
    fn smoke_root_on_this_machine() {
        let outcome = disk(&["-p", "/"]).run();
        assert_ne!(outcome.state, State::Unknown, "{}", outcome.summary);
        assert!(outcome.summary.starts_with("DISK "), "{}", outcome.summary);
        assert!(outcome.summary.contains("free space: / "), "{}", outcome.summary);
        assert_eq!(outcome.perfdata.len(), 1);
        let root = &outcome.perfdata[0];
        assert_eq!((root.label.as_str(), root.uom.as_deref()), ("/", Some("B")));
        assert!(root.value.unwrap() <= root.max.unwrap());
        assert!(root.warn.is_some() && root.crit.is_some());
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

    #[test]
    fn smoke_discovery_on_this_machine() {
        let outcome = disk(&[]).run();
        assert_ne!(outcome.state, State::Unknown, "{}", outcome.summary);
        assert!(outcome.perfdata.iter().any(|item| item.label == "/"), "{outcome:?}");
        for item in &outcome.perfdata {
            assert!(!item.label.starts_with("/proc") && !item.label.starts_with("/sys"), "{item}");
        }
    }
}
