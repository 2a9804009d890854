//! `--explain` and `--dry-run` of cloon-img, cloon-overlay, cloon-spec and cloon-run, on real
//! objects inside sandboxes.
//!
//! The commands a tool says with `--explain` must do what the tool does: each test runs the tool in
//! one sandbox, runs the commands it printed with `sh -e` in a fresh sandbox, and compares what
//! both made (images, mounts and loop devices, config.json, containers). The commands of `down`
//! must undo what the commands of `up` made. `--dry-run` must change nothing, and a dry-run
//! pipeline of the four tools must print a script that runs a container.

use cloon_tests::{sha256, unique, Run, Sandbox};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The commands a tool said: its stderr, which must hold nothing else.
fn said(run: &Run) -> String {
    assert_eq!(
        run.status, 0,
        "stdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    assert!(!run.stderr.trim().is_empty(), "nothing was said");
    run.stderr.clone()
}

/// Runs `script` as `sh -e` would in the sandbox; returns its stdout.
fn run_script(sb: &Sandbox, script: &str) -> String {
    let run = sb.sh(&format!("set -e\n{script}"));
    assert_eq!(
        run.status, 0,
        "the commands failed:\n{script}\nstdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    run.stdout
}

/// Asserts that every line of `needles` is a line of `script`.
fn assert_says(script: &str, needles: &[&str]) {
    for needle in needles {
        assert!(
            script.lines().any(|l| l == *needle),
            "no line `{needle}` in:\n{script}"
        );
    }
}

/// The files of a directory, as a sorted list of names.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn debugfs(img: &Path, args: &[&str]) -> String {
    let out = Command::new("debugfs")
        .args(args)
        .arg(img)
        .output()
        .expect("debugfs (e2fsprogs)");
    assert!(out.status.success(), "debugfs {args:?} {}", img.display());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What an ext4 image holds, timestamps and inode numbers aside: the superblock's label, size and
/// features; each file's path, mode, owner and size (`debugfs ls -l -p`); each regular file's
/// SHA-256 and each link's target (from `debugfs rdump`).
fn image_contents(img: &Path, work: &Path) -> Vec<String> {
    let mut lines: Vec<String> = debugfs(img, &["-R", "stats"])
        .lines()
        .filter(|l| {
            [
                "Filesystem volume name:",
                "Block count:",
                "Inode count:",
                "Filesystem features:",
            ]
            .iter()
            .any(|k| l.starts_with(k))
        })
        .map(str::to_string)
        .collect();
    let tree = work.join(format!(
        "{}.tree",
        img.file_name()
            .expect("the image has a file name")
            .to_string_lossy()
    ));
    std::fs::create_dir(&tree).expect("tree dir");
    debugfs(img, &["-R", &format!("rdump / {}", tree.display())]);
    let mut dirs = vec![String::from("/")];
    let mut stack = vec![tree.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            let rel = format!(
                "/{}",
                path.strip_prefix(&tree).expect("inside the tree").display()
            );
            let meta = std::fs::symlink_metadata(&path).expect("stat");
            if meta.is_symlink() {
                let target = std::fs::read_link(&path).expect("readlink");
                lines.push(format!("link {rel} -> {}", target.display()));
            } else if meta.is_dir() {
                dirs.push(rel);
                stack.push(path);
            } else {
                lines.push(format!(
                    "file {rel} {}",
                    sha256(path.to_str().expect("utf-8 path"))
                ));
            }
        }
    }
    let cmds = work.join(format!(
        "{}.cmds",
        img.file_name()
            .expect("the image has a file name")
            .to_string_lossy()
    ));
    let text: String = dirs.iter().map(|d| format!("ls -l -p {d}\n")).collect();
    std::fs::write(&cmds, text).expect("write the debugfs commands");
    let mut current = String::new();
    for line in debugfs(img, &["-f", cmds.to_str().expect("utf-8 path")]).lines() {
        if let Some(dir) = line.strip_prefix("debugfs: ls -l -p ") {
            current = dir.trim_end_matches('/').to_string();
            continue;
        }
        // /inode/mode/uid/gid/name/size/
        let f: Vec<&str> = line.split('/').collect();
        if f.len() >= 7 && f[5] != "." && f[5] != ".." {
            lines.push(format!(
                "entry {current}/{} mode {} uid {} gid {} size {}",
                f[5], f[2], f[3], f[4], f[6]
            ));
        }
    }
    std::fs::remove_dir_all(&tree).expect("remove the tree");
    std::fs::remove_file(&cmds).expect("remove the commands");
    assert!(lines.len() > 10, "{lines:#?}");
    lines.sort();
    lines
}

#[test]
fn img_commands_make_the_same_image() {
    let Some(a) = Sandbox::new("explain-img-a") else {
        return;
    };
    let b = Sandbox::new("explain-img-b").expect("second sandbox");
    let src = a.path("src");
    std::fs::create_dir_all(src.join("etc/deep")).unwrap();
    std::fs::write(src.join("etc/deep/it's"), "a file\n").unwrap();
    std::os::unix::fs::symlink("deep/it's", src.join("etc/link")).unwrap();
    let img = a.path("x.img");
    let img_s = img.to_str().unwrap().to_string();
    std::fs::write(&img, "replaced by --force").unwrap();
    let src_s = src.to_str().unwrap().to_string();
    let cases: [(&str, Vec<&str>); 2] = [
        ("busybox", vec!["create", "--explain", "--busybox", &img_s]),
        (
            "from-dir",
            vec![
                "create",
                "--explain",
                "--from-dir",
                &src_s,
                "--size",
                "16M",
                "--force",
                &img_s,
            ],
        ),
    ];
    for (case, args) in cases {
        let _ = std::fs::remove_file(&img);
        if case == "from-dir" {
            std::fs::write(&img, "replaced by --force").unwrap();
        }
        let run = a.tool("cloon-img", &args, "");
        let script = said(&run);
        assert_eq!(run.json()["image"]["path"], img_s.as_str(), "{case}");
        let tmp = script
            .lines()
            .find_map(|l| l.strip_prefix("truncate -s "))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or_else(|| panic!("{case}: no truncate in:\n{script}"))
            .to_string();
        if case == "busybox" {
            let staging = script
                .lines()
                .find_map(|l| l.strip_prefix("mkdir /"))
                .map(|l| format!("/{l}"))
                .unwrap_or_else(|| panic!("no staging mkdir in:\n{script}"));
            assert_says(
                &script,
                &[
                    &format!("mkfs.ext4 -q -F -t ext4 -L cloon -d {staging} {tmp}"),
                    &format!("mv -n -T {tmp} {img_s}"),
                    &format!("rm -rf --one-file-system {staging}"),
                ],
            );
        } else {
            assert_says(
                &script,
                &[
                    &format!("truncate -s 16777216 {tmp}"),
                    &format!("mkfs.ext4 -q -F -t ext4 -L cloon -d {src_s} {tmp}"),
                    &format!("mv -f -T {tmp} {img_s}"),
                ],
            );
        }
        let made_by_tool = a.path("tool.img");
        std::fs::rename(&img, &made_by_tool).unwrap();
        if case == "from-dir" {
            std::fs::write(&img, "replaced by the commands too").unwrap();
        }
        run_script(&b, &script);
        assert_eq!(
            image_contents(&made_by_tool, &a.dir),
            image_contents(&img, &a.dir),
            "{case}: the commands made another image"
        );
        assert_eq!(
            std::fs::metadata(&made_by_tool).unwrap().len(),
            std::fs::metadata(&img).unwrap().len()
        );
        std::fs::remove_file(&made_by_tool).unwrap();
        assert_eq!(listing(&a.dir), ["src", "x.img"], "{case}: staging left");
    }
    a.assert_clean(&[]);
    b.assert_clean(&[]);
}

/// The overlay of `name` as a sandbox sees it: the two mounts (type, source, options), the loop
/// device (read-only, autoclear, backing file) and the directories' modes. The device's number is
/// replaced by `N`: loop devices are global, and each sandbox gets its own.
fn overlay_view(sb: &Sandbox, name: &str, lower: &str) -> String {
    let base = format!("/run/cloon/{name}/overlay");
    let text = sb
        .sh(&format!(
            r#"set -e
            findmnt -rn -o FSTYPE,SOURCE,OPTIONS {lower}
            findmnt -rn -o FSTYPE,SOURCE,OPTIONS {base}/rootfs
            dev=$(findmnt -rn -o SOURCE {lower})
            n=${{dev#/dev/}}
            echo ro=$(cat /sys/block/$n/ro) autoclear=$(cat /sys/block/$n/loop/autoclear) \
                file=$(cat /sys/block/$n/loop/backing_file)
            stat -c '%n %a %F' {base} {base}/upper {base}/work {base}/rootfs {lower} {lower}/.. \
                {lower}/../..
            findmnt -rn -o SOURCE {lower} | wc -l"#
        ))
        .ok();
    text.split(' ')
        .map(|w| match w.strip_prefix("/dev/loop") {
            Some(n) if n.chars().all(|c| c.is_ascii_digit()) => "/dev/loopN",
            _ => w,
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn overlay_commands_mount_the_same_and_down_commands_undo_them() {
    let Some(a) = Sandbox::new("explain-overlay-a") else {
        return;
    };
    let b = Sandbox::new("explain-overlay-b").expect("second sandbox");
    let img = a.path("bb.img");
    let img_s = img.to_str().unwrap();
    a.tool("cloon-img", &["create", "--busybox", img_s], "")
        .ok();
    let before = sha256(img_s);
    let meta = std::fs::metadata(&img).unwrap();
    let key = {
        use std::os::unix::fs::MetadataExt;
        format!("{}-{}", meta.dev(), meta.ino())
    };
    let shared = "/run/cloon/.lowers";
    let lower = format!("{shared}/{key}/lower");
    let record = format!("{shared}/{key}.json");

    // The first container attaches and mounts the image, the second only mounts its overlay.
    let up = a.tool(
        "cloon-overlay",
        &["--explain", "--image", img_s, "--name", "Ex1"],
        "",
    );
    let script1 = said(&up);
    let doc = up.json();
    let dev = doc["overlay"]["loop"].as_str().unwrap();
    assert!(dev.starts_with("/dev/loop"), "{doc}");
    assert_eq!(doc["overlay"]["lower"], lower.as_str());
    let o = "/run/cloon/Ex1/overlay";
    assert_says(
        &script1,
        &[
            &format!("mkdir -m 755 {o}/upper {o}/work {o}/rootfs"),
            &format!("# lock {record} (flock): the lower of this image is joined, or made, under this lock"),
            &format!("mkdir -p -m 700 {shared} {shared}/{key}"),
            &format!("mkdir -p -m 755 {lower}"),
            &format!("loop=$(losetup --read-only --find --show {img_s})"),
            &format!("# $loop is {dev}"),
            &format!("mount -o ro -t ext4 \"$loop\" {lower}"),
            "losetup -d \"$loop\"",
            &format!("# record {record}"),
            &format!("mount -t overlay overlay -o lowerdir={lower},upperdir={o}/upper,workdir={o}/work {o}/rootfs"),
            &format!("# unlock {record}"),
        ],
    );
    let up2 = a.tool(
        "cloon-overlay",
        &["--explain", "--image", img_s, "--name", "Ex2"],
        "",
    );
    let script2 = said(&up2);
    assert_eq!(up2.json()["overlay"]["loop"], dev, "one device for both");
    let o2 = "/run/cloon/Ex2/overlay";
    assert_says(
        &script2,
        &[
            &format!("# {lower} is already mounted from {dev}: this container shares it"),
            &format!("mount -t overlay overlay -o lowerdir={lower},upperdir={o2}/upper,workdir={o2}/work {o2}/rootfs"),
        ],
    );
    for word in [
        "losetup",
        "mount -o ro",
        "mkdir -p -m 700 /run/cloon/.lowers",
    ] {
        assert!(
            !script2.contains(word),
            "{word} for a shared lower:\n{script2}"
        );
    }
    run_script(&b, &script1);
    run_script(&b, &script2);
    for name in ["Ex1", "Ex2"] {
        let view = overlay_view(&a, name, &lower);
        assert!(
            view.contains("ro=1 autoclear=1") && view.contains(" ro,"),
            "{view}"
        );
        assert!(view.ends_with("\n1\n"), "one lower mount: {view}");
        assert_eq!(overlay_view(&b, name, &lower), view);
    }
    assert_eq!(a.loops().len(), 2, "one device per sandbox");
    // Writes land in the upper directory in both.
    for sb in [&a, &b] {
        sb.sh(&format!("echo w > {o}/rootfs/tmp/new")).ok();
        assert_eq!(sb.sh(&format!("cat {o}/upper/tmp/new")).ok(), "w\n");
    }

    // The first one out keeps the lower, the last one removes it.
    let down = a.tool("cloon-overlay", &["down", "--explain"], &up.stdout);
    let down1 = said(&down);
    assert_says(
        &down1,
        &[
            &format!("umount {o}/rootfs"),
            &format!("# {lower} is still the lower of 1 other overlay(s): it stays"),
            &format!("rm -rf --one-file-system {o}"),
            "rmdir --ignore-fail-on-non-empty /run/cloon/Ex1",
        ],
    );
    assert!(!down1.contains(&format!("umount {lower}")), "{down1}");
    let down = a.tool("cloon-overlay", &["down", "--explain"], &up2.stdout);
    let down2 = said(&down);
    assert_says(
        &down2,
        &[
            &format!("umount {o2}/rootfs"),
            &format!("umount {lower}"),
            &format!("rm -rf --one-file-system {shared}/{key}"),
            &format!("rmdir --ignore-fail-on-non-empty {shared}"),
            &format!("rm -rf --one-file-system {o2}"),
            "rmdir --ignore-fail-on-non-empty /run/cloon/Ex2",
        ],
    );
    for script in [&down1, &down2] {
        assert!(
            !script.contains("losetup -d /dev/"),
            "autoclear detaches the device at the unmount:\n{script}"
        );
    }
    // What is left is b's device, backed by a's image.
    assert_eq!(a.loops().len(), 1, "b's device");
    run_script(&b, &down1);
    assert_eq!(a.loops().len(), 1, "the first one out keeps the device");
    run_script(&b, &down2);
    b.assert_clean(&[]);
    a.assert_clean(&[]); // also the loop device of b, backed by a's image
    assert_eq!(sha256(img_s), before, "the image changed");
}

#[test]
fn spec_commands_write_the_same_bundle_and_down_commands_remove_it() {
    let Some(a) = Sandbox::new("explain-spec-a") else {
        return;
    };
    let b = Sandbox::new("explain-spec-b").expect("second sandbox");
    let rootfs = a.busybox_rootfs();
    let args = [
        "--name",
        "Ex2",
        "--rootfs",
        rootfs.to_str().unwrap(),
        "--env",
        "MSG=it's \"quoted\" $HOME `x` \\ EOF",
        "--cap-add",
        "SYS_TIME",
        "--",
        "sleep",
        "infinity",
    ];
    let up = a.tool("cloon-spec", &[&["--explain"], &args[..]].concat(), "");
    let script = said(&up);
    let config = "/run/cloon/Ex2/bundle/config.json";
    assert_says(
        &script,
        &[
            "mkdir -p -m 700 /run/cloon /run/cloon/Ex2",
            "# record /run/cloon/Ex2/spec.json",
            "mkdir -p -m 700 /run/cloon/Ex2/bundle",
            &format!("cat > {config} <<'EOF'"),
            &format!("chmod 600 {config}"),
        ],
    );
    run_script(&b, &script);
    let view = |sb: &Sandbox| {
        sb.sh(&format!(
            "cat {config}; stat -c '%n %a' /run/cloon /run/cloon/Ex2 /run/cloon/Ex2/bundle {config}"
        ))
        .ok()
    };
    let made = view(&a);
    assert!(made.contains("it's \\\"quoted\\\" $HOME"), "{made}");
    assert_eq!(view(&b), made, "the commands wrote another bundle");
    a.assert_valid_config(&up.json());

    let down = a.tool("cloon-spec", &["down", "--explain"], &up.stdout);
    let script = said(&down);
    assert_says(
        &script,
        &[
            "rm -rf --one-file-system /run/cloon/Ex2/bundle",
            "# remove the record /run/cloon/Ex2/spec.json",
            "rmdir --ignore-fail-on-non-empty /run/cloon/Ex2",
        ],
    );
    a.assert_clean(&[]);
    run_script(&b, &script);
    b.assert_clean(&[]);
}

/// The container's status as the runtime says it, and its hostname.
fn container_view(sb: &Sandbox, program: &str, root: &str, id: &str) -> (String, String) {
    let state: Value =
        serde_json::from_str(&sb.sh(&format!("{program} --root {root} state {id}")).ok())
            .expect("state JSON");
    let host = sb
        .sh(&format!("{program} --root {root} exec {id} hostname"))
        .ok();
    (state["status"].as_str().unwrap_or("").to_string(), host)
}

#[test]
fn run_commands_run_the_same_container_and_down_commands_remove_it() {
    let Some(a) = Sandbox::new("explain-run-a") else {
        return;
    };
    let b = Sandbox::new("explain-run-b").expect("second sandbox");
    let rootfs = a.busybox_rootfs();
    for (runtime, root) in [("crun", "/run/crun"), ("runc", "/run/runc")] {
        let name = unique(&format!("Ex{runtime}"));
        // crun runs without cgroups (cloon-spec's default); runc cannot, it gets its own.
        let cgroups = if runtime == "crun" { "none" } else { "runtime" };
        let spec_args = [
            "--name",
            &name,
            "--rootfs",
            rootfs.to_str().unwrap(),
            "--cgroups",
            cgroups,
        ];
        let bundle = a.tool("cloon-spec", &spec_args, "").ok();
        let config = a
            .sh(&format!("cat /run/cloon/{name}/bundle/config.json"))
            .ok();
        let run_args = ["--explain", "--runtime", runtime, "--root", root];
        let up = a.tool("cloon-run", &run_args, &bundle);
        let up_script = said(&up);
        let doc = up.json();
        let rt = format!("{runtime} --root {root}");
        let log = format!("/run/cloon/{name}/container.log");
        let pid_file = format!("/run/cloon/{name}/container.pid");
        assert_says(
            &up_script,
            &[
                &format!("# record /run/cloon/{name}/run.json"),
                &format!("(umask 077 && : > {log})"),
                &format!("{rt} {}create --bundle /run/cloon/{name}/bundle --pid-file {pid_file} {name} </dev/null >/dev/null 2>>{log}", if runtime == "crun" { "--cgroup-manager=disabled " } else { "" }),
                &format!("{rt} start {name} </dev/null >/dev/null 2>>{log}"),
                &format!("grep -qs '^State:[[:space:]]*[^ZX]' /proc/\"$(cat {pid_file})\"/status"),
            ],
        );
        assert_eq!(doc["container"]["status"], "running");
        let view = container_view(&a, runtime, root, &name);
        assert_eq!(view, ("running".to_string(), format!("{name}\n")));

        let exec = a.tool(
            "cloon-run",
            &["exec", "--explain", &name, "--", "hostname"],
            "",
        );
        assert_eq!(exec.stdout, format!("{name}\n"));
        let exec_script = said(&exec);
        assert_says(
            &exec_script,
            &[&format!("{rt} exec --cwd / {name} hostname")],
        );

        let down = a.tool("cloon-run", &["down", "--explain"], &up.stdout);
        let down_script = said(&down);
        assert_says(
            &down_script,
            &[
                &format!("{rt} kill {name} KILL"),
                &format!("while grep -qs '^State:[[:space:]]*[^ZX]' /proc/\"$(cat {pid_file})\"/status; do sleep 0.1; done"),
                &format!("{rt} delete {name}"),
                &format!("rm -f {log}"),
                &format!("rm -f {pid_file}"),
            ],
        );
        a.tool("cloon-spec", &["down"], &down.stdout).ok();
        a.assert_clean(&[]);

        // The same bundle in b (the same config.json, its cgroup included), then the commands.
        b.tool("cloon-spec", &spec_args, "").ok();
        let copy = b.path("config.json");
        std::fs::write(&copy, &config).expect("config copy");
        b.sh(&format!(
            "cat {} > /run/cloon/{name}/bundle/config.json",
            copy.display()
        ))
        .ok();
        run_script(&b, &up_script);
        assert_eq!(container_view(&b, runtime, root, &name), view);
        assert_eq!(run_script(&b, &exec_script), format!("{name}\n"));
        run_script(&b, &down_script);
        b.tool("cloon-spec", &["down", "--name", &name], "").ok();
        b.assert_clean(&[]);
    }
}

/// Everything under the sandbox's /run/cloon and the scratch directory, the loop devices, the
/// mounts and the containers: what a dry run must leave as it was.
fn everything(sb: &Sandbox) -> BTreeSet<String> {
    let mut all: BTreeSet<String> = sb
        .sh("find /run/cloon 2>/dev/null; findmnt -rn -o TARGET; crun --root /run/crun list -q; runc --root /run/runc list -q 2>/dev/null; true")
        .ok()
        .lines()
        .map(str::to_string)
        .collect();
    let mut stack = vec![sb.dir.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("read_dir") {
            let p: PathBuf = e.expect("entry").path();
            if p.is_dir() && !p.is_symlink() {
                stack.push(p.clone());
            }
            all.insert(p.display().to_string());
        }
    }
    all.extend(sb.loops());
    all
}

#[test]
fn dry_run_changes_nothing_and_still_checks_its_input() {
    let Some(sb) = Sandbox::new("explain-dry") else {
        return;
    };
    let img = sb.path("bb.img");
    let img_s = img.to_str().unwrap().to_string();
    let rootfs = sb.busybox_rootfs();
    let rootfs_s = rootfs.to_str().unwrap().to_string();
    let name = unique("Dry");

    // Up: nothing made, the commands said, the planned part in the document.
    let start = everything(&sb);
    let run = sb.tool(
        "cloon-img",
        &["create", "--dry-run", "--busybox", &img_s],
        "",
    );
    let script = said(&run);
    assert!(script.contains("truncate -s \"$size\" "), "{script}");
    assert_eq!(run.json()["image"]["bytes"], 0);
    assert_eq!(everything(&sb), start, "cloon-img --dry-run made something");

    sb.tool("cloon-img", &["create", "--busybox", &img_s], "")
        .ok();
    let start = everything(&sb);
    let run = sb.tool(
        "cloon-overlay",
        &["--dry-run", "--image", &img_s, "--name", &name],
        "",
    );
    said(&run);
    assert_eq!(run.json()["overlay"]["loop"], "$loop");
    let run = sb.tool(
        "cloon-spec",
        &["--dry-run", "--rootfs", &rootfs_s, "--name", &name],
        "",
    );
    assert!(said(&run).contains("<<'EOF'"));
    let run = sb.tool("cloon-run", &["--dry-run"], &run.stdout);
    assert!(said(&run).contains(&format!("crun --root /run/crun start {name}")));
    assert_eq!(run.json()["container"]["pid"], 0);
    assert_eq!(run.json()["container"]["status"], "");
    assert_eq!(everything(&sb), start, "a --dry-run made something");

    // Bad input is still refused.
    let taken = sb.tool("cloon-img", &["create", "--dry-run", &img_s], "");
    taken.assert_error("cloon-img", 101);
    let cases: &[(&str, &[&str], u64)] = &[
        (
            "cloon-overlay",
            &["--dry-run", "--image", &img_s, "--name", "../x"],
            4,
        ),
        (
            "cloon-spec",
            &[
                "--dry-run",
                "--rootfs",
                &rootfs_s,
                "--name",
                "A",
                "--cap-add",
                "NOPE",
            ],
            4,
        ),
        (
            "cloon-spec",
            &[
                "--dry-run",
                "--rootfs",
                &rootfs_s,
                "--name",
                "A",
                "--",
                "nosuchcmd",
            ],
            7,
        ),
        ("cloon-run", &["--dry-run", "--name", "A"], 7),
        (
            "cloon-run",
            &[
                "--dry-run",
                "--name",
                "A",
                "--bundle",
                "/b",
                "--runtime",
                "/nonexistent/crun",
            ],
            100,
        ),
    ];
    for (tool, args, code) in cases {
        sb.tool(tool, args, "").assert_error(tool, *code);
    }
    assert_eq!(everything(&sb), start, "a refused --dry-run made something");

    // Down and exec: the real objects stay as they are.
    let over = sb
        .tool("cloon-overlay", &["--image", &img_s, "--name", &name], "")
        .ok();
    let spec = sb
        .tool(
            "cloon-spec",
            &["--rootfs", &rootfs_s, "--name", &name],
            &over,
        )
        .ok();
    let up = sb.tool("cloon-run", &[], &spec).ok();
    let running = everything(&sb);
    let down = sb.tool("cloon-run", &["down", "--dry-run"], &up);
    said(&down);
    assert!(down.json().get("name").is_some());
    assert_eq!(everything(&sb), running, "cloon-run down --dry-run acted");
    sb.tool("cloon-run", &["check"], &up).ok();
    // While the container runs, the down of its bundle is refused, in a dry run as in a real one.
    let down = sb.tool("cloon-spec", &["down", "--dry-run"], &up);
    down.assert_error("cloon-spec", 11);
    // The overlay is not the container's root filesystem here (cloon-spec got --rootfs).
    let down = sb.tool("cloon-overlay", &["down", "--dry-run"], &up);
    said(&down);
    for tool in ["cloon-spec", "cloon-overlay"] {
        assert_eq!(everything(&sb), running, "{tool} down --dry-run acted");
        sb.tool(tool, &["check"], &up).ok();
    }
    let exec = sb.tool(
        "cloon-run",
        &["exec", "--dry-run", &name, "--", "sh", "-c", "exit 7"],
        "",
    );
    assert_eq!(exec.status, 0, "{}", exec.stderr);
    assert!(
        exec.stderr
            .contains(&format!(" exec --cwd / {name} sh -c 'exit 7'")),
        "{}",
        exec.stderr
    );
    let down = sb.tool("cloon-run", &["down"], &up).ok();
    let down = sb.tool("cloon-spec", &["down"], &down).ok();
    sb.tool("cloon-overlay", &["down"], &down).ok();
    sb.assert_clean(&[]);
}

#[test]
fn a_dry_run_pipeline_prints_a_script_that_runs_the_container() {
    let Some(sb) = Sandbox::new("explain-pipeline") else {
        return;
    };
    let name = unique("DryPipe");
    let img = sb.path("bb.img");
    let img_s = img.to_str().unwrap();
    let script_path = sb.path("cloon.sh");
    let pipeline = format!(
        "{{ cloon-img create --dry-run --busybox {img_s} \
         | cloon-overlay --dry-run --name {name} \
         | cloon-netns --dry-run --netns ns{name} --veth vdry0:eth0,addr=10.0.0.2/24,bridge=brdry \
         | cloon-spec --dry-run | cloon-run --dry-run; }} 2>{}",
        script_path.display()
    );
    let doc: Value = serde_json::from_str(&sb.sh(&pipeline).ok()).expect("the document");
    assert_eq!(doc["overlay"]["loop"], "$loop");
    assert_eq!(doc["container"]["id"], name.as_str());
    assert!(!img.exists(), "the dry run made the image");
    sb.assert_clean(&[]);

    let script = std::fs::read_to_string(&script_path).unwrap();
    for step in [
        "mkfs.ext4 ",
        "losetup ",
        "mount -t overlay ",
        "cat > ",
        "crun ",
    ] {
        assert!(script.contains(step), "no {step} in:\n{script}");
    }
    // With `set -e`: the script's own check, that the container's process runs, passed.
    run_script(&sb, &script);
    assert_eq!(
        container_view(&sb, "crun", "/run/crun", &name),
        ("running".to_string(), format!("{name}\n"))
    );
    // The script computed the size cloon-img computes.
    let by_tool = sb.path("tool.img");
    sb.tool(
        "cloon-img",
        &["create", "--busybox", by_tool.to_str().unwrap()],
        "",
    )
    .ok();
    assert_eq!(
        std::fs::metadata(&img).unwrap().len(),
        std::fs::metadata(&by_tool).unwrap().len()
    );

    // Nothing of this is cloon's (no records): the dry-run down pipeline says how to take it
    // down, from the document's own parts.
    let lower = doc["overlay"]["lower"].as_str().expect("overlay.lower");
    assert_eq!(
        lower, "/run/cloon/.lowers/0-0/lower",
        "an image not made yet"
    );
    let doc_path = sb.path("doc.json");
    std::fs::write(&doc_path, doc.to_string()).expect("write the document");
    let down_path = sb.path("down.sh");
    let down = format!(
        "{{ cloon-run down --dry-run | cloon-spec down --dry-run | cloon-netns down --dry-run \
         | cloon-overlay down --dry-run; }} <{} 2>{}",
        doc_path.display(),
        down_path.display()
    );
    let left: Value = serde_json::from_str(&sb.sh(&down).ok()).expect("the document");
    assert!(
        left.get("overlay").is_none() && left.get("container").is_none(),
        "{left}"
    );
    let down_script = std::fs::read_to_string(&down_path).expect("the down script");
    assert_says(
        &down_script,
        &[
            &format!("crun --root /run/crun kill {name} KILL"),
            &format!("crun --root /run/crun delete {name}"),
            &format!("rm -rf --one-file-system /run/cloon/{name}/bundle"),
            &format!("umount /run/cloon/{name}/overlay/rootfs"),
            &format!("  umount {lower}"),
            "ip link del vdry0",
            "if [ -z \"$(ls /sys/class/net/brdry/brif 2>/dev/null)\" ]; then ip link del brdry; fi",
            &format!("ip netns del ns{name}"),
        ],
    );
    assert!(
        sb.sh("crun --root /run/crun list -q").ok().contains(&name),
        "the dry-run down acted"
    );
    run_script(&sb, &down_script);
    std::fs::remove_file(&doc_path).expect("remove the document");
    std::fs::remove_file(&down_path).expect("remove the down script");
    sb.assert_clean(&[]);
}
