//! cloon-run: argument parsing over the library; the document goes stdin to stdout.

use clap::{Parser, Subcommand};
use cloon_core::cli::{self, Common, NameArgs};
use cloon_core::StateDir;
use cloon_run::{ExecArgs, StopArgs, UpArgs, PART, STAGE};
use std::process::ExitCode;

const AFTER_HELP: &str = "\
--explain says on stderr, before each action, the runtime command that does the same, with the
runtime and --root actually used: `crun --root R create --bundle B --pid-file P ID </dev/null
>/dev/null 2>>LOG`, `start`, a wait until its process runs the container's command, then a
check in /proc, 20 ms later, that it still runs (a command that ended by then fails up with 102
and its exit status, the container deleted); exec: `crun --root R exec
[--tty] ID CMD...`; down: `kill ID KILL`, a wait until its process ends (cloon-run waits on a
pidfd), `delete ID`. cloon's own records are said as notes. stdout stays the JSON
document. --dry-run says the commands and does nothing (root is not needed): the document's
container.pid is then 0 and its status empty, and a bundle not written yet (after cloon-spec
--dry-run) is not checked.

doctor checks the host: root, loop devices, overlayfs, veth, network namespaces, the runtime and
its version, the cgroup layout (crun refuses hybrid cgroups whose v2 hierarchy holds
controllers), mkfs.ext4, busybox-static, debootstrap, tar, zstd and graphviz, each with its fix.
It prints a table (--json: a JSON object) and exits with 100 when a required one is missing.

Examples:
  cloon-run doctor                                    # is this host ready? what to install
  ... | cloon-spec | cloon-run > Cloon1.json
  cloon-run --bundle /run/cloon/Cloon1/bundle --name Cloon1 </dev/null
  cloon-run exec Cloon1 -- ip addr
  cloon-run state Cloon1
  cloon-run list
  cloon-run down < Cloon1.json
  cloon-run --runtime runc --root /run/runc < bundle.json
  cloon-run --explain < bundle.json                   # the crun commands, on stderr
  { cloon-img create --dry-run --busybox bb.img | cloon-overlay --dry-run --name Cloon1 \\
    | cloon-spec --dry-run | cloon-run --dry-run; } 2>cloon1.sh   # the recipe as a script";

/// Runs the container of an OCI bundle with crun (or runc), as the article's `crun create`,
/// `crun exec`, `kill -9` and `crun delete` do, and adds `container` to the cloon document read
/// on stdin.
#[derive(Debug, Parser)]
#[command(
    name = "cloon-run",
    version,
    args_conflicts_with_subcommands = true,
    after_help = AFTER_HELP
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    up: UpArgs,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Create and start the container; add `container` to the document (the default)
    Up(UpArgs),
    /// Kill and delete the container; drop `container` from the document
    Down {
        #[command(flatten)]
        name: NameArgs,
        #[command(flatten)]
        stop: StopArgs,
    },
    /// Check that the container still exists and runs
    Check(NameArgs),
    /// Print the record
    Show(NameArgs),
    /// Run a command in the container with this terminal: `cloon-run exec Cloon1 -- sh`
    Exec(ExecArgs),
    /// Print the runtime's state of the container (JSON)
    State {
        /// The container's name
        name: String,
    },
    /// Print cloon's containers with their live status (JSON array)
    List,
    /// Remove what cloon-run left behind (tools killed halfway, containers that died, lost
    /// records), found by its records and by the bundles under the state directory; print a
    /// JSON report of what was found, removed and kept
    #[command(after_help = GC_HELP)]
    Gc,
    /// Check that this host has what cloon needs, and say how to fix what it lacks
    #[command(after_help = DOCTOR_EXAMPLES)]
    Doctor {
        /// Print a JSON object instead of the table
        #[arg(long)]
        json: bool,
        /// The OCI runtime to check: crun, runc or a path [default: crun]
        #[arg(long, value_name = "crun|runc|PATH")]
        runtime: Option<String>,
    },
}

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

const DOCTOR_EXAMPLES: &str = "\
The table has a line per check: ok, MISSING (required) or missing (optional: one feature needs
it), what was found, and the fix. The exit status is 0 when every required check passes, 100
otherwise. As root, veth and network namespaces are proven by making a veth pair in a throwaway
namespace, which vanishes at once.

Examples:
  cloon-run doctor
  cloon-run doctor --runtime runc
  cloon-run doctor --json | jq -r '.checks[] | select(.ok | not) | .fix'";

fn main() -> ExitCode {
    let cli: Cli = cli::parse();
    let cmd = cli.cmd.unwrap_or(Cmd::Up(cli.up));
    cli.common.with_state(STAGE, |state| dispatch(state, cmd))
}

fn dispatch(state: &StateDir, cmd: Cmd) -> ExitCode {
    match cmd {
        Cmd::Up(args) => cli::run_step(STAGE, |doc| cloon_run::up(state, &args, doc)),
        Cmd::Down { name, stop } => cli::run_down(STAGE, PART, name.get(), |name| {
            cloon_run::down(state, name, &stop)
        }),
        Cmd::Check(n) => cli::run_check(STAGE, PART, n.get(), |name| cloon_run::check(state, name)),
        Cmd::Show(n) => cli::run_show(STAGE, n.get(), |name| cloon_run::record(state, name)),
        Cmd::Exec(args) => match cloon_run::exec(state, &args) {
            Ok(status) => ExitCode::from(u8::try_from(status).unwrap_or(1)),
            Err(e) => cli::fail(STAGE, &e),
        },
        Cmd::State { name } => cli::run_query(STAGE, || cloon_run::live_state(state, &name)),
        Cmd::List => cli::run_query(STAGE, || cloon_run::list(state)),
        Cmd::Gc => cloon_core::gc::run(STAGE, || cloon_run::gc::run(state)),
        Cmd::Doctor { json, runtime } => {
            let report = cloon_run::doctor::run(runtime.as_deref());
            if json {
                let mut text = serde_json::to_string_pretty(&report).unwrap_or_default();
                text.push('\n');
                cli::print(&text);
            } else {
                cli::print(&report.table());
            }
            ExitCode::from(report.status())
        }
    }
}
