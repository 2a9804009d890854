//! `cloon-netns gc`: finds what cloon-netns left behind (tools killed halfway, records lost or
//! half removed) and removes it. It acts on its own state directory's records and interface tags
//! ([`crate::tag`]) only, never on names that merely look like cloon's, nor on another state
//! directory's objects (one beside it, or nested inside it), in four passes:
//!
//! 1. every container record (and point-to-point link or VXLAN end record) whose objects are
//!    partly gone
//!    (a namespace, a host end or a guest end missing or replaced; see
//!    [`check::differences`]) is brought down, by the same `down` as `cloon-netns down`; a
//!    record whose directory a running cloon-netns holds locked is left to it, and records of
//!    healthy containers are kept; a directory without a record of cloon-netns (a state
//!    directory nested in this one, say) is no container and is not even locked;
//! 2. every interface of the host in this state directory's group ([`tag::Owner`]) that no record
//!    names is deleted, unless its alias names another state directory's record; one with no
//!    alias naming a record only when no `up` of this state directory is at work (its root's
//!    lock, [`tag::RootLock`]), since an `up` gives the alias right after the creation;
//! 3. every bridge in this state directory's group, or with a shared record, is judged under its
//!    lock: one cloon made that no container's record needs and no cloon port is left on is
//!    deleted with its record; the record of a bridge that is gone (or is not cloon's and no
//!    record needs it) is removed;
//! 4. the directory of shared bridge records, once empty, is removed.
//!
//! A namespace file without a record is never touched. With `--dry-run` nothing changes: the
//! commands that would remove what was found are said on stderr. The report (what was found, what
//! was removed, what was kept and why) is JSON on stdout.

use crate::bridge::{self, BridgeRecord, RecordedEnd};
use crate::check::Finding;
use crate::link::{LinkState, Netlink};
use crate::p2p::{self, P2pRecord};
use crate::record::Record;
use crate::tag::{Mark, Owner, RootLock};
use crate::vxlan::{self, VxlanRecord};
use crate::{PART, STAGE};
use cloon_core::gc::Report;
use cloon_core::{explain, host, stage, Error, Result, StateDir};
use std::collections::BTreeSet;
use std::path::Path;

/// What `gc` needs before it starts: root, to look inside namespaces.
pub fn start() -> Result<()> {
    host::require_root(
        STAGE,
        "look inside network namespaces and remove what cloon left",
    )
}

/// Passes 2 to 4, after the skeleton's pass over the records.
pub fn more(state: &StateDir, report: &mut Report) -> Result<()> {
    let host = Netlink::connect()?;
    let owner = Owner::of(state);
    interfaces(state, &host, &owner, report)?;
    bridges(state, &host, &owner, report)?;
    let dir = state.shared_dir(bridge::KIND)?;
    if is_empty_dir(&dir) {
        let shown = dir.display().to_string();
        let outcome = if explain::step(&["rmdir", shown.as_str()]) {
            std::fs::remove_dir(&dir)
                .map(|()| true)
                .map_err(|e| Error::io(format!("cannot remove {shown}"), &e))
        } else {
            Ok(false)
        };
        report.found("directory", &shown, "empty", outcome);
    }
    Ok(())
}

fn is_empty_dir(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_none())
}

/// Pass 1, for the skeleton's pass over the records: a record (a container's or a link's) whose
/// objects are partly gone is brought down; one whose objects are all there is kept.
pub fn verdict(findings: &[Finding]) -> stage::Verdict {
    match partly_gone(findings) {
        Some(why) => stage::Verdict::Down(why),
        None => stage::Verdict::Keep(healthy(findings)),
    }
}

/// Why a record's objects are partly gone, if they are.
pub fn partly_gone(findings: &[Finding]) -> Option<String> {
    let gone: Vec<Finding> = findings.iter().filter(|f| f.gone).cloned().collect();
    (!gone.is_empty()).then(|| format!("partly gone: {}", Finding::sentences(&gone)))
}

/// Why a record with no object gone is kept.
fn healthy(findings: &[Finding]) -> String {
    if findings.is_empty() {
        "healthy".into()
    } else {
        format!(
            "healthy, with changed settings: {}",
            Finding::sentences(findings)
        )
    }
}

/// What `gc` does with one interface of the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// None of its business: not this state directory's ([`Mark::Foreign`]), named by a record,
    /// or a bridge (judged by [`judge_bridge`]).
    Ignore,
    /// Cloon's, but left alone, for this reason.
    Keep(String),
    /// Left behind: deleted, for this reason.
    Remove(String),
}

/// Judges an interface of the host: one of this state directory's (`owner`) that no record
/// names (`referenced`: every interface name the records hold) is an orphan. Its alias must name
/// a record of this state directory, or, with no alias naming a record, no `up` of this state
/// directory may be at work (`idle`: `gc` holds the root's lock), since `up` gives the alias
/// right after creating the interface. One whose alias names another state directory's record
/// is kept.
pub fn judge_interface(
    link: &LinkState,
    referenced: &BTreeSet<String>,
    owner: &Owner,
    idle: bool,
) -> Verdict {
    if link.is_bridge() || referenced.contains(&link.name) {
        return Verdict::Ignore;
    }
    let group = owner.group();
    match owner.mark(link) {
        Mark::Foreign => Verdict::Ignore,
        Mark::Theirs(record) => Verdict::Keep(format!(
            "in this state directory's group {group}, but its alias names the record {} of \
             another state directory",
            record.display()
        )),
        Mark::Ours => Verdict::Remove(
            "its alias names a record of this state directory, and no record names it".into(),
        ),
        Mark::Unnamed if idle => Verdict::Remove(format!(
            "in this state directory's group {group}, with no alias naming a record, named by no \
             record"
        )),
        Mark::Unnamed => Verdict::Keep(format!(
            "in this state directory's group {group} with no alias yet: an up is at work in \
             this state directory (run gc again once it is done)"
        )),
    }
}

/// Every interface name the records under `state` hold (host ends, guest ends, link ends);
/// `None` when a record cannot be read (then no interface is taken for an orphan).
fn referenced_names(state: &StateDir) -> Result<Option<BTreeSet<String>>> {
    let mut names = BTreeSet::new();
    for name in state.names()? {
        match state.load::<Record>(&name, PART) {
            Ok(Some(record)) => {
                for link in record.links {
                    names.insert(link.host);
                    names.insert(link.guest);
                }
            }
            Ok(None) => {}
            Err(_) => return Ok(None),
        }
        match state.load::<P2pRecord>(&name, p2p::PART) {
            Ok(Some(record)) => names.extend(record.ends.into_iter().map(|e| e.ifname)),
            Ok(None) => {}
            Err(_) => return Ok(None),
        }
        match state.load::<VxlanRecord>(&name, vxlan::PART) {
            Ok(Some(record)) => {
                names.insert(record.ifname);
            }
            Ok(None) => {}
            Err(_) => return Ok(None),
        }
    }
    Ok(Some(names))
}

/// Pass 2: interfaces of this state directory that no record names. The root's lock is tried
/// first, then the interfaces are listed, then the records read: `up` records an interface
/// before it makes it, so one listed here is named by the records read next, unless it is an
/// orphan; and while `gc` holds the lock, no `up` of this state directory is between making an
/// interface and giving it its alias.
fn interfaces(state: &StateDir, host: &Netlink, owner: &Owner, report: &mut Report) -> Result<()> {
    let idle = RootLock::try_idle(state)?;
    let links = host.links()?;
    let Some(referenced) = referenced_names(state)? else {
        report.keep(
            "interface",
            "*",
            "a record cannot be read: no interface is taken for an orphan",
        );
        return Ok(());
    };
    for link in links {
        match judge_interface(&link, &referenced, owner, idle.is_some()) {
            Verdict::Ignore => {}
            Verdict::Keep(why) => report.keep("interface", &link.name, why),
            Verdict::Remove(why) => {
                let outcome = if explain::step(&["ip", "link", "del", link.name.as_str()]) {
                    host.delete_if_same(&link.name, link.index).map(|_| true)
                } else {
                    Ok(false)
                };
                report.found("interface", &link.name, why, outcome);
            }
        }
    }
    Ok(())
}

/// What `gc` does with one bridge and its shared record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BridgeVerdict {
    /// Nothing to do or say.
    Ignore,
    /// Left alone, for this reason.
    Keep(String),
    /// Left behind: the bridge with this index is deleted (when `Some`), and its record file
    /// removed (when there is one), for this reason.
    Remove { bridge: Option<u32>, why: String },
}

/// What is known of one bridge name when `gc` judges it, under the record's lock.
#[derive(Debug, Clone, Default)]
pub struct BridgeFacts<'a> {
    /// The interface of that name.
    pub link: Option<&'a LinkState>,
    /// Its ports, as the kernel lists them.
    pub ports: &'a [LinkState],
    /// Whether a record file exists, and the record it holds (`None`: none, or empty).
    pub has_file: bool,
    pub record: Option<&'a BridgeRecord>,
    /// The containers whose records name the bridge for one of their host ends.
    pub needed_by: &'a [String],
    /// Every host end the records name (`None`: a record cannot be read).
    pub recorded: Option<&'a [RecordedEnd]>,
}

/// Judges a bridge: one cloon made (its record says so, or, without a record, it is this state
/// directory's, [`Mark::Ours`] or [`Mark::Unnamed`]) that no record needs and no cloon port is
/// left on is deleted, with its record; the record of a bridge that is gone, or not cloon's, is
/// removed once no record needs it. A bridge cloon did not make is never deleted. (A bridge with
/// no alias yet and no record is no `up`'s at work: `up` writes the record, under the lock `gc`
/// holds now, before it makes the bridge.)
pub fn judge_bridge(facts: &BridgeFacts, owner: &Owner) -> BridgeVerdict {
    if !facts.needed_by.is_empty() {
        return BridgeVerdict::Keep(format!("used by {}", facts.needed_by.join(", ")));
    }
    let bridge = facts.link.filter(|l| l.is_bridge());
    let ours = bridge.filter(|b| match facts.record {
        Some(record) => record.is_cloons(b),
        None => matches!(owner.mark(b), Mark::Ours | Mark::Unnamed),
    });
    if let Some(b) = ours {
        let Some(recorded) = facts.recorded else {
            return BridgeVerdict::Keep("a record cannot be read: its ports may be cloon's".into());
        };
        let ports = bridge::cloon_ports(facts.ports, Some(recorded), &[]);
        if !ports.is_empty() {
            return BridgeVerdict::Keep(format!(
                "cloon ports are left on it: {}",
                ports.join(", ")
            ));
        }
        let why = match facts.record {
            Some(_) => "made by cloon, no record needs it and no cloon port is left".into(),
            None => format!(
                "in this state directory's group {}, named by no record, no cloon port left",
                owner.group()
            ),
        };
        return BridgeVerdict::Remove {
            bridge: Some(b.index),
            why,
        };
    }
    if let Some(b) = bridge {
        if let Mark::Theirs(record) = owner.mark(b) {
            let why = format!(
                "in this state directory's group {}, but its alias names the record {} of \
                 another state directory",
                owner.group(),
                record.display()
            );
            return if facts.has_file {
                BridgeVerdict::Remove {
                    bridge: None,
                    why: format!("a record no container needs; the bridge stays: {why}"),
                }
            } else {
                BridgeVerdict::Keep(why)
            };
        }
    }
    if !facts.has_file {
        return BridgeVerdict::Ignore;
    }
    let why = match (facts.record, facts.link) {
        (None, _) => "an empty record (a tool stopped before writing it)",
        (Some(_), None) => "its bridge is gone",
        (Some(r), Some(_)) if !r.created => "a record of a bridge cloon joined, no record needs it",
        (Some(_), Some(_)) => "its bridge is not the one cloon made",
    };
    BridgeVerdict::Remove {
        bridge: None,
        why: why.into(),
    }
}

/// Pass 3: bridges with a record or of this state directory, each under the lock of its record.
fn bridges(state: &StateDir, host: &Netlink, owner: &Owner, report: &mut Report) -> Result<()> {
    let mut names: BTreeSet<String> = state.shared_names(bridge::KIND)?.into_iter().collect();
    names.extend(
        host.links()?
            .into_iter()
            .filter(|l| l.is_bridge() && owner.mark(l) != Mark::Foreign)
            // A name no record can have is not one cloon-netns gave a bridge.
            .filter(|l| cloon_core::name::container(&l.name).is_ok())
            .map(|l| l.name),
    );
    for name in names {
        if let Err(e) = bridge_one(state, host, owner, &name, report) {
            report.failed("bridge", &name, e);
        }
    }
    Ok(())
}

fn bridge_one(
    state: &StateDir,
    host: &Netlink,
    owner: &Owner,
    name: &str,
    report: &mut Report,
) -> Result<()> {
    let acting = explain::acting();
    let path = state.shared_path(bridge::KIND, name)?;
    // Whether a record file exists is seen before the lock, which makes one when missing (and
    // removes it, empty, when let go).
    let existed = path.exists();
    let mut lock = if acting {
        Some(state.lock_shared(bridge::KIND, name)?)
    } else {
        None
    };
    let record: Option<BridgeRecord> = match lock.as_mut() {
        Some(lock) => lock.load()?,
        None => state.read_shared(bridge::KIND, name)?,
    };
    let has_file = existed || record.is_some();
    let link = host.link_by_name(name)?;
    let ports = match &link {
        Some(l) if l.is_bridge() => host.ports(l.index)?,
        _ => Vec::new(),
    };
    let recorded = bridge::recorded_host_ends(state)?;
    let needed_by = needing(state, name)?;
    let facts = BridgeFacts {
        link: link.as_ref(),
        ports: &ports,
        has_file,
        record: record.as_ref(),
        needed_by: &needed_by,
        recorded: recorded.as_deref(),
    };
    match judge_bridge(&facts, owner) {
        BridgeVerdict::Ignore => {}
        BridgeVerdict::Keep(why) => report.keep("bridge", name, why),
        BridgeVerdict::Remove { bridge, why } => {
            if let Some(index) = bridge {
                let outcome = if explain::step(&["ip", "link", "del", name]) {
                    host.delete_if_same(name, index).map(|_| true)
                } else {
                    Ok(false)
                };
                let failed = outcome.is_err();
                report.found("bridge", name, why.clone(), outcome);
                if failed {
                    // The record of a bridge that is still there stays with it.
                    return Ok(());
                }
            }
            if has_file {
                explain::note(&format!("remove the record {}", path.display()));
                let outcome = match lock.as_mut() {
                    Some(lock) => lock.remove().map(|()| true),
                    None => Ok(false),
                };
                report.found("bridge record", name, why, outcome);
            }
        }
    }
    Ok(())
}

/// The containers whose records name the bridge `name` for a host end, and the VXLAN ends that
/// are its ports.
fn needing(state: &StateDir, name: &str) -> Result<Vec<String>> {
    let mut needed_by = Vec::new();
    for container in state.names()? {
        if let Some(record) = state.load::<Record>(&container, PART)? {
            if record.bridges().iter().any(|b| b == name) {
                needed_by.push(container.clone());
            }
        }
        if let Some(record) = state.load::<VxlanRecord>(&container, vxlan::PART)? {
            if record.bridge.as_deref() == Some(name) {
                needed_by.push(container);
            }
        }
    }
    Ok(needed_by)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tag::DEFAULT_GROUP as GROUP;

    fn link(name: &str, index: u32, kind: &str, group: u32, alias: Option<&str>) -> LinkState {
        LinkState {
            name: name.into(),
            index,
            mac: String::new(),
            up: true,
            mtu: 1500,
            kind: kind.into(),
            master: None,
            group,
            alias: alias.map(Into::into),
            vxlan: None,
        }
    }

    fn owner() -> Owner {
        Owner::at(Path::new("/run/cloon"))
    }

    #[test]
    fn only_tagged_interfaces_no_record_names_are_orphans_and_other_roots_are_kept() {
        let named: BTreeSet<String> = ["vk0".to_string()].into_iter().collect();
        let judge = |l: &LinkState| judge_interface(l, &named, &owner(), true);
        // A look-alike made by hand: not in cloon's group.
        let hand = link("vgt_9_9_0", 4, "veth", 0, None);
        assert_eq!(judge(&hand), Verdict::Ignore);
        let other_group = link("vgt_9_9_0", 4, "veth", 7, None);
        assert_eq!(judge(&other_group), Verdict::Ignore);
        // Named by a record: its container's business.
        let vk0 = link("vk0", 5, "veth", GROUP, None);
        assert_eq!(judge(&vk0), Verdict::Ignore);
        // Bridges are judged with their records.
        let br = link("klan", 6, "bridge", GROUP, None);
        assert_eq!(judge(&br), Verdict::Ignore);
        // Orphans: no alias yet, or this state directory's.
        for alias in [None, Some("cloon:/run/cloon/K/netns.json")] {
            let orphan = link("vk1", 7, "veth", GROUP, alias);
            assert!(matches!(judge(&orphan), Verdict::Remove(_)));
        }
        // Another state directory's, in this one's group (made by hand, or by an older
        // cloon-netns), and one nested in this one.
        for other in ["/tmp/lab/K/netns.json", "/run/cloon/lab/K/netns.json"] {
            let theirs = link("vk1", 7, "veth", GROUP, Some(&format!("cloon:{other}")));
            let Verdict::Keep(why) = judge(&theirs) else {
                panic!("another state directory's interface is removed");
            };
            assert!(why.contains(other), "{why}");
        }
    }

    #[test]
    fn another_state_directorys_group_is_none_of_its_business() {
        let named = BTreeSet::new();
        let lab = Owner::at(Path::new("/run/cloon/lab"));
        // The default state directory's interfaces, with their alias or before it, to the
        // nested one; and the nested one's to the default one.
        let outer = link(
            "vk1",
            7,
            "veth",
            GROUP,
            Some("cloon:/run/cloon/K/netns.json"),
        );
        let fresh = link("vk2", 8, "veth", GROUP, None);
        for l in [&outer, &fresh] {
            assert_eq!(judge_interface(l, &named, &lab, true), Verdict::Ignore);
        }
        let inner = link("vk3", 9, "veth", lab.group(), None);
        let inner_tagged = LinkState {
            alias: Some("cloon:/run/cloon/lab/K/netns.json".into()),
            ..inner.clone()
        };
        for l in [&inner, &inner_tagged] {
            assert_eq!(judge_interface(l, &named, &owner(), true), Verdict::Ignore);
        }
        // Its own, in its group, or in the default group made by an older cloon-netns.
        let old = LinkState {
            group: GROUP,
            ..inner_tagged.clone()
        };
        for l in [&inner_tagged, &old] {
            assert!(matches!(
                judge_interface(l, &named, &lab, false),
                Verdict::Remove(_)
            ));
        }
    }

    #[test]
    fn an_interface_with_no_alias_yet_is_kept_while_an_up_is_at_work() {
        let named = BTreeSet::new();
        let fresh = link("vk1", 7, "veth", GROUP, None);
        let Verdict::Keep(why) = judge_interface(&fresh, &named, &owner(), false) else {
            panic!("taken while an up is at work");
        };
        assert!(why.contains("an up is at work"), "{why}");
        assert!(matches!(
            judge_interface(&fresh, &named, &owner(), true),
            Verdict::Remove(_)
        ));
    }

    fn planned(index: u32) -> BridgeRecord {
        BridgeRecord {
            index,
            ..BridgeRecord::planned(
                "klan",
                GROUP,
                Some("cloon:/run/cloon/.bridges/klan.json".into()),
            )
        }
    }

    fn judge(facts: BridgeFacts) -> BridgeVerdict {
        judge_bridge(&facts, &owner())
    }

    fn removes(verdict: &BridgeVerdict, bridge: Option<u32>) -> bool {
        matches!(verdict, BridgeVerdict::Remove { bridge: b, .. } if *b == bridge)
    }

    #[test]
    fn a_bridge_cloon_made_goes_when_nothing_needs_it() {
        let br = link("klan", 6, "bridge", GROUP, None);
        let none: [RecordedEnd; 0] = [];
        // Recorded with its index, or pending (the tool was killed before it knew it).
        for record in [planned(6), planned(0)] {
            let verdict = judge(BridgeFacts {
                link: Some(&br),
                has_file: true,
                record: Some(&record),
                recorded: Some(&none),
                ..BridgeFacts::default()
            });
            assert!(removes(&verdict, Some(6)), "{verdict:?}");
        }
        // Without a record (lost): known by its group.
        let verdict = judge(BridgeFacts {
            link: Some(&br),
            recorded: Some(&none),
            ..BridgeFacts::default()
        });
        assert!(removes(&verdict, Some(6)), "{verdict:?}");
        // A container's record still names it.
        let needed = ["A".to_string()];
        let verdict = judge(BridgeFacts {
            link: Some(&br),
            has_file: true,
            record: Some(&planned(6)),
            needed_by: &needed,
            recorded: Some(&none),
            ..BridgeFacts::default()
        });
        assert_eq!(verdict, BridgeVerdict::Keep("used by A".into()));
        // A cloon port is on it, or a record cannot be read (any port may be cloon's).
        let port = link("vk1", 9, "veth", GROUP, None);
        let ends = [RecordedEnd {
            name: "vk1".into(),
            index: 9,
            group: GROUP,
            alias: None,
        }];
        for recorded in [Some(&ends[..]), None] {
            let verdict = judge(BridgeFacts {
                link: Some(&br),
                ports: std::slice::from_ref(&port),
                has_file: true,
                record: Some(&planned(6)),
                recorded,
                ..BridgeFacts::default()
            });
            assert!(matches!(verdict, BridgeVerdict::Keep(_)), "{verdict:?}");
        }
        // A port that is not cloon's keeps nothing, as for `down`.
        let tap = link("tap0", 10, "tun", 0, None);
        let verdict = judge(BridgeFacts {
            link: Some(&br),
            ports: std::slice::from_ref(&tap),
            has_file: true,
            record: Some(&planned(6)),
            recorded: Some(&ends),
            ..BridgeFacts::default()
        });
        assert!(removes(&verdict, Some(6)), "{verdict:?}");
    }

    #[test]
    fn a_bridge_cloon_did_not_make_is_never_deleted_only_its_stale_record() {
        let none: [RecordedEnd; 0] = [];
        let hand = link("klan", 6, "bridge", 0, None);
        // No record: none of cloon's business.
        let verdict = judge(BridgeFacts {
            link: Some(&hand),
            recorded: Some(&none),
            ..BridgeFacts::default()
        });
        assert_eq!(verdict, BridgeVerdict::Ignore);
        // A pending record of a bridge never made, and one made by hand since: the record goes.
        let verdict = judge(BridgeFacts {
            link: Some(&hand),
            has_file: true,
            record: Some(&planned(0)),
            recorded: Some(&none),
            ..BridgeFacts::default()
        });
        assert!(removes(&verdict, None), "{verdict:?}");
        // A joined bridge: its record goes, the bridge stays.
        let joined = BridgeRecord {
            created: false,
            group: 0,
            alias: None,
            ..planned(6)
        };
        let verdict = judge(BridgeFacts {
            link: Some(&hand),
            has_file: true,
            record: Some(&joined),
            recorded: Some(&none),
            ..BridgeFacts::default()
        });
        assert!(removes(&verdict, None), "{verdict:?}");
        // A record whose bridge is gone; an empty record file.
        for record in [Some(planned(6)), None] {
            let verdict = judge(BridgeFacts {
                has_file: true,
                record: record.as_ref(),
                recorded: Some(&none),
                ..BridgeFacts::default()
            });
            assert!(removes(&verdict, None), "{verdict:?}");
        }
        // Another state directory's bridge: beside this one, or nested in it.
        for other in ["/tmp/lab", "/run/cloon/lab"] {
            let alias = format!("cloon:{other}/.bridges/klan.json");
            let theirs = link("klan", 6, "bridge", GROUP, Some(&alias));
            let verdict = judge(BridgeFacts {
                link: Some(&theirs),
                recorded: Some(&none),
                ..BridgeFacts::default()
            });
            assert!(matches!(verdict, BridgeVerdict::Keep(_)), "{verdict:?}");
        }
        // In another state directory's group: not even mentioned, with or without its alias.
        let lab = Owner::at(Path::new("/run/cloon/lab"));
        for alias in [None, Some("cloon:/run/cloon/lab/.bridges/klan.json")] {
            let theirs = link("klan", 6, "bridge", lab.group(), alias);
            let verdict = judge(BridgeFacts {
                link: Some(&theirs),
                recorded: Some(&none),
                ..BridgeFacts::default()
            });
            assert_eq!(verdict, BridgeVerdict::Ignore);
        }
        // An interface of that name that is not a bridge.
        let veth = link("klan", 6, "veth", GROUP, None);
        let verdict = judge(BridgeFacts {
            link: Some(&veth),
            recorded: Some(&none),
            ..BridgeFacts::default()
        });
        assert_eq!(verdict, BridgeVerdict::Ignore);
    }

    #[test]
    fn a_record_is_partly_gone_only_when_an_object_is() {
        let changed = [Finding::changed("host interface v has MTU 1400".into())];
        assert_eq!(partly_gone(&changed), None);
        assert_eq!(partly_gone(&[]), None);
        let both = [
            changed[0].clone(),
            Finding::gone("the namespace file /run/netns/k is missing".into()),
        ];
        assert_eq!(
            partly_gone(&both).as_deref(),
            Some("partly gone: the namespace file /run/netns/k is missing")
        );
        assert!(healthy(&changed).contains("MTU 1400"));
        assert_eq!(healthy(&[]), "healthy");
    }
}
