//! cloon-netns with several state directories on one host: each one's `gc` acts on exactly its
//! own objects. It never takes what another state directory's `up` is making, even in the instant
//! between an interface's creation and its alias (side by side, in a loop); it never takes the
//! objects of a state directory nested inside it, nor the other way round; and it keeps an
//! interface of its own that has no alias yet while an `up` of its state directory is at work.
//! One state directory has a space in its path.

mod netns_util;

use cloon_tests::{gc_item, gc_items, Run, Sandbox};
use netns_util::netns;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The default state directory.
const DEFAULT: &str = "/run/cloon";
/// A state directory with a space in its path.
const SPACED: &str = "/run/my lab";

/// How many up/down rounds a race runs at most, and for how long.
const ROUNDS: usize = 25;
const RACE: Duration = Duration::from_secs(30);

/// Runs cloon-netns on the state directory `dir`.
fn netns_in(sb: &Sandbox, dir: &str, args: &[&str]) -> Run {
    let mut all = vec!["--state-dir", dir];
    all.extend_from_slice(args);
    netns(sb, &all, "")
}

/// Runs cloon-netns on `dir`, which must succeed; returns stdout as JSON.
fn json_in(sb: &Sandbox, dir: &str, args: &[&str]) -> Value {
    let run = netns_in(sb, dir, args);
    assert_eq!(
        run.status, 0,
        "{args:?} in {dir}: {}\n{}",
        run.stdout, run.stderr
    );
    run.json()
}

/// One container: its name, its namespace, its `--veth` values.
struct Container {
    name: &'static str,
    ns: &'static str,
    veths: &'static [&'static str],
}

impl Container {
    fn up_args(&self) -> Vec<&str> {
        let mut args = vec!["--netns", self.ns, "--name", self.name];
        for veth in self.veths {
            args.extend(["--veth", veth]);
        }
        args
    }

    /// Its host ends.
    fn hosts(&self) -> Vec<&str> {
        self.veths
            .iter()
            .map(|v| v.split(':').next().unwrap_or_default())
            .collect()
    }

    /// The bridges its host ends join, each once.
    fn bridges(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .veths
            .iter()
            .flat_map(|v| v.split(','))
            .filter_map(|o| o.strip_prefix("bridge="))
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Whether `name` names it or one of its objects.
    fn owns(&self, name: &str) -> bool {
        name == self.name || self.hosts().contains(&name) || self.bridges().contains(&name)
    }

    fn up(&self, sb: &Sandbox, dir: &str) -> Value {
        json_in(sb, dir, &self.up_args())
    }

    fn down(&self, sb: &Sandbox, dir: &str) {
        json_in(sb, dir, &["down", "--name", self.name]);
    }
}

/// The tags of every interface of the sandbox: name -> (index, group, alias).
fn tags(sb: &Sandbox) -> BTreeMap<String, (u64, u64, Option<String>)> {
    let text = sb.sh("ip -j -d link show").ok();
    let links: Vec<Value> = serde_json::from_str(&text).expect("ip -j link show");
    links
        .iter()
        .map(|l| {
            let group = match &l["group"] {
                Value::String(s) if s == "default" => 0,
                Value::String(s) => s.parse().expect("a group number"),
                other => other.as_u64().expect("a group"),
            };
            (
                l["ifname"].as_str().unwrap_or_default().to_string(),
                (
                    l["ifindex"].as_u64().unwrap_or_default(),
                    group,
                    l["ifalias"].as_str().map(String::from),
                ),
            )
        })
        .collect()
}

/// What is wrong with the tags of `c`'s host ends and bridges in `dir` after its `up`: each must
/// exist with the group and alias its record (or its bridge's record) gives it.
fn tag_faults(sb: &Sandbox, dir: &str, c: &Container) -> Vec<String> {
    let record = json_in(sb, dir, &["show", "--name", c.name]);
    let now = tags(sb);
    let mut faults = Vec::new();
    let group = record["group"].as_u64().expect("the record's group");
    let alias = record["alias"].as_str().map(String::from);
    for link in record["links"].as_array().expect("links") {
        let host = link["host"].as_str().expect("host");
        let index = link["hostIndex"].as_u64().expect("hostIndex");
        match now.get(host) {
            None => faults.push(format!("host end {host} is gone")),
            Some(found) if *found != (index, group, alias.clone()) => faults.push(format!(
                "host end {host} is {found:?}, recorded ({index}, {group}, {alias:?})"
            )),
            Some(_) => {}
        }
    }
    for bridge in c.bridges() {
        let text = sb.sh(&format!("cat '{dir}/.bridges/{bridge}.json'")).ok();
        let rec: Value = serde_json::from_str(&text).expect("a bridge record");
        let want = (
            rec["index"].as_u64().expect("index"),
            rec["group"].as_u64().expect("group"),
            rec["alias"].as_str().map(String::from),
        );
        match now.get(bridge) {
            None => faults.push(format!("bridge {bridge} is gone")),
            Some(found) if *found != want => {
                faults.push(format!("bridge {bridge} is {found:?}, recorded {want:?}"))
            }
            Some(_) => {}
        }
    }
    faults
}

/// Every (kind, name) a gc report lists, found or kept.
fn mentioned(report: &Value) -> Vec<(String, String)> {
    let mut items = gc_items(report, "found");
    items.extend(gc_items(report, "kept"));
    items
}

/// Sets its flag when dropped: the gc loop stops even when a check of the up loop panics.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Brings `c` up and down in `maker` again and again while `gc` of `collector` runs in a loop
/// beside it: every up succeeds with all its host ends and bridges there and tagged as recorded,
/// and no gc of `collector` fails or says anything of `c`'s objects.
fn race(sb: &Sandbox, maker: &str, collector: &str, c: &Container) {
    let stop = AtomicBool::new(false);
    let mut faults = Vec::new();
    let mut rounds = 0;
    let start = Instant::now();
    let gcs = std::thread::scope(|scope| {
        let collecting = scope.spawn(|| {
            let mut runs = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                runs.push(netns_in(sb, collector, &["gc"]));
            }
            runs
        });
        let stopping = StopOnDrop(&stop);
        while rounds < ROUNDS && start.elapsed() < RACE {
            rounds += 1;
            let up = netns_in(sb, maker, &c.up_args());
            if up.status != 0 {
                faults.push(format!("round {rounds}: up failed: {}", up.stderr));
                break;
            }
            faults.extend(
                tag_faults(sb, maker, c)
                    .into_iter()
                    .map(|f| format!("round {rounds}: {f}")),
            );
            let down = netns_in(sb, maker, &["down", "--name", c.name]);
            if down.status != 0 {
                faults.push(format!("round {rounds}: down failed: {}", down.stderr));
                break;
            }
            if !faults.is_empty() {
                break;
            }
        }
        drop(stopping);
        collecting.join().expect("the gc loop")
    });
    eprintln!(
        "{rounds} ups of {} in {maker}, {} gcs of {collector}, in {:?}",
        c.name,
        gcs.len(),
        start.elapsed()
    );
    // Down what a failed round left, so that the sandbox goes clean whatever happened.
    let _ = netns_in(sb, maker, &["down", "--name", c.name]);
    let _ = sb.sh(&format!("ip netns del {} 2>/dev/null; true", c.ns));
    assert!(
        faults.is_empty(),
        "{maker} while gc of {collector} ran: {faults:#?}"
    );
    for run in &gcs {
        assert_eq!(
            run.status, 0,
            "gc of {collector}: {}\n{}",
            run.stdout, run.stderr
        );
        let report = run.json();
        let theirs: Vec<_> = mentioned(&report)
            .into_iter()
            .filter(|(_, name)| c.owns(name))
            .collect();
        assert!(
            theirs.is_empty(),
            "gc of {collector} spoke of {maker}'s {theirs:?}: {report:#}"
        );
    }
}

/// Residents of the two state directories, which each gc must keep.
const RESIDENT_DEFAULT: Container = Container {
    name: "R1",
    ns: "r1_ns",
    veths: &["vr1:eth0,bridge=lr1"],
};
const RESIDENT_SPACED: Container = Container {
    name: "R2",
    ns: "r2_ns",
    veths: &["vr2:eth0,bridge=lr2"],
};

/// Asserts that the state directory `dir` holds no record any more, then removes it (the sandbox
/// checks the default one).
fn remove_state_dir(sb: &Sandbox, dir: &str) {
    let left = sb
        .sh(&format!("find '{dir}' -mindepth 1 -name '*.json*'"))
        .ok();
    assert_eq!(left, "", "records left in {dir}");
    sb.sh(&format!("rm -r '{dir}'")).ok();
}

fn side_by_side(test: &str, c: &Container) {
    let Some(sb) = Sandbox::new(test) else {
        return;
    };
    RESIDENT_DEFAULT.up(&sb, DEFAULT);
    RESIDENT_SPACED.up(&sb, SPACED);
    race(&sb, DEFAULT, SPACED, c);
    race(&sb, SPACED, DEFAULT, c);
    // The residents are whole.
    for (dir, r) in [(DEFAULT, &RESIDENT_DEFAULT), (SPACED, &RESIDENT_SPACED)] {
        json_in(&sb, dir, &["check", "--name", r.name]);
        assert_eq!(tag_faults(&sb, dir, r), Vec::<String>::new());
        let report = json_in(&sb, dir, &["gc"]);
        assert_eq!(gc_items(&report, "found"), [], "{report:#}");
        r.down(&sb, dir);
    }
    remove_state_dir(&sb, SPACED);
    sb.assert_clean(&[]);
}

#[test]
fn gc_of_one_state_directory_never_takes_the_host_ends_another_is_making() {
    side_by_side(
        "netns-own-veths",
        &Container {
            name: "M",
            ns: "m_ns",
            veths: &[
                "vm0:eth0",
                "vm1:eth1,addr=10.3.0.2/24",
                "vm2:eth2",
                "vm3:eth3",
                "vm4:eth4",
                "vm5:eth5",
            ],
        },
    );
}

#[test]
fn gc_of_one_state_directory_never_takes_the_bridges_another_is_making() {
    side_by_side(
        "netns-own-bridges",
        &Container {
            name: "M",
            ns: "m_ns",
            veths: &[
                "vb0:eth0,bridge=lb0",
                "vb1:eth1,bridge=lb1",
                "vb2:eth2,bridge=lb2",
                "vb3:eth3,bridge=lb0",
            ],
        },
    );
}

/// The (kind, name) items of a gc report that are none of `c`'s.
fn not_of(report: &Value, list: &str, c: &[&Container]) -> Vec<(String, String)> {
    gc_items(report, list)
        .into_iter()
        .filter(|(_, name)| !c.iter().any(|c| c.owns(name)))
        .collect()
}

/// The state of `dir`'s records and of the interfaces and namespaces of `cs`, to prove that a gc
/// of another state directory left them whole.
fn whole(sb: &Sandbox, dir: &str, cs: &[&Container], orphan: &str) -> String {
    let mut names: Vec<&str> = cs.iter().flat_map(|c| c.hosts()).collect();
    names.extend(cs.iter().flat_map(|c| c.bridges()));
    names.push(orphan);
    let links: String = names
        .iter()
        .map(|n| sb.sh(&format!("ip -o link show {n}")).ok())
        .collect();
    let records = sb
        .sh(&format!(
            "cd '{dir}' && find . -path './lab' -prune -o -print | sort \
             && find . -path './lab' -prune -o -type f -print | sort | xargs cat"
        ))
        .ok();
    let namespaces: String = cs
        .iter()
        .map(|c| {
            sb.sh(&format!("stat -L -c '%n %i' /run/netns/{}", c.ns))
                .ok()
        })
        .collect();
    format!("{links}{records}{namespaces}")
}

#[test]
fn gc_of_a_state_directory_leaves_one_nested_inside_it_whole_and_the_other_way_round() {
    let Some(sb) = Sandbox::new("netns-own-nested") else {
        return;
    };
    let outer = "/run/x";
    let inner = "/run/x/lab";
    let x1 = Container {
        name: "X1",
        ns: "x1_ns",
        veths: &["vx1:eth0,bridge=lanx", "vx1b:eth1"],
    };
    let l1 = Container {
        name: "L1",
        ns: "l1_ns",
        veths: &["vl1:eth0,bridge=lanl", "vl1b:eth1"],
    };
    // In each, a container whose record was lost: its host end is an orphan of that directory.
    let x2 = Container {
        name: "X2",
        ns: "x2_ns",
        veths: &["vx2:eth0"],
    };
    let l2 = Container {
        name: "L2",
        ns: "l2_ns",
        veths: &["vl2:eth0"],
    };
    x1.up(&sb, outer);
    x2.up(&sb, outer);
    l1.up(&sb, inner);
    l2.up(&sb, inner);
    sb.sh(&format!("rm -r {outer}/X2 {inner}/L2")).ok();
    // The inner directory's alias names a record of its own, which the outer's is a prefix of.
    let vl1 = &tags(&sb)["vl1"];
    assert_eq!(vl1.2.as_deref(), Some("cloon:/run/x/lab/L1/netns.json"));

    let inner_before = whole(&sb, inner, &[&l1], "vl2");
    let report = json_in(&sb, outer, &["gc"]);
    assert_eq!(
        gc_items(&report, "found"),
        [gc_item("interface", "vx2")],
        "{report:#}"
    );
    assert_eq!(
        mentioned(&report)
            .into_iter()
            .filter(|(_, n)| l1.owns(n) || l2.owns(n) || n == "lab")
            .collect::<Vec<_>>(),
        [],
        "gc of {outer} spoke of {inner}'s objects: {report:#}"
    );
    assert_eq!(whole(&sb, inner, &[&l1], "vl2"), inner_before);
    json_in(&sb, inner, &["check", "--name", "L1"]);

    let outer_before = whole(&sb, outer, &[&x1], "lo");
    let report = json_in(&sb, inner, &["gc"]);
    assert_eq!(
        gc_items(&report, "found"),
        [gc_item("interface", "vl2")],
        "{report:#}"
    );
    assert_eq!(not_of(&report, "kept", &[&l1]), [], "{report:#}");
    assert_eq!(whole(&sb, outer, &[&x1], "lo"), outer_before);
    json_in(&sb, outer, &["check", "--name", "X1"]);
    for gone in ["vx2", "vl2"] {
        assert_eq!(netns_util::link(&sb, gone), "", "{gone} is left");
    }

    // Each again: nothing more to find, and nothing of the other's.
    for (dir, other) in [(outer, &l1), (inner, &x1)] {
        let report = json_in(&sb, dir, &["gc"]);
        assert_eq!(gc_items(&report, "found"), [], "{report:#}");
        assert!(
            mentioned(&report).iter().all(|(_, n)| !other.owns(n)),
            "{report:#}"
        );
    }
    x1.down(&sb, outer);
    l1.down(&sb, inner);
    // The namespaces of the lost records are nobody's: gone by hand.
    sb.sh("ip netns del x2_ns && ip netns del l2_ns").ok();
    remove_state_dir(&sb, outer);
    sb.assert_clean(&[]);
}

#[test]
fn gc_keeps_its_own_untagged_interface_while_an_up_is_at_work_in_a_path_with_a_space() {
    let Some(sb) = Sandbox::new("netns-own-lock") else {
        return;
    };
    let s = Container {
        name: "S",
        ns: "s_ns",
        veths: &["vs0:eth0,bridge=ls0"],
    };
    // The explained commands quote the alias, whose path has a space.
    let up = netns_in(&sb, SPACED, &[&["--explain"][..], &s.up_args()].concat());
    assert_eq!(up.status, 0, "{}", up.stderr);
    for said in [
        "ip link set vs0 alias 'cloon:/run/my lab/S/netns.json'",
        "ip link set ls0 alias 'cloon:/run/my lab/.bridges/ls0.json'",
    ] {
        assert!(
            up.stderr.lines().any(|l| l == said),
            "{said}:\n{}",
            up.stderr
        );
    }
    json_in(&sb, SPACED, &["check", "--name", "S"]);
    assert_eq!(tag_faults(&sb, SPACED, &s), Vec::<String>::new());
    let group = json_in(&sb, SPACED, &["show", "--name", "S"])["group"]
        .as_u64()
        .expect("group");

    // An interface in this state directory's group that no record names and that has no alias
    // yet, as an up has it right after creating it, while that up holds the state directory.
    sb.sh(&format!(
        "ip netns add hand_s && ip link add vs9 group {group} type veth peer name e9 netns hand_s"
    ))
    .ok();
    // A shell that takes the shared lock as up does, says its pid, then becomes a sleep that
    // keeps the lock (nsenter may run it as a child: it is killed by its own pid).
    let mut holder = sb
        .cmd("sh")
        .args([
            "-c",
            "exec 9<\"$1\" && flock -s 9 && echo $$ && exec sleep 60",
            "sh",
            SPACED,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sh and flock (util-linux)");
    let mut pid = String::new();
    BufReader::new(holder.stdout.take().expect("piped"))
        .read_line(&mut pid)
        .expect("the holder's pid");
    let pid: u32 = pid.trim().parse().expect("a pid");
    let report = json_in(&sb, SPACED, &["gc"]);
    assert_eq!(gc_items(&report, "found"), [], "{report:#}");
    let kept = report["kept"].as_array().expect("kept");
    assert!(
        kept.iter()
            .any(|k| k["name"] == "vs9" && k["why"].as_str().unwrap_or("").contains("at work")),
        "{report:#}"
    );
    assert_ne!(netns_util::link(&sb, "vs9"), "");
    // The default state directory's gc has nothing to say of it either.
    let report = json_in(&sb, DEFAULT, &["gc"]);
    assert_eq!(mentioned(&report), [], "{report:#}");
    sb.sh(&format!("kill {pid}")).ok();
    let _ = holder.wait();

    // Once the up is done, it is an orphan of this state directory.
    let report = json_in(&sb, SPACED, &["gc"]);
    assert_eq!(
        gc_items(&report, "found"),
        [gc_item("interface", "vs9")],
        "{report:#}"
    );
    assert_eq!(netns_util::link(&sb, "vs9"), "");
    s.down(&sb, SPACED);
    sb.sh("ip netns del hand_s").ok();
    remove_state_dir(&sb, SPACED);
    sb.assert_clean(&[]);
}
