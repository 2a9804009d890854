//! cloon-run with real crun and runc containers, as root inside a sandbox: up, exec, list,
//! check, down, failures that leave nothing, a namespace made beforehand, and a pipeline that does
//! not hang while the container runs.
//!
//! The root filesystem is a plain directory holding a static busybox, so these tests do not
//! depend on cloon-img or cloon-overlay.

use cloon_tests::{can_run, tool_path, unique, Run, Sandbox};

const STAGE: &str = "cloon-run";
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Whether process `pid` of the sandbox is gone (or a zombie its reaper has not collected yet).
fn dead(sb: &Sandbox, pid: i64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if !sb.alive(pid) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The bundle of container `name` (cloon-spec with `extra` flags) on a busybox root filesystem:
/// the document.
fn spec(sb: &Sandbox, name: &str, extra: &[&str]) -> String {
    let rootfs = sb.busybox_rootfs();
    let mut args = vec![
        "--name",
        name,
        "--rootfs",
        rootfs.to_str().expect("utf-8 path"),
    ];
    args.extend_from_slice(extra);
    sb.tool("cloon-spec", &args, "").ok()
}

/// The bundle (as [`spec`] makes it), then `cloon-run` with `run_args`, which must succeed.
fn spec_and_run(sb: &Sandbox, name: &str, spec_extra: &[&str], run_args: &[&str]) -> Run {
    let doc = spec(sb, name, spec_extra);
    let up = sb.tool("cloon-run", run_args, &doc);
    assert_eq!(up.status, 0, "{}{}", up.stdout, up.stderr);
    up
}

/// `cloon-run down` (with `args`), then `cloon-spec down` on its output; both must succeed.
fn run_and_spec_down(sb: &Sandbox, args: &[&str], doc: &str) {
    let down = sb.tool("cloon-run", &[&["down"], args].concat(), doc).ok();
    sb.tool("cloon-spec", &["down"], &down).ok();
}

/// `exec` runs in the container: its hostname is the container's name, and the command's exit
/// status is exec's.
fn assert_exec_works(sb: &Sandbox, name: &str) {
    let host = sb.tool("cloon-run", &["exec", name, "--", "hostname"], "");
    assert_eq!(host.ok().trim(), name);
    let seven = sb.tool("cloon-run", &["exec", name, "--", "sh", "-c", "exit 7"], "");
    assert_eq!(seven.status, 7);
}

/// Interface names in `ip -o link` output (busybox's or iproute2's).
fn link_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect()
}

#[test]
fn crun_up_exec_list_check_down() {
    let Some(sb) = Sandbox::new("run-basic") else {
        return;
    };
    let rootfs = sb.busybox_rootfs();
    let name = unique("rb");
    let spec = tool_path("cloon-spec");
    let run = tool_path("cloon-run");

    // The article's pipeline: it must return while the container keeps running.
    let started = Instant::now();
    let up = sb.sh_within(
        &format!(
            "{} --name {name} --rootfs {} | {} --root {}",
            spec.display(),
            rootfs.display(),
            run.display(),
            sb.runtime_root
        ),
        30,
    );
    assert_eq!(up.status, 0, "{}{}", up.stdout, up.stderr);
    assert!(started.elapsed() < Duration::from_secs(30));
    let doc = up.json();
    let c = &doc["container"];
    assert_eq!(c["id"], name.as_str());
    assert_eq!(c["runtime"], "crun");
    assert_eq!(c["root"], sb.runtime_root);
    assert_eq!(c["status"], "running");
    let pid = c["pid"].as_i64().expect("pid");
    assert!(pid > 1);
    assert!(sb.alive(pid), "the container's process is not alive");
    assert_eq!(doc["bundle"]["path"], format!("/run/cloon/{name}/bundle"));

    // The runtime sees it running, with the recorded pid.
    let state = sb.tool("cloon-run", &["state", &name], "").json();
    assert_eq!(
        (state["status"].as_str(), state["pid"].as_i64()),
        (Some("running"), Some(pid))
    );
    let listed = sb.tool("cloon-run", &["list"], "").json();
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    assert_eq!(listed[0]["name"], name.as_str());
    assert_eq!(listed[0]["status"], "running");
    // --json forces JSON (a pipe gets it anyway); --table the table for people.
    let json = sb.tool("cloon-run", &["list", "--json"], "").json();
    assert_eq!(json[0]["name"], name.as_str());
    assert_eq!(json[0]["bundle"], format!("/run/cloon/{name}/bundle"));
    let table = sb.tool("cloon-run", &["list", "--table"], "").ok();
    let lines: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["NAME", "STATUS", "PID", "BUNDLE"], "{table}");
    let bundle = format!("/run/cloon/{name}/bundle");
    let pid_text = pid.to_string();
    assert_eq!(
        lines[1],
        [name.as_str(), "running", pid_text.as_str(), bundle.as_str()],
        "{table}"
    );
    let shown = sb.tool("cloon-run", &["show", "--name", &name], "").json();
    assert_eq!(shown["pid"], pid);
    assert_eq!(shown["root"], sb.runtime_root);
    // state and show: JSON in a pipe and with --json, a table for people with --table.
    let state_json = sb.tool("cloon-run", &["state", "--json", &name], "").json();
    assert_eq!(state_json, state, "--json is what a pipe gets");
    let table = sb.tool("cloon-run", &["state", "--table", &name], "").ok();
    let lines: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines.len(), 2, "{table}");
    assert_eq!(
        lines[0],
        ["NAME", "STATUS", "PID", "BUNDLE", "CREATED"],
        "{table}"
    );
    let created = state["created"].as_str().expect("the runtime's created");
    assert_eq!(
        lines[1],
        [
            name.as_str(),
            "running",
            pid_text.as_str(),
            bundle.as_str(),
            created
        ],
        "{table}"
    );
    let shown_json = sb
        .tool("cloon-run", &["show", "--json", "--name", &name], "")
        .json();
    assert_eq!(shown_json, shown, "--json is what a pipe gets");
    let table = sb
        .tool("cloon-run", &["show", "--table", "--name", &name], "")
        .ok();
    let lines: Vec<(&str, &str)> = table
        .lines()
        .map(|l| l.split_once(' ').map_or((l, ""), |(k, v)| (k, v.trim())))
        .collect();
    assert_eq!(lines[0], ("KEY", "VALUE"), "{table}");
    assert!(lines.contains(&("id", name.as_str())), "{table}");
    assert!(lines.contains(&("pid", pid_text.as_str())), "{table}");
    assert!(lines.contains(&("root", sb.runtime_root)), "{table}");
    assert_eq!(
        lines.len(),
        1 + shown.as_object().map_or(0, |o| o.len()),
        "a line per field: {table}"
    );
    // show takes its name from the document too, as with JSON.
    let table = sb.tool("cloon-run", &["show", "--table"], &up.stdout).ok();
    assert!(
        table
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["id", name.as_str()]),
        "{table}"
    );
    assert_eq!(sb.tool("cloon-run", &["check"], &up.stdout).ok(), up.stdout);

    // exec: hostname, exit status, capabilities.
    assert_exec_works(&sb, &name);
    let seven = sb.tool("cloon-run", &["exec", &name, "sh", "-c", "exit 7"], "");
    assert_eq!(seven.status, 7, "CMD without --");
    let caps = sb
        .tool(
            "cloon-run",
            &["exec", &name, "--", "cat", "/proc/1/status"],
            "",
        )
        .ok();
    let eff = caps
        .lines()
        .find(|l| l.starts_with("CapEff:"))
        .expect("CapEff");
    let bits = u64::from_str_radix(eff.split_whitespace().nth(1).unwrap(), 16).unwrap();
    assert_eq!(
        bits & (1 << 12 | 1 << 13),
        1 << 12 | 1 << 13,
        "NET_ADMIN and NET_RAW: {eff}"
    );

    // down by name, without the document; then again with it: nothing left to do.
    let down = sb.tool("cloon-run", &["down", "--name", &name], "").json();
    assert!(down.get("container").is_none());
    assert!(
        dead(&sb, pid),
        "the container's process {pid} survived down"
    );
    let again = sb.tool("cloon-run", &["down"], &up.stdout);
    let again_doc = again.json();
    assert_eq!(again.status, 0);
    assert!(again_doc.get("container").is_none());
    assert!(
        again_doc.get("bundle").is_some(),
        "down touches only its own part"
    );
    assert_eq!(
        sb.tool("cloon-run", &["check", "--name", &name], "").status,
        3
    );
    assert_eq!(
        sb.tool("cloon-run", &["exec", &name, "--", "true"], "")
            .status,
        3
    );
    sb.tool("cloon-spec", &["down"], &again.stdout).ok();
    sb.assert_clean(&[]);
}

#[test]
fn crun_joins_a_namespace_made_beforehand() {
    let Some(sb) = Sandbox::new("run-netns") else {
        return;
    };
    let name = unique("rn");
    let ns = unique("cloonix_");
    sb.sh(&format!(
        "ip netns add {ns} && ip -n {ns} link add d0 type veth peer name d1 && ip -n {ns} link set d0 up && ip -n {ns} link set lo up"
    ))
    .ok();
    let up = spec_and_run(&sb, &name, &["--netns", &ns], &[]);

    let inside = sb
        .tool("cloon-run", &["exec", &name, "--", "ip", "-o", "link"], "")
        .ok();
    let outside = sb.sh(&format!("ip netns exec {ns} ip -o link")).ok();
    assert_eq!(
        link_names(&inside),
        link_names(&outside),
        "inside:\n{inside}\noutside:\n{outside}"
    );
    assert!(link_names(&inside).contains("d0"));

    run_and_spec_down(&sb, &[], &up.stdout);
    sb.sh(&format!("ip netns delete {ns}")).ok();
    sb.assert_clean(&[]);
}

#[test]
fn runc_works_too() {
    let Some(sb) = Sandbox::new("run-runc") else {
        return;
    };
    let name = unique("rr");
    // runc cannot run a container without a cgroup of its own (cloon-spec's default, none).
    let up = spec_and_run(
        &sb,
        &name,
        &["--cgroups", "runtime"],
        &["--runtime", "runc"],
    );
    let c = up.json()["container"].clone();
    assert_eq!(
        (c["runtime"].as_str(), c["root"].as_str()),
        (Some("runc"), Some("/run/runc"))
    );
    assert_eq!(c["status"], "running");
    assert_exec_works(&sb, &name);
    sb.sh(&format!("runc --root /run/runc state {name}")).ok();

    // TERM is ignored by pid 1 without a handler: down waits --timeout, then kills.
    let started = Instant::now();
    run_and_spec_down(&sb, &["--signal", "TERM", "--timeout", "1"], &up.stdout);
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(sb.sh("runc --root /run/runc list -q").ok().trim(), "");
    sb.assert_clean(&[]);
}

#[test]
fn failures_leave_no_container_and_no_record() {
    let Some(sb) = Sandbox::new("run-fail") else {
        return;
    };
    let name = unique("rf");
    let doc = spec(&sb, &name, &[]);
    let no_run_record = |sb: &Sandbox| {
        let files = sb.sh(&format!("ls /run/cloon/{name}")).ok();
        assert_eq!(
            files.split_whitespace().collect::<Vec<_>>(),
            ["bundle", "spec.json"]
        );
        assert_eq!(sb.sh("crun --root /run/crun list -q").ok().trim(), "");
    };

    // A runtime that fails.
    let run = sb.tool("cloon-run", &["--runtime", "/bin/false"], &doc);
    run.assert_error(STAGE, 102);
    no_run_record(&sb);

    // A command that is not in the root filesystem (the bundle edited after cloon-spec).
    let config = format!("/run/cloon/{name}/bundle/config.json");
    sb.sh(&format!(
        "sed -i 's|\"sleep\"|\"/bin/cloon-nonexistent\"|' {config}"
    ))
    .ok();
    let run = sb.tool("cloon-run", &[], &doc);
    let err = &run.assert_error(STAGE, 102)["error"];
    assert!(
        err["details"]
            .as_str()
            .unwrap()
            .contains("cloon-nonexistent"),
        "{err}"
    );
    no_run_record(&sb);

    // No bundle at all.
    sb.tool("cloon-run", &["--name", &name], "")
        .assert_error(STAGE, 7);
    // A name already taken in the runtime's root by a container cloon did not make.
    sb.sh(&format!(
        "sed -i 's|\"/bin/cloon-nonexistent\"|\"sleep\"|' {config}"
    ))
    .ok();
    sb.sh(&format!("crun --root /run/crun create --bundle /run/cloon/{name}/bundle {name} </dev/null >/dev/null 2>&1")).ok();
    let run = sb.tool("cloon-run", &[], &doc);
    run.assert_error(STAGE, 101);
    assert_eq!(
        sb.sh("crun --root /run/crun list -q").ok().trim(),
        name,
        "cloon deleted a container it did not make"
    );
    sb.sh(&format!("crun --root /run/crun delete -f {name}"))
        .ok();
    no_run_record(&sb);

    // An error document passes through cloon-run untouched, and nothing runs.
    sb.assert_error_passes_through(STAGE, &[], "cloon-spec", 7);
    sb.tool("cloon-spec", &["down"], &doc).ok();
    sb.assert_clean(&[]);
}

#[test]
fn down_of_a_container_that_died_or_vanished() {
    let Some(sb) = Sandbox::new("run-gone") else {
        return;
    };
    let name = unique("rg");
    let up = spec_and_run(&sb, &name, &[], &[]);
    let pid = up.json()["container"]["pid"].as_i64().unwrap();

    // The process killed behind cloon's back (the article's `kill -9`): check says drift.
    sb.sh(&format!("kill -9 {pid}")).ok();
    let deadline = Instant::now() + Duration::from_secs(10);
    while sb.tool("cloon-run", &["state", &name], "").json()["status"] != "stopped" {
        assert!(Instant::now() < deadline, "the container did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(sb.tool("cloon-run", &["check"], &up.stdout).status, 104);
    let listed: Value = sb.tool("cloon-run", &["list"], "").json();
    assert_eq!(listed[0]["status"], "stopped");
    // The container deleted behind cloon's back: down still succeeds.
    sb.sh(&format!("crun --root /run/crun delete -f {name}"))
        .ok();
    assert_eq!(sb.tool("cloon-run", &["check"], &up.stdout).status, 104);
    run_and_spec_down(&sb, &[], &up.stdout);
    sb.assert_clean(&[]);
}

#[test]
fn exec_gets_a_terminal_when_stdin_is_one() {
    let Some(sb) = Sandbox::new("run-tty") else {
        return;
    };
    let have_script = sb.sh("command -v script").status == 0;
    if !can_run("run-tty", have_script, "needs script (util-linux)") {
        return;
    }
    let name = unique("rt");
    let up = spec_and_run(&sb, &name, &[], &[]);
    let run = tool_path("cloon-run");
    // `script` gives the command a pseudo-terminal as stdin: exec adds --tty by itself.
    let tty = sb.sh(&format!(
        "script -qec '{} exec {name} -- sh -c \"test -t 0 && echo TTY\"' /dev/null",
        run.display()
    ));
    assert!(tty.stdout.contains("TTY"), "{}{}", tty.stdout, tty.stderr);
    let plain = sb.tool(
        "cloon-run",
        &["exec", &name, "--", "sh", "-c", "test -t 0 || echo PLAIN"],
        "",
    );
    assert_eq!(plain.ok().trim(), "PLAIN");
    let mut child = sb
        .cmd(&run)
        .args(["exec", &name, "--", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"through stdin\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "through stdin\n");
    run_and_spec_down(&sb, &[], &up.stdout);
    sb.assert_clean(&[]);
}

/// `exec`'s options, as crun's: the working directory is the container's own (the image's
/// WorkingDir, through cloon-spec) unless `--cwd` says another, `-e` sets variables, `-u` the
/// user, `-d` runs the command in the background; bad values are refused before anything runs.
#[test]
fn exec_takes_env_cwd_user_and_detach() {
    let Some(sb) = Sandbox::new("run-exec-opts") else {
        return;
    };
    let name = unique("ro");
    // An image whose WorkingDir is /tmp: cloon-spec makes it the bundle's process.cwd.
    let image = r#"{"cloonVersion":"1","image":{"path":"/none.img","fstype":"ext4","bytes":1,
        "config":{"cwd":"/tmp"}}}"#;
    let rootfs = sb.busybox_rootfs();
    let doc = sb
        .tool(
            "cloon-spec",
            &[
                "--name",
                &name,
                "--rootfs",
                rootfs.to_str().expect("utf-8 path"),
            ],
            image,
        )
        .ok();
    let up = sb.tool("cloon-run", &[], &doc);
    assert_eq!(up.status, 0, "{}{}", up.stdout, up.stderr);
    let exec = |args: &[&str]| sb.tool("cloon-run", &[&["exec"], args].concat(), "");

    assert_eq!(exec(&[&name, "--", "busybox", "pwd"]).ok().trim(), "/tmp");
    assert_eq!(
        exec(&["--cwd", "/etc", &name, "--", "busybox", "pwd"])
            .ok()
            .trim(),
        "/etc"
    );
    assert_eq!(
        exec(&[
            "-e",
            "A=b",
            "--env",
            "B=c d",
            &name,
            "--",
            "sh",
            "-c",
            "echo $A/$B"
        ])
        .ok()
        .trim(),
        "b/c d"
    );
    assert_eq!(
        exec(&["-u", "1000:1000", &name, "--", "busybox", "id", "-u"])
            .ok()
            .trim(),
        "1000"
    );
    assert_eq!(
        exec(&["-u", "1000:1001", &name, "--", "busybox", "id", "-g"])
            .ok()
            .trim(),
        "1001"
    );

    // Detached: exec returns at once and prints nothing; the command runs in the container.
    let started = Instant::now();
    let detached = exec(&["-d", &name, "--", "sh", "-c", "echo noise; exec sleep 30"]);
    assert_eq!(detached.status, 0, "{}", detached.stderr);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(detached.stdout, "");
    let ps = exec(&[&name, "--", "ps"]).ok();
    assert!(ps.contains("sleep 30"), "{ps}");

    // Bad values are refused (error 4) before anything runs.
    for bad in [
        &["-e", "NOEQUALS", &name, "--", "true"][..],
        &["-e", "=v", &name, "--", "true"],
        &["--cwd", "tmp", &name, "--", "true"],
        &["-u", "root", &name, "--", "true"],
    ] {
        let out = exec(bad);
        assert_eq!(out.status, 4, "{bad:?}: {}{}", out.stdout, out.stderr);
    }
    run_and_spec_down(&sb, &[], &up.stdout);
    sb.assert_clean(&[]);
}
