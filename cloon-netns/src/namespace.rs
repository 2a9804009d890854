//! Named network namespaces, made and removed the way `ip netns add` and `ip netns del` do it, but
//! without forking: a thread unshares its network namespace and bind-mounts it on a file under
//! `/run/netns`, a directory made a shared mount so that other mount namespaces see it.

use crate::errors::sys;
use crate::link::Netlink;
use cloon_core::{state, Code, Error, Result};
use nix::errno::Errno;
use nix::fcntl::{open, AtFlags, OFlag, AT_FDCWD};
use nix::libc;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::stat::{fstat, stat, Mode};
use nix::sys::statfs::{fstatfs, statfs, NSFS_MAGIC};
use nix::unistd::linkat;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// An open network namespace, with its nsfs inode (its identity while it lives).
#[derive(Debug)]
pub struct Namespace {
    fd: OwnedFd,
    inode: u64,
}

impl Namespace {
    /// Opens the namespace file at `path`; it must be a network namespace.
    pub fn open(path: &Path) -> Result<Namespace> {
        let fd = open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()).map_err(|e| {
            if e == Errno::ENOENT {
                Error::new(
                    Code::Unknown,
                    format!(
                        "there is no namespace at {}: create it first (ip netns add), \
                         or give a name to --netns to let cloon create it",
                        path.display()
                    ),
                )
            } else {
                sys(format!("cannot open the namespace {}", path.display()), e)
            }
        })?;
        let not_netns = || {
            Error::invalid(format!(
                "{} is not a network namespace: give a file made by `ip netns add` \
                 or a /proc/PID/ns/net",
                path.display()
            ))
        };
        let fs = fstatfs(&fd).map_err(|e| sys(format!("cannot inspect {}", path.display()), e))?;
        if fs.filesystem_type() != NSFS_MAGIC || !is_net_namespace(&fd) {
            return Err(not_netns());
        }
        let st = fstat(&fd).map_err(|e| sys(format!("cannot inspect {}", path.display()), e))?;
        Ok(Namespace {
            fd,
            inode: st.st_ino,
        })
    }

    /// The namespace's nsfs inode.
    pub fn inode(&self) -> u64 {
        self.inode
    }

    /// A netlink connection that acts inside this namespace, usable from any thread: its socket
    /// is opened by a thread that entered the namespace, and stays bound to it.
    pub fn netlink(&self) -> Result<Netlink> {
        self.run_inside(Netlink::connect)
    }

    /// Runs `f` on a new thread that has entered this namespace; the thread ends with `f`, so no
    /// other code ever runs in the wrong namespace.
    pub fn run_inside<T: Send>(&self, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    enter(&self.fd)?;
                    f()
                })
                .join()
                .unwrap_or_else(|_| {
                    Err(Error::new(
                        Code::Io,
                        "the thread working inside the namespace panicked",
                    ))
                })
        })
    }
}

impl AsFd for Namespace {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Whether an open namespace file is a network namespace (asked with the `NS_GET_NSTYPE` ioctl).
fn is_net_namespace(fd: &OwnedFd) -> bool {
    // SAFETY: NS_GET_NSTYPE takes no argument and only reads the type of the namespace behind
    // `fd`, which is open for the duration of the call; it writes no memory of ours.
    let kind = unsafe { libc::ioctl(fd.as_raw_fd(), libc::NS_GET_NSTYPE) };
    kind == libc::CLONE_NEWNET
}

/// Moves the calling thread into the network namespace `fd`.
fn enter(fd: &OwnedFd) -> Result<()> {
    setns(fd, CloneFlags::CLONE_NEWNET).map_err(|e| sys("cannot enter the network namespace", e))
}

/// Makes `dir` exist and be a shared mount, as iproute2 does: mount it on itself first when it is
/// not a mount point.
pub fn prepare_run_dir(dir: &Path) -> Result<()> {
    match std::fs::create_dir(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            return Err(Error::io(format!("cannot create {}", dir.display()), &e))
        }
        _ => {}
    }
    let make_shared = || {
        mount(
            None::<&str>,
            dir,
            None::<&str>,
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        )
    };
    match make_shared() {
        Ok(()) => Ok(()),
        Err(Errno::EINVAL) => {
            mount(
                Some(dir),
                dir,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(|e| sys(format!("cannot bind-mount {} on itself", dir.display()), e))?;
            make_shared()
                .map_err(|e| sys(format!("cannot make {} a shared mount", dir.display()), e))
        }
        Err(e) => Err(sys(
            format!("cannot make {} a shared mount", dir.display()),
            e,
        )),
    }
}

/// What becomes known while a namespace is created, told as soon as it is known and before the
/// next step makes it matter, so that a record written meanwhile names everything a kill could
/// leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// The new namespace's nsfs inode: it exists, held only by this process, no file names it
    /// yet.
    Namespace(u64),
    /// The inode of the file under `/run/netns` the namespace is about to be bound on: until the
    /// bind, an empty regular file.
    File(u64),
}

/// Creates a new network namespace bound on `path`, a file that must not exist yet, in the order
/// that lets a record name everything at every instant: the namespace first (a thread unshares,
/// and this process holds it by a file descriptor), its inode told to `journal`; then the file,
/// made unnamed, its inode told to `journal`, and only then linked under `path` (atomically,
/// failing if the name is taken); last the namespace bound on it. Returns the namespace and the
/// file's inode. On failure nothing is left.
pub fn create(
    path: &Path,
    journal: &mut dyn FnMut(Progress) -> Result<()>,
) -> Result<(Namespace, u64)> {
    let made = unshared()?;
    journal(Progress::Namespace(made.inode))?;
    let file = placeholder(path, journal)?;
    let source = format!("/proc/self/fd/{}", made.fd.as_raw_fd());
    let bound = mount(
        Some(source.as_str()),
        path,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| {
        sys(
            format!("cannot bind the new namespace on {}", path.display()),
            e,
        )
    });
    if let Err(e) = bound {
        let _ = remove(path, made.inode, Some(file));
        return Err(e);
    }
    Ok((made, file))
}

/// A new network namespace, made by a thread of its own that unshares its network namespace and
/// hands it over as an open file before it ends.
fn unshared() -> Result<Namespace> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                unshare(CloneFlags::CLONE_NEWNET)
                    .map_err(|e| sys("cannot create a network namespace (unshare)", e))?;
                let fd = open(
                    "/proc/thread-self/ns/net",
                    OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| sys("cannot open the new network namespace", e))?;
                let st = fstat(&fd).map_err(|e| sys("cannot inspect the new namespace", e))?;
                Ok(Namespace {
                    fd,
                    inode: st.st_ino,
                })
            })
            .join()
            .unwrap_or_else(|_| {
                Err(Error::new(
                    Code::Io,
                    "the thread creating the namespace panicked",
                ))
            })
    })
}

/// Makes the empty file `path` (mode 0, as `ip netns add` does) and returns its inode, told to
/// `journal` before the file has its name: it is made unnamed in the directory, then linked.
/// Where the filesystem has no unnamed files, it is created exclusively instead (then a kill
/// right after can leave it unrecorded).
fn placeholder(path: &Path, journal: &mut dyn FnMut(Progress) -> Result<()>) -> Result<u64> {
    let taken = || {
        Error::new(
            Code::NameTaken,
            format!(
                "the namespace {} already exists: pick another name, or give its path \
                 (--netns {}) to use it",
                path.display(),
                path.display()
            ),
        )
    };
    let create_error = |e: Errno| {
        if e == Errno::EEXIST {
            taken()
        } else {
            sys(format!("cannot create {}", path.display()), e)
        }
    };
    let dir = path.parent().unwrap_or(Path::new("/"));
    match open(
        dir,
        OFlag::O_TMPFILE | OFlag::O_RDWR | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => {
            let inode = fstat(&fd)
                .map_err(|e| sys(format!("cannot inspect a new file in {}", dir.display()), e))?
                .st_ino;
            journal(Progress::File(inode))?;
            let source = format!("/proc/self/fd/{}", fd.as_raw_fd());
            linkat(
                AT_FDCWD,
                source.as_str(),
                AT_FDCWD,
                path,
                AtFlags::AT_SYMLINK_FOLLOW,
            )
            .map_err(create_error)?;
            Ok(inode)
        }
        Err(Errno::EOPNOTSUPP | Errno::EISDIR | Errno::EINVAL) => {
            let fd = open(
                path,
                OFlag::O_RDONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(create_error)?;
            let inode = fstat(&fd)
                .map_err(|e| sys(format!("cannot inspect {}", path.display()), e))?
                .st_ino;
            if let Err(e) = journal(Progress::File(inode)) {
                let _ = state::remove_file(path);
                return Err(e);
            }
            Ok(inode)
        }
        Err(e) => Err(sys(format!("cannot create a file in {}", dir.display()), e)),
    }
}

/// What is at a namespace path now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// Nothing.
    Missing,
    /// A namespace, with its nsfs inode.
    Namespace(u64),
    /// A file that is not a namespace: what a namespace leaves once unmounted.
    Stale,
}

/// Looks at `path` without opening it.
pub fn probe(path: &Path) -> Result<Probe> {
    let fs = match statfs(path) {
        Err(Errno::ENOENT) => return Ok(Probe::Missing),
        other => other.map_err(|e| sys(format!("cannot inspect {}", path.display()), e))?,
    };
    if fs.filesystem_type() != NSFS_MAGIC {
        return Ok(Probe::Stale);
    }
    let st = stat(path).map_err(|e| sys(format!("cannot inspect {}", path.display()), e))?;
    Ok(Probe::Namespace(st.st_ino))
}

/// Removes the namespace cloon bound on `path` if it is still the one with nsfs inode `inode`, or
/// the file cloon made to bind it on: the empty regular file of inode `file` (what a tool killed
/// before the bind leaves, or an unmounted namespace). `file` is `None` for records older than
/// this rule, which took any empty regular file there for what their namespace left. Returns
/// what was there. Anything else (another namespace, another file) is left alone.
pub fn remove(path: &Path, inode: u64, file: Option<u64>) -> Result<Probe> {
    let found = probe(path)?;
    match found {
        Probe::Missing => {}
        Probe::Namespace(ino) if ino != inode => {}
        Probe::Namespace(_) => {
            umount2(path, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW).map_err(|e| {
                sys(
                    format!("cannot unmount the namespace {}", path.display()),
                    e,
                )
            })?;
            state::remove_file(path)?;
        }
        Probe::Stale => {
            let meta = std::fs::symlink_metadata(path)
                .map_err(|e| Error::io(format!("cannot inspect {}", path.display()), &e))?;
            if is_placeholder(meta.is_file(), meta.len(), meta.ino(), file) {
                state::remove_file(path)?;
            }
        }
    }
    Ok(found)
}

/// Whether the file at `path`, which is not a namespace, is the one cloon made to bind its
/// namespace on (see [`remove`]).
pub fn is_cloons_file(path: &Path, file: Option<u64>) -> Result<bool> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io(format!("cannot inspect {}", path.display()), &e)),
        Ok(meta) => Ok(is_placeholder(meta.is_file(), meta.len(), meta.ino(), file)),
    }
}

/// Whether a file that is not a namespace is the one cloon made to bind its namespace on: an
/// empty regular file, of the recorded inode when one is recorded (`Some(0)`: cloon stopped
/// before making it, so it is not cloon's).
fn is_placeholder(regular: bool, len: u64, ino: u64, file: Option<u64>) -> bool {
    regular && len == 0 && file.is_none_or(|f| f != 0 && f == ino)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probing_tells_missing_from_stale() {
        assert_eq!(
            probe(Path::new("/nonexistent/cloon-ns")).unwrap(),
            Probe::Missing
        );
        assert_eq!(probe(Path::new("/proc/self/status")).unwrap(), Probe::Stale);
    }

    #[test]
    fn only_the_recorded_empty_file_is_taken_for_cloons() {
        assert!(is_placeholder(true, 0, 42, Some(42)));
        assert!(!is_placeholder(true, 0, 43, Some(42)), "another file");
        assert!(!is_placeholder(true, 0, 42, Some(0)), "never made");
        assert!(!is_placeholder(true, 1, 42, Some(42)), "written to");
        assert!(!is_placeholder(false, 0, 42, Some(42)), "not a file");
        // Records older than the file's inode: any empty regular file.
        assert!(is_placeholder(true, 0, 7, None));
        assert!(!is_placeholder(true, 3, 7, None));
    }

    #[test]
    fn opening_refuses_what_is_not_a_network_namespace() {
        let e = Namespace::open(Path::new("/proc/self/status")).unwrap_err();
        assert_eq!(e.code, Code::InvalidArgument);
        let e = Namespace::open(Path::new("/nonexistent/cloon-ns")).unwrap_err();
        assert_eq!(e.code, Code::Unknown);
        if let Ok(e) = Namespace::open(Path::new("/proc/self/ns/uts")) {
            panic!("a UTS namespace was taken for a network one: {e:?}");
        }
    }
}
