//! `cloon-lab graph`: the live lab in Graphviz DOT (`cloon-lab graph FILE | dot -Tsvg > lab.svg`).
//!
//! Containers are boxes (their node name, container name and image), bridges hexagons; each link
//! is an edge labelled with its two interfaces and their addresses (a point-to-point link) or with
//! the container's interface and its host end (a bridge port), and with its netem. What is not up
//! is drawn red and dashed: a container that does not run, a bridge or a link the kernel does not
//! have. The output is deterministic: the same lab in the same state gives the same bytes.

use crate::inspect::View;
use crate::topology::Kind;
use std::fmt::Write as _;

/// A DOT string literal.
fn q(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The lab as a DOT graph.
pub fn dot(v: &View) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "graph {} {{", q(&format!("lab {}", v.lab)));
    let _ = writeln!(
        out,
        "  label={}; labelloc=t; fontname=\"Helvetica\";",
        q(&format!("lab {} ({})", v.lab, v.state_dir))
    );
    let _ = writeln!(
        out,
        "  node [fontname=\"Helvetica\", fontsize=10]; edge [fontname=\"Helvetica\", fontsize=9];"
    );
    for n in &v.nodes {
        let up = match n.kind {
            Kind::Linux => n.state == "running",
            Kind::Bridge => n.state == "up",
        };
        let style = if up {
            String::new()
        } else {
            ", color=red, style=dashed".to_string()
        };
        let label = match n.kind {
            Kind::Linux => format!(
                "{}\\n{}\\n{}\\n{}",
                n.name,
                n.object,
                n.image.as_deref().unwrap_or("-"),
                n.state
            ),
            Kind::Bridge => format!("{}\\nbridge {}\\n{}", n.name, n.object, n.state),
        };
        let shape = match n.kind {
            Kind::Linux => "box",
            Kind::Bridge => "hexagon",
        };
        // The label is built with DOT's own `\n`: quote only the double quotes.
        let _ = writeln!(
            out,
            "  {} [shape={shape}, label=\"{}\"{style}];",
            q(&n.name),
            label.replace('"', "\\\"")
        );
    }
    for l in &v.links {
        let [a, b] = &l.ends;
        let end_text = |label: &str| -> String {
            let (node, iface) = label.split_once(':').unwrap_or((label, ""));
            let addrs = v
                .nodes
                .iter()
                .find(|n| n.name == node)
                .and_then(|n| n.interfaces.iter().find(|i| i.name == iface))
                .map(|i| i.addrs.join(" "))
                .unwrap_or_default();
            if addrs.is_empty() {
                iface.to_string()
            } else {
                format!("{iface} {addrs}")
            }
        };
        let mut label = l.name.clone();
        if let Some(m) = l.mtu {
            let _ = write!(label, "\\nmtu {m}");
        }
        if let Some(n) = &l.netem {
            let _ = write!(label, "\\n{}", n.summary());
        }
        let style = if l.state == "up" {
            ""
        } else {
            ", color=red, style=dashed"
        };
        let node_of = |e: &str| e.split_once(':').map(|x| x.0).unwrap_or(e).to_string();
        let _ = writeln!(
            out,
            "  {} -- {} [taillabel={}, headlabel={}, label=\"{}\"{style}];",
            q(&node_of(a)),
            q(&node_of(b)),
            q(&end_text(a)),
            q(&end_text(b)),
            label.replace('"', "\\\"")
        );
    }
    out.push_str("}\n");
    out
}
