//! cloon-netns: step 3 of running a cloonix container with crun. It makes a named network
//! namespace (`ip netns add cloonix_1_1`), veth pairs whose guest end is created directly inside
//! it (`vgt_1_1_0` on the host, `eth0` inside), optionally with their host ends in a Linux bridge
//! (a LAN shared by several containers), brings `lo` and the ends up with their addresses, and
//! adds the `netns` part to the cloon document. It also makes point-to-point links between two
//! existing namespaces, and VXLAN ends of links and LANs that cross hosts (the picture of a whole
//! lab is `cloon-lab graph`'s).
//!
//! Modules, one concept each: [`settings`] (an end's addresses, MAC address and MTU),
//! [`parse`] (the `--veth` flag), [`action`] (each change to the system and the iproute2 command
//! that makes it), [`system`] (carrying actions out), [`namespace`] (named namespaces, made
//! without forking), [`link`] (rtnetlink), [`bridge`] (shared bridges and their records),
//! [`p2p`] (point-to-point links), [`vxlan`] (VXLAN ends of links and LANs that cross hosts),
//! [`record`](mod@record) (what is kept under the state directory), [`tag`] (the interface group of each state directory, the alias that names an
//! interface's record, and the state root's lock that keeps `gc` off interfaces being made),
//! [`errors`] (failures into cloon errors), and the actions
//! [`up`](mod@up), [`down`](mod@down), [`check`](mod@check) (with the record `show` prints) and
//! [`gc`] (what killed tools left behind).

pub mod action;
pub mod bridge;
pub mod check;
pub mod down;
pub mod errors;
pub mod gc;
pub mod link;
pub mod namespace;
pub mod p2p;
pub mod parse;
pub mod record;
pub mod settings;
pub mod stage;
pub mod system;
pub mod tag;
pub mod up;
pub mod vxlan;

pub use check::{check_document, record};
pub use up::up;

/// The stage name in error documents.
pub const STAGE: &str = "cloon-netns";
/// The key of this stage in the document and in the state directory.
pub const PART: &str = <cloon_core::doc::Netns as cloon_core::doc::Part>::KEY;

/// Flags of `cloon-netns up`, as given on the command line (parsed and validated by
/// [`up::Plan`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct UpArgs {
    /// The namespace: a NAME to create under /run/netns, or the PATH of an existing one
    #[arg(long, value_name = "NAME|PATH")]
    pub netns: Option<String>,
    /// A veth pair: HOST end on the host, GUEST end made inside the namespace. Options:
    /// addr=CIDR (repeatable, IPv4 or IPv6), mac=MAC, mtu=N for the guest end; host-addr=,
    /// host-mac=, host-mtu= for the host end; bridge=BR to make the host end a port of the
    /// bridge BR (created when missing)
    #[arg(long, value_name = "HOST:GUEST[,OPTION]...")]
    pub veth: Vec<String>,
    /// The container's name [default: the document's, else the namespace's]
    #[arg(long, value_name = "CONTAINER")]
    pub name: Option<String>,
}

/// Flags of `cloon-netns link`.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct LinkArgs {
    /// The link's name, which its record is filed under (`cloon-netns down --name NAME`)
    #[arg(long, value_name = "NAME")]
    pub name: String,
    /// The two ends, NS:IF[,addr=CIDR]...[,mac=MAC][,mtu=N]: NS a namespace name under
    /// /run/netns or a path, IF the interface made in it
    #[arg(value_names = ["NSA:IFA", "NSB:IFB"], num_args = 2, required = true, action = clap::ArgAction::Set)]
    pub ends: Vec<String>,
}

/// Flags of `cloon-netns vxlan` (parsed and validated by [`vxlan::Plan`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct VxlanArgs {
    /// The name its record is filed under (`cloon-netns down --name NAME`)
    #[arg(long, value_name = "NAME")]
    pub name: String,
    /// The VXLAN network identifier, 1 to 16777215: the same on every host of the link or LAN
    #[arg(long, value_name = "N")]
    pub vni: String,
    /// The UDP port this host's VXLAN listens on, and the remotes' by default
    #[arg(long, value_name = "P", default_value = "4789")]
    pub port: String,
    /// The source address of the tunnel's packets (this host's address on the underlay)
    #[arg(long, value_name = "ADDR")]
    pub local: Option<String>,
    /// The underlay interface the tunnel's packets go through; the MTU follows its own
    #[arg(long, value_name = "UNDERLAY")]
    pub dev: Option<String>,
    /// Another host's end, IPv4 `ADDR[:PORT]` or IPv6 `[ADDR]:PORT` (repeatable, at least one):
    /// frames with no known destination go to each
    #[arg(long, value_name = "ADDR[:PORT]", required = true)]
    pub remote: Vec<String>,
    /// The device: NS:IF[,addr=CIDR]...[,mac=MAC][,mtu=N] made inside the namespace NS (a link
    /// to a container on another host, learning off), IF,bridge=BR[,mtu=N] made on the host
    /// as a port of the bridge BR (a LAN spanning hosts, learning on), or IF[,mtu=N] made on
    /// the host alone (a link's end that a relay joins to a container's veth, learning off)
    #[arg(value_name = "END")]
    pub end: String,
}

/// Says a warning: on stderr, or as a comment among the commands of `--explain`, so that what it
/// prints stays a shell script.
pub fn warn(msg: &str) {
    if cloon_core::explain::mode() == cloon_core::explain::Mode::Quiet {
        eprintln!("{STAGE}: {msg}");
    } else {
        cloon_core::explain::note(msg);
    }
}
