//! The topology reader: what it accepts, what each level gives a node, and that every mistake is
//! refused with its line.

use super::*;

fn parse(text: &str) -> anyhow::Result<Lab> {
    Lab::parse(text, Path::new("/labs/t.clab.yml"), None)
}

/// The error message of a topology that must be refused.
fn refused(text: &str) -> String {
    match parse(text) {
        Ok(lab) => panic!("accepted: {lab:?}"),
        Err(e) => format!("{e:#}"),
    }
}

const LAN: &str = r#"
name: lan
topology:
  defaults:
    kind: linux
    image: busybox
    env: {LEVEL: defaults, D: d}
  kinds:
    linux:
      env: {LEVEL: kind}
      exec: ["echo kind"]
  groups:
    routers:
      cap-add: [SETUID, CAP_SETGID]
      sysctls: {net.ipv4.ip_forward: 1}
      exec: ["echo group"]
  nodes:
    h1:
      env: {LEVEL: node}
      exec: ["echo node", "echo kind"]
      binds: ["/etc:/host-etc:ro"]
    h2:
    r1:
      group: routers
      cmd: "sleep 'a b'"
      hostname: router-1
    lan1:
      kind: bridge
  links:
    - endpoints: ["h1:eth0", "lan1:p1"]
      ipv4: ["10.0.1.1/24"]
    - endpoints: ["h2:eth0", "lan1:p2"]
      ipv4: ["10.0.1.2/24"]
      ipv6: ["fd00::2/64"]
    - type: veth
      mtu: 9000
      endpoints:
        - {node: h1, interface: eth1, ipv4: 10.9.0.1/30, mac: "02:AA:00:00:00:01"}
        - {node: r1, interface: eth1, ipv4: 10.9.0.2/30}
      netem: {delay: 10ms, jitter: 1ms, loss: 0.5%, rate: 10mbit, corrupt: 1, duplicate: 2%}
"#;

#[test]
fn a_lab_with_every_form_is_read() {
    let lab = parse(LAN).unwrap();
    assert_eq!(lab.name, "lan");
    let names: Vec<&str> = lab.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["h1", "h2", "r1", "lan1"], "file order");
    assert_eq!(lab.node("lan1").unwrap().kind, Kind::Bridge);
    assert_eq!(lab.containers().count(), 3);
    assert_eq!(lab.links.len(), 3);
    let l = &lab.links[1];
    assert_eq!(l.ends[0].addrs, ["10.0.1.2/24", "fd00::2/64"]);
    assert!(l.ends[1].addrs.is_empty());
    let p2p = &lab.links[2];
    assert_eq!(p2p.mtu, Some(9000));
    assert_eq!(p2p.ends[0].mac.as_deref(), Some("02:aa:00:00:00:01"));
    let netem = p2p.netem.as_ref().unwrap();
    assert_eq!(netem.delay, Some(std::time::Duration::from_millis(10)));
    assert_eq!(netem.loss, Some(0.5));
    assert_eq!(netem.rate, Some(10_000_000));
    assert_eq!(netem.corrupt, Some(1.0));
    assert_eq!(p2p.line, 35);
    assert_eq!(lab.links[0].line, 30);
}

#[test]
fn nodes_inherit_node_then_group_then_kind_then_defaults() {
    let lab = parse(LAN).unwrap();
    let h1 = lab.node("h1").unwrap();
    assert_eq!(h1.env["LEVEL"], "node");
    assert_eq!(h1.env["D"], "d");
    let argv = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    // Concatenated from the least specific level, duplicates dropped.
    assert_eq!(h1.exec, [argv(&["echo", "kind"]), argv(&["echo", "node"])]);
    assert_eq!(h1.binds[0].dst, "/host-etc");
    assert!(h1.binds[0].ro);
    assert_eq!(h1.hostname, "h1");
    assert_eq!(h1.image, Some(ImageSource::Busybox));
    let h2 = lab.node("h2").unwrap();
    assert_eq!(h2.env["LEVEL"], "kind");
    let r1 = lab.node("r1").unwrap();
    assert_eq!(r1.cap_add, ["SETUID", "SETGID"]);
    assert_eq!(r1.sysctls["net.ipv4.ip_forward"], "1");
    assert_eq!(r1.cmd.as_ref().unwrap(), &argv(&["sleep", "a b"]));
    assert_eq!(r1.hostname, "router-1");
    assert_eq!(
        r1.exec,
        [argv(&["echo", "kind"]), argv(&["echo", "group"])],
        "kind before group"
    );
}

#[test]
fn the_name_flag_replaces_the_files_name() {
    let lab = Lab::parse(LAN, Path::new("/labs/t.clab.yml"), Some("lan2")).unwrap();
    assert_eq!(lab.name, "lan2");
    let e = format!(
        "{:#}",
        Lab::parse(LAN, Path::new("/x.yml"), Some("a.b")).unwrap_err()
    );
    assert!(e.contains("contains '.'"), "{e}");
}

#[test]
fn image_sources() {
    let dir = Path::new("/labs");
    let p = |s: &str| ImageSource::parse(s, dir);
    assert_eq!(p("busybox").unwrap(), ImageSource::Busybox);
    assert_eq!(
        p("debootstrap:bookworm:iproute2,tcpdump").unwrap(),
        ImageSource::Debootstrap {
            suite: "bookworm".into(),
            include: Some("iproute2,tcpdump".into())
        }
    );
    assert_eq!(
        p("oci:img/layout:1.0").unwrap(),
        ImageSource::Oci {
            layout: "/labs/img/layout".into(),
            tag: Some("1.0".into())
        }
    );
    assert_eq!(
        p("oci:/abs/layout").unwrap(),
        ImageSource::Oci {
            layout: "/abs/layout".into(),
            tag: None
        }
    );
    assert_eq!(
        p("tar:./rootfs.tar").unwrap(),
        ImageSource::Tar {
            file: "/labs/rootfs.tar".into()
        }
    );
    assert_eq!(
        p("bb.img").unwrap(),
        ImageSource::File {
            path: "/labs/bb.img".into()
        }
    );
    assert!(p("alpine:3").unwrap_err().contains("registry image"));
    assert!(p("debootstrap:").is_err());
    assert!(p("debootstrap:bookworm:a;b").is_err());
    assert!(p("tar:").is_err());
    assert_eq!(p("debootstrap:sid").unwrap().spec(), "debootstrap:sid");
}

/// Each mistake: the file, what is refused, and the line and words the message must have.
#[test]
fn every_mistake_is_refused_with_its_line() {
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "an unknown node field",
            "name: x\ntopology:\n  nodes:\n    a:\n      kind: linux\n      image: busybox\n      ports: [80]\n",
            &["t.clab.yml:7:", "unknown field `ports`"],
        ),
        (
            "an unknown endpoint field",
            "name: x\ntopology:\n  nodes:\n    a: {kind: linux, image: busybox}\n    b: {kind: linux, image: busybox}\n  links:\n    - type: veth\n      endpoints:\n        - {node: a, interface: eth1, ip: 10.0.0.1/24}\n        - {node: b, interface: eth1}\n",
            &[":9:", "unknown field `ip`"],
        ),
        (
            "a link to a node that does not exist",
            "name: x\ntopology:\n  nodes:\n    a: {kind: linux, image: busybox}\n  links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n",
            &[":6:", "\"b\", which is not in topology.nodes"],
        ),
        (
            "an interface name longer than 15 bytes",
            "name: x\ntopology:\n  nodes:\n    a: {kind: linux, image: busybox}\n    b: {kind: linux, image: busybox}\n  links:\n    - endpoints: [\"a:eth1\", \"b:ethernet-1-1-1-1\"]\n",
            &[":7:", "at most 15"],
        ),
        (
            "an interface used by two links",
            "name: x\ntopology:\n  nodes:\n    a: {kind: linux, image: busybox}\n    b: {kind: linux, image: busybox}\n  links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n    - endpoints: [\"a:eth1\", \"b:eth2\"]\n",
            &[":8:", "\"a:eth1\" is already used by a link at line 7"],
        ),
        (
            "a kind cloon does not run",
            "name: x\ntopology:\n  nodes:\n    a: {kind: nokia_srlinux, image: busybox}\n",
            &[":4:", "kind \"nokia_srlinux\""],
        ),
        (
            "a node without an image",
            "name: x\ntopology:\n  nodes:\n    a: {kind: linux}\n",
            &[":4:", "has no image"],
        ),
        (
            "a registry image",
            "name: x\ntopology:\n  nodes:\n    a: {kind: linux, image: \"alpine:3\"}\n",
            &[":4:", "registry image"],
        ),
        (
            "an image file that does not exist",
            "name: x\ntopology:\n  nodes:\n    a:\n      kind: linux\n      image: missing.img\n",
            &[":6:", "/labs/missing.img does not exist"],
        ),
        (
            "a bad address",
            "name: x\ntopology:\n  nodes:\n    a: {kind: linux, image: busybox}\n    b: {kind: linux, image: busybox}\n  links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n      ipv4: [\"10.0.0.1\"]\n",
            &[":8:", "has no prefix length"],
        ),
        (
            "netem without units",
            "name: x\ntopology:\n  nodes:\n    a: {kind: linux, image: busybox}\n    b: {kind: linux, image: busybox}\n  links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n      netem:\n        delay: 10\n",
            &[":9:", "netem delay", "no unit"],
        ),
        (
            "two bridges linked",
            "name: x\ntopology:\n  nodes:\n    s1: {kind: bridge}\n    s2: {kind: bridge}\n  links:\n    - endpoints: [\"s1:a\", \"s2:a\"]\n",
            &[":7:", "two bridges"],
        ),
        (
            "a bridge with an image",
            "name: x\ntopology:\n  nodes:\n    a: {kind: linux, image: busybox}\n    s: {kind: bridge, image: busybox}\n  links:\n    - endpoints: [\"a:eth1\", \"s:a\"]\n",
            &[":5:", "a bridge runs nothing"],
        ),
        (
            "a lab name with a slash",
            "name: a/b\ntopology:\n  nodes:\n    a: {kind: linux, image: busybox}\n",
            &[":1:", "contains '/'"],
        ),
        (
            "no lab name",
            "topology:\n  nodes:\n    a: {kind: linux, image: busybox}\n",
            &["no `name:`"],
        ),
        (
            "a node defined twice",
            "name: x\ntopology:\n  nodes:\n    a: {kind: linux, image: busybox}\n    a: {kind: linux, image: busybox}\n",
            &[":5:", "a key may appear once"],
        ),
        (
            "YAML that does not parse",
            "name: x\ntopology:\n  nodes:\n    a: {kind: linux, image: busybox\n",
            &[":4:"],
        ),
        (
            "a link type cloon does not make",
            "name: x\ntopology:\n  nodes:\n    a: {kind: linux, image: busybox}\n  links:\n    - type: macvlan\n      endpoints: [\"a:eth1\", \"a:eth2\"]\n",
            &[":6:", "type \"macvlan\""],
        ),
        (
            "lo used by a link",
            "name: x\ntopology:\n  nodes:\n    a: {kind: linux, image: busybox}\n    b: {kind: linux, image: busybox}\n  links:\n    - endpoints: [\"a:lo\", \"b:eth1\"]\n",
            &[":7:", "loopback"],
        ),
        (
            "a multicast MAC",
            "name: x\ntopology:\n  nodes:\n    a: {kind: linux, image: busybox}\n    b: {kind: linux, image: busybox}\n  links:\n    - type: veth\n      endpoints:\n        - node: a\n          interface: eth1\n          mac: \"01:00:00:00:00:01\"\n        - {node: b, interface: eth1}\n",
            &[":11:", "multicast"],
        ),
        (
            "a group that does not exist",
            "name: x\ntopology:\n  nodes:\n    a: {kind: linux, image: busybox, group: g}\n",
            &[":4:", "group \"g\" is not in topology.groups"],
        ),
        (
            "an unclosed quote in exec",
            "name: x\ntopology:\n  nodes:\n    a:\n      kind: linux\n      image: busybox\n      exec:\n        - \"sh -c 'ip addr\"\n",
            &[":8:", "a quote is not closed"],
        ),
    ];
    for (what, text, wanted) in cases {
        let msg = refused(text);
        for w in *wanted {
            assert!(msg.contains(w), "{what}: {w:?} not in:\n{msg}");
        }
        assert!(msg.contains("nothing was done"), "{what}: {msg}");
    }
}

#[test]
fn eth0_is_a_link_interface_like_any_other() {
    let lab = parse(
        "name: x\ntopology:\n  nodes:\n    a: {kind: linux, image: busybox}\n    b: {kind: linux, image: busybox}\n  links:\n    - endpoints: [\"a:eth0\", \"b:eth0\"]\n",
    )
    .unwrap();
    assert_eq!(lab.links[0].ends[0].interface, "eth0");
}

#[test]
fn all_problems_are_reported_at_once_in_line_order() {
    let msg = refused(
        "name: x\ntopology:\n  nodes:\n    a: {kind: linux, image: busybox}\n  links:\n    - endpoints: [\"a:eth1\", \"zz:eth1\"]\n    - endpoints: [\"a:eth2\", \"yy:eth1\"]\n",
    );
    assert!(msg.contains("2 problems"), "{msg}");
    let first = msg.find(":6:").unwrap();
    let second = msg.find(":7:").unwrap();
    assert!(first < second, "{msg}");
}

#[test]
fn hosts_spread_a_lab_and_each_container_names_one() {
    let lab = parse(
        "name: w\nhosts:\n  h1: {address: 192.0.2.1}\n  h2: {address: 192.0.2.2, interface: ens4, port: 8472}\ntopology:\n  defaults: {kind: linux, image: busybox, host: h1}\n  nodes:\n    a:\n    b: {host: h2}\n  links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n",
    )
    .expect("accepted");
    assert_eq!(lab.hosts.len(), 2);
    assert_eq!(lab.hosts[1].port, 8472);
    assert_eq!(lab.hosts[1].interface.as_deref(), Some("ens4"));
    assert_eq!(lab.hosts[0].port, VXLAN_PORT);
    assert_eq!(lab.host_of("a").map(|h| h.name.as_str()), Some("h1"));
    assert_eq!(lab.host_of("b").map(|h| h.name.as_str()), Some("h2"));
}

#[test]
fn host_mistakes_are_refused_with_their_line() {
    let base = "topology:\n  defaults: {kind: linux, image: busybox}\n  nodes:\n";
    let e = refused(&format!(
        "name: w\nhosts:\n  h1: {{address: 192.0.2.1}}\n{base}    a: {{host: h1}}\n    b:\n"
    ));
    assert!(e.contains(":8: node \"b\" has no host"), "{e}");
    let e = refused(&format!("name: w\n{base}    a: {{host: h1}}\n"));
    assert!(e.contains("the file has no `hosts:`"), "{e}");
    let e = refused(&format!(
        "name: w\nhosts:\n  h1: {{address: 192.0.2.1}}\n{base}    a: {{host: h2}}\n"
    ));
    assert!(
        e.contains("host \"h2\" is not in hosts: (there are: h1)"),
        "{e}"
    );
    let e = refused(&format!(
        "name: w\nhosts:\n  h1: {{address: 192.0.2.1/24}}\n  h2: {{}}\n  h3: {{address: 127.0.0.1}}\n  h4: {{address: 192.0.2.9, port: 0}}\n  h5: {{address: 192.0.2.9}}\n{base}    a: {{host: h4}}\n"
    ));
    assert!(
        e.contains(":3: hosts: \"h1\": address \"192.0.2.1/24\" is not an IP address"),
        "{e}"
    );
    assert!(e.contains(":4: hosts: \"h2\" has no address"), "{e}");
    assert!(
        e.contains("address 127.0.0.1 is not one another host can reach"),
        "{e}"
    );
    assert!(e.contains("port 0 is not a UDP port"), "{e}");
    assert!(e.contains("\"h5\" and \"h4\" have the same address"), "{e}");
    let e = refused(&format!(
        "name: w\nhosts:\n  h1: {{address: 192.0.2.1}}\n  h2: {{address: 2001:db8::2}}\n{base}    a: {{host: h1}}\n    b: {{host: h2}}\n  links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n"
    ));
    assert!(
        e.contains("a VXLAN tunnel joins two addresses of one family"),
        "{e}"
    );
    let e = refused(&format!(
        "name: w\nhosts:\n  h1: {{address: 192.0.2.1}}\n{base}    a: {{host: h1}}\n    sw: {{kind: bridge, host: h1}}\n  links:\n    - endpoints: [\"a:eth1\", \"sw:a\"]\n"
    ));
    assert!(e.contains("bridge \"sw\": `host` is for containers"), "{e}");
}
