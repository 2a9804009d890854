//! The container's process on the host, known without asking the runtime: its state and start
//! time from `/proc/PID/stat`, and the wait for its end through a pidfd.
//!
//! A pid alone may be reused by another process once the container's has ended; the pid and the
//! start time (clock ticks after boot, field 22 of `/proc/PID/stat`) together name one process
//! for as long as the machine runs.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// What `/proc/PID/stat` says of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// The one-letter state: `R`, `S`, `D`, `Z` (ended, not yet reaped), `X`, ...
    pub state: char,
    /// Clock ticks after boot at which the process started.
    pub start_time: u64,
}

impl Stat {
    /// Whether the process still runs (it has not ended: neither a zombie nor dead).
    pub fn running(&self) -> bool {
        !matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Parses the text of `/proc/PID/stat`. The command name (field 2) is in parentheses and may
/// itself hold spaces and parentheses: the fields are counted after its last `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    // After the name: field 3 (state), then fields 4 to 21, then 22 (starttime).
    let state = fields.next()?.chars().next()?;
    let start_time = fields.nth(18)?.parse().ok()?;
    Some(Stat { state, start_time })
}

/// The state and start time of process `pid`, or `None` when there is no such process.
pub fn stat(pid: i64) -> Option<Stat> {
    if pid <= 0 {
        return None;
    }
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Whether process `pid` is the one that started at `start_time` (running or ended, not yet
/// reaped).
pub fn is(pid: i64, start_time: u64) -> bool {
    stat(pid).is_some_and(|s| s.start_time == start_time)
}

/// Waits until the process `pid` that started at `start_time` has ended; false after `timeout`
/// if it still runs. A process already gone (or a pid now naming another process) has ended.
pub fn wait_ended(pid: i64, start_time: u64, timeout: Duration) -> std::io::Result<bool> {
    let Ok(raw_pid) = nix::libc::pid_t::try_from(pid) else {
        return Ok(true);
    };
    // SAFETY: pidfd_open takes a pid and flags and returns a new file descriptor or -1; it
    // touches no memory of this process.
    let fd = unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, raw_pid, 0) };
    if fd < 0 {
        let err = std::io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(nix::libc::ESRCH) => Ok(true),
            _ => Err(err),
        };
    }
    // SAFETY: `fd` is a file descriptor pidfd_open just returned, owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // The pidfd names whatever process had the pid when it was opened: it is the container's
    // only if that one started at the recorded time.
    match stat(pid) {
        Some(s) if s.start_time == start_time && s.running() => {}
        _ => return Ok(true),
    }
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = i32::try_from(left.as_millis()).unwrap_or(i32::MAX);
        let mut poll = nix::libc::pollfd {
            fd: fd.as_raw_fd(),
            events: nix::libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `poll` points to one valid pollfd for the length of the call, and the count
        // says one.
        let n = unsafe { nix::libc::poll(&mut poll, 1, ms) };
        if n > 0 {
            // A pidfd is readable once its process has ended.
            return Ok(true);
        }
        if n == 0 {
            return Ok(false);
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn stat_lines_parse_whatever_the_name() {
        let line = "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 \
                    1000 10 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                state: 'S',
                start_time: 987654
            })
        );
        assert_eq!(parse_stat("12 (x) Z 1 2"), None);
        assert_eq!(parse_stat("no parenthesis"), None);
        assert!(!Stat {
            state: 'Z',
            start_time: 1
        }
        .running());
    }

    #[test]
    fn a_process_is_known_by_its_pid_and_start_time_and_waited_for() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = i64::from(child.id());
        let s = stat(pid).expect("the child's stat");
        assert!(s.running());
        assert!(is(pid, s.start_time));
        assert!(!is(pid, s.start_time + 1));
        assert!(!wait_ended(pid, s.start_time, Duration::from_millis(50)).unwrap());
        // Another start time: not the process waited for, so it counts as ended.
        assert!(wait_ended(pid, s.start_time + 1, Duration::from_secs(5)).unwrap());
        child.kill().unwrap();
        let begin = Instant::now();
        assert!(wait_ended(pid, s.start_time, Duration::from_secs(5)).unwrap());
        assert!(begin.elapsed() < Duration::from_secs(5));
        // Ended but not reaped: a zombie, still the same process.
        assert!(is(pid, s.start_time));
        assert!(!stat(pid).unwrap().running());
        child.wait().unwrap();
        assert!(stat(pid).is_none());
        assert!(wait_ended(pid, s.start_time, Duration::from_secs(1)).unwrap());
        assert!(stat(0).is_none());
    }
}
