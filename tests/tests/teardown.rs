//! `down --all`, the lab's teardown: every tool brings down all it recorded in a state
//! directory; cloon-netns deletes the host ends and bridges in one kernel request (by the state
//! directory's interface group), and one by one when something else is in that group.

use cloon_tests::Sandbox;

/// Five namespaces in `state`, each with a host end on the bridge `br`, two of them with a
/// third also joined by a point-to-point link.
fn make(sb: &Sandbox, state: &str, tag: &str) {
    for i in 1..=5 {
        sb.tool(
            "cloon-netns",
            &[
                "--state-dir",
                state,
                "--name",
                &format!("{tag}{i}"),
                "--netns",
                &format!("{tag}ns{i}"),
                "--veth",
                &format!("{tag}h{i}:eth0,addr=10.7.0.{i}/24,bridge={tag}br"),
            ],
            "",
        )
        .ok();
    }
    sb.tool(
        "cloon-netns",
        &[
            "link",
            "--state-dir",
            state,
            "--name",
            &format!("{tag}w"),
            &format!("{tag}ns1:eth1,addr=10.8.0.1/30"),
            &format!("{tag}ns2:eth1,addr=10.8.0.2/30"),
        ],
        "",
    )
    .ok();
}

/// The host's interface names and the namespaces in the sandbox.
fn objects(sb: &Sandbox) -> (String, String) {
    (
        sb.sh("ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | sort")
            .ok(),
        sb.sh("ls /run/netns 2>/dev/null | sort; true").ok(),
    )
}

#[test]
fn a_state_directorys_network_goes_in_one_request() {
    let Some(sb) = Sandbox::new("teardown-group") else {
        return;
    };
    let (links_before, netns_before) = objects(&sb);
    let state = "/run/td lab";
    make(&sb, state, "tg");
    let down = sb.tool(
        "cloon-netns",
        &["down", "--all", "--explain", "--state-dir", state],
        "",
    );
    let report = down.json();
    assert_eq!(
        report["down"],
        serde_json::json!(["tg1", "tg2", "tg3", "tg4", "tg5", "tgw"]),
        "{}",
        down.stderr
    );
    // One request for the five host ends and the bridge: no interface deleted on its own.
    let said: Vec<&str> = down
        .stderr
        .lines()
        .filter(|l| l.starts_with("ip "))
        .collect();
    assert_eq!(
        said.iter()
            .filter(|l| l.starts_with("ip link delete group "))
            .count(),
        1,
        "{}",
        down.stderr
    );
    assert!(
        !said
            .iter()
            .any(|l| l.starts_with("ip link del ") || l.starts_with("ip link delete tg")),
        "{}",
        down.stderr
    );
    // Every name free, every namespace and record gone.
    assert_eq!(objects(&sb), (links_before, netns_before));
    assert_eq!(
        sb.sh(&format!("ls -A '{state}'")).ok().trim(),
        ".cloon-state"
    );
    sb.assert_clean(&[]);
}

#[test]
fn an_interface_nobody_recorded_in_the_group_is_left_and_the_rest_goes_one_by_one() {
    let Some(sb) = Sandbox::new("teardown-foreign") else {
        return;
    };
    let state = "/run/tdf";
    make(&sb, state, "tf");
    // An interface put in the state directory's group by hand: no record claims it.
    let group = sb
        .sh("ip -d link show tfh1 | sed -n 's/.* group \\([0-9a-z]*\\) .*/\\1/p' | head -n 1")
        .ok();
    let group = group.trim();
    assert!(!group.is_empty() && group != "default", "group {group:?}");
    sb.sh(&format!(
        "ip link add tfx type veth peer name tfy && ip link set tfx group {group}"
    ))
    .ok();
    let down = sb.tool(
        "cloon-netns",
        &["down", "--all", "--explain", "--state-dir", state],
        "",
    );
    assert_eq!(down.status, 0, "{}", down.stderr);
    assert!(!down.stderr.contains("delete group"), "{}", down.stderr);
    let links = sb
        .sh("ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1")
        .ok();
    assert!(
        links.lines().any(|l| l == "tfx"),
        "the foreign interface went: {links}"
    );
    assert!(!links.contains("tfh") && !links.contains("tfbr"), "{links}");
    assert_eq!(sb.sh("ls /run/netns 2>/dev/null; true").ok().trim(), "");
    sb.sh("ip link del tfx").ok();
    assert_eq!(sb.sh("ip link show tfy 2>/dev/null; true").ok(), "");
    sb.assert_clean(&[]);
}

#[test]
fn every_tool_brings_down_all_it_recorded() {
    let Some(sb) = Sandbox::new("teardown-all") else {
        return;
    };
    let rootfs = sb.busybox_rootfs();
    let state = "/run/tda";
    let mut pids = Vec::new();
    for i in 1..=3 {
        let name = cloon_tests::unique(&format!("tda{i}x"));
        let spec = sb
            .tool(
                "cloon-spec",
                &[
                    "--state-dir",
                    state,
                    "--name",
                    &name,
                    "--rootfs",
                    rootfs.to_str().expect("utf-8"),
                ],
                "",
            )
            .ok();
        let up = sb.tool("cloon-run", &["--state-dir", state], &spec).json();
        pids.push(up["container"]["pid"].as_i64().expect("pid"));
    }
    let run = sb
        .tool("cloon-run", &["down", "--all", "--state-dir", state], "")
        .json();
    assert_eq!(run["down"].as_array().map(Vec::len), Some(3), "{run}");
    for pid in pids {
        assert!(!sb.alive(pid), "process {pid} left");
    }
    assert_eq!(sb.sh("crun --root /run/crun list -q").ok().trim(), "");
    let spec = sb
        .tool("cloon-spec", &["down", "--all", "--state-dir", state], "")
        .json();
    assert_eq!(spec["down"].as_array().map(Vec::len), Some(3), "{spec}");
    // Nothing recorded: nothing to do, an empty list.
    let again = sb
        .tool("cloon-spec", &["down", "--all", "--state-dir", state], "")
        .json();
    assert_eq!(again["down"], serde_json::json!([]));
    // --all and --name together are refused.
    let both = sb.tool(
        "cloon-run",
        &["down", "--all", "--name", "x", "--state-dir", state],
        "",
    );
    assert_eq!(both.status, 2, "{}", both.stderr);
    sb.assert_clean(&[]);
}
