//! `cloon-lab inspect`: the lab as it is, for people (a table) and for scripts (`--json`).
//!
//! What the topology asks for, joined with what the tools recorded and the kernel has: each
//! container's state from `cloon-run list`; its interfaces' addresses and MAC addresses from the
//! documents `up` kept (`S/.lab/node-NODE.json`, `link-LINK.json`: what cloon-netns actually made,
//! including MAC addresses the kernel chose), else from the topology; each point-to-point link
//! checked with `cloon-netns check`; each bridge and host end looked up in `/sys/class/net`. The
//! generated names (containers, namespaces, host ends, bridges, links) are shown, since they are
//! what `ip`, `crun` and the tools' own commands see.

use crate::impair::ns::host_has;
use crate::jobs::{default_jobs, parallel};
use crate::plan::Plan;
use crate::run::Tools;
use crate::spread::TunnelEnd;
use crate::topology::{Kind, Netem};
use crate::up::{netns_check, running};
use serde::Serialize;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::Path;

/// The whole lab.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct View {
    pub lab: String,
    pub file: String,
    pub state_dir: String,
    /// Whether the lab has any state (has been brought up, and not down).
    pub exists: bool,
    pub nodes: Vec<NodeView>,
    pub links: Vec<LinkView>,
}

/// One node.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeView {
    pub name: String,
    pub kind: Kind,
    /// Containers: the container's (runtime id) and namespace's name. Bridges: the bridge's.
    pub object: String,
    /// Containers: the runtime's status (`running`, `stopped`, ...), or `absent`. Bridges: `up`
    /// or `absent`.
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    pub interfaces: Vec<InterfaceView>,
}

/// One interface of a container, or one port of a bridge.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InterfaceView {
    pub name: String,
    pub addrs: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// The other end: `node:interface`.
    pub peer: String,
    /// The interface on the host side, when there is one (a veth into a bridge).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_end: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub netem: Option<Netem>,
}

/// One link.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkView {
    /// The link's name: a point-to-point link's record, or the host end of a bridge port.
    pub name: String,
    /// `p2p` (a veth pair between two namespaces), `bridge` (a container's veth, its host end
    /// in a bridge), `relay` (two veths from the host joined by the relay), or `vxlan` (this
    /// host's end of a link, or of a LAN, to other hosts).
    pub kind: String,
    pub ends: [String; 2],
    /// `up`, `broken` (recorded, but the kernel no longer matches), or `absent`.
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// A VXLAN end's VNI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vni: Option<u32>,
    /// A VXLAN end's remote hosts, `NAME (ADDRESS:PORT)`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub remotes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub netem: Option<Netem>,
    /// The impairment applied, as the engine records and finds it (a dead relay has `ok`
    /// false), for a link with `netem:` or one impaired at run time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied: Option<crate::impair::Status>,
    /// The line of the link in the topology file.
    pub line: u64,
}

fn read_doc(path: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Gathers the lab's view.
pub fn gather(plan: &Plan, tools: &Tools) -> anyhow::Result<View> {
    let names = &plan.names;
    let exists = names.state_dir().exists();
    let live = if exists {
        running(tools, plan)?
    } else {
        Default::default()
    };
    let pids: std::collections::BTreeMap<String, i64> = if exists {
        node_pids(plan)
    } else {
        Default::default()
    };
    let p2p: Vec<_> = plan.p2p_links().collect();
    let checks: Vec<bool> = if exists {
        parallel(default_jobs(), &p2p, |l| {
            netns_check(tools, plan, &names.link(l))
        })
    } else {
        vec![false; p2p.len()]
    };
    let mut links = Vec::new();
    for l in &plan.lab.links {
        let p2p_index = p2p.iter().position(|x| std::ptr::eq(*x, l));
        let applied = crate::impair::status(&names.impair_dir(&names.link(l)))
            .ok()
            .flatten();
        let (name, kind, state) = match p2p_index {
            None if plan.is_relayed(l) => {
                // Two veths from the host, joined by the relay: up when both host ends are
                // there and the relay runs.
                let hosts = l
                    .ends
                    .iter()
                    .all(|e| host_has(&names.host_end(&e.node, &e.interface)));
                let relay = applied.as_ref().map(|a| a.ok);
                let state = match (hosts, relay) {
                    (true, Some(true)) => "up",
                    (true, Some(false)) => "broken (relay dead)",
                    (true, None) => "broken (no relay)",
                    (false, _) => "absent",
                };
                (names.link(l), "relay", state.to_string())
            }
            Some(i) => {
                let name = names.link(l);
                let recorded = names.state_dir().join(&name).exists();
                let state = match (recorded, checks[i]) {
                    (_, true) => "up",
                    (true, false) => "broken",
                    (false, false) => "absent",
                };
                (name, "p2p", state.to_string())
            }
            None => {
                let c = l
                    .ends
                    .iter()
                    .find(|e| plan.lab.node(&e.node).map(|n| n.kind) == Some(Kind::Linux));
                let host = c
                    .map(|e| names.host_end(&e.node, &e.interface))
                    .unwrap_or_default();
                let state = if host_has(&host) { "up" } else { "absent" };
                (host, "bridge", state.to_string())
            }
        };
        links.push(LinkView {
            name,
            kind: kind.to_string(),
            ends: [l.ends[0].label(), l.ends[1].label()],
            state,
            mtu: l.mtu,
            vni: None,
            remotes: Vec::new(),
            netem: l.netem.clone(),
            applied,
            line: l.line,
        });
    }
    // This host's ends of the links and LANs to other hosts.
    let tunnels = plan.tunnels();
    let tunnel_checks: Vec<bool> = if exists {
        parallel(default_jobs(), tunnels, |t| {
            netns_check(tools, plan, &t.name)
        })
    } else {
        vec![false; tunnels.len()]
    };
    for (t, ok) in tunnels.iter().zip(tunnel_checks) {
        let recorded = names.state_dir().join(&t.name).exists();
        let state = match (recorded, ok) {
            (_, true) => "up",
            (true, false) => "broken",
            (false, false) => "absent",
        };
        let remotes = t
            .remotes
            .iter()
            .map(|h| {
                format!(
                    "{} ({})",
                    h.name,
                    std::net::SocketAddr::new(h.address, h.port)
                )
            })
            .collect();
        let (ends, netem, applied, line) = match &t.end {
            TunnelEnd::Node { link: l, .. } => (
                [l.ends[0].label(), l.ends[1].label()],
                l.netem.clone(),
                crate::impair::status(&names.impair_dir(&t.name))
                    .ok()
                    .flatten(),
                l.line,
            ),
            TunnelEnd::Bridge { bridge, ifname } => (
                [
                    format!("{bridge}:{ifname}"),
                    "its ports on the other hosts".into(),
                ],
                None,
                None,
                plan.lab.node(bridge).map_or(0, |n| n.line),
            ),
        };
        links.push(LinkView {
            name: t.name.clone(),
            kind: "vxlan".into(),
            ends,
            state: state.into(),
            mtu: Some(t.mtu),
            vni: Some(t.vni),
            remotes,
            netem,
            applied,
            line,
        });
    }
    let mut nodes = Vec::new();
    for n in &plan.lab.nodes {
        let mut interfaces = Vec::new();
        for l in &plan.lab.links {
            for (i, e) in l.ends.iter().enumerate() {
                if e.node != n.name {
                    continue;
                }
                let other = &l.ends[1 - i];
                let mut iv = InterfaceView {
                    name: e.interface.clone(),
                    addrs: e.addrs.clone(),
                    mac: e.mac.clone(),
                    peer: other.label(),
                    host_end: None,
                    netem: l.netem.clone(),
                };
                let other_kind = plan.lab.node(&other.node).map(|x| x.kind);
                let relayed = plan.is_relayed(l);
                match (n.kind, other_kind) {
                    (Kind::Linux, Some(Kind::Bridge)) | (Kind::Linux, _)
                        if relayed || other_kind == Some(Kind::Bridge) =>
                    {
                        iv.host_end = Some(names.host_end(&e.node, &e.interface));
                        recorded_end(&mut iv, read_doc(&names.node_doc(&n.name)).as_ref(), |v| {
                            v.pointer("/netns/links")
                                .and_then(Value::as_array)
                                .and_then(|a| {
                                    a.iter().find(|x| {
                                        x.get("guest").and_then(Value::as_str)
                                            == Some(e.interface.as_str())
                                    })
                                })
                                .cloned()
                        });
                    }
                    (Kind::Bridge, _) => {
                        iv.host_end = Some(names.host_end(&other.node, &other.interface));
                    }
                    _ => {
                        let ns = names.netns(&e.node);
                        recorded_end(
                            &mut iv,
                            read_doc(&names.link_doc(&names.link(l))).as_ref(),
                            |v| {
                                v.pointer("/link/ends")
                                    .and_then(Value::as_array)
                                    .and_then(|a| {
                                        a.iter().find(|x| {
                                            x.get("netns").and_then(Value::as_str)
                                                == Some(ns.as_str())
                                                && x.get("ifname").and_then(Value::as_str)
                                                    == Some(e.interface.as_str())
                                        })
                                    })
                                    .cloned()
                            },
                        );
                    }
                }
                interfaces.push(iv);
            }
        }
        for t in tunnels {
            let (link, local) = match &t.end {
                TunnelEnd::Bridge { bridge, ifname } if *bridge == n.name => {
                    interfaces.push(InterfaceView {
                        name: ifname.clone(),
                        addrs: Vec::new(),
                        mac: None,
                        peer: format!("VXLAN {} to {}", t.vni, t.remote_names()),
                        host_end: Some(ifname.clone()),
                        netem: None,
                    });
                    continue;
                }
                TunnelEnd::Bridge { .. } => continue,
                TunnelEnd::Node { link, local } => (link, *local),
            };
            let (e, other) = (&link.ends[local], &link.ends[1 - local]);
            if e.node != n.name {
                continue;
            }
            let mut iv = InterfaceView {
                name: e.interface.clone(),
                addrs: e.addrs.clone(),
                mac: e.mac.clone(),
                peer: format!(
                    "{} on {} (VXLAN {})",
                    other.label(),
                    t.remote_names(),
                    t.vni
                ),
                host_end: None,
                netem: link.netem.clone(),
            };
            recorded_end(&mut iv, read_doc(&names.link_doc(&t.name)).as_ref(), |v| {
                v.get("vxlan").cloned()
            });
            interfaces.push(iv);
        }
        let (object, state, pid) = match n.kind {
            Kind::Linux => {
                let c = names.container(&n.name);
                let state = live.get(&c).cloned().unwrap_or_else(|| "absent".into());
                let pid = pids.get(&c).copied();
                (c, state, pid)
            }
            Kind::Bridge => {
                let b = names.bridge(&n.name);
                let state = if host_has(&b) { "up" } else { "absent" };
                (b, state.to_string(), None)
            }
        };
        nodes.push(NodeView {
            name: n.name.clone(),
            kind: n.kind,
            object,
            state,
            pid: pid.filter(|_| n.kind == Kind::Linux),
            image: n.image.as_ref().map(|i| i.spec()),
            interfaces,
        });
    }
    Ok(View {
        lab: plan.lab.name.clone(),
        file: plan.lab.file.display().to_string(),
        state_dir: names.state_dir().display().to_string(),
        exists,
        nodes,
        links,
    })
}

/// The names of a tunnel's remote hosts.
/// The pids the node documents record.
fn node_pids(plan: &Plan) -> std::collections::BTreeMap<String, i64> {
    plan.lab
        .containers()
        .filter_map(|n| {
            let d = read_doc(&plan.names.node_doc(&n.name))?;
            let pid = d.pointer("/container/pid")?.as_i64()?;
            Some((plan.names.container(&n.name), pid))
        })
        .collect()
}

/// Takes an interface's addresses and MAC from what the tools recorded, when they did.
fn recorded_end(
    iv: &mut InterfaceView,
    doc: Option<&Value>,
    find: impl Fn(&Value) -> Option<Value>,
) {
    let Some(end) = doc.and_then(find) else {
        return;
    };
    let addrs = strings(end.get("addrs"));
    if !addrs.is_empty() {
        iv.addrs = addrs;
    }
    if let Some(m) = end
        .get("mac")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
    {
        iv.mac = Some(m.to_string());
    }
}

/// The table for people.
pub fn table(v: &View) -> String {
    let containers = v.nodes.iter().filter(|n| n.kind == Kind::Linux).count();
    let running = v
        .nodes
        .iter()
        .filter(|n| n.kind == Kind::Linux && n.state == "running")
        .count();
    let mut out = format!(
        "lab {}: {} container(s), {} running; {} bridge(s); {} link(s); state in {}{}\n",
        v.lab,
        containers,
        running,
        v.nodes.len() - containers,
        v.links.len(),
        v.state_dir,
        if v.exists { "" } else { " (not up)" }
    );
    let header = [
        "NODE",
        "KIND",
        "NAME",
        "STATE",
        "IMAGE",
        "INTERFACE",
        "ADDRESSES",
        "MAC",
        "PEER",
        "HOST SIDE",
        "NETEM",
    ];
    let mut rows: Vec<[String; 11]> = Vec::new();
    for n in &v.nodes {
        let node_cells = [
            n.name.clone(),
            n.kind.as_str().to_string(),
            n.object.clone(),
            n.state.clone(),
            n.image.clone().unwrap_or_else(|| "-".into()),
        ];
        if n.interfaces.is_empty() {
            let mut r: [String; 11] = Default::default();
            r[..5].clone_from_slice(&node_cells);
            for c in r.iter_mut().skip(5) {
                *c = "-".into();
            }
            rows.push(r);
        }
        for (i, iface) in n.interfaces.iter().enumerate() {
            let mut r: [String; 11] = Default::default();
            if i == 0 {
                r[..5].clone_from_slice(&node_cells);
            }
            r[5] = iface.name.clone();
            r[6] = if iface.addrs.is_empty() {
                "-".into()
            } else {
                iface.addrs.join(",")
            };
            r[7] = iface.mac.clone().unwrap_or_else(|| "-".into());
            r[8] = iface.peer.clone();
            r[9] = iface.host_end.clone().unwrap_or_else(|| "-".into());
            r[10] = iface
                .netem
                .as_ref()
                .map(Netem::summary)
                .unwrap_or_else(|| "-".into());
            rows.push(r);
        }
    }
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let mut line = |cells: &[String]| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                let _ = write!(s, "{c:<w$}  ");
            }
        }
        out.push_str(s.trim_end());
        out.push('\n');
    };
    line(&header.map(String::from));
    for r in &rows {
        line(r);
    }
    out.push_str("\nLINK  KIND  STATE  ENDS\n");
    let mut w = [4usize, 4, 5];
    for l in &v.links {
        w[0] = w[0].max(l.name.len());
        w[1] = w[1].max(l.kind.len());
        w[2] = w[2].max(l.state.len());
    }
    out = out.replacen(
        "\nLINK  KIND  STATE  ENDS\n",
        &format!(
            "\n{:<a$}  {:<b$}  {:<c$}  ENDS\n",
            "LINK",
            "KIND",
            "STATE",
            a = w[0],
            b = w[1],
            c = w[2]
        ),
        1,
    );
    for l in &v.links {
        let mut extra = String::new();
        if let Some(m) = l.mtu {
            let _ = write!(extra, " mtu {m}");
        }
        if let Some(v) = l.vni {
            let _ = write!(extra, " vni {v} to {}", l.remotes.join(", "));
        }
        if let Some(n) = &l.netem {
            let _ = write!(extra, " netem {}", n.summary());
        }
        if let Some(a) = &l.applied {
            let _ = write!(
                extra,
                " applied {} ({} engine{})",
                a.netem,
                a.engine,
                match (&a.relay, a.ok) {
                    (Some(p), true) => format!(", relay pid {}", p.pid),
                    (Some(p), false) => format!(", relay pid {} dead", p.pid),
                    (None, true) => String::new(),
                    (None, false) => ", not in force".into(),
                }
            );
        }
        let _ = writeln!(
            out,
            "{:<a$}  {:<b$}  {:<c$}  {} -- {}{extra}",
            l.name,
            l.kind,
            l.state,
            l.ends[0],
            l.ends[1],
            a = w[0],
            b = w[1],
            c = w[2]
        );
    }
    out
}
