//! `up`: the named namespace, its veth pairs, `lo` and the guest ends up with their addresses.
//! All or nothing: on failure, what was made is unmade and the record released.

use crate::link::{LinkState, Netlink};
use crate::namespace::{self, Namespace};
use crate::parse::{parse_veths, VethSpec};
use crate::record::{LinkRecord, Record};
use crate::{UpArgs, PART, STAGE};
use cloon_core::netns::{Target, RUN_DIR};
use cloon_core::{cli, host, name, Code, Document, Error, Result, StateDir, Undo};
use std::path::Path;
use std::rc::Rc;

/// Everything `up` needs, validated before anything is touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The container's name, which the record is filed under.
    pub name: String,
    pub target: Target,
    pub veths: Vec<VethSpec>,
}

impl Plan {
    /// Checks the flags and the document together.
    pub fn new(args: &UpArgs, input: Option<&Document>) -> Result<Plan> {
        if let Some(doc) = input {
            if doc.get::<serde_json::Value>("netns")?.is_some() {
                return Err(Error::config(
                    "the document already has a netns part: bring it down first \
                     (cloon-netns down), or start from a document without one",
                ));
            }
        }
        let Some(netns) = args.netns.as_deref() else {
            return Err(Error::invalid(
                "no namespace given: add --netns NAME (cloon creates /run/netns/NAME) \
                 or --netns PATH (an existing namespace)",
            ));
        };
        let target = Target::parse(netns)?;
        let veths = parse_veths(&args.veth)?;
        let name = if args.name.is_some() || input.and_then(Document::name).is_some() {
            cli::pick_name(args.name.as_deref(), input, STAGE)?
        } else {
            let name = target.name();
            name::container(&name).map_err(|e| {
                Error::invalid(format!(
                    "the namespace's name cannot name the container ({}): give --name NAME",
                    e.msg
                ))
            })?;
            name
        };
        Ok(Plan {
            name,
            target,
            veths,
        })
    }
}

/// Runs `up` and returns the document with its `netns` part.
pub fn up(state: &StateDir, args: &UpArgs, input: Option<Document>) -> Result<Document> {
    let plan = Plan::new(args, input.as_ref())?;
    host::require_root(STAGE, "create network namespaces and interfaces")?;
    let host = Rc::new(Netlink::connect()?);
    for veth in &plan.veths {
        if host.link_by_name(&veth.host)?.is_some() {
            return Err(Error::new(
                Code::NameTaken,
                format!(
                    "interface {} already exists on the host: pick another host-side name in --veth",
                    veth.host
                ),
            ));
        }
    }
    let path = plan.target.path();
    let mut record = Record {
        name: plan.target.name(),
        path: path.to_string_lossy().into_owned(),
        created: false,
        inode: 0,
        links: Vec::new(),
    };
    let mut undo = Undo::new();
    state.claim_with_undo(&mut undo, &plan.name, PART, &record)?;

    let netns = match &plan.target {
        Target::Named(_) => {
            namespace::prepare_run_dir(Path::new(RUN_DIR))?;
            let netns = namespace::create(&path)?;
            let (path, inode) = (path.clone(), netns.inode());
            undo.push(move || {
                let _ = namespace::remove(&path, inode);
            });
            record.created = true;
            netns
        }
        Target::Existing(path) => Namespace::open(path)?,
    };
    record.inode = netns.inode();
    state.update(&plan.name, PART, &record)?;

    for veth in &plan.veths {
        host.add_veth(
            &veth.host,
            &veth.guest,
            std::os::fd::AsFd::as_fd(&netns),
            veth.mac,
        )?;
        let Some(made) = host.link_by_name(&veth.host)? else {
            return Err(Error::new(
                Code::Io,
                format!("the veth {} vanished right after its creation", veth.host),
            ));
        };
        {
            let (host, name, index) = (host.clone(), veth.host.clone(), made.index);
            undo.push(move || {
                let _ = host.delete_if_same(&name, index);
            });
        }
        record.links.push(LinkRecord {
            host: veth.host.clone(),
            host_index: made.index,
            guest: veth.guest.clone(),
            guest_index: 0,
            mac: String::new(),
            addrs: veth.addrs.iter().map(ToString::to_string).collect(),
        });
        state.update(&plan.name, PART, &record)?;
        host.set_up(made.index, &veth.host)?;
    }

    let guests = netns.run_inside(|| configure_inside(&plan.veths))?;
    for (link, guest) in record.links.iter_mut().zip(guests) {
        link.guest_index = guest.index;
        link.mac = guest.mac;
    }
    state.update(&plan.name, PART, &record)?;
    undo.commit();

    let mut doc = input.unwrap_or_default();
    doc.set_name(&plan.name)?;
    doc.set(PART, &record.to_part());
    Ok(doc)
}

/// Inside the namespace: `lo` up, each guest end up with its addresses; returns the guest ends
/// as the kernel has them now (index, MAC address).
fn configure_inside(veths: &[VethSpec]) -> Result<Vec<LinkState>> {
    let netlink = Netlink::connect()?;
    let lo = find(&netlink, "lo")?;
    netlink.set_up(lo.index, "lo")?;
    let mut guests = Vec::with_capacity(veths.len());
    for veth in veths {
        let guest = find(&netlink, &veth.guest)?;
        netlink.set_up(guest.index, &veth.guest)?;
        for cidr in &veth.addrs {
            netlink.add_address(guest.index, &veth.guest, *cidr)?;
        }
        let now = netlink.link_by_index(guest.index)?.unwrap_or(guest);
        guests.push(now);
    }
    Ok(guests)
}

fn find(netlink: &Netlink, name: &str) -> Result<LinkState> {
    netlink.link_by_name(name)?.ok_or_else(|| {
        Error::new(
            Code::Unknown,
            format!("interface {name} is missing from the namespace"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(netns: Option<&str>, veth: &[&str], name: Option<&str>) -> UpArgs {
        UpArgs {
            netns: netns.map(Into::into),
            veth: veth.iter().map(|v| v.to_string()).collect(),
            name: name.map(Into::into),
        }
    }

    #[test]
    fn the_container_is_named_by_flag_document_or_namespace() {
        let p = Plan::new(&args(Some("cloonix_1_1"), &["vgt_1_1_0:eth0"], None), None).unwrap();
        assert_eq!(p.name, "cloonix_1_1");
        assert_eq!(p.veths.len(), 1);
        let p = Plan::new(&args(Some("cloonix_1_1"), &[], Some("Cloon1")), None).unwrap();
        assert_eq!(p.name, "Cloon1");
        let mut doc = Document::new();
        doc.set_name("Cloon2").unwrap();
        let p = Plan::new(&args(Some("cloonix_1_1"), &[], None), Some(&doc)).unwrap();
        assert_eq!(p.name, "Cloon2");
        let e = Plan::new(&args(Some("cloonix_1_1"), &[], Some("X")), Some(&doc)).unwrap_err();
        assert_eq!(e.code, Code::InvalidConfig);
    }

    #[test]
    fn everything_is_validated_first() {
        let e = Plan::new(&args(None, &["a:b"], None), None).unwrap_err();
        assert_eq!(e.code, Code::InvalidArgument);
        assert!(e.msg.contains("--netns NAME"), "{}", e.msg);
        let e = Plan::new(&args(Some("ns"), &["a:b", "a"], None), None).unwrap_err();
        assert_eq!(e.code, Code::InvalidArgument);
        let e = Plan::new(&args(Some("bad name"), &[], None), None).unwrap_err();
        assert_eq!(e.code, Code::InvalidArgument);
        let e = Plan::new(&args(Some("/tmp/x y"), &[], None), None).unwrap_err();
        assert_eq!(e.code, Code::InvalidArgument);
        assert!(e.msg.contains("give --name"), "{}", e.msg);
        let e = Plan::new(&args(Some("ns"), &[], Some("../x")), None).unwrap_err();
        assert_eq!(e.code, Code::InvalidArgument);
    }

    #[test]
    fn a_document_that_already_has_a_namespace_is_refused() {
        let doc = Document::parse(
            r#"{"cloonVersion":"1","name":"A","netns":{"name":"n","path":"/run/netns/n"}}"#,
        )
        .unwrap()
        .unwrap();
        let e = Plan::new(&args(Some("n"), &[], None), Some(&doc)).unwrap_err();
        assert_eq!(e.code, Code::InvalidConfig);
    }
}
