//! cloon-netns VXLAN ends (`cloon-netns vxlan`), on real namespaces, bridges and VXLAN devices
//! inside a sandbox, across simulated hosts: each host is a mount and network namespace of the
//! sandbox with its own `/run` (so its own `/run/netns` and default state directory
//! `/run/cloon`), its `eth0` a veth whose other end is a port of the bridge `ul` of the sandbox
//! (the underlay, 192.168.99.0/24). A point-to-point link between containers of two hosts (over
//! IPv4, and over IPv6), a LAN spanning three, refusals, look-alikes, `--dry-run` and `gc` after a
//! kill.

mod netns_util;

use cloon_tests::{tool_path, Run, Sandbox};
use netns_util::{ifindex, STAGE};
use serde_json::Value;

/// One simulated host: a process holding its mount and network namespaces.
struct Host<'a> {
    sb: &'a Sandbox,
    name: String,
    pid: String,
    addr: String,
}

impl<'a> Host<'a> {
    /// A host called `name` with the underlay address 192.168.99.`n`/24 on its `eth0`.
    fn new(sb: &'a Sandbox, name: &str, n: u8) -> Host<'a> {
        let pidfile = sb.path(&format!("{name}.pid"));
        let pidfile = pidfile.display();
        sb.sh(&format!(
            "ip link show ul >/dev/null 2>&1 || {{ ip link add ul type bridge && ip link set ul up; }}
             unshare --mount --net --propagation private sh -c \
               'mount -t tmpfs -o mode=755 tmpfs /run && ip link set lo up && echo $$ > {pidfile}.new \
                && mv {pidfile}.new {pidfile} && exec sleep infinity' </dev/null >/dev/null 2>&1 &
             for i in $(seq 200); do [ -s {pidfile} ] && break; sleep 0.05; done
             pid=$(cat {pidfile})
             ip link add ul_{name} type veth peer name eth0 netns $pid
             ip link set ul_{name} master ul up"
        ))
        .ok();
        let pid = sb.sh(&format!("cat {pidfile}")).ok().trim().to_string();
        let host = Host {
            sb,
            name: name.to_string(),
            pid,
            addr: format!("192.168.99.{n}"),
        };
        host.sh(&format!(
            "ip addr add {}/24 dev eth0 && ip link set eth0 up",
            host.addr
        ))
        .ok();
        host
    }

    fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
        let mut cmd = self.sb.cmd("nsenter");
        cmd.args(["-t", &self.pid, "-m", "-n", "--"]).arg(program);
        cmd
    }

    /// Runs a shell script on the host, with cloon's tools first in `PATH`.
    fn sh(&self, script: &str) -> Run {
        let mut cmd = self.cmd("sh");
        cmd.args(["-c", script])
            .env("PATH", cloon_tests::tools_path());
        self.sb.run_cmd(&mut cmd, "")
    }

    /// Runs cloon-netns on the host.
    fn netns(&self, args: &[&str], stdin: &str) -> Run {
        let mut cmd = self.cmd(tool_path(STAGE));
        cmd.args(args);
        self.sb.run_cmd(&mut cmd, stdin)
    }

    /// `cloon-netns vxlan ARGS`, which must succeed: its document.
    fn vxlan(&self, args: &[&str]) -> Value {
        let mut all = vec!["vxlan"];
        all.extend(args);
        let run = self.netns(&all, "");
        serde_json::from_str(&run.ok()).expect("json")
    }

    /// The one-line `ip -d -o link show IF` of namespace `ns` of the host (`None`: its own),
    /// "" when missing.
    fn link(&self, ns: Option<&str>, ifname: &str) -> String {
        let n = ns.map(|n| format!("-n {n} ")).unwrap_or_default();
        self.sh(&format!("ip {n}-d -o link show {ifname} 2>/dev/null; true"))
            .ok()
    }

    /// Whether namespace `from` of the host reaches `addr` with one ping.
    fn pings(&self, from: &str, addr: &str) -> bool {
        self.sh(&format!(
            "ip netns exec {from} busybox ping -c 1 -W 3 {addr} >/dev/null 2>&1 && echo yes; true"
        ))
        .ok()
        .trim()
            == "yes"
    }

    /// Its interfaces, namespaces and cloon records, as text: what `down --all` must leave
    /// (lo and eth0, nothing else).
    fn state(&self) -> String {
        self.sh(
            "ip -o link | awk -F': ' '{print $2}'; ls /run/netns 2>/dev/null; \
             ls -A /run/cloon 2>/dev/null | grep -vx .cloon-state; true",
        )
        .ok()
    }

    /// Deletes the host: its underlay link, then its process (its namespaces go with it).
    fn remove(self) {
        self.sb
            .sh(&format!(
                "ip link del ul_{} 2>/dev/null; kill {}; true",
                self.name, self.pid
            ))
            .ok();
    }
}

/// Checks that each host has only `lo` and its `eth0` left, no namespace and no record, nor a
/// UDP socket; removes the hosts and the underlay bridge; checks the sandbox is clean.
fn finish(sb: &Sandbox, hosts: Vec<Host>) {
    for h in hosts {
        let state = h.state();
        let lines: Vec<&str> = state.lines().collect();
        assert!(
            lines.len() == 2 && lines[0] == "lo" && lines[1].starts_with("eth0@if"),
            "{} has more than lo and eth0: {state}",
            h.name
        );
        assert_eq!(
            h.sh("ss -Hlun").ok().trim(),
            "",
            "{}: a UDP socket is left",
            h.name
        );
        h.remove();
    }
    sb.sh("ip link del ul 2>/dev/null; true").ok();
    sb.assert_clean(&[]);
}

/// The host h1 with the namespace c1 and two ends to 192.168.99.2: `w` (VNI 7), `c1:eth1`, and
/// `l` (VNI 8), `vxl_l`, a port of the bridge lan9.
fn host_with_two_ends(sb: &Sandbox) -> Host<'_> {
    let h1 = Host::new(sb, "h1", 1);
    h1.sh("ip netns add c1").ok();
    for (name, vni, end) in [("w", "7", "c1:eth1"), ("l", "8", "vxl_l,bridge=lan9")] {
        h1.vxlan(&[
            "--name",
            name,
            "--vni",
            vni,
            "--remote",
            "192.168.99.2",
            end,
        ]);
    }
    h1
}

fn msg(doc: &Value) -> String {
    doc["error"]["msg"].as_str().unwrap_or_default().to_string()
}

#[test]
fn a_link_joins_containers_of_two_hosts() {
    let Some(sb) = Sandbox::new("netns-vxlan-p2p") else {
        return;
    };
    let h1 = Host::new(&sb, "h1", 1);
    let h2 = Host::new(&sb, "h2", 2);
    // The same container namespace name on both hosts: each has its own /run.
    h1.netns(&["--netns", "c1", "--name", "C1"], "").ok();
    h2.sh("ip netns add c1").ok();
    let h1_links = h1.sh("ip -o link").ok();

    let doc = h1.vxlan(&[
        "--name",
        "w1",
        "--vni",
        "42",
        "--local",
        "192.168.99.1",
        "--dev",
        "eth0",
        "--remote",
        "192.168.99.2",
        "c1:eth1,addr=10.42.0.1/24,addr=fd42::1/64",
    ]);
    // Without --dev: the MTU is given, 1500 less 50, where the kernel would leave 1500.
    let doc2 = h2.vxlan(&[
        "--name",
        "w1",
        "--vni",
        "42",
        "--remote",
        "192.168.99.1:4789",
        "c1:eth1,addr=10.42.0.2/24,mac=02:00:00:00:42:02",
    ]);
    assert_eq!(doc["name"], "w1");
    let part = &doc["vxlan"];
    assert_eq!(part["vni"], 42);
    assert_eq!(part["port"], 4789);
    assert_eq!(part["local"], "192.168.99.1");
    assert_eq!(part["dev"], "eth0");
    assert_eq!(
        part["remotes"],
        serde_json::json!([{"address": "192.168.99.2", "port": 4789}])
    );
    assert_eq!(part["learning"], false);
    assert_eq!(part["ifname"], "eth1");
    assert_eq!(part["netns"], "c1");
    assert_eq!(part["path"], "/run/netns/c1");
    assert_eq!(part["mtu"], 1450);
    assert_eq!(
        part["addrs"],
        serde_json::json!(["10.42.0.1/24", "fd42::1/64"])
    );
    assert!(part.get("bridge").is_none(), "{part}");
    assert_eq!(doc2["vxlan"]["mtu"], 1450);
    assert_eq!(doc2["vxlan"]["mac"], "02:00:00:00:42:02");
    assert!(doc2["vxlan"].get("dev").is_none());

    // The device is in the container's namespace, its socket on the host, which has no new
    // interface.
    assert_eq!(h1.sh("ip -o link").ok(), h1_links);
    for h in [&h1, &h2] {
        let l = h.link(Some("c1"), "eth1");
        assert!(l.contains("mtu 1450"), "{l}");
        assert!(
            l.contains("vxlan id 42 ") && l.contains("dstport 4789 nolearning"),
            "{l}"
        );
        let sockets = h.sh("ss -Hlun 'sport = :4789'").ok();
        assert!(sockets.contains(":4789"), "{}: {sockets}", h.name);
        let fdb = h.sh("bridge -n c1 fdb show dev eth1").ok();
        assert!(fdb.contains("00:00:00:00:00:00 dst 192.168.99."), "{fdb}");
    }
    assert!(h1.link(Some("c1"), "eth1").contains("local 192.168.99.1"));
    assert_eq!(
        part["mac"],
        h1.link(Some("c1"), "eth1")
            .split("link/ether ")
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .unwrap_or_default()
    );
    assert!(
        h1.pings("c1", "10.42.0.2"),
        "the link does not carry packets"
    );
    assert!(
        h2.pings("c1", "10.42.0.1"),
        "the link does not carry packets back"
    );

    // The record, check and show.
    let shown: Value =
        serde_json::from_str(&h1.netns(&["show", "--name", "w1"], "").ok()).expect("json");
    assert!(shown["index"].as_u64().unwrap_or(0) > 0, "{shown}");
    assert!(shown["inode"].as_u64().unwrap_or(0) > 0, "{shown}");
    assert_eq!(shown["group"], 1_668_050_798);
    assert_eq!(shown["vni"], 42);
    assert_eq!(shown["learning"], false);
    assert!(shown.get("alias").is_none(), "{shown}");
    h1.sh("test -f /run/cloon/w1/vxlan.json").ok();
    assert_eq!(
        h1.netns(&["check"], &doc.to_string()).ok(),
        format!("{doc:#}\n")
    );
    // MTU changed by hand: drift.
    h2.sh("ip -n c1 link set eth1 mtu 1400").ok();
    let err = h2
        .netns(&["check", "--name", "w1"], "")
        .assert_error(STAGE, 104);
    assert!(msg(&err).contains("MTU 1400"), "{err}");

    // down on one host leaves the other host's end whole.
    let down: Value =
        serde_json::from_str(&h1.netns(&["down"], &doc.to_string()).ok()).expect("json");
    assert_eq!(down, serde_json::json!({"cloonVersion": "1", "name": "w1"}));
    assert_eq!(h1.link(Some("c1"), "eth1"), "");
    assert!(h2.link(Some("c1"), "eth1").contains("vxlan id 42"));
    h2.sh("ip -n c1 link set eth1 mtu 1450").ok();
    h2.netns(&["check", "--name", "w1"], "").ok();
    // The flooding entry to the remote removed by hand, another added: drift, each named.
    h2.sh("bridge -n c1 fdb del 00:00:00:00:00:00 dev eth1 dst 192.168.99.1")
        .ok();
    let err = h2
        .netns(&["check", "--name", "w1"], "")
        .assert_error(STAGE, 104);
    assert!(
        msg(&err).contains("no longer floods to the remote 192.168.99.1 port 4789"),
        "{err}"
    );
    h2.sh(
        "bridge -n c1 fdb append 00:00:00:00:00:00 dev eth1 dst 192.168.99.1 && \
         bridge -n c1 fdb append 00:00:00:00:00:00 dev eth1 dst 192.0.2.9 port 4790",
    )
    .ok();
    let err = h2
        .netns(&["check", "--name", "w1"], "")
        .assert_error(STAGE, 104);
    assert!(
        msg(&err).contains("also floods to 192.0.2.9 port 4790"),
        "{err}"
    );
    assert!(!msg(&err).contains("192.168.99.1"), "{err}");
    h2.sh("bridge -n c1 fdb del 00:00:00:00:00:00 dev eth1 dst 192.0.2.9 port 4790")
        .ok();
    h2.netns(&["check", "--name", "w1"], "").ok();
    // Idempotent; then the name is unknown.
    h1.netns(&["down", "--name", "w1"], "").ok();
    h1.netns(&["check", "--name", "w1"], "")
        .assert_error(STAGE, 3);

    // down --all on each leaves nothing; on h1 the container's namespace goes first, with the
    // VXLAN device made in it.
    h1.vxlan(&[
        "--name",
        "w2",
        "--vni",
        "43",
        "--remote",
        "192.168.99.2",
        "c1:eth2",
    ]);
    let all: Value = serde_json::from_str(&h1.netns(&["down", "--all"], "").ok()).expect("json");
    assert_eq!(all["down"], serde_json::json!(["C1", "w2"]));
    h2.netns(&["down", "--all"], "").ok();
    h2.sh("ip netns del c1").ok();
    finish(&sb, vec![h1, h2]);
}

/// Over an IPv6 underlay: the device's MTU leaves 70 bytes to the encapsulation (1430), a full
/// frame crosses, the flooding entries name the IPv6 remotes (one on another port), and `check`
/// reads them back as recorded.
#[test]
fn an_ipv6_underlay_carries_a_link() {
    let Some(sb) = Sandbox::new("netns-vxlan-v6") else {
        return;
    };
    let h1 = Host::new(&sb, "h1", 1);
    let h2 = Host::new(&sb, "h2", 2);
    for (h, n) in [(&h1, 1), (&h2, 2)] {
        h.sh(&format!(
            "ip addr add fd99::{n}/64 dev eth0 nodad && ip netns add c6"
        ))
        .ok();
    }
    let doc1 = h1.vxlan(&[
        "--name",
        "v6",
        "--vni",
        "600",
        "--port",
        "4790",
        "--local",
        "fd99::1",
        "--remote",
        "[fd99::2]:4791",
        "c6:eth1,addr=10.60.0.1/24",
    ]);
    let doc2 = h2.vxlan(&[
        "--name",
        "v6",
        "--vni",
        "600",
        "--port",
        "4791",
        "--remote",
        "[fd99::1]:4790",
        "c6:eth1,addr=10.60.0.2/24",
    ]);
    assert_eq!(doc1["vxlan"]["mtu"], 1430, "{doc1}");
    assert_eq!(doc2["vxlan"]["mtu"], 1430, "{doc2}");
    assert_eq!(
        doc1["vxlan"]["remotes"],
        serde_json::json!([{"address": "fd99::2", "port": 4791}])
    );
    let fdb = h1.sh("bridge -n c6 fdb show dev eth1").ok();
    assert!(
        fdb.contains("00:00:00:00:00:00 dst fd99::2 port 4791"),
        "{fdb}"
    );
    // 1430 less 28 bytes of IPv4 and ICMP headers, across and back.
    let ping = h1.sh("ip netns exec c6 busybox ping -c 1 -W 3 -s 1402 10.60.0.2");
    assert_eq!(ping.status, 0, "{}{}", ping.stdout, ping.stderr);
    assert!(h2.pings("c6", "10.60.0.1"));
    h1.netns(&["check", "--name", "v6"], "").ok();
    h2.netns(&["check", "--name", "v6"], "").ok();
    // An entry to the remote on the device's own port instead: drift, named with the port.
    h1.sh(
        "bridge -n c6 fdb del 00:00:00:00:00:00 dev eth1 dst fd99::2 port 4791 && \
         bridge -n c6 fdb append 00:00:00:00:00:00 dev eth1 dst fd99::2",
    )
    .ok();
    let err = h1
        .netns(&["check", "--name", "v6"], "")
        .assert_error(STAGE, 104);
    assert!(
        msg(&err).contains("no longer floods to the remote fd99::2 port 4791")
            && msg(&err).contains("also floods to fd99::2 port 4790"),
        "{err}"
    );
    for h in [&h1, &h2] {
        h.netns(&["down", "--name", "v6"], "").ok();
        h.sh("ip netns del c6").ok();
    }
    finish(&sb, vec![h1, h2]);
}

#[test]
fn a_lan_spans_three_hosts() {
    let Some(sb) = Sandbox::new("netns-vxlan-lan") else {
        return;
    };
    let hosts: Vec<Host> = (1..=3)
        .map(|n| Host::new(&sb, &format!("h{n}"), n))
        .collect();
    let mut addrs = Vec::new();
    for (i, h) in hosts.iter().enumerate() {
        let n = i + 1;
        for (c, k) in [("A", 1), ("B", 2)] {
            let addr = format!("10.50.0.{}", n * 10 + k);
            h.netns(
                &[
                    "--netns",
                    &format!("ns{c}"),
                    "--name",
                    c,
                    "--veth",
                    &format!("v{c}:eth0,addr={addr}/24,bridge=lan1"),
                ],
                "",
            )
            .ok();
            addrs.push((n, format!("ns{c}"), addr));
        }
        let others: Vec<String> = (1..=3)
            .filter(|m| *m != n)
            .map(|m| format!("192.168.99.{m}"))
            .collect();
        let doc = h.vxlan(&[
            "--name",
            "lan1-vx",
            "--vni",
            "100",
            "--dev",
            "eth0",
            "--remote",
            &others[0],
            "--remote",
            &others[1],
            "vxl_lan1,bridge=lan1",
        ]);
        assert_eq!(doc["vxlan"]["bridge"], "lan1");
        assert_eq!(doc["vxlan"]["learning"], true);
        assert_eq!(doc["vxlan"]["remotes"].as_array().map(Vec::len), Some(2));
        let l = h.link(None, "vxl_lan1");
        assert!(l.contains("master lan1") && l.contains("mtu 1450"), "{l}");
        assert!(
            l.contains("vxlan id 100 ") && !l.contains("nolearning"),
            "{l}"
        );
        assert!(
            l.contains("alias cloon:/run/cloon/lan1-vx/vxlan.json"),
            "{l}"
        );
    }
    for (n, ns, _) in &addrs {
        for (m, other, to) in &addrs {
            if (n, ns) == (m, other) {
                continue;
            }
            assert!(
                hosts[n - 1].pings(ns, to),
                "{ns} of h{n} does not reach {to} (h{m})"
            );
        }
    }
    // A VXLAN end's name is no container's, and the other way round.
    let h = &hosts[0];
    let err = h
        .netns(&["--netns", "nsX", "--name", "lan1-vx"], "")
        .assert_error(STAGE, 101);
    assert!(msg(&err).contains("lan1-vx"), "{err}");

    // h1: the containers go first: the bridge stays while the VXLAN port is on it; the VXLAN
    // end's down then deletes it with its record.
    h.netns(&["down", "--name", "A"], "").ok();
    h.netns(&["down", "--name", "B"], "").ok();
    assert!(h.link(None, "lan1").contains("bridge"), "the bridge went");
    h.sh("test -f /run/cloon/.bridges/lan1.json").ok();
    assert!(h.link(None, "vxl_lan1").contains("master lan1"));
    h.netns(&["down", "--name", "lan1-vx"], "").ok();
    assert_eq!(h.link(None, "lan1"), "");
    assert_eq!(h.link(None, "vxl_lan1"), "");
    h.sh("test ! -e /run/cloon/.bridges/lan1.json").ok();
    // The LAN still works between the two other hosts.
    assert!(hosts[1].pings("nsA", "10.50.0.31"));
    // h2: the VXLAN end first: the bridge stays for the containers, then goes with the last.
    let h = &hosts[1];
    h.netns(&["down", "--name", "lan1-vx"], "").ok();
    assert_eq!(h.link(None, "vxl_lan1"), "");
    assert!(h.link(None, "lan1").contains("bridge"), "the bridge went");
    assert!(h.pings("nsA", "10.50.0.22"));
    h.netns(&["down", "--name", "A"], "").ok();
    assert!(h.link(None, "lan1").contains("bridge"));
    h.netns(&["down", "--name", "B"], "").ok();
    assert_eq!(h.link(None, "lan1"), "");
    // h3: all at once (one kernel request for the group).
    let all: Value =
        serde_json::from_str(&hosts[2].netns(&["down", "--all"], "").ok()).expect("json");
    assert_eq!(all["down"], serde_json::json!(["A", "B", "lan1-vx"]));
    finish(&sb, hosts);
}

#[test]
fn refused_ends_leave_nothing() {
    let Some(sb) = Sandbox::new("netns-vxlan-refused") else {
        return;
    };
    let h1 = Host::new(&sb, "h1", 1);
    h1.sh("ip netns add c1 && ip netns add c2").ok();
    let before = h1.state();
    let links = |h: &Host| h.sh("ip -o link; ip -n c1 -o link; ip -n c2 -o link").ok();
    let links_before = links(&h1);
    let vx = |args: &[&str]| {
        let mut all = vec!["vxlan", "--name", "w"];
        all.extend(args);
        h1.netns(&all, "")
    };
    // No route to the remote: said, and nothing is made.
    let err = vx(&["--vni", "7", "--remote", "10.99.0.1", "c1:eth1"]).assert_error(STAGE, 4);
    assert!(msg(&err).contains("10.99.0.1:4789 is unreachable"), "{err}");
    assert!(msg(&err).contains("ip route get 10.99.0.1"), "{err}");
    let err = vx(&["--vni", "7", "--remote", "[fd99::1]:4789", "c1:eth1"]).assert_error(STAGE, 4);
    assert!(msg(&err).contains("unreachable"), "{err}");
    // Bad input of every kind.
    for (args, says) in [
        (
            &["--vni", "0", "--remote", "192.168.99.2", "c1:eth1"][..],
            "1 to 16777215",
        ),
        (
            &["--vni", "16777216", "--remote", "192.168.99.2", "c1:eth1"],
            "1 to 16777215",
        ),
        (
            &[
                "--vni",
                "7",
                "--port",
                "0",
                "--remote",
                "192.168.99.2",
                "c1:eth1",
            ],
            "UDP port",
        ),
        (
            &["--vni", "7", "--remote", "192.168.99.2:0", "c1:eth1"],
            "UDP port",
        ),
        (
            &["--vni", "7", "--remote", "192.168.99", "c1:eth1"],
            "not an address",
        ),
        (
            &[
                "--vni",
                "7",
                "--remote",
                "192.168.99.1",
                "--local",
                "192.168.99.1",
                "c1:eth1",
            ],
            "own address",
        ),
        (
            &["--vni", "7", "--remote", "192.168.99.2", "c1:lo"],
            "loopback",
        ),
        (
            &[
                "--vni",
                "7",
                "--remote",
                "192.168.99.2",
                "c1:eth1,colour=red",
            ],
            "unknown option",
        ),
        (
            &[
                "--vni",
                "7",
                "--remote",
                "192.168.99.2",
                "vxl1,addr=10.0.0.1/24",
            ],
            "is for a device in a container's namespace",
        ),
        (
            &[
                "--vni",
                "7",
                "--remote",
                "192.168.99.2",
                "--dev",
                "eth0",
                "c1:eth1,mtu=1451",
            ],
            "mtu=1450 or less",
        ),
        (
            &[
                "--vni",
                "7",
                "--remote",
                "192.168.99.2",
                "/proc/self/ns/net:eth1",
            ],
            "own network namespace",
        ),
    ] {
        let err = vx(args).assert_error(STAGE, 4);
        assert!(msg(&err).contains(says), "{args:?}: {err}");
    }
    let err =
        vx(&["--vni", "7", "--remote", "192.168.99.2", "nowhere:eth1"]).assert_error(STAGE, 3);
    assert!(msg(&err).contains("/run/netns/nowhere"), "{err}");
    let err = vx(&[
        "--vni",
        "7",
        "--remote",
        "192.168.99.2",
        "--dev",
        "eth9",
        "c1:eth1",
    ])
    .assert_error(STAGE, 3);
    assert!(msg(&err).contains("--dev eth9"), "{err}");
    // The command line itself: no remote, an unknown option.
    for args in [
        &["vxlan", "--name", "w", "--vni", "7", "c1:eth1"][..],
        &[
            "vxlan",
            "--name",
            "w",
            "--vni",
            "7",
            "--remote",
            "192.168.99.2",
            "--colour",
            "red",
            "c1:eth1",
        ],
    ] {
        let run = h1.netns(args, "");
        assert_ne!(run.status, 0, "{args:?}");
        assert!(!run.stderr.is_empty());
    }
    assert_eq!(h1.state(), before);
    assert_eq!(links(&h1), links_before);

    // Names taken: the interface in the namespace, the record's name, the VNI on the port.
    h1.sh("ip -n c2 link add eth1 type bridge").ok();
    let err = vx(&["--vni", "7", "--remote", "192.168.99.2", "c2:eth1"]).assert_error(STAGE, 101);
    assert!(msg(&err).contains("eth1 already exists"), "{err}");
    h1.sh("ip -n c2 link del eth1").ok();
    h1.vxlan(&[
        "--name",
        "w",
        "--vni",
        "7",
        "--remote",
        "192.168.99.2",
        "c1:eth1",
    ]);
    let err = vx(&["--vni", "8", "--remote", "192.168.99.2", "c2:eth1"]).assert_error(STAGE, 101);
    assert!(msg(&err).contains("\"w\" is taken"), "{err}");
    let err = h1
        .netns(
            &[
                "vxlan",
                "--name",
                "v",
                "--vni",
                "7",
                "--remote",
                "192.168.99.2",
                "c2:eth1",
            ],
            "",
        )
        .assert_error(STAGE, 101);
    assert!(
        msg(&err).contains("VNI 7 is already used on UDP port 4789 on this host, by eth1"),
        "{err}"
    );
    assert!(msg(&err).contains("pick another --vni or --port"), "{err}");
    assert_eq!(h1.link(Some("c2"), "eth1"), "");
    h1.sh("test ! -e /run/cloon/v").ok();
    // ... and a device on the host with that VNI and port, seen before anything is made.
    h1.sh("ip link add vxh type vxlan id 9 dstport 4790").ok();
    let err = h1
        .netns(
            &[
                "vxlan",
                "--name",
                "v",
                "--vni",
                "9",
                "--port",
                "4790",
                "--remote",
                "192.168.99.2",
                "c2:eth1",
            ],
            "",
        )
        .assert_error(STAGE, 101);
    assert!(msg(&err).contains("by vxh"), "{err}");
    h1.sh("ip link del vxh").ok();
    // Another VNI on the same port, or the same VNI on another port, is fine.
    h1.vxlan(&[
        "--name",
        "v",
        "--vni",
        "7",
        "--port",
        "4790",
        "--remote",
        "192.168.99.2",
        "c2:eth1",
    ]);
    // A document with parts of cloon-netns is refused.
    let doc = r#"{"cloonVersion":"1","link":{"ends":[]}}"#;
    h1.netns(
        &[
            "vxlan",
            "--name",
            "u",
            "--vni",
            "5",
            "--remote",
            "192.168.99.2",
            "c2:eth2",
        ],
        doc,
    )
    .assert_error(STAGE, 7);

    h1.netns(&["down", "--all"], "").ok();
    h1.sh("ip netns del c1 && ip netns del c2").ok();
    finish(&sb, vec![h1]);
}

#[test]
fn down_leaves_look_alikes_alone() {
    let Some(sb) = Sandbox::new("netns-vxlan-look-alike") else {
        return;
    };
    let h1 = host_with_two_ends(&sb);
    // Each device replaced by hand by a VXLAN device of its name that is not in the group.
    h1.sh(
        "ip -n c1 link del eth1 && ip -n c1 link add eth1 type vxlan id 7 dstport 4789 && \
         ip link del vxl_l && ip link add vxl_l type vxlan id 8 dstport 4789 && \
         ip link set vxl_l master lan9",
    )
    .ok();
    let look_alike = h1.link(Some("c1"), "eth1");
    let host_look_alike = ifindex(&h1.link(None, "vxl_l"));
    assert!(!look_alike.is_empty() && !host_look_alike.is_empty());
    h1.netns(&["check", "--name", "w"], "")
        .assert_error(STAGE, 104);
    let run = h1.netns(&["down", "--name", "w"], "");
    assert!(
        run.stderr.contains("not the one cloon created"),
        "{}",
        run.stderr
    );
    run.ok();
    // The bridge cloon made goes with its last cloon port: a port that is not cloon's does not
    // keep it (as for veths), and stays.
    h1.netns(&["down", "--name", "l"], "").ok();
    assert_eq!(h1.link(Some("c1"), "eth1"), look_alike);
    assert_eq!(ifindex(&h1.link(None, "vxl_l")), host_look_alike);
    assert_eq!(h1.link(None, "lan9"), "");
    h1.sh("test ! -e /run/cloon/w && test ! -e /run/cloon/l")
        .ok();
    // gc leaves them too.
    h1.netns(&["gc"], "").ok();
    assert_eq!(h1.link(Some("c1"), "eth1"), look_alike);
    assert_eq!(ifindex(&h1.link(None, "vxl_l")), host_look_alike);
    h1.sh("ip -n c1 link del eth1 && ip link del vxl_l && ip netns del c1")
        .ok();
    finish(&sb, vec![h1]);
}

#[test]
fn dry_run_says_commands_that_work_and_touches_nothing() {
    let Some(sb) = Sandbox::new("netns-vxlan-dry-run") else {
        return;
    };
    let h1 = Host::new(&sb, "h1", 1);
    let h2 = Host::new(&sb, "h2", 2);
    h1.sh("ip netns add c1").ok();
    h2.sh("ip netns add c1").ok();
    h2.vxlan(&[
        "--name",
        "w",
        "--vni",
        "42",
        "--dev",
        "eth0",
        "--remote",
        "192.168.99.1",
        "c1:eth1,addr=10.42.0.2/24",
    ]);
    let before = h1.state() + &h1.sh("ip -n c1 -o link").ok();
    let run = h1.netns(
        &[
            "--dry-run",
            "vxlan",
            "--name",
            "w",
            "--vni",
            "42",
            "--local",
            "192.168.99.1",
            "--remote",
            "192.168.99.2",
            "c1:eth1,addr=10.42.0.1/24",
        ],
        "",
    );
    let stderr = run.stderr.clone();
    let doc: Value = serde_json::from_str(&run.ok()).expect("json");
    assert_eq!(doc["vxlan"]["mtu"], 1450);
    assert_eq!(doc["vxlan"]["mac"], "");
    assert_eq!(h1.state() + &h1.sh("ip -n c1 -o link").ok(), before);
    h1.sh("test ! -e /run/cloon/w").ok();
    for line in [
        "ip link add eth1 group 1668050798 mtu 1450 netns c1 type vxlan id 42 dstport 4789 local 192.168.99.1 nolearning",
        "bridge -n c1 fdb append 00:00:00:00:00:00 dev eth1 dst 192.168.99.2 port 4789",
        "ip -n c1 link set eth1 up",
        "ip -n c1 addr add 10.42.0.1/24 dev eth1",
    ] {
        assert!(stderr.lines().any(|l| l == line), "{line} not in:\n{stderr}");
    }
    // The commands said make a working end: run them by hand.
    let commands: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("ip ") || l.starts_with("bridge "))
        .collect();
    h1.sh(&format!("set -e\n{}", commands.join("\n"))).ok();
    assert!(
        h1.pings("c1", "10.42.0.2"),
        "the said commands make no link"
    );
    // The bridge case too: said, nothing made.
    let run = h1.netns(
        &[
            "--dry-run",
            "vxlan",
            "--name",
            "l",
            "--vni",
            "5",
            "--remote",
            "192.168.99.2",
            "vxl_l,bridge=lan5",
        ],
        "",
    );
    let stderr = run.stderr.clone();
    run.ok();
    assert!(
        stderr.contains("ip link add lan5 group 1668050798 type bridge"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "ip link add vxl_l group 1668050798 mtu 1450 type vxlan id 5 dstport 4789 learning"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("ip link set vxl_l master lan5"), "{stderr}");
    assert!(
        stderr.contains("bridge fdb append 00:00:00:00:00:00 dev vxl_l dst 192.168.99.2 port 4789"),
        "{stderr}"
    );
    assert_eq!(h1.link(None, "lan5"), "");
    assert_eq!(h1.link(None, "vxl_l"), "");
    h1.sh("ip -n c1 link del eth1 && ip netns del c1").ok();
    h2.netns(&["down", "--all"], "").ok();
    h2.sh("ip netns del c1").ok();
    finish(&sb, vec![h1, h2]);
}

#[test]
fn gc_removes_what_a_killed_vxlan_left() {
    let Some(sb) = Sandbox::new("netns-vxlan-gc") else {
        return;
    };
    let h1 = host_with_two_ends(&sb);
    h1.netns(&["gc"], "").ok();
    assert!(
        !h1.link(Some("c1"), "eth1").is_empty(),
        "gc took a healthy end"
    );
    assert!(!h1.link(None, "vxl_l").is_empty(), "gc took a healthy end");
    // Killed right after the device was made, before its index was recorded: the records say
    // index 0, the devices are there.
    h1.sh(
        "for r in /run/cloon/w/vxlan.json /run/cloon/l/vxlan.json; do \
           sed -i 's/\"index\": *[0-9]*/\"index\": 0/' $r; grep -q '\"index\": 0,' $r; done",
    )
    .ok();
    let report: Value = serde_json::from_str(&h1.netns(&["gc"], "").ok()).expect("json");
    let found = report["found"].to_string();
    assert!(
        found.contains("\"w\"") && found.contains("\"l\""),
        "{report}"
    );
    assert_eq!(h1.link(Some("c1"), "eth1"), "");
    assert_eq!(h1.link(None, "vxl_l"), "");
    assert_eq!(h1.link(None, "lan9"), "");
    h1.sh("ip netns del c1").ok();
    finish(&sb, vec![h1]);
}
