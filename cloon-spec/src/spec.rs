//! The OCI runtime configuration (`config.json`) of a cloon container, built with oci-spec to match
//! what `crun spec` writes, then edited the way the article's sed commands do (root path, writable
//! root, no terminal, the network namespace, CAP_NET_RAW and CAP_NET_ADMIN), with booleans that
//! are booleans.

use cloon_core::{cgroups, Error, Result};
use oci_spec::runtime::{
    Capabilities, Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxDeviceCgroupBuilder,
    LinuxNamespaceBuilder, LinuxNamespaceType, LinuxResourcesBuilder, Mount, MountBuilder,
    PosixRlimitBuilder, PosixRlimitType, ProcessBuilder, RootBuilder, Spec, SpecBuilder,
    UserBuilder,
};
use serde_json::Value;
use std::path::{Component, Path, PathBuf};

/// The `ociVersion` written, the one `crun spec` (1.8) writes.
pub const OCI_VERSION: &str = "1.0.0";

/// The search path given to the container's process, as `crun spec` sets it.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The process run when no command is given: one that lives until the container is killed.
/// `sleep infinity` works with busybox's sleep and with coreutils' (Debian).
pub const DEFAULT_ARGS: [&str; 2] = ["sleep", "infinity"];

/// Capabilities `crun spec` grants.
pub const BASE_CAPS: [Capability; 3] = [
    Capability::AuditWrite,
    Capability::Kill,
    Capability::NetBindService,
];

/// Capabilities the article adds for a network lab.
pub const LAB_CAPS: [Capability; 2] = [Capability::NetRaw, Capability::NetAdmin];

/// A host directory or file bind-mounted into the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub source: PathBuf,
    pub destination: PathBuf,
    pub readonly: bool,
}

/// Everything the configuration depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inputs {
    /// The root filesystem, absolute.
    pub rootfs: PathBuf,
    /// The network namespace to join; `None` gives the container a fresh one.
    pub netns: Option<PathBuf>,
    pub hostname: String,
    /// Capabilities added to the base and lab ones.
    pub caps: Vec<Capability>,
    /// `KEY=VALUE` entries added to (or replacing) PATH and TERM.
    pub env: Vec<String>,
    pub binds: Vec<Bind>,
    /// Kernel parameters the runtime sets in the container's namespaces (`linux.sysctl`).
    pub sysctl: Vec<(String, String)>,
    /// The process; empty means [`DEFAULT_ARGS`].
    pub args: Vec<String>,
    /// The process's working directory; `None` means `/`.
    pub cwd: Option<String>,
    /// How the container is placed in cgroups, said in the annotation [`cgroups::ANNOTATION`].
    pub cgroups: cgroups::Mode,
    /// The container's cgroup, relative to each hierarchy's root (`linux.cgroupsPath`);
    /// `None` leaves the runtime's default (`/ID`).
    pub cgroup: Option<String>,
}

/// Parses a capability name: `NET_ADMIN`, `CAP_NET_ADMIN` (any case).
pub fn parse_cap(text: &str) -> Result<Capability> {
    let upper = text.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    bare.parse::<Capability>().map_err(|_| {
        Error::invalid(format!(
            "unknown capability \"{}\": give a name from capabilities(7), such as NET_ADMIN or CAP_SYS_ADMIN",
            text.escape_debug()
        ))
    })
}

/// Checks a `KEY=VALUE` environment entry; the key is a shell variable name.
pub fn parse_env(text: &str) -> Result<String> {
    let bad = |why: &str| {
        Error::invalid(format!(
            "--env \"{}\" is not usable: {why}",
            text.escape_debug()
        ))
    };
    let Some((key, value)) = text.split_once('=') else {
        return Err(bad("write it as KEY=VALUE"));
    };
    let mut chars = key.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(bad(
            "the key must be letters, digits and '_', not starting with a digit",
        ));
    }
    if value.contains('\0') {
        return Err(bad("the value contains a NUL byte"));
    }
    Ok(text.to_string())
}

/// Checks a `--sysctl KEY=VALUE` value, e.g. `net.ipv4.ip_forward=1`.
pub fn parse_sysctl(text: &str) -> Result<(String, String)> {
    let bad = || {
        Error::invalid(format!(
            "--sysctl {text:?} is not KEY=VALUE with a kernel parameter name: \
             write for example net.ipv4.ip_forward=1"
        ))
    };
    let (key, value) = text.split_once('=').ok_or_else(bad)?;
    let key_ok = !key.is_empty()
        && !key.starts_with('.')
        && !key.contains("..")
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/".contains(c));
    if !key_ok || value.is_empty() || value.contains(['\n', '\0']) {
        return Err(bad());
    }
    Ok((key.to_string(), value.to_string()))
}

/// Parses `SRC:DST[:ro|:rw]`: SRC an absolute path that exists on the host, DST an absolute path
/// in the container.
pub fn parse_bind(text: &str) -> Result<Bind> {
    let bad = |why: String| {
        Error::invalid(format!(
            "--bind \"{}\" is not usable: {why}",
            text.escape_debug()
        ))
    };
    let parts: Vec<&str> = text.split(':').collect();
    let (src, dst, readonly) = match parts.as_slice() {
        [src, dst] => (*src, *dst, false),
        [src, dst, "ro"] => (*src, *dst, true),
        [src, dst, "rw"] => (*src, *dst, false),
        [_, _, opt] => return Err(bad(format!("the option \"{opt}\" is neither ro nor rw"))),
        _ => return Err(bad("write it as SRC:DST or SRC:DST:ro".into())),
    };
    let (source, destination) = (PathBuf::from(src), PathBuf::from(dst));
    for (what, p) in [("the source", &source), ("the destination", &destination)] {
        if !p.is_absolute() {
            return Err(bad(format!("{what} must be an absolute path")));
        }
        if p.components().any(|c| c == Component::ParentDir) {
            return Err(bad(format!("{what} must not contain \"..\"")));
        }
    }
    if std::fs::symlink_metadata(&source).is_err() {
        return Err(bad(format!(
            "{} does not exist on the host",
            source.display()
        )));
    }
    Ok(Bind {
        source,
        destination,
        readonly,
    })
}

/// Checks a hostname: letters, digits, '-' and '.', at most 64 bytes.
pub fn check_hostname(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && !name.starts_with(['-', '.']);
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "hostname \"{}\" is not valid: use at most 64 letters, digits, '-' and '.'",
            name.escape_debug()
        )))
    }
}

/// The hostname of a container named `name` (a valid container name): the name itself, with each
/// character a hostname cannot hold (`_`) made a `-`, so that every name the other tools accept
/// (the article's own `cloonix_1_1` among them) gets a container.
pub fn hostname_of(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The container's environment: PATH and TERM, then `extra`; a key given again replaces the
/// earlier entry in place.
pub fn environment(extra: &[String]) -> Vec<String> {
    let mut env = vec![format!("PATH={DEFAULT_PATH}"), "TERM=xterm".to_string()];
    for entry in extra {
        let key = entry.split('=').next().unwrap_or_default();
        match env.iter_mut().find(|e| e.split('=').next() == Some(key)) {
            Some(slot) => *slot = entry.clone(),
            None => env.push(entry.clone()),
        }
    }
    env
}

/// The process's command: the given arguments, or [`DEFAULT_ARGS`].
pub fn command(args: &[String]) -> Vec<String> {
    if args.is_empty() {
        DEFAULT_ARGS.iter().map(|s| s.to_string()).collect()
    } else {
        args.to_vec()
    }
}

fn oci<T>(r: std::result::Result<T, oci_spec::OciSpecError>) -> Result<T> {
    r.map_err(|e| Error::config("cannot build the OCI configuration").details(e))
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn mount(dst: &str, typ: &str, src: &str, options: &[&str]) -> Result<Mount> {
    let mut b = MountBuilder::default()
        .destination(dst)
        .typ(typ)
        .source(src);
    if !options.is_empty() {
        b = b.options(strings(options));
    }
    oci(b.build())
}

/// The mounts `crun spec` lists, in its order.
fn crun_mounts() -> Result<Vec<Mount>> {
    Ok(vec![
        mount("/proc", "proc", "proc", &[])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        )?,
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        )?,
    ])
}

fn bind_mount(bind: &Bind) -> Result<Mount> {
    let mut options = vec!["rbind".to_string()];
    if bind.readonly {
        options.push("ro".to_string());
    }
    oci(MountBuilder::default()
        .destination(bind.destination.clone())
        .typ("bind")
        .source(bind.source.clone())
        .options(options)
        .build())
}

/// The paths `crun spec` masks.
pub const MASKED_PATHS: [&str; 10] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
];

/// The paths `crun spec` makes read-only.
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Builds the configuration.
pub fn build(inputs: &Inputs) -> Result<Spec> {
    let granted: Capabilities = BASE_CAPS
        .iter()
        .chain(LAB_CAPS.iter())
        .chain(inputs.caps.iter())
        .copied()
        .collect();
    let caps = oci(LinuxCapabilitiesBuilder::default()
        .bounding(granted.clone())
        .effective(granted.clone())
        .inheritable(Capabilities::new())
        .permitted(granted.clone())
        .ambient(granted)
        .build())?;
    let process = oci(ProcessBuilder::default()
        .terminal(false)
        .user(oci(UserBuilder::default().uid(0u32).gid(0u32).build())?)
        .args(command(&inputs.args))
        .env(environment(&inputs.env))
        .cwd(inputs.cwd.as_deref().unwrap_or("/"))
        .capabilities(caps)
        .rlimits(vec![oci(PosixRlimitBuilder::default()
            .typ(PosixRlimitType::RlimitNofile)
            .hard(1024u64)
            .soft(1024u64)
            .build())?])
        .no_new_privileges(true)
        .build())?;

    let mut network = LinuxNamespaceBuilder::default().typ(LinuxNamespaceType::Network);
    if let Some(path) = &inputs.netns {
        network = network.path(path.clone());
    }
    let ns = |typ| oci(LinuxNamespaceBuilder::default().typ(typ).build());
    let namespaces = vec![
        ns(LinuxNamespaceType::Pid)?,
        oci(network.build())?,
        ns(LinuxNamespaceType::Ipc)?,
        ns(LinuxNamespaceType::Uts)?,
        ns(LinuxNamespaceType::Mount)?,
    ];
    let deny_all = oci(LinuxDeviceCgroupBuilder::default()
        .allow(false)
        .access("rwm")
        .build())?;
    let mut linux = oci(LinuxBuilder::default()
        .resources(oci(LinuxResourcesBuilder::default()
            .devices(vec![deny_all])
            .build())?)
        .namespaces(namespaces)
        .sysctl(
            inputs
                .sysctl
                .iter()
                .cloned()
                .collect::<std::collections::HashMap<_, _>>(),
        )
        .masked_paths(strings(&MASKED_PATHS))
        .readonly_paths(strings(&READONLY_PATHS))
        .build())?;
    if let Some(cgroup) = &inputs.cgroup {
        linux.set_cgroups_path(Some(PathBuf::from(format!("/{cgroup}"))));
    }

    let mut mounts = crun_mounts()?;
    for bind in &inputs.binds {
        mounts.push(bind_mount(bind)?);
    }
    let root = oci(RootBuilder::default()
        .path(inputs.rootfs.clone())
        .readonly(false)
        .build())?;
    let mut spec = oci(SpecBuilder::default()
        .version(OCI_VERSION)
        .root(root)
        .mounts(mounts)
        .process(process)
        .hostname(inputs.hostname.clone())
        .linux(linux)
        .build())?;
    // The builder starts from Spec::default(), which has an empty annotations map; `crun spec`
    // writes none. cloon's one annotation says the cgroup mode, which cloon-run follows.
    spec.set_annotations(Some(
        [(
            cgroups::ANNOTATION.to_string(),
            inputs.cgroups.as_str().to_string(),
        )]
        .into(),
    ));
    Ok(spec)
}

/// The configuration as JSON, the same bytes for the same configuration: the capability sets,
/// hash sets in oci-spec, are written sorted.
pub fn to_json(spec: &Spec) -> Result<String> {
    let mut value = serde_json::to_value(spec)
        .map_err(|e| Error::config("cannot serialize the OCI configuration").details(e))?;
    if let Some(Value::Object(sets)) = value.pointer_mut("/process/capabilities") {
        for set in sets.values_mut() {
            if let Value::Array(caps) = set {
                caps.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            }
        }
    }
    // linux.sysctl is a hash map in oci-spec: write its keys sorted, and leave it out when empty
    // (as `crun spec` does).
    if let Some(Value::Object(linux)) = value.pointer_mut("/linux") {
        match linux.get("sysctl") {
            Some(Value::Object(map)) if !map.is_empty() => {
                let mut entries: Vec<(String, Value)> =
                    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                linux.insert(
                    "sysctl".into(),
                    Value::Object(entries.into_iter().collect()),
                );
            }
            Some(_) => {
                linux.shift_remove("sysctl");
            }
            None => {}
        }
    }
    let mut text = serde_json::to_string_pretty(&value)
        .map_err(|e| Error::config("cannot serialize the OCI configuration").details(e))?;
    text.push('\n');
    Ok(text)
}

/// The search path the process will use: the PATH entry of its environment.
pub fn search_path(env: &[String]) -> String {
    env.iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH)
        .to_string()
}

/// Whether `path` is absolute; the error names what it is for.
pub fn require_absolute(what: &str, path: &Path) -> Result<()> {
    if path.is_absolute() {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "{what} {} must be an absolute path",
            path.display()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn typical() -> Inputs {
        Inputs {
            rootfs: "/run/cloon/Cloon1/rootfs".into(),
            netns: Some("/run/netns/cloonix_1_1".into()),
            hostname: "Cloon1".into(),
            caps: vec![parse_cap("SYS_ADMIN").unwrap()],
            env: vec!["A=1".into(), "TERM=vt100".into()],
            binds: vec![Bind {
                source: "/srv".into(),
                destination: "/mnt/srv".into(),
                readonly: true,
            }],
            sysctl: vec![
                ("net.ipv4.ip_forward".into(), "1".into()),
                ("net.ipv4.conf.all.rp_filter".into(), "0".into()),
            ],
            args: vec!["sh".into(), "-c".into(), "sleep 1".into()],
            cwd: None,
            cgroups: cgroups::Mode::Cloon,
            cgroup: Some("cloon/0123456789abcdef/Cloon1".into()),
        }
    }

    #[test]
    fn the_cgroup_is_under_the_state_directorys_parent() {
        let v = value(&typical());
        assert_eq!(v["linux"]["cgroupsPath"], "/cloon/0123456789abcdef/Cloon1");
    }

    #[test]
    fn sysctls_are_written_sorted_and_checked() {
        let v = value(&typical());
        let keys: Vec<&String> = v["linux"]["sysctl"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["net.ipv4.conf.all.rp_filter", "net.ipv4.ip_forward"]);
        assert_eq!(v["linux"]["sysctl"]["net.ipv4.ip_forward"], "1");
        assert_eq!(
            parse_sysctl("net.ipv6.conf.all.forwarding=1").unwrap(),
            ("net.ipv6.conf.all.forwarding".into(), "1".into())
        );
        for bad in [
            "",
            "=1",
            "net.ipv4.ip_forward",
            "net.ipv4.ip_forward=",
            "../x=1",
            "a b=1",
        ] {
            assert!(parse_sysctl(bad).is_err(), "{bad:?} accepted");
        }
    }

    fn value(inputs: &Inputs) -> Value {
        serde_json::from_str(&to_json(&build(inputs).unwrap()).unwrap()).unwrap()
    }

    #[test]
    fn typical_inputs_give_the_intended_fields() {
        let v = value(&typical());
        assert_eq!(v["ociVersion"], OCI_VERSION);
        assert_eq!(
            v["root"],
            json!({"path": "/run/cloon/Cloon1/rootfs", "readonly": false})
        );
        assert_eq!(v["hostname"], "Cloon1");
        assert_eq!(v["annotations"], json!({"org.cloon.cgroups": "cloon"}));
        let p = &v["process"];
        assert_eq!(p["terminal"], false);
        assert_eq!(p["user"], json!({"uid": 0, "gid": 0}));
        assert_eq!(p["args"], json!(["sh", "-c", "sleep 1"]));
        assert_eq!(
            p["env"],
            json!([format!("PATH={DEFAULT_PATH}"), "TERM=vt100", "A=1"])
        );
        assert_eq!(p["cwd"], "/");
        assert_eq!(p["noNewPrivileges"], true);
        assert_eq!(
            p["rlimits"],
            json!([{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}])
        );
        let granted = json!([
            "CAP_AUDIT_WRITE",
            "CAP_KILL",
            "CAP_NET_ADMIN",
            "CAP_NET_BIND_SERVICE",
            "CAP_NET_RAW",
            "CAP_SYS_ADMIN"
        ]);
        for set in ["bounding", "effective", "permitted", "ambient"] {
            assert_eq!(p["capabilities"][set], granted, "{set}");
        }
        assert_eq!(p["capabilities"]["inheritable"], json!([]));
        let l = &v["linux"];
        assert_eq!(
            l["namespaces"],
            json!([
                {"type": "pid"},
                {"type": "network", "path": "/run/netns/cloonix_1_1"},
                {"type": "ipc"},
                {"type": "uts"},
                {"type": "mount"}
            ])
        );
        assert_eq!(
            l["resources"],
            json!({"devices": [{"allow": false, "access": "rwm"}]})
        );
        assert_eq!(
            l["maskedPaths"].as_array().unwrap().len(),
            MASKED_PATHS.len()
        );
        assert_eq!(l["readonlyPaths"], json!(READONLY_PATHS));
        let mounts = v["mounts"].as_array().unwrap();
        assert_eq!(mounts.len(), 8);
        assert_eq!(
            mounts[0],
            json!({"destination": "/proc", "type": "proc", "source": "proc"})
        );
        assert_eq!(
            mounts[7],
            json!({"destination": "/mnt/srv", "type": "bind", "source": "/srv", "options": ["rbind", "ro"]})
        );
    }

    #[test]
    fn defaults_without_netns_command_or_extras() {
        let inputs = Inputs {
            rootfs: "/r".into(),
            netns: None,
            hostname: "h".into(),
            caps: vec![],
            env: vec![],
            binds: vec![],
            sysctl: vec![],
            args: vec![],
            cwd: None,
            cgroups: cgroups::Mode::None,
            cgroup: None,
        };
        let v = value(&inputs);
        assert!(v["linux"].get("cgroupsPath").is_none(), "{v}");
        assert_eq!(v["annotations"], json!({"org.cloon.cgroups": "none"}));
        assert!(
            v["linux"].get("sysctl").is_none(),
            "an empty sysctl is left out"
        );
        assert_eq!(v["process"]["args"], json!(["sleep", "infinity"]));
        assert_eq!(v["linux"]["namespaces"][1], json!({"type": "network"}));
        assert_eq!(v["process"]["env"].as_array().unwrap().len(), 2);
        assert_eq!(v["mounts"].as_array().unwrap().len(), 7);
        assert_eq!(
            v["process"]["capabilities"]["bounding"]
                .as_array()
                .unwrap()
                .len(),
            5
        );
    }

    #[test]
    fn bytes_are_deterministic() {
        let mut inputs = typical();
        inputs.caps = ["CHOWN", "SYS_PTRACE", "MKNOD", "SETUID", "SYSLOG"]
            .iter()
            .map(|c| parse_cap(c).unwrap())
            .collect();
        let first = to_json(&build(&inputs).unwrap()).unwrap();
        for _ in 0..8 {
            assert_eq!(to_json(&build(&inputs).unwrap()).unwrap(), first);
        }
        assert!(first.ends_with("}\n"));
    }

    #[test]
    fn capabilities_accept_both_spellings_and_refuse_unknown_ones() {
        assert_eq!(parse_cap("NET_ADMIN").unwrap(), Capability::NetAdmin);
        assert_eq!(parse_cap("CAP_NET_ADMIN").unwrap(), Capability::NetAdmin);
        assert_eq!(parse_cap("cap_sys_time").unwrap(), Capability::SysTime);
        for bad in ["", "CAP_", "NET_ADMINS", "CAP_CAP_NET_ADMIN", "ALL"] {
            let err = parse_cap(bad).unwrap_err();
            assert_eq!(err.code, cloon_core::Code::InvalidArgument);
            assert!(err.msg.contains("unknown capability"), "{}", err.msg);
        }
    }

    #[test]
    fn environment_entries_are_checked_and_replace_in_place() {
        parse_env("A=").unwrap();
        parse_env("_X1=a=b").unwrap();
        for bad in ["A", "=1", "1A=x", "A B=1", "A-B=1", "A=x\0y"] {
            let err = parse_env(bad).unwrap_err();
            assert!(err.msg.starts_with("--env"), "{}", err.msg);
        }
        let env = environment(&["PATH=/bin".into(), "B=1".into(), "B=2".into()]);
        assert_eq!(env, ["PATH=/bin", "TERM=xterm", "B=2"]);
        assert_eq!(search_path(&env), "/bin");
    }

    #[test]
    fn binds_are_checked() {
        let tmp = std::env::temp_dir();
        let t = tmp.display();
        let b = parse_bind(&format!("{t}:/data:ro")).unwrap();
        assert_eq!(
            b,
            Bind {
                source: tmp.clone(),
                destination: "/data".into(),
                readonly: true
            }
        );
        assert!(!parse_bind(&format!("{t}:/data")).unwrap().readonly);
        assert!(!parse_bind(&format!("{t}:/data:rw")).unwrap().readonly);
        let cases = [
            (format!("{t}"), "SRC:DST"),
            (format!("{t}:/d:rx"), "neither ro nor rw"),
            (format!("{t}:d"), "absolute"),
            ("tmp:/d".to_string(), "absolute"),
            (format!("{t}:/d/../e"), ".."),
            ("/nonexistent/cloon/x:/d".to_string(), "does not exist"),
            (format!("{t}:/d:ro:x"), "SRC:DST"),
        ];
        for (text, why) in cases {
            let err = parse_bind(&text).unwrap_err();
            assert!(err.msg.contains(why), "{text}: {}", err.msg);
        }
    }

    #[test]
    fn hostnames_are_checked() {
        check_hostname("Cloon1").unwrap();
        check_hostname("a.b-c").unwrap();
        for bad in ["", "-a", "a b", "a_b", &"x".repeat(65)] {
            assert!(check_hostname(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_container_name_gets_a_valid_hostname() {
        assert_eq!(hostname_of("Cloon1"), "Cloon1");
        assert_eq!(hostname_of("cloonix_1_1"), "cloonix-1-1");
        for name in ["a_b", "x.y-z_w", "0_", &"y".repeat(64)] {
            cloon_core::name::container(name).unwrap();
            check_hostname(&hostname_of(name)).unwrap();
        }
    }
}
