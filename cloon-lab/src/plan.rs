//! The plan: every command a lab's `up` and `down` run, derived from the topology and the lab's
//! names, as [`Pipeline`] values. `cloon-lab up` and `down` run them; `cloon-lab makefile` and
//! `script` print them; so the three do exactly the same.
//!
//! For a lab `lan` with state directory `S` (`/run/cloon/labs/lan`), a container `h1` on a bridge
//! and a point-to-point link to `r1`:
//!
//! ```sh
//! # the image, once (the cache)
//! cloon-img create --busybox --force CACHE/busybox-KEY.img >CACHE/busybox-KEY.json.tmp
//! # the container: its root filesystem, its namespace with its bridge ports, its bundle, it runs
//! cloon-overlay --state-dir S --name lan-h1 <CACHE/busybox-KEY.json \
//!   | cloon-netns --state-dir S --netns lan-h1 --veth clXXXXXXXXXX:eth0,bridge=cbYYYYYYYYYY,addr=10.0.1.1/24 \
//!   | cloon-spec --state-dir S --hostname h1 \
//!   | cloon-run --state-dir S >S/.lab/node-h1.json
//! # the link, once both namespaces exist
//! cloon-netns link --state-dir S --name lan.h1.eth1.r1.eth1 lan-h1:eth1,addr=... lan-r1:eth1,addr=... </dev/null >S/.lab/link-lan.h1.eth1.r1.eth1.json
//! # exec:, in order, once the links are up
//! cloon-run exec --state-dir S lan-h1 -- ip route add default via 10.0.1.254 </dev/null
//! # down: links first, then each container, each tool by name, from its records
//! cloon-netns down --state-dir S --name lan.h1.eth1.r1.eth1 </dev/null >/dev/null
//! cloon-run down --state-dir S --name lan-h1 ...; cloon-spec down ...; cloon-netns down ...; cloon-overlay down ...
//! ```
//!
//! `down` works by name (`--name`) from the tools' own records rather than from the documents:
//! the records are written before each object is made, so they name everything even after a
//! tool was killed halfway, and a name already gone is done.

use crate::image::{self, Image};
use crate::naming::Names;
use crate::run::{Cmd, Pipeline};
use crate::topology::{Kind, Lab, Link, Node};
use std::collections::BTreeMap;
use std::path::Path;

/// A lab with its names and images: everything needed to say its commands.
#[derive(Debug, Clone)]
pub struct Plan {
    pub lab: Lab,
    pub names: Names,
    /// The image of each container, by node name.
    pub images: BTreeMap<String, Image>,
}

impl Plan {
    /// The plan of `lab`, its state under `labs_dir`, its images cached in `cache_dir`.
    pub fn new(lab: Lab, labs_dir: &Path, cache_dir: &Path) -> anyhow::Result<Plan> {
        let names = Names::new(&lab.name, labs_dir);
        names.check(&lab)?;
        let mut images = BTreeMap::new();
        let mut by_spec: BTreeMap<String, Image> = BTreeMap::new();
        for n in lab.containers() {
            if let Some(src) = &n.image {
                let spec = src.spec();
                let img = match by_spec.get(&spec) {
                    Some(i) => i.clone(),
                    None => {
                        let i = image::resolve(src, cache_dir)
                            .map_err(|e| e.context(format!("node {}", n.name)))?;
                        by_spec.insert(spec, i.clone());
                        i
                    }
                };
                images.insert(n.name.clone(), img);
            }
        }
        Ok(Plan { lab, names, images })
    }

    fn state(&self) -> String {
        self.names.state_dir().display().to_string()
    }

    /// The cached images to build, each once.
    pub fn builds(&self) -> Vec<&image::CacheEntry> {
        let mut out: Vec<&image::CacheEntry> = Vec::new();
        for i in self.images.values() {
            if let Image::Cached(e) = i {
                if !out.iter().any(|o| o.img == e.img) {
                    out.push(e);
                }
            }
        }
        out
    }

    /// The `--veth` options of `node`: one per link to a bridge.
    fn veths(&self, node: &Node) -> Vec<String> {
        let mut out = Vec::new();
        for l in &self.lab.links {
            for (i, e) in l.ends.iter().enumerate() {
                let other = &l.ends[1 - i];
                let other_is_bridge =
                    self.lab.node(&other.node).map(|n| n.kind) == Some(Kind::Bridge);
                if e.node != node.name || !other_is_bridge {
                    continue;
                }
                let mut v = format!(
                    "{}:{},bridge={}",
                    self.names.host_end(&e.node, &e.interface),
                    e.interface,
                    self.names.bridge(&other.node)
                );
                for a in &e.addrs {
                    v.push_str(&format!(",addr={a}"));
                }
                if let Some(m) = &e.mac {
                    v.push_str(&format!(",mac={m}"));
                }
                if let Some(mtu) = l.mtu {
                    v.push_str(&format!(",mtu={mtu},host-mtu={mtu}"));
                }
                out.push(v);
            }
        }
        out
    }

    /// The pipeline that brings `node` (a container) up, its document to `S/.lab/node-NODE.json`.
    pub fn node_up(&self, node: &Node) -> Pipeline {
        let state = self.state();
        let c = self.names.container(&node.name);
        let mut overlay = Cmd::new("cloon-overlay").args(["--state-dir", &state, "--name", &c]);
        let mut stdin = None;
        match self.images.get(&node.name) {
            Some(Image::File(path)) => {
                overlay = overlay.args(["--image".to_string(), path.display().to_string()]);
            }
            Some(Image::Cached(e)) => stdin = Some(e.doc.clone()),
            None => {}
        }
        let mut netns = Cmd::new("cloon-netns").args([
            "--state-dir",
            &state,
            "--netns",
            &self.names.netns(&node.name),
        ]);
        for v in self.veths(node) {
            netns = netns.args(["--veth".to_string(), v]);
        }
        let mut spec =
            Cmd::new("cloon-spec").args(["--state-dir", &state, "--hostname", &node.hostname]);
        for (k, v) in &node.env {
            spec = spec.args(["--env".to_string(), format!("{k}={v}")]);
        }
        for b in &node.binds {
            let mut s = format!("{}:{}", b.src.display(), b.dst);
            if b.ro {
                s.push_str(":ro");
            }
            spec = spec.args(["--bind".to_string(), s]);
        }
        for (k, v) in &node.sysctls {
            spec = spec.args(["--sysctl".to_string(), format!("{k}={v}")]);
        }
        for cap in &node.cap_add {
            spec = spec.args(["--cap-add", cap.as_str()]);
        }
        if let Some(cmd) = &node.cmd {
            spec = spec.arg("--").args(cmd.iter().cloned());
        }
        let run = Cmd::new("cloon-run").args(["--state-dir", &state]);
        let mut p =
            Pipeline::new(vec![overlay, netns, spec, run]).stdout(self.names.node_doc(&node.name));
        p.stdin = stdin;
        p
    }

    /// The ends of `link` as `cloon-netns link` takes them: `NS:IF[,addr=..][,mac=..][,mtu=..]`.
    fn link_ends(&self, link: &Link) -> Vec<String> {
        link.ends
            .iter()
            .map(|e| {
                let mut s = format!("{}:{}", self.names.netns(&e.node), e.interface);
                for a in &e.addrs {
                    s.push_str(&format!(",addr={a}"));
                }
                if let Some(m) = &e.mac {
                    s.push_str(&format!(",mac={m}"));
                }
                if let Some(mtu) = link.mtu {
                    s.push_str(&format!(",mtu={mtu}"));
                }
                s
            })
            .collect()
    }

    /// Whether `link` is point-to-point (two containers), as opposed to a bridge port (made by
    /// the container's own pipeline).
    pub fn is_p2p(&self, link: &Link) -> bool {
        link.ends
            .iter()
            .all(|e| self.lab.node(&e.node).map(|n| n.kind) == Some(Kind::Linux))
    }

    /// The point-to-point links.
    pub fn p2p_links(&self) -> impl Iterator<Item = &Link> {
        self.lab.links.iter().filter(|l| self.is_p2p(l))
    }

    /// The command that makes a point-to-point link, its document to `S/.lab/link-NAME.json`.
    pub fn link_up(&self, link: &Link) -> Pipeline {
        let name = self.names.link(link);
        Pipeline::new(vec![Cmd::new("cloon-netns")
            .args(["link", "--state-dir", &self.state(), "--name", &name])
            .args(self.link_ends(link))])
        .stdout(self.names.link_doc(&name))
    }

    /// The commands of `node`'s `exec:`, in order.
    pub fn exec(&self, node: &Node) -> Vec<Pipeline> {
        node.exec
            .iter()
            .map(|argv| self.exec_cmd(&node.name, argv))
            .collect()
    }

    /// `cloon-run exec` of `argv` in `node`'s container; its output is captured.
    pub fn exec_cmd(&self, node: &str, argv: &[String]) -> Pipeline {
        Pipeline {
            stdin: None,
            cmds: vec![Cmd::new("cloon-run")
                .args([
                    "exec",
                    "--state-dir",
                    &self.state(),
                    &self.names.container(node),
                    "--",
                ])
                .args(argv.iter().cloned())],
            stdout: None,
        }
    }

    /// See [`down_by_name`].
    pub fn down_by_name(&self, name: &str) -> Vec<Pipeline> {
        down_by_name(self.names.state_dir(), name)
    }

    /// See [`link_down`].
    pub fn link_down(&self, name: &str) -> Pipeline {
        link_down(self.names.state_dir(), name)
    }
}

/// The commands that bring down the container (or any object) named `name` in the state
/// directory `state`, by name, each tool from its own records, in the pipeline's reverse order.
pub fn down_by_name(state: &Path, name: &str) -> Vec<Pipeline> {
    let state = state.display().to_string();
    ["cloon-run", "cloon-spec", "cloon-netns", "cloon-overlay"]
        .iter()
        .map(|t| {
            Pipeline::new(vec![Cmd::new(t).args([
                "down",
                "--state-dir",
                &state,
                "--name",
                name,
            ])])
        })
        .collect()
}

/// The command that deletes the point-to-point link named `name`.
pub fn link_down(state: &Path, name: &str) -> Pipeline {
    Pipeline::new(vec![Cmd::new("cloon-netns").args([
        "down",
        "--state-dir",
        &state.display().to_string(),
        "--name",
        name,
    ])])
}

/// Each tool's `gc` of the state directory `state`: what killed tools left, found by records.
pub fn gc(state: &Path) -> Vec<Pipeline> {
    let state = state.display().to_string();
    ["cloon-run", "cloon-spec", "cloon-netns", "cloon-overlay"]
        .iter()
        .map(|t| Pipeline::new(vec![Cmd::new(t).args(["gc", "--state-dir", &state])]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        let lab = Lab::parse(
            "name: lan\ntopology:\n  defaults: {kind: linux, image: busybox}\n  nodes:\n    h1: {env: {A: 'x y'}, cmd: \"sleep 9\", sysctls: {net.ipv4.ip_forward: 1}, cap-add: [SETUID]}\n    r1:\n    sw: {kind: bridge}\n  links:\n    - endpoints: [\"h1:eth0\", \"sw:p1\"]\n      ipv4: [\"10.0.1.1/24\"]\n      mtu: 1400\n    - endpoints: [\"h1:eth1\", \"r1:eth1\"]\n      ipv4: [\"10.9.0.1/30\", \"10.9.0.2/30\"]\n",
            Path::new("/t.yml"),
            None,
        )
        .unwrap();
        Plan::new(lab, Path::new("/run/cloon/labs"), Path::new("/cache")).unwrap()
    }

    #[test]
    fn a_container_is_the_four_tool_pipeline() {
        let p = plan();
        let h1 = p.lab.node("h1").unwrap();
        let up = p.node_up(h1);
        let text = up.shell(false);
        let host = p.names.host_end("h1", "eth0");
        let br = p.names.bridge("sw");
        assert!(
            text.starts_with(
                "cloon-overlay --state-dir /run/cloon/labs/lan --name lan-h1 </cache/busybox-"
            ),
            "{text}"
        );
        assert!(text.contains(&format!("| cloon-netns --state-dir /run/cloon/labs/lan --netns lan-h1 --veth {host}:eth0,bridge={br},addr=10.0.1.1/24,mtu=1400,host-mtu=1400 |")), "{text}");
        assert!(text.contains("| cloon-spec --state-dir /run/cloon/labs/lan --hostname h1 --env 'A=x y' --sysctl net.ipv4.ip_forward=1 --cap-add SETUID -- sleep 9 |"), "{text}");
        assert!(text.ends_with("| cloon-run --state-dir /run/cloon/labs/lan >/run/cloon/labs/lan/.lab/node-h1.json"), "{text}");
        assert_eq!(p.builds().len(), 1, "one image for both nodes");
    }

    #[test]
    fn links_and_downs() {
        let p = plan();
        let links: Vec<&Link> = p.p2p_links().collect();
        assert_eq!(links.len(), 1);
        assert_eq!(
            p.link_up(links[0]).shell(false),
            "cloon-netns link --state-dir /run/cloon/labs/lan --name lan.h1.eth1.r1.eth1 lan-h1:eth1,addr=10.9.0.1/30 lan-r1:eth1,addr=10.9.0.2/30 </dev/null >/run/cloon/labs/lan/.lab/link-lan.h1.eth1.r1.eth1.json"
        );
        let downs: Vec<String> = p
            .down_by_name("lan-h1")
            .iter()
            .map(|d| d.shell(false))
            .collect();
        assert_eq!(
            downs[0],
            "cloon-run down --state-dir /run/cloon/labs/lan --name lan-h1 </dev/null >/dev/null"
        );
        assert_eq!(downs.len(), 4);
        assert!(downs[3].starts_with("cloon-overlay down"));
    }
}
