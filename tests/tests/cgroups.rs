//! The three cgroup modes of `cloon-spec --cgroups`, on real containers: where the container's
//! processes are (read from /proc/PID/cgroup), what `down` leaves (no process, no cgroup, no pid
//! namespace), runc refused without a cgroup, a lab's containers under one parent, and `up` and
//! `down` racing in one state directory over its parent cgroup.

use cloon_tests::{unique, Sandbox};
use std::path::Path;

/// The pids controller's line of /proc/PID/cgroup in the sandbox (`/` for the root).
fn pids_cgroup(sb: &Sandbox, pid: &str) -> String {
    sb.sh(&format!(
        "sed -n 's/^[0-9]*:pids://p; s/^0::\\(.*\\)/\\1/p' /proc/{pid}/cgroup | head -n 1"
    ))
    .ok()
    .trim()
    .to_string()
}

/// The pids hierarchy's directory of the cgroup `rel` (absolute, from its root), v1 or v2.
fn pids_dir(rel: &str) -> String {
    let v1 = Path::new("/sys/fs/cgroup/pids");
    let base = if v1.is_dir() {
        v1
    } else {
        Path::new("/sys/fs/cgroup")
    };
    format!("{}{rel}", base.display())
}

/// `cloon-spec --cgroups mode` of a container of `rootfs` in `state`: its document.
fn spec(sb: &Sandbox, state: &str, rootfs: &Path, name: &str, mode: &str) -> String {
    sb.tool(
        "cloon-spec",
        &[
            "--state-dir",
            state,
            "--name",
            name,
            "--rootfs",
            rootfs.to_str().expect("utf-8"),
            "--cgroups",
            mode,
        ],
        "",
    )
    .ok()
}

/// Brings up a container of `rootfs` with `--cgroups mode` in `state`; its document.
fn up(sb: &Sandbox, state: &str, rootfs: &Path, name: &str, mode: &str) -> serde_json::Value {
    let spec = spec(sb, state, rootfs, name, mode);
    sb.tool("cloon-run", &["--state-dir", state], &spec).json()
}

/// Brings down what [`up`] made.
fn down(sb: &Sandbox, state: &str, doc: &serde_json::Value) {
    let d = sb
        .tool(
            "cloon-run",
            &["down", "--state-dir", state],
            &doc.to_string(),
        )
        .ok();
    sb.tool("cloon-spec", &["down", "--state-dir", state], &d)
        .ok();
}

#[test]
fn each_mode_puts_the_container_where_it_says_and_down_leaves_nothing() {
    let Some(sb) = Sandbox::new("cgroups-modes") else {
        return;
    };
    let rootfs = sb.busybox_rootfs();
    let state = "/run/cgroups lab";
    let own = pids_cgroup(&sb, "self");
    for mode in ["none", "cloon", "runtime"] {
        let name = unique(&format!("cg{mode}"));
        let doc = up(&sb, state, &rootfs, &name, mode);
        assert_eq!(doc["container"]["status"], "running", "{mode}: {doc}");
        let pid = doc["container"]["pid"].as_i64().expect("pid").to_string();
        let (_, config) = sb.config_of(&doc);
        assert_eq!(config["annotations"]["org.cloon.cgroups"], mode);
        let cgroup = pids_cgroup(&sb, &pid);
        let pidns = sb.sh(&format!("readlink /proc/{pid}/ns/pid")).ok();
        let expected_dir = match mode {
            // The caller's own cgroup: crun made none.
            "none" => {
                assert_eq!(cgroup, own, "none: the container is in the caller's cgroup");
                assert!(config["linux"].get("cgroupsPath").is_none(), "{config}");
                None
            }
            "cloon" => {
                let path = config["linux"]["cgroupsPath"]
                    .as_str()
                    .expect("cgroupsPath");
                assert_eq!(cgroup, path);
                let parts: Vec<&str> = path.split('/').collect();
                assert_eq!(
                    (parts[1], parts[2].len(), parts[3]),
                    ("cloon", 16, name.as_str())
                );
                Some(pids_dir(&format!("/cloon/{}", parts[2])))
            }
            _ => {
                assert!(config["linux"].get("cgroupsPath").is_none(), "{config}");
                assert_eq!(cgroup, format!("/{name}"), "crun's default: /NAME");
                Some(pids_dir(&cgroup))
            }
        };
        if let Some(dir) = &expected_dir {
            assert!(Path::new(dir).is_dir(), "{mode}: {dir} while it runs");
        }
        let record = sb
            .tool(
                "cloon-run",
                &["show", "--state-dir", state, "--name", &name],
                "",
            )
            .json();
        assert_eq!(record["cgroups"], mode);

        down(&sb, state, &doc);
        assert!(
            !sb.alive(pid.parse().expect("pid")),
            "{mode}: process {pid} left"
        );
        if let Some(dir) = &expected_dir {
            assert!(!Path::new(dir).exists(), "{mode}: {dir} left by down");
        }
        // No process of the sandbox is left in the container's pid namespace. The container's
        // first process may still be a zombie for a moment after down, until its parent (the
        // sandbox's init here, the host's init or a subreaper elsewhere) reaps it: wait for that.
        let left = sb
            .sh(&format!(
                "for _ in $(seq 50); do left=''; \
                   for p in /proc/[0-9]*; do \
                     [ \"$(readlink $p/ns/pid 2>/dev/null)\" = '{}' ] \
                       && left=\"$left $p:$(sed -n 's/^State:\\s*//p' $p/status 2>/dev/null)\"; \
                   done; \
                   [ -z \"$left\" ] && break; sleep 0.1; \
                 done; echo \"$left\"",
                pidns.trim()
            ))
            .ok();
        assert_eq!(
            left.trim(),
            "",
            "{mode}: processes left in its pid namespace"
        );
    }
    sb.assert_clean(&[]);
}

#[test]
fn runc_without_cgroups_is_refused_and_nothing_is_left() {
    let Some(sb) = Sandbox::new("cgroups-runc") else {
        return;
    };
    let rootfs = sb.busybox_rootfs();
    let name = unique("cgrunc");
    let spec = sb
        .tool(
            "cloon-spec",
            &["--name", &name, "--rootfs", rootfs.to_str().expect("utf-8")],
            "",
        )
        .ok();
    let run = sb.tool("cloon-run", &["--runtime", "runc"], &spec);
    assert_ne!(run.status, 0);
    assert!(
        run.stderr.contains("--cgroups cloon") && run.stderr.contains("crun"),
        "{}",
        run.stderr
    );
    assert_eq!(sb.sh("runc --root /run/runc list -q").ok().trim(), "");
    assert!(!Path::new(&format!("/run/cloon/{name}/run.json")).exists());
    sb.tool("cloon-run", &["down"], &run.stdout).ok();
    sb.tool("cloon-spec", &["down", "--name", &name], "").ok();
    sb.assert_clean(&[]);
}

#[test]
fn a_labs_containers_share_one_parent_that_goes_with_the_lab() {
    let Some(sb) = Sandbox::new("cgroups-lab") else {
        return;
    };
    let lab = unique("cgl");
    let file = sb.path("lab.clab.yml");
    std::fs::write(
        &file,
        format!(
            "name: {lab}\ntopology:\n  defaults: {{kind: linux, image: busybox}}\n  nodes:\n    a:\n    b:\n  links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n"
        ),
    )
    .expect("write");
    let file = file.display().to_string();
    let cache = sb.path("cache").display().to_string();
    let lab_cmd = |verb: &str, extra: &[&str]| {
        let mut args = vec![verb, "--cache-dir", &cache];
        args.extend(extra);
        args.push(&file);
        sb.tool("cloon-lab", &args, "")
    };
    lab_cmd("up", &["--cgroups", "cloon", "--quiet"]).ok();
    let mut parents = Vec::new();
    for node in ["a", "b"] {
        let name = format!("{lab}-{node}");
        let rec = sb
            .tool(
                "cloon-run",
                &[
                    "show",
                    "--state-dir",
                    &format!("/run/cloon/labs/{lab}"),
                    "--name",
                    &name,
                ],
                "",
            )
            .json();
        let pid = rec["pid"].as_i64().expect("pid").to_string();
        let cgroup = pids_cgroup(&sb, &pid);
        assert!(cgroup.ends_with(&format!("/{name}")), "{cgroup}");
        parents.push(cgroup.trim_end_matches(&format!("/{name}")).to_string());
    }
    assert_eq!(parents[0], parents[1], "one parent for the lab");
    // The lab's processes, read as one.
    let procs = sb
        .sh(&format!(
            "cat {}/*/cgroup.procs | wc -l",
            pids_dir(&parents[0])
        ))
        .ok();
    assert!(
        procs.trim().parse::<u32>().expect("a count") >= 2,
        "{procs}"
    );
    lab_cmd("down", &["--quiet"]).ok();
    assert!(
        !Path::new(&pids_dir(&parents[0])).exists(),
        "the lab's parent cgroup is left"
    );
    sb.assert_clean(&[]);
}

#[test]
fn ups_and_downs_racing_in_one_state_directory_all_succeed() {
    let Some(sb) = Sandbox::new("cgroups-race") else {
        return;
    };
    let rootfs = sb.busybox_rootfs();
    let state = "/run/cgrace";
    let id = parent_id(&sb, &rootfs, state);
    // Two containers of one state directory, each brought up and down in a loop, at once: a
    // down that empties the parent cgroup must not remove it under the other's create.
    let mut loops = Vec::new();
    for tag in ["a", "b"] {
        let name = unique(&format!("cgr{tag}"));
        let spec = spec(&sb, state, &rootfs, &name, "cloon");
        let doc = sb.path(&format!("{tag}.json"));
        std::fs::write(&doc, spec).expect("write");
        loops.push(format!(
            "(for i in $(seq ${{CG_RACE_ROUNDS:-12}}); do cloon-run --state-dir {state} < {d} > {d}.up || exit 1; \
             cloon-run down --state-dir {state} < {d}.up > /dev/null || exit 1; done)",
            d = doc.display()
        ));
    }
    sb.sh(&format!(
        "{} & a=$!; {} & b=$!; wait $a && wait $b",
        loops[0], loops[1]
    ))
    .ok();
    for tag in ["a", "b"] {
        let doc = std::fs::read_to_string(sb.path(&format!("{tag}.json"))).expect("write");
        sb.tool("cloon-spec", &["down", "--state-dir", state], &doc)
            .ok();
    }
    // Other sandboxes' parents may exist at the same time; this one's must not.
    let left = sb
        .sh("ls -d /sys/fs/cgroup/*/cloon/*/ 2>/dev/null; true")
        .ok();
    assert!(!left.contains(&id), "parent {id} left: {left}");
    sb.assert_clean(&[]);
}

/// The ID of the state directory `state`'s parent cgroup, as cloon-spec writes it.
fn parent_id(sb: &Sandbox, rootfs: &Path, state: &str) -> String {
    let name = unique("cgid");
    let spec = serde_json::from_str::<serde_json::Value>(&spec(sb, state, rootfs, &name, "cloon"))
        .expect("a document");
    let (_, config) = sb.config_of(&spec);
    sb.tool(
        "cloon-spec",
        &["down", "--state-dir", state],
        &spec.to_string(),
    )
    .ok();
    config["linux"]["cgroupsPath"]
        .as_str()
        .expect("cgroupsPath")
        .split('/')
        .nth(2)
        .expect("ID")
        .to_string()
}
