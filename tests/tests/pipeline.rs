//! The article's container, end to end: the five tools in one pipeline, on real kernel objects,
//! inside the sandbox; then the pipeline in reverse leaves nothing.
//!
//! Each test names its container after the article's (Cloon1, Cloon2, ...) made unique with
//! [`unique`]: crun names cgroups after the container, and cgroups are shared by all sandboxes.

use cloon_tests::{bookworm_image, sha256, unique, Sandbox};
use serde_json::Value;

/// The article's pipeline for container `name`, with `run_flags` for cloon-run; the document
/// goes to `NAME.json`.
fn up(name: &str, run_flags: &str) -> String {
    // runc cannot run a container without a cgroup of its own (cloon-spec's default, none).
    let spec_flags = if run_flags.contains("runc") {
        " --cgroups runtime"
    } else {
        ""
    };
    format!(
        "cloon-img create --busybox --force bb.img \
         | cloon-overlay --name {name} \
         | cloon-netns --netns cloonix_1_1 --veth vgt_1_1_0:eth0,addr=10.0.0.2/24 \
         | cloon-spec{spec_flags} \
         | cloon-run {run_flags} --root /run/crun > {name}.json"
    )
}

/// The pipeline in reverse, from `NAME.json`.
fn down(name: &str) -> String {
    format!(
        "cloon-run down < {name}.json | cloon-spec down | cloon-netns down | cloon-overlay down"
    )
}

fn in_dir(sb: &Sandbox, script: &str) -> String {
    format!("cd {} && {script}", sb.dir.display())
}

fn pipeline_up_and_down(sb: &Sandbox, name: &str, run_flags: &str) {
    sb.sh(&in_dir(sb, &up(name, run_flags))).ok();
    let file = sb.path(&format!("{name}.json"));
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&file).expect("NAME.json"))
        .expect("NAME.json is JSON");
    let keys: Vec<&String> = doc.as_object().expect("object").keys().collect();
    assert_eq!(
        keys,
        [
            "cloonVersion",
            "image",
            "name",
            "overlay",
            "netns",
            "bundle",
            "container"
        ]
    );
    // The bundle cloon-spec wrote is a valid OCI configuration.
    sb.assert_valid_config(&doc);
    assert_eq!(doc["container"]["status"], "running");
    let pid = doc["container"]["pid"].as_i64().expect("pid");
    assert!(sb.alive(pid), "the container's process {pid} is not alive");

    // The container sees its own eth0 with the address, and the sandbox reaches it through the veth.
    let addr = sb
        .sh(&format!("cloon-run exec {name} -- ip -o addr show eth0"))
        .ok();
    assert!(addr.contains("10.0.0.2/24"), "{addr}");
    assert_eq!(
        sb.sh(&format!("cloon-run exec {name} -- hostname"))
            .ok()
            .trim(),
        name
    );
    sb.sh("ip addr add 10.0.0.1/24 dev vgt_1_1_0 && busybox ping -c 1 -W 2 10.0.0.2")
        .ok();

    // Copy-on-write: the write lands in upper, the image is unchanged.
    let img = sb.path("bb.img");
    let sum = sha256(&img.to_string_lossy());
    sb.sh(&format!(
        "cloon-run exec {name} -- sh -c 'echo inside > /root/hello'"
    ))
    .ok();
    let upper = doc["overlay"]["upper"].as_str().expect("upper");
    assert_eq!(sb.sh(&format!("cat {upper}/root/hello")).ok(), "inside\n");
    assert_eq!(sha256(&img.to_string_lossy()), sum);

    let down = sb.sh(&in_dir(sb, &down(name)));
    let rest = down.json();
    assert_eq!(down.status, 0, "{}", down.stderr);
    let keys: Vec<&String> = rest.as_object().expect("object").keys().collect();
    assert_eq!(keys, ["cloonVersion", "image", "name"]);
}

#[test]
fn the_articles_pipeline_with_crun() {
    let Some(sb) = Sandbox::new("pipeline-crun") else {
        return;
    };
    let name = unique("Cloon1-");
    pipeline_up_and_down(&sb, &name, "");
    sb.assert_clean(&[]);
    // down is idempotent, also from the name alone.
    sb.sh(&in_dir(&sb, &down(&name))).ok();
    for tool in ["cloon-run", "cloon-spec", "cloon-netns", "cloon-overlay"] {
        sb.sh(&format!("{tool} down --name {name} </dev/null")).ok();
    }
    sb.assert_clean(&[]);
}

#[test]
fn the_articles_pipeline_with_runc() {
    let Some(sb) = Sandbox::new("pipeline-runc") else {
        return;
    };
    pipeline_up_and_down(&sb, &unique("Cloon2-"), "--runtime runc");
    sb.assert_clean(&[]);
}

#[test]
fn the_hosts_eth0_is_left_exactly_as_it_was() {
    let Some(sb) = Sandbox::new("pipeline-eth0") else {
        return;
    };
    let before = sb.add_eth0();
    let name = unique("Cloon3-");
    sb.sh(&in_dir(&sb, &up(&name, ""))).ok();
    assert_eq!(
        sb.eth0(),
        before,
        "the sandbox's own eth0 changed during up"
    );
    let inside = sb
        .sh(&format!("cloon-run exec {name} -- ip -o addr show eth0"))
        .ok();
    assert!(
        inside.contains("10.0.0.2/24") && !inside.contains("192.0.2.1"),
        "{inside}"
    );
    sb.sh(&in_dir(&sb, &down(&name))).ok();
    assert_eq!(
        sb.eth0(),
        before,
        "the sandbox's own eth0 changed during down"
    );
    sb.assert_clean(&["eth0"]);
}

#[test]
fn the_design_cards_short_pipeline_on_a_namespace_made_by_hand() {
    let Some(sb) = Sandbox::new("pipeline-short") else {
        return;
    };
    sb.sh("ip netns add cloonix_1_1 && ip -n cloonix_1_1 link add dummy0 type bridge")
        .ok();
    sb.sh(&in_dir(
        &sb,
        "cloon-img create --busybox bb.img </dev/null >/dev/null",
    ))
    .ok();
    let name = unique("Cloon4-");
    let up = in_dir(
        &sb,
        &format!("cloon-overlay --image bb.img --name {name} </dev/null | cloon-spec --netns cloonix_1_1 | cloon-run --root /run/crun > {name}.json"),
    );
    sb.sh(&up).ok();
    let links = sb.sh(&format!("cloon-run exec {name} -- ip -o link")).ok();
    assert!(links.contains("dummy0"), "{links}");
    sb.sh(&in_dir(
        &sb,
        &format!("cloon-run down < {name}.json | cloon-spec down | cloon-overlay down"),
    ))
    .ok();
    assert!(
        sb.sh("ip netns ls").ok().contains("cloonix_1_1"),
        "a namespace cloon did not make was removed"
    );
    sb.sh("ip netns del cloonix_1_1").ok();
    sb.assert_clean(&[]);
}

#[test]
fn the_first_error_reaches_the_end_of_the_pipeline() {
    let Some(sb) = Sandbox::new("pipeline-error") else {
        return;
    };
    let name = unique("Cloon5-");
    let script = in_dir(
        &sb,
        &format!(
            "cloon-img create --busybox bb.img \
             | cloon-overlay --name {name} \
             | cloon-netns --netns cloonix_1_1 --veth vgt_1_1_0_much_too_long:eth0 \
             | cloon-spec | cloon-run --root /run/crun"
        ),
    );
    let run = sb.sh(&script);
    let err = &run.assert_error("cloon-netns", 4)["error"];
    assert!(err["msg"].as_str().unwrap().contains("15"), "{err}");
    // cloon-netns made nothing; the overlay made before the failure comes down by name.
    sb.sh(&format!("cloon-overlay down --name {name} </dev/null"))
        .ok();
    sb.assert_clean(&[]);
}

/// The article's own image: Debian bookworm by debootstrap with its package list, run once.
/// Downloads about 100 MB from the host's Debian mirror.
#[test]
fn the_articles_bookworm_image_runs() {
    let Some(sb) = Sandbox::new("pipeline-bookworm") else {
        return;
    };
    let Some(img) = bookworm_image() else {
        return;
    };
    let name = unique("Cloon6-");
    let up = in_dir(
        &sb,
        &format!(
            "cloon-overlay --image {img} --name {name} </dev/null \
             | cloon-netns --netns cloonix_1_1 --veth vgt_1_1_0:eth0,addr=10.0.0.2/24 \
             | cloon-spec -- /usr/bin/tini -s -- sleep infinity \
             | cloon-run --root /run/crun > {name}.json",
            img = img.display()
        ),
    );
    sb.sh(&up).ok();
    let exec = |cmd: &str| sb.sh(&format!("cloon-run exec {name} -- {cmd}")).ok();
    assert!(exec("cat /etc/debian_version").starts_with("12."));
    for tool in ["tini", "tcpdump", "vim", "ssh", "ifconfig", "bash"] {
        exec(&format!("bash -c 'command -v {tool}'"));
    }
    let ifconfig = exec("ifconfig eth0");
    assert!(ifconfig.contains("10.0.0.2"), "{ifconfig}");
    sb.sh(&in_dir(&sb, &down(&name))).ok();
    sb.assert_clean(&[]);
}
