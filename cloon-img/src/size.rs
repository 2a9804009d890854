//! Image sizes: `64M`, `1G`, `1073741824`, and the size chosen when none is given.

use cloon_core::{Error, Result};
use std::path::Path;

const MIB: u64 = 1 << 20;

/// Parses a size in bytes with an optional K, M, G or T suffix (powers of 1024).
pub fn parse(text: &str) -> Result<u64> {
    let t = text.trim();
    let (digits, shift) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return Err(bad(text)),
            };
            (&t[..i], shift)
        }
        _ => (t, 0),
    };
    let n: u64 = digits.parse().map_err(|_| bad(text))?;
    let bytes = n
        .checked_shl(shift)
        .filter(|b| b >> shift == n)
        .ok_or_else(|| bad(text))?;
    if bytes < 4 * MIB {
        return Err(Error::invalid(format!(
            "--size {text} is too small: give at least 4M"
        )));
    }
    Ok(bytes)
}

fn bad(text: &str) -> Error {
    Error::invalid(format!(
        "--size {text:?} is not a size: write for example 64M, 1G or 1073741824"
    ))
}

/// A size that holds `content` bytes of files with room for ext4's own metadata: a quarter
/// more, plus 32 MiB, rounded up to a MiB.
pub fn auto(content: u64) -> u64 {
    let want = content + content / 4 + 32 * MIB;
    want.div_ceil(MIB) * MIB
}

/// The shell code that computes [`auto`] of the files under `dir` into the variable `size`, as
/// `--dry-run` says it when `dir` is not filled yet: `du -s -l` counts every directory entry's
/// blocks as [`crate::mkfs::disk_usage`] does, `dir`'s own blocks included, which are taken off.
pub fn auto_shell(dir: &Path) -> String {
    let d = cloon_core::explain::quote(&dir.to_string_lossy());
    let mib = MIB;
    let base = 32 * MIB;
    format!(
        "used=$(( $(du -s -l -B1 {d} | cut -f1) - $(stat -c '%b * %B' {d}) ))\n\
         size=$(( (used + used / 4 + {base} + {mib} - 1) / {mib} * {mib} ))"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_suffixes() {
        assert_eq!(parse("64M").unwrap(), 64 * MIB);
        assert_eq!(parse("1g").unwrap(), 1 << 30);
        assert_eq!(parse("8192K").unwrap(), 8 * MIB);
        assert_eq!(parse("33554432").unwrap(), 32 * MIB);
    }

    #[test]
    fn refuses_nonsense_and_overflow() {
        for bad in ["", "M", "12X", "-1G", "1.5G", "99999999999T", "1K"] {
            assert!(parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn the_shell_computes_the_same_size() {
        let dir = std::env::temp_dir().join(format!("cloon-img-size-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("a/b")).unwrap();
        std::fs::write(dir.join("a/f"), vec![7u8; 100_000]).unwrap();
        std::fs::hard_link(dir.join("a/f"), dir.join("a/b/g")).unwrap();
        std::os::unix::fs::symlink("/bin/busybox", dir.join("sh")).unwrap();
        std::fs::write(dir.join("empty"), "").unwrap();
        let out = std::process::Command::new("sh")
            .args([
                "-ec",
                &format!("{}\necho \"$used $size\"", auto_shell(&dir)),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let used = crate::mkfs::disk_usage(&dir).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            format!("{used} {}", auto(used))
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn auto_leaves_room() {
        assert_eq!(auto(0), 32 * MIB);
        assert!(auto(100 * MIB) >= 157 * MIB);
        assert_eq!(auto(3) % MIB, 0);
    }
}
