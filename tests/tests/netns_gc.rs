//! cloon-netns against faults: `up` killed (SIGKILL) at many moments of its run, chosen from a
//! seed, then `down --name` and `gc` leave nothing of cloon's and never touch what is not
//! cloon's; records left by a tool killed halfway, crafted here at the exact instants the kernel
//! makes too short to hit, are undone by `down` exactly as far as they are cloon's; `gc` finds
//! partly gone containers, orphaned tagged interfaces and bridges and stale records, removes
//! them (or with `--dry-run` only lists them), and keeps healthy containers and every look-alike.

mod netns_util;

use cloon_tests::{gc_item, gc_items, kill_after, tool_path, KillWindow, Sandbox};
use netns_util::{link, netns, records, snapshot, STAGE};
use serde_json::Value;
use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// cloon's interface group.
const GROUP: u64 = 1_668_050_798;

/// The `up` that is killed: a namespace, a veth with addresses, a veth in a bridge.
const UP: &[&str] = &[
    "--netns",
    "kns",
    "--name",
    "K",
    "--veth",
    "vk0:eth0,addr=10.0.0.2/24,host-addr=10.0.0.1/24",
    "--veth",
    "vk1:eth1,bridge=klan",
];

/// A deterministic sequence (splitmix64), so that every run tries the same moments.
struct Moments(u64);

impl Moments {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Starts `cloon-netns up` (of [`UP`]) in the sandbox and kills it once `delay` has passed: see
/// [`kill_after`].
fn run_killed(sb: &Sandbox, delay: Duration) -> (bool, Duration) {
    kill_after(sb.cmd(tool_path(STAGE)).args(UP), "", delay)
}

/// Objects made by hand that look like cloon's: a veth named as cloon names its host ends, one
/// with a cloon alias but not in cloon's group, a bridge, a named namespace, a stray file under
/// /run/netns. None of them may ever be touched.
const FOREIGN: &str = "ip link add vgt_9_9_0 type veth peer name vgt_9_9_1 \
    && ip link add vgt_9_9_2 type veth peer name vgt_9_9_3 \
    && ip link set vgt_9_9_2 alias cloon:/run/cloon/K/netns.json \
    && ip link add hand_br type bridge && ip link set vgt_9_9_1 master hand_br \
    && ip netns add hand_ns && touch /run/netns/stray";

const FOREIGN_LINKS: &[&str] = &[
    "vgt_9_9_0",
    "vgt_9_9_1",
    "vgt_9_9_2",
    "vgt_9_9_3",
    "hand_br",
];

/// The foreign objects, as the kernel shows them (everything but counters).
fn foreign_state(sb: &Sandbox) -> String {
    sb.sh(
        "for l in vgt_9_9_0 vgt_9_9_1 vgt_9_9_2 vgt_9_9_3 hand_br; do ip -o link show $l; done; \
         ls -i /run/netns/hand_ns /run/netns/stray; findmnt -n -o TARGET /run/netns/hand_ns",
    )
    .ok()
}

fn remove_foreign(sb: &Sandbox) {
    sb.sh(
        "ip link del vgt_9_9_0 && ip link del vgt_9_9_2 && ip link del hand_br \
         && ip netns del hand_ns && rm /run/netns/stray",
    )
    .ok();
}

/// Runs `gc` (with `flags`), which must succeed; returns its report.
fn gc(sb: &Sandbox, flags: &[&str]) -> Value {
    let run = netns(sb, &[flags, &["gc"]].concat(), "");
    assert_eq!(run.status, 0, "gc: {}\n{}", run.stdout, run.stderr);
    run.json()
}

/// How long an uninterrupted `up` (from the spawn of nsenter to its exit) takes here: the
/// fastest of a few. On a machine whose load varies (other tests run beside this one) a run can
/// take several times another; moments within the fastest interrupt nearly every run, and still
/// reach every step of it.
fn span_of_up(sb: &Sandbox) -> Duration {
    let mut took = Vec::new();
    for _ in 0..9 {
        let (killed, t) = run_killed(sb, Duration::from_secs(30));
        assert!(!killed, "up did not finish");
        netns(sb, &["check", "--name", "K"], "").ok();
        netns(sb, &["down", "--name", "K"], "").ok();
        took.push(t);
    }
    sb.assert_clean(&[]);
    took.sort();
    eprintln!("uninterrupted ups took {took:?}");
    took[0]
}

/// How many trials must really interrupt `up`, and how many may be tried to get them.
const KILLS: usize = 40;
const MAX_TRIALS: usize = 120;

#[test]
fn up_killed_at_any_moment_then_down_and_gc_leave_nothing_and_touch_nothing_else() {
    let Some(sb) = Sandbox::new("netns-kill-span") else {
        return;
    };
    let mut window = KillWindow(span_of_up(&sb));
    drop(sb);
    // Moments from 0 to the fastest run: most of them interrupt it, some come after it ended.
    let mut moments = Moments(0x0c10_0de5_9a11);
    let mut killed = 0;
    let mut trial = 0;
    while killed < KILLS {
        assert!(
            trial < MAX_TRIALS,
            "only {killed} of {trial} trials killed up before it ended (moments below {:?})",
            window.0
        );
        trial += 1;
        let Some(sb) = Sandbox::new(&format!("netns-kill-{trial}")) else {
            return;
        };
        sb.sh(FOREIGN).ok();
        let foreign = foreign_state(&sb);
        let delay = window.pick(moments.next());
        let run = run_killed(&sb, delay);
        window.ended(run);
        let was_killed = run.0;
        killed += usize::from(was_killed);
        let context =
            format!("trial {trial}, killed after {delay:?} (still running: {was_killed})");

        let down = netns(&sb, &["down", "--name", "K"], "");
        assert_eq!(down.status, 0, "{context}: down: {}", down.stderr);
        // down alone removed everything of cloon's: gc finds nothing more.
        let report = gc(&sb, &[]);
        assert_eq!(gc_items(&report, "found"), [], "{context}: {report:#}");
        assert_eq!(
            foreign_state(&sb),
            foreign,
            "{context}: a look-alike changed"
        );
        let left = sb.leftovers(FOREIGN_LINKS);
        let left: Vec<&String> = left
            .iter()
            .filter(|l| !l.contains("hand_ns") && *l != "namespace stray")
            .collect();
        assert!(left.is_empty(), "{context}: left {left:#?}");
        remove_foreign(&sb);
        sb.assert_clean(&[]);
    }
    eprintln!("{killed} of {trial} trials killed up before it ended");
}

#[test]
fn up_killed_then_gc_alone_brings_a_broken_container_down() {
    let Some(sb) = Sandbox::new("netns-kill-gc-span") else {
        return;
    };
    let mut window = KillWindow(span_of_up(&sb));
    drop(sb);
    let mut moments = Moments(0x9c0_11ec7);
    for trial in 0..16 {
        let Some(sb) = Sandbox::new(&format!("netns-kill-gc-{trial}")) else {
            return;
        };
        let delay = window.pick(moments.next());
        let run = run_killed(&sb, delay);
        window.ended(run);
        let was_killed = run.0;
        let context =
            format!("trial {trial}, killed after {delay:?} (still running: {was_killed})");
        let report = gc(&sb, &[]);
        // What is left is nothing, or a whole container that check finds intact.
        let check = netns(&sb, &["check", "--name", "K"], "");
        if check.status == 0 {
            assert!(
                gc_items(&report, "kept").contains(&gc_item("container", "K")),
                "{context}: {report:#}"
            );
            netns(&sb, &["down", "--name", "K"], "").ok();
        } else {
            let left: Vec<String> = sb
                .leftovers(&[])
                .into_iter()
                .filter(|l| l != "state record K")
                .collect();
            assert!(left.is_empty(), "{context}: {report:#}\nleft {left:#?}");
            // An empty state directory (killed before the record) goes with down.
            netns(&sb, &["down", "--name", "K"], "").ok();
        }
        sb.assert_clean(&[]);
    }
}

/// Writes a record into the sandbox's state directory.
fn write(sb: &Sandbox, path: &str, json: &Value) {
    let dir = path.rsplit_once('/').map(|(d, _)| d).unwrap_or("/");
    let mut child = sb
        .cmd("sh")
        .args([
            "-c",
            &format!("(umask 077 && mkdir -p {dir}) && cat > {path}"),
        ])
        .stdin(Stdio::piped())
        .spawn()
        .expect("sh");
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(json.to_string().as_bytes())
        .expect("write");
    assert!(child.wait().expect("wait").success());
}

/// The inode of a file of the sandbox.
fn inode(sb: &Sandbox, path: &str) -> u64 {
    sb.sh(&format!("stat -L -c %i {path}"))
        .ok()
        .trim()
        .parse()
        .expect("inode")
}

/// A container record as `up` writes it ahead: the namespace `ns` to create, the host ends.
fn record(ns: &str, inode: u64, file_inode: u64, hosts: &[(&str, u32, Option<&str>)]) -> Value {
    let links: Vec<Value> = hosts
        .iter()
        .map(|(host, index, bridge)| {
            serde_json::json!({"host": host, "hostIndex": index, "guest": "eth0",
                "guestIndex": 0, "mac": "", "addrs": [], "hostMac": "", "hostAddrs": [],
                "bridge": bridge})
        })
        .collect();
    serde_json::json!({"name": ns, "path": format!("/run/netns/{ns}"), "created": true,
        "inode": inode, "fileInode": file_inode, "group": GROUP,
        "alias": "cloon:/run/cloon/K/netns.json", "links": links})
}

#[test]
fn down_after_a_kill_removes_the_namespace_only_when_it_is_the_recorded_one() {
    let Some(sb) = Sandbox::new("netns-kill-ns") else {
        return;
    };
    sb.sh("mkdir -p /run/netns").ok();
    // Killed between linking the file and binding the namespace on it: the recorded empty file.
    sb.sh("touch /run/netns/kns").ok();
    let ino = inode(&sb, "/run/netns/kns");
    write(
        &sb,
        "/run/cloon/K/netns.json",
        &record("kns", 4_026_000_001, ino, &[]),
    );
    netns(&sb, &["down", "--name", "K"], "").ok();
    assert_eq!(sb.sh("ls /run/netns").ok(), "");

    // The same record, but the file there is another (made by hand since): left alone.
    sb.sh("touch /run/netns/kns").ok();
    let other = inode(&sb, "/run/netns/kns") + 1000;
    write(
        &sb,
        "/run/cloon/K/netns.json",
        &record("kns", 4_026_000_001, other, &[]),
    );
    let down = netns(&sb, &["down", "--name", "K"], "");
    assert_eq!(down.status, 0, "{}", down.stderr);
    assert!(
        down.stderr.contains("a file cloon did not make"),
        "{}",
        down.stderr
    );
    assert_eq!(sb.sh("ls /run/netns").ok(), "kns\n");
    sb.sh("rm /run/netns/kns").ok();

    // Killed before the file was made (no file inode): a namespace of that name made by hand
    // meanwhile is not cloon's, nor with a record whose namespace inode is unknown.
    sb.sh("ip netns add kns").ok();
    let made_by_hand = inode(&sb, "/run/netns/kns");
    for (ns_inode, file_inode) in [(4_026_000_001, 0), (0, 0)] {
        write(
            &sb,
            "/run/cloon/K/netns.json",
            &record("kns", ns_inode, file_inode, &[]),
        );
        netns(&sb, &["down", "--name", "K"], "").ok();
        assert_eq!(inode(&sb, "/run/netns/kns"), made_by_hand);
    }

    // Killed after the bind: the recorded namespace goes.
    write(
        &sb,
        "/run/cloon/K/netns.json",
        &record("kns", made_by_hand, 0, &[]),
    );
    netns(&sb, &["down", "--name", "K"], "").ok();
    sb.assert_clean(&[]);
}

#[test]
fn down_after_a_kill_deletes_unindexed_interfaces_only_in_cloons_group() {
    let Some(sb) = Sandbox::new("netns-kill-links") else {
        return;
    };
    // Killed after making vk0, vk1 and the bridge klan, before recording their indexes; vk2 was
    // never made, and someone made an untagged vk2 since; vk3 has the group and the alias of
    // another container's record (a second up naming the same host end).
    sb.sh(&format!(
        "ip netns add other \
         && ip link add klan group {GROUP} type bridge \
         && ip link add vk0 group {GROUP} type veth peer name eth0 netns other \
         && ip link add vk1 group {GROUP} type veth peer name eth1 netns other \
         && ip link set vk1 alias cloon:/run/cloon/K/netns.json && ip link set vk1 master klan \
         && ip link add vk2 type veth peer name eth2 netns other \
         && ip link add vk3 group {GROUP} type veth peer name eth3 netns other \
         && ip link set vk3 alias cloon:/run/cloon/L/netns.json"
    ))
    .ok();
    write(
        &sb,
        "/run/cloon/K/netns.json",
        &record(
            "kns",
            0,
            0,
            &[
                ("vk0", 0, None),
                ("vk1", 0, Some("klan")),
                ("vk2", 0, None),
                ("vk3", 0, None),
            ],
        ),
    );
    write(
        &sb,
        "/run/cloon/.bridges/klan.json",
        &serde_json::json!({"name": "klan", "index": 0, "created": true,
            "group": GROUP,
            "alias": "cloon:/run/cloon/.bridges/klan.json"}),
    );
    let kept = [link(&sb, "vk2"), link(&sb, "vk3")];
    let down = netns(&sb, &["--explain", "down", "--name", "K"], "");
    assert_eq!(down.status, 0, "{}", down.stderr);
    for said in ["ip link del vk0", "ip link del vk1", "ip link del klan"] {
        assert!(down.stderr.lines().any(|l| l == said), "{}", down.stderr);
    }
    for name in ["vk0", "vk1", "klan"] {
        assert_eq!(link(&sb, name), "", "{name} is left");
    }
    assert_eq!([link(&sb, "vk2"), link(&sb, "vk3")], kept);
    assert!(
        down.stderr.contains("leaving interface vk2"),
        "{}",
        down.stderr
    );
    assert_eq!(records(&sb), ".\n", "records are left");
    sb.sh("ip link del vk2 && ip link del vk3 && ip netns del other")
        .ok();
    sb.assert_clean(&[]);
}

/// A sandbox with cloon's leftovers of every kind, and look-alikes:
/// - A, a healthy container on the bridge lan1 (made by cloon);
/// - B, a container whose host end was deleted by hand (partly gone);
/// - w1, a point-to-point link whose second namespace was deleted;
/// - vgt_o, an interface in cloon's group no record names (its record was lost);
/// - br_o, a bridge in cloon's group no record names, with no port;
/// - gone.json, the record of a bridge that no longer exists; empty.json, an empty record;
/// - vgt_x, an interface in cloon's group whose alias names another state directory's record;
/// - the foreign objects of [`FOREIGN`].
fn leftovers_lab(sb: &Sandbox) {
    sb.sh(FOREIGN).ok();
    for args in [
        &[
            "--netns",
            "ns_a",
            "--name",
            "A",
            "--veth",
            "vgt_a:eth0,bridge=lan1",
        ][..],
        &[
            "--netns",
            "ns_b",
            "--name",
            "B",
            "--veth",
            "vgt_b:eth0,bridge=lan1",
        ],
        &["--netns", "ns_c", "--name", "C"],
        &["link", "--name", "w1", "ns_a:p0", "ns_c:p0"],
    ] {
        netns(sb, args, "").ok();
    }
    sb.sh(&format!(
        "ip link del vgt_b && ip netns del ns_c && rm -r /run/cloon/C \
         && ip link add vgt_o group {GROUP} type veth peer name o0 netns hand_ns \
         && ip link add br_o group {GROUP} type bridge \
         && ip link add vgt_x group {GROUP} type veth peer name x0 netns hand_ns \
         && ip link set vgt_x alias cloon:/var/tmp/elsewhere/X/netns.json \
         && : > /run/cloon/.bridges/empty.json"
    ))
    .ok();
    // The kernel destroys the link's pair some time after its namespace is deleted.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !netns_util::link_in(sb, "ns_a", "p0").is_empty() {
        assert!(
            Instant::now() < deadline,
            "p0 outlived its peer's namespace"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    write(
        sb,
        "/run/cloon/.bridges/gone.json",
        &serde_json::json!({"name": "gone", "index": 99, "created": true,
            "group": GROUP}),
    );
}

/// Every interface of the sandbox with its index, group and alias.
fn links_and_groups(sb: &Sandbox) -> String {
    sb.sh("ip -o link show").ok()
}

fn expected_found() -> Vec<(String, String)> {
    vec![
        gc_item("container", "B"),
        gc_item("link", "w1"),
        gc_item("interface", "vgt_o"),
        gc_item("bridge", "br_o"),
        gc_item("bridge record", "empty"),
        gc_item("bridge record", "gone"),
    ]
}

fn sorted(mut v: Vec<(String, String)>) -> Vec<(String, String)> {
    v.sort();
    v
}

#[test]
fn gc_dry_run_lists_what_gc_removes_and_changes_nothing() {
    let Some(sb) = Sandbox::new("netns-gc-dry") else {
        return;
    };
    leftovers_lab(&sb);
    // (`ip -n` cannot enter the stray file, which the snapshot would try.)
    sb.sh("rm /run/netns/stray").ok();
    let before = (snapshot(&sb), records(&sb), links_and_groups(&sb));
    let dry = netns(&sb, &["--dry-run", "gc"], "");
    assert_eq!(dry.status, 0, "{}", dry.stderr);
    let report = dry.json();
    assert_eq!(report["dryRun"], true);
    assert_eq!(sorted(gc_items(&report, "found")), sorted(expected_found()));
    assert!(report["found"]
        .as_array()
        .expect("found")
        .iter()
        .all(|i| i["removed"] == false));
    assert_eq!(
        (snapshot(&sb), records(&sb), links_and_groups(&sb)),
        before,
        "--dry-run changed something"
    );
    // It says the commands that remove them.
    for said in [
        "ip link del vgt_o",
        "ip link del br_o",
        "ip netns del ns_b",
        "# remove the record /run/cloon/.bridges/gone.json",
    ] {
        assert!(
            dry.stderr.lines().any(|l| l == said),
            "{said:?}:\n{}",
            dry.stderr
        );
    }
    assert!(!dry.stderr.contains("vgt_9"), "{}", dry.stderr);
    assert!(!dry.stderr.contains("hand_"), "{}", dry.stderr);
    assert!(!dry.stderr.contains("vgt_x"), "{}", dry.stderr);
    assert!(!dry.stderr.contains("vgt_a"), "{}", dry.stderr);
}

#[test]
fn gc_removes_leftovers_keeps_healthy_containers_and_every_look_alike() {
    let Some(sb) = Sandbox::new("netns-gc") else {
        return;
    };
    leftovers_lab(&sb);
    let foreign = foreign_state(&sb);
    let vgt_x = link(&sb, "vgt_x");
    let a = netns(&sb, &["show", "--name", "A"], "").json();
    let report = gc(&sb, &[]);
    assert_eq!(report["dryRun"], false);
    assert_eq!(sorted(gc_items(&report, "found")), sorted(expected_found()));
    for item in report["found"].as_array().expect("found") {
        assert_eq!(item["removed"], true, "{item}");
        assert!(item.get("error").is_none(), "{item}");
    }
    let kept = gc_items(&report, "kept");
    for k in [
        gc_item("container", "A"),
        gc_item("bridge", "lan1"),
        gc_item("interface", "vgt_x"),
    ] {
        assert!(kept.contains(&k), "{k:?} not kept: {report:#}");
    }

    // The leftovers are gone from the kernel and the records.
    for name in ["vgt_b", "vgt_o", "br_o"] {
        assert_eq!(link(&sb, name), "", "{name} is left");
    }
    assert_eq!(
        sb.sh("ls /run/netns").ok(),
        "hand_ns\nns_a\nstray\n",
        "namespaces"
    );
    assert_eq!(
        sb.sh("cd /run/cloon && ls -A . .bridges").ok(),
        ".:\n.bridges\n.cloon-state\nA\n\n.bridges:\nlan1.json\n"
    );
    // A is intact, and so is every look-alike.
    netns(&sb, &["check", "--name", "A"], "").ok();
    assert_eq!(netns(&sb, &["show", "--name", "A"], "").json(), a);
    assert!(link(&sb, "vgt_a").contains("master lan1"));
    assert_eq!(foreign_state(&sb), foreign);
    assert_eq!(link(&sb, "vgt_x"), vgt_x);

    // A second gc finds nothing.
    assert_eq!(gc_items(&gc(&sb, &[]), "found"), []);
    netns(&sb, &["down", "--name", "A"], "").ok();
    assert_eq!(link(&sb, "lan1"), "");
    // vgt_x first: its peer is in hand_ns, which takes it along when deleted (later).
    sb.sh("ip link del vgt_x").ok();
    remove_foreign(&sb);
    sb.assert_clean(&[]);
}

#[test]
fn gc_leaves_a_container_whose_up_is_at_work() {
    let Some(sb) = Sandbox::new("netns-gc-busy") else {
        return;
    };
    // A record written ahead, its directory locked as a running up holds it: gc must wait for
    // that up rather than take its half-made container for a broken one.
    write(&sb, "/run/cloon/K/netns.json", &record("kns", 0, 0, &[]));
    let mut holder = sb
        .cmd("flock")
        // -o: the lock stays with flock, not with sleep, so that killing flock lets it go.
        .args(["-o", "/run/cloon/K", "sleep", "30"])
        .stdin(Stdio::null())
        .spawn()
        .expect("flock (util-linux)");
    let deadline = Instant::now() + Duration::from_secs(5);
    while sb.sh("flock -n /run/cloon/K true && echo free; true").ok() == "free\n" {
        assert!(Instant::now() < deadline, "the lock was never taken");
        std::thread::sleep(Duration::from_millis(10));
    }
    let report = gc(&sb, &[]);
    assert_eq!(gc_items(&report, "found"), []);
    assert!(gc_items(&report, "kept").contains(&gc_item("container", "K")));
    assert!(sb.sh("ls /run/cloon/K").ok().contains("netns.json"));
    cloon_tests::kill_tool(&mut holder);
    // Once let go, the record is a broken container's, brought down.
    let report = gc(&sb, &[]);
    assert_eq!(gc_items(&report, "found"), [gc_item("container", "K")]);
    sb.assert_clean(&[]);
}
