//! cloon-spec: argument parsing over the library; the document goes stdin to stdout.

use clap::{Parser, Subcommand};
use cloon_core::cli::{self, Common, NameArgs};
use cloon_core::StateDir;
use cloon_spec::{UpArgs, PART, STAGE};
use std::process::ExitCode;

const AFTER_HELP: &str = "\
--explain says on stderr, before each action, the shell command that does the same: mkdir of the
bundle, its config.json written by `cat` from a here-document with the exact bytes, chmod; down:
rm -rf. cloon's own records are said as notes. stdout stays the JSON document. --dry-run says the
commands and does nothing (root is not needed); a root filesystem or network namespace that does
not exist yet (after --dry-run of the earlier steps) is not checked.

down refuses (error 11, nothing changed) while a live container made from the bundle runs;
bring it down first (cloon-run down).

Examples:
  cloon-img create --busybox bb.img | cloon-overlay --name Cloon1 | cloon-spec
  cloon-spec --rootfs ./rootfs --netns cloonix_1_1 --name Cloon1 </dev/null
  cloon-spec --cap-add SYS_ADMIN --env LANG=C.UTF-8 --bind /srv:/srv:ro --name C2 --rootfs ./rootfs -- /bin/sh
  cloon-spec down --name Cloon1
  cloon-spec --explain --rootfs ./rootfs --name Cloon1 </dev/null   # the steps, on stderr
  cloon-spec --dry-run --rootfs ./rootfs --name Cloon1 </dev/null   # the same, nothing written";

/// Writes the OCI bundle (config.json) of a container, as `crun spec` and the article's edits do,
/// and adds `bundle` to the cloon document read on stdin.
#[derive(Debug, Parser)]
#[command(
    name = "cloon-spec",
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
    /// Write the bundle and add `bundle` to the document (the default)
    Up(UpArgs),
    /// Remove the bundle and its record; drop `bundle` from the document
    Down(NameArgs),
    /// Check that the recorded config.json is still there and parses
    Check(NameArgs),
    /// Print the record
    Show(NameArgs),
    /// Remove what cloon-spec left behind (tools killed halfway, lost records), found by its
    /// records and its layout; print a JSON report of what was found, removed and kept
    #[command(after_help = GC_HELP)]
    Gc,
}

const GC_HELP: &str = "\
gc brings down the containers whose recorded config.json is missing or no longer parses (healthy
ones, those a running tool is working on, and those a live container uses are kept), and removes
the bundle directories (STATE/NAME/bundle) that no record names and no live container uses, and
the empty state directories. With --dry-run it changes nothing and says the commands it would
run. The report is JSON on stdout: {stateDir, dryRun, found: [{kind, name, why, removed}],
kept: [{kind, name, why}]}; the exit status is the first failure's code, 0 when none.

Examples:
  cloon-spec gc --dry-run
  cloon-spec gc";

fn main() -> ExitCode {
    let cli: Cli = cli::parse();
    let cmd = cli.cmd.unwrap_or(Cmd::Up(cli.up));
    cli.common.with_state(STAGE, |state| dispatch(state, cmd))
}

fn dispatch(state: &StateDir, cmd: Cmd) -> ExitCode {
    match cmd {
        Cmd::Up(args) => cli::run_step(STAGE, |doc| cloon_spec::up(state, &args, doc)),
        Cmd::Down(n) => cli::run_down(STAGE, PART, n.get(), |name| cloon_spec::down(state, name)),
        Cmd::Check(n) => {
            cli::run_check(STAGE, PART, n.get(), |name| cloon_spec::check(state, name))
        }
        Cmd::Show(n) => cli::run_show(STAGE, n.get(), |name| cloon_spec::record(state, name)),
        Cmd::Gc => cloon_core::gc::run(STAGE, || cloon_spec::gc::run(state)),
    }
}
