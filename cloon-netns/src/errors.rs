//! Turning system-call and netlink failures into cloon errors that say what was attempted and,
//! for missing privileges, what to do.

use cloon_core::{Code, Error};
use nix::errno::Errno;

/// A failed system call: the message says what was attempted; EPERM and EACCES add "run as root".
pub fn sys(what: impl Into<String>, errno: Errno) -> Error {
    let mut msg = what.into();
    if matches!(errno, Errno::EPERM | Errno::EACCES) {
        msg.push_str(": run as root (needs CAP_SYS_ADMIN and CAP_NET_ADMIN)");
    }
    Error::sys(msg, errno)
}

/// The errno a netlink request was refused with, if the kernel refused it.
pub fn netlink_errno(err: &rtnetlink::Error) -> Option<Errno> {
    match err {
        rtnetlink::Error::NetlinkError(msg) => {
            msg.code.map(|code| Errno::from_raw(code.get().abs()))
        }
        _ => None,
    }
}

/// A failed netlink request, coded by the kernel's errno when there is one.
pub fn netlink(what: impl Into<String>, err: rtnetlink::Error) -> Error {
    match netlink_errno(&err) {
        Some(errno) => sys(what, errno),
        None => Error::new(Code::Io, what).details(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eperm_says_run_as_root() {
        let e = sys("cannot create the namespace", Errno::EPERM);
        assert_eq!(e.code, Code::NotPermitted);
        assert!(e.msg.contains("run as root"), "{}", e.msg);
        let e = sys("cannot create the namespace", Errno::EEXIST);
        assert_eq!(e.code, Code::NameTaken);
        assert!(!e.msg.contains("root"));
    }

    #[test]
    fn netlink_errors_keep_the_kernels_errno() {
        let mut msg = rtnetlink::packet_core::ErrorMessage::default();
        msg.code = std::num::NonZeroI32::new(-libc_eperm());
        let e = netlink("cannot add link x", rtnetlink::Error::NetlinkError(msg));
        assert_eq!(e.code, Code::NotPermitted);
        assert!(
            e.msg.starts_with("cannot add link x: run as root"),
            "{}",
            e.msg
        );
        let e = netlink("cannot add link x", rtnetlink::Error::RequestFailed);
        assert_eq!(e.code, Code::Io);
        assert_eq!(e.msg, "cannot add link x");
    }

    fn libc_eperm() -> i32 {
        Errno::EPERM as i32
    }
}
