//! Shared records: what belongs to no single container but to several at once (a bridge that the
//! veths of many containers join). Each is one file, `<root>/.<kind>/<name>.json`, read and
//! changed only under an exclusive lock (`flock`), so that tools running at the same time decide
//! one after the other. The leading dot keeps these directories apart from the containers' own
//! (a container name never starts with a dot).
//!
//! A lock is taken on the record file itself, created empty when missing; an empty file is no
//! record, and is removed when the lock is let go. A process that waited on a file that another
//! removed meanwhile notices (the path no longer leads to the file it locked) and starts again.

use crate::error::{Code, Context, Error, Result};
use crate::name;
use crate::state::{fs_at, StateDir};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg, OFlag};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// How many times a lock is tried again after losing a race with a removal before giving up.
const ATTEMPTS: usize = 1000;

/// A shared record, locked for as long as this value lives.
#[derive(Debug)]
pub struct Shared {
    path: PathBuf,
    file: Flock<File>,
}

impl StateDir {
    /// The directory of the shared records of `kind` (e.g. `bridges`).
    pub fn shared_dir(&self, kind: &str) -> Result<PathBuf> {
        name::container(kind)?;
        Ok(self.root().join(format!(".{kind}")))
    }

    /// The file of the shared record `name` of `kind`.
    pub fn shared_path(&self, kind: &str, name: &str) -> Result<PathBuf> {
        name::container(name)?;
        Ok(self.shared_dir(kind)?.join(format!("{name}.json")))
    }

    /// Locks the shared record `name` of `kind`, waiting for another holder to let it go.
    /// The record may not exist yet: [`Shared::load`] then says `None`. No link is followed.
    pub fn lock_shared(&self, kind: &str, name: &str) -> Result<Shared> {
        let dir = self.shared_dir(kind)?;
        let path = self.shared_path(kind, name)?;
        let leaf = format!(".{kind}");
        let rel = Path::new(&leaf).join(format!("{name}.json"));
        for _ in 0..ATTEMPTS {
            let root = self.ensure_root()?;
            fs_at::mkdir_in(root.as_fd(), &leaf, 0o700)
                .map_err(|e| fs_at::error("create", &dir, e))?;
            let file =
                fs_at::open_beneath(root.as_fd(), &rel, OFlag::O_RDWR | OFlag::O_CREAT, 0o600);
            let file = match file {
                // The directory was removed by the last holder of another record: again.
                Err(Errno::ENOENT) => continue,
                other => File::from(other.map_err(|e| fs_at::error("open", &path, e))?),
            };
            let file = Flock::lock(file, FlockArg::LockExclusive)
                .map_err(|(_, e)| Error::sys(format!("cannot lock {}", path.display()), e))?;
            if same_file(&file, &path)? {
                return Ok(Shared { path, file });
            }
            // Removed (or replaced) while we waited: the lock is on a file nobody will see.
        }
        Err(Error::new(
            Code::TryAgain,
            format!("cannot lock {}: it keeps being removed", path.display()),
        ))
    }

    /// Reads the shared record `name` of `kind` under a shared lock, without creating anything;
    /// `None` when there is none.
    pub fn read_shared<T: DeserializeOwned>(&self, kind: &str, name: &str) -> Result<Option<T>> {
        let path = self.shared_path(kind, name)?;
        let Some(root) = self.open_root()? else {
            return Ok(None);
        };
        let rel = Path::new(&format!(".{kind}")).join(format!("{name}.json"));
        let file = match fs_at::open_beneath(root.as_fd(), &rel, OFlag::O_RDONLY, 0) {
            Err(Errno::ENOENT) => return Ok(None),
            other => File::from(other.map_err(|e| fs_at::error("open", &path, e))?),
        };
        let mut file = Flock::lock(file, FlockArg::LockShared)
            .map_err(|(_, e)| Error::sys(format!("cannot lock {}", path.display()), e))?;
        parse(&path, &read_all(&mut file, &path)?)
    }

    /// The names of the shared records of `kind`, sorted.
    pub fn shared_names(&self, kind: &str) -> Result<Vec<String>> {
        let dir = self.shared_dir(kind)?;
        let Some(root) = self.open_root()? else {
            return Ok(Vec::new());
        };
        let fd = match fs_at::open_dir_beneath(root.as_fd(), Path::new(&format!(".{kind}"))) {
            Err(Errno::ENOENT) => return Ok(Vec::new()),
            other => other.map_err(|e| fs_at::error("open", &dir, e))?,
        };
        let entries = fs_at::list(fd.as_fd()).map_err(|e| fs_at::error("list", &dir, e))?;
        let mut names: Vec<String> = entries
            .iter()
            .filter_map(|f| f.strip_suffix(".json"))
            .filter(|stem| name::container(stem).is_ok())
            .map(String::from)
            .collect();
        names.sort();
        Ok(names)
    }
}

impl Shared {
    /// The record's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The record, or `None` when there is none.
    pub fn load<T: DeserializeOwned>(&mut self) -> Result<Option<T>> {
        let text = read_all(&mut self.file, &self.path)?;
        parse(&self.path, &text)
    }

    /// Writes the record in place (the file must stay the one locked).
    pub fn store<T: Serialize>(&mut self, record: &T) -> Result<()> {
        let mut text = serde_json::to_string_pretty(record).unwrap_or_default();
        text.push('\n');
        let path = &self.path;
        self.file
            .set_len(0)
            .and_then(|()| self.file.seek(SeekFrom::Start(0)).map(drop))
            .and_then(|()| self.file.write_all(text.as_bytes()))
            .and_then(|()| self.file.sync_data())
            .context(|| format!("cannot write {}", path.display()))
    }

    /// Deletes the record: the file goes when the lock is let go.
    pub fn remove(&mut self) -> Result<()> {
        let path = &self.path;
        self.file
            .set_len(0)
            .context(|| format!("cannot empty {}", path.display()))
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // An empty file is no record: remove it (and its directory when it was the last), while
        // still holding the lock, so a waiter sees it gone and starts again.
        if self.file.metadata().map(|m| m.len() == 0).unwrap_or(false) {
            let _ = fs::remove_file(&self.path);
            if let Some(dir) = self.path.parent() {
                let _ = fs::remove_dir(dir);
            }
        }
    }
}

/// Whether `path` still leads to the open `file`.
fn same_file(file: &File, path: &Path) -> Result<bool> {
    let open = file
        .metadata()
        .context(|| format!("cannot inspect {}", path.display()))?;
    match fs::symlink_metadata(path) {
        Ok(now) => Ok(now.ino() == open.ino() && now.dev() == open.dev()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io(format!("cannot inspect {}", path.display()), &e)),
    }
}

fn read_all(file: &mut File, path: &Path) -> Result<String> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.read_to_string(&mut text))
        .context(|| format!("cannot read {}", path.display()))?;
    Ok(text)
}

fn parse<T: DeserializeOwned>(path: &Path, text: &str) -> Result<Option<T>> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    serde_json::from_str(text)
        .map(Some)
        .map_err(|e| Error::config(format!("the record {} is corrupt", path.display())).details(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_root(tag: &str) -> PathBuf {
        let p =
            std::env::temp_dir().join(format!("cloon-shared-test-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        p
    }

    #[test]
    fn a_record_is_stored_loaded_and_removed_with_its_directory() {
        let root = temp_root("basic");
        let st = StateDir::new(Some(&root)).unwrap();
        {
            let mut rec = st.lock_shared("bridges", "lan1").unwrap();
            assert_eq!(rec.load::<serde_json::Value>().unwrap(), None);
            rec.store(&serde_json::json!({"index": 7})).unwrap();
            rec.store(&serde_json::json!({"i": 8})).unwrap();
        }
        assert_eq!(st.shared_names("bridges").unwrap(), ["lan1"]);
        let back: serde_json::Value = st.read_shared("bridges", "lan1").unwrap().unwrap();
        assert_eq!(back, serde_json::json!({"i": 8}));
        assert!(
            st.names().unwrap().is_empty(),
            "a shared record is no container"
        );
        {
            let mut rec = st.lock_shared("bridges", "lan1").unwrap();
            rec.remove().unwrap();
        }
        assert_eq!(st.read_shared::<i32>("bridges", "lan1").unwrap(), None);
        assert!(!st.shared_dir("bridges").unwrap().exists());
        assert!(st.shared_names("bridges").unwrap().is_empty());
        // A lock taken and let go without storing anything leaves nothing.
        drop(st.lock_shared("bridges", "lan2").unwrap());
        assert!(!st.shared_dir("bridges").unwrap().exists());
        assert!(st.lock_shared("bridges", "../x").is_err());
        let _ = fs::remove_dir_all(&root);
    }

    /// Records of one kind made and removed at once by many holders: the directory of the kind
    /// comes and goes under them (the last holder removes it), and no holder fails for it.
    #[test]
    fn records_of_one_kind_come_and_go_together() {
        let root = temp_root("kind");
        let st = StateDir::new(Some(&root)).unwrap();
        std::thread::scope(|s| {
            for t in 0..4 {
                let st = &st;
                s.spawn(move || {
                    for i in 0..2000 {
                        let rec = st.lock_shared("lowers", &format!("r{t}"));
                        if let Err(e) = rec {
                            panic!("holder {t}, turn {i}: {}", e.msg);
                        }
                    }
                });
            }
        });
        assert!(!st.shared_dir("lowers").unwrap().exists());
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn holders_take_turns_even_while_the_record_comes_and_goes() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let root = temp_root("race");
        let st = StateDir::new(Some(&root)).unwrap();
        let inside = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let (st, inside) = (st.clone(), inside.clone());
                std::thread::spawn(move || {
                    for i in 0..40 {
                        let mut rec = st.lock_shared("bridges", "lan").unwrap();
                        assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders");
                        let n: u32 = rec.load().unwrap().unwrap_or(0);
                        rec.store(&(n + 1)).unwrap();
                        std::thread::yield_now();
                        if (t + i) % 3 == 0 {
                            // The last user goes: the file and its directory with it.
                            rec.remove().unwrap();
                        }
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let _ = fs::remove_dir_all(&root);
    }
}
