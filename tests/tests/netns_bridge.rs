//! cloon-netns bridges (`--veth HOST:GUEST,bridge=BR`) and per-end settings, on real bridges and
//! veths inside a sandbox: containers share a LAN, a bridge cloon made goes with its last cloon
//! port (as the kernel lists them), a bridge it did not make is never deleted, concurrent ups and
//! downs never race.

mod netns_util;

use cloon_tests::Sandbox;
use netns_util::{inside, is_up, json_ok, link, link_in, netns, pings, STAGE};

/// The bridge record under the sandbox's state root, "" when there is none.
fn bridge_record(sb: &Sandbox, name: &str) -> String {
    sb.sh(&format!(
        "cat /run/cloon/.bridges/{name}.json 2>/dev/null; true"
    ))
    .ok()
}

#[test]
fn two_containers_share_a_bridge_that_goes_with_its_last_port() {
    let Some(sb) = Sandbox::new("netns-bridge") else {
        return;
    };
    let a = json_ok(netns(
        &sb,
        &[
            "--netns",
            "ns_a",
            "--name",
            "A",
            "--veth",
            "vgt_a:eth0,addr=10.1.0.1/24,addr=fd00::1/64,bridge=lan1",
        ],
        "",
    ));
    assert_eq!(a["netns"]["links"][0]["bridge"], "lan1");
    let br = link(&sb, "lan1");
    assert!(is_up(&br), "{br}");
    let kind = sb.sh("ip -d -o link show lan1").ok();
    assert!(kind.contains("bridge "), "{kind}");
    let rec: serde_json::Value = serde_json::from_str(&bridge_record(&sb, "lan1")).expect("json");
    assert_eq!(rec["name"], "lan1");
    assert_eq!(rec["created"], true);
    assert_eq!(
        rec["index"].to_string(),
        netns_util::ifindex(&br),
        "the record has the bridge's index"
    );

    let b = json_ok(netns(
        &sb,
        &[
            "--netns",
            "ns_b",
            "--name",
            "B",
            "--veth",
            "vgt_b:eth0,addr=10.1.0.2/24,addr=fd00::2/64,bridge=lan1",
        ],
        "",
    ));
    // Both host ends are ports of lan1, up; the containers reach each other through it.
    for host in ["vgt_a", "vgt_b"] {
        let line = link(&sb, host);
        assert!(line.contains("master lan1"), "{line}");
        assert!(is_up(&line), "{line}");
    }
    assert_eq!(
        netns_util::ifindex(&link(&sb, "lan1")),
        netns_util::ifindex(&br),
        "the bridge was made again"
    );
    assert!(pings(&sb, "ns_a", "10.1.0.2"), "A cannot reach B over lan1");
    assert!(pings(&sb, "ns_b", "10.1.0.1"), "B cannot reach A over lan1");
    assert_eq!(
        netns(&sb, &["check"], &b.to_string()).ok(),
        format!("{b:#}\n")
    );

    // A leaves: lan1 stays for B.
    netns(&sb, &["down"], &a.to_string()).ok();
    assert_eq!(link(&sb, "vgt_a"), "");
    assert!(link(&sb, "vgt_b").contains("master lan1"));
    assert!(!link(&sb, "lan1").is_empty(), "lan1 went while B uses it");
    assert!(!bridge_record(&sb, "lan1").is_empty());
    netns(&sb, &["check"], &b.to_string()).ok();

    // B, the last, leaves: lan1 goes, with its record.
    netns(&sb, &["down", "--name", "B"], "").ok();
    assert_eq!(link(&sb, "lan1"), "");
    assert_eq!(bridge_record(&sb, "lan1"), "");
    sb.assert_clean(&[]);
}

#[test]
fn a_bridge_cloon_did_not_make_is_joined_and_never_deleted() {
    let Some(sb) = Sandbox::new("netns-bridge-foreign") else {
        return;
    };
    sb.sh("ip link add lan0 type bridge").ok();
    let before = netns_util::ifindex(&link(&sb, "lan0"));
    let out = netns(
        &sb,
        &["--netns", "ns_f", "--veth", "vgt_f:eth0,bridge=lan0"],
        "",
    )
    .ok();
    assert!(link(&sb, "vgt_f").contains("master lan0"));
    assert!(bridge_record(&sb, "lan0").contains("\"created\": false"));
    netns(&sb, &["check"], &out).ok();
    netns(&sb, &["down"], &out).ok();
    assert_eq!(netns_util::ifindex(&link(&sb, "lan0")), before);
    assert_eq!(bridge_record(&sb, "lan0"), "");
    sb.assert_clean(&["lan0"]);
}

#[test]
fn a_bridge_name_that_is_another_kind_of_interface_is_refused() {
    let Some(sb) = Sandbox::new("netns-bridge-taken") else {
        return;
    };
    sb.sh("ip link add vx type veth peer name vy").ok();
    let run = netns(
        &sb,
        &["--netns", "ns_t", "--veth", "vgt_t:eth0,bridge=vx"],
        "",
    );
    let doc = run.assert_error(STAGE, 101);
    let msg = doc["error"]["msg"].as_str().unwrap_or_default();
    assert!(msg.contains("not a bridge"), "{msg}");
    assert!(!link(&sb, "vx").contains("master"));
    sb.assert_clean(&["vx", "vy"]);
}

#[test]
fn only_the_kernels_cloon_ports_keep_a_bridge() {
    let Some(sb) = Sandbox::new("netns-bridge-ports") else {
        return;
    };
    for (name, ns, host) in [("A", "ns_a", "vgt_a"), ("B", "ns_b", "vgt_b")] {
        let veth = format!("{host}:eth0,bridge=lan1");
        netns(&sb, &["--netns", ns, "--name", name, "--veth", &veth], "").ok();
    }
    // B's port is deleted by hand (as a crash might leave it), and an interface that is not
    // cloon's joins the bridge: neither keeps lan1 when A leaves.
    sb.sh("ip link del vgt_b && ip link add tap0 type veth peer name tap1 && ip link set tap0 master lan1")
        .ok();
    let drift = netns(&sb, &["check", "--name", "B"], "").assert_error(STAGE, 104);
    assert!(drift["error"]["msg"]
        .as_str()
        .unwrap_or_default()
        .contains("vgt_b"));
    netns(&sb, &["down", "--name", "A"], "").ok();
    assert_eq!(link(&sb, "lan1"), "", "lan1 outlived its last cloon port");
    assert!(
        !link(&sb, "tap0").is_empty(),
        "a port that is not cloon's was deleted"
    );
    assert!(!link(&sb, "tap0").contains("master"));
    netns(&sb, &["down", "--name", "B"], "").ok();
    sb.assert_clean(&["tap0", "tap1"]);
}

#[test]
fn a_port_taken_out_of_its_bridge_is_drift() {
    let Some(sb) = Sandbox::new("netns-bridge-drift") else {
        return;
    };
    let out = netns(
        &sb,
        &["--netns", "ns_d", "--veth", "vgt_d:eth0,bridge=lan1"],
        "",
    )
    .ok();
    sb.sh("ip link set vgt_d nomaster").ok();
    let doc = netns(&sb, &["check"], &out).assert_error(STAGE, 104);
    let msg = doc["error"]["msg"].as_str().unwrap_or_default();
    assert!(msg.contains("not a port of the bridge lan1"), "{msg}");
    // Not a port any more: down deletes lan1 with the container.
    netns(&sb, &["down"], &out).ok();
    sb.assert_clean(&[]);
}

#[test]
fn a_failed_up_removes_the_bridge_it_made_and_keeps_a_shared_one() {
    let Some(sb) = Sandbox::new("netns-bridge-undo") else {
        return;
    };
    // The second pair's guest name is taken inside the given namespace.
    sb.sh("ip netns add given && ip -n given link add eth1 type bridge")
        .ok();
    let args = [
        "--netns",
        "/run/netns/given",
        "--name",
        "U",
        "--veth",
        "vgt_u:eth0,bridge=lanu",
        "--veth",
        "vgt_v:eth1,bridge=lanu",
    ];
    netns(&sb, &args, "").assert_error(STAGE, 101);
    assert_eq!(link(&sb, "lanu"), "");
    assert_eq!(bridge_record(&sb, "lanu"), "");
    assert_eq!(link_in(&sb, "given", "eth0"), "");

    // With another container on the bridge, the failure leaves the bridge to it.
    let other = netns(
        &sb,
        &["--netns", "ns_o", "--veth", "vgt_o:eth0,bridge=lanu"],
        "",
    )
    .ok();
    let br = link(&sb, "lanu");
    netns(&sb, &args, "").assert_error(STAGE, 101);
    assert_eq!(
        netns_util::ifindex(&link(&sb, "lanu")),
        netns_util::ifindex(&br)
    );
    assert!(link(&sb, "vgt_o").contains("master lanu"));
    netns(&sb, &["check"], &other).ok();
    netns(&sb, &["down"], &other).ok();
    sb.sh("ip netns del given").ok();
    sb.assert_clean(&[]);
}

#[test]
fn concurrent_ups_and_downs_on_one_bridge_never_race() {
    let Some(sb) = Sandbox::new("netns-bridge-race") else {
        return;
    };
    // Each worker brings its container up and down on lan1 several times, all at once: with
    // the bridge's lock, no up finds lan1 deleted under it and no down leaves it behind.
    std::thread::scope(|scope| {
        for i in 0..6 {
            let sb = &sb;
            scope.spawn(move || {
                let (name, ns, veth) = (
                    format!("R{i}"),
                    format!("ns_r{i}"),
                    format!("vgt_r{i}:eth0,addr=10.5.0.{}/24,bridge=lan1", i + 1),
                );
                for round in 0..4 {
                    let up = netns(sb, &["--netns", &ns, "--name", &name, "--veth", &veth], "");
                    assert_eq!(up.status, 0, "R{i} round {round} up: {}", up.stderr);
                    let down = netns(sb, &["down", "--name", &name], "");
                    assert_eq!(down.status, 0, "R{i} round {round} down: {}", down.stderr);
                }
            });
        }
    });
    assert_eq!(link(&sb, "lan1"), "");
    sb.assert_clean(&[]);
}

#[test]
fn each_end_gets_its_addresses_mac_and_mtu() {
    let Some(sb) = Sandbox::new("netns-ends") else {
        return;
    };
    let doc = json_ok(netns(
        &sb,
        &[
            "--netns",
            "ns_e",
            "--veth",
            "vgt_e:eth0,addr=10.3.0.2/24,addr=fd00:3::2/64,mac=02:00:00:00:03:02,mtu=1400,\
             host-addr=10.3.0.1/24,host-addr=fd00:3::1/64,host-mac=02:00:00:00:03:01,\
             host-mtu=1450",
        ],
        "",
    ));
    let l = &doc["netns"]["links"][0];
    assert_eq!(l["mac"], "02:00:00:00:03:02");
    assert_eq!(l["mtu"], 1400);
    assert_eq!(l["hostMac"], "02:00:00:00:03:01");
    assert_eq!(l["hostMtu"], 1450);
    assert_eq!(
        l["hostAddrs"],
        serde_json::json!(["10.3.0.1/24", "fd00:3::1/64"])
    );
    let host = link(&sb, "vgt_e");
    assert!(host.contains("mtu 1450"), "{host}");
    assert!(host.contains("link/ether 02:00:00:00:03:01"), "{host}");
    let addrs = sb.sh("ip -o addr show vgt_e").ok();
    assert!(addrs.contains("inet 10.3.0.1/24"), "{addrs}");
    assert!(addrs.contains("inet6 fd00:3::1/64"), "{addrs}");
    let guest = link_in(&sb, "ns_e", "eth0");
    assert!(guest.contains("mtu 1400"), "{guest}");
    assert!(guest.contains("link/ether 02:00:00:00:03:02"), "{guest}");
    let addrs = inside(&sb, "ns_e", "ip -o addr show eth0");
    assert!(addrs.contains("inet 10.3.0.2/24"), "{addrs}");
    assert!(addrs.contains("inet6 fd00:3::2/64"), "{addrs}");
    // The host reaches the guest over the pair.
    let ping = sb
        .sh("busybox ping -c 1 -W 3 10.3.0.2 >/dev/null && echo yes; true")
        .ok();
    assert_eq!(ping.trim(), "yes");
    // An MTU changed by hand is drift.
    sb.sh("ip link set vgt_e mtu 1500").ok();
    let drift = netns(&sb, &["check"], &doc.to_string()).assert_error(STAGE, 104);
    assert!(drift["error"]["msg"]
        .as_str()
        .unwrap_or_default()
        .contains("MTU 1500"));
    netns(&sb, &["down"], &doc.to_string()).ok();
    sb.assert_clean(&[]);
}

#[test]
fn bad_bridge_and_end_options_are_refused_before_anything() {
    let Some(sb) = Sandbox::new("netns-ends-bad") else {
        return;
    };
    for veth in [
        "a:eth0,bridge=abcdefghijklmnop",
        "a:eth0,bridge=a",
        "a:eth0,host-mtu=20",
        "a:eth0,mtu=1000,addr=fd00::1/64",
        "a:eth0,host-mac=01:00:00:00:00:01",
        "a:eth0,host-addr=10.0.0.1",
        "a:eth0,hostaddr=10.0.0.1/24",
    ] {
        netns(&sb, &["--netns", "ns", "--veth", veth], "").assert_error(STAGE, 4);
    }
    netns(
        &sb,
        &[
            "--netns",
            "ns",
            "--veth",
            "a:eth0",
            "--veth",
            "b:eth1,bridge=a",
        ],
        "",
    )
    .assert_error(STAGE, 4);
    sb.assert_clean(&[]);
}
