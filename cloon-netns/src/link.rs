//! Network interfaces through rtnetlink: veth pairs, bridges and their ports, link state,
//! addresses, hardware addresses, MTUs.
//!
//! A [`Netlink`] connection acts in the network namespace of the thread that opened it, for its
//! whole life, whichever thread uses it later; it owns a current-thread tokio runtime and blocks
//! on each request, so callers stay synchronous.

use crate::action::VethEnd;
use crate::errors::{netlink, netlink_errno};
use crate::settings::{format_mac, Cidr};
use crate::system::where_is;
use cloon_core::{Code, Error, Result};
use futures::TryStreamExt;
use nix::errno::Errno;
use rtnetlink::packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use rtnetlink::{Handle, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth};
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

/// A route netlink connection in the namespace of the thread that opened it.
#[derive(Debug)]
pub struct Netlink {
    runtime: Runtime,
    handle: Handle,
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
        let mut peer = LinkMessageBuilder::<LinkUnspec>::new().name(b.name.clone());
        if let Some(mac) = b.mac {
            peer = peer.address(mac.0.to_vec());
        }
        if let Some(mtu) = b.mtu {
            peer = peer.mtu(mtu);
        }
        if b.group != 0 {
            peer = peer.link_group(b.group);
        }
        if let Some(fd) = b_ns {
            peer = peer.setns_by_fd(fd.as_raw_fd());
        }
        let mut message =
            LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth).name(a.name.clone());
        if let Some(mac) = a.mac {
            message = message.address(mac.0.to_vec());
        }
        if let Some(mtu) = a.mtu {
            message = message.mtu(mtu);
        }
        if a.group != 0 {
            message = message.link_group(a.group);
        }
        if let Some(fd) = a_ns {
            message = message.setns_by_fd(fd.as_raw_fd());
        }
        let message = message
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
