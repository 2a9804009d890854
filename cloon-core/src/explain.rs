//! `--explain` and `--dry-run`: before each action on the system, a tool says on stderr the shell
//! command that does the same thing (`losetup`, `mount`, `ip ...`, `crun ...`), so a learner sees
//! the article's steps as they happen. With `--dry-run` it says them and does nothing.
//!
//! The commands are exact: run in order, in a shell, they make the same objects the tool makes.

use crate::error::{Code, Error, Result};
use crate::state::StateDir;
use crate::undo::Undo;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};

/// How a tool reports its actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Act, say nothing (the default).
    #[default]
    Quiet,
    /// Say each command on stderr, then act.
    Explain,
    /// Say each command on stderr, do not act.
    DryRun,
}

static MODE: AtomicU8 = AtomicU8::new(0);

/// Sets the mode for the rest of the process (from the command line, once).
pub fn set(mode: Mode) {
    MODE.store(mode as u8, Ordering::Relaxed);
}

/// The mode in force.
pub fn mode() -> Mode {
    match MODE.load(Ordering::Relaxed) {
        1 => Mode::Explain,
        2 => Mode::DryRun,
        _ => Mode::Quiet,
    }
}

/// Whether the tool acts (it does unless `--dry-run`).
pub fn acting() -> bool {
    mode() != Mode::DryRun
}

/// Says `words` as one shell command line on stderr when explaining; returns whether to act.
///
/// ```
/// use cloon_core::explain;
/// if explain::step(&["mount", "-t", "overlay", "overlay", "/rootfs"]) {
///     // ... the mount(2) call ...
/// }
/// ```
pub fn step<S: AsRef<str>>(words: &[S]) -> bool {
    if mode() != Mode::Quiet {
        eprintln!("{}", command_line(words));
    }
    acting()
}

/// Says a comment line (`# ...`) when explaining: what a step does that no command shows.
pub fn note(text: &str) {
    if mode() != Mode::Quiet {
        eprintln!("# {text}");
    }
}

/// Says `code`, shell code written as is (a loop, a redirection, a heredoc, a variable), when
/// explaining; returns whether to act. Build it with [`quote`] for every path or value in it.
///
/// ```
/// use cloon_core::explain::{self, quote};
/// let log = "/run/cloon/Cloon1/container.log";
/// if explain::shell(&format!("crun start Cloon1 2>>{}", quote(log))) {
///     // ... start it ...
/// }
/// ```
pub fn shell(code: &str) -> bool {
    if mode() != Mode::Quiet {
        eprintln!("{code}");
    }
    acting()
}

/// How a shell command names `program`: its bare name when a `PATH` search finds this very file,
/// its full path otherwise.
pub fn program(program: &Path) -> String {
    let found = program
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| crate::host::find_program(n).as_deref() == Some(program));
    match found {
        Some(name) => name.to_string(),
        None => program.to_string_lossy().into_owned(),
    }
}

/// Says the `mkdir` that makes the state directory of `name` (and the state root), mode 0700, as
/// [`StateDir::claim`] does, for the directories that do not exist yet.
pub fn state_dir(state: &StateDir, name: &str) -> Result<()> {
    let dir = state.dir(name)?;
    let mut missing: Vec<String> = dir
        .ancestors()
        .take_while(|p| !p.exists())
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    missing.reverse();
    if !missing.is_empty() {
        let mut words = vec!["mkdir".to_string(), "-p".into(), "-m".into(), "700".into()];
        words.extend(missing);
        step(&words);
    }
    Ok(())
}

/// [`StateDir::claim_with_undo`], said: the `mkdir` of the state directory when it is missing,
/// then the record as a note (cloon's bookkeeping, which no shell command stands for). With
/// `--dry-run`, only checks that no record of `stage` exists for `name`.
pub fn claim<T: Serialize>(
    state: &StateDir,
    undo: &mut Undo,
    name: &str,
    stage: &str,
    record: &T,
) -> Result<()> {
    state_dir(state, name)?;
    let path = record_path(state, name, stage)?;
    note(&format!("record {}", path.display()));
    if acting() {
        return state.claim_with_undo(undo, name, stage, record);
    }
    if path.exists() {
        return Err(Error::new(
            Code::NameTaken,
            format!("{stage} \"{name}\" already exists: pick another name, or bring it down first"),
        )
        .details(format!("its record is {}", path.display())));
    }
    Ok(())
}

/// [`StateDir::release`], said: the removal of the record as a note, then the `rmdir` of the
/// container's state directory, which goes when nothing else is left in it.
pub fn release(state: &StateDir, name: &str, stage: &str) -> Result<()> {
    if say_release(state, name, stage)? {
        state.release(name, stage)?;
    }
    Ok(())
}

/// What [`release`] says (the removal of the record as a note, then the `rmdir` of the
/// container's state directory), without doing it; returns whether to act.
pub fn say_release(state: &StateDir, name: &str, stage: &str) -> Result<bool> {
    note(&format!(
        "remove the record {}",
        record_path(state, name, stage)?.display()
    ));
    let dir = state.dir(name)?;
    Ok(step(&[
        "rmdir",
        "--ignore-fail-on-non-empty",
        &dir.to_string_lossy(),
    ]))
}

fn record_path(state: &StateDir, name: &str, stage: &str) -> Result<PathBuf> {
    Ok(state.dir(name)?.join(format!("{stage}.json")))
}

/// The words joined as a shell command line, each quoted where the shell would split or expand it.
pub fn command_line<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(|w| quote(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One word quoted for a POSIX shell: as is when safe, else in single quotes.
pub fn quote(word: &str) -> String {
    let safe = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:=,@%+".contains(c));
    if safe {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_what_needs_it() {
        assert_eq!(quote("/dev/loop3"), "/dev/loop3");
        assert_eq!(quote("lowerdir=/a,upperdir=/b"), "lowerdir=/a,upperdir=/b");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote("$HOME"), "'$HOME'");
        assert_eq!(
            command_line(&["ip", "link", "set", "eth 0", "up"]),
            "ip link set 'eth 0' up"
        );
    }

    #[test]
    fn programs_are_named_as_a_shell_finds_them() {
        if let Some(sh) = crate::host::find_program("sh") {
            assert_eq!(program(&sh), "sh");
        }
        assert_eq!(program(Path::new("/nonexistent/crun")), "/nonexistent/crun");
    }
}
