//! `up`: the named namespace, its veth pairs (each host end up, in its bridge if it has one, with
//! its addresses), `lo` and the guest ends up with their addresses. All or nothing: on failure,
//! what was made is unmade and the records released.
//!
//! `up` plans its [`Action`]s first, then says each one (`--explain`) before doing it; with
//! `--dry-run` it only says them, and the document gets the planned part.

use crate::action::{Action, Ns, VethEnd};
use crate::bridge::{BridgeRecord, Bridges, Found};
use crate::namespace::{self, Namespace, Probe};
use crate::parse::{self, VethSpec};
use crate::record::{LinkRecord, Record};
use crate::system::{where_is, Made, System};
use crate::tag::{self, Owner, RootLock};
use crate::{p2p, UpArgs, PART, STAGE};
use cloon_core::netns::Target;
use cloon_core::state::DirLock;
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

    /// The actions of `up`, in order, given the bridges it has to create (their planned
    /// records), the interface group of its state directory and the alias of its host ends.
    /// Every interface is created in that group, and each one on the host gets its alias right
    /// after.
    pub fn actions(
        &self,
        missing_bridges: &[BridgeRecord],
        group: u32,
        alias: Option<&str>,
    ) -> Vec<Action> {
        let ns = self.ns();
        let mut actions = Vec::new();
        if let Target::Named(name) = &self.target {
            actions.push(Action::NetnsAdd { name: name.clone() });
        }
        for bridge in missing_bridges {
            actions.extend(bridge.make());
        }
        for veth in &self.veths {
            actions.push(Action::VethAdd {
                a: VethEnd {
                    name: veth.host.clone(),
                    group,
                    mac: veth.host_end.mac,
                    mtu: veth.host_end.mtu,
                    ns: None,
                },
                b: VethEnd {
                    name: veth.guest.clone(),
                    group,
                    mac: veth.guest_end.mac,
                    mtu: veth.guest_end.mtu,
                    ns: Some(ns.clone()),
                },
            });
            if let Some(alias) = alias {
                actions.push(Action::SetAlias {
                    dev: veth.host.clone(),
                    alias: alias.to_string(),
                });
            }
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
///
/// Write-ahead: the record names every object before it is made (the planned host ends, the
/// namespace to create), each bridge to create has its record (index 0) before it is made, and
/// each identity (namespace inode, file inode, ifindex) is written as soon as it is known. So a
/// tool killed at any instant leaves records that name all it made, which `down` and `gc` can
/// then tell from look-alikes ([`crate::tag`]). The container's state directory is locked
/// throughout, so that `gc` leaves a record being written alone, and the state root is held
/// shared ([`RootLock::hold`]), so that `gc` leaves alone the interfaces it makes before they
/// have their alias.
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
    // deletes the bridge it made before another can see it, then its record.
    let ns = plan.ns();
    let group = Owner::of(state).group();
    let record_path = state.dir(&plan.name)?.join(format!("{PART}.json"));
    let mut record = Record {
        name: plan.target.name(),
        path: ns.path.to_string_lossy().into_owned(),
        created: matches!(plan.target, Target::Named(_)),
        inode: 0,
        file_inode: 0,
        group,
        alias: tag::alias(&record_path),
        links: plan.veths.iter().map(LinkRecord::planned).collect(),
    };
    // The lock outlives the undo stack, so that what a failure undoes is undone under it.
    let _lock: Option<DirLock>;
    let _root: Option<RootLock>;
    let mut bridges: Bridges;
    let mut undo = Undo::new();
    _lock = lock_and_claim(state, &mut undo, &plan.name, PART, &record)?;
    _root = hold_root(state)?;
    let names = parse::bridges(&plan.veths);
    bridges = Bridges::open(state, &names, acting)?;
    let (found, missing) = bridges.inspect_all(sys.host(), &names, group)?;

    if let Target::Existing(path) = &plan.target {
        let existing = Namespace::open(path)?;
        record.inode = existing.inode();
        if acting {
            state.update(&plan.name, PART, &record)?;
            sys.enter(&ns, existing)?;
        }
    }

    for action in plan.actions(&missing, group, record.alias.as_deref()) {
        bridges.before(&action, &missing, acting)?;
        if !explain::step(&action.words()) {
            continue;
        }
        sys.run_journaled(&action, &mut undo, &mut |made| match (made, &action) {
            (Made::Namespace(inode), _) => {
                record.inode = inode;
                state.update(&plan.name, PART, &record)
            }
            (Made::NamespaceFile(inode), _) => {
                record.file_inode = inode;
                state.update(&plan.name, PART, &record)
            }
            (Made::Link(index), Action::VethAdd { a, .. }) => {
                if let Some(link) = record.links.iter_mut().find(|l| l.host == a.name) {
                    link.host_index = index;
                }
                state.update(&plan.name, PART, &record)
            }
            (Made::Link(index), Action::BridgeAdd { name, .. }) => {
                let before = missing.iter().find(|b| &b.name == name).cloned();
                bridges.store(&Found::Missing.record(name, index, before))
            }
            _ => Ok(()),
        })?;
    }

    if acting {
        read_back(&sys, &ns, &mut record)?;
        state.update(&plan.name, PART, &record)?;
    }
    bridges.adopt(sys.host(), &found, acting)?;
    if acting {
        undo.commit();
        bridges.commit();
    }

    let mut doc = input.unwrap_or_default();
    doc.set_name(&plan.name)?;
    doc.set(PART, &record.to_part());
    Ok(doc)
}

/// Locks the container's state directory (when acting), then claims its record of `stage`, both
/// said as `--explain` says them (the `mkdir` of the directory once, then the record).
pub fn lock_and_claim<T: serde::Serialize>(
    state: &StateDir,
    undo: &mut Undo,
    name: &str,
    stage: &str,
    record: &T,
) -> Result<Option<DirLock>> {
    let lock = if explain::acting() {
        explain::state_dir(state, name)?;
        Some(state.lock(name)?)
    } else {
        None
    };
    explain::claim(state, undo, name, stage, record)?;
    Ok(lock)
}

/// Holds the state root of `state` shared while a tool makes interfaces (when acting): see
/// [`RootLock`]. The root exists once the record is claimed.
pub fn hold_root(state: &StateDir) -> Result<Option<RootLock>> {
    if explain::acting() {
        RootLock::hold(state).map(Some)
    } else {
        Ok(None)
    }
}

/// Refuses, before anything is made, the names that are taken: the host ends on the host, the
/// namespace, and the container's name (by another container, or by a point-to-point link).
/// (A bridge's name may exist, as a bridge: [`crate::bridge::inspect`] decides.)
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
        || state
            .load::<serde_json::Value>(&plan.name, crate::vxlan::PART)?
            .is_some()
    {
        return Err(Error::new(
            Code::NameTaken,
            format!(
                "\"{}\" is the name of a point-to-point link or VXLAN end: pick another \
                 container name",
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
        let state = StateDir::new(Some(std::path::Path::new("/run/cloon"))).unwrap();
        let missing: Vec<BridgeRecord> = missing
            .iter()
            .map(|m| {
                let path = state.shared_path(crate::bridge::KIND, m).unwrap();
                BridgeRecord::planned(m, tag::DEFAULT_GROUP, tag::alias(&path))
            })
            .collect();
        let alias = tag::alias(&state.dir(&plan.name).unwrap().join("netns.json"));
        let group = Owner::of(&state).group();
        assert_eq!(group, tag::DEFAULT_GROUP);
        plan.actions(&missing, group, alias.as_deref())
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
                "ip link add vgt_1_1_0 group 1668050798 type veth \
                 peer name eth0 group 1668050798 netns cloonix_1_1",
                "ip link set vgt_1_1_0 alias cloon:/run/cloon/cloonix_1_1/netns.json",
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
                "ip link add lan1 group 1668050798 type bridge",
                "ip link set lan1 alias cloon:/run/cloon/.bridges/lan1.json",
                "ip link set lan1 up",
                "ip link add vgt_a group 1668050798 address 02:00:00:00:00:0a mtu 1400 type veth \
                 peer name eth0 group 1668050798 mtu 1400 netns given",
                "ip link set vgt_a alias cloon:/run/cloon/C/netns.json",
                "ip link set vgt_a master lan1",
                "ip link set vgt_a up",
                "ip link add vgt_b group 1668050798 type veth \
                 peer name eth1 group 1668050798 netns given",
                "ip link set vgt_b alias cloon:/run/cloon/C/netns.json",
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
