//! The command line: `cloon-lab VERB FILE`, containerlab's verbs where they exist.

use crate::image::DEFAULT_CACHE_DIR;
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
{delay, jitter, loss, rate, corrupt, duplicate}. Any other field is an error naming it and its
line; nothing is made for a file with a mistake.

image: an image file made by cloon-img, or a source cloon-img builds it from once, cached in
--cache-dir by content: busybox, debootstrap:SUITE[:PKG,PKG...], oci:LAYOUT[:TAG], tar:FILE.
There is no management network: links may use any interface name, eth0 included.

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
  cloon-lab down labs/lan.clab.yml              # everything gone, also when half up
  cloon-lab down --name lan2                    # by name, from its records, without the file";

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
        /// At most N containers at once [default: the number of CPUs]
        #[arg(long, short, value_name = "N")]
        jobs: Option<usize>,
        /// On failure, leave what this run made (for inspect) instead of undoing it
        #[arg(long)]
        no_rollback: bool,
        /// Say nothing but errors
        #[arg(long, short)]
        quiet: bool,
    },
    /// Bring the lab down: everything it made, whatever state it is in
    #[command(visible_alias = "destroy")]
    Down {
        /// The topology file [optional with --name: then the lab's records alone say what to remove]
        file: Option<PathBuf>,
        #[command(flatten)]
        place: Place,
        /// At most N containers at once [default: the number of CPUs]
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
