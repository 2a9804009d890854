//! The state directory: where each tool records what it created, so that `down --name`, `check`
//! and `show` act on what cloon owns, never on names that merely look alike.
//!
//! Layout: `<root>/<name>/<stage>.json` (one record per stage), plus the files a stage keeps for
//! the container (the overlay's upper and work directories, the bundle). `<root>` is
//! `/run/cloon` unless `--state-dir` or `CLOON_STATE_DIR` says otherwise.

use crate::error::{Code, Context, Error, Result};
use crate::name;
use crate::undo::Undo;
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg, OFlag};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fs;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

pub mod fs_at;

/// Where state lives unless told otherwise.
pub const DEFAULT_ROOT: &str = "/run/cloon";

/// The file that marks a directory as a state directory, so that the `gc` of a state directory
/// that holds another (`/x` and `/x/lab`) never takes the inner one for a container.
pub const MARKER: &str = ".cloon-state";

/// The state directory of all containers.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// The state root from a flag, else `CLOON_STATE_DIR`, else `/run/cloon`. Made absolute. One
    /// that exists must be a directory (not a link to one) owned by the caller with mode 0700:
    /// another user could plant links in it.
    pub fn new(flag: Option<&Path>) -> Result<Self> {
        let root = match flag {
            Some(p) => p.to_path_buf(),
            None => std::env::var_os("CLOON_STATE_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT)),
        };
        let state = StateDir {
            root: absolute(&root)?,
        };
        state.open_root()?;
        Ok(state)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The state root, open and checked (a private directory, not a link); `None` when missing.
    pub fn open_root(&self) -> Result<Option<OwnedFd>> {
        match fs_at::open_dir(&self.root) {
            Err(Errno::ENOENT) => Ok(None),
            Err(Errno::ELOOP | Errno::ENOTDIR) => Err(not_a_directory(&self.root)),
            Err(e) => Err(Error::sys(
                format!("cannot open {}", self.root.display()),
                e,
            )),
            Ok(fd) => {
                fs_at::check_private(fd.as_fd(), &self.root)?;
                Ok(Some(fd))
            }
        }
    }

    /// The state root, created (mode 0700, with its marker) when missing.
    pub fn ensure_root(&self) -> Result<OwnedFd> {
        let fd = match self.open_root()? {
            Some(fd) => fd,
            None => {
                // The directories cloon makes above it are private too: one of them may be used
                // as a state directory of its own later (`/x` after `/x/lab`).
                if let Some(parent) = self.root.parent() {
                    fs::DirBuilder::new()
                        .recursive(true)
                        .mode(0o700)
                        .create(parent)
                        .context(|| format!("cannot create {}", parent.display()))?;
                }
                match fs::DirBuilder::new().mode(0o700).create(&self.root) {
                    Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                        return Err(Error::io(
                            format!("cannot create the state directory {}", self.root.display()),
                            &e,
                        ))
                    }
                    _ => {}
                }
                self.open_root()?.ok_or_else(|| {
                    Error::new(
                        Code::TryAgain,
                        format!(
                            "{} was removed as it was made: run again",
                            self.root.display()
                        ),
                    )
                })?
            }
        };
        if let Err(Errno::ENOENT) = fs_at::lstat_in(fd.as_fd(), MARKER) {
            fs_at::open_beneath(
                fd.as_fd(),
                Path::new(MARKER),
                OFlag::O_WRONLY | OFlag::O_CREAT,
                0o600,
            )
            .map_err(|e| fs_at::error("create", &self.root.join(MARKER), e))?;
        }
        Ok(fd)
    }

    /// The names of every container (or other named object) that has a state directory, sorted.
    /// Entries that are not valid names (shared records' directories, strays), links, and state
    /// directories nested in this one (they have their own marker) are skipped.
    pub fn names(&self) -> Result<Vec<String>> {
        let Some(root) = self.open_root()? else {
            return Ok(Vec::new());
        };
        let entries = fs_at::list(root.as_fd())
            .map_err(|e| Error::sys(format!("cannot list {}", self.root.display()), e))?;
        let mut names = Vec::new();
        for name in entries {
            if name::container(&name).is_err() {
                continue;
            }
            let is_dir = fs_at::lstat_in(root.as_fd(), &name).is_ok_and(|st| fs_at::is_dir(&st));
            if !is_dir {
                continue;
            }
            let marker = Path::new(&name).join(MARKER);
            let nested = fs_at::open_beneath(root.as_fd(), &marker, OFlag::O_PATH, 0).is_ok();
            if !nested {
                names.push(name);
            }
        }
        Ok(names)
    }

    /// Whether `path` is under this state directory and not under a state directory nested in
    /// it (whose marker is in one of the directories between the two): what `gc` may act on.
    pub fn owns(&self, path: &Path) -> bool {
        let Ok(rel) = path.strip_prefix(&self.root) else {
            return false;
        };
        let mut dir = self.root.clone();
        let parts: Vec<_> = rel.components().collect();
        for part in parts.iter().take(parts.len().saturating_sub(1)) {
            dir.push(part);
            if fs::symlink_metadata(dir.join(MARKER)).is_ok() {
                return false;
            }
        }
        true
    }

    /// A name for this state directory that no other has, even one at the same path in another
    /// mount namespace or after a reboot: FNV-1a (64 bits) of its path, its device and its inode
    /// (0 and 0 while it does not exist).
    pub fn id(&self) -> Result<u64> {
        use std::os::unix::ffi::OsStrExt;
        let (dev, ino) = match self.open_root()? {
            Some(fd) => {
                let st = nix::sys::stat::fstat(fd.as_fd()).map_err(|e| {
                    Error::sys(format!("cannot inspect {}", self.root.display()), e)
                })?;
                (st.st_dev, st.st_ino)
            }
            None => (0, 0),
        };
        let mut bytes = self.root.as_os_str().as_bytes().to_vec();
        bytes.extend(dev.to_le_bytes());
        bytes.extend(ino.to_le_bytes());
        Ok(fnv1a(&bytes))
    }

    /// The cgroup under which the containers of this state directory live, relative to each
    /// hierarchy's root: `cloon/ID` ([`StateDir::id`]). Containers of two state directories (two
    /// labs) never share a cgroup name, and a lab's resources can be read and limited as one.
    ///
    /// The state directory is made first when missing (except in a dry run): its identity is
    /// that of the directory, which must exist to have one.
    pub fn cgroup_parent(&self) -> Result<String> {
        if crate::explain::acting() {
            self.ensure_root()?;
        }
        Ok(format!("cloon/{:016x}", self.id()?))
    }

    /// The directory of one container (not created).
    pub fn dir(&self, name: &str) -> Result<PathBuf> {
        name::container(name)?;
        Ok(self.root.join(name))
    }

    /// Opens the directory of one container, checked: a private directory of ours, not a link,
    /// not a state directory nested here. `None` when it does not exist.
    pub fn open_container(&self, name: &str) -> Result<Option<OwnedFd>> {
        let dir = self.dir(name)?;
        let Some(root) = self.open_root()? else {
            return Ok(None);
        };
        self.open_container_in(&root, name, &dir)
    }

    fn open_container_in(&self, root: &OwnedFd, name: &str, dir: &Path) -> Result<Option<OwnedFd>> {
        let fd = match fs_at::open_dir_beneath(root.as_fd(), Path::new(name)) {
            Err(Errno::ENOENT) => return Ok(None),
            Err(Errno::ELOOP | Errno::ENOTDIR | Errno::EXDEV) => return Err(not_a_directory(dir)),
            Err(e) => return Err(Error::sys(format!("cannot open {}", dir.display()), e)),
            Ok(fd) => fd,
        };
        fs_at::check_private(fd.as_fd(), dir)?;
        if fs_at::lstat_in(fd.as_fd(), MARKER).is_ok() {
            return Err(Error::new(
                Code::InvalidConfig,
                format!(
                    "{} is a state directory of its own, not a container of {}",
                    dir.display(),
                    self.root.display()
                ),
            )
            .details("use another container name, or --state-dir for that directory"));
        }
        Ok(Some(fd))
    }

    /// The directory of one container, created mode 0700 (with the root) when missing.
    pub fn ensure_dir(&self, name: &str) -> Result<PathBuf> {
        self.ensure_container(name)?;
        self.dir(name)
    }

    /// Opens the directory of one container, created mode 0700 (with the root) when missing.
    pub fn ensure_container(&self, name: &str) -> Result<OwnedFd> {
        let dir = self.dir(name)?;
        for _ in 0..ATTEMPTS {
            let root = self.ensure_root()?;
            fs_at::mkdir_in(root.as_fd(), name, 0o700).map_err(|e| match e {
                Errno::EEXIST => not_a_directory(&dir),
                e => Error::sys(
                    format!("cannot create the state directory {}", dir.display()),
                    e,
                ),
            })?;
            if let Some(fd) = self.open_container_in(&root, name, &dir)? {
                return Ok(fd);
            }
            // Removed by another tool's `down` between the two calls: again.
        }
        Err(Error::new(
            Code::TryAgain,
            format!("cannot create {}: it keeps being removed", dir.display()),
        ))
    }

    /// The path of `path` relative to the state root, when `path` is under it.
    fn relative<'a>(&self, path: &'a Path) -> Result<&'a Path> {
        path.strip_prefix(&self.root)
            .ok()
            .filter(|rel| !rel.as_os_str().is_empty())
            .ok_or_else(|| {
                Error::invalid(format!(
                    "{} is not under the state directory {}",
                    path.display(),
                    self.root.display()
                ))
            })
    }

    /// Makes the directory `path` (under the state root; its parent must exist), with `mode`,
    /// without following a link on the way. One that exists already is fine.
    pub fn create_dir(&self, path: &Path, mode: u32) -> Result<()> {
        let (parent, leaf) = self.parent_of(path)?;
        fs_at::mkdir_in(parent.as_fd(), &leaf, mode).map_err(|e| fs_at::error("create", path, e))
    }

    /// Opens the file `path` (under the state root) for writing, created mode 0600 when missing,
    /// emptied when `truncate`, appended to otherwise; a link there is refused, never followed.
    pub fn create_file(&self, path: &Path, truncate: bool) -> Result<fs::File> {
        let root = self.ensure_root()?;
        let rel = self.relative(path)?;
        let extra = if truncate {
            OFlag::O_TRUNC
        } else {
            OFlag::O_APPEND
        };
        fs_at::open_beneath(
            root.as_fd(),
            rel,
            OFlag::O_WRONLY | OFlag::O_CREAT | extra,
            0o600,
        )
        .map(fs::File::from)
        .map_err(|e| fs_at::error("open", path, e))
    }

    /// Writes the file `path` (under the state root) with `text`, mode 0600, replacing it whole.
    pub fn write_file(&self, path: &Path, text: &[u8]) -> Result<()> {
        let (parent, leaf) = self.parent_of(path)?;
        fs_at::replace(parent.as_fd(), &leaf, text).map_err(|e| fs_at::error("write", path, e))
    }

    /// Removes `path` (under the state root) and everything in it, following no link and crossing
    /// no mount point; what is already gone counts as removed.
    pub fn remove_tree(&self, path: &Path) -> Result<()> {
        let (parent, leaf) = match self.parent_of(path) {
            Err(e) if e.code == Code::Unknown => return Ok(()),
            other => other?,
        };
        fs_at::remove_tree_in(parent.as_fd(), &leaf, path)
    }

    /// Removes the file `path` (under the state root); one already gone counts as removed.
    pub fn remove_file(&self, path: &Path) -> Result<()> {
        let (parent, leaf) = match self.parent_of(path) {
            Err(e) if e.code == Code::Unknown => return Ok(()),
            other => other?,
        };
        fs_at::unlink(parent.as_fd(), &leaf).map_err(|e| fs_at::error("remove", path, e))
    }

    /// The directory holding `path` (under the state root), open without following links, and
    /// the last component of `path`. [`Code::Unknown`] when that directory does not exist.
    fn parent_of(&self, path: &Path) -> Result<(OwnedFd, String)> {
        let rel = self.relative(path)?;
        let leaf = rel
            .file_name()
            .map(|l| l.to_string_lossy().into_owned())
            .ok_or_else(|| Error::invalid(format!("{} names no file", path.display())))?;
        let gone = || Error::new(Code::Unknown, format!("{} does not exist", path.display()));
        let Some(root) = self.open_root()? else {
            return Err(gone());
        };
        let parent = rel.parent().filter(|p| !p.as_os_str().is_empty());
        let fd = match parent {
            None => root,
            Some(p) => match fs_at::open_dir_beneath(root.as_fd(), p) {
                Err(Errno::ENOENT) => return Err(gone()),
                other => other.map_err(|e| fs_at::error("open", &self.root.join(p), e))?,
            },
        };
        Ok((fd, leaf))
    }

    fn record_leaf(stage: &str) -> String {
        format!("{stage}.json")
    }

    fn record_path(&self, name: &str, stage: &str) -> Result<PathBuf> {
        Ok(self.dir(name)?.join(Self::record_leaf(stage)))
    }

    /// Writes a new record for `stage`; fails with [`Code::NameTaken`] if one exists, so that two
    /// `up` for the same name cannot both win. The record appears whole or not at all: it is
    /// written into an unnamed file that is then linked under its name (where the filesystem
    /// has no unnamed files, it is created then written), so that a tool killed meanwhile leaves
    /// no empty or partial record. Mode 0600; no link is followed.
    pub fn claim<T: Serialize>(&self, name: &str, stage: &str, record: &T) -> Result<()> {
        let path = self.record_path(name, stage)?;
        let text = to_json(record);
        // The directory may be removed between its creation and the record's (by the `down` of
        // another tool, which removes it once empty): then again.
        for _ in 0..ATTEMPTS {
            let dir = self.ensure_container(name)?;
            match fs_at::create_new(dir.as_fd(), &Self::record_leaf(stage), text.as_bytes()) {
                Err(Errno::ENOENT) => continue,
                Err(Errno::EEXIST) => {
                    return Err(Error::new(
                        Code::NameTaken,
                        format!(
                            "{stage} \"{name}\" already exists: pick another name, or bring it down first"
                        ),
                    )
                    .details(format!("its record is {}", path.display())))
                }
                other => return other.map_err(|e| fs_at::error("create", &path, e)),
            }
        }
        Err(Error::new(
            Code::TryAgain,
            format!(
                "cannot create {}: its directory keeps being removed",
                path.display()
            ),
        ))
    }

    /// [`StateDir::claim`], then registers the record's release on `undo`, so that an `up` that
    /// fails leaves no record (and one refused as taken leaves the winner's alone).
    pub fn claim_with_undo<T: Serialize>(
        &self,
        undo: &mut Undo,
        name: &str,
        stage: &str,
        record: &T,
    ) -> Result<()> {
        self.claim(name, stage, record)?;
        let (state, name, stage) = (self.clone(), name.to_string(), stage.to_string());
        undo.push(move || {
            let _ = state.release(&name, &stage);
        });
        Ok(())
    }

    /// Replaces the record of `stage` (it must have been claimed): a temporary file, mode 0600
    /// as the record, is written then renamed over it.
    pub fn update<T: Serialize>(&self, name: &str, stage: &str, record: &T) -> Result<()> {
        let path = self.record_path(name, stage)?;
        let dir = self.open_container(name)?.ok_or_else(|| {
            Error::new(Code::Unknown, format!("{} does not exist", path.display()))
        })?;
        fs_at::replace(
            dir.as_fd(),
            &Self::record_leaf(stage),
            to_json(record).as_bytes(),
        )
        .map_err(|e| fs_at::error("replace", &path, e))
    }

    /// Reads the record of `stage`, or `None` when there is none.
    pub fn load<T: DeserializeOwned>(&self, name: &str, stage: &str) -> Result<Option<T>> {
        let path = self.record_path(name, stage)?;
        let Some(dir) = self.open_container(name)? else {
            return Ok(None);
        };
        let text = match fs_at::read(dir.as_fd(), &Self::record_leaf(stage)) {
            Ok(Some(text)) => text,
            Ok(None) => return Ok(None),
            Err(e) => return Err(fs_at::error("read", &path, e)),
        };
        serde_json::from_str(&text).map(Some).map_err(|e| {
            Error::config(format!("the record {} is corrupt", path.display())).details(e)
        })
    }

    /// Whether `name` has a record of `stage`.
    pub fn has_record(&self, name: &str, stage: &str) -> Result<bool> {
        let Some(dir) = self.open_container(name)? else {
            return Ok(false);
        };
        Ok(fs_at::lstat_in(dir.as_fd(), &Self::record_leaf(stage)).is_ok())
    }

    /// Reads the record of `stage`, which must exist: without one, a [`Code::Unknown`] error says
    /// that cloon has no `what` for `name`.
    pub fn require<T: DeserializeOwned>(&self, name: &str, stage: &str, what: &str) -> Result<T> {
        match self.load(name, stage)? {
            Some(record) => Ok(record),
            None => Err(Error::new(
                Code::Unknown,
                format!("cloon has no {what} for \"{name}\": bring it up first"),
            )
            .details(format!(
                "no record {}",
                self.record_path(name, stage)?.display()
            ))),
        }
    }

    /// Deletes the record of `stage` (and the temporary file of an [`StateDir::update`] that was
    /// interrupted), then the container's directory if nothing else is in it.
    pub fn release(&self, name: &str, stage: &str) -> Result<()> {
        let path = self.record_path(name, stage)?;
        let Some(dir) = self.open_container(name)? else {
            return Ok(());
        };
        let leaf = Self::record_leaf(stage);
        fs_at::unlink(dir.as_fd(), &format!("{leaf}.tmp"))
            .and_then(|()| fs_at::unlink(dir.as_fd(), &leaf))
            .map_err(|e| fs_at::error("remove", &path, e))?;
        drop(dir);
        self.remove_dir_if_empty(name)?;
        Ok(())
    }

    /// Removes the directory of `name` if it is empty; whether it was removed.
    pub fn remove_dir_if_empty(&self, name: &str) -> Result<bool> {
        let dir = self.dir(name)?;
        let Some(root) = self.open_root()? else {
            return Ok(false);
        };
        fs_at::rmdir_if_empty(root.as_fd(), name).map_err(|e| fs_at::error("remove", &dir, e))
    }

    /// Locks the state directory of `name` (created when missing) for as long as the value
    /// lives, waiting for another holder to let it go: a tool holds it while it changes the
    /// container's objects and records, so that a garbage collector can tell a record being
    /// written (locked) from one a killed tool left (unlocked).
    pub fn lock(&self, name: &str) -> Result<DirLock> {
        for _ in 0..ATTEMPTS {
            let fd = self.ensure_container(name)?;
            if let Some(lock) = self.lock_fd(name, fd, FlockArg::LockExclusive)? {
                return Ok(lock);
            }
        }
        Err(Error::new(
            Code::TryAgain,
            format!(
                "cannot lock {}: it keeps being removed",
                self.dir(name)?.display()
            ),
        ))
    }

    /// Locks the state root's marker (`.cloon-state`, made with the root when missing) for as
    /// long as the value lives, shared or exclusive, waiting for holders of the other kind. A lock
    /// of its own, apart from the containers' and the root's: cloon-run holds it shared while the
    /// runtime makes a container's cgroup under the state directory's parent cgroup, and
    /// exclusive while it removes that parent, so that a removal never comes between the
    /// runtime's mkdir of the parent and of the container's own cgroup.
    pub fn lock_marker(&self, exclusive: bool) -> Result<Flock<fs::File>> {
        let root = self.ensure_root()?;
        let fd = fs_at::open_beneath(root.as_fd(), Path::new(MARKER), OFlag::O_RDONLY, 0)
            .map_err(|e| fs_at::error("open", &self.root.join(MARKER), e))?;
        let arg = if exclusive {
            FlockArg::LockExclusive
        } else {
            FlockArg::LockShared
        };
        Flock::lock(fs::File::from(fd), arg).map_err(|(_, e)| {
            Error::sys(
                format!("cannot lock {}", self.root.join(MARKER).display()),
                e,
            )
        })
    }

    /// Locks the state directory of `name` if it exists and nobody holds it; `None` otherwise.
    pub fn try_lock(&self, name: &str) -> Result<Option<DirLock>> {
        match self.open_container(name)? {
            Some(fd) => self.lock_fd(name, fd, FlockArg::LockExclusiveNonblock),
            None => Ok(None),
        }
    }

    /// Locks the open directory `fd` of `name`; `None` when it was removed (or replaced) while
    /// we waited, or (for a non-blocking lock) is held by another.
    fn lock_fd(&self, name: &str, fd: OwnedFd, arg: FlockArg) -> Result<Option<DirLock>> {
        let dir = self.dir(name)?;
        let lock = match Flock::lock(fs::File::from(fd), arg) {
            Ok(lock) => lock,
            Err((_, Errno::EWOULDBLOCK)) => return Ok(None),
            Err((_, e)) => return Err(Error::sys(format!("cannot lock {}", dir.display()), e)),
        };
        let held = nix::sys::stat::fstat(lock.as_fd())
            .map_err(|e| Error::sys(format!("cannot inspect {}", dir.display()), e))?;
        let Some(root) = self.open_root()? else {
            return Ok(None);
        };
        match fs_at::lstat_in(root.as_fd(), name) {
            Ok(now) if now.st_ino == held.st_ino && now.st_dev == held.st_dev => {
                Ok(Some(DirLock { _dir: lock }))
            }
            // Removed (or replaced) while we waited: the lock is on a directory nobody will use.
            Ok(_) | Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(Error::sys(format!("cannot inspect {}", dir.display()), e)),
        }
    }

    /// Runs a stage's `down` for the container `name` under the lock of its state directory, so
    /// that it waits for an `up` or `down` of that name still at work; a dry run takes no lock.
    /// `None` when the container has no state directory: there is nothing to undo.
    pub fn with_lock<T>(
        &self,
        name: &str,
        action: impl FnOnce() -> Result<T>,
    ) -> Result<Option<T>> {
        if self.open_container(name)?.is_none() {
            return Ok(None);
        }
        let _lock = if crate::explain::acting() {
            Some(self.lock(name)?)
        } else {
            None
        };
        action().map(Some)
    }
}

/// The error for a state directory (or a container's) that is a link or not a directory.
fn not_a_directory(path: &Path) -> Error {
    Error::new(
        Code::InvalidConfig,
        format!(
            "{} is not a directory (it may be a symbolic link): cloon never follows links under \
             its state directory",
            path.display()
        ),
    )
    .details("someone else made it: remove it, then try again")
}

/// The lock of one container's state directory (see [`StateDir::lock`]); let go when dropped.
#[derive(Debug)]
pub struct DirLock {
    _dir: Flock<fs::File>,
}

/// How many times a lock or a claim is tried again after losing a race with a removal.
const ATTEMPTS: usize = 1000;

/// FNV-1a (64 bits): a short, stable hash, the same from one build to the next (the standard
/// library's may change).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn to_json<T: Serialize>(record: &T) -> String {
    let mut s = serde_json::to_string_pretty(record).unwrap_or_default();
    s.push('\n');
    s
}

/// `path` made absolute against the current directory, without resolving symbolic links.
pub fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).context(|| format!("cannot make {} absolute", path.display()))
}

/// Removes a file; one already gone counts as removed.
pub fn remove_file(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(Error::io(format!("cannot remove {}", path.display()), &e))
        }
        _ => Ok(()),
    }
}

/// Removes a directory tree that cloon made, without ever crossing into another filesystem
/// (a directory on another device, a mount point, stops the removal with an error) and without
/// following a link from `path`'s last component down (see [`fs_at::remove_tree`]).
pub fn remove_tree_one_fs(path: &Path) -> Result<()> {
    fs_at::remove_tree(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::fs::PermissionsExt;

    fn temp_root(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("cloon-state-test-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        p
    }

    #[test]
    fn claim_is_exclusive_and_release_cleans_up() {
        let root = temp_root("claim");
        let st = StateDir::new(Some(&root)).unwrap();
        st.claim("A", "netns", &serde_json::json!({"x": 1}))
            .unwrap();
        let err = st
            .claim("A", "netns", &serde_json::json!({"x": 2}))
            .unwrap_err();
        assert_eq!(err.code, Code::NameTaken);
        let back: serde_json::Value = st.load("A", "netns").unwrap().unwrap();
        assert_eq!(back["x"], 1);
        let mode = fs::metadata(st.dir("A").unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        st.release("A", "netns").unwrap();
        st.release("A", "netns").unwrap();
        assert!(!st.dir("A").unwrap().exists());
        assert_eq!(st.load::<serde_json::Value>("A", "netns").unwrap(), None);
        let err = st.require::<serde_json::Value>("A", "netns", "network namespace");
        assert_eq!(err.unwrap_err().code, Code::Unknown);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_claim_is_undone_unless_committed_and_a_refused_one_keeps_the_winner() {
        let root = temp_root("undo");
        let st = StateDir::new(Some(&root)).unwrap();
        let mut undo = Undo::new();
        st.claim_with_undo(&mut undo, "A", "spec", &1).unwrap();
        drop(undo);
        assert_eq!(st.load::<i32>("A", "spec").unwrap(), None);

        let mut undo = Undo::new();
        st.claim_with_undo(&mut undo, "A", "spec", &1).unwrap();
        undo.commit();
        let mut undo = Undo::new();
        let err = st.claim_with_undo(&mut undo, "A", "spec", &2).unwrap_err();
        assert_eq!(err.code, Code::NameTaken);
        drop(undo);
        assert_eq!(st.load::<i32>("A", "spec").unwrap(), Some(1));
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_claim_leaves_no_temporary_file_and_release_removes_an_interrupted_update() {
        let root = temp_root("atomic");
        let st = StateDir::new(Some(&root)).unwrap();
        st.claim("A", "netns", &serde_json::json!({"x": 1}))
            .unwrap();
        let dir = st.dir("A").unwrap();
        let files: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(files, ["netns.json"]);
        let mode = fs::metadata(dir.join("netns.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        st.update("A", "netns", &serde_json::json!({"x": 2}))
            .unwrap();
        let mode = fs::metadata(dir.join("netns.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "an update keeps the record private");
        // An update killed between its write and its rename leaves its temporary file.
        fs::write(dir.join("netns.json.tmp"), "{").unwrap();
        st.release("A", "netns").unwrap();
        assert!(!dir.exists());
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_directory_lock_is_exclusive_and_never_held_on_a_removed_directory() {
        let root = temp_root("lock");
        let st = StateDir::new(Some(&root)).unwrap();
        assert!(st.try_lock("A").unwrap().is_none(), "no directory, no lock");
        let held = st.lock("A").unwrap();
        assert!(st.dir("A").unwrap().is_dir());
        assert!(st.try_lock("A").unwrap().is_none(), "held twice");
        drop(held);
        let again = st.try_lock("A").unwrap();
        assert!(again.is_some());
        drop(again);
        // A waiter whose directory is removed meanwhile locks the new one.
        let held = st.lock("A").unwrap();
        let st2 = st.clone();
        let waiter = std::thread::spawn(move || {
            let _lock = st2.lock("A").unwrap();
            fs::metadata(st2.dir("A").unwrap()).unwrap().ino()
        });
        std::thread::sleep(std::time::Duration::from_millis(50));
        let old = fs::metadata(st.dir("A").unwrap()).unwrap().ino();
        fs::remove_dir(st.dir("A").unwrap()).unwrap();
        drop(held);
        let locked = waiter.join().unwrap();
        assert!(st.dir("A").unwrap().is_dir());
        assert_eq!(
            locked,
            fs::metadata(st.dir("A").unwrap()).unwrap().ino(),
            "the waiter holds the directory that exists (the old one was {old})"
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn names_lists_container_directories_only() {
        let root = temp_root("names");
        let st = StateDir::new(Some(&root)).unwrap();
        assert!(st.names().unwrap().is_empty());
        st.claim("B", "netns", &1).unwrap();
        st.claim("A", "spec", &1).unwrap();
        fs::create_dir_all(root.join(".bridges")).unwrap();
        fs::write(root.join("stray"), "").unwrap();
        assert_eq!(st.names().unwrap(), ["A", "B"]);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn names_cannot_escape_the_root() {
        let st = StateDir::new(Some(Path::new("/run/cloon"))).unwrap();
        assert!(st.dir("../etc").is_err());
        assert!(st.dir("a/b").is_err());
        assert_eq!(st.dir("x").unwrap(), Path::new("/run/cloon/x"));
    }

    #[test]
    fn remove_tree_removes_files_and_links_not_targets() {
        let root = temp_root("tree");
        let outside = temp_root("outside");
        fs::create_dir_all(root.join("a/b")).unwrap();
        fs::create_dir_all(&outside).unwrap();
        fs::write(outside.join("keep"), "x").unwrap();
        fs::write(root.join("a/b/f"), "x").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("a/link")).unwrap();
        remove_tree_one_fs(&root).unwrap();
        assert!(!root.exists());
        assert!(outside.join("keep").exists());
        remove_tree_one_fs(&root).unwrap();
        fs::remove_dir_all(&outside).unwrap();
    }

    #[test]
    fn no_link_under_the_state_directory_is_followed() {
        use std::os::unix::fs::symlink;
        let root = temp_root("links");
        let outside = temp_root("links-outside");
        fs::create_dir_all(outside.join("bundle")).unwrap();
        fs::write(outside.join("bundle/config.json"), "keep").unwrap();
        fs::write(outside.join("victim"), "keep").unwrap();
        let st = StateDir::new(Some(&root)).unwrap();
        st.ensure_root().unwrap();
        // A link planted where a container's directory goes.
        symlink(&outside, root.join("C")).unwrap();
        for e in [
            st.claim("C", "spec", &1).unwrap_err(),
            st.lock("C").unwrap_err(),
            st.load::<i32>("C", "spec").unwrap_err(),
            st.remove_tree(&root.join("C/bundle")).unwrap_err(),
            st.create_file(&root.join("C/container.log"), true)
                .unwrap_err(),
        ] {
            assert_eq!(e.code, Code::InvalidConfig, "{e}");
            assert!(e.to_string().contains("link"), "{e}");
        }
        assert!(st.names().unwrap().is_empty(), "a link is no container");
        assert_eq!(
            fs::read_to_string(outside.join("bundle/config.json")).unwrap(),
            "keep"
        );
        fs::remove_file(root.join("C")).unwrap();
        // A link planted where a record or a log goes.
        st.ensure_dir("C").unwrap();
        symlink(outside.join("victim"), root.join("C/container.log")).unwrap();
        symlink(outside.join("victim"), root.join("C/spec.json")).unwrap();
        assert!(st.create_file(&root.join("C/container.log"), true).is_err());
        assert!(st.load::<i32>("C", "spec").is_err());
        assert_eq!(st.claim("C", "spec", &1).unwrap_err().code, Code::NameTaken);
        st.update("C", "spec", &2).unwrap();
        assert_eq!(
            st.load::<i32>("C", "spec").unwrap(),
            Some(2),
            "the link was replaced"
        );
        assert_eq!(fs::read_to_string(outside.join("victim")).unwrap(), "keep");
        st.remove_tree(&root.join("C")).unwrap();
        assert_eq!(fs::read_to_string(outside.join("victim")).unwrap(), "keep");
        fs::remove_dir_all(&root).unwrap();
        fs::remove_dir_all(&outside).unwrap();
    }

    #[test]
    fn a_state_directory_open_to_others_or_a_link_is_refused() {
        use std::os::unix::fs::{symlink, PermissionsExt};
        let root = temp_root("mode");
        fs::create_dir_all(&root).unwrap();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o777)).unwrap();
        let e = StateDir::new(Some(&root)).unwrap_err();
        assert_eq!(e.code, Code::InvalidConfig);
        assert!(e.to_string().contains("mode 0777"), "{e}");
        fs::set_permissions(&root, fs::Permissions::from_mode(0o700)).unwrap();
        let st = StateDir::new(Some(&root)).unwrap();
        // A container directory open to others is refused too.
        fs::create_dir(root.join("C")).unwrap();
        fs::set_permissions(root.join("C"), fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(st.lock("C").unwrap_err().code, Code::InvalidConfig);
        fs::remove_dir(root.join("C")).unwrap();
        let link = temp_root("mode-link");
        symlink(&root, &link).unwrap();
        assert_eq!(
            StateDir::new(Some(&link)).unwrap_err().code,
            Code::InvalidConfig
        );
        fs::remove_file(&link).unwrap();
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_nested_state_directory_is_no_container() {
        let outer = temp_root("nested");
        let outer_st = StateDir::new(Some(&outer)).unwrap();
        outer_st.claim("A", "spec", &1).unwrap();
        let inner = StateDir::new(Some(&outer.join("lab"))).unwrap();
        inner.claim("B", "spec", &1).unwrap();
        assert!(outer.join(MARKER).exists() && outer.join("lab").join(MARKER).exists());
        assert_eq!(outer_st.names().unwrap(), ["A"]);
        assert_eq!(inner.names().unwrap(), ["B"]);
        let e = outer_st.claim("lab", "spec", &1).unwrap_err();
        assert_eq!(e.code, Code::InvalidConfig, "{e}");
        assert!(outer_st.load::<i32>("lab", "spec").is_err());
        fs::remove_dir_all(&outer).unwrap();
    }

    #[test]
    fn the_cgroup_parent_is_that_of_the_directory_itself() {
        let root = temp_root("cgroup");
        let st = StateDir::new(Some(&root)).unwrap();
        let before = format!("cloon/{:016x}", st.id().unwrap());
        let parent = st.cgroup_parent().unwrap();
        assert!(
            root.is_dir(),
            "the state directory is made to have an identity"
        );
        assert_ne!(parent, before, "not the identity of a missing directory");
        assert_eq!(parent, st.cgroup_parent().unwrap());
        fs::remove_dir_all(&root).unwrap();
    }
}
