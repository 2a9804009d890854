//! Several state directories at once, in one sandbox: one nested in another, one beside them,
//! one with a space in its path. A tool acts only on its own state directory: kill trials, `gc`
//! and concurrent pipelines in one leave the others' containers, links and data whole.

use cloon_tests::{unique, Sandbox, Seeded};
use std::time::Duration;

/// The state directories: `outer`, one nested in it whose path has a space, one beside them.
const OUTER: &str = "/run/labs";
const NESTED: &str = "/run/labs/my lab";
const SIBLING: &str = "/run/labs2";

/// A shell word for `dir`.
fn q(dir: &str) -> String {
    format!("'{dir}'")
}

/// The whole pipeline for container `name` in state directory `dir`, its document in `out`;
/// `n` makes its namespace and interface names unique in the sandbox.
fn pipeline(dir: &str, name: &str, n: usize, out: &str) -> String {
    format!(
        "export CLOON_STATE_DIR={d}; cloon-overlay --image bb.img --name {name} </dev/null \
         | cloon-netns --netns ns{n} --veth h{n}:eth0,addr=10.0.{n}.2/24,host-addr=10.0.{n}.1/24 \
         | cloon-spec | cloon-run --root /run/crun > {out}",
        d = q(dir)
    )
}

fn teardown(dir: &str, doc: &str) -> String {
    format!(
        "export CLOON_STATE_DIR={d}; cloon-run down < {doc} | cloon-spec down | cloon-netns down \
         | cloon-overlay down >/dev/null",
        d = q(dir)
    )
}

/// Every tool's `check` of `name` in `dir` passes, and its data is there.
fn assert_whole(sb: &Sandbox, dir: &str, name: &str, what: &str) {
    for tool in ["cloon-overlay", "cloon-netns", "cloon-spec", "cloon-run"] {
        let run = sb.tool(tool, &["--state-dir", dir, "check", "--name", name], "");
        assert_eq!(
            run.status, 0,
            "{what}: {tool} check of {name} in {dir}: {}{}",
            run.stdout, run.stderr
        );
    }
    let data = sb
        .sh(&format!("cat {}/{name}/overlay/upper/data", q(dir)))
        .ok();
    assert_eq!(data, "kept\n", "{what}: the data of {name} in {dir}");
}

fn in_dir(sb: &Sandbox, script: &str) -> String {
    format!("cd {} && {script}", sb.dir.display())
}

/// Brings up a container in each of `dirs`, with data in its upper layer.
fn bring_up(sb: &Sandbox, dirs: &[(&str, &str)]) {
    for (n, (dir, name)) in dirs.iter().enumerate() {
        sb.sh(&in_dir(
            sb,
            &pipeline(dir, name, n + 1, &format!("{n}.json")),
        ))
        .ok();
        sb.sh(&format!(
            "echo kept > {}/{name}/overlay/rootfs/data",
            q(dir)
        ))
        .ok();
    }
}

fn bring_down(sb: &Sandbox, dirs: &[(&str, &str)]) {
    for (n, (dir, _)) in dirs.iter().enumerate() {
        sb.sh(&in_dir(sb, &teardown(dir, &format!("{n}.json"))))
            .ok();
    }
}

fn gc_all(sb: &Sandbox, dir: &str) -> Vec<String> {
    let mut reports = Vec::new();
    for tool in ["cloon-run", "cloon-spec", "cloon-netns", "cloon-overlay"] {
        let run = sb.tool(tool, &["--state-dir", dir, "gc"], "");
        assert_eq!(
            run.status, 0,
            "{tool} gc of {dir}: {}{}",
            run.stdout, run.stderr
        );
        reports.push(run.stdout);
    }
    reports
}

#[test]
fn gc_of_a_state_directory_leaves_the_nested_and_the_sibling_ones_whole() {
    let Some(sb) = Sandbox::new("dirs-gc") else {
        return;
    };
    sb.busybox_image("bb.img");
    let dirs = [
        (OUTER, unique("Out")),
        (NESTED, unique("In")),
        (SIBLING, unique("Sib")),
    ];
    let dirs: Vec<(&str, &str)> = dirs.iter().map(|(d, n)| (*d, n.as_str())).collect();
    bring_up(&sb, &dirs);
    for (dir, _) in &dirs {
        for report in gc_all(&sb, dir) {
            assert!(
                !report.contains("\"removed\": true"),
                "gc of {dir} removed something: {report}"
            );
        }
        for (other, name) in &dirs {
            assert_whole(&sb, other, name, &format!("after gc of {dir}"));
        }
    }
    // The nested directory is no container of the outer one: nothing of it is found.
    let report = sb
        .tool("cloon-overlay", &["--state-dir", OUTER, "gc"], "")
        .ok();
    let report: serde_json::Value = serde_json::from_str(&report).expect("JSON");
    assert!(!report["found"].to_string().contains("my lab"), "{report}");
    bring_down(&sb, &dirs);
    for (dir, _) in &dirs {
        let left = sb
            .sh(&format!("ls -A {} | grep -vx .cloon-state; true", q(dir)))
            .ok();
        assert!(
            left.trim().is_empty() || left.trim() == "my lab",
            "{dir}: {left}"
        );
    }
    sb.sh(&format!("rm -r {} {}", q(OUTER), q(SIBLING))).ok();
    sb.assert_clean(&[]);
}

#[test]
fn a_pipeline_killed_at_any_moment_in_one_state_directory_leaves_the_others_whole() {
    let Some(sb) = Sandbox::new("dirs-kill") else {
        return;
    };
    sb.busybox_image("bb.img");
    let whole = [(NESTED, unique("In")), (SIBLING, unique("Sib"))];
    let whole: Vec<(&str, &str)> = whole.iter().map(|(d, n)| (*d, n.as_str())).collect();
    bring_up(&sb, &whole);
    let victim = unique("K");
    let mut rng = Seeded(0x5eed_d1e5);
    let mut interrupted = 0;
    // The pipeline, in a session of its own whose id it writes down first (so that its whole
    // process group can be killed at once, as a Ctrl-C or a kill of the shell's group would).
    let spawn = || {
        let script = in_dir(&sb, &pipeline(OUTER, &victim, 9, "k.json"));
        sb.cmd("setsid")
            .args(["sh", "-c", &format!("echo $$ > /run/victim.sid; {script}")])
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    cloon_tests::bin_dir().display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            )
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn")
    };
    // When the pipeline's shell has started, as this test sees it (polling takes a few
    // milliseconds, so the kills below are timed from the same moment as the span).
    let started = || {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while sb.sh("test -s /run/victim.sid && echo yes; true").ok() != "yes\n" {
            assert!(
                std::time::Instant::now() < deadline,
                "the pipeline never started"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        std::time::Instant::now()
    };
    // How long the pipeline takes here, run once to its end, from the moment it is seen to
    // start: the kills are picked within it (between a tenth and nine tenths of it), so that
    // most of them interrupt it, on a fast machine as on a loaded one.
    let mut child = spawn();
    let seen = started();
    let _ = child.wait();
    let span_us = u64::try_from(seen.elapsed().as_micros())
        .unwrap_or(u64::MAX)
        .max(10);
    sb.sh("rm -f /run/victim.sid").ok();
    sb.sh(&in_dir(&sb, &teardown(OUTER, "k.json"))).ok();
    for trial in 0..12 {
        // The whole pipeline in the outer directory, killed after a seeded delay within it.
        let delay = Duration::from_micros(span_us / 10 + rng.draw() % (span_us * 8 / 10));
        let mut child = spawn();
        // Then its process group (the shell and every tool of the pipeline) is killed at once.
        // A runtime command cloon-run's guardian runs, in a group of its own, is left to end.
        started();
        std::thread::sleep(delay);
        sb.sh("kill -9 -$(cat /run/victim.sid) 2>/dev/null; rm -f /run/victim.sid; true")
            .ok();
        cloon_tests::kill_tool(&mut child);
        // Let a runtime command cloon-run's guardian finishes end, then down and gc.
        sb.sh(&format!(
            "(exec 9< {}/{victim} && flock 9) 2>/dev/null; true",
            q(OUTER)
        ))
        .ok();
        // Interrupted: the pipeline made something, and did not finish.
        let made = sb
            .sh(&format!("test -d {}/{victim} && echo made; true", q(OUTER)))
            .ok();
        let finished = sb.sh(&in_dir(
            &sb,
            "test -s k.json && echo done; rm -f k.json; true",
        ));
        if made == "made\n" && finished.stdout != "done\n" {
            interrupted += 1;
        }
        for tool in ["cloon-run", "cloon-spec", "cloon-netns", "cloon-overlay"] {
            let run = sb.tool(tool, &["--state-dir", OUTER, "down", "--name", &victim], "");
            assert_eq!(run.status, 0, "trial {trial}: {tool} down: {}", run.stderr);
        }
        gc_all(&sb, OUTER);
        let left = sb
            .sh(&format!(
                "ls -A {} | grep -v -x -e .cloon-state -e 'my lab'; true",
                q(OUTER)
            ))
            .ok();
        assert!(
            left.trim().is_empty(),
            "trial {trial} after {delay:?}: {left}"
        );
        for (dir, name) in &whole {
            assert_whole(&sb, dir, name, &format!("trial {trial} after {delay:?}"));
        }
    }
    assert!(
        interrupted >= 4,
        "only {interrupted} of 12 trials interrupted the pipeline halfway"
    );
    bring_down(&sb, &whole);
    sb.sh(&format!("rm -r {} {}", q(OUTER), q(SIBLING))).ok();
    sb.assert_clean(&[]);
}

#[test]
fn pipelines_and_gc_in_three_state_directories_at_once() {
    let Some(sb) = Sandbox::new("dirs-race") else {
        return;
    };
    sb.busybox_image("bb.img");
    let dirs = [OUTER, NESTED, SIBLING];
    let names: Vec<String> = (0..3).map(|i| unique(&format!("R{i}-"))).collect();
    // In each directory: up then down of its container, 4 times, while the gc of every other
    // directory runs in a loop.
    let scripts: Vec<String> = dirs
        .iter()
        .enumerate()
        .map(|(i, dir)| {
            let up = pipeline(dir, &names[i], i + 1, &format!("r{i}.json"));
            let down = teardown(dir, &format!("r{i}.json"));
            in_dir(
                &sb,
                &format!("for k in 1 2 3 4; do ({up}) || exit 1; ({down}) || exit 1; done"),
            )
        })
        .chain(dirs.iter().map(|dir| {
            format!(
                "for k in $(seq 12); do for t in cloon-run cloon-spec cloon-netns cloon-overlay; do \
                 $t --state-dir {} gc >/dev/null || exit 1; done; done",
                q(dir)
            )
        }))
        .collect();
    let runs: Vec<cloon_tests::Run> = std::thread::scope(|s| {
        let handles: Vec<_> = scripts
            .iter()
            .map(|script| s.spawn(|| sb.sh(script)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    for (script, run) in scripts.iter().zip(runs) {
        assert_eq!(run.status, 0, "{script}: {}{}", run.stdout, run.stderr);
    }
    sb.sh(&format!("rm -r {} {}", q(OUTER), q(SIBLING))).ok();
    sb.assert_clean(&[]);
}
