//! cloon-netns as a stage of the pipeline: what the skeleton ([`cloon_core::stage`]) needs of it,
//! its command line's texts, and its own verb (`link`).
//!
//! A container's state directory holds its namespace's record (`netns.json`, the stage's
//! record); a point-to-point link's holds the link's (`link.json`), whose part of the document is
//! `link`; a VXLAN end's holds `vxlan.json`, whose part is `vxlan`: `down`, `check`, `show` and
//! `gc` handle the three.

use crate::check::{self, Shown};
use crate::p2p::{self, P2pRecord};
use crate::record::Record;
use crate::vxlan::{self, VxlanRecord};
use crate::{LinkArgs, UpArgs, VxlanArgs, PART, STAGE};
use cloon_core::doc::{Document, Netns};
use cloon_core::gc::Report;
use cloon_core::stage::{NoFlags, Stage, Verdict};
use cloon_core::{cli, explain, Result, StateDir};
use std::process::ExitCode;

/// The stage: step 3 of the article, the private IP stack.
#[derive(Debug)]
pub struct Net;

const EXAMPLES: &str = "\
Examples:
  # The article's namespace: eth0 made inside it, vgt_1_1_0 on the host, an address on each end
  cloon-netns --netns cloonix_1_1 --veth vgt_1_1_0:eth0,addr=10.0.0.2/24,host-addr=10.0.0.1/24 </dev/null

  # Two containers on one LAN: their host ends join the bridge lan1, made by the first and
  # deleted with its last cloon port (a bridge that existed before is joined, never deleted)
  cloon-netns --netns cloonix_1_1 --name Cloon1 --veth vgt_1_1_0:eth0,addr=10.1.0.1/24,bridge=lan1 </dev/null
  cloon-netns --netns cloonix_1_2 --name Cloon2 --veth vgt_1_2_0:eth0,addr=10.1.0.2/24,addr=fd00::2/64,mac=02:00:0a:01:00:02,bridge=lan1 </dev/null

  # A point-to-point link between two existing namespaces, no end on the host
  cloon-netns link --name wire1 cloonix_1_1:eth1,addr=10.9.0.1/30,mtu=9000 cloonix_1_2:eth1,addr=10.9.0.2/30,mtu=9000 </dev/null

  # A link to a container on another host, over VXLAN (run the same on the other host, with the
  # addresses swapped): eth1 is made inside cloonix_1_1, its UDP socket on this host, port 4789
  cloon-netns vxlan --name wan1 --vni 42 --local 192.168.99.1 --dev eth0 --remote 192.168.99.2 cloonix_1_1:eth1,addr=10.42.0.1/30 </dev/null

  # The LAN lan1 spanning three hosts: on each, one VXLAN port of the bridge lan1, the two
  # other hosts as remotes (frames with no known destination go to both, learning finds the rest)
  cloon-netns vxlan --name lan1-vx --vni 100 --dev eth0 --remote 192.168.99.2 --remote 192.168.99.3 vxl_lan1,bridge=lan1 </dev/null

  # The iproute2 commands that do the same: said and done (--explain), or only said (--dry-run)
  cloon-netns --dry-run --netns cloonix_1_3 --veth vgt_1_3_0:eth0,bridge=lan1 </dev/null

  # Undo, by name or with the document: links first, then the containers' namespaces
  cloon-netns down --name wan1; cloon-netns down --name lan1-vx
  cloon-netns down --name wire1
  cloon-netns down --name Cloon2; cloon-netns down --name Cloon1

  # What tools killed halfway left: list it (--dry-run), then remove it
  cloon-netns gc --dry-run
  cloon-netns gc

--veth options: addr=CIDR (repeatable), mac=MAC, mtu=N set the guest end; host-addr=CIDR
(repeatable), host-mac=MAC, host-mtu=N the host end; bridge=BR puts the host end in bridge BR.
Without --name, the container is named after the namespace. With --dry-run nothing is touched and
no record is written; the document gets the planned part, where a MAC address the kernel would
choose is \"\" (mac, hostMac).

vxlan: END is NS:IF[,addr=CIDR]...[,mac=MAC][,mtu=N] (IF made inside the namespace NS, learning
off: a point-to-point link to another host), IF,bridge=BR[,mtu=N] (IF made on the host as a
port of the bridge BR, learning on: a LAN spanning hosts) or IF[,mtu=N] (IF made on the host
alone, learning off: a link's end that a relay joins to a container's veth). The UDP socket is on
the host every way. Each --remote gets an all-zeros forwarding entry (bridge fdb append). The MTU is the
underlay's (--dev) less 50 bytes (70 over IPv6), 1450 without --dev; the UDP port (--port,
4789) must be open between the hosts. A remote with no route from this host is refused.

Every interface cloon-netns creates is created in its state directory's interface group, in the
very request that creates it: 1668050798 (0x636c6f6e, \"clon\" in ASCII) for the default
/run/cloon, and for any other state directory a number derived from its path (symbolic links
resolved), from 1073741824 to 2147483647, written in each record (`cloon-netns show` prints it;
--explain and --dry-run say it in the ip commands). Those on the host (host ends, bridges) then
get the alias cloon:RECORD, the record that owns them. `ip link show group 1668050798` lists the
default state directory's. down and gc delete an interface only when it has a recorded name and is
in the recorded group (and has the recorded index, once known): a look-alike is never touched.";

const GC_HELP: &str = "\
gc brings down the containers and links whose recorded objects are partly gone (as check finds
them; healthy ones and those a running cloon-netns is working on are kept), deletes the host's
interfaces in its state directory's group that no record names, deletes the bridges cloon made
that no record needs and no cloon port is left on, and removes the records of bridges that are
gone. A namespace file without a record is never touched.

gc acts on its own state directory's objects only, exactly: another state directory's interfaces
are in another group, and an alias cloon:ROOT/NAME/netns.json or cloon:ROOT/.bridges/NAME.json
belongs to the state directory ROOT alone, not to one that contains it (so gc of /x leaves
/x/lab's objects alone, and the other way round). An interface in its group whose alias names
another state directory's record is kept. One with no alias yet is taken for a leftover only
when no up or link of its state directory is at work (each holds the state directory shared,
with flock, while it makes interfaces); else it is kept, \"an up is at work\": run gc again.
Interfaces made by a cloon-netns older than per-state-directory groups are in the group
1668050798 whatever their state directory: there, gc of another state directory takes only those
whose alias names its records. With --dry-run it changes nothing and says the commands it would
run.

Examples:
  cloon-netns gc --dry-run
  cloon-netns gc";

/// cloon-netns's own subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Verbs {
    /// Make a point-to-point link: one veth pair with an end made in each of two namespaces
    #[command(
        after_help = "Example:\n  cloon-netns link --name wire1 cloonix_1_1:eth1,addr=10.9.0.1/30 \
                      cloonix_1_2:eth1,addr=10.9.0.2/30 </dev/null\n  \
                      cloon-netns down --name wire1"
    )]
    Link(LinkArgs),
    /// Make this host's VXLAN end of a link or LAN that crosses hosts: a VXLAN device inside a
    /// container's namespace, or as a port of a bridge of the host
    #[command(
        after_help = "The MTU is the underlay's (--dev) less 50 bytes (70 over IPv6), 1450 \
            without --dev. The UDP port must be open between the hosts.\n\n\
            Examples:\n  \
            cloon-netns vxlan --name wan1 --vni 42 --local 192.168.99.1 --dev eth0 \
            --remote 192.168.99.2 cloonix_1_1:eth1,addr=10.42.0.1/30 </dev/null\n  \
            cloon-netns vxlan --name lan1-vx --vni 100 --dev eth0 --remote 192.168.99.2 \
            --remote '[fd00::3]:4790' vxl_lan1,bridge=lan1 </dev/null\n  \
            cloon-netns down --name wan1"
    )]
    Vxlan(VxlanArgs),
}

/// `check` of a container's namespace record.
fn check_netns(state: &StateDir, name: &str) -> Result<Netns> {
    let record = state.require::<Record>(name, PART, Net::WHAT)?;
    check::check(name, &record)
}

impl Stage for Net {
    const TOOL: &'static str = STAGE;
    const RECORD: &'static str = PART;
    const WHAT: &'static str = "network namespace";
    const KIND: &'static str = "container";
    const OTHER_PARTS: &'static [&'static str] = &[p2p::PART, vxlan::PART];
    type Up = UpArgs;
    type Down = NoFlags;
    type Verbs = Verbs;
    type Part = Netns;
    type Record = Record;

    const ABOUT: &'static str = "Make a named network namespace with veth pairs into it, bridges, point-to-point links (step 3 of the article: ip netns add, veth, lo up)";
    const AFTER_HELP: &'static str = EXAMPLES;
    const GC_HELP: &'static str = GC_HELP;
    const ABOUTS: &'static [(&'static str, &'static str)] = &[
        (
            "up",
            "Create the namespace and the veth pairs, add the `netns` part (the default)",
        ),
        (
            "down",
            "Delete what `up` (or `link`) created, and remove its part from the document",
        ),
        (
            "check",
            "Check that the namespace and its links (or a link, or a VXLAN end) still match the record",
        ),
        (
            "show",
            "Print the record of a container's namespace, of a link, or of a VXLAN end: KEY VALUE \
             lines on a terminal, else JSON (--json, --table to choose)",
        ),
    ];
    const UP_NAME: fn(&UpArgs) -> Option<&str> = |args| args.name.as_deref();
    const UP: fn(&StateDir, &UpArgs, Option<Document>) -> Result<Document> = crate::up;
    const DOWN: fn(&StateDir, &str, &Self::Down) -> Result<()> =
        |state, name, _| crate::down::down_locked(state, name);
    const CHECK: fn(&StateDir, &str) -> Result<Self::Part> = check_netns;
    const JUDGE: fn(&StateDir, &str, &Self::Record) -> Result<Verdict> =
        |_, _, record| Ok(crate::gc::verdict(&check::differences(record)?));

    fn down_unrecorded(_: &StateDir, _: &str, part: &Netns, _: &NoFlags) -> Result<()> {
        crate::down::unrecorded(part)
    }

    fn check_document(
        state: &StateDir,
        name: Option<&str>,
        doc: Option<Document>,
    ) -> Result<Document> {
        check::check_document(state, name, doc)
    }

    fn show(state: &StateDir, name: &str) -> Result<serde_json::Value> {
        let shown: Shown = check::record(state, name)?;
        Ok(serde_json::to_value(shown).unwrap_or_default())
    }

    fn gc_start(_state: &StateDir) -> Result<()> {
        crate::gc::start()
    }

    fn has_strays(state: &StateDir, name: &str) -> Result<bool> {
        Ok(state.has_record(name, p2p::PART)? || state.has_record(name, vxlan::PART)?)
    }

    /// A point-to-point link's record, or a VXLAN end's, judged as a container's is.
    fn strays(state: &StateDir, name: &str, report: &mut Report) -> Result<()> {
        let (kind, judged) = if let Some(record) = state.load::<P2pRecord>(name, p2p::PART)? {
            ("link", p2p::differences(&record))
        } else if let Some(record) = state.load::<VxlanRecord>(name, vxlan::PART)? {
            ("vxlan", vxlan::differences(&record))
        } else {
            return Ok(());
        };
        match judged.map(|f| crate::gc::verdict(&f)) {
            Err(e) => report.failed(kind, name, e),
            Ok(Verdict::Keep(why)) => report.keep(kind, name, why),
            Ok(Verdict::Down(why)) => {
                let outcome = crate::down::down_locked(state, name).map(|()| explain::acting());
                report.found(kind, name, why, outcome);
            }
        }
        Ok(())
    }

    fn gc_more(state: &StateDir, report: &mut Report) -> Result<()> {
        crate::gc::more(state, report)
    }

    fn verb(state: &StateDir, verb: Verbs) -> ExitCode {
        match verb {
            Verbs::Link(args) => cli::run_step(STAGE, |doc| p2p::up(state, &args, doc)),
            Verbs::Vxlan(args) => cli::run_step(STAGE, |doc| vxlan::up(state, &args, doc)),
        }
    }

    fn down_all(state: &StateDir, names: &[String], _flags: &NoFlags) -> Result<()> {
        crate::down::down_all(state, names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloon_core::cli::NameArgs;
    use cloon_core::stage::Cmd;

    type Cli = cloon_core::stage::Cli<UpArgs, NoFlags, Verbs>;

    fn try_parse(args: &[&str]) -> std::result::Result<Cli, clap::Error> {
        let args = std::iter::once("cloon-netns").chain(args.iter().copied());
        cli::try_parse_command(cloon_core::stage::command::<Net>(), args)
    }

    fn parse(args: &[&str]) -> Cli {
        try_parse(args).unwrap()
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
            matches!(cli.cmd, Some(Cmd::Down { name: NameArgs { name: Some(ref n) }, .. }) if n == "Cloon1")
        );
        assert!(matches!(
            parse(&["check"]).cmd,
            Some(Cmd::Check(NameArgs { name: None }))
        ));
        assert!(matches!(
            parse(&["show", "--name", "x"]).cmd,
            Some(Cmd::Show(_))
        ));
        assert!(matches!(parse(&["gc"]).cmd, Some(Cmd::Gc)));
        assert!(parse(&["gc", "--dry-run"]).common.explain.dry_run);
        assert!(try_parse(&["--netns", "n", "down"]).is_err());
        assert!(try_parse(&["down", "--veth", "a:b"]).is_err());
        let cli = parse(&["--state-dir", "/tmp/s", "down", "--name", "C"]);
        assert!(matches!(cli.cmd, Some(Cmd::Down { .. })));
        assert_eq!(
            cli.common.state_dir.as_deref(),
            Some(std::path::Path::new("/tmp/s"))
        );
    }

    #[test]
    fn link_takes_a_name_and_exactly_two_ends() {
        let cli = parse(&["link", "--name", "w", "a:eth1,addr=10.9.0.1/30", "b:eth1"]);
        let Some(Cmd::Verb(Verbs::Link(args))) = cli.cmd else {
            panic!("not a link: {cli:?}");
        };
        assert_eq!(args.name, "w");
        assert_eq!(args.ends, ["a:eth1,addr=10.9.0.1/30", "b:eth1"]);
        for bad in [
            &["link", "--name", "w", "a:eth1"][..],
            &["link", "--name", "w", "a:e", "b:e", "c:e"],
            &["link", "a:e", "b:e"],
            &["--netns", "n", "link", "--name", "w", "a:e", "b:e"],
        ] {
            assert!(try_parse(bad).is_err(), "{bad:?}");
        }
        let cli = parse(&["--dry-run", "link", "--name", "w", "a:e", "b:e"]);
        assert!(cli.common.explain.dry_run);
    }

    #[test]
    fn vxlan_takes_a_name_a_vni_remotes_and_one_end() {
        let cli = parse(&[
            "vxlan",
            "--name",
            "w",
            "--vni",
            "42",
            "--remote",
            "10.0.0.2",
            "--remote",
            "[fd00::2]:4790",
            "--local",
            "10.0.0.1",
            "--dev",
            "eth0",
            "c1:eth1",
        ]);
        let Some(Cmd::Verb(Verbs::Vxlan(args))) = cli.cmd else {
            panic!("not a vxlan: {cli:?}");
        };
        assert_eq!(args.name, "w");
        assert_eq!(args.vni, "42");
        assert_eq!(args.port, "4789");
        assert_eq!(args.remote, ["10.0.0.2", "[fd00::2]:4790"]);
        assert_eq!(args.local.as_deref(), Some("10.0.0.1"));
        assert_eq!(args.dev.as_deref(), Some("eth0"));
        assert_eq!(args.end, "c1:eth1");
        for bad in [
            &["vxlan", "--name", "w", "--vni", "1", "c1:eth1"][..],
            &["vxlan", "--name", "w", "--vni", "1", "--remote", "10.0.0.2"],
            &["vxlan", "--vni", "1", "--remote", "10.0.0.2", "c1:eth1"],
            &["vxlan", "--name", "w", "--remote", "10.0.0.2", "c1:eth1"],
            &[
                "vxlan", "--name", "w", "--vni", "1", "--remote", "10.0.0.2", "a:e", "b:e",
            ],
            &[
                "vxlan", "--name", "w", "--vni", "1", "--remote", "x", "--colour", "c1:e",
            ],
        ] {
            assert!(try_parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_help_ends_with_examples() {
        let help = cloon_core::stage::command::<Net>()
            .render_long_help()
            .to_string();
        assert!(help.contains("Examples:"), "{help}");
        assert!(help.contains("bridge=lan1"), "{help}");
        assert!(help.contains("cloon-netns link --name wire1"), "{help}");
        assert!(help.contains("cloon-netns vxlan --name wan1"), "{help}");
        let group = format!("group {}", crate::tag::DEFAULT_GROUP);
        assert!(help.contains(&group), "{help}");
        assert!(help.contains("cloon-netns gc --dry-run"), "{help}");
    }
}
