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

/// The overlay option string; refuses paths that would break its syntax.
pub fn overlay_options(lower: &Path, upper: &Path, work: &Path) -> Result<String> {
    for p in [lower, upper, work] {
        let s = p.to_string_lossy();
        if s.contains([',', ':', '\\']) {
            return Err(Error::invalid(format!(
                "{s} contains ',', ':' or '\\', which overlayfs options cannot carry: choose another --state-dir"
            )));
        }
    }
    Ok(format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        upper.display(),
        work.display()
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
    fn options_refuse_separators_in_paths() {
        assert!(overlay_options(Path::new("/a,b"), Path::new("/u"), Path::new("/w")).is_err());
        assert!(overlay_options(Path::new("/l"), Path::new("/u:x"), Path::new("/w")).is_err());
    }
}
