//! What an impaired link leaves in its record directory, and the relay process it names.
//!
//! The caller (the lab) gives each impaired link a directory of its own, under its state
//! directory; this module keeps three files there, each read and written through the directory's
//! descriptor without following a link (cloon-core's `fs_at`):
//!
//! - `impair.json` ([`Record`]): the engine, the two ends, the impairment and, for the relay, the
//!   process (pid and start time, field 22 of `/proc/PID/stat`: together they name one process
//!   for as long as the machine runs, where a pid alone may be reused) and its seed. It is
//!   written before anything is made, so that `remove` and `gc` find what a crash left.
//! - `impair-stats.json` ([`Stats`]): the relay's counters, which it writes when asked
//!   (`SIGUSR1`), after a change and when it ends.
//! - `impair-relay.log`: the relay's standard error.

use super::ns::End;
use super::spec::Netem;
use anyhow::{anyhow, Context, Result};
use cloon_core::state::fs_at;
use serde::{Deserialize, Serialize};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

/// The record's file name.
pub const RECORD: &str = "impair.json";
/// The relay's counters.
pub const STATS: &str = "impair-stats.json";
/// The relay's standard error.
pub const LOG: &str = "impair-relay.log";

/// Which engine impairs a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// The kernel's netem qdisc on both ends.
    Kernel,
    /// The user-space relay between the two ends.
    Relay,
}

impl std::fmt::Display for EngineKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EngineKind::Kernel => "kernel",
            EngineKind::Relay => "relay",
        })
    }
}

/// A relay process, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Proc {
    /// Its pid (0 until it has started).
    pub pid: i32,
    /// Its start time, clock ticks after boot (field 22 of `/proc/PID/stat`).
    pub start_time: u64,
    /// The seed of its random numbers.
    pub seed: u64,
    /// The program it runs.
    pub program: String,
}

/// The record of an impaired link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub engine: EngineKind,
    /// The two ends: the relay joins them; the kernel engine sets netem on each.
    pub ends: [End; 2],
    pub netem: Netem,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay: Option<Proc>,
    /// Only the frames from `ends[0]` to `ends[1]` are impaired (the relay passes the others as
    /// they come): this host's end of a link to another host, whose host impairs the way back.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub one_way: bool,
}

/// The counters of one direction of a relayed link.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirStats {
    /// The end frames come from, and the one they go to.
    pub from: String,
    pub to: String,
    /// Frames read from `from` (super-frames counted once), and their bytes.
    pub received: u64,
    pub received_bytes: u64,
    /// Frames written to `to`, and their bytes.
    pub sent: u64,
    pub sent_bytes: u64,
    /// Dropped by the loss probability.
    pub lost: u64,
    /// Dropped because `limit` frames were already waiting.
    pub overflow: u64,
    /// Dropped because the write failed (too big for `to`'s MTU, no buffer, interface down).
    pub errors: u64,
    /// Dropped because their offload could not be undone (UDP segmentation offload).
    pub unsupported: u64,
    /// Dropped by the kernel before the relay read them (its socket buffer was full).
    pub kernel_drops: u64,
    /// Sent twice.
    pub duplicated: u64,
    /// Sent with one bit flipped.
    pub corrupted: u64,
    /// Super-frames cut into segments.
    pub segmented: u64,
    /// Waiting now.
    pub queued: u64,
}

/// The relay's counters, as it last wrote them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Counts the writes, so that a reader knows a fresh one from an old one.
    pub seq: u64,
    pub pid: i32,
    pub seed: u64,
    /// The impairment in force.
    pub netem: Netem,
    /// From end 0 to end 1, then from end 1 to end 0.
    pub directions: [DirStats; 2],
}

/// The record directory, opened without following a link at its last component.
pub fn open_dir(dir: &Path) -> Result<OwnedFd> {
    fs_at::open_dir(dir)
        .with_context(|| format!("cannot open the record directory {}", dir.display()))
}

/// Reads the record of `dir`, `None` when there is none.
pub fn load(dir: &Path) -> Result<Option<Record>> {
    let fd = match fs_at::open_dir(dir) {
        Err(nix::errno::Errno::ENOENT) => return Ok(None),
        other => other.with_context(|| format!("cannot open {}", dir.display()))?,
    };
    read_json(fd.as_fd(), RECORD)
}

/// Reads the relay's counters of `dir`, `None` when there are none.
pub fn load_stats(dir: &Path) -> Result<Option<Stats>> {
    let fd = match fs_at::open_dir(dir) {
        Err(nix::errno::Errno::ENOENT) => return Ok(None),
        other => other.with_context(|| format!("cannot open {}", dir.display()))?,
    };
    read_json(fd.as_fd(), STATS)
}

/// Reads and parses a JSON file of the directory `fd`.
pub fn read_json<T: serde::de::DeserializeOwned>(
    fd: std::os::fd::BorrowedFd<'_>,
    leaf: &str,
) -> Result<Option<T>> {
    let Some(text) = fs_at::read(fd, leaf).with_context(|| format!("cannot read {leaf}"))? else {
        return Ok(None);
    };
    serde_json::from_str(&text)
        .map(Some)
        .with_context(|| format!("{leaf} is not a valid record"))
}

/// Writes (atomically replaces) a JSON file of the directory `fd`.
pub fn write_json<T: Serialize>(
    fd: std::os::fd::BorrowedFd<'_>,
    leaf: &str,
    value: &T,
) -> Result<()> {
    let mut text = serde_json::to_vec_pretty(value)?;
    text.push(b'\n');
    fs_at::replace(fd, leaf, &text).with_context(|| format!("cannot write {leaf}"))
}

/// Writes the record of `dir`.
pub fn save(dir: &Path, record: &Record) -> Result<()> {
    let fd = open_dir(dir)?;
    write_json(fd.as_fd(), RECORD, record)
}

/// Removes this module's files from `dir` (what is gone counts as removed).
pub fn forget(dir: &Path) -> Result<()> {
    let fd = match fs_at::open_dir(dir) {
        Err(nix::errno::Errno::ENOENT) => return Ok(()),
        other => other.with_context(|| format!("cannot open {}", dir.display()))?,
    };
    for leaf in [STATS, LOG, RECORD] {
        fs_at::unlink(fd.as_fd(), leaf).with_context(|| format!("cannot remove {leaf}"))?;
    }
    Ok(())
}

/// The state letter and start time of process `pid` from `/proc/PID/stat` (the fields after
/// the command name, which may hold spaces and parentheses, are counted from its last `)`).
pub fn stat(pid: i32) -> Option<(char, u64)> {
    if pid <= 0 {
        return None;
    }
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// Parses the text of `/proc/PID/stat` into (state, start time).
pub fn parse_stat(text: &str) -> Option<(char, u64)> {
    let mut fields = text[text.rfind(')')? + 1..].split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    // Field 3 was the state; field 22 is 19 further.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// Whether the recorded process runs: its pid names a process that started at the recorded
/// time and has not ended (a zombie has ended).
pub fn alive(p: &Proc) -> bool {
    matches!(stat(p.pid), Some((state, start)) if start == p.start_time && !matches!(state, 'Z' | 'X' | 'x'))
}

/// Sends `signal` to the recorded process if it is still the one recorded.
pub fn signal(p: &Proc, signal: nix::sys::signal::Signal) -> Result<bool> {
    let Some(fd) = pidfd(p.pid)? else {
        return Ok(false);
    };
    // The pidfd names whichever process had the pid when it was opened: the recorded one only
    // if it started at the recorded time. Signals through the pidfd cannot reach a successor.
    if !alive(p) {
        return Ok(false);
    }
    // SAFETY: pidfd_send_signal takes a descriptor, a signal number and no info (null), and
    // touches no memory of this process.
    let r = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            signal as nix::libc::c_int,
            std::ptr::null::<nix::libc::siginfo_t>(),
            0,
        )
    };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(nix::libc::ESRCH) {
            return Ok(false);
        }
        return Err(anyhow!("cannot signal the relay (pid {}): {e}", p.pid));
    }
    Ok(true)
}

/// A pidfd on `pid`, `None` when there is no such process.
fn pidfd(pid: i32) -> Result<Option<OwnedFd>> {
    if pid <= 0 {
        return Ok(None);
    }
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(nix::libc::ESRCH) {
            return Ok(None);
        }
        return Err(anyhow!("pidfd_open({pid}): {e}"));
    }
    let fd = i32::try_from(fd)?;
    // SAFETY: `fd` is a descriptor pidfd_open just returned, owned by nobody else.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Stops the recorded process: `SIGTERM`, up to `grace` to end, then `SIGKILL`. A process
/// already gone (or a pid that names another process now) counts as stopped.
pub fn stop(p: &Proc, grace: Duration) -> Result<()> {
    if !signal(p, nix::sys::signal::Signal::SIGTERM)? {
        return Ok(());
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if !alive(p) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    signal(p, nix::sys::signal::Signal::SIGKILL)?;
    let deadline = Instant::now() + Duration::from_secs(2);
    while alive(p) {
        if Instant::now() > deadline {
            return Err(anyhow!("the relay (pid {}) does not end", p.pid));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields() {
        let text = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 10";
        assert_eq!(parse_stat(text), Some(('S', 98765)));
        assert_eq!(parse_stat("garbage"), None);
        let me = stat(std::process::id() as i32).unwrap();
        assert!(matches!(me.0, 'R' | 'S'), "{me:?}");
        let p = Proc {
            pid: std::process::id() as i32,
            start_time: me.1,
            seed: 0,
            program: String::new(),
        };
        assert!(alive(&p));
        assert!(!alive(&Proc {
            start_time: me.1 + 1,
            ..p.clone()
        }));
    }

    #[test]
    fn record_round_trip() {
        let r = Record {
            one_way: false,
            engine: EngineKind::Relay,
            ends: [End::here("va"), End::in_netns("x", "vb")],
            netem: serde_json::from_str(r#"{"delay":"10ms"}"#).unwrap(),
            relay: Some(Proc {
                pid: 7,
                start_time: 9,
                seed: 3,
                program: "/bin/x".into(),
            }),
        };
        let text = serde_json::to_string(&r).unwrap();
        assert!(text.contains(r#""engine":"relay""#), "{text}");
        assert!(text.contains(r#""startTime":9"#), "{text}");
        assert_eq!(serde_json::from_str::<Record>(&text).unwrap(), r);
    }
}
