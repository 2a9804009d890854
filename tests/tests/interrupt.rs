//! Interrupted at any point: each tool is killed (SIGKILL) at many moments of its `up`, chosen
//! deterministically from a seed; then `down` runs with whatever state exists, then `gc`. After
//! every trial no loop device, mount, namespace, link, bridge, bundle, container or record of
//! cloon's is left, the image is unchanged, and nothing else in the sandbox changed.

use cloon_tests::{sha256, tool_path, Sandbox};
use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The stages of the pipeline, in order, with the flags of their `up`.
const STAGES: &[(&str, &[&str])] = &[
    ("cloon-overlay", &["--name", "K"]),
    (
        "cloon-netns",
        &[
            "--netns",
            "kns",
            "--veth",
            "vk0:eth0,addr=10.0.0.2/24,host-addr=10.0.0.1/24",
            "--veth",
            "vk1:eth1,bridge=klan",
        ],
    ),
    ("cloon-spec", &[]),
    ("cloon-run", &["--root", "/run/crun"]),
];

/// A tiny deterministic generator (xorshift), so that every run tries the same moments.
struct Seeded(u64);

impl Seeded {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Runs the stages before `stage` to completion, returns the document they made.
fn prepare(sb: &Sandbox, img: &str, stage: usize) -> String {
    let mut doc = sb.tool("cloon-img", &["info", img], "").ok();
    doc = format!("{{\"cloonVersion\":\"1\",\"image\":{doc}}}");
    for (tool, args) in &STAGES[..stage] {
        doc = sb.tool(tool, args, &doc).ok();
    }
    doc
}

/// Starts `tool` with `doc` on stdin and kills it after `delay`; returns whether it was killed
/// before it finished.
fn kill_after(sb: &Sandbox, tool: &str, args: &[&str], doc: &str, delay: Duration) -> bool {
    let mut child = sb
        .cmd(tool_path(tool))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("piped");
    let _ = stdin.write_all(doc.as_bytes());
    drop(stdin);
    let start = Instant::now();
    while start.elapsed() < delay {
        if child.try_wait().expect("wait").is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    // nsenter execs the tool in its own process (it does not fork without --fork): killing the
    // child kills the tool, or nsenter before it became the tool.
    let killed = child.try_wait().expect("wait").is_none();
    let _ = child.kill();
    let _ = child.wait();
    killed
}

fn down_and_gc(sb: &Sandbox) {
    for (tool, _) in STAGES.iter().rev() {
        let run = sb.tool(tool, &["down", "--name", "K"], "");
        assert_eq!(run.status, 0, "{tool} down after a kill: {}", run.stderr);
    }
    for (tool, _) in STAGES.iter().rev() {
        let run = sb.tool(tool, &["gc"], "");
        assert_eq!(run.status, 0, "{tool} gc: {}\n{}", run.stdout, run.stderr);
    }
}

/// How long the `up` of stage `stage` takes here, run to its end once (then brought down): the
/// kill trials pick their moments within it, so that most of them interrupt the tool.
fn calibrate(sb: &Sandbox, stage: usize, doc: &str) -> Duration {
    let (tool, args) = STAGES[stage];
    let start = Instant::now();
    let run = sb.tool(tool, args, doc);
    let took = start.elapsed();
    assert_eq!(run.status, 0, "{tool}: {}", run.stderr);
    down_and_gc(sb);
    took
}

#[test]
fn killed_at_any_moment_then_down_and_gc_leave_nothing() {
    // The seed can be changed to explore other moments (`CLOON_KILL_SEED=N`); the default makes
    // every run try the same ones.
    let seed = std::env::var("CLOON_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&s: &u64| s != 0)
        .unwrap_or(0x00c1_00c1_5eed);
    let mut rng = Seeded(seed);
    let mut trials = 0;
    let mut killed = 0;
    for (stage, (tool, args)) in STAGES.iter().enumerate() {
        // One sandbox and one image per stage: each trial ends with nothing left, so the next
        // starts from a clean sandbox.
        let Some(sb) = Sandbox::new(&format!("kill-{stage}")) else {
            return;
        };
        let img = sb.path("bb.img").display().to_string();
        sb.tool("cloon-img", &["create", "--busybox", &img], "")
            .ok();
        let sum = sha256(&img);
        let links_before = sb.sh("ip -o link | awk -F': ' '{print $2}'").ok();
        let span = calibrate(&sb, stage, &prepare(&sb, &img, stage));
        let span_us = u64::try_from(span.as_micros()).unwrap_or(u64::MAX).max(1);
        for _ in 0..30 {
            let doc = prepare(&sb, &img, stage);
            let delay = Duration::from_micros(rng.next() % span_us);
            if kill_after(&sb, tool, args, &doc, delay) {
                killed += 1;
            }
            trials += 1;
            down_and_gc(&sb);
            let left = sb.leftovers(&[]);
            assert!(
                left.is_empty(),
                "{tool} killed after {delay:?}: left {left:#?}"
            );
            assert_eq!(
                sb.sh("ip -o link | awk -F': ' '{print $2}'").ok(),
                links_before,
                "{tool} killed after {delay:?}"
            );
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
