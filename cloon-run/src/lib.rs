//! cloon-run: the article's step 5. Creates and starts the container of an OCI bundle with crun
//! (or runc), adds the `container` part to the document, runs commands in it (`exec`), and kills
//! and deletes it (`down`).
//!
//! The runtime and the container never get cloon-run's stdout or stderr: their stdin and stdout
//! are /dev/null and their stderr is `<state>/<name>/container.log`, so a pipeline ends when
//! cloon-run does while the container keeps running.
//!
//! `up` reports what really happened to the container's command. After the runtime's `start`,
//! it waits until the container's process runs the command (its `/proc/PID/exe` is no longer the
//! runtime's program, which it ran between `create` and `start`), then watches it on a pidfd
//! until it waits for something (asleep, as a service or `sleep` is), at most `--settle`
//! ([`SETTLE`] by default). A command that has ended by then (`/bin/true`, `sh -c 'exit 3'`, a
//! program that fails at once) fails `up` with error 102, its exit status in the message
//! ("exit status 3", "killed by signal 9 (SIGKILL)") and its log in `details`; the container is
//! deleted and the record released, so nothing is half made and the pipeline sees the failure.
//! The exit status is known because cloon-run makes itself the reaper of what its children leave
//! (`PR_SET_CHILD_SUBREAPER`) for the length of `up`: the container's process, left by the
//! runtime's `create`, becomes its child. A command that ends later is `check`'s to find (104).
//!
//! A runtime that cannot be executed (`--runtime` naming a missing path, a directory, a file
//! without execute permission, a script whose `#!` interpreter is missing) fails with error 100,
//! the message naming the errno of the failed `exec` ("Permission denied (EACCES)") and what to
//! do; nothing is left behind. The errno reaches cloon-run from the guardian that runs the
//! runtime (see [`guard`]) through a close-on-exec pipe.

pub mod cgroup;
pub mod gc;
pub mod guard;
pub mod process;
pub mod runtime;
pub mod stage;

use cloon_core::cgroups::Mode;
use cloon_core::doc::{Bundle, Container};
use cloon_core::state::absolute;
use cloon_core::{
    cli, explain, host, name, table, Code, Context, Document, Error, Result, StateDir, Undo,
};
use runtime::{Kind, Runtime};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The stage name in error documents.
pub const STAGE: &str = "cloon-run";
/// The key of this stage in the document.
pub const PART: &str = <Container as cloon_core::doc::Part>::KEY;
/// The name of this stage's record in the state directory.
pub const RECORD: &str = "run";
/// The file that gets the runtime's and the container's stderr.
pub const LOG: &str = "container.log";
/// The file the runtime's `create --pid-file` writes the container's pid to.
pub const PID_FILE: &str = "container.pid";

/// Flags of `cloon-run up`.
#[derive(Debug, Clone, clap::Args)]
pub struct UpArgs {
    /// The container's name, also its runtime id [default: the document's]
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// The OCI bundle [default: the document's bundle.path]
    #[arg(long, value_name = "DIR")]
    pub bundle: Option<PathBuf>,
    /// The OCI runtime: crun, runc, or the path of a program with their command line
    /// [default: crun]
    #[arg(long, value_name = "crun|runc|PATH")]
    pub runtime: Option<String>,
    /// The runtime's state directory [default: the runtime's own, /run/crun or /run/runc]
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// How long, at most, in milliseconds, up watches the container's command once it started:
    /// a command that ends before it waits for something (as a service or `sleep` does) fails
    /// up (102) with its exit status
    #[arg(long, value_name = "MS", default_value_t = SETTLE_MS)]
    pub settle: u64,
}

impl Default for UpArgs {
    fn default() -> Self {
        UpArgs {
            name: None,
            bundle: None,
            runtime: None,
            root: None,
            settle: SETTLE_MS,
        }
    }
}

/// The signal `down` stops the container with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Signal {
    /// SIGKILL, the article's `kill -9`
    #[default]
    #[value(name = "KILL")]
    Kill,
    /// SIGTERM, for a process that handles it (pid 1 of a namespace ignores it otherwise);
    /// followed by KILL after the timeout
    #[value(name = "TERM")]
    Term,
}

impl Signal {
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Kill => "KILL",
            Signal::Term => "TERM",
        }
    }
}

/// How `cloon-run down` stops the container.
#[derive(Debug, Clone, clap::Args)]
pub struct StopArgs {
    /// The signal that stops the container
    #[arg(long, value_enum, ignore_case = true, default_value = "KILL")]
    pub signal: Signal,
    /// Seconds to wait for the container to stop before killing it with KILL
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub timeout: u64,
}

impl Default for StopArgs {
    fn default() -> Self {
        StopArgs {
            signal: Signal::Kill,
            timeout: 10,
        }
    }
}

/// Flags of `cloon-run exec`.
#[derive(Debug, Clone, clap::Args)]
pub struct ExecArgs {
    /// Give the command a terminal (automatic when stdin is a terminal, unless --detach)
    #[arg(short, long, conflicts_with = "detach")]
    pub tty: bool,
    /// Run the command in the background: exec returns once it started, and prints nothing of
    /// it (its stderr goes to the container's log)
    #[arg(short, long)]
    pub detach: bool,
    /// Set an environment variable of the command (repeatable)
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// The command's working directory, absolute [default: the container's own, process.cwd
    /// of its bundle's config.json (the image's WorkingDir), else /]
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<String>,
    /// Run the command as this user and group, numeric [default: root]
    #[arg(short, long, value_name = "UID[:GID]")]
    pub user: Option<String>,
    /// The container's name
    pub name: String,
    /// The command and its arguments
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub cmd: Vec<String>,
}

/// What `up` recorded in `<state>/<name>/run.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The runtime's id of the container (its name).
    pub id: String,
    /// The `--runtime` value.
    pub runtime: String,
    /// The runtime program, absolute.
    pub program: String,
    /// The runtime's `--root`.
    pub root: String,
    pub bundle: String,
    /// The container's stderr.
    pub log: String,
    /// The container's process on the host, once started (0 before).
    pub pid: i64,
    /// When that process started (clock ticks after boot, `/proc/PID/stat`): with the pid, it
    /// names the process for good. 0 when unknown (before the start, or a record of an older
    /// cloon-run).
    #[serde(default)]
    pub start_time: u64,
    /// The container's cgroup (`linux.cgroupsPath` of its bundle's config.json, `/cloon/ID/NAME`
    /// when cloon-spec wrote it); `down` removes its parent once empty. Empty when the config
    /// names none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cgroup: String,
    /// The cgroup mode the bundle asked for (`none`, `cloon`, `runtime`; see
    /// [`cloon_core::cgroups`]). Empty in a record of an older cloon-run.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cgroups: String,
}

impl RunRecord {
    pub fn runtime(&self) -> Result<Runtime> {
        Runtime::recorded(&self.runtime, &self.program, &self.root)
    }

    /// The document's `container` part this record stands for, with the runtime's `status`.
    pub fn to_part(&self, status: String) -> Container {
        Container {
            id: self.id.clone(),
            runtime: self.runtime.clone(),
            root: self.root.clone(),
            pid: self.pid,
            status,
        }
    }
}

/// The record of `name` (what `show` prints), or [`Code::Unknown`].
pub fn record(state: &StateDir, name: &str) -> Result<RunRecord> {
    state.require(name, RECORD, "container")
}

/// `up`: creates and starts the container, records it, adds `container`.
///
/// With `--explain`, each runtime command is said on stderr first; with `--dry-run`, they are
/// said and nothing is done: the `container` part then has pid 0 and an empty status, and a
/// bundle that does not exist yet (after `cloon-spec --dry-run`) is not checked.
pub fn up(state: &StateDir, args: &UpArgs, input: Option<Document>) -> Result<Document> {
    let acting = explain::acting();
    let mut doc = input.unwrap_or_default();
    let name = cli::pick_name(args.name.as_deref(), Some(&doc), STAGE)?;
    let bundle = match &args.bundle {
        Some(dir) => absolute(dir)?,
        None => match doc.part::<Bundle>()? {
            Some(b) => PathBuf::from(b.path),
            None => return Err(Error::config(
                "cloon-run needs an OCI bundle: give --bundle DIR, or the document of cloon-spec",
            )),
        },
    };
    if !bundle.join("config.json").is_file() {
        if acting {
            return Err(Error::config(format!(
                "{} is not an OCI bundle: it has no config.json (make it with cloon-spec)",
                bundle.display()
            )));
        }
        explain::note(&format!(
            "dry run: the bundle {} has no config.json yet, it is not checked",
            bundle.display()
        ));
    }
    let rt = Runtime::select(args.runtime.as_deref(), args.root.as_deref())?;
    if acting {
        host::require_root(STAGE, "run containers")?;
    }
    if rt.kind == Kind::Crun {
        cgroup::check_for_crun(Path::new(cgroup::UNIFIED_CONTROLLERS))?;
    }
    let (cgroups, cgroup) = cgroup::of_bundle(&bundle);
    // Any other runtime is given crun's option: if it does not take it, its create says so.
    if cgroups == Mode::None && rt.kind == Kind::Runc {
        return Err(Error::config(format!(
            "the bundle {} asks for no cgroup of its own (cloon-spec --cgroups none), which \
             runc cannot do (crun does, with --cgroup-manager=disabled): run it with crun, or \
             make the bundle with cloon-spec --cgroups cloon (or runtime)",
            bundle.display()
        )));
    }

    let dir = state.dir(&name)?;
    let log = dir.join(LOG);
    let mut rec = RunRecord {
        id: name.clone(),
        runtime: rt.name.clone(),
        program: rt.program.display().to_string(),
        root: rt.root.display().to_string(),
        bundle: bundle.display().to_string(),
        log: log.display().to_string(),
        pid: 0,
        start_time: 0,
        cgroup,
        cgroups: cgroups.as_str().to_string(),
    };
    let pid_file = dir.join(PID_FILE);
    // Write-ahead: the container's state directory is locked for the whole `up` (so that `gc`
    // leaves a record being written alone, a second `up` of the name waits then is refused, and
    // a `down` waits for a runtime command a killed `up` left running; see [`guard`]), and the
    // record is written before the runtime is asked for anything, so that `down` finds what a
    // killed `up` made. The lock outlives the undo stack: a failure is undone under it.
    let _lock = if acting {
        explain::state_dir(state, &name)?;
        Some(state.lock(&name)?)
    } else {
        None
    };
    let mut undo = Undo::new();
    explain::claim(state, &mut undo, &name, RECORD, &rec)?;
    {
        // Undone last: once the container is deleted, its parent cgroup goes if empty.
        let (cgroup, st) = (rec.cgroup.clone(), state.clone());
        undo.push(move || {
            let _ = cgroup::remove_parent_of(&st, &cgroup);
        });
    }
    // A taken name would make `create` fail too, but the undo of a failed `create` deletes the
    // container of the name: it must be known beforehand not to be someone else's.
    if rt.exists(&name) {
        return Err(Error::new(
            Code::NameTaken,
            format!(
                "{} already has a container \"{name}\" that cloon did not create: pick another name",
                rt.root.display()
            ),
        ));
    }
    explain::note(&format!(
        "the runtime and the container get /dev/null and the log {}, never cloon-run's own output",
        log.display()
    ));
    if explain::shell(&format!(
        "(umask 077 && : > {})",
        explain::quote(&log.to_string_lossy())
    )) {
        // Private (0600), and never through a link planted where the log goes.
        state.create_file(&log, true)?;
    }
    let (l, st) = (log.clone(), state.clone());
    undo.push(move || {
        if explain::step(&["rm", "-f", &l.to_string_lossy()]) {
            let _ = st.remove_file(&l);
        }
    });
    let p = pid_file.clone();
    undo.push(move || {
        if explain::step(&["rm", "-f", &p.to_string_lossy()]) {
            let _ = std::fs::remove_file(&p);
        }
    });
    let (r, id) = (rt.clone(), name.clone());
    undo.push(move || {
        if r.exists(&id) {
            let _ = r.delete(&id, true);
        }
    });

    if acting {
        // The container's process outlives the runtime's `create`: as the reaper of what its
        // children leave, cloon-run gets it as a child and learns its exit status if it ends
        // during `up`. Without that, the status is read from /proc while it can be.
        if let Err(e) = process::become_reaper() {
            explain::note(&format!(
                "cannot become the container's reaper ({e}): an exit status may be unknown"
            ));
        }
    }
    {
        // The runtime makes the container's cgroup under the state directory's parent: no
        // `down` of another container removes that parent, nor `cloon`, meanwhile. Let go
        // before any undo.
        let _making = if acting && !rec.cgroup.is_empty() {
            Some(cgroup::hold_for_create(state)?)
        } else {
            None
        };
        rt.create(&bundle, &name, &log, &pid_file, cgroups)
            .map_err(|e| no_cgroup_manager_hint(e, cgroups, &rt))?;
    }
    // Before `start`, the container's process runs the runtime's own program, waiting to
    // execute the container's command: what it runs then tells when it has.
    let init = if acting {
        Some(Init::read(&pid_file)?)
    } else {
        None
    };
    rt.start(&name, &log)?;
    explain::note(&format!(
        "wait until its process runs the container's command (its /proc/PID/exe is no longer \
         the runtime's), then until it waits for something (asleep, S in /proc/PID/stat) or at \
         most {} ms: a command that ended by then fails up",
        args.settle
    ));
    let alive = explain::shell(&alive_test(&pid_file));
    let Some(init) = init.filter(|_| alive) else {
        // A dry run: the container's pid and status are known once it runs.
        doc.set_name(&name)?;
        doc.set(PART, &rec.to_part(String::new()));
        undo.commit();
        return Ok(doc);
    };
    let pid = init.pid;
    let settle = Duration::from_millis(args.settle);
    let start_time = running_command(&name, &init, &log, settle)?;
    rec.pid = pid;
    rec.start_time = start_time;
    explain::note(&format!(
        "its pid is {pid}, started {start_time} clock ticks after boot"
    ));
    state.update(&name, RECORD, &rec)?;

    doc.set_name(&name)?;
    doc.set(PART, &rec.to_part("running".to_string()));
    undo.commit();
    Ok(doc)
}

/// How long, at most, `up` watches the container's command once it has started: a command that
/// ends (`/bin/true`, a shell that fails at once, a program missing a library) before it waits
/// for something (asleep: a service waiting for work, `sleep`) fails `up` with its exit status,
/// rather than being reported running. A command that goes to sleep at once ends the watch at
/// once; one still busy after this time is taken as running.
pub const SETTLE: Duration = Duration::from_millis(SETTLE_MS);
/// [`SETTLE`] in milliseconds, `--settle`'s default.
pub const SETTLE_MS: u64 = 20;

/// How long `up` waits, after `start`, for the container's process to execute its command.
/// The runtime's `start` returns once the process was told to, so this is short, unless an
/// OCI `startContainer` hook is slow; after it, a process still alive is taken as running.
pub const EXEC_TIMEOUT: Duration = Duration::from_secs(10);

/// The container's process between the runtime's `create` and `start`.
struct Init {
    pid: i64,
    /// Its start time, `None` when it is already gone.
    start_time: Option<u64>,
    /// The program it runs: the runtime's (see [`process::exe`]).
    exe: Option<(u64, u64)>,
}

impl Init {
    /// The process whose pid the runtime's `create --pid-file` wrote.
    fn read(pid_file: &Path) -> Result<Init> {
        let pid: i64 = std::fs::read_to_string(pid_file)
            .context(|| format!("cannot read {}", pid_file.display()))?
            .trim()
            .parse()
            .map_err(|e| {
                Error::new(
                    Code::Runtime,
                    format!("the runtime wrote no pid to {}", pid_file.display()),
                )
                .details(e)
            })?;
        let start_time = process::stat(pid)
            .filter(|s| s.running())
            .map(|s| s.start_time);
        Ok(Init {
            pid,
            start_time,
            exe: process::exe(pid),
        })
    }
}

/// After `start`: waits until the container's process runs its command, then `settle`;
/// returns its start time if it still runs, else the error of a command that ended during `up`
/// (code 102, with its exit status and what it wrote to its log), which the caller's undo
/// turns into a container deleted and a record released.
fn running_command(name: &str, init: &Init, log: &Path, settle: Duration) -> Result<u64> {
    let pid = init.pid;
    let waited =
        |e: std::io::Error| Error::io(format!("cannot watch the container's process {pid}"), &e);
    let ended = match init.start_time {
        None => true,
        Some(start) => {
            let ran = match init.exe {
                Some(exe) => {
                    process::wait_executed(pid, start, exe, EXEC_TIMEOUT).map_err(waited)?
                }
                None => process::Start::Pending,
            };
            if ran == process::Start::Pending {
                explain::note(&format!(
                    "its process {pid} does not show the container's command yet: taken as \
                     running if it still runs {} ms later",
                    settle.as_millis()
                ));
            }
            ran == process::Start::Ended
                || process::wait_settled(pid, start, settle).map_err(waited)?
        }
    };
    if let (false, Some(start)) = (ended, init.start_time) {
        return Ok(start);
    }
    let exit = init
        .start_time
        .and_then(|start| process::reap(pid, start))
        .map_or("its exit status is unknown".to_string(), |e| e.to_string());
    let said = std::fs::read_to_string(log).unwrap_or_default();
    Err(Error::new(
        Code::Runtime,
        format!(
            "the command of the container \"{name}\" ended during up ({exit}): a container's \
             command must keep running (a service, `sleep infinity`); the container \
             was deleted"
        ),
    )
    .details(if said.trim().is_empty() {
        "no message in its log".to_string()
    } else {
        said.trim().to_string()
    }))
}

/// Polls the runtime until the container is stopped or gone; false after `timeout`.
fn wait_stopped(rt: &Runtime, id: &str, timeout: Duration) -> Result<bool> {
    let deadline = Instant::now() + timeout;
    loop {
        match rt.state(id)? {
            None => return Ok(true),
            Some(s) if s.status == "stopped" => return Ok(true),
            Some(_) if Instant::now() >= deadline => return Ok(false),
            Some(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Stops (signal, wait, KILL) and deletes the container; one already gone is done. With
/// `--explain`, the runtime commands and the wait are said first; with `--dry-run`, only said.
pub fn stop_and_delete(rt: &Runtime, id: &str, signal: Signal, timeout: Duration) -> Result<()> {
    let Some(live) = rt.state(id)? else {
        explain::note(&format!(
            "{} has no container \"{id}\": nothing to stop",
            rt.root.display()
        ));
        return Ok(());
    };
    if live.status != "stopped" {
        // It may stop by itself meanwhile: what counts is the state afterwards.
        let _ = rt.kill(id, signal.as_str());
        explain::note(&format!(
            "wait until it stops (cloon-run waits {} s, then sends KILL)",
            timeout.as_secs()
        ));
        let wait = format!(
            "while {} 2>/dev/null | grep -q '\"status\": \"running\"'; do sleep 0.1; done",
            rt.command_line("state", &[std::ffi::OsStr::new(id)])
        );
        if explain::shell(&wait) && !wait_stopped(rt, id, timeout)? {
            let _ = rt.kill(id, Signal::Kill.as_str());
            wait_stopped(rt, id, Duration::from_secs(5))?;
        }
    }
    delete(rt, id)
}

/// `delete ID`, `delete -f ID` if that fails; an error if the runtime still keeps the container.
fn delete(rt: &Runtime, id: &str) -> Result<()> {
    if rt.delete(id, false).is_err() {
        rt.delete(id, true)?;
    }
    if explain::acting() && rt.exists(id) {
        return Err(Error::new(
            Code::Runtime,
            format!(
                "{} still has the container \"{id}\" after delete -f",
                rt.root.display()
            ),
        ));
    }
    Ok(())
}

/// Stops (signal, wait, KILL) and deletes the container whose process is the recorded one (the
/// pid and start time `up` recorded still name a process): the runtime is asked only to `kill`
/// and `delete`, and the end of the process is waited for through a pidfd. `pid_file` is the
/// file `create --pid-file` wrote, which the commands `--explain` says read the pid from.
fn stop_recorded(
    rt: &Runtime,
    rec: &RunRecord,
    pid_file: &Path,
    signal: Signal,
    timeout: Duration,
) -> Result<()> {
    let id = rec.id.as_str();
    let (pid, start) = (rec.pid, rec.start_time);
    let ended = |limit: Duration| {
        process::wait_ended(pid, start, limit)
            .context(|| format!("cannot wait for the container's process {pid}"))
    };
    if process::stat(pid).is_some_and(|s| s.running()) {
        // It may stop by itself meanwhile: what counts is that the process has ended.
        let _ = rt.kill(id, signal.as_str());
        explain::note(&format!(
            "wait until its process {pid} (started {start} clock ticks after boot) ends \
             (cloon-run waits {} s on a pidfd, then sends KILL)",
            timeout.as_secs()
        ));
        let wait = format!("while {}; do sleep 0.1; done", alive_test(pid_file));
        if explain::shell(&wait) && !ended(timeout)? {
            let _ = rt.kill(id, Signal::Kill.as_str());
            if !ended(Duration::from_secs(5))? {
                return Err(Error::new(
                    Code::Runtime,
                    format!("the container \"{id}\"'s process {pid} still runs after KILL"),
                ));
            }
        }
    }
    delete(rt, id)
}

/// `down` of `name`, for a caller that holds the lock of its state directory (or in a dry run):
/// kills and deletes the container, drops the record.
///
/// The runtime's container is stopped and deleted only if it is the one the record names: the
/// recorded id in the recorded `--root`, made from the recorded bundle (as the runtime's state
/// says). A container of that id made from another bundle is not cloon's: it is left alone, and
/// the record (of an `up` killed before it found the name taken) goes.
pub fn down_locked(state: &StateDir, name: &str, stop: &StopArgs) -> Result<()> {
    let Some(rec) = state.load::<RunRecord>(name, RECORD)? else {
        explain::note(&format!(
            "cloon has no container \"{name}\": nothing to undo"
        ));
        if explain::acting() {
            // What a tool killed before it wrote its record leaves: an empty directory.
            state.remove_dir_if_empty(name)?;
        }
        return Ok(());
    };
    if explain::acting() {
        host::require_root(STAGE, "stop containers")?;
    }
    let rt = rec.runtime()?;
    let dir = state.dir(name)?;
    let pid_file = dir.join(PID_FILE);
    let timeout = Duration::from_secs(stop.timeout);
    if rec.start_time > 0 && process::is(rec.pid, rec.start_time) {
        // The process `up` started is still there (running, or ended and not yet reaped): the
        // container of the recorded id is the one made from the recorded bundle, no need to ask
        // the runtime its state.
        stop_recorded(&rt, &rec, &pid_file, stop.signal, timeout)?;
    } else {
        stop_unrecorded(&rt, &rec, stop.signal, timeout)?;
    }
    for file in [dir.join(LOG), pid_file] {
        if file.exists() && explain::step(&["rm", "-f", &file.to_string_lossy()]) {
            cloon_core::state::remove_file(&file)?;
        }
    }
    cgroup::remove_parent_of(state, &rec.cgroup)?;
    explain::release(state, name, RECORD)
}

/// The shell's test that the process whose pid `pid_file` holds is alive: it exists and is neither
/// a zombie nor dead (State Z or X in /proc/PID/status), as [`process::Stat::running`] tells.
fn alive_test(pid_file: &Path) -> String {
    format!(
        "grep -qs '^State:[[:space:]]*[^ZX]' /proc/\"$(cat {})\"/status",
        explain::quote(&pid_file.to_string_lossy())
    )
}

/// `down --dry-run` of a container that the document's `container` part describes and that cloon
/// has no record of (a dry-run pipeline's script made it): says the commands that stop and delete
/// it, in the words of [`down_locked`] for a recorded one (the process is the one in the pid file
/// the script's `create` wrote), and does nothing.
pub fn down_unrecorded(
    state: &StateDir,
    name: &str,
    part: &Container,
    stop: &StopArgs,
) -> Result<()> {
    let rt = Runtime::select(Some(&part.runtime), Some(Path::new(&part.root)))?;
    let dir = state.dir(name)?;
    let pid_file = dir.join(PID_FILE);
    let id = std::ffi::OsStr::new(&part.id);
    let alive = alive_test(&pid_file);
    explain::shell(&rt.command_line("kill", &[id, std::ffi::OsStr::new(stop.signal.as_str())]));
    if stop.signal == Signal::Kill {
        explain::note("wait until its process ends");
        explain::shell(&format!("while {alive}; do sleep 0.1; done"));
    } else {
        explain::note(&format!(
            "wait until its process ends, {} s at most, then send KILL",
            stop.timeout
        ));
        explain::shell(&format!(
            "i=0; while {alive} && [ $i -lt {} ]; do sleep 0.1; i=$((i + 1)); done",
            stop.timeout * 10
        ));
        explain::shell(&format!(
            "if {alive}; then {}; fi",
            rt.command_line("kill", &[id, std::ffi::OsStr::new("KILL")])
        ));
        explain::shell(&format!("while {alive}; do sleep 0.1; done"));
    }
    explain::shell(&rt.command_line("delete", &[id]));
    for file in [dir.join(LOG), pid_file] {
        explain::step(&["rm", "-f", &file.to_string_lossy()]);
    }
    explain::note(&format!(
        "the cgroup parent {}, if the runtime made one, stays: cloon-run gc removes it once empty",
        state.cgroup_parent()?
    ));
    Ok(())
}

/// Stops and deletes the container of a record whose process is gone or unknown (an `up` killed
/// before the record's last write, a container that ended): the runtime's state says whether
/// the container of that id is there, and made from the recorded bundle.
fn stop_unrecorded(rt: &Runtime, rec: &RunRecord, signal: Signal, timeout: Duration) -> Result<()> {
    match foreign_bundle(rt, rec)? {
        Some(bundle) => explain::note(&format!(
            "{} has a container \"{}\" made from {bundle}, not from the recorded {}: not cloon's, it stays",
            rt.root.display(),
            rec.id,
            rec.bundle
        )),
        None => stop_and_delete(rt, &rec.id, signal, timeout)?,
    }
    Ok(())
}

/// The bundle of the runtime's container of the recorded id, when it is not the recorded one:
/// then that container is not cloon's. `None` when there is no such container, or it is cloon's
/// (a runtime whose state names no bundle is taken at its word).
fn foreign_bundle(rt: &Runtime, rec: &RunRecord) -> Result<Option<String>> {
    Ok(rt
        .state(&rec.id)?
        .and_then(|live| live.bundle)
        .filter(|b| Path::new(b) != Path::new(&rec.bundle)))
}

/// `check`: the container exists and runs with the recorded process; returns the `container`
/// part as recorded.
pub fn check(state: &StateDir, name: &str) -> Result<Container> {
    let rec = record(state, name)?;
    let drift = |msg: String| Error::new(Code::Drift, msg);
    let live = rec.runtime()?.state(&rec.id)?.ok_or_else(|| {
        drift(format!(
            "the container \"{}\" no longer exists in {}",
            rec.id, rec.root
        ))
    })?;
    if live.status != "running" {
        return Err(drift(format!(
            "the container \"{}\" is {}, not running",
            rec.id, live.status
        )));
    }
    if live.pid != rec.pid {
        return Err(drift(format!(
            "the container \"{}\" runs process {}, not the recorded {}",
            rec.id, live.pid, rec.pid
        )));
    }
    Ok(rec.to_part(live.status))
}

/// `state NAME`: the runtime's state of the container, as it prints it.
pub fn live_state(state: &StateDir, name: &str) -> Result<Value> {
    name::container(name)?;
    let rec = record(state, name)?;
    let rt = rec.runtime()?;
    explain::shell(&rt.command_line("state", &[std::ffi::OsStr::new(&rec.id)]));
    rt.state_json(&rec.id)?.ok_or_else(|| {
        Error::new(
            Code::Unknown,
            format!(
                "the container \"{}\" no longer exists in {}",
                rec.id, rec.root
            ),
        )
    })
}

/// `list`: cloon's containers (those with a run record), by name, with their live status.
pub fn list(state: &StateDir) -> Result<Value> {
    let entries = match std::fs::read_dir(state.root()) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(json!([])),
        other => other.context(|| format!("cannot list {}", state.root().display()))?,
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| name::container(n).is_ok())
        .collect();
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let Ok(Some(rec)) = state.load::<RunRecord>(&name, RECORD) else {
            continue;
        };
        let (status, pid) = match rec.runtime().and_then(|rt| rt.state(&rec.id)) {
            Ok(Some(s)) => (s.status, s.pid),
            Ok(None) => ("gone".to_string(), 0),
            Err(_) => ("unknown".to_string(), 0),
        };
        out.push(json!({
            "name": name,
            "id": rec.id,
            "runtime": rec.runtime,
            "root": rec.root,
            "pid": pid,
            "status": status,
            "bundle": rec.bundle,
        }));
    }
    Ok(Value::Array(out))
}

/// The output of [`list`] as a table for people, as `crun list` prints one: NAME, STATUS, PID,
/// BUNDLE, each column as wide as its widest cell, a line per container.
pub fn list_table(list: &Value) -> String {
    let mut rows = vec![["NAME", "STATUS", "PID", "BUNDLE"].map(String::from)];
    for c in list.as_array().into_iter().flatten() {
        rows.push(["name", "status", "pid", "bundle"].map(|k| table::cell(&c[k])));
    }
    table::columns(&rows)
}

/// The output of [`live_state`] (the runtime's state of the container `name`) as a table for
/// people: NAME, STATUS, PID, BUNDLE, CREATED, and a line for the container.
pub fn state_table(name: &str, state: &Value) -> String {
    table::columns(&[
        ["NAME", "STATUS", "PID", "BUNDLE", "CREATED"].map(String::from),
        [
            name.to_string(),
            table::cell(&state["status"]),
            table::cell(&state["pid"]),
            table::cell(&state["bundle"]),
            table::cell(&state["created"]),
        ],
    ])
}

/// `exec`: runs a command in the container with the caller's stdio; its exit status. With
/// `--detach`, the runtime returns once the command started (0), and the command's stdio are
/// /dev/null and the container's log.
pub fn exec(state: &StateDir, args: &ExecArgs) -> Result<i32> {
    use std::io::IsTerminal;
    name::container(&args.name)?;
    for e in &args.env {
        check_env(e)?;
    }
    if let Some(cwd) = &args.cwd {
        check_cwd(cwd)?;
    }
    if let Some(user) = &args.user {
        check_user(user)?;
    }
    let rec = record(state, &args.name)?;
    if explain::acting() {
        host::require_root(STAGE, "enter containers")?;
    }
    let rt = rec.runtime()?;
    let config = bundle_config(Path::new(&rec.bundle));
    let opts = runtime::ExecOptions {
        tty: !args.detach && (args.tty || std::io::stdin().is_terminal()),
        detach: args.detach,
        env: if args.env.is_empty() {
            Vec::new()
        } else {
            // crun replaces the command's environment with the `--env` it is given (runc adds
            // them to the container's): the container's come first, so both add.
            let mut env = process_env(&config);
            env.extend(args.env.iter().cloned());
            env
        },
        cwd: args.cwd.clone().or_else(|| process_cwd(&config)),
        user: args.user.clone(),
    };
    if args.detach {
        rt.exec_detached(&rec.id, &opts, &args.cmd, Path::new(&rec.log))?;
        return Ok(0);
    }
    if !explain::shell(&rt.exec_line(&rec.id, &opts, &args.cmd)) {
        return Ok(0);
    }
    let status = rt
        .exec_command(&rec.id, &opts, &args.cmd)
        .status()
        .map_err(|e| rt.spawn_error("exec", &e))?;
    Ok(runtime::shell_status(status))
}

/// The bundle's config.json, `null` when it cannot be read or parsed.
pub fn bundle_config(bundle: &Path) -> Value {
    std::fs::read_to_string(bundle.join("config.json"))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default()
}

/// The container's own working directory: `process.cwd` of its bundle's `config` (which
/// cloon-spec sets from the image's WorkingDir), if it says an absolute one.
fn process_cwd(config: &Value) -> Option<String> {
    config["process"]["cwd"]
        .as_str()
        .filter(|c| c.starts_with('/'))
        .map(str::to_string)
}

/// The container's own environment: `process.env` of its bundle's `config`.
fn process_env(config: &Value) -> Vec<String> {
    config["process"]["env"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e.as_str())
                .filter(|e| check_env(e).is_ok())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// `-e KEY=VALUE`: a key, not empty, then `=`.
fn check_env(e: &str) -> Result<()> {
    match e.split_once('=') {
        Some((key, _)) if !key.is_empty() && !e.contains('\0') => Ok(()),
        _ => Err(Error::new(
            Code::InvalidArgument,
            format!("--env \"{e}\" is not KEY=VALUE with a non-empty KEY (as in -e LANG=C.UTF-8)"),
        )),
    }
}

/// `--cwd DIR`: absolute, as the container sees it.
fn check_cwd(cwd: &str) -> Result<()> {
    if cwd.starts_with('/') && !cwd.contains('\0') {
        return Ok(());
    }
    Err(Error::new(
        Code::InvalidArgument,
        format!("--cwd \"{cwd}\" is not an absolute path: give the directory from the container's / (as in --cwd /srv)"),
    ))
}

/// `--user UID[:GID]`: numbers (the container's names are not known outside it).
fn check_user(user: &str) -> Result<()> {
    let number = |s: &str| {
        !s.is_empty() && s.parse::<u32>().is_ok() && s.bytes().all(|b| b.is_ascii_digit())
    };
    let ok = match user.split_once(':') {
        Some((uid, gid)) => number(uid) && number(gid),
        None => number(user),
    };
    if ok {
        return Ok(());
    }
    Err(Error::new(
        Code::InvalidArgument,
        format!("--user \"{user}\" is not UID or UID:GID in numbers (as in -u 1000:1000)"),
    ))
}

/// A runtime other than crun that refused crun's `--cgroup-manager=disabled` (a wrapper of
/// runc, say): the error says what to do about it.
fn no_cgroup_manager_hint(e: Error, cgroups: Mode, rt: &Runtime) -> Error {
    let said = format!("{} {}", e.msg, e.details);
    if cgroups != Mode::None || rt.kind == Kind::Crun || !said.contains("cgroup-manager") {
        return e;
    }
    let msg = format!(
        "{}: this runtime does not take crun's {}, which the bundle's cgroup mode none needs: \
         make the bundle with cloon-spec --cgroups runtime (or cloon), or run crun",
        e.msg,
        runtime::NO_CGROUPS
    );
    Error { msg, ..e }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn state(tag: &str) -> (StateDir, PathBuf) {
        let root = std::env::temp_dir().join(format!("cloon-run-lib-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        (StateDir::new(Some(&root)).unwrap(), root)
    }

    #[test]
    fn down_without_record_is_success() {
        let (st, root) = state("down");
        cloon_core::stage::down::<stage::Run>(&st, "Gone1", &StopArgs::default()).unwrap();
        assert!(!root.exists());
    }

    #[test]
    fn unknown_names_are_reported() {
        let (st, _root) = state("unknown");
        assert_eq!(record(&st, "Nope").unwrap_err().code, Code::Unknown);
        assert_eq!(live_state(&st, "Nope").unwrap_err().code, Code::Unknown);
        assert_eq!(check(&st, "Nope").unwrap_err().code, Code::Unknown);
        let exec_args = ExecArgs {
            tty: false,
            detach: false,
            env: vec![],
            cwd: None,
            user: None,
            name: "Nope".into(),
            cmd: vec!["true".into()],
        };
        assert_eq!(exec(&st, &exec_args).unwrap_err().code, Code::Unknown);
        assert_eq!(
            live_state(&st, "../x").unwrap_err().code,
            Code::InvalidArgument
        );
        assert_eq!(list(&st).unwrap(), json!([]));
    }

    #[test]
    fn up_needs_a_bundle() {
        let (st, root) = state("bundle");
        let err = up(
            &st,
            &UpArgs {
                name: Some("B1".into()),
                ..Default::default()
            },
            None,
        )
        .unwrap_err();
        assert_eq!(err.code, Code::InvalidConfig);
        let args = UpArgs {
            name: Some("B1".into()),
            bundle: Some(root.join("none")),
            ..Default::default()
        };
        assert_eq!(up(&st, &args, None).unwrap_err().code, Code::InvalidConfig);
        assert!(!root.join("B1").exists());
    }

    #[test]
    fn list_reports_recorded_containers_only() {
        let (st, root) = state("list");
        let rec = RunRecord {
            id: "L1".into(),
            runtime: "/bin/sh".into(),
            program: "/bin/sh".into(),
            root: root.join("rt").display().to_string(),
            bundle: "/b".into(),
            log: "/l".into(),
            pid: 7,
            start_time: 0,
            cgroup: String::new(),
            cgroups: String::new(),
        };
        st.claim("L1", RECORD, &rec).unwrap();
        st.claim("L0", "spec", &json!({})).unwrap();
        let v = list(&st).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 1);
        assert_eq!(v[0]["name"], "L1");
        assert_eq!(v[0]["status"], "gone");
        assert_eq!(record(&st, "L1").unwrap().pid, 7);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn list_as_a_table() {
        let list = json!([
            {"name": "Cloon1", "status": "running", "pid": 4242, "bundle": "/run/cloon/Cloon1/bundle"},
            {"name": "C2", "status": "gone", "pid": 0, "bundle": "/b"},
        ]);
        assert_eq!(
            list_table(&list),
            "NAME    STATUS   PID   BUNDLE\n\
             Cloon1  running  4242  /run/cloon/Cloon1/bundle\n\
             C2      gone     0     /b\n"
        );
        assert_eq!(list_table(&json!([])), "NAME  STATUS  PID  BUNDLE\n");
    }

    #[test]
    fn state_as_a_table() {
        let state = json!({
            "ociVersion": "1.0.0", "id": "Cloon1", "pid": 4242, "status": "running",
            "bundle": "/run/cloon/Cloon1/bundle", "created": "2026-12-01T02:52:39.1Z",
            "owner": "root", "annotations": {"org.cloon.cgroups": "none"}
        });
        assert_eq!(
            state_table("Cloon1", &state),
            "NAME    STATUS   PID   BUNDLE                    CREATED\n\
             Cloon1  running  4242  /run/cloon/Cloon1/bundle  2026-12-01T02:52:39.1Z\n"
        );
        // What the runtime leaves out is an empty cell.
        assert_eq!(
            state_table("C2", &json!({"status": "stopped", "pid": 0})),
            "NAME  STATUS   PID  BUNDLE  CREATED\nC2    stopped  0\n"
        );
    }

    #[test]
    fn exec_options_are_checked() {
        for good in ["A=b", "A=", "A=b=c", "_x=1"] {
            check_env(good).unwrap();
        }
        for bad in ["A", "=b", "", "A\0=b"] {
            assert_eq!(
                check_env(bad).unwrap_err().code,
                Code::InvalidArgument,
                "{bad}"
            );
        }
        check_cwd("/").unwrap();
        check_cwd("/srv/app").unwrap();
        for bad in ["", "tmp", "./x"] {
            assert_eq!(
                check_cwd(bad).unwrap_err().code,
                Code::InvalidArgument,
                "{bad}"
            );
        }
        for good in ["0", "1000", "1000:1000", "0:0"] {
            check_user(good).unwrap();
        }
        for bad in [
            "",
            "root",
            "1000:",
            ":1000",
            "-1",
            "+1",
            "1000:x",
            "1:2:3",
            "99999999999",
        ] {
            assert_eq!(
                check_user(bad).unwrap_err().code,
                Code::InvalidArgument,
                "{bad}"
            );
        }
        // Checked before the container is looked for.
        let (st, _root) = state("execopts");
        let args = ExecArgs {
            tty: false,
            detach: false,
            env: vec![],
            cwd: Some("tmp".into()),
            user: None,
            name: "Nope".into(),
            cmd: vec!["pwd".into()],
        };
        assert_eq!(exec(&st, &args).unwrap_err().code, Code::InvalidArgument);
    }

    #[test]
    fn the_bundles_cwd_is_the_default() {
        let (_st, root) = state("cwd");
        fs::create_dir_all(&root).unwrap();
        let cwd = |root: &Path| process_cwd(&bundle_config(root));
        let env = |root: &Path| process_env(&bundle_config(root));
        assert_eq!(cwd(&root), None);
        fs::write(root.join("config.json"), r#"{"process":{"cwd":"/srv"}}"#).unwrap();
        assert_eq!(cwd(&root).as_deref(), Some("/srv"));
        assert!(env(&root).is_empty());
        fs::write(
            root.join("config.json"),
            r#"{"process":{"env":["PATH=/bin","bad","TERM=xterm"]}}"#,
        )
        .unwrap();
        assert_eq!(env(&root), ["PATH=/bin", "TERM=xterm"]);
        fs::write(root.join("config.json"), r#"{"process":{"cwd":"srv"}}"#).unwrap();
        assert_eq!(cwd(&root), None);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn signals_by_name() {
        use clap::ValueEnum;
        assert_eq!(Signal::from_str("KILL", true).unwrap(), Signal::Kill);
        assert_eq!(Signal::from_str("term", true).unwrap(), Signal::Term);
        assert!(Signal::from_str("HUP", true).is_err());
        assert_eq!(Signal::default().as_str(), "KILL");
    }
}
