//! cloon-netns: argument parsing over the library; the document goes stdin to stdout.

use clap::{Parser, Subcommand};
use cloon_core::cli::{self, Common, NameArgs};
use cloon_core::StateDir;
use cloon_netns::{UpArgs, PART, STAGE};
use std::process::ExitCode;

/// Makes a named network namespace with veth pairs into it (step 3: ip netns add, veth, lo up).
#[derive(Debug, Parser)]
#[command(name = "cloon-netns", version, args_conflicts_with_subcommands = true)]
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
    /// Create the namespace and the veth pairs, add the `netns` part (the default).
    Up(UpArgs),
    /// Delete what `up` created, and remove the `netns` part.
    Down(NameArgs),
    /// Check that the namespace and its links still match the record.
    Check(NameArgs),
    /// Print the record of a container's namespace.
    Show(NameArgs),
}

fn main() -> ExitCode {
    let cli: Cli = cli::parse();
    let cmd = cli.cmd.unwrap_or(Cmd::Up(cli.up));
    cli.common.with_state(STAGE, |state| dispatch(state, cmd))
}

fn dispatch(state: &StateDir, cmd: Cmd) -> ExitCode {
    match cmd {
        Cmd::Up(args) => cli::run_step(STAGE, |doc| cloon_netns::up(state, &args, doc)),
        Cmd::Down(n) => cli::run_down(STAGE, PART, n.get(), |name| cloon_netns::down(state, name)),
        Cmd::Check(n) => {
            cli::run_check(STAGE, PART, n.get(), |name| cloon_netns::check(state, name))
        }
        Cmd::Show(n) => cli::run_show(STAGE, n.get(), |name| cloon_netns::record(state, name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        cli::try_parse_from(std::iter::once("cloon-netns").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn up_is_the_default_action() {
        let cli = parse(&[
            "--netns",
            "cloonix_1_1",
            "--veth",
            "a:eth0",
            "--veth",
            "b:eth1",
        ]);
        assert!(cli.cmd.is_none());
        assert_eq!(cli.up.netns.as_deref(), Some("cloonix_1_1"));
        assert_eq!(cli.up.veth, ["a:eth0", "b:eth1"]);
        let cli = parse(&["up", "--netns", "n", "--name", "C", "--state-dir", "/tmp/s"]);
        assert!(matches!(cli.cmd, Some(Cmd::Up(UpArgs { name: Some(ref n), .. })) if n == "C"));
        assert_eq!(
            cli.common.state_dir.as_deref(),
            Some(std::path::Path::new("/tmp/s"))
        );
    }

    #[test]
    fn subcommands_take_a_name() {
        let cli = parse(&["down", "--name", "Cloon1"]);
        assert!(
            matches!(cli.cmd, Some(Cmd::Down(NameArgs { name: Some(ref n) })) if n == "Cloon1")
        );
        assert!(matches!(
            parse(&["check"]).cmd,
            Some(Cmd::Check(NameArgs { name: None }))
        ));
        assert!(matches!(
            parse(&["show", "--name", "x"]).cmd,
            Some(Cmd::Show(_))
        ));
        assert!(cli::try_parse_from::<Cli, _, _>(["cloon-netns", "--netns", "n", "down"]).is_err());
        assert!(
            cli::try_parse_from::<Cli, _, _>(["cloon-netns", "down", "--veth", "a:b"]).is_err()
        );
        let cli = parse(&["--state-dir", "/tmp/s", "down", "--name", "C"]);
        assert!(matches!(cli.cmd, Some(Cmd::Down(_))));
        assert_eq!(
            cli.common.state_dir.as_deref(),
            Some(std::path::Path::new("/tmp/s"))
        );
    }
}
