//! What `up` records under the state directory (`<state>/<name>/netns.json`): enough to undo
//! safely and to tell cloon's objects from look-alikes.

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
    /// not cloon's.
    pub inode: u64,
    /// The veth pairs created so far, in order.
    #[serde(default)]
    pub links: Vec<LinkRecord>,
}

/// One veth pair cloon created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkRecord {
    pub host: String,
    /// The host end's ifindex: an interface of that name with another index is not cloon's.
    pub host_index: u32,
    pub guest: String,
    /// The guest end's ifindex inside the namespace (0 until known).
    pub guest_index: u32,
    /// The guest end's MAC address, lower-case ("" until known).
    pub mac: String,
    pub addrs: Vec<String>,
}

impl Record {
    /// The document's `netns` part this record stands for.
    pub fn to_part(&self) -> doc::Netns {
        doc::Netns {
            name: self.name.clone(),
            path: self.path.clone(),
            links: self
                .links
                .iter()
                .map(|l| doc::Link {
                    host: l.host.clone(),
                    guest: l.guest.clone(),
                    mac: l.mac.clone(),
                    addrs: l.addrs.clone(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips_and_maps_to_the_part() {
        let rec = Record {
            name: "cloonix_1_1".into(),
            path: "/run/netns/cloonix_1_1".into(),
            created: true,
            inode: 4026532000,
            links: vec![LinkRecord {
                host: "vgt_1_1_0".into(),
                host_index: 7,
                guest: "eth0".into(),
                guest_index: 2,
                mac: "02:00:00:00:00:01".into(),
                addrs: vec!["10.0.0.2/24".into()],
            }],
        };
        let text = serde_json::to_string(&rec).unwrap();
        assert!(text.contains("\"hostIndex\":7"), "{text}");
        assert_eq!(serde_json::from_str::<Record>(&text).unwrap(), rec);
        let part = rec.to_part();
        assert_eq!(part.links[0].mac, "02:00:00:00:00:01");
        assert_eq!(part.path, "/run/netns/cloonix_1_1");
    }
}
