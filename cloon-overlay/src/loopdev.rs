//! The loop device: `losetup --read-only --find --show IMG`, with autoclear so that the device
//! goes away with its last mount.

use cloon_core::{Code, Context, Error, Result};
use loopdev::{LoopControl, LoopDevice};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// How many times to look for another free device when a concurrent `losetup` takes ours.
const ATTACH_TRIES: usize = 32;

/// An attached loop device. Autoclear detaches it when this handle is dropped, unless a mount
/// holds it by then.
#[derive(Debug)]
pub struct Attached {
    pub device: LoopDevice,
    pub path: PathBuf,
}

/// Attaches `image` read-only to the first free loop device, retrying on the next one when
/// another process takes it between the lookup and the attach (EBUSY).
pub fn attach_read_only(image: &Path) -> Result<Attached> {
    let control = LoopControl::open().map_err(|e| {
        Error::io("cannot open /dev/loop-control", &e).details(format!(
            "{e}; load the loop module (`modprobe loop`) and run as root"
        ))
    })?;
    let mut last = None;
    for _ in 0..ATTACH_TRIES {
        let device = control
            .next_free()
            .context(|| "cannot find a free loop device".into())?;
        match device.with().read_only(true).autoclear(true).attach(image) {
            Ok(()) => {
                let path = device.path().ok_or_else(|| {
                    Error::new(Code::Io, "cannot tell the path of the attached loop device")
                })?;
                return Ok(Attached { device, path });
            }
            Err(e) if e.raw_os_error() == Some(nix::libc::EBUSY) => last = Some(e),
            Err(e) => {
                return Err(Error::io(
                    format!("cannot attach {} to a loop device", image.display()),
                    &e,
                ))
            }
        }
    }
    let e = last.unwrap_or_else(|| std::io::Error::from_raw_os_error(nix::libc::EBUSY));
    Err(Error::io(
        "every free loop device was taken by other processes: try again",
        &e,
    ))
}

/// The device and inode numbers of a file, which identify it even if renamed.
pub fn file_id(path: &Path) -> Result<(u64, u64)> {
    let meta = std::fs::metadata(path).context(|| format!("cannot read {}", path.display()))?;
    Ok((meta.dev(), meta.ino()))
}

/// The file a loop device is backed by, from sysfs; `None` when the device is detached.
pub fn backing_file(device: &Path) -> Option<PathBuf> {
    let name = device.file_name()?.to_str()?;
    let text = std::fs::read_to_string(format!("/sys/block/{name}/loop/backing_file")).ok()?;
    Some(PathBuf::from(text.trim_end_matches('\n')))
}

/// Whether `device` is still backed by the file `(dev, ino)`: only then is it cloon's.
pub fn backs(device: &Path, id: (u64, u64)) -> bool {
    backing_file(device).is_some_and(|f| file_id(&f).ok() == Some(id))
}

/// Detaches `device` if it is still backed by the image cloon attached (`losetup -d`).
pub fn detach_if_ours(device: &Path, id: (u64, u64)) -> Result<()> {
    if !backs(device, id)
        || !cloon_core::explain::step(&["losetup", "-d", &device.to_string_lossy()])
    {
        return Ok(());
    }
    let ld = LoopDevice::open(device).context(|| format!("cannot open {}", device.display()))?;
    match ld.detach() {
        Err(e) if e.raw_os_error() != Some(nix::libc::ENXIO) => {
            Err(Error::io(format!("cannot detach {}", device.display()), &e))
        }
        _ => Ok(()),
    }
}
