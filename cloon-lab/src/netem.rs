//! `cloon-lab netem` and `cloon-lab capture`: a running lab's links impaired, changed, shown and
//! reset by their `NODE:IFACE`, and an interface captured inside its node's namespace.
//!
//! A link's impairment is recorded in the lab's state, `LAB/.lab/impair/LINK/` (see
//! [`crate::impair`]). Under the relay engine, only a link built as two veths from the host (a
//! point-to-point link with `netem:` in the topology, `netem: {}` included) can be impaired: a
//! plain point-to-point link is one veth pair, with no place for a relay.

use crate::capture::{self, CaptureOptions};
use crate::cli::{NetemFlags, Place};
use crate::command::{load, out};
use crate::impair::ns::host_has;
use crate::impair::{self, End, Engine, EngineKind, NetemChange};
use crate::plan::Plan;
use crate::run::Tools;
use crate::state;
use crate::topology::{Kind, Link};
use crate::up::{engine_of, make_impair_dir};
use anyhow::{bail, Context as _};
use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

/// The file in `.lab/` that records the engine `up` chose (a JSON string), so that later verbs
/// build the same picture of the lab's links. A `.json` of `.lab/`, which the generated
/// Makefile's and script's `down` remove with the others.
const ENGINE_FILE: &str = "engine.json";

/// The engine for `plan`'s links with `netem:` and why: the one asked for (`--engine`), else the
/// one the lab's `up` recorded, else `auto` resolved by [`impair::choose`]. A lab without
/// `netem:` needs none (no probe is made): the relay is assumed.
pub fn resolve_engine(plan: &Plan, asked: Option<Engine>) -> (EngineKind, String) {
    if let Some(e) = asked {
        if e != Engine::Auto {
            return impair::choose(e);
        }
    }
    if asked.is_none() {
        let recorded = std::fs::read_to_string(plan.names.lab_dir().join(ENGINE_FILE));
        match recorded.as_deref().map(|t| t.trim().trim_matches('"')) {
            Ok("kernel") => return (EngineKind::Kernel, "the lab's up chose it".into()),
            Ok("relay") => return (EngineKind::Relay, "the lab's up chose it".into()),
            _ => {}
        }
    }
    if !plan.has_netem() && asked.is_none() {
        return (EngineKind::Relay, "no link has netem:".into());
    }
    impair::choose(Engine::Auto)
}

/// Records the engine `up` builds the lab's links for.
pub fn record_engine(plan: &Plan) -> anyhow::Result<()> {
    let path = plan.names.lab_dir().join(ENGINE_FILE);
    std::fs::write(&path, format!("\"{}\"\n", plan.engine))
        .with_context(|| format!("cannot write {}", path.display()))
}

/// `up --explain`: the engine of the links with `netem:` and the equivalent commands.
pub fn explain_up(plan: &Plan, asked: Option<Engine>) -> String {
    let (kind, why) = resolve_engine(plan, asked);
    let mut s = String::new();
    if !plan.has_netem() {
        let _ = writeln!(s, "# lab {}: no link has netem:", plan.lab.name);
        return s;
    }
    let _ = writeln!(s, "# lab {}: {kind} engine ({why})", plan.lab.name);
    for l in plan.netem_links() {
        let _ = writeln!(s, "# link {}", l.label());
        if plan.is_relayed(l) {
            let _ = writeln!(
                s,
                "# built as two veths from the host ({} and {}), joined by the relay alone",
                plan.names.host_end(&l.ends[0].node, &l.ends[0].interface),
                plan.names.host_end(&l.ends[1].node, &l.ends[1].interface)
            );
        }
        match (plan.impair_ends(l), plan.impair_netem(l)) {
            (Ok(ends), Ok(n)) => {
                let dir = plan.names.impair_dir(&plan.names.link(l));
                for line in impair::explain(&ends, &n, kind, &dir) {
                    let _ = writeln!(s, "{line}");
                }
            }
            (Err(e), _) | (_, Err(e)) => {
                let _ = writeln!(s, "# cannot: {e:#}");
            }
        }
    }
    s
}

/// The link of `plan` that has the end `NODE:IFACE` (a container's).
fn find_link<'a>(plan: &'a Plan, endpoint: &str) -> anyhow::Result<&'a Link> {
    let (node, iface) = endpoint
        .split_once(':')
        .with_context(|| format!("{endpoint:?}: give the interface as NODE:IFACE"))?;
    match plan.lab.node(node) {
        Some(n) if n.kind == Kind::Linux => {}
        Some(_) => bail!("{node} is a bridge: name the container's end of the link"),
        None => bail!("lab {} has no node {node}", plan.lab.name),
    }
    plan.links_here()
        .find(|l| {
            l.ends
                .iter()
                .any(|e| e.node == node && e.interface == iface)
        })
        .with_context(|| format!("node {node} has no link on {iface}"))
}

/// The ends of `link` for an impairment that has no record yet: its two host ends when it was
/// built as two host veths (whatever the engine: the relay joins them); else, for the kernel
/// engine, the interfaces of the one veth pair (or the bridge port). Else an error that says how
/// to get a link the relay can impair.
fn new_ends(plan: &Plan, link: &Link, kind: EngineKind) -> anyhow::Result<(EngineKind, [End; 2])> {
    if let Some(e) = plan.tunnel_of(link).and_then(|t| t.local_end()) {
        // A link to another host: built for the relay (a veth from the node, the tunnel's end
        // on the host), the relay joins them; else the kernel's netem on the node's end.
        let relayed = host_has(&plan.names.host_end(&e.node, &e.interface));
        let mut p = plan.clone();
        p.engine = if relayed {
            EngineKind::Relay
        } else {
            EngineKind::Kernel
        };
        return Ok((p.engine, p.impair_ends(link)?));
    }
    let hosts: Vec<String> = link
        .ends
        .iter()
        .map(|e| plan.names.host_end(&e.node, &e.interface))
        .collect();
    if plan.is_p2p(link) && hosts.iter().all(|h| host_has(h)) {
        return Ok((
            EngineKind::Relay,
            [End::here(&hosts[0]), End::here(&hosts[1])],
        ));
    }
    if kind == EngineKind::Kernel {
        let mut p = plan.clone();
        p.engine = EngineKind::Kernel;
        return Ok((EngineKind::Kernel, p.impair_ends(link)?));
    }
    bail!(
        "link {} is one veth pair{}, which leaves no place for the relay (this kernel's engine \
         is the relay): declare `netem: {{}}` on the link in the topology so that it is built \
         for impairment (two veths from the host), then `cloon-lab down` and `up`; or, where \
         the kernel has netem, use --engine kernel",
        link.label(),
        if plan.is_p2p(link) {
            ""
        } else {
            " into a bridge"
        }
    )
}

/// `cloon-lab netem ...`.
pub fn verb(
    tools: &Tools,
    args: &[String],
    flags: &NetemFlags,
    place: &Place,
    explain: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    match args.first().map(String::as_str) {
        Some("show") => {
            let file = args.get(1).context("netem show FILE [NODE:IFACE]")?;
            if args.len() > 3 {
                bail!("netem show FILE [NODE:IFACE]");
            }
            let plan = load(Path::new(file), place)?;
            show(&plan, args.get(2).map(String::as_str), json)
        }
        Some("reset") => {
            let [_, file, endpoint] = args else {
                bail!("netem reset FILE NODE:IFACE");
            };
            let plan = load(Path::new(file), place)?;
            reset(&plan, tools, endpoint)
        }
        _ => {
            let [file, endpoint] = args else {
                bail!("netem FILE NODE:IFACE [--delay D] ... (or netem show, netem reset)");
            };
            let plan = load(Path::new(file), place)?;
            set(&plan, tools, endpoint, flags, place.engine, explain)
        }
    }
}

fn change_of(flags: &NetemFlags) -> anyhow::Result<NetemChange> {
    NetemChange::parse(
        flags.delay.as_deref(),
        flags.jitter.as_deref(),
        flags.loss.as_deref(),
        flags.rate.as_deref(),
        flags.corrupt.as_deref(),
        flags.duplicate.as_deref(),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))
}

/// How to run the relay of `link`: one way for a link to another host.
fn relay_options(tools: &Tools, plan: &Plan, link: &Link) -> impair::Options {
    impair::Options {
        relay_program: tools.find(impair::RELAY_PROGRAM),
        one_way: plan.tunnel_of(link).is_some(),
        ..impair::Options::default()
    }
}

/// Changes (or starts) the impairment of the link of `endpoint`.
fn set(
    plan: &Plan,
    tools: &Tools,
    endpoint: &str,
    flags: &NetemFlags,
    asked: Option<Engine>,
    explain: bool,
) -> anyhow::Result<ExitCode> {
    let link = find_link(plan, endpoint)?;
    let change = change_of(flags)?;
    let name = plan.names.link(link);
    let dir = plan.names.impair_dir(&name);
    let Some(_lock) = state::lock(&plan.names, false)? else {
        bail!("lab {} is not up", plan.lab.name);
    };
    let current = impair::status(&dir)?;
    let applied = match current {
        Some(st) if asked.is_none() || asked == Some(engine_of(st.engine)) => {
            let n = st.netem.changed(&change);
            if explain {
                out(&format!(
                    "# link {}: {} engine (applied)\n",
                    link.label(),
                    st.engine
                ));
                for line in impair::explain(&st.ends, &n, st.engine, &dir) {
                    out(&format!("{line}\n"));
                }
                return Ok(ExitCode::SUCCESS);
            }
            if st.ok {
                impair::change(&dir, &change)?
            } else {
                impair::apply_with(
                    &st.ends,
                    &n,
                    engine_of(st.engine),
                    &dir,
                    &relay_options(tools, plan, link),
                )?
            }
        }
        _ => {
            let (kind, why) = resolve_engine(plan, asked);
            let (kind, ends) = new_ends(plan, link, kind)?;
            let n = impair::Netem::default().changed(&change);
            if explain {
                out(&format!("# link {}: {kind} engine ({why})\n", link.label()));
                for line in impair::explain(&ends, &n, kind, &dir) {
                    out(&format!("{line}\n"));
                }
                return Ok(ExitCode::SUCCESS);
            }
            make_impair_dir(&dir)?;
            impair::apply_with(
                &ends,
                &n,
                engine_of(kind),
                &dir,
                &relay_options(tools, plan, link),
            )?
        }
    };
    eprintln!(
        "{}: link {}: netem {} ({} engine)",
        plan.lab.name,
        link.label(),
        applied.netem,
        applied.engine
    );
    Ok(ExitCode::SUCCESS)
}

/// No impairment on the link of `endpoint`: a relayed link keeps its relay as a plain wire (it
/// is the link); kernel netem is removed.
fn reset(plan: &Plan, tools: &Tools, endpoint: &str) -> anyhow::Result<ExitCode> {
    let link = find_link(plan, endpoint)?;
    let dir = plan.names.impair_dir(&plan.names.link(link));
    let Some(_lock) = state::lock(&plan.names, false)? else {
        bail!("lab {} is not up", plan.lab.name);
    };
    match impair::status(&dir)? {
        None => eprintln!("{}: link {}: no impairment", plan.lab.name, link.label()),
        Some(st) if st.engine == EngineKind::Relay => {
            impair::apply_with(
                &st.ends,
                &impair::Netem::default(),
                Engine::Relay,
                &dir,
                &relay_options(tools, plan, link),
            )?;
            eprintln!(
                "{}: link {}: no impairment (its relay stays, as a plain wire)",
                plan.lab.name,
                link.label()
            );
        }
        Some(_) => {
            impair::remove(&dir)?;
            let _ = std::fs::remove_dir(&dir);
            eprintln!("{}: link {}: netem removed", plan.lab.name, link.label());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One link's impairment, for `netem show` and `inspect`.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkImpair {
    pub link: String,
    pub ends: [String; 2],
    /// The topology's `netem:`, as written there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asked: Option<String>,
    /// What the engine records and finds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied: Option<impair::Status>,
}

impl LinkImpair {
    /// `relay, running` / `relay, dead` / `kernel, applied` / `not applied`.
    pub fn state(&self) -> String {
        match &self.applied {
            None => "not applied".into(),
            Some(st) => format!(
                "{}, {}",
                st.engine,
                match (st.engine, st.ok) {
                    (EngineKind::Relay, true) => "running",
                    (EngineKind::Relay, false) => "dead",
                    (EngineKind::Kernel, true) => "applied",
                    (EngineKind::Kernel, false) => "broken",
                }
            ),
        }
    }
}

/// The impairment of each link of `plan` that has `netem:` or a record.
pub fn gather(plan: &Plan) -> Vec<LinkImpair> {
    let mut out = Vec::new();
    for l in plan.links_here() {
        let dir = plan.names.impair_dir(&plan.names.link(l));
        let applied = impair::status(&dir).ok().flatten();
        if l.netem.is_none() && applied.is_none() {
            continue;
        }
        out.push(LinkImpair {
            link: plan.names.link(l),
            ends: [l.ends[0].label(), l.ends[1].label()],
            asked: l.netem.as_ref().map(|_| {
                plan.impair_netem(l)
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            }),
            applied,
        });
    }
    out
}

fn show(plan: &Plan, endpoint: Option<&str>, json: bool) -> anyhow::Result<ExitCode> {
    let mut rows = gather(plan);
    if let Some(ep) = endpoint {
        let link = plan.names.link(find_link(plan, ep)?);
        rows.retain(|r| r.link == link);
    }
    if json {
        out(&(serde_json::to_string_pretty(&rows)? + "\n"));
        return Ok(ExitCode::SUCCESS);
    }
    let mut s = String::new();
    let _ = writeln!(s, "{:<28} {:<28} {:<28} STATE", "LINK", "ASKED", "APPLIED");
    for r in &rows {
        let applied = r
            .applied
            .as_ref()
            .map(|a| a.netem.to_string())
            .unwrap_or_else(|| "-".into());
        let mut state = r.state();
        if let Some(p) = r.applied.as_ref().and_then(|a| a.relay.as_ref()) {
            let _ = write!(state, " (pid {})", p.pid);
        }
        if let Some(a) = &r.applied {
            for p in &a.problems {
                let _ = write!(state, "; {p}");
            }
        }
        let _ = writeln!(
            s,
            "{:<28} {:<28} {:<28} {state}",
            format!("{} {}", r.ends[0], r.ends[1]),
            r.asked.as_deref().unwrap_or("-"),
            applied
        );
    }
    out(&s);
    Ok(ExitCode::SUCCESS)
}

/// `cloon-lab capture FILE NODE:IFACE`: pcap of the interface, inside the node's namespace.
pub fn capture(
    plan: &Plan,
    endpoint: &str,
    write: Option<&Path>,
    count: Option<u64>,
) -> anyhow::Result<ExitCode> {
    let (node, iface) = endpoint
        .split_once(':')
        .with_context(|| format!("{endpoint:?}: give the interface as NODE:IFACE"))?;
    match plan.lab.node(node) {
        Some(n) if n.kind == Kind::Linux => {}
        Some(_) => bail!("{node} is a bridge: capture a container's end of its link"),
        None => bail!("lab {} has no node {node}", plan.lab.name),
    }
    let end = End::in_netns(plan.netns_path(node), iface);
    let opts = CaptureOptions {
        count,
        ..CaptureOptions::default()
    };
    let summary = match write {
        Some(path) => {
            let f = std::fs::File::create(path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            capture::run(&end, std::io::BufWriter::new(f), &opts)?
        }
        None => capture::run(&end, std::io::stdout().lock(), &opts)?,
    };
    eprintln!(
        "cloon-lab: {endpoint}: {} frames captured ({} dropped by the kernel)",
        summary.frames, summary.kernel_drops
    );
    Ok(ExitCode::SUCCESS)
}
