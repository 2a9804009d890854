//! The JSON document that flows through a cloon pipeline.
//!
//! One object, `cloonVersion` first. Each stage owns one key (`image`, `overlay`, `netns`,
//! `bundle`, `container`) and never changes another's; unknown keys pass through untouched and in
//! their order, so the output is deterministic.

use crate::error::{Code, Error, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The document version this build reads and writes.
pub const VERSION: &str = "1";

/// A cloon document: an ordered JSON object.
#[derive(Debug, Clone, PartialEq)]
pub struct Document(Map<String, Value>);

impl Default for Document {
    fn default() -> Self {
        Document::new()
    }
}

impl Document {
    /// An empty document holding only `cloonVersion`.
    pub fn new() -> Self {
        let mut map = Map::new();
        map.insert("cloonVersion".into(), Value::String(VERSION.into()));
        Document(map)
    }

    /// Parses a document. Empty input (only white space) is no document at all.
    pub fn parse(text: &str) -> Result<Option<Document>> {
        if text.trim().is_empty() {
            return Ok(None);
        }
        let value: Value = serde_json::from_str(text).map_err(|e| {
            Error::new(
                Code::Decode,
                "the standard input is not a cloon JSON document",
            )
            .details(format!(
                "{e}; give the output of another cloon tool, or no input"
            ))
        })?;
        let Value::Object(map) = value else {
            return Err(Error::new(
                Code::Decode,
                "the cloon document must be a JSON object",
            ));
        };
        let doc = Document(map);
        if doc.error().is_none() {
            match doc.0.get("cloonVersion") {
                Some(Value::String(v)) if v == VERSION => {}
                Some(v) => {
                    return Err(Error::new(
                        Code::IncompatibleVersion,
                        format!("this tool reads cloonVersion \"{VERSION}\", the document has {v}"),
                    ))
                }
                None => {
                    return Err(Error::new(
                        Code::Decode,
                        "the document has no cloonVersion: it was not written by a cloon tool",
                    ))
                }
            }
        }
        Ok(Some(doc))
    }

    /// The error object of an error document, if this is one.
    pub fn error(&self) -> Option<&Value> {
        self.0.get("error")
    }

    /// The error document for `err`, raised by `stage`.
    pub fn from_error(stage: &str, err: &Error) -> Document {
        Document::new().with_error(stage, err)
    }

    /// This document with `err`, raised by `stage`, added: the error document of a stage that
    /// failed on this input keeps the name and every part made before the failure, so that the
    /// teardown pipeline (`cloon-run down | ... | cloon-overlay down`) undoes them.
    pub fn with_error(mut self, stage: &str, err: &Error) -> Document {
        let doc = &mut self;
        doc.0.insert(
            "error".into(),
            serde_json::json!({
                "code": err.code.number(),
                "stage": stage,
                "msg": err.msg,
                "details": err.details,
            }),
        );
        self
    }

    /// The exit status an error document asks for (its code, or 1).
    pub fn error_status(&self) -> Option<u8> {
        let err = self.error()?;
        let code = err.get("code").and_then(Value::as_u64).unwrap_or(1);
        Some(u8::try_from(code).ok().filter(|&c| c != 0).unwrap_or(1))
    }

    /// The container's name, which every stage's state is filed under.
    pub fn name(&self) -> Option<&str> {
        self.0.get("name").and_then(Value::as_str)
    }

    /// Sets the name; a different name already in the document is an error.
    pub fn set_name(&mut self, name: &str) -> Result<()> {
        if let Some(old) = self.name() {
            if old != name {
                return Err(Error::config(format!(
                    "the document is for \"{old}\", not \"{name}\": drop --name or use another document"
                )));
            }
            return Ok(());
        }
        self.0.insert("name".into(), Value::String(name.into()));
        Ok(())
    }

    /// Reads the part a stage wrote under `key`, if present.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => T::deserialize(v).map(Some).map_err(|e| {
                Error::config(format!("the document's \"{key}\" part is malformed")).details(e)
            }),
        }
    }

    /// Writes (or replaces) this stage's part.
    pub fn set<T: Serialize>(&mut self, key: &str, part: &T) {
        // Serializing plain data structs into a Value cannot fail.
        let value = serde_json::to_value(part).unwrap_or(Value::Null);
        self.0.insert(key.into(), value);
    }

    /// Removes this stage's part (after `down`).
    pub fn remove(&mut self, key: &str) {
        self.0.shift_remove(key);
    }

    /// The part `P`, if the document has it.
    pub fn part<P: Part>(&self) -> Result<Option<P>> {
        self.get(P::KEY)
    }

    /// Writes (or replaces) the part `P`.
    pub fn set_part<P: Part>(&mut self, part: &P) {
        self.set(P::KEY, part)
    }

    /// The document as pretty JSON with a final newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(&self.0).unwrap_or_else(|_| "{}".into());
        s.push('\n');
        s
    }
}

/// One stage's part of the document: its type, and the key it is filed under, named here once.
pub trait Part: Serialize + DeserializeOwned {
    /// The document's key of this part.
    const KEY: &'static str;
}

impl Part for Image {
    const KEY: &'static str = "image";
}
impl Part for Overlay {
    const KEY: &'static str = "overlay";
}
impl Part for Netns {
    const KEY: &'static str = "netns";
}
impl Part for LinkPart {
    const KEY: &'static str = "link";
}
impl Part for VxlanPart {
    const KEY: &'static str = "vxlan";
}
impl Part for Bundle {
    const KEY: &'static str = "bundle";
}
impl Part for Container {
    const KEY: &'static str = "container";
}

#[cfg(feature = "schema")]
macro_rules! ipv4 {
    () => {
        r"((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
    };
}
#[cfg(feature = "schema")]
macro_rules! ipv6 {
    () => {
        concat!(r"([0-9A-Fa-f]{0,4}:){2,7}([0-9A-Fa-f]{0,4}|", ipv4!(), ")")
    };
}

/// The patterns of the schema: what the tools accept (see [`crate::name`]).
#[cfg(feature = "schema")]
mod pattern {
    /// A container name ([`crate::name::container`]): at most 64 bytes, no '/', no white space.
    pub const NAME: &str = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$";
    /// An interface name ([`crate::name::interface`]): at most 15 bytes.
    pub const IFNAME: &str = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$";
    /// A namespace's name: a name ([`crate::name::netns`]), or the file name of a path.
    pub const NETNS: &str = r"^[^/]+$";
    /// An absolute path.
    pub const ABSOLUTE: &str = r"^/";
    /// A loop device, or the shell variable of a `--dry-run` script.
    pub const LOOP: &str = r"^(/|\$loop$)";
    /// A MAC address (six hex pairs), or "" when the kernel is to choose it (`--dry-run`).
    pub const MAC: &str = r"^(([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2})?$";
    /// An IPv4 or IPv6 address.
    pub const IP: &str = concat!("^(", ipv4!(), "|", ipv6!(), ")$");
    /// An IPv4 or IPv6 address with its prefix length.
    pub const CIDR: &str = concat!(
        "^(",
        ipv4!(),
        "/(3[0-2]|[12]?[0-9])|",
        ipv6!(),
        "/(12[0-8]|1[01][0-9]|[1-9]?[0-9]))$"
    );
}

/// `image`: the ext4 file holding a root filesystem (cloon-img).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
pub struct Image {
    /// The image file, absolute.
    #[cfg_attr(feature = "schema", schemars(regex(pattern = pattern::ABSOLUTE)))]
    pub path: String,
    /// The filesystem in it: ext4 (ext2 and ext3 images are read too).
    #[cfg_attr(feature = "schema", schemars(extend("enum" = ["ext4", "ext3", "ext2"])))]
    pub fstype: String,
    /// The file's size in bytes.
    pub bytes: u64,
    /// What the image's maker says to run in it (an OCI image's Entrypoint and Cmd, Env and
    /// WorkingDir); cloon-spec uses it when it is given no command. Absent for other images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "ImageConfig"))]
    pub config: Option<ImageConfig>,
}

/// The default process of an image: `image.config`. Written only when it has something (an empty
/// list or no working directory is left out).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(
    feature = "schema",
    schemars(deny_unknown_fields, extend("minProperties" = 1))
)]
pub struct ImageConfig {
    /// The command and its arguments (an OCI image's Entrypoint followed by its Cmd).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub args: Vec<String>,
    /// `KEY=VALUE` entries, merged under cloon-spec's `--env`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub env: Vec<String>,
    /// The working directory in the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "String", length(min = 1)))]
    pub cwd: Option<String>,
}

/// `overlay`: the loop device and the copy-on-write root filesystem (cloon-overlay).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
pub struct Overlay {
    /// The loop device (`/dev/loopN`), or `$loop` in a `--dry-run` document (the shell variable
    /// its script sets).
    #[serde(rename = "loop")]
    #[cfg_attr(feature = "schema", schemars(regex(pattern = pattern::LOOP)))]
    pub loop_dev: String,
    /// The image's shared lower directory, absolute.
    #[cfg_attr(feature = "schema", schemars(regex(pattern = pattern::ABSOLUTE)))]
    pub lower: String,
    /// The container's upper directory, absolute.
    #[cfg_attr(feature = "schema", schemars(regex(pattern = pattern::ABSOLUTE)))]
    pub upper: String,
    /// The overlay's work directory, absolute.
    #[cfg_attr(feature = "schema", schemars(regex(pattern = pattern::ABSOLUTE)))]
    pub work: String,
    /// The container's root filesystem, absolute.
    #[cfg_attr(feature = "schema", schemars(regex(pattern = pattern::ABSOLUTE)))]
    pub rootfs: String,
}

/// `netns`: the named network namespace and its veth pairs (cloon-netns).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
pub struct Netns {
    /// The namespace's name (`cloonix_1_1`, or the file name of a path given to `--netns`).
    #[cfg_attr(feature = "schema", schemars(regex(pattern = pattern::NETNS)))]
    pub name: String,
    /// The namespace file, absolute.
    #[cfg_attr(feature = "schema", schemars(regex(pattern = pattern::ABSOLUTE)))]
    pub path: String,
    #[serde(default)]
    pub links: Vec<Link>,
}

/// One veth pair: `host` end in the caller's namespace, `guest` end in the container's. `mac`,
/// `addrs` and `mtu` are the guest end's; the `host...` fields the host end's. Optional fields are
/// left out when unset, so documents of older versions read the same.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
#[serde(rename_all = "camelCase")]
pub struct Link {
    #[cfg_attr(feature = "schema", schemars(regex(pattern = pattern::IFNAME), length(max = 15)))]
    pub host: String,
    #[cfg_attr(feature = "schema", schemars(regex(pattern = pattern::IFNAME), length(max = 15)))]
    pub guest: String,
    #[cfg_attr(feature = "schema", schemars(regex(pattern = pattern::MAC)))]
    pub mac: String,
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(inner(regex(pattern = pattern::CIDR))))]
    pub addrs: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 68, max = 65535)))]
    pub mtu: Option<u32>,
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(regex(pattern = pattern::MAC)))]
    pub host_mac: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "schema", schemars(inner(regex(pattern = pattern::CIDR))))]
    pub host_addrs: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 68, max = 65535)))]
    pub host_mtu: Option<u32>,
    /// The Linux bridge the host end is a port of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(regex(pattern = pattern::IFNAME), length(max = 15)))]
    pub bridge: Option<String>,
}

/// `link`: a point-to-point link between two namespaces, one veth pair with an end in each
/// (`cloon-netns link`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
pub struct LinkPart {
    /// The two ends.
    #[cfg_attr(feature = "schema", schemars(length(min = 2, max = 2)))]
    pub ends: Vec<EndPart>,
}

/// One end of a point-to-point link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
pub struct EndPart {
    /// The namespace's name (`cloonix_1_1`, or the file name of a path).
    #[cfg_attr(feature = "schema", schemars(regex(pattern = pattern::NETNS)))]
    pub netns: String,
    /// The namespace file, absolute.
    #[cfg_attr(feature = "schema", schemars(regex(pattern = pattern::ABSOLUTE)))]
    pub path: String,
    /// The interface made in it.
    #[cfg_attr(feature = "schema", schemars(regex(pattern = pattern::IFNAME), length(max = 15)))]
    pub ifname: String,
    /// Its MAC address ("" in `--dry-run` when the kernel is to choose it).
    #[cfg_attr(feature = "schema", schemars(regex(pattern = pattern::MAC)))]
    pub mac: String,
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(inner(regex(pattern = pattern::CIDR))))]
    pub addrs: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 68, max = 65535)))]
    pub mtu: Option<u32>,
}

/// `vxlan`: one host's end of a link or LAN that crosses hosts, a VXLAN device (`cloon-netns
/// vxlan`). Its UDP socket is in the tool's own namespace (the host's); the device is either in a
/// container's namespace (`netns`, `path`: a point-to-point link, learning off) or a port of a
/// Linux bridge of the host (`bridge`: a LAN, learning on).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
pub struct VxlanPart {
    /// The VXLAN network identifier, 1 to 16777215.
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 16777215)))]
    pub vni: u32,
    /// The UDP port this host's VXLAN listens on (and sends to by default).
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 65535)))]
    pub port: u16,
    /// The source address of the tunnel's packets, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(regex(pattern = pattern::IP)))]
    pub local: Option<String>,
    /// The underlay interface, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(regex(pattern = pattern::IFNAME), length(max = 15)))]
    pub dev: Option<String>,
    /// The other hosts' ends: each gets every frame with no known destination (head-end
    /// replication).
    pub remotes: Vec<RemotePart>,
    /// Whether the device learns where MAC addresses are (on for a bridge's port).
    pub learning: bool,
    /// The VXLAN device's name.
    #[cfg_attr(feature = "schema", schemars(regex(pattern = pattern::IFNAME), length(max = 15)))]
    pub ifname: String,
    /// The namespace the device is in (its name), for a point-to-point end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(regex(pattern = pattern::NETNS)))]
    pub netns: Option<String>,
    /// The namespace file, for a point-to-point end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(regex(pattern = pattern::ABSOLUTE)))]
    pub path: Option<String>,
    /// The Linux bridge of the host the device is a port of, for a LAN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(regex(pattern = pattern::IFNAME), length(max = 15)))]
    pub bridge: Option<String>,
    /// Its MAC address ("" in `--dry-run` when the kernel is to choose it).
    #[cfg_attr(feature = "schema", schemars(regex(pattern = pattern::MAC)))]
    pub mac: String,
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(inner(regex(pattern = pattern::CIDR))))]
    pub addrs: Vec<String>,
    /// Its MTU.
    #[cfg_attr(feature = "schema", schemars(range(min = 68, max = 65535)))]
    pub mtu: u32,
}

/// One remote end of a VXLAN device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
pub struct RemotePart {
    /// The other host's address (IPv4 or IPv6).
    #[cfg_attr(feature = "schema", schemars(regex(pattern = pattern::IP)))]
    pub address: String,
    /// The UDP port its VXLAN listens on.
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 65535)))]
    pub port: u16,
}

/// `bundle`: the OCI bundle directory and its config.json (cloon-spec).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
pub struct Bundle {
    /// The bundle directory, absolute.
    #[cfg_attr(feature = "schema", schemars(regex(pattern = pattern::ABSOLUTE)))]
    pub path: String,
    /// Its config.json, absolute.
    #[cfg_attr(feature = "schema", schemars(regex(pattern = pattern::ABSOLUTE)))]
    pub config: String,
}

/// `container`: the container as the OCI runtime runs it (cloon-run).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
pub struct Container {
    /// The runtime's id of the container: its name.
    #[cfg_attr(feature = "schema", schemars(regex(pattern = pattern::NAME), length(min = 1, max = 64)))]
    pub id: String,
    /// The runtime (`crun`, `runc`, another name or a path).
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub runtime: String,
    /// The runtime's `--root`, absolute.
    #[cfg_attr(feature = "schema", schemars(regex(pattern = pattern::ABSOLUTE)))]
    pub root: String,
    /// The container's process on the host (0 in a `--dry-run` document).
    #[cfg_attr(feature = "schema", schemars(range(min = 0)))]
    pub pid: i64,
    /// The runtime's status of the container ("" in a `--dry-run` document).
    #[cfg_attr(feature = "schema", schemars(extend("enum" = ["creating", "created", "running", "stopped", "paused", ""])))]
    pub status: String,
}

/// The error object of an error document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
pub struct ErrorObject {
    /// 1 to 99 as in CNI, 100 and up cloon's own; also the tool's exit status.
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    pub code: u8,
    /// The tool that failed: the stage whose error document it is.
    #[cfg_attr(
        feature = "schema",
        schemars(extend("enum" = ["cloon-img", "cloon-overlay", "cloon-netns", "cloon-spec", "cloon-run"]))
    )]
    pub stage: String,
    /// What went wrong, and what to do.
    pub msg: String,
    /// The low-level cause (an errno text, a runtime's message).
    #[serde(default)]
    pub details: String,
}

/// The shape of a document, for its JSON Schema only: every part is optional, and keys of the
/// user's own pass (`additionalProperties`).
#[cfg(feature = "schema")]
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(
    title = "cloon document",
    description = "The JSON object that flows through a cloon pipeline: each tool owns one key and never changes another's; keys it does not know pass through untouched.",
    extend("additionalProperties" = true)
)]
struct Shape {
    /// The document version: "1".
    #[schemars(extend("const" = "1"))]
    cloon_version: String,
    /// The container's name, which every stage's state is filed under: at most 64 bytes of ASCII
    /// letters, digits, '_', '.' and '-', starting with a letter or a digit.
    #[serde(default)]
    #[schemars(regex(pattern = pattern::NAME), length(min = 1, max = 64))]
    name: Option<String>,
    /// cloon-img's part.
    #[serde(default)]
    image: Option<Image>,
    /// cloon-overlay's part.
    #[serde(default)]
    overlay: Option<Overlay>,
    /// cloon-netns's part.
    #[serde(default)]
    netns: Option<Netns>,
    /// cloon-netns's part for a point-to-point link (`cloon-netns link`).
    #[serde(default)]
    link: Option<LinkPart>,
    /// cloon-netns's part for a VXLAN end of a link or LAN that crosses hosts
    /// (`cloon-netns vxlan`).
    #[serde(default)]
    vxlan: Option<VxlanPart>,
    /// cloon-spec's part.
    #[serde(default)]
    bundle: Option<Bundle>,
    /// cloon-run's part.
    #[serde(default)]
    container: Option<Container>,
    /// The error of the first tool that failed. An error document keeps the name and every part
    /// made before the failure, so that the teardown pipeline undoes them.
    #[serde(default)]
    error: Option<ErrorObject>,
}

/// The JSON Schema (draft 2020-12) of the document, generated from the types of its parts. The
/// repository ships it as `schema/cloon-document.schema.json` (`cargo xtask schema` prints it).
/// Only with the feature `schema`, which the tools leave off: they carry no schemars.
#[cfg(feature = "schema")]
pub fn schema() -> Value {
    let generated = schemars::schema_for!(Shape).to_value();
    let Value::Object(mut rest) = generated else {
        return generated;
    };
    // The keys a reader looks for first, first.
    let mut schema = Map::new();
    for key in ["$schema", "title", "description"] {
        if let Some(v) = rest.shift_remove(key) {
            schema.insert(key.into(), v);
        }
    }
    schema.extend(rest);
    Value::Object(schema)
}

/// [`schema`] as the shipped file holds it: pretty JSON with a final newline.
#[cfg(feature = "schema")]
pub fn schema_text() -> String {
    let mut s = serde_json::to_string_pretty(&schema()).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_input_is_no_document() {
        assert_eq!(Document::parse("").unwrap(), None);
        assert_eq!(Document::parse(" \n\t").unwrap(), None);
    }

    #[test]
    fn unknown_keys_pass_through_in_order() {
        let text = r#"{"cloonVersion":"1","zeta":1,"name":"A","alpha":{"x":[1,2]}}"#;
        let mut doc = Document::parse(text).unwrap().unwrap();
        doc.set(
            "bundle",
            &Bundle {
                path: "/b".into(),
                config: "/b/config.json".into(),
            },
        );
        let out: Value = serde_json::from_str(&doc.to_json()).unwrap();
        let keys: Vec<&String> = out.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["cloonVersion", "zeta", "name", "alpha", "bundle"]);
        assert_eq!(out["alpha"]["x"][1], 2);
    }

    #[test]
    fn output_is_deterministic() {
        let mut a = Document::new();
        a.set_name("Cloon1").unwrap();
        a.set(
            "image",
            &Image {
                path: "/i".into(),
                fstype: "ext4".into(),
                bytes: 1,
                config: None,
            },
        );
        let b = Document::parse(&a.to_json()).unwrap().unwrap();
        assert_eq!(a.to_json(), b.to_json());
        assert!(a.to_json().starts_with("{\n  \"cloonVersion\": \"1\""));
    }

    #[test]
    fn rejects_garbage_and_wrong_versions() {
        assert_eq!(Document::parse("{").unwrap_err().code, Code::Decode);
        assert_eq!(Document::parse("[1]").unwrap_err().code, Code::Decode);
        assert_eq!(
            Document::parse(r#"{"name":"x"}"#).unwrap_err().code,
            Code::Decode
        );
        let e = Document::parse(r#"{"cloonVersion":"2"}"#).unwrap_err();
        assert_eq!(e.code, Code::IncompatibleVersion);
    }

    #[test]
    fn error_documents_are_recognised_and_keep_their_code() {
        let err = Error::new(Code::NameTaken, "taken").details("d");
        let doc = Document::from_error("cloon-netns", &err);
        let back = Document::parse(&doc.to_json()).unwrap().unwrap();
        assert_eq!(back.error_status(), Some(101));
        assert_eq!(back.error().unwrap()["stage"], "cloon-netns");
        assert_eq!(back.to_json(), doc.to_json());
    }

    #[test]
    fn a_second_name_is_refused() {
        let mut doc = Document::new();
        doc.set_name("A").unwrap();
        doc.set_name("A").unwrap();
        assert_eq!(doc.set_name("B").unwrap_err().code, Code::InvalidConfig);
    }

    #[test]
    fn malformed_parts_are_config_errors() {
        let doc = Document::parse(r#"{"cloonVersion":"1","image":{"path":3}}"#)
            .unwrap()
            .unwrap();
        assert_eq!(
            doc.get::<Image>("image").unwrap_err().code,
            Code::InvalidConfig
        );
        assert_eq!(doc.get::<Bundle>("bundle").unwrap(), None);
    }

    #[test]
    fn links_of_older_documents_still_read_and_new_fields_are_camel_case() {
        let old = r#"{"host":"vgt_1_1_0","guest":"eth0","mac":"02:00:00:00:00:01","addrs":[]}"#;
        let link: Link = serde_json::from_str(old).unwrap();
        assert_eq!(link.bridge, None);
        assert_eq!(link.host_mac, "");
        let link = Link {
            bridge: Some("lan1".into()),
            host_addrs: vec!["10.0.0.1/24".into()],
            host_mtu: Some(1400),
            ..link
        };
        let text = serde_json::to_string(&link).unwrap();
        assert_eq!(
            text,
            r#"{"host":"vgt_1_1_0","guest":"eth0","mac":"02:00:00:00:00:01","addrs":[],"hostMac":"","hostAddrs":["10.0.0.1/24"],"hostMtu":1400,"bridge":"lan1"}"#
        );
    }

    #[test]
    fn remove_drops_only_that_part() {
        let mut doc = Document::new();
        doc.set_name("A").unwrap();
        doc.set(
            "bundle",
            &Bundle {
                path: "/b".into(),
                config: "/c".into(),
            },
        );
        doc.remove("bundle");
        assert_eq!(
            doc.to_json(),
            "{\n  \"cloonVersion\": \"1\",\n  \"name\": \"A\"\n}\n"
        );
    }

    #[test]
    fn image_config_is_optional_and_left_out_when_absent() {
        let old: Image =
            serde_json::from_str(r#"{"path":"/i","fstype":"ext4","bytes":1}"#).unwrap();
        assert_eq!(old.config, None);
        assert_eq!(
            serde_json::to_string(&old).unwrap(),
            r#"{"path":"/i","fstype":"ext4","bytes":1}"#
        );
        let with = Image {
            config: Some(ImageConfig {
                args: vec!["/bin/sh".into()],
                env: vec![],
                cwd: Some("/".into()),
            }),
            ..old
        };
        assert_eq!(
            serde_json::to_string(&with).unwrap(),
            r#"{"path":"/i","fstype":"ext4","bytes":1,"config":{"args":["/bin/sh"],"cwd":"/"}}"#
        );
    }
}
