//! The topology file: containerlab's format, the subset that fits cloon (Linux containers,
//! bridges, veth links), plus cloon's extensions. [`Lab::load`] reads it, resolves what each node
//! inherits and checks everything, so that nothing is touched for a file with a mistake in it.
//!
//! ```yaml
//! name: demo                          # the lab's name: in every object the lab makes
//! topology:
//!   defaults: {kind: linux, image: busybox}
//!   kinds:
//!     linux: {env: {LAB: demo}}      # what every node of a kind inherits
//!   nodes:
//!     a: {exec: ["ip route add default via 10.0.0.254"]}
//!     b: {image: debootstrap:bookworm, cmd: "sleep infinity"}
//!     sw: {kind: bridge}
//!   links:
//!     - endpoints: ["a:eth1", "sw:a"]                     # brief form
//!       ipv4: ["10.0.0.1/24"]                              # addresses, in endpoint order
//!     - type: veth                                         # extended form
//!       endpoints:
//!         - {node: a, interface: eth2, ipv4: 10.9.0.1/30, mac: "02:00:00:00:00:01"}
//!         - {node: b, interface: eth2, ipv4: 10.9.0.2/30}
//!       mtu: 9000
//!       netem: {delay: 10ms, loss: 1%}                     # cloon's: the link's impairments
//! ```
//!
//! What a node gets is looked up from the most specific level down, as containerlab does: the
//! node, its `group` (`topology.groups`), its kind (`topology.kinds`), then
//! `topology.defaults`. Single values (`image`, `cmd`, `hostname`) come from the first level that
//! sets them; `env` and `sysctls` merge key by key, the most specific winning; `exec` and
//! `cap-add` are concatenated from the least specific level (duplicates dropped); `binds` are
//! concatenated and a more specific bind to the same container path replaces a less specific one.
//!
//! Where cloon differs from containerlab, on purpose:
//! - There is no management network: a container has only the interfaces its links give it, so
//!   a link may use any name, `eth0` included (`lo` is refused).
//! - A `bridge` node is a Linux bridge the lab makes (with its first port) and deletes (with its
//!   last), under a name generated for the lab, never a bridge of the host. The interface named
//!   on a bridge's side of a link (`"sw:a"`) is a label for that port: the real host-side
//!   interface gets a generated name too, so a topology can never create or touch a host
//!   interface such as `eth0`. `cloon-lab inspect` shows the generated names.
//! - `image:` is a cloon image: an ext4 image file, or a source cloon-img builds it from
//!   (`busybox`, `debootstrap:SUITE[:PKGS]`, `oci:LAYOUT[:TAG]`, `tar:FILE`), see [`ImageSource`].
//! - `cmd:` replaces the image's whole command (cloon has no separate entrypoint).
//! - Addresses are set on the interfaces themselves (`ipv4:`/`ipv6:` of an endpoint, or the
//!   brief form's lists), for every node: containerlab sets them only for some network systems.

pub mod netem;
mod raw;

pub use netem::Netem;

use anyhow::{bail, Context as _};
use serde::Serialize;
use serde_saphyr::Spanned;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

/// A whole lab, read and checked.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Lab {
    /// The lab's name (the file's `name:`, or `--name`).
    pub name: String,
    /// The topology file, absolute.
    pub file: PathBuf,
    /// The nodes, in the file's order.
    pub nodes: Vec<Node>,
    /// The links, in the file's order.
    pub links: Vec<Link>,
    /// The machines the lab is spread over (cloon's `hosts:`), in the file's order; empty for a
    /// lab on one machine.
    pub hosts: Vec<Host>,
}

/// The UDP port of VXLAN when a host does not say (IANA's).
pub const VXLAN_PORT: u16 = 4789;

/// One machine of a lab spread over several: `hosts: {h1: {address: 192.0.2.1}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Host {
    pub name: String,
    /// The address the other hosts reach it at (its VXLAN tunnels' source).
    pub address: std::net::IpAddr,
    /// The underlay interface its tunnels go out of, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// The UDP port its VXLAN listens on.
    pub port: u16,
    pub line: u64,
}

/// What a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A container.
    Linux,
    /// A Linux bridge: a LAN its links plug into.
    Bridge,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Linux => "linux",
            Kind::Bridge => "bridge",
        }
    }
}

/// One node, with everything it inherits resolved.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    pub name: String,
    pub kind: Kind,
    /// The line of its definition in the file.
    pub line: u64,
    /// The host it runs on, for a lab spread over several (containers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The image (containers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageSource>,
    /// The container's command, replacing the image's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    /// Commands run in the container, in order, once the lab is up.
    pub exec: Vec<Vec<String>>,
    /// Environment variables, sorted by name.
    pub env: BTreeMap<String, String>,
    /// Host paths mounted in the container, sorted by their path in the container.
    pub binds: Vec<Bind>,
    /// The container's hostname.
    pub hostname: String,
    /// Kernel parameters, sorted.
    pub sysctls: BTreeMap<String, String>,
    /// Capabilities added (without `CAP_`).
    pub cap_add: Vec<String>,
}

/// A bind mount: `SRC:DST[:ro|rw]`, SRC relative to the topology file's directory.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bind {
    pub src: PathBuf,
    pub dst: String,
    pub ro: bool,
}

/// A link between two endpoints: two containers (a point-to-point veth pair), or a container
/// and a bridge (the container's veth, its host end a port of the bridge).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Link {
    /// The line of its definition in the file.
    pub line: u64,
    pub ends: [Endpoint; 2],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub netem: Option<Netem>,
}

impl Link {
    /// `a:eth1 -- b:eth1`, for messages.
    pub fn label(&self) -> String {
        format!("{} -- {}", self.ends[0].label(), self.ends[1].label())
    }
}

/// One end of a link.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    pub node: String,
    pub interface: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// Addresses with their prefix length (`10.0.0.1/24`, `fd00::1/64`).
    pub addrs: Vec<String>,
}

impl Endpoint {
    pub fn label(&self) -> String {
        format!("{}:{}", self.node, self.interface)
    }

    /// Its addresses and MAC as cloon-netns's end options: `,addr=A,...[,mac=M]`.
    pub fn options(&self) -> String {
        let mut s: String = self.addrs.iter().map(|a| format!(",addr={a}")).collect();
        if let Some(m) = &self.mac {
            s.push_str(&format!(",mac={m}"));
        }
        s
    }
}

/// Where a node's image comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "source")]
pub enum ImageSource {
    /// An ext4 image file made by cloon-img, used as it is.
    File { path: PathBuf },
    /// `busybox`: Debian's static busybox (`cloon-img create --busybox`).
    Busybox,
    /// `debootstrap:SUITE[:PKGS]`: Debian SUITE, with the packages PKGS (comma-separated) instead
    /// of cloon-img's default list.
    Debootstrap {
        suite: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        include: Option<String>,
    },
    /// `oci:LAYOUT[:TAG]`: an OCI image layout (`skopeo copy docker://... oci:LAYOUT:TAG`).
    Oci {
        layout: PathBuf,
        #[serde(skip_serializing_if = "Option::is_none")]
        tag: Option<String>,
    },
    /// `tar:FILE`: a root filesystem tarball (`docker export`), plain or compressed.
    Tar { file: PathBuf },
}

impl ImageSource {
    /// Reads `image:`; relative paths are relative to `dir`, the topology file's directory.
    pub fn parse(text: &str, dir: &Path) -> Result<ImageSource, String> {
        let path = |p: &str| -> Result<PathBuf, String> {
            if p.is_empty() {
                return Err(format!("\"{text}\" names no file"));
            }
            Ok(resolve_path(p, dir))
        };
        if text == "busybox" {
            return Ok(ImageSource::Busybox);
        }
        if let Some(rest) = text.strip_prefix("debootstrap:") {
            let (suite, include) = match rest.split_once(':') {
                Some((s, p)) => (s, Some(p.to_string())),
                None => (rest, None),
            };
            if suite.is_empty()
                || !suite
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                return Err(format!(
                    "\"{text}\": the suite must be a Debian suite name such as bookworm"
                ));
            }
            if let Some(p) = &include {
                if !p
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.+,".contains(c))
                {
                    return Err(format!(
                        "\"{text}\": the packages must be comma-separated Debian package names"
                    ));
                }
            }
            return Ok(ImageSource::Debootstrap {
                suite: suite.to_string(),
                include,
            });
        }
        if let Some(rest) = text.strip_prefix("oci:") {
            // As skopeo's oci: transport (and cloon-img --from-oci): the tag follows the first
            // ':', so it may hold colons, unless the whole names a layout (it has an index.json).
            let whole = path(rest)?;
            if whole.join("index.json").is_file() {
                return Ok(ImageSource::Oci {
                    layout: whole,
                    tag: None,
                });
            }
            let (layout, tag) = match rest.split_once(':') {
                Some((l, t)) if !l.is_empty() && !t.is_empty() => (l, Some(t.to_string())),
                _ => (rest, None),
            };
            return Ok(ImageSource::Oci {
                layout: path(layout)?,
                tag,
            });
        }
        if let Some(rest) = text.strip_prefix("tar:") {
            return Ok(ImageSource::Tar { file: path(rest)? });
        }
        if text.contains(':') && !text.contains('/') {
            return Err(format!(
                "\"{text}\" looks like a registry image: cloon runs cloon images, so give an image \
                 file, or a source cloon-img builds one from: busybox, debootstrap:SUITE, \
                 oci:LAYOUT:TAG (e.g. after `skopeo copy docker://{text} oci:layout:tag`), tar:FILE"
            ));
        }
        Ok(ImageSource::File { path: path(text)? })
    }

    /// What the source says, as `image:` would (`busybox`, `tar:/abs/rootfs.tar`).
    pub fn spec(&self) -> String {
        match self {
            ImageSource::File { path } => path.display().to_string(),
            ImageSource::Busybox => "busybox".into(),
            ImageSource::Debootstrap { suite, include } => match include {
                Some(p) => format!("debootstrap:{suite}:{p}"),
                None => format!("debootstrap:{suite}"),
            },
            ImageSource::Oci { layout, tag } => match tag {
                Some(t) => format!("oci:{}:{t}", layout.display()),
                None => format!("oci:{}", layout.display()),
            },
            ImageSource::Tar { file } => format!("tar:{}", file.display()),
        }
    }

    /// The input file whose content the image depends on, checked before anything is made.
    fn check(&self) -> Result<(), String> {
        match self {
            ImageSource::File { path } if !path.is_file() => {
                return Err(format!(
                    "the image file {} does not exist: make it with `cloon-img create`, or \
                     name a source (busybox, debootstrap:SUITE, oci:LAYOUT:TAG, tar:FILE)",
                    path.display()
                ));
            }
            ImageSource::Tar { file } if !file.is_file() => {
                return Err(format!("the tarball {} does not exist", file.display()));
            }
            ImageSource::Oci { layout, .. } if !layout.join("index.json").is_file() => {
                return Err(format!(
                    "{} is not an OCI image layout (it has no index.json)",
                    layout.display()
                ));
            }
            _ => {}
        }
        Ok(())
    }
}

/// `p` relative to `dir` unless absolute; `~/` is the home directory, as containerlab has it.
fn resolve_path(p: &str, dir: &Path) -> PathBuf {
    if let Some(rest) = p.strip_prefix("~/") {
        if let Some(home) = std::env::var_os("HOME") {
            return PathBuf::from(home).join(rest);
        }
    }
    // Joined and cleaned of `.` components, without resolving links (`..` stays: it may go
    // through a link).
    dir.join(p)
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect()
}

/// The longest lab name: `LAB-NODE` must fit cloon's 64-byte container names.
pub const MAX_LAB_NAME: usize = 32;

/// Checks a lab name given on the command line.
pub fn check_lab_name(name: &str) -> Result<(), String> {
    check_simple_name("lab name", name, MAX_LAB_NAME)
}

/// The problems found in a file, each with its line, reported all at once.
#[derive(Debug, Default)]
struct Problems {
    list: Vec<(u64, String)>,
}

impl Problems {
    fn add(&mut self, line: u64, msg: impl Into<String>) {
        self.list.push((line, msg.into()));
    }
}

/// The line of a spanned value.
fn line<T>(s: &Spanned<T>) -> u64 {
    s.referenced.line()
}

/// A lab or node name: letters, digits, `-` and `_` (no `.`: cloon-lab names links
/// `LAB.NODE.IF.NODE.IF`, so a name with a dot could collide with a link's).
fn check_simple_name(what: &str, name: &str, max: usize) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("the {what} is empty"));
    }
    if name.len() > max {
        return Err(format!(
            "the {what} \"{name}\" is {} bytes long: use at most {max}",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(format!(
            "the {what} \"{}\" contains {c:?}: use only letters, digits, '-' and '_'",
            name.escape_debug()
        ));
    }
    if !name.as_bytes()[0].is_ascii_alphanumeric() {
        return Err(format!(
            "the {what} \"{name}\" must start with a letter or a digit"
        ));
    }
    Ok(())
}

/// A network interface name inside a container: at most 15 bytes, no `/`, not `lo`.
fn check_interface(name: &str) -> Result<(), String> {
    cloon_core::name::interface(name).map_err(|e| e.msg)?;
    if name == "lo" {
        return Err("\"lo\" is the loopback interface every container has: name another".into());
    }
    Ok(())
}

/// An address with its prefix length.
fn check_cidr(text: &str, v6: bool) -> Result<String, String> {
    let (addr, len) = text.split_once('/').ok_or_else(|| {
        format!("\"{text}\" has no prefix length: write it as ADDRESS/LENGTH, e.g. 10.0.0.1/24")
    })?;
    let len: u8 = len
        .parse()
        .map_err(|_| format!("\"{text}\": the prefix length is not a number"))?;
    let max = if v6 {
        addr.parse::<Ipv6Addr>()
            .map_err(|_| format!("\"{text}\" is not an IPv6 address"))?;
        128
    } else {
        addr.parse::<Ipv4Addr>()
            .map_err(|_| format!("\"{text}\" is not an IPv4 address"))?;
        32
    };
    if len > max {
        return Err(format!("\"{text}\": the prefix length is more than {max}"));
    }
    Ok(text.to_string())
}

/// A MAC address of one interface: six hex pairs, unicast.
fn check_mac(text: &str) -> Result<String, String> {
    let parts: Vec<&str> = text.split(':').collect();
    let ok = parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()));
    if !ok {
        return Err(format!(
            "\"{text}\" is not a MAC address (six hex pairs, e.g. 02:00:00:00:00:01)"
        ));
    }
    let first = u8::from_str_radix(parts[0], 16).unwrap_or(0);
    if first & 1 == 1 {
        return Err(format!(
            "\"{text}\" is a multicast address: an interface needs a unicast one (the first \
             byte even, e.g. 02)"
        ));
    }
    Ok(text.to_ascii_lowercase())
}

/// Shell words, as containerlab splits `cmd:` and `exec:`.
fn split_words(text: &str) -> Result<Vec<String>, String> {
    let words = shlex::split(text).ok_or_else(|| format!("\"{text}\": a quote is not closed"))?;
    if words.is_empty() {
        return Err("the command is empty".into());
    }
    if words.iter().any(|w| w.contains('\n') || w.contains('\0')) {
        return Err(format!(
            "\"{}\": an argument holds a line break, which the generated Makefile cannot \
             carry: put the commands in a script, bind it into the container and run that",
            text.escape_debug()
        ));
    }
    Ok(words)
}

/// A bind: `SRC:DST`, `SRC:DST:ro`, `SRC:DST:rw`.
fn parse_bind(text: &str, dir: &Path) -> Result<Bind, String> {
    let parts: Vec<&str> = text.split(':').collect();
    let (src, dst, ro) = match parts.as_slice() {
        [s, d] => (*s, *d, false),
        [s, d, "ro"] => (*s, *d, true),
        [s, d, "rw"] => (*s, *d, false),
        [_, _, mode] => {
            return Err(format!(
                "\"{text}\": unknown mode \"{mode}\" (use ro or rw)"
            ))
        }
        _ => {
            return Err(format!(
                "\"{text}\" is not a bind: write HOST_PATH:CONTAINER_PATH[:ro]"
            ))
        }
    };
    if src.is_empty() {
        return Err(format!("\"{text}\" has no host path"));
    }
    if !dst.starts_with('/') || dst.split('/').any(|c| c == "..") {
        return Err(format!(
            "\"{text}\": the path in the container must be absolute, without \"..\""
        ));
    }
    let src = resolve_path(src, dir);
    if !src.exists() {
        return Err(format!(
            "\"{text}\": {} does not exist (a relative path is relative to the topology file)",
            src.display()
        ));
    }
    Ok(Bind {
        src,
        dst: dst.to_string(),
        ro,
    })
}

/// The levels a node inherits from, most specific first.
struct Levels<'a> {
    levels: Vec<&'a raw::NodeDef>,
}

impl<'a> Levels<'a> {
    /// The first level that sets a single value.
    fn first<T>(&self, get: impl Fn(&'a raw::NodeDef) -> Option<&'a T>) -> Option<&'a T> {
        self.levels.iter().find_map(|l| get(l))
    }

    /// A list concatenated from the least specific level, duplicates dropped.
    fn concat(
        &self,
        get: impl Fn(&'a raw::NodeDef) -> Option<&'a Vec<raw::Str>>,
    ) -> Vec<&'a raw::Str> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for level in self.levels.iter().rev() {
            for item in get(level).into_iter().flatten() {
                if seen.insert(item.value.as_str()) {
                    out.push(item);
                }
            }
        }
        out
    }

    /// A map merged key by key, the most specific level winning; sorted by key.
    fn merge(
        &self,
        get: impl Fn(&'a raw::NodeDef) -> Option<&'a raw::Entries<raw::Scalar>>,
    ) -> BTreeMap<String, (u64, String)> {
        let mut out = BTreeMap::new();
        for level in self.levels.iter().rev() {
            for (k, v) in get(level).map(|e| e.0.as_slice()).unwrap_or_default() {
                out.insert(k.value.clone(), (line(k), v.0.clone()));
            }
        }
        out
    }
}

impl Lab {
    /// Reads and checks the topology file `file`; `name` replaces its `name:` (as containerlab's
    /// `--name` does), so that one file gives several labs side by side.
    pub fn load(file: &Path, name: Option<&str>) -> anyhow::Result<Lab> {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read the topology file {}", file.display()))?;
        let abs = std::path::absolute(file)
            .with_context(|| format!("cannot make {} absolute", file.display()))?;
        Lab::parse(&text, &abs, name)
    }

    /// Reads and checks a topology from `text`, as if read from `file` (its directory is where
    /// relative paths start).
    pub fn parse(text: &str, file: &Path, name: Option<&str>) -> anyhow::Result<Lab> {
        let shown = file.display().to_string();
        let options = serde_saphyr::options! {
            duplicate_keys: serde_saphyr::DuplicateKeyPolicy::Error,
        };
        let raw: raw::File = serde_saphyr::from_str_with_options(text, options)
            .map_err(|e| anyhow::anyhow!(describe_yaml_error(&shown, &e)))?;
        let dir = file.parent().unwrap_or(Path::new("/"));
        let mut problems = Problems::default();
        let lab = resolve(raw, dir, file, name, &mut problems);
        if problems.list.is_empty() {
            if let Some(lab) = lab {
                return Ok(lab);
            }
        }
        problems.list.sort_by_key(|(l, _)| *l);
        let mut msg = format!(
            "{shown}: {} problem{} in the topology, nothing was done:",
            problems.list.len(),
            if problems.list.len() == 1 { "" } else { "s" }
        );
        for (l, p) in &problems.list {
            if *l > 0 {
                let _ = write!(msg, "\n  {shown}:{l}: {p}");
            } else {
                let _ = write!(msg, "\n  {shown}: {p}");
            }
        }
        bail!(msg)
    }

    /// The node called `name`.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The containers (nodes of kind linux).
    pub fn containers(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| n.kind == Kind::Linux)
    }

    /// The host called `name`.
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// The host `node` runs on (`None` for a bridge, or a lab on one machine).
    pub fn host_of(&self, node: &str) -> Option<&Host> {
        self.node(node)
            .and_then(|n| n.host.as_deref())
            .and_then(|h| self.host(h))
    }
}

/// A YAML or schema error as `FILE:LINE:COLUMN: message`, in words for the topology's author.
fn describe_yaml_error(file: &str, e: &serde_saphyr::Error) -> String {
    let text = e.to_string();
    // serde-saphyr says "error: line L column C: MESSAGE", maybe followed by a snippet: keep
    // the message, and give the location our way.
    let first = text.lines().next().unwrap_or("").trim();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    let first = match first.split_once(": ") {
        Some((head, rest)) if head.starts_with("line ") && head.contains(" column ") => rest,
        _ => first,
    };
    let mut msg = first.to_string();
    if let Some(cut) = msg.find(", set DuplicateKeyPolicy") {
        msg.truncate(cut);
        msg.push_str(" (a key may appear once in a map)");
    }
    if msg.contains("unknown field") {
        msg.push_str(": cloon does not support that field (containerlab's fields that fit cloon are listed in `cloon-lab --help`)");
    }
    match e.location() {
        Some(loc) if loc.line() > 0 => format!(
            "{file}:{}:{}: {msg}; nothing was done",
            loc.line(),
            loc.column()
        ),
        _ => format!("{file}: {msg}; nothing was done"),
    }
}

/// Turns the file as written into a [`Lab`], adding every problem found to `problems`.
fn resolve(
    raw: raw::File,
    dir: &Path,
    file: &Path,
    name_flag: Option<&str>,
    problems: &mut Problems,
) -> Option<Lab> {
    let name = match (name_flag, &raw.name) {
        (Some(n), _) => {
            if let Err(e) = check_simple_name("lab name (--name)", n, MAX_LAB_NAME) {
                problems.add(0, e);
            }
            n.to_string()
        }
        (None, Some(n)) => {
            if let Err(e) = check_simple_name("lab name", &n.value, MAX_LAB_NAME) {
                problems.add(line(n), format!("name: {e}"));
            }
            n.value.clone()
        }
        (None, None) => {
            problems.add(1, "the lab has no `name:`: add one (it is in the name of everything the lab makes), or give --name");
            String::new()
        }
    };
    let hosts = resolve_hosts(raw.hosts.as_ref(), problems);
    let Some(topology) = raw.topology else {
        problems.add(1, "there is no `topology:` with nodes");
        return None;
    };
    let topo_line = line(&topology);
    let topology = topology.value;
    let empty = raw::NodeDef::default();
    let defaults = topology
        .defaults
        .as_ref()
        .map(|d| &d.value)
        .unwrap_or(&empty);
    if let Some(d) = &topology.defaults {
        if let Some(g) = &d.value.group {
            problems.add(line(g), "defaults: `group` belongs to a node");
        }
    }
    let kinds = topology.kinds.unwrap_or_default();
    let mut kind_levels: BTreeMap<&str, &raw::NodeDef> = BTreeMap::new();
    for (k, def) in &kinds.0 {
        if k.value != "linux" && k.value != "bridge" {
            problems.add(
                line(k),
                format!(
                    "kinds: cloon runs the kinds linux and bridge, not \"{}\"",
                    k.value
                ),
            );
        }
        if let Some(x) = &def.kind {
            problems.add(
                line(x),
                format!("kinds.{}: `kind` belongs to a node", k.value),
            );
        }
        if let Some(x) = &def.group {
            problems.add(
                line(x),
                format!("kinds.{}: `group` belongs to a node", k.value),
            );
        }
        if kind_levels.insert(k.value.as_str(), def).is_some() {
            problems.add(line(k), format!("kinds: \"{}\" is defined twice", k.value));
        }
    }
    let groups = topology.groups.unwrap_or_default();
    let mut group_levels: BTreeMap<&str, &raw::NodeDef> = BTreeMap::new();
    for (g, def) in &groups.0 {
        if let Some(x) = &def.group {
            problems.add(
                line(x),
                format!("groups.{}: a group cannot be in a group", g.value),
            );
        }
        if group_levels.insert(g.value.as_str(), def).is_some() {
            problems.add(line(g), format!("groups: \"{}\" is defined twice", g.value));
        }
    }

    let raw_nodes = topology.nodes.unwrap_or_default();
    if raw_nodes.0.is_empty() {
        problems.add(topo_line, "topology: there are no nodes");
    }
    let mut nodes: Vec<Node> = Vec::new();
    let mut seen_nodes: BTreeMap<String, u64> = BTreeMap::new();
    for (key, def) in &raw_nodes.0 {
        let node_name = key.value.clone();
        let l = line(key);
        if let Some(first) = seen_nodes.insert(node_name.clone(), l) {
            problems.add(
                l,
                format!("node \"{node_name}\" is defined twice (first at line {first})"),
            );
            continue;
        }
        if let Err(e) = check_simple_name("node name", &node_name, 64) {
            problems.add(l, e);
            continue;
        }
        if !name.is_empty() {
            if let Err(e) = cloon_core::name::container(&format!("{name}-{node_name}")) {
                problems.add(
                    l,
                    format!(
                        "node \"{node_name}\": its container name {}: shorten the lab or node name",
                        e.msg
                    ),
                );
            }
        }
        let def = def.as_ref().unwrap_or(&empty);
        let group = def.group.as_ref().or(defaults.group.as_ref());
        let mut levels = vec![def];
        if let Some(g) = group {
            match group_levels.get(g.value.as_str()) {
                Some(gdef) => levels.push(gdef),
                None => problems.add(
                    line(g),
                    format!(
                        "node \"{node_name}\": group \"{}\" is not in topology.groups",
                        g.value
                    ),
                ),
            }
        }
        let kind_text = levels
            .iter()
            .find_map(|l| l.kind.as_ref())
            .or(defaults.kind.as_ref());
        let kind = match kind_text.map(|k| (k, k.value.as_str())) {
            Some((_, "linux")) => Kind::Linux,
            Some((_, "bridge")) => Kind::Bridge,
            Some((k, other)) => {
                problems.add(
                    line(k),
                    format!(
                        "node \"{node_name}\": kind \"{other}\" is not one cloon runs: use linux (a container) or bridge (a LAN)"
                    ),
                );
                continue;
            }
            None => {
                problems.add(
                    l,
                    format!(
                        "node \"{node_name}\" has no kind: set `kind: linux` (or bridge) on it, or in topology.defaults"
                    ),
                );
                continue;
            }
        };
        if let Some(kdef) = kind_levels.get(kind.as_str()) {
            levels.push(kdef);
        }
        levels.push(defaults);
        let levels = Levels { levels };
        if let Some(mut node) = resolve_node(&node_name, kind, l, &levels, dir, problems) {
            node.host = resolve_node_host(&node_name, kind, l, &levels, &hosts, problems);
            nodes.push(node);
        }
    }

    let mut links = Vec::new();
    let mut used: BTreeMap<(String, String), u64> = BTreeMap::new();
    for (i, link) in topology.links.unwrap_or_default().iter().enumerate() {
        if let Some(l) = resolve_link(i + 1, link, &nodes, &seen_nodes, &mut used, problems) {
            links.push(l);
        }
    }
    // A bridge with no link would be a LAN nobody is on: say so rather than make nothing.
    for n in nodes.iter().filter(|n| n.kind == Kind::Bridge) {
        if !links
            .iter()
            .any(|l| l.ends.iter().any(|e| e.node == n.name))
        {
            problems.add(
                n.line,
                format!(
                    "bridge \"{}\" has no link: link a node to it, or remove it",
                    n.name
                ),
            );
        }
    }
    check_cross_host_links(&links, &nodes, &hosts, problems);
    Some(Lab {
        name,
        file: file.to_path_buf(),
        nodes,
        links,
        hosts,
    })
}

/// Reads `hosts:`: each host's address (unicast, distinct), interface and port.
fn resolve_hosts(
    raw: Option<&Spanned<raw::Entries<raw::HostDef>>>,
    problems: &mut Problems,
) -> Vec<Host> {
    let Some(raw) = raw else {
        return Vec::new();
    };
    if raw.value.0.is_empty() {
        problems.add(
            line(raw),
            "hosts: is empty: name each machine with its address, or remove hosts:",
        );
    }
    let mut hosts: Vec<Host> = Vec::new();
    for (key, def) in &raw.value.0 {
        let (name, l) = (key.value.clone(), line(key));
        if let Err(e) = check_simple_name("host name", &name, 64) {
            problems.add(l, format!("hosts: {e}"));
            continue;
        }
        if let Some(first) = hosts.iter().find(|h| h.name == name) {
            problems.add(
                l,
                format!(
                    "hosts: \"{name}\" is defined twice (first at line {})",
                    first.line
                ),
            );
            continue;
        }
        let Some(addr) = &def.address else {
            problems.add(
                l,
                format!(
                    "hosts: \"{name}\" has no address: give the address the other hosts reach \
                     it at, e.g. address: 192.0.2.1"
                ),
            );
            continue;
        };
        let address = match addr.value.parse::<std::net::IpAddr>() {
            Ok(a) if !a.is_unspecified() && !a.is_multicast() && !a.is_loopback() => a,
            Ok(_) => {
                problems.add(
                    line(addr),
                    format!(
                        "hosts: \"{name}\": address {} is not one another host can reach: give \
                         the host's own unicast address on the underlay",
                        addr.value
                    ),
                );
                continue;
            }
            Err(_) => {
                problems.add(
                    line(addr),
                    format!(
                        "hosts: \"{name}\": address \"{}\" is not an IP address (write e.g. \
                         192.0.2.1 or 2001:db8::1, without a prefix length)",
                        addr.value
                    ),
                );
                continue;
            }
        };
        if let Some(other) = hosts.iter().find(|h| h.address == address) {
            problems.add(
                line(addr),
                format!(
                    "hosts: \"{name}\" and \"{}\" have the same address {address}: each host \
                     has its own",
                    other.name
                ),
            );
        }
        let interface =
            def.interface
                .as_ref()
                .and_then(|i| match cloon_core::name::interface(&i.value) {
                    Ok(()) => Some(i.value.clone()),
                    Err(e) => {
                        problems.add(line(i), format!("hosts: \"{name}\": interface {}", e.msg));
                        None
                    }
                });
        let port = match &def.port {
            None => VXLAN_PORT,
            Some(p) => match u16::try_from(p.value) {
                Ok(port) if port > 0 => port,
                _ => {
                    problems.add(
                        line(p),
                        format!(
                            "hosts: \"{name}\": port {} is not a UDP port (1 to 65535; VXLAN's \
                             is {VXLAN_PORT})",
                            p.value
                        ),
                    );
                    VXLAN_PORT
                }
            },
        };
        hosts.push(Host {
            name,
            address,
            interface,
            port,
            line: l,
        });
    }
    hosts
}

/// The host of a node: a container of a lab with `hosts:` needs one of them; a bridge spans the
/// hosts of its ports and takes none of its own; a lab without `hosts:` has no `host:`.
fn resolve_node_host(
    name: &str,
    kind: Kind,
    l: u64,
    levels: &Levels,
    hosts: &[Host],
    problems: &mut Problems,
) -> Option<String> {
    let host = levels.first(|d| d.host.as_ref());
    if kind == Kind::Bridge {
        if let Some(h) = levels.levels[0].host.as_ref() {
            problems.add(
                line(h),
                format!(
                    "bridge \"{name}\": `host` is for containers: a bridge is on every host \
                     that has a container linked to it"
                ),
            );
        }
        return None;
    }
    match host {
        Some(h) if hosts.is_empty() => {
            problems.add(
                line(h),
                format!(
                    "node \"{name}\": host \"{}\" but the file has no `hosts:`: add it with \
                     each host's address, or remove `host:`",
                    h.value
                ),
            );
            None
        }
        Some(h) if !hosts.iter().any(|x| x.name == h.value) => {
            let known: Vec<&str> = hosts.iter().map(|x| x.name.as_str()).collect();
            problems.add(
                line(h),
                format!(
                    "node \"{name}\": host \"{}\" is not in hosts: (there are: {})",
                    h.value,
                    known.join(", ")
                ),
            );
            None
        }
        Some(h) => Some(h.value.clone()),
        None if !hosts.is_empty() => {
            problems.add(
                l,
                format!(
                    "node \"{name}\" has no host: set `host:` on it (or in its group, kind or \
                     the defaults) to one of the hosts"
                ),
            );
            None
        }
        None => None,
    }
}

/// A link between two hosts is a VXLAN tunnel from one address to the other: they must be of
/// one family (an IPv4 host cannot reach an IPv6 one), and so must every host of a LAN.
fn check_cross_host_links(links: &[Link], nodes: &[Node], hosts: &[Host], problems: &mut Problems) {
    let host_of = |node: &str| {
        nodes
            .iter()
            .find(|n| n.name == node)
            .and_then(|n| n.host.as_deref())
            .and_then(|h| hosts.iter().find(|x| x.name == h))
    };
    let mut lan_family: BTreeMap<&str, (&Host, u64)> = BTreeMap::new();
    for l in links {
        let [a, b] = &l.ends;
        match (host_of(&a.node), host_of(&b.node)) {
            (Some(ha), Some(hb)) if ha.address.is_ipv4() != hb.address.is_ipv4() => problems.add(
                l.line,
                format!(
                    "link {}: its ends are on hosts {} ({}) and {} ({}): a VXLAN tunnel joins \
                     two addresses of one family",
                    l.label(),
                    ha.name,
                    ha.address,
                    hb.name,
                    hb.address
                ),
            ),
            (Some(h), None) | (None, Some(h)) => {
                let bridge = if host_of(&a.node).is_none() {
                    &a.node
                } else {
                    &b.node
                };
                match lan_family.get(bridge.as_str()) {
                    Some((first, fl)) if first.address.is_ipv4() != h.address.is_ipv4() => problems
                        .add(
                            l.line,
                            format!(
                                "link {}: bridge {bridge} has ports on host {} ({}, line {fl}) \
                                 and {} ({}): the hosts of a LAN must have addresses of one family",
                                l.label(),
                                first.name,
                                first.address,
                                h.name,
                                h.address
                            ),
                        ),
                    Some(_) => {}
                    None => {
                        lan_family.insert(bridge, (h, l.line));
                    }
                }
            }
            _ => {}
        }
    }
}

/// Resolves one node from its levels (most specific first).
fn resolve_node(
    name: &str,
    kind: Kind,
    l: u64,
    levels: &Levels,
    dir: &Path,
    problems: &mut Problems,
) -> Option<Node> {
    let n = problems.list.len();
    let image = levels.first(|d| d.image.as_ref());
    let cmd = levels.first(|d| d.cmd.as_ref());
    let hostname = levels.first(|d| d.hostname.as_ref());
    let exec = levels.concat(|d| d.exec.as_ref());
    let binds = levels.concat(|d| d.binds.as_ref());
    let caps = levels.concat(|d| d.cap_add.as_ref());
    let env = levels.merge(|d| d.env.as_ref());
    let sysctls = levels.merge(|d| d.sysctls.as_ref());
    if kind == Kind::Bridge {
        // A bridge runs nothing: what only a container can use is a mistake on it, unless it was
        // inherited from the defaults (which apply to every node).
        let own = levels.levels[0];
        for (field, set) in [
            ("image", own.image.as_ref().map(line)),
            ("cmd", own.cmd.as_ref().map(line)),
            ("exec", own.exec.as_ref().and_then(|v| v.first()).map(line)),
            (
                "env",
                own.env
                    .as_ref()
                    .and_then(|v| v.0.first())
                    .map(|(k, _)| line(k)),
            ),
            (
                "binds",
                own.binds.as_ref().and_then(|v| v.first()).map(line),
            ),
            ("hostname", own.hostname.as_ref().map(line)),
        ] {
            if let Some(fl) = set {
                problems.add(
                    fl,
                    format!(
                        "bridge \"{name}\": `{field}` is for containers, a bridge runs nothing"
                    ),
                );
            }
        }
        return (problems.list.len() == n).then(|| Node {
            name: name.to_string(),
            kind,
            line: l,
            host: None,
            image: None,
            cmd: None,
            exec: Vec::new(),
            env: BTreeMap::new(),
            binds: Vec::new(),
            hostname: String::new(),
            sysctls: BTreeMap::new(),
            cap_add: Vec::new(),
        });
    }
    let image = match image {
        None => {
            problems.add(
                l,
                format!(
                    "node \"{name}\" has no image: set `image:` (an image file, busybox, \
                     debootstrap:SUITE, oci:LAYOUT:TAG or tar:FILE) on it, its kind or the defaults"
                ),
            );
            None
        }
        Some(i) => match ImageSource::parse(&i.value, dir).and_then(|s| s.check().map(|()| s)) {
            Ok(s) => Some(s),
            Err(e) => {
                problems.add(line(i), format!("node \"{name}\": image: {e}"));
                None
            }
        },
    };
    let cmd = cmd.and_then(|c| match split_words(&c.value) {
        Ok(w) => Some(w),
        Err(e) => {
            problems.add(line(c), format!("node \"{name}\": cmd: {e}"));
            None
        }
    });
    let mut exec_argv = Vec::new();
    for e in exec {
        match split_words(&e.value) {
            Ok(w) => exec_argv.push(w),
            Err(msg) => problems.add(line(e), format!("node \"{name}\": exec: {msg}")),
        }
    }
    let mut by_dst: BTreeMap<String, Bind> = BTreeMap::new();
    for b in binds {
        match parse_bind(&b.value, dir) {
            Ok(bind) => {
                by_dst.insert(bind.dst.clone(), bind);
            }
            Err(e) => problems.add(line(b), format!("node \"{name}\": binds: {e}")),
        }
    }
    let mut env_out = BTreeMap::new();
    for (k, (kl, v)) in env {
        if k.is_empty() || k.contains('=') || k.contains('\0') || v.contains('\0') {
            problems.add(
                kl,
                format!("node \"{name}\": env \"{k}\" is not a variable name"),
            );
        } else {
            env_out.insert(k, v);
        }
    }
    let mut sysctl_out = BTreeMap::new();
    for (k, (kl, v)) in sysctls {
        let ok_key = !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-/".contains(c));
        if !ok_key || v.is_empty() || v.contains(char::is_whitespace) {
            problems.add(
                kl,
                format!("node \"{name}\": sysctl \"{k}: {v}\" is not a kernel parameter and value"),
            );
        } else {
            sysctl_out.insert(k, v);
        }
    }
    let mut cap_out = Vec::new();
    for c in caps {
        let cap = c.value.trim_start_matches("CAP_").to_ascii_uppercase();
        if cap.is_empty() || !cap.chars().all(|ch| ch.is_ascii_uppercase() || ch == '_') {
            problems.add(
                line(c),
                format!(
                    "node \"{name}\": cap-add \"{}\" is not a capability",
                    c.value
                ),
            );
        } else if !cap_out.contains(&cap) {
            cap_out.push(cap);
        }
    }
    let hostname = match hostname {
        Some(h) => {
            let ok = !h.value.is_empty()
                && h.value.len() <= 63
                && h.value.split('.').all(|p| {
                    !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                });
            if !ok {
                problems.add(
                    line(h),
                    format!(
                        "node \"{name}\": hostname \"{}\" is not a valid hostname",
                        h.value
                    ),
                );
            }
            h.value.clone()
        }
        // containerlab's default, made a valid hostname ('_' is not allowed in one).
        None => name.replace('_', "-"),
    };
    (problems.list.len() == n).then(|| Node {
        name: name.to_string(),
        kind,
        line: l,
        host: None,
        image,
        cmd,
        exec: exec_argv,
        env: env_out,
        binds: by_dst.into_values().collect(),
        hostname,
        sysctls: sysctl_out,
        cap_add: cap_out,
    })
}

/// Resolves link number `index` (1-based), checking its endpoints against the nodes.
fn resolve_link(
    index: usize,
    link: &Spanned<raw::LinkDef>,
    nodes: &[Node],
    all_nodes: &BTreeMap<String, u64>,
    used: &mut BTreeMap<(String, String), u64>,
    problems: &mut Problems,
) -> Option<Link> {
    let l = line(link);
    let link = &link.value;
    let what = format!("link {index}");
    let n = problems.list.len();
    if let Some(t) = &link.kind {
        if t.value != "veth" {
            problems.add(
                line(t),
                format!(
                    "{what}: type \"{}\" is not one cloon makes: use veth (or the brief form)",
                    t.value
                ),
            );
            return None;
        }
    }
    let Some(eps) = &link.endpoints else {
        problems.add(
            l,
            format!("{what} has no endpoints: give two, e.g. endpoints: [\"a:eth1\", \"b:eth1\"]"),
        );
        return None;
    };
    if eps.value.len() != 2 {
        problems.add(
            line(eps),
            format!("{what} has {} endpoints: a link has two", eps.value.len()),
        );
        return None;
    }
    let brief_v4 = link.ipv4.as_deref().unwrap_or_default();
    let brief_v6 = link.ipv6.as_deref().unwrap_or_default();
    for (list, field) in [(brief_v4, "ipv4"), (brief_v6, "ipv6")] {
        if list.len() > 2 {
            problems.add(
                line(&list[2]),
                format!("{what}: {field} has more entries than the link has endpoints"),
            );
        }
    }
    let mut ends = Vec::new();
    for (i, ep) in eps.value.iter().enumerate() {
        let el = line(ep);
        let (node, iface, mac, v4, v6) = match &ep.value {
            raw::EndpointDef::Brief(s) => {
                let Some((node, iface)) = s.split_once(':') else {
                    problems.add(
                        el,
                        format!("{what}: endpoint \"{s}\" is not NODE:INTERFACE"),
                    );
                    continue;
                };
                let v4 = brief_v4.get(i).filter(|a| !a.value.is_empty());
                let v6 = brief_v6.get(i).filter(|a| !a.value.is_empty());
                (node.to_string(), iface.to_string(), None, v4, v6)
            }
            raw::EndpointDef::Extended(m) => {
                if link.ipv4.is_some() || link.ipv6.is_some() {
                    problems.add(
                        el,
                        format!("{what}: with endpoints as maps, give ipv4/ipv6 on each endpoint"),
                    );
                }
                let (Some(node), Some(iface)) = (&m.node, &m.interface) else {
                    problems.add(
                        el,
                        format!(
                            "{what}: endpoint {} needs both `node` and `interface`",
                            i + 1
                        ),
                    );
                    continue;
                };
                (
                    node.value.clone(),
                    iface.value.clone(),
                    m.mac.as_ref(),
                    m.ipv4.as_ref(),
                    m.ipv6.as_ref(),
                )
            }
        };
        let label = format!("{node}:{iface}");
        if !all_nodes.contains_key(&node) {
            let known: Vec<&str> = all_nodes.keys().map(String::as_str).collect();
            problems.add(
                el,
                format!(
                    "{what}: endpoint \"{label}\" names the node \"{node}\", which is not in topology.nodes (there are: {})",
                    known.join(", ")
                ),
            );
            continue;
        }
        if let Err(e) = check_interface(&iface) {
            problems.add(el, format!("{what}: endpoint \"{label}\": {e}"));
            continue;
        }
        if let Some(first) = used.insert((node.clone(), iface.clone()), el) {
            problems.add(
                el,
                format!("{what}: endpoint \"{label}\" is already used by a link at line {first}: an interface has one link"),
            );
            continue;
        }
        let mac = match mac {
            Some(m) => match check_mac(&m.value) {
                Ok(m) => Some(m),
                Err(e) => {
                    problems.add(line(m), format!("{what}: endpoint \"{label}\": mac {e}"));
                    None
                }
            },
            None => None,
        };
        let mut addrs = Vec::new();
        for (a, v6) in [(v4, false), (v6, true)] {
            if let Some(a) = a {
                match check_cidr(&a.value, v6) {
                    Ok(a) => addrs.push(a),
                    Err(e) => problems.add(
                        line(a),
                        format!(
                            "{what}: endpoint \"{label}\": {} {e}",
                            if v6 { "ipv6" } else { "ipv4" }
                        ),
                    ),
                }
            }
        }
        ends.push(Endpoint {
            node,
            interface: iface,
            mac,
            addrs,
        });
    }
    let kind_of = |e: &Endpoint| nodes.iter().find(|n| n.name == e.node).map(|n| n.kind);
    if ends.len() == 2 {
        match (kind_of(&ends[0]), kind_of(&ends[1])) {
            (Some(Kind::Bridge), Some(Kind::Bridge)) => problems.add(
                l,
                format!(
                    "{what}: {} joins two bridges: link containers to bridges",
                    ends[0].node.clone() + " -- " + &ends[1].node
                ),
            ),
            _ if ends[0].node == ends[1].node => problems.add(
                l,
                format!(
                    "{what}: both ends are on node \"{}\": a link joins two nodes",
                    ends[0].node
                ),
            ),
            _ => {}
        }
        for e in &ends {
            if kind_of(e) == Some(Kind::Bridge) && (e.mac.is_some() || !e.addrs.is_empty()) {
                problems.add(
                    l,
                    format!(
                        "{what}: endpoint \"{}\" is a bridge port: it takes no address or MAC",
                        e.label()
                    ),
                );
            }
        }
    }
    let mtu = link.mtu.as_ref().and_then(|m| {
        if (68..=65535).contains(&m.value) {
            Some(m.value)
        } else {
            problems.add(
                line(m),
                format!("{what}: mtu {} is out of range (68 to 65535)", m.value),
            );
            None
        }
    });
    let netem = link
        .netem
        .as_ref()
        .and_then(|n| resolve_netem(&what, n, problems));
    if problems.list.len() != n || ends.len() != 2 {
        return None;
    }
    let [a, b]: [Endpoint; 2] = ends.try_into().ok()?;
    Some(Link {
        line: l,
        ends: [a, b],
        mtu,
        netem,
    })
}

/// Parses a link's `netem:`.
fn resolve_netem(what: &str, n: &Spanned<raw::NetemDef>, problems: &mut Problems) -> Option<Netem> {
    let before = problems.list.len();
    let def = &n.value;
    let mut out = Netem::default();
    let field = |v: &Option<Spanned<raw::Scalar>>| v.as_ref().map(|v| (line(v), v.value.0.clone()));
    macro_rules! parse {
        ($name:literal, $src:expr, $parser:path, $dst:expr) => {
            if let Some((l, t)) = field($src) {
                match $parser(&t) {
                    Ok(v) => $dst = Some(v),
                    Err(e) => problems.add(l, format!("{what}: netem {}: {e}", $name)),
                }
            }
        };
    }
    parse!("delay", &def.delay, netem::parse_duration, out.delay);
    parse!("jitter", &def.jitter, netem::parse_duration, out.jitter);
    parse!("loss", &def.loss, netem::parse_percent, out.loss);
    parse!("rate", &def.rate, netem::parse_rate, out.rate);
    parse!("corrupt", &def.corrupt, netem::parse_percent, out.corrupt);
    parse!(
        "duplicate",
        &def.duplicate,
        netem::parse_percent,
        out.duplicate
    );
    if out.jitter.is_some() && out.delay.is_none() {
        problems.add(
            line(n),
            format!("{what}: netem jitter needs a delay to vary"),
        );
    }
    if problems.list.len() != before {
        return None;
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests;
