//! Reading an ext4 superblock: is this file an ext2/3/4 filesystem, and which one.
//!
//! The superblock starts 1024 bytes into the device; its magic number 0xEF53 sits at byte 56.

use cloon_core::{Code, Context, Error, Result};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

const SUPERBLOCK_OFFSET: u64 = 1024;
const SUPERBLOCK_LEN: usize = 1024;
const MAGIC: u16 = 0xEF53;
const COMPAT_HAS_JOURNAL: u32 = 0x4;
const INCOMPAT_EXTENTS: u32 = 0x40;
const INCOMPAT_64BIT: u32 = 0x80;

/// What the superblock says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Superblock {
    /// `ext2`, `ext3` or `ext4`, from the feature flags.
    pub fstype: &'static str,
    pub block_size: u64,
    pub blocks: u64,
    pub label: String,
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Decodes a superblock; `None` if the magic number is not ext's.
pub fn decode(sb: &[u8]) -> Option<Superblock> {
    if sb.len() < SUPERBLOCK_LEN || le16(sb, 0x38) != MAGIC {
        return None;
    }
    let log_block = le32(sb, 0x18);
    if log_block > 6 {
        return None;
    }
    let compat = le32(sb, 0x5C);
    let incompat = le32(sb, 0x60);
    let mut blocks = u64::from(le32(sb, 0x04));
    if incompat & INCOMPAT_64BIT != 0 {
        blocks |= u64::from(le32(sb, 0x150)) << 32;
    }
    let fstype = if incompat & (INCOMPAT_EXTENTS | INCOMPAT_64BIT) != 0 {
        "ext4"
    } else if compat & COMPAT_HAS_JOURNAL != 0 {
        "ext3"
    } else {
        "ext2"
    };
    let label = &sb[0x78..0x88];
    let label = String::from_utf8_lossy(&label[..label.iter().position(|&b| b == 0).unwrap_or(16)]);
    Some(Superblock {
        fstype,
        block_size: 1024 << log_block,
        blocks,
        label: label.into_owned(),
    })
}

/// Reads the superblock of the filesystem image at `path`.
pub fn probe(path: &Path) -> Result<Superblock> {
    let mut file = std::fs::File::open(path)
        .context(|| format!("cannot open the image {}", path.display()))?;
    let mut sb = vec![0u8; SUPERBLOCK_LEN];
    file.seek(SeekFrom::Start(SUPERBLOCK_OFFSET))
        .and_then(|_| file.read_exact(&mut sb))
        .map_err(|_| not_ext(path))?;
    decode(&sb).ok_or_else(|| not_ext(path))
}

fn not_ext(path: &Path) -> Error {
    Error::new(
        Code::InvalidConfig,
        format!(
            "{} is not an ext4 image (no ext superblock): give an image made by `cloon-img create`",
            path.display()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn superblock(incompat: u32, compat: u32, log_block: u32, blocks: u32) -> Vec<u8> {
        let mut sb = vec![0u8; SUPERBLOCK_LEN];
        sb[0x38..0x3A].copy_from_slice(&MAGIC.to_le_bytes());
        sb[0x04..0x08].copy_from_slice(&blocks.to_le_bytes());
        sb[0x18..0x1C].copy_from_slice(&log_block.to_le_bytes());
        sb[0x5C..0x60].copy_from_slice(&compat.to_le_bytes());
        sb[0x60..0x64].copy_from_slice(&incompat.to_le_bytes());
        sb[0x78..0x7D].copy_from_slice(b"cloon");
        sb
    }

    #[test]
    fn decodes_ext4() {
        let sb = decode(&superblock(INCOMPAT_EXTENTS, COMPAT_HAS_JOURNAL, 2, 8192)).unwrap();
        assert_eq!(
            sb,
            Superblock {
                fstype: "ext4",
                block_size: 4096,
                blocks: 8192,
                label: "cloon".into()
            }
        );
    }

    #[test]
    fn tells_ext2_and_ext3_apart() {
        assert_eq!(decode(&superblock(0, 0, 0, 1)).unwrap().fstype, "ext2");
        assert_eq!(
            decode(&superblock(0, COMPAT_HAS_JOURNAL, 0, 1))
                .unwrap()
                .fstype,
            "ext3"
        );
    }

    #[test]
    fn refuses_other_data() {
        assert_eq!(decode(&[0u8; SUPERBLOCK_LEN]), None);
        assert_eq!(decode(&[0u8; 10]), None);
        let mut bad = superblock(0, 0, 40, 1);
        bad[0x18] = 40;
        assert_eq!(decode(&bad), None);
    }

    #[test]
    fn probe_of_a_non_image_says_what_to_do() {
        let err = probe(Path::new("/proc/self/status")).unwrap_err();
        assert_eq!(err.code, Code::InvalidConfig);
        assert!(err.msg.contains("cloon-img create"), "{}", err.msg);
    }
}
