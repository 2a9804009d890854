//! The guardian of a runtime command: `create` and `start` run to their end even when cloon-run
//! is killed meanwhile, and the lock of the container's state directory stays held until they
//! are done, so that a `down` or a `gc` that waits for the lock finds the container whole (or
//! not at all), never half made.
//!
//! The command is run and waited for by a copy of cloon-run (forked, not executed), which exits
//! with the command's status. The copy shares cloon-run's open files, among them the lock of the
//! container's state directory; the runtime, an executed program, does not get them (they are
//! close-on-exec), nor does the container it forks, which may wait for its `start` for ever. If
//! cloon-run is killed, the guardian keeps the lock until the runtime is done, then exits.
//!
//! The guardian puts itself, and so the runtime, in a process group of its own: a Ctrl-C on the
//! terminal, which signals the whole foreground group, stops cloon-run as a `kill` would, and not
//! the runtime in the middle of its work.
//!
//! Killing the runtime with cloon-run instead (a parent-death signal) would leave its state half
//! written: crun killed during `create` leaves a state directory without its status, that crun
//! itself can no longer list, and cgroups that nothing removes.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus};

/// Runs `cmd` to its end in a guardian (see the module's documentation) and returns its status.
/// In a process that has other threads, where a forked copy could not run safely, the command is
/// run directly.
///
/// A command that cannot be executed at all (missing, not executable, a script whose `#!`
/// interpreter is missing) is an error carrying the errno of its `exec`, as from
/// [`Command::status`]: the guardian sends it to its parent through a close-on-exec pipe.
pub fn status(cmd: &mut Command) -> std::io::Result<ExitStatus> {
    use nix::fcntl::OFlag;
    use nix::sys::wait::{waitpid, WaitStatus};
    use nix::unistd::{fork, ForkResult};
    if !single_threaded() {
        return cmd.status();
    }
    // Non-blocking: the parent reads it once the guardian has ended, and the guardian writes at
    // most 4 bytes to it, which an empty pipe always takes.
    let (errno_read, errno_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
    // SAFETY: this process has one thread (checked just above; cloon-run starts none), so the
    // child is a whole copy of it, free to allocate and to run any code. It runs the command,
    // then leaves with `_exit` (in `exit_like`), running none of its parent's destructors or exit
    // handlers and flushing none of its buffers.
    match unsafe { fork() } {
        Err(e) => Err(e.into()),
        Ok(ForkResult::Child) => {
            drop(errno_read);
            let me = nix::unistd::Pid::from_raw(0);
            let _ = nix::unistd::setpgid(me, me);
            let status = cmd.status();
            if let Err(e) = &status {
                // 0 stands for an error without an errno.
                let errno = e.raw_os_error().unwrap_or(0);
                let _ = nix::unistd::write(&errno_write, &errno.to_ne_bytes());
            }
            exit_like(status)
        }
        Ok(ForkResult::Parent { child }) => {
            drop(errno_write);
            let status = loop {
                match waitpid(child, None) {
                    Ok(WaitStatus::Exited(_, code)) => break ExitStatus::from_raw(code << 8),
                    Ok(WaitStatus::Signaled(_, signal, core)) => {
                        let core = if core { 0x80 } else { 0 };
                        break ExitStatus::from_raw(signal as i32 | core);
                    }
                    Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => return Err(e.into()),
                }
            };
            let mut errno = [0u8; 4];
            match nix::unistd::read(&errno_read, &mut errno) {
                Ok(4) => match i32::from_ne_bytes(errno) {
                    0 => Err(std::io::Error::other("the command could not be started")),
                    n => Err(std::io::Error::from_raw_os_error(n)),
                },
                _ => Ok(status),
            }
        }
    }
}

/// Whether this process has a single thread (`Threads:` of `/proc/self/status`).
fn single_threaded() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .is_some_and(|n| n.trim() == "1")
    })
}

/// Ends the guardian as the command ended: the same exit code, or the same signal (127, as a
/// shell says, when the command could not be run at all).
fn exit_like(status: std::io::Result<ExitStatus>) -> ! {
    let code = match status {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) => code,
            (None, Some(signal)) => {
                if let Ok(signal) = nix::sys::signal::Signal::try_from(signal) {
                    // SAFETY: restoring the default action of a signal is always sound; the
                    // guardian then raises it to end as the command did.
                    let _ = unsafe {
                        nix::sys::signal::signal(signal, nix::sys::signal::SigHandler::SigDfl)
                    };
                    let _ = nix::sys::signal::raise(signal);
                }
                128 + signal
            }
            _ => 1,
        },
        Err(_) => 127,
    };
    // SAFETY: `_exit` ends the process at once, which is what the guardian wants: nothing of its
    // parent's (buffers, destructors, exit handlers) runs twice.
    unsafe { nix::libc::_exit(code) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guardian_reports_the_commands_status() {
        // Unit tests run on several threads: `status` runs the command directly there. The
        // guardian itself is proven by the integration tests, where cloon-run is killed during
        // its `up`.
        let ok = status(Command::new("sh").args(["-c", "exit 0"])).unwrap();
        assert!(ok.success());
        let seven = status(Command::new("sh").args(["-c", "exit 7"])).unwrap();
        assert_eq!(seven.code(), Some(7));
        let killed = status(Command::new("sh").args(["-c", "kill -9 $$"])).unwrap();
        assert_eq!(killed.signal(), Some(9));
    }

    #[test]
    fn a_command_that_cannot_be_executed_is_an_error_with_its_errno() {
        let err = status(&mut Command::new("/cloon/no/such/program")).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(nix::libc::ENOENT));
        let err = status(&mut Command::new("/")).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(nix::libc::EACCES));
    }
}
