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
///
/// The device is set up in one step (`LOOP_CONFIGURE`, Linux 5.8): a tool killed at any point
/// leaves either no device or one that autoclear detaches with its last user. Older kernels get
/// loopdev's two steps (attach, then set the flags).
pub fn attach_read_only(image: &Path) -> Result<Attached> {
    let control = LoopControl::open().map_err(|e| {
        Error::io("cannot open /dev/loop-control", &e).details(format!(
            "{e}; load the loop module (`modprobe loop`) and run as root"
        ))
    })?;
    let file = std::fs::File::open(image)
        .context(|| format!("cannot open {} read-only", image.display()))?;
    let mut last = None;
    for _ in 0..ATTACH_TRIES {
        let device = control
            .next_free()
            .context(|| "cannot find a free loop device".into())?;
        let result = match configure_read_only(&device, &file) {
            Err(e) if e.raw_os_error() == Some(nix::libc::EINVAL) => {
                device.with().read_only(true).autoclear(true).attach(image)
            }
            other => other,
        };
        match result {
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

/// `struct loop_info64` of `<linux/loop.h>`.
#[repr(C)]
struct LoopInfo64 {
    lo_device: u64,
    lo_inode: u64,
    lo_rdevice: u64,
    lo_offset: u64,
    lo_sizelimit: u64,
    lo_number: u32,
    lo_encrypt_type: u32,
    lo_encrypt_key_size: u32,
    lo_flags: u32,
    lo_file_name: [u8; 64],
    lo_crypt_name: [u8; 64],
    lo_encrypt_key: [u8; 32],
    lo_init: [u64; 2],
}

/// `struct loop_config` of `<linux/loop.h>`, the argument of `LOOP_CONFIGURE`.
#[repr(C)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

const _: () = assert!(std::mem::size_of::<LoopInfo64>() == 232);
const _: () = assert!(std::mem::size_of::<LoopConfig>() == 304);

/// `LOOP_CONFIGURE`, `_IO('L', 0x0A)`.
const LOOP_CONFIGURE: nix::libc::c_ulong = 0x4C0A;
const LO_FLAGS_READ_ONLY: u32 = 1;
const LO_FLAGS_AUTOCLEAR: u32 = 4;

/// Backs `device` by `file`, read-only and autoclear, in one `LOOP_CONFIGURE` ioctl.
fn configure_read_only(device: &LoopDevice, file: &std::fs::File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = u32::try_from(file.as_raw_fd())
        .map_err(|_| std::io::Error::from_raw_os_error(nix::libc::EBADF))?;
    let config = LoopConfig {
        fd,
        block_size: 0,
        info: LoopInfo64 {
            lo_device: 0,
            lo_inode: 0,
            lo_rdevice: 0,
            lo_offset: 0,
            lo_sizelimit: 0,
            lo_number: 0,
            lo_encrypt_type: 0,
            lo_encrypt_key_size: 0,
            lo_flags: LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR,
            lo_file_name: [0; 64],
            lo_crypt_name: [0; 64],
            lo_encrypt_key: [0; 32],
            lo_init: [0; 2],
        },
        reserved: [0; 8],
    };
    // SAFETY: `device` is an open loop device, and `config` a `struct loop_config` with the
    // kernel's layout (its size is checked above) that lives across the call; the kernel only
    // reads it. `file` stays open for the call, and the kernel takes its own reference.
    let rc = unsafe { nix::libc::ioctl(device.as_raw_fd(), LOOP_CONFIGURE as _, &config) };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
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
