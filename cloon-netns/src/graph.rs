//! `cloon-netns graph`: a drawing of the live lab, from every record under the state root,
//! cross-checked with the kernel where that is cheap (namespace files, host interfaces, bridges):
//! Graphviz DOT on stdout, or SVG through `dot -Tsvg` (`--svg FILE`).
//!
//! Each namespace is a box labelled with its containers' names and the namespace's name, one row
//! per interface (a port edges attach to) with its addresses and MAC address; host ends are
//! ellipses and bridges hexagons, in a "host" cluster; veth pairs, bridge ports and
//! point-to-point links are edges. What the kernel no longer has is drawn red and dashed. The
//! output is deterministic: the same records and kernel state give the same bytes.

use crate::bridge::{self, BridgeRecord};
use crate::link::Netlink;
use crate::namespace::{self, Probe};
use crate::p2p::{self, P2pRecord};
use crate::record::Record;
use crate::{GraphArgs, PART};
use cloon_core::{explain, host, Code, Error, Result, StateDir};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

/// Everything the graph shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lab {
    /// The state root the records come from (the graph's title).
    pub root: String,
    /// Containers' namespace records, by container name.
    pub containers: Vec<(String, Record)>,
    /// Point-to-point links, by name.
    pub links: Vec<P2pRecord>,
    /// Bridges, by name.
    pub bridges: Vec<BridgeRecord>,
    /// The node ids ([`ns_id`], [`host_id`], [`bridge_id`]) of what the kernel no longer has as
    /// recorded.
    pub missing: BTreeSet<String>,
}

/// The node id of the namespace whose file is `path`.
pub fn ns_id(path: &str) -> String {
    format!("ns:{path}")
}

/// The node id of the host end `name`.
pub fn host_id(name: &str) -> String {
    format!("host:{name}")
}

/// The node id of the bridge `name`.
pub fn bridge_id(name: &str) -> String {
    format!("bridge:{name}")
}

/// Reads every record under the state root, and asks the kernel which recorded namespaces, host
/// ends and bridges are gone.
pub fn gather(state: &StateDir) -> Result<Lab> {
    let mut lab = Lab {
        root: state.root().display().to_string(),
        ..Lab::default()
    };
    for name in state.names()? {
        if let Some(record) = state.load::<Record>(&name, PART)? {
            lab.containers.push((name.clone(), record));
        }
        if let Some(link) = state.load::<P2pRecord>(&name, p2p::PART)? {
            lab.links.push(link);
        }
    }
    for name in state.shared_names(bridge::KIND)? {
        if let Some(record) = state.read_shared::<BridgeRecord>(bridge::KIND, &name)? {
            lab.bridges.push(record);
        }
    }

    let mut namespaces: BTreeMap<&str, u64> = BTreeMap::new();
    for (_, record) in &lab.containers {
        namespaces.insert(&record.path, record.inode);
    }
    for end in lab.links.iter().flat_map(|l| &l.ends) {
        namespaces.insert(&end.path, end.inode);
    }
    let mut missing = BTreeSet::new();
    for (path, inode) in namespaces {
        if namespace::probe(Path::new(path))? != Probe::Namespace(inode) {
            missing.insert(ns_id(path));
        }
    }
    let netlink = Netlink::connect()?;
    let same = |name: &str, index: u32| -> Result<bool> {
        Ok(netlink
            .link_by_name(name)?
            .is_some_and(|l| l.index == index))
    };
    for (_, record) in &lab.containers {
        for link in &record.links {
            if !same(&link.host, link.host_index)? {
                missing.insert(host_id(&link.host));
            }
        }
    }
    for bridge in &lab.bridges {
        if !same(&bridge.name, bridge.index)? {
            missing.insert(bridge_id(&bridge.name));
        }
    }
    lab.missing = missing;
    Ok(lab)
}

/// One interface row of a namespace box.
#[derive(Debug, Default)]
struct Row {
    name: String,
    lines: Vec<String>,
}

/// One namespace box.
#[derive(Debug, Default)]
struct NsBox {
    netns: String,
    containers: Vec<String>,
    rows: Vec<Row>,
}

impl NsBox {
    fn add_row(&mut self, name: &str, addrs: &[String], mac: &str, mtu: Option<u32>) {
        let mut lines = addrs.to_vec();
        if !mac.is_empty() {
            lines.push(mac.to_string());
        }
        if let Some(mtu) = mtu {
            lines.push(format!("mtu {mtu}"));
        }
        self.rows.push(Row {
            name: name.to_string(),
            lines,
        });
    }
}

/// The lab in Graphviz DOT.
pub fn dot(lab: &Lab) -> String {
    // Namespaces in the order of their first container, then those only links reach, by path.
    let mut order: Vec<String> = Vec::new();
    let mut boxes: BTreeMap<String, NsBox> = BTreeMap::new();
    for (name, record) in &lab.containers {
        if !order.contains(&record.path) {
            order.push(record.path.clone());
        }
        let b = boxes.entry(record.path.clone()).or_default();
        b.netns.clone_from(&record.name);
        b.containers.push(name.clone());
        for link in &record.links {
            b.add_row(&link.guest, &link.addrs, &link.mac, link.mtu);
        }
    }
    let mut linked_only: BTreeSet<String> = BTreeSet::new();
    for link in &lab.links {
        for end in &link.ends {
            if !boxes.contains_key(&end.path) {
                linked_only.insert(end.path.clone());
            }
            let b = boxes.entry(end.path.clone()).or_default();
            if b.netns.is_empty() {
                b.netns.clone_from(&end.netns);
            }
            b.add_row(&end.ifname, &end.addrs, &end.mac, end.mtu);
        }
    }
    order.extend(linked_only);

    let mut out = String::new();
    let _ = writeln!(out, "graph cloon {{");
    let _ = writeln!(
        out,
        "  graph [rankdir=LR, fontname=\"Helvetica\", labelloc=t, label={}];",
        quote(&format!("cloon lab ({})", lab.root))
    );
    out.push_str("  node [fontname=\"Helvetica\", fontsize=10];\n");
    out.push_str("  edge [fontname=\"Helvetica\", fontsize=9];\n");
    if lab.containers.is_empty() && lab.links.is_empty() && lab.bridges.is_empty() {
        let _ = writeln!(
            out,
            "  empty [shape=note, label={}];",
            quote(&format!("nothing recorded under {}", lab.root))
        );
    }

    // The host: bridges and host ends.
    let mut bridges: BTreeMap<String, Option<&BridgeRecord>> = BTreeMap::new();
    for record in &lab.bridges {
        bridges.insert(record.name.clone(), Some(record));
    }
    for (_, record) in &lab.containers {
        for name in record.links.iter().filter_map(|l| l.bridge.as_ref()) {
            bridges.entry(name.clone()).or_insert(None);
        }
    }
    let host_ends: Vec<_> = lab.containers.iter().flat_map(|(_, r)| &r.links).collect();
    if !bridges.is_empty() || !host_ends.is_empty() {
        out.push_str("  subgraph cluster_host {\n");
        out.push_str(
            "    label=\"host\"; style=dashed; color=\"#888888\"; fontcolor=\"#555555\";\n",
        );
        for (name, record) in &bridges {
            let id = bridge_id(name);
            let mut label = vec![name.clone(), "bridge".to_string()];
            if record.is_some_and(|r| !r.created) {
                label.push("(not made by cloon)".into());
            }
            let _ = writeln!(
                out,
                "    {} [shape=hexagon, style=filled, fillcolor=\"#fde9b0\", label={}{}];",
                quote(&id),
                quote_lines(&label, lab.missing.contains(&id)),
                missing_style(lab.missing.contains(&id))
            );
        }
        for link in &host_ends {
            let id = host_id(&link.host);
            let mut label = vec![link.host.clone()];
            label.extend(link.host_addrs.iter().cloned());
            if let Some(mtu) = link.host_mtu {
                label.push(format!("mtu {mtu}"));
            }
            let _ = writeln!(
                out,
                "    {} [shape=ellipse, label={}{}];",
                quote(&id),
                quote_lines(&label, lab.missing.contains(&id)),
                missing_style(lab.missing.contains(&id))
            );
        }
        out.push_str("  }\n");
    }

    // The namespaces.
    for path in &order {
        let Some(b) = boxes.get(path) else { continue };
        let id = ns_id(path);
        let missing = lab.missing.contains(&id);
        let _ = writeln!(
            out,
            "  {} [shape=plain, label=<{}>];",
            quote(&id),
            table(b, path, missing)
        );
    }

    // Veth pairs and bridge ports.
    for (_, record) in &lab.containers {
        let ns = ns_id(&record.path);
        for link in &record.links {
            let _ = writeln!(
                out,
                "  {} -- {}:{} [label=\"veth\", color=\"#4a7ab5\"];",
                quote(&host_id(&link.host)),
                quote(&ns),
                quote(&link.guest)
            );
            if let Some(bridge) = &link.bridge {
                let _ = writeln!(
                    out,
                    "  {} -- {} [color=\"#b58a1a\", penwidth=2];",
                    quote(&bridge_id(bridge)),
                    quote(&host_id(&link.host))
                );
            }
        }
    }
    // Point-to-point links.
    for link in &lab.links {
        if let [a, b] = &link.ends[..] {
            let _ = writeln!(
                out,
                "  {}:{} -- {}:{} [label={}, color=\"#2e8b57\", penwidth=2, style=bold];",
                quote(&ns_id(&a.path)),
                quote(&a.ifname),
                quote(&ns_id(&b.path)),
                quote(&b.ifname),
                quote(&format!("{} (p2p)", link.name))
            );
        }
    }
    out.push_str("}\n");
    out
}

/// The HTML-like label of a namespace box.
fn table(b: &NsBox, path: &str, missing: bool) -> String {
    let color = if missing { "red" } else { "#4a7ab5" };
    let mut t = format!(
        "<TABLE BORDER=\"1\" CELLBORDER=\"0\" CELLSPACING=\"0\" CELLPADDING=\"4\" COLOR=\"{color}\">"
    );
    let title = if b.containers.is_empty() {
        format!("netns {}", b.netns)
    } else {
        b.containers.join(", ")
    };
    let mut sub = if b.containers.is_empty() {
        path.to_string()
    } else {
        format!("netns {}", b.netns)
    };
    if missing {
        sub.push_str(" (missing)");
    }
    let _ = write!(
        t,
        "<TR><TD BGCOLOR=\"#dce9f9\"><B>{}</B><BR/><FONT POINT-SIZE=\"9\">{}</FONT></TD></TR>",
        html(&title),
        html(&sub)
    );
    for row in &b.rows {
        let mut cell = html(&row.name);
        if !row.lines.is_empty() {
            let lines: Vec<String> = row.lines.iter().map(|l| html(l)).collect();
            let _ = write!(
                cell,
                "<BR/><FONT POINT-SIZE=\"9\">{}</FONT>",
                lines.join("<BR/>")
            );
        }
        let _ = write!(
            t,
            "<TR><TD PORT=\"{}\" ALIGN=\"LEFT\" BALIGN=\"LEFT\">{cell}</TD></TR>",
            html(&row.name)
        );
    }
    t.push_str("</TABLE>");
    t
}

fn missing_style(missing: bool) -> &'static str {
    if missing {
        ", color=red, fontcolor=red, style=dashed"
    } else {
        ""
    }
}

/// A DOT double-quoted string.
fn quote(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A DOT label of several lines (centered), with "(missing)" added when it is.
fn quote_lines(lines: &[String], missing: bool) -> String {
    let mut lines = lines.to_vec();
    if missing {
        lines.push("(missing)".into());
    }
    let escaped: Vec<String> = lines
        .iter()
        .map(|l| l.replace('\\', "\\\\").replace('"', "\\\""))
        .collect();
    format!("\"{}\"", escaped.join("\\n"))
}

/// Text escaped for an HTML-like label.
fn html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `cloon-netns graph`: DOT on stdout, or SVG into `--svg FILE` (`-`: stdout).
pub fn run(state: &StateDir, args: &GraphArgs) -> Result<()> {
    let text = dot(&gather(state)?);
    let Some(file) = &args.svg else {
        cloon_core::cli::print(&text);
        return Ok(());
    };
    let program = host::require_program("dot", "graphviz")?;
    let mut words = vec!["dot".to_string(), "-Tsvg".to_string()];
    if file != "-" {
        words.extend(["-o".to_string(), file.clone()]);
    }
    if !explain::step(&words) {
        return Ok(());
    }
    let mut child = Command::new(&program)
        .args(&words[1..])
        .stdin(Stdio::piped())
        .stdout(if file == "-" {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::io(format!("cannot run {}", program.display()), &e))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| Error::io(format!("cannot write to {}", program.display()), &e))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::io(format!("cannot run {}", program.display()), &e))?;
    if !out.status.success() {
        return Err(Error::new(
            Code::Io,
            format!("dot could not draw the graph ({})", out.status),
        )
        .details(String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::p2p::EndRecord;
    use crate::parse::parse_veth;
    use crate::record::LinkRecord;

    fn container(ns: &str, veths: &[&str]) -> Record {
        Record {
            name: ns.into(),
            path: format!("/run/netns/{ns}"),
            created: true,
            inode: 1,
            file_inode: 2,
            group: crate::tag::DEFAULT_GROUP,
            alias: None,
            links: veths
                .iter()
                .map(|v| {
                    let mut l = LinkRecord::planned(&parse_veth(v).unwrap());
                    l.mac = "02:00:00:00:00:01".into();
                    l
                })
                .collect(),
        }
    }

    fn end(ns: &str, ifname: &str, addr: &str) -> EndRecord {
        EndRecord {
            netns: ns.into(),
            path: format!("/run/netns/{ns}"),
            inode: 1,
            ifname: ifname.into(),
            index: 2,
            group: crate::tag::DEFAULT_GROUP,
            mac: String::new(),
            addrs: vec![addr.into()],
            mtu: None,
        }
    }

    fn lab() -> Lab {
        Lab {
            root: "/run/cloon".into(),
            containers: vec![
                (
                    "Cloon1".into(),
                    container(
                        "cloonix_1_1",
                        &["vgt_1_1_0:eth0,addr=10.0.0.1/24,bridge=lan1,host-addr=10.0.0.254/24"],
                    ),
                ),
                (
                    "Cloon2".into(),
                    container(
                        "cloonix_1_2",
                        &["vgt_1_2_0:eth0,addr=10.0.0.2/24,bridge=lan1"],
                    ),
                ),
            ],
            links: vec![P2pRecord {
                name: "wire1".into(),
                ends: vec![
                    end("cloonix_1_1", "eth1", "10.9.0.1/30"),
                    end("hand_made", "eth1", "10.9.0.2/30"),
                ],
            }],
            bridges: vec![BridgeRecord {
                index: 3,
                ..BridgeRecord::planned("lan1", crate::tag::DEFAULT_GROUP, None)
            }],
            missing: BTreeSet::new(),
        }
    }

    #[test]
    fn every_element_is_drawn() {
        let text = dot(&lab());
        assert!(text.starts_with("graph cloon {\n"), "{text}");
        assert!(text.ends_with("}\n"), "{text}");
        for needle in [
            "<B>Cloon1</B>",
            "netns cloonix_1_1",
            "<B>Cloon2</B>",
            "<B>netns hand_made</B>",
            "<TD PORT=\"eth0\"",
            "10.0.0.1/24",
            "02:00:00:00:00:01",
            "\"bridge:lan1\" [shape=hexagon",
            "\"host:vgt_1_1_0\" [shape=ellipse, label=\"vgt_1_1_0\\n10.0.0.254/24\"]",
            "\"host:vgt_1_1_0\" -- \"ns:/run/netns/cloonix_1_1\":\"eth0\" [label=\"veth\"",
            "\"bridge:lan1\" -- \"host:vgt_1_2_0\"",
            "\"ns:/run/netns/cloonix_1_1\":\"eth1\" -- \"ns:/run/netns/hand_made\":\"eth1\" \
             [label=\"wire1 (p2p)\"",
            "10.9.0.2/30",
        ] {
            assert!(text.contains(needle), "{needle} missing from:\n{text}");
        }
        // The p2p end in a container's namespace is a row of that container's box.
        let cloon1 = text
            .lines()
            .find(|l| l.contains("<B>Cloon1</B>"))
            .unwrap_or_default();
        assert!(cloon1.contains("PORT=\"eth1\""), "{cloon1}");
        assert!(!text.contains("missing"), "{text}");
    }

    #[test]
    fn the_output_is_deterministic_and_ordered() {
        let a = dot(&lab());
        assert_eq!(a, dot(&lab()));
        let one = a.find("<B>Cloon1</B>").unwrap();
        let two = a.find("<B>Cloon2</B>").unwrap();
        let hand = a.find("netns hand_made").unwrap();
        assert!(one < two && two < hand, "{a}");
    }

    #[test]
    fn what_the_kernel_lost_is_drawn_red_and_dashed() {
        let mut lab = lab();
        lab.missing.insert(ns_id("/run/netns/cloonix_1_2"));
        lab.missing.insert(host_id("vgt_1_2_0"));
        lab.missing.insert(bridge_id("lan1"));
        let text = dot(&lab);
        assert!(text.contains("netns cloonix_1_2 (missing)"), "{text}");
        assert!(text.contains("COLOR=\"red\""), "{text}");
        let host = text
            .lines()
            .find(|l| l.contains("\"host:vgt_1_2_0\" ["))
            .unwrap_or_default();
        assert!(
            host.contains("(missing)") && host.contains("style=dashed"),
            "{host}"
        );
        let bridge = text
            .lines()
            .find(|l| l.contains("\"bridge:lan1\" ["))
            .unwrap();
        assert!(bridge.contains("color=red"), "{bridge}");
    }

    #[test]
    fn a_bridge_cloon_did_not_make_says_so_and_an_empty_lab_says_nothing_is_recorded() {
        let mut lab = lab();
        lab.bridges[0].created = false;
        assert!(dot(&lab).contains("(not made by cloon)"));
        let empty = dot(&Lab {
            root: "/run/cloon".into(),
            ..Lab::default()
        });
        assert!(
            empty.contains("nothing recorded under /run/cloon"),
            "{empty}"
        );
        assert!(!empty.contains("cluster_host"), "{empty}");
    }

    #[test]
    fn quoting_keeps_labels_whole() {
        assert_eq!(quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(html("<a & \"b\">"), "&lt;a &amp; &quot;b&quot;&gt;");
        assert_eq!(
            quote_lines(&["x".into(), "y".into()], true),
            "\"x\\ny\\n(missing)\""
        );
    }
}
