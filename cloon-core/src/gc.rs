//! What the `gc` subcommands of the tools share: the JSON report of what was found, removed and
//! kept, how it is printed, and the removal of the empty state directories a tool killed before
//! it wrote its first record leaves behind.
//!
//! A `gc` acts on what cloon's records and tags say is cloon's, never on names that merely look
//! alike. With `--dry-run` it changes nothing: the commands that would remove what it found are
//! said on stderr, and every found item has `"removed": false`.
//!
//! The report, on stdout:
//!
//! ```json
//! {"stateDir": "/run/cloon", "dryRun": false,
//!  "found": [{"kind": "container", "name": "K", "why": "partly gone: ...", "removed": true}],
//!  "kept":  [{"kind": "container", "name": "A", "why": "healthy"}]}
//! ```

use crate::cli;
use crate::error::{Error, Result};
use crate::explain;
use crate::state::StateDir;
use serde::Serialize;
use std::process::ExitCode;

/// What a `gc` found and did.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The state directory whose records were read.
    pub state_dir: String,
    /// Whether nothing was changed (`--dry-run`).
    pub dry_run: bool,
    /// What cloon left behind, each with whether it was removed.
    pub found: Vec<Item>,
    /// What `gc` looked at and left alone, and why.
    pub kept: Vec<Item>,
    /// The failures, whose messages are also in their items.
    #[serde(skip)]
    pub errors: Vec<Error>,
}

/// One thing a `gc` found or kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    /// What it is: `container`, `mount`, `lower`, `loop device`, `bundle`, `directory`, ...
    pub kind: &'static str,
    /// Its name or path.
    pub name: String,
    /// Why it was taken for a leftover, or kept.
    pub why: String,
    /// Whether it was removed (found items only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removed: Option<bool>,
    /// Why removing (or judging) it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Report {
    /// An empty report on `state`, in the mode in force.
    pub fn new(state: &StateDir) -> Report {
        Report {
            state_dir: state.root().display().to_string(),
            dry_run: !explain::acting(),
            ..Report::default()
        }
    }

    /// Records something looked at and left alone.
    pub fn keep(&mut self, kind: &'static str, name: &str, why: impl Into<String>) {
        self.kept.push(Item {
            kind,
            name: name.to_string(),
            why: why.into(),
            removed: None,
            error: None,
        });
    }

    /// Records a leftover and the outcome of removing it (`Ok(false)`: a dry run).
    pub fn found(
        &mut self,
        kind: &'static str,
        name: &str,
        why: impl Into<String>,
        outcome: Result<bool>,
    ) {
        let (removed, error) = match outcome {
            Ok(removed) => (removed, None),
            Err(e) => {
                let msg = e.to_string();
                self.errors.push(e);
                (false, Some(msg))
            }
        };
        self.found.push(Item {
            kind,
            name: name.to_string(),
            why: why.into(),
            removed: Some(removed),
            error,
        });
    }

    /// Records a failure to judge something, which is then left alone.
    pub fn failed(&mut self, kind: &'static str, name: &str, e: Error) {
        self.kept.push(Item {
            kind,
            name: name.to_string(),
            why: "cannot be judged".into(),
            removed: None,
            error: Some(e.to_string()),
        });
        self.errors.push(e);
    }
}

/// Runs a tool's `gc`: the report on stdout, even when removing something failed; then the first
/// failure's message on stderr and its code as the exit status. A `gc` that cannot start at all
/// (no root, no state directory) fails as any command does.
pub fn run(stage: &str, gc: impl FnOnce() -> Result<Report>) -> ExitCode {
    match gc() {
        Ok(report) => {
            let mut text = serde_json::to_string_pretty(&report).unwrap_or_default();
            text.push('\n');
            cli::print(&text);
            match report.errors.first() {
                None => ExitCode::SUCCESS,
                Some(e) => {
                    eprintln!("{stage}: error: {e}");
                    ExitCode::from(e.code.number())
                }
            }
        }
        Err(e) => cli::fail(stage, &e),
    }
}

/// The last pass of a `gc`: the container directories of the state root that are empty (a tool
/// killed between making the directory and writing its record leaves one) are removed, each
/// while nobody holds its lock. `rmdir` removes only an empty directory, so a record written
/// meanwhile stays.
pub fn empty_dirs(state: &StateDir, report: &mut Report) -> Result<()> {
    for name in state.names()? {
        let dir = state.dir(&name)?;
        // A directory cloon would not have made (open to others) is not ours to remove.
        let Ok(Some(fd)) = state.open_container(&name) else {
            continue;
        };
        let empty = crate::state::fs_at::list(std::os::fd::AsFd::as_fd(&fd))
            .is_ok_and(|entries| entries.is_empty());
        drop(fd);
        if !empty {
            continue;
        }
        let shown = dir.display().to_string();
        let why = "an empty state directory (a tool stopped before its first record)";
        if !explain::acting() {
            explain::step(&["rmdir", shown.as_str()]);
            report.found("directory", &shown, why, Ok(false));
            continue;
        }
        let Some(_lock) = state.try_lock(&name)? else {
            report.keep("directory", &shown, "in use: a tool is at work on it");
            continue;
        };
        explain::step(&["rmdir", shown.as_str()]);
        // `rmdir` removes only an empty directory: a record written meanwhile stays, and then it
        // was not a leftover after all.
        match state.remove_dir_if_empty(&name) {
            Ok(true) => report.found("directory", &shown, why, Ok(true)),
            Ok(false) => continue,
            Err(e) => report.found("directory", &shown, why, Err(e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::path::PathBuf;

    fn temp_root(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("cloon-gc-test-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        p
    }

    #[test]
    fn the_report_is_camel_case_json_without_empty_fields() {
        let st = StateDir::new(Some(std::path::Path::new("/run/cloon"))).unwrap();
        let mut r = Report::new(&st);
        r.keep("container", "A", "healthy");
        r.found("container", "K", "partly gone", Ok(true));
        r.found(
            "mount",
            "/m",
            "no record",
            Err(Error::new(crate::Code::TryAgain, "busy")),
        );
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["stateDir"], "/run/cloon");
        assert_eq!(v["dryRun"], false);
        assert_eq!(
            v["kept"][0],
            serde_json::json!({"kind": "container", "name": "A", "why": "healthy"})
        );
        assert_eq!(v["found"][0]["removed"], true);
        assert_eq!(v["found"][1]["removed"], false);
        assert_eq!(v["found"][1]["error"], "busy");
        assert!(v.get("errors").is_none());
        assert_eq!(r.errors.len(), 1);
    }

    #[test]
    fn empty_directories_go_and_others_stay() {
        let root = temp_root("empty");
        let st = StateDir::new(Some(&root)).unwrap();
        st.ensure_dir("E").unwrap();
        st.claim("F", "spec", &1).unwrap();
        fs::create_dir_all(root.join(".lowers")).unwrap();
        let mut r = Report::new(&st);
        empty_dirs(&st, &mut r).unwrap();
        assert_eq!(r.found.len(), 1, "{r:?}");
        assert_eq!(r.found[0].name, root.join("E").display().to_string());
        assert!(!root.join("E").exists());
        assert!(root.join("F/spec.json").exists());
        assert!(root.join(".lowers").exists(), "not a container directory");
        // A directory someone holds is kept.
        st.ensure_dir("G").unwrap();
        let held = st.lock("G").unwrap();
        let mut r = Report::new(&st);
        empty_dirs(&st, &mut r).unwrap();
        assert!(r.found.is_empty());
        assert_eq!(r.kept.len(), 1);
        drop(held);
        fs::remove_dir_all(&root).unwrap();
    }
}
