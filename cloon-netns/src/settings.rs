//! The settings of one end of a link: its addresses (`addr=CIDR`, repeatable, IPv4 and IPv6), its
//! MAC address (`mac=MAC`) and its MTU (`mtu=N`), as written in `--veth` and in `link` ends, and
//! checked before anything is touched. Every error says what to write instead.

use cloon_core::{Error, Result};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// The smallest and largest MTU a veth accepts.
pub const MTU_RANGE: std::ops::RangeInclusive<u32> = 68..=65535;
/// The smallest MTU on which the kernel keeps IPv6.
pub const IPV6_MIN_MTU: u32 = 1280;

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

/// An Ethernet address.
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

/// Reads `mtu=N`.
pub fn parse_mtu(text: &str) -> Result<u32> {
    text.parse::<u32>()
        .ok()
        .filter(|n| MTU_RANGE.contains(n))
        .ok_or_else(|| {
            Error::invalid(format!(
                "mtu={text} is not an MTU: give a number from {} to {}, e.g. 1500",
                MTU_RANGE.start(),
                MTU_RANGE.end()
            ))
        })
}

/// What one end of a link is given: addresses in order, a MAC address (else the kernel picks a
/// random one), an MTU (else the kernel's default, 1500).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndSettings {
    pub addrs: Vec<Cidr>,
    pub mac: Option<Mac>,
    pub mtu: Option<u32>,
}

impl EndSettings {
    /// Takes the option `field` (`addr=...`, `mac=...`, `mtu=...`, each after `prefix`, as in
    /// `host-addr=...`) if it is one of this end's; says `false` if it is not.
    pub fn take(&mut self, prefix: &str, field: &str) -> Result<bool> {
        let Some((key, value)) = field.split_once('=') else {
            return Ok(false);
        };
        let Some(key) = key.strip_prefix(prefix) else {
            return Ok(false);
        };
        let named = |e: Error| Error::invalid(format!("{prefix}{}", e.msg));
        match key {
            "addr" => {
                let cidr: Cidr = value.parse().map_err(named)?;
                if self.addrs.contains(&cidr) {
                    return Err(Error::invalid(format!(
                        "{prefix}addr={cidr} is given twice: give each address once"
                    )));
                }
                self.addrs.push(cidr);
            }
            "mac" => {
                if self.mac.is_some() {
                    return Err(Error::invalid(format!(
                        "{prefix}mac= is given twice: an interface has one MAC address"
                    )));
                }
                self.mac = Some(value.parse().map_err(named)?);
            }
            "mtu" => {
                if self.mtu.is_some() {
                    return Err(Error::invalid(format!(
                        "{prefix}mtu= is given twice: an interface has one MTU"
                    )));
                }
                self.mtu = Some(parse_mtu(value).map_err(named)?);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Checks the settings together: an IPv6 address needs an MTU of at least 1280.
    pub fn check(&self, prefix: &str) -> Result<()> {
        if let (Some(mtu), Some(v6)) = (self.mtu, self.addrs.iter().find(|a| a.addr.is_ipv6())) {
            if mtu < IPV6_MIN_MTU {
                return Err(Error::invalid(format!(
                    "{prefix}addr={v6} needs {prefix}mtu={IPV6_MIN_MTU} or more: \
                     the kernel turns IPv6 off below it (given {prefix}mtu={mtu})"
                )));
            }
        }
        Ok(())
    }

    /// The addresses as the document writes them.
    pub fn addr_strings(&self) -> Vec<String> {
        self.addrs.iter().map(ToString::to_string).collect()
    }

    /// The MAC address as the document writes it: "" when the kernel is to choose it.
    pub fn mac_string(&self) -> String {
        self.mac.map(|m| m.to_string()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloon_core::Code;

    fn take(prefix: &str, fields: &[&str]) -> Result<EndSettings> {
        let mut end = EndSettings::default();
        for f in fields {
            assert!(end.take(prefix, f)?, "{f} not taken");
        }
        end.check(prefix)?;
        Ok(end)
    }

    fn err(prefix: &str, fields: &[&str]) -> String {
        let e = take(prefix, fields).unwrap_err();
        assert_eq!(e.code, Code::InvalidArgument);
        e.msg
    }

    #[test]
    fn reads_addresses_mac_and_mtu() {
        let end = take(
            "",
            &[
                "addr=10.0.0.2/24",
                "addr=FD00::2/64",
                "mac=02:AA:bb:00:00:01",
                "mtu=9000",
            ],
        )
        .unwrap();
        assert_eq!(end.addr_strings(), ["10.0.0.2/24", "fd00::2/64"]);
        assert_eq!(end.mac_string(), "02:aa:bb:00:00:01");
        assert_eq!(end.mac.unwrap().0, [2, 0xaa, 0xbb, 0, 0, 1]);
        assert_eq!(end.mtu, Some(9000));
        let end = take("host-", &["host-addr=10.0.0.1/24", "host-mtu=1400"]).unwrap();
        assert_eq!(end.addr_strings(), ["10.0.0.1/24"]);
        assert_eq!(end.mac_string(), "");
    }

    #[test]
    fn leaves_other_options_alone() {
        let mut end = EndSettings::default();
        assert!(!end.take("", "host-addr=10.0.0.1/24").unwrap());
        assert!(!end.take("host-", "addr=10.0.0.1/24").unwrap());
        assert!(!end.take("", "bridge=lan1").unwrap());
        assert!(!end.take("", "addr").unwrap());
        assert_eq!(end, EndSettings::default());
    }

    #[test]
    fn refuses_bad_values_with_what_to_write() {
        assert!(err("", &["addr=10.0.0.2"]).contains("e.g. 10.0.0.2/24"));
        assert!(err("", &["addr=10.0.0.2/33"]).contains("0 to 32"));
        assert!(err("", &["addr=fd00::1/129"]).contains("0 to 128"));
        assert!(err("", &["addr=10.0.0/24"]).contains("not an IP address"));
        assert!(err("", &["addr=224.0.0.1/4"]).contains("not a unicast"));
        assert!(err("", &["addr=0.0.0.0/0"]).contains("not a unicast"));
        assert!(err("", &["addr=10.0.0.2/24", "addr=10.0.0.2/24"]).contains("given twice"));
        assert!(err("", &["mac=02:00:00:00:00"]).contains("six hexadecimal bytes"));
        assert!(err("", &["mac=02:00:00:00:00:0g"]).contains("six hexadecimal bytes"));
        assert!(err("", &["mac=2:0:0:0:0:1"]).contains("six hexadecimal bytes"));
        assert!(err("", &["mac=01:00:5e:00:00:01"]).contains("multicast"));
        assert!(err("", &["mac=00:00:00:00:00:00"]).contains("all zeros"));
        assert!(err("", &["mac=02:00:00:00:00:01", "mac=02:00:00:00:00:02"]).contains("twice"));
        assert!(err("", &["mtu=67"]).contains("from 68 to 65535"));
        assert!(err("", &["mtu=65536"]).contains("from 68 to 65535"));
        assert!(err("", &["mtu=x"]).contains("e.g. 1500"));
        assert!(err("", &["mtu=1500", "mtu=1400"]).contains("twice"));
        let msg = err("host-", &["host-mtu=1000", "host-addr=fd00::1/64"]);
        assert!(msg.contains("host-mtu=1280 or more"), "{msg}");
        assert!(err("host-", &["host-mac=zz"]).starts_with("host-mac=zz"));
        take("", &["mtu=1000", "addr=10.0.0.1/24"]).unwrap();
    }
}
