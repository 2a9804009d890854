//! cloon-run as a stage of the pipeline: what the skeleton ([`cloon_core::stage`]) needs of it,
//! its command line's texts, and its own verbs (exec, state, list).

use crate::{ExecArgs, RunRecord, StopArgs, UpArgs, RECORD, STAGE};
use cloon_core::doc::{Container, Document};
use cloon_core::gc::Report;
use cloon_core::stage::{Stage, Verdict};
use cloon_core::table::{self, Output};
use cloon_core::{cli, Result, StateDir};
use std::process::ExitCode;

/// The stage: step 5 of the article, the container.
#[derive(Debug)]
pub struct Run;

const AFTER_HELP: &str = "\
--explain says on stderr, before each action, the runtime command that does the same, with the
runtime and --root actually used: `crun --root R create --bundle B --pid-file P ID </dev/null
>/dev/null 2>>LOG`, `start`, a wait until its process runs the container's command, then a
check in /proc, once it sleeps or 20 ms later (--settle), that it still runs (a command that ended by then fails up with 102
and its exit status, the container deleted); exec: `crun --root R exec
[--tty] [--env K=V]... --cwd DIR [--user U:G] ID CMD...` (DIR: --cwd, else the bundle's
process.cwd), with --detach `crun --root R exec --detach ... </dev/null >/dev/null 2>>LOG`; down: `kill ID KILL`, a wait until its process ends (cloon-run waits on a
pidfd), `delete ID`. cloon's own records are said as notes. stdout stays the JSON
document. --dry-run says the commands and does nothing (root is not needed): the document's
container.pid is then 0 and its status empty, and a bundle not written yet (after cloon-spec
--dry-run) is not checked.

Cgroups follow the bundle (cloon-spec --cgroups writes the mode in config.json's annotation
org.cloon.cgroups): none (the default) runs crun with --cgroup-manager=disabled, so the container
has no cgroup of its own; cloon puts it in /cloon/ID/NAME in each hierarchy (ID names the state
directory) and down removes the parent /cloon/ID once no container is left in it; runtime leaves
the runtime's default (crun: /NAME). Whether the host is ready: cloon-lab doctor.

Examples:
  ... | cloon-spec | cloon-run > Cloon1.json
  cloon-run --bundle /run/cloon/Cloon1/bundle --name Cloon1 </dev/null
  cloon-run exec Cloon1 -- ip addr
  cloon-run exec -e LANG=C.UTF-8 --cwd /srv -u 1000:1000 Cloon1 -- ls
  cloon-run exec -d Cloon1 -- sleep 30               # in the background
  cloon-run state Cloon1                             # a table on a terminal, else JSON
  cloon-run state --json Cloon1 | jq .pid
  cloon-run show --name Cloon1                       # the record: KEY VALUE lines, or JSON
  cloon-run list                                     # a table on a terminal, else JSON
  cloon-run list --json | jq -r '.[].name'
  cloon-run down < Cloon1.json
  cloon-run --runtime runc --root /run/runc < bundle.json
  cloon-run --explain < bundle.json                   # the crun commands, on stderr
  { cloon-img create --dry-run --busybox bb.img | cloon-overlay --dry-run --name Cloon1 \\
    | cloon-spec --dry-run | cloon-run --dry-run; } 2>cloon1.sh   # the recipe as a script";

const GC_HELP: &str = "\
gc brings down the records whose container is gone, stopped, or was never recorded as started
(an up killed halfway), keeps running containers and those a running tool is working on, drops a
record whose id now names a container made from another bundle (that container stays), stops and
deletes the containers of crun's and runc's state directories (and of those the records name)
that no record names and whose bundle is under the state directory, and removes the logs no
record names and the empty state directories. A container whose name looks like cloon's but
whose bundle is elsewhere is never touched. With --dry-run it changes nothing and says the
commands it would run. The report is JSON on stdout: {stateDir, dryRun, found: [{kind, name,
why, removed}], kept: [{kind, name, why}]}; the exit status is the first failure's code, 0 when
none.

Examples:
  cloon-run gc --dry-run
  cloon-run gc";

/// cloon-run's own subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Verbs {
    /// Run a command in the container with this terminal: `cloon-run exec Cloon1 -- sh`
    Exec(ExecArgs),
    /// Print the runtime's state of the container: a table (NAME, STATUS, PID, BUNDLE,
    /// CREATED) when stdout is a terminal, else the runtime's JSON (so a pipe gets JSON)
    State {
        /// The container's name
        name: String,
        #[command(flatten)]
        output: Output,
    },
    /// Print cloon's containers with their live status: a table (NAME, STATUS, PID, BUNDLE, as
    /// `crun list`) when stdout is a terminal, else a JSON array (so a pipe gets JSON)
    List {
        #[command(flatten)]
        output: Output,
    },
}

impl Stage for Run {
    const TOOL: &'static str = STAGE;
    const RECORD: &'static str = RECORD;
    const WHAT: &'static str = "container";
    type Up = UpArgs;
    type Down = StopArgs;
    type Verbs = Verbs;
    type Part = Container;
    type Record = RunRecord;

    const ABOUT: &'static str = "Run the container of an OCI bundle with crun or runc, and add `container` to the document (step 5 of the article)";
    const AFTER_HELP: &'static str = AFTER_HELP;
    const GC_HELP: &'static str = GC_HELP;
    const ABOUTS: &'static [(&'static str, &'static str)] = &[
        (
            "up",
            "Create and start the container; add `container` to the document (the default)",
        ),
        (
            "down",
            "Kill and delete the container; drop `container` from the document",
        ),
        ("check", "Check that the container still exists and runs"),
    ];
    const UP_NAME: fn(&UpArgs) -> Option<&str> = |args| args.name.as_deref();
    const UP: fn(&StateDir, &UpArgs, Option<Document>) -> Result<Document> = crate::up;
    const DOWN: fn(&StateDir, &str, &Self::Down) -> Result<()> = crate::down_locked;
    const CHECK: fn(&StateDir, &str) -> Result<Self::Part> = crate::check;
    const JUDGE: fn(&StateDir, &str, &Self::Record) -> Result<Verdict> =
        |_, _, record| crate::gc::judge_record(record);

    fn down_unrecorded(
        state: &StateDir,
        name: &str,
        part: &Container,
        stop: &StopArgs,
    ) -> Result<()> {
        crate::down_unrecorded(state, name, part, stop)
    }

    fn gc_start(_state: &StateDir) -> Result<()> {
        crate::gc::start()
    }

    fn gc_more(state: &StateDir, report: &mut Report) -> Result<()> {
        crate::gc::more(state, report)
    }

    fn verb(state: &StateDir, verb: Verbs) -> ExitCode {
        match verb {
            Verbs::Exec(args) => match crate::exec(state, &args) {
                Ok(status) => ExitCode::from(u8::try_from(status).unwrap_or(1)),
                Err(e) => cli::fail(STAGE, &e),
            },
            Verbs::State { name, output } => table::run(
                STAGE,
                output,
                || crate::live_state(state, &name),
                |v| crate::state_table(&name, v),
            ),
            Verbs::List { output } => {
                table::run(STAGE, output, || crate::list(state), crate::list_table)
            }
        }
    }
}
