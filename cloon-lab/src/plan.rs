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
use crate::impair::{self, End, EngineKind};
use crate::naming::Names;
use crate::run::{Cmd, Pipeline};
use crate::spread::{Spread, Tunnel, TunnelEnd};
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
    /// The impairment engine of the links with `netem:`, which decides their shape: with the
    /// relay, a point-to-point link with `netem:` is two veths from the host (one per node, made
    /// by the node's own cloon-netns, host ends `names.host_end`), joined by nothing but the
    /// relay; with the kernel's netem, it is one veth pair as any other link. [`Plan::new`]
    /// assumes the relay; the command line resolves `--engine` with [`impair::choose`] (only for
    /// a lab that has `netem:`, see [`Plan::has_netem`]) and sets it.
    pub engine: EngineKind,
    /// The containers' cgroup mode (`cloon-spec --cgroups`); `None` leaves cloon-spec's default.
    pub cgroups: Option<cloon_core::cgroups::Mode>,
    /// For a lab spread over hosts, this host and its tunnels ([`crate::spread`]); `lab` is then
    /// this host's part.
    pub spread: Option<Spread>,
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
        Ok(Plan {
            lab,
            names,
            images,
            engine: EngineKind::Relay,
            cgroups: None,
            spread: None,
        })
    }

    /// The plan of this host's part of `lab` (see [`crate::spread::localize`]): `host` names
    /// this machine among the lab's `hosts:`, and is `None` for a lab on one machine.
    pub fn for_host(
        lab: Lab,
        host: Option<&str>,
        labs_dir: &Path,
        cache_dir: &Path,
    ) -> anyhow::Result<Plan> {
        let names = Names::new(&lab.name, labs_dir);
        let (lab, spread) = crate::spread::localize(lab, &names, host)?;
        let mut plan = Plan::new(lab, labs_dir, cache_dir)?;
        plan.spread = spread;
        Ok(plan)
    }

    /// This host's tunnels (none for a lab on one machine).
    pub fn tunnels(&self) -> &[Tunnel] {
        self.spread.as_ref().map_or(&[], |s| s.tunnels.as_slice())
    }

    /// The links this host has an end of: the lab's local links, then the links to other hosts.
    pub fn links_here(&self) -> impl Iterator<Item = &Link> {
        self.lab
            .links
            .iter()
            .chain(self.tunnels().iter().filter_map(Tunnel::link))
    }

    /// The tunnel of `link`, when it crosses hosts.
    pub fn tunnel_of(&self, link: &Link) -> Option<&Tunnel> {
        self.tunnels().iter().find(|t| {
            t.link()
                .is_some_and(|l| l.line == link.line && l.label() == link.label())
        })
    }

    /// The command that makes this host's end of `tunnel` (`cloon-netns vxlan`), its document
    /// to `S/.lab/link-NAME.json`.
    pub fn tunnel_up(&self, tunnel: &Tunnel) -> Pipeline {
        let mut c = Cmd::new("cloon-netns").args([
            "vxlan".to_string(),
            "--state-dir".to_string(),
            self.state(),
            "--name".to_string(),
            tunnel.name.clone(),
            "--vni".to_string(),
            tunnel.vni.to_string(),
        ]);
        if let Some(s) = &self.spread {
            c = c.args([
                "--port".to_string(),
                s.here.port.to_string(),
                "--local".to_string(),
                s.here.address.to_string(),
            ]);
            if let Some(dev) = &s.here.interface {
                c = c.args(["--dev", dev.as_str()]);
            }
        }
        for r in &tunnel.remotes {
            let addr = match r.address {
                std::net::IpAddr::V4(a) => a.to_string(),
                std::net::IpAddr::V6(a) => format!("[{a}]"),
            };
            c = c.args(["--remote".to_string(), format!("{addr}:{}", r.port)]);
        }
        let end = match &tunnel.end {
            // A link with `netem:` under the relay: the node's end is a veth from the host
            // (made by its pipeline, `veths`), the tunnel's end is on the host, and the relay
            // joins the two.
            TunnelEnd::Node { link, local } if self.is_relayed(link) => {
                let e = &link.ends[*local];
                self.names.tunnel_end(&e.node, &e.interface)
            }
            TunnelEnd::Node { link, local } => {
                let e = &link.ends[*local];
                format!(
                    "{}:{}{}",
                    self.names.netns(&e.node),
                    e.interface,
                    e.options()
                )
            }
            TunnelEnd::Bridge { bridge, ifname } => {
                format!("{ifname},bridge={}", self.names.bridge(bridge))
            }
        };
        c = c.arg(format!("{end},mtu={}", tunnel.mtu));
        Pipeline::new(vec![c]).stdout(self.names.link_doc(&tunnel.name))
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

    /// The `--veth` options of `node`: one per link to a bridge, and one per relayed link (its
    /// host end alone on the host, for the relay).
    fn veths(&self, node: &Node) -> Vec<String> {
        let mut out = Vec::new();
        for t in self.tunnels() {
            let (Some(l), Some(e)) = (t.link(), t.local_end()) else {
                continue;
            };
            if e.node != node.name || !self.is_relayed(l) {
                continue;
            }
            out.push(format!(
                "{}:{}{},mtu={3},host-mtu={3}",
                self.names.host_end(&e.node, &e.interface),
                e.interface,
                e.options(),
                t.mtu
            ));
        }
        for l in &self.lab.links {
            let relayed = self.is_relayed(l);
            for (i, e) in l.ends.iter().enumerate() {
                let other = &l.ends[1 - i];
                let other_is_bridge =
                    self.lab.node(&other.node).map(|n| n.kind) == Some(Kind::Bridge);
                if e.node != node.name || !(other_is_bridge || relayed) {
                    continue;
                }
                let mut v = format!(
                    "{}:{}",
                    self.names.host_end(&e.node, &e.interface),
                    e.interface
                );
                if other_is_bridge {
                    v.push_str(&format!(",bridge={}", self.names.bridge(&other.node)));
                }
                v.push_str(&e.options());
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
        if let Some(mode) = self.cgroups {
            spec = spec.args(["--cgroups", mode.as_str()]);
        }
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
                let mut s = format!(
                    "{}:{}{}",
                    self.names.netns(&e.node),
                    e.interface,
                    e.options()
                );
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

    /// The point-to-point links made by `cloon-netns link` (one veth pair): all but the relayed.
    pub fn p2p_links(&self) -> impl Iterator<Item = &Link> {
        self.lab
            .links
            .iter()
            .filter(|l| self.is_p2p(l) && !self.is_relayed(l))
    }

    /// The names of the links the tools make for this host (each with its own record): the
    /// point-to-point links, then the VXLAN ends to other hosts.
    pub fn link_names(&self) -> impl Iterator<Item = String> + '_ {
        let p2p = self.p2p_links().map(|l| self.names.link(l));
        p2p.chain(self.tunnels().iter().map(|t| t.name.clone()))
    }

    /// Whether the lab has a link with `netem:` (and so an engine to choose).
    pub fn has_netem(&self) -> bool {
        self.links_here().any(|l| l.netem.is_some())
    }

    /// Whether `link` is a point-to-point link with `netem:` under the relay engine: two veths
    /// from the host, made by the nodes' pipelines, joined by the relay.
    pub fn is_relayed(&self, link: &Link) -> bool {
        self.engine == EngineKind::Relay
            && link.netem.is_some()
            && (self.is_p2p(link) || self.tunnel_of(link).is_some())
    }

    /// The links with `netem:`.
    pub fn netem_links(&self) -> impl Iterator<Item = &Link> {
        self.links_here().filter(|l| l.netem.is_some())
    }

    /// The path of `node`'s namespace (`/run/netns/NAME`).
    pub fn netns_path(&self, node: &str) -> std::path::PathBuf {
        Path::new("/run/netns").join(self.names.netns(node))
    }

    /// The two interfaces the impairment engine acts on for `link`: the two host ends of a
    /// relayed link; the two container ends of a point-to-point link (kernel); the container's
    /// interface and its host end for a bridge port (kernel). An error for a bridge port under
    /// the relay, which cannot stand between a bridge and its port.
    pub fn impair_ends(&self, link: &Link) -> anyhow::Result<[End; 2]> {
        if let Some(e) = self.tunnel_of(link).and_then(Tunnel::local_end) {
            // A link to another host: this host impairs the frames its node sends, the other
            // host those of its own. With the relay, between the node's veth and the tunnel's
            // end on the host (one way); with the kernel's netem, on the VXLAN interface in the
            // node's namespace (one end).
            if self.is_relayed(link) {
                return Ok([
                    End::here(&self.names.host_end(&e.node, &e.interface)),
                    End::here(&self.names.tunnel_end(&e.node, &e.interface)),
                ]);
            }
            let end = End::in_netns(self.netns_path(&e.node), &e.interface);
            return Ok([end.clone(), end]);
        }
        let [a, b] = &link.ends;
        if self.is_relayed(link) {
            return Ok([
                End::here(&self.names.host_end(&a.node, &a.interface)),
                End::here(&self.names.host_end(&b.node, &b.interface)),
            ]);
        }
        if self.is_p2p(link) {
            return Ok([
                End::in_netns(self.netns_path(&a.node), &a.interface),
                End::in_netns(self.netns_path(&b.node), &b.interface),
            ]);
        }
        let c = link
            .ends
            .iter()
            .find(|e| self.lab.node(&e.node).map(|n| n.kind) == Some(Kind::Linux))
            .ok_or_else(|| anyhow::anyhow!("link {}: no container end", link.label()))?;
        if self.engine == EngineKind::Relay {
            anyhow::bail!(
                "link {}: netem on a bridge port needs the kernel engine (netem qdisc); the relay \
                 joins two interfaces that nothing else joins, not a bridge and its port",
                link.label()
            );
        }
        Ok([
            End::in_netns(self.netns_path(&c.node), &c.interface),
            End::here(&self.names.host_end(&c.node, &c.interface)),
        ])
    }

    /// The impairment of `link` in the engine's terms (`netem: {}`: none, a plain wire).
    pub fn impair_netem(&self, link: &Link) -> anyhow::Result<impair::Netem> {
        let n = link.netem.clone().unwrap_or_default();
        impair::Netem::from_parts(n.delay, n.jitter, n.loss, n.rate, n.corrupt, n.duplicate)
            .map_err(|e| anyhow::anyhow!("link {}: netem: {e}", link.label()))
    }

    /// The command that impairs `link` (for the Makefile and the script: `cloon-lab up` calls
    /// [`impair::apply`] itself): `cloon-lab-impair apply --record-dir DIR ...`.
    pub fn impair_up(&self, link: &Link) -> anyhow::Result<Pipeline> {
        let ends = self.impair_ends(link)?;
        let n = self.impair_netem(link)?;
        let dir = self.names.impair_dir(&self.names.link(link));
        let mut c = Cmd::new(impair::RELAY_PROGRAM).args([
            "apply".to_string(),
            "--record-dir".to_string(),
            dir.display().to_string(),
            "--engine".to_string(),
            self.engine.to_string(),
        ]);
        if self.tunnel_of(link).is_some() {
            c = c.arg("--one-way");
        }
        if !n.delay.is_zero() {
            c = c.args(["--delay".to_string(), n.delay.to_string()]);
        }
        if !n.jitter.is_zero() {
            c = c.args(["--jitter".to_string(), n.jitter.to_string()]);
        }
        if !n.loss.is_zero() {
            c = c.args(["--loss".to_string(), n.loss.to_string()]);
        }
        if let Some(r) = n.rate {
            c = c.args(["--rate".to_string(), r.to_string()]);
        }
        if !n.corrupt.is_zero() {
            c = c.args(["--corrupt".to_string(), n.corrupt.to_string()]);
        }
        if !n.duplicate.is_zero() {
            c = c.args(["--duplicate".to_string(), n.duplicate.to_string()]);
        }
        c = c.args(ends.iter().map(|e| e.to_string()));
        Ok(Pipeline::new(vec![c]))
    }

    /// The command that removes `link`'s impairment, from its record.
    pub fn impair_down(&self, link: &Link) -> Pipeline {
        impair_down(&self.names.impair_dir(&self.names.link(link)))
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

/// What brings down the container `name` but its network (the lab's teardown deletes that for
/// all its containers at once, [`netns_down_all`]): `cloon-run`, `cloon-spec` and
/// `cloon-overlay` `down --name`.
pub fn down_but_netns(state: &Path, name: &str) -> Vec<Pipeline> {
    let mut all = down_by_name(state, name);
    all.retain(|p| p.cmds[0].program != "cloon-netns");
    all
}

/// `cloon-netns down --all`: every namespace, host end, bridge and link recorded in the state
/// directory `state`, the host ends and bridges deleted in one kernel request.
pub fn netns_down_all(state: &Path) -> Pipeline {
    Pipeline::new(vec![Cmd::new("cloon-netns").args([
        "down",
        "--all",
        "--state-dir",
        &state.display().to_string(),
    ])])
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

/// The command that removes the impairment recorded in `dir` (idempotent).
pub fn impair_down(dir: &Path) -> Pipeline {
    Pipeline::new(vec![Cmd::new(impair::RELAY_PROGRAM).args([
        "remove".to_string(),
        "--record-dir".to_string(),
        dir.display().to_string(),
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

    #[test]
    fn a_netem_link_under_the_relay_is_two_host_veths() {
        let lab = Lab::parse(
            "name: nl\ntopology:\n  defaults: {kind: linux, image: busybox}\n  nodes:\n    a:\n    b:\n  links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n      ipv4: [\"10.9.0.1/30\", \"10.9.0.2/30\"]\n      netem: {delay: 50ms}\n",
            Path::new("/t.yml"),
            None,
        )
        .unwrap();
        let mut p = Plan::new(lab, Path::new("/run/cloon/labs"), Path::new("/cache")).unwrap();
        let l = &p.lab.links[0].clone();
        assert!(p.is_relayed(l));
        assert_eq!(p.p2p_links().count(), 0, "no cloon-netns link");
        let a = p.names.host_end("a", "eth1");
        let b = p.names.host_end("b", "eth1");
        let up = p.node_up(p.lab.node("a").unwrap()).shell(false);
        assert!(
            up.contains(&format!("--veth {a}:eth1,addr=10.9.0.1/30 |")),
            "{up}"
        );
        assert_eq!(
            p.impair_up(l).unwrap().shell(false),
            format!("cloon-lab-impair apply --record-dir /run/cloon/labs/nl/.lab/impair/nl.a.eth1.b.eth1 --engine relay --delay 50ms {a} {b} </dev/null >/dev/null")
        );
        // The kernel's netem: one veth pair, the qdisc on both container ends.
        p.engine = EngineKind::Kernel;
        assert!(!p.is_relayed(l));
        assert_eq!(p.p2p_links().count(), 1);
        let ends = p.impair_ends(l).unwrap();
        assert_eq!(ends[0].to_string(), "/run/netns/nl-a:eth1");
    }

    #[test]
    fn a_host_makes_its_own_nodes_and_its_vxlan_ends() {
        let lab = Lab::parse(
            "name: w\nhosts:\n  h1: {address: 192.168.99.1, interface: up0}\n  h2: {address: 192.168.99.2, port: 4790}\n  h3: {address: 192.168.99.3}\ntopology:\n  defaults: {kind: linux, image: busybox}\n  nodes:\n    a: {host: h1}\n    b: {host: h2}\n    c: {host: h3}\n    sw: {kind: bridge}\n  links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n      ipv4: [\"10.9.0.1/30\", \"10.9.0.2/30\"]\n      netem: {delay: 5ms}\n    - endpoints: [\"a:eth0\", \"sw:a\"]\n      ipv4: [\"10.0.0.1/24\"]\n    - endpoints: [\"c:eth0\", \"sw:c\"]\n      ipv4: [\"10.0.0.3/24\"]\n",
            Path::new("/t.yml"),
            None,
        )
        .expect("the file is right");
        let mut p = Plan::for_host(
            lab,
            Some("h1"),
            Path::new("/run/cloon/labs"),
            Path::new("/cache"),
        )
        .expect("h1's part");
        p.engine = EngineKind::Kernel;
        assert_eq!(p.lab.containers().count(), 1);
        assert_eq!(p.p2p_links().count(), 0, "a-b crosses hosts: no veth pair");
        let [link, lan] = p.tunnels() else {
            panic!("two tunnels: {:?}", p.tunnels());
        };
        let up = p.tunnel_up(link).shell(false);
        assert_eq!(
            up,
            format!("cloon-netns vxlan --state-dir /run/cloon/labs/w --name w.a.eth1.b.eth1 --vni {} --port 4789 --local 192.168.99.1 --dev up0 --remote 192.168.99.2:4790 w-a:eth1,addr=10.9.0.1/30,mtu=1450 </dev/null >/run/cloon/labs/w/.lab/link-w.a.eth1.b.eth1.json", link.vni)
        );
        let up = p.tunnel_up(lan).shell(false);
        assert!(
            up.contains(&format!(
                "--remote 192.168.99.3:4789 {},bridge={},mtu=1450 ",
                p.names.vxlan_port("sw"),
                p.names.bridge("sw")
            )),
            "{up}"
        );
        let a = p.node_up(p.lab.node("a").expect("a")).shell(false);
        assert!(
            a.contains(",mtu=1450,host-mtu=1450"),
            "the LAN's MTU on its ports: {a}"
        );
        // The netem of a link to another host: this host's end alone, the kernel's netem.
        let l = p.tunnels()[0].link().expect("a link").clone();
        let ends = p.impair_ends(&l).expect("ends");
        assert_eq!(ends[0], ends[1]);
        assert!(p
            .impair_up(&l)
            .expect("impair")
            .shell(false)
            .contains("--engine kernel"));
        // Under the relay: a veth from the node, the tunnel's end on the host, the relay
        // between them, one way.
        p.engine = EngineKind::Relay;
        let host = p.names.host_end("a", "eth1");
        let tunnel = p.names.tunnel_end("a", "eth1");
        let up = p.tunnel_up(&p.tunnels()[0]).shell(false);
        assert!(up.contains(&format!(" {tunnel},mtu=1450 ")), "{up}");
        let a = p.node_up(p.lab.node("a").expect("a")).shell(false);
        assert!(
            a.contains(&format!(
                "--veth {host}:eth1,addr=10.9.0.1/30,mtu=1450,host-mtu=1450"
            )),
            "{a}"
        );
        let impair = p.impair_up(&l).expect("impair").shell(false);
        assert!(
            impair.contains(&format!(
                "--engine relay --one-way --delay 5ms {host} {tunnel}"
            )),
            "{impair}"
        );
    }
}
