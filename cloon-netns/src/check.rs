//! `check` and the record `show` prints: compare the record with the kernel.

use crate::link::Netlink;
use crate::namespace::{self, Namespace, Probe};
use crate::record::Record;
use crate::{PART, STAGE};
use cloon_core::{doc, host, Code, Error, Result, StateDir};
use std::path::Path;

/// The record of `name` (what `show` prints), or [`Code::Unknown`].
pub fn record(state: &StateDir, name: &str) -> Result<Record> {
    state.require(name, PART, "network namespace")
}

/// Runs `check`: the `netns` part as recorded if the kernel still matches the record, else a
/// [`Code::Drift`] error listing the differences.
pub fn check(state: &StateDir, name: &str) -> Result<doc::Netns> {
    let record = record(state, name)?;
    host::require_root(STAGE, "look inside network namespaces")?;
    let drift = differences(&record)?;
    if !drift.is_empty() {
        return Err(Error::new(
            Code::Drift,
            format!(
                "the namespace of {name} no longer matches its record: {}; \
                 run cloon-netns down, then up again",
                drift.join("; ")
            ),
        ));
    }
    Ok(record.to_part())
}

/// What differs between the record and the kernel, one sentence each.
fn differences(record: &Record) -> Result<Vec<String>> {
    let mut drift = Vec::new();
    let path = Path::new(&record.path);
    let netns = match namespace::probe(path)? {
        Probe::Missing => {
            drift.push(format!("the namespace file {} is missing", record.path));
            None
        }
        Probe::Stale => {
            drift.push(format!("{} is no longer a namespace", record.path));
            None
        }
        Probe::Namespace(inode) if inode != record.inode => {
            drift.push(format!(
                "{} is another namespace (inode {inode}, recorded {})",
                record.path, record.inode
            ));
            None
        }
        Probe::Namespace(_) => Some(Namespace::open(path)?),
    };
    let host = Netlink::connect()?;
    for link in &record.links {
        match host.link_by_name(&link.host)? {
            None => drift.push(format!("host interface {} is missing", link.host)),
            Some(found) if found.index != link.host_index => drift.push(format!(
                "host interface {} has index {}, recorded {}",
                link.host, found.index, link.host_index
            )),
            Some(_) => {}
        }
    }
    if let Some(netns) = netns {
        let inside = netns.run_inside(|| {
            let netlink = Netlink::connect()?;
            let mut drift = Vec::new();
            for link in &record.links {
                match netlink.link_by_name(&link.guest)? {
                    None => drift.push(format!(
                        "guest interface {} is missing from the namespace",
                        link.guest
                    )),
                    Some(found) if found.index != link.guest_index => drift.push(format!(
                        "guest interface {} has index {}, recorded {}",
                        link.guest, found.index, link.guest_index
                    )),
                    Some(found) if found.mac != link.mac => drift.push(format!(
                        "guest interface {} has MAC address {}, recorded {}",
                        link.guest, found.mac, link.mac
                    )),
                    Some(_) => {}
                }
            }
            Ok(drift)
        })?;
        drift.extend(inside);
    }
    Ok(drift)
}
