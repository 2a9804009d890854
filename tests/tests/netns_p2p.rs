//! cloon-netns point-to-point links (`cloon-netns link --name L NSA:IFA NSB:IFB`), on real
//! namespaces and veths inside a sandbox: each end made in its namespace and never on the host,
//! recorded under the link's name for down, check and show.

mod netns_util;

use cloon_tests::Sandbox;
use netns_util::{is_up, json_ok, link, link_in, netns, pings, STAGE};

#[test]
fn a_link_joins_two_namespaces_with_no_end_on_the_host() {
    let Some(sb) = Sandbox::new("netns-p2p") else {
        return;
    };
    // One namespace of a container, one made by hand.
    netns(&sb, &["--netns", "ns_a", "--name", "A"], "").ok();
    sb.sh("ip netns add ns_b").ok();
    let host_before = sb.sh("ip -o link").ok();

    let doc = json_ok(netns(
        &sb,
        &[
            "link",
            "--name",
            "w1",
            "ns_a:eth1,addr=10.9.0.1/30,addr=fd09::1/64,mtu=9000",
            "/run/netns/ns_b:eth7,addr=10.9.0.2/30,mac=02:00:00:00:09:02,mtu=9000",
        ],
        "",
    ));
    assert_eq!(doc["name"], "w1");
    let ends = doc["link"]["ends"].as_array().expect("ends");
    assert_eq!(ends.len(), 2);
    assert_eq!(ends[0]["netns"], "ns_a");
    assert_eq!(ends[0]["ifname"], "eth1");
    assert_eq!(
        ends[0]["addrs"],
        serde_json::json!(["10.9.0.1/30", "fd09::1/64"])
    );
    assert_eq!(ends[1]["path"], "/run/netns/ns_b");
    assert_eq!(ends[1]["mac"], "02:00:00:00:09:02");
    assert_eq!(ends[1]["mtu"], 9000);

    // The host has nothing new; each end is in its namespace, up, with its settings, and peers
    // with the other.
    assert_eq!(sb.sh("ip -o link").ok(), host_before);
    let a = link_in(&sb, "ns_a", "eth1");
    assert!(is_up(&a) && a.contains("mtu 9000"), "{a}");
    assert!(a.contains("link-netns ns_b"), "{a}");
    assert_eq!(
        a.split("link/ether ")
            .nth(1)
            .and_then(|s| s.split(' ').next()),
        ends[0]["mac"].as_str()
    );
    let b = link_in(&sb, "ns_b", "eth7");
    assert!(
        is_up(&b) && b.contains("link/ether 02:00:00:00:09:02"),
        "{b}"
    );
    assert!(
        pings(&sb, "ns_a", "10.9.0.2"),
        "the link does not carry packets"
    );

    // check, show, and down by name: the ends go, the namespaces stay.
    assert_eq!(
        netns(&sb, &["check"], &doc.to_string()).ok(),
        format!("{doc:#}\n")
    );
    let shown = json_ok(netns(&sb, &["show", "--name", "w1"], ""));
    assert_eq!(shown["name"], "w1");
    assert!(
        shown["ends"][0]["index"].as_u64().unwrap_or(0) > 0,
        "{shown}"
    );
    let down = json_ok(netns(&sb, &["down"], &doc.to_string()));
    assert_eq!(down, serde_json::json!({"cloonVersion": "1", "name": "w1"}));
    assert_eq!(link_in(&sb, "ns_a", "eth1"), "");
    assert_eq!(link_in(&sb, "ns_b", "eth7"), "");
    netns(&sb, &["down", "--name", "w1"], "").ok();
    netns(&sb, &["check", "--name", "w1"], "").assert_error(STAGE, 3);

    netns(&sb, &["down", "--name", "A"], "").ok();
    sb.sh("ip netns del ns_b").ok();
    sb.assert_clean(&[]);
}

#[test]
fn two_ends_in_one_namespace_are_allowed() {
    let Some(sb) = Sandbox::new("netns-p2p-same") else {
        return;
    };
    sb.sh("ip netns add one").ok();
    netns(&sb, &["link", "--name", "loop1", "one:x0", "one:x1"], "").ok();
    assert!(link_in(&sb, "one", "x0").contains("x0@x1"));
    netns(&sb, &["check", "--name", "loop1"], "").ok();
    netns(&sb, &["down", "--name", "loop1"], "").ok();
    assert_eq!(link_in(&sb, "one", "x0"), "");
    sb.sh("ip netns del one").ok();
    sb.assert_clean(&[]);
}

#[test]
fn refused_links_leave_nothing() {
    let Some(sb) = Sandbox::new("netns-p2p-refused") else {
        return;
    };
    sb.sh("ip netns add na && ip netns add nb && ip -n nb link add eth1 type bridge")
        .ok();
    let a_before = sb.sh("ip -n na -o link").ok();
    // An end's name is taken in its namespace.
    let doc =
        netns(&sb, &["link", "--name", "w", "na:eth1", "nb:eth1"], "").assert_error(STAGE, 101);
    assert!(doc["error"]["msg"]
        .as_str()
        .unwrap_or_default()
        .contains("eth1"));
    // A namespace that does not exist.
    netns(&sb, &["link", "--name", "w", "na:eth1", "nowhere:eth1"], "").assert_error(STAGE, 3);
    // The tool's own namespace (the host's) is no end of a link.
    let doc = netns(
        &sb,
        &["link", "--name", "w", "/proc/self/ns/net:eth9", "na:eth9"],
        "",
    )
    .assert_error(STAGE, 4);
    assert!(doc["error"]["msg"]
        .as_str()
        .unwrap_or_default()
        .contains("own network namespace"));
    // Bad ends.
    for ends in [
        ["na:eth1", "na:eth1"],
        ["na:lo", "nb:eth2"],
        ["na", "nb:eth2"],
        ["na:eth1,colour=red", "nb:eth2"],
        ["na:eth1,mtu=10", "nb:eth2"],
    ] {
        netns(&sb, &["link", "--name", "w", ends[0], ends[1]], "").assert_error(STAGE, 4);
    }
    // The name of a container's records.
    netns(&sb, &["--netns", "ns_c", "--name", "C"], "").ok();
    netns(&sb, &["link", "--name", "C", "na:eth2", "nb:eth2"], "").assert_error(STAGE, 101);
    // ... and a container cannot take a link's name.
    netns(&sb, &["link", "--name", "w", "na:eth2", "nb:eth2"], "").ok();
    netns(&sb, &["--netns", "ns_w", "--name", "w"], "").assert_error(STAGE, 101);
    assert!(!namespace_exists(&sb, "ns_w"));

    netns(&sb, &["down", "--name", "w"], "").ok();
    netns(&sb, &["down", "--name", "C"], "").ok();
    assert_eq!(sb.sh("ip -n na -o link").ok(), a_before);
    assert_eq!(link(&sb, "eth1"), "");
    assert_eq!(link(&sb, "eth9"), "");
    sb.sh("ip netns del na && ip netns del nb").ok();
    sb.assert_clean(&[]);
}

fn namespace_exists(sb: &Sandbox, ns: &str) -> bool {
    netns_util::namespaces(sb).iter().any(|n| n == ns)
}

#[test]
fn a_link_deleted_by_hand_is_drift_and_down_still_succeeds() {
    let Some(sb) = Sandbox::new("netns-p2p-drift") else {
        return;
    };
    sb.sh("ip netns add na && ip netns add nb").ok();
    let doc = netns(&sb, &["link", "--name", "w", "na:e1", "nb:e2"], "").ok();
    // The end in na replaced by a look-alike: drift, and down leaves the look-alike alone.
    sb.sh("ip -n na link del e1 && ip -n na link add e1 type bridge")
        .ok();
    let err = netns(&sb, &["check"], &doc).assert_error(STAGE, 104);
    assert!(err["error"]["msg"]
        .as_str()
        .unwrap_or_default()
        .contains("e1"));
    let look_alike = link_in(&sb, "na", "e1");
    netns(&sb, &["down"], &doc).ok();
    assert_eq!(link_in(&sb, "na", "e1"), look_alike);
    // A namespace deleted by hand: down still succeeds.
    let doc = netns(&sb, &["link", "--name", "v", "na:f1", "nb:f2"], "").ok();
    sb.sh("ip netns del nb").ok();
    std::thread::sleep(std::time::Duration::from_millis(500));
    netns(&sb, &["check"], &doc).assert_error(STAGE, 104);
    netns(&sb, &["down"], &doc).ok();
    assert_eq!(link_in(&sb, "na", "f1"), "");
    sb.sh("ip netns del na").ok();
    sb.assert_clean(&[]);
}
