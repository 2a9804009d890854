//! The `--veth HOST:GUEST[,addr=CIDR]...[,mac=MAC]` flag: parsing and validation, before anything
//! is touched. Every error says what to write instead.

use cloon_core::{name, Error, Result};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// The syntax of `--veth`, quoted in error messages.
pub const VETH_SYNTAX: &str =
    "HOST:GUEST[,addr=CIDR]...[,mac=MAC], e.g. vgt_1_1_0:eth0,addr=10.0.0.2/24";

/// One veth pair to create: `host` end in the caller's namespace, `guest` end in the target one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VethSpec {
    pub host: String,
    pub guest: String,
    /// Addresses of the guest end, in the order given.
    pub addrs: Vec<Cidr>,
    /// MAC address of the guest end; the kernel picks a random one when absent.
    pub mac: Option<Mac>,
}

/// An IPv4 or IPv6 address with its prefix length (`10.0.0.2/24`, `fd00::2/64`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Cidr {
    type Err = Error;

    fn from_str(s: &str) -> Result<Cidr> {
        let Some((addr, prefix)) = s.split_once('/') else {
            return Err(Error::invalid(format!(
                "addr={s} has no prefix length: write it as ADDRESS/PREFIX, e.g. {s}/24"
            )));
        };
        let addr: IpAddr = addr.parse().map_err(|_| {
            Error::invalid(format!(
                "addr={s}: \"{addr}\" is not an IP address: write e.g. 10.0.0.2/24 or fd00::2/64"
            ))
        })?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "addr={s}: the prefix length \"{prefix}\" is not a number from 0 to {max}"
                ))
            })?;
        if addr.is_unspecified() || addr.is_multicast() {
            return Err(Error::invalid(format!(
                "addr={s} is not a unicast address: give the interface's own address"
            )));
        }
        Ok(Cidr { addr, prefix })
    }
}

/// An Ethernet address for the guest end of a veth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mac(pub [u8; 6]);

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_mac(&self.0))
    }
}

impl FromStr for Mac {
    type Err = Error;

    fn from_str(s: &str) -> Result<Mac> {
        let bad = || {
            Error::invalid(format!(
                "mac={s} is not a MAC address: write six hexadecimal bytes separated by ':', \
                 e.g. 02:00:0a:00:00:02"
            ))
        };
        let parts: Vec<&str> = s.split(':').collect();
        if parts.len() != 6 {
            return Err(bad());
        }
        let mut bytes = [0u8; 6];
        for (byte, part) in bytes.iter_mut().zip(&parts) {
            if part.len() != 2 {
                return Err(bad());
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| bad())?;
        }
        if bytes[0] & 1 == 1 {
            return Err(Error::invalid(format!(
                "mac={s} is a multicast address: an interface needs an even first byte, \
                 e.g. 02:00:0a:00:00:02"
            )));
        }
        if bytes == [0; 6] {
            return Err(Error::invalid(format!(
                "mac={s} is all zeros: give a real address, e.g. 02:00:0a:00:00:02"
            )));
        }
        Ok(Mac(bytes))
    }
}

/// Formats a hardware address the way `ip link` shows it: lower-case hex bytes joined by ':'.
pub fn format_mac(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
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
        addrs: Vec::new(),
        mac: None,
    };
    for field in fields {
        match field.split_once('=') {
            Some(("addr", cidr)) => {
                let cidr: Cidr = cidr.parse().map_err(context)?;
                if spec.addrs.contains(&cidr) {
                    return Err(context(Error::invalid(format!(
                        "addr={cidr} is given twice: give each address once"
                    ))));
                }
                spec.addrs.push(cidr);
            }
            Some(("mac", mac)) => {
                if spec.mac.is_some() {
                    return Err(context(Error::invalid(
                        "mac= is given twice: an interface has one MAC address",
                    )));
                }
                spec.mac = Some(mac.parse().map_err(context)?);
            }
            _ => {
                return Err(Error::invalid(format!(
                    "--veth {value}: unknown option \"{field}\": use addr=CIDR or mac=MAC, \
                     as in {VETH_SYNTAX}"
                )))
            }
        }
    }
    Ok(spec)
}

/// Parses every `--veth` value and checks that they fit together: distinct host names, distinct
/// guest names, no guest named `lo` (every namespace has one).
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

#[cfg(test)]
mod tests {
    use super::*;
    use cloon_core::Code;

    fn err(value: &str) -> String {
        let e = parse_veth(value).unwrap_err();
        assert_eq!(e.code, Code::InvalidArgument);
        e.msg
    }

    #[test]
    fn parses_the_articles_pair() {
        let v = parse_veth("vgt_1_1_0:eth0").unwrap();
        assert_eq!(
            v,
            VethSpec {
                host: "vgt_1_1_0".into(),
                guest: "eth0".into(),
                addrs: vec![],
                mac: None
            }
        );
    }

    #[test]
    fn parses_addresses_and_mac() {
        let v = parse_veth("vgt_1_1_0:eth0,addr=10.0.0.2/24,addr=FD00::2/64,mac=02:AA:bb:00:00:01")
            .unwrap();
        let addrs: Vec<String> = v.addrs.iter().map(ToString::to_string).collect();
        assert_eq!(addrs, ["10.0.0.2/24", "fd00::2/64"]);
        assert_eq!(v.mac.unwrap().to_string(), "02:aa:bb:00:00:01");
        assert_eq!(v.mac.unwrap().0, [2, 0xaa, 0xbb, 0, 0, 1]);
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
        assert!(err("a:b,ip=10.0.0.1/24").contains("use addr=CIDR or mac=MAC"));
        assert!(err("a:b,addr").contains("unknown option"));
        assert!(err("a:b,").contains("unknown option"));
        assert!(err("a:b,addr=10.0.0.2").contains("e.g. 10.0.0.2/24"));
        assert!(err("a:b,addr=10.0.0.2/33").contains("0 to 32"));
        assert!(err("a:b,addr=fd00::1/129").contains("0 to 128"));
        assert!(err("a:b,addr=10.0.0/24").contains("not an IP address"));
        assert!(err("a:b,addr=224.0.0.1/4").contains("not a unicast"));
        assert!(err("a:b,addr=0.0.0.0/0").contains("not a unicast"));
        assert!(err("a:b,addr=10.0.0.2/24,addr=10.0.0.2/24").contains("given twice"));
        assert!(err("a:b,mac=02:00:00:00:00").contains("six hexadecimal bytes"));
        assert!(err("a:b,mac=02:00:00:00:00:0g").contains("six hexadecimal bytes"));
        assert!(err("a:b,mac=2:0:0:0:0:1").contains("six hexadecimal bytes"));
        assert!(err("a:b,mac=01:00:5e:00:00:01").contains("multicast"));
        assert!(err("a:b,mac=00:00:00:00:00:00").contains("all zeros"));
        assert!(err("a:b,mac=02:00:00:00:00:01,mac=02:00:00:00:00:02").contains("twice"));
        assert!(err("a:b,mac=zz").starts_with("--veth a:b,mac=zz: "));
    }

    #[test]
    fn checks_pairs_together() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(parse_veths(&v(&["a:eth0", "b:eth1"])).unwrap().len(), 2);
        assert!(parse_veths(&[]).unwrap().is_empty());
        let e = parse_veths(&v(&["a:eth0", "a:eth1"])).unwrap_err();
        assert!(e.msg.contains("host-side name a"), "{}", e.msg);
        let e = parse_veths(&v(&["a:eth0", "b:eth0"])).unwrap_err();
        assert!(e.msg.contains("guest-side name eth0"), "{}", e.msg);
        let e = parse_veths(&v(&["a:lo"])).unwrap_err();
        assert!(e.msg.contains("already has lo"), "{}", e.msg);
        assert_eq!(e.code, Code::InvalidArgument);
    }
}
