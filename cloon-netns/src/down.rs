//! `down`: deletes what the record says cloon made, and only that. Idempotent: what is already
//! gone counts as done, and no record at all means nothing of cloon's is left.

use crate::link::Netlink;
use crate::namespace::{self, Probe};
use crate::record::Record;
use crate::{PART, STAGE};
use cloon_core::{host, Result, StateDir};
use std::path::Path;

/// Runs `down` for the container `name`: deletes what its record lists, then the record.
pub fn down(state: &StateDir, name: &str) -> Result<()> {
    if let Some(record) = state.load::<Record>(name, PART)? {
        host::require_root(STAGE, "delete network namespaces and interfaces")?;
        tear_down(&record)?;
        state.release(name, PART)?;
    }
    Ok(())
}

/// Deletes the host ends first (each takes its guest end with it at once; deleting the namespace
/// would destroy them only later), then the namespace if cloon created it and it is still there.
fn tear_down(record: &Record) -> Result<()> {
    if !record.links.is_empty() {
        let host = Netlink::connect()?;
        for link in &record.links {
            if let Some(found) = host.delete_if_same(&link.host, link.host_index)? {
                if found.index != link.host_index {
                    eprintln!(
                        "{STAGE}: leaving interface {}: it is not the one cloon created \
                         (index {}, recorded {})",
                        link.host, found.index, link.host_index
                    );
                }
            }
        }
    }
    if record.created && record.inode != 0 {
        if let Probe::Namespace(inode) = namespace::remove(Path::new(&record.path), record.inode)? {
            if inode != record.inode {
                eprintln!(
                    "{STAGE}: leaving {}: it is another namespace than the one cloon created",
                    record.path
                );
            }
        }
    }
    Ok(())
}
