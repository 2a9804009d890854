//! cloon-img: step 1 of the article, the root filesystem image.
//!
//! The article writes 1 GB of zeros with `dd`, runs `mkfs.ext4`, attaches the file with `losetup`,
//! mounts it, runs `debootstrap` into it and unmounts it. cloon-img fills a directory first
//! (busybox, a directory of yours, or debootstrap) and then lets `mkfs.ext4 -d` write the image
//! from it: a sparse file, no loop device, no mount.

pub mod busybox;
pub mod debootstrap;
pub mod ext4;
pub mod mkfs;
pub mod size;

use cloon_core::doc::Image;
use cloon_core::state::{absolute, remove_tree_one_fs};
use cloon_core::{explain, host, Code, Context, Error, Result, Undo};
use std::path::{Path, PathBuf};

/// The stage name in error documents.
pub const STAGE: &str = "cloon-img";
/// The key of this stage in the document.
pub const PART: &str = "image";

/// Where the root filesystem comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Debian's static busybox and a minimal `/etc` (offline).
    Busybox,
    /// A directory already holding a root filesystem.
    Dir(PathBuf),
    /// `debootstrap SUITE` with these packages from this mirror.
    Debootstrap {
        suite: String,
        include: String,
        mirror: Option<String>,
    },
}

/// What `cloon-img create` is asked to do.
#[derive(Debug, Clone)]
pub struct Create {
    pub image: PathBuf,
    pub source: Source,
    /// Size in bytes; `None` chooses one from the content.
    pub size: Option<u64>,
    /// Replace an existing file.
    pub force: bool,
}

/// The `image` part for the file at `path`, which must be an ext4 image.
pub fn info(path: &Path) -> Result<Image> {
    let path = absolute(path)?;
    let meta = std::fs::metadata(&path).map_err(|e| {
        Error::io(format!("cannot read the image {}", path.display()), &e).details(format!(
            "{e}; make it with `cloon-img create --busybox {}`",
            path.display()
        ))
    })?;
    if !meta.is_file() {
        return Err(Error::invalid(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    let sb = ext4::probe(&path)?;
    Ok(Image {
        path: path.to_string_lossy().into_owned(),
        fstype: sb.fstype.into(),
        bytes: meta.len(),
    })
}

/// Builds the image; on failure nothing is left (no half-written image, no staging directory).
///
/// With `--explain`, each step is said on stderr as a shell command first; with `--dry-run`, the
/// steps are said and nothing is made: the `image` part returned then has the size given by
/// `--size` or computed from `--from-dir`, else 0 (the script computes it in `$size`).
pub fn create(req: &Create) -> Result<Image> {
    let acting = explain::acting();
    if acting {
        host::require_root(STAGE, "give the image's files to root")?;
    }
    let image = absolute(&req.image)?;
    let parent = image.parent().filter(|p| p.is_dir()).ok_or_else(|| {
        Error::invalid(format!(
            "the directory of {} does not exist: create it first",
            image.display()
        ))
    })?;
    let file_name = image
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if image.exists() && !req.force {
        return Err(Error::new(
            Code::NameTaken,
            format!(
                "{} already exists: give --force to replace it, or another path",
                image.display()
            ),
        ));
    }
    let mut undo = Undo::new();
    let staging = parent.join(format!(".{file_name}.cloon-rootfs-{}", std::process::id()));
    let mut staged = false;
    let content = match &req.source {
        Source::Dir(dir) => {
            let dir = absolute(dir)?;
            if !dir.is_dir() {
                return Err(Error::invalid(format!(
                    "--from-dir {}: no such directory",
                    dir.display()
                )));
            }
            dir
        }
        Source::Busybox | Source::Debootstrap { .. } => {
            if let Source::Debootstrap { suite, .. } = &req.source {
                debootstrap::check_suite(suite)?;
            }
            explain::note(
                "fill a staging directory, then write the image from it with mkfs.ext4 -d: no loop device, no mount",
            );
            if explain::step(&["mkdir", &staging.to_string_lossy()]) {
                std::fs::create_dir(&staging)
                    .context(|| format!("cannot create {}", staging.display()))?;
            }
            staged = true;
            let s = staging.clone();
            undo.push(move || {
                let _ = remove_staging(&s);
            });
            match &req.source {
                Source::Busybox => busybox::populate(&staging)?,
                Source::Debootstrap {
                    suite,
                    include,
                    mirror,
                } => {
                    let mirror = mirror.clone().unwrap_or_else(debootstrap::host_mirror);
                    debootstrap::run(suite, include, &mirror, &staging)?;
                }
                Source::Dir(_) => unreachable!("handled above"),
            }
            staging.clone()
        }
    };
    let bytes = match req.size {
        Some(b) => Some(b),
        None if acting || !staged => {
            let used = mkfs::disk_usage(&content)?;
            let bytes = size::auto(used);
            explain::note(&format!(
                "size: {used} bytes of files, plus a quarter, plus 32 MiB, rounded up to a MiB: {bytes}"
            ));
            Some(bytes)
        }
        None => {
            explain::note(
                "size: the files' disk usage, plus a quarter, plus 32 MiB, rounded up to a MiB",
            );
            explain::shell(&size::auto_shell(&content));
            None
        }
    };
    let tmp = parent.join(format!(".{file_name}.cloon-tmp-{}", std::process::id()));
    let t = tmp.clone();
    undo.push(move || {
        if t.exists() && explain::step(&["rm", "-f", &t.to_string_lossy()]) {
            let _ = std::fs::remove_file(&t);
        }
    });
    mkfs::format(&tmp, bytes, &content, mkfs::LABEL)?;
    publish(&tmp, &image, req.force)?;
    undo.commit(); // the image is in place
    if staged {
        remove_staging(&staging)?;
    }
    if acting {
        info(&image)
    } else {
        Ok(Image {
            path: image.to_string_lossy().into_owned(),
            fstype: "ext4".into(),
            bytes: bytes.unwrap_or(0),
        })
    }
}

/// `rm -rf --one-file-system DIR`: removes the staging directory, never across a mount point.
fn remove_staging(dir: &Path) -> Result<()> {
    if explain::step(&["rm", "-rf", "--one-file-system", &dir.to_string_lossy()]) {
        remove_tree_one_fs(dir)?;
    }
    Ok(())
}

/// Moves the finished image into place: atomically, and without replacing a file that appeared
/// meanwhile unless `force`.
fn publish(tmp: &Path, image: &Path, force: bool) -> Result<()> {
    let how = if force { "-f" } else { "-n" };
    let (t, i) = (tmp.to_string_lossy(), image.to_string_lossy());
    if !explain::step(&["mv", how, "-T", &t, &i]) {
        return Ok(());
    }
    let flags = if force {
        nix::fcntl::RenameFlags::empty()
    } else {
        nix::fcntl::RenameFlags::RENAME_NOREPLACE
    };
    nix::fcntl::renameat2(
        nix::fcntl::AT_FDCWD,
        tmp,
        nix::fcntl::AT_FDCWD,
        image,
        flags,
    )
    .map_err(|e| {
        if e == nix::errno::Errno::EEXIST {
            Error::new(
                Code::NameTaken,
                format!(
                    "{} appeared meanwhile: give --force to replace it",
                    image.display()
                ),
            )
        } else {
            Error::sys(
                format!("cannot move the new image to {}", image.display()),
                e,
            )
        }
    })
}
