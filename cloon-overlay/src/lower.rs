//! The shared lower: every container made from one image shares one read-only loop device and one
//! read-only mount of the image, its overlay's `lowerdir`.
//!
//! The lower of an image lives at `<state>/.lowers/<dev>-<ino>/lower`, named after the image
//! file's identity (its device and inode numbers, which a rename does not change), and is
//! described by the shared record `<state>/.lowers/<dev>-<ino>.json` (see
//! [`cloon_core::shared`]). The first container attaches the image and mounts it there; the
//! others only mount their overlay over it; the last one out unmounts it, and the loop device
//! (autoclear) goes with it.
//!
//! Who uses a lower is not counted in a file but read from the mount table, where the kernel keeps
//! it: the overlay mounts whose `lowerdir` is that path. Every decision (mount the lower or join
//! it, unmount it or keep it) is taken under the shared record's lock, and a container's overlay is
//! mounted under that same lock, so a lower is never unmounted between another container's check
//! and its overlay mount. A tool killed at any point leaves no count to go wrong: the next `up`
//! joins or remakes the lower from what is mounted, and the next `down` unmounts it when no
//! overlay names it any more.

use crate::{loopdev, mount};
use cloon_core::mounts::{self, Mount};
use cloon_core::shared::Shared;
use cloon_core::{explain, Code, Error, Result, StateDir, Undo};
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::{Path, PathBuf};

/// The kind of the shared records of lowers: `<state>/.lowers/`.
pub const KIND: &str = "lowers";

/// The shared record of one image's lower.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LowerRecord {
    /// The image, as the first container named it.
    pub image: String,
    pub image_dev: u64,
    pub image_ino: u64,
    /// The loop device that backs the lower mount.
    #[serde(rename = "loop")]
    pub loop_dev: String,
    /// The read-only mount of the image.
    pub lower: String,
}

/// Where the lower of the image `id` (device, inode) lives and is recorded.
#[derive(Debug, Clone)]
pub struct Place {
    /// The record's name, `<dev>-<ino>`.
    pub key: String,
    /// `<state>/.lowers/<dev>-<ino>`.
    pub dir: PathBuf,
    /// `<state>/.lowers/<dev>-<ino>/lower`, the mount point.
    pub lower: PathBuf,
    /// `<state>/.lowers/<dev>-<ino>.json`, the shared record (and its lock).
    pub record: PathBuf,
}

impl Place {
    pub fn new(state: &StateDir, id: (u64, u64)) -> Result<Place> {
        let key = format!("{}-{}", id.0, id.1);
        let dir = state.shared_dir(KIND)?.join(&key);
        Ok(Place {
            lower: dir.join("lower"),
            record: state.shared_path(KIND, &key)?,
            dir,
            key,
        })
    }

    /// The same place, from the lower's path as a container's record names it.
    pub fn of_lower(state: &StateDir, lower: &Path) -> Option<Place> {
        let key = lower.parent()?.file_name()?.to_str()?;
        let (dev, ino) = key.split_once('-')?;
        let place = Place::new(state, (dev.parse().ok()?, ino.parse().ok()?)).ok()?;
        (place.lower == lower).then_some(place)
    }
}

/// Whether `m` is an overlay whose only lower layer (`lowerdir`) is `lower`. The mount table
/// escapes the option's value twice (see [`mounts`]): it is compared as overlayfs was given it.
pub fn is_over(m: &Mount, lower: &Path) -> bool {
    m.fstype == "overlay" && m.overlay_dir_is("lowerdir", lower)
}

/// The overlay mounts of `table` whose `lowerdir` is `lower`: the users of that lower.
pub fn users<'a>(table: &'a [Mount], lower: &Path) -> Vec<&'a Mount> {
    table.iter().filter(|m| is_over(m, lower)).collect()
}

/// What is mounted at the lower now, judged against the image `id`.
enum Found {
    /// Nothing: the lower has to be made.
    Nothing,
    /// The image, read-only from this loop device: the lower to join.
    Image(String),
    /// Something else: refused.
    Other(Mount),
}

fn found(lower: &Path, id: (u64, u64)) -> Result<Found> {
    Ok(match mounts::at(lower)? {
        None => Found::Nothing,
        Some(m)
            if m.fstype == "ext4"
                && m.options.split(',').any(|o| o == "ro")
                && loopdev::backs(Path::new(&m.source), id) =>
        {
            Found::Image(m.source)
        }
        Some(m) => Found::Other(m),
    })
}

/// Holds the lock of an image's lower while a container's overlay is mounted over it. Dropped
/// without [`Joined::commit`], it undoes the lower it made (if any), then lets the lock go.
#[derive(Debug)]
pub struct Joined {
    /// Declared before `lock`: fields are dropped in order, so the undo runs under the lock.
    undo: Undo,
    /// The lock; `None` in a dry run, which takes none.
    lock: Option<Shared>,
    /// The loop device ([`crate::LOOP_VAR`] in a dry run that would attach one).
    pub loop_dev: String,
}

impl Joined {
    /// The overlay is mounted: keeps the lower and lets the lock go (said with `--explain`).
    pub fn commit(mut self) {
        std::mem::take(&mut self.undo).commit();
        if let Some(lock) = self.lock.take() {
            explain::note(&format!("unlock {}", lock.path().display()));
        }
    }
}

/// Joins the lower of the image `id` at `place`, mounting it first when no container has: under
/// the lock, which the returned [`Joined`] holds until the caller's overlay is mounted (or, on
/// failure, until the lower this call made is unmounted again).
pub fn join(state: &StateDir, place: &Place, image: &Path, id: (u64, u64)) -> Result<Joined> {
    explain::note(&format!(
        "lock {} (flock): the lower of this image is joined, or made, under this lock",
        place.record.display()
    ));
    let mut lock = if explain::acting() {
        Some(state.lock_shared(KIND, &place.key)?)
    } else {
        None
    };
    match found(&place.lower, id)? {
        Found::Image(dev) => {
            explain::note(&format!(
                "{} is already mounted from {dev}: this container shares it",
                place.lower.display()
            ));
            if let Some(lock) = &mut lock {
                // A record lost in a crash is written again from what is mounted.
                let record = record_for(place, image, id, &dev);
                if lock.load::<LowerRecord>()?.as_ref() != Some(&record) {
                    lock.store(&record)?;
                }
            }
            return Ok(Joined {
                undo: Undo::new(),
                lock,
                loop_dev: dev,
            });
        }
        Found::Other(m) => {
            return Err(Error::new(
                Code::Drift,
                format!(
                    "{} is a {} mount of {}, not this image's read-only lower: unmount it",
                    place.lower.display(),
                    m.fstype,
                    m.source
                ),
            ))
        }
        Found::Nothing => {}
    }
    let mut undo = Undo::new();
    // Made here: undone (unmounted, removed, unrecorded) if the container's overlay fails.
    let shared_dir = place.dir.parent().unwrap_or(&place.dir);
    if explain::step(&[
        "mkdir",
        "-p",
        "-m",
        "700",
        &shared_dir.to_string_lossy(),
        &place.dir.to_string_lossy(),
    ]) {
        state.create_dir(&place.dir, 0o700)?;
    }
    {
        let (dir, state) = (place.dir.clone(), state.clone());
        undo.push(move || {
            let _ = state.remove_tree(&dir);
        });
    }
    if explain::step(&["mkdir", "-p", "-m", "755", &place.lower.to_string_lossy()]) {
        state.create_dir(&place.lower, 0o755)?;
    }
    let img = explain::quote(&image.to_string_lossy());
    explain::shell(&format!("loop=$(losetup --read-only --find --show {img})"));
    let var = crate::LOOP_VAR;
    let mount_lower = format!(
        "mount -o ro -t ext4 \"{var}\" {}",
        explain::quote(&place.lower.to_string_lossy())
    );
    let Some(held) = lock.as_mut() else {
        explain::shell(&mount_lower);
        say_autoclear();
        explain::note(&format!("record {}", place.record.display()));
        return Ok(Joined {
            undo,
            lock: None,
            loop_dev: var.into(),
        });
    };
    let tag = loopdev::Tag::new(state.root(), id);
    let attached = loopdev::attach_read_only(image, &tag)?;
    let dev = attached.path.to_string_lossy().into_owned();
    explain::note(&format!("{var} is {dev}"));
    explain::note(&format!(
        "cloon also names it {} (its file name field, which losetup cannot set), so that gc knows it",
        tag.as_str()
    ));
    explain::shell(&mount_lower);
    mount::mount_lower(&attached.path, &place.lower)?;
    {
        let lower = place.lower.clone();
        undo.push(move || {
            let _ = mount::unmount(&lower);
        });
    }
    say_autoclear();
    // The mount now holds the device; autoclear detaches it when the lower is unmounted.
    drop(attached);
    explain::note(&format!("record {}", place.record.display()));
    held.store(&record_for(place, image, id, &dev))?;
    {
        // Unrecorded by emptying the record, which its lock's holder then removes.
        let path = place.record.clone();
        undo.push(move || {
            let _ = fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .and_then(|f| f.set_len(0));
        });
    }
    Ok(Joined {
        undo,
        lock,
        loop_dev: dev,
    })
}

fn say_autoclear() {
    explain::note(
        "the mount holds the device: losetup -d only marks it to go with the unmount (autoclear)",
    );
    explain::shell(&format!("losetup -d \"{}\"", crate::LOOP_VAR));
}

fn record_for(place: &Place, image: &Path, id: (u64, u64), dev: &str) -> LowerRecord {
    LowerRecord {
        image: image.to_string_lossy().into_owned(),
        image_dev: id.0,
        image_ino: id.1,
        loop_dev: dev.to_string(),
        lower: place.lower.to_string_lossy().into_owned(),
    }
}

/// What became of a lower that a container left (see [`leave`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Left {
    /// Other overlays still have it as their lower: it stays.
    Stays(usize),
    /// No overlay uses it any more: it was unmounted and removed (said only, in a dry run).
    Removed,
}

/// Leaves the lower at `place` after a container's overlay (`own`, already unmounted unless this
/// is a dry run) is gone: under the lock, if no other overlay names it, unmounts it (the loop
/// device goes with it), removes its directory and its record. `loop_hint` is the device the
/// container's record names, detached too if it still backs the image after the unmount and
/// carries cloon's tag.
pub fn leave(
    state: &StateDir,
    place: &Place,
    own: &Path,
    id: (u64, u64),
    loop_hint: &str,
) -> Result<Left> {
    explain::note(&format!("lock {} (flock)", place.record.display()));
    let mut lock = if explain::acting() {
        Some(state.lock_shared(KIND, &place.key)?)
    } else {
        None
    };
    let left = leave_locked(state, place, lock.as_mut(), own, id, loop_hint)?;
    if lock.is_some() {
        explain::note(&format!("unlock {}", place.record.display()));
    }
    Ok(left)
}

/// [`leave`], for a caller that holds the lower's lock (`None` in a dry run), which lets it go
/// afterwards: the record's file, emptied here, then goes with its directory when it was the
/// last.
pub fn leave_locked(
    state: &StateDir,
    place: &Place,
    mut lock: Option<&mut Shared>,
    own: &Path,
    id: (u64, u64),
    loop_hint: &str,
) -> Result<Left> {
    let table = mounts::table()?;
    let others: Vec<&Mount> = users(&table, &place.lower)
        .into_iter()
        .filter(|m| m.target != own)
        .collect();
    if !others.is_empty() {
        explain::note(&format!(
            "{} is still the lower of {} other overlay(s): it stays",
            place.lower.display(),
            others.len()
        ));
        return Ok(Left::Stays(others.len()));
    }
    explain::note(&format!(
        "no other overlay has {} as its lower: it goes",
        place.lower.display()
    ));
    let recorded = match &mut lock {
        Some(lock) => lock.load::<LowerRecord>()?,
        None => state.read_shared(KIND, &place.key)?,
    };
    let mounted = table.iter().rev().find(|m| m.target == place.lower);
    mount::unmount(&place.lower)?;
    match mounted {
        // The device mounted on cloon's lower is the lower's: detached with it (autoclear),
        // or now if it was attached without autoclear (by hand, the article's way).
        Some(m) if m.source.starts_with("/dev/") => {
            explain::note(&format!("{} goes with this unmount (autoclear)", m.source));
            // In a dry run the lower is still mounted, but the unmount would take the device.
            if explain::acting() {
                loopdev::detach_if_backs(Path::new(&m.source), id)?;
            }
        }
        Some(_) => {}
        // Nothing mounted: the device the records name, if cloon attached it for this state
        // directory and nothing mounts it (a device attached to the image by hand stays).
        None => {
            let device = recorded
                .as_ref()
                .map(|r| r.loop_dev.clone())
                .filter(|d| d.starts_with("/dev/"))
                .unwrap_or_else(|| loop_hint.to_string());
            if device.starts_with("/dev/") {
                let tag = loopdev::Tag::new(state.root(), id);
                loopdev::detach_unused(Path::new(&device), id, &tag)?;
            }
        }
    }
    if place.dir.exists()
        && explain::step(&[
            "rm",
            "-rf",
            "--one-file-system",
            &place.dir.to_string_lossy(),
        ])
    {
        state.remove_tree(&place.dir)?;
    }
    explain::note(&format!("remove the record {}", place.record.display()));
    if let Some(lock) = &mut lock {
        lock.remove()?;
    }
    let shared_dir = place.dir.parent().unwrap_or(&place.dir);
    // The record's holder removes the file, then the directory when it was the last (on unlock).
    explain::step(&[
        "rmdir",
        "--ignore-fail-on-non-empty",
        &shared_dir.to_string_lossy(),
    ]);
    Ok(Left::Removed)
}

/// Differences between the lower at `place` and what `dev` (the container's loop device) and the
/// shared record say; empty when they agree.
pub fn drift(state: &StateDir, place: &Place, dev: &str, id: (u64, u64)) -> Result<Vec<String>> {
    let mut drift = Vec::new();
    let lower = place.lower.display();
    match mounts::at(&place.lower)? {
        Some(m) if m.source == dev && m.options.split(',').any(|o| o == "ro") => {}
        Some(m) => drift.push(format!(
            "{lower} is mounted from {} ({}), not read-only from {dev}",
            m.source, m.options
        )),
        None => drift.push(format!("the image is not mounted on {lower}")),
    }
    if !loopdev::backs(Path::new(dev), id) {
        drift.push(format!("{dev} no longer backs the image"));
    }
    match state.read_shared::<LowerRecord>(KIND, &place.key)? {
        Some(r) if r.loop_dev == dev && Path::new(&r.lower) == place.lower => {}
        Some(r) => drift.push(format!(
            "the shared record {} names {} on {}, not {dev} on {lower}",
            place.record.display(),
            r.loop_dev,
            r.lower
        )),
        None => drift.push(format!(
            "the shared record {} of the lower is missing",
            place.record.display()
        )),
    }
    Ok(drift)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(target: &str, fstype: &str, options: &str) -> Mount {
        Mount {
            dev: 0,
            target: PathBuf::from(target),
            fstype: fstype.into(),
            source: "overlay".into(),
            options: options.into(),
        }
    }

    #[test]
    fn users_are_the_overlays_whose_lowerdir_is_the_lower() {
        let table = [
            mount(
                "/s/A/overlay/rootfs",
                "overlay",
                "rw,lowerdir=/s/.lowers/1-2/lower,upperdir=/u,workdir=/w",
            ),
            mount(
                "/s/B/overlay/rootfs",
                "overlay",
                "rw,lowerdir=/s/.lowers/1-2/lower2,upperdir=/u,workdir=/w",
            ),
            mount(
                "/s/C/overlay/rootfs",
                "overlay",
                "rw,upperdir=/u,lowerdir=/s/.lowers/1-2/lower,workdir=/w,uuid=on",
            ),
            mount(
                "/s/.lowers/1-2/lower",
                "ext4",
                "ro,lowerdir=/s/.lowers/1-2/lower",
            ),
        ];
        let found: Vec<_> = users(&table, Path::new("/s/.lowers/1-2/lower"))
            .iter()
            .map(|m| m.target.clone())
            .collect();
        assert_eq!(
            found,
            [
                PathBuf::from("/s/A/overlay/rootfs"),
                PathBuf::from("/s/C/overlay/rootfs")
            ]
        );
    }

    #[test]
    fn users_of_a_lower_whose_path_the_mount_table_escapes() {
        let table = mounts::parse(concat!(
            r"80 65 0:49 / /s\040t/A/overlay/rootfs rw - overlay overlay ",
            r"rw,lowerdir=/s\040t/.lowers/1-2/lower,upperdir=/s\040t/A/overlay/upper,workdir=/w",
            "\n",
            r"81 65 0:50 / /s\011c,d/B/overlay/rootfs rw - overlay overlay ",
            r"rw,lowerdir=/s\011c\134\054d/.lowers/1-2/lower,upperdir=/u,workdir=/w",
            "\n",
        ));
        assert_eq!(users(&table, Path::new("/s t/.lowers/1-2/lower")).len(), 1);
        assert_eq!(
            users(&table, Path::new("/s\tc,d/.lowers/1-2/lower")).len(),
            1
        );
        assert!(users(&table, Path::new(r"/s\040t/.lowers/1-2/lower")).is_empty());
    }

    #[test]
    fn a_place_is_named_after_the_image_identity_and_found_again_from_its_lower() {
        let st = StateDir::new(Some(Path::new("/run/cloon"))).unwrap();
        let p = Place::new(&st, (2049, 131)).unwrap();
        assert_eq!(p.lower, Path::new("/run/cloon/.lowers/2049-131/lower"));
        assert_eq!(p.record, Path::new("/run/cloon/.lowers/2049-131.json"));
        assert_eq!(Place::of_lower(&st, &p.lower).unwrap().key, "2049-131");
        assert!(Place::of_lower(&st, Path::new("/run/cloon/A/overlay/lower")).is_none());
        assert!(Place::of_lower(&st, Path::new("/elsewhere/.lowers/1-2/lower")).is_none());
    }
}
