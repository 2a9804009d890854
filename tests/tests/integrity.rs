//! The promises that hold whatever happens, on real kernel objects inside a sandbox: the image's
//! checksum never changes (containers writing to their root filesystems, containers and tools
//! killed with `kill -9`, leftovers garbage-collected); the state directory and each container's
//! are private (0700, records 0600); and `check` of every tool reports drift (a container that
//! died, a bundle that lost its config.json, a link deleted behind cloon's back, an overlay
//! unmounted by hand) with 104.

use cloon_tests::{sha256, tool_path, unique, Run, Sandbox};
use serde_json::Value;
use std::process::Stdio;
use std::time::{Duration, Instant};

const TOOLS: [&str; 4] = ["cloon-overlay", "cloon-netns", "cloon-spec", "cloon-run"];

/// The whole pipeline for `name`, its namespace `ns` and host end `host`: the document.
fn pipeline(sb: &Sandbox, img: &str, name: &str, ns: &str, host: &str) -> Value {
    let out = sb
        .sh_within(
            &format!(
                "set -e; cloon-overlay --image {img} --name {name} </dev/null > /run/{name}.1; \
                 cloon-netns --netns {ns} --veth {host}:eth0,addr=10.7.0.2/24 < /run/{name}.1 > /run/{name}.2; \
                 cloon-spec < /run/{name}.2 > /run/{name}.3; \
                 cloon-run --root /run/crun < /run/{name}.3; rm /run/{name}.1 /run/{name}.2 /run/{name}.3"
            ),
            60,
        )
        .ok();
    serde_json::from_str(&out).expect("the pipeline's document")
}

/// Brings every tool's part of `name` down, by name, last stage first.
fn down_all(sb: &Sandbox, name: &str) {
    for tool in TOOLS.iter().rev() {
        sb.tool(tool, &["down", "--name", name], "").ok();
    }
}

/// Runs every tool's `gc`; each must succeed.
fn gc_all(sb: &Sandbox) {
    for tool in TOOLS.iter().rev() {
        let run = sb.tool(tool, &["gc"], "");
        assert_eq!(run.status, 0, "{tool} gc: {}\n{}", run.stdout, run.stderr);
    }
}

/// Waits until the runtime says the container `name` has stopped.
fn wait_stopped(sb: &Sandbox, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while sb.tool("cloon-run", &["state", name], "").json()["status"] != "stopped" {
        assert!(Instant::now() < deadline, "{name} did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_image_never_changes_whatever_its_containers_and_the_tools_go_through() {
    let Some(sb) = Sandbox::new("integrity-image") else {
        return;
    };
    let img = sb.busybox_image("bb.img");
    let sum = sha256(&img);
    let (a, b) = (unique("IA-"), unique("IB-"));

    // A writes everywhere in its root filesystem: new files, a changed one, a removed one,
    // changed metadata. The writes land in its upper directory.
    let doc = pipeline(&sb, &img, &a, "ins_a", "via");
    let writes = "echo changed > /etc/passwd && rm /bin/ls && mkdir /new && \
                  dd if=/dev/zero of=/new/big bs=1024 count=512 2>/dev/null && chmod 700 /etc && sync";
    sb.tool("cloon-run", &["exec", &a, "--", "sh", "-c", writes], "")
        .ok();
    let upper = doc["overlay"]["upper"].as_str().unwrap();
    let lower = doc["overlay"]["lower"].as_str().unwrap();
    assert_eq!(sb.sh(&format!("cat {upper}/etc/passwd")).ok(), "changed\n");
    assert!(
        sb.sh(&format!("test -s {upper}/new/big && ls {lower}/bin/ls"))
            .status
            == 0
    );
    // The lower is read-only, even to root on the host.
    let denied = sb.sh(&format!("touch {lower}/x"));
    assert_ne!(denied.status, 0, "the lower took a write");
    assert!(denied.stderr.contains("Read-only"), "{}", denied.stderr);
    assert_eq!(sha256(&img), sum, "writes in a container changed the image");

    // A killed (kill -9 of its process, as the article stops it).
    let pid = doc["container"]["pid"].as_i64().expect("pid");
    sb.sh(&format!("kill -9 {pid}")).ok();
    wait_stopped(&sb, &a);

    // B: its cloon-run killed during its up, after the earlier stages.
    let ready = sb
        .sh_within(
            &format!(
                "set -e; cloon-overlay --image {img} --name {b} </dev/null \
                 | cloon-netns --netns ins_b --veth vib:eth0 | cloon-spec > /run/{b}.json"
            ),
            60,
        )
        .status;
    assert_eq!(ready, 0);
    let doc_b = sb
        .sh(&format!("cat /run/{b}.json && rm /run/{b}.json"))
        .ok();
    let mut run = sb
        .cmd(tool_path("cloon-run"))
        .args(["--root", "/run/crun"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cloon-run");
    {
        use std::io::Write;
        let mut stdin = run.stdin.take().expect("stdin");
        stdin.write_all(doc_b.as_bytes()).expect("write");
    }
    std::thread::sleep(Duration::from_millis(15));
    cloon_tests::kill_tool(&mut run);
    // On a machine fast enough to finish its up before the kill, B is a whole container (its
    // exit status says so); a kill that came after its last step but before its exit leaves
    // it whole too, so a killed B may be whole or gone.
    let finished = run.try_wait().expect("wait").is_some_and(|s| s.success());
    assert_eq!(sha256(&img), sum, "kills changed the image");

    // gc alone: A's dead container and B's unfinished one go; their healthy overlays,
    // namespaces and bundles stay, as every gc keeps what is healthy.
    gc_all(&sb);
    for name in [&a, &b] {
        let check = sb.tool("cloon-run", &["check", "--name", name], "");
        let expected: &[i32] = match (*name == b, finished) {
            (true, true) => &[0],
            (true, false) => &[0, 3],
            (false, _) => &[3],
        };
        assert!(
            expected.contains(&check.status),
            "{name} (finished: {finished}): {check:?}"
        );
        sb.tool("cloon-overlay", &["check", "--name", name], "")
            .ok();
    }
    assert_eq!(sha256(&img), sum, "gc changed the image");

    for name in [&a, &b] {
        down_all(&sb, name);
    }
    gc_all(&sb);
    sb.assert_clean(&[]);
    assert_eq!(sha256(&img), sum, "down changed the image");
}

/// The permission bits of `path` in the sandbox, in octal.
fn mode(sb: &Sandbox, path: &str) -> String {
    sb.sh(&format!("stat -c %a {path}")).ok().trim().to_string()
}

#[test]
fn the_state_directory_and_each_containers_are_private() {
    let Some(sb) = Sandbox::new("integrity-modes") else {
        return;
    };
    let img = sb.busybox_image("bb.img");
    let name = unique("M-");
    let doc = pipeline(&sb, &img, &name, "mns", "vm0");
    let lower = doc["overlay"]["lower"].as_str().unwrap();
    let key_dir = lower.trim_end_matches("/lower");
    let dir = format!("/run/cloon/{name}");
    for d in [
        "/run/cloon".to_string(),
        dir.clone(),
        format!("{dir}/overlay"),
        format!("{dir}/bundle"),
        "/run/cloon/.lowers".to_string(),
        key_dir.to_string(),
    ] {
        assert_eq!(mode(&sb, &d), "700", "{d}");
    }
    for f in [
        format!("{dir}/overlay.json"),
        format!("{dir}/netns.json"),
        format!("{dir}/spec.json"),
        format!("{dir}/run.json"),
        format!("{dir}/bundle/config.json"),
        format!("{key_dir}.json"),
    ] {
        assert_eq!(mode(&sb, &f), "600", "{f}");
    }
    down_all(&sb, &name);
    sb.assert_clean(&[]);
}

/// `tool check` on `doc`: asserts the drift error (104) and that its message or details mention
/// `says`.
fn drifted(sb: &Sandbox, tool: &str, doc: &str, says: &str) {
    let run: Run = sb.tool(tool, &["check"], doc);
    let err = run.assert_error(tool, 104);
    let text = format!("{} {}", err["error"]["msg"], err["error"]["details"]);
    assert!(text.contains(says), "{tool}: {text}");
}

/// `tool check` on `doc` passes, and passes the document on unchanged.
fn healthy(sb: &Sandbox, tool: &str, doc: &str) {
    let out = sb.tool(tool, &["check"], doc).ok();
    assert_eq!(
        serde_json::from_str::<Value>(&out).expect("check's document"),
        serde_json::from_str::<Value>(doc).expect("the document"),
        "{tool}"
    );
}

#[test]
fn check_of_every_tool_reports_drift_with_104() {
    let Some(sb) = Sandbox::new("integrity-drift") else {
        return;
    };
    let img = sb.busybox_image("bb.img");
    let name = unique("D-");
    let doc = pipeline(&sb, &img, &name, "dns", "vd0");
    let text = doc.to_string();
    for tool in TOOLS {
        healthy(&sb, tool, &text);
    }
    // A container that died.
    let pid = doc["container"]["pid"].as_i64().expect("pid");
    sb.sh(&format!("kill -9 {pid}")).ok();
    wait_stopped(&sb, &name);
    drifted(&sb, "cloon-run", &text, "stopped");
    healthy(&sb, "cloon-spec", &text);
    // A bundle that lost its config.json.
    sb.sh(&format!("rm {}", doc["bundle"]["config"].as_str().unwrap()))
        .ok();
    drifted(&sb, "cloon-spec", &text, "config.json");
    healthy(&sb, "cloon-netns", &text);
    // A link deleted behind cloon's back.
    sb.sh("ip link del vd0").ok();
    drifted(&sb, "cloon-netns", &text, "vd0");
    healthy(&sb, "cloon-overlay", &text);
    // An overlay unmounted by hand.
    sb.sh(&format!(
        "umount {}",
        doc["overlay"]["rootfs"].as_str().unwrap()
    ))
    .ok();
    drifted(&sb, "cloon-overlay", &text, "not mounted");
    down_all(&sb, &name);
    sb.assert_clean(&[]);
}
