//! `down`: deletes what the records say cloon made, and only that. Idempotent: what is already
//! gone counts as done, and no record at all means nothing of cloon's is left.
//!
//! A name is a container's namespace (`netns.json`) or a point-to-point link (`link.json`, see
//! [`p2p`]). For a container: its host ends (each takes its guest end with it), the bridges cloon
//! made that no cloon port is left on, then the namespace if cloon created it.

use crate::action::Action;
use crate::bridge::{self, Bridges, Release};
use crate::namespace::{self, Probe};
use crate::p2p::{self, P2pRecord};
use crate::record::Record;
use crate::system::System;
use crate::{warn, PART, STAGE};
use cloon_core::{cli, explain, host, Document, Result, StateDir, Undo};
use std::path::Path;

/// Runs `down` for `name`: deletes what its records list, then the records.
pub fn down(state: &StateDir, name: &str) -> Result<()> {
    let netns = state.load::<Record>(name, PART)?;
    let link = state.load::<P2pRecord>(name, p2p::PART)?;
    if netns.is_none() && link.is_none() {
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
    Ok(())
}

/// `down` on the document: the name from `--name` or the document; the `netns` and `link` parts
/// removed from it.
pub fn down_document(
    state: &StateDir,
    name: Option<&str>,
    doc: Option<Document>,
) -> Result<Document> {
    let name = cli::pick_name(name, doc.as_ref(), STAGE)?;
    down(state, &name)?;
    let mut doc = doc.unwrap_or_default();
    doc.set_name(&name)?;
    doc.remove(PART);
    doc.remove(p2p::PART);
    Ok(doc)
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
            Some(found) if found.index == link.host_index => {
                actions.push(Action::LinkDel {
                    ns: None,
                    dev: link.host.clone(),
                    index: link.host_index,
                });
                leaving.push((link.host.clone(), link.host_index));
            }
            Some(found) => warn(&format!(
                "leaving interface {}: it is not the one cloon created (index {}, recorded {})",
                link.host, found.index, link.host_index
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
    if record.created && record.inode != 0 {
        match namespace::probe(Path::new(&record.path))? {
            Probe::Namespace(inode) if inode != record.inode => warn(&format!(
                "leaving {}: it is another namespace than the one cloon created",
                record.path
            )),
            Probe::Missing => {}
            Probe::Namespace(_) | Probe::Stale => actions.push(Action::NetnsDel {
                name: record.name.clone(),
                inode: record.inode,
            }),
        }
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
