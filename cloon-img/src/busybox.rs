//! The offline root filesystem: Debian's static busybox, one link per applet, and the few files
//! and directories a container needs (`/etc/passwd`, `/proc`, `/sys`, `/dev`, `/tmp`).

use cloon_core::{host, Code, Context, Error, Result};
use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;
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

/// Fills `root` (an empty directory) with a busybox system.
pub fn populate(root: &Path) -> Result<()> {
    let busybox = find()?;
    let mkdir = |rel: &str, mode: u32| {
        let p = root.join(rel);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(mode)
            .create(&p)
            .and_then(|()| fs::set_permissions(&p, fs::Permissions::from_mode(mode)))
            .context(|| format!("cannot create {}", p.display()))
    };
    for dir in [
        "bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "run", "mnt", "var/log",
    ] {
        mkdir(dir, 0o755)?;
    }
    mkdir("root", 0o700)?;
    mkdir("tmp", 0o1777)?;
    let target = root.join("bin/busybox");
    fs::copy(&busybox, &target).context(|| format!("cannot copy {}", busybox.display()))?;
    fs::set_permissions(&target, fs::Permissions::from_mode(0o755))
        .context(|| format!("cannot chmod {}", target.display()))?;
    let out = Command::new(&busybox)
        .arg("--list-full")
        .output()
        .context(|| format!("cannot run {} --list-full", busybox.display()))?;
    for applet in String::from_utf8_lossy(&out.stdout).lines() {
        let link = root.join(applet);
        if applet.is_empty() || applet.contains("..") || link == target {
            continue;
        }
        match std::os::unix::fs::symlink("/bin/busybox", &link) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            other => other.context(|| format!("cannot link {}", link.display()))?,
        }
    }
    let files = [
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        ),
        ("etc/group", "root:x:0:\nnogroup:x:65534:\n"),
        ("etc/hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost\n"),
        ("etc/resolv.conf", ""),
    ];
    for (rel, text) in files {
        let p = root.join(rel);
        fs::write(&p, text).context(|| format!("cannot write {}", p.display()))?;
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
    fn the_hosts_shell_is_dynamic() {
        if let Ok(sh) = fs::read("/bin/bash") {
            assert!(!is_static_elf(&sh));
        }
    }
}
