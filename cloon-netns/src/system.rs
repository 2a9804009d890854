//! Carrying out [`Action`]s on the kernel: a netlink connection in the tool's own namespace and one
//! in each namespace the actions work in, and, for every object made, how to unmake it (so that
//! `up` is all or nothing).

use crate::action::{Action, Ns};
use crate::link::Netlink;
use crate::namespace::{self, Namespace, Progress};
use cloon_core::netns::RUN_DIR;
use cloon_core::{Code, Error, Result, Undo};
use std::collections::BTreeMap;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// What an action made, told to the journal of [`System::run_journaled`] as soon as it is known,
/// for the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Made {
    /// A namespace, with its nsfs inode (not yet bound on its file).
    Namespace(u64),
    /// The file a new namespace is about to be bound on, with its inode.
    NamespaceFile(u64),
    /// An interface (a bridge, the first end of a veth pair, a VXLAN device), with its index.
    Link(u32),
}

#[derive(Debug)]
struct Inside {
    ns: Namespace,
    netlink: Rc<Netlink>,
}

/// The connections the actions go through.
#[derive(Debug)]
pub struct System {
    host: Rc<Netlink>,
    inside: BTreeMap<PathBuf, Inside>,
}

impl System {
    /// Connects in the tool's own namespace; reading needs no privilege.
    pub fn new() -> Result<System> {
        Ok(System {
            host: Rc::new(Netlink::connect()?),
            inside: BTreeMap::new(),
        })
    }

    /// The connection in the tool's own namespace.
    pub fn host(&self) -> &Netlink {
        &self.host
    }

    /// Works inside `ns`, opened by the caller, from now on (once: a namespace entered already
    /// keeps its connection).
    pub fn enter(&mut self, ns: &Ns, namespace: Namespace) -> Result<()> {
        if self.inside.contains_key(&ns.path) {
            return Ok(());
        }
        let netlink = Rc::new(namespace.netlink()?);
        self.inside.insert(
            ns.path.clone(),
            Inside {
                ns: namespace,
                netlink,
            },
        );
        Ok(())
    }

    /// The connection that acts in `ns` (`None`: the tool's own namespace).
    pub fn netlink(&self, ns: Option<&Ns>) -> Result<Rc<Netlink>> {
        match ns {
            None => Ok(self.host.clone()),
            Some(ns) => Ok(self.inside(ns)?.netlink.clone()),
        }
    }

    fn inside(&self, ns: &Ns) -> Result<&Inside> {
        self.inside.get(&ns.path).ok_or_else(|| {
            Error::new(
                Code::Io,
                format!(
                    "cloon-netns has not opened the namespace {} (a bug: please report it)",
                    ns.path.display()
                ),
            )
        })
    }

    /// After the link `name` was made in `ns` (`None`: the host): registers on `undo` its
    /// deletion (only while it is still the one made, by its index) and tells `journal` its index.
    fn made_link(
        &self,
        ns: Option<&Ns>,
        name: &str,
        undo: &mut Undo,
        journal: &mut dyn FnMut(Made) -> Result<()>,
    ) -> Result<()> {
        let netlink = self.netlink(ns)?;
        let index = netlink.find(name, &where_is(ns))?.index;
        let name = name.to_string();
        undo.push(move || {
            let _ = netlink.delete_if_same(&name, index);
        });
        journal(Made::Link(index))
    }

    fn fd(&self, ns: Option<&Ns>) -> Result<Option<BorrowedFd<'_>>> {
        ns.map(|ns| self.inside(ns).map(|i| i.ns.as_fd()))
            .transpose()
    }

    /// Does `action`; for an object it makes, registers on `undo` how to unmake it.
    pub fn run(&mut self, action: &Action, undo: &mut Undo) -> Result<()> {
        self.run_journaled(action, undo, &mut |_| Ok(()))
    }

    /// Does `action`; for an object it makes, registers on `undo` how to unmake it, and tells
    /// `journal` what it made ([`Made`]) as soon as it is known, before going on.
    pub fn run_journaled(
        &mut self,
        action: &Action,
        undo: &mut Undo,
        journal: &mut dyn FnMut(Made) -> Result<()>,
    ) -> Result<()> {
        match action {
            Action::NetnsAdd { name } => {
                let path = Path::new(RUN_DIR).join(name);
                namespace::prepare_run_dir(Path::new(RUN_DIR))?;
                let (created, placeholder) =
                    namespace::create(&path, &mut |progress| match progress {
                        Progress::Namespace(inode) => journal(Made::Namespace(inode)),
                        Progress::File(inode) => journal(Made::NamespaceFile(inode)),
                    })?;
                let inode = created.inode();
                let undo_path = path.clone();
                undo.push(move || {
                    let _ = namespace::remove(&undo_path, inode, Some(placeholder));
                });
                self.enter(&Ns::new(path), created)?;
                Ok(())
            }
            Action::NetnsDel { name, inode, file } => {
                self.inside.remove(&Path::new(RUN_DIR).join(name));
                namespace::remove(&Path::new(RUN_DIR).join(name), *inode, *file)?;
                Ok(())
            }
            Action::BridgeAdd { name, group } => {
                self.host.add_bridge(name, *group)?;
                self.made_link(None, name, undo, journal)
            }
            Action::BridgeDel { name, index }
            | Action::LinkDel {
                ns: None,
                dev: name,
                index,
            } => {
                self.host.delete_if_same(name, *index)?;
                Ok(())
            }
            Action::LinkDel { ns, dev, index } => {
                self.netlink(ns.as_ref())?.delete_if_same(dev, *index)?;
                Ok(())
            }
            Action::VethAdd { a, b } => {
                self.host
                    .add_veth(a, self.fd(a.ns.as_ref())?, b, self.fd(b.ns.as_ref())?)?;
                self.made_link(a.ns.as_ref(), &a.name, undo, journal)
            }
            Action::VxlanAdd(vx) => {
                let dev_index = match &vx.dev {
                    Some(dev) => Some(self.host.find(dev, "on the host")?.index),
                    None => None,
                };
                self.host
                    .add_vxlan(vx, dev_index, self.fd(vx.ns.as_ref())?)?;
                self.made_link(vx.ns.as_ref(), &vx.name, undo, journal)
            }
            Action::FdbAppend { ns, dev, dst, port } => {
                let netlink = self.netlink(ns.as_ref())?;
                let link = netlink.find(dev, &where_is(ns.as_ref()))?;
                netlink.fdb_append(link.index, dev, *dst, *port)
            }
            Action::LinkUp { ns, dev } => {
                let netlink = self.netlink(ns.as_ref())?;
                let link = netlink.find(dev, &where_is(ns.as_ref()))?;
                netlink.set_up(link.index, dev)
            }
            Action::SetAlias { dev, alias } => {
                let link = self.host.find(dev, "on the host")?;
                self.host.set_alias(link.index, dev, alias)
            }
            Action::SetMaster { dev, bridge } => {
                let port = self.host.find(dev, "on the host")?;
                let br = self.host.find(bridge, "on the host")?;
                self.host.set_master(port.index, dev, br.index, bridge)
            }
            Action::AddrAdd { ns, dev, cidr } => {
                let netlink = self.netlink(ns.as_ref())?;
                let link = netlink.find(dev, &where_is(ns.as_ref()))?;
                netlink.add_address(link.index, dev, *cidr)
            }
        }
    }
}

/// Where a namespace is, for messages.
pub fn where_is(ns: Option<&Ns>) -> String {
    match ns {
        None => "on the host".into(),
        Some(ns) => format!("in the namespace {}", ns.netns_arg()),
    }
}
