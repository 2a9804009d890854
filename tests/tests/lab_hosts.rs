//! A lab spread over several hosts, on real kernel objects: each "host" is a sandbox of its own
//! (fresh mount, network and pid namespaces, its own `/run` and so its own state directory), the
//! hosts joined by a veth underlay (192.168.99.0/24). `cloon-lab up FILE --host NAME` is run on
//! each, as a user would on each machine: a point-to-point link across hosts and a LAN spanning
//! three hosts ping across, a netem delay on a link across hosts is measured, the VXLAN end is
//! captured, `down` on one host leaves the others whole, `down` everywhere leaves nothing; an
//! unreachable host and a wrong `--host` are refused before anything is made.

use cloon_tests::{code_block, readme_section, unique, Run, Sandbox};

/// Runs `cloon-lab VERB --host HOST ARGS` in the sandbox `sb`, its image cache in the sandbox's
/// scratch directory.
fn lab(sb: &Sandbox, host: &str, verb: &str, args: &[&str]) -> Run {
    let cache = sb.path("cache").display().to_string();
    let mut all = vec![verb, "--cache-dir", &cache, "--host", host];
    all.extend(args);
    sb.tool("cloon-lab", &all, "")
}

/// `cmd` run in `node`'s container on `host`.
fn exec(sb: &Sandbox, host: &str, file: &str, node: &str, cmd: &str) -> Run {
    let mut args = vec![file, node, "--"];
    args.extend(cmd.split_whitespace());
    lab(sb, host, "exec", &args)
}

/// `node` on `host` reaches `addr` (three tries: the first packets of a LAN wait for ARP); the
/// round trip of the answered ping, in milliseconds.
fn pings(sb: &Sandbox, host: &str, file: &str, node: &str, addr: &str) -> f64 {
    let mut last = String::new();
    for _ in 0..3 {
        let r = exec(sb, host, file, node, &format!("ping -c 1 -W 2 {addr}"));
        if r.status == 0 && r.stdout.contains("1 packets received") {
            return r
                .stdout
                .split("time=")
                .nth(1)
                .and_then(|t| t.split_whitespace().next())
                .and_then(|t| t.parse().ok())
                .unwrap_or_else(|| panic!("no round trip in: {}", r.stdout));
        }
        last = format!("{}{}", r.stdout, r.stderr);
    }
    panic!("{node} on {host} -> {addr}: {last}");
}

/// `node` on `host` does not reach `addr`.
fn does_not_ping(sb: &Sandbox, host: &str, file: &str, node: &str, addr: &str) {
    let r = exec(sb, host, file, node, &format!("ping -c 1 -W 1 {addr}"));
    assert_ne!(
        r.status, 0,
        "{node} on {host} still reaches {addr}: {}",
        r.stdout
    );
}

/// Three hosts: a on h1 and b on h2 joined point to point with a netem delay, a and c (on h3)
/// joined point to point, and a LAN `lan` with a port on each host (a, b, c).
fn three_hosts(name: &str) -> String {
    format!(
        r#"name: {name}
hosts:
  h1: {{address: 192.168.99.1}}
  h2: {{address: 192.168.99.2, interface: under}}
  h3: {{address: 192.168.99.3, port: 4790}}
topology:
  defaults: {{kind: linux, image: busybox}}
  nodes:
    a: {{host: h1}}
    b: {{host: h2}}
    c: {{host: h3}}
    lan: {{kind: bridge}}
  links:
    - endpoints: ["a:eth1", "b:eth1"]
      ipv4: ["10.9.0.1/30", "10.9.0.2/30"]
      netem: {{delay: 15ms}}
    - endpoints: ["a:eth2", "c:eth2"]
      ipv4: ["10.9.1.1/30", "10.9.1.2/30"]
    - endpoints: ["a:eth0", "lan:a"]
      ipv4: ["10.0.0.1/24"]
    - endpoints: ["b:eth0", "lan:b"]
      ipv4: ["10.0.0.2/24"]
    - endpoints: ["c:eth0", "lan:c"]
      ipv4: ["10.0.0.3/24"]
"#
    )
}

#[test]
fn a_lab_over_three_hosts() {
    let (Some(h1), Some(h2), Some(h3)) = (
        Sandbox::new("hosts-1"),
        Sandbox::new("hosts-2"),
        Sandbox::new("hosts-3"),
    ) else {
        return;
    };
    let under = Sandbox::underlay(&[&h1, &h2, &h3], "192.168.99");
    let keep: Vec<&str> = under.iter().map(String::as_str).collect();
    let name = unique("hosts");
    let file = h1.path("lab.clab.yml");
    std::fs::write(&file, three_hosts(&name)).expect("write the topology");
    let file = file.display().to_string();
    let hosts = [("h1", &h1), ("h2", &h2), ("h3", &h3)];
    for (host, sb) in hosts {
        let up = lab(sb, host, "up", &[&file]);
        assert_eq!(up.status, 0, "up on {host}: {}{}", up.stdout, up.stderr);
        assert!(up.stderr.contains("VXLAN"), "{host}: {}", up.stderr);
    }

    // A point-to-point link: a VXLAN interface in each node's namespace, learning off, its
    // MTU 1500 less VXLAN's 50 (h3 listens on port 4790).
    for (sb, node) in [(&h1, "a"), (&h3, "c")] {
        let link = sb
            .sh(&format!("ip -n {name}-{node} -d link show eth2"))
            .ok();
        assert!(link.contains("vxlan id"), "{link}");
        assert!(link.contains("mtu 1450"), "{link}");
        assert!(link.contains("nolearning"), "{link}");
    }
    pings(&h1, "h1", &file, "a", "10.9.1.2");
    pings(&h3, "h3", &file, "c", "10.9.1.1");
    // The link with netem: on this kernel (no netem) the relay impairs it, between a veth from
    // the node and the tunnel's end on the host, each host the frames its node sends; where the
    // kernel has netem, the netem qdisc on the VXLAN interface in the node's namespace. Either
    // way the round trip has both ends' delay.
    pings(&h1, "h1", &file, "a", "10.9.0.2");
    // The next pings: the first waits for ARP too, whose request and answer are delayed as well.
    // The fastest of three, as the machine's load can delay one.
    let rtt = (0..3)
        .map(|_| pings(&h1, "h1", &file, "a", "10.9.0.2"))
        .fold(f64::MAX, f64::min);
    eprintln!("MEASURE a (h1) -> b (h2) over VXLAN with netem 15ms on each end: {rtt} ms");
    assert!(
        rtt >= 30.0,
        "the delay of both ends is in the round trip: {rtt} ms"
    );
    assert!(rtt < 45.0, "no more than both ends' delay: {rtt} ms");
    pings(&h2, "h2", &file, "b", "10.9.0.1");
    let shown = lab(&h1, "h1", "netem", &["show", "--json", &file]).json();
    assert_eq!(shown.as_array().map(Vec::len), Some(1), "{shown}");
    assert_eq!(shown[0]["applied"]["ok"], true, "{shown}");

    // The LAN over three hosts: everyone reaches everyone.
    for (host, sb, node, me) in [
        ("h1", &h1, "a", 1),
        ("h2", &h2, "b", 2),
        ("h3", &h3, "c", 3),
    ] {
        for other in [1, 2, 3].into_iter().filter(|o| *o != me) {
            pings(sb, host, &file, node, &format!("10.0.0.{other}"));
        }
    }
    // A full-size frame of the LAN's MTU crosses (1450 - 28 bytes of IP and ICMP headers).
    let big = exec(&h1, "h1", &file, "a", "ping -c 1 -W 2 -s 1422 10.0.0.3");
    assert_eq!(big.status, 0, "{}{}", big.stdout, big.stderr);

    // inspect shows the VXLAN ends with their VNI, remotes and MTU.
    let view = lab(&h1, "h1", "inspect", &["--json", &file]).json();
    let links = view["links"].as_array().expect("links");
    let vxlans: Vec<&serde_json::Value> = links.iter().filter(|l| l["kind"] == "vxlan").collect();
    assert_eq!(vxlans.len(), 3, "{links:#?}");
    for l in &vxlans {
        assert_eq!(l["state"], "up", "{l}");
        assert_eq!(l["mtu"], 1450, "{l}");
        assert!(l["vni"].as_u64().is_some_and(|v| v > 0), "{l}");
    }
    let table = lab(&h1, "h1", "inspect", &[&file]).ok();
    assert!(table.contains("mtu 1450 vni"), "{table}");

    // Capture on the VXLAN side: a's end of the link to c.
    let pcap = h1.path("vxlan.pcap");
    h1.sh(&format!(
        "cloon-lab capture --host h1 {file} a:eth2 -c 2 -w {} 2>{}.err & sleep 0.5",
        pcap.display(),
        pcap.display()
    ))
    .ok();
    pings(&h1, "h1", &file, "a", "10.9.1.2");
    let mut err = String::new();
    for _ in 0..50 {
        err = std::fs::read_to_string(format!("{}.err", pcap.display())).unwrap_or_default();
        if err.contains("frames captured") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(err.contains("2 frames captured"), "{err}");
    let bytes = std::fs::read(&pcap).expect("pcap");
    assert!(
        bytes.len() > 24 + 2 * (16 + 42),
        "two frames: {} bytes",
        bytes.len()
    );

    // down on h2 takes b and h2's ends; a and c still share the LAN, h1 and h3 are whole.
    let down = lab(&h2, "h2", "down", &[&file]);
    assert_eq!(down.status, 0, "{}", down.stderr);
    h2.assert_clean(&["under"]);
    pings(&h1, "h1", &file, "a", "10.0.0.3");
    pings(&h3, "h3", &file, "c", "10.0.0.1");
    does_not_ping(&h1, "h1", &file, "a", "10.9.0.2");
    let view = lab(&h1, "h1", "inspect", &["--json", &file]).json();
    assert_eq!(view["nodes"][0]["state"], "running", "{view}");

    // up on h2 again: the lab is whole again.
    lab(&h2, "h2", "up", &[&file]).ok();
    pings(&h2, "h2", &file, "b", "10.9.0.1");
    pings(&h2, "h2", &file, "b", "10.0.0.3");

    for (host, sb) in hosts {
        let down = lab(sb, host, "down", &[&file]);
        assert_eq!(down.status, 0, "down on {host}: {}", down.stderr);
    }
    h1.assert_clean(&keep);
    h2.assert_clean(&["under"]);
    h3.assert_clean(&["under"]);
}

#[test]
fn an_unreachable_host_or_a_wrong_host_is_refused_before_anything_is_made() {
    let (Some(h1), Some(h2)) = (
        Sandbox::new("hosts-unreach-1"),
        Sandbox::new("hosts-unreach-2"),
    ) else {
        return;
    };
    let under = Sandbox::underlay(&[&h1, &h2], "192.168.99");
    let keep: Vec<&str> = under.iter().map(String::as_str).collect();
    let name = unique("unreach");
    let file = h1.path("lab.clab.yml");
    // h2's address is on no route of h1's.
    std::fs::write(
        &file,
        format!(
            "name: {name}\nhosts:\n  h1: {{address: 192.168.99.1}}\n  h2: {{address: 10.200.0.2}}\n\
             topology:\n  defaults: {{kind: linux, image: busybox}}\n  nodes:\n    a: {{host: h1}}\n    \
             b: {{host: h2}}\n  links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n"
        ),
    )
    .expect("write the topology");
    let file = file.display().to_string();
    let up = lab(&h1, "h1", "up", &[&file]);
    assert_eq!(up.status, 1, "{}{}", up.stdout, up.stderr);
    assert!(
        up.stderr
            .contains("host h2 (10.200.0.2) is unreachable from host h1"),
        "{}",
        up.stderr
    );
    assert!(up.stderr.contains("nothing was made"), "{}", up.stderr);
    h1.assert_clean(&keep);
    let down = lab(&h1, "h1", "down", &[&file]);
    assert_eq!(down.status, 0, "{}", down.stderr);
    h1.assert_clean(&keep);

    // The right file, run on h2 as if it were h1: h2 does not have h1's address.
    std::fs::write(
        h1.path("lab.clab.yml"),
        format!(
            "name: {name}\nhosts:\n  h1: {{address: 192.168.99.1}}\n  h2: {{address: 192.168.99.2}}\n\
             topology:\n  defaults: {{kind: linux, image: busybox}}\n  nodes:\n    a: {{host: h1}}\n    \
             b: {{host: h2}}\n  links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n"
        ),
    )
    .expect("write the topology");
    let up = lab(&h2, "h1", "up", &[&file]);
    assert_eq!(up.status, 1, "{}{}", up.stdout, up.stderr);
    assert!(up.stderr.contains("is this host h1?"), "{}", up.stderr);
    h2.assert_clean(&["under"]);
    // No --host for a spread lab: refused as a topology mistake, nothing made.
    let cache = h2.path("cache").display().to_string();
    let up = h2.tool("cloon-lab", &["up", "--cache-dir", &cache, &file], "");
    assert_eq!(up.status, 7, "{}", up.stderr);
    assert!(up.stderr.contains("--host NAME"), "{}", up.stderr);
    h2.assert_clean(&["under"]);
}

#[test]
fn the_makefile_of_a_host_brings_up_its_part() {
    let (Some(h1), Some(h2)) = (Sandbox::new("hosts-make-1"), Sandbox::new("hosts-make-2")) else {
        return;
    };
    let under = Sandbox::underlay(&[&h1, &h2], "192.168.99");
    let keep: Vec<&str> = under.iter().map(String::as_str).collect();
    let name = unique("hmake");
    let file = h1.path("lab.clab.yml");
    std::fs::write(
        &file,
        format!(
            "name: {name}\nhosts:\n  h1: {{address: 192.168.99.1}}\n  h2: {{address: 192.168.99.2}}\n\
             topology:\n  defaults: {{kind: linux, image: busybox}}\n  nodes:\n    a: {{host: h1}}\n    \
             b: {{host: h2}}\n    sw: {{kind: bridge}}\n  links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n      \
             ipv4: [\"10.9.0.1/30\", \"10.9.0.2/30\"]\n    - endpoints: [\"a:eth0\", \"sw:a\"]\n      \
             ipv4: [\"10.0.0.1/24\"]\n    - endpoints: [\"b:eth0\", \"sw:b\"]\n      ipv4: [\"10.0.0.2/24\"]\n"
        ),
    )
    .expect("write the topology");
    let file = file.display().to_string();
    // h1 with the generated Makefile (the tools alone), h2 with cloon-lab.
    let mk = h1.path("Makefile");
    let text = lab(&h1, "h1", "makefile", &[&file]).ok();
    assert!(text.contains("cloon-netns vxlan"), "{text}");
    std::fs::write(&mk, text).expect("write the Makefile");
    let make = h1.sh(&format!("make -f {} -j up", mk.display()));
    assert_eq!(make.status, 0, "{}{}", make.stdout, make.stderr);
    lab(&h2, "h2", "up", &[&file]).ok();
    pings(&h2, "h2", &file, "b", "10.9.0.1");
    pings(&h2, "h2", &file, "b", "10.0.0.1");
    let make = h1.sh(&format!("make -f {} down", mk.display()));
    assert_eq!(make.status, 0, "{}{}", make.stdout, make.stderr);
    h1.assert_clean(&keep);
    lab(&h2, "h2", "down", &[&file]).ok();
    h2.assert_clean(&["under"]);
}

/// The README's two-host lab, exactly as written there: its file, and its commands run on two
/// hosts whose underlay has the README's addresses.
#[test]
fn the_readme_two_host_lab_works_as_written() {
    let (Some(h1), Some(h2)) = (
        Sandbox::new("hosts-readme-1"),
        Sandbox::new("hosts-readme-2"),
    ) else {
        return;
    };
    let under = Sandbox::underlay(&[&h1, &h2], "192.0.2");
    let keep: Vec<&str> = under.iter().map(String::as_str).collect();
    let section = readme_section("### A lab over several hosts");
    let yaml = code_block(&section, "", "yaml");
    let commands = code_block(&section, "", "sh");
    // Each command without its comment: (host, the command's words after `cloon-lab`).
    let lines: Vec<Vec<&str>> = commands
        .lines()
        .map(|l| {
            l.split('#')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .collect()
        })
        .filter(|w: &Vec<&str>| !w.is_empty())
        .collect();
    assert!(lines.len() >= 3, "{commands}");
    let dir = h1.path("readme");
    std::fs::create_dir_all(&dir).expect("a directory for the lab");
    std::fs::write(dir.join("wan.clab.yml"), &yaml).expect("write the README's file");
    let cache = h1.path("cache").display().to_string();
    let run = |words: &[&str]| {
        assert_eq!(words[0], "cloon-lab", "{words:?}");
        let host = words
            .iter()
            .position(|w| *w == "--host")
            .map(|i| words[i + 1])
            .expect("--host");
        let sb = if host == "h1" { &h1 } else { &h2 };
        // As typed in a shell, in the file's directory (the words are plain: no quoting).
        sb.sh(&format!(
            "cd '{}' && CLOON_LAB_CACHE='{cache}' {}",
            dir.display(),
            words.join(" ")
        ))
    };
    for words in &lines {
        let r = run(words);
        assert_eq!(r.status, 0, "{words:?}: {}{}", r.stdout, r.stderr);
    }
    for host in ["h1", "h2"] {
        let r = run(&["cloon-lab", "down", "wan.clab.yml", "--host", host]);
        assert_eq!(r.status, 0, "down on {host}: {}", r.stderr);
    }
    h1.assert_clean(&keep);
    h2.assert_clean(&["under"]);
}
