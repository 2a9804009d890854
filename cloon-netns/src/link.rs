//! Network interfaces through rtnetlink: veth pairs, bridges and their ports, VXLAN devices and
//! their forwarding entries, link state, addresses, hardware addresses, MTUs.
//!
//! A [`Netlink`] connection acts in the network namespace of the thread that opened it, for its
//! whole life, whichever thread uses it later; it owns a current-thread tokio runtime and blocks
//! on each request, so callers stay synchronous.

use crate::action::{VethEnd, VxlanDev};
use crate::errors::{netlink, netlink_errno};
use crate::settings::{format_mac, Cidr, Mac};
use crate::system::where_is;
use cloon_core::{Code, Error, Result};
use futures::TryStreamExt;
use nix::errno::Errno;
use rtnetlink::packet_core::{
    NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_REQUEST,
};
use rtnetlink::packet_route::link::{
    InfoData, InfoKind, InfoVeth, InfoVxlan, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use rtnetlink::packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::{Handle, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth, LinkVxlan};
use std::net::IpAddr;
use std::os::fd::{AsRawFd, BorrowedFd};
use tokio::runtime::Runtime;

/// What cloon reads back about one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkState {
    pub name: String,
    pub index: u32,
    /// Hardware address, lower-case (`02:00:0a:00:00:02`).
    pub mac: String,
    /// Administratively up.
    pub up: bool,
    pub mtu: u32,
    /// The kind of link (`veth`, `bridge`, ...; "" for a plain device such as `lo`).
    pub kind: String,
    /// The index of the bridge (or other master) it is a port of.
    pub master: Option<u32>,
    /// Its interface group (0, `default`, unless set: see [`crate::tag`]).
    pub group: u32,
    /// Its alias, if it has one.
    pub alias: Option<String>,
    /// Its VNI and UDP port, for a VXLAN device.
    pub vxlan: Option<(u32, u16)>,
}

impl LinkState {
    fn from_message(msg: &LinkMessage) -> LinkState {
        let mut state = LinkState {
            name: String::new(),
            index: msg.header.index,
            mac: String::new(),
            up: msg.header.flags.contains(LinkFlags::Up),
            mtu: 0,
            kind: String::new(),
            master: None,
            group: 0,
            alias: None,
            vxlan: vxlan_id_port(msg),
        };
        for attr in &msg.attributes {
            match attr {
                LinkAttribute::IfName(name) => state.name.clone_from(name),
                LinkAttribute::Address(bytes) => state.mac = format_mac(bytes),
                LinkAttribute::Mtu(mtu) => state.mtu = *mtu,
                LinkAttribute::Controller(index) => state.master = Some(*index),
                LinkAttribute::Group(group) => state.group = *group,
                LinkAttribute::IfAlias(alias) if !alias.is_empty() => {
                    state.alias = Some(alias.clone());
                }
                LinkAttribute::LinkInfo(infos) => {
                    for info in infos {
                        if let LinkInfo::Kind(kind) = info {
                            state.kind = kind.to_string();
                        }
                    }
                }
                _ => {}
            }
        }
        state
    }

    /// Whether it is a Linux bridge.
    pub fn is_bridge(&self) -> bool {
        self.kind == "bridge"
    }
}

/// The VNI and UDP port of a VXLAN device's link message; `None` for another kind of link.
fn vxlan_id_port(msg: &LinkMessage) -> Option<(u32, u16)> {
    let infos = msg.attributes.iter().find_map(|a| match a {
        LinkAttribute::LinkInfo(infos) => Some(infos),
        _ => None,
    })?;
    let data = infos.iter().find_map(|i| match i {
        LinkInfo::Data(InfoData::Vxlan(data)) => Some(data),
        _ => None,
    })?;
    let id = data.iter().find_map(|d| match d {
        InfoVxlan::Id(id) => Some(*id),
        _ => None,
    })?;
    let port = data.iter().find_map(|d| match d {
        InfoVxlan::Port(port) => Some(*port),
        _ => None,
    })?;
    Some((id, port))
}

/// A route netlink connection in the namespace of the thread that opened it.
#[derive(Debug)]
pub struct Netlink {
    runtime: Runtime,
    handle: Handle,
}

/// What every interface cloon makes may carry in the request that creates it: its MAC address
/// and MTU when given, its group (0: none), and the namespace (file) it is made in (`None`: the
/// connection's).
fn with_end<T>(
    mut message: LinkMessageBuilder<T>,
    (mac, mtu, group): (Option<Mac>, Option<u32>, u32),
    ns: Option<BorrowedFd<'_>>,
) -> LinkMessageBuilder<T> {
    if let Some(mac) = mac {
        message = message.address(mac.0.to_vec());
    }
    if let Some(mtu) = mtu {
        message = message.mtu(mtu);
    }
    if group != 0 {
        message = message.link_group(group);
    }
    if let Some(fd) = ns {
        message = message.setns_by_fd(fd.as_raw_fd());
    }
    message
}

impl Netlink {
    /// Opens a connection in the calling thread's network namespace.
    pub fn connect() -> Result<Netlink> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(|e| Error::io("cannot start the netlink event loop", &e))?;
        let (connection, handle, _) = {
            let _context = runtime.enter();
            rtnetlink::new_connection()
                .map_err(|e| Error::io("cannot open a netlink socket", &e))?
        };
        runtime.spawn(connection);
        Ok(Netlink { runtime, handle })
    }

    /// The interface called `name`, if there is one.
    pub fn link_by_name(&self, name: &str) -> Result<Option<LinkState>> {
        let request = self.handle.link().get().match_name(name).execute();
        self.first_link(request, || format!("cannot look up interface {name}"))
    }

    /// The interface called `name`, which must exist (`ns` says where, for the message).
    pub fn find(&self, name: &str, ns: &str) -> Result<LinkState> {
        self.link_by_name(name)?
            .ok_or_else(|| Error::new(Code::Unknown, format!("interface {name} is missing {ns}")))
    }

    /// The interface with index `index`, if there is one.
    pub fn link_by_index(&self, index: u32) -> Result<Option<LinkState>> {
        let request = self.handle.link().get().match_index(index).execute();
        self.first_link(request, || {
            format!("cannot look up interface number {index}")
        })
    }

    fn first_link(
        &self,
        mut stream: impl futures::Stream<Item = std::result::Result<LinkMessage, rtnetlink::Error>>
            + Unpin,
        what: impl FnOnce() -> String,
    ) -> Result<Option<LinkState>> {
        match self.runtime.block_on(stream.try_next()) {
            Ok(found) => Ok(found.as_ref().map(LinkState::from_message)),
            Err(e) if netlink_errno(&e) == Some(Errno::ENODEV) => Ok(None),
            Err(e) => Err(netlink(what(), e)),
        }
    }

    /// Every interface, in index order.
    pub fn links(&self) -> Result<Vec<LinkState>> {
        let mut stream = self.handle.link().get().execute();
        let mut links = Vec::new();
        loop {
            match self.runtime.block_on(stream.try_next()) {
                Ok(Some(msg)) => links.push(LinkState::from_message(&msg)),
                Ok(None) => break,
                Err(e) => return Err(netlink("cannot list the interfaces", e)),
            }
        }
        links.sort_by_key(|l| l.index);
        Ok(links)
    }

    /// The ports of the bridge with index `bridge`, as the kernel has them now.
    pub fn ports(&self, bridge: u32) -> Result<Vec<LinkState>> {
        let mut links = self.links()?;
        links.retain(|l| l.master == Some(bridge));
        Ok(links)
    }

    /// Creates a veth pair, each end directly in its namespace (`a_ns`, `b_ns`: the namespace
    /// files; `None`: this connection's), with its MAC address, MTU and group when given, all in
    /// the one request that creates it. Neither end ever exists under its name anywhere else.
    pub fn add_veth(
        &self,
        a: &VethEnd,
        a_ns: Option<BorrowedFd<'_>>,
        b: &VethEnd,
        b_ns: Option<BorrowedFd<'_>>,
    ) -> Result<()> {
        let peer = with_end(
            LinkMessageBuilder::<LinkUnspec>::new().name(b.name.clone()),
            (b.mac, b.mtu, b.group),
            b_ns,
        );
        let message = with_end(
            LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth).name(a.name.clone()),
            (a.mac, a.mtu, a.group),
            a_ns,
        )
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer.build())))
        .build();
        let request = self.handle.link().add(message).execute();
        let pair = format!("{}:{}", a.name, b.name);
        self.runtime.block_on(request).map_err(|e| {
            let taken = netlink_errno(&e) == Some(Errno::EEXIST);
            let err = netlink(format!("cannot create the veth pair {pair}"), e);
            if taken {
                Error::new(
                    Code::NameTaken,
                    format!(
                        "cannot create the veth pair {pair}: {} exists {} or {} exists {}: \
                         pick other names",
                        a.name,
                        where_is(a.ns.as_ref()),
                        b.name,
                        where_is(b.ns.as_ref())
                    ),
                )
                .details(err.details)
            } else {
                err
            }
        })
    }

    /// Creates the VXLAN device `vx` (down), in the namespace `ns` (the namespace file; `None`:
    /// this connection's) with its group, MAC address and MTU when given, all in the one request
    /// that creates it. The request is sent from this connection's namespace, so the device's UDP
    /// socket and its underlay `dev_index` are there, whichever namespace the device is made in.
    pub fn add_vxlan(
        &self,
        vx: &VxlanDev,
        dev_index: Option<u32>,
        ns: Option<BorrowedFd<'_>>,
    ) -> Result<()> {
        let mut message = LinkMessageBuilder::<LinkVxlan>::new(&vx.name)
            .id(vx.vni)
            .port(vx.port)
            .learning(vx.learning);
        match vx.local {
            Some(IpAddr::V4(a)) => message = message.local(a),
            Some(IpAddr::V6(a)) => message = message.local6(a),
            None => {}
        }
        if let Some(index) = dev_index {
            message = message.dev(index);
        }
        let message = with_end(message, (vx.mac, vx.mtu, vx.group), ns);
        let request = self.handle.link().add(message.build()).execute();
        self.runtime.block_on(request).map_err(|e| {
            let errno = netlink_errno(&e);
            let err = netlink(
                format!(
                    "cannot create the VXLAN device {} {}",
                    vx.name,
                    where_is(vx.ns.as_ref())
                ),
                e,
            );
            match errno {
                Some(Errno::EEXIST) => Error::new(Code::NameTaken, err.msg).details(err.details),
                _ => err,
            }
        })
    }

    /// Appends to the forwarding database of the VXLAN device `index` (called `name`) an
    /// all-zeros entry to `dst`:`port`, as `bridge fdb append 00:00:00:00:00:00 dev NAME dst DST
    /// port PORT` does (RTM_NEWNEIGH, AF_BRIDGE, NLM_F_CREATE|NLM_F_APPEND, NTF_SELF, permanent):
    /// frames with no entry of their own go to every such remote.
    pub fn fdb_append(&self, index: u32, name: &str, dst: IpAddr, port: u16) -> Result<()> {
        let mut message = NeighbourMessage::default();
        message.header.family = AddressFamily::Bridge;
        message.header.ifindex = index;
        message.header.state = NeighbourState::Permanent;
        message.header.flags = NeighbourFlags::Own;
        message.attributes = vec![
            NeighbourAttribute::LinkLayerAddress(vec![0; 6]),
            NeighbourAttribute::Destination(match dst {
                IpAddr::V4(a) => NeighbourAddress::Inet(a),
                IpAddr::V6(a) => NeighbourAddress::Inet6(a),
            }),
            NeighbourAttribute::Port(port),
        ];
        let mut request = NetlinkMessage::from(RouteNetlinkMessage::NewNeighbour(message));
        request.header.flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_APPEND;
        let what = || format!("cannot add the remote {dst} port {port} to {name}");
        let mut handle = self.handle.clone();
        let mut response = handle.request(request).map_err(|e| netlink(what(), e))?;
        self.runtime.block_on(async {
            while let Some(message) = futures::StreamExt::next(&mut response).await {
                if let NetlinkPayload::Error(err) = message.payload {
                    return Err(netlink(what(), rtnetlink::Error::NetlinkError(err)));
                }
            }
            Ok(())
        })
    }

    /// The remotes of the all-zeros entries of the VXLAN device `index`'s forwarding database
    /// (what [`Netlink::fdb_append`] adds), as `bridge fdb show dev NAME | grep ^00:00:00:00:00:00`
    /// lists them: each address with its port when the kernel reports one (it does only for a
    /// port other than the device's).
    pub fn fdb_remotes(&self, index: u32) -> Result<Vec<(IpAddr, Option<u16>)>> {
        let mut stream = self
            .handle
            .neighbours()
            .get()
            .set_address_family(AddressFamily::Bridge)
            .execute();
        let mut remotes = Vec::new();
        loop {
            let entry = match self.runtime.block_on(stream.try_next()) {
                Ok(Some(entry)) => entry,
                Ok(None) => return Ok(remotes),
                Err(e) => {
                    return Err(netlink(
                        format!("cannot list the forwarding database of interface number {index}"),
                        e,
                    ))
                }
            };
            if entry.header.ifindex != index {
                continue;
            }
            let (mut zeros, mut dst, mut port) = (false, None, None);
            for attr in &entry.attributes {
                match attr {
                    NeighbourAttribute::LinkLayerAddress(mac) => {
                        zeros = mac.len() == 6 && mac.iter().all(|b| *b == 0);
                    }
                    NeighbourAttribute::Destination(NeighbourAddress::Inet(a)) => {
                        dst = Some(IpAddr::V4(*a));
                    }
                    NeighbourAttribute::Destination(NeighbourAddress::Inet6(a)) => {
                        dst = Some(IpAddr::V6(*a));
                    }
                    // In an AF_BRIDGE message the address comes unparsed: 4 or 16 bytes.
                    NeighbourAttribute::Destination(NeighbourAddress::Other(bytes)) => {
                        dst = match bytes.len() {
                            4 => <[u8; 4]>::try_from(&bytes[..]).ok().map(IpAddr::from),
                            16 => <[u8; 16]>::try_from(&bytes[..]).ok().map(IpAddr::from),
                            _ => None,
                        };
                    }
                    NeighbourAttribute::Port(p) => port = Some(*p),
                    _ => {}
                }
            }
            if let (true, Some(dst)) = (zeros, dst) {
                remotes.push((dst, port));
            }
        }
    }

    /// The VXLAN devices of this connection's namespace that have the VNI `vni` on the UDP port
    /// `port`, by name.
    pub fn vxlans_with(&self, vni: u32, port: u16) -> Result<Vec<String>> {
        let links = self.links()?.into_iter();
        Ok(links
            .filter(|l| l.vxlan == Some((vni, port)))
            .map(|l| l.name)
            .collect())
    }

    /// Creates the Linux bridge `name` (down, as `ip link add NAME type bridge` does), in the
    /// interface group `group` when not 0, in the request that creates it.
    pub fn add_bridge(&self, name: &str, group: u32) -> Result<()> {
        let mut builder = LinkMessageBuilder::<LinkBridge>::new(name);
        if group != 0 {
            builder = builder.link_group(group);
        }
        let mut message = builder.build();
        message.header.flags.remove(LinkFlags::Up);
        message.header.change_mask.remove(LinkFlags::Up);
        let request = self.handle.link().add(message).execute();
        self.runtime.block_on(request).map_err(|e| {
            let taken = netlink_errno(&e) == Some(Errno::EEXIST);
            let err = netlink(format!("cannot create the bridge {name}"), e);
            if taken {
                Error::new(
                    Code::NameTaken,
                    format!("cannot create the bridge {name}: an interface of that name exists"),
                )
                .details(err.details)
            } else {
                err
            }
        })
    }

    /// Makes interface `index` (called `name`) a port of the bridge `bridge` (called `br`).
    pub fn set_master(&self, index: u32, name: &str, bridge: u32, br: &str) -> Result<()> {
        let message = LinkUnspec::new_with_index(index).controller(bridge).build();
        let request = self.handle.link().set(message).execute();
        self.runtime
            .block_on(request)
            .map_err(|e| netlink(format!("cannot make {name} a port of the bridge {br}"), e))
    }

    /// Gives interface `index` (called `name`, for messages) the alias `alias`.
    pub fn set_alias(&self, index: u32, name: &str, alias: &str) -> Result<()> {
        let message = LinkUnspec::new_with_index(index).alias(alias).build();
        let request = self.handle.link().set(message).execute();
        self.runtime
            .block_on(request)
            .map_err(|e| netlink(format!("cannot set the alias of {name}"), e))
    }

    /// Brings interface `index` (called `name`, for messages) up.
    pub fn set_up(&self, index: u32, name: &str) -> Result<()> {
        let message = LinkUnspec::new_with_index(index).up().build();
        let request = self.handle.link().set(message).execute();
        self.runtime
            .block_on(request)
            .map_err(|e| netlink(format!("cannot bring {name} up"), e))
    }

    /// Adds `cidr` to interface `index` (called `name`, for messages).
    pub fn add_address(&self, index: u32, name: &str, cidr: Cidr) -> Result<()> {
        let request = self
            .handle
            .address()
            .add(index, cidr.addr, cidr.prefix)
            .execute();
        self.runtime
            .block_on(request)
            .map_err(|e| netlink(format!("cannot add address {cidr} to {name}"), e))
    }

    /// Deletes interface `index` (called `name`, for messages); one already gone is done.
    pub fn delete(&self, index: u32, name: &str) -> Result<()> {
        let request = self.handle.link().del(index).execute();
        match self.runtime.block_on(request) {
            Err(e) if netlink_errno(&e) != Some(Errno::ENODEV) => {
                Err(netlink(format!("cannot delete interface {name}"), e))
            }
            _ => Ok(()),
        }
    }

    /// Deletes every interface of the interface group `group` in one request (`ip link delete
    /// group GROUP`): the kernel unregisters them together, waiting for the network's grace
    /// periods once rather than once per interface. When it returns, their names are free.
    pub fn delete_group(&self, group: u32) -> Result<()> {
        let mut request = self.handle.link().del(0);
        request
            .message_mut()
            .attributes
            .push(LinkAttribute::Group(group));
        self.runtime
            .block_on(request.execute())
            .map_err(|e| netlink(format!("cannot delete the interfaces of group {group}"), e))
    }

    /// Deletes the interface called `name` only if it still has index `index`: an interface
    /// re-created by someone else under the same name is never touched. Returns what was found.
    pub fn delete_if_same(&self, name: &str, index: u32) -> Result<Option<LinkState>> {
        let found = self.link_by_name(name)?;
        if let Some(link) = &found {
            if link.index == index {
                self.delete(index, name)?;
            }
        }
        Ok(found)
    }
}
