//! The OCI runtime (crun, runc, or another binary with their command line): selecting it, and
//! running its commands without ever lending it cloon's own stdout or stderr.

use cloon_core::cgroups::Mode;
use cloon_core::{explain, host, Code, Error, Result};
use serde::Deserialize;
use serde_json::Value;
use std::ffi::OsStr;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

/// The runtime used unless `--runtime` says otherwise.
pub const DEFAULT_RUNTIME: &str = "crun";
/// crun's global option that makes it create no cgroup (the cgroup mode `none`).
pub const NO_CGROUPS: &str = "--cgroup-manager=disabled";

/// Which runtime a program is, by its file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Crun,
    Runc,
    Other,
}

/// The file name of a `--runtime` value (`crun`, `/usr/bin/runc`, ...).
fn base_name(value: &str) -> &str {
    value.rsplit('/').next().unwrap_or(value)
}

/// The kind of a `--runtime` value.
pub fn kind_of(value: &str) -> Kind {
    match base_name(value) {
        "crun" => Kind::Crun,
        "runc" => Kind::Runc,
        _ => Kind::Other,
    }
}

/// The runtime's own default state directory: `/run/crun`, `/run/runc`, `/run/<name>`.
pub fn default_root(value: &str) -> PathBuf {
    Path::new("/run").join(base_name(value))
}

/// A runtime program and the state directory (`--root`) it keeps its containers in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runtime {
    /// The `--runtime` value, as given.
    pub name: String,
    /// The program, absolute.
    pub program: PathBuf,
    pub kind: Kind,
    /// The runtime's `--root`.
    pub root: PathBuf,
}

/// What the runtime's `state` command says about a container.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct State {
    pub id: String,
    #[serde(default)]
    pub pid: i64,
    pub status: String,
    #[serde(default)]
    pub bundle: Option<String>,
}

/// Parses the JSON of `RUNTIME state ID`.
pub fn parse_state(value: &Value) -> Result<State> {
    State::deserialize(value).map_err(|e| {
        Error::new(
            Code::Runtime,
            "the runtime's state is not the JSON of an OCI state",
        )
        .details(e)
    })
}

impl Runtime {
    /// The runtime from `--runtime` (default crun) and `--root` (default the runtime's own).
    pub fn select(runtime: Option<&str>, root: Option<&Path>) -> Result<Runtime> {
        let name = runtime.unwrap_or(DEFAULT_RUNTIME);
        if name.is_empty() {
            return Err(Error::invalid(
                "--runtime is empty: give crun, runc or a path",
            ));
        }
        let program = if name.contains('/') {
            let p = cloon_core::state::absolute(Path::new(name))?;
            // What `exec` would say comes later (the mode, a script's interpreter); a path that
            // is no file is known now, before anything is made.
            match fs::metadata(&p) {
                Err(e) => {
                    return Err(cannot_execute(
                        &p,
                        e.raw_os_error().unwrap_or(nix::libc::ENOENT),
                    ))
                }
                Ok(m) if m.is_dir() => return Err(cannot_execute(&p, nix::libc::EISDIR)),
                Ok(_) => p,
            }
        } else {
            let package = if kind_of(name) == Kind::Other {
                name
            } else {
                base_name(name)
            };
            host::require_program(name, package)?
        };
        let root = match root {
            Some(r) => cloon_core::state::absolute(r)?,
            None => default_root(name),
        };
        Ok(Runtime {
            name: name.to_string(),
            program,
            kind: kind_of(name),
            root,
        })
    }

    /// A runtime as recorded by `up`.
    pub fn recorded(name: &str, program: &str, root: &str) -> Result<Runtime> {
        let program = PathBuf::from(program);
        if !program.is_file() {
            return Err(Error::new(
                Code::Prerequisite,
                format!(
                    "the runtime {} that ran this container is gone",
                    program.display()
                ),
            ));
        }
        Ok(Runtime {
            name: name.to_string(),
            program,
            kind: kind_of(name),
            root: root.into(),
        })
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.program);
        c.arg("--root").arg(&self.root);
        c
    }

    /// The command line of `verb` with `args`, as `--explain` says it: the runtime as a shell
    /// finds it, its `--root`, the verb, the arguments.
    pub fn command_line(&self, verb: &str, args: &[&OsStr]) -> String {
        self.command_line_with(&[], verb, args)
    }

    /// [`Runtime::command_line`] with global options before the verb.
    fn command_line_with(&self, global: &[&OsStr], verb: &str, args: &[&OsStr]) -> String {
        let mut words = vec![
            explain::program(&self.program),
            "--root".into(),
            self.root.to_string_lossy().into_owned(),
        ];
        words.extend(global.iter().map(|a| a.to_string_lossy().into_owned()));
        words.push(verb.into());
        words.extend(args.iter().map(|a| a.to_string_lossy().into_owned()));
        explain::command_line(&words)
    }

    fn label(&self, verb: &str) -> String {
        format!("{} {verb}", self.program.display())
    }

    /// The error of running `verb` when the runtime could not be started: the errno of its
    /// `exec` said as [`cannot_execute`] says it (code 100), or another failure to start a
    /// process (code 5, ...).
    pub fn spawn_error(&self, verb: &str, err: &std::io::Error) -> Error {
        match err.raw_os_error() {
            Some(errno) if is_exec_errno(errno) => cannot_execute(&self.program, errno),
            _ => Error::io(format!("cannot run {}", self.label(verb)), err),
        }
    }

    /// Runs a command that leaves no process behind, its output captured on pipes of its own.
    fn run_captured(&self, verb: &str, args: &[&OsStr]) -> Result<std::process::Output> {
        self.command()
            .arg(verb)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| self.spawn_error(verb, &e))
    }

    /// Runs a command whose children may outlive it (`create` forks the container): stdin and
    /// stdout are /dev/null, stderr is appended to `log`, which the container inherits. On
    /// failure, the error carries what the runtime wrote to the log. The command runs to its end
    /// even if cloon-run is killed meanwhile, and the lock of the container's state directory is
    /// held until then (see [`crate::guard`]).
    fn run_logged(&self, global: &[&OsStr], verb: &str, args: &[&OsStr], log: &Path) -> Result<()> {
        let line = format!(
            "{} </dev/null >/dev/null 2>>{}",
            self.command_line_with(global, verb, args),
            explain::quote(&log.to_string_lossy())
        );
        if !explain::shell(&line) {
            return Ok(());
        }
        // Private, and never through a link planted where the log goes.
        let file = cloon_core::state::fs_at::open_append_private(log)?;
        let start = file.metadata().map(|m| m.len()).unwrap_or(0);
        let mut cmd = self.command();
        cmd.args(global)
            .arg(verb)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file);
        let status = crate::guard::status(&mut cmd).map_err(|e| self.spawn_error(verb, &e))?;
        if status.success() {
            return Ok(());
        }
        Err(Error::new(
            Code::Runtime,
            format!("{} failed ({})", self.label(verb), describe(status)),
        )
        .details(read_from(log, start)))
    }

    /// `create --bundle BUNDLE --pid-file PID_FILE ID` (said first with `--explain`; not run
    /// with `--dry-run`): the runtime writes the container's pid to `pid_file` (crun and runc
    /// alike). In the cgroup mode `none`, crun's global `--cgroup-manager=disabled` comes first:
    /// crun then makes no cgroup, and records none for its later commands.
    pub fn create(
        &self,
        bundle: &Path,
        id: &str,
        log: &Path,
        pid_file: &Path,
        cgroups: Mode,
    ) -> Result<()> {
        let global: &[&OsStr] = if cgroups == Mode::None {
            &[OsStr::new(NO_CGROUPS)]
        } else {
            &[]
        };
        self.run_logged(
            global,
            "create",
            &[
                OsStr::new("--bundle"),
                bundle.as_os_str(),
                OsStr::new("--pid-file"),
                pid_file.as_os_str(),
                OsStr::new(id),
            ],
            log,
        )
    }

    /// Whether the runtime keeps a container `id`: both crun and runc keep a container's state
    /// in `<root>/<id>`, from its `create` to its `delete`. No runtime call.
    pub fn exists(&self, id: &str) -> bool {
        self.root.join(id).exists()
    }

    /// `start ID` (said first with `--explain`; not run with `--dry-run`).
    pub fn start(&self, id: &str, log: &Path) -> Result<()> {
        self.run_logged(&[], "start", &[OsStr::new(id)], log)
    }

    /// `state ID` as JSON, or `None` when the runtime has no such container.
    pub fn state_json(&self, id: &str) -> Result<Option<Value>> {
        let out = self.run_captured("state", &[OsStr::new(id)])?;
        if !out.status.success() {
            // Both crun and runc keep a container's state in `<root>/<id>`: without it, the
            // container does not exist, whatever the wording of the message.
            if !self.exists(id) {
                return Ok(None);
            }
            return Err(Error::new(
                Code::Runtime,
                format!(
                    "{} {id} failed ({})",
                    self.label("state"),
                    describe(out.status)
                ),
            )
            .details(String::from_utf8_lossy(&out.stderr).trim()));
        }
        serde_json::from_slice(&out.stdout).map(Some).map_err(|e| {
            Error::new(
                Code::Runtime,
                format!("{} {id} did not print JSON", self.label("state")),
            )
            .details(e)
        })
    }

    /// `state ID`, parsed, or `None` when the runtime has no such container.
    pub fn state(&self, id: &str) -> Result<Option<State>> {
        self.state_json(id)?.as_ref().map(parse_state).transpose()
    }

    /// `kill ID SIGNAL`.
    pub fn kill(&self, id: &str, signal: &str) -> Result<()> {
        self.checked("kill", &[OsStr::new(id), OsStr::new(signal)])
    }

    /// `delete [-f] ID`.
    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        if force {
            self.checked("delete", &[OsStr::new("-f"), OsStr::new(id)])
        } else {
            self.checked("delete", &[OsStr::new(id)])
        }
    }

    /// Runs `verb` (said first with `--explain`; not with `--dry-run`), a failure an error.
    fn checked(&self, verb: &str, args: &[&OsStr]) -> Result<()> {
        if !explain::shell(&self.command_line(verb, args)) {
            return Ok(());
        }
        let out = self.run_captured(verb, args)?;
        if out.status.success() {
            return Ok(());
        }
        Err(Error::new(
            Code::Runtime,
            format!("{} failed ({})", self.label(verb), describe(out.status)),
        )
        .details(String::from_utf8_lossy(&out.stderr).trim()))
    }

    /// The arguments after `exec`: `[--tty] [--detach] [--env K=V]... [--cwd DIR] [--user U[:G]]
    /// ID CMD...`, as crun and runc both take them.
    fn exec_args<'a>(id: &'a str, opts: &'a ExecOptions, cmd: &'a [String]) -> Vec<&'a OsStr> {
        let mut args = Vec::new();
        if opts.tty {
            args.push(OsStr::new("--tty"));
        }
        if opts.detach {
            args.push(OsStr::new("--detach"));
        }
        for e in &opts.env {
            args.extend([OsStr::new("--env"), OsStr::new(e)]);
        }
        if let Some(cwd) = &opts.cwd {
            args.extend([OsStr::new("--cwd"), OsStr::new(cwd)]);
        }
        if let Some(user) = &opts.user {
            args.extend([OsStr::new("--user"), OsStr::new(user)]);
        }
        args.push(OsStr::new(id));
        args.extend(cmd.iter().map(OsStr::new));
        args
    }

    /// `exec [OPTIONS] ID CMD...`, with the caller's stdio: an interactive command.
    pub fn exec_command(&self, id: &str, opts: &ExecOptions, cmd: &[String]) -> Command {
        let mut c = self.command();
        c.arg("exec").args(Self::exec_args(id, opts, cmd));
        c
    }

    /// The command line of [`Runtime::exec_command`], as `--explain` says it.
    pub fn exec_line(&self, id: &str, opts: &ExecOptions, cmd: &[String]) -> String {
        self.command_line("exec", &Self::exec_args(id, opts, cmd))
    }

    /// `exec --detach [OPTIONS] ID CMD...` (said first with `--explain`; not run with
    /// `--dry-run`): the runtime returns once the command started, which keeps running in the
    /// container; stdin and stdout are /dev/null, stderr is appended to `log` (the container's),
    /// so that nothing of the command reaches the caller's output. An error carries what the
    /// runtime wrote to the log.
    pub fn exec_detached(
        &self,
        id: &str,
        opts: &ExecOptions,
        cmd: &[String],
        log: &Path,
    ) -> Result<()> {
        let opts = ExecOptions {
            detach: true,
            tty: false,
            ..opts.clone()
        };
        self.run_logged(&[], "exec", &Self::exec_args(id, &opts, cmd), log)
    }
}

/// The options of a command run in a container (`exec`), as crun's and runc's `exec` take them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOptions {
    /// `--tty`: a pseudo-terminal.
    pub tty: bool,
    /// `--detach`: run in the background, the runtime returning at once.
    pub detach: bool,
    /// `--env KEY=VALUE`, each.
    pub env: Vec<String>,
    /// `--cwd DIR`: the working directory (the runtime's default, `/`, when `None`).
    pub cwd: Option<String>,
    /// `--user UID[:GID]`.
    pub user: Option<String>,
}

/// Whether `errno`, from starting a program, says that the program itself cannot be executed
/// (rather than that the system lacks resources for a new process).
fn is_exec_errno(errno: i32) -> bool {
    use nix::libc;
    matches!(
        errno,
        libc::EACCES
            | libc::ENOENT
            | libc::ENOEXEC
            | libc::EISDIR
            | libc::ENOTDIR
            | libc::ELOOP
            | libc::ETXTBSY
            | libc::EPERM
            | libc::ENAMETOOLONG
            | libc::ELIBBAD
    )
}

/// "EACCES"; "errno N" for a number nix does not know.
pub fn errno_name(errno: i32) -> String {
    let e = nix::errno::Errno::from_raw(errno);
    if e == nix::errno::Errno::UnknownErrno {
        format!("errno {errno}")
    } else {
        format!("{e:?}")
    }
}

/// "Permission denied (EACCES)".
pub fn errno_text(errno: i32) -> String {
    let e = nix::errno::Errno::from_raw(errno);
    if e == nix::errno::Errno::UnknownErrno {
        format!("errno {errno}")
    } else {
        format!("{} ({e:?})", e.desc())
    }
}

/// The `#!` interpreter of the script `program`, if it is one.
fn interpreter(program: &Path) -> Option<String> {
    let mut head = [0u8; 256];
    let n = fs::File::open(program).ok()?.read(&mut head).ok()?;
    let line = head[..n].strip_prefix(b"#!")?;
    let line = line.split(|&b| b == b'\n').next()?;
    let text = String::from_utf8_lossy(line);
    text.split_ascii_whitespace().next().map(str::to_string)
}

/// The error of a runtime program that cannot be executed, `errno` being what `exec` (or the
/// look at the path before it) said: code 100, the errno named, and what to do.
pub fn cannot_execute(program: &Path, errno: i32) -> Error {
    use nix::libc;
    let why = errno_text(errno);
    let hint = match errno {
        libc::ENOENT if program.is_file() => match interpreter(program) {
            Some(interp) => format!(
                "it is a script whose #! interpreter {interp} does not exist: fix its first line"
            ),
            None => "a program it needs (its ELF interpreter, a script's #! line) is missing"
                .to_string(),
        },
        libc::ENOENT => "there is no such file: install the runtime or fix the path".to_string(),
        libc::EISDIR => "it is a directory: give the runtime program inside it".to_string(),
        libc::EACCES if program.is_dir() => {
            "it is a directory: give the runtime program inside it".to_string()
        }
        libc::EACCES => format!(
            "it is not executable (chmod +x {}) or its filesystem is mounted noexec",
            program.display()
        ),
        libc::ENOEXEC => {
            "it is neither a program for this machine nor a script starting with #!".to_string()
        }
        _ => "check the path and its permissions".to_string(),
    };
    Error::new(
        Code::Prerequisite,
        format!(
            "the runtime {} cannot be executed: {why}; {hint}; --runtime takes crun, runc or the \
             path of an OCI runtime program",
            program.display()
        ),
    )
    .details(errno_name(errno))
}

/// "exit status 1", "killed by signal 9".
pub fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => status.to_string(),
    }
}

/// The exit status a shell would report for `status`: the code, or 128 + the signal.
pub fn shell_status(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1)
}

/// What was appended to `log` from byte `start` on, trimmed; at most the last 4 KiB.
fn read_from(log: &Path, start: u64) -> String {
    let mut text = String::new();
    if let Ok(mut f) = fs::File::open(log) {
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let from = start.max(len.saturating_sub(4096));
        if f.seek(SeekFrom::Start(from)).is_ok() {
            let mut bytes = Vec::new();
            let _ = f.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).trim().to_string();
        }
    }
    if text.is_empty() {
        "the runtime wrote no message".to_string()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kinds_and_default_roots() {
        assert_eq!(kind_of("crun"), Kind::Crun);
        assert_eq!(kind_of("/usr/sbin/runc"), Kind::Runc);
        assert_eq!(kind_of("/bin/false"), Kind::Other);
        assert_eq!(default_root("crun"), Path::new("/run/crun"));
        assert_eq!(default_root("/usr/sbin/runc"), Path::new("/run/runc"));
        assert_eq!(default_root("/opt/x/youki"), Path::new("/run/youki"));
    }

    #[test]
    fn selection_by_path_and_root() {
        let rt = Runtime::select(Some("/bin/sh"), None).unwrap();
        assert_eq!(rt.program, Path::new("/bin/sh"));
        assert_eq!(rt.root, Path::new("/run/sh"));
        assert_eq!(rt.kind, Kind::Other);
        let rt = Runtime::select(Some("/bin/sh"), Some(Path::new("/tmp/r"))).unwrap();
        assert_eq!(rt.root, Path::new("/tmp/r"));
        let err = Runtime::select(Some("/nonexistent/crun"), None).unwrap_err();
        assert_eq!(err.code, Code::Prerequisite);
        let err = Runtime::select(Some("cloon-no-such-runtime"), None).unwrap_err();
        assert_eq!(err.code, Code::Prerequisite);
        assert!(
            err.msg.contains("apt-get install cloon-no-such-runtime"),
            "{}",
            err.msg
        );
        assert_eq!(
            Runtime::select(Some(""), None).unwrap_err().code,
            Code::InvalidArgument
        );
    }

    #[test]
    fn the_default_runtime_is_crun_in_run_crun() {
        match Runtime::select(None, None) {
            Ok(rt) => {
                assert_eq!(rt.kind, Kind::Crun);
                assert_eq!(rt.name, "crun");
                assert_eq!(rt.root, Path::new("/run/crun"));
                assert!(rt.program.is_absolute());
            }
            Err(e) => {
                assert_eq!(e.code, Code::Prerequisite);
                assert!(e.msg.contains("apt-get install crun"), "{}", e.msg);
            }
        }
    }

    #[test]
    fn state_json_of_crun_and_runc_parses() {
        let crun = json!({
            "ociVersion": "1.0.0", "id": "Cloon1", "pid": 4242, "status": "running",
            "bundle": "/run/cloon/Cloon1/bundle", "rootfs": "/x", "created": "2024-01-01T00:00:00Z",
            "owner": ""
        });
        let s = parse_state(&crun).unwrap();
        assert_eq!(
            s,
            State {
                id: "Cloon1".into(),
                pid: 4242,
                status: "running".into(),
                bundle: Some("/run/cloon/Cloon1/bundle".into())
            }
        );
        let runc_stopped = json!({"ociVersion": "1.0.2-dev", "id": "c", "pid": 0, "status": "stopped",
                                  "bundle": "/b", "rootfs": "/r", "created": "x", "owner": ""});
        assert_eq!(parse_state(&runc_stopped).unwrap().status, "stopped");
        let minimal = json!({"id": "c", "status": "created"});
        assert_eq!(parse_state(&minimal).unwrap().pid, 0);
        assert_eq!(
            parse_state(&json!({"pid": 1})).unwrap_err().code,
            Code::Runtime
        );
        assert_eq!(parse_state(&json!([1])).unwrap_err().code, Code::Runtime);
    }

    #[test]
    fn exec_command_line() {
        let rt = Runtime {
            name: "crun".into(),
            program: "/usr/bin/crun".into(),
            kind: Kind::Crun,
            root: "/run/crun".into(),
        };
        let tty = ExecOptions {
            tty: true,
            ..Default::default()
        };
        let c = rt.exec_command("C1", &tty, &["sh".into(), "-c".into(), "exit 7".into()]);
        let args: Vec<&OsStr> = c.get_args().collect();
        assert_eq!(
            args,
            [
                "--root",
                "/run/crun",
                "exec",
                "--tty",
                "C1",
                "sh",
                "-c",
                "exit 7"
            ]
        );
        let c = rt.exec_command("C1", &ExecOptions::default(), &["hostname".into()]);
        assert_eq!(c.get_args().count(), 5);
        assert!(
            rt.exec_line("C1", &tty, &["sh".into(), "-c".into(), "exit 7".into()])
                .ends_with(" --root /run/crun exec --tty C1 sh -c 'exit 7'"),
            "{}",
            rt.exec_line("C1", &tty, &[])
        );
        let all = ExecOptions {
            tty: false,
            detach: true,
            env: vec!["A=b c".into(), "B=".into()],
            cwd: Some("/tmp".into()),
            user: Some("1000:1000".into()),
        };
        let line = rt.exec_line("C1", &all, &["id".into()]);
        assert!(
            line.ends_with(
                " --root /run/crun exec --detach --env 'A=b c' --env B= --cwd /tmp \
                 --user 1000:1000 C1 id"
            ),
            "{line}"
        );
    }

    #[test]
    fn failed_logged_commands_report_the_log() {
        let dir = std::env::temp_dir().join(format!("cloon-run-log-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let script = dir.join("fake-runtime");
        fs::write(
            &script,
            "#!/bin/sh\necho \"no luck with $3 $4\" >&2\nexit 3\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        let log = dir.join("container.log");
        fs::write(&log, "earlier line\n").unwrap();
        let rt = Runtime::select(Some(script.to_str().unwrap()), Some(&dir.join("root"))).unwrap();
        let err = rt.start("C1", &log).unwrap_err();
        assert_eq!(err.code, Code::Runtime);
        assert!(err.msg.contains("exit status 3"), "{}", err.msg);
        assert_eq!(err.details, "no luck with start C1");
        // A container the runtime has no directory for does not exist.
        assert_eq!(rt.state("C1").unwrap(), None);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn runtimes_that_cannot_be_executed_say_why() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("cloon-run-noexec-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("adir")).unwrap();
        let plain = dir.join("plain");
        fs::write(&plain, "#!/bin/sh\nexit 0\n").unwrap();
        fs::set_permissions(&plain, fs::Permissions::from_mode(0o644)).unwrap();
        let script = dir.join("script");
        fs::write(&script, "#!/cloon/no/such/interpreter -x\nexit 0\n").unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        let root = dir.join("root");

        // Found before anything is run: a missing path, a directory.
        let err = Runtime::select(Some(dir.join("missing").to_str().unwrap()), None).unwrap_err();
        assert_eq!(err.code, Code::Prerequisite);
        assert!(
            err.msg
                .contains("cannot be executed: No such file or directory (ENOENT)"),
            "{}",
            err.msg
        );
        assert_eq!(err.details, "ENOENT");
        let err = Runtime::select(Some(dir.join("adir").to_str().unwrap()), None).unwrap_err();
        assert_eq!(err.code, Code::Prerequisite);
        assert!(err.msg.contains("Is a directory (EISDIR)"), "{}", err.msg);

        // Found when it is run: the errno of the exec.
        let rt = Runtime::select(Some(plain.to_str().unwrap()), Some(&root)).unwrap();
        let err = rt.state("C1").unwrap_err();
        assert_eq!(err.code, Code::Prerequisite);
        assert!(
            err.msg.contains("Permission denied (EACCES)"),
            "{}",
            err.msg
        );
        assert!(err.msg.contains("chmod +x"), "{}", err.msg);
        assert_eq!(err.details, "EACCES");
        let log = dir.join("log");
        let err = rt.start("C1", &log).unwrap_err();
        assert_eq!(
            (err.code, err.details.as_str()),
            (Code::Prerequisite, "EACCES")
        );
        let rt = Runtime::select(Some(script.to_str().unwrap()), Some(&root)).unwrap();
        let err = rt.kill("C1", "KILL").unwrap_err();
        assert_eq!(err.code, Code::Prerequisite);
        assert!(
            err.msg.contains("No such file or directory (ENOENT)"),
            "{}",
            err.msg
        );
        assert!(
            err.msg
                .contains("/cloon/no/such/interpreter does not exist"),
            "{}",
            err.msg
        );

        // Other failures to start a process are not the program's.
        let busy = std::io::Error::from_raw_os_error(nix::libc::EAGAIN);
        assert_eq!(rt.spawn_error("start", &busy).code, Code::TryAgain);
        assert_eq!(errno_text(nix::libc::EACCES), "Permission denied (EACCES)");
        assert_eq!(errno_name(100_000), "errno 100000");
        fs::remove_dir_all(&dir).unwrap();
    }
}
