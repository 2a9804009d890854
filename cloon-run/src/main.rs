use clap::{Parser, Subcommand};
use cloon_core::cli::{self, Common};
use cloon_run::{DownArgs, ExecArgs, NameArgs, UpArgs, STAGE};
use std::process::ExitCode;

/// Runs the container of an OCI bundle with crun (or runc), as the article's `crun create`,
/// `crun exec`, `kill -9` and `crun delete` do, and adds `container` to the cloon document read
/// on stdin.
#[derive(Debug, Parser)]
#[command(name = "cloon-run", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    up: UpArgs,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Create and start the container; add `container` to the document (the default)
    Up(UpArgs),
    /// Kill and delete the container; drop `container` from the document
    Down(DownArgs),
    /// Run a command in the container with this terminal: `cloon-run exec Cloon1 -- sh`
    Exec(ExecArgs),
    /// Print the runtime's state of the container (JSON)
    State {
        /// The container's name
        name: String,
    },
    /// Print cloon's containers with their live status (JSON array)
    List,
    /// Check that the container still exists and runs
    Check(NameArgs),
    /// Print the record
    Show(NameArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let common = cli.common;
    match cli.cmd {
        None => cli::run_step(STAGE, |doc| cloon_run::up(&cli.up, &common.state()?, doc)),
        Some(Cmd::Up(args)) => {
            cli::run_step(STAGE, |doc| cloon_run::up(&args, &common.state()?, doc))
        }
        Some(Cmd::Down(args)) => {
            cli::run_step(STAGE, |doc| cloon_run::down(&args, &common.state()?, doc))
        }
        Some(Cmd::Check(args)) => {
            cli::run_step(STAGE, |doc| cloon_run::check(&args, &common.state()?, doc))
        }
        Some(Cmd::Show(args)) => cli::run_query(STAGE, || {
            cloon_run::show(&args, &common.state()?, cli::read_input()?)
        }),
        Some(Cmd::State { name }) => {
            cli::run_query(STAGE, || cloon_run::live_state(&name, &common.state()?))
        }
        Some(Cmd::List) => cli::run_query(STAGE, || cloon_run::list(&common.state()?)),
        Some(Cmd::Exec(args)) => match common.state().and_then(|st| cloon_run::exec(&args, &st)) {
            Ok(status) => ExitCode::from(u8::try_from(status).unwrap_or(1)),
            Err(e) => cli::fail(STAGE, &e),
        },
    }
}
