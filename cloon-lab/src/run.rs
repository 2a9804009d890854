//! Commands and pipelines: what cloon-lab runs, as data, so that the same value is both run
//! (here, as subprocesses joined by pipes, as a shell joins them) and printed as shell text (the
//! generated Makefile and script). A [`Pipeline`] is `cmd1 ARGS <IN | cmd2 ARGS | ... >OUT`.
//!
//! The five tools are looked for next to the cloon-lab executable first (a build directory or an
//! installation keeps them together), then in `PATH`; the printed text names them bare, for the
//! `PATH` of whoever runs it.

use anyhow::{anyhow, bail, Context as _};
use serde_json::Value;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The five tools, in pipeline order.
pub const TOOLS: [&str; 5] = [
    "cloon-img",
    "cloon-overlay",
    "cloon-netns",
    "cloon-spec",
    "cloon-run",
];

/// One command: a program and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    pub program: String,
    pub args: Vec<String>,
}

impl Cmd {
    pub fn new(program: &str) -> Cmd {
        Cmd {
            program: program.to_string(),
            args: Vec::new(),
        }
    }

    pub fn arg(mut self, a: impl Into<String>) -> Cmd {
        self.args.push(a.into());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, a: I) -> Cmd {
        self.args.extend(a.into_iter().map(Into::into));
        self
    }

    /// The command as shell words.
    pub fn shell(&self) -> String {
        std::iter::once(&self.program)
            .chain(&self.args)
            .map(|w| quote(w))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Commands joined by pipes, standard input from a file (or `/dev/null`), standard output to a
/// file (or `/dev/null`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pipeline {
    pub stdin: Option<PathBuf>,
    pub cmds: Vec<Cmd>,
    pub stdout: Option<PathBuf>,
}

impl Pipeline {
    pub fn new(cmds: Vec<Cmd>) -> Pipeline {
        Pipeline {
            stdin: None,
            cmds,
            stdout: None,
        }
    }

    pub fn stdin(mut self, p: impl Into<PathBuf>) -> Pipeline {
        self.stdin = Some(p.into());
        self
    }

    pub fn stdout(mut self, p: impl Into<PathBuf>) -> Pipeline {
        self.stdout = Some(p.into());
        self
    }

    /// The pipeline as one shell line (`\` and a new line between commands when `multiline`).
    pub fn shell(&self, multiline: bool) -> String {
        let mut parts: Vec<String> = self.cmds.iter().map(Cmd::shell).collect();
        let input = match &self.stdin {
            Some(p) => format!(" <{}", quote(&p.to_string_lossy())),
            None => " </dev/null".to_string(),
        };
        if let Some(first) = parts.first_mut() {
            first.push_str(&input);
        }
        let output = match &self.stdout {
            Some(p) => format!(" >{}", quote(&p.to_string_lossy())),
            None => " >/dev/null".to_string(),
        };
        if let Some(last) = parts.last_mut() {
            last.push_str(&output);
        }
        let sep = if multiline { " \\\n  | " } else { " | " };
        parts.join(sep)
    }
}

/// `word` quoted for a POSIX shell when it needs it (the tools' own quoting, so that what
/// cloon-lab says and what `--explain` says agree).
pub use cloon_core::explain::quote;

/// Where the tools are.
#[derive(Debug, Clone)]
pub struct Tools {
    /// The directory of the cloon-lab executable.
    own_dir: Option<PathBuf>,
}

impl Tools {
    pub fn new() -> Tools {
        let own_dir = std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf));
        Tools { own_dir }
    }

    /// The path of `program`: next to cloon-lab, else from `PATH`.
    pub fn find(&self, program: &str) -> Option<PathBuf> {
        if let Some(dir) = &self.own_dir {
            let p = dir.join(program);
            if is_executable(&p) {
                return Some(p);
            }
        }
        std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join(program))
                .find(|p| is_executable(p))
        })
    }

    /// Fails, saying how to fix it, unless all five tools are found.
    pub fn require_all(&self) -> anyhow::Result<()> {
        let missing: Vec<&str> = TOOLS
            .iter()
            .copied()
            .filter(|t| self.find(t).is_none())
            .collect();
        if !missing.is_empty() {
            bail!(
                "{} not found next to cloon-lab{} nor in PATH: build the workspace (`cargo build \
                 --release`) and put target/$(rustc --print host-tuple)/release in PATH, or \
                 install the tools (scripts/install); `cloon-lab doctor` checks the rest of the \
                 host",
                missing.join(", "),
                self.own_dir
                    .as_ref()
                    .map(|d| format!(" ({})", d.display()))
                    .unwrap_or_default()
            );
        }
        Ok(())
    }

    fn command(&self, cmd: &Cmd) -> anyhow::Result<Command> {
        let path = self
            .find(&cmd.program)
            .ok_or_else(|| anyhow!("{} not found next to cloon-lab nor in PATH", cmd.program))?;
        let mut c = Command::new(path);
        c.args(&cmd.args);
        Ok(c)
    }

    /// Runs `p` as a shell would, waiting for every command. Standard error of all the commands
    /// is collected; standard output goes to `p.stdout` (made, or emptied), and on failure that
    /// file is removed, as make's `.DELETE_ON_ERROR` does for the Makefile's same rule.
    pub fn run(&self, p: &Pipeline) -> anyhow::Result<Outcome> {
        let started = Instant::now();
        let (mut err_read, err_write) = std::io::pipe().context("cannot make a pipe")?;
        let mut children = Vec::new();
        let mut next_stdin: Option<Stdio> = Some(match &p.stdin {
            Some(path) => Stdio::from(
                std::fs::File::open(path)
                    .with_context(|| format!("cannot open {}", path.display()))?,
            ),
            None => Stdio::null(),
        });
        let out_file = match &p.stdout {
            Some(path) => Some(
                std::fs::File::create(path)
                    .with_context(|| format!("cannot write {}", path.display()))?,
            ),
            None => None,
        };
        let n = p.cmds.len();
        let mut spawn_error = None;
        for (i, cmd) in p.cmds.iter().enumerate() {
            let mut c = match self.command(cmd) {
                Ok(c) => c,
                Err(e) => {
                    spawn_error = Some(e);
                    break;
                }
            };
            c.stdin(next_stdin.take().unwrap_or_else(Stdio::null));
            c.stderr(Stdio::from(
                err_write.try_clone().context("cannot dup a pipe")?,
            ));
            if i + 1 < n {
                c.stdout(Stdio::piped());
            } else {
                match &out_file {
                    Some(f) => c.stdout(Stdio::from(f.try_clone().context("cannot dup a file")?)),
                    None => c.stdout(Stdio::piped()),
                };
            }
            match c.spawn() {
                Ok(mut child) => {
                    if i + 1 < n {
                        next_stdin = child.stdout.take().map(Stdio::from);
                    }
                    children.push(child);
                }
                Err(e) => {
                    spawn_error = Some(anyhow!(e).context(format!("cannot run {}", cmd.program)));
                    break;
                }
            }
        }
        drop(err_write);
        drop(next_stdin);
        // The last command's output when it goes nowhere else (captured: `cloon-run exec`).
        let mut captured = String::new();
        if out_file.is_none() {
            if let Some(last) = children.last_mut() {
                if let Some(mut out) = last.stdout.take() {
                    let _ = out.read_to_string(&mut captured);
                }
            }
        }
        let mut stderr = String::new();
        let _ = err_read.read_to_string(&mut stderr);
        let mut statuses = Vec::new();
        for mut c in children {
            statuses.push(c.wait().map(|s| s.code().unwrap_or(128)).unwrap_or(128));
        }
        if let Some(e) = spawn_error {
            if let Some(path) = &p.stdout {
                let _ = std::fs::remove_file(path);
            }
            return Err(e);
        }
        let ok = statuses.iter().all(|s| *s == 0);
        let doc = match (&p.stdout, ok) {
            (Some(path), _) => std::fs::read_to_string(path)
                .ok()
                .and_then(|t| serde_json::from_str::<Value>(&t).ok()),
            (None, _) => serde_json::from_str::<Value>(&captured).ok(),
        };
        if !ok {
            if let Some(path) = &p.stdout {
                let _ = std::fs::remove_file(path);
            }
        }
        Ok(Outcome {
            ok,
            status: statuses.iter().copied().find(|s| *s != 0).unwrap_or(0),
            stdout: captured,
            stderr,
            doc,
            elapsed: started.elapsed(),
        })
    }

    /// Runs `p` and fails with its error (the document's, else its standard error) unless it
    /// succeeds.
    pub fn run_ok(&self, p: &Pipeline) -> anyhow::Result<Outcome> {
        let o = self.run(p)?;
        if !o.ok {
            bail!("{}", o.failure(p));
        }
        Ok(o)
    }
}

impl Default for Tools {
    fn default() -> Self {
        Tools::new()
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// What a pipeline did.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub ok: bool,
    /// The first non-zero exit status, or 0.
    pub status: i32,
    /// The last command's output, when it was not sent to a file.
    pub stdout: String,
    /// Everything the commands said on standard error.
    pub stderr: String,
    /// The JSON document the pipeline wrote, when it wrote one.
    pub doc: Option<Value>,
    pub elapsed: Duration,
}

impl Outcome {
    /// Why `p` failed, in a sentence: the error document's stage and message, else the last
    /// lines of standard error.
    pub fn failure(&self, p: &Pipeline) -> String {
        if let Some(err) = self.doc.as_ref().and_then(|d| d.get("error")) {
            let stage = err.get("stage").and_then(Value::as_str).unwrap_or("a tool");
            let msg = err.get("msg").and_then(Value::as_str).unwrap_or("failed");
            let details = err
                .get("details")
                .and_then(Value::as_str)
                .filter(|d| !d.is_empty())
                .map(|d| format!(" ({})", d.trim()))
                .unwrap_or_default();
            return format!("{stage}: {msg}{details}");
        }
        let tail: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        let tail = tail[tail.len().saturating_sub(5)..].join("\n    ");
        let first = p.cmds.first().map(|c| c.program.as_str()).unwrap_or("?");
        if tail.is_empty() {
            format!("{first}...: exit status {}", self.status)
        } else {
            format!("{first}...: exit status {}:\n    {tail}", self.status)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_text_quotes_what_needs_it() {
        assert_eq!(quote("cloon-run"), "cloon-run");
        assert_eq!(quote("10.0.0.1/24"), "10.0.0.1/24");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("$HOME"), "'$HOME'");
        let p = Pipeline::new(vec![
            Cmd::new("cloon-overlay").args(["--name", "x"]),
            Cmd::new("cloon-run"),
        ])
        .stdin("/c/bb.json")
        .stdout("/run/x.json");
        assert_eq!(
            p.shell(false),
            "cloon-overlay --name x </c/bb.json | cloon-run >/run/x.json"
        );
        assert_eq!(
            Pipeline::new(vec![Cmd::new("cloon-netns").arg("down")]).shell(false),
            "cloon-netns down </dev/null >/dev/null"
        );
    }

    #[test]
    fn pipelines_run_as_a_shell_runs_them() {
        let tools = Tools {
            own_dir: Some(PathBuf::from("/nonexistent")),
        };
        let dir = std::env::temp_dir().join(format!("cloon-lab-run-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let input = dir.join("in");
        std::fs::write(&input, "{\"a\": 1}\n").unwrap();
        let out = dir.join("out.json");
        let p = Pipeline::new(vec![Cmd::new("cat"), Cmd::new("cat")])
            .stdin(&input)
            .stdout(&out);
        let o = tools.run(&p).unwrap();
        assert!(o.ok);
        assert_eq!(o.doc.unwrap()["a"], 1);
        // A failing command fails the pipeline (pipefail) and its output file goes.
        let p = Pipeline::new(vec![
            Cmd::new("sh").args(["-c", "echo oops >&2; exit 3"]),
            Cmd::new("cat"),
        ])
        .stdout(&out);
        let o = tools.run(&p).unwrap();
        assert!(!o.ok);
        assert_eq!(o.status, 3);
        assert!(o.failure(&p).contains("oops"));
        assert!(!out.exists());
        // An error document is what the failure says.
        let p = Pipeline::new(vec![Cmd::new("sh").args([
            "-c",
            r#"echo '{"error": {"stage": "cloon-netns", "msg": "taken", "details": ""}}'; exit 101"#,
        ])]);
        let o = tools.run(&p).unwrap();
        assert_eq!(o.failure(&p), "cloon-netns: taken");
        assert!(tools
            .run(&Pipeline::new(vec![Cmd::new("no-such-program-here")]))
            .is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
