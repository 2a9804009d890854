//! A killed `cloon-img create` (SIGKILL at many moments) leaves its staging directory, temporary
//! image and record next to the image; the next create of the same image, or `cloon-img gc`,
//! removes them, found by the record the dead run held locked. A live run's items, files that
//! merely look like staging items, and records that are not cloon-img's are kept; `gc --dry-run`
//! changes nothing; removal never follows a symbolic link nor crosses a mount point.

use cloon_tests::{tool_path, Run, Sandbox, Seeded};
use serde_json::Value;
use std::io::Write;
use std::path::Path;
use std::process::{Child, ChildStdin, Stdio};
use std::time::{Duration, Instant};

const STAGE: &str = "cloon-img";

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The staging names of `image` in `dir` (`.IMAGE.cloon-...`).
fn staging(dir: &Path, image: &str) -> Vec<String> {
    let prefix = format!(".{image}.cloon-");
    names(dir)
        .into_iter()
        .filter(|n| n.starts_with(&prefix))
        .collect()
}

/// A `cloon-img` started in the sandbox. nsenter forks into the sandbox's pid namespace (in a
/// sandbox without one it execs): the tool is nsenter's child (or nsenter itself).
struct Tool {
    nsenter: Child,
    /// The tool's pid on the host, to kill it.
    host: i32,
    /// Its pid in the sandbox, which names its staging items.
    pid: u32,
    stdin: Option<ChildStdin>,
}

/// Starts `cloon-img ARGS` in the sandbox, its stdin a pipe (kept in [`Tool::stdin`]) or nothing;
/// returns once the tool runs.
fn start(sb: &Sandbox, args: &[&str], with_stdin: bool) -> Tool {
    let mut nsenter = sb
        .cmd(tool_path(STAGE))
        .args(args)
        .stdin(if with_stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn cloon-img");
    let stdin = nsenter.stdin.take();
    let id = nsenter.id();
    let mut found = None;
    wait_until(30, || {
        found = the_tool(id);
        found.is_some() || nsenter.try_wait().expect("try_wait").is_some()
    });
    let (host, pid) = found.expect("cloon-img did not start");
    Tool {
        nsenter,
        host,
        pid,
        stdin,
    }
}

/// The pid on the host and in the sandbox of the cloon-img that nsenter `id` started, once it
/// runs cloon-img.
fn the_tool(id: u32) -> Option<(i32, u32)> {
    let children = std::fs::read_to_string(format!("/proc/{id}/task/{id}/children")).ok()?;
    let candidates = children
        .split_whitespace()
        .filter_map(|p| p.parse::<u32>().ok())
        .chain([id]);
    for host in candidates {
        let exe = std::fs::read_link(format!("/proc/{host}/exe")).ok();
        if exe.is_some_and(|e| e.file_name().is_some_and(|n| n == STAGE)) {
            let status = std::fs::read_to_string(format!("/proc/{host}/status")).ok()?;
            let pid = status
                .lines()
                .find_map(|l| l.strip_prefix("NSpid:"))?
                .split_whitespace()
                .last()?
                .parse()
                .ok()?;
            return Some((i32::try_from(host).ok()?, pid));
        }
    }
    None
}

impl Tool {
    /// Whether it still runs.
    fn running(&mut self) -> bool {
        self.nsenter.try_wait().expect("try_wait").is_none()
    }

    /// SIGKILLs the tool and reaps it; returns whether it was still running.
    fn kill9(&mut self) -> bool {
        let running = self.running();
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.host),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.nsenter.wait();
        running
    }
}

/// Waits until `what` holds (checked every millisecond), at most `secs` seconds.
fn wait_until(secs: u64, mut what: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        if what() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    what()
}

/// The processes whose command line names `dir`: a killed run's programs (tar, mkfs.ext4) must
/// not go on after it. Waits a little for them to end, then lists what is left.
fn programs_in(dir: &Path) -> Vec<String> {
    let needle = dir.to_string_lossy().into_owned();
    let find = || -> Vec<String> {
        std::fs::read_dir("/proc")
            .expect("/proc")
            .filter_map(|e| {
                let e = e.ok()?;
                e.file_name().to_str()?.parse::<u32>().ok()?;
                let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
                let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
                cmd.contains(&needle).then_some(cmd)
            })
            .collect()
    };
    wait_until(5, || find().is_empty());
    find()
}

/// `cloon-img gc ARGS` in the sandbox, its report.
fn gc(sb: &Sandbox, args: &[&str]) -> (Run, Value) {
    let mut all = vec!["gc"];
    all.extend(args);
    let run = sb.tool(STAGE, &all, "");
    let report = run.json();
    (run, report)
}

/// The names of the report's `list` items whose kind is `kind`, and whether each was removed.
fn items(report: &Value, list: &str) -> Vec<(String, String, Option<bool>)> {
    let mut v: Vec<_> = report[list]
        .as_array()
        .unwrap_or_else(|| panic!("no {list} in {report}"))
        .iter()
        .map(|i| {
            let name = i["name"].as_str().unwrap_or_default();
            let file = Path::new(name)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (
                i["kind"].as_str().unwrap_or_default().to_string(),
                file,
                i["removed"].as_bool(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Kills a `create --busybox IMG` once an entry whose name contains `marker` appears next to the
/// image (`rootfs`: while the directory is filled; `tmp`: while mkfs.ext4 writes). Returns the
/// killed run's pid (in the sandbox).
fn kill_busybox_at(sb: &Sandbox, img: &str, marker: &str) -> u32 {
    let path = sb.path(img);
    let mut tool = start(
        sb,
        &["create", "--busybox", path.to_str().expect("utf-8 path")],
        false,
    );
    let mine = sb.path(&format!(".{img}.cloon-{marker}-{}", tool.pid));
    let seen = wait_until(30, || mine.exists() || !tool.running());
    assert!(seen, "no {marker} appeared");
    assert!(tool.kill9(), "create ended before the kill");
    tool.pid
}

/// Starts `create --force --from-tar - IMG`, its stdin held open; returns once its staging directory
/// exists (the run then waits for the tarball).
fn waiting_tar_run(sb: &Sandbox, img: &str) -> Tool {
    let path = sb.path(img);
    let tool = start(
        sb,
        &[
            "create",
            "--force",
            "--from-tar",
            "-",
            path.to_str().expect("utf-8 path"),
        ],
        true,
    );
    let rootfs = format!(".{img}.cloon-rootfs-{}", tool.pid);
    assert!(
        wait_until(30, || sb.path(&rootfs).is_dir()),
        "{rootfs} did not appear: {:?}",
        names(&sb.dir)
    );
    tool
}

#[test]
fn a_busybox_create_killed_at_any_moment_is_cleaned_by_the_next_create() {
    let Some(sb) = Sandbox::new("img-left-next") else {
        return;
    };
    let img = sb.path("bb.img");
    let img_s = img.to_str().unwrap();
    // How long a whole create takes here: the kills are spread over it.
    let begin = Instant::now();
    sb.tool(STAGE, &["create", "--busybox", img_s], "").ok();
    let span = u64::try_from(begin.elapsed().as_micros())
        .unwrap_or(u64::MAX)
        .max(1);
    std::fs::remove_file(&img).unwrap();

    let mut rng = Seeded(0x00c1_00c1_1eff);
    let mut left_something = 0;
    let mut trials = 0;
    // Two kills at known moments (filling the directory, writing the image), then seeded ones.
    let moments: Vec<Option<&str>> = [Some("rootfs"), Some("tmp")]
        .into_iter()
        .chain(std::iter::repeat_n(None, 12))
        .collect();
    for moment in moments {
        let pid = match moment {
            Some(marker) => kill_busybox_at(&sb, "bb.img", marker),
            None => {
                let delay = Duration::from_micros(rng.draw() % span);
                let mut tool = start(&sb, &["create", "--busybox", img_s], false);
                std::thread::sleep(delay);
                tool.kill9();
                tool.pid
            }
        };
        trials += 1;
        assert!(
            programs_in(&sb.dir).is_empty(),
            "programs of the killed run {pid} go on: {:?}",
            programs_in(&sb.dir)
        );
        let left = staging(&sb.dir, "bb.img");
        if !left.is_empty() {
            left_something += 1;
            assert!(
                left.contains(&format!(".bb.img.cloon-record-{pid}")),
                "leftovers without a record: {left:?}"
            );
        }
        // The next create (--force: the killed one may have finished its image) removes them.
        let run = sb.tool(STAGE, &["create", "--force", "--busybox", img_s], "");
        assert_eq!(run.status, 0, "after killing {pid}: {}", run.stderr);
        if !left.is_empty() {
            assert!(
                run.stderr.contains("removed the staging directory")
                    || run.stderr.contains("removed the temporary image")
                    || run.stderr.contains("removed the record"),
                "{}",
                run.stderr
            );
        }
        assert_eq!(
            names(&sb.dir),
            ["bb.img"],
            "after killing {pid} (left {left:?})"
        );
        std::fs::remove_file(&img).unwrap();
    }
    eprintln!("{left_something} of {trials} killed creates left something");
    assert!(left_something >= 2, "too few kills left anything to clean");
    sb.assert_clean(&[]);
}

#[test]
fn gc_removes_a_killed_runs_leftovers_and_keeps_look_alikes_and_foreign_records() {
    let Some(sb) = Sandbox::new("img-left-gc") else {
        return;
    };
    let dir = sb.dir.to_str().unwrap().to_string();
    let pid = kill_busybox_at(&sb, "bb.img", "tmp");
    assert!(programs_in(&sb.dir).is_empty());
    let dead: Vec<String> = ["record", "rootfs", "tmp"]
        .iter()
        .map(|p| format!(".bb.img.cloon-{p}-{pid}"))
        .collect();
    for d in &dead {
        assert!(
            sb.path(d).exists(),
            "{d} was not left: {:?}",
            names(&sb.dir)
        );
    }
    // Look-alikes: staging names that no record names.
    std::fs::create_dir(sb.path(".bb.img.cloon-rootfs-999999")).unwrap();
    std::fs::write(sb.path(".bb.img.cloon-rootfs-999999/file"), "mine").unwrap();
    std::fs::write(sb.path(".other.img.cloon-tmp-1"), "mine too").unwrap();
    // Files named like records that are not: a link to a file of value, and a record anyone
    // could have written (mode 0644) naming a directory of value.
    std::fs::write(sb.path("victim"), "precious").unwrap();
    std::os::unix::fs::symlink(sb.path("victim"), sb.path(".bb.img.cloon-record-999997")).unwrap();
    let forged = sb.path(".bb.img.cloon-record-999998");
    std::fs::write(
        &forged,
        "{\"tool\":\"cloon-img create\",\"pid\":999998,\"start\":0,\"image\":\"bb.img\"}\n\
         {\"dir\":\".bb.img.cloon-rootfs-999998\"}\n",
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&forged, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    std::fs::create_dir(sb.path(".bb.img.cloon-rootfs-999998")).unwrap();
    std::fs::write(sb.path(".bb.img.cloon-rootfs-999998/file"), "precious").unwrap();
    let before = names(&sb.dir);

    // A dry run finds what a real one removes, and changes nothing.
    let (run, report) = gc(&sb, &["--dry-run", &dir]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(report["dryRun"], true);
    assert_eq!(report["stateDir"], dir.as_str());
    let found = items(&report, "found");
    let expected = |removed: bool| {
        let mut v = vec![
            ("record".to_string(), dead[0].clone(), Some(removed)),
            (
                "staging directory".to_string(),
                dead[1].clone(),
                Some(removed),
            ),
            (
                "temporary image".to_string(),
                dead[2].clone(),
                Some(removed),
            ),
        ];
        v.sort();
        v
    };
    assert_eq!(found, expected(false), "{report}");
    assert!(run
        .stderr
        .contains(&format!("rm -rf --one-file-system {dir}/{}", dead[1])));
    assert_eq!(names(&sb.dir), before, "the dry run changed something");

    // gc of another image of the directory leaves these alone.
    let other = sb.path("other.img");
    let (run, report) = gc(&sb, &[other.to_str().unwrap()]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(items(&report, "found").is_empty(), "{report}");
    assert_eq!(
        items(&report, "kept"),
        [(
            "temporary image".to_string(),
            ".other.img.cloon-tmp-1".to_string(),
            None
        )]
    );
    assert_eq!(names(&sb.dir), before);

    let (run, report) = gc(&sb, &[&dir]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(report["dryRun"], false);
    assert_eq!(items(&report, "found"), expected(true), "{report}");
    let mut kept: Vec<(String, String, Option<bool>)> = [
        ("record", ".bb.img.cloon-record-999997"),
        ("record", ".bb.img.cloon-record-999998"),
        ("staging directory", ".bb.img.cloon-rootfs-999998"),
        ("staging directory", ".bb.img.cloon-rootfs-999999"),
        ("temporary image", ".other.img.cloon-tmp-1"),
    ]
    .iter()
    .map(|(k, n)| (k.to_string(), n.to_string(), None))
    .collect();
    kept.sort();
    assert_eq!(items(&report, "kept"), kept, "{report}");
    let after: Vec<String> = before.into_iter().filter(|n| !dead.contains(n)).collect();
    assert_eq!(names(&sb.dir), after);
    assert_eq!(
        std::fs::read_to_string(sb.path("victim")).unwrap(),
        "precious"
    );
    assert_eq!(
        std::fs::read_to_string(sb.path(".bb.img.cloon-rootfs-999998/file")).unwrap(),
        "precious"
    );
    // Nothing more to do.
    let (run, report) = gc(&sb, &[&dir]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(items(&report, "found").is_empty(), "{report}");

    // gc IMG: the leftovers of that image only.
    let pid = kill_busybox_at(&sb, "bb.img", "rootfs");
    let record = format!(".bb.img.cloon-record-{pid}");
    assert!(sb.path(&record).exists());
    let (run, report) = gc(&sb, &[sb.path("bb.img").to_str().unwrap()]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(
        items(&report, "found")
            .iter()
            .any(|(k, n, r)| k == "record" && *n == record && *r == Some(true)),
        "{report}"
    );
    assert!(staging(&sb.dir, "bb.img")
        .iter()
        .all(|n| n.ends_with("999997") || n.ends_with("999998") || n.ends_with("999999")));
    sb.assert_clean(&[]);
}

#[test]
fn a_live_runs_staging_is_kept_by_gc_and_by_another_create() {
    let Some(sb) = Sandbox::new("img-left-live") else {
        return;
    };
    let dir = sb.dir.to_str().unwrap().to_string();
    let mut tool = waiting_tar_run(&sb, "live.img");
    let pid = tool.pid;
    let live = staging(&sb.dir, "live.img");
    assert_eq!(
        live,
        [
            format!(".live.img.cloon-record-{pid}"),
            format!(".live.img.cloon-rootfs-{pid}")
        ]
    );
    let (run, report) = gc(&sb, &[&dir]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(items(&report, "found").is_empty(), "{report}");
    assert_eq!(
        items(&report, "kept"),
        [
            ("record".to_string(), live[0].clone(), None),
            ("staging directory".to_string(), live[1].clone(), None)
        ]
    );
    assert!(report.to_string().contains("in use"), "{report}");
    // Another create of the same image makes its own, and leaves the live run's alone.
    let img = sb.path("live.img");
    sb.tool(STAGE, &["create", "--busybox", img.to_str().unwrap()], "")
        .ok();
    assert_eq!(staging(&sb.dir, "live.img"), live);
    assert!(tool.running(), "the live run ended");
    // The live run then fails (no tarball) and removes its own items.
    drop(tool.stdin.take());
    let status = tool.nsenter.wait().unwrap();
    assert!(!status.success());
    assert_eq!(names(&sb.dir), ["live.img"]);
    sb.assert_clean(&[]);
}

#[test]
fn a_tar_create_killed_halfway_is_cleaned_and_its_tar_does_not_go_on() {
    let Some(sb) = Sandbox::new("img-left-tar") else {
        return;
    };
    let root = sb.busybox_rootfs();
    for i in 0..200 {
        std::fs::write(root.join(format!("etc/f{i}")), vec![b'x'; 4096]).unwrap();
    }
    let tarball = sb.path("root.tar");
    sb.sh(&format!(
        "tar -c --numeric-owner -f {} -C {} . && rm -rf {}",
        tarball.display(),
        root.display(),
        root.display()
    ))
    .ok();
    let bytes = std::fs::read(&tarball).unwrap();
    let mut rng = Seeded(0x7a12_0000_5eed);
    for _ in 0..4 {
        let mut tool = waiting_tar_run(&sb, "t.img");
        let pid = tool.pid;
        let mut stdin = tool.stdin.take().expect("piped");
        // Part of the tarball: tar extracts it, then waits for the rest.
        // More than tar's first record (10 KiB), which it waits for before extracting.
        let cut = 64 * 1024 + usize::try_from(rng.draw() % (bytes.len() as u64 / 2)).unwrap();
        stdin.write_all(&bytes[..cut]).unwrap();
        stdin.flush().unwrap();
        let rootfs = sb.path(&format!(".t.img.cloon-rootfs-{pid}"));
        assert!(wait_until(30, || std::fs::read_dir(&rootfs)
            .is_ok_and(|mut d| d.next().is_some())));
        assert!(tool.kill9());
        drop(stdin);
        assert!(
            programs_in(&sb.dir).is_empty(),
            "{:?}",
            programs_in(&sb.dir)
        );
        assert!(rootfs.is_dir());
        let run = sb.tool(
            STAGE,
            &[
                "create",
                "--force",
                "--from-tar",
                tarball.to_str().unwrap(),
                sb.path("t.img").to_str().unwrap(),
            ],
            "",
        );
        assert_eq!(run.status, 0, "{}", run.stderr);
        assert!(
            run.stderr.contains("removed the staging directory"),
            "{}",
            run.stderr
        );
        assert_eq!(names(&sb.dir), ["root.tar", "t.img"]);
    }
    sb.assert_clean(&[]);
}

#[test]
fn removal_never_crosses_a_mount_point_nor_follows_a_link() {
    let Some(sb) = Sandbox::new("img-left-mount") else {
        return;
    };
    let dir = sb.dir.to_str().unwrap().to_string();
    let precious = sb.path("precious");
    std::fs::create_dir(&precious).unwrap();
    std::fs::write(precious.join("file"), "precious").unwrap();

    // A dead run's staging directory holding a bind mount (same filesystem), a tmpfs and links.
    let mut tool = waiting_tar_run(&sb, "m.img");
    let pid = tool.pid;
    tool.kill9();
    let rootfs = sb.path(&format!(".m.img.cloon-rootfs-{pid}"));
    let record = sb.path(&format!(".m.img.cloon-record-{pid}"));
    std::os::unix::fs::symlink(&precious, rootfs.join("link")).unwrap();
    std::os::unix::fs::symlink(precious.join("file"), rootfs.join("flink")).unwrap();
    for (mount, what) in [
        ("bind", format!("--bind {}", precious.display())),
        ("tmp", "-t tmpfs cloon-test".to_string()),
    ] {
        let at = rootfs.join("deep/er").join(mount);
        std::fs::create_dir_all(&at).unwrap();
        sb.sh(&format!("mount {what} {}", at.display())).ok();
        if mount == "tmp" {
            sb.sh(&format!("echo t > {}/t", at.display())).ok();
        }
        let (run, report) = gc(&sb, &[&dir]);
        assert_eq!(run.status, 11, "{mount}: {report}\n{}", run.stderr);
        assert!(report.to_string().contains("is a mount point"), "{report}");
        assert!(record.exists(), "{mount}: the record went");
        assert_eq!(
            std::fs::read_to_string(precious.join("file")).unwrap(),
            "precious"
        );
        if mount == "tmp" {
            assert_eq!(sb.sh(&format!("cat {}/t", at.display())).ok(), "t\n");
        }
        sb.sh(&format!("umount {}", at.display())).ok();
    }
    let (run, report) = gc(&sb, &[&dir]);
    assert_eq!(run.status, 0, "{report}\n{}", run.stderr);
    assert!(!rootfs.exists() && !record.exists(), "{report}");
    assert_eq!(
        std::fs::read_to_string(precious.join("file")).unwrap(),
        "precious"
    );

    // A dead run's staging directory replaced by a link to a directory of value: kept, and so
    // is the target; the record, naming nothing of the run any more, goes.
    let mut tool = waiting_tar_run(&sb, "m.img");
    let pid = tool.pid;
    tool.kill9();
    let rootfs = sb.path(&format!(".m.img.cloon-rootfs-{pid}"));
    std::fs::remove_dir(&rootfs).unwrap();
    std::os::unix::fs::symlink(&precious, &rootfs).unwrap();
    let (run, report) = gc(&sb, &[&dir]);
    assert_eq!(run.status, 0, "{report}\n{}", run.stderr);
    assert!(
        items(&report, "kept").contains(&(
            "staging directory".to_string(),
            format!(".m.img.cloon-rootfs-{pid}"),
            None
        )),
        "{report}"
    );
    assert!(report.to_string().contains("symbolic link"), "{report}");
    assert_eq!(
        std::fs::read_to_string(precious.join("file")).unwrap(),
        "precious"
    );
    assert_eq!(
        names(&sb.dir),
        [format!(".m.img.cloon-rootfs-{pid}"), "precious".to_string()]
    );
    std::fs::remove_file(&rootfs).unwrap();
    sb.assert_clean(&[]);
}
