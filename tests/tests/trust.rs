//! The trust promises of the state layer, on real kernel objects inside the sandbox: no link is
//! followed under the state directory, a state directory that is not private is refused, every
//! tool accepts the same names, and a pipeline that failed halfway is undone by its own error
//! document.

use cloon_tests::{unique, Sandbox};
use serde_json::Value;

fn in_dir(sb: &Sandbox, script: &str) -> String {
    format!("cd {} && {script}", sb.dir.display())
}

/// A root-owned file outside the state directory that a planted link points at, with its text.
fn victim(sb: &Sandbox) -> (String, &'static str) {
    let path = sb.path("victim").to_string_lossy().into_owned();
    std::fs::write(&path, "precious\n").expect("victim");
    (path, "precious\n")
}

fn assert_untouched(path: &str, text: &str) {
    assert_eq!(
        std::fs::read_to_string(path).unwrap_or_default(),
        text,
        "{path} was written through a planted link"
    );
}

#[test]
fn a_state_directory_another_user_can_write_is_refused_by_every_tool() {
    let Some(sb) = Sandbox::new("trust-mode") else {
        return;
    };
    let img = sb.busybox_image("bb.img");
    let rootfs = sb.busybox_rootfs();
    // Made by another user (nobody), open to all: links could be planted in it.
    sb.sh("mkdir -m 777 /run/shared-state && chown 65534 /run/shared-state")
        .ok();
    let state = "--state-dir=/run/shared-state";
    let rootfs_flag = format!("--rootfs={}", rootfs.display());
    for (tool, args) in [
        (
            "cloon-overlay",
            vec![state, "--image", img.as_str(), "--name", "C"],
        ),
        ("cloon-netns", vec![state, "--netns", "n1", "--name", "C"]),
        (
            "cloon-spec",
            vec![state, "--name", "C", rootfs_flag.as_str()],
        ),
        ("cloon-run", vec![state, "down", "--name", "C"]),
        ("cloon-overlay", vec![state, "gc"]),
        ("cloon-spec", vec![state, "gc"]),
    ] {
        let run = sb.tool(tool, &args, "");
        let doc = run.assert_error(tool, 7);
        let msg = doc["error"]["msg"].as_str().unwrap_or_default();
        assert!(
            msg.contains("/run/shared-state") && msg.contains("0700"),
            "{tool}: {msg}"
        );
    }
    let left = sb.sh("ls -A /run/shared-state").ok();
    assert!(left.is_empty(), "a refused tool made {left}");
    sb.sh("rmdir /run/shared-state").ok();
    sb.assert_clean(&[]);
}

#[test]
fn no_tool_follows_a_link_planted_under_the_state_directory() {
    let Some(sb) = Sandbox::new("trust-links") else {
        return;
    };
    let (victim, text) = victim(&sb);
    let img = sb.busybox_image("bb.img");
    let rootfs = sb.busybox_rootfs();
    // A directory that looks like a container's: a link at STATE/C makes a tool act on its target.
    let decoy = sb.path("decoy");
    for d in ["bundle", "overlay/upper"] {
        std::fs::create_dir_all(decoy.join(d)).expect("decoy");
    }
    std::fs::write(decoy.join("bundle/config.json"), "{}").expect("decoy");
    std::fs::write(decoy.join("overlay/upper/data"), "data").expect("decoy");
    std::fs::write(decoy.join("container.log"), "log").expect("decoy");
    sb.sh(&format!(
        "mkdir -m 700 -p /run/cloon && ln -s {} /run/cloon/C",
        decoy.display()
    ))
    .ok();
    let rootfs_flag = format!("--rootfs={}", rootfs.display());
    for (tool, args) in [
        ("cloon-spec", vec!["down", "--name", "C"]),
        ("cloon-overlay", vec!["down", "--name", "C"]),
        ("cloon-run", vec!["down", "--name", "C"]),
        ("cloon-netns", vec!["down", "--name", "C"]),
        ("cloon-spec", vec!["--name", "C", rootfs_flag.as_str()]),
        (
            "cloon-overlay",
            vec!["--image", img.as_str(), "--name", "C"],
        ),
    ] {
        let run = sb.tool(tool, &args, "");
        let doc = run.assert_error(tool, 7);
        assert!(
            doc["error"]["msg"]
                .as_str()
                .unwrap_or_default()
                .contains("link"),
            "{tool}: {doc}"
        );
    }
    for tool in ["cloon-overlay", "cloon-spec", "cloon-run", "cloon-netns"] {
        let run = sb.tool(tool, &["gc"], "");
        assert_eq!(run.status, 0, "{tool} gc: {}", run.stderr);
        assert!(
            !run.stdout.contains("\"removed\": true"),
            "{tool} gc removed something: {}",
            run.stdout
        );
    }
    for f in ["bundle/config.json", "overlay/upper/data", "container.log"] {
        assert!(decoy.join(f).exists(), "{f} behind the link was removed");
    }
    sb.sh("rm /run/cloon/C").ok();

    // Links planted where a record, a shared lower's record or a log goes.
    sb.sh(&format!(
        "mkdir -m 700 /run/cloon/D && ln -s {victim} /run/cloon/D/container.log \
         && ln -s {victim} /run/cloon/D/spec.json"
    ))
    .ok();
    let bundle = sb.tool(
        "cloon-spec",
        &["--name", "D", &rootfs_flag, "--", "sleep", "60"],
        "",
    );
    bundle.assert_error("cloon-spec", 101);
    assert_untouched(&victim, text);
    sb.sh("rm -r /run/cloon/D").ok();
    let spec = sb
        .tool(
            "cloon-spec",
            &["--name", "D", &rootfs_flag, "--", "sleep", "60"],
            "",
        )
        .ok();
    sb.sh(&format!("ln -s {victim} /run/cloon/D/container.log"))
        .ok();
    let run = sb.tool("cloon-run", &["--root", "/run/crun"], &spec);
    let doc = run.assert_error("cloon-run", 7);
    assert!(
        doc["error"]["msg"]
            .as_str()
            .unwrap_or_default()
            .contains("container.log"),
        "{doc}"
    );
    assert_untouched(&victim, text);
    sb.sh("rm /run/cloon/D/container.log").ok();
    sb.tool("cloon-spec", &["down"], &spec).ok();

    let lowers = "/run/cloon/.lowers";
    sb.sh(&format!("mkdir -m 700 -p {lowers}")).ok();
    let key = sb.sh(&format!("stat -c %d-%i {img}")).ok();
    sb.sh(&format!("ln -s {victim} {lowers}/{}.json", key.trim()))
        .ok();
    let run = sb.tool("cloon-overlay", &["--image", &img, "--name", "E"], "");
    run.assert_error("cloon-overlay", 7);
    assert_untouched(&victim, text);
    sb.sh(&format!("rm -r {lowers}")).ok();
    sb.assert_clean(&[]);
}

#[test]
fn container_logs_are_private() {
    let Some(sb) = Sandbox::new("trust-log") else {
        return;
    };
    let rootfs = sb.busybox_rootfs();
    let name = unique("Log");
    let rootfs_flag = format!("--rootfs={}", rootfs.display());
    let spec = sb
        .tool(
            "cloon-spec",
            &["--name", &name, &rootfs_flag, "--", "sleep", "60"],
            "",
        )
        .ok();
    let doc = sb.tool("cloon-run", &["--root", "/run/crun"], &spec).ok();
    let mode = sb
        .sh(&format!("stat -c %a /run/cloon/{name}/container.log"))
        .ok();
    assert_eq!(mode.trim(), "600");
    sb.sh(&format!(
        "cloon-run down <<'EOF' | cloon-spec down\n{doc}\nEOF"
    ))
    .ok();
    sb.assert_clean(&[]);
}

#[test]
fn every_tool_accepts_the_articles_namespace_name_as_a_container_name() {
    let Some(sb) = Sandbox::new("trust-names") else {
        return;
    };
    // cloonix_1_1, with a unique tail: cgroups are named after containers, host-wide.
    let name = format!("cloonix_1_{}", std::process::id());
    let script = in_dir(
        &sb,
        &format!(
            "cloon-img create --busybox bb.img \
             | cloon-overlay --name {name} \
             | cloon-netns --netns {name} --veth v{}:eth0 \
             | cloon-spec --explain 2>spec.err \
             | cloon-run --root /run/crun > c.json",
            std::process::id() % 100_000
        ),
    );
    sb.sh(&script).ok();
    let explained = std::fs::read_to_string(sb.path("spec.err")).unwrap_or_default();
    let hostname = name.replace('_', "-");
    assert!(
        explained.contains(&format!("the hostname is \"{hostname}\"")),
        "{explained}"
    );
    let inside = sb.sh(&format!("cloon-run exec {name} -- hostname")).ok();
    assert_eq!(inside.trim(), hostname);
    sb.sh(&in_dir(
        &sb,
        "cloon-run down < c.json | cloon-spec down | cloon-netns down | cloon-overlay down",
    ))
    .ok();
    // An explicit hostname that is not one is still refused.
    let rootfs = sb.busybox_rootfs();
    let run = sb.tool(
        "cloon-spec",
        &[
            "--name",
            "a_b",
            "--rootfs",
            &rootfs.to_string_lossy(),
            "--hostname",
            "a_b",
        ],
        "",
    );
    run.assert_error("cloon-spec", 4);
    sb.assert_clean(&[]);
}

#[test]
fn a_pipeline_that_failed_halfway_is_undone_by_its_own_error_document() {
    let Some(sb) = Sandbox::new("trust-halfway") else {
        return;
    };
    let name = unique("Half");
    // The host end's name is taken: cloon-netns fails after cloon-overlay succeeded.
    sb.sh(&cloon_tests::add_standalone("taken0")).ok();
    let pipeline = format!(
        "cloon-img create --busybox --force bb.img \
         | cloon-overlay --name {name} \
         | cloon-netns --netns {name} --veth taken0:eth0 \
         | cloon-spec | cloon-run --root /run/crun > half.json"
    );
    let run = sb.sh(&in_dir(&sb, &pipeline));
    assert_ne!(run.status, 0);
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(sb.path("half.json")).expect("half.json"))
            .expect("JSON");
    assert_eq!(doc["name"], name.as_str(), "{doc}");
    assert_eq!(doc["error"]["stage"], "cloon-netns", "{doc}");
    assert!(doc["overlay"]["rootfs"].is_string(), "{doc}");
    assert!(doc["image"]["path"].is_string(), "{doc}");
    assert!(doc.get("netns").is_none(), "{doc}");
    let mounted = sb.sh("findmnt -rn -t overlay -o TARGET").ok();
    assert!(!mounted.is_empty(), "the overlay made before the failure");

    // The same teardown pipeline undoes it, and exits 0.
    let teardown = "cloon-run down < half.json | cloon-spec down | cloon-netns down \
                    | cloon-overlay down > after.json";
    sb.sh(&in_dir(&sb, teardown)).ok();
    let after: Value =
        serde_json::from_str(&std::fs::read_to_string(sb.path("after.json")).expect("after.json"))
            .expect("JSON");
    assert!(after.get("overlay").is_none(), "{after}");
    assert_eq!(
        after["error"]["stage"], "cloon-netns",
        "the error is kept: {after}"
    );
    sb.assert_clean(&["taken0"]);

    // And the pipeline runs again with a free name.
    let again = pipeline.replace("taken0:", "free0:");
    sb.sh(&in_dir(&sb, &again)).ok();
    sb.sh(&in_dir(
        &sb,
        "cloon-run down < half.json | cloon-spec down | cloon-netns down | cloon-overlay down",
    ))
    .ok();
    sb.assert_clean(&["taken0"]);
}
