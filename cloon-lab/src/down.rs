//! `cloon-lab down`: everything of the lab gone, whatever state it is in (up, half up after a
//! failed or killed `up`, or already down), and nothing of another lab touched.
//!
//! What to bring down is the union of what the topology names and what the tools recorded in the
//! lab's state directory (a node removed from the file since its `up` still goes). First each
//! container, in parallel, by name (`cloon-run`, `cloon-spec`, `cloon-overlay` `down --name`),
//! then the lab's whole network at once: `cloon-netns down --all` deletes every host end and
//! bridge in one kernel request (one wait for the network's grace periods, not one per
//! interface), then the namespaces, whose point-to-point links go with them. Each tool acts
//! only on its own records in the lab's own state
//! directory, and counts what is already gone as done, so `down` is idempotent. If records are
//! still left after that (a tool killed at an unlucky moment), each tool's `gc` of the lab's state
//! directory removes what they name. Then the lab's directory goes, and `LABS` with the last lab.

use crate::jobs::parallel;
use crate::naming::Names;
use crate::plan::{self, Plan};
use crate::run::Tools;
use crate::state;
use crate::up::say;
use anyhow::bail;
use std::collections::BTreeSet;
use std::time::Instant;

/// What `down` removed.
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub links: Vec<String>,
    pub containers: Vec<String>,
    /// Whether the lab had any state at all.
    pub existed: bool,
}

/// Brings the lab down. `plan` is the topology's, when the file was given; `names` the lab's.
pub fn down(
    names: &Names,
    plan: Option<&Plan>,
    tools: &Tools,
    jobs: usize,
    quiet: bool,
) -> anyhow::Result<Report> {
    tools.require_all()?;
    let lab = names.lab();
    let started = Instant::now();
    let Some(lock) = state::lock(names, false)? else {
        say(
            quiet,
            format!(
                "{lab}: nothing to bring down: no state in {}",
                names.state_dir().display()
            ),
        );
        return Ok(Report::default());
    };
    let state_dir = names.state_dir();
    let recorded = state::recorded_names(names);
    let mut links: BTreeSet<String> = BTreeSet::new();
    let mut containers: BTreeSet<String> = BTreeSet::new();
    if let Some(plan) = plan {
        links.extend(plan.link_names());
        containers.extend(plan.lab.containers().map(|n| names.container(&n.name)));
    }
    for r in recorded {
        if state::is_link_record(names, &r) {
            links.insert(r);
        } else if !links.contains(&r) {
            containers.insert(r);
        }
    }
    let links: Vec<String> = links.into_iter().collect();
    let containers: Vec<String> = containers.into_iter().collect();
    // The impairments first (their relays hold packet sockets on the links' host ends): each
    // from its record in `.lab/impair`, then any relay of this lab whose record was lost.
    let mut errors = crate::up::remove_impairments(names);
    // The containers (in parallel), then their network all at once: `cloon-netns down --all`
    // deletes every host end and bridge of the lab in one kernel request, so the lab waits for
    // the network's grace periods once, not once per container and link.
    let results = parallel(jobs, &containers, |c| {
        for p in plan::down_but_netns(state_dir, c) {
            tools.run_ok(&p)?;
        }
        anyhow::Ok(())
    });
    for (c, r) in containers.iter().zip(results) {
        if let Err(e) = r {
            errors.push(format!("{c}: {e:#}"));
        }
    }
    if let Err(e) = tools.run_ok(&plan::netns_down_all(state_dir)) {
        errors.push(format!("network: {e:#}"));
    }
    // A relay whose record went with a failed removal ends with its interfaces; stop any left.
    if let Err(e) = crate::impair::stop_orphans(state_dir) {
        errors.push(format!("netem relays left: {e:#}"));
    }
    let mut left = state::leftovers(names);
    if !left.is_empty() {
        say(
            quiet,
            format!(
                "{lab}: records left ({}): each tool's gc of {}",
                left.join(", "),
                state_dir.display()
            ),
        );
        for p in plan::gc(state_dir) {
            if let Err(e) = tools.run_ok(&p) {
                errors.push(format!("gc: {e:#}"));
            }
        }
        left = state::leftovers(names);
    }
    if !left.is_empty() || !errors.is_empty() {
        let mut msg = format!("down of lab {lab} is not complete:");
        for e in &errors {
            msg.push_str(&format!("\n  {e}"));
        }
        if !left.is_empty() {
            msg.push_str(&format!(
                "\n  {} still records: {}",
                state_dir.display(),
                left.join(", ")
            ));
        }
        msg.push_str(
            "\nrun it again; if that does not help, `cloon-lab inspect` shows what is left",
        );
        bail!(msg);
    }
    state::remove(names, &lock)?;
    say(
        quiet,
        format!(
            "{lab}: down in {:.1} s: {} container(s), {} link(s) removed",
            started.elapsed().as_secs_f64(),
            containers.len(),
            links.len()
        ),
    );
    Ok(Report {
        links,
        containers,
        existed: true,
    })
}
