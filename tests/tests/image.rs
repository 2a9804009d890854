//! cloon-img on real files: the images are real ext4 filesystems, read back with debugfs.

use cloon_tests::Sandbox;

const STAGE: &str = "cloon-img";
use std::os::unix::fs::MetadataExt;

fn debugfs(sb: &Sandbox, img: &str, request: &str) -> String {
    sb.sh(&format!("debugfs -R '{request}' {img} 2>/dev/null"))
        .ok()
}

#[test]
fn busybox_image_is_sparse_ext4_with_applets() {
    let Some(sb) = Sandbox::new("img-busybox") else {
        return;
    };
    let img = sb.path("bb.img");
    let img_s = img.to_str().unwrap();
    let run = sb.tool("cloon-img", &["create", "--busybox", img_s], "");
    let doc = run.json();
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(doc["cloonVersion"], "1");
    assert_eq!(doc["image"]["path"], img_s);
    assert_eq!(doc["image"]["fstype"], "ext4");
    let meta = std::fs::metadata(&img).unwrap();
    assert_eq!(doc["image"]["bytes"], meta.len());
    assert!(
        meta.blocks() * 512 < meta.len() / 2,
        "the image is not sparse"
    );
    assert!(debugfs(&sb, img_s, "ls -l /bin").contains("busybox"));
    assert!(debugfs(&sb, img_s, "stat /bin/sh").contains("Type: symlink"));
    assert!(debugfs(&sb, img_s, "cat /etc/passwd").starts_with("root:x:0:0:"));
    for dir in ["/proc", "/sys", "/dev", "/tmp"] {
        assert!(
            debugfs(&sb, img_s, &format!("stat {dir}")).contains("Type: directory"),
            "{dir}"
        );
    }
    let info = sb.tool("cloon-img", &["info", img_s], "");
    assert_eq!(info.json()["image"], doc["image"]);
    let leftovers: Vec<_> = std::fs::read_dir(&sb.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, ["bb.img"], "staging files left in the directory");
}

#[test]
fn existing_image_is_kept_unless_forced() {
    let Some(sb) = Sandbox::new("img-force") else {
        return;
    };
    let img = sb.path("x.img");
    std::fs::write(&img, "precious").unwrap();
    let run = sb.tool("cloon-img", &["create", img.to_str().unwrap()], "");
    run.assert_error(STAGE, 101);
    assert!(run.stderr.contains("--force"));
    assert_eq!(std::fs::read_to_string(&img).unwrap(), "precious");
    sb.tool(
        "cloon-img",
        &["create", "--force", "--size", "8M", img.to_str().unwrap()],
        "",
    )
    .ok();
    assert_eq!(std::fs::metadata(&img).unwrap().len(), 8 << 20);
}

#[test]
fn from_dir_copies_the_tree() {
    let Some(sb) = Sandbox::new("img-dir") else {
        return;
    };
    let root = sb.path("root");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/motd"), "from a directory\n").unwrap();
    let img = sb.path("d.img");
    let img_s = img.to_str().unwrap();
    sb.tool(
        "cloon-img",
        &["create", "--from-dir", root.to_str().unwrap(), img_s],
        "",
    )
    .ok();
    assert_eq!(debugfs(&sb, img_s, "cat /etc/motd"), "from a directory\n");
}

#[test]
fn bad_requests_fail_cleanly() {
    let Some(sb) = Sandbox::new("img-bad") else {
        return;
    };
    let img = sb.path("bad.img");
    let img_s = img.to_str().unwrap();
    let cases: &[(&[&str], i32)] = &[
        (&["create", "--size", "12X", img_s], 2),
        (&["create", "--from-dir", "/nonexistent", img_s], 4),
        (
            &[
                "create",
                "--size",
                "4M",
                "--from-dir",
                "/usr/share/doc",
                img_s,
            ],
            5,
        ),
        (&["info", "/etc/passwd"], 7),
        (&["info", "/nonexistent.img"], 3),
    ];
    for (args, code) in cases {
        let run = sb.tool("cloon-img", args, "");
        assert_eq!(run.status, *code, "{args:?}: {}", run.stderr);
        if *code != 2 {
            run.assert_error(STAGE, *code as u64);
        }
        assert!(!run.stderr.is_empty());
    }
    let left: Vec<_> = std::fs::read_dir(&sb.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn an_error_document_passes_through_untouched() {
    let Some(sb) = Sandbox::new("img-passthrough") else {
        return;
    };
    let img = sb.path("p.img");
    sb.assert_error_passes_through(STAGE, &["create", img.to_str().unwrap()], "x", 4);
    assert!(!img.exists());
}
