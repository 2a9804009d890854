//! cloon-netns: step 3 of running a cloonix container with crun. It makes a named network
//! namespace (`ip netns add cloonix_1_1`), veth pairs whose guest end is created directly inside
//! it (`vgt_1_1_0` on the host, `eth0` inside), brings `lo` and the guest ends up with their
//! addresses, and adds the `netns` part to the cloon document.
//!
//! Modules, one concept each: [`parse`] (the `--veth` flag), [`namespace`] (named namespaces,
//! made without forking), [`link`] (rtnetlink: veths, link state, addresses), [`record`] (what is
//! kept under the state directory), [`errors`] (failures into cloon errors), and the actions
//! [`up`], [`down`], [`check`] (with `show`).

pub mod check;
pub mod down;
pub mod errors;
pub mod link;
pub mod namespace;
pub mod parse;
pub mod record;
pub mod up;

pub use check::{check, show};
pub use down::down;
pub use up::up;

/// The tool's name, as `stage` of its error documents.
pub const TOOL: &str = "cloon-netns";

/// The flags of `up`, as given on the command line (parsed and validated by [`up::Plan`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpArgs {
    /// `--netns NAME|PATH`.
    pub netns: Option<String>,
    /// Each `--veth HOST:GUEST[,addr=CIDR]...[,mac=MAC]`, unparsed.
    pub veth: Vec<String>,
    /// `--name CONTAINER`.
    pub name: Option<String>,
}
