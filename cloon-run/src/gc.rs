//! `cloon-run gc`: finds what cloon-run left behind (a tool killed halfway, a container that
//! died, a record lost) and removes it. A container is cloon's when a record names it (its id in
//! its runtime's `--root`, made from the recorded bundle), or, without a record, when the
//! runtime says it was made from a bundle under the state directory; never because its name
//! looks like cloon's. Four passes:
//!
//! 1. every record whose container is gone, stopped, or never recorded as started (an `up`
//!    killed between `create` and its record's last write) is brought down by the same `down` as
//!    `cloon-run down`; a record whose id now names a container made from another bundle is
//!    dropped, and that container left alone; running containers, and records a running tool
//!    holds locked, are kept;
//! 2. every container of the runtimes' state directories (crun's and runc's own, and those the
//!    records name) that no record names and whose bundle is under the state directory (an
//!    orphan) is stopped and deleted;
//! 3. every `container.log` and `container.pid` no record names is removed;
//! 4. the empty state directories are removed.

use crate::runtime::{Runtime, State};
use crate::{stop_and_delete, RunRecord, Signal, LOG, PID_FILE, RECORD, STAGE};
use cloon_core::gc::Report;
use cloon_core::stage::Verdict;
use cloon_core::{explain, host, Result, StateDir};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long `gc` gives a container to stop before it kills it (it sends KILL first anyway).
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// What `gc` needs before it starts: root, to stop and delete containers.
pub fn start() -> Result<()> {
    if explain::acting() {
        host::require_root(STAGE, "stop and delete what cloon-run left")?;
    }
    Ok(())
}

/// Pass 1, for the skeleton's pass over the records: judges one record by the runtime's state of
/// the container of its id.
pub fn judge_record(rec: &RunRecord) -> Result<Verdict> {
    let live = rec.runtime()?.state(&rec.id)?;
    Ok(judge(rec, live.as_ref()))
}

/// Passes 2 and 3: the orphaned containers, then the logs and pid files no record names.
pub fn more(state: &StateDir, report: &mut Report) -> Result<()> {
    orphans(state, recorded_runtimes(state)?, report)?;
    logs(state, report)?;
    // The state directory's parent cgroup, once no container is left in it.
    // (Named after the state directory, which gc does not make when it is missing.)
    match state.open_root()? {
        Some(_) => crate::cgroup::remove_parent(state, &state.cgroup_parent()?),
        None => Ok(()),
    }
}

/// The runtimes the records name, by `--root`.
fn recorded_runtimes(state: &StateDir) -> Result<BTreeMap<PathBuf, Runtime>> {
    let mut runtimes = BTreeMap::new();
    for name in state.names()? {
        if let Ok(Some(rec)) = state.load::<RunRecord>(&name, RECORD) {
            if let Ok(rt) = rec.runtime() {
                runtimes.insert(rt.root.clone(), rt);
            }
        }
    }
    Ok(runtimes)
}

/// Judges a record by the runtime's state of the container of its id (`None`: no such
/// container).
pub fn judge(rec: &RunRecord, live: Option<&State>) -> Verdict {
    let Some(live) = live else {
        return Verdict::Down(format!(
            "partly gone: the container \"{}\" no longer exists in {}",
            rec.id, rec.root
        ));
    };
    if let Some(bundle) = live
        .bundle
        .as_deref()
        .filter(|b| Path::new(b) != Path::new(&rec.bundle))
    {
        return Verdict::Down(format!(
            "a stale record: the container \"{}\" of {} was made from {bundle}, not from the recorded {}; it is not cloon's and stays",
            rec.id, rec.root, rec.bundle
        ));
    }
    if live.status == "stopped" {
        return Verdict::Down(format!(
            "partly gone: the container \"{}\" has stopped",
            rec.id
        ));
    }
    if rec.pid == 0 {
        return Verdict::Down(format!(
            "its up never finished: the container \"{}\" is {}, never recorded as started",
            rec.id, live.status
        ));
    }
    if live.pid != rec.pid {
        return Verdict::Keep(format!(
            "{}, as process {}, not the recorded {}",
            live.status, live.pid, rec.pid
        ));
    }
    Verdict::Keep(format!("healthy: {} as process {}", live.status, live.pid))
}

/// The container whose bundle `path` is, in this state directory: `path` is exactly
/// `STATE/NAME/bundle` (a bundle of a state directory nested in this one is not ours).
fn container_of(state: &StateDir, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(state.root()).ok()?;
    let mut parts = rel.components();
    let name = parts.next()?.as_os_str().to_str()?.to_string();
    if parts.next()?.as_os_str() != "bundle" || parts.next().is_some() {
        return None;
    }
    cloon_core::name::container(&name).ok()?;
    Some(name)
}

/// The ids of the containers a runtime keeps in its `--root` (one directory each, for crun and
/// runc alike), sorted.
fn ids(root: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut ids: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    ids.sort();
    ids
}

/// Pass 2: the containers no record names whose bundle is under the state directory.
fn orphans(
    state: &StateDir,
    mut runtimes: BTreeMap<PathBuf, Runtime>,
    report: &mut Report,
) -> Result<()> {
    for name in ["crun", "runc"] {
        if let Ok(rt) = Runtime::select(Some(name), None) {
            runtimes.entry(rt.root.clone()).or_insert(rt);
        }
    }
    for (root, rt) in runtimes {
        for id in ids(&root) {
            // Its state, if the runtime can say it; a container it cannot describe is not
            // provably cloon's.
            let Ok(Some(live)) = rt.state(&id) else {
                continue;
            };
            let Some(bundle) = live.bundle.as_deref().map(PathBuf::from) else {
                continue;
            };
            let Some(name) = container_of(state, &bundle) else {
                continue;
            };
            let shown = format!("{id} ({})", root.display());
            let _lock = if explain::acting() {
                match state.try_lock(&name)? {
                    Some(lock) => Some(lock),
                    None if state.dir(&name)?.exists() => {
                        report.keep("container", &shown, "in use: a tool is at work on it");
                        continue;
                    }
                    None => None,
                }
            } else {
                None
            };
            if named_by_a_record(state, &id, &root)? {
                continue;
            }
            let why = format!(
                "made from {}, under the state directory, and no record names it",
                bundle.display()
            );
            let outcome =
                stop_and_delete(&rt, &id, Signal::Kill, STOP_TIMEOUT).map(|()| explain::acting());
            report.found("container", &shown, why, outcome);
        }
    }
    Ok(())
}

/// Whether a run record names the container `id` of the runtime root `root`.
fn named_by_a_record(state: &StateDir, id: &str, root: &Path) -> Result<bool> {
    let mut named = BTreeSet::new();
    for name in state.names()? {
        if let Ok(Some(rec)) = state.load::<RunRecord>(&name, RECORD) {
            named.insert((rec.id, PathBuf::from(rec.root)));
        }
    }
    Ok(named.contains(&(id.to_string(), root.to_path_buf())))
}

/// Pass 3: the container logs and pid files no record names.
fn logs(state: &StateDir, report: &mut Report) -> Result<()> {
    for name in state.names()? {
        for file in [LOG, PID_FILE] {
            orphan_file(state, &name, file, report)?;
        }
    }
    Ok(())
}

/// Removes the file `file` of the state directory of `name` if no record names it.
fn orphan_file(state: &StateDir, name: &str, file: &str, report: &mut Report) -> Result<()> {
    let dir = state.dir(name)?;
    let path = dir.join(file);
    if !path.exists() || dir.join(format!("{RECORD}.json")).exists() {
        return Ok(());
    }
    let shown = path.display().to_string();
    let kind = if file == LOG { "log" } else { "pid file" };
    let _lock = if explain::acting() {
        match state.try_lock(name)? {
            Some(lock) => Some(lock),
            None => {
                report.keep(kind, &shown, "in use: a tool is at work on it");
                return Ok(());
            }
        }
    } else {
        None
    };
    if dir.join(format!("{RECORD}.json")).exists() {
        return Ok(());
    }
    let outcome = if explain::step(&["rm", "-f", shown.as_str()]) {
        cloon_core::state::remove_file(&path).map(|()| true)
    } else {
        Ok(false)
    };
    report.found(kind, &shown, "no record names it", outcome);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(pid: i64) -> RunRecord {
        RunRecord {
            id: "K".into(),
            runtime: "crun".into(),
            program: "/usr/bin/crun".into(),
            root: "/run/crun".into(),
            bundle: "/run/cloon/K/bundle".into(),
            log: "/run/cloon/K/container.log".into(),
            pid,
            start_time: 0,
            cgroup: String::new(),
            cgroups: String::new(),
        }
    }

    fn live(status: &str, pid: i64, bundle: &str) -> State {
        State {
            id: "K".into(),
            pid,
            status: status.into(),
            bundle: Some(bundle.into()),
        }
    }

    fn downs(v: &Verdict) -> bool {
        matches!(v, Verdict::Down(_))
    }

    #[test]
    fn records_of_gone_stopped_unfinished_or_foreign_containers_go() {
        let ours = "/run/cloon/K/bundle";
        assert!(downs(&judge(&rec(42), None)));
        assert!(downs(&judge(&rec(42), Some(&live("stopped", 0, ours)))));
        // Killed between create (or start) and the record's last write.
        assert!(downs(&judge(&rec(0), Some(&live("created", 7, ours)))));
        assert!(downs(&judge(&rec(0), Some(&live("running", 7, ours)))));
        // Another container of that id: the record is stale.
        let v = judge(&rec(42), Some(&live("running", 42, "/elsewhere")));
        assert!(downs(&v));
        assert!(format!("{v:?}").contains("not cloon's"), "{v:?}");
    }

    #[test]
    fn running_containers_are_kept() {
        let ours = "/run/cloon/K/bundle";
        assert_eq!(
            judge(&rec(42), Some(&live("running", 42, ours))),
            Verdict::Keep("healthy: running as process 42".into())
        );
        assert!(!downs(&judge(&rec(42), Some(&live("running", 43, ours)))));
        let mut no_bundle = live("running", 42, ours);
        no_bundle.bundle = None;
        assert!(!downs(&judge(&rec(42), Some(&no_bundle))));
    }

    #[test]
    fn bundles_under_the_root_name_their_container() {
        let st = StateDir::new(Some(Path::new("/run/cloon"))).unwrap();
        assert_eq!(
            container_of(&st, Path::new("/run/cloon/K/bundle")).as_deref(),
            Some("K")
        );
        assert_eq!(container_of(&st, Path::new("/run/cloonx/K/bundle")), None);
        assert_eq!(container_of(&st, Path::new("/srv/K/bundle")), None);
        assert_eq!(container_of(&st, Path::new("/run/cloon")), None);
        // A bundle of a state directory nested in this one.
        assert_eq!(
            container_of(&st, Path::new("/run/cloon/lab/K/bundle")),
            None
        );
        assert_eq!(container_of(&st, Path::new("/run/cloon/K/bundle/x")), None);
    }
}
