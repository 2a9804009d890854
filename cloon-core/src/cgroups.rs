//! Where a container's processes go in the host's cgroups: the three modes of
//! `cloon-spec --cgroups`, written into the bundle's config.json, which cloon-run follows.
//!
//! - `none`: no cgroup of its own. crun runs with `--cgroup-manager=disabled` (as cloonix runs
//!   it): its processes stay in the cgroup of whoever ran `cloon-run up`, and the runtime spends
//!   no time making and removing cgroups. No host-wide name at all, so none can collide.
//! - `cloon`: `/cloon/ID/NAME` in each hierarchy, ID naming the state directory (a lab): two
//!   state directories never share a cgroup name, and a lab's containers can be read and limited
//!   as one (`/sys/fs/cgroup/*/cloon/ID`). cloon-run removes the parent once empty.
//! - `runtime`: the runtime's own choice (crun: `/NAME` at each hierarchy's root). Names are
//!   host-wide: the same name in two state directories collides.

use serde_json::Value;

/// The config.json annotation that says the mode (`org.cloon.cgroups`).
pub const ANNOTATION: &str = "org.cloon.cgroups";

/// How the container is placed in cgroups.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// No cgroup of its own: crun --cgroup-manager=disabled (the fastest; as cloonix runs crun)
    #[default]
    None,
    /// /cloon/ID/NAME: a parent cgroup per state directory (per lab), removed once empty
    Cloon,
    /// The runtime's default (crun: /NAME; names are host-wide)
    Runtime,
}

impl Mode {
    /// The mode as `--cgroups` and the annotation spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::None => "none",
            Mode::Cloon => "cloon",
            Mode::Runtime => "runtime",
        }
    }

    /// The mode an OCI configuration asks for: its annotation's, or, for a bundle cloon-spec did
    /// not write (no annotation), [`Mode::Runtime`]: the runtime does what the configuration says.
    pub fn of_config(config: &Value) -> Mode {
        match config["annotations"][ANNOTATION].as_str() {
            Some("none") => Mode::None,
            Some("cloon") => Mode::Cloon,
            _ => Mode::Runtime,
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_annotation_names_the_mode() {
        for mode in [Mode::None, Mode::Cloon, Mode::Runtime] {
            let config = json!({"annotations": {ANNOTATION: mode.as_str()}});
            assert_eq!(Mode::of_config(&config), mode);
        }
    }

    #[test]
    fn a_bundle_without_the_annotation_is_the_runtimes_business() {
        assert_eq!(Mode::of_config(&json!({})), Mode::Runtime);
        assert_eq!(
            Mode::of_config(&json!({"annotations": {ANNOTATION: "bogus"}})),
            Mode::Runtime
        );
    }
}
