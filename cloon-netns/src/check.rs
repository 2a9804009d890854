//! `check` and the record `show` prints: compare the records with the kernel.

use crate::link::Netlink;
use crate::namespace::{self, Namespace, Probe};
use crate::p2p::{self, P2pRecord};
use crate::record::Record;
use crate::vxlan::{self, VxlanRecord};
use crate::{PART, STAGE};
use cloon_core::{cli, host, Code, Document, Error, Result, StateDir};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::Path;

/// What `show` prints: a container's namespace record, a link's, or a VXLAN end's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Shown {
    Netns(Record),
    Link(P2pRecord),
    Vxlan(VxlanRecord),
}

/// The record of `name` (what `show` prints), or [`Code::Unknown`].
pub fn record(state: &StateDir, name: &str) -> Result<Shown> {
    if let Some(link) = state.load::<P2pRecord>(name, p2p::PART)? {
        return Ok(Shown::Link(link));
    }
    if let Some(end) = state.load::<VxlanRecord>(name, vxlan::PART)? {
        return Ok(Shown::Vxlan(end));
    }
    state
        .require(name, PART, "network namespace, link or VXLAN end")
        .map(Shown::Netns)
}

/// `check` on the document: the name from `--name` or the document; the document passes through
/// unchanged when the kernel still matches the records and the document's parts (if any) are
/// the recorded ones, else a [`Code::Drift`] error.
pub fn check_document(
    state: &StateDir,
    name: Option<&str>,
    doc: Option<Document>,
) -> Result<Document> {
    let name = cli::pick_name(name, doc.as_ref(), STAGE)?;
    let netns = state.load::<Record>(&name, PART)?;
    let link = state.load::<P2pRecord>(&name, p2p::PART)?;
    let vx = state.load::<VxlanRecord>(&name, vxlan::PART)?;
    if netns.is_none() && link.is_none() && vx.is_none() {
        // The error that says what is missing.
        record(state, &name)?;
    }
    host::require_root(STAGE, "look inside network namespaces")?;
    let mut doc = doc.unwrap_or_default();
    if let Some(record) = netns {
        let part = check(&name, &record)?;
        same_part(&doc, PART, &name, &part)?;
    }
    if let Some(record) = link {
        let part = p2p::check(&name, &record)?;
        same_part(&doc, p2p::PART, &name, &part)?;
    }
    if let Some(record) = vx {
        let part = vxlan::check(&name, &record)?;
        same_part(&doc, vxlan::PART, &name, &part)?;
    }
    doc.set_name(&name)?;
    Ok(doc)
}

/// Fails with [`Code::Drift`] when the document has a `part` that is not `recorded`.
fn same_part<P>(doc: &Document, part: &str, name: &str, recorded: &P) -> Result<()>
where
    P: Serialize + DeserializeOwned + PartialEq,
{
    match doc.get::<P>(part)? {
        Some(given) if given != *recorded => {
            let json = |p: &P| serde_json::to_string(p).unwrap_or_default();
            Err(Error::new(
                Code::Drift,
                format!(
                    "the document's {part} part is not the one {STAGE} recorded for \"{name}\""
                ),
            )
            .details(format!(
                "document: {}; record: {}",
                json(&given),
                json(recorded)
            )))
        }
        _ => Ok(()),
    }
}

/// One difference between a record and the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// A recorded object is gone (missing, or another object has its name): the container is
    /// partly gone, and `gc` brings it down. Otherwise a setting changed (an MTU, a MAC
    /// address, a bridge port): `check` says it, `gc` keeps the container.
    pub gone: bool,
    /// The difference, as a sentence.
    pub msg: String,
}

impl Finding {
    pub fn gone(msg: String) -> Finding {
        Finding { gone: true, msg }
    }

    pub fn changed(msg: String) -> Finding {
        Finding { gone: false, msg }
    }

    /// The sentences, joined.
    pub fn sentences(findings: &[Finding]) -> String {
        findings
            .iter()
            .map(|f| f.msg.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Checks a container's namespace: the `netns` part as recorded if the kernel still matches the
/// record, else a [`Code::Drift`] error listing the differences.
pub fn check(name: &str, record: &Record) -> Result<cloon_core::doc::Netns> {
    let drift = differences(record)?;
    if !drift.is_empty() {
        return Err(Error::new(
            Code::Drift,
            format!(
                "the namespace of {name} no longer matches its record: {}; \
                 run cloon-netns down, then up again",
                Finding::sentences(&drift)
            ),
        ));
    }
    Ok(record.to_part())
}

/// What is wrong with the namespace file `path` recorded with the nsfs inode `inode`: missing,
/// no longer a namespace, or another namespace; `None` when it is still the one recorded.
pub fn namespace_gone(path: &str, inode: u64) -> Result<Option<Finding>> {
    let why = match namespace::probe(Path::new(path))? {
        Probe::Missing => format!("the namespace file {path} is missing"),
        Probe::Stale => format!("{path} is no longer a namespace"),
        Probe::Namespace(found) if found != inode => {
            format!("{path} is another namespace (inode {found}, recorded {inode})")
        }
        Probe::Namespace(_) => return Ok(None),
    };
    Ok(Some(Finding::gone(why)))
}

/// What differs between the record and the kernel.
pub fn differences(record: &Record) -> Result<Vec<Finding>> {
    let mut drift = Vec::new();
    let netns = match namespace_gone(&record.path, record.inode)? {
        Some(gone) => {
            drift.push(gone);
            None
        }
        None => Some(Namespace::open(Path::new(&record.path))?),
    };
    let host = Netlink::connect()?;
    for link in &record.links {
        match host.link_by_name(&link.host)? {
            None => drift.push(Finding::gone(format!(
                "host interface {} is missing",
                link.host
            ))),
            Some(found) if found.index != link.host_index => drift.push(Finding::gone(format!(
                "host interface {} has index {}, recorded {}",
                link.host, found.index, link.host_index
            ))),
            Some(found) => {
                if found.group != record.group {
                    drift.push(Finding::changed(format!(
                        "host interface {} is in group {}, recorded {}",
                        link.host, found.group, record.group
                    )));
                }
                drift.extend(mtu_drift(
                    "host interface",
                    &link.host,
                    link.host_mtu,
                    found.mtu,
                ));
                if let Some(bridge) = &link.bridge {
                    let master = host.link_by_name(bridge)?;
                    if master.is_none() || master.map(|m| m.index) != found.master {
                        drift.push(Finding::changed(format!(
                            "host interface {} is not a port of the bridge {bridge}",
                            link.host
                        )));
                    }
                }
            }
        }
    }
    if let Some(netns) = netns {
        let netlink = netns.netlink()?;
        for link in &record.links {
            match netlink.link_by_name(&link.guest)? {
                None => drift.push(Finding::gone(format!(
                    "guest interface {} is missing from the namespace",
                    link.guest
                ))),
                Some(found) if found.index != link.guest_index => {
                    drift.push(Finding::gone(format!(
                        "guest interface {} has index {}, recorded {}",
                        link.guest, found.index, link.guest_index
                    )))
                }
                Some(found) if found.mac != link.mac => drift.push(Finding::changed(format!(
                    "guest interface {} has MAC address {}, recorded {}",
                    link.guest, found.mac, link.mac
                ))),
                Some(found) => {
                    drift.extend(mtu_drift(
                        "guest interface",
                        &link.guest,
                        link.mtu,
                        found.mtu,
                    ));
                }
            }
        }
    }
    Ok(drift)
}

fn mtu_drift(what: &str, name: &str, recorded: Option<u32>, now: u32) -> Option<Finding> {
    recorded
        .filter(|&mtu| mtu != now)
        .map(|mtu| Finding::changed(format!("{what} {name} has MTU {now}, recorded {mtu}")))
}
