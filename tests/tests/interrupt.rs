//! Interrupted at any point: each tool is killed (SIGKILL) at many moments of its `up`, chosen
//! deterministically from a seed; then `down` runs with whatever state exists, then `gc`. After
//! every trial no loop device, mount, namespace, link, bridge, bundle, container or record of
//! cloon's is left, the image is unchanged, and nothing else in the sandbox changed.

use cloon_tests::{kill_after, sha256, tool_path, unique, KillWindow, Sandbox, Seeded};
use std::time::Instant;

/// The stages of the pipeline, in order.
const TOOLS: [&str; 4] = ["cloon-overlay", "cloon-netns", "cloon-spec", "cloon-run"];

/// The flags of the `up` of stage `stage` for the container `name`.
fn args(stage: usize, name: &str) -> Vec<String> {
    let args: &[&str] = match stage {
        0 => &["--name", name],
        1 => &[
            "--netns",
            "kns",
            "--veth",
            "vk0:eth0,addr=10.0.0.2/24,host-addr=10.0.0.1/24",
            "--veth",
            "vk1:eth1,bridge=klan",
        ],
        2 => &[],
        _ => &["--root", "/run/crun"],
    };
    args.iter().map(|a| a.to_string()).collect()
}

/// Runs `tool` with `args` and `doc`; it must succeed. Its output.
fn tool_ok(sb: &Sandbox, tool: &str, args: &[String], doc: &str) -> String {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    sb.tool(tool, &args, doc).ok()
}

/// Runs the stages before `stage` to completion for `name`, returns the document they made.
fn prepare(sb: &Sandbox, img: &str, stage: usize, name: &str) -> String {
    // `cloon-img info` prints the image's document, as `create` does.
    let mut doc = sb.tool("cloon-img", &["info", img], "").ok();
    for (i, tool) in TOOLS[..stage].iter().enumerate() {
        doc = tool_ok(sb, tool, &args(i, name), &doc);
    }
    doc
}

/// Every tool's `down --name`, last stage first; each must succeed.
fn down(sb: &Sandbox, name: &str) {
    for tool in TOOLS.iter().rev() {
        let run = sb.tool(tool, &["down", "--name", name], "");
        assert_eq!(run.status, 0, "{tool} down after a kill: {}", run.stderr);
    }
}

/// Every tool's `gc`, last stage first; each must succeed.
fn gc(sb: &Sandbox) {
    for tool in TOOLS.iter().rev() {
        let run = sb.tool(tool, &["gc"], "");
        assert_eq!(run.status, 0, "{tool} gc: {}\n{}", run.stdout, run.stderr);
    }
}

/// How long the `up` of stage `stage` takes here, run to its end once (then brought down): the
/// kill trials pick their moments within it, so that most of them interrupt the tool.
fn calibrate(sb: &Sandbox, img: &str, stage: usize, name: &str) -> KillWindow {
    let doc = prepare(sb, img, stage, name);
    let start = Instant::now();
    tool_ok(sb, TOOLS[stage], &args(stage, name), &doc);
    let took = start.elapsed();
    down(sb, name);
    gc(sb);
    KillWindow(took)
}

/// The seed of the moments tried: `CLOON_KILL_SEED=N` explores others; the default makes every
/// run try the same ones.
fn seed() -> u64 {
    std::env::var("CLOON_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&s: &u64| s != 0)
        .unwrap_or(0x00c1_00c1_5eed)
}

/// The names of the sandbox's interfaces, one a line.
fn links(sb: &Sandbox) -> String {
    sb.sh("ip -o link | awk -F': ' '{print $2}'").ok()
}

#[test]
fn killed_at_any_moment_then_down_and_gc_leave_nothing() {
    let seed = seed();
    let mut rng = Seeded(seed);
    let mut trials = 0;
    let mut killed = 0;
    // The container's name is also its cgroup's, shared by every sandbox: unique.
    let name = unique("K");
    for (stage, tool) in TOOLS.iter().enumerate() {
        // One sandbox and one image per stage: each trial ends with nothing left, so the next
        // starts from a clean sandbox.
        let Some(sb) = Sandbox::new(&format!("kill-{stage}")) else {
            return;
        };
        let img = sb.path("bb.img").display().to_string();
        sb.tool("cloon-img", &["create", "--busybox", &img], "")
            .ok();
        let sum = sha256(&img);
        let links_before = links(&sb);
        let mut window = calibrate(&sb, &img, stage, &name);
        for _ in 0..30 {
            let doc = prepare(&sb, &img, stage, &name);
            let delay = window.pick(rng.draw());
            let run = kill_after(
                sb.cmd(tool_path(tool)).args(args(stage, &name)),
                &doc,
                delay,
            );
            killed += usize::from(run.0);
            window.ended(run);
            trials += 1;
            down(&sb, &name);
            gc(&sb);
            let left = sb.leftovers(&[]);
            assert!(
                left.is_empty(),
                "{tool} killed after {delay:?}: left {left:#?}"
            );
            assert_eq!(links(&sb), links_before, "{tool} killed after {delay:?}");
        }
        assert_eq!(sha256(&img), sum, "{tool}: the image changed");
    }
    eprintln!("{killed} of {trials} trials killed a tool before it ended (seed {seed})");
    assert!(trials >= 100, "only {trials} trials");
    // Most trials must really interrupt the tool, or the test proves little.
    assert!(
        killed * 2 >= trials,
        "only {killed} of {trials} trials killed a tool before it ended"
    );
}

/// After a kill, `gc` alone (no `down`) leaves each of cloon-overlay's, cloon-spec's and
/// cloon-run's parts whole or gone: its `check` passes, or it has no record (3). Then `down`
/// leaves nothing.
#[test]
fn killed_at_any_moment_then_gc_alone_leaves_each_part_whole_or_gone() {
    let mut rng = Seeded(seed() ^ 0x9e37_79b9_7f4a_7c15);
    let name = unique("G");
    for (stage, tool) in TOOLS.iter().enumerate() {
        let Some(sb) = Sandbox::new(&format!("kill-gc-{stage}")) else {
            return;
        };
        let img = sb.path("bb.img").display().to_string();
        sb.tool("cloon-img", &["create", "--busybox", &img], "")
            .ok();
        let mut window = calibrate(&sb, &img, stage, &name);
        for _ in 0..10 {
            let doc = prepare(&sb, &img, stage, &name);
            let delay = window.pick(rng.draw());
            window.ended(kill_after(
                sb.cmd(tool_path(tool)).args(args(stage, &name)),
                &doc,
                delay,
            ));
            // gc leaves what a tool is at work on, as a runtime command that cloon-run's guardian
            // lets finish after a kill: wait until the container's directory is free.
            sb.sh(&format!(
                "(exec 9< /run/cloon/{name} && flock 9) 2>/dev/null; true"
            ))
            .ok();
            gc(&sb);
            for checked in ["cloon-overlay", "cloon-spec", "cloon-run"] {
                let run = sb.tool(checked, &["check", "--name", &name], "");
                assert!(
                    run.status == 0 || run.status == 3,
                    "{tool} killed after {delay:?}, then gc: {checked} check: {}{}",
                    run.stdout,
                    run.stderr
                );
            }
            down(&sb, &name);
            gc(&sb);
            sb.assert_clean(&[]);
        }
    }
}
