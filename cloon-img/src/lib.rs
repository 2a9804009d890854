//! cloon-img: step 1 of the article, the root filesystem image.
//!
//! The article writes 1 GB of zeros with `dd`, runs `mkfs.ext4`, attaches the file with `losetup`,
//! mounts it, runs `debootstrap` into it and unmounts it. cloon-img fills a directory first
//! (busybox, a directory of yours, debootstrap, a root filesystem tarball, or an OCI image) and
//! then lets `mkfs.ext4 -d` write the image from it: a sparse file, no loop device, no mount.

pub mod busybox;
pub mod cli;
pub mod debootstrap;
pub mod ext4;
pub mod leftovers;
pub mod mkfs;
pub mod oci;
pub mod reproducible;
pub mod size;
pub mod tar;
pub mod whiteout;

use cloon_core::doc::{Image, ImageConfig};
use cloon_core::state::absolute;
use cloon_core::{explain, host, Code, Context, Error, Result, Undo};
use leftovers::{Part, Record, StagingName};
use std::path::{Path, PathBuf};

/// The stage name in error documents.
pub const STAGE: &str = "cloon-img";
/// The key of this stage in the document.
pub const PART: &str = <cloon_core::doc::Image as cloon_core::doc::Part>::KEY;

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
    /// A root filesystem tarball, plain or compressed; `-` reads it from stdin.
    Tar(PathBuf),
    /// An OCI image layout, and the tag of the image in it (needed when it holds several).
    Oci { dir: PathBuf, tag: Option<String> },
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
    /// Make the same bytes from the same input (see [`reproducible`]).
    pub reproducible: bool,
    /// The filesystem's UUID with `reproducible` [default: derived from the content].
    pub uuid: Option<String>,
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
        config: None,
    })
}

/// `cloon-img info`: a new document holding the `image` part of the image at `path`, the shape
/// `create` prints, so that `cloon-img info IMG | cloon-overlay ...` works.
pub fn info_document(path: &Path) -> Result<cloon_core::Document> {
    let mut doc = cloon_core::Document::new();
    doc.set(PART, &info(path)?);
    Ok(doc)
}

/// Builds the image; on failure nothing is left (no half-written image, no staging directory).
///
/// The staging items are made next to the image under names its record lists (see
/// [`leftovers`]); what a killed run of the same image left is removed first.
///
/// With `--explain`, each step is said on stderr as a shell command first; with `--dry-run`, the
/// steps are said and nothing is made: the `image` part returned then has the size given by
/// `--size` or computed from `--from-dir`, else 0 (the script computes it in `$size`).
pub fn create(req: &Create) -> Result<Image> {
    check_reproducible(req)?;
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
    if acting {
        leftovers::clean_for(&image);
    }
    if image.exists() && !req.force {
        return Err(Error::new(
            Code::NameTaken,
            format!(
                "{} already exists: give --force to replace it, or another path",
                image.display()
            ),
        ));
    }
    let repro_epoch = if req.reproducible {
        Some(reproducible::epoch()?)
    } else {
        None
    };
    // Declared before `undo`, so dropped after it: the record goes once the undo removed what
    // it names.
    let record = if acting {
        Some(Record::begin(&image)?)
    } else {
        None
    };
    let will_make = |path: &Path| match &record {
        Some(r) => r.will_make(path),
        None => Ok(()),
    };
    // A staging directory: said (`mkdir`), named in the record ahead, made when acting, and
    // removed if the create fails.
    let make_staging = |dir: &Path, undo: &mut Undo| -> Result<()> {
        if explain::step(&["mkdir", &dir.to_string_lossy()]) {
            will_make(dir)?;
            std::fs::create_dir(dir).context(|| format!("cannot create {}", dir.display()))?;
        }
        remove_on_failure(undo, dir);
        Ok(())
    };
    let mut undo = Undo::new();
    let staging_name =
        |part| parent.join(StagingName::new(&file_name, std::process::id(), part).file_name());
    let staging = staging_name(Part::Rootfs);
    let mut config: Option<ImageConfig> = None;
    let copy_dir = match &req.source {
        Source::Dir(dir) => {
            let dir = absolute(dir)?;
            if !dir.is_dir() {
                return Err(Error::invalid(format!(
                    "--from-dir {}: no such directory",
                    dir.display()
                )));
            }
            Some(dir)
        }
        _ => None,
    };
    // A directory of yours is written as it is, unless its times must change: then a copy is.
    let staged = copy_dir.is_none() || req.reproducible;
    let content = match (&copy_dir, staged) {
        (Some(dir), false) => dir.clone(),
        _ => {
            if let Source::Debootstrap { suite, .. } = &req.source {
                debootstrap::check_suite(suite)?;
            }
            // Open the input before making anything.
            let mut tarball = match &req.source {
                Source::Tar(file) => Some(open_tarball(file)?),
                _ => None,
            };
            let mut oci_input = match &req.source {
                Source::Oci { dir, .. } => Some(OciInput::open(dir)?),
                _ => None,
            };
            explain::note(
                "fill a staging directory, then write the image from it with mkfs.ext4 -d: no loop device, no mount",
            );
            make_staging(&staging, &mut undo)?;
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
                Source::Dir(_) => {
                    copy_tree(copy_dir.as_deref().unwrap_or(Path::new(".")), &staging)?
                }
                Source::Tar(_) => {
                    let (name, total, reader) = tarball.as_mut().expect("opened above");
                    tar::extract(reader.as_mut(), name, *total, &staging)?;
                    match if acting {
                        tar::classify(&staging)
                    } else {
                        tar::Archive::Rootfs
                    } {
                        tar::Archive::Rootfs => {}
                        tar::Archive::DockerSave => return Err(tar::docker_save_error(name)),
                        tar::Archive::OciLayout => {
                            // An oci-archive (or a docker save of Docker >= 25): its layout
                            // moves aside, and the image in it fills the staging directory.
                            let archive = staging_name(Part::Layer(0));
                            will_make(&archive)?;
                            let (st, ar) = (staging.to_string_lossy(), archive.to_string_lossy());
                            explain::step(&["mv", "-T", &st, &ar]);
                            std::fs::rename(&staging, &archive)
                                .context(|| format!("cannot move {} aside", staging.display()))?;
                            remove_on_failure(&mut undo, &archive);
                            explain::step(&["mkdir", &st]);
                            std::fs::create_dir(&staging)
                                .context(|| format!("cannot create {}", staging.display()))?;
                            explain::note(&format!(
                                "{name} is an OCI image layout (an oci-archive): its image is extracted as --from-oci does"
                            ));
                            config = Some(oci::populate(
                                &oci::Layout::open(&archive)?,
                                None,
                                &staging,
                                &mut undo,
                                record.as_ref(),
                            )?);
                            remove_staging(&archive)?;
                        }
                    }
                }
                Source::Oci { tag, .. } => {
                    let input = oci_input.take().expect("opened above");
                    // An oci-archive is extracted to a staging directory, removed once read.
                    let extracted = matches!(input, OciInput::Archive(_));
                    let layout = match input {
                        OciInput::Layout(layout) => Some(layout),
                        OciInput::Archive((name, total, mut reader)) => {
                            let archive = staging_name(Part::Layer(0));
                            make_staging(&archive, &mut undo)?;
                            tar::extract(reader.as_mut(), &name, total, &archive)?;
                            if acting {
                                match tar::classify(&archive) {
                                    tar::Archive::OciLayout => Some(oci::Layout::open(&archive)?),
                                    tar::Archive::DockerSave => {
                                        return Err(tar::docker_save_error(&name))
                                    }
                                    tar::Archive::Rootfs => {
                                        return Err(Error::invalid(format!(
                                            "--from-oci {name}: this tarball is not an OCI image layout (no oci-layout and index.json at its top); a root filesystem tarball goes to --from-tar"
                                        )))
                                    }
                                }
                            } else {
                                explain::note(
                                    "then the image of the extracted layout is extracted as --from-oci DIR does",
                                );
                                None
                            }
                        }
                    };
                    if let Some(layout) = &layout {
                        config = Some(oci::populate(
                            layout,
                            tag.as_deref(),
                            &staging,
                            &mut undo,
                            record.as_ref(),
                        )?);
                        if extracted {
                            remove_staging(&layout.dir)?;
                        }
                    }
                }
            }
            staging.clone()
        }
    };
    let repro = match repro_epoch {
        Some(epoch) => {
            explain::note(&format!(
                "reproducible: every file's times set to {epoch} (SOURCE_DATE_EPOCH, else 1), a fixed UUID and hash seed, mkfs.ext4 at that time"
            ));
            // The digest first: reading the files would change their access times again.
            let settings = reproducible::settings(&content, req.uuid.as_deref(), epoch)?;
            reproducible::set_times(&content, epoch)?;
            Some(settings)
        }
        None => None,
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
    let tmp = staging_name(Part::Tmp);
    will_make(&tmp)?;
    let t = tmp.clone();
    undo.push(move || {
        if t.exists() && explain::step(&["rm", "-f", &t.to_string_lossy()]) {
            let _ = std::fs::remove_file(&t);
        }
    });
    mkfs::format(&tmp, bytes, &content, mkfs::LABEL, repro.as_ref())?;
    publish(&tmp, &image, req.force)?;
    undo.commit(); // the image is in place
    if staged {
        remove_staging(&staging)?;
    }
    let mut part = if acting {
        info(&image)?
    } else {
        Image {
            path: image.to_string_lossy().into_owned(),
            fstype: "ext4".into(),
            bytes: bytes.unwrap_or(0),
            config: None,
        }
    };
    part.config = config.filter(|c| *c != ImageConfig::default());
    Ok(part)
}

/// Refuses `--reproducible` with a source that cannot give the same bytes twice, before
/// anything is made or downloaded.
pub fn check_reproducible(req: &Create) -> Result<()> {
    if req.reproducible && matches!(req.source, Source::Debootstrap { .. }) {
        return Err(Error::invalid(
            "--reproducible cannot be used with --debootstrap: two runs are not byte-identical",
        )
        .details(
            "debootstrap writes /etc/machine-id, /var/cache/ldconfig/aux-cache and the dpkg, \
             alternatives and bootstrap logs with the time of the run, and the mirror's packages \
             change over time; use --busybox, --from-dir, --from-tar or --from-oci for a \
             reproducible image, or drop --reproducible",
        ));
    }
    Ok(())
}

/// A tarball to extract: how it is named, its size if known, and its bytes.
type Tarball = (String, Option<u64>, Box<dyn std::io::Read>);

/// What `--from-oci` names: an OCI image layout, or a file holding one (an oci-archive).
enum OciInput {
    Layout(oci::Layout),
    Archive(Tarball),
}

impl OciInput {
    fn open(dir: &Path) -> Result<OciInput> {
        if absolute(dir)?.is_file() {
            return Ok(OciInput::Archive(open_tarball(dir)?));
        }
        Ok(OciInput::Layout(oci::Layout::open(dir)?))
    }
}

/// Opens `--from-tar FILE`, or stdin for `-`.
fn open_tarball(file: &Path) -> Result<Tarball> {
    if file == Path::new("-") {
        use std::io::IsTerminal;
        if std::io::stdin().is_terminal() {
            return Err(Error::invalid(
                "--from-tar - reads the tarball from stdin, which is a terminal: pipe it in (docker export C | cloon-img create --from-tar - IMG)",
            ));
        }
        return Ok(("-".into(), None, Box::new(std::io::stdin())));
    }
    let path = absolute(file)?;
    let f = std::fs::File::open(&path)
        .map_err(|e| Error::io(format!("cannot read the tarball {}", path.display()), &e))?;
    let meta = f
        .metadata()
        .context(|| format!("cannot read {}", path.display()))?;
    if meta.is_dir() {
        return Err(Error::invalid(format!(
            "--from-tar {} is a directory: use --from-dir",
            path.display()
        )));
    }
    Ok((
        path.to_string_lossy().into_owned(),
        Some(meta.len()),
        Box::new(f),
    ))
}

/// `cp -a DIR/. STAGING`: a copy of a directory of yours whose times may then change.
fn copy_tree(dir: &Path, staging: &Path) -> Result<()> {
    let from = format!("{}/.", dir.display());
    let to = staging.to_string_lossy();
    if !explain::step(&["cp", "-a", &from, &to]) {
        return Ok(());
    }
    let progress =
        cloon_core::progress::Progress::start(&format!("{STAGE}: copying {}", dir.display()), None);
    let mut cmd = std::process::Command::new("cp");
    cmd.args(["-a", &from])
        .arg(staging)
        .stdin(std::process::Stdio::null());
    leftovers::die_with_parent(&mut cmd);
    let out = cmd.output().context(|| "cannot run cp".into())?;
    drop(progress);
    if !out.status.success() {
        return Err(
            Error::new(Code::Io, format!("cannot copy {}", dir.display()))
                .details(String::from_utf8_lossy(&out.stderr).trim()),
        );
    }
    Ok(())
}

/// Registers on `undo` the removal of the staging directory `dir`.
fn remove_on_failure(undo: &mut Undo, dir: &Path) {
    let dir = dir.to_path_buf();
    undo.push(move || {
        let _ = remove_staging(&dir);
    });
}

/// `rm -rf --one-file-system DIR`: removes the staging directory, never across a mount point,
/// never following a symbolic link.
fn remove_staging(dir: &Path) -> Result<()> {
    if explain::step(&["rm", "-rf", "--one-file-system", &dir.to_string_lossy()]) {
        leftovers::remove_tree(dir)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reproducible_debootstrap_is_refused_before_anything_is_made() {
        let dir = std::env::temp_dir().join(format!("cloon-img-repro-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        let req = Create {
            image: dir.join("deb.img"),
            source: Source::Debootstrap {
                suite: "bookworm".into(),
                include: String::new(),
                mirror: Some("http://127.0.0.1:9/debian".into()),
            },
            size: None,
            force: false,
            reproducible: true,
            uuid: None,
        };
        let err = create(&req).expect_err("--reproducible --debootstrap accepted");
        assert_eq!(err.code, Code::InvalidArgument);
        assert_eq!(err.code.number(), 4);
        let text = err.to_string();
        for needle in [
            "--debootstrap",
            "machine-id",
            "--from-oci",
            "drop --reproducible",
        ] {
            assert!(text.contains(needle), "{needle} not in {text}");
        }
        let left: Vec<_> = std::fs::read_dir(&dir)
            .expect("scratch dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}");
        std::fs::remove_dir(&dir).expect("remove scratch dir");
        // The other sources pass the check.
        let busybox = Create {
            source: Source::Busybox,
            ..req
        };
        assert!(check_reproducible(&busybox).is_ok());
    }

    #[test]
    fn info_prints_a_document_that_the_next_stage_reads() {
        let dir = std::env::temp_dir().join(format!("cloon-img-info-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        let img = dir.join("fake.img");
        let mut bytes = vec![0u8; 4096];
        bytes[1024 + 0x38..1024 + 0x3A].copy_from_slice(&0xEF53u16.to_le_bytes());
        bytes[1024 + 0x60] = 0x40; // extents: ext4
        std::fs::write(&img, &bytes).expect("write the image");
        let text = info_document(&img).expect("info").to_json();
        std::fs::remove_dir_all(&dir).expect("remove scratch dir");
        assert!(text.starts_with("{\n  \"cloonVersion\": \"1\""), "{text}");
        let doc = cloon_core::Document::parse(&text)
            .expect("info's output parses")
            .expect("a document");
        let image: Image = doc.part().expect("an image part").expect("image present");
        assert_eq!(image.path, img.to_string_lossy());
        assert_eq!(image.fstype, "ext4");
        assert_eq!(image.bytes, 4096);
    }
}
