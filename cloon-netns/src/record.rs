//! What `up` records under the state directory (`<state>/<name>/netns.json`): enough to undo
//! safely and to tell cloon's objects from look-alikes.

use crate::parse::VethSpec;
use crate::tag::Claim;
use cloon_core::doc;
use serde::{Deserialize, Serialize};

/// The record of one container's namespace and veth pairs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// The namespace's name (`cloonix_1_1`, or the file name of a given path).
    pub name: String,
    /// The namespace file.
    pub path: String,
    /// Whether cloon created the namespace (and so may delete it).
    pub created: bool,
    /// The namespace's nsfs inode once known (0 before): a file at `path` with another inode is
    /// not cloon's. It is recorded before any file names the namespace.
    pub inode: u64,
    /// The inode of the file under `/run/netns` cloon made to bind the namespace on (0 before it
    /// is made): recorded before the file has its name, so that an empty file left by a tool
    /// killed before the bind is known for cloon's.
    #[serde(default)]
    pub file_inode: u64,
    /// The interface group its interfaces are created in ([`crate::tag::Owner::group`]; 0 in records older
    /// than tags, whose interfaces are known by their index alone).
    #[serde(default)]
    pub group: u32,
    /// The alias its host ends get (`cloon:` and the record's path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// The veth pairs, in order: all of them are recorded before the first is made, each with
    /// its indexes once known (0 before).
    #[serde(default)]
    pub links: Vec<LinkRecord>,
}

/// One veth pair cloon created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkRecord {
    pub host: String,
    /// The host end's ifindex (0 until known): an interface of that name with another index is
    /// not cloon's.
    pub host_index: u32,
    pub guest: String,
    /// The guest end's ifindex inside the namespace (0 until known).
    pub guest_index: u32,
    /// The guest end's MAC address, lower-case ("" until known).
    pub mac: String,
    pub addrs: Vec<String>,
    /// The guest end's MTU, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// The host end's MAC address, lower-case ("" until known).
    #[serde(default)]
    pub host_mac: String,
    #[serde(default)]
    pub host_addrs: Vec<String>,
    /// The host end's MTU, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_mtu: Option<u32>,
    /// The bridge the host end is a port of (its own record is under the state root's
    /// `.bridges/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge: Option<String>,
}

impl LinkRecord {
    /// The record of a pair about to be made: indexes 0, MAC addresses as given ("" when the
    /// kernel is to choose them).
    pub fn planned(veth: &VethSpec) -> LinkRecord {
        LinkRecord {
            host: veth.host.clone(),
            host_index: 0,
            guest: veth.guest.clone(),
            guest_index: 0,
            mac: veth.guest_end.mac_string(),
            addrs: veth.guest_end.addr_strings(),
            mtu: veth.guest_end.mtu,
            host_mac: veth.host_end.mac_string(),
            host_addrs: veth.host_end.addr_strings(),
            host_mtu: veth.host_end.mtu,
            bridge: veth.bridge.clone(),
        }
    }

    /// The document's entry for this pair.
    pub fn to_link(&self) -> doc::Link {
        doc::Link {
            host: self.host.clone(),
            guest: self.guest.clone(),
            mac: self.mac.clone(),
            addrs: self.addrs.clone(),
            mtu: self.mtu,
            host_mac: self.host_mac.clone(),
            host_addrs: self.host_addrs.clone(),
            host_mtu: self.host_mtu,
            bridge: self.bridge.clone(),
        }
    }
}

impl Record {
    /// The document's `netns` part this record stands for.
    pub fn to_part(&self) -> doc::Netns {
        doc::Netns {
            name: self.name.clone(),
            path: self.path.clone(),
            links: self.links.iter().map(LinkRecord::to_link).collect(),
        }
    }

    /// What the record says of the host end of `link`, to tell it from look-alikes.
    pub fn host_claim<'a>(&'a self, link: &LinkRecord) -> Claim<'a> {
        Claim {
            index: link.host_index,
            group: self.group,
            alias: self.alias.as_deref(),
        }
    }

    /// The recorded inode of the file the namespace is bound on, for
    /// [`namespace::remove`](crate::namespace::remove): `None` for records older than tags.
    pub fn namespace_file(&self) -> Option<u64> {
        (self.group != 0).then_some(self.file_inode)
    }

    /// The bridges its pairs join, each once, sorted (the order their locks are taken in).
    pub fn bridges(&self) -> Vec<String> {
        let mut names: Vec<String> = self.links.iter().filter_map(|l| l.bridge.clone()).collect();
        names.sort();
        names.dedup();
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_veth;
    use crate::tag;

    #[test]
    fn record_round_trips_and_maps_to_the_part() {
        let mut link = LinkRecord::planned(
            &parse_veth("vgt_1_1_0:eth0,addr=10.0.0.2/24,host-mtu=1400,bridge=lan1").unwrap(),
        );
        link.host_index = 7;
        link.guest_index = 2;
        link.mac = "02:00:00:00:00:01".into();
        let rec = Record {
            name: "cloonix_1_1".into(),
            path: "/run/netns/cloonix_1_1".into(),
            created: true,
            inode: 4026532000,
            file_inode: 77,
            group: tag::DEFAULT_GROUP,
            alias: Some("cloon:/run/cloon/C/netns.json".into()),
            links: vec![link],
        };
        let text = serde_json::to_string(&rec).unwrap();
        assert!(text.contains("\"hostIndex\":7"), "{text}");
        assert!(text.contains("\"hostMtu\":1400"), "{text}");
        assert!(!text.contains("\"mtu\""), "{text}");
        assert_eq!(serde_json::from_str::<Record>(&text).unwrap(), rec);
        let part = rec.to_part();
        assert_eq!(part.links[0].mac, "02:00:00:00:00:01");
        assert_eq!(part.links[0].bridge.as_deref(), Some("lan1"));
        assert_eq!(part.path, "/run/netns/cloonix_1_1");
        assert_eq!(rec.bridges(), ["lan1"]);
        assert_eq!(rec.namespace_file(), Some(77));
        assert_eq!(
            rec.host_claim(&rec.links[0]),
            Claim {
                index: 7,
                group: tag::DEFAULT_GROUP,
                alias: Some("cloon:/run/cloon/C/netns.json")
            }
        );
    }

    #[test]
    fn records_of_the_previous_version_still_read() {
        let old = r#"{"name":"n","path":"/run/netns/n","created":true,"inode":5,"links":[
            {"host":"v","hostIndex":3,"guest":"eth0","guestIndex":2,"mac":"02:00:00:00:00:01",
             "addrs":[]}]}"#;
        let rec: Record = serde_json::from_str(old).unwrap();
        assert_eq!(rec.links[0].bridge, None);
        assert!(rec.bridges().is_empty());
        // Its interfaces are known by their index alone, its namespace file by being empty.
        assert_eq!(rec.group, 0);
        assert_eq!(rec.namespace_file(), None);
        assert_eq!(rec.host_claim(&rec.links[0]).index, 3);
    }
}
