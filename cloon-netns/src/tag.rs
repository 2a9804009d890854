//! How cloon-netns marks the interfaces it makes, so that `down` and `gc` can tell them from
//! look-alikes even when a record lacks their index (a tool killed between creating an interface
//! and recording it), and so that each state directory's `gc` acts on exactly its own.
//!
//! - Every interface cloon-netns creates (veth ends, bridges, point-to-point ends) is created in
//!   the interface group of its state directory ([`Owner::group`]): the kernel applies the group
//!   in the very request that creates the interface (`ip link add NAME group N ...`), so no
//!   instant exists where a cloon interface is outside it. The default state directory
//!   (`/run/cloon`) has the group [`DEFAULT_GROUP`], 1668050798 ("clon" in ASCII); any other
//!   state directory a group derived from its path with symbolic links resolved, from
//!   1073741824 to 2147483647 (what iproute2 accepts, above the small numbers groups are given by
//!   hand), never [`DEFAULT_GROUP`]. Two state directories are thus in different groups (unless
//!   two paths' hashes meet, one chance in about a billion for a pair), and the group is written
//!   in every record, so that `down` and `check` never compute it again.
//! - Each interface it creates on the host's side (host ends, bridges) then gets the alias
//!   `cloon:RECORD`, the path of the record that owns it (`ip link set NAME alias ...`: the
//!   kernel takes no alias at creation; it ignores IFLA_IFALIAS in the request that creates an
//!   interface). The alias names the owner for people and for `gc`: a record
//!   `ROOT/NAME/netns.json` or `ROOT/.bridges/NAME.json` belongs to the state directory `ROOT`
//!   exactly, never to a directory that merely contains `ROOT`.
//! - Between the creation and the alias, an interface is in its state directory's group and has
//!   no alias. Another state directory's `gc` does not look at that group. Its own `gc` takes
//!   such an interface for a leftover only while no `up` of the state directory is at work: every
//!   `up` and `link` holds the state root's shared lock ([`RootLock::hold`]) while it makes
//!   interfaces, and `gc` needs the exclusive one ([`RootLock::try_idle`]).
//!
//! Records older than per-state-directory groups have the group 1668050798 whatever their state
//! directory: `down` and `check` go by the recorded group, so they still find those interfaces;
//! `gc` of another state directory takes an interface in that group for its own only when its
//! alias names one of its records (one with no alias is the default state directory's business).
//!
//! A record names an interface by name, with its ifindex once known (0 before), the group it was
//! made in (0 in records older than tags: then the index alone identifies it) and its alias.

use crate::link::LinkState;
use cloon_core::{state::DEFAULT_ROOT, Error, Result, StateDir};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

/// The interface group of the default state directory's interfaces, and of every interface made
/// by a cloon-netns older than per-state-directory groups: 0x636c6f6e, "clon" in ASCII.
pub const DEFAULT_GROUP: u32 = 0x636c_6f6e;

/// The groups derived from a state directory's path lie from this value to `i32::MAX`.
const DERIVED_BASE: u32 = 0x4000_0000;

/// The start of the alias of the host-side interfaces cloon creates.
pub const ALIAS_PREFIX: &str = "cloon:";

/// The longest alias the kernel takes (IFALIASZ less its terminating zero).
const ALIAS_MAX: usize = 255;

/// The alias of an interface owned by the record at `record` (`cloon:/run/cloon/C/netns.json`),
/// or `None` when the path is too long for an alias.
pub fn alias(record: &Path) -> Option<String> {
    let alias = format!("{ALIAS_PREFIX}{}", record.display());
    (alias.len() <= ALIAS_MAX).then_some(alias)
}

/// The record an alias names, if it is one of cloon's.
pub fn alias_record(alias: &str) -> Option<&Path> {
    alias.strip_prefix(ALIAS_PREFIX).map(Path::new)
}

/// The state directory a record path belongs to: the parent of its directory
/// (`ROOT/NAME/netns.json`, `ROOT/.bridges/NAME.json`); `None` for a path of another shape.
pub fn record_root(record: &Path) -> Option<&Path> {
    if !record.is_absolute() || record.file_name().is_none() {
        return None;
    }
    let dir = record.parent()?;
    match dir.components().next_back() {
        Some(Component::Normal(_)) => dir.parent(),
        _ => None,
    }
}

/// `path` with the symbolic links of the part of it that exists resolved (and `.` and `..`
/// there with them); the rest, which does not exist yet, appended as it is.
pub fn resolve(path: &Path) -> PathBuf {
    let mut existing = path;
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = std::fs::canonicalize(existing) {
            return rest.iter().rev().fold(real, |p, c| p.join(c));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => return path.to_path_buf(),
        }
    }
}

/// The group derived from a state directory's resolved path `real`: FNV-1a (32 bits) of its
/// bytes, folded into `DERIVED_BASE..=i32::MAX`, and never [`DEFAULT_GROUP`].
pub fn derived_group(real: &Path) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in real.as_os_str().as_bytes() {
        hash ^= u32::from(*byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    let group = DERIVED_BASE | (hash & (DERIVED_BASE - 1));
    if group == DEFAULT_GROUP {
        group ^ 1
    } else {
        group
    }
}

/// What one state directory's interfaces carry, and how its `gc` tells them from others'.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    group: u32,
    /// Its root as given, and resolved ([`resolve`]), the last.
    roots: Vec<PathBuf>,
}

/// What an interface of the host is to one state directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mark {
    /// None of its business: in neither its group nor [`DEFAULT_GROUP`] with its alias.
    Foreign,
    /// In its group, with no alias naming a record: not given yet by an `up` at work, or never
    /// (a tool killed before it, an alias changed by hand).
    Unnamed,
    /// In its group (or in [`DEFAULT_GROUP`], made before groups were per state directory), its
    /// alias naming a record of this state directory.
    Ours,
    /// In its group, but its alias names this record of another state directory.
    Theirs(PathBuf),
}

impl Owner {
    /// The owner of what is made under `state`.
    pub fn of(state: &StateDir) -> Owner {
        Owner::at(state.root())
    }

    /// The owner of what is made under the state root `root` (an absolute path).
    pub fn at(root: &Path) -> Owner {
        let real = resolve(root);
        let group = if real == resolve(Path::new(DEFAULT_ROOT)) {
            DEFAULT_GROUP
        } else {
            derived_group(&real)
        };
        let mut roots = vec![root.to_path_buf()];
        if real != root {
            roots.push(real);
        }
        Owner { group, roots }
    }

    /// The interface group its interfaces are created in.
    pub fn group(&self) -> u32 {
        self.group
    }

    /// Whether `record` (a path an alias names) is a record of this state directory: its
    /// directory's parent is the root, as given or once resolved; a directory inside the root
    /// (another state directory nested in it) is not the root.
    pub fn owns_record(&self, record: &Path) -> bool {
        let Some(root) = record_root(record) else {
            return false;
        };
        self.roots.iter().any(|r| r == root) || self.roots.last() == Some(&resolve(root))
    }

    /// What `link` is to this state directory, by its group and alias.
    pub fn mark(&self, link: &LinkState) -> Mark {
        let record = link.alias.as_deref().and_then(alias_record);
        let in_group = link.group == self.group;
        match record {
            Some(record) if self.owns_record(record) => {
                if in_group || link.group == DEFAULT_GROUP {
                    Mark::Ours
                } else {
                    Mark::Foreign
                }
            }
            Some(record) if in_group => Mark::Theirs(record.to_path_buf()),
            None if in_group => Mark::Unnamed,
            _ => Mark::Foreign,
        }
    }
}

/// A lock on the state root itself (the directory, `flock`): shared by every tool making
/// interfaces there, for as long as it does; exclusive for a `gc` that is about to take an
/// interface with no alias for a leftover. Let go when dropped.
#[derive(Debug)]
pub struct RootLock {
    _root: Option<Flock<File>>,
}

impl RootLock {
    /// Takes the shared lock of the state root of `state`, which must exist, waiting for a `gc`
    /// that holds it exclusively (for the few milliseconds it judges interfaces).
    pub fn hold(state: &StateDir) -> Result<RootLock> {
        let root = state.root();
        let file = open_root(root)?.ok_or_else(|| {
            Error::new(
                cloon_core::Code::Unknown,
                format!("the state directory {} is missing", root.display()),
            )
        })?;
        let lock = Flock::lock(file, FlockArg::LockShared)
            .map_err(|(_, e)| crate::errors::sys(format!("cannot lock {}", root.display()), e))?;
        Ok(RootLock { _root: Some(lock) })
    }

    /// Takes the exclusive lock of the state root of `state` if no tool holds it: `None` when an
    /// `up` (or `link`) is at work there. A missing state root is idle (nothing can be at work in
    /// it), and nothing is made.
    pub fn try_idle(state: &StateDir) -> Result<Option<RootLock>> {
        let root = state.root();
        let Some(file) = open_root(root)? else {
            return Ok(Some(RootLock { _root: None }));
        };
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => Ok(Some(RootLock { _root: Some(lock) })),
            Err((_, Errno::EWOULDBLOCK)) => Ok(None),
            Err((_, e)) => Err(crate::errors::sys(
                format!("cannot lock {}", root.display()),
                e,
            )),
        }
    }
}

/// The state root, opened as a directory to lock it (never through a symbolic link, as the
/// state directory's rules have it); `None` when it does not exist.
fn open_root(root: &Path) -> Result<Option<File>> {
    match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_DIRECTORY | nix::libc::O_NOFOLLOW)
        .open(root)
    {
        Ok(file) => Ok(Some(file)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("cannot open {}", root.display()), &e)),
    }
}

/// What a record says about one interface cloon made or was about to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim<'a> {
    /// Its ifindex, 0 when the tool stopped before recording it.
    pub index: u32,
    /// The group it was created in (0: a record older than tags).
    pub group: u32,
    /// The alias cloon gives it (`None`: none, as inside namespaces).
    pub alias: Option<&'a str>,
}

/// Whether `found`, the interface of the recorded name, is the one the record claims: in the
/// recorded group, and with the recorded index; when the index is unknown, in cloon's group and
/// with no alias or the record's own (another record's alias says another container made it).
/// A record older than tags (group 0) claims only an interface of its recorded index.
pub fn is_claimed(found: &LinkState, claim: &Claim) -> bool {
    if found.group != claim.group {
        return false;
    }
    if claim.index != 0 {
        return found.index == claim.index;
    }
    claim.group != 0
        && match (found.alias.as_deref(), claim.alias) {
            (Some(theirs), Some(ours)) => theirs == ours,
            _ => true,
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(index: u32, group: u32, alias: Option<&str>) -> LinkState {
        LinkState {
            name: "vgt_a".into(),
            index,
            mac: String::new(),
            up: true,
            mtu: 1500,
            kind: "veth".into(),
            master: None,
            group,
            alias: alias.map(Into::into),
            vxlan: None,
        }
    }

    const GROUP: u32 = DEFAULT_GROUP;
    const OURS: &str = "cloon:/run/cloon/A/netns.json";
    const THEIRS: &str = "cloon:/run/cloon/B/netns.json";

    fn claim(index: u32, group: u32) -> Claim<'static> {
        Claim {
            index,
            group,
            alias: Some(OURS),
        }
    }

    #[test]
    fn the_default_group_is_clon_in_ascii_and_the_alias_names_the_record() {
        assert_eq!(DEFAULT_GROUP, 1_668_050_798);
        assert_eq!(&DEFAULT_GROUP.to_be_bytes(), b"clon");
        let a = alias(Path::new("/run/cloon/A/netns.json")).unwrap();
        assert_eq!(a, OURS);
        assert_eq!(alias_record(&a), Some(Path::new("/run/cloon/A/netns.json")));
        assert_eq!(alias_record("my uplink"), None);
        let long = PathBuf::from(format!("/{}", "x".repeat(300)));
        assert_eq!(alias(&long), None);
    }

    #[test]
    fn each_state_directory_has_a_group_of_its_own_that_iproute2_takes() {
        assert_eq!(Owner::at(Path::new(DEFAULT_ROOT)).group(), DEFAULT_GROUP);
        let paths = [
            "/run/x",
            "/run/x/lab",
            "/run/my lab",
            "/tmp/lab",
            "/var/tmp/cloon",
        ];
        let groups: Vec<u32> = paths
            .iter()
            .map(|p| Owner::at(Path::new(p)).group())
            .collect();
        for (path, group) in paths.iter().zip(&groups) {
            assert!(
                (DERIVED_BASE..=i32::MAX as u32).contains(group),
                "{path}: {group}"
            );
            assert_ne!(*group, DEFAULT_GROUP, "{path}");
            // Stable: the same path, the same group, from one run (and release) to the next.
            assert_eq!(derived_group(Path::new(path)), *group, "{path}");
        }
        let mut distinct = groups.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), groups.len(), "{groups:?}");
        // FNV-1a of "" and of "a", folded: the hash is the published one, not the standard
        // library's (whose algorithm may change).
        assert_eq!(
            derived_group(Path::new("")),
            DERIVED_BASE | (0x811c_9dc5 & 0x3fff_ffff)
        );
        assert_eq!(
            derived_group(Path::new("a")),
            DERIVED_BASE | (0xe40c_292c & 0x3fff_ffff)
        );
    }

    #[test]
    fn a_root_spelled_through_a_symbolic_link_is_the_same_state_directory() {
        let dir = std::env::temp_dir().join(format!("cloon-tag-link-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("real")).unwrap();
        std::os::unix::fs::symlink(dir.join("real"), dir.join("link")).unwrap();
        for sub in ["", "not-yet"] {
            let real = Owner::at(&dir.join("real").join(sub));
            let link = Owner::at(&dir.join("link").join(sub));
            assert_eq!(real.group(), link.group(), "{sub}");
            let record = dir.join("real").join(sub).join("C/netns.json");
            assert!(link.owns_record(&record), "{}", record.display());
            let record = dir.join("link").join(sub).join(".bridges/l.json");
            assert!(real.owns_record(&record), "{}", record.display());
        }
        assert!(!Owner::at(&dir).owns_record(&dir.join("link/C/netns.json")));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_known_index_must_match_and_so_must_the_group() {
        assert!(is_claimed(&link(7, GROUP, Some(OURS)), &claim(7, GROUP)));
        assert!(is_claimed(&link(7, GROUP, None), &claim(7, GROUP)));
        // Another interface of that name: other index, or not in cloon's group.
        assert!(!is_claimed(&link(8, GROUP, Some(OURS)), &claim(7, GROUP)));
        assert!(!is_claimed(&link(7, 0, None), &claim(7, GROUP)));
        // Records older than tags: the index alone, of an untagged interface.
        assert!(is_claimed(&link(7, 0, None), &claim(7, 0)));
        assert!(!is_claimed(&link(8, 0, None), &claim(7, 0)));
    }

    #[test]
    fn an_unknown_index_takes_the_group_and_no_other_records_alias() {
        // Killed before the index was recorded: cloon's group, alias ours or not yet set.
        assert!(is_claimed(&link(9, GROUP, None), &claim(0, GROUP)));
        assert!(is_claimed(&link(9, GROUP, Some(OURS)), &claim(0, GROUP)));
        // Another container's interface of the same name.
        assert!(!is_claimed(&link(9, GROUP, Some(THEIRS)), &claim(0, GROUP)));
        // A look-alike made by hand.
        assert!(!is_claimed(&link(9, 0, None), &claim(0, GROUP)));
        assert!(!is_claimed(&link(9, 5, None), &claim(0, GROUP)));
        // Nothing identifies an interface for a record older than tags without its index.
        assert!(!is_claimed(&link(9, 0, None), &claim(0, 0)));
        // No alias is given inside namespaces: any alias is fine there.
        let inside = Claim {
            index: 0,
            group: GROUP,
            alias: None,
        };
        assert!(is_claimed(&link(9, GROUP, Some("x")), &inside));
    }

    #[test]
    fn a_record_belongs_to_exactly_the_state_directory_it_is_in() {
        assert_eq!(
            record_root(Path::new("/x/lab/C/netns.json")),
            Some(Path::new("/x/lab"))
        );
        assert_eq!(
            record_root(Path::new("/x/.bridges/lan1.json")),
            Some(Path::new("/x"))
        );
        assert_eq!(record_root(Path::new("/netns.json")), None);
        assert_eq!(record_root(Path::new("C/netns.json")), None);
        assert_eq!(record_root(Path::new("/x/../netns.json")), None);
        let outer = Owner::at(Path::new("/x"));
        let inner = Owner::at(Path::new("/x/lab"));
        for (record, of_outer) in [
            ("/x/C/netns.json", true),
            ("/x/.bridges/lan1.json", true),
            ("/x/lab/C/netns.json", false),
            ("/x/lab/.bridges/lan1.json", false),
            ("/x/lab/netns.json", true),
            ("/xy/C/netns.json", false),
            ("/C/netns.json", false),
            ("/x/C/D/netns.json", false),
        ] {
            let record = Path::new(record);
            assert_eq!(outer.owns_record(record), of_outer, "{}", record.display());
            let of_inner = record.starts_with("/x/lab/") && record.components().count() == 5;
            assert_eq!(inner.owns_record(record), of_inner, "{}", record.display());
        }
        let spaced = Owner::at(Path::new("/run/my lab"));
        assert!(spaced.owns_record(Path::new("/run/my lab/C/netns.json")));
        assert!(!spaced.owns_record(Path::new("/run/my/C/netns.json")));
    }

    #[test]
    fn the_mark_of_an_interface_is_its_group_and_its_alias() {
        let lab = Owner::at(Path::new("/run/x/lab"));
        let g = lab.group();
        let ours = "cloon:/run/x/lab/C/netns.json";
        let outer = "cloon:/run/x/C/netns.json";
        let nested = "cloon:/run/x/lab/sub/C/netns.json";
        assert_eq!(lab.mark(&link(1, g, Some(ours))), Mark::Ours);
        assert_eq!(lab.mark(&link(1, g, None)), Mark::Unnamed);
        // An alias that is not cloon's (set by hand) names no record.
        assert_eq!(lab.mark(&link(1, g, Some("uplink"))), Mark::Unnamed);
        assert_eq!(
            lab.mark(&link(1, g, Some(outer))),
            Mark::Theirs(PathBuf::from("/run/x/C/netns.json"))
        );
        assert!(matches!(
            lab.mark(&link(1, g, Some(nested))),
            Mark::Theirs(_)
        ));
        // Another group: another state directory's (even with no alias yet), or made by hand.
        for group in [0, 5, g ^ 1] {
            assert_eq!(lab.mark(&link(1, group, None)), Mark::Foreign);
            assert_eq!(lab.mark(&link(1, group, Some(outer))), Mark::Foreign);
        }
        // The group of older records: this state directory's only by its alias.
        assert_eq!(lab.mark(&link(1, DEFAULT_GROUP, Some(ours))), Mark::Ours);
        assert_eq!(lab.mark(&link(1, DEFAULT_GROUP, None)), Mark::Foreign);
        assert_eq!(
            lab.mark(&link(1, DEFAULT_GROUP, Some(outer))),
            Mark::Foreign
        );
        // The default state directory owns that group.
        let default = Owner::at(Path::new(DEFAULT_ROOT));
        assert_eq!(default.mark(&link(1, DEFAULT_GROUP, None)), Mark::Unnamed);
        assert_eq!(
            default.mark(&link(1, DEFAULT_GROUP, Some(OURS))),
            Mark::Ours
        );
        assert!(matches!(
            default.mark(&link(1, DEFAULT_GROUP, Some(ours))),
            Mark::Theirs(_)
        ));
        assert_eq!(default.mark(&link(1, g, None)), Mark::Foreign);
    }

    #[test]
    fn the_root_lock_is_shared_by_makers_and_exclusive_for_gc() {
        let root = std::env::temp_dir().join(format!("cloon-rootlock-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let state = StateDir::new(Some(&root)).unwrap();
        // No root: idle, and nothing is made.
        assert!(RootLock::try_idle(&state).unwrap().is_some());
        assert!(!root.exists());
        assert!(RootLock::hold(&state).is_err());
        std::fs::create_dir(&root).unwrap();
        let a = RootLock::hold(&state).unwrap();
        let b = RootLock::hold(&state).unwrap();
        assert!(
            RootLock::try_idle(&state).unwrap().is_none(),
            "an up is at work"
        );
        drop(a);
        assert!(RootLock::try_idle(&state).unwrap().is_none(), "another is");
        drop(b);
        let idle = RootLock::try_idle(&state).unwrap();
        assert!(idle.is_some());
        assert!(RootLock::try_idle(&state).unwrap().is_none(), "gc holds it");
        drop(idle);
        std::fs::remove_dir(&root).unwrap();
    }
}
