//! `cloon-netns`: argument parsing over the library; the document goes stdin to stdout.

use clap::{Args, Parser, Subcommand};
use cloon_core::cli::{self, Common};
use cloon_netns::{UpArgs, TOOL};
use std::process::ExitCode;

/// Makes a named network namespace with veth pairs into it (step 3: ip netns add, veth, lo up).
#[derive(Debug, Parser)]
#[command(name = "cloon-netns", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    action: Option<Action>,
    #[command(flatten)]
    up: UpFlags,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Create the namespace and the veth pairs, add the `netns` part (the default).
    Up(UpFlags),
    /// Delete what `up` created, and remove the `netns` part.
    Down(NameFlag),
    /// Check that the namespace and its links still match the record.
    Check(NameFlag),
    /// Print the record of a container's namespace.
    Show(NameFlag),
}

#[derive(Debug, Clone, Args)]
struct UpFlags {
    /// The namespace: a NAME to create under /run/netns, or the PATH of an existing one
    #[arg(long, value_name = "NAME|PATH")]
    netns: Option<String>,
    /// A veth pair: host end, guest end (inside the namespace), its addresses and MAC address
    #[arg(long, value_name = "HOST:GUEST[,addr=CIDR]...[,mac=MAC]")]
    veth: Vec<String>,
    /// The container's name [default: the document's, else the namespace's]
    #[arg(long, value_name = "CONTAINER")]
    name: Option<String>,
}

#[derive(Debug, Clone, Args)]
struct NameFlag {
    /// The container's name [default: the document's]
    #[arg(long, value_name = "CONTAINER")]
    name: Option<String>,
}

impl From<UpFlags> for UpArgs {
    fn from(f: UpFlags) -> UpArgs {
        UpArgs {
            netns: f.netns,
            veth: f.veth,
            name: f.name,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let common = cli.common;
    match cli.action.unwrap_or(Action::Up(cli.up)) {
        Action::Up(flags) => cli::run_step(TOOL, |doc| {
            cloon_netns::up(&common.state()?, &flags.into(), doc)
        }),
        Action::Down(f) => cli::run_step(TOOL, |doc| {
            cloon_netns::down(&common.state()?, f.name.as_deref(), doc)
        }),
        Action::Check(f) => cli::run_step(TOOL, |doc| {
            cloon_netns::check(&common.state()?, f.name.as_deref(), doc)
        }),
        Action::Show(f) => cli::run_query(TOOL, || {
            let name = cli::pick_name(f.name.as_deref(), None, TOOL)?;
            cloon_netns::show(&common.state()?, &name)
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("cloon-netns").chain(args.iter().copied())).unwrap()
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
        assert!(cli.action.is_none());
        assert_eq!(cli.up.netns.as_deref(), Some("cloonix_1_1"));
        assert_eq!(cli.up.veth, ["a:eth0", "b:eth1"]);
        let cli = parse(&["up", "--netns", "n", "--name", "C", "--state-dir", "/tmp/s"]);
        assert!(
            matches!(cli.action, Some(Action::Up(UpFlags { name: Some(ref n), .. })) if n == "C")
        );
        assert_eq!(
            cli.common.state_dir.as_deref(),
            Some(std::path::Path::new("/tmp/s"))
        );
    }

    #[test]
    fn subcommands_take_a_name() {
        let cli = parse(&["down", "--name", "Cloon1"]);
        assert!(
            matches!(cli.action, Some(Action::Down(NameFlag { name: Some(ref n) })) if n == "Cloon1")
        );
        assert!(matches!(
            parse(&["check"]).action,
            Some(Action::Check(NameFlag { name: None }))
        ));
        assert!(matches!(
            parse(&["show", "--name", "x"]).action,
            Some(Action::Show(_))
        ));
        assert!(Cli::try_parse_from(["cloon-netns", "--netns", "n", "down"]).is_err());
        assert!(Cli::try_parse_from(["cloon-netns", "down", "--veth", "a:b"]).is_err());
    }
}
