//! `down`: deletes what the records say cloon made, and only that. Idempotent: what is already
//! gone counts as done, and no record at all means nothing of cloon's is left.
//!
//! A name is a container's namespace (`netns.json`), a point-to-point link (`link.json`, see
//! [`p2p`]) or a VXLAN end (`vxlan.json`, see [`vxlan`]). For a container: its host ends (each takes its guest end with it), the bridges cloon
//! made that no cloon port is left on, then the namespace if cloon created it.
//!
//! Records may come from a tool killed halfway ([`crate::up`] writes them ahead): an interface is
//! deleted when it has the recorded name and is the one the record claims ([`tag::is_claimed`]:
//! cloon's group, and the recorded index, or while that is unknown no other record's alias); the
//! namespace when the file at its path is the recorded namespace, or the recorded empty file
//! made to bind it on.

use crate::action::Action;
use crate::bridge::{self, Bridges, Release};
use crate::namespace::{self, Probe};
use crate::p2p::{self, P2pRecord};
use crate::record::Record;
use crate::system::System;
use crate::vxlan::{self, VxlanRecord};
use crate::{tag, warn, PART, STAGE};
use cloon_core::{explain, host, Result, StateDir, Undo};
use std::collections::BTreeSet;
use std::path::Path;

/// `down --all` of `names` (every name with a record in the state directory): a lab's teardown.
///
/// First the host ends of every namespace record and the VXLAN ports of LANs, and the bridges
/// whose ports all go with them, are deleted in one kernel request, by the state directory's interface group
/// ([`delete_host_ends`]): the kernel waits for the network's grace periods once for all, not
/// once per interface. Then each name goes as `down --name` has it, under its lock, finding
/// those interfaces gone: the namespaces first, then the point-to-point links and VXLAN ends,
/// whose interfaces in namespaces went with them.
pub fn down_all(state: &StateDir, names: &[String]) -> Result<()> {
    if explain::acting() {
        host::require_root(STAGE, "delete network namespaces and interfaces")?;
        delete_host_ends(state, names)?;
    }
    let mut links = Vec::new();
    for name in names {
        if state.has_record(name, PART)? {
            cloon_core::stage::down::<crate::stage::Net>(state, name, &Default::default())?;
        } else {
            links.push(name);
        }
    }
    for name in links {
        cloon_core::stage::down::<crate::stage::Net>(state, name, &Default::default())?;
    }
    Ok(())
}

/// Deletes, in one request, the state directory's interface group when everything in it is a
/// host end (or a LAN's VXLAN port) one of the `names` records claims, or a bridge whose ports all
/// are. Anything else in
/// the group (an interface another record or nobody claims), or an `up` or `link` at work in the
/// state directory (which may be adding one: each holds the state root's lock shared, this takes
/// it exclusively for the check and the request), leaves the deletions to each name's `down`,
/// one by one. A `down --name` at work meanwhile deletes what it deletes: the request takes what
/// is left.
fn delete_host_ends(state: &StateDir, names: &[String]) -> Result<()> {
    let Some(_idle) = tag::RootLock::try_idle(state)? else {
        return Ok(());
    };
    let group = tag::Owner::of(state).group();
    let sys = System::new()?;
    let links = sys.host().links()?;
    let in_group: Vec<_> = links.iter().filter(|l| l.group == group).collect();
    if in_group.is_empty() {
        return Ok(());
    }
    let mut going: BTreeSet<u32> = BTreeSet::new();
    for name in names {
        if let Some(record) = state.load::<VxlanRecord>(name, vxlan::PART)? {
            if let Some(found) = links.iter().find(|l| l.name == record.ifname) {
                if record.path.is_none() && tag::is_claimed(found, &record.claim()) {
                    going.insert(found.index);
                }
            }
        }
        let Some(record) = state.load::<Record>(name, PART)? else {
            continue;
        };
        for end in &record.links {
            if let Some(found) = links.iter().find(|l| l.name == end.host) {
                if tag::is_claimed(found, &record.host_claim(end)) {
                    going.insert(found.index);
                }
            }
        }
    }
    for bridge in in_group.iter().filter(|l| l.is_bridge()) {
        let mut ports = links.iter().filter(|l| l.master == Some(bridge.index));
        if ports.all(|p| going.contains(&p.index)) {
            going.insert(bridge.index);
        }
    }
    if in_group.iter().any(|l| !going.contains(&l.index)) {
        return Ok(());
    }
    if explain::step(&["ip", "link", "delete", "group", &group.to_string()]) {
        sys.host().delete_group(group)?;
    }
    Ok(())
}

/// `down` of `name`, for a caller that holds the lock of its state directory (or in a dry run):
/// deletes what its records list, then the records.
pub fn down_locked(state: &StateDir, name: &str) -> Result<()> {
    let netns = state.load::<Record>(name, PART)?;
    let link = state.load::<P2pRecord>(name, p2p::PART)?;
    let vxlan = state.load::<VxlanRecord>(name, vxlan::PART)?;
    if netns.is_none() && link.is_none() && vxlan.is_none() {
        if explain::acting() {
            // What a tool killed before it wrote its record leaves: an empty directory.
            state.remove_dir_if_empty(name)?;
        }
        return Ok(());
    }
    if explain::acting() {
        host::require_root(STAGE, "delete network namespaces and interfaces")?;
    }
    if let Some(record) = netns {
        tear_down(state, name, &record)?;
    }
    if let Some(record) = link {
        p2p::down(state, name, &record)?;
    }
    if let Some(record) = vxlan {
        vxlan::down(state, name, &record)?;
    }
    Ok(())
}

/// Plans then does the deletions of a container's namespace record, under the locks of its
/// bridges.
fn tear_down(state: &StateDir, name: &str, record: &Record) -> Result<()> {
    let acting = explain::acting();
    let mut sys = System::new()?;
    let names = record.bridges();
    let mut bridges = Bridges::open(state, &names, acting)?;

    let mut actions = Vec::new();
    let mut leaving = Vec::new();
    for link in &record.links {
        match sys.host().link_by_name(&link.host)? {
            Some(found) if tag::is_claimed(&found, &record.host_claim(link)) => {
                actions.push(Action::LinkDel {
                    ns: None,
                    dev: link.host.clone(),
                    index: found.index,
                });
                leaving.push((link.host.clone(), found.index));
            }
            Some(found) => warn(&format!(
                "leaving interface {}: it is not the one cloon created (index {}, group {}; \
                 recorded index {}, group {})",
                link.host, found.index, found.group, link.host_index, record.group
            )),
            None => {}
        }
    }
    let mut released = Vec::new();
    for bridge in &names {
        let rec = bridges.record(bridge)?;
        match bridge::release(state, sys.host(), bridge, rec.as_ref(), &leaving)? {
            Release::Keep(_) => {}
            Release::Drop(delete) => {
                if let Some(index) = delete {
                    actions.push(Action::BridgeDel {
                        name: bridge.clone(),
                        index,
                    });
                }
                if rec.is_some() {
                    released.push(bridge.clone());
                }
            }
        }
    }
    if let Some(action) = namespace_del(record)? {
        actions.push(action);
    }

    let mut undo = Undo::new();
    for action in &actions {
        if explain::step(&action.words()) {
            sys.run(action, &mut undo)?;
        }
    }
    undo.commit();
    for bridge in &released {
        explain::note(&format!(
            "remove the record {}",
            state.shared_path(bridge::KIND, bridge)?.display()
        ));
        if acting {
            bridges.remove(bridge)?;
        }
    }
    explain::release(state, name, PART)
}

/// The deletion of the namespace the record says cloon created, if what is at its path is that
/// namespace, or the empty file cloon made to bind it on.
fn namespace_del(record: &Record) -> Result<Option<Action>> {
    if !record.created || record.inode == 0 {
        // cloon had not made it yet, or (inode 0) no file can name it: the namespace lived only
        // as long as the tool that made it.
        return Ok(None);
    }
    let path = Path::new(&record.path);
    let del = Action::NetnsDel {
        name: record.name.clone(),
        inode: record.inode,
        file: record.namespace_file(),
    };
    Ok(match namespace::probe(path)? {
        Probe::Missing => None,
        Probe::Namespace(inode) if inode == record.inode => Some(del),
        Probe::Namespace(_) => {
            warn(&format!(
                "leaving {}: it is another namespace than the one cloon created",
                record.path
            ));
            None
        }
        Probe::Stale if namespace::is_cloons_file(path, record.namespace_file())? => Some(del),
        Probe::Stale => {
            warn(&format!(
                "leaving {}: it is a file cloon did not make",
                record.path
            ));
            None
        }
    })
}

/// `down --dry-run` (or `--explain`) of a document with no record behind it (one a `--dry-run`
/// pipeline made): the commands that undo its `netns` part, said and never run. Each host end
/// goes with its pair (`ip link del`, the guest end with it); a bridge it joined goes when no
/// port is left on it, tested when the script runs; the namespace last, when the part names one
/// under /run/netns (a namespace given by path is not cloon's to delete).
pub fn unrecorded(part: &cloon_core::doc::Netns) -> Result<()> {
    for link in &part.links {
        explain::step(&["ip", "link", "del", link.host.as_str()]);
    }
    let mut bridges: Vec<&str> = part
        .links
        .iter()
        .filter_map(|l| l.bridge.as_deref())
        .collect();
    bridges.sort_unstable();
    bridges.dedup();
    for br in bridges {
        explain::shell(&format!(
            "if [ -z \"$(ls /sys/class/net/{br}/brif 2>/dev/null)\" ]; then ip link del {br}; fi"
        ));
    }
    if crate::action::Ns::new(&part.path).ip_name().is_some() {
        explain::step(&["ip", "netns", "del", part.name.as_str()]);
    }
    Ok(())
}
