//! Where an interface is: [`End`], an interface name and the network namespace that holds it, and
//! [`within`], which runs code inside that namespace.
//!
//! A socket (netlink or packet) acts in the namespace it was made in, for its whole life. So the
//! way to act on an interface of another namespace, without changing the namespace of the
//! process, is a short-lived thread that enters the namespace (`setns`), makes the socket and
//! hands it back; the thread then ends, and the socket keeps working from any thread.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

/// One interface: its name, in a network namespace given by path (`/run/netns/NAME` or
/// `/proc/PID/ns/net`), or in the caller's own namespace when `netns` is `None`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct End {
    /// The namespace, as a path; absent for the caller's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<PathBuf>,
    /// The interface's name (at most 15 bytes).
    pub ifname: String,
}

impl End {
    /// An interface of the caller's own namespace.
    pub fn here(ifname: &str) -> End {
        End {
            netns: None,
            ifname: ifname.to_string(),
        }
    }

    /// An interface of the namespace at `netns`; a bare name is one under `/run/netns`.
    pub fn in_netns(netns: impl AsRef<Path>, ifname: &str) -> End {
        let netns = netns.as_ref();
        let path = if netns.components().count() == 1 && !netns.is_absolute() {
            Path::new("/run/netns").join(netns)
        } else {
            netns.to_path_buf()
        };
        End {
            netns: Some(path),
            ifname: ifname.to_string(),
        }
    }

    /// Parses `IF` or `NS:IF` (NS a name under `/run/netns` or a path).
    pub fn parse(text: &str) -> Result<End, String> {
        let (ns, ifname) = match text.rsplit_once(':') {
            Some((ns, ifname)) => (Some(ns), ifname),
            None => (None, text),
        };
        check_ifname(ifname)?;
        Ok(match ns {
            Some(ns) if !ns.is_empty() => End::in_netns(ns, ifname),
            _ => End::here(ifname),
        })
    }

    /// The shell prefix that runs a command where the interface is: `ip netns exec NS ` for a
    /// namespace under `/run/netns`, `nsenter --net=PATH ` for another path, nothing for here.
    pub fn shell_prefix(&self) -> String {
        match &self.netns {
            None => String::new(),
            Some(p) => match p.strip_prefix("/run/netns") {
                Ok(name) if name.components().count() == 1 => {
                    format!("ip netns exec {} ", name.display())
                }
                _ => format!("nsenter --net={} ", p.display()),
            },
        }
    }
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.netns {
            None => f.write_str(&self.ifname),
            Some(p) => write!(f, "{}:{}", p.display(), self.ifname),
        }
    }
}

/// Checks an interface name: 1 to 15 bytes, no `/`, no white space, no `:`.
pub fn check_ifname(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 15 {
        return Err(format!(
            "interface name {name:?}: 1 to 15 bytes, as the kernel allows"
        ));
    }
    if name == "."
        || name == ".."
        || name.contains(['/', ':'])
        || name.contains(char::is_whitespace)
    {
        return Err(format!("interface name {name:?} is not valid"));
    }
    Ok(())
}

/// Runs `f` on a new thread that has entered the network namespace `netns` (none: the caller's
/// own), and returns what it returns. `f` typically makes a socket, which then stays in that
/// namespace.
pub fn within<T, F>(netns: Option<&Path>, f: F) -> std::io::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> std::io::Result<T> + Send + 'static,
{
    let netns = netns.map(Path::to_path_buf);
    let thread = std::thread::Builder::new()
        .name("cloon-netns".into())
        .spawn(move || {
            if let Some(path) = netns {
                enter(&path)?;
            }
            f()
        })?;
    thread
        .join()
        .map_err(|_| std::io::Error::other("the namespace thread panicked"))?
}

/// Makes the calling thread enter the network namespace at `path`. Only for a thread that ends
/// afterwards (see [`within`]).
fn enter(path: &Path) -> std::io::Result<()> {
    let file = std::fs::File::open(path).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot open the network namespace {}: {e}", path.display()),
        )
    })?;
    nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| {
        std::io::Error::other(format!(
            "cannot enter the network namespace {}: {e}",
            path.display()
        ))
    })
}

/// Whether the network namespace cloon-lab runs in has the interface `ifname`. Read from
/// `/proc/self/net/dev`, which lists the interfaces of the reader's namespace (`/sys/class/net`
/// shows those of the namespace sysfs was mounted in, which may be another).
pub fn host_has(ifname: &str) -> bool {
    std::fs::read_to_string("/proc/self/net/dev").is_ok_and(|t| {
        t.lines()
            .filter_map(|l| l.split_once(':'))
            .any(|(name, _)| name.trim() == ifname)
    })
}

/// The index of interface `name` in the calling thread's namespace.
pub fn ifindex(name: &str) -> std::io::Result<u32> {
    nix::net::if_::if_nametoindex(name).map_err(|e| {
        std::io::Error::new(
            std::io::Error::from(e).kind(),
            format!("no interface {name}: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends() {
        assert_eq!(End::parse("vA").unwrap(), End::here("vA"));
        let e = End::parse("lab1:eth1").unwrap();
        assert_eq!(e.netns.as_deref(), Some(Path::new("/run/netns/lab1")));
        assert_eq!(e.shell_prefix(), "ip netns exec lab1 ");
        let e = End::parse("/proc/42/ns/net:eth1").unwrap();
        assert_eq!(e.netns.as_deref(), Some(Path::new("/proc/42/ns/net")));
        assert_eq!(e.shell_prefix(), "nsenter --net=/proc/42/ns/net ");
        assert_eq!(e.to_string(), "/proc/42/ns/net:eth1");
        assert!(End::parse("ns:").is_err());
        assert!(End::parse("a-name-that-is-too-long").is_err());
        assert!(End::parse("a b").is_err());
    }
}
