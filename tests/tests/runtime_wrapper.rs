//! Any OCI runtime given by its path works: a shell script that logs its arguments and execs runc
//! (its path with a space in it) runs the article's pipeline, and the log shows every runtime
//! command cloon-run gave it, with the `--root` asked for.

use cloon_tests::{unique, Sandbox};
use std::os::unix::fs::PermissionsExt;

#[test]
fn a_wrapper_script_at_a_path_runs_the_pipeline() {
    let Some(sb) = Sandbox::new("runtime-wrapper") else {
        return;
    };
    let dir = sb.path("my runtimes");
    std::fs::create_dir(&dir).expect("dir");
    let log = sb.path("runtime.log");
    let wrapper = dir.join("logged-runc");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\nexec runc \"$@\"\n",
            log.display()
        ),
    )
    .expect("wrapper");
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let name = unique("Wrap1-");
    let root = "/run/logged";
    // The sandbox deletes the containers of crun's and runc's own roots; this one's too.
    struct Cleanup<'a>(&'a Sandbox, String);
    impl Drop for Cleanup<'_> {
        fn drop(&mut self) {
            let _ = self.0.sh(&format!(
                "runc --root /run/logged delete -f {} 2>/dev/null; true",
                self.1
            ));
        }
    }
    let _cleanup = Cleanup(&sb, name.clone());
    // The default bundle has no cgroup of its own (crun's --cgroup-manager=disabled), which
    // runc does not take: the error says so and what to do, and leaves nothing.
    let refused = sb.sh(&format!(
        "cd {} && cloon-img create --busybox bb0.img | cloon-overlay --name {name} \
         | cloon-spec | cloon-run --runtime '{}' --root {root} > refused.json; \
         cloon-run down < refused.json | cloon-spec down | cloon-overlay down >/dev/null",
        sb.dir.display(),
        wrapper.display()
    ));
    assert!(
        refused
            .stderr
            .contains("does not take crun's --cgroup-manager=disabled")
            && refused.stderr.contains("cloon-spec --cgroups runtime"),
        "{}",
        refused.stderr
    );
    let up = format!(
        "cd {} && cloon-img create --busybox bb.img | cloon-overlay --name {name} \
         | cloon-netns --netns cloonix_1_1 --veth vgt_1_1_0:eth0,addr=10.0.0.2/24 \
         | cloon-spec --cgroups runtime | cloon-run --runtime '{}' --root {root} > {name}.json",
        sb.dir.display(),
        wrapper.display()
    );
    sb.sh(&up).ok();
    let doc: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(sb.path(&format!("{name}.json"))).expect("doc"),
    )
    .expect("JSON");
    assert_eq!(
        doc["container"]["runtime"],
        wrapper.to_str().expect("utf-8")
    );
    assert_eq!(doc["container"]["root"], root);
    assert_eq!(doc["container"]["status"], "running");
    let host = sb.sh(&format!("cloon-run exec {name} -- hostname")).ok();
    assert_eq!(host.trim(), name);
    let listed = sb.sh("cloon-run list").ok();
    assert!(listed.contains("\"status\": \"running\""), "{listed}");
    sb.sh(&format!(
        "cd {} && cloon-run down < {name}.json | cloon-spec down | cloon-netns down | cloon-overlay down",
        sb.dir.display()
    ))
    .ok();
    let said = std::fs::read_to_string(&log).expect("the wrapper's log");
    for verb in [
        format!("--root {root} create --bundle /run/cloon/{name}/bundle --pid-file /run/cloon/{name}/container.pid {name}"),
        format!("--root {root} start {name}"),
        // By `cloon-run list`.
        format!("--root {root} state {name}"),
        // In the container's working directory (the bundle's process.cwd, / here).
        format!("--root {root} exec --cwd / {name} hostname"),
        format!("--root {root} kill {name} KILL"),
        format!("--root {root} delete {name}"),
    ] {
        assert!(said.lines().any(|l| l == verb), "no `{verb}` in:\n{said}");
    }
    assert!(
        said.lines()
            .all(|l| l.starts_with(&format!("--root {root} "))),
        "{said}"
    );
    assert_eq!(sb.sh(&format!("runc --root {root} list -q")).ok(), "");
    sb.assert_clean(&[]);
}
