//! `cloon-lab doctor`: can this host run labs?
//!
//! The host's checks are cloon-run's: cloon-lab runs `cloon-run doctor --json` (root, loop
//! devices, overlayfs, namespaces and veth, the runtime, the cgroup layout, mkfs.ext4, ...) and
//! reuses its report as it is, rather than keeping a second copy of those checks. Then what labs
//! need besides: the five tools themselves (next to cloon-lab or in `PATH`), `/run` for the labs'
//! state, the image cache writable, and make and bash for the generated Makefile and script
//! (cloon-run's report already covers busybox and Graphviz). Same output as cloon-run's: a table,
//! or `--json` (`{"ok", "runtime", "checks": [{name, ok, required, found, fix}]}`); exit status
//! 100 when a required check fails.

use crate::image::DEFAULT_CACHE_DIR;
use crate::run::{Cmd, Pipeline, Tools, TOOLS};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

/// One check, as cloon-run's doctor reports it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub required: bool,
    pub found: String,
    pub fix: String,
}

/// Every check.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub ok: bool,
    pub runtime: String,
    pub checks: Vec<Check>,
}

fn check(name: &str, ok: bool, required: bool, found: String, fix: &str) -> Check {
    Check {
        name: name.to_string(),
        ok,
        required,
        found,
        fix: if ok { String::new() } else { fix.to_string() },
    }
}

/// Runs every check.
pub fn report(tools: &Tools) -> Report {
    let mut checks = Vec::new();
    let mut runtime = "crun".to_string();
    for t in TOOLS {
        let found = tools.find(t);
        checks.push(check(
            t,
            found.is_some(),
            true,
            found
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "not next to cloon-lab nor in PATH".into()),
            "cargo build --release in the cloon repository and put target/release in PATH, or scripts/install",
        ));
    }
    if tools.find("cloon-run").is_some() {
        let p = Pipeline::new(vec![Cmd::new("cloon-run").args(["doctor", "--json"])]);
        match tools
            .run(&p)
            .ok()
            .and_then(|o| serde_json::from_str::<Report>(&o.stdout).ok())
        {
            Some(host) => {
                runtime = host.runtime;
                checks.extend(host.checks);
            }
            None => checks.push(check(
                "cloon-run doctor",
                false,
                true,
                "cloon-run doctor --json gave no report".into(),
                "run cloon-run doctor to see why",
            )),
        }
    }
    checks.push(check(
        "run",
        Path::new("/run").is_dir(),
        true,
        "/run holds the labs' state (/run/cloon/labs)".into(),
        "a tmpfs on /run, as every systemd host has",
    ));
    let cache = Path::new(DEFAULT_CACHE_DIR);
    let writable = cache
        .ancestors()
        .find(|a| a.exists())
        .is_some_and(|a| nix::unistd::access(a, nix::unistd::AccessFlags::W_OK).is_ok());
    checks.push(check(
        "image cache",
        writable,
        true,
        format!("{DEFAULT_CACHE_DIR} (or --cache-dir)"),
        "run as root, or give --cache-dir a directory you can write",
    ));
    for (prog, pkg, what) in [
        ("make", "make", "cloon-lab makefile"),
        ("bash", "bash", "the generated Makefile and script"),
    ] {
        let found = tools.find(prog);
        checks.push(check(
            prog,
            found.is_some(),
            false,
            match found {
                Some(p) => format!("{} (for {what})", p.display()),
                None => format!("missing (needed for {what})"),
            },
            &format!("apt-get install {pkg}"),
        ));
    }
    let cpus = crate::jobs::default_jobs();
    checks.push(check(
        "cpus",
        true,
        false,
        format!("{cpus}: up and down run {cpus} containers at once (--jobs)"),
        "",
    ));
    Report {
        ok: checks.iter().all(|c| c.ok || !c.required),
        runtime,
        checks,
    }
}

/// The table for people: a line per check, its fix under it.
pub fn table(r: &Report) -> String {
    let width = r.checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for c in &r.checks {
        let status = match (c.ok, c.required) {
            (true, _) => "ok",
            (false, true) => "MISSING",
            (false, false) => "missing",
        };
        let _ = writeln!(out, "{status:<8} {:<width$}  {}", c.name, c.found);
        if !c.fix.is_empty() {
            let _ = writeln!(out, "{:<8} {:<width$}  fix: {}", "", "", c.fix);
        }
    }
    let _ = writeln!(
        out,
        "{}",
        if r.ok {
            "this host can run labs"
        } else {
            "this host cannot run labs yet: fix what is MISSING"
        }
    );
    out
}

/// `cloon-lab doctor [--json]`.
pub fn run(tools: &Tools, json: bool) -> anyhow::Result<ExitCode> {
    let r = report(tools);
    if json {
        crate::command::out(&(serde_json::to_string_pretty(&r)? + "\n"));
    } else {
        crate::command::out(&table(&r));
    }
    Ok(if r.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(100)
    })
}
