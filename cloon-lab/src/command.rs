//! Each verb of the command line, from parsed arguments to an exit status.
//!
//! Exit statuses: 0 done; 1 a lab operation failed (the message says what, and what was undone);
//! 7 the topology file has a mistake (nothing was done); 100 `doctor` found a missing
//! prerequisite; a command run by `exec` exits with its own status.

use crate::cli::{Cli, Place, Verb};
use crate::jobs::default_jobs;
use crate::naming::Names;
use crate::plan::Plan;
use crate::run::Tools;
use crate::topology::{Kind, Lab};
use crate::{doctor, down, graph, inspect, makefile, up};
use anyhow::{bail, Context as _};
use std::path::Path;
use std::process::ExitCode;

/// The exit status of a topology with a mistake (CNI's "invalid configuration").
pub const BAD_TOPOLOGY: u8 = 7;

/// A topology that cannot be used, as an error `run` turns into [`BAD_TOPOLOGY`].
#[derive(Debug)]
pub struct BadTopology(pub anyhow::Error);

impl std::fmt::Display for BadTopology {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.0)
    }
}

impl std::error::Error for BadTopology {}

/// Reads the topology and makes its plan; a mistake is a [`BadTopology`].
pub fn load(file: &Path, place: &Place) -> anyhow::Result<Plan> {
    let mut plan = read(file, place)?;
    plan.engine = crate::netem::resolve_engine(&plan, place.engine).0;
    Ok(plan)
}

/// [`load`] for a plan that is only printed (`makefile`, `script`): the kernel is not probed for
/// netem; the links are built for the relay, which works on every kernel, unless
/// `--engine kernel` asks for the kernel's netem.
fn load_printed(file: &Path, place: &Place) -> anyhow::Result<Plan> {
    use crate::impair::{Engine, EngineKind};
    let mut plan = read(file, place)?;
    plan.engine = match place.engine {
        Some(Engine::Kernel) => EngineKind::Kernel,
        _ => EngineKind::Relay,
    };
    Ok(plan)
}

fn read(file: &Path, place: &Place) -> anyhow::Result<Plan> {
    let lab =
        Lab::load(file, place.name.as_deref()).map_err(|e| anyhow::Error::new(BadTopology(e)))?;
    let mut plan = Plan::for_host(
        lab,
        place.host.as_deref(),
        &place.labs_dir,
        &place.cache_dir,
    )
    .map_err(|e| anyhow::Error::new(BadTopology(e)))?;
    plan.cgroups = place.cgroups;
    Ok(plan)
}

/// Writes `text` on standard output; a reader that went away (`cloon-lab inspect | head`) ends
/// the output quietly rather than in a panic.
pub fn out(text: &str) {
    use std::io::Write as _;
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(text.as_bytes()).and_then(|()| o.flush());
}

/// Runs one verb.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match dispatch(cli) {
        Err(e) if e.downcast_ref::<BadTopology>().is_some() => {
            eprintln!("cloon-lab: error: {e:#}");
            Ok(ExitCode::from(BAD_TOPOLOGY))
        }
        other => other,
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let tools = Tools::new();
    match cli.verb {
        Verb::Up {
            file,
            place,
            jobs,
            no_rollback,
            quiet,
            explain,
        } => {
            let plan = load(&file, &place)?;
            if explain {
                out(&crate::netem::explain_up(&plan, place.engine));
                return Ok(ExitCode::SUCCESS);
            }
            let opts = up::UpOptions {
                jobs: jobs.unwrap_or_else(default_jobs).max(1),
                rollback: !no_rollback,
                quiet,
            };
            up::up(&plan, &tools, &opts)?;
            if !quiet {
                let view = inspect::gather(&plan, &tools)?;
                out(&inspect::table(&view));
            }
            Ok(ExitCode::SUCCESS)
        }
        Verb::Down {
            file,
            place,
            jobs,
            quiet,
        } => {
            let jobs = jobs.unwrap_or_else(default_jobs).max(1);
            let plan = match &file {
                Some(f) => Some(load(f, &place)?),
                None => None,
            };
            let names = match (&plan, &place.name) {
                (Some(p), _) => p.names.clone(),
                (None, Some(n)) => {
                    crate::topology::check_lab_name(n)
                        .map_err(|e| anyhow::anyhow!("--name: {e}"))?;
                    Names::new(n, &place.labs_dir)
                }
                (None, None) => bail!("give the topology file, or the lab's --name"),
            };
            down::down(&names, plan.as_ref(), &tools, jobs, quiet)?;
            Ok(ExitCode::SUCCESS)
        }
        Verb::Inspect { file, place, json } => {
            let plan = load(&file, &place)?;
            tools.require_all()?;
            let view = inspect::gather(&plan, &tools)?;
            if json {
                out(&(serde_json::to_string_pretty(&view)? + "\n"));
            } else {
                out(&inspect::table(&view));
            }
            Ok(ExitCode::SUCCESS)
        }
        Verb::Exec {
            file,
            node,
            cmd,
            place,
        } => {
            let plan = load(&file, &place)?;
            match plan.lab.node(&node) {
                Some(n) if n.kind == Kind::Linux => {}
                Some(_) => bail!("{node} is a bridge: it runs nothing"),
                None => {
                    let known: Vec<&str> = plan.lab.containers().map(|n| n.name.as_str()).collect();
                    bail!(
                        "lab {} has no node {node} (its containers: {})",
                        plan.lab.name,
                        known.join(", ")
                    )
                }
            }
            let p = plan.exec_cmd(&node, &cmd);
            let c = &p.cmds[0];
            let path = tools.find(&c.program).with_context(|| {
                format!("{} not found next to cloon-lab nor in PATH", c.program)
            })?;
            let status = std::process::Command::new(path)
                .args(&c.args)
                .status()
                .with_context(|| format!("cannot run {}", c.program))?;
            Ok(ExitCode::from(
                status.code().map(|c| c.clamp(0, 255) as u8).unwrap_or(1),
            ))
        }
        Verb::Graph { file, place } => {
            let plan = load(&file, &place)?;
            tools.require_all()?;
            let view = inspect::gather(&plan, &tools)?;
            out(&graph::dot(&view));
            Ok(ExitCode::SUCCESS)
        }
        Verb::Doctor { json, runtime } => doctor::run(&tools, json, runtime.as_deref()),
        Verb::Netem {
            args,
            netem,
            place,
            explain,
            json,
        } => crate::netem::verb(&tools, &args, &netem, &place, explain, json),
        Verb::Capture {
            file,
            endpoint,
            write,
            count,
            place,
        } => {
            let plan = load(&file, &place)?;
            crate::netem::capture(&plan, &endpoint, write.as_deref(), count)
        }
        Verb::Makefile { file, place } => {
            let plan = load_printed(&file, &place)?;
            out(&makefile::makefile(&plan)?);
            Ok(ExitCode::SUCCESS)
        }
        Verb::Script { file, place } => {
            let plan = load_printed(&file, &place)?;
            out(&makefile::script(&plan)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}
