//! Bridges: the Linux bridges that host ends join (`--veth HOST:GUEST,bridge=BR`), so that the
//! containers whose veths are ports of one bridge share a LAN.
//!
//! A bridge is shared by several containers, so its record is not in one container's directory
//! but under the state root, `<root>/.bridges/BR.json` ([`BridgeRecord`]), and is read and
//! changed only under its lock, which `up` and `down` hold from their first look at the bridge to
//! their last change to it: two of them cannot race.
//!
//! `up` creates a missing bridge (and records that cloon made it); a bridge that exists already
//! is joined, and one that cloon did not make is never deleted. `down` deletes a bridge cloon made
//! when no cloon port is left on it: which ports are cloon's is decided from the kernel's own list
//! of the bridge's ports, each compared with the host ends that containers' records list (name and
//! ifindex), never from a count a crash could leave wrong.

use crate::link::{LinkState, Netlink};
use crate::record::Record;
use crate::PART;
use cloon_core::shared::Shared;
use cloon_core::{Code, Error, Result, StateDir};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The kind of shared record bridges are (the directory `<root>/.bridges`).
pub const KIND: &str = "bridges";

/// What cloon records about a bridge its containers use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BridgeRecord {
    pub name: String,
    /// Its ifindex: a bridge of that name with another index is not the one recorded.
    pub index: u32,
    /// Whether cloon created it (and so deletes it with its last cloon port).
    pub created: bool,
}

/// What a bridge named in `--veth` is when `up` looks at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// No interface of that name: cloon creates the bridge.
    Missing,
    /// The bridge cloon created (recorded, same index): other containers' ports may be on it.
    Cloons(u32),
    /// A bridge cloon did not create: joined, never deleted.
    Foreign(u32),
}

impl Found {
    /// The record to keep once `up` succeeded, with `index` the bridge's index now.
    pub fn record(self, name: &str, index: u32) -> BridgeRecord {
        BridgeRecord {
            name: name.to_string(),
            index,
            created: !matches!(self, Found::Foreign(_)),
        }
    }
}

/// What `link` (the interface called `name`, if any) is for a bridge whose record is `record`.
/// An interface of that name that is not a bridge is refused.
pub fn inspect(
    name: &str,
    link: Option<&LinkState>,
    record: Option<&BridgeRecord>,
) -> Result<Found> {
    match link {
        None => Ok(Found::Missing),
        Some(l) if !l.is_bridge() => Err(Error::new(
            Code::NameTaken,
            format!(
                "bridge={name}: the host has an interface {name} that is not a bridge (a {}): \
                 pick another bridge name",
                if l.kind.is_empty() { "device" } else { &l.kind }
            ),
        )),
        Some(l) if record.is_some_and(|r| r.created && r.index == l.index) => {
            Ok(Found::Cloons(l.index))
        }
        Some(l) => Ok(Found::Foreign(l.index)),
    }
}

/// The records of the bridges one `up` or `down` works on: locked, in sorted order, when it acts;
/// only read in `--dry-run`, which changes nothing.
#[derive(Debug)]
pub struct Bridges<'a> {
    state: &'a StateDir,
    locks: BTreeMap<String, Shared>,
}

impl<'a> Bridges<'a> {
    /// Takes the locks of `names` (sorted, so that two tools never wait on each other) when
    /// `acting`.
    pub fn open(state: &'a StateDir, names: &[String], acting: bool) -> Result<Bridges<'a>> {
        let mut locks = BTreeMap::new();
        if acting {
            let sorted: BTreeSet<&String> = names.iter().collect();
            for name in sorted {
                locks.insert(name.clone(), state.lock_shared(KIND, name)?);
            }
        }
        Ok(Bridges { state, locks })
    }

    /// The record of bridge `name`, if any.
    pub fn record(&mut self, name: &str) -> Result<Option<BridgeRecord>> {
        match self.locks.get_mut(name) {
            Some(lock) => lock.load(),
            None => self.state.read_shared(KIND, name),
        }
    }

    /// Writes the record of a bridge this value holds the lock of.
    pub fn store(&mut self, record: &BridgeRecord) -> Result<()> {
        self.lock(&record.name)?.store(record)
    }

    /// Removes the record of a bridge this value holds the lock of.
    pub fn remove(&mut self, name: &str) -> Result<()> {
        self.lock(name)?.remove()
    }

    fn lock(&mut self, name: &str) -> Result<&mut Shared> {
        self.locks.get_mut(name).ok_or_else(|| {
            Error::new(
                Code::Io,
                format!("the bridge {name} is not locked (a bug: please report it)"),
            )
        })
    }
}

/// What `down` does with a bridge once its container's ports are gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Release {
    /// Other cloon ports remain (named): the bridge and its record stay.
    Keep(Vec<String>),
    /// No cloon port remains: the record goes, and the bridge with index `Some(i)` too (cloon
    /// made it and it is still that one).
    Drop(Option<u32>),
}

/// Decides what becomes of bridge `name` when the host ends `leaving` (name, index) leave it.
pub fn release(
    state: &StateDir,
    host: &Netlink,
    name: &str,
    record: Option<&BridgeRecord>,
    leaving: &[(String, u32)],
) -> Result<Release> {
    let link = match host.link_by_name(name)? {
        Some(link) if link.is_bridge() => link,
        _ => return Ok(Release::Drop(None)),
    };
    let ports = host.ports(link.index)?;
    let recorded = recorded_host_ends(state)?;
    Ok(decide(&link, record, &ports, &recorded, leaving))
}

/// The decision of [`release`], from the kernel's bridge and ports and the recorded host ends
/// (`None`: some record could not be read, so any port may be cloon's).
fn decide(
    bridge: &LinkState,
    record: Option<&BridgeRecord>,
    ports: &[LinkState],
    recorded: &Option<BTreeSet<(String, u32)>>,
    leaving: &[(String, u32)],
) -> Release {
    let others: Vec<String> = ports
        .iter()
        .map(|p| (p.name.clone(), p.index))
        .filter(|p| !leaving.contains(p))
        .filter(|p| recorded.as_ref().is_none_or(|r| r.contains(p)))
        .map(|(name, _)| name)
        .collect();
    if !others.is_empty() {
        return Release::Keep(others);
    }
    let ours = record.is_some_and(|r| r.created && r.index == bridge.index);
    Release::Drop(ours.then_some(bridge.index))
}

/// Every host end (name, ifindex) that a container's record lists; `None` when a record cannot be
/// read (then any port may be cloon's, and no bridge is deleted).
fn recorded_host_ends(state: &StateDir) -> Result<Option<BTreeSet<(String, u32)>>> {
    let mut ends = BTreeSet::new();
    for name in state.names()? {
        match state.load::<Record>(&name, PART) {
            Ok(Some(record)) => {
                ends.extend(record.links.into_iter().map(|l| (l.host, l.host_index)));
            }
            Ok(None) => {}
            Err(e) => {
                eprintln!("{}: warning: {e}: keeping the bridges in use", crate::STAGE);
                return Ok(None);
            }
        }
    }
    Ok(Some(ends))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(name: &str, index: u32, kind: &str) -> LinkState {
        LinkState {
            name: name.into(),
            index,
            mac: String::new(),
            up: true,
            mtu: 1500,
            kind: kind.into(),
            master: None,
        }
    }

    fn rec(index: u32, created: bool) -> BridgeRecord {
        BridgeRecord {
            name: "lan1".into(),
            index,
            created,
        }
    }

    #[test]
    fn a_bridge_is_missing_cloons_or_foreign_and_a_non_bridge_is_refused() {
        let br = link("lan1", 5, "bridge");
        assert_eq!(inspect("lan1", None, None).unwrap(), Found::Missing);
        assert_eq!(inspect("lan1", Some(&br), None).unwrap(), Found::Foreign(5));
        assert_eq!(
            inspect("lan1", Some(&br), Some(&rec(5, true))).unwrap(),
            Found::Cloons(5)
        );
        // A record of another bridge of that name (cloon's was deleted by hand), or of a bridge
        // cloon only joined.
        assert_eq!(
            inspect("lan1", Some(&br), Some(&rec(4, true))).unwrap(),
            Found::Foreign(5)
        );
        assert_eq!(
            inspect("lan1", Some(&br), Some(&rec(5, false))).unwrap(),
            Found::Foreign(5)
        );
        let e = inspect("lan1", Some(&link("lan1", 5, "veth")), None).unwrap_err();
        assert_eq!(e.code, Code::NameTaken);
        assert!(e.msg.contains("not a bridge (a veth)"), "{}", e.msg);
        assert_eq!(Found::Missing.record("lan1", 9), rec(9, true));
        assert_eq!(Found::Cloons(5).record("lan1", 5), rec(5, true));
        assert_eq!(Found::Foreign(5).record("lan1", 5), rec(5, false));
    }

    #[test]
    fn the_kernels_ports_that_are_recorded_host_ends_keep_a_bridge() {
        let br = link("lan1", 5, "bridge");
        let ports = [
            link("vgt_a", 7, "veth"),
            link("vgt_b", 8, "veth"),
            link("tap0", 9, "tun"),
        ];
        let recorded: Option<BTreeSet<(String, u32)>> = Some(
            [("vgt_a".to_string(), 7), ("vgt_b".to_string(), 8)]
                .into_iter()
                .collect(),
        );
        let ours = Some(rec(5, true));
        let leaving_a = [("vgt_a".to_string(), 7)];
        assert_eq!(
            decide(&br, ours.as_ref(), &ports, &recorded, &leaving_a),
            Release::Keep(vec!["vgt_b".into()])
        );
        // The last cloon port leaves: a port that is not cloon's (tap0) does not keep it.
        let leaving_both = [("vgt_a".to_string(), 7), ("vgt_b".to_string(), 8)];
        assert_eq!(
            decide(&br, ours.as_ref(), &ports, &recorded, &leaving_both),
            Release::Drop(Some(5))
        );
        // A port of a recorded name but another index is not cloon's.
        let impostor = [link("vgt_b", 10, "veth")];
        assert_eq!(
            decide(&br, ours.as_ref(), &impostor, &recorded, &leaving_a),
            Release::Drop(Some(5))
        );
        // A bridge cloon did not make, or not this one, is never deleted.
        let foreign = Some(rec(5, false));
        assert_eq!(
            decide(&br, foreign.as_ref(), &[], &recorded, &[]),
            Release::Drop(None)
        );
        assert_eq!(
            decide(&br, Some(&rec(4, true)), &[], &recorded, &[]),
            Release::Drop(None)
        );
        assert_eq!(decide(&br, None, &[], &recorded, &[]), Release::Drop(None));
        // When a record cannot be read, every port may be cloon's.
        assert_eq!(
            decide(&br, ours.as_ref(), &ports[2..], &None, &leaving_both),
            Release::Keep(vec!["tap0".into()])
        );
    }
}
