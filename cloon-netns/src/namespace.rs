//! Named network namespaces, made and removed the way `ip netns add` and `ip netns del` do it, but
//! without forking: a thread unshares its network namespace and bind-mounts it on a file under
//! `/run/netns`, a directory made a shared mount so that other mount namespaces see it.

use crate::errors::sys;
use crate::link::Netlink;
use cloon_core::{state, Code, Error, Result};
use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::libc;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::stat::{fstat, stat, Mode};
use nix::sys::statfs::{fstatfs, statfs, NSFS_MAGIC};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
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

/// Creates a new network namespace bound on `path`, a file that must not exist yet.
/// On failure nothing is left.
pub fn create(path: &Path) -> Result<Namespace> {
    let file = open(
        path,
        OFlag::O_RDONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| {
        if e == Errno::EEXIST {
            Error::new(
                Code::NameTaken,
                format!(
                    "the namespace {} already exists: pick another name, or give its path \
                         (--netns {}) to use it",
                    path.display(),
                    path.display()
                ),
            )
        } else {
            sys(format!("cannot create {}", path.display()), e)
        }
    })?;
    drop(file);
    let made = bind_new_namespace(path).and_then(|()| Namespace::open(path));
    if made.is_err() {
        let _ = umount2(path, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW);
        let _ = std::fs::remove_file(path);
    }
    made
}

/// On a thread of its own: a fresh network namespace, bind-mounted on `path`.
fn bind_new_namespace(path: &Path) -> Result<()> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                unshare(CloneFlags::CLONE_NEWNET)
                    .map_err(|e| sys("cannot create a network namespace (unshare)", e))?;
                mount(
                    Some("/proc/thread-self/ns/net"),
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

/// Removes the namespace cloon bound on `path` if it is still the one with `inode`, or the stale
/// file it left. Returns what was there. Anything else (another namespace) is left alone.
pub fn remove(path: &Path, inode: u64) -> Result<Probe> {
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
            // Only an empty regular file is what an unmounted namespace leaves behind.
            let meta = std::fs::symlink_metadata(path)
                .map_err(|e| Error::io(format!("cannot inspect {}", path.display()), &e))?;
            if meta.is_file() && meta.len() == 0 {
                state::remove_file(path)?;
            }
        }
    }
    Ok(found)
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
