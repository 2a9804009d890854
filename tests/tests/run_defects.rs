//! Regressions of cloon-run's `up`, as root inside a sandbox:
//!
//! - a container whose command ends at once (`/bin/true`, `sh -c 'exit 3'`) was reported
//!   `running` while the runtime said `stopped`: `up` now fails with 102 and the command's exit
//!   status, the container deleted and the record released; a command that keeps running is
//!   still reported `running`, as the runtime says;
//! - a `--runtime` that cannot be executed (no execute permission, a directory, a missing path,
//!   a script whose `#!` interpreter is missing) was reported as "create failed (exit status
//!   127)": it is now error 100 naming the errno of the `exec`, and nothing is left behind.

use cloon_tests::{unique, Run, Sandbox};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

const STAGE: &str = "cloon-run";

/// The bundle of container `name` on `rootfs`, with `cmd` as its command: the document.
fn spec(sb: &Sandbox, rootfs: &Path, name: &str, cmd: &[&str]) -> String {
    let mut args = vec!["--name", name, "--rootfs", rootfs.to_str().expect("utf-8")];
    if !cmd.is_empty() {
        args.push("--");
        args.extend_from_slice(cmd);
    }
    sb.tool("cloon-spec", &args, "").ok()
}

/// The names of the containers the runtime keeps in `root`.
fn runtime_list(sb: &Sandbox, runtime: &str, root: &str) -> String {
    sb.sh(&format!(
        "{runtime} --root {root} list -q 2>/dev/null; true"
    ))
    .ok()
    .trim()
    .to_string()
}

/// The files of cloon's state directory of `name`: only cloon-spec's once cloon-run has undone
/// its `up`.
fn assert_only_the_bundle_is_left(sb: &Sandbox, name: &str) {
    let files = sb.sh(&format!("ls /run/cloon/{name}")).ok();
    assert_eq!(
        files.split_whitespace().collect::<Vec<_>>(),
        ["bundle", "spec.json"],
        "cloon-run left something of {name}"
    );
}

/// The teardown pipeline, as a user runs it on the document `up` printed (an error document
/// too): `cloon-run down | cloon-spec down`.
fn teardown(sb: &Sandbox, doc: &str) {
    let down = sb.tool("cloon-run", &["down"], doc).ok();
    sb.tool("cloon-spec", &["down"], &down).ok();
}

/// `up` of a command that ends at once: error 102 with its exit status, the document keeping the
/// bundle, no container in the runtime, no record.
fn assert_up_fails_with(
    sb: &Sandbox,
    up: &Run,
    name: &str,
    runtime: &str,
    root: &str,
    status: &str,
) {
    let doc = up.assert_error(STAGE, 102);
    let msg = doc["error"]["msg"].as_str().unwrap_or_default();
    assert!(
        msg.contains(&format!("({status})")) && msg.contains("ended during up"),
        "{doc}"
    );
    assert!(doc.get("container").is_none(), "{doc}");
    assert_eq!(doc["bundle"]["path"], format!("/run/cloon/{name}/bundle"));
    assert_eq!(
        runtime_list(sb, runtime, root),
        "",
        "{runtime} still has it"
    );
    assert_only_the_bundle_is_left(sb, name);
}

#[test]
fn commands_that_end_at_once_fail_up_with_their_exit_status_and_leave_nothing() {
    let Some(sb) = Sandbox::new("run-defect-ends") else {
        return;
    };
    let rootfs = sb.busybox_rootfs();
    let cases: [(&str, &[&str], &str, &str); 3] = [
        ("crun", &["/bin/true"], "exit status 0", "t"),
        ("crun", &["sh", "-c", "exit 3"], "exit status 3", "x"),
        ("runc", &["sh", "-c", "exit 3"], "exit status 3", "r"),
    ];
    for (runtime, cmd, status, tag) in cases {
        let root = format!("/run/{runtime}");
        for i in 0..5 {
            let name = format!("{}-{i}", unique(&format!("de{tag}")));
            let doc = if runtime == "runc" {
                // runc cannot run a container without a cgroup of its own (the default, none).
                let mut args = vec!["--name", &name, "--rootfs", rootfs.to_str().expect("utf-8")];
                args.extend(["--cgroups", "runtime", "--"]);
                args.extend_from_slice(cmd);
                sb.tool("cloon-spec", &args, "").ok()
            } else {
                spec(&sb, &rootfs, &name, cmd)
            };
            let up = sb.tool("cloon-run", &["--runtime", runtime], &doc);
            assert_up_fails_with(&sb, &up, &name, runtime, &root, status);
            // The same teardown as after any failed pipeline.
            teardown(&sb, &up.stdout);
            sb.assert_clean(&[]);
        }
    }
}

#[test]
fn a_command_that_keeps_running_is_reported_running_as_the_runtime_says() {
    let Some(sb) = Sandbox::new("run-defect-runs") else {
        return;
    };
    let rootfs = sb.busybox_rootfs();
    for i in 0..3 {
        let name = format!("{}-{i}", unique("dr"));
        let doc = spec(&sb, &rootfs, &name, &["sleep", "1000"]);
        let up = sb.tool("cloon-run", &[], &doc);
        assert_eq!(up.status, 0, "{}{}", up.stdout, up.stderr);
        let c = up.json()["container"].clone();
        assert_eq!(c["status"], "running");
        let pid = c["pid"].as_i64().expect("pid");
        let state = sb.tool("cloon-run", &["state", &name], "").json();
        assert_eq!(
            (state["status"].as_str(), state["pid"].as_i64()),
            (Some("running"), Some(pid))
        );
        // Read inside the sandbox, whose /proc numbers processes as the document does.
        let comm = sb.sh(&format!("cat /proc/{pid}/comm")).ok();
        assert_eq!(
            comm.trim(),
            "sleep",
            "the container's process runs its command"
        );
        assert_eq!(sb.tool("cloon-run", &["check"], &up.stdout).status, 0);
        teardown(&sb, &up.stdout);
        sb.assert_clean(&[]);
    }

    // A command that ends later than `up` is running when `up` reports it, and `check` finds
    // its end afterwards (drift, 104).
    let name = unique("dl");
    let doc = spec(&sb, &rootfs, &name, &["sleep", "1"]);
    let up = sb.tool("cloon-run", &[], &doc);
    assert_eq!(up.status, 0, "{}{}", up.stdout, up.stderr);
    assert_eq!(up.json()["container"]["status"], "running");
    let deadline = Instant::now() + Duration::from_secs(10);
    while sb.tool("cloon-run", &["state", &name], "").json()["status"] != "stopped" {
        assert!(Instant::now() < deadline, "sleep 1 did not end");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(sb.tool("cloon-run", &["check"], &up.stdout).status, 104);
    teardown(&sb, &up.stdout);
    sb.assert_clean(&[]);
}

#[test]
fn a_runtime_that_cannot_be_executed_is_named_with_its_errno_and_leaves_nothing() {
    let Some(sb) = Sandbox::new("run-defect-runtime") else {
        return;
    };
    let rootfs = sb.busybox_rootfs();
    let plain = sb.path("not-executable");
    std::fs::write(&plain, "#!/bin/sh\nexec crun \"$@\"\n").expect("file");
    std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let dir = sb.path("a-directory");
    std::fs::create_dir(&dir).expect("dir");
    let missing = sb.path("missing");
    let script = sb.path("bad-interpreter");
    std::fs::write(&script, "#!/nonexistent\nexec crun \"$@\"\n").expect("script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");

    let name = unique("dx");
    let doc = spec(&sb, &rootfs, &name, &[]);
    let cases = [
        (&plain, "Permission denied (EACCES)", "chmod +x"),
        (&dir, "Is a directory (EISDIR)", "directory"),
        (
            &missing,
            "No such file or directory (ENOENT)",
            "no such file",
        ),
        (
            &script,
            "No such file or directory (ENOENT)",
            "/nonexistent",
        ),
    ];
    for (runtime, errno, hint) in cases {
        let path = runtime.to_str().expect("utf-8");
        let up = sb.tool("cloon-run", &["--runtime", path], &doc);
        let out: Value = up.assert_error(STAGE, 100);
        let msg = out["error"]["msg"].as_str().unwrap_or_default();
        assert!(
            msg.contains(&format!("the runtime {path} cannot be executed: {errno}")),
            "{out}"
        );
        assert!(msg.contains(hint), "{out}");
        assert!(!msg.contains("127"), "{out}");
        assert!(up.stderr.contains(errno), "{}", up.stderr);
        assert!(out.get("container").is_none(), "{out}");
        assert_only_the_bundle_is_left(&sb, &name);
        assert_eq!(runtime_list(&sb, "crun", "/run/crun"), "");
    }
    // The same bundle runs with a runtime that works: nothing of the failures stood in the way.
    let up = sb.tool("cloon-run", &[], &doc);
    assert_eq!(up.status, 0, "{}{}", up.stdout, up.stderr);
    teardown(&sb, &up.stdout);
    sb.assert_clean(&[]);
}
