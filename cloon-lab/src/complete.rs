//! The live values of cloon-lab's command line, for shell completion (see
//! [`cloon_core::complete`]): the labs of the labs directory for `--name`, and the nodes,
//! `NODE:IFACE` ends and hosts of the topology file typed before them, read at each TAB.

use crate::naming::DEFAULT_LABS_DIR;
use crate::topology::{check_lab_name, Kind, Lab};
use cloon_core::complete::{read_small, Reply, Request};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Topology files larger than this are not read at a TAB.
const MAX_TOPOLOGY: u64 = 4 << 20;

/// cloon-lab's [`cloon_core::complete::Live`].
pub fn live(request: &Request) -> Option<Reply> {
    let words = match request.id() {
        "name" => labs(&labs_dir(request)),
        "engine" => vec!["auto".into(), "kernel".into(), "relay".into()],
        "node" => nodes(&lab(request, request.positionals.first()?)?, request),
        "endpoint" => ends(&lab(request, request.positionals.first()?)?),
        "host" => {
            let file = request.positionals.first()?;
            lab(request, file)?
                .hosts
                .into_iter()
                .map(|h| h.name)
                .collect()
        }
        "args" => return netem_args(request),
        _ => return None,
    };
    Some(Reply::Words(words))
}

/// `netem FILE NODE:IFACE`, `netem show FILE [NODE:IFACE]`, `netem reset FILE NODE:IFACE`.
fn netem_args(request: &Request) -> Option<Reply> {
    let given = &request.positionals;
    let file_at = match given.first().map(String::as_str) {
        Some("show" | "reset") => 1,
        _ => 0,
    };
    if given.len() == file_at {
        return Some(if given.is_empty() {
            Reply::Files(vec!["show".into(), "reset".into()])
        } else {
            Reply::Files(Vec::new())
        });
    }
    if given.len() == file_at + 1 {
        return Some(Reply::Words(ends(&lab(request, &given[file_at])?)));
    }
    Some(Reply::Words(Vec::new()))
}

/// The lab of the topology file `file` (under `--name` if typed); `None` when it is no regular
/// file of at most [`MAX_TOPOLOGY`] bytes (a fifo or a device would hold the TAB) or not a
/// topology.
fn lab(request: &Request, file: &str) -> Option<Lab> {
    let path = Path::new(file);
    let text = String::from_utf8(read_small(path, MAX_TOPOLOGY)?).ok()?;
    let abs = std::path::absolute(path).ok()?;
    Lab::parse(&text, &abs, request.option("name")).ok()
}

/// The lab's containers, those of the host typed with `--host` if any.
fn nodes(lab: &Lab, request: &Request) -> Vec<String> {
    let host = request.option("host");
    lab.containers()
        .filter(|n| host.is_none() || n.host.as_deref() == host)
        .map(|n| n.name.clone())
        .collect()
}

/// The `NODE:IFACE` ends of the lab's links on its containers.
fn ends(lab: &Lab) -> Vec<String> {
    lab.links
        .iter()
        .flat_map(|l| l.ends.iter())
        .filter(|e| lab.node(&e.node).is_some_and(|n| n.kind == Kind::Linux))
        .map(|e| e.label())
        .collect()
}

/// The labs directory typed with `--labs-dir`, else `CLOON_LAB_DIR`, else the default.
fn labs_dir(request: &Request) -> PathBuf {
    request
        .path_option("labs_dir")
        .or_else(|| std::env::var_os("CLOON_LAB_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_LABS_DIR))
}

/// The labs with a state directory in `labs_dir`: a valid lab name whose cloon-lab directory,
/// `.lab`, is a directory of this user's (not a link), as `up` makes it.
fn labs(labs_dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(labs_dir) else {
        return Vec::new();
    };
    let uid = nix::unistd::geteuid().as_raw();
    entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| check_lab_name(name).is_ok())
        .filter(|name| {
            let mine = |p: PathBuf| {
                std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir() && m.uid() == uid)
            };
            mine(labs_dir.join(name)) && mine(labs_dir.join(name).join(".lab"))
        })
        .collect()
}
