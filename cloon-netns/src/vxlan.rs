//! VXLAN ends: `cloon-netns vxlan --name NAME --vni N --remote ADDR[:PORT]... END` makes this
//! host's end of a link or a LAN that crosses hosts.
//!
//! VXLAN (RFC 7348) carries Ethernet frames inside UDP datagrams between hosts: each host has a
//! VXLAN device with the same VNI (the network's number, 1 to 16777215), whose UDP socket listens
//! on a port (4789 by default) of the host, and sends what enters the device to the other hosts'
//! sockets. Here the other hosts are listed (`--remote`): each gets an all-zeros entry of the
//! device's forwarding database (`bridge fdb append 00:00:00:00:00:00 dev IF dst ADDR port P`),
//! so that a frame with no known destination (a broadcast, an ARP request, an unknown MAC
//! address) goes to every remote: head-end replication, with no multicast in the underlay.
//!
//! The device is made in one of three places, its UDP socket always in the tool's own namespace
//! (the host's), since the request that creates it is sent from there:
//!
//! - `NS:IF[,addr=CIDR]...[,mac=MAC][,mtu=N]`: IF is made directly inside the container's
//!   namespace NS (netlink's namespace attribute in the creating request, as for a veth end), as
//!   the container's own interface: one end of a point-to-point link whose other end is a
//!   container on another host. The device learns nothing (`nolearning`): its one remote is the
//!   other end.
//! - `IF,bridge=BR[,mtu=N]`: IF is made on the host as a port of the Linux bridge BR, which the
//!   containers' veths of a LAN join (`--veth HOST:GUEST,bridge=BR`): one such port per LAN and
//!   host spans the LAN over the hosts. The device learns (`learning`) which remote each MAC
//!   address is behind, and floods the rest to them all (when a remote listens on another port
//!   than this host's, it learns nothing and floods everything: the kernel sends a learned
//!   address to the device's own port). The bridge is created when missing and
//!   deleted with its last cloon port, exactly as for veths ([`crate::bridge`]).
//! - `IF[,mtu=N]`: IF is made on the host alone, learning nothing: the end of a point-to-point
//!   link that something else joins to a container, such as cloon-lab's relay, which impairs the
//!   frames between a container's veth and this end.
//!
//! The encapsulation takes 50 bytes (70 over IPv6): the device's MTU is the underlay's less that
//! (the kernel computes it from `--dev`; without it, cloon gives 1500 less it, where the kernel
//! would leave 1500). The UDP port must be open between the hosts.
//!
//! The end is recorded under its own name, `<state>/NAME/vxlan.json` ([`VxlanRecord`]), before
//! the device is made, so that `down --name NAME`, `check`, `show`, `gc` and `down --all` find it
//! as they find `link.json` records; its document is `{"cloonVersion": "1", "name": NAME,
//! "vxlan": {...}}` ([`VxlanPart`]).

use crate::action::{Action, Ns, VxlanDev};
use crate::bridge::{self, BridgeRecord, Bridges, Found, Release};
use crate::check::Finding;
use crate::namespace::{self, Namespace, Probe};
use crate::settings::{parse_mtu, EndSettings};
use crate::system::{where_is, Made, System};
use crate::tag::{self, Claim};
use crate::{warn, VxlanArgs, STAGE};
use cloon_core::doc::RemotePart;
use cloon_core::netns::Target;
use cloon_core::{cli, explain, host, name, Code, Document, Error, Result, StateDir, Undo};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv6Addr, SocketAddr, UdpSocket};
use std::path::Path;

pub use cloon_core::doc::VxlanPart;

/// The key of a VXLAN end in its document, and the name of its record.
pub const PART: &str = <VxlanPart as cloon_core::doc::Part>::KEY;

/// The syntax of the end, quoted in error messages.
pub const END_SYNTAX: &str = "NS:IF[,addr=CIDR]...[,mac=MAC][,mtu=N] (a container's interface, \
     e.g. cloonix_1_1:eth1,addr=10.9.0.1/30), IF,bridge=BR[,mtu=N] (a port of a bridge of the \
     host, e.g. vxl_lan1,bridge=lan1) or IF[,mtu=N] (alone on the host, e.g. vxl_w1)";

/// The UDP port IANA gave VXLAN, the default of `--port`.
pub const DEFAULT_PORT: u16 = 4789;

/// The largest VNI: 24 bits.
pub const VNI_MAX: u32 = 0x00ff_ffff;

/// The bytes the encapsulation takes from the underlay's MTU: outer IPv4 (20), UDP (8), VXLAN
/// (8) and inner Ethernet (14) headers; 20 more over IPv6.
pub fn headroom(ipv6: bool) -> u32 {
    if ipv6 {
        70
    } else {
        50
    }
}

/// Where the device is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// Inside a container's namespace, with the interface's settings.
    Netns {
        target: Target,
        settings: EndSettings,
    },
    /// On the host: a port of a bridge (a LAN's end), or alone (the end of a link that a relay
    /// joins to a container's veth, to impair it).
    Host {
        bridge: Option<String>,
        mtu: Option<u32>,
    },
}

/// The device to make: its name and place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndSpec {
    pub ifname: String,
    pub place: Place,
}

impl EndSpec {
    /// The MTU given (`mtu=N`), if any.
    pub fn mtu(&self) -> Option<u32> {
        match &self.place {
            Place::Netns { settings, .. } => settings.mtu,
            Place::Host { mtu, .. } => *mtu,
        }
    }

    /// The namespace the device is made in (`None`: the tool's own).
    pub fn ns(&self) -> Option<Ns> {
        match &self.place {
            Place::Netns { target, .. } => Some(Ns::new(target.path())),
            Place::Host { .. } => None,
        }
    }

    /// Whether the device learns where MAC addresses are: as a bridge's port only.
    pub fn learning(&self) -> bool {
        matches!(
            self.place,
            Place::Host {
                bridge: Some(_),
                ..
            }
        )
    }
}

/// Parses the end: `NS:IF[,OPTION]...`, `IF,bridge=BR[,mtu=N]` or `IF[,mtu=N]`.
pub fn parse_end(value: &str) -> Result<EndSpec> {
    let context = |e: Error| Error::new(e.code, format!("vxlan end {value}: {}", e.msg));
    let mut fields = value.split(',');
    let first = fields.next().unwrap_or_default();
    let fields: Vec<&str> = fields.collect();
    let (ns, ifname) = match first.rsplit_once(':') {
        Some((ns, ifname)) => (Some(ns), ifname),
        None => (None, first),
    };
    name::interface(ifname).map_err(context)?;
    if ifname == "lo" {
        return Err(context(Error::invalid(
            "lo is the loopback interface: name the VXLAN device e.g. eth1 or vxl_lan1",
        )));
    }
    let Some(ns) = ns else {
        return parse_bridge_end(ifname, &fields).map_err(context);
    };
    let target = Target::parse(ns)
        .map_err(|e| context(Error::invalid(e.msg.replacen("--netns", "namespace", 1))))?;
    let mut settings = EndSettings::default();
    for field in fields {
        if field.starts_with("bridge=") {
            return Err(context(Error::invalid(
                "bridge= is for a device on the host, written IF,bridge=BR with no namespace: \
                 a device in a namespace (NS:IF) is a container's own interface",
            )));
        }
        if !settings.take("", field).map_err(context)? {
            return Err(context(Error::invalid(format!(
                "unknown option \"{field}\": use addr=CIDR, mac=MAC or mtu=N, as in {END_SYNTAX}"
            ))));
        }
    }
    settings.check("").map_err(context)?;
    Ok(EndSpec {
        ifname: ifname.to_string(),
        place: Place::Netns { target, settings },
    })
}

/// The options of an end on the host: `bridge=BR` and `mtu=N`.
fn parse_bridge_end(ifname: &str, fields: &[&str]) -> Result<EndSpec> {
    let mut bridge = None;
    let mut mtu = None;
    for field in fields {
        match field.split_once('=') {
            Some(("bridge", br)) => {
                if bridge.is_some() {
                    return Err(Error::invalid(
                        "bridge= is given twice: a VXLAN device joins one bridge",
                    ));
                }
                name::interface(br)
                    .map_err(|e| Error::invalid(format!("bridge={br}: {}", e.msg)))?;
                if br == ifname {
                    return Err(Error::invalid(format!(
                        "bridge={br} is the device's own name: name the bridge e.g. lan1"
                    )));
                }
                bridge = Some(br.to_string());
            }
            Some(("mtu", n)) => {
                if mtu.is_some() {
                    return Err(Error::invalid(
                        "mtu= is given twice: an interface has one MTU",
                    ));
                }
                mtu = Some(parse_mtu(n)?);
            }
            Some(("addr" | "mac", _)) => {
                return Err(Error::invalid(format!(
                    "\"{field}\" is for a device in a container's namespace (NS:IF): a bridge's \
                     port has no address of its own; give the containers' veths their addresses"
                )))
            }
            _ => {
                return Err(Error::invalid(format!(
                    "unknown option \"{field}\": write {END_SYNTAX}"
                )))
            }
        }
    }
    Ok(EndSpec {
        ifname: ifname.to_string(),
        place: Place::Host { bridge, mtu },
    })
}

/// One other host's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remote {
    pub addr: IpAddr,
    pub port: u16,
}

impl Remote {
    pub fn socket(&self) -> SocketAddr {
        SocketAddr::new(self.addr, self.port)
    }
}

/// Parses `--vni N`: 1 to 16777215.
pub fn parse_vni(text: &str) -> Result<u32> {
    text.parse::<u32>()
        .ok()
        .filter(|n| (1..=VNI_MAX).contains(n))
        .ok_or_else(|| {
            Error::invalid(format!(
                "--vni {text} is not a VXLAN network identifier: give a number from 1 to \
                 {VNI_MAX}, the same on every host of the link or LAN"
            ))
        })
}

/// Parses a UDP port (`--port`, a remote's): 1 to 65535.
pub fn parse_port(text: &str, what: &str) -> Result<u16> {
    text.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| {
        Error::invalid(format!(
            "{what}: \"{text}\" is not a UDP port: give a number from 1 to 65535, e.g. \
                 {DEFAULT_PORT}"
        ))
    })
}

/// Parses `--remote`: `ADDR`, `ADDR:PORT` (IPv4), `[ADDR]:PORT` or `[ADDR]` (IPv6), or a bare
/// IPv6 address; the port is `default_port` when not given. It must be a unicast address.
pub fn parse_remote(text: &str, default_port: u16) -> Result<Remote> {
    let what = format!("--remote {text}");
    let bad = || {
        Error::invalid(format!(
            "{what} is not an address: write ADDR[:PORT], e.g. 192.168.99.2 or 192.168.99.2:4789, \
             or [ADDR]:PORT for IPv6, e.g. [fd00::2]:4789"
        ))
    };
    let (addr, port) = if let Ok(addr) = text.parse::<IpAddr>() {
        (addr, None)
    } else if let Some(rest) = text.strip_prefix('[') {
        let (addr, rest) = rest.split_once(']').ok_or_else(bad)?;
        let addr: Ipv6Addr = addr.parse().map_err(|_| bad())?;
        let port = match rest {
            "" => None,
            _ => Some(rest.strip_prefix(':').ok_or_else(bad)?),
        };
        (IpAddr::V6(addr), port)
    } else {
        let (addr, port) = text.rsplit_once(':').ok_or_else(bad)?;
        let addr: std::net::Ipv4Addr = addr.parse().map_err(|_| bad())?;
        (IpAddr::V4(addr), Some(port))
    };
    if addr.is_unspecified() || addr.is_multicast() || addr.is_loopback() {
        return Err(Error::invalid(format!(
            "{what}: {addr} is not another host's address: give the unicast address of the other \
             host on the underlay"
        )));
    }
    let port = match port {
        Some(p) => parse_port(p, &what)?,
        None => default_port,
    };
    Ok(Remote { addr, port })
}

/// Everything `vxlan` needs, validated before anything is touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub name: String,
    pub vni: u32,
    pub port: u16,
    pub local: Option<IpAddr>,
    pub dev: Option<String>,
    pub remotes: Vec<Remote>,
    pub end: EndSpec,
}

impl Plan {
    /// Whether the device learns which remote each MAC address is behind: as a bridge's port,
    /// when every remote listens on this host's port. A learned address is sent to the
    /// device's own port (the kernel records no port when it learns), so with remotes on other
    /// ports it learns nothing and floods every frame to them all, each to its port.
    pub fn learning(&self) -> bool {
        self.end.learning() && self.remotes.iter().all(|r| r.port == self.port)
    }

    /// Checks the flags and the document together.
    pub fn new(args: &VxlanArgs, input: Option<&Document>) -> Result<Plan> {
        if let Some(doc) = input {
            for part in [crate::PART, crate::p2p::PART, PART] {
                if doc.get::<serde_json::Value>(part)?.is_some() {
                    return Err(Error::config(format!(
                        "the document has a {part} part: a VXLAN end has a document of its \
                         own; give none (</dev/null)"
                    )));
                }
            }
        }
        let vni = parse_vni(&args.vni)?;
        let port = parse_port(&args.port, "--port")?;
        let local = args
            .local
            .as_deref()
            .map(|l| {
                l.parse::<IpAddr>()
                    .ok()
                    .filter(|a| !a.is_unspecified() && !a.is_multicast())
                    .ok_or_else(|| {
                        Error::invalid(format!(
                            "--local {l} is not a unicast address: give this host's own address \
                             on the underlay, e.g. 192.168.99.1"
                        ))
                    })
            })
            .transpose()?;
        if let Some(dev) = &args.dev {
            name::interface(dev).map_err(|e| Error::invalid(format!("--dev {dev}: {}", e.msg)))?;
        }
        if args.remote.is_empty() {
            return Err(Error::invalid(
                "no --remote given: give the other hosts' addresses, --remote ADDR[:PORT] for each",
            ));
        }
        let mut remotes: Vec<Remote> = Vec::new();
        for text in &args.remote {
            let remote = parse_remote(text, port)?;
            if remotes.contains(&remote) {
                return Err(Error::invalid(format!(
                    "--remote {text} is given twice: give each remote once"
                )));
            }
            if Some(remote.addr) == local {
                return Err(Error::invalid(format!(
                    "--remote {text} is --local, this host's own address: give the other \
                     hosts' addresses"
                )));
            }
            if let Some(first) = remotes.first() {
                if first.addr.is_ipv6() != remote.addr.is_ipv6() {
                    return Err(Error::invalid(format!(
                        "--remote {text} and --remote {} are of different IP versions: a VXLAN \
                         device's tunnel is IPv4 or IPv6, not both; make one end per version",
                        first.addr
                    )));
                }
            }
            remotes.push(remote);
        }
        let ipv6 = remotes.first().is_some_and(|r| r.addr.is_ipv6());
        if let Some(local) = local {
            if local.is_ipv6() != ipv6 {
                return Err(Error::invalid(format!(
                    "--local {local} and the remotes are of different IP versions: give this \
                     host's address of the remotes' version"
                )));
            }
        }
        let end = parse_end(&args.end)?;
        let name = cli::pick_name(Some(&args.name), input, STAGE)?;
        Ok(Plan {
            name,
            vni,
            port,
            local,
            dev: args.dev.clone(),
            remotes,
            end,
        })
    }

    /// Whether the tunnel is IPv6.
    pub fn ipv6(&self) -> bool {
        self.remotes.first().is_some_and(|r| r.addr.is_ipv6())
    }

    /// The source address the device is given: `--local`, or `::` for an IPv6 tunnel without one
    /// (the kernel opens an IPv6 socket only for a device with an IPv6 local or remote address).
    pub fn device_local(&self) -> Option<IpAddr> {
        match self.local {
            Some(local) => Some(local),
            None if self.ipv6() => Some(IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
            None => None,
        }
    }

    /// The MTU the device is to have given the underlay's (`None`: no `--dev`) and the MTU given
    /// in its creating request (`None`: the kernel computes it from the underlay's). An MTU given
    /// above what the underlay carries is refused.
    pub fn mtu(&self, underlay: Option<u32>) -> Result<(u32, Option<u32>)> {
        let room = headroom(self.ipv6());
        let max = underlay
            .unwrap_or(*crate::settings::MTU_RANGE.end())
            .saturating_sub(room);
        match (self.end.mtu(), underlay) {
            (Some(mtu), _) if mtu > max => Err(Error::invalid(match (&self.dev, underlay) {
                (Some(dev), Some(under)) => format!(
                    "mtu={mtu} is more than the underlay {dev} carries: its MTU is {under}, less \
                     {room} bytes of encapsulation: give mtu={max} or less, or raise {dev}'s MTU"
                ),
                _ => format!("mtu={mtu} is more than a VXLAN device takes: give mtu={max} or less"),
            })),
            (Some(mtu), _) => Ok((mtu, Some(mtu))),
            (None, Some(under)) => Ok((under.saturating_sub(room).max(68), None)),
            (None, None) => {
                let mtu = 1500 - room;
                Ok((mtu, Some(mtu)))
            }
        }
    }

    /// The device to create, in the interface group `group`, with `mtu` in the request.
    pub fn device(&self, group: u32, mtu: Option<u32>) -> VxlanDev {
        VxlanDev {
            name: self.end.ifname.clone(),
            group,
            mac: match &self.end.place {
                Place::Netns { settings, .. } => settings.mac,
                Place::Host { .. } => None,
            },
            mtu,
            ns: self.end.ns(),
            vni: self.vni,
            port: self.port,
            local: self.device_local(),
            dev: self.dev.clone(),
            learning: self.learning(),
        }
    }

    /// The actions that make the end, in order: the bridge when it is to be made (`missing`), the
    /// device (its alias and bridge when on the host), its flooding entries, up, its addresses.
    pub fn actions(
        &self,
        missing: &[BridgeRecord],
        group: u32,
        mtu: Option<u32>,
        alias: Option<&str>,
    ) -> Vec<Action> {
        let mut actions: Vec<Action> = missing.iter().flat_map(BridgeRecord::make).collect();
        let ns = self.end.ns();
        let dev = self.end.ifname.clone();
        actions.push(Action::VxlanAdd(self.device(group, mtu)));
        if let Place::Host { bridge, .. } = &self.end.place {
            if let Some(alias) = alias {
                actions.push(Action::SetAlias {
                    dev: dev.clone(),
                    alias: alias.to_string(),
                });
            }
            if let Some(bridge) = bridge {
                actions.push(Action::SetMaster {
                    dev: dev.clone(),
                    bridge: bridge.clone(),
                });
            }
        }
        actions.extend(self.remotes.iter().map(|r| Action::FdbAppend {
            ns: ns.clone(),
            dev: dev.clone(),
            dst: r.addr,
            port: r.port,
        }));
        actions.push(Action::LinkUp {
            ns: ns.clone(),
            dev: dev.clone(),
        });
        if let Place::Netns { settings, .. } = &self.end.place {
            actions.extend(settings.addrs.iter().map(|cidr| Action::AddrAdd {
                ns: ns.clone(),
                dev: dev.clone(),
                cidr: *cidr,
            }));
        }
        actions
    }
}

/// The record of a VXLAN end (`<state>/NAME/vxlan.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VxlanRecord {
    pub name: String,
    pub vni: u32,
    pub port: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev: Option<String>,
    pub remotes: Vec<RemotePart>,
    pub learning: bool,
    /// The device's name.
    pub ifname: String,
    /// Its ifindex in its namespace (0 until known).
    pub index: u32,
    /// The interface group it is created in (its state directory's, [`tag::Owner::group`]).
    pub group: u32,
    /// The alias it gets, on the host only (`cloon:` and this record's path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// The namespace it is in (its name), for an end in a container's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<String>,
    /// The namespace file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The namespace's nsfs inode: a file at `path` with another inode is another namespace.
    #[serde(default)]
    pub inode: u64,
    /// The bridge of the host it is a port of (its own record is under the state root's
    /// `.bridges/`), for an end on the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge: Option<String>,
    /// Its MAC address ("" until known).
    pub mac: String,
    #[serde(default)]
    pub addrs: Vec<String>,
    /// Its MTU (as planned until read back).
    pub mtu: u32,
}

impl VxlanRecord {
    /// The record of the end `plan` is about to make: index 0, MAC address as given.
    pub fn planned(plan: &Plan, inode: u64, group: u32, alias: Option<String>, mtu: u32) -> Self {
        let (netns, path, bridge, mac, addrs) = match &plan.end.place {
            Place::Netns { target, settings } => (
                Some(target.name()),
                Some(target.path().to_string_lossy().into_owned()),
                None,
                settings.mac_string(),
                settings.addr_strings(),
            ),
            Place::Host { bridge, .. } => (None, None, bridge.clone(), String::new(), Vec::new()),
        };
        VxlanRecord {
            name: plan.name.clone(),
            vni: plan.vni,
            port: plan.port,
            local: plan.local.map(|a| a.to_string()),
            dev: plan.dev.clone(),
            remotes: plan
                .remotes
                .iter()
                .map(|r| RemotePart {
                    address: r.addr.to_string(),
                    port: r.port,
                })
                .collect(),
            learning: plan.learning(),
            ifname: plan.end.ifname.clone(),
            index: 0,
            group,
            alias: if netns.is_none() { alias } else { None },
            netns,
            path,
            inode,
            bridge,
            mac,
            addrs,
            mtu,
        }
    }

    /// The namespace the device is in (`None`: the tool's own).
    pub fn ns(&self) -> Option<Ns> {
        self.path.as_ref().map(Ns::new)
    }

    /// What the record says of the device, to tell it from look-alikes.
    pub fn claim(&self) -> Claim<'_> {
        Claim {
            index: self.index,
            group: self.group,
            alias: self.alias.as_deref(),
        }
    }

    /// The document's part.
    pub fn to_part(&self) -> VxlanPart {
        VxlanPart {
            vni: self.vni,
            port: self.port,
            local: self.local.clone(),
            dev: self.dev.clone(),
            remotes: self.remotes.clone(),
            learning: self.learning,
            ifname: self.ifname.clone(),
            netns: self.netns.clone(),
            path: self.path.clone(),
            bridge: self.bridge.clone(),
            mac: self.mac.clone(),
            addrs: self.addrs.clone(),
            mtu: self.mtu,
        }
    }
}

/// Refuses a remote this host has no route to: a UDP socket's `connect` (which sends nothing)
/// fails with ENETUNREACH or EHOSTUNREACH then.
pub fn check_route(remote: &Remote) -> Result<()> {
    let any: SocketAddr = if remote.addr.is_ipv6() {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    };
    let target = remote.socket();
    let shown = match remote.addr {
        IpAddr::V4(a) => format!("{a}:{}", remote.port),
        IpAddr::V6(a) => format!("[{a}]:{}", remote.port),
    };
    let socket = UdpSocket::bind(any)
        .map_err(|e| Error::io(format!("cannot open a UDP socket to reach {shown}"), &e))?;
    match socket.connect(target) {
        Ok(()) => Ok(()),
        Err(e)
            if matches!(
                e.raw_os_error().map(nix::errno::Errno::from_raw),
                Some(nix::errno::Errno::ENETUNREACH | nix::errno::Errno::EHOSTUNREACH)
            ) =>
        {
            Err(Error::invalid(format!(
                "--remote {shown} is unreachable from this host (no route to it): check the \
                 address, that the underlay interface is up with an address of that network \
                 (ip addr), and the routes (ip route get {})",
                remote.addr
            ))
            .details(e))
        }
        Err(e) => Err(Error::io(format!("cannot reach --remote {shown}"), &e)),
    }
}

/// `cloon-netns vxlan`: makes this host's end and returns its document.
///
/// Write-ahead as `up` and `link` are: the record names the device (index 0) before it is made,
/// its index is written as soon as it is known, a bridge to make has its record first; the name's
/// state directory is locked throughout and the state root held shared. All or nothing.
pub fn up(state: &StateDir, args: &VxlanArgs, input: Option<Document>) -> Result<Document> {
    let plan = Plan::new(args, input.as_ref())?;
    let acting = explain::acting();
    if acting {
        host::require_root(STAGE, "create VXLAN devices")?;
    }
    let name = plan.name.clone();
    let dir = state.dir(&name)?;
    if dir.exists() {
        return Err(Error::new(
            Code::NameTaken,
            format!(
                "\"{name}\" is taken: cloon has records of that name in {}: pick another name",
                dir.display()
            ),
        ));
    }
    let mut sys = System::new()?;
    for remote in &plan.remotes {
        check_route(remote)?;
    }
    let underlay = match &plan.dev {
        Some(dev) => Some(
            sys.host()
                .link_by_name(dev)?
                .ok_or_else(|| {
                    Error::new(
                        Code::Unknown,
                        format!(
                            "--dev {dev}: this host has no interface {dev}: give the underlay \
                             interface the remotes are reached through (ip route get ADDR says \
                             which)"
                        ),
                    )
                })?
                .mtu,
        ),
        None => None,
    };
    let (mtu, request_mtu) = plan.mtu(underlay)?;
    if let Some(user) = sys.host().vxlans_with(plan.vni, plan.port)?.first() {
        return Err(vni_taken(&plan, user));
    }

    let group = tag::Owner::of(state).group();
    let record_path = dir.join(format!("{PART}.json"));
    let alias = tag::alias(&record_path);
    let mut inode = 0;
    let ns = plan.end.ns();
    let mut opened = None;
    match &plan.end.place {
        Place::Netns { target, .. } => {
            let path = target.path();
            let namespace = Namespace::open(&path).map_err(|e| {
                Error::new(
                    e.code,
                    format!("vxlan end {}:{}: {}", target.name(), plan.end.ifname, e.msg),
                )
            })?;
            if namespace.inode() == crate::p2p::own_netns_inode()? {
                return Err(Error::invalid(format!(
                    "vxlan end {}:{}: {} is this tool's own network namespace (the host's): \
                     write {},bridge=BR for a device on the host, or name a container's namespace",
                    target.name(),
                    plan.end.ifname,
                    path.display(),
                    plan.end.ifname
                )));
            }
            inode = namespace.inode();
            opened = Some(namespace);
        }
        Place::Host { .. } => {}
    }
    if let (Some(ns), Some(namespace)) = (&ns, opened) {
        if crate::p2p::can_look_inside(acting) {
            sys.enter(ns, namespace)?;
        }
    }
    let taken = match &ns {
        Some(ns) if crate::p2p::can_look_inside(acting) => {
            sys.netlink(Some(ns))?.link_by_name(&plan.end.ifname)?
        }
        Some(_) => None,
        None => sys.host().link_by_name(&plan.end.ifname)?,
    };
    if taken.is_some() {
        return Err(Error::new(
            Code::NameTaken,
            format!(
                "interface {} already exists {}: pick another name for the VXLAN device",
                plan.end.ifname,
                where_is(ns.as_ref())
            ),
        ));
    }
    let mut record = VxlanRecord::planned(&plan, inode, group, alias.clone(), mtu);

    // As in `up`: the bridges' records are dropped after the undo stack, so that a failure
    // deletes the bridge it made before its record.
    let _lock;
    let _root;
    let mut bridges: Bridges;
    let mut undo = Undo::new();
    _lock = crate::up::lock_and_claim(state, &mut undo, &name, PART, &record)?;
    _root = crate::up::hold_root(state)?;
    let names: Vec<String> = record.bridge.iter().cloned().collect();
    bridges = Bridges::open(state, &names, acting)?;
    let (found, missing) = bridges.inspect_all(sys.host(), &names, group)?;

    for action in plan.actions(&missing, group, request_mtu, record.alias.as_deref()) {
        bridges.before(&action, &missing, acting)?;
        if !explain::step(&action.words()) {
            continue;
        }
        let done = sys.run_journaled(&action, &mut undo, &mut |made| match (made, &action) {
            (Made::Link(index), Action::VxlanAdd(_)) => {
                record.index = index;
                state.update(&name, PART, &record)
            }
            (Made::Link(index), Action::BridgeAdd { name: br, .. }) => {
                let before = missing.iter().find(|b| &b.name == br).cloned();
                bridges.store(&Found::Missing.record(br, index, before))
            }
            _ => Ok(()),
        });
        match (done, &action) {
            (Err(e), Action::VxlanAdd(_)) if e.code == Code::NameTaken => {
                return Err(vni_taken_after(state, &sys, &plan, e));
            }
            (done, _) => done?,
        }
    }

    if acting {
        let found_dev = sys
            .netlink(ns.as_ref())?
            .find(&plan.end.ifname, &where_is(ns.as_ref()))?;
        record.index = found_dev.index;
        record.mac = found_dev.mac;
        record.mtu = found_dev.mtu;
        state.update(&name, PART, &record)?;
    }
    bridges.adopt(sys.host(), &found, acting)?;
    if acting {
        undo.commit();
        bridges.commit();
    }
    let mut doc = input.unwrap_or_default();
    doc.set_name(&name)?;
    doc.set(PART, &record.to_part());
    Ok(doc)
}

/// The error for a VNI already used on the port, by the device `user`.
fn vni_taken(plan: &Plan, user: &str) -> Error {
    Error::new(
        Code::NameTaken,
        format!(
            "VNI {} is already used on UDP port {} on this host, by {user}: pick another --vni or \
             --port",
            plan.vni, plan.port
        ),
    )
}

/// The kernel refused the device as taken (`err`): its name was free, so its VNI is used on the
/// port, by a device in another namespace whose socket is in this one; named when a record of
/// this state directory has it.
fn vni_taken_after(state: &StateDir, sys: &System, plan: &Plan, err: Error) -> Error {
    let mut user = sys
        .host()
        .vxlans_with(plan.vni, plan.port)
        .ok()
        .and_then(|v| v.into_iter().next());
    if user.is_none() {
        for other in state.names().unwrap_or_default() {
            if other == plan.name {
                continue;
            }
            if let Ok(Some(r)) = state.load::<VxlanRecord>(&other, PART) {
                if r.vni == plan.vni && r.port == plan.port {
                    let at = r
                        .netns
                        .map(|n| format!(" in the namespace {n}"))
                        .unwrap_or_default();
                    user = Some(format!("{}{at} (cloon's vxlan \"{other}\")", r.ifname));
                    break;
                }
            }
        }
    }
    let user =
        user.unwrap_or_else(|| "a VXLAN device in another namespace (ip -d link show)".into());
    let mut e = vni_taken(plan, &user);
    e.details = format!("{}: {}", err.msg, err.details);
    e
}

/// `down` of a VXLAN end: deletes the device while it is the recorded one (name, group, index),
/// then, for a bridge's port, the bridge when cloon made it and no cloon port is left on it; then
/// the record.
pub fn down(state: &StateDir, name: &str, record: &VxlanRecord) -> Result<()> {
    let acting = explain::acting();
    let mut sys = System::new()?;
    let mut actions = Vec::new();
    let mut leaving = Vec::new();
    let ns = record.ns();
    let mut look = true;
    if let (Some(ns), Some(path)) = (&ns, &record.path) {
        let path = Path::new(path);
        match namespace::probe(path)? {
            Probe::Namespace(inode) if inode == record.inode => {
                if crate::p2p::can_look_inside(acting) {
                    sys.enter(ns, Namespace::open(path)?)?;
                } else {
                    actions.push(Action::LinkDel {
                        ns: Some(ns.clone()),
                        dev: record.ifname.clone(),
                        index: record.index,
                    });
                    look = false;
                }
            }
            Probe::Namespace(_) => {
                warn(&format!(
                    "leaving {}: it is another namespace than the one the VXLAN device was made in",
                    path.display()
                ));
                look = false;
            }
            Probe::Missing | Probe::Stale => look = false,
        }
    }
    if look {
        match sys.netlink(ns.as_ref())?.link_by_name(&record.ifname)? {
            Some(found) if tag::is_claimed(&found, &record.claim()) => {
                actions.push(Action::LinkDel {
                    ns: ns.clone(),
                    dev: record.ifname.clone(),
                    index: found.index,
                });
                leaving.push((record.ifname.clone(), found.index));
            }
            Some(found) => warn(&format!(
                "leaving interface {} {}: it is not the one cloon created (index {}, group {}; \
                 recorded index {}, group {})",
                record.ifname,
                where_is(ns.as_ref()),
                found.index,
                found.group,
                record.index,
                record.group
            )),
            None => {}
        }
    }
    let names: Vec<String> = record.bridge.iter().cloned().collect();
    let mut bridges = Bridges::open(state, &names, acting)?;
    let mut released = None;
    if let Some(br) = &record.bridge {
        let rec = bridges.record(br)?;
        if let Release::Drop(delete) =
            bridge::release(state, sys.host(), br, rec.as_ref(), &leaving)?
        {
            if let Some(index) = delete {
                actions.push(Action::BridgeDel {
                    name: br.clone(),
                    index,
                });
            }
            if rec.is_some() {
                released = Some(br.clone());
            }
        }
    }
    let mut undo = Undo::new();
    for action in &actions {
        if explain::step(&action.words()) {
            sys.run(action, &mut undo)?;
        }
    }
    undo.commit();
    if let Some(br) = released {
        explain::note(&format!(
            "remove the record {}",
            state.shared_path(bridge::KIND, &br)?.display()
        ));
        if acting {
            bridges.remove(&br)?;
        }
    }
    explain::release(state, name, PART)
}

/// `check` of a VXLAN end: its part as recorded if the device is still there as recorded, else a
/// [`Code::Drift`] error listing the differences.
pub fn check(name: &str, record: &VxlanRecord) -> Result<VxlanPart> {
    let drift = differences(record)?;
    if !drift.is_empty() {
        return Err(Error::new(
            Code::Drift,
            format!(
                "the VXLAN end {name} no longer matches its record: {}; run cloon-netns down \
                 --name {name}, then make it again",
                Finding::sentences(&drift)
            ),
        ));
    }
    Ok(record.to_part())
}

/// What differs between a VXLAN end's record and the kernel.
pub fn differences(record: &VxlanRecord) -> Result<Vec<Finding>> {
    let mut drift = Vec::new();
    let ns = record.ns();
    let netlink = match &record.path {
        Some(path) => match crate::check::namespace_gone(path, record.inode)? {
            Some(gone) => {
                drift.push(gone);
                return Ok(drift);
            }
            None => Namespace::open(Path::new(path))?.netlink()?,
        },
        None => crate::link::Netlink::connect()?,
    };
    let at = where_is(ns.as_ref());
    let dev = &record.ifname;
    let Some(found) = netlink.link_by_name(dev)? else {
        drift.push(Finding::gone(format!("interface {dev} is missing {at}")));
        return Ok(drift);
    };
    if found.index != record.index {
        drift.push(Finding::gone(format!(
            "interface {dev} {at} has index {}, recorded {}",
            found.index, record.index
        )));
        return Ok(drift);
    }
    if found.group != record.group {
        drift.push(Finding::changed(format!(
            "interface {dev} {at} is in group {}, recorded {}",
            found.group, record.group
        )));
    }
    if found.mac != record.mac {
        drift.push(Finding::changed(format!(
            "interface {dev} {at} has MAC address {}, recorded {}",
            found.mac, record.mac
        )));
    }
    if found.mtu != record.mtu {
        drift.push(Finding::changed(format!(
            "interface {dev} {at} has MTU {}, recorded {}",
            found.mtu, record.mtu
        )));
    }
    match found.vxlan {
        Some((vni, port)) if (vni, port) == (record.vni, record.port) => {}
        Some((vni, port)) => drift.push(Finding::changed(format!(
            "interface {dev} {at} has VNI {vni} on UDP port {port}, recorded VNI {} on port {}",
            record.vni, record.port
        ))),
        None => drift.push(Finding::changed(format!(
            "interface {dev} {at} is not a VXLAN device"
        ))),
    }
    let (missing, extra) = remote_drift(record, &netlink.fdb_remotes(found.index)?);
    for r in missing {
        drift.push(Finding::changed(format!(
            "interface {dev} {at} no longer floods to the remote {r}"
        )));
    }
    for r in extra {
        drift.push(Finding::changed(format!(
            "interface {dev} {at} also floods to {r}, which is not recorded"
        )));
    }
    if let Some(br) = &record.bridge {
        let master = netlink.link_by_name(br)?;
        if master.is_none() || master.map(|m| m.index) != found.master {
            drift.push(Finding::changed(format!(
                "interface {dev} is not a port of the bridge {br}"
            )));
        }
    }
    Ok(drift)
}

/// The recorded remotes missing from the device's flooding entries `found` (address, and port
/// when not the device's), and the entries no remote was recorded for, each as `ADDR port PORT`.
fn remote_drift(
    record: &VxlanRecord,
    found: &[(IpAddr, Option<u16>)],
) -> (Vec<String>, Vec<String>) {
    let show = |addr: &str, port: u16| format!("{addr} port {port}");
    let found: Vec<String> = found
        .iter()
        .map(|(a, p)| show(&a.to_string(), p.unwrap_or(record.port)))
        .collect();
    let recorded: Vec<String> = record
        .remotes
        .iter()
        .map(|r| {
            let addr = r
                .address
                .parse::<IpAddr>()
                .map_or(r.address.clone(), |a| a.to_string());
            show(&addr, r.port)
        })
        .collect();
    let missing = recorded
        .iter()
        .filter(|r| !found.contains(r))
        .cloned()
        .collect();
    let extra = found
        .iter()
        .filter(|f| !recorded.contains(f))
        .cloned()
        .collect();
    (missing, extra)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(end: &str, remotes: &[&str], extra: &[(&str, &str)]) -> VxlanArgs {
        let mut a = VxlanArgs {
            name: "x1".into(),
            vni: "42".into(),
            port: "4789".into(),
            local: None,
            dev: None,
            remote: remotes.iter().map(|r| r.to_string()).collect(),
            end: end.into(),
        };
        for (k, v) in extra {
            match *k {
                "vni" => a.vni = v.to_string(),
                "port" => a.port = v.to_string(),
                "local" => a.local = Some(v.to_string()),
                "dev" => a.dev = Some(v.to_string()),
                "name" => a.name = v.to_string(),
                _ => panic!("{k}"),
            }
        }
        a
    }

    fn plan(end: &str, remotes: &[&str], extra: &[(&str, &str)]) -> Result<Plan> {
        Plan::new(&args(end, remotes, extra), None)
    }

    fn err(end: &str, remotes: &[&str], extra: &[(&str, &str)]) -> String {
        let e = plan(end, remotes, extra).unwrap_err();
        assert_eq!(e.code, Code::InvalidArgument, "{}", e.msg);
        e.msg
    }

    #[test]
    fn remotes_are_ipv4_or_ipv6_with_an_optional_port() {
        let r = |t: &str| parse_remote(t, 4789).unwrap();
        assert_eq!(
            r("192.168.99.2").socket(),
            "192.168.99.2:4789".parse().unwrap()
        );
        assert_eq!(r("192.168.99.2:8472").port, 8472);
        assert_eq!(
            r("[fd00::2]:4790").socket(),
            "[fd00::2]:4790".parse().unwrap()
        );
        assert_eq!(r("[fd00::2]").port, 4789);
        assert_eq!(r("fd00::2").addr, "fd00::2".parse::<IpAddr>().unwrap());
        for bad in [
            "",
            "host",
            "1.2.3",
            "192.168.99.2:",
            "192.168.99.2:0",
            "192.168.99.2:70000",
            "[fd00::2",
            "[fd00::2]4789",
            "[10.0.0.1]:4789",
            "0.0.0.0",
            "239.1.1.1",
            "127.0.0.1",
            "::",
        ] {
            let e = parse_remote(bad, 4789).unwrap_err();
            assert_eq!(e.code, Code::InvalidArgument, "{bad}");
            assert!(e.msg.starts_with(&format!("--remote {bad}")), "{}", e.msg);
        }
    }

    #[test]
    fn vni_and_port_are_checked() {
        assert_eq!(parse_vni("1").unwrap(), 1);
        assert_eq!(parse_vni("16777215").unwrap(), VNI_MAX);
        for bad in ["0", "16777216", "-1", "x", ""] {
            assert!(
                parse_vni(bad).unwrap_err().msg.contains("1 to 16777215"),
                "{bad}"
            );
        }
        assert!(err("c1:eth1", &["10.0.0.2"], &[("port", "0")]).contains("not a UDP port"));
        assert!(err("c1:eth1", &["10.0.0.2"], &[("port", "65536")]).contains("not a UDP port"));
    }

    #[test]
    fn ends_are_a_namespaces_interface_or_a_bridges_port() {
        let p = plan(
            "c1:eth1,addr=10.42.0.1/24,mac=02:00:00:00:00:01",
            &["192.168.99.2"],
            &[],
        )
        .unwrap();
        assert_eq!(p.end.ifname, "eth1");
        assert!(!p.end.learning());
        assert_eq!(p.end.ns(), Some(Ns::new("/run/netns/c1")));
        let p = plan(
            "vxl_lan1,bridge=lan1,mtu=1400",
            &["10.0.0.2", "10.0.0.3"],
            &[],
        )
        .unwrap();
        assert_eq!(
            p.end.place,
            Place::Host {
                bridge: Some("lan1".into()),
                mtu: Some(1400)
            }
        );
        assert!(p.end.learning());
        assert!(p.learning());
        assert_eq!(p.end.ns(), None);
        // Alone on the host: no bridge, learning nothing.
        let p = plan("vxl_w1,mtu=1400", &["10.0.0.2"], &[]).unwrap();
        assert_eq!(
            p.end.place,
            Place::Host {
                bridge: None,
                mtu: Some(1400)
            }
        );
        assert!(!p.learning());
        // A LAN's port whose remotes listen on other ports learns nothing either.
        let p = plan("vxl_lan1,bridge=lan1", &["10.0.0.2:4790"], &[]).unwrap();
        assert!(p.end.learning() && !p.learning());
        for (end, says) in [
            ("c1:lo", "loopback"),
            ("lo,bridge=b", "loopback"),
            ("c1:eth1,bridge=lan1", "bridge= is for a device on the host"),
            ("c1:eth1,colour=red", "unknown option"),
            ("v,bridge=v", "own name"),
            ("v,bridge=a,bridge=b", "twice"),
            ("v,bridge=a,addr=10.0.0.1/24", "no address of its own"),
            ("v,bridge=a,x=1", "unknown option"),
            ("c1:abcdefghijklmnop", "at most 15"),
            ("bad name:eth1", "namespace"),
            ("c1:eth1,mtu=1000,addr=fd00::1/64", "1280"),
        ] {
            let msg = err(end, &["10.0.0.2"], &[]);
            assert!(msg.contains(says), "{end}: {msg}");
        }
    }

    #[test]
    fn remotes_and_local_fit_together() {
        assert!(err("c1:eth1", &[], &[]).contains("no --remote"));
        assert!(err("c1:eth1", &["10.0.0.2", "10.0.0.2:4789"], &[]).contains("twice"));
        assert!(err("c1:eth1", &["10.0.0.2"], &[("local", "10.0.0.2")]).contains("this host's own"));
        assert!(err("c1:eth1", &["10.0.0.2", "fd00::2"], &[]).contains("different IP versions"));
        assert!(err("c1:eth1", &["10.0.0.2"], &[("local", "fd00::1")]).contains("different IP"));
        assert!(err("c1:eth1", &["10.0.0.2"], &[("local", "x")]).contains("not a unicast"));
        assert!(err("c1:eth1", &["10.0.0.2"], &[("dev", "a/b")]).contains("--dev a/b"));
        // Two remotes on one address, other ports: two hosts behind one NAT, say.
        plan("c1:eth1", &["10.0.0.2", "10.0.0.2:4790"], &[]).unwrap();
        let v6 = plan("c1:eth1", &["fd00::2"], &[]).unwrap();
        assert_eq!(v6.device_local(), Some("::".parse().unwrap()));
        let v4 = plan("c1:eth1", &["10.0.0.2"], &[]).unwrap();
        assert_eq!(v4.device_local(), None);
    }

    #[test]
    fn a_document_with_parts_of_cloon_netns_is_refused() {
        for part in ["netns", "link", "vxlan"] {
            let doc = Document::parse(&format!(r#"{{"cloonVersion":"1","{part}":{{}}}}"#))
                .unwrap()
                .unwrap();
            let e = Plan::new(&args("c1:eth1", &["10.0.0.2"], &[]), Some(&doc)).unwrap_err();
            assert_eq!(e.code, Code::InvalidConfig);
        }
    }

    #[test]
    fn the_mtu_is_the_underlays_less_the_encapsulation() {
        let p = plan("c1:eth1", &["10.0.0.2"], &[("dev", "eth0")]).unwrap();
        assert_eq!(p.mtu(Some(1500)).unwrap(), (1450, None));
        assert_eq!(p.mtu(Some(9000)).unwrap(), (8950, None));
        let p = plan("c1:eth1", &["10.0.0.2"], &[]).unwrap();
        assert_eq!(p.mtu(None).unwrap(), (1450, Some(1450)));
        let p6 = plan("c1:eth1", &["fd00::2"], &[]).unwrap();
        assert_eq!(p6.mtu(None).unwrap(), (1430, Some(1430)));
        let p = plan("c1:eth1,mtu=1400", &["10.0.0.2"], &[("dev", "eth0")]).unwrap();
        assert_eq!(p.mtu(Some(1500)).unwrap(), (1400, Some(1400)));
        let p = plan("c1:eth1,mtu=1451", &["10.0.0.2"], &[("dev", "eth0")]).unwrap();
        let e = p.mtu(Some(1500)).unwrap_err();
        assert!(e.msg.contains("give mtu=1450 or less"), "{}", e.msg);
        assert!(e.msg.contains("eth0"), "{}", e.msg);
        let p = plan("c1:eth1,mtu=9000", &["10.0.0.2"], &[]).unwrap();
        assert_eq!(p.mtu(None).unwrap(), (9000, Some(9000)));
        let p = plan("c1:eth1,mtu=65535", &["10.0.0.2"], &[]).unwrap();
        assert!(p.mtu(None).unwrap_err().msg.contains("65485"));
    }

    fn lines(actions: &[Action]) -> Vec<String> {
        actions.iter().map(Action::command_line).collect()
    }

    #[test]
    fn a_containers_end_is_made_inside_its_namespace() {
        let p = plan(
            "c1:eth1,addr=10.42.0.1/24",
            &["192.168.99.2", "192.168.99.3:4790"],
            &[("local", "192.168.99.1"), ("vni", "42")],
        )
        .unwrap();
        let (_, mtu) = p.mtu(None).unwrap();
        assert_eq!(
            lines(&p.actions(&[], 7, mtu, Some("cloon:/run/cloon/x1/vxlan.json"))),
            [
                "ip link add eth1 group 7 mtu 1450 netns c1 type vxlan id 42 dstport 4789 \
                 local 192.168.99.1 nolearning",
                "bridge -n c1 fdb append 00:00:00:00:00:00 dev eth1 dst 192.168.99.2 port 4789",
                "bridge -n c1 fdb append 00:00:00:00:00:00 dev eth1 dst 192.168.99.3 port 4790",
                "ip -n c1 link set eth1 up",
                "ip -n c1 addr add 10.42.0.1/24 dev eth1",
            ]
        );
    }

    #[test]
    fn a_lans_end_is_a_learning_port_of_its_bridge() {
        let p = plan(
            "vxl_lan1,bridge=lan1",
            &["192.168.99.2", "192.168.99.3"],
            &[("dev", "eth0"), ("port", "8472")],
        )
        .unwrap();
        let (_, mtu) = p.mtu(Some(1500)).unwrap();
        let missing = BridgeRecord::planned(
            "lan1",
            7,
            Some("cloon:/run/cloon/.bridges/lan1.json".into()),
        );
        assert_eq!(
            lines(&p.actions(
                std::slice::from_ref(&missing),
                7,
                mtu,
                Some("cloon:/run/cloon/x1/vxlan.json")
            )),
            [
                "ip link add lan1 group 7 type bridge",
                "ip link set lan1 alias cloon:/run/cloon/.bridges/lan1.json",
                "ip link set lan1 up",
                "ip link add vxl_lan1 group 7 type vxlan id 42 dstport 8472 dev eth0 learning",
                "ip link set vxl_lan1 alias cloon:/run/cloon/x1/vxlan.json",
                "ip link set vxl_lan1 master lan1",
                "bridge fdb append 00:00:00:00:00:00 dev vxl_lan1 dst 192.168.99.2 port 8472",
                "bridge fdb append 00:00:00:00:00:00 dev vxl_lan1 dst 192.168.99.3 port 8472",
                "ip link set vxl_lan1 up",
            ]
        );
    }

    #[test]
    fn the_record_maps_to_the_part() {
        let p = plan(
            "c1:eth1,addr=10.42.0.1/24",
            &["192.168.99.2"],
            &[("local", "192.168.99.1")],
        )
        .unwrap();
        let rec = VxlanRecord::planned(&p, 9, 7, Some("cloon:x".into()), 1450);
        assert_eq!(rec.alias, None);
        assert_eq!(
            rec.claim(),
            Claim {
                index: 0,
                group: 7,
                alias: None
            }
        );
        let text = serde_json::to_string(&rec).unwrap();
        assert_eq!(serde_json::from_str::<VxlanRecord>(&text).unwrap(), rec);
        assert_eq!(
            serde_json::to_value(rec.to_part()).unwrap(),
            serde_json::json!({"vni": 42, "port": 4789, "local": "192.168.99.1",
                "remotes": [{"address": "192.168.99.2", "port": 4789}], "learning": false,
                "ifname": "eth1", "netns": "c1", "path": "/run/netns/c1", "mac": "",
                "addrs": ["10.42.0.1/24"], "mtu": 1450})
        );
        let p = plan("vxl_lan1,bridge=lan1", &["192.168.99.2"], &[]).unwrap();
        let rec = VxlanRecord::planned(&p, 0, 7, Some("cloon:x".into()), 1450);
        assert_eq!(rec.alias.as_deref(), Some("cloon:x"));
        assert_eq!(rec.ns(), None);
        let part = serde_json::to_value(rec.to_part()).unwrap();
        assert_eq!(part["bridge"], "lan1");
        assert_eq!(part["learning"], true);
        assert!(part.get("netns").is_none());
    }
}
