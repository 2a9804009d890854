//! `check` and `show`: compare the record with the kernel, print the record.

use crate::link::Netlink;
use crate::namespace::{self, Namespace, Probe};
use crate::record::{Record, STAGE};
use crate::TOOL;
use cloon_core::{cli, doc, host, Code, Document, Error, Result, StateDir};
use std::path::Path;

fn load(state: &StateDir, name: &str) -> Result<Record> {
    state.load::<Record>(name, STAGE)?.ok_or_else(|| {
        Error::new(
            Code::Unknown,
            format!(
                "cloon has no namespace recorded for {name}: bring it up first (cloon-netns up)"
            ),
        )
    })
}

/// Runs `check`: the document unchanged (or rebuilt from the record when none was given) if the
/// kernel still matches the record, else a [`Code::Drift`] error listing the differences.
pub fn check(state: &StateDir, name: Option<&str>, input: Option<Document>) -> Result<Document> {
    let name = cli::pick_name(name, input.as_ref(), TOOL)?;
    let record = load(state, &name)?;
    host::require_root(TOOL, "look inside network namespaces")?;
    let mut drift = Vec::new();
    if let Some(doc) = &input {
        match doc.get::<doc::Netns>(STAGE)? {
            None => drift.push("the document has no netns part".to_string()),
            Some(part) if part != record.to_part() => {
                drift.push("the document's netns part differs from the record".to_string())
            }
            Some(_) => {}
        }
    }
    drift.extend(differences(&record)?);
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
    Ok(input.unwrap_or_else(|| {
        let mut doc = Document::new();
        // The name was validated by pick_name and the document is empty: this cannot fail.
        let _ = doc.set_name(&name);
        doc.set(STAGE, &record.to_part());
        doc
    }))
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

/// Runs `show`: the record of `name`, as JSON.
pub fn show(state: &StateDir, name: &str) -> Result<serde_json::Value> {
    let record = load(state, name)?;
    serde_json::to_value(&record)
        .map_err(|e| Error::new(Code::Io, "cannot print the record").details(e))
}
