//! The topology file as written: serde types that mirror containerlab's YAML, field for field,
//! for the subset cloon supports. Every struct denies unknown fields, so a field cloon does not
//! know (`ports:`, `startup-config:`, a typo) is an error that names the field and its line
//! instead of being silently ignored. Values that later checks may refuse carry their location
//! (`Spanned`), so that those checks can name the line too.
//!
//! Nothing here decides what a value means: [`super::resolve`] does, after the whole file has been
//! read.

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_saphyr::Spanned;
use std::fmt;

/// A string with the line it was read from.
pub type Str = Spanned<String>;

/// The whole file: `name:`, `topology:`, and cloon's `hosts:` (a lab spread over machines).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    pub name: Option<Str>,
    pub hosts: Option<Spanned<Entries<HostDef>>>,
    pub topology: Option<Spanned<Topology>>,
}

/// One machine of a lab spread over several (cloon's `hosts:`): the address the other hosts
/// reach it at, and optionally its underlay interface and its VXLAN UDP port.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostDef {
    pub address: Option<Str>,
    pub interface: Option<Str>,
    pub port: Option<Spanned<u32>>,
}

/// `topology:`: nodes, links, and the levels nodes inherit from.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    pub defaults: Option<Spanned<NodeDef>>,
    pub kinds: Option<Entries<NodeDef>>,
    pub groups: Option<Entries<NodeDef>>,
    pub nodes: Option<Entries<Option<NodeDef>>>,
    pub links: Option<Vec<Spanned<LinkDef>>>,
}

/// The fields a node, a group, a kind or the defaults may set. Every one is optional here: which
/// level sets what is resolved later (node > group > kind > defaults, as containerlab does).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeDef {
    pub kind: Option<Str>,
    pub group: Option<Str>,
    /// The machine it runs on (cloon's, with `hosts:`).
    pub host: Option<Str>,
    pub image: Option<Str>,
    pub cmd: Option<Str>,
    pub exec: Option<Vec<Str>>,
    pub env: Option<Entries<Scalar>>,
    pub binds: Option<Vec<Str>>,
    pub hostname: Option<Str>,
    pub sysctls: Option<Entries<Scalar>>,
    #[serde(rename = "cap-add")]
    pub cap_add: Option<Vec<Str>>,
}

/// One item of `links:`, in the brief form (`endpoints: ["a:eth1", "b:eth1"]`, with optional
/// `ipv4:`/`ipv6:` lists in endpoint order) or the extended one (`type: veth`, endpoints as maps).
/// `netem:` is cloon's own: the link's impairments.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkDef {
    #[serde(rename = "type")]
    pub kind: Option<Str>,
    pub endpoints: Option<Spanned<Vec<Spanned<EndpointDef>>>>,
    pub ipv4: Option<Vec<Str>>,
    pub ipv6: Option<Vec<Str>>,
    pub mtu: Option<Spanned<u32>>,
    pub netem: Option<Spanned<NetemDef>>,
}

/// One end of a link: `"node:interface"`, or a map.
#[derive(Debug)]
pub enum EndpointDef {
    Brief(String),
    Extended(Box<EndpointMap>),
}

/// The extended form of an endpoint (containerlab's fields).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointMap {
    pub node: Option<Str>,
    pub interface: Option<Str>,
    pub mac: Option<Str>,
    pub ipv4: Option<Str>,
    pub ipv6: Option<Str>,
}

/// `netem:` on a link, as written: each value a string with its unit (`10ms`, `1%`, `10mbit`)
/// or a bare number.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetemDef {
    pub delay: Option<Spanned<Scalar>>,
    pub jitter: Option<Spanned<Scalar>>,
    pub loss: Option<Spanned<Scalar>>,
    pub rate: Option<Spanned<Scalar>>,
    pub corrupt: Option<Spanned<Scalar>>,
    pub duplicate: Option<Spanned<Scalar>>,
}

/// A scalar read as text, whatever YAML typed it as: `env: {N: 3}` and `sysctls:
/// {net.ipv4.ip_forward: 1}` hold numbers that are meant as strings.
#[derive(Debug, Clone, PartialEq)]
pub struct Scalar(pub String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, a number or a boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for EndpointDef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = EndpointDef;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("\"node:interface\" or a map with node and interface")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<EndpointDef, E> {
                Ok(EndpointDef::Brief(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<EndpointDef, A::Error> {
                EndpointMap::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|m| EndpointDef::Extended(Box::new(m)))
            }
        }
        d.deserialize_any(V)
    }
}

/// A YAML mapping read in file order, each key with its location, duplicates kept (the
/// resolver refuses them with both lines). containerlab's `nodes:`, `kinds:`, `env:` are maps.
#[derive(Debug)]
pub struct Entries<T>(pub Vec<(Str, T)>);

impl<T> Default for Entries<T> {
    fn default() -> Self {
        Entries(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Entries<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Entries<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries<T>, A::Error> {
                let mut out = Vec::new();
                while let Some(key) = map.next_key::<Str>()? {
                    let value = map.next_value::<T>()?;
                    out.push((key, value));
                }
                Ok(Entries(out))
            }
            // `nodes:` with nothing under it.
            fn visit_unit<E: de::Error>(self) -> Result<Entries<T>, E> {
                Ok(Entries(Vec::new()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, _seq: A) -> Result<Entries<T>, A::Error> {
                Err(de::Error::custom(
                    "expected a map (NAME: value), found a list (- item)",
                ))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}
