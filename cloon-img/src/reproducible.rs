//! `--reproducible`: the same input gives the same image, byte for byte.
//!
//! What varies from one `mkfs.ext4 -d` to the next, and how each is fixed:
//! - the filesystem's UUID and its directory hash seed: `-U` and `-E hash_seed=`, both derived
//!   from a digest of the tree's content (or `--uuid`);
//! - the superblock's and the special inodes' times: `E2FSPROGS_FAKE_TIME`;
//! - each file's access and modification times, which `-d` copies: set to `SOURCE_DATE_EPOCH`
//!   (1 when unset) in the staging tree first;
//! - each file's change time (ctime), which `-d` copies too (e2fsprogs 1.47) but no system call
//!   can set, and its access time, which reading the tree may change again: both rewritten
//!   afterwards in every inode in use with `debugfs -w` (`sif <N> ctime T`, `sif <N> atime T`),
//!   the inodes in use read from `dumpe2fs`.
//!
//! mkfs.ext4 walks directories in sorted order, so the rest of the layout follows from these.

use cloon_core::progress::Progress;
use cloon_core::{explain, host, Code, Context, Error, Result};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::process::{Command, Stdio};

/// What makes the image reproducible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Every time in the image (seconds since 1970).
    pub epoch: u64,
    /// The filesystem UUID.
    pub uuid: String,
    /// The seed of the directories' hash trees.
    pub hash_seed: String,
}

/// The time used when `SOURCE_DATE_EPOCH` is not set: one second after 1970 began (e2fsprogs
/// takes `E2FSPROGS_FAKE_TIME=0` as no fake time at all).
pub const DEFAULT_EPOCH: u64 = 1;

/// The time of every file: `SOURCE_DATE_EPOCH` (reproducible-builds.org), else [`DEFAULT_EPOCH`].
pub fn epoch() -> Result<u64> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Err(_) => Ok(DEFAULT_EPOCH),
        Ok(v) => match v.trim().parse::<u64>() {
            Ok(0) | Err(_) => Err(Error::invalid(format!(
                "SOURCE_DATE_EPOCH={v:?} is not a number of seconds since 1970 of at least 1"
            ))),
            Ok(n) => Ok(n),
        },
    }
}

/// Checks a `--uuid` value (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, hexadecimal), lower-cased.
pub fn parse_uuid(text: &str) -> std::result::Result<String, String> {
    let t = text.trim().to_ascii_lowercase();
    let groups: Vec<&str> = t.split('-').collect();
    let ok = groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()));
    if ok {
        Ok(t)
    } else {
        Err(format!(
            "--uuid {text:?} is not a UUID: write it as 01234567-89ab-cdef-0123-456789abcdef"
        ))
    }
}

/// A UUID made of 16 bytes of a digest, marked as version 8 (custom) of variant 1.
pub fn uuid_from(bytes: &[u8]) -> String {
    let mut b = [0u8; 16];
    b.copy_from_slice(&bytes[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// The settings for the tree in `dir`: the UUID given, or one derived from the tree's digest; the
/// hash seed derived from the UUID.
pub fn settings(dir: &Path, uuid: Option<&str>, epoch: u64) -> Result<Settings> {
    let uuid = match uuid {
        Some(u) => u.to_string(),
        None => {
            explain::note("the UUID is derived from a SHA-256 of the files' names, types, modes, owners and contents");
            if !explain::acting() {
                explain::note("dry run: the files are not there to digest; this script uses the UUID 00000000-0000-8000-8000-000000000000");
                "00000000-0000-8000-8000-000000000000".to_string()
            } else {
                uuid_from(&tree_digest(dir)?)
            }
        }
    };
    let hash_seed = uuid_from(&Sha256::digest(
        format!("cloon hash seed {uuid}").as_bytes(),
    ));
    Ok(Settings {
        epoch,
        uuid,
        hash_seed,
    })
}

fn sorted_entries(dir: &Path) -> Result<Vec<std::fs::DirEntry>> {
    let mut entries = std::fs::read_dir(dir)
        .context(|| format!("cannot list {}", dir.display()))?
        .collect::<std::io::Result<Vec<_>>>()
        .context(|| format!("cannot list {}", dir.display()))?;
    entries.sort_by_key(|e| e.file_name());
    Ok(entries)
}

/// A SHA-256 of the tree in `dir`: for each entry in sorted order, its path, type, mode, owner,
/// device number, size, link target and content; times are left out.
pub fn tree_digest(dir: &Path) -> Result<[u8; 32]> {
    let progress = Progress::start(&format!("{}: digest of the files", crate::STAGE), None);
    let mut hasher = Sha256::new();
    let mut stack = vec![dir.to_path_buf()];
    let mut buf = vec![0u8; 1 << 16];
    while let Some(d) = stack.pop() {
        let mut subdirs = Vec::new();
        for entry in sorted_entries(&d)? {
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path)
                .context(|| format!("cannot read {}", path.display()))?;
            let rel = path.strip_prefix(dir).unwrap_or(&path);
            let ft = meta.file_type();
            let kind = if ft.is_dir() {
                'd'
            } else if ft.is_symlink() {
                'l'
            } else if ft.is_file() {
                'f'
            } else if ft.is_char_device() {
                'c'
            } else if ft.is_block_device() {
                'b'
            } else if ft.is_fifo() {
                'p'
            } else {
                's'
            };
            hasher.update(format!(
                "{}\0{kind} {:o} {} {} {} {}\0",
                rel.display(),
                meta.mode(),
                meta.uid(),
                meta.gid(),
                meta.rdev(),
                meta.len()
            ));
            if ft.is_symlink() {
                let target = std::fs::read_link(&path)
                    .context(|| format!("cannot read {}", path.display()))?;
                hasher.update(target.as_os_str().as_encoded_bytes());
            } else if ft.is_file() {
                let mut f = std::fs::File::open(&path)
                    .context(|| format!("cannot read {}", path.display()))?;
                loop {
                    let n = f
                        .read(&mut buf)
                        .context(|| format!("cannot read {}", path.display()))?;
                    if n == 0 {
                        break;
                    }
                    hasher.update(&buf[..n]);
                    progress.add(n as u64);
                }
            } else if ft.is_dir() {
                subdirs.push(path);
            }
        }
        // Depth first, in sorted order.
        stack.extend(subdirs.into_iter().rev());
    }
    Ok(hasher.finalize().into())
}

/// Sets the access and modification times of every file under `dir` (`dir` too, links
/// themselves rather than their targets) to `epoch`.
pub fn set_times(dir: &Path, epoch: u64) -> Result<()> {
    use nix::sys::stat::{utimensat, UtimensatFlags};
    use nix::sys::time::TimeSpec;
    let line = format!(
        "find {} -exec touch --no-dereference --date=@{epoch} {{}} +",
        explain::quote(&dir.to_string_lossy())
    );
    if !explain::shell(&line) {
        return Ok(());
    }
    let t = TimeSpec::new(i64::try_from(epoch).unwrap_or(i64::MAX), 0);
    let mut stack = vec![dir.to_path_buf()];
    let mut dirs = Vec::new();
    while let Some(d) = stack.pop() {
        for entry in sorted_entries(&d)? {
            let path = entry.path();
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if is_dir {
                stack.push(path);
            } else {
                utimensat(
                    nix::fcntl::AT_FDCWD,
                    &path,
                    &t,
                    &t,
                    UtimensatFlags::NoFollowSymlink,
                )
                .context(|| format!("cannot set the times of {}", path.display()))?;
            }
        }
        dirs.push(d);
    }
    // Directories last: setting their entries' times does not change them, but be plain.
    for d in dirs {
        utimensat(
            nix::fcntl::AT_FDCWD,
            &d,
            &t,
            &t,
            UtimensatFlags::NoFollowSymlink,
        )
        .context(|| format!("cannot set the times of {}", d.display()))?;
    }
    Ok(())
}

/// The inodes in use that carry a file (the root and those from the first ordinary inode on),
/// from the output of `dumpe2fs` (its `Inodes per group`, `First inode` and each group's
/// `Free inodes` ranges).
pub fn used_inodes(dumpe2fs: &str) -> Vec<u64> {
    let field = |name: &str| {
        dumpe2fs
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    let (Some(per_group), Some(first)) = (field("Inodes per group:"), field("First inode:")) else {
        return Vec::new();
    };
    let mut used = Vec::new();
    let mut group: Option<u64> = None;
    for line in dumpe2fs.lines() {
        if let Some(rest) = line.strip_prefix("Group ") {
            group = rest.split(':').next().and_then(|g| g.trim().parse().ok());
            continue;
        }
        let (Some(g), Some(free)) = (group, line.trim_start().strip_prefix("Free inodes: ")) else {
            continue;
        };
        if !line.starts_with("  ") {
            continue;
        }
        let (lo, hi) = (g * per_group + 1, (g + 1) * per_group);
        let mut free_ranges = Vec::new();
        for range in free.split(',').map(str::trim).filter(|r| !r.is_empty()) {
            let (a, b) = range.split_once('-').unwrap_or((range, range));
            if let (Ok(a), Ok(b)) = (a.parse::<u64>(), b.parse::<u64>()) {
                free_ranges.push((a, b));
            }
        }
        for ino in lo..=hi {
            let free = free_ranges.iter().any(|&(a, b)| (a..=b).contains(&ino));
            if !free && (ino == 2 || ino >= first) {
                used.push(ino);
            }
        }
        group = None;
    }
    used
}

/// The same selection as [`used_inodes`], in awk, printing a `debugfs` request per inode: what
/// `--explain` says.
const AWK: &str = r#"/^Inodes per group:/ { ipg = $4 } /^First inode:/ { first = $3 }
/^Group [0-9]+:/ { g = $2; sub(/:/, "", g) }
/^  Free inodes:/ { split("", free); s = $0; sub(/^  Free inodes: */, "", s); n = split(s, r, /, */)
  for (k = 1; k <= n; k++) { m = split(r[k], e, "-"); b = (m > 1) ? e[2] : e[1]; for (i = e[1]; i <= b; i++) free[i] = 1 }
  for (i = g * ipg + 1; i <= (g + 1) * ipg; i++) if (!(i in free) && (i == 2 || i >= first)) { print "sif <" i "> ctime " t; print "sif <" i "> atime " t } }"#;

/// Rewrites the change and access times of every file of the ext4 image `file` to `epoch`.
pub fn fix_ctimes(file: &Path, epoch: u64) -> Result<()> {
    let dumpe2fs = host::require_program("dumpe2fs", "e2fsprogs")?;
    let debugfs = host::require_program("debugfs", "e2fsprogs")?;
    let img = explain::quote(&file.to_string_lossy());
    explain::note("mkfs.ext4 -d copied each file's change time, which no system call sets, and access time: rewrite both in every inode in use");
    let line = format!(
        "E2FSPROGS_FAKE_TIME={epoch} {} {img} 2>/dev/null | awk -v t={epoch} {} | E2FSPROGS_FAKE_TIME={epoch} {} -w -f - {img} >/dev/null",
        explain::program(&dumpe2fs),
        explain::quote(AWK),
        explain::program(&debugfs),
    );
    if !explain::shell(&line) {
        return Ok(());
    }
    let progress = Progress::start(&format!("{}: setting the files' times", crate::STAGE), None);
    let mut cmd = Command::new(&dumpe2fs);
    cmd.arg(file)
        .env("E2FSPROGS_FAKE_TIME", epoch.to_string())
        .stdin(Stdio::null())
        .stderr(Stdio::null());
    crate::leftovers::die_with_parent(&mut cmd);
    let out = cmd.output().context(|| "cannot run dumpe2fs".into())?;
    if !out.status.success() {
        return Err(Error::new(
            Code::Io,
            format!("dumpe2fs {} failed", file.display()),
        ));
    }
    let inodes = used_inodes(&String::from_utf8_lossy(&out.stdout));
    let script: String = inodes
        .iter()
        .map(|i| format!("sif <{i}> ctime {epoch}\nsif <{i}> atime {epoch}\n"))
        .collect();
    let mut cmd = Command::new(&debugfs);
    cmd.args(["-w", "-f", "-"])
        .arg(file)
        .env("E2FSPROGS_FAKE_TIME", epoch.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    crate::leftovers::die_with_parent(&mut cmd);
    let mut child = cmd.spawn().context(|| "cannot run debugfs".into())?;
    let written = child
        .stdin
        .take()
        .map(|mut s| s.write_all(script.as_bytes()));
    let out = child
        .wait_with_output()
        .context(|| "cannot run debugfs".into())?;
    drop(progress);
    let said = String::from_utf8_lossy(&out.stderr);
    // debugfs says its version on stderr, and the errors of its requests.
    let errors: Vec<&str> = said
        .lines()
        .filter(|l| !l.starts_with("debugfs ") && !l.trim().is_empty())
        .collect();
    if !out.status.success() || !errors.is_empty() || !matches!(written, Some(Ok(()))) {
        return Err(Error::new(
            Code::Io,
            format!(
                "debugfs could not set the change times in {}",
                file.display()
            ),
        )
        .details(errors.join(" | ")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DUMP: &str = "Filesystem volume name:   cloon\nInodes per group:         2048\nFirst inode:              11\n\n\nGroup 0: (Blocks 1-8192) csum 0xd771 [ITABLE_ZEROED]\n  Primary superblock at 1, Group descriptors at 2-2\n  Free inodes: 16-20, 23-2048\nGroup 1: (Blocks 8193-16383) csum 0xeb33 [INODE_UNINIT, ITABLE_ZEROED]\n  Free inodes: 2049-2050, 2052-4096\n";

    #[test]
    fn inodes_in_use_come_from_the_free_ranges() {
        assert_eq!(used_inodes(DUMP), [2, 11, 12, 13, 14, 15, 21, 22, 2051]);
        assert!(used_inodes("garbage").is_empty());
    }

    #[test]
    fn the_awk_program_says_the_same_inodes() {
        let out = Command::new("awk")
            .args(["-v", "t=7", AWK])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                c.stdin.take().unwrap().write_all(DUMP.as_bytes())?;
                c.wait_with_output()
            })
            .unwrap();
        let expected: String = used_inodes(DUMP)
            .iter()
            .map(|i| format!("sif <{i}> ctime 7\nsif <{i}> atime 7\n"))
            .collect();
        assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
    }

    #[test]
    fn uuids_are_checked_and_derived() {
        assert_eq!(
            parse_uuid("01234567-89AB-cdef-0123-456789abcdef").unwrap(),
            "01234567-89ab-cdef-0123-456789abcdef"
        );
        for bad in [
            "",
            "0123",
            "01234567-89ab-cdef-0123-456789abcdeg",
            "0123456789abcdef0123456789abcdef",
        ] {
            assert!(parse_uuid(bad).is_err(), "{bad}");
        }
        let u = uuid_from(&[0xff; 32]);
        assert_eq!(u, "ffffffff-ffff-8fff-bfff-ffffffffffff");
        assert!(parse_uuid(&u).is_ok());
    }

    #[test]
    fn the_digest_follows_content_not_times() {
        let d = std::env::temp_dir().join(format!("cloon-repro-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("a/b")).unwrap();
        std::fs::write(d.join("a/b/f"), "x").unwrap();
        std::os::unix::fs::symlink("b/f", d.join("a/l")).unwrap();
        let one = tree_digest(&d).unwrap();
        set_times(&d, 1000).unwrap();
        assert_eq!(tree_digest(&d).unwrap(), one);
        let meta = std::fs::symlink_metadata(d.join("a/l")).unwrap();
        assert_eq!(meta.mtime(), 1000);
        assert_eq!(std::fs::metadata(d.join("a")).unwrap().mtime(), 1000);
        std::fs::write(d.join("a/b/f"), "y").unwrap();
        assert_ne!(tree_digest(&d).unwrap(), one);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
