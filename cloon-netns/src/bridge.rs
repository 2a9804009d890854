//! Bridges: the Linux bridges that host ends join (`--veth HOST:GUEST,bridge=BR`), so that the
//! containers whose veths are ports of one bridge share a LAN.
//!
//! A bridge is shared by several containers, so its record is not in one container's directory
//! but under the state root, `<root>/.bridges/BR.json` ([`BridgeRecord`]), and is read and
//! changed only under its lock, which `up` and `down` hold from their first look at the bridge to
//! their last change to it: two of them cannot race.
//!
//! `up` creates a missing bridge, in its state directory's interface group ([`tag`]), after
//! recording that cloon is making it (index 0 until known), so that a tool killed at any instant
//! leaves a record that names it; a bridge that exists already is joined, and one that cloon did not make is never
//! deleted. `down` deletes a bridge cloon made
//! when no cloon port is left on it: which ports are cloon's is decided from the kernel's own list
//! of the bridge's ports, each compared with the host ends that containers' records list and the
//! VXLAN ports that LANs' records name (`cloon-netns vxlan IF,bridge=BR`, [`vxlan`]) (name and
//! ifindex), never from a count a crash could leave wrong.

use crate::link::{LinkState, Netlink};
use crate::record::Record;
use crate::tag::{self, Claim};
use crate::vxlan::{self, VxlanRecord};
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
    /// Its ifindex (0 while cloon is creating it): a bridge of that name with another index is
    /// not the one recorded.
    pub index: u32,
    /// Whether cloon created it (and so deletes it with its last cloon port).
    pub created: bool,
    /// The interface group cloon created it in (its state directory's; 0 for a bridge it joined,
    /// and in records older than tags).
    #[serde(default)]
    pub group: u32,
    /// The alias cloon gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
}

impl BridgeRecord {
    /// The record of a bridge cloon is about to create: index unknown, its group and alias.
    pub fn planned(name: &str, group: u32, alias: Option<String>) -> BridgeRecord {
        BridgeRecord {
            name: name.to_string(),
            index: 0,
            created: true,
            group,
            alias,
        }
    }

    /// The actions that make the bridge this record plans: created in its group, given its
    /// alias, brought up.
    pub fn make(&self) -> Vec<crate::action::Action> {
        use crate::action::Action;
        let mut actions = vec![Action::BridgeAdd {
            name: self.name.clone(),
            group: self.group,
        }];
        if let Some(alias) = &self.alias {
            actions.push(Action::SetAlias {
                dev: self.name.clone(),
                alias: alias.clone(),
            });
        }
        actions.push(Action::LinkUp {
            ns: None,
            dev: self.name.clone(),
        });
        actions
    }

    /// Whether `link` (the interface of its name) is the bridge cloon made for this record.
    pub fn is_cloons(&self, link: &LinkState) -> bool {
        self.created
            && link.is_bridge()
            && tag::is_claimed(
                link,
                &Claim {
                    index: self.index,
                    group: self.group,
                    alias: self.alias.as_deref(),
                },
            )
    }
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
    /// The record to keep once `up` succeeded, with `index` the bridge's index now and `before`
    /// the record `up` found (or made, for a bridge it created).
    pub fn record(self, name: &str, index: u32, before: Option<BridgeRecord>) -> BridgeRecord {
        match (self, before) {
            (Found::Foreign(_), _) | (_, None) => BridgeRecord {
                name: name.to_string(),
                index,
                created: false,
                group: 0,
                alias: None,
            },
            (_, Some(before)) => BridgeRecord { index, ..before },
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
        Some(l) if record.is_some_and(|r| r.is_cloons(l)) => Ok(Found::Cloons(l.index)),
        Some(l) => Ok(Found::Foreign(l.index)),
    }
}

/// The records of the bridges one `up` or `down` works on: locked, in sorted order, when it acts;
/// only read in `--dry-run`, which changes nothing.
/// A record stored with [`Bridges::pending`] is removed when the value is dropped, unless
/// [`Bridges::commit`] was called: declared before `up`'s undo stack, it is dropped after it, so
/// the bridge goes before its record.
#[derive(Debug)]
pub struct Bridges<'a> {
    state: &'a StateDir,
    locks: BTreeMap<String, Shared>,
    pending: Vec<String>,
}

/// The bridges an `up` uses, by name, each with how it stands on the host.
pub type Standing = Vec<(String, Found)>;

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
        Ok(Bridges {
            state,
            locks,
            pending: Vec::new(),
        })
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

    /// Writes the record of a bridge about to be created, removed again unless committed.
    pub fn pending(&mut self, record: &BridgeRecord) -> Result<()> {
        self.store(record)?;
        self.pending.push(record.name.clone());
        Ok(())
    }

    /// How each of the bridges `names` stands on the host (`host`: its connection), and the
    /// records of those to make, in the interface group `group`: what an `up` plans from.
    pub fn inspect_all(
        &mut self,
        host: &Netlink,
        names: &[String],
        group: u32,
    ) -> Result<(Standing, Vec<BridgeRecord>)> {
        let mut found = Vec::new();
        let mut missing = Vec::new();
        for name in names {
            let record = self.record(name)?;
            let link = host.link_by_name(name)?;
            let f = inspect(name, link.as_ref(), record.as_ref())?;
            if f == Found::Missing {
                let path = self.state.shared_path(KIND, name)?;
                missing.push(BridgeRecord::planned(name, group, tag::alias(&path)));
            }
            found.push((name.clone(), f));
        }
        Ok((found, missing))
    }

    /// Before an `up` runs `action`: a bridge it makes is recorded first (said, and its planned
    /// record among `missing` written as pending when `acting`).
    pub fn before(
        &mut self,
        action: &crate::action::Action,
        missing: &[BridgeRecord],
        acting: bool,
    ) -> Result<()> {
        if let crate::action::Action::BridgeAdd { name, .. } = action {
            cloon_core::explain::note(&format!(
                "record {}",
                self.state.shared_path(KIND, name)?.display()
            ));
            if let (true, Some(planned)) = (acting, missing.iter().find(|b| &b.name == name)) {
                self.pending(planned)?;
            }
        }
        Ok(())
    }

    /// Once an `up` made everything: each bridge of `found` that was there already gets its
    /// record, with the index `host` has for it, when `acting`, and is said.
    pub fn adopt(&mut self, host: &Netlink, found: &[(String, Found)], acting: bool) -> Result<()> {
        for (name, f) in found.iter().filter(|(_, f)| *f != Found::Missing) {
            if acting {
                let index = host.find(name, "on the host")?.index;
                let before = self.record(name)?;
                self.store(&f.record(name, index, before))?;
            }
            cloon_core::explain::note(&format!(
                "record {}",
                self.state.shared_path(KIND, name)?.display()
            ));
        }
        Ok(())
    }

    /// Keeps the records written by [`Bridges::pending`].
    pub fn commit(&mut self) {
        self.pending.clear();
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

impl Drop for Bridges<'_> {
    fn drop(&mut self) {
        for name in std::mem::take(&mut self.pending) {
            let _ = self.remove(&name);
        }
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
    Ok(decide(&link, record, &ports, recorded.as_deref(), leaving))
}

/// A host end as a container's record names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedEnd {
    pub name: String,
    pub index: u32,
    pub group: u32,
    pub alias: Option<String>,
}

impl RecordedEnd {
    /// Whether `port` is this host end.
    fn is(&self, port: &LinkState) -> bool {
        port.name == self.name
            && tag::is_claimed(
                port,
                &Claim {
                    index: self.index,
                    group: self.group,
                    alias: self.alias.as_deref(),
                },
            )
    }
}

/// The decision of [`release`], from the kernel's bridge and ports and the recorded host ends
/// (`None`: some record could not be read, so any port may be cloon's).
pub fn decide(
    bridge: &LinkState,
    record: Option<&BridgeRecord>,
    ports: &[LinkState],
    recorded: Option<&[RecordedEnd]>,
    leaving: &[(String, u32)],
) -> Release {
    let others = cloon_ports(ports, recorded, leaving);
    if !others.is_empty() {
        return Release::Keep(others);
    }
    let ours = record.is_some_and(|r| r.is_cloons(bridge));
    Release::Drop(ours.then_some(bridge.index))
}

/// The names of the `ports` of a bridge that are recorded host ends (all of them when `recorded`
/// is `None`: a record could not be read), but for those `leaving` (name, index).
pub fn cloon_ports(
    ports: &[LinkState],
    recorded: Option<&[RecordedEnd]>,
    leaving: &[(String, u32)],
) -> Vec<String> {
    ports
        .iter()
        .filter(|p| !leaving.contains(&(p.name.clone(), p.index)))
        .filter(|p| recorded.is_none_or(|r| r.iter().any(|end| end.is(p))))
        .map(|p| p.name.clone())
        .collect()
}

/// Every host end that a container's record lists, and every VXLAN port a LAN's record names;
/// `None` when a record cannot be read (then any
/// port may be cloon's, and no bridge is deleted).
pub fn recorded_host_ends(state: &StateDir) -> Result<Option<Vec<RecordedEnd>>> {
    let mut ends = Vec::new();
    for name in state.names()? {
        match state.load::<Record>(&name, PART) {
            Ok(Some(record)) => {
                ends.extend(record.links.iter().map(|l| RecordedEnd {
                    name: l.host.clone(),
                    index: l.host_index,
                    group: record.group,
                    alias: record.alias.clone(),
                }));
            }
            Ok(None) => {}
            Err(e) => {
                eprintln!("{}: warning: {e}: keeping the bridges in use", crate::STAGE);
                return Ok(None);
            }
        }
        // A LAN's VXLAN port (`cloon-netns vxlan IF,bridge=BR`) is a cloon port too.
        match state.load::<VxlanRecord>(&name, vxlan::PART) {
            Ok(Some(record)) if record.bridge.is_some() => ends.push(RecordedEnd {
                name: record.ifname.clone(),
                index: record.index,
                group: record.group,
                alias: record.alias.clone(),
            }),
            Ok(_) => {}
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

    const ALIAS: &str = "cloon:/run/cloon/.bridges/lan1.json";

    fn link(name: &str, index: u32, kind: &str) -> LinkState {
        LinkState {
            name: name.into(),
            index,
            mac: String::new(),
            up: true,
            mtu: 1500,
            kind: kind.into(),
            master: None,
            group: tag::DEFAULT_GROUP,
            alias: None,
            vxlan: None,
        }
    }

    fn rec(index: u32, created: bool) -> BridgeRecord {
        BridgeRecord {
            index,
            created,
            ..BridgeRecord::planned("lan1", tag::DEFAULT_GROUP, Some(ALIAS.into()))
        }
    }

    fn end(name: &str, index: u32) -> RecordedEnd {
        RecordedEnd {
            name: name.into(),
            index,
            group: tag::DEFAULT_GROUP,
            alias: Some(format!("cloon:/run/cloon/{name}/netns.json")),
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
        // Made by a tool killed before it recorded the index: cloon's group says it is cloon's;
        // a bridge made by hand under that name is not.
        assert_eq!(
            inspect("lan1", Some(&br), Some(&rec(0, true))).unwrap(),
            Found::Cloons(5)
        );
        let by_hand = LinkState {
            group: 0,
            ..br.clone()
        };
        assert_eq!(
            inspect("lan1", Some(&by_hand), Some(&rec(0, true))).unwrap(),
            Found::Foreign(5)
        );
        let e = inspect("lan1", Some(&link("lan1", 5, "veth")), None).unwrap_err();
        assert_eq!(e.code, Code::NameTaken);
        assert!(e.msg.contains("not a bridge (a veth)"), "{}", e.msg);
        assert_eq!(
            Found::Missing.record("lan1", 9, Some(rec(0, true))),
            rec(9, true)
        );
        assert_eq!(
            Found::Cloons(5).record("lan1", 5, Some(rec(0, true))),
            rec(5, true)
        );
        let joined = Found::Foreign(5).record("lan1", 5, Some(rec(4, true)));
        assert!(!joined.created);
        assert_eq!((joined.index, joined.group, joined.alias), (5, 0, None));
    }

    #[test]
    fn the_kernels_ports_that_are_recorded_host_ends_keep_a_bridge() {
        let br = link("lan1", 5, "bridge");
        let ports = [
            link("vgt_a", 7, "veth"),
            link("vgt_b", 8, "veth"),
            LinkState {
                group: 0,
                ..link("tap0", 9, "tun")
            },
        ];
        let recorded = [end("vgt_a", 7), end("vgt_b", 8)];
        let recorded = Some(&recorded[..]);
        let ours = Some(rec(5, true));
        let leaving_a = [("vgt_a".to_string(), 7)];
        assert_eq!(
            decide(&br, ours.as_ref(), &ports, recorded, &leaving_a),
            Release::Keep(vec!["vgt_b".into()])
        );
        // The last cloon port leaves: a port that is not cloon's (tap0) does not keep it.
        let leaving_both = [("vgt_a".to_string(), 7), ("vgt_b".to_string(), 8)];
        assert_eq!(
            decide(&br, ours.as_ref(), &ports, recorded, &leaving_both),
            Release::Drop(Some(5))
        );
        // A port of a recorded name but another index is not cloon's.
        let impostor = [link("vgt_b", 10, "veth")];
        assert_eq!(
            decide(&br, ours.as_ref(), &impostor, recorded, &leaving_a),
            Release::Drop(Some(5))
        );
        // A bridge cloon did not make, or not this one, is never deleted.
        let foreign = Some(rec(5, false));
        assert_eq!(
            decide(&br, foreign.as_ref(), &[], recorded, &[]),
            Release::Drop(None)
        );
        assert_eq!(
            decide(&br, Some(&rec(4, true)), &[], recorded, &[]),
            Release::Drop(None)
        );
        assert_eq!(decide(&br, None, &[], recorded, &[]), Release::Drop(None));
        // When a record cannot be read, every port may be cloon's.
        assert_eq!(
            decide(&br, ours.as_ref(), &ports[2..], None, &leaving_both),
            Release::Keep(vec!["tap0".into()])
        );
    }

    #[test]
    fn ports_and_bridges_whose_index_was_never_recorded_are_known_by_their_tags() {
        // A tool killed after making the bridge and vgt_c, before recording their indexes.
        let br = link("lan1", 5, "bridge");
        let pending = Some(rec(0, true));
        let vgt_c = link("vgt_c", 11, "veth");
        let recorded = [end("vgt_a", 7), end("vgt_c", 0)];
        let recorded = Some(&recorded[..]);
        assert_eq!(
            decide(
                &br,
                pending.as_ref(),
                std::slice::from_ref(&vgt_c),
                recorded,
                &[]
            ),
            Release::Keep(vec!["vgt_c".into()])
        );
        assert_eq!(
            decide(&br, pending.as_ref(), &[], recorded, &[]),
            Release::Drop(Some(5))
        );
        // A port of that name made by hand (no group), or by another container (its alias).
        let by_hand = LinkState {
            group: 0,
            ..vgt_c.clone()
        };
        let theirs = LinkState {
            alias: Some("cloon:/run/cloon/other/netns.json".into()),
            ..vgt_c
        };
        for port in [by_hand, theirs] {
            assert_eq!(
                decide(&br, pending.as_ref(), &[port], recorded, &[]),
                Release::Drop(Some(5))
            );
        }
        // A bridge of that name made by hand is never cloon's, even for a pending record.
        let hand = LinkState {
            group: 0,
            ..br.clone()
        };
        assert_eq!(
            decide(&hand, pending.as_ref(), &[], recorded, &[]),
            Release::Drop(None)
        );
        // Records older than tags: the index alone.
        let old = BridgeRecord {
            group: 0,
            alias: None,
            ..rec(5, true)
        };
        assert_eq!(
            decide(&hand, Some(&old), &[], recorded, &[]),
            Release::Drop(Some(5))
        );
    }
}
