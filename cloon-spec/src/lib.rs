//! cloon-spec: the article's step 4. Writes the OCI bundle of a container (`crun spec`, then the
//! article's edits: root path, writable root, no terminal, the network namespace, CAP_NET_RAW and
//! CAP_NET_ADMIN) and adds the `bundle` part to the document.
//!
//! The bundle lives in the state directory, `<state>/<name>/bundle/config.json`, next to the
//! `spec` record that says cloon made it.

pub mod bundle;
pub mod command;
pub mod gc;
pub mod spec;
pub mod stage;

use cloon_core::cgroups::Mode;
use cloon_core::doc::{Bundle, Image, ImageConfig, Netns, Overlay};
use cloon_core::state::absolute;
use cloon_core::{cli, explain, inuse, netns, Code, Document, Error, Result, StateDir, Undo};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The stage name in error documents.
pub const STAGE: &str = "cloon-spec";
/// The key of this stage in the document.
pub const PART: &str = <Bundle as cloon_core::doc::Part>::KEY;
/// The name of this stage's record in the state directory.
pub const RECORD: &str = "spec";

/// Flags of `cloon-spec up`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct UpArgs {
    /// The container's name [default: the document's]
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// The root filesystem [default: the document's overlay.rootfs]
    #[arg(long, value_name = "DIR")]
    pub rootfs: Option<PathBuf>,
    /// The network namespace to join: a name under /run/netns, or a path [default: the
    /// document's netns.path; with neither, the container gets a fresh network namespace with
    /// only a loopback interface]
    #[arg(long, value_name = "NAME|PATH")]
    pub netns: Option<String>,
    /// A capability to grant besides AUDIT_WRITE, KILL, NET_BIND_SERVICE, NET_RAW and NET_ADMIN
    /// (NET_ADMIN or CAP_NET_ADMIN); repeatable
    #[arg(long = "cap-add", value_name = "CAP")]
    pub cap_add: Vec<String>,
    /// An environment variable besides PATH, TERM and the image's (or replacing them); repeatable
    #[arg(long, value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// A host path bind-mounted into the container, read-only with :ro; repeatable
    #[arg(long, value_name = "SRC:DST[:ro]")]
    pub bind: Vec<String>,
    /// The container's hostname [default: its name]
    #[arg(long, value_name = "HOSTNAME")]
    pub hostname: Option<String>,
    /// A kernel parameter set in the container's namespaces, e.g. net.ipv4.ip_forward=1 for a
    /// router; repeatable
    #[arg(long, value_name = "KEY=VALUE")]
    pub sysctl: Vec<String>,
    /// Where the container's processes go in the host's cgroups: none (no cgroup of its own,
    /// the fastest), cloon (/cloon/ID/NAME, a parent per state directory, i.e. per lab), or the
    /// runtime's default (host-wide names); cloon-run follows what the bundle says
    #[arg(long, value_enum, value_name = "MODE", default_value_t = Mode::None)]
    pub cgroups: Mode,
    /// The container's command, after `--` [default: the image's (image.config.args), else sleep
    /// infinity]
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<String>,
}

/// What `up` recorded in `<state>/<name>/spec.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecRecord {
    /// The bundle directory.
    pub bundle: String,
    /// Its config.json.
    pub config: String,
    /// The root filesystem the configuration names.
    pub rootfs: String,
    /// The network namespace joined, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<String>,
}

impl SpecRecord {
    /// The document's `bundle` part this record stands for.
    pub fn to_part(&self) -> Bundle {
        Bundle {
            path: self.bundle.clone(),
            config: self.config.clone(),
        }
    }
}

/// The bundle directory of `name`.
pub fn bundle_dir(state: &StateDir, name: &str) -> Result<PathBuf> {
    Ok(state.dir(name)?.join("bundle"))
}

/// `up`: builds the configuration, writes the bundle, records it, adds `bundle`.
pub fn up(state: &StateDir, args: &UpArgs, input: Option<Document>) -> Result<Document> {
    let mut doc = input.unwrap_or_default();
    let name = cli::pick_name(args.name.as_deref(), Some(&doc), STAGE)?;

    let rootfs = match &args.rootfs {
        Some(dir) => absolute(dir)?,
        None => match doc.part::<Overlay>()? {
            Some(overlay) => PathBuf::from(overlay.rootfs),
            None => {
                return Err(Error::config(
                    "cloon-spec needs a root filesystem: give --rootfs DIR, or the document of cloon-overlay",
                ))
            }
        },
    };
    spec::require_absolute("the root filesystem", &rootfs)?;

    let netns = match &args.netns {
        Some(value) => Some(netns::Target::parse(value)?.path()),
        None => doc.part::<Netns>()?.map(|n| PathBuf::from(n.path)),
    };
    if let Some(path) = &netns {
        spec::require_absolute("the network namespace", path)?;
        if !explain::acting() && std::fs::symlink_metadata(path).is_err() {
            explain::note(&format!(
                "dry run: the network namespace {} does not exist yet, it is not checked",
                path.display()
            ));
        } else if std::fs::symlink_metadata(path).is_err() {
            return Err(Error::new(
                Code::Unknown,
                format!(
                    "the network namespace {} does not exist: make it first (ip netns add, or cloon-netns), or drop --netns",
                    path.display()
                ),
            ));
        }
    }

    let caps = args
        .cap_add
        .iter()
        .map(|c| spec::parse_cap(c))
        .collect::<Result<Vec<_>>>()?;
    // The image's default process (an OCI image's), under the flags.
    let image = doc
        .part::<Image>()?
        .and_then(|i| i.config)
        .unwrap_or_default();
    let user_env = args
        .env
        .iter()
        .map(|e| spec::parse_env(e))
        .collect::<Result<Vec<_>>>()?;
    let env = image_env(&image, user_env);
    let binds = args
        .bind
        .iter()
        .map(|b| spec::parse_bind(b))
        .collect::<Result<Vec<_>>>()?;
    let hostname = match &args.hostname {
        Some(given) => {
            spec::check_hostname(given)?;
            given.clone()
        }
        None => {
            let derived = spec::hostname_of(&name);
            if derived != name {
                explain::note(&format!(
                    "the name \"{name}\" is not a valid hostname: the hostname is \"{derived}\" \
                     (give --hostname to choose another)"
                ));
            }
            derived
        }
    };
    let mut inputs = spec::Inputs {
        rootfs: rootfs.clone(),
        netns: netns.clone(),
        hostname,
        caps,
        env,
        binds,
        sysctl: args
            .sysctl
            .iter()
            .map(|s| spec::parse_sysctl(s))
            .collect::<Result<_>>()?,
        args: if args.args.is_empty() {
            image.args.clone()
        } else {
            args.args.clone()
        },
        cwd: image.cwd.clone().filter(|c| c.starts_with('/')),
        cgroups: args.cgroups,
        // Set once the state directory exists (below): its cgroup parent is named after it.
        cgroup: None,
    };
    let search = spec::search_path(&spec::environment(&inputs.env));
    if !rootfs.is_dir() {
        if explain::acting() {
            return Err(Error::new(
                Code::Unknown,
                format!(
                    "the root filesystem {} is not a directory: give --rootfs DIR, or the document of cloon-overlay",
                    rootfs.display()
                ),
            ));
        }
        explain::note(&format!(
            "dry run: the root filesystem {} does not exist yet, the command is not looked for in it",
            rootfs.display()
        ));
    }
    command::check(&rootfs, &spec::command(&inputs.args), &search)?;
    // Checked now, written once the record is claimed.
    spec::build(&inputs)?;

    let dir = bundle_dir(state, &name)?;
    let config_path = bundle::config_path(&dir);
    let record = SpecRecord {
        bundle: dir.display().to_string(),
        config: config_path.display().to_string(),
        rootfs: rootfs.display().to_string(),
        netns: netns.map(|p| p.display().to_string()),
    };
    // Write-ahead: the container's state directory is locked for the whole `up` (so that `gc`
    // leaves a record being written alone, and a second `up` of the name waits, then is refused),
    // and the record is written before the bundle, so that `down` finds what a killed `up` made.
    // The lock outlives the undo stack: a failure is undone under it.
    let _lock = if explain::acting() {
        explain::state_dir(state, &name)?;
        Some(state.lock(&name)?)
    } else {
        None
    };
    let mut undo = Undo::new();
    explain::claim(state, &mut undo, &name, RECORD, &record)?;
    // Under the state directory's own parent: two state directories (two labs) never share a
    // cgroup name, and a lab's containers can be read and limited as one.
    if args.cgroups == Mode::Cloon {
        inputs.cgroup = Some(format!("{}/{name}", state.cgroup_parent()?));
    }
    let config = spec::to_json(&spec::build(&inputs)?)?;
    let (d, st) = (dir.clone(), state.clone());
    undo.push(move || {
        let _ = bundle::remove(&st, &d);
    });
    if bundle::explain_write(&dir, &config) {
        bundle::write(state, &dir, &config)?;
    }

    doc.set_name(&name)?;
    doc.set(PART, &record.to_part());
    undo.commit();
    Ok(doc)
}

/// The environment given to the runtime config: the image's `KEY=VALUE` entries (malformed ones
/// dropped), then `--env`'s, which replace an image entry of the same key.
pub fn image_env(image: &ImageConfig, user: Vec<String>) -> Vec<String> {
    let mut env: Vec<String> = image
        .env
        .iter()
        .filter(|e| spec::parse_env(e).is_ok())
        .cloned()
        .collect();
    env.extend(user);
    env
}

/// `down` of `name`, for a caller that holds the lock of its state directory (or in a dry run):
/// removes the bundle and the record. What is already gone counts as done.
pub fn down_locked(state: &StateDir, name: &str) -> Result<()> {
    let dir = bundle_dir(state, name)?;
    let recorded = state.dir(name)?.join(format!("{RECORD}.json")).exists();
    if !recorded && !dir.exists() {
        explain::note(&format!(
            "cloon has no bundle for \"{name}\": nothing to undo"
        ));
        if explain::acting() {
            // What a tool killed before it wrote its record leaves: an empty directory.
            state.remove_dir_if_empty(name)?;
        }
        return Ok(());
    }
    let users = users(state, name)?;
    if !users.is_empty() {
        return Err(inuse::refusal(
            &format!("the bundle {} of \"{name}\"", dir.display()),
            &users,
        ));
    }
    bundle::remove(state, &dir)?;
    explain::release(state, name, RECORD)
}

/// `down --dry-run` of a bundle that the document's `bundle` part describes and that cloon has no
/// record of (a dry-run pipeline's script wrote it): says the commands that remove it, as
/// [`down_locked`] says them, and does nothing.
pub fn down_unrecorded(part: &Bundle) -> Result<()> {
    explain::step(&["rm", "-rf", "--one-file-system", &part.path]);
    Ok(())
}

/// Who uses the bundle of `name` (see [`inuse::bundle_users`]): the live containers cloon-run
/// recorded as made from it, and, where the root filesystem it names is a mount of its own (an
/// overlay of cloon-overlay), every process whose root is there (a container made from it by
/// hand). A record that cannot be read names no root filesystem.
pub fn users(state: &StateDir, name: &str) -> Result<Vec<inuse::User>> {
    let rootfs = state
        .load::<SpecRecord>(name, RECORD)
        .ok()
        .flatten()
        .map(|r| PathBuf::from(r.rootfs));
    inuse::bundle_users(state, &bundle_dir(state, name)?, rootfs.as_deref())
}

/// The record of `name` (what `show` prints), or [`Code::Unknown`].
pub fn record(state: &StateDir, name: &str) -> Result<SpecRecord> {
    state.require(name, RECORD, "bundle")
}

/// `check`: the recorded config.json exists and parses; returns the `bundle` part as recorded.
pub fn check(state: &StateDir, name: &str) -> Result<Bundle> {
    let rec = record(state, name)?;
    let config = PathBuf::from(&rec.config);
    if !config.is_file() {
        return Err(Error::new(
            Code::Drift,
            format!(
                "the bundle of \"{name}\" lost its config.json {}",
                config.display()
            ),
        ));
    }
    bundle::load(&config).map_err(|e| {
        Error::new(
            Code::Drift,
            format!("the config.json of \"{name}\" no longer parses"),
        )
        .details(e)
    })?;
    Ok(rec.to_part())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    fn state(tag: &str) -> (StateDir, PathBuf) {
        let root =
            std::env::temp_dir().join(format!("cloon-spec-lib-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        // A root filesystem with the commands the tests name (sh, and sleep for the default).
        let bin = root.join("rootfs/bin");
        fs::create_dir_all(&bin).unwrap();
        for command in ["sh", "sleep"] {
            fs::write(bin.join(command), "").unwrap();
            fs::set_permissions(bin.join(command), fs::Permissions::from_mode(0o755)).unwrap();
        }
        // A state directory is private (the root filesystem inside it is no container's).
        fs::set_permissions(&root, fs::Permissions::from_mode(0o700)).unwrap();
        (StateDir::new(Some(&root)).unwrap(), root)
    }

    #[test]
    fn up_check_show_down_without_root() {
        let (st, root) = state("cycle");
        let args = UpArgs {
            name: Some("C1".into()),
            rootfs: Some(root.join("rootfs")),
            cap_add: vec!["SYS_TIME".into()],
            ..Default::default()
        };
        let doc = up(&st, &args, None).unwrap();
        let b: Bundle = doc.get(PART).unwrap().unwrap();
        assert_eq!(Path::new(&b.config), root.join("C1/bundle/config.json"));
        assert_eq!(doc.name(), Some("C1"));
        let text = fs::read_to_string(&b.config).unwrap();
        assert!(text.contains("CAP_SYS_TIME") && text.contains("CAP_NET_ADMIN"));

        let again = up(&st, &args, None).unwrap_err();
        assert_eq!(again.code, Code::NameTaken);
        assert!(
            Path::new(&b.config).is_file(),
            "a refused up must not undo the first one"
        );

        assert_eq!(check(&st, "C1").unwrap(), b);
        assert_eq!(record(&st, "C1").unwrap().config, b.config);

        fs::write(&b.config, "[]").unwrap();
        assert_eq!(check(&st, "C1").unwrap_err().code, Code::Drift);

        cloon_core::stage::down::<stage::Spec>(&st, "C1", &cloon_core::stage::NoFlags {}).unwrap();
        assert!(!root.join("C1").exists());
        cloon_core::stage::down::<stage::Spec>(&st, "C1", &cloon_core::stage::NoFlags {}).unwrap();
        assert_eq!(check(&st, "C1").unwrap_err().code, Code::Unknown);
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn failures_leave_nothing() {
        let (st, root) = state("fail");
        fs::create_dir_all(root.join("rootfs/bin")).unwrap();
        let base = UpArgs {
            name: Some("C2".into()),
            rootfs: Some(root.join("rootfs")),
            ..Default::default()
        };
        let cases: Vec<(UpArgs, Code)> = vec![
            (
                UpArgs {
                    args: vec!["/bin/nothere".into()],
                    ..base.clone()
                },
                Code::InvalidConfig,
            ), // not in the rootfs
            (
                UpArgs {
                    cap_add: vec!["NOPE".into()],
                    ..base.clone()
                },
                Code::InvalidArgument,
            ),
            (
                UpArgs {
                    env: vec!["X".into()],
                    ..base.clone()
                },
                Code::InvalidArgument,
            ),
            (
                UpArgs {
                    bind: vec!["rel:/x".into()],
                    ..base.clone()
                },
                Code::InvalidArgument,
            ),
            (
                UpArgs {
                    netns: Some("cloon-no-such-ns".into()),
                    ..base.clone()
                },
                Code::Unknown,
            ),
            (
                UpArgs {
                    rootfs: None,
                    ..base.clone()
                },
                Code::InvalidConfig,
            ),
            (
                UpArgs {
                    name: None,
                    ..base.clone()
                },
                Code::InvalidArgument,
            ),
        ];
        for (args, code) in cases {
            let err = up(&st, &args, None).unwrap_err();
            assert_eq!(err.code, code, "{args:?}: {err}");
            assert!(!root.join("C2").exists(), "{args:?} left state");
        }
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn the_document_gives_rootfs_and_netns() {
        let (st, root) = state("doc");
        let text = format!(
            r#"{{"cloonVersion":"1","name":"C3","mine":true,
               "overlay":{{"loop":"/dev/loop9","lower":"/l","upper":"/u","work":"/w","rootfs":"{}"}},
               "netns":{{"name":"n","path":"/proc/self/ns/net","links":[]}}}}"#,
            root.join("rootfs").display()
        );
        let doc = Document::parse(&text).unwrap().unwrap();
        let out = up(&st, &UpArgs::default(), Some(doc)).unwrap();
        let b: Bundle = out.get(PART).unwrap().unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&b.config).unwrap()).unwrap();
        assert_eq!(v["root"]["path"], root.join("rootfs").display().to_string());
        assert_eq!(v["linux"]["namespaces"][1]["path"], "/proc/self/ns/net");
        assert_eq!(v["hostname"], "C3");
        assert!(out.to_json().contains("\"mine\": true"));
        cloon_core::stage::down::<stage::Spec>(&st, "C3", &cloon_core::stage::NoFlags {}).unwrap();
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn the_images_default_process_is_used_without_args() {
        let (st, root) = state("imgcfg");
        std::fs::create_dir_all(root.join("rootfs/bin")).unwrap();
        std::fs::copy("/bin/sh", root.join("rootfs/bin/sh")).unwrap();
        let text = format!(
            r#"{{"cloonVersion":"1","name":"C5","image":{{"path":"/i.img","fstype":"ext4","bytes":1,
               "config":{{"args":["/bin/sh","-c","sleep 1"],"env":["PATH=/bin","A=image","bad"],"cwd":"/srv"}}}},
               "overlay":{{"loop":"/dev/loop9","lower":"/l","upper":"/u","work":"/w","rootfs":"{}"}}}}"#,
            root.join("rootfs").display()
        );
        let doc = Document::parse(&text).unwrap().unwrap();
        let args = UpArgs {
            env: vec!["A=flag".into()],
            ..Default::default()
        };
        let out = up(&st, &args, Some(doc.clone())).unwrap();
        let b: Bundle = out.get(PART).unwrap().unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&b.config).unwrap()).unwrap();
        assert_eq!(
            v["process"]["args"],
            serde_json::json!(["/bin/sh", "-c", "sleep 1"])
        );
        assert_eq!(v["process"]["cwd"], "/srv");
        assert_eq!(
            v["process"]["env"],
            serde_json::json!(["PATH=/bin", "TERM=xterm", "A=flag"])
        );
        cloon_core::stage::down::<stage::Spec>(&st, "C5", &cloon_core::stage::NoFlags {}).unwrap();
        // Arguments after `--` win over the image's.
        let args = UpArgs {
            args: vec!["/bin/sh".into()],
            ..Default::default()
        };
        let out = up(&st, &args, Some(doc)).unwrap();
        let b: Bundle = out.get(PART).unwrap().unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&b.config).unwrap()).unwrap();
        assert_eq!(v["process"]["args"], serde_json::json!(["/bin/sh"]));
        cloon_core::stage::down::<stage::Spec>(&st, "C5", &cloon_core::stage::NoFlags {}).unwrap();
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn the_config_is_a_valid_oci_configuration() {
        let (st, root) = state("validate");
        let args = UpArgs {
            name: Some("C4".into()),
            rootfs: Some(root.join("rootfs")),
            netns: Some("/proc/self/ns/net".into()),
            env: vec!["A=b".into()],
            bind: vec![format!("{}:/mnt:ro", std::env::temp_dir().display())],
            args: vec!["/bin/sh".into()],
            ..Default::default()
        };
        let doc = up(&st, &args, None).unwrap();
        let b: Bundle = doc.get(PART).unwrap().unwrap();
        cloon_tests::assert_valid_config(Path::new(&b.config));
        let _ = fs::remove_dir_all(&root);
    }
}
