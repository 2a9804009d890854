//! `cloon-overlay gc`: finds what cloon-overlay left behind (a tool killed halfway, a record or
//! a mount lost) and removes it. It acts on cloon's records, on the places its layout gives each
//! object under the state directory, and on the tag of the loop devices it attaches
//! ([`loopdev::Tag`]), never on names that merely look like cloon's. Five passes:
//!
//! 1. every container record whose overlay is not mounted (an `up` killed before its mount, or
//!    an overlay unmounted behind cloon's back) is brought down by the same `down` as
//!    `cloon-overlay down`; healthy ones, those a running tool holds locked, and those a live
//!    container still uses (see [`crate::users`]: its runtime keeps its own copy of the overlay
//!    mount) are kept;
//! 2. every mount under a container's `overlay/` directory that no record explains is unmounted,
//!    unless a live process has its root there; other mounts under the state directory are
//!    reported and kept;
//! 3. every `overlay/` directory that no record names is removed (never across a mount point),
//!    unless a live container uses it;
//! 4. every shared lower (found by its record, its directory or its mount) that no overlay has
//!    as its lower (neither mounted here nor the root of a live process elsewhere) is unmounted
//!    and removed with its record, under its lock; then every loop device backing one of the
//!    images cloon's records name that carries this state directory's tag and that nothing
//!    mounts (in any mount namespace) is detached. A device attached to the same image by hand
//!    is kept;
//! 5. the empty state directories are removed.
//!
//! Passes 1 and 5 are the stage skeleton's ([`cloon_core::stage::collect`]): this module judges a
//! record ([`judge`]) and runs passes 2 to 4 ([`more`]).

use crate::loopdev::{self, Unused};
use crate::lower::{self, Place, KIND};
use crate::{mount, Record, PART, STAGE};
use cloon_core::gc::Report;
use cloon_core::mounts;
use cloon_core::stage::Verdict;
use cloon_core::state::remove_tree_one_fs;
use cloon_core::{explain, host, inuse, Error, Result, StateDir};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// What `gc` needs before it starts: root, to unmount and detach.
pub fn start() -> Result<()> {
    if explain::acting() {
        host::require_root(STAGE, "unmount and detach what cloon-overlay left")?;
    }
    Ok(())
}

/// Passes 2 to 4, after the skeleton's pass over the records.
pub fn more(state: &StateDir, report: &mut Report) -> Result<()> {
    stray_mounts(state, report)?;
    stray_dirs(state, report)?;
    lowers(state, report)
}

/// Locks the state directory of `name` for `gc` when acting: `Ok(None)` when a tool holds it
/// (then what it holds is left to it, and said in the report).
fn try_lock(
    state: &StateDir,
    name: &str,
    kind: &'static str,
    what: &str,
    report: &mut Report,
) -> Result<Option<Option<cloon_core::state::DirLock>>> {
    if !explain::acting() {
        return Ok(Some(None));
    }
    match state.try_lock(name) {
        Ok(Some(lock)) => Ok(Some(Some(lock))),
        Ok(None) => {
            report.keep(kind, what, "in use: a tool is at work on it");
            Ok(None)
        }
        // A directory cloon would not have made (open to others): not ours.
        Err(e) => {
            report.keep(kind, what, format!("not cloon's: {}", e.msg));
            Ok(None)
        }
    }
}

/// Why a container's overlay counts as partly gone, if it does: its overlay is not mounted over
/// its lower.
pub fn partly_gone(record: &Record) -> Result<Option<String>> {
    let o = &record.overlay;
    Ok(match mounts::at(Path::new(&o.rootfs))? {
        Some(m) if lower::is_over(&m, Path::new(&o.lower)) => None,
        Some(m) => Some(format!(
            "partly gone: {} is a {} mount, not the overlay over {}",
            o.rootfs, m.fstype, o.lower
        )),
        None => Some(format!(
            "partly gone: the overlay is not mounted on {}",
            o.rootfs
        )),
    })
}

/// Why `gc` keeps what `users` use.
fn in_use(users: &[inuse::User]) -> String {
    format!("in use by {}", inuse::summary(users))
}

/// Pass 1, for the skeleton's pass over the records: a record whose overlay is not mounted is
/// brought down, unless a live container still uses it.
pub fn judge(state: &StateDir, name: &str, record: &Record) -> Result<Verdict> {
    let Some(why) = partly_gone(record)? else {
        return Ok(Verdict::Keep("healthy: its overlay is mounted".into()));
    };
    let users = crate::users(state, name, record)?;
    Ok(if users.is_empty() {
        Verdict::Down(why)
    } else {
        Verdict::Keep(format!("{why}, but {}", in_use(&users)))
    })
}

/// The container name and the path below it of a path under the state root, when its first
/// component is a container's directory.
fn container_of<'a>(state: &StateDir, path: &'a Path) -> Option<(String, &'a Path)> {
    let rel = path.strip_prefix(state.root()).ok()?;
    let mut parts = rel.components();
    let name = parts.next()?.as_os_str().to_str()?.to_string();
    cloon_core::name::container(&name).ok()?;
    Some((name, parts.as_path()))
}

/// Pass 2: mounts under the state directory. Those under a container's `overlay/` that its
/// record does not explain (no record, or not its root filesystem) are unmounted, deepest first;
/// those inside a recorded root filesystem are the container's own; the shared lowers are left
/// to pass 4; anything else is reported and kept.
fn stray_mounts(state: &StateDir, report: &mut Report) -> Result<()> {
    let lowers = state.shared_dir(KIND)?;
    let mut targets: Vec<PathBuf> = mounts::table()?
        .into_iter()
        .map(|m| m.target)
        // Under this state directory, not under one nested in it: that one's gc judges them.
        .filter(|t| t != state.root() && state.owns(t))
        .collect();
    targets.sort_by_key(|t| std::cmp::Reverse(t.components().count()));
    targets.dedup();
    for target in targets {
        let shown = target.display().to_string();
        if target.starts_with(&lowers) {
            if Place::of_lower(state, &target).is_none() {
                report.keep("mount", &shown, "not a mount cloon-overlay makes");
            }
            continue;
        }
        let Some((name, below)) = container_of(state, &target) else {
            report.keep("mount", &shown, "not a mount cloon-overlay makes");
            continue;
        };
        if !below.starts_with(PART) {
            report.keep("mount", &shown, "not a mount cloon-overlay makes");
            continue;
        }
        let Some(_lock) = try_lock(state, &name, "mount", &shown, report)? else {
            continue;
        };
        let record = match state.load::<Record>(&name, PART) {
            Ok(record) => record,
            Err(e) => {
                report.failed("mount", &shown, e);
                continue;
            }
        };
        if let Some(record) = record {
            let rootfs = Path::new(&record.overlay.rootfs);
            if target.starts_with(rootfs) {
                // The overlay itself, or a mount inside the container's root filesystem.
                continue;
            }
            report.keep("mount", &shown, "not a mount cloon-overlay makes");
            continue;
        }
        match inuse::rootfs_users(state, &name, &target, None) {
            Err(e) => {
                report.failed("mount", &shown, e);
                continue;
            }
            Ok(users) if !users.is_empty() => {
                report.keep("mount", &shown, in_use(&users));
                continue;
            }
            Ok(_) => {}
        }
        let why = format!("under {name}/{PART}/, which no record explains");
        let outcome = mount::unmount(&target).map(|()| explain::acting());
        report.found("mount", &shown, why, outcome);
    }
    Ok(())
}

/// Pass 3: the `overlay/` directories no record names.
fn stray_dirs(state: &StateDir, report: &mut Report) -> Result<()> {
    for name in state.names()? {
        let dir = state.dir(&name)?;
        let overlay = dir.join(PART);
        if !overlay.exists() || dir.join(format!("{PART}.json")).exists() {
            continue;
        }
        let shown = overlay.display().to_string();
        let Some(_lock) = try_lock(state, &name, "directory", &shown, report)? else {
            continue;
        };
        if dir.join(format!("{PART}.json")).exists() {
            continue;
        }
        let (rootfs, upper) = (overlay.join("rootfs"), overlay.join("upper"));
        match inuse::rootfs_users(state, &name, &rootfs, Some(&upper)) {
            Err(e) => {
                report.failed("directory", &shown, e);
                continue;
            }
            Ok(users) if !users.is_empty() => {
                report.keep("directory", &shown, in_use(&users));
                continue;
            }
            Ok(_) => {}
        }
        let outcome = if explain::step(&["rm", "-rf", "--one-file-system", shown.as_str()]) {
            remove_tree_one_fs(&overlay).map(|()| true)
        } else {
            Ok(false)
        };
        report.found("directory", &shown, "no record names it", outcome);
    }
    Ok(())
}

/// The image identity a lower's key (`<dev>-<ino>`) names.
fn parse_key(key: &str) -> Option<(u64, u64)> {
    let (dev, ino) = key.split_once('-')?;
    Some((dev.parse().ok()?, ino.parse().ok()?))
}

/// Every image identity the state directory knows of: the shared lowers' records, directories
/// and mounts, and the images of the containers' records.
fn known_images(state: &StateDir) -> Result<BTreeSet<(u64, u64)>> {
    let mut ids = BTreeSet::new();
    let dir = state.shared_dir(KIND)?;
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let key = name.strip_suffix(".json").unwrap_or(&name);
            ids.extend(parse_key(key));
        }
    }
    for m in mounts::table()? {
        if let Some(place) = Place::of_lower(state, &m.target) {
            ids.extend(parse_key(&place.key));
        }
    }
    for name in state.names()? {
        if let Ok(Some(record)) = state.load::<Record>(&name, PART) {
            ids.insert(record.image_id());
        }
    }
    Ok(ids)
}

/// Pass 4: the shared lowers no overlay uses, then the loop devices cloon attached that nothing
/// mounts; then the directory of the shared records, once empty.
fn lowers(state: &StateDir, report: &mut Report) -> Result<()> {
    for id in known_images(state)? {
        let place = Place::new(state, id)?;
        if let Err(e) = lower_one(state, &place, id, report) {
            report.failed("lower", &place.lower.display().to_string(), e);
        }
    }
    let dir = state.shared_dir(KIND)?;
    if std::fs::read_dir(&dir).is_ok_and(|mut e| e.next().is_none()) {
        let shown = dir.display().to_string();
        let outcome = if explain::step(&["rmdir", shown.as_str()]) {
            match std::fs::remove_dir(&dir) {
                Ok(()) => Ok(true),
                // A lower was made meanwhile: not a leftover after all.
                Err(e) if e.raw_os_error() == Some(nix::libc::ENOTEMPTY) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => Err(Error::io(format!("cannot remove {shown}"), &e)),
            }
        } else {
            Ok(false)
        };
        report.found("directory", &shown, "empty", outcome);
    }
    Ok(())
}

fn lower_one(state: &StateDir, place: &Place, id: (u64, u64), report: &mut Report) -> Result<()> {
    let acting = explain::acting();
    let shown = place.lower.display().to_string();
    // Whether a record file or directory exists is seen before the lock, which makes the file
    // when missing (and removes it, empty, when let go).
    let existed = place.record.exists() || place.dir.exists();
    let mut lock = if acting {
        Some(state.lock_shared(KIND, &place.key)?)
    } else {
        None
    };
    let table = mounts::table()?;
    let mounted = table.iter().any(|m| m.target == place.lower);
    let users = lower::users(&table, &place.lower).len();
    // Overlays mounted only in other mount namespaces (a container's copy of one unmounted here).
    let elsewhere = if users == 0 && (existed || mounted) {
        inuse::overlay_users(state, "lowerdir", &place.lower)?
    } else {
        Vec::new()
    };
    if users > 0 {
        report.keep(
            "lower",
            &shown,
            format!("the lower of {users} mounted overlay(s)"),
        );
    } else if !elsewhere.is_empty() {
        report.keep(
            "lower",
            &shown,
            format!(
                "the lower of an overlay mounted elsewhere, {}",
                in_use(&elsewhere)
            ),
        );
    } else if existed || mounted {
        let why = if mounted {
            "mounted, but no overlay has it as its lower"
        } else {
            "its record or directory is left, and nothing is mounted there"
        };
        let outcome =
            lower::leave_locked(state, place, lock.as_mut(), Path::new(""), id, "").map(|_| acting);
        report.found("lower", &shown, why, outcome);
    }
    let tag = loopdev::Tag::new(state.root(), id);
    for device in loopdev::devices_backing(id) {
        let name = device.display().to_string();
        match loopdev::detach_unused(&device, id, &tag) {
            Ok(Unused::Detached) => report.found(
                "loop device",
                &name,
                format!(
                    "attached by cloon to the image {}, and nothing mounts it",
                    place.key
                ),
                Ok(true),
            ),
            Ok(Unused::WouldDetach) => report.found(
                "loop device",
                &name,
                format!(
                    "attached by cloon to the image {}, and nothing mounts it",
                    place.key
                ),
                Ok(false),
            ),
            Ok(Unused::NotOurs(found)) => report.keep(
                "loop device",
                &name,
                format!(
                    "backs the image {}, but cloon did not attach it for this state directory (its name is {found:?})",
                    place.key
                ),
            ),
            Ok(Unused::InUse | Unused::Gone) => {}
            Err(e) => report.failed("loop device", &name, e),
        }
    }
    drop(lock);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_image_identities() {
        assert_eq!(parse_key("2049-131"), Some((2049, 131)));
        assert_eq!(parse_key("2049"), None);
        assert_eq!(parse_key("a-1"), None);
    }

    #[test]
    fn paths_under_the_root_name_their_container() {
        let st = StateDir::new(Some(Path::new("/run/cloon"))).unwrap();
        let p = Path::new("/run/cloon/K/overlay/rootfs");
        let (name, below) = container_of(&st, p).unwrap();
        assert_eq!(name, "K");
        assert_eq!(below, Path::new("overlay/rootfs"));
        assert!(container_of(&st, Path::new("/run/cloon/.lowers/1-2/lower")).is_none());
        assert!(container_of(&st, Path::new("/elsewhere/K/overlay")).is_none());
    }
}
