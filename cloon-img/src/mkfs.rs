//! Writing the image: a sparse file of the right size, formatted by `mkfs.ext4 -d DIR`, which
//! copies the directory into the new filesystem without mounting anything.

use crate::reproducible::Settings;
use cloon_core::progress::{human, Progress};
use cloon_core::{explain, host, Code, Context, Error, Result};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// Bytes of disk the files under `dir` take (like `du -s`), without crossing mount points.
pub fn disk_usage(dir: &Path) -> Result<u64> {
    let top =
        std::fs::symlink_metadata(dir).context(|| format!("cannot read {}", dir.display()))?;
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).context(|| format!("cannot list {}", d.display()))? {
            let entry = entry.context(|| format!("cannot list {}", d.display()))?;
            let meta = entry
                .metadata()
                .context(|| format!("cannot read {}", entry.path().display()))?;
            total += meta.blocks() * 512;
            if meta.is_dir() && meta.dev() == top.dev() {
                stack.push(entry.path());
            }
        }
    }
    Ok(total)
}

/// The label of cloon's images.
pub const LABEL: &str = "cloon";

/// Makes `file` a sparse file of `bytes` and formats it as ext4 holding the tree `content`.
/// `None` as the size is for `--dry-run` only: the size is then the shell variable `$size` of
/// [`crate::size::auto_shell`]. With `repro`, the UUID, hash seed and times are fixed (see
/// [`crate::reproducible`]).
pub fn format(
    file: &Path,
    bytes: Option<u64>,
    content: &Path,
    label: &str,
    repro: Option<&Settings>,
) -> Result<()> {
    let mkfs = host::require_program("mkfs.ext4", "e2fsprogs")?;
    let size_word = bytes.map_or_else(|| "\"$size\"".to_string(), |b| b.to_string());
    let truncate = format!(
        "truncate -s {size_word} {}",
        explain::quote(&file.to_string_lossy())
    );
    if explain::shell(&truncate) {
        let bytes = bytes
            .ok_or_else(|| Error::new(Code::Io, "the size of the image is unknown: give --size"))?;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(file)
            .context(|| format!("cannot create {}", file.display()))?;
        f.set_len(bytes)
            .context(|| format!("cannot size {}", file.display()))?;
    }
    let mut args: Vec<String> = ["-q", "-F", "-t", "ext4", "-L", label]
        .map(String::from)
        .into();
    if let Some(r) = repro {
        args.extend([
            "-U".to_string(),
            r.uuid.clone(),
            "-E".into(),
            format!("hash_seed={}", r.hash_seed),
        ]);
    }
    args.push("-d".into());
    let mut words = Vec::new();
    if let Some(r) = repro {
        words.push(format!("E2FSPROGS_FAKE_TIME={}", r.epoch));
    }
    words.push(explain::program(&mkfs));
    words.extend(args.iter().cloned());
    words.extend([content, file].map(|p| p.to_string_lossy().into_owned()));
    if !explain::step(&words) {
        if let Some(r) = repro {
            crate::reproducible::fix_ctimes(file, r.epoch)?;
        }
        return Ok(());
    }
    let what = match bytes {
        Some(b) => format!("{}: mkfs.ext4, an image of {}", crate::STAGE, human(b)),
        None => format!("{}: mkfs.ext4", crate::STAGE),
    };
    let progress = Progress::start(&what, None);
    let mut cmd = Command::new(mkfs);
    cmd.args(&args).arg(content).arg(file).stdin(Stdio::null());
    crate::leftovers::die_with_parent(&mut cmd);
    if let Some(r) = repro {
        cmd.env("E2FSPROGS_FAKE_TIME", r.epoch.to_string());
    }
    let out = cmd.output().context(|| "cannot run mkfs.ext4".into())?;
    drop(progress);
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
        let hint = if msg.contains("No space") || msg.contains("Could not allocate") {
            ": the files do not fit, give a larger --size"
        } else {
            ""
        };
        return Err(Error::new(
            Code::Io,
            format!("mkfs.ext4 failed on {}{hint}", file.display()),
        )
        .details(msg));
    }
    if let Some(r) = repro {
        crate::reproducible::fix_ctimes(file, r.epoch)?;
    }
    Ok(())
}
