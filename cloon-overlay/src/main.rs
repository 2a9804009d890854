//! cloon-overlay: attach the image read-only and mount a copy-on-write root filesystem over it.

use clap::{Parser, Subcommand};
use cloon_core::cli::{self, Common, NameArgs};
use cloon_core::StateDir;
use cloon_overlay::{UpArgs, PART, STAGE};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "cloon-overlay",
    version,
    args_conflicts_with_subcommands = true,
    about = "Attach an image read-only and mount a copy-on-write overlay over it (step 2 of the article)",
    after_help = "Examples:\n  cloon-img create --busybox bb.img | cloon-overlay --name Cloon1\n  cloon-overlay --image bb.img --name Cloon1 </dev/null\n  cloon-overlay down --name Cloon1\n  cloon-overlay check < Cloon1.json"
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
    /// Unmount, detach and remove the upper layer
    Down(NameArgs),
    /// Check that the mounts and the loop device are still as recorded
    Check(NameArgs),
    /// Print the record
    Show(NameArgs),
}

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
    }
}
