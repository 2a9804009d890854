//! cloon-overlay: step 2 of the article, the copy-on-write view of the image.
//!
//! The article runs `losetup`, mounts the image on `lower`, and mounts
//! `overlay -o lowerdir=lower,upperdir=upper,workdir=work` on `rootfs`. Writes land in `upper`;
//! the image, attached read-only and mounted read-only, never changes. Unlike the article, which
//! attaches and mounts the image again for each container, every container of one image shares
//! one loop device and one lower mount (see [`lower`]): only its overlay is its own.

pub mod gc;
pub mod loopdev;
pub mod lower;
pub mod mount;
pub mod stage;

use cloon_core::doc::{Image, Overlay};
use cloon_core::state::absolute;
use cloon_core::{
    cli, explain, host, inuse, mounts, Code, Document, Error, Result, StateDir, Undo,
};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The stage name in error documents.
pub const STAGE: &str = "cloon-overlay";
/// The key of this stage in the document and in the state directory.
pub const PART: &str = <Overlay as cloon_core::doc::Part>::KEY;

/// Flags of `cloon-overlay up`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct UpArgs {
    /// The ext4 image [default: the document's image.path]
    #[arg(long)]
    pub image: Option<PathBuf>,
    /// The container's name [default: the document's]
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
}

/// What cloon-overlay records: the document's part, and the image's identity, so that a loop
/// device is only ever detached while it still backs this image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub image: String,
    pub image_dev: u64,
    pub image_ino: u64,
    #[serde(flatten)]
    pub overlay: Overlay,
}

impl Record {
    fn image_id(&self) -> (u64, u64) {
        (self.image_dev, self.image_ino)
    }
}

/// The directories of one container's overlay: its own under its state directory, the lower
/// shared by every container of the image.
fn layout(dir: &Path, lower: &Path) -> Overlay {
    let p = |leaf: &str| dir.join(leaf).to_string_lossy().into_owned();
    Overlay {
        loop_dev: String::new(),
        lower: lower.to_string_lossy().into_owned(),
        upper: p("upper"),
        work: p("work"),
        rootfs: p("rootfs"),
    }
}

/// `up`: mounts the overlay of the image given by `--image` or the document, adds `overlay`.
pub fn up(state: &StateDir, args: &UpArgs, input: Option<Document>) -> Result<Document> {
    let mut doc = input.unwrap_or_default();
    let name = cli::pick_name(args.name.as_deref(), Some(&doc), STAGE)?;
    let image = match &args.image {
        Some(p) => p.clone(),
        None => doc
            .part::<Image>()?
            .map(|i| PathBuf::from(i.path))
            .ok_or_else(|| {
                Error::invalid("no image: give --image IMG or the output of cloon-img")
            })?,
    };
    doc.set_name(&name)?;
    let part = mount_image(state, &name, &image)?;
    doc.set(PART, &part);
    Ok(doc)
}

/// Refuses an image that a loop device exposes read-write: whoever holds that device can change
/// the filesystem under the containers' read-only lower, which ext4 does not expect.
fn refuse_writable_devices(image: &Path, id: (u64, u64)) -> Result<()> {
    match loopdev::writable_devices_backing(id).first() {
        None => Ok(()),
        Some(dev) => Err(Error::new(
            Code::TryAgain,
            format!(
                "{} is attached read-write to {}: a writer could change it under the containers; \
                 unmount and detach it first (umount ...; losetup -d {})",
                image.display(),
                dev.display(),
                dev.display()
            ),
        )),
    }
}

/// The shell variable that holds the loop device in the commands `--explain` and `--dry-run` say,
/// and the `overlay.loop` of a dry run's document: the device is known only once attached.
pub const LOOP_VAR: &str = "$loop";

/// Mounts the overlay of `image`, over the image's shared lower, which is attached and mounted
/// first when no other container has done it (see [`lower`]); all or nothing. With `--explain`,
/// each step is said as a shell command first; with `--dry-run`, the steps are said and nothing
/// is done (an image that does not exist yet, as after `cloon-img --dry-run`, is not checked, and
/// its lower is named `0-0`).
fn mount_image(state: &StateDir, name: &str, image: &Path) -> Result<Overlay> {
    let acting = explain::acting();
    if acting {
        host::require_root(STAGE, "attach loop devices and mount")?;
    }
    let (image, (image_dev, image_ino)) = if acting || image.exists() {
        let image = PathBuf::from(cloon_img::info(image)?.path);
        let id = loopdev::file_id(&image)?;
        refuse_writable_devices(&image, id)?;
        (image, id)
    } else {
        let image = absolute(image)?;
        explain::note(&format!(
            "dry run: {} does not exist yet, it is not checked; its lower is named 0-0 here",
            image.display()
        ));
        (image, (0, 0))
    };
    let place = lower::Place::new(state, (image_dev, image_ino))?;
    let dir = state.dir(name)?.join(PART);
    let mut record = Record {
        image: image.to_string_lossy().into_owned(),
        image_dev,
        image_ino,
        overlay: layout(&dir, &place.lower),
    };
    let o = record.overlay.clone();
    let (upper, work, rootfs) = (
        Path::new(&o.upper),
        Path::new(&o.work),
        Path::new(&o.rootfs),
    );
    let options = mount::overlay_options(&place.lower, upper, work)?;
    // Write-ahead: the container's state directory is locked for the whole `up` (so that `gc`
    // leaves a record being written alone, and a second `up` of the name waits, then is refused),
    // and the record, naming the lower, is written before anything is made, so that `down` finds
    // whatever a killed `up` made. The lock outlives the undo stack: a failure is undone under it.
    let _lock = if acting {
        explain::state_dir(state, name)?;
        Some(state.lock(name)?)
    } else {
        None
    };
    let mut undo = Undo::new();
    explain::claim(state, &mut undo, name, PART, &record)?;
    if explain::step(&["mkdir", "-m", "700", &dir.to_string_lossy()]) {
        state.create_dir(&dir, 0o700)?;
    }
    {
        let (dir, state) = (dir.clone(), state.clone());
        undo.push(move || {
            let _ = remove_dir(&state, &dir);
        });
    }
    let mut words = vec!["mkdir", "-m", "755"];
    words.extend([&o.upper, &o.work, &o.rootfs].map(String::as_str));
    if explain::step(&words) {
        for d in [upper, work, rootfs] {
            state.create_dir(d, 0o755)?;
        }
    }
    // The lower is joined (or made) and the overlay mounted under the lower's lock.
    let joined = lower::join(state, &place, &image, (image_dev, image_ino))?;
    record.overlay.loop_dev = joined.loop_dev.clone();
    if acting {
        state.update(name, PART, &record)?;
    }
    if explain::step(&[
        "mount", "-t", "overlay", "overlay", "-o", &options, &o.rootfs,
    ]) {
        mount::mount_overlay(&options, rootfs)?;
    }
    joined.commit();
    undo.commit();
    Ok(record.overlay)
}

/// `rm -rf --one-file-system DIR`, if DIR exists: never across a mount point, never through a
/// link (the state layer's removal).
fn remove_dir(state: &StateDir, dir: &Path) -> Result<()> {
    if dir.exists() && explain::step(&["rm", "-rf", "--one-file-system", &dir.to_string_lossy()]) {
        state.remove_tree(dir)?;
    }
    Ok(())
}

/// `down` of `name`, for a caller that holds the lock of its state directory (or in a dry run):
/// unmounts the overlay, then leaves the shared lower, which goes with the last container that
/// uses it (see [`lower::leave`]); removes the directories and the record. What is already gone
/// counts as done. Refused (code 11, nothing changed) while a live container uses the root
/// filesystem (see [`users`]).
pub fn down_locked(state: &StateDir, name: &str) -> Result<()> {
    let Some(record) = state.load::<Record>(name, PART)? else {
        explain::note(&format!(
            "cloon has no overlay for \"{name}\": nothing to undo"
        ));
        if explain::acting() {
            // What a tool killed before it wrote its record leaves: an empty directory.
            state.remove_dir_if_empty(name)?;
        }
        return Ok(());
    };
    if explain::acting() {
        host::require_root(STAGE, "unmount and detach loop devices")?;
    }
    let o = &record.overlay;
    let rootfs = Path::new(&o.rootfs);
    refuse_in_use(state, name, &record)?;
    mount::unmount(rootfs)?;
    let place = lower::Place::of_lower(state, Path::new(&o.lower)).ok_or_else(|| {
        Error::config(format!(
            "the record of \"{name}\" names the lower {}, which is not a shared lower of {}",
            o.lower,
            state.root().display()
        ))
    })?;
    lower::leave(state, &place, rootfs, record.image_id(), &o.loop_dev)?;
    remove_dir(state, &state.dir(name)?.join(PART))?;
    explain::release(state, name, PART)
}

/// `down --dry-run` of an overlay that the document's `overlay` part describes and that cloon has
/// no record of (a dry-run pipeline's script mounted it): says the commands that unmount and
/// remove it, as [`down_locked`] says them, and does nothing. Whether another overlay still has
/// the lower is known only when the script runs: the lower's commands run if none has. Its loop
/// device (`$loop` in the document) goes with the unmount of the lower: the up script's
/// `losetup -d` marked it to (autoclear).
pub fn down_unrecorded(state: &StateDir, part: &Overlay) -> Result<()> {
    let q = |p: &Path| explain::quote(&p.to_string_lossy());
    let rootfs = Path::new(&part.rootfs);
    let lower = Path::new(&part.lower);
    explain::step(&["umount", &part.rootfs]);
    match lower::Place::of_lower(state, lower) {
        Some(place) => {
            let shared = place.dir.parent().unwrap_or(&place.dir);
            explain::note(&format!(
                "the lower goes unless another overlay still has it as its lower; its device \
                 {} goes with its unmount (autoclear)",
                part.loop_dev
            ));
            explain::shell(&format!(
                "if ! findmnt -rn -t overlay -o OPTIONS | grep -qF {}; then",
                explain::quote(&format!("lowerdir={},", lower.display()))
            ));
            explain::shell(&format!("  umount {}", q(lower)));
            explain::shell(&format!("  rm -rf --one-file-system {}", q(&place.dir)));
            explain::shell(&format!("  rmdir --ignore-fail-on-non-empty {}", q(shared)));
            explain::shell("fi");
        }
        None => explain::note(&format!(
            "{} is not a shared lower of {}: it stays",
            lower.display(),
            state.root().display()
        )),
    }
    if let Some(dir) = rootfs.parent() {
        explain::step(&["rm", "-rf", "--one-file-system", &dir.to_string_lossy()]);
    }
    Ok(())
}

/// Who uses the root filesystem of `name` (see [`inuse::rootfs_users`]): the live containers
/// cloon-run recorded on it, and every process whose root is in it (in whatever mount namespace,
/// its overlay known by its device where it is mounted here, by its upper directory elsewhere).
pub fn users(state: &StateDir, name: &str, record: &Record) -> Result<Vec<inuse::User>> {
    let o = &record.overlay;
    inuse::rootfs_users(state, name, Path::new(&o.rootfs), Some(Path::new(&o.upper)))
}

/// Refuses (code 11) to take down the overlay of `name` while a live container uses it: an
/// unmount here would succeed (the container has its own copy of the mount), and the removal of
/// the upper directory would then delete the data of a running container.
fn refuse_in_use(state: &StateDir, name: &str, record: &Record) -> Result<()> {
    let users = users(state, name, record)?;
    if users.is_empty() {
        return Ok(());
    }
    Err(inuse::refusal(
        &format!(
            "the root filesystem {} of \"{name}\"",
            record.overlay.rootfs
        ),
        &users,
    ))
}

/// Compares the record with the mount table, the loop device and the shared lower's record; lists
/// every difference. Returns the `overlay` part as recorded.
pub fn check(state: &StateDir, name: &str) -> Result<Overlay> {
    let record = record(state, name)?;
    let o = &record.overlay;
    let mut drift = Vec::new();
    match mounts::at(Path::new(&o.rootfs))? {
        Some(m) if m.fstype == "overlay" => {
            if !lower::is_over(&m, Path::new(&o.lower)) {
                drift.push(format!(
                    "the overlay on {} is not over the lower {} (its lowerdir is {})",
                    o.rootfs,
                    o.lower,
                    m.option("lowerdir").unwrap_or_default()
                ));
            }
        }
        Some(m) => drift.push(format!(
            "{} is a {} mount, not the overlay",
            o.rootfs, m.fstype
        )),
        None => drift.push(format!("the overlay is not mounted on {}", o.rootfs)),
    }
    match lower::Place::of_lower(state, Path::new(&o.lower)) {
        Some(place) => drift.extend(lower::drift(state, &place, &o.loop_dev, record.image_id())?),
        None => drift.push(format!(
            "{} is not a shared lower of {}",
            o.lower,
            state.root().display()
        )),
    }
    if drift.is_empty() {
        Ok(record.overlay)
    } else {
        Err(Error::new(
            Code::Drift,
            format!("the overlay of \"{name}\" has drifted"),
        )
        .details(drift.join("; ")))
    }
}

/// The record of `name` (what `show` prints), or [`Code::Unknown`].
pub fn record(state: &StateDir, name: &str) -> Result<Record> {
    state.require(name, PART, "overlay")
}
