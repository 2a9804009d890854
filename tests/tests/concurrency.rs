//! Concurrency, on real kernel objects inside a sandbox: 32 whole pipelines (overlay, netns,
//! spec, run) started at once from one image all come up, sharing one lower and one loop device,
//! each in its own namespace with its own links, and all come down clean; two `up` of one name
//! at once, for each tool, leave one winner, intact, and one loser refused with 101.

use cloon_tests::{sha256, unique, Run, Sandbox};
use serde_json::Value;
use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::sync::Barrier;

const PIPELINES: usize = 32;

/// Runs `f(i)` for every `i` below `n`, each on its own thread, all released at once.
fn at_once<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let barrier = Barrier::new(n);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let (barrier, f) = (&barrier, &f);
                s.spawn(move || {
                    barrier.wait();
                    f(i)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    })
}

#[test]
fn thirty_two_pipelines_at_once_share_one_lower_and_come_down_clean() {
    let Some(sb) = Sandbox::new("concurrent-pipelines") else {
        return;
    };
    let img = sb.path("bb.img").to_string_lossy().into_owned();
    sb.tool("cloon-img", &["create", "--busybox", &img], "")
        .ok();
    let sum = sha256(&img);
    let meta = std::fs::metadata(&img).expect("image");
    let lower = format!("/run/cloon/.lowers/{}-{}/lower", meta.dev(), meta.ino());
    let names: Vec<String> = (0..PIPELINES).map(|i| unique(&format!("P{i}-"))).collect();
    sb.sh("mkdir -p /run/docs").ok();

    let ups = at_once(PIPELINES, |i| {
        let name = &names[i];
        sb.sh_within(
            &format!(
                "cloon-overlay --image {img} --name {name} </dev/null \
                 | cloon-netns --netns cns{i} --veth vc{i}:eth0,addr=10.9.{i}.2/24,host-addr=10.9.{i}.1/24 \
                 | cloon-spec | cloon-run --root /run/crun > /run/docs/{name}.json; \
                 cat /run/docs/{name}.json"
            ),
            120,
        )
    });
    let docs: Vec<Value> = ups
        .into_iter()
        .zip(&names)
        .map(|(run, name)| {
            let doc = run.json();
            assert!(doc.get("error").is_none(), "{name}: {doc}\n{}", run.stderr);
            assert_eq!(doc["container"]["status"], "running", "{name}: {doc}");
            doc
        })
        .collect();

    // One loop device and one lower, under 32 overlays.
    let loops = sb.loops();
    assert_eq!(loops.len(), 1, "{loops:?}");
    for d in &docs {
        assert_eq!(d["overlay"]["loop"], loops[0].as_str());
        assert_eq!(d["overlay"]["lower"], lower.as_str());
    }
    let table = sb.sh("findmnt -rn -o TARGET,FSTYPE,OPTIONS").ok();
    assert_eq!(
        table
            .lines()
            .filter(|l| l.starts_with(&format!("{lower} ")))
            .count(),
        1
    );
    let over = format!("lowerdir={lower},");
    assert_eq!(
        table.lines().filter(|l| l.contains(&over)).count(),
        PIPELINES
    );
    // 32 distinct namespaces, 32 distinct host ends, 32 distinct containers, each in its own
    // namespace with its own address.
    let inodes: BTreeSet<String> = sb
        .sh("for n in /run/netns/*; do stat -L -c %i $n; done")
        .ok()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(inodes.len(), PIPELINES);
    let links: BTreeSet<String> = sb
        .sh("ip -o link show | awk -F': ' '{print $2}'")
        .ok()
        .lines()
        .map(|l| l.split('@').next().unwrap_or(l).to_string())
        .filter(|l| l.starts_with("vc"))
        .collect();
    assert_eq!(links.len(), PIPELINES, "{links:?}");
    let pids: BTreeSet<i64> = docs
        .iter()
        .map(|d| d["container"]["pid"].as_i64().expect("pid"))
        .collect();
    assert_eq!(pids.len(), PIPELINES);
    for (i, name) in names.iter().enumerate() {
        let addr = sb
            .tool(
                "cloon-run",
                &["exec", name, "--", "ip", "-o", "addr", "show", "eth0"],
                "",
            )
            .ok();
        assert!(addr.contains(&format!("10.9.{i}.2/24")), "{name}: {addr}");
        assert_eq!(addr.lines().filter(|l| l.contains("inet ")).count(), 1);
    }

    let downs: Vec<Run> = at_once(PIPELINES, |i| {
        let name = &names[i];
        sb.sh_within(
            &format!(
                "cloon-run down < /run/docs/{name}.json | cloon-spec down | cloon-netns down \
                 | cloon-overlay down && rm /run/docs/{name}.json"
            ),
            120,
        )
    });
    for (run, name) in downs.into_iter().zip(&names) {
        assert_eq!(run.status, 0, "down {name}: {}{}", run.stdout, run.stderr);
    }
    sb.sh("rmdir /run/docs").ok();
    sb.assert_clean(&[]);
    assert_eq!(sha256(&img), sum, "the image changed");
}

/// Two `up` of the name `T` at once with `args`: one succeeds, the other is refused with 101 and
/// the winner passes `check`; then `down` leaves nothing.
fn one_wins(sb: &Sandbox, tool: &str, args: &[&str], doc: &str) {
    for round in 0..4 {
        let runs = at_once(2, |_| sb.tool(tool, args, doc));
        let (won, lost): (Vec<&Run>, Vec<&Run>) = runs.iter().partition(|r| r.status == 0);
        assert_eq!(
            (won.len(), lost.len()),
            (1, 1),
            "{tool} round {round}: {runs:#?}"
        );
        // 101, "name already taken": the record of T, or (cloon-netns) its namespace or host
        // end, whichever the loser finds taken first.
        lost[0].assert_error(tool, 101);
        let winner = &won[0].stdout;
        let check = sb.tool(tool, &["check"], winner);
        assert_eq!(check.status, 0, "{tool} check: {}", check.stderr);
        sb.tool(tool, &["down"], winner).ok();
    }
}

#[test]
fn two_ups_of_one_name_at_once_leave_one_winner_intact_for_every_tool() {
    let Some(sb) = Sandbox::new("concurrent-names") else {
        return;
    };
    let img = sb.path("bb.img").to_string_lossy().into_owned();
    sb.tool("cloon-img", &["create", "--busybox", &img], "")
        .ok();
    one_wins(&sb, "cloon-overlay", &["--image", &img, "--name", "T"], "");
    sb.assert_clean(&[]);
    one_wins(
        &sb,
        "cloon-netns",
        &["--netns", "tns", "--veth", "vt0:eth0", "--name", "T"],
        "",
    );
    sb.assert_clean(&[]);
    let rootfs = sb.busybox_rootfs().to_string_lossy().into_owned();
    one_wins(&sb, "cloon-spec", &["--name", "T", "--rootfs", &rootfs], "");
    sb.assert_clean(&[]);
    // cloon-run: the container's name is also its cgroup's, shared by every sandbox.
    let name = unique("T-");
    let doc = sb
        .tool("cloon-spec", &["--name", &name, "--rootfs", &rootfs], "")
        .ok();
    for round in 0..4 {
        let runs = at_once(2, |_| sb.tool("cloon-run", &["--root", "/run/crun"], &doc));
        let (won, lost): (Vec<&Run>, Vec<&Run>) = runs.iter().partition(|r| r.status == 0);
        assert_eq!((won.len(), lost.len()), (1, 1), "round {round}: {runs:#?}");
        lost[0].assert_error("cloon-run", 101);
        let check = sb.tool("cloon-run", &["check"], &won[0].stdout);
        assert_eq!(check.status, 0, "cloon-run check: {}", check.stderr);
        sb.tool("cloon-run", &["down"], &won[0].stdout).ok();
    }
    sb.tool("cloon-spec", &["down", "--name", &name], "").ok();
    sb.assert_clean(&[]);
}
