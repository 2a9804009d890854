//! How cloon-netns marks the interfaces it makes, so that `down` and `gc` can tell them from
//! look-alikes even when a record lacks their index (a tool killed between creating an interface
//! and recording it).
//!
//! - Every interface cloon-netns creates (veth ends, bridges, point-to-point ends) is created in
//!   the interface group [`GROUP`]: the kernel applies the group in the very request that creates
//!   the interface (`ip link add NAME group 1668050798 ...`), so no instant exists where a cloon
//!   interface is untagged. `ip link show group 1668050798` lists them.
//! - Each interface it creates on the host's side (host ends, bridges) then gets the alias
//!   `cloon:RECORD`, the path of the record that owns it (`ip link set NAME alias ...`: the kernel
//!   takes no alias at creation). The alias names the owner for people and for `gc`, which
//!   leaves alone the interfaces of another state directory.
//!
//! A record names an interface by name, with its ifindex once known (0 before), the group it was
//! made in (0 in records older than tags: then the index alone identifies it) and its alias.

use crate::link::LinkState;
use std::path::{Path, PathBuf};

/// The interface group of every interface cloon-netns creates: 0x636c6f6e, "clon" in ASCII.
pub const GROUP: u32 = 0x636c_6f6e;

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

/// The state directory an interface's alias says owns it, when that is not `root`: its
/// interfaces are none of this state directory's business. `roots` are the spellings of this
/// state directory (as given, and with symbolic links resolved).
pub fn other_owner(found: &LinkState, roots: &[PathBuf]) -> Option<PathBuf> {
    let record = alias_record(found.alias.as_deref()?)?;
    if roots.iter().any(|root| record.starts_with(root)) {
        return None;
    }
    Some(record.to_path_buf())
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
        }
    }

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
    fn the_group_is_clon_in_ascii_and_the_alias_names_the_record() {
        assert_eq!(GROUP, 1_668_050_798);
        assert_eq!(&GROUP.to_be_bytes(), b"clon");
        let a = alias(Path::new("/run/cloon/A/netns.json")).unwrap();
        assert_eq!(a, OURS);
        assert_eq!(alias_record(&a), Some(Path::new("/run/cloon/A/netns.json")));
        assert_eq!(alias_record("my uplink"), None);
        let long = PathBuf::from(format!("/{}", "x".repeat(300)));
        assert_eq!(alias(&long), None);
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
    fn an_alias_of_another_state_directory_says_who_owns_it() {
        let roots = [PathBuf::from("/run/cloon"), PathBuf::from("/var/run/cloon")];
        assert_eq!(other_owner(&link(1, GROUP, Some(OURS)), &roots), None);
        assert_eq!(other_owner(&link(1, GROUP, None), &roots), None);
        assert_eq!(other_owner(&link(1, GROUP, Some("uplink")), &roots), None);
        let other = "cloon:/tmp/lab/.bridges/lan1.json";
        assert_eq!(
            other_owner(&link(1, GROUP, Some(other)), &roots),
            Some(PathBuf::from("/tmp/lab/.bridges/lan1.json"))
        );
        // A prefix of a name is not its directory.
        let near = "cloon:/run/cloonx/A/netns.json";
        assert!(other_owner(&link(1, GROUP, Some(near)), &roots).is_some());
    }
}
