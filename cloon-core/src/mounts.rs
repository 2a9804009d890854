//! The mount table, as `/proc/self/mountinfo` shows it: which paths are mount points, of what.
//!
//! The kernel escapes, in octal, the characters of a field that would break the table's syntax:
//! a space is `\040`, a tab `\011`, a newline `\012`, a backslash `\134`. Every field read here is
//! decoded: the mount point, the source, and each value of the filesystem's options (where
//! overlayfs also escapes the `,` that would end the value, `\054`). On top of that, overlayfs
//! shows its directories (`lowerdir=`, `upperdir=`, `workdir=`) as they were given when mounted,
//! in its own syntax, where `\`, `,` and `:` are escaped with a backslash (see
//! [`overlay_escape`]): [`Mount::overlay_dir_is`] compares a path in that syntax.

use crate::error::{Context, Result};
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

/// One line of the mount table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The device of the mounted filesystem (`st_dev` of the files on it).
    pub dev: u64,
    /// The mount point, decoded.
    pub target: PathBuf,
    pub fstype: String,
    /// The source (a device, `overlay`, ...), decoded.
    pub source: String,
    /// The filesystem's options as the table has them (each value still escaped): read a value
    /// with [`Mount::option`].
    pub options: String,
}

impl Mount {
    /// The decoded value of the filesystem option `key` (`key=value`), if it has one.
    pub fn option(&self, key: &str) -> Option<String> {
        self.option_bytes(key)
            .map(|v| String::from_utf8_lossy(&v).into_owned())
    }

    fn option_bytes(&self, key: &str) -> Option<Vec<u8>> {
        // A raw ',' separates options: one inside a value is escaped (`\054`).
        self.options
            .split(',')
            .find_map(|o| o.strip_prefix(key)?.strip_prefix('='))
            .map(unescape)
    }

    /// Whether the overlay option `key` (`lowerdir`, `upperdir`, `workdir`) names exactly the
    /// one directory `dir`, as [`overlay_escape`] writes it in the options of a mount.
    pub fn overlay_dir_is(&self, key: &str, dir: &Path) -> bool {
        match (self.option_bytes(key), overlay_escape(dir)) {
            (Some(value), Some(given)) => value == given.as_bytes(),
            _ => false,
        }
    }
}

/// A directory as overlayfs's mount options take it: `\`, `,` and `:` escaped with a backslash
/// (a `,` would end the option, a `:` separate two lower layers). `None` for a path that is not
/// UTF-8, which an option string cannot carry.
pub fn overlay_escape(dir: &Path) -> Option<String> {
    let text = dir.to_str()?;
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | ',' | ':') {
            out.push('\\');
        }
        out.push(c);
    }
    Some(out)
}

/// Decodes the octal escapes (`\040` for a space) of a mountinfo field.
fn unescape(field: &str) -> Vec<u8> {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)))
            .map(|d| {
                u32::from(d[0] - b'0') * 64 + u32::from(d[1] - b'0') * 8 + u32::from(d[2] - b'0')
            })
            .and_then(|n| u8::try_from(n).ok());
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// The `major:minor` field of a mountinfo line, as a device number.
fn device(field: &str) -> Option<u64> {
    let (major, minor) = field.split_once(':')?;
    Some(nix::libc::makedev(major.parse().ok()?, minor.parse().ok()?))
}

/// Parses the text of a mountinfo file.
pub fn parse(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let left: Vec<&str> = left.split(' ').collect();
            let mut right = right.split(' ');
            Some(Mount {
                dev: device(left.get(2)?)?,
                target: PathBuf::from(OsString::from_vec(unescape(left.get(4)?))),
                fstype: right.next()?.to_string(),
                source: String::from_utf8_lossy(&unescape(right.next()?)).into_owned(),
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

/// The mount table of process `pid` (that of its mount namespace, its paths seen from its root),
/// or `None` when it cannot be read (the process is gone, or not ours to inspect).
pub fn table_of(pid: u32) -> Option<Vec<Mount>> {
    let text = std::fs::read(format!("/proc/{pid}/mountinfo")).ok()?;
    Some(parse(&String::from_utf8_lossy(&text)))
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
    fn parses_targets_types_sources_and_devices() {
        let m = parse(SAMPLE);
        assert_eq!(m.len(), 4);
        assert_eq!(m[1].target, Path::new("/run/cloon/A/lower"));
        assert_eq!(m[1].fstype, "ext4");
        assert_eq!(m[1].source, "/dev/loop3");
        assert_eq!(m[1].dev, nix::libc::makedev(7, 3));
        assert_eq!(m[2].fstype, "overlay");
        assert_eq!(m[2].option("upperdir").as_deref(), Some("/y"));
        assert_eq!(m[2].option("lowerdir").as_deref(), Some("/x"));
        assert_eq!(m[2].option("rw"), None);
        assert_eq!(m[2].option("nothere"), None);
        assert_eq!(m[2].dev, nix::libc::makedev(0, 50));
        assert_eq!(m[3].target, Path::new("/mnt/with space"));
    }

    /// Lines as kernel 6.18 writes them for overlays under `/run/my lab`, `/run/t<TAB>h`,
    /// `/run/n<NEWLINE>l`, `/run/b\s`, `/run/c,m` and `/run/co:l`, each mounted with the options
    /// [`overlay_escape`] makes.
    const ESCAPED: &str = r"68 65 0:41 / /run/my\040lab/r rw,relatime - overlay overlay rw,lowerdir=/run/my\040lab/l,upperdir=/run/my\040lab/u,workdir=/run/my\040lab/w,uuid=on
71 65 0:43 / /run/t\011h/r rw,relatime - overlay overlay rw,lowerdir=/run/t\011h/l,upperdir=/run/t\011h/u,workdir=/run/t\011h/w,uuid=on
74 65 0:45 / /run/n\012l/r rw,relatime - overlay overlay rw,lowerdir=/run/n\012l/l,upperdir=/run/n\012l/u,workdir=/run/n\012l/w,uuid=on
77 65 0:47 / /run/b\134s/r rw,relatime - overlay overlay rw,lowerdir=/run/b\134\134s/l,upperdir=/run/b\134\134s/u,workdir=/run/b\134\134s/w,uuid=on
80 65 0:49 / /run/c,m/r rw,relatime - overlay overlay rw,lowerdir=/run/c\134\054m/l,upperdir=/run/c\134\054m/u,workdir=/run/c\134\054m/w,uuid=on
83 65 0:51 / /run/co:l/r rw,relatime - overlay overlay rw,lowerdir=/run/co\134:l/l,upperdir=/run/co\134:l/u,workdir=/run/co\134:l/w,uuid=on
";

    #[test]
    fn escaped_targets_and_overlay_directories_are_decoded() {
        let table = parse(ESCAPED);
        let dirs = [
            "/run/my lab",
            "/run/t\th",
            "/run/n\nl",
            "/run/b\\s",
            "/run/c,m",
            "/run/co:l",
        ];
        assert_eq!(table.len(), dirs.len());
        for (m, dir) in table.iter().zip(dirs) {
            let dir = Path::new(dir);
            assert_eq!(m.target, dir.join("r"));
            for (key, leaf) in [("lowerdir", "l"), ("upperdir", "u"), ("workdir", "w")] {
                assert!(m.overlay_dir_is(key, &dir.join(leaf)), "{key} of {m:?}");
                assert!(!m.overlay_dir_is(key, &dir.join("x")), "{key} of {m:?}");
            }
            assert!(!m.overlay_dir_is("lowerdir", &dir.join("u")));
        }
        assert_eq!(
            table[0].option("upperdir").as_deref(),
            Some("/run/my lab/u")
        );
        assert_eq!(table[4].option("upperdir").as_deref(), Some("/run/c\\,m/u"));
    }

    #[test]
    fn overlay_escapes_its_separators() {
        assert_eq!(
            overlay_escape(Path::new("/a b/c,d:e\\f")).as_deref(),
            Some("/a b/c\\,d\\:e\\\\f")
        );
        use std::os::unix::ffi::OsStrExt;
        let not_utf8 = Path::new(std::ffi::OsStr::from_bytes(b"/a\xff"));
        assert_eq!(overlay_escape(not_utf8), None);
    }

    #[test]
    fn two_lower_layers_are_not_one_directory() {
        let m = &parse("1 1 0:9 / /r rw - overlay overlay rw,lowerdir=/a:/b,upperdir=/u")[0];
        assert!(!m.overlay_dir_is("lowerdir", Path::new("/a:/b")));
        assert!(!m.overlay_dir_is("lowerdir", Path::new("/a")));
    }

    #[test]
    fn an_escape_that_is_no_byte_stays_as_it_is() {
        assert_eq!(unescape(r"a\777b\04"), br"a\777b\04");
        assert_eq!(unescape(r"\134\040"), b"\\ ");
    }

    #[test]
    fn the_live_table_has_a_root() {
        assert!(at(Path::new("/")).unwrap().is_some());
        let own = table_of(std::process::id()).unwrap();
        assert!(own.iter().any(|m| m.target == Path::new("/")));
    }
}
