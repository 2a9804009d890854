//! A root filesystem or a bundle that a live container uses is never taken down: `cloon-overlay
//! down` and `cloon-spec down` refuse with code 11 (try again later) and change nothing, and the
//! `gc` of each tool keeps them, whether cloon-run recorded the container or it was made by hand
//! with crun. The runtime holds its own copy of the overlay mount (in the container's mount
//! namespace), so unmounting it in the sandbox's namespace succeeds: "in use" cannot be learnt
//! from `umount` failing with EBUSY.

use cloon_tests::{gc_item, gc_items, unique, Run, Sandbox};
use serde_json::Value;

/// Runs `program` with `args` inside the sandbox (no shell, so any path is passed as is).
fn run(sb: &Sandbox, program: &str, args: &[&str]) -> Run {
    sb.run_cmd(sb.cmd(program).args(args), "")
}

/// The file `path` inside the sandbox.
fn cat(sb: &Sandbox, path: &str) -> String {
    run(sb, "cat", &[path]).ok()
}

/// Whether `path` is a mount point inside the sandbox.
fn mounted(sb: &Sandbox, path: &str) -> bool {
    run(sb, "mountpoint", &["-q", path]).status == 0
}

/// Nothing is left; the marker of the state directory (not a container's) aside.
fn assert_clean(sb: &Sandbox) {
    sb.sh("rm -f /run/cloon/.cloon-state; rmdir /run/cloon 2>/dev/null; true")
        .ok();
    sb.assert_clean(&[]);
}

/// The overlay and the bundle of container `name` on the busybox image `img`, whose command
/// sleeps: the document of cloon-spec.
fn overlay_and_spec(sb: &Sandbox, img: &str, name: &str) -> String {
    let overlay = sb.tool("cloon-overlay", &["--image", img, "--name", name], "");
    assert_eq!(overlay.status, 0, "{}", overlay.stderr);
    let spec = sb.tool("cloon-spec", &["--", "sleep", "1000"], &overlay.stdout);
    assert_eq!(spec.status, 0, "{}", spec.stderr);
    spec.stdout
}

/// The document's `overlay` part.
fn overlay_part(doc: &str) -> Value {
    let doc: Value = serde_json::from_str(doc).expect("a document");
    doc["overlay"].clone()
}

/// `tool down --name NAME` must fail with code 11, saying what to do.
fn down_refused(sb: &Sandbox, tool: &str, name: &str, hint: &str) {
    let run = sb.tool(tool, &["down", "--name", name], "");
    let doc = run.assert_error(tool, 11);
    let msg = doc["error"]["msg"].as_str().unwrap_or_default();
    assert!(msg.contains(hint), "{tool} down: {msg}");
}

/// The upper data, the overlay mount and the bundle of `name` are all still there, and both
/// `check`s pass.
fn intact(sb: &Sandbox, overlay: &Value, name: &str, data: &str) {
    let (upper, rootfs) = (
        overlay["upper"].as_str().expect("upper"),
        overlay["rootfs"].as_str().expect("rootfs"),
    );
    assert_eq!(cat(sb, &format!("{upper}/data")), data);
    assert!(mounted(sb, rootfs), "{rootfs} is no longer mounted");
    assert_eq!(cat(sb, &format!("{rootfs}/data")), data);
    sb.tool("cloon-overlay", &["check", "--name", name], "")
        .ok();
    sb.tool("cloon-spec", &["check", "--name", name], "").ok();
    let config = format!("/run/cloon/{name}/bundle/config.json");
    assert!(cat(sb, &config).contains("\"root\""));
}

/// Both tools' `gc` keep the overlay and the bundle of `name`, and find nothing to remove.
fn gc_keeps(sb: &Sandbox, name: &str) {
    for (tool, kind) in [("cloon-overlay", "overlay"), ("cloon-spec", "bundle")] {
        let run = sb.tool(tool, &["gc"], "");
        assert_eq!(run.status, 0, "{tool} gc: {}\n{}", run.stdout, run.stderr);
        let report = run.json();
        assert_eq!(
            gc_items(&report, "found"),
            Vec::<(String, String)>::new(),
            "{tool} gc took parts of a running container: {report:#}"
        );
        assert!(
            gc_items(&report, "kept").contains(&gc_item(kind, name)),
            "{report:#}"
        );
    }
}

#[test]
fn down_and_gc_leave_a_running_containers_rootfs_and_bundle_alone() {
    let Some(sb) = Sandbox::new("in-use-recorded") else {
        return;
    };
    let img = sb.busybox_image("bb.img");
    let name = unique("iu");
    let spec = overlay_and_spec(&sb, &img, &name);
    let up = sb.tool("cloon-run", &["--root", sb.runtime_root], &spec);
    assert_eq!(up.status, 0, "{}", up.stderr);
    let overlay = overlay_part(&up.stdout);
    sb.tool(
        "cloon-run",
        &["exec", &name, "--", "sh", "-c", "echo kept > /data"],
        "",
    )
    .ok();
    intact(&sb, &overlay, &name, "kept\n");

    let hint = format!("cloon-run down --name {name}");
    down_refused(&sb, "cloon-overlay", &name, &hint);
    intact(&sb, &overlay, &name, "kept\n");
    down_refused(&sb, "cloon-spec", &name, &hint);
    intact(&sb, &overlay, &name, "kept\n");
    // In the teardown pipeline, each step refuses in turn.
    let pipeline = sb.sh(&format!(
        "cloon-spec down --name {name} </dev/null | cloon-overlay down"
    ));
    assert_eq!(pipeline.status, 11, "{}", pipeline.stderr);
    intact(&sb, &overlay, &name, "kept\n");
    gc_keeps(&sb, &name);
    intact(&sb, &overlay, &name, "kept\n");

    // The overlay unmounted behind cloon's back: the container still has its own copy, and its
    // data is still in use.
    let rootfs = overlay["rootfs"].as_str().unwrap();
    run(&sb, "umount", &[rootfs]).ok();
    sb.tool(
        "cloon-run",
        &["exec", &name, "--", "sh", "-c", "echo still > /data"],
        "",
    )
    .ok();
    down_refused(&sb, "cloon-overlay", &name, &hint);
    let report = sb.tool("cloon-overlay", &["gc"], "").json();
    assert_eq!(
        gc_items(&report, "found"),
        Vec::<(String, String)>::new(),
        "{report:#}"
    );
    assert!(gc_items(&report, "kept").contains(&gc_item("overlay", &name)));
    let upper = overlay["upper"].as_str().unwrap();
    assert_eq!(cat(&sb, &format!("{upper}/data")), "still\n");
    assert!(mounted(&sb, overlay["lower"].as_str().unwrap()));

    // Once the container is down, both downs succeed.
    sb.tool("cloon-run", &["down", "--name", &name], "").ok();
    sb.tool("cloon-spec", &["down", "--name", &name], "").ok();
    sb.tool("cloon-overlay", &["down", "--name", &name], "")
        .ok();
    assert_clean(&sb);
}

/// Deletes the container made by hand, even when the test fails.
struct HandMade<'a>(&'a Sandbox, String);

impl Drop for HandMade<'_> {
    fn drop(&mut self) {
        let _ = self.0.sh(&format!(
            "crun --root /run/crun delete --force {} 2>/dev/null; true",
            self.1
        ));
    }
}

#[test]
fn a_container_made_by_hand_on_the_rootfs_counts_too() {
    let Some(sb) = Sandbox::new("in-use-by-hand") else {
        return;
    };
    let img = sb.busybox_image("bb.img");
    let name = unique("ih");
    let spec = overlay_and_spec(&sb, &img, &name);
    let overlay = overlay_part(&spec);
    let id = unique("hand");
    let _hand = HandMade(&sb, id.clone());
    // crun itself, on cloon's bundle, unknown to cloon-run; it must not keep the test's pipes.
    sb.sh(&format!(
        "crun --root /run/crun run --detach --bundle /run/cloon/{name}/bundle {id} \
         </dev/null >/dev/null 2>&1"
    ))
    .ok();
    sb.sh(&format!(
        "crun --root /run/crun exec {id} sh -c 'echo by-hand > /data'"
    ))
    .ok();
    intact(&sb, &overlay, &name, "by-hand\n");

    down_refused(&sb, "cloon-overlay", &name, "first");
    intact(&sb, &overlay, &name, "by-hand\n");
    down_refused(&sb, "cloon-spec", &name, "first");
    intact(&sb, &overlay, &name, "by-hand\n");
    gc_keeps(&sb, &name);
    intact(&sb, &overlay, &name, "by-hand\n");

    sb.sh(&format!("crun --root /run/crun delete --force {id}"))
        .ok();
    sb.tool("cloon-spec", &["down", "--name", &name], "").ok();
    sb.tool("cloon-overlay", &["down", "--name", &name], "")
        .ok();
    assert_clean(&sb);
}

#[test]
fn gc_keeps_a_running_containers_overlay_whose_record_is_lost() {
    let Some(sb) = Sandbox::new("in-use-lost-record") else {
        return;
    };
    let img = sb.busybox_image("bb.img");
    let name = unique("il");
    let spec = overlay_and_spec(&sb, &img, &name);
    let up = sb.tool("cloon-run", &["--root", sb.runtime_root], &spec);
    assert_eq!(up.status, 0, "{}", up.stderr);
    let overlay = overlay_part(&up.stdout);
    sb.tool(
        "cloon-run",
        &["exec", &name, "--", "sh", "-c", "echo lost > /data"],
        "",
    )
    .ok();
    // The overlay's record lost: its mount and its directory are explained by no record, but the
    // container runs on them.
    let record = format!("/run/cloon/{name}/overlay.json");
    run(&sb, "mv", &[&record, "/run/overlay.json.saved"]).ok();
    let gc = sb.tool("cloon-overlay", &["gc"], "");
    assert_eq!(gc.status, 0, "{}\n{}", gc.stdout, gc.stderr);
    let report = gc.json();
    assert_eq!(
        gc_items(&report, "found"),
        Vec::<(String, String)>::new(),
        "{report:#}"
    );
    let rootfs = overlay["rootfs"].as_str().expect("rootfs");
    let kept = gc_items(&report, "kept");
    assert!(kept.contains(&gc_item("mount", rootfs)), "{report:#}");
    assert!(mounted(&sb, rootfs));
    let upper = overlay["upper"].as_str().expect("upper");
    assert_eq!(cat(&sb, &format!("{upper}/data")), "lost\n");

    // The record back, the container down: everything goes.
    run(&sb, "mv", &["/run/overlay.json.saved", &record]).ok();
    sb.tool("cloon-run", &["down", "--name", &name], "").ok();
    sb.tool("cloon-spec", &["down", "--name", &name], "").ok();
    sb.tool("cloon-overlay", &["down", "--name", &name], "")
        .ok();
    assert_clean(&sb);
}
