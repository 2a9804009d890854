//! cloon-lab, on real kernel objects, in the sandbox: a lab of containers, a bridge and
//! point-to-point links that ping across; `up` twice; `up` after a simulated reboot; a half-up lab
//! brought down; two labs of one file side by side; malformed topologies refused with nothing
//! made; the generated Makefile and script; inspect, exec and graph; a chain of 50 nodes.
//!
//! Lab names are made unique per test run (crun names cgroups after container ids, and cgroups
//! are shared by every sandbox). Images are cached in each sandbox's scratch directory.

use cloon_tests::{unique, Run, Sandbox};
use std::time::Instant;

/// Runs `cloon-lab ARGS` in the sandbox, its image cache in the scratch directory.
fn lab(sb: &Sandbox, args: &[&str]) -> Run {
    let cache = sb.path("cache").display().to_string();
    let mut all: Vec<&str> = Vec::new();
    // Options go after the verb.
    all.push(args[0]);
    all.extend(["--cache-dir", &cache]);
    all.extend(&args[1..]);
    sb.tool("cloon-lab", &all, "")
}

/// Writes a topology file in the scratch directory; its path.
fn topology(sb: &Sandbox, file: &str, text: &str) -> String {
    let p = sb.path(file);
    std::fs::write(&p, text).expect("write the topology");
    p.display().to_string()
}

/// Asserts that `cmd` in `node`'s container succeeds.
fn exec_ok(sb: &Sandbox, file: &str, lab_name: Option<&str>, node: &str, cmd: &[&str]) -> String {
    let mut args = vec!["exec"];
    if let Some(n) = lab_name {
        args.extend(["--name", n]);
    }
    args.extend([file, node, "--"]);
    args.extend(cmd);
    let r = lab(sb, &args);
    assert_eq!(r.status, 0, "{node}: {cmd:?}: {}{}", r.stdout, r.stderr);
    r.stdout
}

/// `node` reaches `addr`: one echo answered, in at most three tries (a link may carry a small
/// seeded loss).
fn pings(sb: &Sandbox, file: &str, lab_name: Option<&str>, node: &str, addr: &str) {
    let mut args = vec!["exec"];
    if let Some(n) = lab_name {
        args.extend(["--name", n]);
    }
    args.extend([file, node, "--", "ping", "-c", "1", "-W", "2", addr]);
    let mut last = String::new();
    for _ in 0..3 {
        let r = lab(sb, &args);
        if r.status == 0 && r.stdout.contains("1 packets received") {
            return;
        }
        last = format!("{}{}", r.stdout, r.stderr);
    }
    panic!("{node} -> {addr}: {last}");
}

/// Four containers: h1 and h2 on the bridge sw with r1; r1 routes to r2 over a point-to-point
/// link; exec: sets the routes.
fn four_nodes(name: &str) -> String {
    format!(
        r#"name: {name}
topology:
  defaults:
    kind: linux
    image: busybox
  kinds:
    linux:
      env: {{LAB: {name}}}
  nodes:
    h1:
      exec: ["ip route add 10.9.0.0/30 via 10.0.1.254"]
    h2:
    r1:
      sysctls: {{net.ipv4.ip_forward: 1}}
    r2:
      exec:
        - ip route add 10.0.1.0/24 via 10.9.0.1
        - sh -c "echo configured > /tmp/exec-ran"
    sw:
      kind: bridge
  links:
    - endpoints: ["h1:eth0", "sw:p1"]
      ipv4: ["10.0.1.1/24"]
    - endpoints: ["h2:eth0", "sw:p2"]
      ipv4: ["10.0.1.2/24"]
    - endpoints: ["r1:eth0", "sw:p3"]
      ipv4: ["10.0.1.254/24"]
    - type: veth
      endpoints:
        - {{node: r1, interface: eth1, ipv4: 10.9.0.1/30, mac: "02:00:0a:09:00:01"}}
        - {{node: r2, interface: eth1, ipv4: 10.9.0.2/30}}
      netem: {{delay: 5ms, loss: 0.5%}}
"#
    )
}

/// Every ping of the four-node lab: across the bridge, and routed through r1.
fn four_nodes_ping(sb: &Sandbox, file: &str, lab_name: Option<&str>) {
    pings(sb, file, lab_name, "h1", "10.0.1.2");
    pings(sb, file, lab_name, "h2", "10.0.1.254");
    pings(sb, file, lab_name, "h1", "10.9.0.2");
    pings(sb, file, lab_name, "r2", "10.0.1.1");
}

/// The container pids inspect reports, by node.
fn pids(sb: &Sandbox, file: &str) -> Vec<(String, i64)> {
    let r = lab(sb, &["inspect", "--json", file]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    r.json()["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter(|n| n["kind"] == "linux")
        .map(|n| {
            (
                n["name"].as_str().unwrap_or_default().to_string(),
                n["pid"].as_i64().unwrap_or(-1),
            )
        })
        .collect()
}

#[test]
fn a_lab_of_four_nodes_a_bridge_and_links_comes_up_pings_and_goes() {
    let Some(sb) = Sandbox::new("lab_four") else {
        return;
    };
    let name = unique("lf");
    let file = topology(&sb, "four.clab.yml", &four_nodes(&name));
    let t = Instant::now();
    let up = lab(&sb, &["up", &file]);
    assert_eq!(up.status, 0, "{}{}", up.stdout, up.stderr);
    eprintln!("4-node lab up in {:.2} s", t.elapsed().as_secs_f64());
    assert!(up.stderr.contains("exec ip route add"), "{}", up.stderr);
    assert!(
        up.stdout.contains(&format!("{name}-h1")),
        "up prints the table: {}",
        up.stdout
    );
    four_nodes_ping(&sb, &file, None);
    assert_eq!(
        exec_ok(&sb, &file, None, "r2", &["cat", "/tmp/exec-ran"]).trim(),
        "configured"
    );
    assert_eq!(exec_ok(&sb, &file, None, "h1", &["hostname"]).trim(), "h1");
    assert_eq!(
        exec_ok(&sb, &file, None, "h1", &["sh", "-c", "echo $LAB"]).trim(),
        name
    );
    // The MAC the topology gave, and the lab's names in the kernel.
    let mac = exec_ok(
        &sb,
        &file,
        None,
        "r1",
        &["cat", "/sys/class/net/eth1/address"],
    );
    assert_eq!(mac.trim(), "02:00:0a:09:00:01");
    let netns = sb.sh("ip netns ls").ok();
    for n in ["h1", "h2", "r1", "r2"] {
        assert!(netns.contains(&format!("{name}-{n}")), "{netns}");
    }

    // Up again: nothing changes (same processes), exit 0; exec: is not run again.
    let before = pids(&sb, &file);
    let again = lab(&sb, &["up", &file]);
    assert_eq!(again.status, 0, "{}", again.stderr);
    assert!(again.stderr.contains("nothing to do"), "{}", again.stderr);
    assert!(!again.stderr.contains("exec ip route"), "{}", again.stderr);
    assert_eq!(pids(&sb, &file), before);

    // inspect: the table for people, the JSON for scripts.
    let table = lab(&sb, &["inspect", &file]).ok();
    for want in [
        "NODE",
        "INTERFACE",
        "PEER",
        "NETEM",
        &format!("{name}-h1"),
        "running",
        "10.0.1.1/24",
        "sw:p1",
        "r2:eth1",
        "delay 5ms loss 0.5%",
        "02:00:0a:09:00:01",
    ] {
        assert!(table.contains(want), "inspect lacks {want}:\n{table}");
    }
    let j = lab(&sb, &["inspect", "--json", &file]).json();
    assert_eq!(j["lab"], name.as_str());
    assert_eq!(j["exists"], true);
    let nodes = j["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 5);
    let sw = nodes.iter().find(|n| n["name"] == "sw").expect("sw");
    assert_eq!(sw["state"], "up", "{sw}");
    let r1 = nodes.iter().find(|n| n["name"] == "r1").expect("r1");
    assert_eq!(r1["state"], "running");
    let eth1 = r1["interfaces"]
        .as_array()
        .expect("interfaces")
        .iter()
        .find(|i| i["name"] == "eth1")
        .expect("eth1");
    assert_eq!(eth1["peer"], "r2:eth1");
    assert_eq!(eth1["addrs"][0], "10.9.0.1/30");
    assert_eq!(eth1["netem"]["delay"], "5ms");
    let links = j["links"].as_array().expect("links");
    assert_eq!(links.len(), 4);
    assert!(links.iter().all(|l| l["state"] == "up"), "{links:?}");
    // The netem link is relayed (this kernel has no netem): its delay is measured in
    // netem_link_is_relayed_and_changed_at_run_time.

    // graph: DOT that Graphviz reads, with every node and link.
    let dot = lab(&sb, &["graph", &file]).ok();
    for want in ["\"h1\"", "\"sw\"", "\"r1\" -- \"r2\"", "\"h1\" -- \"sw\""] {
        assert!(dot.contains(want), "graph lacks {want}:\n{dot}");
    }
    let graph_file = sb.path("lab.dot");
    std::fs::write(&graph_file, &dot).expect("write dot");
    let canon = sb.sh(&format!("dot -Tcanon {}", graph_file.display())).ok();
    assert!(canon.contains("h1") && canon.contains("--"), "{canon}");

    let t = Instant::now();
    let down = lab(&sb, &["down", &file]);
    assert_eq!(down.status, 0, "{}", down.stderr);
    eprintln!("4-node lab down in {:.2} s", t.elapsed().as_secs_f64());
    // Down again: nothing to do.
    let again = lab(&sb, &["down", &file]);
    assert_eq!(again.status, 0, "{}", again.stderr);
    // inspect of a lab that is down says so.
    let j = lab(&sb, &["inspect", "--json", &file]).json();
    assert_eq!(j["exists"], false);
    sb.assert_clean(&[]);
}

/// What a reboot does to a lab: every container killed (and its cgroups gone), every mount,
/// namespace, interface and loop device gone, `/run` empty. Images (in the cache, on disk) stay.
fn reboot(sb: &Sandbox) {
    sb.sh(
        "for c in $(crun --root /run/crun list -q 2>/dev/null); do crun --root /run/crun delete -f $c; done
         findmnt -rn -o TARGET | grep -E '^/run/(cloon|netns/)' | sort -r | while read -r m; do umount -l \"$m\"; done
         for l in $(ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1); do [ $l = lo ] || ip link del $l 2>/dev/null || true; done
         for f in $(find /run/cloon -path '*/bundle/config.json' 2>/dev/null); do \
           p=$(sed -n 's|.*\"cgroupsPath\": \"\\(/cloon/[^/]*\\)/.*|\\1|p' \"$f\"); \
           [ -z \"$p\" ] || for d in /sys/fs/cgroup/*$p; do rmdir \"$d\" 2>/dev/null; done; \
         done
         rm -rf /run/cloon /run/crun /run/netns/*",
    )
    .ok();
    for dev in sb.loops() {
        let _ = std::process::Command::new("losetup")
            .args(["-d", &dev])
            .output();
    }
    // What a reboot leaves: nothing of the lab.
    sb.assert_clean(&[]);
}

#[test]
fn up_after_a_reboot_brings_the_lab_back() {
    let Some(sb) = Sandbox::new("lab_reboot") else {
        return;
    };
    let name = unique("lr");
    let file = topology(&sb, "four.clab.yml", &four_nodes(&name));
    lab(&sb, &["up", &file]).ok();
    four_nodes_ping(&sb, &file, None);
    reboot(&sb);
    let up = lab(&sb, &["up", &file]);
    assert_eq!(up.status, 0, "{}{}", up.stdout, up.stderr);
    assert!(
        !up.stderr.contains("building"),
        "the image is cached: {}",
        up.stderr
    );
    assert!(
        up.stderr.contains("exec ip route add"),
        "exec: again: {}",
        up.stderr
    );
    four_nodes_ping(&sb, &file, None);
    lab(&sb, &["down", &file]).ok();
    sb.assert_clean(&[]);
}

#[test]
fn a_half_up_lab_is_brought_down() {
    let Some(sb) = Sandbox::new("lab_half") else {
        return;
    };
    // An exec: that fails: with --no-rollback everything made stays, for down.
    let name = unique("lh");
    let text = four_nodes(&name).replace(
        "        - sh -c \"echo configured > /tmp/exec-ran\"\n",
        "        - sh -c \"exit 3\"\n",
    );
    let file = topology(&sb, "half.clab.yml", &text);
    let up = lab(&sb, &["up", "--no-rollback", &file]);
    assert_eq!(up.status, 1, "{}", up.stderr);
    assert!(up.stderr.contains("exit status 3"), "{}", up.stderr);
    assert!(up.stderr.contains("left as it is"), "{}", up.stderr);
    assert!(sb.sh("ip netns ls").ok().contains(&format!("{name}-r2")));
    let down = lab(&sb, &["down", &file]);
    assert_eq!(down.status, 0, "{}", down.stderr);
    sb.assert_clean(&[]);

    // The same failure with the default rollback: what this up made is undone, and it says so.
    let up = lab(&sb, &["up", &file]);
    assert_eq!(up.status, 1, "{}", up.stderr);
    assert!(up.stderr.contains("rolled back"), "{}", up.stderr);
    sb.assert_clean(&[]);

    // An up killed (with every tool it runs) at some moment: down removes what exists.
    let good = topology(&sb, "good.clab.yml", &four_nodes(&name));
    lab(&sb, &["up", &good]).ok();
    lab(&sb, &["down", &good]).ok();
    for delay_ms in [50, 150, 300] {
        let cache = sb.path("cache").display().to_string();
        sb.sh(&format!(
            "setsid cloon-lab up --cache-dir {cache} {good} >/dev/null 2>&1 & pid=$!
             sleep {}; kill -9 -- -$pid 2>/dev/null; wait $pid 2>/dev/null; true",
            f64::from(delay_ms) / 1000.0
        ))
        .ok();
        let down = lab(&sb, &["down", &good]);
        assert_eq!(
            down.status, 0,
            "after a kill at {delay_ms} ms: {}",
            down.stderr
        );
        sb.assert_clean(&[]);
    }
}

#[test]
fn two_labs_of_one_file_run_side_by_side_and_the_down_of_one_leaves_the_other() {
    let Some(sb) = Sandbox::new("lab_two") else {
        return;
    };
    let base = unique("la");
    let file = topology(&sb, "four.clab.yml", &four_nodes(&base));
    let (a, b) = (format!("{base}a"), format!("{base}b"));
    for n in [&a, &b] {
        let up = lab(&sb, &["up", "--name", n, &file]);
        assert_eq!(up.status, 0, "{n}: {}", up.stderr);
    }
    four_nodes_ping(&sb, &file, Some(&a));
    four_nodes_ping(&sb, &file, Some(&b));
    let down = lab(&sb, &["down", "--name", &a, &file]);
    assert_eq!(down.status, 0, "{}", down.stderr);
    let netns = sb.sh("ip netns ls").ok();
    assert!(!netns.contains(&format!("{a}-")), "{netns}");
    assert!(netns.contains(&format!("{b}-h1")), "{netns}");
    four_nodes_ping(&sb, &file, Some(&b));
    let j = lab(&sb, &["inspect", "--json", "--name", &b, &file]).json();
    assert!(
        j["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .all(|n| n["state"] == "running" || n["state"] == "up"),
        "{j}"
    );
    // The other lab brought down by its name alone, from its records.
    let down = sb.tool("cloon-lab", &["down", "--name", &b], "");
    assert_eq!(down.status, 0, "{}", down.stderr);
    sb.assert_clean(&[]);
}

#[test]
fn malformed_topologies_are_refused_with_the_problem_and_nothing_is_made() {
    let Some(sb) = Sandbox::new("lab_bad") else {
        return;
    };
    let n = unique("lb");
    let two = format!(
        "name: {n}\ntopology:\n  nodes:\n    a: {{kind: linux, image: busybox}}\n    b: {{kind: linux, image: busybox}}\n  links:\n"
    );
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "unknown field",
            format!("name: {n}\ntopology:\n  nodes:\n    a:\n      kind: linux\n      image: busybox\n      startup-config: x.cfg\n"),
            vec![":7:", "unknown field `startup-config`"],
        ),
        (
            "unknown node in a link",
            format!("{two}    - endpoints: [\"a:eth1\", \"c:eth1\"]\n"),
            vec![":7:", "\"c\", which is not in topology.nodes"],
        ),
        (
            "interface name too long",
            format!("{two}    - endpoints: [\"a:eth1\", \"b:ethernet-1-1-1-1\"]\n"),
            vec![":7:", "at most 15"],
        ),
        (
            "duplicate endpoint",
            format!("{two}    - endpoints: [\"a:eth1\", \"b:eth1\"]\n    - endpoints: [\"a:eth1\", \"b:eth2\"]\n"),
            vec![":8:", "already used by a link at line 7"],
        ),
        (
            "unsupported kind",
            format!("name: {n}\ntopology:\n  nodes:\n    a: {{kind: ceos, image: busybox}}\n"),
            vec![":4:", "kind \"ceos\""],
        ),
        (
            "registry image",
            format!("name: {n}\ntopology:\n  nodes:\n    a: {{kind: linux, image: \"alpine:3\"}}\n"),
            vec![":4:", "registry image"],
        ),
        (
            "missing image file",
            format!("name: {n}\ntopology:\n  nodes:\n    a: {{kind: linux, image: nothere.img}}\n"),
            vec![":4:", "nothere.img does not exist"],
        ),
        (
            "bad address",
            format!("{two}    - endpoints: [\"a:eth1\", \"b:eth1\"]\n      ipv4: [\"10.0.0.300/24\"]\n"),
            vec![":8:", "is not an IPv4 address"],
        ),
        (
            "bad netem",
            format!("{two}    - endpoints: [\"a:eth1\", \"b:eth1\"]\n      netem: {{delay: 10, loss: 150%}}\n"),
            vec![":8:", "netem delay", "no unit", "more than 100%"],
        ),
        (
            "bad YAML",
            format!("name: {n}\ntopology:\n  nodes:\n    a: {{kind: linux, image: busybox\n"),
            vec![":4:"],
        ),
        (
            "bridge with an image",
            format!("name: {n}\ntopology:\n  nodes:\n    a: {{kind: linux, image: busybox}}\n    s: {{kind: bridge, image: busybox}}\n  links:\n    - endpoints: [\"a:eth1\", \"s:p1\"]\n"),
            vec![":5:", "a bridge runs nothing"],
        ),
        (
            "lab name with a slash",
            format!("name: {n}/x\ntopology:\n  nodes:\n    a: {{kind: linux, image: busybox}}\n"),
            vec![":1:", "contains '/'"],
        ),
    ];
    for (i, (what, text, wanted)) in cases.iter().enumerate() {
        let file = topology(&sb, &format!("bad{i}.clab.yml"), text);
        let r = lab(&sb, &["up", &file]);
        assert_eq!(r.status, 7, "{what}: {}{}", r.stdout, r.stderr);
        assert!(
            r.stderr.contains(&format!("bad{i}.clab.yml")),
            "{what}: {}",
            r.stderr
        );
        for w in wanted {
            assert!(r.stderr.contains(w), "{what}: {w:?} not in {}", r.stderr);
        }
        assert!(!r.stderr.contains("panicked"), "{what}: {}", r.stderr);
        assert!(r.stdout.is_empty(), "{what}: {}", r.stdout);
        // Nothing was made: no state, no image, no interface, no container.
        assert!(!sb.path("cache").exists(), "{what}: an image was built");
        sb.assert_clean(&[]);
        // The other verbs refuse it the same way.
        for verb in ["makefile", "inspect", "down"] {
            let r = lab(&sb, &[verb, &file]);
            assert_eq!(r.status, 7, "{what}: {verb}: {}", r.stderr);
        }
    }
    sb.assert_clean(&[]);
}

#[test]
fn the_generated_makefile_and_script_bring_the_same_lab_up_and_down() {
    let Some(sb) = Sandbox::new("lab_make") else {
        return;
    };
    let name = unique("lm");
    let file = topology(&sb, "four.clab.yml", &four_nodes(&name));
    let makefile = sb.path("Makefile");
    std::fs::write(&makefile, lab(&sb, &["makefile", &file]).ok()).expect("write Makefile");
    let dir = sb.dir.display().to_string();
    let up = sb.sh(&format!("make -C {dir} -j4 up 2>&1"));
    assert_eq!(up.status, 0, "{}{}", up.stdout, up.stderr);
    assert!(
        up.stdout.contains("cloon-overlay --state-dir"),
        "{}",
        up.stdout
    );
    four_nodes_ping(&sb, &file, None);
    // What make made is what cloon-lab would: its up finds nothing to do.
    let again = lab(&sb, &["up", &file]);
    assert!(again.stderr.contains("nothing to do"), "{}", again.stderr);
    let twice = sb.sh(&format!("make -C {dir} up 2>&1")).ok();
    assert!(twice.contains("Nothing to be done"), "{twice}");
    let down = sb.sh(&format!("make -C {dir} -j4 down 2>&1"));
    assert_eq!(down.status, 0, "{}{}", down.stdout, down.stderr);
    sb.assert_clean(&[]);

    let script = sb.path("lab.sh");
    std::fs::write(&script, lab(&sb, &["script", &file]).ok()).expect("write script");
    let up = sb.sh(&format!("bash {} up 2>&1", script.display()));
    assert_eq!(up.status, 0, "{}{}", up.stdout, up.stderr);
    four_nodes_ping(&sb, &file, None);
    // And cloon-lab brings down what the script made.
    let down = lab(&sb, &["down", &file]);
    assert_eq!(down.status, 0, "{}", down.stderr);
    sb.assert_clean(&[]);
    let up = sb.sh(&format!("bash {} up 2>&1", script.display()));
    assert_eq!(up.status, 0, "{}", up.stdout);
    let down = sb.sh(&format!("bash {} down 2>&1", script.display()));
    assert_eq!(down.status, 0, "{}", down.stdout);
    sb.assert_clean(&[]);
}

#[test]
fn a_chain_of_fifty_busybox_nodes_comes_up_and_down() {
    let Some(sb) = Sandbox::new("lab_chain") else {
        return;
    };
    let name = unique("lc");
    let mut text =
        format!("name: {name}\ntopology:\n  defaults: {{kind: linux, image: busybox}}\n  nodes:\n");
    for i in 1..=50 {
        text.push_str(&format!("    n{i}:\n"));
    }
    text.push_str("  links:\n");
    for i in 1..50 {
        text.push_str(&format!(
            "    - endpoints: [\"n{i}:eth1\", \"n{}:eth0\"]\n      ipv4: [\"10.{}.{}.1/30\", \"10.{}.{}.2/30\"]\n",
            i + 1,
            i / 200,
            i % 200,
            i / 200,
            i % 200
        ));
    }
    let file = topology(&sb, "chain.clab.yml", &text);
    // The image first, so that the times are the lab's.
    let t = Instant::now();
    let up = lab(&sb, &["up", "--quiet", &file]);
    let up_s = t.elapsed().as_secs_f64();
    assert_eq!(up.status, 0, "{}", up.stderr);
    pings(&sb, &file, None, "n25", "10.0.25.2");
    let j = lab(&sb, &["inspect", "--json", &file]).json();
    let running = j["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter(|n| n["state"] == "running")
        .count();
    assert_eq!(running, 50);
    let t = Instant::now();
    let again = lab(&sb, &["up", &file]);
    let again_s = t.elapsed().as_secs_f64();
    assert!(again.stderr.contains("nothing to do"), "{}", again.stderr);
    let t = Instant::now();
    let down = lab(&sb, &["down", "--quiet", &file]);
    let down_s = t.elapsed().as_secs_f64();
    assert_eq!(down.status, 0, "{}", down.stderr);
    eprintln!(
        "chain of 50 busybox nodes, 49 links: up {up_s:.1} s (image included), up again {again_s:.1} s, down {down_s:.1} s"
    );
    println!("chain of 50: up {up_s:.1} s, up again {again_s:.1} s, down {down_s:.1} s");
    sb.assert_clean(&[]);
}

/// The repository's labs directory.
fn labs_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("labs")
}

/// `text` with the key of busybox images (a hash of the host's busybox binary) blanked.
fn without_busybox_key(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("busybox-") {
        out.push_str(&rest[..i + 8]);
        rest = &rest[i + 8..];
        let hex = rest.chars().take_while(char::is_ascii_hexdigit).count();
        if hex == 16 {
            out.push_str("KEY");
            rest = &rest[16..];
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn the_converted_labs_match_their_makefiles_and_come_up() {
    // Their checked-in Makefiles are what cloon-lab generates today (busybox's key aside: it is a
    // hash of the host's busybox).
    for name in ["article", "lan", "router"] {
        let file = labs_dir().join(format!("{name}.clab.yml"));
        let made = std::process::Command::new(cloon_tests::tool_path("cloon-lab"))
            .arg("makefile")
            .arg(&file)
            .env_remove("CLOON_LAB_CACHE")
            .env_remove("CLOON_LAB_DIR")
            .output()
            .expect("cloon-lab makefile");
        assert!(
            made.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&made.stderr)
        );
        let kept =
            std::fs::read_to_string(labs_dir().join(format!("{name}.mk"))).expect("labs/*.mk");
        assert_eq!(
            without_busybox_key(&String::from_utf8_lossy(&made.stdout)),
            without_busybox_key(&kept),
            "labs/{name}.mk is stale: cloon-lab makefile labs/{name}.clab.yml > labs/{name}.mk"
        );
    }
    let Some(sb) = Sandbox::new("lab_labs") else {
        return;
    };
    let lan = labs_dir().join("lan.clab.yml").display().to_string();
    let name = unique("lan");
    let up = lab(&sb, &["up", "--name", &name, &lan]);
    assert_eq!(up.status, 0, "{}", up.stderr);
    for a in 1..=3 {
        for b in 1..=3 {
            if a != b {
                pings(
                    &sb,
                    &lan,
                    Some(&name),
                    &format!("Cloon{a}"),
                    &format!("10.0.1.{b}"),
                );
            }
        }
    }
    lab(&sb, &["down", "--name", &name, &lan]).ok();
    let article = labs_dir().join("article.clab.yml").display().to_string();
    let name = unique("art");
    lab(&sb, &["up", "--name", &name, &article]).ok();
    let addr = exec_ok(
        &sb,
        &article,
        Some(&name),
        "Cloon1",
        &["ip", "-o", "addr", "show", "eth0"],
    );
    assert!(addr.contains("10.0.0.2/24"), "{addr}");
    assert_eq!(
        exec_ok(&sb, &article, Some(&name), "Cloon1", &["hostname"]).trim(),
        "Cloon1"
    );
    lab(&sb, &["down", "--name", &name, &article]).ok();
    sb.assert_clean(&[]);

    // The router lab: its router runs Debian bookworm, made by debootstrap outside the sandbox
    // (which has no network) and given to the topology as an image file.
    let Some(img) = cloon_tests::bookworm_image() else {
        eprintln!("skipping the router lab: its router runs the bookworm image");
        return;
    };
    let text = std::fs::read_to_string(labs_dir().join("router.clab.yml")).expect("router");
    let text = text.replace(
        "image: debootstrap:bookworm:iproute2,iputils-ping,tcpdump",
        &format!("image: {}", img.display()),
    );
    assert!(
        text.contains(&img.display().to_string()),
        "the router's image line moved"
    );
    let router = topology(&sb, "router.clab.yml", &text);
    let name = unique("rt");
    lab(&sb, &["up", "--name", &name, &router]).ok();
    pings(&sb, &router, Some(&name), "hostA", "10.0.2.2");
    pings(&sb, &router, Some(&name), "hostB", "10.0.1.2");
    let forwarding = exec_ok(
        &sb,
        &router,
        Some(&name),
        "router",
        &["cat", "/proc/sys/net/ipv4/ip_forward"],
    );
    assert_eq!(forwarding.trim(), "1");
    lab(&sb, &["down", "--name", &name, &router]).ok();
    sb.assert_clean(&[]);
}

/// The minimum and average round trip of `count` pings from `node` to `addr`, in ms.
fn rtt(sb: &Sandbox, file: &str, node: &str, addr: &str, count: u32) -> (f64, f64) {
    let c = count.to_string();
    let out = exec_ok(
        sb,
        file,
        None,
        node,
        &["ping", "-c", &c, "-i", "0.2", "-W", "3", addr],
    );
    let stats = out
        .split("min/avg/max = ")
        .nth(1)
        .unwrap_or_else(|| panic!("{node} -> {addr}: {out}"));
    let v: Vec<f64> = stats
        .split(['/', ' '])
        .filter_map(|x| x.parse().ok())
        .collect();
    (v[0], v[1])
}

/// The ICMP frames of a pcap file (classic pcap, Ethernet): magic, link type, then each record's
/// ethertype 0x0800 and IP protocol 1.
fn icmp_frames(pcap: &[u8]) -> usize {
    assert!(pcap.len() >= 24, "pcap too short: {} bytes", pcap.len());
    let magic = u32::from_le_bytes(pcap[0..4].try_into().expect("4 bytes"));
    let le = match magic {
        0xa1b2c3d4 => true,
        0xd4c3b2a1 => false,
        m => panic!("not a pcap: magic {m:08x}"),
    };
    let u32_at = |o: usize| {
        let b: [u8; 4] = pcap[o..o + 4].try_into().expect("4 bytes");
        if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    };
    assert_eq!(u32_at(20), 1, "link type Ethernet");
    let (mut off, mut icmp) = (24, 0);
    while off + 16 <= pcap.len() {
        let caplen = u32_at(off + 8) as usize;
        let frame = &pcap[off + 16..(off + 16 + caplen).min(pcap.len())];
        if frame.len() >= 24 && frame[12..14] == [0x08, 0x00] && frame[23] == 1 {
            icmp += 1;
        }
        off += 16 + caplen;
    }
    icmp
}

/// A link with `netem:` under the relay engine (this kernel has no netem): two veths from the
/// host joined by a relay; its delay measured; capture; `netem` changes, shows and resets it at
/// run time; `down` leaves no relay.
#[test]
fn netem_link_is_relayed_and_changed_at_run_time() {
    let Some(sb) = Sandbox::new("lab_netem") else {
        return;
    };
    let name = unique("ln");
    let file = topology(
        &sb,
        "netem.clab.yml",
        &format!(
            r#"name: {name}
topology:
  defaults: {{kind: linux, image: busybox}}
  nodes:
    h1:
    r1:
    r2:
    r3:
    sw: {{kind: bridge}}
  links:
    - endpoints: ["h1:eth0", "sw:p1"]
      ipv4: ["10.0.1.1/24"]
    - endpoints: ["r1:eth0", "sw:p2"]
      ipv4: ["10.0.1.254/24"]
    - endpoints: ["r1:eth1", "r2:eth1"]
      ipv4: ["10.9.0.1/30", "10.9.0.2/30"]
    - endpoints: ["r1:eth2", "r3:eth1"]
      ipv4: ["10.8.0.1/30", "10.8.0.2/30"]
      netem: {{delay: 50ms}}
"#
        ),
    );
    let explain = lab(&sb, &["up", "--explain", &file]).ok();
    assert!(explain.contains("relay engine"), "{explain}");
    let up = lab(&sb, &["up", &file]);
    assert_eq!(up.status, 0, "{}", up.stderr);
    assert!(
        up.stderr.contains("netem delay 50ms (relay engine"),
        "{}",
        up.stderr
    );
    pings(&sb, &file, None, "h1", "10.0.1.254");

    let (slow, slow_avg) = rtt(&sb, &file, "r1", "10.8.0.2", 5);
    let (plain, _) = rtt(&sb, &file, "r1", "10.9.0.2", 5);
    eprintln!(
        "MEASURE lab rtt: netem 50ms link {slow:.3}/{slow_avg:.3} ms, plain link {plain:.3} ms"
    );
    assert!(slow >= 100.0, "rtt {slow} ms across a 50ms link");
    assert!(plain < 20.0, "rtt {plain} ms across a plain link");

    // inspect: asked and applied, the relay running.
    let j = lab(&sb, &["inspect", "--json", &file]).json();
    let links = j["links"].as_array().expect("links");
    let relayed = links
        .iter()
        .find(|l| l["kind"] == "relay")
        .expect("relay link");
    assert_eq!(relayed["state"], "up", "{relayed}");
    assert_eq!(relayed["applied"]["engine"], "relay", "{relayed}");
    assert_eq!(relayed["applied"]["ok"], true, "{relayed}");
    assert!(links.iter().all(|l| l["state"] == "up"), "{links:?}");

    // capture on r3's end while r1 pings it (eight frames: ARP may come first, its neighbour
    // entry being stale after the pings above). The pings last 6 s, so that a capture slow to
    // start on a loaded machine still sees them.
    let pcap = sb.path("r3.pcap");
    let bin = cloon_tests::tool_path("cloon-lab");
    let cache = sb.path("cache");
    let cap = sb.sh_within(
        &format!(
            "{b} capture --cache-dir {c} {file} r3:eth1 -c 8 -w {p} & sleep 0.5; \
             {b} exec --cache-dir {c} {file} r1 -- ping -c 30 -i 0.2 10.8.0.2 >/dev/null; wait",
            b = bin.display(),
            c = cache.display(),
            p = pcap.display()
        ),
        60,
    );
    assert_eq!(cap.status, 0, "{}", cap.stderr);
    let bytes = std::fs::read(&pcap).expect("the pcap");
    assert!(icmp_frames(&bytes) >= 3, "ICMP frames in the capture");

    // netem at run time: 10ms, shown, then reset.
    let set = lab(&sb, &["netem", &file, "r1:eth2", "--delay", "10ms"]);
    assert_eq!(set.status, 0, "{}", set.stderr);
    let (mid, mid_avg) = rtt(&sb, &file, "r1", "10.8.0.2", 5);
    eprintln!("MEASURE lab rtt after netem --delay 10ms: {mid:.3}/{mid_avg:.3} ms");
    assert!(
        (18.0..60.0).contains(&mid),
        "rtt {mid} ms after --delay 10ms"
    );
    let show = lab(&sb, &["netem", "show", &file]).ok();
    assert!(
        show.contains("delay 10ms") && show.contains("relay, running"),
        "{show}"
    );
    let reset = lab(&sb, &["netem", "reset", &file, "r1:eth2"]);
    assert_eq!(reset.status, 0, "{}", reset.stderr);
    let (fast, _) = rtt(&sb, &file, "r1", "10.8.0.2", 5);
    eprintln!("MEASURE lab rtt after netem reset: {fast:.3} ms");
    assert!(fast < 20.0, "rtt {fast} ms after reset");

    // A plain point-to-point link is one veth pair: no relay for it, and the error says why.
    let refused = lab(&sb, &["netem", &file, "r1:eth1", "--delay", "5ms"]);
    assert_ne!(refused.status, 0);
    assert!(refused.stderr.contains("netem: {}"), "{}", refused.stderr);

    let down = lab(&sb, &["down", &file]);
    assert_eq!(down.status, 0, "{}", down.stderr);
    let relays = sb.sh("pgrep -f '[c]loon-lab-impair relay' || true").ok();
    assert!(relays.trim().is_empty(), "relays left: {relays}");
    sb.assert_clean(&[]);
}
