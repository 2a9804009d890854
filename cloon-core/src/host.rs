//! Checks of host prerequisites, each failing with what to install or run.

use crate::error::{Code, Error, Result};
use std::path::{Path, PathBuf};

/// Fails unless the effective user is root.
pub fn require_root(tool: &str, why: &str) -> Result<()> {
    if nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    Err(Error::new(
        Code::NotPermitted,
        format!("{tool} must run as root to {why}: run it with sudo"),
    ))
}

/// The full path of `program`, searched like a shell does (a name with a `/` is taken as is).
pub fn find_program(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let p = Path::new(program);
        return p.is_file().then(|| p.to_path_buf());
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// The full path of `program`, or an error naming the Debian package that provides it.
pub fn require_program(program: &str, package: &str) -> Result<PathBuf> {
    find_program(program).ok_or_else(|| {
        Error::new(
            Code::Prerequisite,
            format!("{program} is not installed: run `apt-get install {package}`"),
        )
    })
}
