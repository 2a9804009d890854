//! The loop device: `losetup --read-only --find --show IMG`, with autoclear so that the device
//! goes away with its last mount.
//!
//! Four ioctls of `<linux/loop.h>` do it all, each behind a small function: `LOOP_CTL_GET_FREE`
//! on `/dev/loop-control` (the first free device), `LOOP_CONFIGURE` (back it by the image,
//! read-only, autoclear, tagged, in one step), `LOOP_GET_STATUS64` (read its tag back) and
//! `LOOP_CLR_FD` (detach). A crate for them (loopdev-3) needed libclang at build time for two of
//! these calls, so they are written here.

use cloon_core::{Context, Error, Result};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// How many times to look for another free device when a concurrent `losetup` takes ours.
const ATTACH_TRIES: usize = 32;

/// An attached loop device. Autoclear detaches it when this handle is dropped, unless a mount
/// holds it by then.
#[derive(Debug)]
pub struct Attached {
    /// The device, open: autoclear waits for this to close.
    pub device: File,
    pub path: PathBuf,
}

/// The first free loop device (`LOOP_CTL_GET_FREE` on `/dev/loop-control`, which makes one
/// when none is free): its path.
fn next_free(control: &File) -> std::io::Result<PathBuf> {
    // SAFETY: `control` is open on /dev/loop-control; LOOP_CTL_GET_FREE takes no argument and
    // returns a device number or -1.
    let n = unsafe { nix::libc::ioctl(control.as_raw_fd(), LOOP_CTL_GET_FREE as _) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(PathBuf::from(format!("/dev/loop{n}")))
}

/// Attaches `image` read-only to the first free loop device, retrying on the next one when
/// another process takes it between the lookup and the attach (EBUSY).
///
/// The device is set up in one step (`LOOP_CONFIGURE`, Linux 5.8): a tool killed at any point
/// leaves either no device or one that autoclear detaches with its last user. It carries `tag`
/// from that same step, so that `gc` can tell it from a device attached to the same image by
/// hand. It needs Linux 5.8 or later; an older kernel's EINVAL is said as such.
pub fn attach_read_only(image: &Path, tag: &Tag) -> Result<Attached> {
    let control = File::open("/dev/loop-control").map_err(|e| {
        Error::io("cannot open /dev/loop-control", &e).details(format!(
            "{e}; load the loop module (`modprobe loop`) and run as root"
        ))
    })?;
    let file =
        File::open(image).context(|| format!("cannot open {} read-only", image.display()))?;
    let mut last = None;
    for _ in 0..ATTACH_TRIES {
        let path = next_free(&control).context(|| "cannot find a free loop device".into())?;
        let device = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(nix::libc::O_CLOEXEC)
            .open(&path)
            .context(|| format!("cannot open {}", path.display()))?;
        match configure_read_only(&device, &file, tag) {
            Ok(()) => return Ok(Attached { device, path }),
            Err(e) if e.raw_os_error() == Some(nix::libc::EINVAL) => {
                return Err(Error::io(
                    format!(
                        "cannot attach {} to {}: the kernel refuses LOOP_CONFIGURE (Linux 5.8 \
                         or later is needed)",
                        image.display(),
                        path.display()
                    ),
                    &e,
                ))
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

/// `LOOP_CTL_GET_FREE`, `_IO('L', 0x82)`.
const LOOP_CTL_GET_FREE: nix::libc::c_ulong = 0x4C82;
/// `LOOP_CONFIGURE`, `_IO('L', 0x0A)`.
const LOOP_CONFIGURE: nix::libc::c_ulong = 0x4C0A;
/// `LOOP_GET_STATUS64`, `_IO('L', 0x05)`.
const LOOP_GET_STATUS64: nix::libc::c_ulong = 0x4C05;
/// `LOOP_CLR_FD`, `_IO('L', 0x01)`.
const LOOP_CLR_FD: nix::libc::c_ulong = 0x4C01;
const LO_FLAGS_READ_ONLY: u32 = 1;
const LO_FLAGS_AUTOCLEAR: u32 = 4;

/// Backs `device` by `file`, read-only and autoclear, named `tag`, in one `LOOP_CONFIGURE` ioctl.
fn configure_read_only(device: &File, file: &File, tag: &Tag) -> std::io::Result<()> {
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
            lo_file_name: tag.0,
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

/// The name cloon gives each loop device it attaches, in the device's `lo_file_name` (which
/// `LOOP_GET_STATUS64` reads back; `losetup` shows the backing file from sysfs instead):
/// `cloon:<root>:<dev>-<ino>`, where `<root>` is a hash of the state directory's path and
/// `<dev>-<ino>` the image's identity. A device attached to the same image by hand, or by the
/// tools of another state directory, has another name: `gc` leaves it alone.
#[derive(Clone, PartialEq, Eq)]
pub struct Tag([u8; 64]);

impl Tag {
    /// The tag of the devices of the image `id` attached for the state directory `root`.
    pub fn new(root: &Path, id: (u64, u64)) -> Tag {
        let text = format!(
            "cloon:{:016x}:{}-{}",
            cloon_core::state::fnv1a(std::os::unix::ffi::OsStrExt::as_bytes(root.as_os_str())),
            id.0,
            id.1
        );
        let mut bytes = [0; 64];
        // At most 6 + 16 + 1 + 20 + 1 + 20 = 64 bytes: keep 63 and the terminating zero.
        let n = text.len().min(63);
        bytes[..n].copy_from_slice(&text.as_bytes()[..n]);
        Tag(bytes)
    }

    /// The tag as text.
    pub fn as_str(&self) -> String {
        let end = self.0.iter().position(|&b| b == 0).unwrap_or(self.0.len());
        String::from_utf8_lossy(&self.0[..end]).into_owned()
    }
}

impl std::fmt::Debug for Tag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tag({:?})", self.as_str())
    }
}

/// The `lo_file_name` of the loop device open as `file`.
fn read_tag(file: &std::fs::File) -> std::io::Result<Tag> {
    let mut info = std::mem::MaybeUninit::<LoopInfo64>::zeroed();
    // SAFETY: `file` is an open loop device and `info` a zeroed `struct loop_info64` with the
    // kernel's layout (its size is checked above), which the kernel fills; it lives across the
    // call.
    let rc =
        unsafe { nix::libc::ioctl(file.as_raw_fd(), LOOP_GET_STATUS64 as _, info.as_mut_ptr()) };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: zeroed is a valid `LoopInfo64` (integers and byte arrays only), and the kernel
    // wrote a whole one.
    let info = unsafe { info.assume_init() };
    Ok(Tag(info.lo_file_name))
}

/// The loop devices backed by the file `id` (device, inode) now, from sysfs, sorted.
pub fn devices_backing(id: (u64, u64)) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir("/sys/block") else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with("loop"))
        .map(|n| Path::new("/dev").join(n))
        .filter(|dev| backs(dev, id))
        .collect();
    found.sort();
    found
}

/// The loop devices backed by the file `id` that are not read-only (`/sys/block/loopN/ro` is 0).
pub fn writable_devices_backing(id: (u64, u64)) -> Vec<PathBuf> {
    devices_backing(id)
        .into_iter()
        .filter(|dev| {
            let name = dev
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            std::fs::read_to_string(format!("/sys/block/{name}/ro"))
                .is_ok_and(|ro| ro.trim() == "0")
        })
        .collect()
}

/// What [`detach_unused`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unused {
    /// Cloon's, and nothing mounts it: detached (at once, or with its last user).
    Detached,
    /// The same, in a dry run: `losetup -d` said, nothing done.
    WouldDetach,
    /// Mounted (in any mount namespace) or otherwise held exclusively: left alone.
    InUse,
    /// Not attached by cloon for this state directory (its name is given): left alone.
    NotOurs(String),
    /// No longer backs the image: nothing to do.
    Gone,
}

/// Detaches `device` (`losetup -d`) if it still backs the image `id`, carries `tag`, and nothing
/// mounts it: it is opened exclusively, which fails while a filesystem (in any mount namespace)
/// holds it. A device another process merely holds open goes when that process closes it: the
/// kernel marks it autoclear.
pub fn detach_unused(device: &Path, id: (u64, u64), tag: &Tag) -> Result<Unused> {
    if !backs(device, id) {
        return Ok(Unused::Gone);
    }
    // The tag first, on a plain open: an exclusive one would make a mount of another's device
    // fail meanwhile.
    let found = match std::fs::File::open(device).and_then(|f| read_tag(&f)) {
        Ok(found) => found,
        Err(e) if e.raw_os_error() == Some(nix::libc::ENXIO) => return Ok(Unused::Gone),
        Err(e) => return Err(Error::io(format!("cannot read {}", device.display()), &e)),
    };
    if found != *tag {
        return Ok(Unused::NotOurs(found.as_str()));
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_EXCL)
        .open(device);
    let file = match file {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(nix::libc::EBUSY) => return Ok(Unused::InUse),
        Err(e) if e.raw_os_error() == Some(nix::libc::ENXIO) => return Ok(Unused::Gone),
        Err(e) => return Err(Error::io(format!("cannot open {}", device.display()), &e)),
    };
    if !cloon_core::explain::step(&["losetup", "-d", &device.to_string_lossy()]) {
        return Ok(Unused::WouldDetach);
    }
    clear_fd(&file, device)?;
    Ok(Unused::Detached)
}

/// Detaches `device` (`losetup -d`) if it is still backed by the image `id`: for the device that
/// was mounted on cloon's lower, which is the lower's whoever attached it.
pub fn detach_if_backs(device: &Path, id: (u64, u64)) -> Result<()> {
    if !backs(device, id)
        || !cloon_core::explain::step(&["losetup", "-d", &device.to_string_lossy()])
    {
        return Ok(());
    }
    let ld = File::open(device).context(|| format!("cannot open {}", device.display()))?;
    clear_fd(&ld, device)
}

/// Detaches the loop device `device`, open as `file` (`LOOP_CLR_FD`, as `losetup -d`); one
/// already detached (ENXIO) is fine.
fn clear_fd(file: &File, device: &Path) -> Result<()> {
    // SAFETY: `file` is an open loop device; LOOP_CLR_FD takes no argument.
    let rc = unsafe { nix::libc::ioctl(file.as_raw_fd(), LOOP_CLR_FD as _, 0) };
    if rc < 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(nix::libc::ENXIO) {
            return Err(Error::io(format!("cannot detach {}", device.display()), &e));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_names_the_state_directory_and_the_image() {
        let t = Tag::new(Path::new("/run/cloon"), (2049, 131));
        let text = t.as_str();
        assert!(text.starts_with("cloon:"), "{text}");
        assert!(text.ends_with(":2049-131"), "{text}");
        assert_eq!(text.len(), 6 + 16 + 1 + 8);
        assert_eq!(t, Tag::new(Path::new("/run/cloon"), (2049, 131)));
        assert_ne!(t, Tag::new(Path::new("/tmp/lab"), (2049, 131)));
        assert_ne!(t, Tag::new(Path::new("/run/cloon"), (2049, 132)));
        let huge = Tag::new(Path::new("/x"), (u64::MAX, u64::MAX));
        assert_eq!(
            huge.as_str().len(),
            63,
            "the kernel keeps 63 bytes and a zero"
        );
        assert_eq!(huge.0[63], 0);
    }
}
