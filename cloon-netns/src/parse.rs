//! The `--veth HOST:GUEST[,OPTION]...` flag: parsing and validation, before anything is touched.
//! Every error says what to write instead.
//!
//! Options: `addr=CIDR` (repeatable), `mac=MAC`, `mtu=N` for the guest end; the same with `host-`
//! (`host-addr=`, `host-mac=`, `host-mtu=`) for the host end; `bridge=BR` to make the host end a
//! port of the Linux bridge BR.

use crate::settings::EndSettings;
use cloon_core::{name, Error, Result};

/// The syntax of `--veth`, quoted in error messages.
pub const VETH_SYNTAX: &str = "HOST:GUEST[,addr=CIDR]...[,mac=MAC][,mtu=N]\
[,host-addr=CIDR]...[,host-mac=MAC][,host-mtu=N][,bridge=BR], \
e.g. vgt_1_1_0:eth0,addr=10.0.0.2/24,bridge=lan1";

/// The prefix of the host end's options.
pub const HOST_PREFIX: &str = "host-";

/// One veth pair to create: `host` end in the caller's namespace, `guest` end in the target one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VethSpec {
    pub host: String,
    pub guest: String,
    /// Addresses, MAC address and MTU of the guest end.
    pub guest_end: EndSettings,
    /// Addresses, MAC address and MTU of the host end.
    pub host_end: EndSettings,
    /// The bridge the host end joins.
    pub bridge: Option<String>,
}

/// Parses one `--veth` value.
pub fn parse_veth(value: &str) -> Result<VethSpec> {
    let context = |e: Error| Error::invalid(format!("--veth {value}: {}", e.msg));
    let mut fields = value.split(',');
    let pair = fields.next().unwrap_or_default();
    let Some((host, guest)) = pair.split_once(':') else {
        return Err(Error::invalid(format!(
            "--veth {value}: the pair \"{pair}\" has no ':': write {VETH_SYNTAX}"
        )));
    };
    name::interface(host).map_err(|e| context(Error::invalid(format!("host side: {}", e.msg))))?;
    name::interface(guest)
        .map_err(|e| context(Error::invalid(format!("guest side: {}", e.msg))))?;
    let mut spec = VethSpec {
        host: host.into(),
        guest: guest.into(),
        guest_end: EndSettings::default(),
        host_end: EndSettings::default(),
        bridge: None,
    };
    for field in fields {
        if spec.guest_end.take("", field).map_err(context)?
            || spec.host_end.take(HOST_PREFIX, field).map_err(context)?
        {
            continue;
        }
        match field.split_once('=') {
            Some(("bridge", bridge)) => {
                if spec.bridge.is_some() {
                    return Err(context(Error::invalid(
                        "bridge= is given twice: a host end joins one bridge",
                    )));
                }
                name::interface(bridge)
                    .map_err(|e| context(Error::invalid(format!("bridge={bridge}: {}", e.msg))))?;
                if bridge == host {
                    return Err(context(Error::invalid(format!(
                        "bridge={bridge} is the host end's own name: name the bridge e.g. lan1"
                    ))));
                }
                spec.bridge = Some(bridge.into());
            }
            _ => {
                return Err(Error::invalid(format!(
                    "--veth {value}: unknown option \"{field}\": use addr=, mac=, mtu= \
                     (guest end), host-addr=, host-mac=, host-mtu= (host end) or bridge=, \
                     as in {VETH_SYNTAX}"
                )))
            }
        }
    }
    spec.guest_end.check("").map_err(context)?;
    spec.host_end.check(HOST_PREFIX).map_err(context)?;
    Ok(spec)
}

/// Parses every `--veth` value and checks that they fit together: distinct host names, distinct
/// guest names, no guest named `lo` (every namespace has one), no bridge named like a host end.
pub fn parse_veths(values: &[String]) -> Result<Vec<VethSpec>> {
    let specs = values
        .iter()
        .map(|v| parse_veth(v))
        .collect::<Result<Vec<_>>>()?;
    for (i, spec) in specs.iter().enumerate() {
        if spec.guest == "lo" {
            return Err(Error::invalid(format!(
                "--veth {}:lo: every namespace already has lo: name the guest side e.g. eth0",
                spec.host
            )));
        }
        if let Some(other) = specs
            .iter()
            .find(|o| o.bridge.as_deref() == Some(spec.host.as_str()))
        {
            return Err(Error::invalid(format!(
                "{} is both a host end and the bridge of --veth {}:{}: give the bridge another \
                 name",
                spec.host, other.host, other.guest
            )));
        }
        for other in &specs[..i] {
            if other.host == spec.host {
                return Err(Error::invalid(format!(
                    "host-side name {} is used by two --veth flags: give each pair its own",
                    spec.host
                )));
            }
            if other.guest == spec.guest {
                return Err(Error::invalid(format!(
                    "guest-side name {} is used by two --veth flags: give each pair its own, \
                     e.g. eth0 and eth1",
                    spec.guest
                )));
            }
        }
    }
    Ok(specs)
}

/// The bridges the pairs join, each once, in the order of first use.
pub fn bridges(specs: &[VethSpec]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for b in specs.iter().filter_map(|s| s.bridge.as_ref()) {
        if !names.contains(b) {
            names.push(b.clone());
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloon_core::Code;

    fn err(value: &str) -> String {
        let e = parse_veth(value).unwrap_err();
        assert_eq!(e.code, Code::InvalidArgument);
        e.msg
    }

    fn strings(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn parses_the_articles_pair() {
        let v = parse_veth("vgt_1_1_0:eth0").unwrap();
        assert_eq!(
            v,
            VethSpec {
                host: "vgt_1_1_0".into(),
                guest: "eth0".into(),
                guest_end: EndSettings::default(),
                host_end: EndSettings::default(),
                bridge: None,
            }
        );
    }

    #[test]
    fn the_older_syntax_still_means_the_guest_end() {
        let v = parse_veth("vgt_1_1_0:eth0,addr=10.0.0.2/24,addr=FD00::2/64,mac=02:AA:bb:00:00:01")
            .unwrap();
        assert_eq!(v.guest_end.addr_strings(), ["10.0.0.2/24", "fd00::2/64"]);
        assert_eq!(v.guest_end.mac_string(), "02:aa:bb:00:00:01");
        assert_eq!(v.host_end, EndSettings::default());
    }

    #[test]
    fn parses_both_ends_and_a_bridge() {
        let v = parse_veth(
            "vgt_1_1_0:eth0,addr=10.0.0.2/24,mtu=1400,host-addr=10.0.0.1/24,\
             host-addr=fd00::1/64,host-mac=02:00:00:00:00:01,host-mtu=1400,bridge=lan1",
        )
        .unwrap();
        assert_eq!(v.guest_end.mtu, Some(1400));
        assert_eq!(v.host_end.addr_strings(), ["10.0.0.1/24", "fd00::1/64"]);
        assert_eq!(v.host_end.mac_string(), "02:00:00:00:00:01");
        assert_eq!(v.host_end.mtu, Some(1400));
        assert_eq!(v.bridge.as_deref(), Some("lan1"));
    }

    #[test]
    fn refuses_bad_pairs_with_what_to_write() {
        assert!(err("vgt_1_1_0").contains("write HOST:GUEST"));
        assert!(err("").contains("has no ':'"));
        assert!(err(":eth0").contains("host side"));
        assert!(err("vgt:").contains("guest side"));
        assert!(err("abcdefghijklmnop:eth0").contains("at most 15"));
        assert!(err("vgt:eth0:1").contains("guest side"));
        assert!(err("vgt/x:eth0").contains("contains '/'"));
    }

    #[test]
    fn refuses_bad_options() {
        assert!(err("a:b,ip=10.0.0.1/24").contains("use addr=, mac=, mtu="));
        assert!(err("a:b,addr").contains("unknown option"));
        assert!(err("a:b,").contains("unknown option"));
        assert!(err("a:b,host-ip=1").contains("unknown option"));
        assert!(err("a:b,addr=10.0.0.2").contains("e.g. 10.0.0.2/24"));
        assert!(
            err("a:b,host-addr=10.0.0.2").starts_with("--veth a:b,host-addr=10.0.0.2: host-addr=")
        );
        assert!(err("a:b,mac=zz").starts_with("--veth a:b,mac=zz: "));
        assert!(err("a:b,mtu=1000,addr=fd00::2/64").contains("mtu=1280 or more"));
        assert!(err("a:b,bridge=x,bridge=y").contains("twice"));
        assert!(err("a:b,bridge=abcdefghijklmnop").contains("at most 15"));
        assert!(err("a:b,bridge=a").contains("host end's own name"));
        assert!(err("a:b,bridge=").contains("bridge="));
    }

    #[test]
    fn checks_pairs_together() {
        assert_eq!(
            parse_veths(&strings(&["a:eth0", "b:eth1"])).unwrap().len(),
            2
        );
        assert!(parse_veths(&[]).unwrap().is_empty());
        let e = parse_veths(&strings(&["a:eth0", "a:eth1"])).unwrap_err();
        assert!(e.msg.contains("host-side name a"), "{}", e.msg);
        let e = parse_veths(&strings(&["a:eth0", "b:eth0"])).unwrap_err();
        assert!(e.msg.contains("guest-side name eth0"), "{}", e.msg);
        let e = parse_veths(&strings(&["a:lo"])).unwrap_err();
        assert!(e.msg.contains("already has lo"), "{}", e.msg);
        assert_eq!(e.code, Code::InvalidArgument);
        let e = parse_veths(&strings(&["a:eth0,bridge=b", "b:eth1"])).unwrap_err();
        assert!(
            e.msg.contains("both a host end and the bridge"),
            "{}",
            e.msg
        );
    }

    #[test]
    fn bridges_are_listed_once_in_order_of_use() {
        let specs = parse_veths(&strings(&[
            "a:eth0,bridge=lan2",
            "b:eth1",
            "c:eth2,bridge=lan1",
            "d:eth3,bridge=lan2",
        ]))
        .unwrap();
        assert_eq!(bridges(&specs), ["lan2", "lan1"]);
    }
}
