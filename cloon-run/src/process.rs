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

/// Opens a pidfd on process `pid`: `None` when there is no such process.
fn pidfd(pid: i64) -> std::io::Result<Option<OwnedFd>> {
    let Ok(raw_pid) = nix::libc::pid_t::try_from(pid) else {
        return Ok(None);
    };
    if raw_pid <= 0 {
        return Ok(None);
    }
    // SAFETY: pidfd_open takes a pid and flags and returns a new file descriptor or -1; it
    // touches no memory of this process.
    let fd = unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, raw_pid, 0) };
    if fd < 0 {
        let err = std::io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(nix::libc::ESRCH) => Ok(None),
            _ => Err(err),
        };
    }
    let fd = i32::try_from(fd).map_err(|_| std::io::Error::other("pidfd_open: fd out of range"))?;
    // SAFETY: `fd` is a file descriptor pidfd_open just returned, owned by nobody else.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Waits up to `timeout` for the process of the pidfd `fd` to end: true once it has ended (a
/// pidfd is readable then), false if it still runs after `timeout`.
fn poll_ended(fd: &OwnedFd, timeout: Duration) -> std::io::Result<bool> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        // Rounded up, so that a wait shorter than a millisecond still waits.
        let ms = i32::try_from(left.as_micros().div_ceil(1000)).unwrap_or(i32::MAX);
        let mut poll = nix::libc::pollfd {
            fd: fd.as_raw_fd(),
            events: nix::libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `poll` points to one valid pollfd for the length of the call, and the count
        // says one.
        let n = unsafe { nix::libc::poll(&mut poll, 1, ms) };
        if n > 0 {
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

/// Waits until the process `pid` that started at `start_time` has ended; false after `timeout`
/// if it still runs. A process already gone (or a pid now naming another process) has ended.
pub fn wait_ended(pid: i64, start_time: u64, timeout: Duration) -> std::io::Result<bool> {
    let Some(fd) = pidfd(pid)? else {
        return Ok(true);
    };
    // The pidfd names whatever process had the pid when it was opened: it is the container's
    // only if that one started at the recorded time.
    match stat(pid) {
        Some(s) if s.start_time == start_time && s.running() => {}
        _ => return Ok(true),
    }
    poll_ended(&fd, timeout)
}

/// Waits until the process `pid` (started at `start_time`) has ended (true) or waits for
/// something (false): asleep (`S`), as a service waiting for work or `sleep` is, rather than
/// still starting (running, or reading its program from disk, `D`) or on its way out. After
/// `max`, a process that still runs is taken as running too (false). A process already gone (or
/// a pid now naming another process) has ended.
pub fn wait_settled(pid: i64, start_time: u64, max: Duration) -> std::io::Result<bool> {
    let Some(fd) = pidfd(pid)? else {
        return Ok(true);
    };
    let deadline = Instant::now() + max;
    loop {
        // The pidfd names whatever process had the pid when it was opened: it is the
        // container's only if that one started at the recorded time.
        match stat(pid) {
            Some(s) if s.start_time == start_time && s.running() => {
                if s.state == 'S' {
                    return Ok(false);
                }
            }
            _ => return Ok(true),
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        if poll_ended(&fd, left.min(SETTLE_POLL))? {
            return Ok(true);
        }
    }
}

/// How often [`wait_settled`] reads the process's state.
const SETTLE_POLL: Duration = Duration::from_micros(500);

/// The program a process runs: the device and inode of the file `/proc/PID/exe` names (a
/// magic link, followed whatever mount namespace the process is in), or `None` when it cannot
/// be read (the process is gone or a zombie).
pub fn exe(pid: i64) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    if pid <= 0 {
        return None;
    }
    let meta = std::fs::metadata(format!("/proc/{pid}/exe")).ok()?;
    Some((meta.dev(), meta.ino()))
}

/// What became of a container's process after the runtime's `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// It runs another program than the runtime's: it has executed the container's command.
    Executed,
    /// It has ended (or its pid names another process now).
    Ended,
    /// It still runs the runtime's program after the timeout.
    Pending,
}

/// Waits until the process `pid` (started at `start_time`) no longer runs the program
/// `runtime_exe` (see [`exe`]) that the runtime's init ran before `start`, or has ended; at most
/// `timeout`. The wait sleeps on a pidfd, so that an end is seen at once.
pub fn wait_executed(
    pid: i64,
    start_time: u64,
    runtime_exe: (u64, u64),
    timeout: Duration,
) -> std::io::Result<Start> {
    let Some(fd) = pidfd(pid)? else {
        return Ok(Start::Ended);
    };
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_micros(200);
    loop {
        match stat(pid) {
            Some(s) if s.start_time == start_time && s.running() => {}
            _ => return Ok(Start::Ended),
        }
        match exe(pid) {
            Some(now) if now != runtime_exe => return Ok(Start::Executed),
            // Unreadable while the process runs: it is between two programs, or ending.
            _ => {}
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(Start::Pending);
        }
        if poll_ended(&fd, pause.min(left))? {
            return Ok(Start::Ended);
        }
        pause = (pause * 2).min(Duration::from_millis(5));
    }
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this status.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
}

impl Exit {
    /// From a status as `wait` reports it (the `exit_code` field of `/proc/PID/stat`).
    pub fn from_wait_status(status: i32) -> Exit {
        if status & 0x7f == 0 {
            Exit::Code((status >> 8) & 0xff)
        } else {
            Exit::Signal(status & 0x7f)
        }
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Exit::Code(code) => write!(f, "exit status {code}"),
            Exit::Signal(sig) => match nix::sys::signal::Signal::try_from(sig) {
                Ok(name) => write!(f, "killed by signal {sig} ({name})"),
                Err(_) => write!(f, "killed by signal {sig}"),
            },
        }
    }
}

/// The `exit_code` field (52) of the text of `/proc/PID/stat`, when the kernel has it.
fn parse_exit_code(text: &str) -> Option<i32> {
    let rest = &text[text.rfind(')')? + 1..];
    // Field 3 is the first after the name: field 52 is the 50th.
    rest.split_ascii_whitespace().nth(49)?.parse().ok()
}

/// How process `pid` (started at `start_time`) ended, when it is known: reaped here if it is
/// this process's child (cloon-run becomes the container's reaper during `up`, see
/// [`become_reaper`]), else read from `/proc` while it is a zombie. `None` while it runs, or
/// once another process has reaped it.
pub fn reap(pid: i64, start_time: u64) -> Option<Exit> {
    use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
    let stat_text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let s = parse_stat(&stat_text)?;
    if s.start_time != start_time || s.running() {
        return None;
    }
    let raw = nix::unistd::Pid::from_raw(nix::libc::pid_t::try_from(pid).ok()?);
    match waitid(Id::Pid(raw), WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG) {
        Ok(WaitStatus::Exited(_, code)) => Some(Exit::Code(code)),
        Ok(WaitStatus::Signaled(_, sig, _)) => Some(Exit::Signal(sig as i32)),
        // Not this process's child: what the zombie's stat said.
        _ => parse_exit_code(&stat_text).map(Exit::from_wait_status),
    }
}

/// Makes this process the reaper of the processes its children leave (`PR_SET_CHILD_SUBREAPER`):
/// the container's process, which the runtime's `create` leaves when it exits, becomes this
/// process's child, so that [`reap`] learns its exit status. When this process exits, they go to
/// the system's reaper as before.
pub fn become_reaper() -> std::io::Result<()> {
    nix::sys::prctl::set_child_subreaper(true).map_err(std::io::Error::from)
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

    #[test]
    fn exit_codes_parse_and_read() {
        let mut line = String::from("77 (sh) Z");
        for field in 4..=51 {
            line.push_str(&format!(" {field}"));
        }
        line.push_str(" 768");
        assert_eq!(parse_exit_code(&line), Some(768));
        assert_eq!(parse_exit_code("77 (sh) Z 1 2"), None);
        assert_eq!(Exit::from_wait_status(768), Exit::Code(3));
        assert_eq!(Exit::from_wait_status(9), Exit::Signal(9));
        assert_eq!(Exit::Code(3).to_string(), "exit status 3");
        assert_eq!(Exit::Signal(9).to_string(), "killed by signal 9 (SIGKILL)");
    }

    /// Waits until `pid` is a zombie.
    fn until_ended(pid: i64) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while stat(pid).is_some_and(|s| s.running()) {
            assert!(Instant::now() < deadline, "{pid} did not end");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn an_exec_is_seen_and_so_is_an_end() {
        // A shell that executes sleep after a while: its program changes.
        let mut child = Command::new("sh")
            .args(["-c", "sleep 0.2; exec sleep 30"])
            .spawn()
            .unwrap();
        let pid = i64::from(child.id());
        let start = stat(pid).unwrap().start_time;
        let shell = exe(pid).expect("the shell's exe");
        assert_eq!(
            wait_executed(pid, start, shell, Duration::from_millis(20)).unwrap(),
            Start::Pending
        );
        assert_eq!(
            wait_executed(pid, start, shell, Duration::from_secs(10)).unwrap(),
            Start::Executed
        );
        assert_ne!(exe(pid), Some(shell));
        assert_eq!(reap(pid, start), None, "it still runs");
        child.kill().unwrap();
        assert!(wait_ended(pid, start, Duration::from_secs(10)).unwrap());
        assert_eq!(
            wait_executed(pid, start, shell, Duration::from_secs(10)).unwrap(),
            Start::Ended
        );
        until_ended(pid);
        assert_eq!(exe(pid), None);
        assert_eq!(reap(pid, start), Some(Exit::Signal(9)));
        assert!(stat(pid).is_none(), "reaped");
        assert!(child.try_wait().is_err(), "already reaped");
    }

    #[test]
    fn an_exit_status_is_reaped() {
        let mut child = Command::new("sh").args(["-c", "exit 3"]).spawn().unwrap();
        let pid = i64::from(child.id());
        // The start time, from the zombie if it has ended already.
        let start = stat(pid).unwrap().start_time;
        until_ended(pid);
        assert_eq!(reap(pid, start + 1), None, "another process");
        assert_eq!(reap(pid, start), Some(Exit::Code(3)));
        assert_eq!(reap(pid, start), None, "gone");
        assert!(child.wait().is_err(), "already reaped");
    }
}
