//! The lab's state directory, `LABS/LAB` (`/run/cloon/labs/LAB`): the `--state-dir` of every
//! tool the lab runs, and, in its `.lab/` directory, cloon-lab's own files (the documents of the
//! lab's containers and links, the marks of `exec:` done).
//!
//! Each level is made mode 0700, as the tools require of a state directory. `LABS` and `LAB` hold
//! the marker file `.cloon-state` of cloon's state directories: the tools of the directory above
//! (`/run/cloon`, whose `gc` lists its containers' directories) then never take `labs` for a
//! container of theirs, nor a lab for a container of `labs`.
//!
//! One `up` or `down` of a lab at a time: each holds an exclusive `flock` on the lab's `.lab/`
//! (not on the state directory itself, which the tools lock, shared, while they work in it). A
//! `down` removes the directory when the lab is gone; one waiting for the lock then finds it
//! removed and starts over, making it again. Making and removing `LAB` and `LABS` is done under a
//! lock on `LABS`, so that the last lab's `down` never removes `LABS` while another lab's `up` is
//! making its directory in it. Everything lives in `/run`: a reboot, which
//! removes every container, namespace and interface, removes the lab's state with them.

use crate::naming::Names;
use anyhow::{bail, Context as _};
use nix::fcntl::{Flock, FlockArg};
use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

/// The file that marks a cloon state directory (cloon-core's `MARKER`).
pub const MARKER: &str = cloon_core::state::MARKER;

/// A lab's state directory, locked.
#[derive(Debug)]
pub struct LabLock {
    _lock: Flock<fs::File>,
    dir: PathBuf,
}

impl LabLock {
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Makes `dir` with mode 0700 unless it exists; one that exists must be a directory, not a link.
fn make_private(dir: &Path) -> anyhow::Result<()> {
    match fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => bail!(
            "{} is not a directory (it may be a symbolic link): remove it, then try again",
            dir.display()
        ),
        Err(_) => match fs::DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(e).with_context(|| format!("cannot make {}", dir.display())),
        },
    }
}

fn mark(dir: &Path) -> anyhow::Result<()> {
    let m = dir.join(MARKER);
    if fs::symlink_metadata(&m).is_err() {
        fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&m)
            .with_context(|| format!("cannot make {}", m.display()))?;
    }
    Ok(())
}

fn open_dir(dir: &Path) -> std::io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_DIRECTORY | nix::libc::O_NOFOLLOW)
        .open(dir)
}

/// Locks the directory `dir` (exclusive `flock` on the directory itself), made first when
/// `create`; `None` when it does not exist and `create` is false. A lock taken on a directory
/// that was removed (or replaced) while we waited is let go and taken again.
fn lock_dir(dir: &Path, create: bool) -> anyhow::Result<Option<Flock<fs::File>>> {
    for _ in 0..100 {
        if create {
            make_private(dir)?;
        }
        let f = match open_dir(dir) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !create => return Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot open {}", dir.display())),
        };
        let held = f.metadata()?;
        let lock = Flock::lock(f, FlockArg::LockExclusive)
            .map_err(|(_, e)| anyhow::anyhow!("cannot lock {}: {e}", dir.display()))?;
        match fs::symlink_metadata(dir) {
            Ok(now) if now.ino() == held.ino() && now.dev() == held.dev() => return Ok(Some(lock)),
            _ if !create => return Ok(None),
            _ => continue,
        }
    }
    bail!("cannot lock {}: it keeps being removed", dir.display())
}

/// The directories `up` makes, from `LABS`'s parent down, in order: the same list the generated
/// Makefile and script make.
pub fn levels(names: &Names) -> Vec<PathBuf> {
    let state = names.state_dir().to_path_buf();
    let labs = state.parent().unwrap_or(Path::new("/")).to_path_buf();
    let top = labs.parent().unwrap_or(Path::new("/")).to_path_buf();
    vec![top, labs, state, names.lab_dir()]
}

/// Locks the lab (its `.lab/` directory: the tools lock the state directory itself, shared,
/// while they work in it), made first when `create`; `None` when the lab has no state and
/// `create` is false.
///
/// Lab directories are made and removed under a lock on `LABS`, so that the last lab's `down`
/// never removes `LABS` while another lab's `up` makes its directory in it; that lock is let go
/// before the lab's own is waited for, so no two locks are ever waited for in opposite orders.
pub fn lock(names: &Names, create: bool) -> anyhow::Result<Option<LabLock>> {
    let state = names.state_dir();
    let labs = state.parent().unwrap_or(Path::new("/"));
    let lab_dir = names.lab_dir();
    for _ in 0..100 {
        if create {
            if let Some(top) = labs.parent() {
                make_private(top)?;
            }
            let Some(_labs_lock) = lock_dir(labs, true)? else {
                continue;
            };
            mark(labs)?;
            make_private(state)?;
            mark(state)?;
            make_private(&lab_dir)?;
        }
        match lock_dir(&lab_dir, false)? {
            Some(lock) => {
                return Ok(Some(LabLock {
                    _lock: lock,
                    dir: state.to_path_buf(),
                }))
            }
            None if !create => return Ok(None),
            None => continue,
        }
    }
    bail!("cannot lock {}: it keeps being removed", lab_dir.display())
}

/// What is in the lab's state directory besides the marker and cloon-lab's `.lab/`: what the
/// tools still record (containers, links, shared records).
pub fn leftovers(names: &Names) -> Vec<String> {
    let mut out: Vec<String> = fs::read_dir(names.state_dir())
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n != MARKER && n != ".lab")
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// The names of the lab's objects the tools have records for (their directories), sorted.
pub fn recorded_names(names: &Names) -> Vec<String> {
    leftovers(names)
        .into_iter()
        .filter(|n| cloon_core::name::container(n).is_ok())
        .filter(|n| {
            let d = names.state_dir().join(n);
            fs::symlink_metadata(&d).is_ok_and(|m| m.is_dir())
                && fs::symlink_metadata(d.join(MARKER)).is_err()
        })
        .collect()
}

/// Whether the tools' records of `name` are a link's: a point-to-point link, or a VXLAN end of
/// a link or LAN to another host.
pub fn is_link_record(names: &Names, name: &str) -> bool {
    let dir = names.state_dir().join(name);
    dir.join("link.json").is_file() || dir.join("vxlan.json").is_file()
}

/// Removes the lab's directory, which must hold nothing but the marker and `.lab/` (whose files
/// go), then `LABS` when no lab is left in it. Called with the lab's lock held.
pub fn remove(names: &Names, _held: &LabLock) -> anyhow::Result<()> {
    let left = leftovers(names);
    if !left.is_empty() {
        bail!(
            "{} still holds {}: something of the lab is left",
            names.state_dir().display(),
            left.join(", ")
        );
    }
    let state = names.state_dir();
    let labs = state.parent().unwrap_or(Path::new("/"));
    let Some(_labs_lock) = lock_dir(labs, false)? else {
        return Ok(());
    };
    let lab_dir = names.lab_dir();
    if let Ok(rd) = fs::read_dir(&lab_dir) {
        for e in rd.flatten() {
            let p = e.path();
            if fs::symlink_metadata(&p).is_ok_and(|m| !m.is_dir()) {
                fs::remove_file(&p).with_context(|| format!("cannot remove {}", p.display()))?;
            }
        }
        fs::remove_dir(&lab_dir).with_context(|| format!("cannot remove {}", lab_dir.display()))?;
    }
    let _ = fs::remove_file(state.join(MARKER));
    fs::remove_dir(state).with_context(|| format!("cannot remove {}", state.display()))?;
    let only_marker = fs::read_dir(labs).is_ok_and(|rd| {
        rd.filter_map(|e| e.ok())
            .all(|e| e.file_name() == std::ffi::OsStr::new(MARKER))
    });
    if only_marker {
        let _ = fs::remove_file(labs.join(MARKER));
        let _ = fs::remove_dir(labs);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_private_and_marked_then_removed_with_the_last_lab() {
        let top = std::env::temp_dir().join(format!("cloon-lab-state-{}", std::process::id()));
        let _ = fs::remove_dir_all(&top);
        fs::create_dir_all(&top).unwrap();
        let labs = top.join("cloon").join("labs");
        let a = Names::new("a", &labs);
        let b = Names::new("b", &labs);
        let la = lock(&a, true).unwrap().unwrap();
        let lb = lock(&b, true).unwrap().unwrap();
        for d in [
            top.join("cloon"),
            labs.clone(),
            a.state_dir().to_path_buf(),
            a.lab_dir(),
        ] {
            let m = fs::metadata(&d).unwrap();
            assert_eq!(m.mode() & 0o777, 0o700, "{}", d.display());
        }
        assert!(labs.join(MARKER).exists() && a.state_dir().join(MARKER).exists());
        fs::write(a.lab_dir().join("node-x.json"), "{}").unwrap();
        fs::create_dir(a.state_dir().join("a-x")).unwrap();
        assert_eq!(recorded_names(&a), ["a-x"]);
        assert!(remove(&a, &la).is_err(), "a record is left");
        fs::remove_dir(a.state_dir().join("a-x")).unwrap();
        remove(&a, &la).unwrap();
        assert!(!a.state_dir().exists());
        assert!(labs.exists(), "b is still there");
        assert!(lock(&a, false).unwrap().is_none());
        remove(&b, &lb).unwrap();
        assert!(!labs.exists(), "the last lab takes labs/ with it");
        fs::remove_dir_all(&top).unwrap();
    }
}
