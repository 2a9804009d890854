//! Point-to-point links: `cloon-netns link --name L NSA:IFA[,...] NSB:IFB[,...]` makes one veth
//! pair between two existing namespaces, each end created directly in its namespace (none ever
//! exists in the tool's own namespace), each with its own addresses, MAC address and MTU.
//!
//! The link is recorded under its own name, `<state>/L/link.json` ([`P2pRecord`]), so that
//! `cloon-netns down --name L`, `check` and `show` find it; its document is
//! `{"cloonVersion": "1", "name": "L", "link": {"ends": [...]}}` ([`LinkPart`]).

use crate::action::{Action, Ns, VethEnd};
use crate::check::Finding;
use crate::namespace::{self, Namespace, Probe};
use crate::settings::EndSettings;
use crate::system::{where_is, Made, System};
use crate::tag::{self, Claim};
use crate::{warn, LinkArgs, STAGE};
use cloon_core::netns::Target;
use cloon_core::{cli, explain, host, name, Code, Document, Error, Result, StateDir, Undo};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The key of a link in its document, and the name of its record.
pub const PART: &str = <LinkPart as cloon_core::doc::Part>::KEY;

/// The syntax of one end, quoted in error messages.
pub const END_SYNTAX: &str =
    "NS:IF[,addr=CIDR]...[,mac=MAC][,mtu=N], e.g. cloonix_1_1:eth1,addr=10.9.0.1/30";

/// One end of a link to make: its namespace, its interface name and settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndSpec {
    pub target: Target,
    pub ifname: String,
    pub settings: EndSettings,
}

/// Parses one end: `NS:IF[,OPTION]...`, NS a name under /run/netns or a path.
pub fn parse_end(value: &str) -> Result<EndSpec> {
    let context = |e: Error| Error::new(e.code, format!("link end {value}: {}", e.msg));
    let mut fields = value.split(',');
    let pair = fields.next().unwrap_or_default();
    let Some((ns, ifname)) = pair.rsplit_once(':') else {
        return Err(Error::invalid(format!(
            "link end {value}: \"{pair}\" has no ':': write {END_SYNTAX}"
        )));
    };
    let target = Target::parse(ns)
        .map_err(|e| context(Error::invalid(e.msg.replacen("--netns", "namespace", 1))))?;
    name::interface(ifname).map_err(context)?;
    if ifname == "lo" {
        return Err(context(Error::invalid(
            "every namespace already has lo: name the end e.g. eth1",
        )));
    }
    let mut settings = EndSettings::default();
    for field in fields {
        if !settings.take("", field).map_err(context)? {
            return Err(context(Error::invalid(format!(
                "unknown option \"{field}\": use addr=CIDR, mac=MAC or mtu=N, as in {END_SYNTAX}"
            ))));
        }
    }
    settings.check("").map_err(context)?;
    Ok(EndSpec {
        target,
        ifname: ifname.to_string(),
        settings,
    })
}

/// Parses the two ends; they must differ.
pub fn parse_ends(values: &[String]) -> Result<[EndSpec; 2]> {
    let [a, b] = values else {
        return Err(Error::invalid(format!(
            "a link has two ends, {} given: write {END_SYNTAX} twice",
            values.len()
        )));
    };
    let (a, b) = (parse_end(a)?, parse_end(b)?);
    if a.target.path() == b.target.path() && a.ifname == b.ifname {
        return Err(Error::invalid(format!(
            "both ends are {} in {}: give the ends different names or namespaces",
            a.ifname,
            a.target.path().display()
        )));
    }
    Ok([a, b])
}

pub use cloon_core::doc::{EndPart, LinkPart};

/// The record of a link (`<state>/L/link.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct P2pRecord {
    pub name: String,
    pub ends: Vec<EndRecord>,
}

/// One end of a recorded link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndRecord {
    pub netns: String,
    pub path: String,
    /// The namespace's nsfs inode: a file at `path` with another inode is another namespace.
    pub inode: u64,
    pub ifname: String,
    /// Its ifindex in its namespace (0 until known).
    pub index: u32,
    /// The interface group it is created in (its state directory's, [`tag::Owner::group`]; 0 in
    /// records older than tags).
    #[serde(default)]
    pub group: u32,
    /// Its MAC address ("" until known).
    pub mac: String,
    pub addrs: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
}

impl EndRecord {
    fn planned(end: &EndSpec, inode: u64, group: u32) -> EndRecord {
        EndRecord {
            netns: end.target.name(),
            path: end.target.path().to_string_lossy().into_owned(),
            inode,
            ifname: end.ifname.clone(),
            index: 0,
            group,
            mac: end.settings.mac_string(),
            addrs: end.settings.addr_strings(),
            mtu: end.settings.mtu,
        }
    }

    /// The namespace it is in.
    pub fn ns(&self) -> Ns {
        Ns::new(&self.path)
    }

    /// What the record says of the interface, to tell it from look-alikes.
    pub fn claim(&self) -> Claim<'static> {
        Claim {
            index: self.index,
            group: self.group,
            alias: None,
        }
    }
}

impl P2pRecord {
    /// The document's part for this link.
    pub fn to_part(&self) -> LinkPart {
        LinkPart {
            ends: self
                .ends
                .iter()
                .map(|e| EndPart {
                    netns: e.netns.clone(),
                    path: e.path.clone(),
                    ifname: e.ifname.clone(),
                    mac: e.mac.clone(),
                    addrs: e.addrs.clone(),
                    mtu: e.mtu,
                })
                .collect(),
        }
    }
}

/// The actions that make the link, its ends in the interface group `group`.
pub fn actions(ends: &[EndSpec; 2], group: u32) -> Vec<Action> {
    let end = |e: &EndSpec| VethEnd {
        name: e.ifname.clone(),
        group,
        mac: e.settings.mac,
        mtu: e.settings.mtu,
        ns: Some(Ns::new(e.target.path())),
    };
    let mut actions = vec![Action::VethAdd {
        a: end(&ends[0]),
        b: end(&ends[1]),
    }];
    for e in ends {
        let ns = Some(Ns::new(e.target.path()));
        actions.push(Action::LinkUp {
            ns: ns.clone(),
            dev: e.ifname.clone(),
        });
        actions.extend(e.settings.addrs.iter().map(|cidr| Action::AddrAdd {
            ns: ns.clone(),
            dev: e.ifname.clone(),
            cidr: *cidr,
        }));
    }
    actions
}

/// Whether this process may look inside namespaces (needs CAP_SYS_ADMIN; `--dry-run` may run
/// without it and then plans without looking).
pub(crate) fn can_look_inside(acting: bool) -> bool {
    acting || nix::unistd::geteuid().is_root()
}

/// `cloon-netns link`: makes the link and returns its document.
pub fn up(state: &StateDir, args: &LinkArgs, input: Option<Document>) -> Result<Document> {
    let ends = parse_ends(&args.ends)?;
    if let Some(doc) = &input {
        for part in [PART, crate::PART] {
            if doc.get::<serde_json::Value>(part)?.is_some() {
                return Err(Error::config(format!(
                    "the document has a {part} part: a link has a document of its own; \
                     give none (</dev/null)"
                )));
            }
        }
    }
    let name = cli::pick_name(Some(&args.name), input.as_ref(), STAGE)?;
    let acting = explain::acting();
    if acting {
        host::require_root(STAGE, "create interfaces in network namespaces")?;
    }
    let dir = state.dir(&name)?;
    if dir.exists() {
        return Err(Error::new(
            Code::NameTaken,
            format!(
                "\"{name}\" is taken: cloon has records of that name in {}: pick another link \
                 name",
                dir.display()
            ),
        ));
    }

    let mut sys = System::new()?;
    let own = own_netns_inode()?;
    let group = tag::Owner::of(state).group();
    let mut record = P2pRecord {
        name: name.clone(),
        ends: Vec::new(),
    };
    for end in &ends {
        let path = end.target.path();
        let opened = Namespace::open(&path).map_err(|e| {
            Error::new(
                e.code,
                format!("link end {}:{}: {}", end.target.name(), end.ifname, e.msg),
            )
        })?;
        if opened.inode() == own {
            return Err(Error::invalid(format!(
                "link end {}:{}: {} is this tool's own network namespace (the host's): a link \
                 joins two other namespaces; use --veth for an end on the host",
                end.target.name(),
                end.ifname,
                path.display()
            )));
        }
        record
            .ends
            .push(EndRecord::planned(end, opened.inode(), group));
        if can_look_inside(acting) {
            let ns = Ns::new(&path);
            sys.enter(&ns, opened)?;
            if sys.netlink(Some(&ns))?.link_by_name(&end.ifname)?.is_some() {
                return Err(Error::new(
                    Code::NameTaken,
                    format!(
                        "interface {} already exists {}: pick another name for that end",
                        end.ifname,
                        where_is(Some(&ns))
                    ),
                ));
            }
        }
    }

    let _lock;
    let _root;
    let mut undo = Undo::new();
    _lock = crate::up::lock_and_claim(state, &mut undo, &name, PART, &record)?;
    _root = crate::up::hold_root(state)?;
    for action in actions(&ends, group) {
        if !explain::step(&action.words()) {
            continue;
        }
        sys.run_journaled(&action, &mut undo, &mut |made| match made {
            Made::Link(index) => {
                record.ends[0].index = index;
                state.update(&name, PART, &record)
            }
            _ => Ok(()),
        })?;
    }
    if acting {
        for end in &mut record.ends {
            let ns = end.ns();
            let found = sys
                .netlink(Some(&ns))?
                .find(&end.ifname, &where_is(Some(&ns)))?;
            end.index = found.index;
            end.mac = found.mac;
        }
        state.update(&name, PART, &record)?;
        undo.commit();
    }
    let mut doc = input.unwrap_or_default();
    doc.set_name(&name)?;
    doc.set(PART, &record.to_part());
    Ok(doc)
}

/// The inode of the tool's own network namespace.
pub(crate) fn own_netns_inode() -> Result<u64> {
    nix::sys::stat::stat("/proc/self/ns/net")
        .map(|st| st.st_ino)
        .map_err(|e| crate::errors::sys("cannot inspect /proc/self/ns/net", e))
}

/// `down` of a link: deletes one end (the pair goes with it) while it is the recorded one, in the
/// recorded namespace; then the record.
pub fn down(state: &StateDir, name: &str, record: &P2pRecord) -> Result<()> {
    let acting = explain::acting();
    let mut sys = System::new()?;
    let mut delete = None;
    for end in &record.ends {
        let path = Path::new(&end.path);
        let ns = end.ns();
        match namespace::probe(path)? {
            Probe::Namespace(inode) if inode == end.inode => {
                let del = Action::LinkDel {
                    ns: Some(ns.clone()),
                    dev: end.ifname.clone(),
                    index: end.index,
                };
                if !can_look_inside(acting) {
                    delete = Some(del);
                    break;
                }
                sys.enter(&ns, Namespace::open(path)?)?;
                match sys.netlink(Some(&ns))?.link_by_name(&end.ifname)? {
                    Some(found) if tag::is_claimed(&found, &end.claim()) => {
                        delete = Some(Action::LinkDel {
                            ns: Some(ns.clone()),
                            dev: end.ifname.clone(),
                            index: found.index,
                        });
                        break;
                    }
                    Some(found) => warn(&format!(
                        "leaving interface {} {}: it is not the one cloon created (index {}, \
                         recorded {})",
                        end.ifname,
                        where_is(Some(&ns)),
                        found.index,
                        end.index
                    )),
                    None => {}
                }
            }
            Probe::Namespace(_) => warn(&format!(
                "leaving {}: it is another namespace than the one the link was made in",
                end.path
            )),
            Probe::Missing | Probe::Stale => {}
        }
    }
    if let Some(action) = delete {
        if explain::step(&action.words()) {
            let mut undo = Undo::new();
            sys.run(&action, &mut undo)?;
            undo.commit();
        }
    }
    explain::release(state, name, PART)
}

/// `check` of a link: its part as recorded if both ends are still there as recorded, else a
/// [`Code::Drift`] error listing the differences.
pub fn check(name: &str, record: &P2pRecord) -> Result<LinkPart> {
    let drift = differences(record)?;
    if !drift.is_empty() {
        return Err(Error::new(
            Code::Drift,
            format!(
                "the link {name} no longer matches its record: {}; run cloon-netns down \
                 --name {name}, then make it again",
                Finding::sentences(&drift)
            ),
        ));
    }
    Ok(record.to_part())
}

/// What differs between a link's record and the kernel.
pub fn differences(record: &P2pRecord) -> Result<Vec<Finding>> {
    let mut drift = Vec::new();
    for end in &record.ends {
        match crate::check::namespace_gone(&end.path, end.inode)? {
            Some(gone) => drift.push(gone),
            None => {
                let netlink = Namespace::open(Path::new(&end.path))?.netlink()?;
                let at = where_is(Some(&end.ns()));
                match netlink.link_by_name(&end.ifname)? {
                    None => drift.push(Finding::gone(format!(
                        "interface {} is missing {at}",
                        end.ifname
                    ))),
                    Some(found) if found.index != end.index => drift.push(Finding::gone(format!(
                        "interface {} {at} has index {}, recorded {}",
                        end.ifname, found.index, end.index
                    ))),
                    Some(found) if found.mac != end.mac => drift.push(Finding::changed(format!(
                        "interface {} {at} has MAC address {}, recorded {}",
                        end.ifname, found.mac, end.mac
                    ))),
                    Some(found) if end.mtu.is_some_and(|m| m != found.mtu) => {
                        drift.push(Finding::changed(format!(
                            "interface {} {at} has MTU {}, recorded {}",
                            end.ifname,
                            found.mtu,
                            end.mtu.unwrap_or_default()
                        )))
                    }
                    Some(_) => {}
                }
            }
        }
    }
    Ok(drift)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    fn err(values: &[&str]) -> String {
        let e = parse_ends(&strings(values)).unwrap_err();
        assert_eq!(e.code, Code::InvalidArgument);
        e.msg
    }

    #[test]
    fn ends_are_a_namespace_an_interface_and_settings() {
        let [a, b] = parse_ends(&strings(&[
            "cloonix_1_1:eth1,addr=10.9.0.1/30,mtu=9000",
            "/run/netns/x:y:eth2,mac=02:00:00:00:00:02",
        ]))
        .unwrap();
        assert_eq!(a.target, Target::Named("cloonix_1_1".into()));
        assert_eq!(a.ifname, "eth1");
        assert_eq!(a.settings.addr_strings(), ["10.9.0.1/30"]);
        assert_eq!(a.settings.mtu, Some(9000));
        assert_eq!(b.target, Target::Existing("/run/netns/x:y".into()));
        assert_eq!(b.ifname, "eth2");
        assert_eq!(b.settings.mac_string(), "02:00:00:00:00:02");
    }

    #[test]
    fn bad_ends_say_what_to_write() {
        assert!(err(&["a:eth1"]).contains("two ends, 1 given"));
        assert!(err(&["a:eth1", "b:eth1", "c:eth1"]).contains("3 given"));
        assert!(err(&["a", "b:eth1"]).contains("has no ':'"));
        assert!(err(&["a:eth1", "b:lo"]).contains("already has lo"));
        assert!(err(&["bad name:eth1", "b:eth1"]).contains("namespace"));
        assert!(err(&["a:abcdefghijklmnop", "b:eth1"]).contains("at most 15"));
        assert!(err(&["a:eth1,ip=1", "b:eth1"]).contains("use addr=CIDR"));
        assert!(err(&["a:eth1,mtu=1000,addr=fd00::1/64", "b:e"]).contains("1280"));
        assert!(err(&["a:eth1", "a:eth1"]).contains("different names"));
        assert!(err(&["a:eth1", "/run/netns/a:eth1"]).contains("different names"));
        parse_ends(&strings(&["a:eth1", "a:eth2"])).unwrap();
    }

    #[test]
    fn a_link_is_one_veth_with_an_end_in_each_namespace() {
        let ends = parse_ends(&strings(&[
            "cloonix_1_1:eth1,addr=10.9.0.1/30",
            "/var/run/other:eth1,mtu=1400",
        ]))
        .unwrap();
        let lines: Vec<String> = actions(&ends, tag::DEFAULT_GROUP)
            .iter()
            .map(Action::command_line)
            .collect();
        assert_eq!(
            lines,
            [
                "ip link add eth1 group 1668050798 netns cloonix_1_1 type veth \
                 peer name eth1 group 1668050798 mtu 1400 netns /var/run/other",
                "ip -n cloonix_1_1 link set eth1 up",
                "ip -n cloonix_1_1 addr add 10.9.0.1/30 dev eth1",
                "nsenter --net=/var/run/other ip link set eth1 up",
            ]
        );
    }

    #[test]
    fn the_record_maps_to_the_part() {
        let ends = parse_ends(&strings(&["a:eth1,addr=10.9.0.1/30", "b:eth1"])).unwrap();
        let rec = P2pRecord {
            name: "L".into(),
            ends: ends
                .iter()
                .map(|e| EndRecord::planned(e, 9, tag::DEFAULT_GROUP))
                .collect(),
        };
        let text = serde_json::to_string(&rec).unwrap();
        assert_eq!(serde_json::from_str::<P2pRecord>(&text).unwrap(), rec);
        let part = serde_json::to_value(rec.to_part()).unwrap();
        assert_eq!(
            part,
            serde_json::json!({"ends": [
                {"netns": "a", "path": "/run/netns/a", "ifname": "eth1", "mac": "",
                 "addrs": ["10.9.0.1/30"]},
                {"netns": "b", "path": "/run/netns/b", "ifname": "eth1", "mac": "", "addrs": []}
            ]})
        );
    }
}
