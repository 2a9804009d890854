//! A lab spread over several hosts (cloon's `hosts:` and `host:`), linked by the kernel's VXLAN:
//! no daemon, no controller, no tunnel of cloon's own.
//!
//! `cloon-lab up FILE --host h1` brings up this host's part: the containers whose `host:` is
//! h1, the links between two of them as on one machine, and this host's end of every link that
//! crosses hosts. Run on each host, the lab is whole.
//!
//! - A **point-to-point link across hosts** is, on each side, a VXLAN interface made directly
//!   inside the node's namespace under the link's interface name (`eth1`), its tunnel's UDP
//!   socket on the host: one VNI per link, the other host's address as the only remote, learning
//!   off (`cloon-netns vxlan NS:IF`).
//! - A **LAN spanning hosts** (a bridge node with ports on several hosts) is a bridge on each of
//!   those hosts, joined by one VXLAN port per host with head-end replication to the others (one
//!   all-zeros FDB entry per remote host; learning on, so known MACs go to one host only)
//!   (`cloon-netns vxlan IF,bridge=BR`).
//!
//! The VNI is derived from the lab's name and the link's (or the LAN's), the same on every host
//! (they read the same file), distinct within the lab, and recorded by cloon-netns. The MTU of a
//! link across hosts is the link's `mtu:`, else 1450: a 1500-byte underlay less VXLAN's 50
//! bytes (outer IPv4 20, UDP 8, VXLAN 8, inner Ethernet 14; 1430 over IPv6, 20 bytes more); the
//! ports of a LAN spanning hosts get the LAN's smallest `mtu:`, else 1450, so that no frame is
//! too big for the tunnel.

use crate::naming::Names;
use crate::topology::{Endpoint, Host, Kind, Lab, Link};
use anyhow::bail;
use std::collections::{BTreeMap, BTreeSet};

/// The MTU of a link across hosts unless its `mtu:` says: 1500 less VXLAN's overhead over IPv4
/// (over IPv6, [`tunnel_mtu`]).
pub const TUNNEL_MTU: u32 = 1450;

/// The MTU of a link across hosts whose addresses are `of`'s family, unless its `mtu:` says:
/// 1500 less VXLAN's 50 bytes over IPv4, 70 over IPv6.
pub fn tunnel_mtu(of: &Host) -> u32 {
    if of.address.is_ipv6() {
        1430
    } else {
        TUNNEL_MTU
    }
}

/// This host's part of a lab spread over several.
#[derive(Debug, Clone)]
pub struct Spread {
    /// This host.
    pub here: Host,
    /// This host's ends of the links and LANs that cross hosts.
    pub tunnels: Vec<Tunnel>,
}

/// This host's end of one link, or one LAN, that crosses hosts: one VXLAN interface.
#[derive(Debug, Clone)]
pub struct Tunnel {
    /// The name its record is filed under: the link's name, or `LAB.BRIDGE.vxlan` for a LAN.
    pub name: String,
    pub vni: u32,
    pub mtu: u32,
    /// The hosts at the other end (one for a link; every other host with a port for a LAN).
    pub remotes: Vec<Host>,
    pub end: TunnelEnd,
}

/// Where a tunnel's VXLAN interface is.
#[derive(Debug, Clone)]
pub enum TunnelEnd {
    /// Inside a local node's namespace, as its end of `link` (the topology's link; `local` is
    /// the index of the local end in `link.ends`).
    Node { link: Box<Link>, local: usize },
    /// On the host, a port of the bridge of the bridge node `bridge`, named `ifname`.
    Bridge { bridge: String, ifname: String },
}

impl Tunnel {
    /// The topology's link of a point-to-point tunnel.
    pub fn link(&self) -> Option<&Link> {
        match &self.end {
            TunnelEnd::Node { link, .. } => Some(link),
            TunnelEnd::Bridge { .. } => None,
        }
    }

    /// The local end of a point-to-point tunnel.
    pub fn local_end(&self) -> Option<&Endpoint> {
        match &self.end {
            TunnelEnd::Node { link, local } => Some(&link.ends[*local]),
            TunnelEnd::Bridge { .. } => None,
        }
    }

    /// The interface: the node's (`eth1`) or the bridge port's generated name.
    pub fn ifname(&self) -> &str {
        match &self.end {
            TunnelEnd::Node { link, local } => &link.ends[*local].interface,
            TunnelEnd::Bridge { ifname, .. } => ifname,
        }
    }

    /// The names of the hosts it goes to, `h2, h3`.
    pub fn remote_names(&self) -> String {
        let names: Vec<&str> = self.remotes.iter().map(|h| h.name.as_str()).collect();
        names.join(", ")
    }
}

/// The VNI of each link and LAN that crosses hosts, for the whole lab (so that every host
/// derives the same): by name (`Names::link` for a link, the bridge node's name for a LAN), from
/// a hash of the lab and that name, a collision within the lab moved to the next free value in
/// the file's order.
pub fn vnis(lab: &Lab, lans: &BTreeMap<String, Lan>, names: &Names) -> BTreeMap<String, u32> {
    let mut out = BTreeMap::new();
    let mut used = BTreeSet::new();
    let mut give = |key: String, seed: String| {
        let mut vni = names.vni(&seed);
        while !used.insert(vni) {
            vni = vni % 0xff_ffff + 1;
        }
        out.insert(key, vni);
    };
    for l in &lab.links {
        if crosses(lab, l) {
            let name = names.link(l);
            give(name.clone(), format!("link\0{name}"));
        }
    }
    for b in lab.nodes.iter().filter(|n| n.kind == Kind::Bridge) {
        if lans.get(&b.name).is_some_and(Lan::spans) {
            give(b.name.clone(), format!("lan\0{}", b.name));
        }
    }
    out
}

/// Whether `link` joins two containers on different hosts.
pub fn crosses(lab: &Lab, link: &Link) -> bool {
    let [a, b] = &link.ends;
    match (lab.host_of(&a.node), lab.host_of(&b.node)) {
        (Some(x), Some(y)) => x.name != y.name,
        _ => false,
    }
}

/// One LAN (a bridge node) as the hosts see it.
#[derive(Debug, Clone, Default)]
pub struct Lan {
    /// The hosts that have a container linked to the bridge, in the file's order.
    pub hosts: Vec<Host>,
    /// The smallest `mtu:` of its links, if any says.
    pub mtu: Option<u32>,
}

impl Lan {
    /// Whether it spans hosts (then a VXLAN port joins its bridge on each).
    pub fn spans(&self) -> bool {
        self.hosts.len() > 1
    }

    /// Its MTU when it spans hosts (of `here`'s family): the smallest `mtu:` of its links, else
    /// [`tunnel_mtu`].
    fn mtu(&self, here: &Host) -> u32 {
        self.mtu.unwrap_or_else(|| tunnel_mtu(here))
    }
}

/// Every bridge node's [`Lan`], by name, in one pass over the links.
pub fn lans(lab: &Lab) -> BTreeMap<String, Lan> {
    let mut out: BTreeMap<String, Lan> = lab
        .nodes
        .iter()
        .filter(|n| n.kind == Kind::Bridge)
        .map(|n| (n.name.clone(), Lan::default()))
        .collect();
    for l in &lab.links {
        for (i, end) in l.ends.iter().enumerate() {
            let Some(lan) = out.get_mut(&end.node) else {
                continue;
            };
            lan.mtu = match (lan.mtu, l.mtu) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if let Some(h) = lab.host_of(&l.ends[1 - i].node) {
                if !lan.hosts.iter().any(|o| o.name == h.name) {
                    lan.hosts.push(h.clone());
                }
            }
        }
    }
    out
}

/// This host's part of `lab`: the lab as this host runs it (its containers, the bridges they
/// are linked to, the links among them, the MTU of a LAN spanning hosts set on its ports) and
/// its tunnels. A lab without `hosts:` is returned as it is, with no spread; `--host` is then a
/// mistake, as is its absence for a lab with `hosts:`.
pub fn localize(
    lab: Lab,
    names: &Names,
    host: Option<&str>,
) -> anyhow::Result<(Lab, Option<Spread>)> {
    let here = match (host, lab.hosts.is_empty()) {
        (None, true) => return Ok((lab, None)),
        (Some(h), true) => bail!(
            "--host {h}: the lab {} runs on one machine (its file has no `hosts:`): leave --host \
             out",
            lab.name
        ),
        (None, false) => bail!(
            "the lab {} is spread over hosts ({}): say which one this machine is with --host \
             NAME, on each of them",
            lab.name,
            host_names(&lab)
        ),
        (Some(h), false) => match lab.host(h) {
            Some(x) => x.clone(),
            None => bail!(
                "--host {h} is not one of the lab's hosts: {}",
                host_names(&lab)
            ),
        },
    };
    let lans = lans(&lab);
    let vnis = vnis(&lab, &lans, names);
    let is_here = |node: &str| lab.host_of(node).is_some_and(|h| h.name == here.name);
    let mut tunnels = Vec::new();
    let mut links = Vec::new();
    let mut bridges: BTreeSet<String> = BTreeSet::new();
    for l in &lab.links {
        let [a, b] = &l.ends;
        let kind = |n: &str| lab.node(n).map(|x| x.kind);
        let bridge_end = l.ends.iter().find(|e| kind(&e.node) == Some(Kind::Bridge));
        match bridge_end {
            Some(br) => {
                let c = if br.node == a.node { b } else { a };
                if !is_here(&c.node) {
                    continue;
                }
                bridges.insert(br.node.clone());
                let mut l = l.clone();
                if let Some(lan) = lans.get(&br.node).filter(|lan| lan.spans()) {
                    l.mtu = l.mtu.or(Some(lan.mtu(&here)));
                }
                links.push(l);
            }
            None => match (is_here(&a.node), is_here(&b.node)) {
                (true, true) => links.push(l.clone()),
                (false, false) => {}
                (here_a, _) => {
                    let (local, remote) = if here_a { (0, b) } else { (1, a) };
                    let Some(other) = lab.host_of(&remote.node) else {
                        continue;
                    };
                    let name = names.link(l);
                    tunnels.push(Tunnel {
                        vni: vnis.get(&name).copied().unwrap_or(1),
                        name,
                        mtu: l.mtu.unwrap_or_else(|| tunnel_mtu(&here)),
                        remotes: vec![other.clone()],
                        end: TunnelEnd::Node {
                            link: Box::new(l.clone()),
                            local,
                        },
                    });
                }
            },
        }
    }
    for b in lab.nodes.iter().filter(|n| bridges.contains(&n.name)) {
        let Some(lan) = lans.get(&b.name).filter(|lan| lan.spans()) else {
            continue;
        };
        tunnels.push(Tunnel {
            name: names.lan_tunnel(&b.name),
            vni: vnis.get(&b.name).copied().unwrap_or(1),
            mtu: lan.mtu(&here),
            remotes: lan
                .hosts
                .iter()
                .filter(|h| h.name != here.name)
                .cloned()
                .collect(),
            end: TunnelEnd::Bridge {
                bridge: b.name.clone(),
                ifname: names.vxlan_port(&b.name),
            },
        });
    }
    let nodes = lab
        .nodes
        .iter()
        .filter(|n| match n.kind {
            Kind::Linux => is_here(&n.name),
            Kind::Bridge => bridges.contains(&n.name),
        })
        .cloned()
        .collect();
    let local = Lab {
        nodes,
        links,
        ..lab
    };
    Ok((local, Some(Spread { here, tunnels })))
}

/// Checks, before anything is made, that this machine is the host it says it is (it has the
/// host's address, and its underlay interface when `interface:` names one) and that every host
/// it has a tunnel to is reachable from that address: routed, since VXLAN has no handshake that
/// would tell more (a host that is routed but down or firewalled is not seen here, only in its
/// links' silence).
pub fn check_underlay(spread: &Spread) -> anyhow::Result<()> {
    let here = &spread.here;
    if let Some(dev) = &here.interface {
        if !crate::impair::ns::host_has(dev) {
            bail!(
                "host {}: its underlay interface {dev} (hosts.{}.interface) is not on this \
                 machine: is this host {}? give the right --host, or correct the interface; \
                 nothing was made",
                here.name,
                here.name,
                here.name
            );
        }
    }
    let socket = std::net::UdpSocket::bind((here.address, 0)).map_err(|e| {
        anyhow::anyhow!(
            "host {}: this machine does not have its address {} ({e}): is this host {}? give \
             the right --host, or correct hosts.{}.address; nothing was made",
            here.name,
            here.address,
            here.name,
            here.name
        )
    })?;
    let mut seen = BTreeSet::new();
    for remote in spread.tunnels.iter().flat_map(|t| &t.remotes) {
        if !seen.insert(&remote.name) {
            continue;
        }
        if let Err(e) = socket.connect((remote.address, remote.port)) {
            bail!(
                "host {} ({}) is unreachable from host {} ({}): {e}: check hosts.{}.address, \
                 the underlay between the hosts and its routes; nothing was made",
                remote.name,
                remote.address,
                here.name,
                here.address,
                remote.name
            );
        }
    }
    Ok(())
}

fn host_names(lab: &Lab) -> String {
    lab.hosts
        .iter()
        .map(|h| h.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const FILE: &str = "name: wan
hosts:
  h1: {address: 192.168.99.1}
  h2: {address: 192.168.99.2, port: 4790, interface: uplink}
  h3: {address: 192.168.99.3}
topology:
  defaults: {kind: linux, image: busybox, host: h1}
  nodes:
    a:
    b: {host: h2}
    c: {host: h3}
    d: {host: h2}
    lan: {kind: bridge}
  links:
    - endpoints: [\"a:eth1\", \"b:eth1\"]
      ipv4: [\"10.9.0.1/30\", \"10.9.0.2/30\"]
    - endpoints: [\"b:eth2\", \"d:eth2\"]
    - endpoints: [\"a:eth0\", \"lan:a\"]
      ipv4: [\"10.0.0.1/24\"]
    - endpoints: [\"b:eth0\", \"lan:b\"]
      ipv4: [\"10.0.0.2/24\"]
    - endpoints: [\"c:eth0\", \"lan:c\"]
      ipv4: [\"10.0.0.3/24\"]
      mtu: 1400
";

    fn lab() -> (Lab, Names) {
        let lab = Lab::parse(FILE, Path::new("/t.yml"), None).expect("the file is right");
        let names = Names::new("wan", Path::new("/run/cloon/labs"));
        (lab, names)
    }

    #[test]
    fn each_host_gets_its_nodes_and_its_ends() {
        let (lab, names) = lab();
        let (h1, s1) = localize(lab.clone(), &names, Some("h1")).expect("h1");
        let s1 = s1.expect("spread");
        let nodes: Vec<&str> = h1.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(nodes, ["a", "lan"]);
        assert_eq!(h1.links.len(), 1, "a's LAN port only");
        assert_eq!(h1.links[0].mtu, Some(1400), "the LAN's smallest mtu");
        assert_eq!(s1.tunnels.len(), 2);
        let p2p = &s1.tunnels[0];
        assert_eq!(p2p.name, "wan.a.eth1.b.eth1");
        assert_eq!(p2p.ifname(), "eth1");
        assert_eq!(p2p.mtu, TUNNEL_MTU);
        assert_eq!(p2p.remotes.len(), 1);
        assert_eq!(p2p.remotes[0].name, "h2");
        assert_eq!(p2p.remotes[0].port, 4790);
        let lan = &s1.tunnels[1];
        assert_eq!(lan.name, "wan.lan.vxlan");
        let remotes: Vec<&str> = lan.remotes.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(remotes, ["h2", "h3"]);
        assert_eq!(lan.mtu, 1400);

        let (h2, s2) = localize(lab.clone(), &names, Some("h2")).expect("h2");
        let s2 = s2.expect("spread");
        let nodes: Vec<&str> = h2.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(nodes, ["b", "d", "lan"]);
        assert_eq!(h2.links.len(), 2, "b-d on h2, and b's LAN port");
        assert_eq!(
            s2.tunnels[0].vni, p2p.vni,
            "both ends of a link share its VNI"
        );
        assert_eq!(s2.tunnels[1].vni, lan.vni);
        assert_ne!(p2p.vni, lan.vni);
        assert_eq!(s2.tunnels[0].remotes[0].name, "h1");
    }

    #[test]
    fn host_is_required_exactly_when_the_lab_is_spread() {
        let (lab, names) = lab();
        let e = localize(lab.clone(), &names, None).expect_err("no --host");
        assert!(e.to_string().contains("--host NAME"), "{e}");
        let e = localize(lab, &names, Some("h9")).expect_err("unknown host");
        assert!(e.to_string().contains("h1, h2, h3"), "{e}");
        let one = Lab::parse(
            "name: x\ntopology:\n  nodes:\n    a: {kind: linux, image: busybox}\n",
            Path::new("/t.yml"),
            None,
        )
        .expect("one machine");
        let e = localize(one.clone(), &names, Some("h1")).expect_err("--host on one machine");
        assert!(e.to_string().contains("leave --host out"), "{e}");
        let (same, spread) = localize(one, &names, None).expect("one machine");
        assert!(spread.is_none());
        assert_eq!(same.nodes.len(), 1);
    }

    #[test]
    fn vnis_are_stable_distinct_and_in_range() {
        let (lab, names) = lab();
        let v = vnis(&lab, &lans(&lab), &names);
        assert_eq!(v.len(), 2, "one cross link, one spanning LAN: {v:?}");
        assert_eq!(v, vnis(&lab, &lans(&lab), &names));
        let values: BTreeSet<u32> = v.values().copied().collect();
        assert_eq!(values.len(), v.len());
        assert!(values.iter().all(|x| (1..=0xff_ffff).contains(x)));
        let other = Names::new("wan2", Path::new("/run/cloon/labs"));
        assert_ne!(
            vnis(&lab, &lans(&lab), &other),
            v,
            "another lab, other VNIs"
        );
    }
}
