//! Helpers of the cloon-netns test files (bridges, point-to-point links, explain, graph): running
//! the tool in a sandbox and reading the kernel's state through `ip`.

#![allow(dead_code)]

use cloon_tests::{Run, Sandbox};
use serde_json::Value;
use std::collections::BTreeMap;

pub const STAGE: &str = "cloon-netns";

/// Runs cloon-netns in the sandbox.
pub fn netns(sb: &Sandbox, args: &[&str], stdin: &str) -> Run {
    sb.tool(STAGE, args, stdin)
}

/// Asserts success and returns stdout as JSON.
pub fn json_ok(run: Run) -> Value {
    let out = run.ok();
    serde_json::from_str(&out).expect("json")
}

/// The one-line `ip -o link show NAME` of an interface of the sandbox, "" when missing.
pub fn link(sb: &Sandbox, name: &str) -> String {
    sb.sh(&format!("ip -o link show {name} 2>/dev/null; true"))
        .ok()
}

/// The one-line `ip -o link show NAME` of an interface of the namespace `ns`, "" when missing.
pub fn link_in(sb: &Sandbox, ns: &str, name: &str) -> String {
    sb.sh(&format!("ip -n {ns} -o link show {name} 2>/dev/null; true"))
        .ok()
}

/// Runs a command inside the named namespace of the sandbox.
pub fn inside(sb: &Sandbox, ns: &str, cmd: &str) -> String {
    sb.sh(&format!("ip netns exec {ns} {cmd}")).ok()
}

/// Whether an `ip -o link` line has the UP flag.
pub fn is_up(ip_link_line: &str) -> bool {
    let flags = ip_link_line
        .split('<')
        .nth(1)
        .and_then(|s| s.split('>').next())
        .unwrap_or("");
    flags.split(',').any(|f| f == "UP")
}

/// The ifindex at the start of an `ip -o link` line.
pub fn ifindex(ip_link_line: &str) -> String {
    ip_link_line.split(':').next().unwrap_or("").to_string()
}

/// The named namespaces of the sandbox.
pub fn namespaces(sb: &Sandbox) -> Vec<String> {
    sb.sh("ls /run/netns 2>/dev/null; true")
        .ok()
        .lines()
        .map(String::from)
        .collect()
}

/// Whether `from` (a namespace) reaches `addr` with one ping, through busybox (no ping is
/// needed on the host).
pub fn pings(sb: &Sandbox, from: &str, addr: &str) -> bool {
    sb.sh(&format!(
        "ip netns exec {from} busybox ping -c 1 -W 3 {addr} >/dev/null 2>&1 && echo yes; true"
    ))
    .ok()
    .trim()
        == "yes"
}

/// The kernel's network state of the sandbox, without what differs from one run to the next
/// (ifindexes, random MAC addresses): for the sandbox's own namespace ("host") and each named
/// namespace, each interface's name, kind, administrative state, MTU, bridge, group, alias and
/// addresses (with their prefix; link-local ones left out).
pub fn snapshot(sb: &Sandbox) -> BTreeMap<String, Vec<Value>> {
    let mut places = vec![("host".to_string(), "ip".to_string())];
    for ns in namespaces(sb) {
        places.push((ns.clone(), format!("ip -n {ns}")));
    }
    let mut out = BTreeMap::new();
    for (place, ip) in places {
        let parse = |cmd: String| -> Vec<Value> {
            let text = sb.sh(&cmd).ok();
            match serde_json::from_str(&text) {
                Ok(Value::Array(items)) => items,
                _ => panic!("{cmd}: not a JSON array: {text}"),
            }
        };
        let links = parse(format!("{ip} -j -d link show"));
        let addrs = parse(format!("{ip} -j addr show"));
        let mut ifaces: Vec<Value> = links
            .iter()
            .map(|l| {
                let name = l["ifname"].as_str().unwrap_or_default();
                let flags: Vec<&str> = l["flags"]
                    .as_array()
                    .map(|f| f.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let addrs: Vec<String> = addrs
                    .iter()
                    .filter(|a| a["ifname"] == name)
                    .flat_map(|a| a["addr_info"].as_array().cloned().unwrap_or_default())
                    .filter(|i| i["scope"] != "link")
                    .map(|i| format!("{}/{}", i["local"].as_str().unwrap_or("?"), i["prefixlen"]))
                    .collect();
                serde_json::json!({
                    "ifname": name,
                    "kind": l["linkinfo"]["info_kind"],
                    "up": flags.contains(&"UP"),
                    "mtu": l["mtu"],
                    "master": l["master"],
                    "group": l["group"],
                    "alias": l["ifalias"],
                    "addrs": addrs,
                })
            })
            .collect();
        ifaces.sort_by_key(|i| i["ifname"].as_str().unwrap_or_default().to_string());
        out.insert(place, ifaces);
    }
    out
}

/// The files under the sandbox's state root (cloon's records), sorted.
pub fn records(sb: &Sandbox) -> String {
    sb.sh("cd /run/cloon 2>/dev/null && find . ! -name .cloon-state | sort; true")
        .ok()
}
