//! The offline root filesystem: Debian's static busybox, one link per applet, and the few files
//! and directories a container needs (`/etc/passwd`, `/proc`, `/sys`, `/dev`, `/tmp`).

use cloon_core::{explain, host, Code, Context, Error, Result};
use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

const PT_INTERP: u32 = 3;

/// Whether the ELF file at `path` is statically linked (has no program interpreter).
pub fn is_static_elf(bytes: &[u8]) -> bool {
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" || bytes[5] != 1 {
        return false;
    }
    let (phoff, phentsize, phnum) = match bytes[4] {
        2 => (
            read_le(bytes, 0x20, 8),
            read_le(bytes, 0x36, 2),
            read_le(bytes, 0x38, 2),
        ),
        1 => (
            read_le(bytes, 0x1C, 4),
            read_le(bytes, 0x2A, 2),
            read_le(bytes, 0x2C, 2),
        ),
        _ => return false,
    };
    (0..phnum).all(|i| {
        let at = usize::try_from(phoff + i * phentsize).unwrap_or(usize::MAX);
        bytes
            .get(at..at + 4)
            .is_some_and(|t| read_le(t, 0, 4) != u64::from(PT_INTERP))
    })
}

fn read_le(bytes: &[u8], at: usize, len: usize) -> u64 {
    bytes[at..at + len]
        .iter()
        .rev()
        .fold(0, |acc, &b| (acc << 8) | u64::from(b))
}

/// The host's static busybox, or an error saying to install busybox-static.
pub fn find() -> Result<std::path::PathBuf> {
    let path = host::require_program("busybox", "busybox-static")?;
    let bytes = fs::read(&path).context(|| format!("cannot read {}", path.display()))?;
    if !is_static_elf(&bytes) {
        return Err(Error::new(
            Code::Prerequisite,
            format!(
                "{} is linked dynamically and would not run in a bare image: run `apt-get install busybox-static`",
                path.display()
            ),
        ));
    }
    Ok(path)
}

/// The directories of the root filesystem, by mode.
const DIRS: [(u32, &[&str]); 3] = [
    (
        0o755,
        &[
            "bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "run", "mnt",
            "var/log",
        ],
    ),
    (0o700, &["root"]),
    (0o1777, &["tmp"]),
];

/// The files of `/etc`.
const FILES: [(&str, &str); 4] = [
    (
        "etc/passwd",
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    ),
    ("etc/group", "root:x:0:\nnogroup:x:65534:\n"),
    ("etc/hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost\n"),
    ("etc/resolv.conf", ""),
];

/// `printf FORMAT > FILE`, the shell command that writes `text` to `file`.
pub fn printf_line(file: &Path, text: &str) -> String {
    let mut format = String::new();
    for c in text.chars() {
        match c {
            '\\' => format.push_str("\\\\"),
            '%' => format.push_str("%%"),
            '\n' => format.push_str("\\n"),
            '\t' => format.push_str("\\t"),
            c => format.push(c),
        }
    }
    format!(
        "printf {} > {}",
        explain::quote(&format),
        explain::quote(&file.to_string_lossy())
    )
}

/// Fills `root` (an empty directory) with a busybox system; with `--explain` or `--dry-run`,
/// says each step as a shell command first.
pub fn populate(root: &Path) -> Result<()> {
    let busybox = find()?;
    let path = |p: &Path| p.to_string_lossy().into_owned();
    explain::note("a busybox system: the directories, busybox, one link per applet, /etc");
    for (mode, dirs) in DIRS {
        let dirs: Vec<PathBuf> = dirs.iter().map(|d| root.join(d)).collect();
        let mut words = vec![
            "mkdir".to_string(),
            "-p".into(),
            "-m".into(),
            format!("{mode:o}"),
        ];
        words.extend(dirs.iter().map(|d| path(d)));
        if !explain::step(&words) {
            continue;
        }
        for dir in dirs {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(mode)
                .create(&dir)
                .and_then(|()| fs::set_permissions(&dir, fs::Permissions::from_mode(mode)))
                .context(|| format!("cannot create {}", dir.display()))?;
        }
    }
    let target = root.join("bin/busybox");
    if explain::step(&["cp", &path(&busybox), &path(&target)]) {
        fs::copy(&busybox, &target).context(|| format!("cannot copy {}", busybox.display()))?;
    }
    if explain::step(&["chmod", "755", &path(&target)]) {
        fs::set_permissions(&target, fs::Permissions::from_mode(0o755))
            .context(|| format!("cannot chmod {}", target.display()))?;
    }
    // bin/busybox is in the list: it is the file itself, not a link.
    let links = format!(
        "for a in $({} --list-full); do [ \"$a\" = bin/busybox ] || ln -sf /bin/busybox {}/\"$a\"; done",
        explain::quote(&path(&busybox)),
        explain::quote(&path(root))
    );
    if explain::shell(&links) {
        let out = Command::new(&busybox)
            .arg("--list-full")
            .output()
            .context(|| format!("cannot run {} --list-full", busybox.display()))?;
        for applet in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let link = root.join(applet);
            if applet.contains("..") || link == target {
                continue;
            }
            // An applet listed twice is linked once (`ln -sf`).
            match std::os::unix::fs::symlink("/bin/busybox", &link) {
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                other => other.context(|| format!("cannot link {}", link.display()))?,
            }
        }
    }
    for (rel, text) in FILES {
        let p = root.join(rel);
        if explain::shell(&printf_line(&p, text)) {
            fs::write(&p, text).context(|| format!("cannot write {}", p.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elf64(interp: bool) -> Vec<u8> {
        let mut b = vec![0u8; 64 + 2 * 56];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[0x20] = 64;
        b[0x36] = 56;
        b[0x38] = 2;
        b[64] = 1; // PT_LOAD
        b[64 + 56] = if interp { 3 } else { 1 };
        b
    }

    #[test]
    fn static_means_no_interpreter() {
        assert!(is_static_elf(&elf64(false)));
        assert!(!is_static_elf(&elf64(true)));
        assert!(!is_static_elf(b"#!/bin/sh\n"));
    }

    #[test]
    fn printf_lines_write_the_same_bytes() {
        let dir = std::env::temp_dir().join(format!("cloon-img-printf-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let file = dir.join("it's a file");
        for text in ["a\tb\n% 50%\\n\\\n'x'\n", "", "no newline"] {
            let status = Command::new("sh")
                .args(["-ec", &printf_line(&file, text)])
                .status()
                .unwrap();
            assert!(status.success());
            assert_eq!(fs::read_to_string(&file).unwrap(), text, "{text:?}");
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_hosts_shell_is_dynamic() {
        if let Ok(sh) = fs::read("/bin/bash") {
            assert!(!is_static_elf(&sh));
        }
    }
}
