//! Link impairment: delay, jitter, loss, rate, corruption and duplication on a link of a lab, the
//! same words behind two engines.
//!
//! - The **kernel** engine ([`kernel`]) sets the `netem` qdisc on the egress of both ends of the
//!   link through route netlink (no `tc` process). It needs a kernel with `sch_netem`.
//! - The **relay** engine ([`relay`]) is a small user-space process per link that moves frames
//!   between the link's two ends through packet sockets, applying the impairment itself: for
//!   kernels without netem (as on cloon's own test machines). The two ends must be two
//!   interfaces of the host (or of a lab namespace) that nothing else joins: typically the
//!   host-side ends of the two nodes' veths, *not* ports of a bridge and not the two ends of one
//!   veth pair (a point-to-point veth has no place for a relay).
//!
//! [`choose`] picks the engine (`auto`: the kernel's when it has netem, found by trying one in a
//! throwaway namespace); [`apply`] impairs a link and records what it did in a directory the
//! caller gives (one per link, under the lab's state directory); [`change`] changes the
//! impairment of a running link (the `cloon-lab netem` subcommand); [`status`] reads it back and
//! says whether it still holds (a relay that died is seen there); [`remove`] undoes it from the
//! record alone (for `down` and `gc`); [`explain`] says the equivalent commands for `--explain`.
//!
//! ```no_run
//! use cloon_lab::impair::{self, End, Engine, Netem};
//! let n: Netem = serde_json::from_str(r#"{"delay":"10ms","loss":"1%"}"#).unwrap();
//! let ends = [End::here("vh_a_eth1"), End::here("vh_b_eth1")];
//! let dir = std::path::Path::new("/run/cloon/labs/lab1/impair/a.eth1.b.eth1");
//! let applied = impair::apply(&ends, &n, Engine::Auto, dir).unwrap();
//! println!("{} engine", applied.engine);
//! impair::remove(dir).unwrap();
//! ```

pub mod kernel;
pub mod ns;
pub mod offload;
pub mod packet;
pub mod record;
pub mod relay;
pub mod rng;
pub mod spec;

pub use ns::End;
pub use record::{DirStats, EngineKind, Proc, Record, Stats};
pub use spec::{Netem, NetemChange, ParseError, Percent, Rate, Time};

use anyhow::{anyhow, bail, Context, Result};
use cloon_core::state::fs_at;
use nix::fcntl::OFlag;
use serde::Serialize;
use std::io::{BufRead, BufReader};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The engine asked for: `auto` (the kernel's netem where the kernel has it, else the relay),
/// or one forced (`--engine kernel|relay`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Engine {
    #[default]
    Auto,
    Kernel,
    Relay,
}

impl std::str::FromStr for Engine {
    type Err = String;
    fn from_str(s: &str) -> Result<Engine, String> {
        match s {
            "auto" => Ok(Engine::Auto),
            "kernel" => Ok(Engine::Kernel),
            "relay" => Ok(Engine::Relay),
            other => Err(format!(
                "engine {other:?}: use auto, kernel (netem) or relay (user space)"
            )),
        }
    }
}

/// The relay program's name: a binary of this crate, installed next to `cloon-lab`.
pub const RELAY_PROGRAM: &str = "cloon-lab-impair";

/// How [`apply_with`] runs the relay.
#[derive(Debug, Clone)]
pub struct Options {
    /// The program started as `PROGRAM relay --record-dir DIR`: by default `cloon-lab-impair`
    /// next to the running executable, else on `PATH` (`CLOON_LAB_IMPAIR` overrides).
    pub relay_program: Option<PathBuf>,
    /// How long the relay may take to open its sockets.
    pub ready_timeout: Duration,
    /// Impair only the frames from the first end to the second (see [`Record::one_way`]).
    pub one_way: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            relay_program: None,
            ready_timeout: Duration::from_secs(10),
            one_way: false,
        }
    }
}

/// What [`apply`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Applied {
    pub engine: EngineKind,
    pub netem: Netem,
    /// The relay's process, for the relay engine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay: Option<Proc>,
    /// Why this engine (for `auto`), or what happened (a relay restarted).
    pub note: String,
}

/// What [`status`] finds.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub engine: EngineKind,
    pub ends: [End; 2],
    /// The impairment recorded.
    pub netem: Netem,
    /// Whether it holds: the relay runs, or both ends have their netem qdisc.
    pub ok: bool,
    /// What does not hold, for people.
    pub problems: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay: Option<Proc>,
    /// The relay's counters (fresh when it runs, its last ones when it died).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<Stats>,
    /// The netem the kernel has on each end (kernel engine).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel: Option<[Option<Netem>; 2]>,
}

/// Resolves the engine: a forced one as is; `auto` to the kernel's when [`kernel::probe`] says
/// this kernel has netem, else to the relay. The text says why.
pub fn choose(engine: Engine) -> (EngineKind, String) {
    match engine {
        Engine::Kernel => (EngineKind::Kernel, "kernel engine asked for".into()),
        Engine::Relay => (EngineKind::Relay, "relay engine asked for".into()),
        Engine::Auto => match kernel::probe() {
            Ok(()) => (
                EngineKind::Kernel,
                "the kernel has netem: kernel engine".into(),
            ),
            Err(why) => (EngineKind::Relay, format!("{why}: relay engine")),
        },
    }
}

/// Impairs the link between `ends` with `netem` (see [`apply_with`]), with default options.
pub fn apply(ends: &[End; 2], netem: &Netem, engine: Engine, record_dir: &Path) -> Result<Applied> {
    apply_with(ends, netem, engine, record_dir, &Options::default())
}

/// Impairs the link between `ends` with `netem`, recording it in `record_dir` (an existing
/// directory of the caller's, one per link). A link already impaired with the same ends and a
/// fitting engine is changed in place (the relay keeps running); otherwise what was there is
/// removed first. All or nothing: on failure nothing is left, the record included.
pub fn apply_with(
    ends: &[End; 2],
    netem: &Netem,
    engine: Engine,
    record_dir: &Path,
    opts: &Options,
) -> Result<Applied> {
    netem.validate().map_err(|e| anyhow!("{e}"))?;
    // One end given twice: a link to another host, whose other end that host impairs. Only
    // the kernel's netem can act on one end alone (the relay joins two).
    if ends[0] == ends[1] && engine != Engine::Kernel {
        bail!(
            "{} is both ends: only the kernel engine impairs one end alone (a link to another \
             host); the relay joins two interfaces",
            ends[0]
        );
    }
    if let Some(old) = record::load(record_dir)? {
        let fits = match engine {
            Engine::Auto => true,
            Engine::Kernel => old.engine == EngineKind::Kernel,
            Engine::Relay => old.engine == EngineKind::Relay,
        };
        if fits && old.ends == *ends {
            return set_netem(record_dir, old, netem.clone(), opts);
        }
        remove(record_dir)?;
    }
    let (kind, why) = choose(engine);
    match kind {
        EngineKind::Kernel => {
            let rec = Record {
                engine: kind,
                ends: ends.clone(),
                netem: netem.clone(),
                relay: None,
                one_way: opts.one_way,
            };
            record::save(record_dir, &rec)?;
            let set = kernel::set(&ends[0], netem).and_then(|()| kernel::set(&ends[1], netem));
            if let Err(e) = set {
                let _ = kernel::clear(&ends[0]);
                let _ = kernel::clear(&ends[1]);
                let _ = record::forget(record_dir);
                return Err(e.into());
            }
            Ok(Applied {
                engine: kind,
                netem: netem.clone(),
                relay: None,
                note: why,
            })
        }
        EngineKind::Relay => {
            let info = [kernel::link_info(&ends[0])?, kernel::link_info(&ends[1])?];
            for (end, info) in ends.iter().zip(&info) {
                if let Some(master) = &info.master {
                    bail!(
                        "{end} is a port of {master}: the relay joins two ends that nothing \
                         else joins (take it out of the bridge, or use the kernel engine)"
                    );
                }
            }
            if info[0].link == Some(info[1].index) && info[1].link == Some(info[0].index) {
                bail!(
                    "{} and {} are the two sides of one veth pair, which carries the frames \
                     itself: for the relay, make the link as two veths whose host-side ends the \
                     relay joins (or use the kernel engine)",
                    ends[0],
                    ends[1]
                );
            }
            let rec = Record {
                engine: kind,
                ends: ends.clone(),
                netem: netem.clone(),
                relay: None,
                one_way: opts.one_way,
            };
            let proc_ = start_relay(record_dir, rec, opts)?;
            Ok(Applied {
                engine: kind,
                netem: netem.clone(),
                relay: Some(proc_),
                note: why,
            })
        }
    }
}

/// The relay program: the option, `CLOON_LAB_IMPAIR`, next to the running executable, or the
/// name alone (found on `PATH`).
fn relay_program(opts: &Options) -> PathBuf {
    if let Some(p) = &opts.relay_program {
        return p.clone();
    }
    if let Some(p) = std::env::var_os("CLOON_LAB_IMPAIR") {
        return PathBuf::from(p);
    }
    if let Ok(exe) = std::env::current_exe() {
        if exe.file_name().is_some_and(|n| n == RELAY_PROGRAM) {
            return exe;
        }
        if let Some(sibling) = exe.parent().map(|d| d.join(RELAY_PROGRAM)) {
            if sibling.is_file() {
                return sibling;
            }
        }
    }
    PathBuf::from(RELAY_PROGRAM)
}

/// Records and starts a relay (write-ahead: the record names the program and seed before the
/// process exists, then its pid and start time once it is ready). On failure, stops what
/// started and removes the record; the error quotes the relay's log.
fn start_relay(dir: &Path, mut rec: Record, opts: &Options) -> Result<Proc> {
    let program = relay_program(opts);
    // The seed asked for; else the one of the relay this one replaces; else a fresh one.
    let seed = rec
        .netem
        .seed
        .or(rec.relay.as_ref().map(|p| p.seed))
        .unwrap_or_else(rng::fresh_seed);
    rec.relay = Some(Proc {
        pid: 0,
        start_time: 0,
        seed,
        program: program.display().to_string(),
    });
    record::save(dir, &rec)?;
    let fail = |e: anyhow::Error| -> anyhow::Error {
        let log = read_log(dir);
        let _ = record::forget(dir);
        if log.is_empty() {
            e
        } else {
            e.context(log)
        }
    };
    let dir_fd = record::open_dir(dir)?;
    let log = fs_at::open_beneath(
        dir_fd.as_fd(),
        Path::new(record::LOG),
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_APPEND,
        0o600,
    )
    .context("cannot open the relay's log")
    .map_err(fail)?;
    let mut child = Command::new(&program)
        .arg("relay")
        .arg("--record-dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(std::fs::File::from(log)))
        // Its own process group: a Ctrl-C meant for the command that started it spares it.
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot start the relay {}", program.display()))
        .map_err(fail)?;
    let out = child.stdout.take().ok_or_else(|| anyhow!("no pipe"))?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(out).read_line(&mut line);
        let _ = tx.send(line);
    });
    let ready = rx.recv_timeout(opts.ready_timeout).unwrap_or_default();
    if ready.trim() != "ready" {
        let _ = child.kill();
        let _ = child.wait();
        return Err(fail(anyhow!(
            "the relay between {} and {} did not start",
            rec.ends[0],
            rec.ends[1]
        )));
    }
    let pid = i32::try_from(child.id())?;
    let Some((_, start_time)) = record::stat(pid) else {
        let _ = child.wait();
        return Err(fail(anyhow!("the relay ended at once")));
    };
    let p = Proc {
        pid,
        start_time,
        seed,
        program: program.display().to_string(),
    };
    rec.relay = Some(p.clone());
    if let Err(e) = record::save(dir, &rec) {
        let _ = record::stop(&p, Duration::from_secs(2));
        let _ = child.wait();
        return Err(fail(e));
    }
    // The child is not waited for: it outlives this process (which may be a short command).
    drop(child);
    Ok(p)
}

/// The last lines of the relay's log, for error messages.
fn read_log(dir: &Path) -> String {
    let Ok(fd) = record::open_dir(dir) else {
        return String::new();
    };
    let text = fs_at::read(fd.as_fd(), record::LOG)
        .ok()
        .flatten()
        .unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join("\n")
}

/// Sets a new impairment on a recorded link, in place.
fn set_netem(dir: &Path, mut rec: Record, netem: Netem, opts: &Options) -> Result<Applied> {
    netem.validate().map_err(|e| anyhow!("{e}"))?;
    let old = rec.netem.clone();
    rec.netem = netem.clone();
    match rec.engine {
        EngineKind::Kernel => {
            record::save(dir, &rec)?;
            for end in &rec.ends {
                kernel::set(end, &netem)?;
            }
            Ok(Applied {
                engine: EngineKind::Kernel,
                netem,
                relay: None,
                note: format!("changed from {old}"),
            })
        }
        EngineKind::Relay => {
            let running = rec.relay.clone().filter(record::alive);
            let Some(p) = running else {
                // It died: start a new one with the new impairment (and its seed).
                let p = start_relay(dir, rec, opts)?;
                return Ok(Applied {
                    engine: EngineKind::Relay,
                    netem,
                    relay: Some(p),
                    note: "the relay was not running: started a new one".into(),
                });
            };
            record::save(dir, &rec)?;
            let before = record::load_stats(dir)?.map_or(0, |s| s.seq);
            record::signal(&p, nix::sys::signal::Signal::SIGHUP)?;
            wait_stats(dir, before, Duration::from_secs(2))
                .filter(|s| s.netem == netem)
                .ok_or_else(|| anyhow!("the relay (pid {}) did not take the change", p.pid))?;
            Ok(Applied {
                engine: EngineKind::Relay,
                netem,
                relay: Some(p),
                note: format!("changed from {old}"),
            })
        }
    }
}

/// Waits until the relay has written counters newer than `seq`.
fn wait_stats(dir: &Path, seq: u64, timeout: Duration) -> Option<Stats> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(s)) = record::load_stats(dir) {
            if s.seq > seq {
                return Some(s);
            }
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Changes the impairment of the link recorded in `record_dir`: what `change` names replaces
/// the current value, the rest stays (`cloon-lab netem FILE a:eth1 --delay 10ms`). Returns what
/// is now in force.
pub fn change(record_dir: &Path, change: &NetemChange) -> Result<Applied> {
    let rec = record::load(record_dir)?
        .ok_or_else(|| anyhow!("no impairment is recorded in {}", record_dir.display()))?;
    let netem = rec.netem.changed(change);
    set_netem(record_dir, rec, netem, &Options::default())
}

/// Undoes the impairment recorded in `record_dir`, from the record alone: stops the relay (if
/// the recorded process is still the one that was started), or deletes the netem qdiscs of the
/// ends (only netem ones), then removes the record. Idempotent: true when something was there.
pub fn remove(record_dir: &Path) -> Result<bool> {
    let Some(rec) = record::load(record_dir)? else {
        return Ok(false);
    };
    match rec.engine {
        EngineKind::Relay => {
            if let Some(p) = &rec.relay {
                if p.pid > 0 {
                    record::stop(p, Duration::from_secs(2))?;
                }
            }
            // A relay started but not yet recorded (a crash between the two) names the record
            // directory on its command line.
            for pid in relays_of(record_dir) {
                if let Some((_, start_time)) = record::stat(pid) {
                    let p = Proc {
                        pid,
                        start_time,
                        seed: 0,
                        program: String::new(),
                    };
                    record::stop(&p, Duration::from_secs(2))?;
                }
            }
        }
        EngineKind::Kernel => {
            for end in &rec.ends {
                kernel::clear(end).with_context(|| format!("cannot remove netem from {end}"))?;
            }
        }
    }
    record::forget(record_dir)?;
    Ok(true)
}

/// The processes whose command line is `... relay --record-dir DIR` for this `dir`.
fn relays_of(dir: &Path) -> Vec<i32> {
    relays()
        .into_iter()
        .filter(|(_, d)| d == dir)
        .map(|(pid, _)| pid)
        .collect()
}

/// Every relay process of this machine (its pid namespace): pid and record directory, from the
/// command lines `cloon-lab-impair relay --record-dir DIR`.
pub fn relays() -> Vec<(i32, PathBuf)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmd
            .strip_suffix(b"\0")
            .unwrap_or(&cmd)
            .split(|b| *b == 0)
            .collect();
        if let [program, b"relay", b"--record-dir", dir] = args.as_slice() {
            let program = Path::new(std::ffi::OsStr::from_bytes(program));
            if program.file_name().is_some_and(|n| n == RELAY_PROGRAM) {
                out.push((pid, PathBuf::from(std::ffi::OsStr::from_bytes(dir))));
            }
        }
    }
    out.sort();
    out
}

/// Stops the relays whose record directory is below `under` (a lab's state directory) and whose
/// record is gone or names another process: what a crash or a lost record left running, for the
/// lab's `gc`. Returns the record directories of the relays it stopped.
pub fn stop_orphans(under: &Path) -> Result<Vec<PathBuf>> {
    let mut stopped = Vec::new();
    for (pid, dir) in relays() {
        if !dir.starts_with(under) {
            continue;
        }
        let recorded = record::load(&dir)
            .ok()
            .flatten()
            .and_then(|r| r.relay)
            .is_some_and(|p| p.pid == pid && record::alive(&p));
        if recorded {
            continue;
        }
        if let Some((_, start_time)) = record::stat(pid) {
            let p = Proc {
                pid,
                start_time,
                seed: 0,
                program: String::new(),
            };
            record::stop(&p, Duration::from_secs(2))?;
            stopped.push(dir);
        }
    }
    Ok(stopped)
}

/// What holds of the impairment recorded in `record_dir` (`None`: no record). For a relay: whether
/// the recorded process runs, and its counters (asked for afresh); for the kernel engine: the
/// netem each end has.
pub fn status(record_dir: &Path) -> Result<Option<Status>> {
    let Some(rec) = record::load(record_dir)? else {
        return Ok(None);
    };
    let mut st = Status {
        engine: rec.engine,
        ends: rec.ends.clone(),
        netem: rec.netem.clone(),
        ok: true,
        problems: Vec::new(),
        relay: rec.relay.clone(),
        stats: None,
        kernel: None,
    };
    match rec.engine {
        EngineKind::Relay => {
            let before = record::load_stats(record_dir)?;
            match &rec.relay {
                Some(p) if record::alive(p) => {
                    let seq = before.as_ref().map_or(0, |s| s.seq);
                    let fresh = record::signal(p, nix::sys::signal::Signal::SIGUSR1)
                        .ok()
                        .filter(|sent| *sent)
                        .and_then(|_| wait_stats(record_dir, seq, Duration::from_secs(1)));
                    st.stats = fresh.or(before);
                }
                Some(p) => {
                    st.ok = false;
                    st.problems.push(format!(
                        "the relay between {} and {} (pid {}) is not running: the link carries \
                         nothing; `netem` again restarts it{}",
                        rec.ends[0],
                        rec.ends[1],
                        p.pid,
                        match read_log(record_dir) {
                            l if l.is_empty() => String::new(),
                            l => format!("; its log ends with:\n{l}"),
                        }
                    ));
                    st.stats = before;
                }
                None => {
                    st.ok = false;
                    st.problems.push("the record names no relay process".into());
                }
            }
        }
        EngineKind::Kernel => {
            let mut found = [None, None];
            for (i, end) in rec.ends.iter().enumerate() {
                match kernel::get(end) {
                    Ok(Some(n)) => found[i] = Some(n),
                    Ok(None) => {
                        st.ok = false;
                        st.problems.push(format!("{end} has no netem qdisc"));
                    }
                    Err(e) => {
                        st.ok = false;
                        st.problems.push(format!("{end}: {e}"));
                    }
                }
            }
            st.kernel = Some(found);
        }
    }
    Ok(Some(st))
}

/// The commands or the description that `--explain` shows for impairing `ends` with `netem` by
/// engine `kind`: the `tc` command of each end for the kernel; what the relay is and does for
/// the relay.
pub fn explain(ends: &[End; 2], netem: &Netem, kind: EngineKind, record_dir: &Path) -> Vec<String> {
    match kind {
        EngineKind::Kernel => ends.iter().map(|e| kernel::explain(e, netem)).collect(),
        EngineKind::Relay => vec![
            format!(
                "{RELAY_PROGRAM} relay --record-dir {} &   # pid and start time recorded in {}",
                record_dir.display(),
                record_dir.join(record::RECORD).display()
            ),
            format!(
                "# a user-space relay (no netem in this kernel): packet sockets on {} and {} \
                 (promiscuous, outgoing frames ignored), each frame read from one written to \
                 the other after: checksum and TCP segmentation offloads undone in software, \
                 then {} in each direction (own queue of at most {} frames, own timer, seed {}); \
                 the two ends are joined by nothing else",
                ends[0],
                ends[1],
                netem,
                netem.limit(),
                netem.seed.map_or_else(
                    || "drawn at start and recorded".to_string(),
                    |s| s.to_string()
                )
            ),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engines() {
        assert_eq!("relay".parse::<Engine>(), Ok(Engine::Relay));
        assert!("tc".parse::<Engine>().unwrap_err().contains("auto, kernel"));
        assert_eq!(choose(Engine::Kernel).0, EngineKind::Kernel);
    }

    #[test]
    fn explanations() {
        let n: Netem =
            serde_json::from_str(r#"{"delay":"10ms","jitter":"2ms","loss":"1%"}"#).unwrap();
        let ends = [End::here("va"), End::in_netns("lab", "vb")];
        let k = explain(&ends, &n, EngineKind::Kernel, Path::new("/r"));
        assert_eq!(
            k,
            vec![
                "tc qdisc replace dev va root netem limit 1000 delay 10ms 2ms loss 1%",
                "ip netns exec lab tc qdisc replace dev vb root netem limit 1000 delay 10ms 2ms loss 1%",
            ]
        );
        let r = explain(&ends, &n, EngineKind::Relay, Path::new("/r"));
        assert!(
            r[0].starts_with("cloon-lab-impair relay --record-dir /r"),
            "{r:?}"
        );
        assert!(r[1].contains("delay 10ms jitter 2ms loss 1%"), "{r:?}");
    }
}
