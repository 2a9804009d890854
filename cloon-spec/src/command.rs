//! Finding the container's command inside its root filesystem, the way the container will see it:
//! symbolic links resolve against the root filesystem, never against the host's `/`.

use cloon_core::{Error, Result};
use std::collections::VecDeque;
use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

/// Most symbolic links followed in one lookup, as the kernel's limit.
const MAX_LINKS: usize = 40;

/// The host path of `path` as seen from a process whose root is `root`: every symbolic link is
/// followed inside `root`, and `..` never climbs above it. Fails if a component is missing.
pub fn resolve_in_root(root: &Path, path: &Path) -> std::io::Result<PathBuf> {
    let mut pending: VecDeque<OsString> = VecDeque::new();
    push_front(&mut pending, path);
    let mut resolved: Vec<OsString> = Vec::new();
    let mut links = 0;
    while let Some(part) = pending.pop_front() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        resolved.push(part);
        let host: PathBuf = root.join(resolved.iter().collect::<PathBuf>());
        let meta = std::fs::symlink_metadata(&host)?;
        if meta.file_type().is_symlink() {
            links += 1;
            if links > MAX_LINKS {
                return Err(std::io::Error::from_raw_os_error(nix::libc::ELOOP));
            }
            let target = std::fs::read_link(&host)?;
            resolved.pop();
            if target.is_absolute() {
                resolved.clear();
            }
            push_front(&mut pending, &target);
        }
    }
    Ok(root.join(resolved.iter().collect::<PathBuf>()))
}

/// Puts the components of `path` in front of `pending`, `.` and `/` dropped, `..` kept.
fn push_front(pending: &mut VecDeque<OsString>, path: &Path) {
    let parts: Vec<OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    for part in parts.into_iter().rev() {
        pending.push_front(part);
    }
}

fn is_executable(host: &Path) -> bool {
    std::fs::metadata(host).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Where `program` is in `root`: taken as is when it has a `/` (relative to the container's `/`),
/// else searched in the directories of `search_path`. Returns the path inside the container.
pub fn find(root: &Path, program: &str, search_path: &str) -> Option<PathBuf> {
    if program.is_empty() {
        return None;
    }
    let candidates: Vec<PathBuf> = if program.contains('/') {
        vec![Path::new("/").join(program)]
    } else {
        search_path
            .split(':')
            .filter(|dir| dir.starts_with('/'))
            .map(|dir| Path::new(dir).join(program))
            .collect()
    };
    candidates
        .into_iter()
        .find(|inside| resolve_in_root(root, inside).is_ok_and(|host| is_executable(&host)))
}

/// Fails with [`cloon_core::Code::InvalidConfig`] when the root filesystem exists and lacks the
/// command `args[0]`.
pub fn check(root: &Path, args: &[String], search_path: &str) -> Result<()> {
    let Some(program) = args.first() else {
        return Err(Error::invalid("the container's command is empty"));
    };
    if !root.is_dir() || find(root, program, search_path).is_some() {
        return Ok(());
    }
    let where_ = if program.contains('/') {
        String::new()
    } else {
        format!(" in PATH {search_path}")
    };
    Err(Error::config(format!(
        "the command \"{}\" is not in the root filesystem {}{where_}: give a command the image has after --",
        program.escape_debug(),
        root.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    struct Tree(PathBuf);
    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn tree(tag: &str) -> Tree {
        let root =
            std::env::temp_dir().join(format!("cloon-spec-cmd-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("usr/bin")).unwrap();
        fs::create_dir_all(root.join("etc")).unwrap();
        let exe = root.join("usr/bin/busybox");
        fs::write(&exe, "#!").unwrap();
        fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(root.join("etc/data"), "x").unwrap();
        symlink("usr/bin", root.join("bin")).unwrap(); // merged /usr, relative
        symlink("busybox", root.join("usr/bin/sh")).unwrap();
        symlink("/bin/busybox", root.join("usr/bin/abs")).unwrap(); // absolute: inside root
        symlink("../../../../../../usr/bin/busybox", root.join("usr/bin/up")).unwrap();
        symlink("/etc/data", root.join("usr/bin/notexec")).unwrap();
        symlink("/bin/true", root.join("usr/bin/hosttrue")).unwrap(); // only on the host
        symlink("loop2", root.join("usr/bin/loop1")).unwrap();
        symlink("loop1", root.join("usr/bin/loop2")).unwrap();
        Tree(root)
    }

    #[test]
    fn links_resolve_inside_the_root() {
        let t = tree("resolve");
        let r = &t.0;
        assert_eq!(
            resolve_in_root(r, Path::new("/bin/sh")).unwrap(),
            r.join("usr/bin/busybox")
        );
        assert_eq!(
            resolve_in_root(r, Path::new("/bin/abs")).unwrap(),
            r.join("usr/bin/busybox")
        );
        assert_eq!(
            resolve_in_root(r, Path::new("/bin/up")).unwrap(),
            r.join("usr/bin/busybox")
        );
        assert_eq!(
            resolve_in_root(r, Path::new("/../../bin/sh")).unwrap(),
            r.join("usr/bin/busybox")
        );
        assert!(resolve_in_root(r, Path::new("/bin/hosttrue")).is_err());
        assert!(resolve_in_root(r, Path::new("/bin/loop1")).is_err());
    }

    #[test]
    fn commands_are_found_by_path_or_search() {
        let t = tree("find");
        let r = &t.0;
        assert_eq!(
            find(r, "sh", "/usr/local/bin:/bin"),
            Some(PathBuf::from("/bin/sh"))
        );
        assert_eq!(
            find(r, "/usr/bin/abs", ""),
            Some(PathBuf::from("/usr/bin/abs"))
        );
        assert_eq!(find(r, "sh", "relative:/nowhere"), None);
        assert_eq!(find(r, "notexec", "/bin"), None);
        assert_eq!(find(r, "hosttrue", "/bin"), None);
        assert_eq!(find(r, "", "/bin"), None);
        check(r, &["sh".into()], "/bin").unwrap();
        let err = check(r, &["bash".into(), "-l".into()], "/bin:/usr/bin").unwrap_err();
        assert_eq!(err.code, cloon_core::Code::InvalidConfig);
        assert!(
            err.msg.contains("\"bash\"") && err.msg.contains("/bin:/usr/bin"),
            "{}",
            err.msg
        );
        // Without a root filesystem yet, nothing can be checked.
        check(&r.join("missing"), &["bash".into()], "/bin").unwrap();
    }
}
