//! The command line: `cloon-lab VERB FILE`, containerlab's verbs where they exist.

use crate::image::DEFAULT_CACHE_DIR;
use crate::impair::Engine;
use crate::naming::DEFAULT_LABS_DIR;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

const AFTER_HELP: &str = "\
The topology file is containerlab's format, the subset cloon runs: name; topology.nodes of kind
linux (a container) or bridge (a LAN the lab makes); node fields kind, group, image, cmd, exec,
env, binds, hostname, sysctls, cap-add, inherited node > group > kind > defaults
(topology.groups, topology.kinds, topology.defaults); topology.links in the brief form
(endpoints: [\"a:eth1\", \"b:eth1\"], with ipv4:/ipv6: lists in endpoint order) or the extended
one (type: veth, endpoints with node, interface, mac, ipv4, ipv6), mtu, and cloon's netem:
{delay, jitter, loss, rate, corrupt, duplicate}; with the relay engine (the kernel lacks netem),
a point-to-point link with netem: is built as two veths from the host joined by a relay process
(netem: {} builds it so without impairing it, for `cloon-lab netem` later). Any other field is an error naming it and its
line; nothing is made for a file with a mistake.

image: an image file made by cloon-img, or a source cloon-img builds it from once, cached in
--cache-dir by content: busybox, debootstrap:SUITE[:PKG,PKG...], oci:LAYOUT[:TAG], tar:FILE.
There is no management network: links may use any interface name, eth0 included.

hosts: (cloon's) spreads a lab over machines: hosts: {h1: {address: A, interface: IF, port: P}},
and host: h1 on each container; `--host h1` on h1 brings up h1's containers and its ends of the
links to the other hosts, VXLAN tunnels (MTU 1450 unless mtu: says; UDP port 4789 unless port:).

Every object carries the lab's name: containers and namespaces LAB-NODE, links
LAB.NODE.IF.NODE.IF, host interfaces and bridges short names hashed from the lab's (inspect
shows them), and every tool gets the lab's own state directory, --labs-dir/LAB. Two labs (one
file under two names: --name) run side by side; the down of one never touches the other.

Examples:
  cloon-lab doctor                              # is this host ready?
  cloon-lab up labs/lan.clab.yml                # the lab: images, containers, links, exec
  cloon-lab up --name lan2 labs/lan.clab.yml    # the same file, a second lab beside it
  cloon-lab inspect labs/lan.clab.yml           # a table: nodes, state, interfaces, peers, netem
  cloon-lab inspect --json labs/lan.clab.yml    # the same for scripts
  cloon-lab exec labs/lan.clab.yml h1 -- ping -c1 10.0.1.2
  cloon-lab graph labs/lan.clab.yml | dot -Tsvg > lan.svg
  cloon-lab makefile labs/lan.clab.yml > Makefile && make -j up   # the same lab, the tools alone
  cloon-lab script labs/lan.clab.yml > lan.sh && sh lan.sh up && sh lan.sh down
  cloon-lab netem wan.clab.yml r1:eth1 --delay 10ms --loss 1%   # change a link's impairment
  cloon-lab netem show wan.clab.yml        # asked, applied, engine, relay alive or dead
  cloon-lab netem reset wan.clab.yml r1:eth1                    # a plain wire again
  cloon-lab capture wan.clab.yml r1:eth1 -c 10 -w r1.pcap       # pcap, inside r1's namespace
  cloon-lab down labs/lan.clab.yml              # everything gone, also when half up
  cloon-lab down --name lan2                    # by name, from its records, without the file
  cloon-lab up wan.clab.yml --host h1           # a lab over several hosts: h1's part, on h1";

/// Network labs from containerlab topology files, run with the five cloon tools.
#[derive(Debug, Parser)]
#[command(name = "cloon-lab", version, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub verb: Verb,
}

/// Where labs live: options every verb that touches a lab takes.
#[derive(Debug, Clone, Args)]
pub struct Place {
    /// The lab's name, instead of the file's `name:`
    #[arg(long, value_name = "LAB")]
    pub name: Option<String>,
    /// Where each lab's state directory is made (LABS/LAB), in /run so that a reboot empties it
    #[arg(long, value_name = "DIR", env = "CLOON_LAB_DIR", default_value = DEFAULT_LABS_DIR)]
    pub labs_dir: PathBuf,
    /// Where images built from a source are cached, by content
    #[arg(long, value_name = "DIR", env = "CLOON_LAB_CACHE", default_value = DEFAULT_CACHE_DIR)]
    pub cache_dir: PathBuf,
    /// The impairment engine of links with netem: (auto: the kernel's netem where the kernel has
    /// it, else the relay) [default: the one the lab's up chose, else auto]
    #[arg(long, value_name = "auto|kernel|relay")]
    pub engine: Option<Engine>,
    /// This machine among the lab's `hosts:`, for a lab spread over several: its containers
    /// and its ends of the links to the others
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
    /// Where the containers' processes go in the host's cgroups (up, makefile, script; see
    /// cloon-spec --cgroups): none, or cloon to read and limit the lab as one
    /// (/sys/fs/cgroup/*/cloon/ID) [default: cloon-spec's, none]
    #[arg(long, value_enum, value_name = "MODE")]
    pub cgroups: Option<cloon_core::cgroups::Mode>,
}

/// The impairment flags of `cloon-lab netem`.
#[derive(Debug, Clone, Args)]
pub struct NetemFlags {
    /// Delay added in each direction (10ms, 1.5ms, 200us)
    #[arg(long, value_name = "D")]
    pub delay: Option<String>,
    /// Variation of the delay, ± (needs a delay)
    #[arg(long, value_name = "D")]
    pub jitter: Option<String>,
    /// Frames dropped (1%, 0.5%)
    #[arg(long, value_name = "P%")]
    pub loss: Option<String>,
    /// Wire speed (10mbit, 512kbit; bps = bytes per second, as in tc; 0 for none)
    #[arg(long, value_name = "R")]
    pub rate: Option<String>,
    /// Frames with a bit flipped (0.1%)
    #[arg(long, value_name = "P%")]
    pub corrupt: Option<String>,
    /// Frames sent twice (1%)
    #[arg(long, value_name = "P%")]
    pub duplicate: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Verb {
    /// Bring the lab up: images, containers (in parallel), links, exec; only what is not up yet
    #[command(visible_alias = "deploy")]
    Up {
        /// The topology file
        file: PathBuf,
        #[command(flatten)]
        place: Place,
        /// At most N containers at once [default: twice the number of CPUs]
        #[arg(long, short, value_name = "N")]
        jobs: Option<usize>,
        /// On failure, leave what this run made (for inspect) instead of undoing it
        #[arg(long)]
        no_rollback: bool,
        /// Say nothing but errors
        #[arg(long, short)]
        quiet: bool,
        /// Say which impairment engine the links with netem: get and the equivalent commands,
        /// and do nothing
        #[arg(long)]
        explain: bool,
    },
    /// Bring the lab down: everything it made, whatever state it is in
    #[command(visible_alias = "destroy")]
    Down {
        /// The topology file [optional with --name: then the lab's records alone say what to remove]
        file: Option<PathBuf>,
        #[command(flatten)]
        place: Place,
        /// At most N containers at once [default: twice the number of CPUs]
        #[arg(long, short, value_name = "N")]
        jobs: Option<usize>,
        /// Say nothing but errors
        #[arg(long, short)]
        quiet: bool,
    },
    /// Show the lab: its nodes, their state, image, interfaces with addresses and peers, netem
    Inspect {
        file: PathBuf,
        #[command(flatten)]
        place: Place,
        /// A JSON object instead of the table
        #[arg(long)]
        json: bool,
    },
    /// Run a command in a node's container: `cloon-lab exec FILE NODE -- CMD...`
    Exec {
        file: PathBuf,
        /// The node (its name in the topology)
        node: String,
        /// The command and its arguments
        #[arg(last = true, required = true)]
        cmd: Vec<String>,
        #[command(flatten)]
        place: Place,
    },
    /// Draw the live lab in Graphviz DOT on standard output
    Graph {
        file: PathBuf,
        #[command(flatten)]
        place: Place,
    },
    /// Check that this host can run containers and labs, and say how to fix what it lacks
    Doctor {
        /// A JSON object instead of the table
        #[arg(long)]
        json: bool,
        /// The OCI runtime to check: crun, runc or a path [default: crun]
        #[arg(long, value_name = "crun|runc|PATH")]
        runtime: Option<String>,
    },
    /// Change a link's impairment at run time: `netem FILE NODE:IFACE --delay 10ms`;
    /// `netem show FILE [NODE:IFACE]`; `netem reset FILE NODE:IFACE` (no impairment)
    #[command(
        override_usage = "cloon-lab netem FILE NODE:IFACE [--delay D] [--jitter D] [--loss P%] [--rate R] [--corrupt P%] [--duplicate P%] [--engine E] [--explain]\n       cloon-lab netem show FILE [NODE:IFACE]\n       cloon-lab netem reset FILE NODE:IFACE"
    )]
    Netem {
        /// FILE NODE:IFACE, or show FILE [NODE:IFACE], or reset FILE NODE:IFACE
        #[arg(required = true, num_args = 1..=3, value_name = "ARGS")]
        args: Vec<String>,
        #[command(flatten)]
        netem: NetemFlags,
        #[command(flatten)]
        place: Place,
        /// Say which engine and the equivalent commands, and do nothing
        #[arg(long)]
        explain: bool,
        /// show: a JSON array instead of the table
        #[arg(long)]
        json: bool,
    },
    /// Capture a node's interface as pcap (to standard output, or -w FILE), in its namespace
    Capture {
        file: PathBuf,
        /// NODE:IFACE
        endpoint: String,
        /// Write the pcap to FILE instead of standard output
        #[arg(short = 'w', value_name = "FILE.pcap")]
        write: Option<PathBuf>,
        /// Stop after N frames
        #[arg(short = 'c', value_name = "N")]
        count: Option<u64>,
        #[command(flatten)]
        place: Place,
    },
    /// Print a Makefile that does the same lab with the five tools alone (`make -j up`, `make down`)
    Makefile {
        file: PathBuf,
        #[command(flatten)]
        place: Place,
    },
    /// Print a shell script that does the same lab with the five tools alone (`sh lab.sh up|down`)
    Script {
        file: PathBuf,
        #[command(flatten)]
        place: Place,
    },
}
