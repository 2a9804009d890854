//! `cloon-netns graph` on a real lab in a sandbox: two containers' namespaces on one bridge and a
//! point-to-point link between them. The DOT names every element, Graphviz's `dot` accepts it,
//! and what the kernel lost is marked.

mod netns_util;

use cloon_tests::Sandbox;
use netns_util::{netns, STAGE};
use std::path::PathBuf;

/// Graphviz's `dot`. Without it the SVG checks fail when `CLOON_REQUIRE_ROOT=1` or `CI` is set
/// (the test hosts have it: `apt-get install graphviz`), and are skipped otherwise.
fn dot() -> Option<PathBuf> {
    let found = ["/usr/bin/dot", "/usr/local/bin/dot"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file());
    if found.is_none() {
        let required = std::env::var("CLOON_REQUIRE_ROOT").as_deref() == Ok("1")
            || std::env::var_os("CI").is_some();
        assert!(!required, "dot is missing: run `apt-get install graphviz`");
        eprintln!("skipping the SVG checks: dot is missing (apt-get install graphviz)");
    }
    found
}

#[test]
fn the_graph_shows_every_element_of_the_lab_and_dot_draws_it() {
    let Some(sb) = Sandbox::new("netns-graph") else {
        return;
    };
    let empty = netns(&sb, &["graph"], "").ok();
    assert!(
        empty.contains("nothing recorded under /run/cloon"),
        "{empty}"
    );

    netns(
        &sb,
        &[
            "--netns",
            "cloonix_1_1",
            "--name",
            "Cloon1",
            "--veth",
            "vgt_1_1_0:eth0,addr=10.1.0.1/24,bridge=lan1,host-addr=10.7.0.1/24",
        ],
        "",
    )
    .ok();
    netns(
        &sb,
        &[
            "--netns",
            "cloonix_1_2",
            "--name",
            "Cloon2",
            "--veth",
            "vgt_1_2_0:eth0,addr=10.1.0.2/24,addr=fd00::2/64,bridge=lan1",
        ],
        "",
    )
    .ok();
    netns(
        &sb,
        &[
            "link",
            "--name",
            "wire1",
            "cloonix_1_1:eth1,addr=10.9.0.1/30",
            "cloonix_1_2:eth1,addr=10.9.0.2/30",
        ],
        "",
    )
    .ok();

    let text = netns(&sb, &["graph"], "").ok();
    assert!(text.starts_with("graph cloon {"), "{text}");
    for element in [
        "<B>Cloon1</B>",
        "<B>Cloon2</B>",
        "netns cloonix_1_1",
        "netns cloonix_1_2",
        "PORT=\"eth0\"",
        "PORT=\"eth1\"",
        "10.1.0.1/24",
        "10.1.0.2/24",
        "fd00::2/64",
        "10.9.0.1/30",
        "10.9.0.2/30",
        "\"bridge:lan1\" [shape=hexagon",
        "\"host:vgt_1_1_0\" [shape=ellipse, label=\"vgt_1_1_0\\n10.7.0.1/24\"]",
        "\"host:vgt_1_2_0\"",
        "\"bridge:lan1\" -- \"host:vgt_1_1_0\"",
        "\"bridge:lan1\" -- \"host:vgt_1_2_0\"",
        "\"host:vgt_1_1_0\" -- \"ns:/run/netns/cloonix_1_1\":\"eth0\"",
        "\"ns:/run/netns/cloonix_1_1\":\"eth1\" -- \"ns:/run/netns/cloonix_1_2\":\"eth1\" \
         [label=\"wire1 (p2p)\"",
    ] {
        assert!(
            text.contains(element),
            "{element} is not in the graph:\n{text}"
        );
    }
    assert!(!text.contains("missing"), "{text}");
    // The MAC addresses the kernel chose are those it has.
    let mac = sb
        .sh("ip -n cloonix_1_2 -o link show eth0")
        .ok()
        .split("link/ether ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .unwrap_or_default()
        .to_string();
    assert!(text.contains(&mac), "{mac} is not in the graph");
    // Deterministic: the same lab, the same bytes.
    assert_eq!(netns(&sb, &["graph"], "").ok(), text);

    if dot().is_some() {
        let svg = sb.path("lab.svg");
        let run = netns(&sb, &["graph", "--svg", &svg.to_string_lossy()], "");
        assert_eq!(run.status, 0, "{}", run.stderr);
        let drawn = std::fs::read_to_string(&svg).expect("the SVG file");
        assert!(drawn.contains("<svg"), "{drawn}");
        for word in ["Cloon1", "Cloon2", "lan1", "wire1 (p2p)", "10.9.0.2/30"] {
            assert!(drawn.contains(word), "{word} is not in the SVG");
        }
        let out = netns(&sb, &["graph", "--svg", "-"], "").ok();
        assert!(out.contains("<svg"), "{out}");
        // --explain says the dot command.
        let run = netns(&sb, &["--explain", "graph", "--svg", "-"], "");
        assert!(run.stderr.starts_with("dot -Tsvg"), "{}", run.stderr);
    }

    // What the kernel lost is marked.
    sb.sh("ip link del vgt_1_2_0").ok();
    let text = netns(&sb, &["graph"], "").ok();
    let host = text
        .lines()
        .find(|l| l.contains("\"host:vgt_1_2_0\" ["))
        .unwrap_or_default();
    assert!(
        host.contains("(missing)") && host.contains("color=red"),
        "{text}"
    );

    for name in ["wire1", "Cloon2", "Cloon1"] {
        netns(&sb, &["down", "--name", name], "").ok();
    }
    let after = netns(&sb, &["graph"], "").ok();
    assert!(after.contains("nothing recorded"), "{after}");
    sb.assert_clean(&[]);
}

#[test]
fn dot_missing_is_a_prerequisite_error() {
    let Some(sb) = Sandbox::new("netns-graph-nodot") else {
        return;
    };
    let tool = cloon_tests::tool_path(STAGE);
    let run = sb.sh(&format!(
        "PATH=/nonexistent {} graph --svg /tmp/never.svg; echo \"status=$?\"",
        tool.display()
    ));
    let out = run.ok();
    assert!(out.contains("status=100"), "{out}");
    assert!(out.contains("apt-get install graphviz"), "{out}");
    assert!(out.contains(STAGE), "{out}");
    assert!(!std::path::Path::new("/tmp/never.svg").exists());
}
