use clap::{Parser, Subcommand};
use cloon_core::cli::{self, Common};
use cloon_spec::{NameArgs, UpArgs, STAGE};
use std::process::ExitCode;

/// Writes the OCI bundle (config.json) of a container, as `crun spec` and the article's edits do,
/// and adds `bundle` to the cloon document read on stdin.
#[derive(Debug, Parser)]
#[command(name = "cloon-spec", version, args_conflicts_with_subcommands = true)]
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
    /// Write the bundle and add `bundle` to the document (the default)
    Up(UpArgs),
    /// Remove the bundle and its record; drop `bundle` from the document
    Down(NameArgs),
    /// Check that the recorded config.json is still there and parses
    Check(NameArgs),
    /// Print the record
    Show(NameArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let common = cli.common;
    match cli.cmd {
        None => cli::run_step(STAGE, |doc| cloon_spec::up(&cli.up, &common.state()?, doc)),
        Some(Cmd::Up(args)) => {
            cli::run_step(STAGE, |doc| cloon_spec::up(&args, &common.state()?, doc))
        }
        Some(Cmd::Down(args)) => {
            cli::run_step(STAGE, |doc| cloon_spec::down(&args, &common.state()?, doc))
        }
        Some(Cmd::Check(args)) => {
            cli::run_step(STAGE, |doc| cloon_spec::check(&args, &common.state()?, doc))
        }
        Some(Cmd::Show(args)) => cli::run_query(STAGE, || {
            cloon_spec::show(&args, &common.state()?, cli::read_input()?)
        }),
    }
}
