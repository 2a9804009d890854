//! The host check of `cloon-lab doctor`: is this host ready for cloon? Each prerequisite of the tools is checked
//! on the live system, and each missing one comes with the command that fixes it.
//!
//! The kernel's veth and network namespace support is proven, when root, by making a veth pair in
//! a throwaway network namespace (`unshare --net ip link add ...`), which vanishes with that
//! process: the host's own namespaces are never touched.

use cloon_core::{host, Code};
use cloon_run::cgroup;
use cloon_run::runtime::{self, Kind, Runtime};
use serde::Serialize;
use std::path::Path;
use std::process::{Command, Stdio};

/// One prerequisite and what was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What is checked (`root`, `loop`, `overlay`, ...).
    pub name: String,
    /// Whether it is there.
    pub ok: bool,
    /// Whether cloon cannot run a container without it (otherwise one feature needs it).
    pub required: bool,
    /// What was found, or what is missing.
    pub found: String,
    /// The command or action that fixes it (empty when ok).
    pub fix: String,
}

/// Every check, and whether all the required ones passed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub ok: bool,
    /// The runtime checked (`--runtime`, crun by default).
    pub runtime: String,
    pub checks: Vec<Check>,
}

impl Report {
    /// The required checks that failed.
    pub fn failed(&self) -> Vec<&Check> {
        self.checks.iter().filter(|c| c.required && !c.ok).collect()
    }

    /// The exit status: 0, or 100 (a host prerequisite is missing).
    pub fn status(&self) -> u8 {
        if self.ok {
            0
        } else {
            Code::Prerequisite.number()
        }
    }

    /// The human table: a line per check, its fix under it.
    pub fn table(&self) -> String {
        let width = self.checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
        let mut out = String::new();
        for c in &self.checks {
            let status = match (c.ok, c.required) {
                (true, _) => "ok",
                (false, true) => "MISSING",
                (false, false) => "missing",
            };
            let note = if c.required || c.ok {
                ""
            } else {
                " (optional)"
            };
            out.push_str(&format!(
                "{status:<8}{:<width$}  {}{note}\n",
                c.name, c.found
            ));
            if !c.ok && !c.fix.is_empty() {
                out.push_str(&format!("{:<8}{:<width$}  fix: {}\n", "", "", c.fix));
            }
        }
        let failed = self.failed();
        if failed.is_empty() {
            out.push_str("\nThis host can run cloon's containers.\n");
        } else {
            let names: Vec<&str> = failed.iter().map(|c| c.name.as_str()).collect();
            out.push_str(&format!(
                "\nMissing for cloon to run containers: {} (exit status 100).\n",
                names.join(", ")
            ));
        }
        out
    }
}

fn check(name: &str, required: bool, result: Result<String, (String, String)>) -> Check {
    match result {
        Ok(found) => Check {
            name: name.into(),
            ok: true,
            required,
            found,
            fix: String::new(),
        },
        Err((found, fix)) => Check {
            name: name.into(),
            ok: false,
            required,
            found,
            fix,
        },
    }
}

/// A program, found on the `PATH` (or in /usr/sbin, /sbin), with its version line if asked.
fn program(
    name: &str,
    package: &str,
    version_arg: Option<&str>,
) -> Result<String, (String, String)> {
    let Some(path) = host::find_program(name) else {
        return Err((format!("no {name}"), format!("apt-get install {package}")));
    };
    let version = version_arg.and_then(|arg| version_line(&path, arg));
    Ok(match version {
        Some(v) => format!("{} ({v})", path.display()),
        None => path.display().to_string(),
    })
}

/// The first line that `program arg` prints (on stdout or stderr).
fn version_line(program: &Path, arg: &str) -> Option<String> {
    let out = Command::new(program)
        .arg(arg)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let text = if out.stdout.is_empty() {
        out.stderr
    } else {
        out.stdout
    };
    String::from_utf8_lossy(&text)
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_string)
}

/// Whether a filesystem is in `/proc/filesystems`' text.
pub fn has_filesystem(proc_filesystems: &str, fs: &str) -> bool {
    proc_filesystems
        .lines()
        .any(|l| l.split_whitespace().last() == Some(fs))
}

/// Whether `module` is loadable or built in (`modprobe --dry-run`, `/sys/module`,
/// `modules.builtin`).
fn module_available(module: &str) -> Option<String> {
    if Path::new("/sys/module").join(module).exists() {
        return Some(format!("module {module} loaded"));
    }
    let release = nix::sys::utsname::uname()
        .ok()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let builtin = std::fs::read_to_string(format!("/lib/modules/{release}/modules.builtin"))
        .unwrap_or_default();
    if builtin
        .lines()
        .any(|l| l.ends_with(&format!("/{module}.ko")))
    {
        return Some(format!("{module} built into the kernel"));
    }
    let modprobe = host::find_program("modprobe")?;
    let ok = Command::new(modprobe)
        .args(["--dry-run", "--quiet", module])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok.then(|| format!("module {module} available (loaded on first use)"))
}

/// The cgroup layout: `v2`, `v1`, or `hybrid` (v1 controllers and a v2 hierarchy at
/// `/sys/fs/cgroup/unified`).
pub fn cgroup_mode() -> &'static str {
    use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC};
    match statfs("/sys/fs/cgroup") {
        Ok(s) if s.filesystem_type() == CGROUP2_SUPER_MAGIC => "v2",
        Ok(_) => match statfs("/sys/fs/cgroup/unified") {
            Ok(u) if u.filesystem_type() == CGROUP2_SUPER_MAGIC => "hybrid",
            _ => "v1",
        },
        Err(_) => "none",
    }
}

/// Makes a veth pair in a throwaway network namespace: proves network namespaces and veth.
fn veth_probe() -> Result<(), String> {
    let unshare = host::find_program("unshare").ok_or("no unshare (util-linux)")?;
    let ip = host::find_program("ip").ok_or("no ip (iproute2)")?;
    let out = Command::new(unshare)
        .arg("--net")
        .arg(ip)
        .args([
            "link",
            "add",
            "cloon-dr0",
            "type",
            "veth",
            "peer",
            "name",
            "cloon-dr1",
        ])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// Runs every check, for the runtime `runtime` (crun when `None`).
pub fn run(runtime: Option<&str>) -> Report {
    let root = nix::unistd::geteuid().is_root();
    let mut checks = Vec::new();
    checks.push(check(
        "root",
        true,
        if root {
            Ok("running as root".into())
        } else {
            Err((
                format!("running as uid {}", nix::unistd::geteuid()),
                "run cloon's tools as root (sudo), or with CAP_SYS_ADMIN and CAP_NET_ADMIN".into(),
            ))
        },
    ));
    checks.push(check(
        "loop",
        true,
        if Path::new("/dev/loop-control").exists() {
            Ok("/dev/loop-control".into())
        } else {
            Err(("no /dev/loop-control".into(), "modprobe loop".into()))
        },
    ));
    let filesystems = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    checks.push(check(
        "overlay",
        true,
        if has_filesystem(&filesystems, "overlay") {
            Ok("overlay in /proc/filesystems".into())
        } else {
            module_available("overlay").ok_or_else(|| {
                (
                    "no overlay filesystem".into(),
                    "modprobe overlay (a kernel with CONFIG_OVERLAY_FS)".into(),
                )
            })
        },
    ));
    let probe = if root { Some(veth_probe()) } else { None };
    let netns_ok = Path::new("/proc/self/ns/net").exists();
    checks.push(check(
        "netns",
        true,
        match (&probe, netns_ok) {
            (Some(Ok(())), _) => Ok("a network namespace was made and dropped".into()),
            (_, true) => Ok("/proc/self/ns/net".into()),
            (_, false) => Err((
                "no network namespaces".into(),
                "a kernel with CONFIG_NET_NS".into(),
            )),
        },
    ));
    checks.push(check(
        "veth",
        true,
        match &probe {
            Some(Ok(())) => Ok("a veth pair was made in a throwaway namespace".into()),
            Some(Err(e)) => Err((
                format!("cannot make a veth pair: {e}"),
                "modprobe veth (a kernel with CONFIG_VETH)".into(),
            )),
            None => module_available("veth").ok_or_else(|| {
                (
                    "no veth module".into(),
                    "modprobe veth (a kernel with CONFIG_VETH)".into(),
                )
            }),
        },
    ));
    let name = runtime.unwrap_or(runtime::DEFAULT_RUNTIME).to_string();
    let selected = Runtime::select(Some(&name), None);
    checks.push(check(
        &format!("runtime {name}"),
        true,
        match &selected {
            Ok(rt) => Ok(match version_line(&rt.program, "--version") {
                Some(v) => format!("{} ({v})", rt.program.display()),
                None => rt.program.display().to_string(),
            }),
            Err(e) => Err((e.msg.clone(), fix_of(&e.msg))),
        },
    ));
    // The other usual runtime, as an alternative.
    for other in ["crun", "runc"] {
        if runtime::kind_of(&name) != runtime::kind_of(other) {
            checks.push(check(
                &format!("runtime {other}"),
                false,
                program(other, other, Some("--version")),
            ));
        }
    }
    let mode = cgroup_mode();
    let controllers = std::fs::read_to_string(cgroup::UNIFIED_CONTROLLERS)
        .map(|c| cgroup::hybrid_controllers(&c))
        .unwrap_or_default();
    let is_crun = selected.as_ref().is_ok_and(|r| r.kind == Kind::Crun)
        || runtime::kind_of(&name) == Kind::Crun;
    checks.push(check(
        "cgroups",
        true,
        match (mode, controllers.is_empty()) {
            ("hybrid", false) if is_crun => Err((
                format!(
                    "hybrid; {} lists {}: crun refuses to run",
                    cgroup::UNIFIED_CONTROLLERS,
                    controllers.join(" ")
                ),
                format!("{} (or --runtime runc)", cgroup::fix_commands(&controllers)),
            )),
            ("hybrid", false) => Ok(format!(
                "hybrid; the unified hierarchy lists {} (fine for {name})",
                controllers.join(" ")
            )),
            ("hybrid", true) => Ok("hybrid; no controller on the unified hierarchy".into()),
            ("none", _) => Err((
                "no cgroup filesystem at /sys/fs/cgroup".into(),
                "mount -t cgroup2 none /sys/fs/cgroup".into(),
            )),
            (mode, _) => Ok(mode.to_string()),
        },
    ));
    checks.push(check(
        "mkfs.ext4",
        true,
        program("mkfs.ext4", "e2fsprogs", Some("-V")),
    ));
    checks.push(check(
        "busybox-static",
        false,
        match host::find_program("busybox") {
            None => Err((
                "no busybox (cloon-img --busybox needs it)".into(),
                "apt-get install busybox-static".into(),
            )),
            Some(path) => {
                let bytes = std::fs::read(&path).unwrap_or_default();
                if cloon_img::busybox::is_static_elf(&bytes) {
                    Ok(format!("{} (static)", path.display()))
                } else {
                    Err((
                        format!(
                            "{} is linked dynamically (cloon-img --busybox needs a static one)",
                            path.display()
                        ),
                        "apt-get install busybox-static".into(),
                    ))
                }
            }
        },
    ));
    checks.push(check(
        "debootstrap",
        false,
        program("debootstrap", "debootstrap", None)
            .map_err(|(f, fix)| (format!("{f} (cloon-img --debootstrap needs it)"), fix)),
    ));
    checks.push(check(
        "tar",
        false,
        program("tar", "tar", Some("--version")).map_err(|(f, fix)| {
            (
                format!("{f} (cloon-img --from-tar and --from-oci need it)"),
                fix,
            )
        }),
    ));
    checks.push(check(
        "zstd",
        false,
        program("zstd", "zstd", None)
            .map_err(|(f, fix)| (format!("{f} (zstd tarballs and layers need it)"), fix)),
    ));
    checks.push(check(
        "graphviz",
        false,
        program("dot", "graphviz", Some("-V"))
            .map_err(|(f, fix)| (format!("{f} (cloon-lab graph | dot -Tsvg needs it)"), fix)),
    ));
    let ok = checks.iter().all(|c| c.ok || !c.required);
    Report {
        ok,
        runtime: name,
        checks,
    }
}

/// The fix a runtime error names (`run apt-get install X`), or a generic one.
fn fix_of(msg: &str) -> String {
    match msg.split_once("run `") {
        Some((_, rest)) => rest.split('`').next().unwrap_or(rest).to_string(),
        None => "give --runtime the path of an OCI runtime (crun, runc)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filesystems_are_read_from_proc_filesystems() {
        let text = "nodev\tsysfs\nnodev\ttmpfs\n\text4\nnodev\toverlay\n";
        assert!(has_filesystem(text, "overlay"));
        assert!(has_filesystem(text, "ext4"));
        assert!(!has_filesystem(text, "btrfs"));
        assert!(!has_filesystem("nodev\toverlayfs\n", "overlay"));
    }

    #[test]
    fn fixes_come_from_the_runtime_errors() {
        assert_eq!(
            fix_of("crun is not installed: run `apt-get install crun`"),
            "apt-get install crun"
        );
        assert!(fix_of("the runtime /x does not exist").contains("--runtime"));
    }

    #[test]
    fn the_table_says_what_is_missing_and_how_to_fix_it() {
        let report = Report {
            ok: false,
            runtime: "crun".into(),
            checks: vec![
                check("root", true, Ok("running as root".into())),
                check(
                    "loop",
                    true,
                    Err(("no /dev/loop-control".into(), "modprobe loop".into())),
                ),
                check(
                    "graphviz",
                    false,
                    Err(("no dot".into(), "apt-get install graphviz".into())),
                ),
            ],
        };
        let table = report.table();
        assert!(
            table.contains("ok      root      running as root\n"),
            "{table}"
        );
        assert!(
            table.contains("MISSING loop      no /dev/loop-control\n"),
            "{table}"
        );
        assert!(table.contains("fix: modprobe loop\n"), "{table}");
        assert!(table.contains("no dot (optional)"), "{table}");
        assert!(
            table.contains("Missing for cloon to run containers: loop"),
            "{table}"
        );
        assert_eq!(report.status(), 100);
        let names: Vec<&str> = report.failed().iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["loop"]);
    }

    #[test]
    fn a_missing_runtime_fails_the_report() {
        let report = run(Some("/nonexistent/runtime"));
        assert!(!report.ok);
        let rt = report
            .checks
            .iter()
            .find(|c| c.name == "runtime /nonexistent/runtime")
            .unwrap();
        assert!(!rt.ok && rt.required);
        assert!(rt.fix.contains("--runtime"), "{}", rt.fix);
        assert!(["v1", "v2", "hybrid", "none"].contains(&cgroup_mode()));
    }
}
