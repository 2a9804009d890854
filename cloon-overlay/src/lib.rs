//! cloon-overlay: step 2 of the article, the copy-on-write view of the image.
//!
//! The article runs `losetup`, mounts the image on `lower`, and mounts
//! `overlay -o lowerdir=lower,upperdir=upper,workdir=work` on `rootfs`. Writes land in `upper`;
//! the image, attached read-only and mounted read-only, never changes.

pub mod loopdev;
pub mod mount;

use cloon_core::doc::{Image, Overlay};
use cloon_core::state::{absolute, remove_tree_one_fs};
use cloon_core::{
    cli, explain, host, mounts, Code, Context, Document, Error, Result, StateDir, Undo,
};
use serde::{Deserialize, Serialize};
use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// The stage name in error documents.
pub const STAGE: &str = "cloon-overlay";
/// The key of this stage in the document and in the state directory.
pub const PART: &str = "overlay";

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

/// The directories of one container's overlay under its state directory.
fn layout(dir: &Path) -> Overlay {
    let p = |leaf: &str| dir.join(leaf).to_string_lossy().into_owned();
    Overlay {
        loop_dev: String::new(),
        lower: p("lower"),
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
            .get::<Image>(cloon_img::PART)?
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

/// The shell variable that holds the loop device in the commands `--explain` and `--dry-run` say,
/// and the `overlay.loop` of a dry run's document: the device is known only once attached.
pub const LOOP_VAR: &str = "$loop";

/// Attaches `image`, mounts it read-only and the overlay over it; all or nothing. With
/// `--explain`, each step is said as a shell command first; with `--dry-run`, the steps are said
/// and nothing is done (an image that does not exist yet, as after `cloon-img --dry-run`, is not
/// checked).
fn mount_image(state: &StateDir, name: &str, image: &Path) -> Result<Overlay> {
    let acting = explain::acting();
    if acting {
        host::require_root(STAGE, "attach loop devices and mount")?;
    }
    let (image, (image_dev, image_ino)) = if acting || image.exists() {
        let image = PathBuf::from(cloon_img::info(image)?.path);
        let id = loopdev::file_id(&image)?;
        (image, id)
    } else {
        let image = absolute(image)?;
        explain::note(&format!(
            "dry run: {} does not exist yet, it is not checked",
            image.display()
        ));
        (image, (0, 0))
    };
    let dir = state.dir(name)?.join(PART);
    let mut record = Record {
        image: image.to_string_lossy().into_owned(),
        image_dev,
        image_ino,
        overlay: layout(&dir),
    };
    let o = record.overlay.clone();
    let (lower, upper, work, rootfs) = (
        Path::new(&o.lower),
        Path::new(&o.upper),
        Path::new(&o.work),
        Path::new(&o.rootfs),
    );
    let options = mount::overlay_options(lower, upper, work)?;
    let mut undo = Undo::new();
    explain::claim(state, &mut undo, name, PART, &record)?;
    if explain::step(&["mkdir", "-m", "700", &dir.to_string_lossy()]) {
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .context(|| format!("cannot create {}", dir.display()))?;
    }
    {
        let dir = dir.clone();
        undo.push(move || {
            let _ = remove_dir(&dir);
        });
    }
    let mut words = vec!["mkdir", "-m", "755"];
    words.extend([&o.lower, &o.upper, &o.work, &o.rootfs].map(String::as_str));
    if explain::step(&words) {
        for d in [lower, upper, work, rootfs] {
            fs::DirBuilder::new()
                .mode(0o755)
                .create(d)
                .context(|| format!("cannot create {}", d.display()))?;
        }
    }

    let img = explain::quote(&record.image);
    explain::shell(&format!("loop=$(losetup --read-only --find --show {img})"));
    let attached = if acting {
        let attached = loopdev::attach_read_only(&image)?;
        record.overlay.loop_dev = attached.path.to_string_lossy().into_owned();
        explain::note(&format!("{LOOP_VAR} is {}", record.overlay.loop_dev));
        state.update(name, PART, &record)?;
        Some(attached)
    } else {
        record.overlay.loop_dev = LOOP_VAR.into();
        None
    };
    let mount_lower = format!(
        "mount -o ro -t ext4 \"{LOOP_VAR}\" {}",
        explain::quote(&o.lower)
    );
    if let (true, Some(a)) = (explain::shell(&mount_lower), &attached) {
        mount::mount_lower(&a.path, lower)?;
    }
    {
        let lower = lower.to_path_buf();
        undo.push(move || {
            let _ = mount::unmount(&lower);
        });
    }
    // The mount now holds the device; autoclear detaches it when the lower is unmounted.
    explain::note(
        "the mount holds the device: losetup -d only marks it to go with the unmount (autoclear)",
    );
    explain::shell(&format!("losetup -d \"{LOOP_VAR}\""));
    drop(attached);
    if explain::step(&[
        "mount", "-t", "overlay", "overlay", "-o", &options, &o.rootfs,
    ]) {
        mount::mount_overlay(&options, rootfs)?;
    }
    undo.commit();
    Ok(record.overlay)
}

/// `rm -rf --one-file-system DIR`, if DIR exists: never across a mount point.
fn remove_dir(dir: &Path) -> Result<()> {
    if dir.exists() && explain::step(&["rm", "-rf", "--one-file-system", &dir.to_string_lossy()]) {
        remove_tree_one_fs(dir)?;
    }
    Ok(())
}

/// Unmounts the overlay and the lower, lets the loop device go, removes the directories and
/// the record. What is already gone counts as done.
pub fn down(state: &StateDir, name: &str) -> Result<()> {
    let Some(record) = state.load::<Record>(name, PART)? else {
        explain::note(&format!(
            "cloon has no overlay for \"{name}\": nothing to undo"
        ));
        return Ok(());
    };
    if explain::acting() {
        host::require_root(STAGE, "unmount and detach loop devices")?;
    }
    let o = &record.overlay;
    mount::unmount(Path::new(&o.rootfs))?;
    let lower_mounted = mounts::at(Path::new(&o.lower))?.is_some();
    mount::unmount(Path::new(&o.lower))?;
    if lower_mounted {
        explain::note(&format!(
            "{} goes with this unmount (autoclear)",
            o.loop_dev
        ));
    }
    // In a dry run the lower is still mounted, and the device still attached, but the unmount
    // would take it.
    if !o.loop_dev.is_empty() && (explain::acting() || !lower_mounted) {
        loopdev::detach_if_ours(Path::new(&o.loop_dev), record.image_id())?;
    }
    remove_dir(&state.dir(name)?.join(PART))?;
    explain::release(state, name, PART)
}

/// Compares the record with the mount table and the loop device; lists every difference.
/// Returns the `overlay` part as recorded.
pub fn check(state: &StateDir, name: &str) -> Result<Overlay> {
    let record = record(state, name)?;
    let o = &record.overlay;
    let mut drift = Vec::new();
    match mounts::at(Path::new(&o.rootfs))? {
        Some(m) if m.fstype == "overlay" => {}
        Some(m) => drift.push(format!(
            "{} is a {} mount, not the overlay",
            o.rootfs, m.fstype
        )),
        None => drift.push(format!("the overlay is not mounted on {}", o.rootfs)),
    }
    match mounts::at(Path::new(&o.lower))? {
        Some(m) if m.source == o.loop_dev => {}
        Some(m) => drift.push(format!(
            "{} is mounted from {}, not {}",
            o.lower, m.source, o.loop_dev
        )),
        None => drift.push(format!("the image is not mounted on {}", o.lower)),
    }
    if !loopdev::backs(Path::new(&o.loop_dev), record.image_id()) {
        drift.push(format!("{} no longer backs {}", o.loop_dev, record.image));
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
