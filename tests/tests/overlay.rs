//! cloon-overlay on real loop devices and mounts, inside the sandbox.

use cloon_tests::{sha256 as sha, Sandbox};

fn image(sb: &Sandbox) -> (String, String) {
    let img = sb.path("bb.img");
    let doc = sb
        .tool(
            "cloon-img",
            &["create", "--busybox", img.to_str().expect("utf-8 path")],
            "",
        )
        .ok();
    (img.to_string_lossy().into_owned(), doc)
}

#[test]
fn up_mounts_a_copy_on_write_rootfs_and_down_removes_it() {
    let Some(sb) = Sandbox::new("overlay-updown") else {
        return;
    };
    let (img, doc) = image(&sb);
    let before = sha(&img);
    let run = sb.tool("cloon-overlay", &["--name", "Cloon1"], &doc);
    let out = run.json();
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(out["name"], "Cloon1");
    assert_eq!(
        out["image"]["path"],
        img.as_str(),
        "the image part passes through"
    );
    let o = &out["overlay"];
    let rootfs = o["rootfs"].as_str().unwrap();
    assert_eq!(sb.loops(), [o["loop"].as_str().unwrap()]);
    let mounts = sb.sh("findmnt -rn -o TARGET,FSTYPE,SOURCE,OPTIONS").ok();
    assert!(
        mounts.contains(&format!("{rootfs} overlay overlay")),
        "{mounts}"
    );
    let lower_line = mounts
        .lines()
        .find(|l| l.starts_with(o["lower"].as_str().unwrap()))
        .unwrap();
    assert!(
        lower_line.contains(" ext4 ") && lower_line.contains(" ro,"),
        "{lower_line}"
    );
    let ro = sb
        .sh(&format!(
            "cat /sys/block/{}/ro",
            o["loop"].as_str().unwrap().trim_start_matches("/dev/")
        ))
        .ok();
    assert_eq!(ro.trim(), "1", "the loop device is not read-only");

    sb.sh(&format!(
        "echo written > {rootfs}/tmp/new && rm {rootfs}/etc/hosts"
    ))
    .ok();
    let upper = o["upper"].as_str().unwrap();
    assert_eq!(sb.sh(&format!("cat {upper}/tmp/new")).ok(), "written\n");
    assert_eq!(
        sb.sh(&format!("stat -c %F {upper}/etc/hosts")).ok().trim(),
        "character special file"
    );
    sb.tool("cloon-overlay", &["check"], &run.stdout).ok();

    let down = sb.tool("cloon-overlay", &["down"], &run.stdout);
    let down_doc = down.json();
    assert_eq!(down.status, 0, "{}", down.stderr);
    assert!(down_doc.get("overlay").is_none());
    assert_eq!(down_doc["image"], out["image"]);
    sb.assert_clean(&[]);
    assert_eq!(sha(&img), before, "the image changed");
    sb.tool("cloon-overlay", &["down"], &run.stdout).ok();
}

#[test]
fn two_containers_share_one_image() {
    let Some(sb) = Sandbox::new("overlay-two") else {
        return;
    };
    let (img, _) = image(&sb);
    let a = sb.tool("cloon-overlay", &["--image", &img, "--name", "A"], "");
    let b = sb.tool("cloon-overlay", &["--image", &img, "--name", "B"], "");
    assert_eq!(
        a.json()["overlay"]["loop"],
        b.json()["overlay"]["loop"],
        "one loop device for one image"
    );
    assert_eq!(sb.loops().len(), 1);
    let (ra, rb) = (
        a.json()["overlay"]["rootfs"].clone(),
        b.json()["overlay"]["rootfs"].clone(),
    );
    sb.sh(&format!(
        "echo a > {}/tmp/f && echo b > {}/tmp/f",
        ra.as_str().unwrap(),
        rb.as_str().unwrap()
    ))
    .ok();
    assert_eq!(
        sb.sh(&format!("cat {}/tmp/f", ra.as_str().unwrap())).ok(),
        "a\n"
    );
    assert_eq!(
        sb.sh(&format!("cat {}/tmp/f", rb.as_str().unwrap())).ok(),
        "b\n"
    );
    sb.tool("cloon-overlay", &["down", "--name", "B"], "").ok();
    sb.tool("cloon-overlay", &["check", "--name", "A"], "").ok();
    assert_eq!(sb.loops().len(), 1, "A still uses the device");
    sb.tool("cloon-overlay", &["down", "--name", "A"], "").ok();
    sb.assert_clean(&[]);
}

#[test]
fn a_taken_name_is_refused_and_the_winner_kept() {
    let Some(sb) = Sandbox::new("overlay-taken") else {
        return;
    };
    let (img, _) = image(&sb);
    let first = sb
        .tool("cloon-overlay", &["--image", &img, "--name", "A"], "")
        .ok();
    let second = sb.tool("cloon-overlay", &["--image", &img, "--name", "A"], "");
    assert_eq!(second.status, 101, "{}", second.stderr);
    assert_eq!(sb.loops().len(), 1);
    sb.tool("cloon-overlay", &["check"], &first).ok();
    sb.tool("cloon-overlay", &["down"], &first).ok();
    sb.assert_clean(&[]);
}

#[test]
fn a_busy_rootfs_is_not_torn_down_under_its_users() {
    let Some(sb) = Sandbox::new("overlay-busy") else {
        return;
    };
    let (img, _) = image(&sb);
    let up = sb
        .tool("cloon-overlay", &["--image", &img, "--name", "A"], "")
        .ok();
    let doc: serde_json::Value = serde_json::from_str(&up).unwrap();
    let rootfs = doc["overlay"]["rootfs"].as_str().unwrap().to_string();
    // nsenter forks the holder into the sandbox's pid namespace: the holder itself is killed
    // (by its pid there), and nsenter ends with it.
    let mut holder = sb
        .cmd("sh")
        .args([
            "-c",
            &format!("cd {rootfs} && echo $$ > /run/holder.pid && exec sleep 60"),
        ])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let busy = sb.tool("cloon-overlay", &["down"], &up);
    assert_eq!(busy.status, 11, "{}", busy.stderr);
    assert!(busy.stderr.contains("in use"), "{}", busy.stderr);
    sb.sh("kill $(cat /run/holder.pid) && rm /run/holder.pid")
        .ok();
    holder.wait().unwrap();
    sb.tool("cloon-overlay", &["down"], &up).ok();
    sb.assert_clean(&[]);
}

#[test]
fn bad_inputs_leave_nothing() {
    let Some(sb) = Sandbox::new("overlay-bad") else {
        return;
    };
    std::fs::write(sb.path("notext4.img"), vec![0u8; 1 << 20]).unwrap();
    let notext4 = sb.path("notext4.img").to_string_lossy().into_owned();
    let cases: &[(&[&str], &str, i32)] = &[
        (&["--name", "A"], "", 4),
        (&["--image", &notext4], "", 4),
        (&["--image", &notext4, "--name", "A"], "", 7),
        (&["--image", "/nonexistent.img", "--name", "A"], "", 3),
        (&["--image", &notext4, "--name", "../etc"], "", 4),
        (&["--name", "A"], "{\"cloonVersion\":\"9\"}", 1),
        (&["--name", "A"], "{not json", 6),
        (
            &["--name", "B"],
            "{\"cloonVersion\":\"1\",\"name\":\"A\"}",
            7,
        ),
    ];
    for (args, stdin, code) in cases {
        let run = sb.tool("cloon-overlay", args, stdin);
        assert_eq!(run.status, *code, "{args:?}: {}", run.stderr);
        run.assert_error("cloon-overlay", *code as u64);
    }
    sb.assert_clean(&[]);
}
