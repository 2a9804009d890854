//! Network interfaces through rtnetlink: veth pairs, link state, addresses, hardware addresses.
//!
//! A [`Netlink`] connection acts in the network namespace of the thread that opened it; it owns a
//! current-thread tokio runtime and blocks on each request, so callers stay synchronous.

use crate::errors::{netlink, netlink_errno};
use crate::parse::{format_mac, Cidr, Mac};
use cloon_core::{Code, Error, Result};
use futures::TryStreamExt;
use nix::errno::Errno;
use rtnetlink::packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkMessage,
};
use rtnetlink::{Handle, LinkMessageBuilder, LinkUnspec, LinkVeth};
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
}

impl LinkState {
    fn from_message(msg: &LinkMessage) -> LinkState {
        let mut state = LinkState {
            name: String::new(),
            index: msg.header.index,
            mac: String::new(),
            up: msg.header.flags.contains(LinkFlags::Up),
        };
        for attr in &msg.attributes {
            match attr {
                LinkAttribute::IfName(name) => state.name.clone_from(name),
                LinkAttribute::Address(bytes) => state.mac = format_mac(bytes),
                _ => {}
            }
        }
        state
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

    /// Creates the veth pair `host`/`guest` with the guest end made directly inside the namespace
    /// `netns` (never under its name here), with `mac` on the guest end when given.
    pub fn add_veth(
        &self,
        host: &str,
        guest: &str,
        netns: BorrowedFd<'_>,
        mac: Option<Mac>,
    ) -> Result<()> {
        let mut peer = LinkMessageBuilder::<LinkUnspec>::new()
            .name(guest)
            .setns_by_fd(netns.as_raw_fd());
        if let Some(mac) = mac {
            peer = peer.address(mac.0.to_vec());
        }
        let message = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
            .name(host)
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer.build())))
            .build();
        let request = self.handle.link().add(message).execute();
        self.runtime.block_on(request).map_err(|e| {
            let taken = netlink_errno(&e) == Some(Errno::EEXIST);
            let err = netlink(format!("cannot create the veth pair {host}:{guest}"), e);
            if taken {
                Error::new(
                    Code::NameTaken,
                    format!(
                        "cannot create the veth pair {host}:{guest}: {host} exists on the host or \
                         {guest} exists in the namespace: pick other names"
                    ),
                )
                .details(err.details)
            } else {
                err
            }
        })
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
