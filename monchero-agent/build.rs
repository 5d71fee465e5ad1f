//! Puts the git commit and the build date into the environment of the
//! compilation, for `monchero --version`: `MONCHERO_GIT_COMMIT` and
//! `MONCHERO_BUILD_DATE`.
//!
//! A build from a release tarball, or without git installed, says
//! "unknown" for the commit rather than failing. The date honours
//! SOURCE_DATE_EPOCH (<https://reproducible-builds.org/specs/source-date-epoch/>)
//! so that two builds of the same source give the same binary.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    // The workspace root holds .git; the agent crate is one level down.
    let root = manifest_dir.parent().map_or_else(|| manifest_dir.clone(), Path::to_path_buf);
    let commit = git_commit(&root).unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=MONCHERO_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=MONCHERO_BUILD_DATE={}", build_date());
}

/// The abbreviated commit of `root`'s checkout, or `None` when `root` is
/// not the top of a git work tree (a tarball unpacked inside some other
/// repository must not report that repository's commit).
fn git_commit(root: &Path) -> Option<String> {
    let toplevel = git(root, &["rev-parse", "--show-toplevel"])?;
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if !same(Path::new(&toplevel), root) {
        return None;
    }
    // Rebuild when HEAD moves: a commit, a checkout, a fetch that rewrites
    // packed refs. Only existing files: a missing one would make cargo
    // rerun this script on every build.
    let mut watched = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    if let Some(branch) = git(root, &["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    for name in watched {
        if let Some(path) = git(root, &["rev-parse", "--git-path", &name]) {
            let path = root.join(path);
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
    // Nine characters, as cargo and rustc print theirs: a fixed length
    // keeps the text stable as the repository grows.
    git(root, &["rev-parse", "--short=9", "HEAD"])
}

/// Runs git in `dir`; its trimmed stdout when it succeeded with some.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git").arg("-C").arg(dir).args(args).output().ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// The UTC date of the build, YYYY-MM-DD: SOURCE_DATE_EPOCH's when set.
fn build_date() -> String {
    let epoch = std::env::var("SOURCE_DATE_EPOCH").ok().filter(|value| !value.trim().is_empty());
    let secs = match epoch {
        // The specification asks builds to fail on a malformed value rather
        // than silently fall back to the clock.
        Some(value) => match value.trim().parse::<i64>() {
            Ok(secs) => secs,
            Err(error) => panic!("SOURCE_DATE_EPOCH={value:?} is not a number of seconds: {error}"),
        },
        None => match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(since) => i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
            Err(_) => return "unknown".to_owned(),
        },
    };
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    format!("{year:04}-{month:02}-{day:02}")
}

/// The proleptic Gregorian date of a day counted from 1970-01-01
/// (Howard Hinnant's `civil_from_days`): no date crate for one line.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}
