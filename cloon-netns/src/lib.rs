//! cloon-netns: step 3 of running a cloonix container with crun. It makes a named network
//! namespace (`ip netns add cloonix_1_1`), veth pairs whose guest end is created directly inside
//! it (`vgt_1_1_0` on the host, `eth0` inside), brings `lo` and the guest ends up with their
//! addresses, and adds the `netns` part to the cloon document.
//!
//! Modules, one concept each: [`parse`] (the `--veth` flag), [`namespace`] (named namespaces,
//! made without forking), [`link`] (rtnetlink: veths, link state, addresses),
//! [`record`](mod@record) (what is kept under the state directory), [`errors`] (failures into
//! cloon errors), and the actions [`up`](mod@up), [`down`](mod@down) and [`check`](mod@check)
//! (with the record `show` prints).

pub mod check;
pub mod down;
pub mod errors;
pub mod link;
pub mod namespace;
pub mod parse;
pub mod record;
pub mod up;

pub use check::{check, record};
pub use down::down;
pub use up::up;

/// The stage name in error documents.
pub const STAGE: &str = "cloon-netns";
/// The key of this stage in the document and in the state directory.
pub const PART: &str = "netns";

/// Flags of `cloon-netns up`, as given on the command line (parsed and validated by
/// [`up::Plan`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct UpArgs {
    /// The namespace: a NAME to create under /run/netns, or the PATH of an existing one
    #[arg(long, value_name = "NAME|PATH")]
    pub netns: Option<String>,
    /// A veth pair: host end, guest end (inside the namespace), its addresses and MAC address
    #[arg(long, value_name = "HOST:GUEST[,addr=CIDR]...[,mac=MAC]")]
    pub veth: Vec<String>,
    /// The container's name [default: the document's, else the namespace's]
    #[arg(long, value_name = "CONTAINER")]
    pub name: Option<String>,
}
