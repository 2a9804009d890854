//! `--explain` and `--dry-run`: before each action on the system, a tool says on stderr the shell
//! command that does the same thing (`losetup`, `mount`, `ip ...`, `crun ...`), so a learner sees
//! the article's steps as they happen. With `--dry-run` it says them and does nothing.
//!
//! The commands are exact: run in order, in a shell, they make the same objects the tool makes.

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
}
