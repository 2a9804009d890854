//! The changes cloon-netns makes to the system, one [`Action`] each, with the iproute2 command
//! that makes the very same change. `up`, `down` and `link` first plan their actions, then say
//! each one (`--explain`, `--dry-run`) right before doing it, so what is said is what is done.

use crate::settings::{Cidr, Mac};
use cloon_core::netns::RUN_DIR;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// A network namespace an action works in, by its file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ns {
    pub path: PathBuf,
}

impl Ns {
    pub fn new(path: impl Into<PathBuf>) -> Ns {
        Ns { path: path.into() }
    }

    /// The name iproute2 knows it by: the file name of a namespace under `/run/netns`.
    pub fn ip_name(&self) -> Option<&str> {
        if self.path.parent() != Some(Path::new(RUN_DIR)) {
            return None;
        }
        self.path.file_name().and_then(|n| n.to_str())
    }

    /// How `ip link add ... netns NS` names it: its name, else its path (iproute2 takes both).
    pub fn netns_arg(&self) -> String {
        match self.ip_name() {
            Some(name) => name.to_string(),
            None => self.path.to_string_lossy().into_owned(),
        }
    }

    /// The start of a command of iproute2 (`ip`, `bridge`) run inside it: `PROGRAM -n NAME`,
    /// or for a namespace outside `/run/netns` (which `-n` cannot name) `nsenter --net=PATH
    /// PROGRAM`.
    fn iproute2(&self, program: &str) -> Vec<String> {
        match self.ip_name() {
            Some(name) => words(&[program, "-n", name]),
            None => vec![
                "nsenter".into(),
                format!("--net={}", self.path.display()),
                program.into(),
            ],
        }
    }
}

/// The start of the iproute2 command `program` in namespace `ns`, or in the tool's own (the
/// host's) for `None`.
fn iproute2(program: &str, ns: Option<&Ns>) -> Vec<String> {
    ns.map_or_else(|| words(&[program]), |ns| ns.iproute2(program))
}

/// The start of an `ip` command in namespace `ns`, or in the tool's own for `None`.
fn ip(ns: Option<&Ns>) -> Vec<String> {
    iproute2("ip", ns)
}

/// One end of a veth pair to create: its name, interface group (0: none), MAC address, MTU, and
/// the namespace it is created in (`None`: the tool's own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VethEnd {
    pub name: String,
    pub group: u32,
    pub mac: Option<Mac>,
    pub mtu: Option<u32>,
    pub ns: Option<Ns>,
}

impl VethEnd {
    /// `NAME [group N] [address MAC] [mtu N] [netns NS]`, as `ip link add` and its `peer` take
    /// them.
    fn words(&self) -> Vec<String> {
        let mut w = vec![self.name.clone()];
        if self.group != 0 {
            w.extend(["group".into(), self.group.to_string()]);
        }
        if let Some(mac) = self.mac {
            w.extend(["address".into(), mac.to_string()]);
        }
        if let Some(mtu) = self.mtu {
            w.extend(["mtu".into(), mtu.to_string()]);
        }
        if let Some(ns) = &self.ns {
            w.extend(["netns".into(), ns.netns_arg()]);
        }
        w
    }
}

/// A VXLAN device to create: its name, interface group (0: none), MAC address, MTU (`None`: the
/// kernel's, the underlay's less the encapsulation), the namespace it is created in (`None`: the
/// tool's own; its UDP socket is in the tool's own either way), and its tunnel's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VxlanDev {
    pub name: String,
    pub group: u32,
    pub mac: Option<Mac>,
    pub mtu: Option<u32>,
    pub ns: Option<Ns>,
    pub vni: u32,
    pub port: u16,
    /// The source address (`::` for an IPv6 tunnel given none: the device's family).
    pub local: Option<IpAddr>,
    /// The underlay interface, in the tool's namespace.
    pub dev: Option<String>,
    pub learning: bool,
}

impl VxlanDev {
    /// `ip link add NAME [group N] [address MAC] [mtu N] [netns NS] type vxlan id N dstport P
    /// [local A] [dev D] [no]learning`.
    fn words(&self) -> Vec<String> {
        let end = VethEnd {
            name: self.name.clone(),
            group: self.group,
            mac: self.mac,
            mtu: self.mtu,
            ns: self.ns.clone(),
        };
        let mut w = words(&["ip", "link", "add"]);
        w.extend(end.words());
        w.extend(words(&["type", "vxlan", "id"]));
        w.push(self.vni.to_string());
        w.push("dstport".into());
        w.push(self.port.to_string());
        if let Some(local) = self.local {
            w.extend(["local".into(), local.to_string()]);
        }
        if let Some(dev) = &self.dev {
            w.extend(["dev".into(), dev.clone()]);
        }
        w.push(
            if self.learning {
                "learning"
            } else {
                "nolearning"
            }
            .into(),
        );
        w
    }
}

/// One change to the system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A named network namespace, `/run/netns/NAME`.
    NetnsAdd { name: String },
    /// The named namespace cloon made, while it is still the one with nsfs inode `inode`, or
    /// the file it was to be bound on (see [`crate::namespace::remove`]).
    NetnsDel {
        name: String,
        inode: u64,
        file: Option<u64>,
    },
    /// A Linux bridge in the tool's namespace, in the interface group `group` (0: none).
    BridgeAdd { name: String, group: u32 },
    /// The bridge cloon made, while it still has index `index`.
    BridgeDel { name: String, index: u32 },
    /// A veth pair, each end made directly in its namespace.
    VethAdd { a: VethEnd, b: VethEnd },
    /// Interface `dev` of `ns` (`None`: the tool's) brought up.
    LinkUp { ns: Option<Ns>, dev: String },
    /// `dev` (in the tool's namespace) given the alias `alias`.
    SetAlias { dev: String, alias: String },
    /// `dev` (in the tool's namespace) made a port of `bridge`.
    SetMaster { dev: String, bridge: String },
    /// An address added to `dev` of `ns`.
    AddrAdd {
        ns: Option<Ns>,
        dev: String,
        cidr: Cidr,
    },
    /// A VXLAN device, made directly in its namespace, its UDP socket in the tool's.
    VxlanAdd(VxlanDev),
    /// An all-zeros entry of the forwarding database of the VXLAN device `dev` of `ns`: frames
    /// with no known destination (broadcast, unknown unicast) go to `dst`:`port` too.
    FdbAppend {
        ns: Option<Ns>,
        dev: String,
        dst: IpAddr,
        port: u16,
    },
    /// Interface `dev` of `ns` deleted, while it still has index `index` (a veth takes its peer
    /// with it).
    LinkDel {
        ns: Option<Ns>,
        dev: String,
        index: u32,
    },
}

impl Action {
    /// The iproute2 command that makes the same change.
    pub fn words(&self) -> Vec<String> {
        match self {
            Action::NetnsAdd { name } => words(&["ip", "netns", "add", name]),
            Action::NetnsDel { name, .. } => words(&["ip", "netns", "del", name]),
            Action::BridgeAdd { name, group } => {
                let mut w = words(&["ip", "link", "add", name]);
                if *group != 0 {
                    w.extend(["group".into(), group.to_string()]);
                }
                w.extend(words(&["type", "bridge"]));
                w
            }
            Action::BridgeDel { name, .. } => words(&["ip", "link", "del", name]),
            Action::VethAdd { a, b } => {
                let mut w = words(&["ip", "link", "add"]);
                w.extend(a.words());
                w.extend(words(&["type", "veth", "peer", "name"]));
                w.extend(b.words());
                w
            }
            Action::VxlanAdd(dev) => dev.words(),
            Action::FdbAppend { ns, dev, dst, port } => {
                let mut w = iproute2("bridge", ns.as_ref());
                w.extend(words(&["fdb", "append", ZERO_MAC, "dev", dev, "dst"]));
                w.extend([dst.to_string(), "port".into(), port.to_string()]);
                w
            }
            Action::LinkUp { ns, dev } => {
                let mut w = ip(ns.as_ref());
                w.extend(words(&["link", "set", dev, "up"]));
                w
            }
            Action::SetAlias { dev, alias } => words(&["ip", "link", "set", dev, "alias", alias]),
            Action::SetMaster { dev, bridge } => {
                words(&["ip", "link", "set", dev, "master", bridge])
            }
            Action::AddrAdd { ns, dev, cidr } => {
                let mut w = ip(ns.as_ref());
                w.extend(words(&["addr", "add", &cidr.to_string(), "dev", dev]));
                w
            }
            Action::LinkDel { ns, dev, .. } => {
                let mut w = ip(ns.as_ref());
                w.extend(words(&["link", "del", dev]));
                w
            }
        }
    }

    /// The command as one shell line.
    pub fn command_line(&self) -> String {
        cloon_core::explain::command_line(&self.words())
    }
}

/// The MAC address of the forwarding entries that flood: every frame with no entry of its own.
pub const ZERO_MAC: &str = "00:00:00:00:00:00";

fn words(w: &[&str]) -> Vec<String> {
    w.iter().map(|s| s.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(a: Action) -> String {
        a.command_line()
    }

    #[test]
    fn namespaces_are_named_as_iproute2_names_them() {
        let ns = Ns::new("/run/netns/cloonix_1_1");
        assert_eq!(ns.ip_name(), Some("cloonix_1_1"));
        assert_eq!(ns.netns_arg(), "cloonix_1_1");
        let other = Ns::new("/var/run/netns/x");
        assert_eq!(other.ip_name(), None);
        assert_eq!(other.netns_arg(), "/var/run/netns/x");
        assert_eq!(
            line(Action::LinkUp {
                ns: Some(other),
                dev: "eth0".into()
            }),
            "nsenter --net=/var/run/netns/x ip link set eth0 up"
        );
    }

    #[test]
    fn every_action_says_its_iproute2_command() {
        let ns = Some(Ns::new("/run/netns/cloonix_1_1"));
        let cidr: Cidr = "10.0.0.2/24".parse().unwrap();
        assert_eq!(
            line(Action::NetnsAdd {
                name: "cloonix_1_1".into()
            }),
            "ip netns add cloonix_1_1"
        );
        assert_eq!(
            line(Action::NetnsDel {
                name: "cloonix_1_1".into(),
                inode: 1,
                file: Some(2)
            }),
            "ip netns del cloonix_1_1"
        );
        assert_eq!(
            line(Action::BridgeAdd {
                name: "lan1".into(),
                group: 0
            }),
            "ip link add lan1 type bridge"
        );
        assert_eq!(
            line(Action::BridgeAdd {
                name: "lan1".into(),
                group: 1_668_050_798
            }),
            "ip link add lan1 group 1668050798 type bridge"
        );
        assert_eq!(
            line(Action::SetAlias {
                dev: "lan1".into(),
                alias: "cloon:/run/cloon/.bridges/lan1.json".into()
            }),
            "ip link set lan1 alias cloon:/run/cloon/.bridges/lan1.json"
        );
        assert_eq!(
            line(Action::BridgeDel {
                name: "lan1".into(),
                index: 3
            }),
            "ip link del lan1"
        );
        assert_eq!(
            line(Action::LinkUp {
                ns: ns.clone(),
                dev: "lo".into()
            }),
            "ip -n cloonix_1_1 link set lo up"
        );
        assert_eq!(
            line(Action::LinkUp {
                ns: None,
                dev: "vgt_1_1_0".into()
            }),
            "ip link set vgt_1_1_0 up"
        );
        assert_eq!(
            line(Action::SetMaster {
                dev: "vgt_1_1_0".into(),
                bridge: "lan1".into()
            }),
            "ip link set vgt_1_1_0 master lan1"
        );
        assert_eq!(
            line(Action::AddrAdd {
                ns: ns.clone(),
                dev: "eth0".into(),
                cidr
            }),
            "ip -n cloonix_1_1 addr add 10.0.0.2/24 dev eth0"
        );
        assert_eq!(
            line(Action::LinkDel {
                ns: None,
                dev: "vgt_1_1_0".into(),
                index: 7
            }),
            "ip link del vgt_1_1_0"
        );
    }

    #[test]
    fn a_vxlan_device_and_its_flooding_entries_are_iproute2s() {
        let dev = VxlanDev {
            name: "eth1".into(),
            group: 7,
            mac: None,
            mtu: Some(1450),
            ns: Some(Ns::new("/run/netns/c1")),
            vni: 42,
            port: 4789,
            local: Some("192.168.99.1".parse().unwrap()),
            dev: None,
            learning: false,
        };
        assert_eq!(
            line(Action::VxlanAdd(dev.clone())),
            "ip link add eth1 group 7 mtu 1450 netns c1 type vxlan id 42 dstport 4789 \
             local 192.168.99.1 nolearning"
        );
        let host = VxlanDev {
            name: "vxl_lan1".into(),
            mtu: None,
            ns: None,
            local: None,
            dev: Some("eth0".into()),
            learning: true,
            ..dev
        };
        assert_eq!(
            line(Action::VxlanAdd(host)),
            "ip link add vxl_lan1 group 7 type vxlan id 42 dstport 4789 dev eth0 learning"
        );
        let fdb = |ns: Option<Ns>| Action::FdbAppend {
            ns,
            dev: "eth1".into(),
            dst: "fd00::2".parse().unwrap(),
            port: 4790,
        };
        assert_eq!(
            line(fdb(Some(Ns::new("/run/netns/c1")))),
            "bridge -n c1 fdb append 00:00:00:00:00:00 dev eth1 dst fd00::2 port 4790"
        );
        assert_eq!(
            line(fdb(Some(Ns::new("/tmp/ns")))),
            "nsenter --net=/tmp/ns bridge fdb append 00:00:00:00:00:00 dev eth1 dst fd00::2 \
             port 4790"
        );
        assert_eq!(
            line(fdb(None)),
            "bridge fdb append 00:00:00:00:00:00 dev eth1 dst fd00::2 port 4790"
        );
    }

    #[test]
    fn a_veth_names_each_ends_namespace_mac_and_mtu() {
        let host = VethEnd {
            name: "vgt_1_1_0".into(),
            group: 0,
            mac: None,
            mtu: None,
            ns: None,
        };
        let guest = VethEnd {
            name: "eth0".into(),
            group: 0,
            mac: None,
            mtu: None,
            ns: Some(Ns::new("/run/netns/cloonix_1_1")),
        };
        assert_eq!(
            line(Action::VethAdd {
                a: host.clone(),
                b: guest.clone()
            }),
            "ip link add vgt_1_1_0 type veth peer name eth0 netns cloonix_1_1"
        );
        let a = VethEnd {
            group: 7,
            mac: Some("02:00:00:00:00:01".parse().unwrap()),
            mtu: Some(1400),
            ns: Some(Ns::new("/run/netns/a")),
            ..host
        };
        let b = VethEnd {
            mtu: Some(9000),
            ns: Some(Ns::new("/tmp/b")),
            ..guest
        };
        assert_eq!(
            line(Action::VethAdd { a, b }),
            "ip link add vgt_1_1_0 group 7 address 02:00:00:00:00:01 mtu 1400 netns a \
             type veth peer name eth0 mtu 9000 netns /tmp/b"
        );
    }
}
