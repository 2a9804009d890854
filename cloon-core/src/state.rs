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
use nix::fcntl::{Flock, FlockArg};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Where state lives unless told otherwise.
pub const DEFAULT_ROOT: &str = "/run/cloon";

/// The state directory of all containers.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// The state root from a flag, else `CLOON_STATE_DIR`, else `/run/cloon`. Made absolute.
    pub fn new(flag: Option<&Path>) -> Result<Self> {
        let root = match flag {
            Some(p) => p.to_path_buf(),
            None => std::env::var_os("CLOON_STATE_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT)),
        };
        Ok(StateDir {
            root: absolute(&root)?,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The names of every container (or other named object) that has a state directory, sorted.
    /// Entries that are not valid names (shared records' directories, strays) are skipped.
    pub fn names(&self) -> Result<Vec<String>> {
        let entries = match fs::read_dir(&self.root) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            other => other.context(|| format!("cannot list {}", self.root.display()))?,
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.context(|| format!("cannot list {}", self.root.display()))?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if name::container(&name).is_ok() && entry.path().is_dir() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// The directory of one container (not created).
    pub fn dir(&self, name: &str) -> Result<PathBuf> {
        name::container(name)?;
        Ok(self.root.join(name))
    }

    /// The directory of one container, created mode 0700 (with the root) when missing.
    pub fn ensure_dir(&self, name: &str) -> Result<PathBuf> {
        let dir = self.dir(name)?;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .context(|| format!("cannot create the state directory {}", dir.display()))?;
        Ok(dir)
    }

    fn record_path(&self, name: &str, stage: &str) -> Result<PathBuf> {
        Ok(self.dir(name)?.join(format!("{stage}.json")))
    }

    /// Writes a new record for `stage`; fails with [`Code::NameTaken`] if one exists, so that two
    /// `up` for the same name cannot both win. The record appears whole or not at all: it is
    /// written into an unnamed file that is then linked under its name (where the filesystem
    /// has no unnamed files, it is created then written), so that a tool killed meanwhile leaves
    /// no empty or partial record.
    pub fn claim<T: Serialize>(&self, name: &str, stage: &str, record: &T) -> Result<()> {
        let path = self.record_path(name, stage)?;
        let text = to_json(record);
        let taken = || {
            Error::new(
                Code::NameTaken,
                format!(
                    "{stage} \"{name}\" already exists: pick another name, or bring it down first"
                ),
            )
            .details(format!("its record is {}", path.display()))
        };
        // The directory may be removed between its creation and the record's (by the `down` of
        // another tool, which removes it once empty): then again.
        for _ in 0..ATTEMPTS {
            let dir = self.ensure_dir(name)?;
            match link_new_file(&dir, &path, text.as_bytes()) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(taken()),
                other => {
                    return other.context(|| format!("cannot create {}", path.display()));
                }
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
        let tmp = path.with_extension("json.tmp");
        fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut f| f.write_all(to_json(record).as_bytes()))
            .context(|| format!("cannot write {}", tmp.display()))?;
        fs::rename(&tmp, &path).context(|| format!("cannot replace {}", path.display()))
    }

    /// Reads the record of `stage`, or `None` when there is none.
    pub fn load<T: DeserializeOwned>(&self, name: &str, stage: &str) -> Result<Option<T>> {
        let path = self.record_path(name, stage)?;
        let text = match fs::read_to_string(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            other => other.context(|| format!("cannot read {}", path.display()))?,
        };
        serde_json::from_str(&text).map(Some).map_err(|e| {
            Error::config(format!("the record {} is corrupt", path.display())).details(e)
        })
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
        remove_file(&path.with_extension("json.tmp"))?;
        remove_file(&path)?;
        let _ = fs::remove_dir(self.dir(name)?);
        Ok(())
    }

    /// Locks the state directory of `name` (created when missing) for as long as the value
    /// lives, waiting for another holder to let it go: a tool holds it while it changes the
    /// container's objects and records, so that a garbage collector can tell a record being
    /// written (locked) from one a killed tool left (unlocked).
    pub fn lock(&self, name: &str) -> Result<DirLock> {
        for _ in 0..ATTEMPTS {
            let dir = self.ensure_dir(name)?;
            if let Some(lock) = lock_dir(&dir, FlockArg::LockExclusive)? {
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

    /// Locks the state directory of `name` if it exists and nobody holds it; `None` otherwise.
    pub fn try_lock(&self, name: &str) -> Result<Option<DirLock>> {
        lock_dir(&self.dir(name)?, FlockArg::LockExclusiveNonblock)
    }

    /// Runs a stage's `down` for the container `name` under the lock of its state directory, so
    /// that it waits for an `up` or `down` of that name still at work; a dry run takes no lock.
    /// `None` when the container has no state directory: there is nothing to undo.
    pub fn with_lock<T>(
        &self,
        name: &str,
        action: impl FnOnce() -> Result<T>,
    ) -> Result<Option<T>> {
        if !self.dir(name)?.exists() {
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

/// The lock of one container's state directory (see [`StateDir::lock`]); let go when dropped.
#[derive(Debug)]
pub struct DirLock {
    _dir: Flock<fs::File>,
}

/// Locks the directory `dir`; `None` when it is missing, removed while we waited, or (for a
/// non-blocking lock) held by another.
fn lock_dir(dir: &Path, arg: FlockArg) -> Result<Option<DirLock>> {
    let file = match fs::File::open(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        other => other.context(|| format!("cannot open {}", dir.display()))?,
    };
    let lock = match Flock::lock(file, arg) {
        Ok(lock) => lock,
        Err((_, Errno::EWOULDBLOCK)) => return Ok(None),
        Err((_, e)) => return Err(Error::sys(format!("cannot lock {}", dir.display()), e)),
    };
    let held = lock
        .metadata()
        .context(|| format!("cannot inspect {}", dir.display()))?;
    match fs::metadata(dir) {
        Ok(now) if now.ino() == held.ino() && now.dev() == held.dev() => {
            Ok(Some(DirLock { _dir: lock }))
        }
        // Removed (or replaced) while we waited: the lock is on a directory nobody will use.
        Ok(_) => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("cannot inspect {}", dir.display()), &e)),
    }
}

/// How many times a lock or a claim is tried again after losing a race with a removal.
const ATTEMPTS: usize = 1000;

/// Creates `path` (in `dir`) holding `bytes`, atomically: an unnamed file is written, then
/// linked under its name, which fails if the name exists. Without unnamed files (a filesystem
/// that lacks `O_TMPFILE`), the file is created exclusively, then written.
fn link_new_file(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let unnamed = fs::OpenOptions::new()
        .write(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_TMPFILE)
        .open(dir);
    match unnamed {
        Ok(mut file) => {
            file.write_all(bytes)?;
            let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
            let source = PathBuf::from(format!("/proc/self/fd/{fd}"));
            nix::unistd::linkat(
                nix::fcntl::AT_FDCWD,
                &source,
                nix::fcntl::AT_FDCWD,
                path,
                nix::fcntl::AtFlags::AT_SYMLINK_FOLLOW,
            )
            .map_err(std::io::Error::from)
        }
        Err(e)
            if matches!(
                Errno::from_raw(e.raw_os_error().unwrap_or(0)),
                Errno::EOPNOTSUPP | Errno::EISDIR | Errno::EINVAL
            ) =>
        {
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)?;
            file.write_all(bytes)
        }
        Err(e) => Err(e),
    }
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

/// Removes a directory tree that cloon made, without ever crossing into another filesystem:
/// a directory on another device (a mount point) stops the removal with an error.
pub fn remove_tree_one_fs(path: &Path) -> Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        other => other.context(|| format!("cannot inspect {}", path.display()))?,
    };
    remove_below(path, meta.dev())
}

fn remove_below(path: &Path, dev: u64) -> Result<()> {
    let meta =
        fs::symlink_metadata(path).context(|| format!("cannot inspect {}", path.display()))?;
    if !meta.is_dir() {
        return fs::remove_file(path).context(|| format!("cannot remove {}", path.display()));
    }
    if meta.dev() != dev {
        return Err(Error::new(
            Code::TryAgain,
            format!(
                "{} is a mount point: unmount it, then run down again",
                path.display()
            ),
        ));
    }
    let entries = fs::read_dir(path).context(|| format!("cannot list {}", path.display()))?;
    for entry in entries {
        let entry = entry.context(|| format!("cannot list {}", path.display()))?;
        remove_below(&entry.path(), dev)?;
    }
    fs::remove_dir(path).context(|| format!("cannot remove {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
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
}
