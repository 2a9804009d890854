//! cloon-netns on real namespaces and veths, inside a sandbox (fresh mount and network namespaces
//! with their own /run). Every assertion reads the kernel's state through `ip`.

mod netns_util;

use cloon_tests::{add_standalone, Sandbox};
use netns_util::{ifindex, inside, is_up, json_ok, link, netns, STAGE};
use serde_json::Value;

#[test]
fn up_two_pairs_then_down_leaves_nothing() {
    let Some(sb) = Sandbox::new("netns-up") else {
        return;
    };
    let run = netns(
        &sb,
        &[
            "--netns",
            "cloonix_1_1",
            "--veth",
            "vgt_1_1_0:eth0,addr=10.0.0.2/24,addr=fd00::2/64,mac=02:00:0A:00:00:02",
            "--veth",
            "vgt_1_1_1:eth1,addr=10.1.0.2/16",
            "--name",
            "Cloon1",
        ],
        "",
    );
    let out = run.ok();
    let doc: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(doc["name"], "Cloon1");
    assert_eq!(doc["netns"]["name"], "cloonix_1_1");
    assert_eq!(doc["netns"]["path"], "/run/netns/cloonix_1_1");
    let links = doc["netns"]["links"].as_array().expect("links");
    assert_eq!(links.len(), 2);
    assert_eq!(links[0]["host"], "vgt_1_1_0");
    assert_eq!(links[0]["guest"], "eth0");
    assert_eq!(links[0]["mac"], "02:00:0a:00:00:02");
    assert_eq!(
        links[0]["addrs"],
        serde_json::json!(["10.0.0.2/24", "fd00::2/64"])
    );
    assert_eq!(links[1]["addrs"], serde_json::json!(["10.1.0.2/16"]));

    // The namespace is visible to iproute2.
    let listed = sb.sh("ip netns ls").ok();
    assert!(
        listed
            .lines()
            .any(|l| l.split_whitespace().next() == Some("cloonix_1_1")),
        "{listed}"
    );

    // Inside: lo and the guest ends up, the addresses set, the MAC addresses as the document says.
    assert!(is_up(&inside(&sb, "cloonix_1_1", "ip -o link show lo")));
    let addrs = inside(&sb, "cloonix_1_1", "ip -o addr");
    assert!(addrs.contains("eth0    inet 10.0.0.2/24"), "{addrs}");
    assert!(addrs.contains("eth0    inet6 fd00::2/64"), "{addrs}");
    assert!(addrs.contains("eth1    inet 10.1.0.2/16"), "{addrs}");
    assert!(addrs.contains("lo    inet 127.0.0.1/8"), "{addrs}");
    for l in links {
        let guest = l["guest"].as_str().expect("guest");
        assert!(is_up(&inside(
            &sb,
            "cloonix_1_1",
            &format!("ip -o link show {guest}")
        )));
        let mac = inside(
            &sb,
            "cloonix_1_1",
            &format!("cat /sys/class/net/{guest}/address"),
        );
        assert_eq!(mac.trim(), l["mac"].as_str().expect("mac"));
    }

    // Outside: the host ends exist and are up; the guest names are not on the host.
    for host in ["vgt_1_1_0", "vgt_1_1_1"] {
        let line = link(&sb, host);
        assert!(is_up(&line), "{host}: {line:?}");
    }
    assert_eq!(link(&sb, "eth0"), "");

    // check agrees and hands the document on unchanged.
    assert_eq!(netns(&sb, &["check"], &out).ok(), out);
    assert_eq!(
        json_ok(netns(&sb, &["show", "--name", "Cloon1"], ""))["created"],
        true
    );

    // down removes the part and everything else.
    let down = netns(&sb, &["down"], &out).ok();
    let down: Value = serde_json::from_str(&down).expect("json");
    assert_eq!(
        down,
        serde_json::json!({"cloonVersion": "1", "name": "Cloon1"})
    );
    sb.assert_clean(&[]);

    // Again, with the document or only the name: nothing left to do is success.
    netns(&sb, &["down"], &out).ok();
    let by_name = netns(&sb, &["down", "--name", "Cloon1"], "").ok();
    assert_eq!(serde_json::from_str::<Value>(&by_name).expect("json"), down);
    sb.assert_clean(&[]);
}

#[test]
fn down_by_name_without_a_document() {
    let Some(sb) = Sandbox::new("netns-down-name") else {
        return;
    };
    netns(&sb, &["--netns", "ns_a", "--veth", "vgt_a:eth0"], "").ok();
    assert!(!link(&sb, "vgt_a").is_empty());
    let out = json_ok(netns(&sb, &["down", "--name", "ns_a"], ""));
    assert_eq!(
        out,
        serde_json::json!({"cloonVersion": "1", "name": "ns_a"})
    );
    sb.assert_clean(&[]);
    // A name cloon never heard of: nothing of cloon's, so nothing to do.
    netns(&sb, &["down", "--name", "never_up"], "").ok();
    // check and show of an unknown name say so.
    netns(&sb, &["check", "--name", "never_up"], "").assert_error(STAGE, 3);
    netns(&sb, &["show", "--name", "never_up"], "").assert_error(STAGE, 3);
    sb.assert_clean(&[]);
}

#[test]
fn a_second_up_with_the_same_name_is_refused_and_the_first_is_intact() {
    let Some(sb) = Sandbox::new("netns-twice") else {
        return;
    };
    let first = netns(
        &sb,
        &[
            "--netns",
            "ns_1",
            "--veth",
            "vgt_1:eth0,addr=10.0.0.2/24",
            "--name",
            "C1",
        ],
        "",
    )
    .ok();
    let index = ifindex(&link(&sb, "vgt_1"));

    // Same container name, other namespace and interfaces: the record is taken.
    let run = netns(
        &sb,
        &["--netns", "ns_2", "--veth", "vgt_2:eth0", "--name", "C1"],
        "",
    );
    run.assert_error(STAGE, 101);
    assert_eq!(link(&sb, "vgt_2"), "");
    assert!(!sb.sh("ls /run/netns").ok().contains("ns_2"));

    // Same namespace name for another container: the namespace is taken.
    let run = netns(
        &sb,
        &["--netns", "ns_1", "--veth", "vgt_3:eth0", "--name", "C2"],
        "",
    );
    run.assert_error(STAGE, 101);
    assert_eq!(link(&sb, "vgt_3"), "");
    assert!(!sb.sh("ls -A /run/cloon").ok().contains("C2"));

    // Same host-side interface for another container: the name is taken.
    let run = netns(
        &sb,
        &["--netns", "ns_4", "--veth", "vgt_1:eth0", "--name", "C4"],
        "",
    );
    run.assert_error(STAGE, 101);

    // The first is untouched.
    assert_eq!(ifindex(&link(&sb, "vgt_1")), index);
    assert_eq!(netns(&sb, &["check"], &first).ok(), first);
    assert!(inside(&sb, "ns_1", "ip -o addr show eth0").contains("10.0.0.2/24"));
    netns(&sb, &["down"], &first).ok();
    sb.assert_clean(&[]);
}

#[test]
fn a_host_side_name_that_exists_is_refused_and_nothing_is_left() {
    let Some(sb) = Sandbox::new("netns-hostname") else {
        return;
    };
    sb.sh(&add_standalone("vgt_1_1_0")).ok();
    let before = link(&sb, "vgt_1_1_0");
    let run = netns(
        &sb,
        &["--netns", "cloonix_1_1", "--veth", "vgt_1_1_0:eth0"],
        "",
    );
    let doc = run.assert_error(STAGE, 101);
    assert!(
        doc["error"]["msg"]
            .as_str()
            .unwrap_or("")
            .contains("vgt_1_1_0"),
        "{doc}"
    );
    assert_eq!(link(&sb, "vgt_1_1_0"), before);
    sb.assert_clean(&["vgt_1_1_0"]);
}

#[test]
fn the_hosts_eth0_is_never_touched() {
    let Some(sb) = Sandbox::new("netns-eth0") else {
        return;
    };
    let before = sb.add_eth0();

    let out = netns(
        &sb,
        &[
            "--netns",
            "cloonix_1_1",
            "--veth",
            "vgt_1_1_0:eth0,addr=10.0.0.2/24",
        ],
        "",
    )
    .ok();
    // Same ifindex, flags, state, MAC and address on the host.
    assert_eq!(sb.eth0(), before);
    // The namespace has an eth0 of its own.
    let guest = inside(&sb, "cloonix_1_1", "ip -o addr show eth0");
    assert!(guest.contains("10.0.0.2/24"), "{guest}");
    assert!(!guest.contains("192.0.2.1"), "{guest}");
    let guest_link = inside(&sb, "cloonix_1_1", "ip -o link show eth0");
    assert!(
        guest_link.contains("eth0@"),
        "the guest eth0 is not a veth: {guest_link}"
    );

    netns(&sb, &["down"], &out).ok();
    assert_eq!(sb.eth0(), before);
    sb.assert_clean(&["eth0"]);
}

#[test]
fn bad_flags_give_an_error_document_and_touch_nothing() {
    let Some(sb) = Sandbox::new("netns-bad") else {
        return;
    };
    for bad in [
        &["--netns", "ns", "--veth", "vgt_1_1_0"][..],
        &["--netns", "ns", "--veth", "vgt_1_1_0:eth0,addr=10.0.0.2"],
        &[
            "--netns",
            "ns",
            "--veth",
            "vgt_1_1_0:eth0,addr=10.0.0.2/24,mac=01:00:00:00:00:01",
        ],
        &["--netns", "ns", "--veth", "a_very_long_name_indeed:eth0"],
        &["--netns", "ns", "--veth", "vgt_1_1_0:eth0,color=blue"],
        &["--netns", "ns", "--veth", "a:eth0", "--veth", "b:eth0"],
        &[
            "--netns",
            "ns",
            "--veth",
            "a:eth0",
            "--veth",
            "b:eth0,addr=x/1",
        ],
        &["--netns", "ns;reboot", "--veth", "a:eth0"],
        &["--netns", "bad name"],
        &["--veth", "a:eth0"],
        &["--netns", "ns", "--name", "../C"],
    ] {
        let run = netns(&sb, bad, "");
        let doc = run.assert_error(STAGE, 4);
        assert!(
            run.stderr.contains("cloon-netns: error:"),
            "{bad:?}: {}",
            run.stderr
        );
        assert!(doc.get("netns").is_none());
    }
    // Valid names, but a path that is no namespace.
    sb.sh("touch /run/notans").ok();
    netns(&sb, &["--netns", "/run/notans", "--name", "C"], "").assert_error(STAGE, 4);
    netns(&sb, &["--netns", "/run/nothing", "--name", "C"], "").assert_error(STAGE, 3);
    sb.sh("rm /run/notans").ok();
    sb.assert_clean(&[]);
}

#[test]
fn an_error_document_on_stdin_passes_through() {
    let Some(sb) = Sandbox::new("netns-passthrough") else {
        return;
    };
    sb.assert_error_passes_through(
        STAGE,
        &["--netns", "ns", "--veth", "a:eth0"],
        "cloon-overlay",
        102,
    );
    sb.assert_clean(&[]);
}

#[test]
fn other_parts_of_the_document_pass_through() {
    let Some(sb) = Sandbox::new("netns-doc") else {
        return;
    };
    let input = r#"{"cloonVersion":"1","name":"Cloon1","mine":{"z":1,"a":2},"image":{"path":"/i","fstype":"ext4","bytes":1}}"#;
    let out = netns(
        &sb,
        &["--netns", "cloonix_1_1", "--veth", "vgt_1_1_0:eth0"],
        input,
    )
    .ok();
    let doc: Value = serde_json::from_str(&out).expect("json");
    let keys: Vec<&String> = doc.as_object().expect("object").keys().collect();
    assert_eq!(keys, ["cloonVersion", "name", "mine", "image", "netns"]);
    assert_eq!(doc["mine"], serde_json::json!({"z": 1, "a": 2}));
    // The container is named by the document, not by the namespace.
    assert!(sb.sh("ls /run/cloon").ok().contains("Cloon1"));
    let down: Value = serde_json::from_str(&netns(&sb, &["down"], &out).ok()).expect("json");
    let want: Value = serde_json::from_str(input).expect("json");
    assert_eq!(down, want);
    sb.assert_clean(&[]);
}

#[test]
fn an_existing_namespace_given_by_path_is_used_but_never_deleted() {
    let Some(sb) = Sandbox::new("netns-path") else {
        return;
    };
    sb.sh("ip netns add given").ok();
    let out = netns(
        &sb,
        &[
            "--netns",
            "/run/netns/given",
            "--veth",
            "vgt_g:eth0,addr=10.9.0.2/24",
            "--name",
            "Cg",
        ],
        "",
    )
    .ok();
    let doc: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(doc["netns"]["path"], "/run/netns/given");
    assert_eq!(doc["netns"]["name"], "given");
    assert!(inside(&sb, "given", "ip -o addr show eth0").contains("10.9.0.2/24"));
    assert!(is_up(&inside(&sb, "given", "ip -o link show lo")));
    netns(&sb, &["check"], &out).ok();

    netns(&sb, &["down"], &out).ok();
    assert!(
        sb.sh("ip netns ls").ok().contains("given"),
        "the given namespace was deleted"
    );
    assert_eq!(
        inside(&sb, "given", "ip -o link show eth0 2>/dev/null; true"),
        ""
    );
    assert_eq!(link(&sb, "vgt_g"), "");
    sb.sh("ip netns del given").ok();
    sb.assert_clean(&[]);
}

#[test]
fn a_failure_halfway_undoes_everything() {
    let Some(sb) = Sandbox::new("netns-undo") else {
        return;
    };
    // The second pair's guest name is taken inside the given namespace: the kernel refuses it
    // after the first pair was made.
    sb.sh(&format!(
        "ip netns add given && ip netns exec given sh -c '{}'",
        add_standalone("eth1")
    ))
    .ok();
    let run = netns(
        &sb,
        &[
            "--netns",
            "/run/netns/given",
            "--veth",
            "vgt_a:eth0",
            "--veth",
            "vgt_b:eth1",
            "--name",
            "Cu",
        ],
        "",
    );
    run.assert_error(STAGE, 101);
    assert_eq!(link(&sb, "vgt_a"), "");
    assert_eq!(link(&sb, "vgt_b"), "");
    assert_eq!(
        inside(&sb, "given", "ip -o link show eth0 2>/dev/null; true"),
        ""
    );
    assert!(!inside(&sb, "given", "ip -o link show eth1").is_empty());
    sb.sh("ip netns del given").ok();
    sb.assert_clean(&[]);
}

#[test]
fn drift_is_reported_and_look_alikes_are_left_alone() {
    let Some(sb) = Sandbox::new("netns-drift") else {
        return;
    };
    let out = netns(
        &sb,
        &[
            "--netns",
            "ns_d",
            "--veth",
            "vgt_d:eth0",
            "--veth",
            "vgt_e:eth1",
        ],
        "",
    )
    .ok();
    netns(&sb, &["check"], &out).ok();

    // Someone deletes a host end and makes an interface of the same name.
    sb.sh(&format!("ip link del vgt_d && {}", add_standalone("vgt_d")))
        .ok();
    let doc = netns(&sb, &["check"], &out).assert_error(STAGE, 104);
    let msg = doc["error"]["msg"].as_str().unwrap_or("").to_string();
    assert!(msg.contains("vgt_d"), "{msg}");
    assert!(msg.contains("eth0"), "{msg}");
    assert!(!msg.contains("vgt_e"), "{msg}");
    let look_alike = link(&sb, "vgt_d");

    // down removes what is cloon's and leaves the look-alike.
    netns(&sb, &["down"], &out).ok();
    assert_eq!(link(&sb, "vgt_d"), look_alike);
    sb.assert_clean(&["vgt_d"]);
}

#[test]
fn a_namespace_deleted_by_hand_is_drift_and_down_still_succeeds() {
    let Some(sb) = Sandbox::new("netns-gone") else {
        return;
    };
    let out = netns(&sb, &["--netns", "ns_g", "--veth", "vgt_g:eth0"], "").ok();
    sb.sh("ip link del vgt_g && ip netns del ns_g").ok();
    let doc = netns(&sb, &["check"], &out).assert_error(STAGE, 104);
    assert!(
        doc["error"]["msg"]
            .as_str()
            .unwrap_or("")
            .contains("missing"),
        "{doc}"
    );
    netns(&sb, &["down"], &out).ok();
    sb.assert_clean(&[]);
}

#[test]
fn a_namespace_without_veths_has_lo_up() {
    let Some(sb) = Sandbox::new("netns-bare") else {
        return;
    };
    let out = json_ok(netns(&sb, &["--netns", "bare"], ""));
    assert_eq!(out["netns"]["links"], serde_json::json!([]));
    assert_eq!(out["name"], "bare");
    assert!(is_up(&inside(&sb, "bare", "ip -o link show lo")));
    netns(&sb, &["down", "--name", "bare"], "").ok();
    sb.assert_clean(&[]);
}

#[test]
fn a_failure_inside_a_namespace_it_created_undoes_everything() {
    let Some(sb) = Sandbox::new("netns-undo-created") else {
        return;
    };
    // The kernel refuses the loopback address on a veth, after the namespace, both pairs and the
    // first address were made.
    let run = netns(
        &sb,
        &[
            "--netns",
            "ns_u",
            "--veth",
            "vgt_a:eth0,addr=10.0.0.2/24",
            "--veth",
            "vgt_b:eth1,addr=::1/128",
        ],
        "",
    );
    let doc = run.assert_error(STAGE, 5);
    assert!(
        doc["error"]["msg"]
            .as_str()
            .unwrap_or("")
            .contains("::1/128"),
        "{doc}"
    );
    sb.assert_clean(&[]);
    // The same name works afterwards.
    netns(&sb, &["--netns", "ns_u", "--veth", "vgt_a:eth0"], "").ok();
    netns(&sb, &["down", "--name", "ns_u"], "").ok();
    sb.assert_clean(&[]);
}
