//! Shared fixtures of the integration tests: a sandbox (fresh mount and network namespaces with
//! their own `/run`) in which the tools run as root on real kernel objects, and checks that
//! nothing is left behind.
//!
//! The sandbox is a process that `unshare` put in new namespaces; every command a test runs enters
//! them with `nsenter`. The host's interfaces, `/run/netns` and mounts are never touched. Loop
//! devices are global: the sandbox detaches those backed by its own files when dropped.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The OCI runtimes the tests use, each with the state directory (`--root`) it has by default.
const RUNTIMES: [(&str, &str); 2] = [("crun", "/run/crun"), ("runc", "/run/runc")];

/// Where the workspace's binaries are (next to the test executable's `deps/`).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf()
}

/// `PATH` with the tools under test first.
pub fn tools_path() -> String {
    format!(
        "{}:{}",
        bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// The path of one of cloon's tools, which `cargo build --workspace` must have built.
pub fn tool_path(tool: &str) -> PathBuf {
    let p = bin_dir().join(tool);
    assert!(
        p.is_file(),
        "{} is missing: run `cargo build --workspace` before the tests",
        p.display()
    );
    p
}

/// The repository's top directory (the workspace above `tests/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace above tests/")
        .to_path_buf()
}

/// The text under `heading` of the repository's README.md (the heading's line as written, as
/// `## Labs`): from the line after it to the next heading of any level, headings inside fenced
/// code blocks (a shell comment) aside. Fails the test, naming the heading, when the README has
/// no such heading: a test of the README must not pass on a README that lost what it runs.
pub fn readme_section(heading: &str) -> String {
    let path = repo_root().join("README.md");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    section(&text, heading)
        .unwrap_or_else(|| panic!("README.md has no heading `{heading}`: update the test with it"))
}

/// The text under the heading `heading` of the Markdown `text`, as [`readme_section`] reads it.
pub fn section(text: &str, heading: &str) -> Option<String> {
    let mut fenced = false;
    let mut inside = false;
    let mut out = String::new();
    for line in text.lines() {
        let fence = line.trim_start().starts_with("```");
        let is_heading = !fenced && !fence && line.starts_with('#') && {
            let rest = line.trim_start_matches('#');
            rest.starts_with(' ')
        };
        if fence {
            fenced = !fenced;
        }
        if is_heading {
            if inside {
                break;
            }
            inside = line.trim_end() == heading;
            continue;
        }
        if inside {
            out.push_str(line);
            out.push('\n');
        }
    }
    inside.then_some(out)
}

/// The first code block fenced as ```` ```LANG ```` in `text` after the first line that contains
/// `after` (`""`: from the start), without its fences. Fails the test, naming what it looked for,
/// when there is none.
pub fn code_block(text: &str, after: &str, lang: &str) -> String {
    let from: Vec<&str> = text.lines().skip_while(|l| !l.contains(after)).collect();
    assert!(!from.is_empty(), "no line with `{after}` in:\n{text}");
    let fence = format!("```{lang}");
    let start = 1 + from
        .iter()
        .position(|l| l.trim() == fence)
        .unwrap_or_else(|| panic!("no {fence} block after `{after}` in:\n{text}"));
    let len = from[start..]
        .iter()
        .position(|l| l.trim() == "```")
        .unwrap_or_else(|| panic!("the {fence} block after `{after}` has no end"));
    let mut block = from[start..start + len].join("\n");
    block.push('\n');
    block
}

/// The SHA-256 of a file, to prove an image was not changed.
pub fn sha256(path: &str) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    assert!(out.status.success(), "sha256sum {path} failed");
    String::from_utf8_lossy(&out.stdout)
        .split(' ')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// A container name no other test (or concurrent run) uses: crun names cgroups after it, and
/// cgroups are global, shared by every sandbox.
pub fn unique(tag: &str) -> String {
    format!("{tag}{}", std::process::id())
}

/// Asserts that the config.json at `path` is a valid OCI runtime configuration, by the tests' own
/// means: it must read as oci-spec's typed `Spec` (every field of the right type: `"readonly":
/// "false"` as a string, the article's sed defect, is refused), with the fields a runtime needs.
/// When `CLOON_OCI_VALIDATE` names a JSON Schema validator (a development aid, such as the OCI
/// runtime-spec schema's), it is run too, and must pass.
pub fn assert_valid_config(path: &Path) {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let spec: oci_spec::runtime::Spec = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "{} is not an OCI runtime configuration: {e}",
            path.display()
        )
    });
    assert!(
        spec.version().starts_with("1."),
        "{}: ociVersion {}",
        path.display(),
        spec.version()
    );
    let root = spec.root().as_ref().expect("root");
    assert!(
        !root.path().as_os_str().is_empty(),
        "{}: root.path",
        path.display()
    );
    let process = spec.process().as_ref().expect("process");
    assert!(
        process.args().as_ref().is_some_and(|a| !a.is_empty()),
        "{}: process.args",
        path.display()
    );
    assert!(
        process.cwd().is_absolute(),
        "{}: process.cwd",
        path.display()
    );
    let value: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    for (pointer, what) in [
        ("/root/readonly", "root.readonly"),
        ("/process/terminal", "process.terminal"),
    ] {
        if let Some(v) = value.pointer(pointer) {
            assert!(
                v.is_boolean(),
                "{}: {what} is {v}, not a boolean",
                path.display()
            );
        }
    }
    if let Some(tool) = std::env::var_os("CLOON_OCI_VALIDATE") {
        let out = Command::new(&tool)
            .arg(path)
            .output()
            .unwrap_or_else(|e| panic!("CLOON_OCI_VALIDATE={}: {e}", tool.to_string_lossy()));
        assert!(
            out.status.success(),
            "{} {}: {}{}",
            tool.to_string_lossy(),
            path.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Shell code that adds a standalone interface NAME: a dummy, or a bridge on kernels built
/// without the dummy driver (as on some test machines).
pub fn add_standalone(name: &str) -> String {
    format!("(ip link add {name} type dummy 2>/dev/null || ip link add {name} type bridge)")
}

/// The article's Debian bookworm image (debootstrap with its package list), made once per build
/// directory by `cloon-img create --debootstrap bookworm` and shared by the tests that run it
/// (read-only: each container gets its own overlay). `None` when `CLOON_SKIP_DEBOOTSTRAP=1`.
///
/// debootstrap needs the network, which sandboxes have not, so the image is made outside them:
/// cloon-img only writes files (and debootstrap's own mounts stay in a private mount namespace),
/// so this touches no interface, namespace or host mount.
pub fn bookworm_image() -> Option<PathBuf> {
    if std::env::var("CLOON_SKIP_DEBOOTSTRAP").as_deref() == Ok("1") {
        eprintln!("skipping: CLOON_SKIP_DEBOOTSTRAP=1 (the test needs a debootstrap image)");
        return None;
    }
    let dir = bin_dir().join("cloon-test-cache");
    std::fs::create_dir_all(&dir).expect("cache dir");
    let lock = std::fs::File::create(dir.join("bookworm.lock")).expect("lock file");
    let _lock = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .expect("lock the image cache");
    let img = dir.join("bookworm.img");
    if !img.exists() {
        let made = Command::new(tool_path("cloon-img"))
            .args(["create", "--debootstrap", "bookworm"])
            .arg(&img)
            .stdin(Stdio::null())
            .output()
            .expect("cloon-img");
        assert!(
            made.status.success(),
            "{}",
            String::from_utf8_lossy(&made.stderr)
        );
    }
    Some(img)
}

/// The (kind, name) of the items of a `gc` report's `found` or `kept` list, sorted.
pub fn gc_items(report: &serde_json::Value, list: &str) -> Vec<(String, String)> {
    let mut items: Vec<(String, String)> = report[list]
        .as_array()
        .unwrap_or_else(|| panic!("no {list} in {report}"))
        .iter()
        .map(|i| {
            (
                i["kind"].as_str().unwrap_or_default().to_string(),
                i["name"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    items.sort();
    items
}

/// One (kind, name) item of a `gc` report, as [`gc_items`] lists them.
pub fn gc_item(kind: &str, name: &str) -> (String, String) {
    (kind.to_string(), name.to_string())
}

/// The shared lower cloon-overlay mounts for `img`: `/run/cloon/.lowers/<dev>-<ino>/lower`.
pub fn lower_of(img: &str) -> String {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(img).expect("the image");
    format!("/run/cloon/.lowers/{}-{}/lower", meta.dev(), meta.ino())
}

/// The tools a user installs, in pipeline order (written here apart from the xtask's list, so
/// that a test of what the xtask made does not trust the xtask).
pub const TOOLS: [&str; 6] = [
    "cloon-img",
    "cloon-overlay",
    "cloon-netns",
    "cloon-spec",
    "cloon-run",
    "cloon-lab",
];

/// Whether privileged tests can run here. Without root they are skipped, unless
/// `CLOON_REQUIRE_ROOT=1`, where they fail.
pub fn have_root(test: &str) -> bool {
    can_run(test, nix::unistd::geteuid().is_root(), "needs root")
}

/// Whether (a part of) `test` can run: when not (`ok` false, for the reason `why`), it is
/// skipped saying so on stderr, unless `CLOON_REQUIRE_ROOT=1` (as CI runs the tests), where it
/// fails.
pub fn can_run(test: &str, ok: bool, why: &str) -> bool {
    if !ok {
        assert!(
            std::env::var("CLOON_REQUIRE_ROOT").as_deref() != Ok("1"),
            "{test} {why} and CLOON_REQUIRE_ROOT=1 is set"
        );
        eprintln!("skipping {test}: {why} (set CLOON_REQUIRE_ROOT=1 to make this a failure)");
    }
    ok
}

/// The result of running one command in the sandbox.
#[derive(Debug)]
pub struct Run {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(out: Output) -> Run {
        Run {
            status: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Run {
    /// Asserts success and returns stdout.
    pub fn ok(self) -> String {
        assert_eq!(
            self.status, 0,
            "command failed:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self.stdout
    }

    /// Stdout parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", self.stdout, self.stderr))
    }

    /// Asserts that the tool failed with an error document of `stage`, with `code` (also the exit
    /// status) and a message; returns the document.
    pub fn assert_error(&self, stage: &str, code: u64) -> serde_json::Value {
        assert_eq!(
            self.status, code as i32,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        let doc = self.json();
        assert_eq!(doc["cloonVersion"], "1");
        assert_eq!(doc["error"]["code"], code, "{doc}");
        assert_eq!(doc["error"]["stage"], stage, "{doc}");
        assert!(
            !doc["error"]["msg"].as_str().unwrap_or("").is_empty(),
            "{doc}"
        );
        doc
    }
}

/// Runs `cmd` with `stdin`, and its output piped; with a `timeout`, fails the test if the command
/// has not finished, its output closed, by then.
fn run(cmd: &mut Command, stdin: &str, timeout: Option<Duration>) -> Run {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut input = child.stdin.take().expect("piped");
    input.write_all(stdin.as_bytes()).expect("write stdin");
    drop(input);
    let out = match timeout {
        None => child.wait_with_output(),
        Some(timeout) => {
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                let _ = tx.send(child.wait_with_output());
            });
            rx.recv_timeout(timeout).unwrap_or_else(|_| {
                panic!("{cmd:?} did not finish within {timeout:?}: something holds its output open")
            })
        }
    };
    Run::from(out.expect("wait"))
}

/// Starts `cmd` (made with [`Sandbox::cmd`]) with `stdin` and SIGKILLs it ([`kill_tool`]) once
/// `delay` has passed since its input was given: whether it was still running then, and how
/// long it ran.
pub fn kill_after(cmd: &mut Command, stdin: &str, delay: Duration) -> (bool, Duration) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut input = child.stdin.take().expect("piped");
    let _ = input.write_all(stdin.as_bytes());
    drop(input);
    let start = std::time::Instant::now();
    while start.elapsed() < delay {
        if child.try_wait().expect("wait").is_some() {
            return (false, start.elapsed());
        }
        std::thread::sleep(Duration::from_micros(100));
    }
    let running = child.try_wait().expect("wait").is_none();
    kill_tool(&mut child);
    (running, start.elapsed())
}

/// Where the kills of a kill-at-any-moment test fall: below the fastest uninterrupted run seen
/// so far. It starts at a run measured to its end, and every trial whose tool ended before its
/// kill lowers it to that run's time: a first measure slowed by a cold cache or by the other
/// tests starting beside it would let most later, faster runs end before their kill.
#[derive(Debug)]
pub struct KillWindow(pub Duration);

impl KillWindow {
    /// A moment within the window, from the random number `r`.
    pub fn pick(&self, r: u64) -> Duration {
        Duration::from_micros(r % (self.0.as_micros() as u64).max(1))
    }

    /// Takes in a trial's outcome, as [`kill_after`] returns it.
    pub fn ended(&mut self, (killed, took): (bool, Duration)) {
        if !killed {
            self.0 = self.0.min(took);
        }
    }
}

/// A deterministic sequence of numbers (xorshift64), so that every run of a test tries the same
/// moments.
#[derive(Debug)]
pub struct Seeded(pub u64);

impl Seeded {
    pub fn draw(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// SIGKILLs a tool started with [`Sandbox::cmd`] and reaps it. nsenter forks to enter the
/// sandbox's pid namespace, so the tool is nsenter's child: the tool is killed first (as a kill
/// of the tool by a user would), then nsenter (which may not have forked yet: then the tool never
/// ran). Its own children (a runtime command cloon-run's guardian finishes) are left to end.
pub fn kill_tool(child: &mut Child) {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let pid = child.id();
    // Stopped first, so that it cannot fork the tool between the look at its children and its
    // end (a stopped process forks nothing; a fork under way completes before it stops).
    let _ = kill(Pid::from_raw(pid as i32), Signal::SIGSTOP);
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.chars().next());
        if !matches!(state, Some('R' | 'S' | 'D')) || std::time::Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let children =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    let tools: Vec<i32> = children
        .split_whitespace()
        .filter_map(|c| c.parse().ok())
        .collect();
    for tool in &tools {
        let _ = kill(Pid::from_raw(*tool), Signal::SIGKILL);
    }
    let _ = child.kill();
    let _ = child.wait();
    // A killed process lets go of its locks and files when it exits, a moment after the signal
    // (longer on a loaded machine): wait until each is gone or a zombie, as a user's next command
    // after a kill would find it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    for tool in tools {
        while std::time::Instant::now() < deadline {
            let stat = std::fs::read_to_string(format!("/proc/{tool}/stat")).unwrap_or_default();
            let state = stat
                .rsplit_once(") ")
                .and_then(|(_, rest)| rest.chars().next());
            if matches!(state, None | Some('Z' | 'X')) {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Fresh mount and network namespaces, a private `/run`, a scratch directory on the host.
#[derive(Debug)]
pub struct Sandbox {
    holder: Child,
    /// The sandbox's first process (pid 1 in its pid namespace), as the host sees it.
    init: u32,
    /// A scratch directory for images and files, removed on drop.
    pub dir: PathBuf,
    /// crun's state directory (inside the sandbox's `/run`).
    pub runtime_root: &'static str,
}

impl Sandbox {
    /// Enters a new sandbox, or `None` (test skipped) without root.
    pub fn new(test: &str) -> Option<Sandbox> {
        if !have_root(test) {
            return None;
        }
        let dir = std::env::temp_dir().join(format!("cloon-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        // A pid namespace too, whose first process (cloon-sandbox-init) reaps what ends there:
        // when the sandbox ends, the kernel kills every process left in it, containers included.
        let script = format!(
            "mount -t tmpfs -o mode=755 cloon-sandbox /run && ip link set lo up && echo ready && exec {}",
            tool_path("cloon-sandbox-init").display()
        );
        let mut holder = Command::new("unshare")
            .args([
                "--mount",
                "--net",
                "--pid",
                "--fork",
                "--kill-child",
                "--mount-proc",
                "--propagation",
                "private",
                "sh",
                "-c",
                &script,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("unshare (util-linux) must be installed");
        let mut line = String::new();
        let out = holder.stdout.take().expect("piped");
        BufReader::new(out)
            .read_line(&mut line)
            .expect("sandbox output");
        assert_eq!(line.trim(), "ready", "the sandbox did not start");
        // The sandbox's first process, which commands join: unshare's only child.
        let children = format!("/proc/{0}/task/{0}/children", holder.id());
        let init: u32 = std::fs::read_to_string(&children)
            .ok()
            .and_then(|c| c.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no sandbox process in {children}"));
        Some(Sandbox {
            holder,
            init,
            dir,
            runtime_root: RUNTIMES[0].1,
        })
    }

    /// A command that runs inside the sandbox, with cloon's state in the sandbox's `/run`.
    pub fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("nsenter");
        c.arg("-t")
            .arg(self.init.to_string())
            .args(["-m", "-n", "-p", "--"])
            .arg(program);
        c.env_remove("CLOON_STATE_DIR");
        c
    }

    /// Whether the process `pid` of the sandbox (as its pid namespace numbers it) is alive: it
    /// exists and is not a zombie.
    pub fn alive(&self, pid: i64) -> bool {
        let status = self
            .sh(&format!("cat /proc/{pid}/status 2>/dev/null; true"))
            .ok();
        status
            .lines()
            .find_map(|l| l.strip_prefix("State:"))
            .is_some_and(|state| !state.trim_start().starts_with(['Z', 'X']))
    }

    /// Runs a cloon tool with `args`, giving it `stdin` (empty: no document).
    pub fn tool(&self, tool: &str, args: &[&str], stdin: &str) -> Run {
        run(self.cmd(tool_path(tool)).args(args), stdin, None)
    }

    /// Runs a command made with [`Sandbox::cmd`], giving it `stdin`.
    pub fn run_cmd(&self, cmd: &mut Command, stdin: &str) -> Run {
        run(cmd, stdin, None)
    }

    /// Runs a shell script inside the sandbox, with cloon's tools first in `PATH`.
    pub fn sh(&self, script: &str) -> Run {
        run(&mut self.sh_cmd(script), "", None)
    }

    /// Runs a shell script as [`Sandbox::sh`] does, and fails the test if it has not finished,
    /// its output closed, within `secs`: a container holding a tool's stdout or stderr would keep
    /// it open.
    pub fn sh_within(&self, script: &str, secs: u64) -> Run {
        run(
            &mut self.sh_cmd(script),
            "",
            Some(Duration::from_secs(secs)),
        )
    }

    fn sh_cmd(&self, script: &str) -> Command {
        let mut cmd = self.cmd("sh");
        cmd.args(["-c", script]).env("PATH", tools_path());
        cmd
    }

    /// Gives `tool` (with `args`) the error document of an earlier `stage` that failed with `code`:
    /// asserts that the tool passes it on unchanged, with `code` as its exit status.
    pub fn assert_error_passes_through(&self, tool: &str, args: &[&str], stage: &str, code: u8) {
        let err = serde_json::json!({"cloonVersion": "1",
            "error": {"code": code, "stage": stage, "msg": "m", "details": "d"}});
        let run = self.tool(tool, args, &err.to_string());
        assert_eq!(run.status, i32::from(code), "{tool}: {}", run.stderr);
        assert_eq!(run.json(), err, "{tool}");
    }

    /// Gives the sandbox an `eth0` of its own, up with the address 192.0.2.1/24, standing for the
    /// host's; returns its state as [`Sandbox::eth0`] prints it.
    pub fn add_eth0(&self) -> String {
        self.sh(&format!(
            "{} && ip addr add 192.0.2.1/24 dev eth0 && ip link set eth0 up",
            add_standalone("eth0")
        ))
        .ok();
        let eth0 = self.eth0();
        assert!(eth0.contains("192.0.2.1/24"), "{eth0}");
        eth0
    }

    /// The sandbox's `eth0`: its index, flags, state, MAC address and addresses.
    pub fn eth0(&self) -> String {
        self.sh("ip -o link show eth0; ip -o addr show eth0").ok()
    }

    /// The path and text of the config.json of the bundle the document `doc` names (a file in the
    /// sandbox's `/run`).
    fn config_text(&self, doc: &serde_json::Value) -> (String, String) {
        let path = doc["bundle"]["config"]
            .as_str()
            .expect("bundle.config")
            .to_string();
        // Read inside the sandbox (its own /run), the path quoted: it may hold spaces.
        let text = self
            .sh(&format!("cat '{}'", path.replace('\'', "'\\''")))
            .ok();
        (path, text)
    }

    /// The path and contents of the config.json of the bundle the document `doc` names.
    pub fn config_of(&self, doc: &serde_json::Value) -> (String, serde_json::Value) {
        let (path, text) = self.config_text(doc);
        let config = serde_json::from_str(&text).expect("config.json is JSON");
        (path, config)
    }

    /// Asserts that the config.json of the bundle the document `doc` names is valid against the
    /// OCI runtime-spec schema, checking a copy in the scratch directory.
    pub fn assert_valid_config(&self, doc: &serde_json::Value) {
        let (path, text) = self.config_text(doc);
        let copy = self.path("config.json");
        std::fs::write(&copy, text).unwrap_or_else(|e| panic!("copy of {path}: {e}"));
        assert_valid_config(&copy);
        let _ = std::fs::remove_file(&copy);
    }

    /// A busybox image made by cloon-img in the scratch directory; its path.
    pub fn busybox_image(&self, file: &str) -> String {
        let img = self.path(file).to_string_lossy().into_owned();
        self.tool("cloon-img", &["create", "--busybox", &img], "")
            .ok();
        img
    }

    /// A path in the scratch directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// A root filesystem in the scratch directory: a static busybox and the applets the tests
    /// use, so that tests of cloon-spec and cloon-run need neither cloon-img nor cloon-overlay.
    pub fn busybox_rootfs(&self) -> PathBuf {
        let root = self.path("rootfs");
        for dir in ["bin", "proc", "sys", "dev", "tmp", "etc"] {
            std::fs::create_dir_all(root.join(dir)).expect("rootfs dir");
        }
        std::fs::copy("/bin/busybox", root.join("bin/busybox"))
            .expect("busybox-static must be installed");
        for applet in ["sh", "sleep", "ip", "hostname", "cat", "ls", "ps", "true"] {
            symlink("busybox", root.join("bin").join(applet)).expect("applet link");
        }
        root
    }

    /// Loop devices backed by a file of this sandbox.
    pub fn loops(&self) -> Vec<String> {
        let out = Command::new("losetup")
            .args(["-n", "-O", "NAME,BACK-FILE", "-l"])
            .output()
            .expect("losetup");
        let dir = self.dir.to_string_lossy().into_owned();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains(&dir))
            .map(|l| l.split_whitespace().next().unwrap_or_default().to_string())
            .collect()
    }

    /// Everything a test could have left: loop devices of ours, overlay and cloon mounts, named
    /// namespaces, interfaces beyond `keep`, containers, state records. Empty when clean.
    pub fn leftovers(&self, keep_links: &[&str]) -> Vec<String> {
        let mut left: Vec<String> = self
            .loops()
            .into_iter()
            .map(|l| format!("loop device {l}"))
            .collect();
        let mounts = self.sh("findmnt -rn -o TARGET,FSTYPE").ok();
        for m in mounts.lines() {
            if m.contains(" overlay") || m.contains("/cloon") || m.starts_with("/run/netns/") {
                left.push(format!("mount {m}"));
            }
        }
        let netns = self.sh("ls /run/netns 2>/dev/null; true").ok();
        left.extend(netns.lines().map(|n| format!("namespace {n}")));
        let links = self.sh("ip -o link show | awk -F': ' '{print $2}'").ok();
        for l in links.lines().map(|l| l.split('@').next().unwrap_or(l)) {
            if l != "lo" && !keep_links.contains(&l) {
                left.push(format!("link {l}"));
            }
        }
        for (runtime, root) in RUNTIMES {
            let ctrs = self
                .sh(&format!(
                    "{runtime} --root {root} list -q 2>/dev/null; true"
                ))
                .ok();
            left.extend(ctrs.lines().map(|c| format!("{runtime} container {c}")));
        }
        // The state directory itself, and the marker that makes it one, may stay.
        let state = self
            .sh("ls -A /run/cloon 2>/dev/null | grep -vx .cloon-state; true")
            .ok();
        left.extend(state.lines().map(|s| format!("state record {s}")));
        left
    }

    /// The files in the scratch directory, sorted: nothing but what a test keeps may be left there.
    pub fn scratch_files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.dir)
            .expect("scratch dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// Joins sandboxes as hosts joined by one underlay LAN, `NET.0/24` (`net` is its first three
    /// bytes, e.g. `192.168.99`): `hosts[0]` holds a bridge `under` (address .1), and each other
    /// host `i` a veth `under` (address .(i+1))
    /// whose peer `u{i}` is a port of that bridge. Each pair is made in `hosts[0]`'s network
    /// namespace with its peer put straight into host `i`'s (by the sandbox's first process):
    /// nothing is made in this machine's own namespaces. Returns the interfaces of `hosts[0]`
    /// (for [`Sandbox::assert_clean`]); the other hosts have `under`.
    pub fn underlay(hosts: &[&Sandbox], net: &str) -> Vec<String> {
        let first = hosts[0];
        let in_first = |script: &str| {
            let out = Command::new("nsenter")
                .arg("-t")
                .arg(first.init.to_string())
                .args(["-n", "--", "sh", "-c", script])
                .output()
                .expect("nsenter");
            assert!(
                out.status.success(),
                "{script}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        in_first(&format!(
            "ip link add under type bridge && ip addr add {net}.1/24 dev under && \
             ip link set under up"
        ));
        let mut made = vec!["under".to_string()];
        for (i, host) in hosts.iter().enumerate().skip(1) {
            in_first(&format!(
                "ip link add u{i} type veth peer name under netns {} && ip link set u{i} master \
                 under && ip link set u{i} up",
                host.init
            ));
            host.sh(&format!(
                "ip addr add {net}.{}/24 dev under && ip link set under up",
                i + 1
            ))
            .ok();
            made.push(format!("u{i}"));
        }
        made
    }

    /// Asserts that nothing is left.
    pub fn assert_clean(&self, keep_links: &[&str]) {
        let left = self.leftovers(keep_links);
        assert!(left.is_empty(), "left behind: {left:#?}");
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // Containers first (they are processes, not tied to the namespaces), then the holder:
        // its namespaces, mounts and interfaces go with it. Then loop devices, which are global.
        for (runtime, root) in RUNTIMES {
            let list = format!(
                "for c in $({runtime} --root {root} list -q 2>/dev/null); do {runtime} --root {root} delete -f $c; done"
            );
            let _ = self
                .cmd("sh")
                .args(["-c", &list])
                .stdin(Stdio::null())
                .output();
        }
        // The parent cgroups of the sandbox's state directories, which the runtime's delete
        // leaves: each state directory's cloon-run gc removes its own.
        let gc = format!(
            "find /run -name .cloon-state -printf '%h\\n' 2>/dev/null | while read -r d; do \
             {} --state-dir \"$d\" gc >/dev/null 2>&1; done",
            tool_path("cloon-run").display()
        );
        let _ = self
            .cmd("sh")
            .args(["-c", &gc])
            .stdin(Stdio::null())
            .output();
        let _ = self.holder.kill();
        let _ = self.holder.wait();
        for dev in self.loops() {
            let _ = Command::new("losetup").args(["-d", &dev]).output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
