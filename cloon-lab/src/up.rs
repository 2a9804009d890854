//! `cloon-lab up`: the whole lab, brought to what the topology says, changing only what is not
//! already so.
//!
//! 1. The images, each built once into the cache (`cloon-img create`).
//! 2. What exists, asked of the tools: `cloon-run list` (which containers run) and
//!    `cloon-netns check` of each container's namespace. A container that runs with its namespace
//!    intact is left alone. One with records but broken (its process died, its namespace or a
//!    veth was deleted behind cloon's back) is brought down by name and made again; one with no
//!    record is made. After a reboot `/run` is empty: every container is made again.
//! 3. The containers to make, in parallel (at most `--jobs` at once), each the pipeline
//!    `cloon-overlay | cloon-netns | cloon-spec | cloon-run` (its bridge ports made by its
//!    cloon-netns, each bridge by the first container that names it).
//! 4. The point-to-point links (`cloon-netns link`) whose record is missing or broken, or whose
//!    end's container was made again (its namespace, and so the link's end, is new).
//! 5. The `exec:` commands of each container made in this run (`cloon-run exec`, in order; the
//!    containers in parallel). A mark in the lab's state says they ran, so a second `up` does not
//!    run them twice.
//!
//! A failure at any step undoes what this `up` made (links first, then containers, each tool
//! `down` by name), leaving what was up before it as it was, and says what it undid; with
//! `--no-rollback` it leaves it, for `inspect`, and says that `down` removes it.

use crate::image;
use crate::impair;
use crate::jobs::parallel;
use crate::plan::Plan;
use crate::run::{Cmd, Pipeline, Tools};
use crate::state;
use crate::topology::Node;
use anyhow::bail;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Instant;

/// How `up` runs.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// Jobs at once.
    pub jobs: usize,
    /// Undo what this run made when it fails.
    pub rollback: bool,
    /// Say nothing on standard error but errors.
    pub quiet: bool,
}

/// What `up` did.
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub images_built: Vec<String>,
    pub nodes_made: Vec<String>,
    pub nodes_remade: Vec<String>,
    pub links_made: Vec<String>,
    /// The links whose impairment this run applied (their relay started).
    pub links_impaired: Vec<String>,
    pub execs_run: Vec<String>,
}

impl Report {
    pub fn changed_nothing(&self) -> bool {
        self.images_built.is_empty()
            && self.nodes_made.is_empty()
            && self.links_made.is_empty()
            && self.links_impaired.is_empty()
            && self.execs_run.is_empty()
    }
}

pub(crate) fn say(quiet: bool, msg: impl AsRef<str>) {
    if !quiet {
        eprintln!("{}", msg.as_ref());
    }
}

/// The containers the runtime runs, as `cloon-run list` says, by name.
pub(crate) fn running(tools: &Tools, plan: &Plan) -> anyhow::Result<BTreeMap<String, String>> {
    let p = Pipeline::new(vec![Cmd::new("cloon-run").args([
        "list",
        "--state-dir",
        &plan.names.state_dir().display().to_string(),
    ])]);
    let out = tools.run_ok(&p)?;
    let list: Vec<Value> = serde_json::from_str(&out.stdout).unwrap_or_default();
    Ok(list
        .iter()
        .filter_map(|c| {
            Some((
                c.get("name")?.as_str()?.to_string(),
                c.get("status")?.as_str().unwrap_or("").to_string(),
            ))
        })
        .collect())
}

/// Whether `cloon-netns check --name NAME` finds what the records say.
pub(crate) fn netns_check(tools: &Tools, plan: &Plan, name: &str) -> bool {
    let p = Pipeline::new(vec![Cmd::new("cloon-netns").args([
        "check",
        "--state-dir",
        &plan.names.state_dir().display().to_string(),
        "--name",
        name,
    ])]);
    tools.run(&p).is_ok_and(|o| o.ok)
}

/// Whether a document file exists and is no error document.
fn good_doc(path: &std::path::Path) -> bool {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .is_some_and(|d| d.get("error").is_none())
}

/// Brings the lab up. See the module's documentation.
pub fn up(plan: &Plan, tools: &Tools, opts: &UpOptions) -> anyhow::Result<Report> {
    tools.require_all()?;
    let lab = &plan.lab.name;
    let q = opts.quiet;
    let started = Instant::now();
    let lock =
        state::lock(&plan.names, true)?.ok_or_else(|| anyhow::anyhow!("no lab directory"))?;
    let mut report = Report::default();
    if let Some(spread) = &plan.spread {
        if let Err(e) = crate::spread::check_underlay(spread) {
            drop_if_empty(plan, &lock);
            return Err(e);
        }
    }
    if plan.has_netem() {
        crate::netem::record_engine(plan)?;
    }

    for entry in plan.builds() {
        if entry.is_built() {
            continue;
        }
        say(
            q,
            format!(
                "{lab}: image {}: building {}",
                entry.spec,
                entry.img.display()
            ),
        );
        let t = Instant::now();
        if let Err(e) = image::ensure(tools, entry) {
            drop_if_empty(plan, &lock);
            return Err(e);
        }
        say(
            q,
            format!(
                "{lab}: image {}: built in {:.1} s",
                entry.spec,
                t.elapsed().as_secs_f64()
            ),
        );
        report.images_built.push(entry.spec.clone());
    }

    // What is there. Objects the topology no longer names (a node removed from the file since
    // the last up) are left alone and said: `down` removes them with the rest.
    let expected: BTreeSet<String> = plan
        .lab
        .containers()
        .map(|n| plan.names.container(&n.name))
        .chain(plan.link_names())
        .collect();
    let strays: Vec<String> = state::recorded_names(&plan.names)
        .into_iter()
        .filter(|n| !expected.contains(n))
        .collect();
    if !strays.is_empty() {
        say(
            q,
            format!(
                "{lab}: the topology no longer names {}: left as they are (`cloon-lab down` removes them)",
                strays.join(", ")
            ),
        );
    }
    let live = running(tools, plan)?;
    let containers: Vec<&Node> = plan.lab.containers().collect();
    let healthy: Vec<bool> = parallel(opts.jobs, &containers, |n| {
        let c = plan.names.container(&n.name);
        good_doc(&plan.names.node_doc(&n.name))
            && live.get(&c).map(String::as_str) == Some("running")
            && netns_check(tools, plan, &c)
    });
    let mut to_make: Vec<(&Node, bool)> = Vec::new();
    for (n, ok) in containers.iter().zip(&healthy) {
        if *ok {
            continue;
        }
        let c = plan.names.container(&n.name);
        let recorded = plan.names.state_dir().join(&c).exists();
        to_make.push((n, recorded));
    }

    // The containers.
    let results = parallel(opts.jobs, &to_make, |(n, recorded)| {
        let t = Instant::now();
        let c = plan.names.container(&n.name);
        if *recorded {
            for p in plan.down_by_name(&c) {
                tools.run_ok(&p)?;
            }
        }
        let _ = std::fs::remove_file(plan.names.exec_mark(&n.name));
        tools.run_ok(&plan.node_up(n))?;
        anyhow::Ok(t.elapsed())
    });
    let mut failures = Vec::new();
    let mut made_nodes: Vec<&Node> = Vec::new();
    for ((n, recorded), r) in to_make.iter().zip(results) {
        match r {
            Ok(t) => {
                say(
                    q,
                    format!(
                        "{lab}: node {}: {} ({}) in {:.2} s",
                        n.name,
                        if *recorded {
                            "made again, it was broken"
                        } else {
                            "up"
                        },
                        plan.names.container(&n.name),
                        t.as_secs_f64()
                    ),
                );
                if *recorded {
                    report.nodes_remade.push(n.name.clone());
                }
                report.nodes_made.push(n.name.clone());
                made_nodes.push(n);
            }
            Err(e) => failures.push(format!("node {}: {e:#}", n.name)),
        }
    }
    // Whatever failed halfway has records: it is undone with the rest.
    let failed_nodes: Vec<&Node> = to_make
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| !made_nodes.iter().any(|m| m.name == n.name))
        .collect();
    if !failures.is_empty() {
        let all: Vec<&Node> = made_nodes.iter().chain(&failed_nodes).copied().collect();
        return Err(fail(plan, tools, opts, &lock, &failures, &all, &[]));
    }

    // The point-to-point links.
    let remade: BTreeSet<&str> = made_nodes.iter().map(|n| n.name.as_str()).collect();
    let links: Vec<_> = plan.p2p_links().collect();
    let link_work = parallel(opts.jobs, &links, |l| {
        let name = plan.names.link(l);
        let fresh_ends = l.ends.iter().any(|e| remade.contains(e.node.as_str()));
        if !fresh_ends && good_doc(&plan.names.link_doc(&name)) && netns_check(tools, plan, &name) {
            return Ok(None);
        }
        if plan.names.state_dir().join(&name).exists() {
            tools.run_ok(&plan.link_down(&name))?;
        }
        tools.run_ok(&plan.link_up(l))?;
        anyhow::Ok(Some(name))
    });
    let mut made_links = Vec::new();
    for (l, r) in links.iter().zip(link_work) {
        match r {
            Ok(Some(name)) => {
                say(q, format!("{lab}: link {}: up ({name})", l.label()));
                made_links.push(name);
            }
            Ok(None) => {}
            Err(e) => {
                failures.push(format!("link {}: {e:#}", l.label()));
                made_links.push(plan.names.link(l));
            }
        }
    }
    // This host's ends of the links and LANs to other hosts: one VXLAN interface each, once
    // the namespaces and bridges exist.
    let tunnels = plan.tunnels();
    let tunnel_work = parallel(opts.jobs, tunnels, |t| {
        let fresh = t
            .local_end()
            .is_some_and(|e| remade.contains(e.node.as_str()));
        if !fresh && good_doc(&plan.names.link_doc(&t.name)) && netns_check(tools, plan, &t.name) {
            return Ok(None);
        }
        if plan.names.state_dir().join(&t.name).exists() {
            tools.run_ok(&plan.link_down(&t.name))?;
        }
        tools.run_ok(&plan.tunnel_up(t))?;
        anyhow::Ok(Some(()))
    });
    for (t, r) in tunnels.iter().zip(tunnel_work) {
        let what = match t.link() {
            Some(l) => format!("link {}", l.label()),
            None => format!("LAN {}", t.name),
        };
        let to = t.remote_names();
        match r {
            Ok(Some(())) => {
                say(
                    q,
                    format!(
                        "{lab}: {what}: VXLAN {} to {} (VNI {}, MTU {})",
                        t.ifname(),
                        to,
                        t.vni,
                        t.mtu
                    ),
                );
                made_links.push(t.name.clone());
            }
            Ok(None) => {}
            Err(e) => {
                failures.push(format!("{what} to {to}: {e:#}"));
                made_links.push(t.name.clone());
            }
        }
    }
    report.links_made = made_links.clone();
    if !failures.is_empty() {
        return Err(fail(
            plan,
            tools,
            opts,
            &lock,
            &failures,
            &made_nodes,
            &made_links,
        ));
    }

    // The impairments: each link with `netem:`, once its two ends exist, before `exec:` runs.
    // One whose record holds (its relay runs, or its qdiscs are there) and whose ends were not
    // made again is left alone.
    let netem_links: Vec<_> = plan.netem_links().collect();
    let impair_work = parallel(opts.jobs, &netem_links, |l| {
        let name = plan.names.link(l);
        let dir = plan.names.impair_dir(&name);
        let fresh_ends =
            l.ends.iter().any(|e| remade.contains(e.node.as_str())) || made_links.contains(&name);
        if !fresh_ends && crate::impair::status(&dir).is_ok_and(|s| s.is_some_and(|s| s.ok)) {
            return Ok(None);
        }
        impair_link(plan, tools, l).map(Some)
    });
    for (l, r) in netem_links.iter().zip(impair_work) {
        match r {
            Ok(Some(applied)) => {
                say(
                    q,
                    format!(
                        "{lab}: link {}: netem {} ({} engine{})",
                        l.label(),
                        applied.netem,
                        applied.engine,
                        applied
                            .relay
                            .as_ref()
                            .map(|p| format!(", relay pid {}", p.pid))
                            .unwrap_or_default()
                    ),
                );
                report.links_impaired.push(plan.names.link(l));
            }
            Ok(None) => {}
            Err(e) => failures.push(format!("link {} netem: {e:#}", l.label())),
        }
    }
    if !failures.is_empty() {
        return Err(fail(
            plan,
            tools,
            opts,
            &lock,
            &failures,
            &made_nodes,
            &made_links,
        ));
    }

    // exec:, for every container whose mark is missing (those just made, and those whose exec
    // failed before).
    let exec_nodes: Vec<&Node> = containers
        .iter()
        .copied()
        .filter(|n| !n.exec.is_empty() && !plan.names.exec_mark(&n.name).exists())
        .collect();
    let exec_results = parallel(opts.jobs, &exec_nodes, |n| {
        let mut log = String::new();
        for (argv, p) in n.exec.iter().zip(plan.exec(n)) {
            let o = tools.run(&p)?;
            let shown = shlex::try_join(argv.iter().map(String::as_str)).unwrap_or_default();
            let _ = writeln!(log, "{lab}: node {}: exec {shown}", n.name);
            for line in o.stdout.lines().chain(o.stderr.lines()) {
                let _ = writeln!(log, "    {line}");
            }
            if !o.ok {
                bail!(
                    "exec `{shown}` failed with exit status {}{}",
                    o.status,
                    o.stderr
                        .lines()
                        .last()
                        .map(|l| format!(": {l}"))
                        .unwrap_or_default()
                );
            }
        }
        std::fs::write(plan.names.exec_mark(&n.name), "")?;
        anyhow::Ok(log)
    });
    for (n, r) in exec_nodes.iter().zip(exec_results) {
        match r {
            Ok(log) => {
                if !q {
                    eprint!("{log}");
                }
                report.execs_run.push(n.name.clone());
            }
            Err(e) => failures.push(format!("node {}: {e:#}", n.name)),
        }
    }
    if !failures.is_empty() {
        return Err(fail(
            plan,
            tools,
            opts,
            &lock,
            &failures,
            &made_nodes,
            &made_links,
        ));
    }
    if report.changed_nothing() {
        say(
            q,
            format!(
                "{lab}: nothing to do: its {} container(s) and {} link(s) are up",
                containers.len(),
                links.len()
            ),
        );
    } else {
        say(
            q,
            format!(
                "{lab}: up in {:.1} s: {} container(s) made, {} link(s) made",
                started.elapsed().as_secs_f64(),
                report.nodes_made.len(),
                report.links_made.len()
            ),
        );
    }
    Ok(report)
}

/// Applies `link`'s `netem:` with the plan's engine, recorded in the lab's state
/// (`.lab/impair/LINK`). The relay is the `cloon-lab-impair` found next to cloon-lab or on `PATH`.
pub(crate) fn impair_link(
    plan: &Plan,
    tools: &Tools,
    link: &crate::topology::Link,
) -> anyhow::Result<impair::Applied> {
    let ends = plan.impair_ends(link)?;
    let netem = plan.impair_netem(link)?;
    let dir = plan.names.impair_dir(&plan.names.link(link));
    make_impair_dir(&dir)?;
    let tunnel = plan.tunnel_of(link).is_some();
    let opts = impair::Options {
        relay_program: tools.find(impair::RELAY_PROGRAM),
        one_way: tunnel,
        ..impair::Options::default()
    };
    impair::apply_with(&ends, &netem, engine_of(plan.engine), &dir, &opts)
}

/// The engine to ask for, from the one the plan resolved.
pub(crate) fn engine_of(kind: impair::EngineKind) -> impair::Engine {
    match kind {
        impair::EngineKind::Kernel => impair::Engine::Kernel,
        impair::EngineKind::Relay => impair::Engine::Relay,
    }
}

/// Makes a link's impairment record directory (and `.lab/impair`), mode 0700.
pub(crate) fn make_impair_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| anyhow::anyhow!("cannot make {}: {e}", dir.display()))
}

/// Removes every impairment the lab's state records (stops its relays), each record directory
/// with it. Returns what failed.
pub(crate) fn remove_impairments(names: &crate::naming::Names) -> Vec<String> {
    let mut errors = Vec::new();
    let Ok(entries) = std::fs::read_dir(names.impair_root()) else {
        return errors;
    };
    let mut dirs: Vec<std::path::PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    dirs.sort();
    for d in dirs {
        match impair::remove(&d) {
            Ok(_) => {
                let _ = std::fs::remove_dir(&d);
            }
            Err(e) => errors.push(format!("netem of {}: {e:#}", d.display())),
        }
    }
    if let Err(e) = impair::stop_orphans(names.state_dir()) {
        errors.push(format!("netem relays left: {e:#}"));
    }
    let _ = std::fs::remove_dir(names.impair_root());
    errors
}

/// Removes the lab's directory when it holds nothing (an `up` that failed before making
/// anything).
fn drop_if_empty(plan: &Plan, lock: &state::LabLock) {
    if state::leftovers(&plan.names).is_empty() {
        let _ = state::remove(&plan.names, lock);
    }
}

/// Undoes what this run made (unless told not to) and says so, in the error returned.
fn fail(
    plan: &Plan,
    tools: &Tools,
    opts: &UpOptions,
    lock: &state::LabLock,
    failures: &[String],
    nodes: &[&Node],
    links: &[String],
) -> anyhow::Error {
    let lab = &plan.lab.name;
    let mut msg = format!("up of lab {lab} failed:");
    for f in failures {
        let _ = write!(msg, "\n  {f}");
    }
    let made: Vec<String> = nodes
        .iter()
        .map(|n| format!("node {}", n.name))
        .chain(links.iter().map(|l| format!("link {l}")))
        .collect();
    if made.is_empty() {
        drop_if_empty(plan, lock);
        let _ = write!(msg, "\nnothing was made");
        return anyhow::anyhow!(msg);
    }
    if !opts.rollback {
        let _ = write!(
            msg,
            "\nleft as it is, for `cloon-lab inspect`: {}; `cloon-lab down` removes it",
            made.join(", ")
        );
        return anyhow::anyhow!(msg);
    }
    let mut undo_errors = Vec::new();
    undo_errors.extend(remove_impairments(&plan.names));
    for l in links {
        if let Err(e) = tools.run_ok(&plan.link_down(l)) {
            undo_errors.push(format!("link {l}: {e:#}"));
        }
        let _ = std::fs::remove_file(plan.names.link_doc(l));
    }
    let outcomes = parallel(opts.jobs, nodes, |n| {
        let c = plan.names.container(&n.name);
        let mut errs = Vec::new();
        for p in plan.down_by_name(&c) {
            if let Err(e) = tools.run_ok(&p) {
                errs.push(format!("node {}: {e:#}", n.name));
            }
        }
        let _ = std::fs::remove_file(plan.names.node_doc(&n.name));
        let _ = std::fs::remove_file(plan.names.exec_mark(&n.name));
        errs
    });
    undo_errors.extend(outcomes.into_iter().flatten());
    if undo_errors.is_empty() {
        drop_if_empty(plan, lock);
        let _ = write!(msg, "\nrolled back what this up made: {}", made.join(", "));
    } else {
        let _ = write!(
            msg,
            "\nrolling back what this up made ({}) failed too: {}; `cloon-lab down` removes what is left",
            made.join(", "),
            undo_errors.join("; ")
        );
    }
    anyhow::anyhow!(msg)
}
