//! crun 1.x and hybrid cgroup hosts: crun refuses to run ("cgroups in hybrid mode not supported,
//! drop all controllers from cgroupv2") while the cgroup v2 hierarchy mounted at
//! `/sys/fs/cgroup/unified` has controllers. Mounting each such controller on its own v1
//! hierarchy takes it away from v2 and clears the condition.
//!
//! And the parent cgroup of a state directory's containers (`cloon/ID`, which cloon-spec names
//! in each bundle), removed once the last of its containers is gone, and `cloon` itself once no
//! state directory has a parent in it.
//!
//! The runtime makes a container's cgroup with its parents (`mkdir` of `cloon`, `cloon/ID`, then
//! `cloon/ID/NAME`): no removal may come between two of them. The state directory's marker lock
//! keeps its own `down`s and `gc` off `cloon/ID` ([`StateDir::lock_marker`]); `cloon` is shared by
//! every state directory, of every mount namespace (a sandbox has its own `/run`, not its own
//! cgroups), so it is kept by a lock on the first cgroup hierarchy's root directory, the one
//! thing every cloon-run on the host opens alike ([`lock_hierarchy`]).

use cloon_core::cgroups::Mode;
use cloon_core::{explain, mounts, Code, Context, Error, Result, StateDir};
use nix::fcntl::{Flock, FlockArg};
use std::path::{Path, PathBuf};

/// The cgroup every state directory's parent is in.
const TOP: &str = "cloon";

/// The directories of the cgroup `rel` in each cgroup hierarchy mounted here (v1 and v2).
pub fn in_every_hierarchy(rel: &str) -> Result<Vec<PathBuf>> {
    let mut dirs: Vec<PathBuf> = mounts::table()?
        .into_iter()
        .filter(|m| m.fstype == "cgroup" || m.fstype == "cgroup2")
        .map(|m| m.target.join(rel))
        .collect();
    dirs.sort();
    dirs.dedup();
    Ok(dirs)
}

/// The cgroup mode and the cgroup the bundle's config.json gives its container (its annotation
/// [`cloon_core::cgroups::ANNOTATION`] and `linux.cgroupsPath`, "" when it names none). A config.json that
/// cannot be read gives the runtime's mode and no cgroup: the runtime says why at `create`.
pub fn of_bundle(bundle: &Path) -> (Mode, String) {
    let config = crate::bundle_config(bundle);
    let path = config["linux"]["cgroupsPath"]
        .as_str()
        .map(String::from)
        .unwrap_or_default();
    (Mode::of_config(&config), path)
}

/// Removes the parent of the container's cgroup `cgroup` (`/cloon/ID/NAME`: its parent is
/// `cloon/ID`) with [`remove_parent`]. A cgroup that is not under `/cloon/` is the runtime's
/// business.
pub fn remove_parent_of(state: &StateDir, cgroup: &str) -> Result<()> {
    let Some(parent) = cgroup
        .strip_prefix("/cloon/")
        .and_then(|rest| rest.split_once('/'))
        .map(|(id, _)| id)
        .filter(|id| !id.is_empty() && !id.contains(".."))
    else {
        return Ok(());
    };
    remove_parent(state, &format!("cloon/{parent}"))
}

/// Locks the root directory of the first cgroup hierarchy (in path order), shared while a
/// runtime makes a container's cgroup under `cloon`, exclusive while `cloon` is removed; `None`
/// on a host with no cgroup hierarchy.
pub fn lock_hierarchy(exclusive: bool) -> Result<Option<Flock<std::fs::File>>> {
    lock_first(&in_every_hierarchy("")?, exclusive)
}

/// [`lock_hierarchy`], of the hierarchies whose root directories are `roots` (sorted).
fn lock_first(roots: &[PathBuf], exclusive: bool) -> Result<Option<Flock<std::fs::File>>> {
    let Some(root) = roots.first() else {
        return Ok(None);
    };
    let dir = std::fs::File::open(root).context(|| format!("cannot open {}", root.display()))?;
    let arg = if exclusive {
        FlockArg::LockExclusive
    } else {
        FlockArg::LockShared
    };
    Flock::lock(dir, arg)
        .map(Some)
        .map_err(|(_, e)| Error::sys(format!("cannot lock {}", root.display()), e))
}

/// What a runtime's `create` of a container under the state directory's parent holds: no
/// removal of that parent (the state directory's marker, shared) nor of `cloon` (the hierarchy
/// lock, shared) comes between its mkdirs.
pub fn hold_for_create(
    state: &StateDir,
) -> Result<(Flock<std::fs::File>, Option<Flock<std::fs::File>>)> {
    let marker = state.lock_marker(false)?;
    Ok((marker, lock_hierarchy(false)?))
}

/// Removes the parent cgroup `parent` (`cloon/ID`, see [`cloon_core::StateDir::cgroup_parent`])
/// from every hierarchy where it is empty, then `cloon` where it is empty too: the runtime's
/// `delete` removes a container's own cgroup, not its parents. One that still holds a container
/// (or another state directory's parent) stays.
pub fn remove_parent(state: &StateDir, parent: &str) -> Result<()> {
    let roots = in_every_hierarchy("")?;
    let dirs: Vec<PathBuf> = roots.iter().map(|r| r.join(parent)).collect();
    let tops: Vec<PathBuf> = roots.iter().map(|r| r.join(TOP)).collect();
    let words: Vec<String> = dirs
        .iter()
        .chain(&tops)
        .map(|d| explain::quote(&d.to_string_lossy()))
        .collect();
    let said = format!(
        "for d in {}; do [ ! -d \"$d\" ] || rmdir --ignore-fail-on-non-empty \"$d\"; done",
        words.join(" ")
    );
    if dirs.is_empty() || !explain::shell(&said) {
        return Ok(());
    }
    // Never between a runtime's mkdir of a parent and of a container's cgroup in it.
    let _lock = state.lock_marker(true)?;
    remove_empty(&dirs)?;
    let _top = lock_first(&roots, true)?;
    remove_empty(&tops)
}

/// Removes each of the cgroups `dirs` that is empty.
fn remove_empty(dirs: &[PathBuf]) -> Result<()> {
    for dir in dirs {
        match std::fs::remove_dir(dir) {
            // Something is still in it, or it is not there (any more).
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(nix::libc::ENOTEMPTY | nix::libc::EBUSY | nix::libc::ENOENT)
                ) => {}
            other => other.context(|| format!("cannot remove the cgroup {}", dir.display()))?,
        }
    }
    Ok(())
}

/// The controller list of the v2 hierarchy of a hybrid host.
pub const UNIFIED_CONTROLLERS: &str = "/sys/fs/cgroup/unified/cgroup.controllers";

/// The controllers that make crun refuse to run, from the contents of [`UNIFIED_CONTROLLERS`].
pub fn hybrid_controllers(contents: &str) -> Vec<String> {
    contents.split_whitespace().map(str::to_string).collect()
}

/// The commands that move `controllers` to their own v1 hierarchies.
pub fn fix_commands(controllers: &[String]) -> String {
    controllers
        .iter()
        .map(|c| {
            format!(
                "mkdir -p /sys/fs/cgroup/{c} && mount -t cgroup -o {c} cgroup /sys/fs/cgroup/{c}"
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The error for a hybrid host whose v2 hierarchy has `controllers`, or `None` when crun can run.
pub fn hybrid_error(controllers: &[String]) -> Option<Error> {
    if controllers.is_empty() {
        return None;
    }
    Some(
        Error::new(
            Code::Prerequisite,
            format!(
                "crun cannot run on this host's hybrid cgroups: {UNIFIED_CONTROLLERS} lists {}; mount each on its own v1 hierarchy (as root: `{}`), or use --runtime runc",
                controllers.join(" "),
                fix_commands(controllers)
            ),
        )
        .details("crun 1.x fails with \"cgroups in hybrid mode not supported, drop all controllers from cgroupv2\""),
    )
}

/// Fails with [`Code::Prerequisite`] when crun would refuse this host's cgroups. A host without
/// the file (pure v1 or pure v2) is fine.
pub fn check_for_crun(file: &Path) -> Result<()> {
    let contents = match std::fs::read_to_string(file) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        other => other.context(|| format!("cannot read {}", file.display()))?,
    };
    match hybrid_error(&hybrid_controllers(&contents)) {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_controllers_are_fine() {
        assert!(hybrid_controllers("").is_empty());
        assert!(hybrid_controllers("\n").is_empty());
        assert!(hybrid_error(&hybrid_controllers("\n")).is_none());
    }

    #[test]
    fn listed_controllers_are_named_with_their_fix() {
        let list = hybrid_controllers("hugetlb misc\n");
        assert_eq!(list, ["hugetlb", "misc"]);
        let err = hybrid_error(&list).unwrap();
        assert_eq!(err.code, Code::Prerequisite);
        assert!(
            err.msg
                .contains("mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb"),
            "{}",
            err.msg
        );
        assert!(
            err.msg.contains("mkdir -p /sys/fs/cgroup/misc"),
            "{}",
            err.msg
        );
        assert!(err.msg.contains("--runtime runc"), "{}", err.msg);
    }

    #[test]
    fn a_missing_file_means_no_hybrid_hierarchy() {
        check_for_crun(Path::new("/nonexistent/cgroup.controllers")).unwrap();
        let f = std::env::temp_dir().join(format!("cloon-run-cg-{}", std::process::id()));
        std::fs::write(&f, "hugetlb\n").unwrap();
        let err = check_for_crun(&f).unwrap_err();
        std::fs::write(&f, "").unwrap();
        check_for_crun(&f).unwrap();
        std::fs::remove_file(&f).unwrap();
        assert_eq!(err.code, Code::Prerequisite);
    }
}
