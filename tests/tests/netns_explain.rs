//! cloon-netns --explain and --dry-run: the commands it says are the ones it does, exactly. A lab
//! is built in one sandbox with `--explain`; the commands it said (its stderr) are run by `sh -e`
//! in a second sandbox; both kernels must then agree (names, kinds, state, MTUs, bridges,
//! addresses). Before each step, `--dry-run` says the same commands and changes nothing.

mod netns_util;

use cloon_tests::Sandbox;
use netns_util::{netns, records, snapshot};
use serde_json::Value;

/// Runs `args` first with `--dry-run` (which must change nothing and say the commands), then with
/// `--explain` (which must say the same commands); returns the commands and the document.
fn dry_then_explain(sb: &Sandbox, args: &[&str], stdin: &str) -> (String, Value) {
    let before = (snapshot(sb), records(sb));
    let dry = netns(sb, &[&["--dry-run"], args].concat(), stdin);
    assert_eq!(dry.status, 0, "--dry-run {args:?}: {}", dry.stderr);
    assert_eq!(
        (snapshot(sb), records(sb)),
        before,
        "--dry-run {args:?} changed something"
    );
    let done = netns(sb, &[&["--explain"], args].concat(), stdin);
    assert_eq!(done.status, 0, "--explain {args:?}: {}", done.stderr);
    assert_eq!(
        dry.stderr, done.stderr,
        "--dry-run and --explain say different commands for {args:?}"
    );
    assert!(!done.stderr.is_empty(), "{args:?} said nothing");
    // The planned document is the document, but for what the kernel chose (MAC addresses).
    let planned: Value = serde_json::from_str(&dry.stdout).expect("json");
    let made: Value = serde_json::from_str(&done.stdout).expect("json");
    assert_eq!(blank_chosen(&made, &planned), planned, "{args:?}");
    (done.stderr, made)
}

/// `made` with the MAC addresses that are "" in `planned` (chosen by the kernel) blanked.
fn blank_chosen(made: &Value, planned: &Value) -> Value {
    match (made, planned) {
        (Value::Object(m), Value::Object(p)) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let blank = (k == "mac" || k == "hostMac") && p.get(k) == Some(&"".into());
                    let v = if blank {
                        Value::from("")
                    } else {
                        blank_chosen(v, p.get(k).unwrap_or(&Value::Null))
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        (Value::Array(m), Value::Array(p)) => Value::Array(
            m.iter()
                .zip(p.iter().chain(std::iter::repeat(&Value::Null)))
                .map(|(m, p)| blank_chosen(m, p))
                .collect(),
        ),
        _ => made.clone(),
    }
}

/// Runs the commands `script` said in `sb` with `sh -e`.
fn replay(sb: &Sandbox, script: &str) {
    let run = sb.sh(&format!("set -e\n{script}"));
    assert_eq!(
        run.status, 0,
        "the explained commands failed:\n{script}\nstderr: {}",
        run.stderr
    );
}

#[test]
fn explained_commands_build_the_same_lab_and_tear_it_down() {
    let Some(sb) = Sandbox::new("netns-explain") else {
        return;
    };
    let Some(twin) = Sandbox::new("netns-explain-twin") else {
        return;
    };
    // A namespace made by hand, in both.
    for s in [&sb, &twin] {
        s.sh("ip netns add given").ok();
    }

    let mut script = String::new();
    let steps: [&[&str]; 4] = [
        &[
            "--netns",
            "ns_a",
            "--name",
            "A",
            "--veth",
            "vgt_a:eth0,addr=10.1.0.1/24,addr=fd00:1::1/64,mtu=1400,host-mtu=1400,bridge=lan1",
            "--veth",
            "vgt_a1:eth1,addr=10.2.0.2/24,host-addr=10.2.0.1/24,host-addr=fd00:2::1/64,\
             host-mac=02:00:00:00:02:01,mac=02:00:00:00:02:02",
        ],
        &[
            "--netns",
            "/run/netns/given",
            "--name",
            "B",
            "--veth",
            "vgt_b:eth0,addr=10.1.0.2/24,bridge=lan1",
        ],
        &[
            "link",
            "--name",
            "w1",
            "ns_a:p2p0,addr=10.9.0.1/30,mtu=9000",
            "given:p2p0,addr=10.9.0.2/30,mac=02:00:00:00:09:02,mtu=9000",
        ],
        &[
            "--netns",
            "ns_c",
            "--name",
            "C",
            "--veth",
            "vgt_c:eth0,bridge=lan2",
        ],
    ];
    for args in steps {
        let (said, _) = dry_then_explain(&sb, args, "");
        script.push_str(&said);
    }
    for line in [
        "ip netns add ns_a",
        "ip link add lan1 group 1668050798 type bridge",
        "ip link set lan1 alias cloon:/run/cloon/.bridges/lan1.json",
        "ip link set lan1 up",
        "ip link add vgt_a group 1668050798 mtu 1400 type veth \
         peer name eth0 group 1668050798 mtu 1400 netns ns_a",
        "ip link set vgt_a alias cloon:/run/cloon/A/netns.json",
        "ip link set vgt_a master lan1",
        "ip -n ns_a link set lo up",
        "ip -n ns_a addr add 10.1.0.1/24 dev eth0",
        "ip addr add fd00:2::1/64 dev vgt_a1",
        "ip -n given link set eth0 up",
        "ip link add p2p0 group 1668050798 mtu 9000 netns ns_a type veth peer name p2p0 \
         group 1668050798 address 02:00:00:00:09:02 mtu 9000 netns given",
        "ip link add lan2 group 1668050798 type bridge",
    ] {
        assert!(
            script.lines().any(|l| l == line),
            "{line:?} was not said:\n{script}"
        );
    }
    assert_eq!(
        script.matches("type bridge").count(),
        2,
        "lan1 is made once, lan2 once:\n{script}"
    );
    replay(&twin, &script);
    let lab = snapshot(&sb);
    assert_eq!(
        lab,
        snapshot(&twin),
        "the explained commands made another lab"
    );
    // What the lab is, in a few words: ports in their bridges, the link's ends in place.
    let host = &lab["host"];
    let find = |name: &str| host.iter().find(|i| i["ifname"] == name).cloned();
    assert_eq!(find("vgt_a").expect("vgt_a")["master"], "lan1");
    assert_eq!(find("vgt_b").expect("vgt_b")["master"], "lan1");
    assert_eq!(find("vgt_c").expect("vgt_c")["master"], "lan2");
    assert!(find("p2p0").is_none(), "a link end is on the host");
    assert!(lab["given"].iter().any(|i| i["ifname"] == "p2p0"));

    // Down, in another order than up: the link, then B, C (lan2 goes), A (lan1 goes).
    let mut script = String::new();
    for name in ["w1", "B", "C", "A"] {
        let (said, doc) = dry_then_explain(&sb, &["down", "--name", name], "");
        assert_eq!(doc, serde_json::json!({"cloonVersion": "1", "name": name}));
        script.push_str(&said);
    }
    for line in [
        "ip -n ns_a link del p2p0",
        "ip link del vgt_b",
        "ip link del lan2",
        "ip link del lan1",
        "ip netns del ns_a",
    ] {
        assert!(
            script.lines().any(|l| l == line),
            "{line:?} was not said:\n{script}"
        );
    }
    assert!(
        !script.contains("ip netns del given"),
        "a namespace cloon did not make is deleted:\n{script}"
    );
    replay(&twin, &script);
    assert_eq!(snapshot(&sb), snapshot(&twin));
    for s in [&sb, &twin] {
        s.sh("ip netns del given").ok();
        s.assert_clean(&[]);
    }
}

#[test]
fn dry_run_of_a_failing_step_fails_the_same_way_and_touches_nothing() {
    let Some(sb) = Sandbox::new("netns-dry-fail") else {
        return;
    };
    sb.sh("ip link add vgt_x type veth peer name vgt_y").ok();
    let before = (snapshot(&sb), records(&sb));
    for args in [
        &["--dry-run", "--netns", "ns_x", "--veth", "vgt_x:eth0"][..],
        &[
            "--dry-run",
            "--netns",
            "ns_x",
            "--veth",
            "vgt_z:eth0,bridge=vgt_y",
        ],
    ] {
        let run = netns(&sb, args, "");
        run.assert_error(netns_util::STAGE, 101);
    }
    // A missing namespace for a link: nothing to plan.
    let run = netns(
        &sb,
        &[
            "--dry-run",
            "link",
            "--name",
            "w",
            "nowhere:e1",
            "nothing:e1",
        ],
        "",
    );
    run.assert_error(netns_util::STAGE, 3);
    // A dry run of a name nothing was made for says so in a comment, as every tool does, runs
    // no command, and succeeds.
    let run = netns(&sb, &["--dry-run", "down", "--name", "never"], "");
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(
        run.stderr,
        "# cloon has no network namespace for \"never\": nothing to undo\n"
    );
    assert_eq!((snapshot(&sb), records(&sb)), before);
    sb.assert_clean(&["vgt_x", "vgt_y"]);
}
