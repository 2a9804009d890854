//! Whether a live container uses a root filesystem or a bundle, so that `down` and `gc` never
//! take a running container's parts away.
//!
//! An `umount` that fails with `EBUSY` cannot tell: the runtime gives the container a mount
//! namespace of its own, with its own copy of the overlay mount, and the copy in the tools'
//! namespace then goes without complaint while the container goes on writing in the upper
//! directory. "In use" is decided from what cloon knows instead:
//!
//! - the containers cloon-run recorded (`<state>/<name>/run.json`, read as plain JSON: its `pid`,
//!   `start_time` and `bundle`) whose process still runs: the process is the recorded one if
//!   field 22 of `/proc/PID/stat` (its start time) is the recorded `start_time`. Such a container
//!   uses its bundle and the root filesystem that bundle's `config.json` names;
//! - every process whose root directory is in the root filesystem, found in `/proc/*/root`
//!   (followed: its device and inode, whatever mount namespace the process is in), which also
//!   finds containers made by hand. The root filesystem of an overlay is known by its device (that
//!   of the overlay's superblock), or, where it is not mounted in the caller's namespace any more,
//!   by the `upperdir` of the overlay the process's root is on (`/proc/PID/mountinfo`).
//!
//! A bundle is used by the containers recorded as made from it and, where the root filesystem it
//! names is a mount of its own (one overlay per container), by the processes whose root is there.

use crate::error::{Code, Error, Result};
use crate::mounts;
use crate::state::StateDir;
use std::fmt;
use std::fs;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The name of cloon-run's record of a container: `<state>/<name>/run.json`.
pub const RUN_RECORD: &str = "run";

/// Something alive that uses a root filesystem or a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum User {
    /// A container cloon-run recorded under `name`, whose process `pid` runs.
    Container { name: String, pid: i64 },
    /// A process cloon-run did not record (a container made by hand, a chroot) whose root
    /// directory is in the root filesystem.
    Process { pid: i64, command: String },
}

impl User {
    pub fn pid(&self) -> i64 {
        match self {
            User::Container { pid, .. } | User::Process { pid, .. } => *pid,
        }
    }
}

impl fmt::Display for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            User::Container { name, pid } => write!(f, "the container \"{name}\" (process {pid})"),
            User::Process { pid, command } => write!(f, "process {pid} ({command})"),
        }
    }
}

/// What `/proc/PID/stat` says of a process: whether it runs (neither a zombie nor dead), when it
/// started (clock ticks after boot, field 22), and its command name (field 2).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stat {
    running: bool,
    start_time: u64,
    command: String,
}

/// Parses `/proc/PID/stat`; the command name is in parentheses and may hold both, so the fields
/// are counted after its last `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let command = text.get(open + 1..close)?.to_string();
    let mut fields = text.get(close + 1..)?.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    // Fields 4 to 21, then 22.
    let start_time = fields.nth(18)?.parse().ok()?;
    Some(Stat {
        running: !matches!(state, 'Z' | 'X' | 'x'),
        start_time,
        command,
    })
}

fn stat(pid: i64) -> Option<Stat> {
    if pid <= 0 {
        return None;
    }
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Whether the process `pid` that started at `start_time` still runs. A record without a start
/// time (0: written by an older cloon-run) is taken at its pid's word while that pid runs: a
/// refusal is safer than deleting a live container's data.
pub fn alive(pid: i64, start_time: u64) -> bool {
    stat(pid).is_some_and(|s| s.running && (start_time == 0 || s.start_time == start_time))
}

/// A container cloon-run recorded, whose process runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Live {
    pub name: String,
    pub pid: i64,
    /// Its bundle, as recorded.
    pub bundle: PathBuf,
}

/// The containers cloon-run recorded under `state` whose process runs. A record that cannot be
/// read names no process, and so no live container.
pub fn live_containers(state: &StateDir) -> Result<Vec<Live>> {
    let mut live = Vec::new();
    for name in state.names()? {
        let Ok(Some(record)) = state.load::<serde_json::Value>(&name, RUN_RECORD) else {
            continue;
        };
        let pid = record["pid"].as_i64().unwrap_or(0);
        let start_time = record["start_time"]
            .as_u64()
            .or_else(|| record["startTime"].as_u64())
            .unwrap_or(0);
        if pid > 0 && alive(pid, start_time) {
            live.push(Live {
                name,
                pid,
                bundle: PathBuf::from(record["bundle"].as_str().unwrap_or_default()),
            });
        }
    }
    Ok(live)
}

/// The root filesystem the OCI configuration of `bundle` names (`root.path`, made absolute
/// against the bundle), or `None` when it cannot be read. The file is not opened through a
/// symbolic link.
pub fn bundle_root(bundle: &Path) -> Option<PathBuf> {
    let path = bundle.join("config.json");
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
        .ok()?;
    let config: serde_json::Value = serde_json::from_reader(std::io::BufReader::new(file)).ok()?;
    let root = Path::new(config["root"]["path"].as_str()?);
    Some(bundle.join(root))
}

/// Whether `a` and `b` name the same directory: the same path, or the same device and inode.
fn same_dir(a: &Path, b: &Path) -> bool {
    if a == b {
        return true;
    }
    match (fs::metadata(a), fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.is_dir() && (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    }
}

/// How to know the processes whose root directory is in a directory tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    /// The root of a mount: every process whose root is on that filesystem (device) is in it.
    Mount(u64),
    /// A plain directory: the processes whose root is that very directory (device, inode).
    Dir(u64, u64),
}

impl Root {
    /// What to look for, for the directory `path`; `None` when it is not a directory (a link is
    /// not followed).
    pub fn of(path: &Path) -> Option<Root> {
        let meta = fs::symlink_metadata(path).ok()?;
        if !meta.is_dir() {
            return None;
        }
        let parent = path.parent().and_then(|p| fs::metadata(p).ok());
        Some(match parent {
            Some(parent) if parent.dev() == meta.dev() => Root::Dir(meta.dev(), meta.ino()),
            _ => Root::Mount(meta.dev()),
        })
    }

    fn holds(&self, dev: u64, ino: u64) -> bool {
        match *self {
            Root::Mount(d) => d == dev,
            Root::Dir(d, i) => (d, i) == (dev, ino),
        }
    }
}

/// Whether the process `pid`, whose root is on the filesystem `dev`, has as its root an overlay
/// whose option `key` (`upperdir`, `lowerdir`) is `dir`: its own mount table says so (that of its
/// own mount namespace).
fn on_overlay_with(pid: u32, dev: u64, (key, dir): (&str, &Path)) -> bool {
    // Overlays have anonymous devices (major 0); other roots need no look at the table.
    if nix::libc::major(dev) != 0 {
        return false;
    }
    mounts::table_of(pid).is_some_and(|table| {
        table
            .iter()
            .any(|m| m.dev == dev && m.fstype == "overlay" && m.overlay_dir_is(key, dir))
    })
}

/// The processes whose root directory is in `root` or, given `overlay` (an option of overlayfs
/// and a directory: `("upperdir", upper)`, `("lowerdir", lower)`), on an overlay whose option
/// names that directory (in whatever mount namespace it is mounted). A root that would hold the
/// caller's own root (`/`) looks for nothing: every process would be in it.
pub fn processes_rooted_in(root: Option<Root>, overlay: Option<(&str, &Path)>) -> Vec<User> {
    let Ok(own) = fs::metadata("/proc/self/root") else {
        return Vec::new();
    };
    let root = root.filter(|r| !r.holds(own.dev(), own.ino()));
    if root.is_none() && overlay.is_none() {
        return Vec::new();
    }
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id();
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        // Followed: the process's root directory itself, in its own mount namespace. A process
        // gone meanwhile, or one not ours to inspect, is skipped.
        let Ok(meta) = fs::metadata(format!("/proc/{pid}/root")) else {
            continue;
        };
        let (dev, ino) = (meta.dev(), meta.ino());
        let hit = root.is_some_and(|r| r.holds(dev, ino))
            || overlay.is_some_and(|o| dev != own.dev() && on_overlay_with(pid, dev, o));
        if !hit {
            continue;
        }
        let pid = i64::from(pid);
        if let Some(s) = stat(pid).filter(|s| s.running) {
            found.push(User::Process {
                pid,
                command: s.command,
            });
        }
    }
    found.sort_by_key(User::pid);
    found
}

/// The users of something: the live containers of `recorded`, then the processes of `found`
/// that are not among them, each named as the container cloon-run recorded when it is one's
/// (a live container its bundle did not tie to the thing, whose process is there all the same).
fn users(live: &[Live], recorded: impl Fn(&Live) -> bool, found: Vec<User>) -> Vec<User> {
    let container = |l: &Live| User::Container {
        name: l.name.clone(),
        pid: l.pid,
    };
    let mut users: Vec<User> = live.iter().filter(|l| recorded(l)).map(container).collect();
    for user in found {
        if users.iter().any(|u| u.pid() == user.pid()) {
            continue;
        }
        users.push(match live.iter().find(|l| l.pid == user.pid()) {
            Some(l) => container(l),
            None => user,
        });
    }
    users
}

/// Who uses `rootfs`, the root filesystem of the container `owner` (`upper`: its upper
/// directory, when it is an overlay): the live containers cloon-run recorded whose bundle names
/// it as their root (or, when that bundle cannot be read, the live container `owner` itself),
/// then every other process whose root directory is in it. Empty when nobody does.
pub fn rootfs_users(
    state: &StateDir,
    owner: &str,
    rootfs: &Path,
    upper: Option<&Path>,
) -> Result<Vec<User>> {
    let root = Root::of(rootfs);
    // Where the overlay of that upper directory is mounted here, every process on it has its
    // device: the mount tables of other processes need no reading.
    let here = match (root, upper) {
        (Some(Root::Mount(_)), Some(upper)) => mounts::at(rootfs)?
            .is_some_and(|m| m.fstype == "overlay" && m.overlay_dir_is("upperdir", upper)),
        _ => false,
    };
    let upper = upper.filter(|_| !here).map(|u| ("upperdir", u));
    let found = processes_rooted_in(root, upper);
    // A root filesystem that is a mount of its own holds the root of every process of every
    // container made on it: with none found, no container is on it, and the records need no
    // reading (a lab's teardown would read every other container's, for each container).
    if found.is_empty() && matches!(root, Some(Root::Mount(_))) {
        return Ok(found);
    }
    let live = live_containers(state)?;
    let on_rootfs = |l: &Live| {
        // A container whose process's root is on another device than a mounted root
        // filesystem is not on it: its configuration needs no reading.
        if let Some(Root::Mount(dev)) = root {
            if fs::metadata(format!("/proc/{}/root", l.pid)).is_ok_and(|m| m.dev() != dev) {
                return false;
            }
        }
        match bundle_root(&l.bundle) {
            Some(root) => same_dir(&root, rootfs),
            None => l.name == owner,
        }
    };
    Ok(users(&live, on_rootfs, found))
}

/// Who has as their root an overlay (in whatever mount namespace) whose option `key`
/// (`lowerdir`, `upperdir`) names `dir`. Empty when nobody does.
pub fn overlay_users(state: &StateDir, key: &str, dir: &Path) -> Result<Vec<User>> {
    let found = processes_rooted_in(None, Some((key, dir)));
    if found.is_empty() {
        return Ok(found);
    }
    Ok(users(&live_containers(state)?, |_| false, found))
}

/// Who uses the bundle `bundle`: the live containers cloon-run recorded as made from it, then,
/// when the root filesystem its configuration names (`rootfs` when the configuration cannot be
/// read) is a mount of its own (as cloon-overlay makes one per container), every process whose
/// root is on it: a container made from the bundle by hand. A plain directory may be the root
/// filesystem of several bundles at once: a process there says nothing of this bundle. Empty
/// when nobody uses it.
pub fn bundle_users(state: &StateDir, bundle: &Path, rootfs: Option<&Path>) -> Result<Vec<User>> {
    let root = bundle_root(bundle).or_else(|| rootfs.map(Path::to_path_buf));
    let (found, mounted) = match root.as_deref().and_then(Root::of) {
        Some(mount @ Root::Mount(_)) => (processes_rooted_in(Some(mount), None), true),
        _ => (Vec::new(), false),
    };
    // Every container made from the bundle has its root on that mount: none found, none there.
    if found.is_empty() && mounted {
        return Ok(found);
    }
    let live = live_containers(state)?;
    Ok(users(&live, |l| same_dir(&l.bundle, bundle), found))
}

/// Who `users` are and what to do about them: `the container "C" (process 4242): bring the
/// container down first (`cloon-run down --name C`)`.
pub fn summary(users: &[User]) -> String {
    let names: Vec<&str> = users
        .iter()
        .filter_map(|u| match u {
            User::Container { name, .. } => Some(name.as_str()),
            User::Process { .. } => None,
        })
        .collect();
    let others = users.len() - names.len();
    let shown: Vec<String> = users.iter().take(4).map(User::to_string).collect();
    let mut who = shown.join(", ");
    if users.len() > shown.len() {
        who.push_str(&format!(" and {} more", users.len() - shown.len()));
    }
    let todo = if names.is_empty() {
        "stop what runs there first (a container made by hand with crun: `crun delete --force ID`)"
            .to_string()
    } else {
        let mut commands: Vec<String> = names
            .iter()
            .map(|n| format!("`cloon-run down --name {n}`"))
            .collect();
        commands.dedup();
        let and_others = if others > 0 {
            ", and stop the other processes whose root is there"
        } else {
            ""
        };
        format!(
            "bring the container down first ({}){and_others}",
            commands.join(", ")
        )
    };
    format!("{who}: {todo}")
}

/// The error of a `down` refused because `what` (e.g. `the root filesystem X of "C"`) is in use
/// by `users`: code 11, try again once the container is down, saying how to bring it down.
pub fn refusal(what: &str, users: &[User]) -> Error {
    let pids: Vec<String> = users.iter().map(|u| u.pid().to_string()).collect();
    Error::new(
        Code::TryAgain,
        format!("{what} is in use by {}, then try again", summary(users)),
    )
    .details(format!("live processes: {}", pids.join(" ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn stat_lines_parse_whatever_the_command_name() {
        let line = "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 \
                    1000 10 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.start_time, 987654);
        assert!(s.running);
        assert_eq!(s.command, "a) b (c)");
        let zombie = line.replace(") S ", ") Z ");
        assert!(!parse_stat(&zombie).unwrap().running);
        assert_eq!(parse_stat("12 (x) Z 1 2"), None);
        assert_eq!(parse_stat("no parenthesis"), None);
    }

    #[test]
    fn a_process_is_alive_by_its_pid_and_start_time() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = i64::from(child.id());
        let start = stat(pid).unwrap().start_time;
        assert!(alive(pid, start));
        assert!(alive(pid, 0), "an older record, without its start time");
        assert!(!alive(pid, start + 1), "another process of that pid");
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!alive(pid, start));
        assert!(!alive(0, 0));
        assert!(!alive(-1, 0));
    }

    fn temp(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("cloon-inuse-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        p
    }

    #[test]
    fn a_bundle_names_its_root_absolute() {
        let dir = temp("bundle");
        assert_eq!(bundle_root(&dir), None);
        fs::write(dir.join("config.json"), r#"{"root": {"path": "rootfs"}}"#).unwrap();
        assert_eq!(bundle_root(&dir), Some(dir.join("rootfs")));
        fs::write(dir.join("config.json"), r#"{"root": {"path": "/r"}}"#).unwrap();
        assert_eq!(bundle_root(&dir), Some(PathBuf::from("/r")));
        fs::write(dir.join("config.json"), "{").unwrap();
        assert_eq!(bundle_root(&dir), None);
        // Not through a link.
        let other = temp("bundle-link");
        fs::write(other.join("c.json"), r#"{"root": {"path": "/r"}}"#).unwrap();
        fs::remove_file(dir.join("config.json")).unwrap();
        std::os::unix::fs::symlink(other.join("c.json"), dir.join("config.json")).unwrap();
        assert_eq!(bundle_root(&dir), None);
        fs::remove_dir_all(&dir).unwrap();
        fs::remove_dir_all(&other).unwrap();
    }

    #[test]
    fn roots_of_plain_directories_and_of_the_callers_root() {
        let dir = temp("root");
        let meta = fs::metadata(&dir).unwrap();
        assert_eq!(Root::of(&dir), Some(Root::Dir(meta.dev(), meta.ino())));
        assert_eq!(Root::of(&dir.join("nothere")), None);
        // Nobody's root is this fresh directory.
        assert_eq!(processes_rooted_in(Root::of(&dir), None), []);
        // The caller's own root would hold every process: nothing is looked for.
        assert_eq!(processes_rooted_in(Root::of(Path::new("/")), None), []);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn live_containers_are_the_recorded_ones_whose_process_runs() {
        let dir = temp("live");
        let state = StateDir::new(Some(&dir.join("state"))).unwrap();
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = i64::from(child.id());
        let start = stat(pid).unwrap().start_time;
        let bundle = dir.join("bundle");
        fs::create_dir_all(&bundle).unwrap();
        fs::write(
            bundle.join("config.json"),
            format!(
                r#"{{"root": {{"path": "{}"}}}}"#,
                dir.join("rootfs").display()
            ),
        )
        .unwrap();
        let record = |pid: i64, start: u64| {
            serde_json::json!({"id": "x", "pid": pid, "start_time": start,
                               "bundle": bundle.display().to_string()})
        };
        state.claim("Run", RUN_RECORD, &record(pid, start)).unwrap();
        state
            .claim("Old", RUN_RECORD, &record(pid, start + 1))
            .unwrap();
        state.claim("New", RUN_RECORD, &record(0, 0)).unwrap();
        let live = live_containers(&state).unwrap();
        assert_eq!(
            live,
            [Live {
                name: "Run".into(),
                pid,
                bundle: bundle.clone()
            }]
        );
        let users = rootfs_users(&state, "Other", &dir.join("rootfs"), None).unwrap();
        assert_eq!(
            users,
            [User::Container {
                name: "Run".into(),
                pid
            }]
        );
        assert_eq!(
            rootfs_users(&state, "Other", &dir.join("elsewhere"), None).unwrap(),
            []
        );
        assert_eq!(bundle_users(&state, &bundle, None).unwrap(), users);
        assert_eq!(bundle_users(&state, &dir.join("b2"), None).unwrap(), []);
        let e = refusal("the bundle B of \"Run\"", &users);
        assert_eq!(e.code, Code::TryAgain);
        assert!(e.msg.contains("cloon-run down --name Run"), "{}", e.msg);
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(live_containers(&state).unwrap(), []);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_refusal_of_processes_says_to_stop_them() {
        let users = [User::Process {
            pid: 7,
            command: "sleep".into(),
        }];
        let e = refusal("the root filesystem R of \"C\"", &users);
        assert_eq!(e.code, Code::TryAgain);
        assert!(e.msg.contains("process 7 (sleep)"), "{}", e.msg);
        assert!(e.msg.contains("first"), "{}", e.msg);
        assert!(!e.msg.contains("cloon-run down"), "{}", e.msg);
    }
}
