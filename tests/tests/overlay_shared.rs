//! cloon-overlay's shared lower, on real loop devices and mounts inside the sandbox: every
//! container of one image shares one loop device and one read-only lower mount, the last one out
//! removes them, whatever the order, the crashes and the concurrency.

use cloon_tests::{lower_of, sha256, Sandbox};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::Stdio;

const TOOL: &str = "cloon-overlay";

fn up(sb: &Sandbox, img: &str, name: &str) -> Value {
    let run = sb.tool(TOOL, &["--image", img, "--name", name], "");
    assert_eq!(run.status, 0, "up {name}: {}", run.stderr);
    run.json()
}

fn down(sb: &Sandbox, name: &str) {
    sb.tool(TOOL, &["down", "--name", name], "").ok();
}

/// How many mounts there are at `target`.
fn mounts_at(sb: &Sandbox, target: &str) -> usize {
    sb.sh("findmnt -rn -o TARGET")
        .ok()
        .lines()
        .filter(|l| *l == target)
        .count()
}

/// The overlay mounts whose lowerdir is `lower`.
fn overlays_over(sb: &Sandbox, lower: &str) -> usize {
    let opt = format!("lowerdir={lower},");
    sb.sh("findmnt -rn -t overlay -o OPTIONS")
        .ok()
        .lines()
        .filter(|l| l.contains(&opt))
        .count()
}

/// The container `name` still works: `check` passes, and a write in its rootfs reads back and
/// lands in its upper directory.
fn works(sb: &Sandbox, name: &str) {
    let doc: Value = serde_json::from_str(&sb.tool(TOOL, &["check", "--name", name], "").ok())
        .expect("check's document");
    assert_eq!(doc["name"], name);
    let shown: Value = serde_json::from_str(&sb.tool(TOOL, &["show", "--name", name], "").ok())
        .expect("the record");
    let (rootfs, upper) = (
        shown["rootfs"].as_str().expect("rootfs"),
        shown["upper"].as_str().expect("upper"),
    );
    let got = sb
        .sh(&format!(
            "echo {name} > {rootfs}/tmp/who && cat {rootfs}/tmp/who {upper}/tmp/who && cat {rootfs}/bin/busybox >/dev/null"
        ))
        .ok();
    assert_eq!(got, format!("{name}\n{name}\n"));
}

#[test]
fn eight_containers_share_one_loop_device_and_the_last_one_out_removes_it() {
    let Some(sb) = Sandbox::new("overlay-shared-eight") else {
        return;
    };
    let img = sb.busybox_image("bb.img");
    let before = sha256(&img);
    let lower = lower_of(&img);
    let names: Vec<String> = (0..8).map(|i| format!("C{i}")).collect();
    let docs: Vec<Value> = names.iter().map(|n| up(&sb, &img, n)).collect();
    for d in &docs {
        assert_eq!(d["overlay"]["loop"], docs[0]["overlay"]["loop"], "{d}");
        assert_eq!(d["overlay"]["lower"], lower.as_str());
    }
    assert_eq!(sb.loops(), [docs[0]["overlay"]["loop"].as_str().unwrap()]);
    let losetup = sb.sh(&format!("losetup -j {img}")).ok();
    assert_eq!(losetup.lines().count(), 1, "{losetup}");
    assert_eq!(mounts_at(&sb, &lower), 1, "one lower mount");
    assert_eq!(overlays_over(&sb, &lower), 8);
    let record: Value = serde_json::from_str(
        &sb.sh(&format!("cat {}.json", lower.trim_end_matches("/lower")))
            .ok(),
    )
    .unwrap();
    assert_eq!(record["loop"], docs[0]["overlay"]["loop"]);
    assert_eq!(record["lower"], lower.as_str());
    assert_eq!(record["image"], img.as_str());
    for n in &names {
        works(&sb, n);
    }

    // First, middle, last, then the others in a jumbled order.
    let order = [0, 4, 7, 3, 1, 6, 2, 5];
    for (i, &c) in order.iter().enumerate() {
        down(&sb, &names[c]);
        let left: Vec<&String> = order[i + 1..].iter().map(|&k| &names[k]).collect();
        if left.is_empty() {
            break;
        }
        assert_eq!(sb.loops().len(), 1, "after {}", names[c]);
        assert_eq!(mounts_at(&sb, &lower), 1, "after {}", names[c]);
        assert_eq!(overlays_over(&sb, &lower), left.len());
        for n in left {
            works(&sb, n);
        }
    }
    sb.assert_clean(&[]);
    assert_eq!(
        sb.sh("ls -A /run/cloon").ok(),
        ".cloon-state\n",
        "the shared record and its directory are gone"
    );
    assert_eq!(sha256(&img), before, "the image changed");
}

#[test]
fn each_image_gets_its_own_lower_and_a_hard_link_is_the_same_image() {
    let Some(sb) = Sandbox::new("overlay-shared-two") else {
        return;
    };
    let one = sb.busybox_image("one.img");
    let two = sb.busybox_image("two.img");
    let link = sb.path("link.img").to_string_lossy().into_owned();
    std::fs::hard_link(&one, &link).unwrap();
    let (l1, l2) = (lower_of(&one), lower_of(&two));
    assert_ne!(l1, l2);
    let a = up(&sb, &one, "A");
    let b = up(&sb, &link, "B");
    let c = up(&sb, &two, "C");
    assert_eq!(
        a["overlay"]["loop"], b["overlay"]["loop"],
        "a hard link shares"
    );
    assert_ne!(a["overlay"]["loop"], c["overlay"]["loop"]);
    assert_eq!(b["overlay"]["lower"], l1.as_str());
    assert_eq!(c["overlay"]["lower"], l2.as_str());
    assert_eq!(sb.loops().len(), 2);
    assert_eq!((mounts_at(&sb, &l1), mounts_at(&sb, &l2)), (1, 1));
    for n in ["A", "B", "C"] {
        works(&sb, n);
    }
    down(&sb, "A");
    assert_eq!(mounts_at(&sb, &l1), 1, "B still uses the first lower");
    down(&sb, "C");
    assert_eq!(mounts_at(&sb, &l2), 0, "the second lower went with C");
    assert_eq!(sb.loops(), [a["overlay"]["loop"].as_str().unwrap()]);
    works(&sb, "B");
    down(&sb, "B");
    sb.assert_clean(&[]);
}

#[test]
fn a_lost_overlay_record_or_lower_leaves_no_wrong_count() {
    let Some(sb) = Sandbox::new("overlay-shared-lost") else {
        return;
    };
    let img = sb.busybox_image("bb.img");
    let lower = lower_of(&img);
    let record = format!("{}.json", lower.trim_end_matches("/lower"));

    // An overlay unmounted behind cloon's back no longer counts: the lower goes with the last
    // overlay still mounted, and the lost one's down still cleans up.
    for n in ["A", "B", "C"] {
        up(&sb, &img, n);
    }
    let b: Value = serde_json::from_str(&sb.tool(TOOL, &["show", "--name", "B"], "").ok()).unwrap();
    sb.sh(&format!("umount {}", b["rootfs"].as_str().unwrap()))
        .ok();
    let drift = sb.tool(TOOL, &["check", "--name", "B"], "");
    let err = drift.assert_error(TOOL, 104);
    assert!(err["error"]["details"]
        .as_str()
        .unwrap()
        .contains("the overlay is not mounted"));
    down(&sb, "A");
    assert_eq!(mounts_at(&sb, &lower), 1, "C still uses it");
    down(&sb, "C");
    assert_eq!(mounts_at(&sb, &lower), 0, "B's lost overlay does not count");
    assert!(sb.loops().is_empty());
    down(&sb, "B");
    sb.assert_clean(&[]);

    // A shared record lost: check says so, the next up writes it again from what is mounted.
    let a = up(&sb, &img, "A");
    sb.sh(&format!("rm {record}")).ok();
    let err = sb
        .tool(TOOL, &["check", "--name", "A"], "")
        .assert_error(TOOL, 104);
    assert!(
        err["error"]["details"]
            .as_str()
            .unwrap()
            .contains("missing"),
        "{err}"
    );
    let b = up(&sb, &img, "B");
    assert_eq!(a["overlay"]["loop"], b["overlay"]["loop"]);
    works(&sb, "A");
    down(&sb, "A");
    down(&sb, "B");
    sb.assert_clean(&[]);

    // A lower left by a crash between its mount and the first overlay (made here by hand, the
    // article's way, without autoclear and without a record): the next container joins it, and
    // its down takes the lower and the device away.
    let dev = sb
        .sh(&format!(
            "set -e; mkdir -p {lower}; d=$(losetup --read-only --find --show {img}); \
             mount -o ro -t ext4 $d {lower}; echo $d"
        ))
        .ok();
    let a = up(&sb, &img, "A");
    assert_eq!(a["overlay"]["loop"], dev.trim());
    assert_eq!(sb.loops().len(), 1);
    works(&sb, "A");
    down(&sb, "A");
    sb.assert_clean(&[]);

    // Something else mounted where the lower goes is refused, and left alone.
    sb.sh(&format!("mkdir -p {lower} && mount -t tmpfs other {lower}"))
        .ok();
    let refused = sb.tool(TOOL, &["--image", &img, "--name", "A"], "");
    refused.assert_error(TOOL, 104);
    assert_eq!(mounts_at(&sb, &lower), 1);
    assert_eq!(
        sb.sh("ls -A /run/cloon | grep -v -e '^.lowers$' -e '^.cloon-state$'; true")
            .ok(),
        ""
    );
    sb.sh(&format!("umount {lower} && rm -r /run/cloon/.lowers"))
        .ok();
    sb.assert_clean(&[]);
}

/// Runs `args` in the sandbox with `--explain`, and kills it (SIGKILL) as soon as it says a line
/// that starts with `marker`: between two of its steps, or at worst a step later. Returns whether
/// the marker was seen.
fn kill_at(sb: &Sandbox, args: &[&str], marker: &str) -> bool {
    let mut child = sb
        .cmd(cloon_tests::tool_path(TOOL))
        .args(args)
        .arg("--explain")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut seen = false;
    let mut said = String::new();
    for line in BufReader::new(child.stderr.take().expect("piped")).lines() {
        let line = line.expect("stderr");
        said.push_str(&line);
        said.push('\n');
        if line.starts_with(marker) {
            cloon_tests::kill_tool(&mut child);
            seen = true;
            break;
        }
    }
    child.wait().expect("wait");
    assert!(seen, "no line {marker:?} in:\n{said}");
    seen
}

#[test]
fn tools_killed_between_steps_leave_nothing_the_next_down_cannot_clean() {
    let Some(sb) = Sandbox::new("overlay-shared-killed") else {
        return;
    };
    let img = sb.busybox_image("bb.img");
    let lower = lower_of(&img);
    let k = "/run/cloon/K/overlay";
    let key_dir = lower.trim_end_matches("/lower").to_string();
    let up_args = ["--image", img.as_str(), "--name", "K"];
    // Where up is killed when it makes the lower, and when it joins one.
    let making = [
        format!("mkdir -m 755 {k}/upper"),
        "# lock ".to_string(),
        format!("mkdir -p -m 755 {lower}"),
        "loop=$(losetup".to_string(),
        "mount -o ro -t ext4".to_string(),
        "# record /run/cloon/.lowers/".to_string(),
        "mount -t overlay".to_string(),
    ];
    let joining = [
        "# lock ".to_string(),
        format!("# {lower} is already mounted"),
        "mount -t overlay".to_string(),
    ];
    // Where down is killed when it is the last user, and when another one stays.
    let downs_alone = [
        format!("umount {k}/rootfs"),
        "# lock ".to_string(),
        "# no other overlay".to_string(),
        format!("umount {lower}"),
        format!("rm -rf --one-file-system {key_dir}"),
        "# remove the record /run/cloon/.lowers/".to_string(),
        format!("rm -rf --one-file-system {k}"),
    ];
    let downs_shared = [
        format!("umount {k}/rootfs"),
        "# lock ".to_string(),
        format!("# {lower} is still the lower"),
        format!("rm -rf --one-file-system {k}"),
    ];
    for steady in [false, true] {
        if steady {
            up(&sb, &img, "S");
        }
        let markers: &[String] = if steady { &joining } else { &making };
        for marker in markers {
            kill_at(&sb, &up_args, marker);
            down(&sb, "K");
            if steady {
                assert_eq!(sb.loops().len(), 1, "up killed at {marker:?}");
                works(&sb, "S");
            } else {
                sb.assert_clean(&[]);
            }
        }
        let downs: &[String] = if steady { &downs_shared } else { &downs_alone };
        for marker in downs {
            up(&sb, &img, "K");
            kill_at(&sb, &["down", "--name", "K"], marker);
            down(&sb, "K");
            if steady {
                assert_eq!(sb.loops().len(), 1, "down killed at {marker:?}");
                works(&sb, "S");
            } else {
                sb.assert_clean(&[]);
            }
        }
        if steady {
            down(&sb, "S");
        }
        sb.assert_clean(&[]);
    }
}

#[test]
fn sixteen_concurrent_ups_and_downs_of_one_image_end_clean() {
    let Some(sb) = Sandbox::new("overlay-shared-concurrent") else {
        return;
    };
    let img = sb.busybox_image("bb.img");
    let lower = lower_of(&img);
    let all = |names: Vec<String>, action: &'static str| {
        std::thread::scope(|s| {
            let handles: Vec<_> = names
                .iter()
                .map(|n| {
                    let (sb, img) = (&sb, &img);
                    s.spawn(move || match action {
                        "up" => sb.tool(TOOL, &["--image", img, "--name", n], ""),
                        _ => sb.tool(TOOL, &["down", "--name", n], ""),
                    })
                })
                .collect();
            for (h, n) in handles.into_iter().zip(&names) {
                let run = h.join().expect("thread");
                assert_eq!(run.status, 0, "{action} {n}: {}", run.stderr);
            }
        });
    };
    let names =
        |range: std::ops::Range<usize>| -> Vec<String> { range.map(|i| format!("P{i}")).collect() };
    for round in 0..3 {
        all(names(0..16), "up");
        assert_eq!(sb.loops().len(), 1, "round {round}");
        assert_eq!(mounts_at(&sb, &lower), 1, "round {round}");
        assert_eq!(overlays_over(&sb, &lower), 16, "round {round}");
        // Half go while another half comes, then all go at once.
        std::thread::scope(|s| {
            s.spawn(|| all(names(0..8), "down"));
            s.spawn(|| all(names(16..24), "up"));
        });
        assert_eq!(sb.loops().len(), 1, "round {round}");
        assert_eq!(overlays_over(&sb, &lower), 16, "round {round}");
        for n in ["P8", "P23"] {
            works(&sb, n);
        }
        let mut rest = names(8..24);
        rest.reverse();
        all(rest, "down");
        sb.assert_clean(&[]);
    }
}
