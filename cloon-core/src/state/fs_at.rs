//! The file operations of the state layer, each relative to a directory's file descriptor and
//! none following a symbolic link: a link that another user planted under the state directory
//! makes the operation fail (`ELOOP`), never act on the link's target.
//!
//! Paths below a directory are resolved with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`:
//! no `..` out of it, no link anywhere on the way. Removals walk the tree through directory
//! descriptors (`unlinkat`), so a directory swapped for a link halfway is never entered.

use crate::error::{Code, Error, Result};
use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag, AT_FDCWD};
use nix::sys::stat::{fstat, fstatat, mkdirat, FileStat, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

/// How every path below a state directory is resolved.
fn beneath() -> ResolveFlag {
    ResolveFlag::RESOLVE_BENEATH
        | ResolveFlag::RESOLVE_NO_SYMLINKS
        | ResolveFlag::RESOLVE_NO_MAGICLINKS
}

/// Opens `rel` below the directory `dir` with `flags` (and `mode` when it creates), following no
/// link on the way or at the end.
pub fn open_beneath(
    dir: BorrowedFd<'_>,
    rel: &Path,
    flags: OFlag,
    mode: u32,
) -> nix::Result<OwnedFd> {
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
        .mode(Mode::from_bits_truncate(mode))
        .resolve(beneath());
    loop {
        match openat2(dir, rel, how) {
            Err(Errno::EAGAIN) | Err(Errno::EINTR) => continue,
            other => return other,
        }
    }
}

/// Opens the directory `rel` below `dir` (`.` for `dir` itself).
pub fn open_dir_beneath(dir: BorrowedFd<'_>, rel: &Path) -> nix::Result<OwnedFd> {
    open_beneath(dir, rel, OFlag::O_RDONLY | OFlag::O_DIRECTORY, 0)
}

/// Opens the directory at `path` (an absolute or relative path chosen by the user: the links
/// above its last component are followed, its last component must not be one).
pub fn open_dir(path: &Path) -> nix::Result<OwnedFd> {
    nix::fcntl::open(
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// Makes the directory `leaf` (one component) in `dir`, with `mode`; one already there is fine
/// when it is a directory (not a link to one). One removed between the two looks (by the last
/// holder of a shared record, [`crate::shared`]) is made again.
pub fn mkdir_in(dir: BorrowedFd<'_>, leaf: &str, mode: u32) -> nix::Result<()> {
    for _ in 0..1000 {
        match mkdirat(dir, leaf, Mode::from_bits_truncate(mode)) {
            Err(Errno::EEXIST) => match lstat_in(dir, leaf) {
                Ok(st) if is_dir(&st) => return Ok(()),
                Ok(_) => return Err(Errno::EEXIST),
                Err(Errno::ENOENT) => continue,
                Err(e) => return Err(e),
            },
            other => return other,
        }
    }
    Err(Errno::EAGAIN)
}

/// The status of `leaf` in `dir`, of the link itself when it is one.
pub fn lstat_in(dir: BorrowedFd<'_>, leaf: &str) -> nix::Result<FileStat> {
    fstatat(dir, leaf, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
}

/// Whether a status is a directory's.
pub fn is_dir(st: &FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR
}

/// Whether a status is a symbolic link's.
pub fn is_link(st: &FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK
}

/// The names in the directory `fd` (without `.` and `..`).
pub fn list(fd: BorrowedFd<'_>) -> nix::Result<Vec<String>> {
    let dup = fd
        .try_clone_to_owned()
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0)))?;
    let mut dir = nix::dir::Dir::from_fd(dup)?;
    let mut names = Vec::new();
    for entry in dir.iter() {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name != "." && name != ".." {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Checks that the directory open as `fd` is the caller's own and private (owner the effective
/// user, no access for group or others): a directory another user can write into is one where
/// links can be planted. `what` names it in the error.
pub fn check_private(fd: BorrowedFd<'_>, what: &Path) -> Result<FileStat> {
    let st = fstat(fd).map_err(|e| Error::sys(format!("cannot inspect {}", what.display()), e))?;
    let me = nix::unistd::geteuid().as_raw();
    if st.st_uid != me || st.st_mode & 0o077 != 0 {
        return Err(Error::new(
            Code::InvalidConfig,
            format!(
                "{} is not cloon's to use: it is owned by uid {} with mode {:04o}, and a state \
                 directory must be owned by uid {me} with mode 0700",
                what.display(),
                st.st_uid,
                st.st_mode & 0o7777
            ),
        )
        .details(format!(
            "another user could plant links in it; remove it (or fix it: chown {me} and chmod 700) \
             if it is yours, or choose another --state-dir"
        )));
    }
    Ok(st)
}

/// The error of an operation on `path` that met a link or a missing directory on the way.
pub fn error(what: &str, path: &Path, e: Errno) -> Error {
    match e {
        Errno::ELOOP | Errno::EXDEV | Errno::ENOTDIR => Error::new(
            Code::InvalidConfig,
            format!(
                "cannot {what} {}: a symbolic link (or a file) is in the way, and cloon never \
                 follows links under its state directory",
                path.display()
            ),
        )
        .details("someone else made it: remove the link, then try again"),
        e => Error::sys(format!("cannot {what} {}", path.display()), e),
    }
}

/// Removes `leaf` in `dir` and, when it is a directory, everything in it, without following a
/// link (a link is removed, not its target) and without crossing into another filesystem (a
/// mount point stops the removal with [`Code::TryAgain`]). `shown` names it in errors. What is
/// already gone counts as removed.
pub fn remove_tree_in(dir: BorrowedFd<'_>, leaf: &str, shown: &Path) -> Result<()> {
    let st = match lstat_in(dir, leaf) {
        Err(Errno::ENOENT) => return Ok(()),
        other => other.map_err(|e| error("inspect", shown, e))?,
    };
    let parent = fstat(dir).map_err(|e| error("inspect", shown, e))?;
    remove_entry(dir, leaf, &st, parent.st_dev, shown)
}

fn remove_entry(
    dir: BorrowedFd<'_>,
    leaf: &str,
    st: &FileStat,
    dev: u64,
    shown: &Path,
) -> Result<()> {
    if !is_dir(st) {
        return match unlinkat(dir, leaf, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(error("remove", shown, e)),
        };
    }
    if st.st_dev != dev {
        return Err(Error::new(
            Code::TryAgain,
            format!(
                "{} is a mount point: unmount it, then run down again",
                shown.display()
            ),
        ));
    }
    let sub = match open_dir_beneath(dir, Path::new(leaf)) {
        Err(Errno::ENOENT) => return Ok(()),
        other => other.map_err(|e| error("open", shown, e))?,
    };
    // The directory opened must be the one inspected (not swapped meanwhile).
    let opened = fstat(sub.as_fd()).map_err(|e| error("inspect", shown, e))?;
    if opened.st_ino != st.st_ino || opened.st_dev != st.st_dev {
        return Err(Error::new(
            Code::TryAgain,
            format!(
                "{} changed while it was being removed: run again",
                shown.display()
            ),
        ));
    }
    for name in list(sub.as_fd()).map_err(|e| error("list", shown, e))? {
        let child = shown.join(&name);
        let cst = match lstat_in(sub.as_fd(), &name) {
            Err(Errno::ENOENT) => continue,
            other => other.map_err(|e| error("inspect", &child, e))?,
        };
        remove_entry(sub.as_fd(), &name, &cst, dev, &child)?;
    }
    match unlinkat(dir, leaf, UnlinkatFlags::RemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(error("remove", shown, e)),
    }
}

/// Removes the tree at `path` as [`remove_tree_in`] does: the directories above its last
/// component are the caller's choice (their links are followed), nothing from the last component
/// down is followed.
pub fn remove_tree(path: &Path) -> Result<()> {
    let (Some(parent), Some(leaf)) = (path.parent(), path.file_name()) else {
        return Err(Error::invalid(format!(
            "cannot remove {}: not a removable path",
            path.display()
        )));
    };
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    let fd = match nix::fcntl::open(
        parent,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Err(Errno::ENOENT) => return Ok(()),
        other => other.map_err(|e| error("open", parent, e))?,
    };
    remove_tree_in(fd.as_fd(), &leaf.to_string_lossy(), path)
}

/// Opens the file at `path` for appending, created mode 0600 when missing, never through a link
/// at its last component (the directories above are the state layer's, checked when locked).
pub fn open_append_private(path: &Path) -> Result<File> {
    nix::fcntl::open(
        path,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_APPEND | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )
    .map(File::from)
    .map_err(|e| error("open", path, e))
}

/// Writes `bytes` into a new file `leaf` of `dir`, mode 0600, atomically: an unnamed file is
/// written then linked under its name, which fails with `EEXIST` if the name is taken. Without
/// unnamed files (a filesystem that lacks `O_TMPFILE`), the file is created exclusively, then
/// written.
pub fn create_new(dir: BorrowedFd<'_>, leaf: &str, bytes: &[u8]) -> nix::Result<()> {
    use std::io::Write;
    let write = |fd: OwnedFd| {
        File::from(fd)
            .write_all(bytes)
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0)))
    };
    match open_beneath(
        dir,
        Path::new("."),
        OFlag::O_TMPFILE | OFlag::O_WRONLY,
        0o600,
    ) {
        Ok(fd) => {
            let source = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd));
            let mut file = File::from(fd);
            file.write_all(bytes)
                .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0)))?;
            nix::unistd::linkat(
                AT_FDCWD,
                source.as_str(),
                dir,
                leaf,
                nix::fcntl::AtFlags::AT_SYMLINK_FOLLOW,
            )
        }
        Err(Errno::EOPNOTSUPP | Errno::EISDIR | Errno::EINVAL) => {
            let fd = open_beneath(
                dir,
                Path::new(leaf),
                OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL,
                0o600,
            )?;
            write(fd)
        }
        Err(e) => Err(e),
    }
}

/// Replaces (or creates) the file `leaf` of `dir` with `bytes`, mode 0600: a temporary file
/// `leaf.tmp` is written, then renamed over it.
pub fn replace(dir: BorrowedFd<'_>, leaf: &str, bytes: &[u8]) -> nix::Result<()> {
    use std::io::Write;
    let tmp = format!("{leaf}.tmp");
    let fd = open_beneath(
        dir,
        Path::new(&tmp),
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_TRUNC,
        0o600,
    )?;
    File::from(fd)
        .write_all(bytes)
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0)))?;
    nix::fcntl::renameat(dir, tmp.as_str(), dir, leaf)
}

/// The text of the file `leaf` of `dir`, or `None` when there is none.
pub fn read(dir: BorrowedFd<'_>, leaf: &str) -> nix::Result<Option<String>> {
    use std::io::Read;
    let fd = match open_beneath(dir, Path::new(leaf), OFlag::O_RDONLY, 0) {
        Err(Errno::ENOENT) => return Ok(None),
        other => other?,
    };
    let mut text = String::new();
    File::from(fd)
        .read_to_string(&mut text)
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc_eio())))?;
    Ok(Some(text))
}

fn libc_eio() -> i32 {
    nix::libc::EIO
}

/// Removes the file `leaf` of `dir`; one already gone counts as removed.
pub fn unlink(dir: BorrowedFd<'_>, leaf: &str) -> nix::Result<()> {
    match unlinkat(dir, leaf, UnlinkatFlags::NoRemoveDir) {
        Err(Errno::ENOENT) => Ok(()),
        other => other,
    }
}

/// Removes the directory `leaf` of `dir` if it is empty; `Ok(false)` when it is not (or is gone).
pub fn rmdir_if_empty(dir: BorrowedFd<'_>, leaf: &str) -> nix::Result<bool> {
    match unlinkat(dir, leaf, UnlinkatFlags::RemoveDir) {
        Ok(()) => Ok(true),
        Err(Errno::ENOTEMPTY | Errno::EEXIST | Errno::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn temp(tag: &str) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("cloon-fs-test-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    #[test]
    fn no_link_is_followed_on_the_way_or_at_the_end() {
        let d = temp("links");
        let outside = temp("links-outside");
        std::fs::write(outside.join("f"), "keep").unwrap();
        symlink(&outside, d.join("sub")).unwrap();
        symlink(outside.join("f"), d.join("f")).unwrap();
        let fd = open_dir(&d).unwrap();
        assert_eq!(read(fd.as_fd(), "f").unwrap_err(), Errno::ELOOP);
        assert!(open_beneath(fd.as_fd(), Path::new("sub/f"), OFlag::O_RDONLY, 0).is_err());
        assert!(open_beneath(fd.as_fd(), Path::new("../x"), OFlag::O_RDONLY, 0).is_err());
        assert!(
            replace(fd.as_fd(), "f", b"x").is_ok(),
            "a link is replaced, not written through"
        );
        assert_eq!(std::fs::read_to_string(outside.join("f")).unwrap(), "keep");
        assert_eq!(
            create_new(fd.as_fd(), "sub", b"x").unwrap_err(),
            Errno::EEXIST
        );
        assert!(
            open_dir(&d.join("sub")).is_err(),
            "a link as the last component"
        );
        remove_tree(&d).unwrap();
        assert!(!d.exists());
        assert_eq!(std::fs::read_to_string(outside.join("f")).unwrap(), "keep");
        std::fs::remove_dir_all(&outside).unwrap();
    }

    #[test]
    fn records_are_private_and_atomic() {
        use std::os::unix::fs::PermissionsExt;
        let d = temp("records");
        let fd = open_dir(&d).unwrap();
        create_new(fd.as_fd(), "a.json", b"1").unwrap();
        assert_eq!(
            create_new(fd.as_fd(), "a.json", b"2").unwrap_err(),
            Errno::EEXIST
        );
        assert_eq!(read(fd.as_fd(), "a.json").unwrap().as_deref(), Some("1"));
        replace(fd.as_fd(), "a.json", b"3").unwrap();
        assert_eq!(read(fd.as_fd(), "a.json").unwrap().as_deref(), Some("3"));
        let mode = std::fs::metadata(d.join("a.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(list(fd.as_fd()).unwrap(), ["a.json"]);
        unlink(fd.as_fd(), "a.json").unwrap();
        unlink(fd.as_fd(), "a.json").unwrap();
        assert_eq!(read(fd.as_fd(), "a.json").unwrap(), None);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_directory_open_to_others_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let d = temp("private");
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        let fd = open_dir(&d).unwrap();
        let e = check_private(fd.as_fd(), &d).unwrap_err();
        assert_eq!(e.code, Code::InvalidConfig);
        assert!(e.to_string().contains("mode 0755"), "{e}");
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
        check_private(fd.as_fd(), &d).unwrap();
        std::fs::remove_dir_all(&d).unwrap();
    }
}
