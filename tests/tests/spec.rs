//! cloon-spec on its own, as root inside a sandbox: the bundle it writes, what it refuses, and
//! that `down` leaves nothing.
//!
//! The root filesystem is a plain directory holding a static busybox, so these tests do not
//! depend on cloon-img or cloon-overlay.

use cloon_tests::{unique, Sandbox};
use serde_json::json;

const STAGE: &str = "cloon-spec";

fn exists(sb: &Sandbox, path: &str) -> bool {
    sb.sh(&format!("test -e {path}")).status == 0
}

#[test]
fn spec_up_writes_a_valid_bundle_and_down_removes_it() {
    let Some(sb) = Sandbox::new("spec-basic") else {
        return;
    };
    let rootfs = sb.busybox_rootfs();
    let name = unique("sb");
    let r = rootfs.to_str().unwrap();
    let run = sb.tool(
        "cloon-spec",
        &["--name", &name, "--rootfs", r, "--cap-add", "SYS_TIME"],
        "",
    );
    let out = run.json();
    assert_eq!(run.status, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(out["name"], name.as_str());
    assert_eq!(out["bundle"]["path"], format!("/run/cloon/{name}/bundle"));
    let (path, config) = sb.config_of(&out);
    assert_eq!(path, format!("/run/cloon/{name}/bundle/config.json"));
    sb.assert_valid_config(&out);
    assert_eq!(config["root"], json!({"path": r, "readonly": false}));
    assert_eq!(config["process"]["terminal"], false);
    assert_eq!(config["hostname"], name.as_str());
    assert_eq!(config["process"]["args"], json!(["sleep", "infinity"]));
    for set in ["bounding", "effective", "permitted", "ambient"] {
        let caps = config["process"]["capabilities"][set].as_array().unwrap();
        for cap in ["CAP_NET_RAW", "CAP_NET_ADMIN", "CAP_SYS_TIME", "CAP_KILL"] {
            assert!(caps.contains(&json!(cap)), "{set} lacks {cap}");
        }
    }
    assert_eq!(config["linux"]["namespaces"][1], json!({"type": "network"}));

    // check passes the document through; show prints the record.
    let checked = sb.tool("cloon-spec", &["check"], &run.stdout);
    assert_eq!(checked.ok(), run.stdout);
    let shown = sb.tool("cloon-spec", &["show", "--name", &name], "").json();
    assert_eq!(shown["config"], path.as_str());

    // A second up for the same name is refused and does not undo the first.
    let again = sb.tool("cloon-spec", &["--name", &name, "--rootfs", r], "");
    again.assert_error(STAGE, 101);
    assert!(exists(&sb, &path));

    let down = sb.tool("cloon-spec", &["down"], &run.stdout).json();
    assert!(down.get("bundle").is_none());
    assert_eq!(down["name"], name.as_str());
    assert!(!exists(&sb, &path));
    // Idempotent, with or without the document.
    sb.tool("cloon-spec", &["down"], &run.stdout).ok();
    sb.tool("cloon-spec", &["down", "--name", &name], "").ok();
    // The global --state-dir may come before the subcommand.
    let by_flag = sb.tool(
        "cloon-spec",
        &["--state-dir", "/run/cloon", "down", "--name", &name],
        "",
    );
    assert_eq!(by_flag.json()["name"], name.as_str());
    let gone = sb.tool("cloon-spec", &["check", "--name", &name], "");
    assert_eq!(gone.status, 3);
    sb.assert_clean(&[]);
}

#[test]
fn spec_takes_the_netns_and_rootfs_from_the_document() {
    let Some(sb) = Sandbox::new("spec-doc") else {
        return;
    };
    let rootfs = sb.busybox_rootfs();
    let name = unique("sd");
    let ns = unique("cloonspec");
    sb.sh(&format!("ip netns add {ns}")).ok();
    let doc = json!({
        "cloonVersion": "1",
        "name": name,
        "user": {"kept": [1, 2]},
        "overlay": {"loop": "/dev/loop99", "lower": "/l", "upper": "/u", "work": "/w",
                    "rootfs": rootfs.to_str().unwrap()},
        "netns": {"name": ns, "path": format!("/run/netns/{ns}"), "links": []}
    });
    let run = sb.tool(
        "cloon-spec",
        &["--", "sh", "-c", "sleep 1000"],
        &doc.to_string(),
    );
    let out = run.json();
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(out["user"], json!({"kept": [1, 2]}));
    let (_, config) = sb.config_of(&out);
    assert_eq!(config["root"]["path"], rootfs.to_str().unwrap());
    assert_eq!(
        config["linux"]["namespaces"][1],
        json!({"type": "network", "path": format!("/run/netns/{ns}")})
    );
    assert_eq!(config["process"]["args"], json!(["sh", "-c", "sleep 1000"]));
    sb.tool("cloon-spec", &["down"], &run.stdout).ok();

    // --netns NAME means /run/netns/NAME.
    let r = rootfs.to_str().unwrap();
    let run = sb.tool(
        "cloon-spec",
        &["--name", &name, "--rootfs", r, "--netns", &ns],
        "",
    );
    let (_, config) = sb.config_of(&run.json());
    assert_eq!(
        config["linux"]["namespaces"][1]["path"],
        format!("/run/netns/{ns}")
    );
    sb.tool("cloon-spec", &["down", "--name", &name], "").ok();
    sb.sh(&format!("ip netns delete {ns}")).ok();
    sb.assert_clean(&[]);
}

#[test]
fn spec_refusals_leave_nothing() {
    let Some(sb) = Sandbox::new("spec-refuse") else {
        return;
    };
    let rootfs = sb.busybox_rootfs();
    let name = unique("sr");
    let r = rootfs.to_str().unwrap();
    let host_dir = sb.dir.to_str().unwrap().to_string();
    let cases: Vec<(Vec<&str>, u64, &str)> = vec![
        (vec!["--", "bash"], 7, "\"bash\""),
        (vec!["--", "/usr/bin/sleep", "1"], 7, "/usr/bin/sleep"),
        (
            vec!["--netns", "cloon-missing-ns"],
            3,
            "/run/netns/cloon-missing-ns",
        ),
        (
            vec!["--cap-add", "NET_ADMINISTRATOR"],
            4,
            "unknown capability",
        ),
        (vec!["--env", "1X=y"], 4, "--env"),
        (vec!["--bind", "/nonexistent/cloon:/x"], 4, "does not exist"),
        (vec!["--bind", &host_dir], 4, "SRC:DST"),
        (vec!["--hostname", "a b"], 4, "hostname"),
    ];
    for (extra, code, words) in cases {
        let mut args = vec!["--name", name.as_str(), "--rootfs", r];
        args.extend(extra.iter().copied());
        let run = sb.tool("cloon-spec", &args, "");
        assert_eq!(run.status as u64, code, "{extra:?}: {}", run.stderr);
        let doc = run.assert_error(STAGE, code);
        let msg = doc["error"]["msg"].as_str().unwrap().to_string();
        assert!(msg.contains(words), "{extra:?}: {msg}");
        assert!(run.stderr.contains(&msg), "the message goes to stderr too");
        sb.assert_clean(&[]);
    }
    // An error document passes through untouched.
    sb.assert_error_passes_through(STAGE, &[], "cloon-overlay", 5);
    sb.assert_clean(&[]);
}
