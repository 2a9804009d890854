//! `up`: the named namespace, its veth pairs (each host end up, in its bridge if it has one, with
//! its addresses), `lo` and the guest ends up with their addresses. All or nothing: on failure,
//! what was made is unmade and the records released.
//!
//! `up` plans its [`Action`]s first, then says each one (`--explain`) before doing it; with
//! `--dry-run` it only says them, and the document gets the planned part.

use crate::action::{Action, Ns, VethEnd};
use crate::bridge::{self, Bridges, Found};
use crate::namespace::{self, Namespace, Probe};
use crate::parse::{self, VethSpec};
use crate::record::{LinkRecord, Record};
use crate::system::{where_is, Made, System};
use crate::{p2p, UpArgs, PART, STAGE};
use cloon_core::netns::Target;
use cloon_core::{cli, explain, host, name, Code, Document, Error, Result, StateDir, Undo};

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
            if doc.get::<serde_json::Value>(PART)?.is_some() {
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
        let veths = parse::parse_veths(&args.veth)?;
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

    /// The namespace the guest ends go in.
    pub fn ns(&self) -> Ns {
        Ns::new(self.target.path())
    }

    /// The actions of `up`, in order, given the bridges it has to create.
    pub fn actions(&self, missing_bridges: &[String]) -> Vec<Action> {
        let ns = self.ns();
        let mut actions = Vec::new();
        if let Target::Named(name) = &self.target {
            actions.push(Action::NetnsAdd { name: name.clone() });
        }
        for bridge in missing_bridges {
            actions.push(Action::BridgeAdd {
                name: bridge.clone(),
            });
            actions.push(Action::LinkUp {
                ns: None,
                dev: bridge.clone(),
            });
        }
        for veth in &self.veths {
            actions.push(Action::VethAdd {
                a: VethEnd {
                    name: veth.host.clone(),
                    mac: veth.host_end.mac,
                    mtu: veth.host_end.mtu,
                    ns: None,
                },
                b: VethEnd {
                    name: veth.guest.clone(),
                    mac: veth.guest_end.mac,
                    mtu: veth.guest_end.mtu,
                    ns: Some(ns.clone()),
                },
            });
            if let Some(bridge) = &veth.bridge {
                actions.push(Action::SetMaster {
                    dev: veth.host.clone(),
                    bridge: bridge.clone(),
                });
            }
            actions.extend(veth.host_end.addrs.iter().map(|cidr| Action::AddrAdd {
                ns: None,
                dev: veth.host.clone(),
                cidr: *cidr,
            }));
            actions.push(Action::LinkUp {
                ns: None,
                dev: veth.host.clone(),
            });
        }
        actions.push(Action::LinkUp {
            ns: Some(ns.clone()),
            dev: "lo".into(),
        });
        for veth in &self.veths {
            actions.push(Action::LinkUp {
                ns: Some(ns.clone()),
                dev: veth.guest.clone(),
            });
            actions.extend(veth.guest_end.addrs.iter().map(|cidr| Action::AddrAdd {
                ns: Some(ns.clone()),
                dev: veth.guest.clone(),
                cidr: *cidr,
            }));
        }
        actions
    }
}

/// Runs `up` and returns the document with its `netns` part.
pub fn up(state: &StateDir, args: &UpArgs, input: Option<Document>) -> Result<Document> {
    let plan = Plan::new(args, input.as_ref())?;
    let acting = explain::acting();
    if acting {
        host::require_root(STAGE, "create network namespaces and interfaces")?;
    }
    let mut sys = System::new()?;
    refuse_taken_names(state, &plan, &sys)?;

    // The record first (its directory, when --explain says it, is made before any bridge lock
    // makes the state root), then the bridges, locked from this first look until the end.
    // `bridges` is declared before `undo` so that it is dropped after it: an `up` that fails
    // deletes the bridge it made before another can see it.
    let ns = plan.ns();
    let mut record = Record {
        name: plan.target.name(),
        path: ns.path.to_string_lossy().into_owned(),
        created: false,
        inode: 0,
        links: Vec::new(),
    };
    let mut bridges: Bridges;
    let mut undo = Undo::new();
    explain::claim(state, &mut undo, &plan.name, PART, &record)?;
    let names = parse::bridges(&plan.veths);
    bridges = Bridges::open(state, &names, acting)?;
    let mut found = Vec::new();
    for name in &names {
        let record = bridges.record(name)?;
        let link = sys.host().link_by_name(name)?;
        found.push((
            name.clone(),
            bridge::inspect(name, link.as_ref(), record.as_ref())?,
        ));
    }
    let missing: Vec<String> = found
        .iter()
        .filter(|(_, f)| *f == Found::Missing)
        .map(|(n, _)| n.clone())
        .collect();

    if let Target::Existing(path) = &plan.target {
        let existing = Namespace::open(path)?;
        record.inode = existing.inode();
        if acting {
            state.update(&plan.name, PART, &record)?;
            sys.enter(&ns, existing)?;
        }
    }

    for action in plan.actions(&missing) {
        if !explain::step(&action.words()) {
            continue;
        }
        match (sys.run(&action, &mut undo)?, &action) {
            (Made::Namespace(inode), _) => {
                record.created = true;
                record.inode = inode;
                state.update(&plan.name, PART, &record)?;
            }
            (Made::Link(index), Action::VethAdd { a, .. }) => {
                if let Some(veth) = plan.veths.iter().find(|v| v.host == a.name) {
                    let mut link = LinkRecord::planned(veth);
                    link.host_index = index;
                    record.links.push(link);
                    state.update(&plan.name, PART, &record)?;
                }
            }
            _ => {}
        }
    }

    if acting {
        read_back(&sys, &ns, &mut record)?;
        state.update(&plan.name, PART, &record)?;
        for (name, found) in found {
            let index = sys.host().find(&name, "on the host")?.index;
            bridges.store(&found.record(&name, index))?;
        }
        undo.commit();
    } else {
        record.links = plan.veths.iter().map(LinkRecord::planned).collect();
    }
    for name in &names {
        explain::note(&format!(
            "record {}",
            state.shared_path(bridge::KIND, name)?.display()
        ));
    }

    let mut doc = input.unwrap_or_default();
    doc.set_name(&plan.name)?;
    doc.set(PART, &record.to_part());
    Ok(doc)
}

/// Refuses, before anything is made, the names that are taken: the host ends on the host, the
/// namespace, and the container's name (by another container, or by a point-to-point link).
/// (A bridge's name may exist, as a bridge: [`bridge::inspect`] decides.)
fn refuse_taken_names(state: &StateDir, plan: &Plan, sys: &System) -> Result<()> {
    for veth in &plan.veths {
        if sys.host().link_by_name(&veth.host)?.is_some() {
            return Err(Error::new(
                Code::NameTaken,
                format!(
                    "interface {} already exists on the host: pick another host-side name in \
                     --veth",
                    veth.host
                ),
            ));
        }
    }
    if let Target::Named(name) = &plan.target {
        if namespace::probe(&plan.target.path())? != Probe::Missing {
            return Err(Error::new(
                Code::NameTaken,
                format!(
                    "the namespace {} already exists: pick another name, or give its path \
                     (--netns {}) to use it",
                    name,
                    plan.target.path().display()
                ),
            ));
        }
    }
    if state
        .load::<serde_json::Value>(&plan.name, p2p::PART)?
        .is_some()
    {
        return Err(Error::new(
            Code::NameTaken,
            format!(
                "\"{}\" is the name of a point-to-point link: pick another container name",
                plan.name
            ),
        ));
    }
    if state.load::<serde_json::Value>(&plan.name, PART)?.is_some() {
        return Err(Error::new(
            Code::NameTaken,
            format!(
                "{PART} \"{}\" already exists: pick another name, or bring it down first",
                plan.name
            ),
        ));
    }
    Ok(())
}

/// Reads what the kernel chose: each host end's MAC address, each guest end's index and MAC.
fn read_back(sys: &System, ns: &Ns, record: &mut Record) -> Result<()> {
    let inside = sys.netlink(Some(ns))?;
    for link in &mut record.links {
        let host = sys.host().find(&link.host, "on the host")?;
        link.host_mac = host.mac;
        let guest = inside.find(&link.guest, &where_is(Some(ns)))?;
        link.guest_index = guest.index;
        link.mac = guest.mac;
    }
    Ok(())
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

    fn commands(plan: &Plan, missing: &[&str]) -> Vec<String> {
        let missing: Vec<String> = missing.iter().map(|m| m.to_string()).collect();
        plan.actions(&missing)
            .iter()
            .map(Action::command_line)
            .collect()
    }

    #[test]
    fn the_articles_namespace_is_the_articles_commands() {
        let plan = Plan::new(
            &args(
                Some("cloonix_1_1"),
                &["vgt_1_1_0:eth0,addr=10.0.0.2/24"],
                None,
            ),
            None,
        )
        .unwrap();
        assert_eq!(
            commands(&plan, &[]),
            [
                "ip netns add cloonix_1_1",
                "ip link add vgt_1_1_0 type veth peer name eth0 netns cloonix_1_1",
                "ip link set vgt_1_1_0 up",
                "ip -n cloonix_1_1 link set lo up",
                "ip -n cloonix_1_1 link set eth0 up",
                "ip -n cloonix_1_1 addr add 10.0.0.2/24 dev eth0",
            ]
        );
    }

    #[test]
    fn bridges_and_host_end_settings_come_in_order() {
        let plan = Plan::new(
            &args(
                Some("/run/netns/given"),
                &[
                    "vgt_a:eth0,bridge=lan1,mtu=1400,host-mtu=1400,host-mac=02:00:00:00:00:0a",
                    "vgt_b:eth1,host-addr=10.9.0.1/30,addr=10.9.0.2/30,addr=fd00::2/64",
                ],
                Some("C"),
            ),
            None,
        )
        .unwrap();
        assert_eq!(
            commands(&plan, &["lan1"]),
            [
                "ip link add lan1 type bridge",
                "ip link set lan1 up",
                "ip link add vgt_a address 02:00:00:00:00:0a mtu 1400 type veth \
                 peer name eth0 mtu 1400 netns given",
                "ip link set vgt_a master lan1",
                "ip link set vgt_a up",
                "ip link add vgt_b type veth peer name eth1 netns given",
                "ip addr add 10.9.0.1/30 dev vgt_b",
                "ip link set vgt_b up",
                "ip -n given link set lo up",
                "ip -n given link set eth0 up",
                "ip -n given link set eth1 up",
                "ip -n given addr add 10.9.0.2/30 dev eth1",
                "ip -n given addr add fd00::2/64 dev eth1",
            ]
        );
        // A bridge that exists already is only joined.
        assert!(!commands(&plan, &[])
            .iter()
            .any(|c| c.contains("type bridge")));
    }
}
