//! The mount table, as `/proc/self/mountinfo` shows it: which paths are mount points, of what.

use crate::error::{Context, Result};
use std::path::{Path, PathBuf};

/// One line of the mount table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub target: PathBuf,
    pub fstype: String,
    pub source: String,
    pub options: String,
}

/// Decodes the octal escapes (`\040` for a space) of a mountinfo field.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses the text of a mountinfo file.
pub fn parse(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let left: Vec<&str> = left.split(' ').collect();
            let mut right = right.split(' ');
            Some(Mount {
                target: PathBuf::from(unescape(left.get(4)?)),
                fstype: right.next()?.to_string(),
                source: unescape(right.next()?),
                options: right.next().unwrap_or_default().to_string(),
            })
        })
        .collect()
}

/// The calling process's mount table.
pub fn table() -> Result<Vec<Mount>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .context(|| "cannot read /proc/self/mountinfo".into())?;
    Ok(parse(&text))
}

/// The topmost mount at `target`, if `target` is a mount point.
pub fn at(target: &Path) -> Result<Option<Mount>> {
    Ok(table()?.into_iter().rev().find(|m| m.target == target))
}

/// Mount points at or below `dir`, deepest first (the order to unmount them in).
pub fn under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found: Vec<PathBuf> = table()?
        .into_iter()
        .map(|m| m.target)
        .filter(|t| t.starts_with(dir))
        .collect();
    found.sort_by_key(|t| std::cmp::Reverse(t.components().count()));
    found.dedup();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
90 22 7:3 / /run/cloon/A/lower ro,relatime - ext4 /dev/loop3 ro
91 22 0:50 / /run/cloon/A/rootfs rw,relatime - overlay overlay rw,lowerdir=/x,upperdir=/y,workdir=/z
92 22 0:51 / /mnt/with\\040space rw - tmpfs tmpfs rw
";

    #[test]
    fn parses_targets_types_and_sources() {
        let m = parse(SAMPLE);
        assert_eq!(m.len(), 4);
        assert_eq!(m[1].target, Path::new("/run/cloon/A/lower"));
        assert_eq!(m[1].fstype, "ext4");
        assert_eq!(m[1].source, "/dev/loop3");
        assert_eq!(m[2].fstype, "overlay");
        assert!(m[2].options.contains("upperdir=/y"));
        assert_eq!(m[3].target, Path::new("/mnt/with space"));
    }

    #[test]
    fn the_live_table_has_a_root() {
        assert!(at(Path::new("/")).unwrap().is_some());
    }
}
