//! `gc` of cloon-overlay, cloon-spec and cloon-run on real mounts, loop devices and containers:
//! it finds cloon's leftovers by its records and tags, removes them (or, with `--dry-run`, only
//! lists them and changes nothing), keeps healthy containers, and never touches a look-alike: a
//! loop device attached by hand to the same image, a mount under the state directory that
//! cloon does not make, a container named like cloon's whose bundle is elsewhere.

use cloon_tests::{gc_item, gc_items, lower_of, unique, Sandbox};
use serde_json::Value;

/// Runs `tool gc` with `flags`; it must succeed. Returns its report.
fn gc(sb: &Sandbox, tool: &str, flags: &[&str]) -> Value {
    let run = sb.tool(tool, &[flags, &["gc"]].concat(), "");
    assert_eq!(run.status, 0, "{tool} gc: {}\n{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(report["stateDir"], "/run/cloon");
    assert_eq!(report["dryRun"], !flags.is_empty());
    report
}

/// Every found item was removed (`true`) or, in a dry run, not (`false`).
fn all_removed(report: &Value, removed: bool) {
    for item in report["found"].as_array().expect("found") {
        assert_eq!(item["removed"], removed, "{item}");
        assert!(item.get("error").is_none(), "{item}");
        assert!(!item["why"].as_str().unwrap_or("").is_empty(), "{item}");
    }
}

/// What the sandbox holds: mounts, the loop devices of its files, the state directory's files,
/// the containers. A dry run must leave it exactly so.
fn snapshot(sb: &Sandbox) -> String {
    let mut s = sb
        .sh("findmnt -rn -o TARGET,SOURCE,FSTYPE | sort; find /run/cloon | sort; crun --root /run/crun list -q 2>/dev/null | sort; true")
        .ok();
    s.push_str(&sb.loops().join("\n"));
    s
}

fn overlay_up(sb: &Sandbox, img: &str, name: &str) -> Value {
    let run = sb.tool("cloon-overlay", &["--image", img, "--name", name], "");
    assert_eq!(run.status, 0, "up {name}: {}", run.stderr);
    run.json()
}

/// Kills the process that holds a loop device open (its pid in the sandbox's `/run/holder`),
/// even when the test fails: its mount namespace, the sandbox's, stays while it lives.
struct Holder<'a>(&'a Sandbox);

impl Drop for Holder<'_> {
    fn drop(&mut self) {
        let _ = self
            .0
            .sh("test -f /run/holder && kill $(cat /run/holder) && rm /run/holder; true");
    }
}

#[test]
fn overlay_gc_removes_cloons_leftovers_and_keeps_healthy_overlays_and_look_alikes() {
    let Some(sb) = Sandbox::new("gc-overlay") else {
        return;
    };
    let one = sb.busybox_image("one.img");
    let two = sb.busybox_image("two.img");
    for n in ["A", "B", "C"] {
        overlay_up(&sb, &one, n);
    }
    let d = overlay_up(&sb, &two, "D");
    let d_loop = d["overlay"]["loop"].as_str().unwrap().to_string();
    // B: its overlay unmounted behind cloon's back (partly gone).
    sb.sh("umount /run/cloon/B/overlay/rootfs").ok();
    // D: its overlay and its lower unmounted by hand, its record lost, while a process holds its
    // loop device open, so that the device (cloon's, tagged) outlives its mount: the lower's
    // record and directory, D's directory and the device are left.
    let _holder = Holder(&sb);
    sb.sh(&format!(
        "sleep 60 <{d_loop} >/dev/null 2>&1 & echo $! > /run/holder; \
         umount /run/cloon/D/overlay/rootfs {} && rm /run/cloon/D/overlay.json",
        lower_of(&two)
    ))
    .ok();
    // S: a mount under a container's overlay/ that no record explains, in a directory no
    // record names.
    sb.sh("(umask 077 && mkdir -p /run/cloon/S/overlay/rootfs) \
         && mount -t tmpfs stray /run/cloon/S/overlay/rootfs")
        .ok();
    // F: a mount under the state directory that cloon does not make.
    sb.sh("mkdir -p /run/cloon/F/data && mount -t tmpfs foreign /run/cloon/F/data")
        .ok();
    // A loop device attached to the first image by hand: not cloon's.
    let hand = sb
        .sh(&format!("losetup --read-only --find --show {one}"))
        .ok()
        .trim()
        .to_string();

    let before = snapshot(&sb);
    let dry = gc(&sb, "cloon-overlay", &["--dry-run"]);
    assert_eq!(snapshot(&sb), before, "a dry run changed something");
    all_removed(&dry, false);
    let report = gc(&sb, "cloon-overlay", &[]);
    all_removed(&report, true);
    let found = gc_items(&report, "found");
    let expected = vec![
        gc_item("directory", "/run/cloon/D"),
        gc_item("directory", "/run/cloon/D/overlay"),
        gc_item("directory", "/run/cloon/S"),
        gc_item("directory", "/run/cloon/S/overlay"),
        gc_item("loop device", &d_loop),
        gc_item("lower", &lower_of(&two)),
        gc_item("mount", "/run/cloon/S/overlay/rootfs"),
        gc_item("overlay", "B"),
    ];
    assert_eq!(found, expected, "{report:#}");
    // The dry run listed the same, less what only the removals bring to light (the directories
    // emptied by the removal of their overlay/).
    let dry_found = gc_items(&dry, "found");
    for item in &expected {
        if item.1 != "/run/cloon/S" && item.1 != "/run/cloon/D" {
            assert!(dry_found.contains(item), "{item:?} not in {dry:#}");
        }
    }
    let kept = gc_items(&report, "kept");
    for item in [
        gc_item("overlay", "A"),
        gc_item("overlay", "C"),
        gc_item("lower", &lower_of(&one)),
        gc_item("mount", "/run/cloon/F/data"),
        gc_item("loop device", &hand),
    ] {
        assert!(kept.contains(&item), "{item:?} not kept: {report:#}");
    }

    // What is healthy still works, the look-alikes are as they were.
    for n in ["A", "C"] {
        sb.tool("cloon-overlay", &["check", "--name", n], "").ok();
    }
    assert_eq!(
        sb.sh(&format!("losetup -n -O NAME -j {one} | sort")).ok(),
        {
            let mut both = [
                hand.clone(),
                sb.tool("cloon-overlay", &["show", "--name", "A"], "")
                    .json()["loop"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            ];
            both.sort();
            format!("{}\n", both.join("\n"))
        },
        "the hand-attached device and the lower's remain"
    );
    assert!(sb
        .sh("findmnt -rn /run/cloon/F/data")
        .ok()
        .contains("foreign"));
    assert_eq!(
        sb.sh("ls -A /run/cloon").ok(),
        ".cloon-state\n.lowers\nA\nC\nF\n"
    );
    // The tagged device goes with the process that held it.
    sb.sh("kill $(cat /run/holder) && rm /run/holder").ok();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while sb.sh(&format!("losetup -j {two}")).ok().contains(&d_loop) {
        assert!(std::time::Instant::now() < deadline, "{d_loop} stays");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // A second gc finds nothing more.
    let again = gc(&sb, "cloon-overlay", &[]);
    assert_eq!(gc_items(&again, "found"), Vec::<(String, String)>::new());

    for n in ["A", "C"] {
        sb.tool("cloon-overlay", &["down", "--name", n], "").ok();
    }
    sb.sh(&format!(
        "umount /run/cloon/F/data && rm -r /run/cloon/F && losetup -d {hand}"
    ))
    .ok();
    sb.assert_clean(&[]);
}

/// The bundle of container `name` on the busybox root filesystem `rootfs`, by cloon-spec: the
/// document.
fn spec(sb: &Sandbox, rootfs: &str, name: &str) -> String {
    sb.tool("cloon-spec", &["--name", name, "--rootfs", rootfs], "")
        .ok()
}

fn crun(sb: &Sandbox, args: &str) -> String {
    sb.sh(&format!("crun --root /run/crun {args}")).ok()
}

fn crun_ids(sb: &Sandbox) -> Vec<String> {
    let mut ids: Vec<String> = crun(sb, "list -q").lines().map(String::from).collect();
    ids.sort();
    ids
}

#[test]
fn run_and_spec_gc_remove_dead_and_orphaned_containers_and_keep_look_alikes() {
    let Some(sb) = Sandbox::new("gc-run") else {
        return;
    };
    let [good, dead, orphan, alike, stale] =
        ["gcG", "gcD", "gcO", "gcL", "gcS"].map(|t| unique(&format!("{t}-")));
    let rootfs = sb.busybox_rootfs().to_string_lossy().into_owned();
    let spec = |name: &str| spec(&sb, &rootfs, name);
    // good: a healthy container; dead: its process killed (stopped).
    for name in [&good, &dead] {
        let doc = spec(name);
        sb.tool("cloon-run", &["--root", "/run/crun"], &doc).ok();
    }
    let pid = sb.tool("cloon-run", &["show", "--name", &dead], "").json()["pid"]
        .as_i64()
        .unwrap();
    sb.sh(&format!("kill -9 {pid}")).ok();
    // orphan: made from cloon's bundle by hand, with no run record.
    spec(&orphan);
    crun(
        &sb,
        &format!("run -d --bundle /run/cloon/{orphan}/bundle {orphan} </dev/null >/dev/null 2>&1"),
    );
    // alike: a container named like cloon's, from a bundle outside the state directory (a copy
    // of cloon's config.json).
    let elsewhere = sb.path("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    // Its own cgroup, as a container made by hand would have (the copy names the orphan's).
    sb.sh(&format!(
        "sed 's#\"cgroupsPath\": \"[^\"]*\"#\"cgroupsPath\": \"/{alike}\"#' \
         /run/cloon/{orphan}/bundle/config.json > {}/config.json",
        elsewhere.display()
    ))
    .ok();
    crun(
        &sb,
        &format!(
            "run -d --bundle {} {alike} </dev/null >/dev/null 2>&1",
            elsewhere.display()
        ),
    );
    // stale: a run record (as an up killed before it found the name taken leaves it) whose id
    // names a container made from another bundle.
    spec(&stale);
    crun(
        &sb,
        &format!(
            "run -d --bundle {} {stale} </dev/null >/dev/null 2>&1",
            elsewhere.display()
        ),
    );
    let record = serde_json::json!({
        "id": stale, "runtime": "crun", "program": "/usr/bin/crun", "root": "/run/crun",
        "bundle": format!("/run/cloon/{stale}/bundle"),
        "log": format!("/run/cloon/{stale}/container.log"), "pid": 0
    });
    std::fs::write(sb.path("run.json"), record.to_string()).unwrap();
    sb.sh(&format!(
        "cp {} /run/cloon/{stale}/run.json",
        sb.path("run.json").display()
    ))
    .ok();
    // A spec record whose config.json is gone, and a log no record names.
    let lost = unique("gcX-");
    spec(&lost);
    sb.sh(&format!(
        "rm /run/cloon/{lost}/bundle/config.json; echo old > /run/cloon/{orphan}/container.log"
    ))
    .ok();

    let all = {
        let mut v = vec![
            good.clone(),
            dead.clone(),
            orphan.clone(),
            alike.clone(),
            stale.clone(),
        ];
        v.sort();
        v
    };
    assert_eq!(crun_ids(&sb), all);
    let before = snapshot(&sb);
    let dry = gc(&sb, "cloon-run", &["--dry-run"]);
    let dry_spec = gc(&sb, "cloon-spec", &["--dry-run"]);
    assert_eq!(snapshot(&sb), before, "a dry run changed something");
    all_removed(&dry, false);
    all_removed(&dry_spec, false);

    let report = gc(&sb, "cloon-run", &[]);
    all_removed(&report, true);
    let expected = vec![
        gc_item("container", &dead),
        gc_item("container", &format!("{orphan} (/run/crun)")),
        gc_item("container", &stale),
        gc_item("log", &format!("/run/cloon/{orphan}/container.log")),
    ];
    assert_eq!(gc_items(&report, "found"), expected, "{report:#}");
    assert_eq!(gc_items(&dry, "found"), expected, "{dry:#}");
    assert_eq!(
        gc_items(&report, "kept"),
        vec![gc_item("container", &good)],
        "{report:#}"
    );
    let mut left = vec![good.clone(), alike.clone(), stale.clone()];
    left.sort();
    assert_eq!(crun_ids(&sb), left, "the look-alikes stay");
    sb.tool("cloon-run", &["check", "--name", &good], "").ok();
    assert!(crun(&sb, &format!("state {alike}")).contains("\"running\""));

    let report = gc(&sb, "cloon-spec", &[]);
    all_removed(&report, true);
    assert_eq!(
        gc_items(&report, "found"),
        vec![gc_item("bundle", &lost)],
        "{report:#}"
    );
    let mut kept = vec![
        gc_item("bundle", &good),
        gc_item("bundle", &dead),
        gc_item("bundle", &orphan),
        gc_item("bundle", &stale),
    ];
    kept.sort();
    assert_eq!(gc_items(&report, "kept"), kept, "{report:#}");

    // Nothing more to find; then everything down, the look-alikes by hand.
    assert!(gc_items(&gc(&sb, "cloon-run", &[]), "found").is_empty());
    sb.tool("cloon-run", &["down", "--name", &good], "").ok();
    for name in [&good, &dead, &orphan, &stale] {
        sb.tool("cloon-spec", &["down", "--name", name], "").ok();
    }
    crun(&sb, &format!("delete -f {alike}"));
    crun(&sb, &format!("delete -f {stale}"));
    sb.assert_clean(&[]);
}
