//! cloon-overlay: attach the image read-only and mount a copy-on-write root filesystem over it.

use clap::{Parser, Subcommand};
use cloon_core::cli::{self, Common, NameArgs};
use cloon_core::StateDir;
use cloon_overlay::{UpArgs, PART, STAGE};
use std::process::ExitCode;

const AFTER_HELP: &str = "\
Every container made from one image shares one read-only loop device and one read-only mount of
the image (the lower, STATE/.lowers/DEV-INO/lower, recorded in STATE/.lowers/DEV-INO.json): the
first container attaches and mounts it, the others mount only their overlay over it, and the last
one out unmounts it (the loop device goes with it). Who uses a lower is read from the mount table
(the overlays whose lowerdir it is), under a lock on its record, so a crash leaves no wrong count.

--explain says on stderr, before each action, the shell command that does the same (mkdir,
losetup, mount, umount, rm); stdout stays the JSON document. The loop device is held in the shell
variable $loop (`loop=$(losetup --read-only --find --show IMG)`), so the commands run as a
script; with --explain a note says which device it is. cloon's own records are said as notes.
--dry-run says the commands and does nothing (root is not needed): the document's overlay.loop is
then \"$loop\", and an image that does not exist yet (after cloon-img --dry-run) is not checked.

down refuses (error 11, nothing changed) while a live container uses the root filesystem: one
cloon-run recorded on it whose process still runs, or any process whose root is in it (a
container made by hand), in whatever mount namespace; bring the container down first.

Examples:
  cloon-img create --busybox bb.img | cloon-overlay --name Cloon1
  cloon-overlay --image bb.img --name Cloon1 </dev/null
  cloon-overlay down --name Cloon1
  cloon-overlay check < Cloon1.json
  cloon-overlay --explain --image bb.img --name Cloon1 </dev/null   # the steps, on stderr
  cloon-overlay down --dry-run --name Cloon1                         # what down would do
  cloon-overlay gc --dry-run                                         # what killed tools left";

#[derive(Debug, Parser)]
#[command(
    name = "cloon-overlay",
    version,
    args_conflicts_with_subcommands = true,
    about = "Attach an image read-only and mount a copy-on-write overlay over it (step 2 of the article)",
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
    /// Attach and mount (the default action)
    Up(UpArgs),
    /// Unmount the overlay, remove the upper layer, and the lower with its last user
    Down(NameArgs),
    /// Check that the mounts, the loop device and the shared lower are still as recorded
    Check(NameArgs),
    /// Print the record
    Show(NameArgs),
    /// Remove what cloon-overlay left behind (tools killed halfway, lost records), found by its
    /// records, its layout and its loop devices' tag; print a JSON report of what was found,
    /// removed and kept
    #[command(after_help = GC_HELP)]
    Gc,
}

const GC_HELP: &str = "\
gc brings down the containers whose recorded overlay is not mounted (healthy ones, those a
running tool is working on, and those a live container still uses are kept), unmounts what is
mounted under a container's overlay/ directory without a record to explain it, removes the
overlay/ directories no record names, unmounts and removes the shared lowers no overlay uses
(here, or as the root of a live process elsewhere), and detaches the loop devices cloon
attached to the images it knows of that nothing mounts: each carries the name
cloon:HASH:DEV-INO (HASH of the state directory), so a device attached to the same image by hand
is kept. With --dry-run it changes nothing and says the commands it would run. The report is
JSON on stdout: {stateDir, dryRun, found: [{kind, name, why, removed}], kept: [{kind, name,
why}]}; the exit status is the first failure's code, 0 when none.

Examples:
  cloon-overlay gc --dry-run
  cloon-overlay gc";

fn main() -> ExitCode {
    let cli: Cli = cli::parse();
    let cmd = cli.cmd.unwrap_or(Cmd::Up(cli.up));
    cli.common.with_state(STAGE, |state| dispatch(state, cmd))
}

fn dispatch(state: &StateDir, cmd: Cmd) -> ExitCode {
    match cmd {
        Cmd::Up(args) => cli::run_step(STAGE, |doc| cloon_overlay::up(state, &args, doc)),
        Cmd::Down(n) => cli::run_down(STAGE, PART, n.get(), |name| {
            cloon_overlay::down(state, name)
        }),
        Cmd::Check(n) => cli::run_check(STAGE, PART, n.get(), |name| {
            cloon_overlay::check(state, name)
        }),
        Cmd::Show(n) => cli::run_show(STAGE, n.get(), |name| cloon_overlay::record(state, name)),
        Cmd::Gc => cloon_core::gc::run(STAGE, || cloon_overlay::gc::run(state)),
    }
}
