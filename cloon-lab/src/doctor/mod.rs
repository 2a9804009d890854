//! `cloon-lab doctor`: can this host run labs?
//!
//! The host's checks ([`host`]: root, loop devices, overlayfs, namespaces and veth, the runtime,
//! the cgroup layout, mkfs.ext4, busybox, debootstrap, tar, zstd, Graphviz), then what labs need
//! besides: the five tools themselves (next to cloon-lab or in `PATH`), `/run` for the labs'
//! state, the image cache writable, and make and bash for the generated Makefile and script. A
//! table, or `--json` (`{"ok", "runtime", "checks": [{name, ok, required, found, fix}]}`); exit
//! status 100 when a required check fails. Each tool still checks its own prerequisites when it
//! runs (cloon-run the cgroup layout crun needs, cloon-img mkfs.ext4, ...).

use crate::image::DEFAULT_CACHE_DIR;
use crate::run::{Tools, TOOLS};
use std::path::Path;
use std::process::ExitCode;

pub mod host;

use host::{Check, Report};

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
pub fn report(tools: &Tools, runtime: Option<&str>) -> Report {
    let mut checks = Vec::new();
    for t in TOOLS {
        let found = tools.find(t);
        checks.push(check(
            t,
            found.is_some(),
            true,
            found
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "not next to cloon-lab nor in PATH".into()),
            "cargo build --release in the cloon repository and put target/$(rustc --print host-tuple)/release in PATH, or scripts/install",
        ));
    }
    let host = host::run(runtime);
    let runtime_name = host.runtime;
    checks.extend(host.checks);
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
        runtime: runtime_name,
        checks,
    }
}

/// `cloon-lab doctor [--json]`.
pub fn run(tools: &Tools, json: bool, runtime: Option<&str>) -> anyhow::Result<ExitCode> {
    let r = report(tools, runtime);
    if json {
        crate::command::out(&(serde_json::to_string_pretty(&r)? + "\n"));
    } else {
        crate::command::out(&r.table());
    }
    Ok(if r.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(100)
    })
}
