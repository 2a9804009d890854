//! The error object every tool writes on failure, and its codes.
//!
//! Codes 1 to 99 follow the CNI convention; 100 and up are cloon's own. `docs/document.md` lists
//! them all, and `tests/tests/docs.rs` checks that list against [`Code::ALL`].

use std::fmt;

/// What kind of failure an [`Error`] is; its number is the `code` of the error document and the
/// tool's exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// The document's `cloonVersion` is not one this tool understands.
    IncompatibleVersion = 1,
    /// A container, namespace, link, image or record that should exist does not.
    Unknown = 3,
    /// A flag or a field of the document has a value the tool cannot use.
    InvalidArgument = 4,
    /// A system call or a file operation failed.
    Io = 5,
    /// The standard input is not a cloon document.
    Decode = 6,
    /// The document misses a part this step needs, or its parts disagree.
    InvalidConfig = 7,
    /// A resource is busy for now; the same command may work later.
    TryAgain = 11,
    /// The host lacks something cloon needs (a program, a kernel feature, a cgroup layout).
    Prerequisite = 100,
    /// The name is already used by another container, namespace or interface.
    NameTaken = 101,
    /// The OCI runtime (crun, runc) failed; its own message is in `details`.
    Runtime = 102,
    /// The tool lacks the privileges it needs (root, CAP_SYS_ADMIN, CAP_NET_ADMIN).
    NotPermitted = 103,
    /// What exists no longer matches what cloon recorded (`check`).
    Drift = 104,
}

impl Code {
    /// Every code, for documentation and tests.
    pub const ALL: [Code; 12] = [
        Code::IncompatibleVersion,
        Code::Unknown,
        Code::InvalidArgument,
        Code::Io,
        Code::Decode,
        Code::InvalidConfig,
        Code::TryAgain,
        Code::Prerequisite,
        Code::NameTaken,
        Code::Runtime,
        Code::NotPermitted,
        Code::Drift,
    ];

    /// The number written in the error document and used as exit status.
    pub fn number(self) -> u8 {
        self as u8
    }

    /// Maps an errno to the code a user acts on: permissions, busy, missing, taken, or plain I/O.
    pub fn from_errno(errno: nix::errno::Errno) -> Code {
        use nix::errno::Errno;
        match errno {
            Errno::EPERM | Errno::EACCES => Code::NotPermitted,
            Errno::EBUSY | Errno::EAGAIN => Code::TryAgain,
            Errno::EEXIST => Code::NameTaken,
            Errno::ENOENT | Errno::ENODEV | Errno::ESRCH => Code::Unknown,
            _ => Code::Io,
        }
    }
}

/// A failure of one step: what went wrong (`msg`, with what to do) and the low-level cause
/// (`details`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub code: Code,
    pub msg: String,
    pub details: String,
}

/// The result of every fallible operation in cloon.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn new(code: Code, msg: impl Into<String>) -> Self {
        Error {
            code,
            msg: msg.into(),
            details: String::new(),
        }
    }

    /// Adds the low-level cause (an errno text, a runtime's message).
    pub fn details(mut self, details: impl fmt::Display) -> Self {
        self.details = details.to_string();
        self
    }

    /// An invalid flag or field.
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::new(Code::InvalidArgument, msg)
    }

    /// A missing or inconsistent part of the document.
    pub fn config(msg: impl Into<String>) -> Self {
        Error::new(Code::InvalidConfig, msg)
    }

    /// A failed system call, coded by its errno.
    pub fn sys(msg: impl Into<String>, errno: nix::errno::Errno) -> Self {
        Error::new(Code::from_errno(errno), msg).details(errno.desc())
    }

    /// A failed file operation, coded by its errno when it has one.
    pub fn io(msg: impl Into<String>, err: &std::io::Error) -> Self {
        let code = err
            .raw_os_error()
            .map(|n| Code::from_errno(nix::errno::Errno::from_raw(n)))
            .unwrap_or(Code::Io);
        Error::new(code, msg).details(err)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)?;
        if !self.details.is_empty() {
            write!(f, " ({})", self.details)?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// Turns any error with an errno into a cloon [`Error`] with a message saying what was attempted.
pub trait Context<T> {
    fn context(self, msg: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, std::io::Error> {
    fn context(self, msg: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::io(msg(), &e))
    }
}

impl<T> Context<T> for std::result::Result<T, nix::errno::Errno> {
    fn context(self, msg: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::sys(msg(), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_nonzero() {
        let mut numbers: Vec<u8> = Code::ALL.iter().map(|c| c.number()).collect();
        numbers.sort_unstable();
        numbers.dedup();
        assert_eq!(numbers.len(), Code::ALL.len());
        assert!(numbers.iter().all(|&n| n != 0));
    }

    #[test]
    fn errno_maps_to_actionable_codes() {
        use nix::errno::Errno;
        assert_eq!(Code::from_errno(Errno::EPERM), Code::NotPermitted);
        assert_eq!(Code::from_errno(Errno::EEXIST), Code::NameTaken);
        assert_eq!(Code::from_errno(Errno::EBUSY), Code::TryAgain);
        assert_eq!(Code::from_errno(Errno::EIO), Code::Io);
    }

    #[test]
    fn display_joins_message_and_details() {
        let e = Error::invalid("bad name").details("too long");
        assert_eq!(e.to_string(), "bad name (too long)");
        assert_eq!(Error::invalid("x").to_string(), "x");
    }
}
