//! Lab-scoped names: every object a lab makes carries the lab's name, or a hash of it, so that
//! two labs (even two of one file, under different `name:`) never collide, and the `down` of one
//! can never reach the other's objects.
//!
//! | object | name | example (lab `lan`) |
//! |---|---|---|
//! | state directory, given to every tool | `LABS/LAB` | `/run/cloon/labs/lan` |
//! | container (runtime id) and its network namespace | `LAB-NODE` | `lan-h1` |
//! | point-to-point link (its record) | `LAB.NODE.IF.NODE.IF` | `lan.h1.eth1.r1.eth1` |
//! | host end of a container's veth into a bridge | `cl` + 10 hex digits | `cl3f9a0c21d4` |
//! | bridge | `cb` + 10 hex digits | `cb80d2e4417f` |
//!
//! Container and namespace names are cloon's container names (at most 64 bytes: the topology
//! refuses a lab and node name that do not fit). Interface names on the host must fit the
//! kernel's 15 bytes whatever the lab and node are called, so they are a hash of
//! (lab, node, interface): short, stable from one `up` to the next (so the records of one `up`
//! are found by the next), and distinct across labs. 40 bits of hash make a collision within one
//! lab unlikely; [`Names::check`] refuses one anyway. The same state directory also gives each
//! lab its own interface group (cloon-netns derives it from the directory's path), so even `ip
//! link show group` tells labs apart.
//!
//! Lab and node names have no `.` (the topology refuses it), so a link's name can never be a
//! container's. A link whose name would pass 64 bytes is `LAB.link.` and a hash.

use crate::topology::{Kind, Lab, Link};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where labs keep their state unless `--labs-dir` says otherwise: under cloon's own state
/// directory, in `/run`, so that a reboot (which empties `/run`, as it removes every container,
/// namespace and interface) leaves no stale record.
pub const DEFAULT_LABS_DIR: &str = "/run/cloon/labs";

/// The first 10 hex digits of the SHA-256 of `parts`, each ended by a NUL.
fn short_hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    let digest = h.finalize();
    digest.iter().take(5).map(|b| format!("{b:02x}")).collect()
}

/// The names of one lab's objects.
#[derive(Debug, Clone)]
pub struct Names {
    lab: String,
    state_dir: PathBuf,
}

impl Names {
    pub fn new(lab: &str, labs_dir: &Path) -> Names {
        Names {
            lab: lab.to_string(),
            state_dir: labs_dir.join(lab),
        }
    }

    pub fn lab(&self) -> &str {
        &self.lab
    }

    /// The state directory every tool is given (`--state-dir`).
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// cloon-lab's own files: the documents of the lab's containers and links, the marks of
    /// `exec:` done. A name starting with `.` is no container name, so the tools never take it
    /// for one of theirs.
    pub fn lab_dir(&self) -> PathBuf {
        self.state_dir.join(".lab")
    }

    /// The container (and runtime id) of `node`.
    pub fn container(&self, node: &str) -> String {
        format!("{}-{node}", self.lab)
    }

    /// The network namespace of `node`: the container's name.
    pub fn netns(&self, node: &str) -> String {
        self.container(node)
    }

    /// The host end of `node`'s interface `iface` (the veth into a bridge).
    pub fn host_end(&self, node: &str, iface: &str) -> String {
        format!("cl{}", short_hash(&[&self.lab, "port", node, iface]))
    }

    /// The Linux bridge of the bridge node `node`.
    pub fn bridge(&self, node: &str) -> String {
        format!("cb{}", short_hash(&[&self.lab, "bridge", node]))
    }

    /// The host-side VXLAN end of `node`'s interface `iface`, for a link to another host that
    /// the relay impairs (it joins this and the node's veth, [`Names::host_end`]).
    pub fn tunnel_end(&self, node: &str, iface: &str) -> String {
        format!("cv{}", short_hash(&[&self.lab, "tunnel", node, iface]))
    }

    /// The VXLAN port of the bridge node `node` on each host, for a LAN spanning hosts.
    pub fn vxlan_port(&self, node: &str) -> String {
        format!("cv{}", short_hash(&[&self.lab, "vxlan", node]))
    }

    /// The name this host's VXLAN port of the LAN of bridge node `node` is filed under:
    /// `LAB.NODE.vxlan` (three parts: never a link's five), or `LAB.lan.` and a hash when long.
    pub fn lan_tunnel(&self, node: &str) -> String {
        let long = format!("{}.{node}.vxlan", self.lab);
        if long.len() <= cloon_core::name::MAX_NAME {
            long
        } else {
            format!("{}.lan.{}", self.lab, short_hash(&[&self.lab, "lan", node]))
        }
    }

    /// A VNI (1 to 16777215) from the lab's name and `seed`: the same on every host.
    pub fn vni(&self, seed: &str) -> u32 {
        let mut h = Sha256::new();
        h.update(self.lab.as_bytes());
        h.update([0]);
        h.update(seed.as_bytes());
        let d = h.finalize();
        u32::from_be_bytes([0, d[0], d[1], d[2]]) % 0xff_ffff + 1
    }

    /// The name a point-to-point link is filed under.
    pub fn link(&self, link: &Link) -> String {
        let [a, b] = &link.ends;
        let long = format!(
            "{}.{}.{}.{}.{}",
            self.lab, a.node, a.interface, b.node, b.interface
        );
        if long.len() <= cloon_core::name::MAX_NAME {
            long
        } else {
            let h = short_hash(&[
                &self.lab,
                "link",
                &a.node,
                &a.interface,
                &b.node,
                &b.interface,
            ]);
            format!("{}.link.{h}", self.lab)
        }
    }

    /// The node document `up` writes (the pipeline's output).
    pub fn node_doc(&self, node: &str) -> PathBuf {
        self.lab_dir().join(format!("node-{node}.json"))
    }

    /// The link document `up` writes.
    pub fn link_doc(&self, link_name: &str) -> PathBuf {
        self.lab_dir().join(format!("link-{link_name}.json"))
    }

    /// The impairment engine's records: one directory per impaired link.
    pub fn impair_root(&self) -> PathBuf {
        self.lab_dir().join("impair")
    }

    /// The record directory of the impairment of the link named `link_name`.
    pub fn impair_dir(&self, link_name: &str) -> PathBuf {
        self.impair_root().join(link_name)
    }

    /// The mark that `node`'s `exec:` commands have run in its current container.
    pub fn exec_mark(&self, node: &str) -> PathBuf {
        self.lab_dir().join(format!("exec-{node}.done"))
    }

    /// Checks that the generated names of `lab` are valid and distinct.
    pub fn check(&self, lab: &Lab) -> anyhow::Result<()> {
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        let mut add = |name: String, what: String| -> anyhow::Result<()> {
            if let Some(other) = seen.insert(name.clone(), what.clone()) {
                anyhow::bail!(
                    "the generated name {name} is both {other}'s and {what}'s: rename one of them"
                );
            }
            Ok(())
        };
        for n in &lab.nodes {
            match n.kind {
                Kind::Linux => {
                    let c = self.container(&n.name);
                    cloon_core::name::container(&c).map_err(|e| anyhow::anyhow!(e.msg))?;
                    add(c, format!("node {}", n.name))?;
                }
                Kind::Bridge => {
                    let b = self.bridge(&n.name);
                    cloon_core::name::interface(&b).map_err(|e| anyhow::anyhow!(e.msg))?;
                    add(b, format!("bridge {}", n.name))?;
                    add(
                        self.vxlan_port(&n.name),
                        format!("bridge {}'s VXLAN port", n.name),
                    )?;
                    add(
                        self.lan_tunnel(&n.name),
                        format!("bridge {}'s VXLAN record", n.name),
                    )?;
                }
            }
        }
        for l in &lab.links {
            for e in &l.ends {
                if lab.node(&e.node).map(|n| n.kind) == Some(Kind::Linux) {
                    add(
                        self.host_end(&e.node, &e.interface),
                        format!("port {}", e.label()),
                    )?;
                    add(
                        self.tunnel_end(&e.node, &e.interface),
                        format!("VXLAN end {}", e.label()),
                    )?;
                }
            }
            let name = self.link(l);
            cloon_core::name::container(&name).map_err(|e| anyhow::anyhow!(e.msg))?;
            add(name, format!("link {}", l.label()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_lab() {
        let n = Names::new("lan", Path::new(DEFAULT_LABS_DIR));
        assert_eq!(n.state_dir(), Path::new("/run/cloon/labs/lan"));
        assert_eq!(n.container("h1"), "lan-h1");
        let m = Names::new("lan2", Path::new(DEFAULT_LABS_DIR));
        assert_ne!(n.host_end("h1", "eth0"), m.host_end("h1", "eth0"));
        assert_ne!(n.bridge("sw"), m.bridge("sw"));
        assert_ne!(n.host_end("h1", "eth0"), n.host_end("h1", "eth1"));
        // Stable: the same names from one run to the next.
        assert_eq!(n.host_end("h1", "eth0"), n.host_end("h1", "eth0"));
        for name in [n.host_end("h1", "eth0"), n.bridge("sw")] {
            assert_eq!(name.len(), 12);
            cloon_core::name::interface(&name).unwrap();
            assert_ne!(name, "eth0");
        }
    }

    #[test]
    fn link_names_are_readable_or_hashed_when_long() {
        let lab = Lab::parse(
            "name: lan\ntopology:\n  defaults: {kind: linux, image: busybox}\n  nodes:\n    a:\n    bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb:\n  links:\n    - endpoints: [\"a:eth1\", \"a:eth2\"]\n    - endpoints: [\"a:eth3\", \"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb:eth1\"]\n",
            Path::new("/t.yml"),
            None,
        );
        // A link from a node to itself is refused by the topology; build the names by hand.
        assert!(lab.is_err());
        let lab = Lab::parse(
            "name: lan\ntopology:\n  defaults: {kind: linux, image: busybox}\n  nodes:\n    a:\n    b:\n    bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb:\n  links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n    - endpoints: [\"a:eth3\", \"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb:eth1\"]\n",
            Path::new("/t.yml"),
            None,
        )
        .unwrap();
        let n = Names::new("lan", Path::new("/x"));
        assert_eq!(n.link(&lab.links[0]), "lan.a.eth1.b.eth1");
        let long = n.link(&lab.links[1]);
        assert!(long.starts_with("lan.link.") && long.len() == 19, "{long}");
        n.check(&lab).unwrap();
    }
}
