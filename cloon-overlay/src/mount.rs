//! The two mounts: the image read-only as `lower`, and the overlay `rootfs` whose writes land in
//! `upper`.

use cloon_core::{explain, mounts, Code, Context, Error, Result};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use std::path::Path;

/// `mount -o ro -t ext4 DEVICE LOWER`.
pub fn mount_lower(device: &Path, lower: &Path) -> Result<()> {
    mount(
        Some(device),
        lower,
        Some("ext4"),
        MsFlags::MS_RDONLY,
        None::<&str>,
    )
    .context(|| {
        format!(
            "cannot mount {} read-only on {}",
            device.display(),
            lower.display()
        )
    })
}

/// The overlay option string. overlayfs takes `\`, `,` and `:` in a directory escaped with a
/// backslash (see [`mounts::overlay_escape`]), and shows the directories back that way in the
/// mount table; a path that is not UTF-8 is refused.
pub fn overlay_options(lower: &Path, upper: &Path, work: &Path) -> Result<String> {
    let escaped = |p: &Path| {
        mounts::overlay_escape(p).ok_or_else(|| {
            Error::invalid(format!(
                "{} is not valid UTF-8, which overlayfs options cannot carry: choose another --state-dir",
                p.to_string_lossy()
            ))
        })
    };
    Ok(format!(
        "lowerdir={},upperdir={},workdir={}",
        escaped(lower)?,
        escaped(upper)?,
        escaped(work)?
    ))
}

/// `mount -t overlay overlay -o lowerdir=,upperdir=,workdir= ROOTFS`.
pub fn mount_overlay(options: &str, rootfs: &Path) -> Result<()> {
    mount(
        Some("overlay"),
        rootfs,
        Some("overlay"),
        MsFlags::empty(),
        Some(options),
    )
    .map_err(|e| {
        let hint = if e == nix::errno::Errno::ENODEV {
            ": the kernel has no overlayfs (`modprobe overlay`)"
        } else {
            ""
        };
        Error::sys(
            format!("cannot mount the overlay on {}{hint}", rootfs.display()),
            e,
        )
    })
}

/// `umount TARGET` if something is mounted there (said first with `--explain`); a busy mount is
/// an error to retry later.
///
/// Quietly, the kernel itself says when nothing is mounted there (`EINVAL`), which spares reading
/// the whole mount table (hundreds of lines with hundreds of containers); `--explain` and
/// `--dry-run` read it, to say `umount` only for what is mounted.
pub fn unmount(target: &Path) -> Result<()> {
    if explain::mode() != explain::Mode::Quiet
        && (mounts::at(target)?.is_none() || !explain::step(&["umount", &target.to_string_lossy()]))
    {
        return Ok(());
    }
    match umount2(target, MntFlags::empty()) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => Ok(()),
        Err(nix::errno::Errno::EBUSY) => Err(Error::new(
            Code::TryAgain,
            format!(
                "{} is still in use: stop the container first (`cloon-run down`)",
                target.display()
            ),
        )),
        Err(e) => Err(Error::sys(
            format!("cannot unmount {}", target.display()),
            e,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_name_the_three_directories() {
        let o = overlay_options(Path::new("/s/l"), Path::new("/s/u"), Path::new("/s/w")).unwrap();
        assert_eq!(o, "lowerdir=/s/l,upperdir=/s/u,workdir=/s/w");
    }

    #[test]
    fn options_escape_separators_in_paths() {
        let o = overlay_options(
            Path::new("/a,b/l"),
            Path::new("/my lab/u:x"),
            Path::new("/b\\s/w"),
        )
        .unwrap();
        assert_eq!(
            o,
            "lowerdir=/a\\,b/l,upperdir=/my lab/u\\:x,workdir=/b\\\\s/w"
        );
        use std::os::unix::ffi::OsStrExt;
        let bad = Path::new(std::ffi::OsStr::from_bytes(b"/\xff"));
        let e = overlay_options(bad, Path::new("/u"), Path::new("/w")).unwrap_err();
        assert_eq!(e.code, Code::InvalidArgument);
    }
}
