//! The user-space engine, for kernels without netem: a small process per impaired link that
//! moves Ethernet frames between the link's two ends (two interfaces not joined by a bridge),
//! applying the impairment on the way, like cloonix's `a2b`.
//!
//! ```text
//!   node A            host (or lab) namespace                   node B
//!   eth1 ==veth== vA  <- packet socket -> [relay] <- packet socket -> vB ==veth== eth1
//!                          direction 0: vA -> vB, its own queue, timer and random numbers
//!                          direction 1: vB -> vA
//! ```
//!
//! Each frame read from one end goes through, in order: segmentation and checksum completion
//! (`offload.rs`: the frames become wire frames), then for each wire frame five random draws in a
//! fixed order (loss, duplication, corruption, the corrupted bit, jitter), so that a seed and the
//! same traffic give the same outcome; then the rate (the frame leaves when the frames before it
//! have left, `size / rate` later) and the delay (`delay ± jitter`); then the queue (at most
//! `limit` frames wait, more are dropped); at its time the frame is written to the other end.
//!
//! One thread, one `poll` over the two sockets, a `timerfd` set to the next frame's time
//! (nanosecond precision, absolute on the monotonic clock) and a `signalfd`: no busy loop, no
//! sleeping. Signals: `SIGTERM`/`SIGINT` end it (counters written), `SIGHUP` re-reads the
//! impairment from the record (frames already waiting keep their times, as with
//! `tc qdisc change`), `SIGUSR1` writes the counters.
//!
//! The sockets ignore outgoing frames (so the relay never reads back what it wrote), put both
//! ends in promiscuous mode while they are open (frames addressed to the other node's MAC are
//! accepted; the kernel undoes it when the relay ends, however it ends), and have a 4 MiB
//! receive buffer; what the kernel still drops there is counted (`kernelDrops`). A frame larger
//! than the other end's MTU fails to be written and is counted as an error: give both ends the
//! same MTU.

use super::offload::{self, Unwired};
use super::packet::{self, Options, PacketSocket};
use super::record::{self, DirStats, Record, Stats, RECORD, STATS};
use super::rng::Rng;
use super::spec::Netem;
use anyhow::{anyhow, bail, Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

/// The largest frame read: a 64 KiB segmentation-offload frame and its headers, with room.
const BUF_LEN: usize = 256 * 1024;
/// Frames read from one socket before the loop looks at the other and at the timer.
const BATCH: usize = 256;
/// The sockets' receive buffers.
const RCVBUF: usize = 4 * 1024 * 1024;

/// Nanoseconds on the monotonic clock.
fn now_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(0)
}

/// A frame waiting for its time.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Pending {
    due: u64,
    /// Arrival order, to keep frames due at the same time in order.
    seq: u64,
    frame: Vec<u8>,
}

/// One direction: its queue, its wire (for the rate), its random numbers and counters.
#[derive(Debug)]
pub struct Direction {
    queue: BinaryHeap<Reverse<Pending>>,
    seq: u64,
    /// When the wire is free again (the rate's state).
    wire_free: u64,
    rng: Rng,
    pub stats: DirStats,
}

impl Direction {
    /// A direction whose random numbers come from `seed`.
    pub fn new(seed: u64, from: &str, to: &str) -> Direction {
        Direction {
            queue: BinaryHeap::new(),
            seq: 0,
            wire_free: 0,
            rng: Rng::new(seed),
            stats: DirStats {
                from: from.to_string(),
                to: to.to_string(),
                ..DirStats::default()
            },
        }
    }

    /// Takes one wire frame that arrived at `now`: decides its fate and queues it (twice when
    /// duplicated).
    pub fn admit(&mut self, mut frame: Vec<u8>, netem: &Netem, now: u64) {
        // Always five draws per frame, whatever the impairment, so that a seed gives the same
        // sequence of fates when only some probabilities change.
        let lose = self.rng.chance(netem.loss.percent());
        let dup = self.rng.chance(netem.duplicate.percent());
        let corrupt = self.rng.chance(netem.corrupt.percent());
        let bit = self.rng.next_u64();
        let jitter_draw = self.rng.next_u64();
        if lose {
            self.stats.lost += 1;
            return;
        }
        if corrupt && frame.len() > 14 {
            // Past the Ethernet header, so that the frame still reaches the node, whose
            // checksums catch the damage as on a real wire.
            let at = 14 + ((bit >> 3) % (frame.len() as u64 - 14)) as usize;
            frame[at] ^= 1 << (bit & 7);
            self.stats.corrupted += 1;
        }
        let copies = if dup { 2 } else { 1 };
        if dup {
            self.stats.duplicated += 1;
        }
        for copy in 0..copies {
            if self.queue.len() >= netem.limit() as usize {
                self.stats.overflow += 1;
                continue;
            }
            let mut leave = now;
            if let Some(rate) = netem.rate {
                let start = self.wire_free.max(now);
                self.wire_free = start + rate.time_of(frame.len()).as_nanos() as u64;
                leave = self.wire_free;
            }
            let delay = netem.delay.as_nanos();
            let jitter = netem.jitter.as_nanos();
            let delay = if jitter == 0 {
                delay
            } else {
                let spread = ((u128::from(jitter_draw) * u128::from(2 * jitter + 1)) >> 64) as u64;
                (delay + spread).saturating_sub(jitter)
            };
            self.seq += 1;
            let f = if copy + 1 < copies {
                frame.clone()
            } else {
                std::mem::take(&mut frame)
            };
            self.queue.push(Reverse(Pending {
                due: leave + delay,
                seq: self.seq,
                frame: f,
            }));
        }
    }

    /// The time of the next frame due, if any.
    pub fn next_due(&self) -> Option<u64> {
        self.queue.peek().map(|Reverse(p)| p.due)
    }

    /// Takes the next frame due at or before `now`.
    pub fn pop_due(&mut self, now: u64) -> Option<Vec<u8>> {
        if self.next_due()? <= now {
            self.queue.pop().map(|Reverse(p)| p.frame)
        } else {
            None
        }
    }

    /// Frames waiting.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }
}

/// The running relay.
struct Relay {
    sockets: [PacketSocket; 2],
    dirs: [Direction; 2],
    netem: Netem,
    /// No impairment: what the way back of a one-way relay gets.
    clear: Netem,
    one_way: bool,
    seed: u64,
    stats_seq: u64,
    dir_fd: std::os::fd::OwnedFd,
    buf: Vec<u8>,
}

impl Relay {
    /// Reads every waiting frame of socket `i` (up to a batch) into direction `i`.
    fn drain(&mut self, i: usize) {
        for _ in 0..BATCH {
            let got = match self.sockets[i].recv(&mut self.buf) {
                Ok(Some(got)) => got,
                Ok(None) => return,
                Err(e) => {
                    eprintln!("cloon relay: read from {}: {e}", self.dirs[i].stats.from);
                    self.dirs[i].stats.errors += 1;
                    return;
                }
            };
            let dir = &mut self.dirs[i];
            dir.stats.received += 1;
            dir.stats.received_bytes += got.orig_len as u64;
            if got.orig_len > got.len {
                dir.stats.errors += 1;
                continue;
            }
            let frame = self.buf[..got.len].to_vec();
            let frames = match offload::to_wire(frame, got.vnet.as_ref()) {
                Ok(frames) => frames,
                Err(Unwired::UnsupportedGso) | Err(Unwired::Malformed) => {
                    dir.stats.unsupported += 1;
                    continue;
                }
            };
            if frames.len() > 1 {
                dir.stats.segmented += 1;
            }
            let now = now_ns();
            let netem = if self.one_way && i == 1 {
                &self.clear
            } else {
                &self.netem
            };
            for mut f in frames {
                if let Some(tag) = got.vlan {
                    packet::insert_vlan(&mut f, tag);
                }
                dir.admit(f, netem, now);
            }
        }
    }

    /// Writes every frame whose time has come.
    fn flush(&mut self) {
        let now = now_ns();
        for i in 0..2 {
            let out = &self.sockets[1 - i];
            let dir = &mut self.dirs[i];
            while let Some(frame) = dir.pop_due(now) {
                match out.send(&frame) {
                    Ok(()) => {
                        dir.stats.sent += 1;
                        dir.stats.sent_bytes += frame.len() as u64;
                    }
                    Err(_) => dir.stats.errors += 1,
                }
            }
        }
    }

    /// The timer's next expiry: the earliest frame of either direction.
    fn next_due(&self) -> Option<u64> {
        match (self.dirs[0].next_due(), self.dirs[1].next_due()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Writes the counters to the record directory.
    fn write_stats(&mut self) {
        self.stats_seq += 1;
        for (i, d) in self.dirs.iter_mut().enumerate() {
            d.stats.queued = d.queue.len() as u64;
            d.stats.kernel_drops += self.sockets[i].kernel_drops();
        }
        let stats = Stats {
            seq: self.stats_seq,
            pid: std::process::id() as i32,
            seed: self.seed,
            netem: self.netem.clone(),
            directions: [self.dirs[0].stats.clone(), self.dirs[1].stats.clone()],
        };
        if let Err(e) = record::write_json(self.dir_fd.as_fd(), STATS, &stats) {
            eprintln!("cloon relay: {e:#}");
        }
    }

    /// Re-reads the impairment from the record.
    fn reload(&mut self) {
        match record::read_json::<Record>(self.dir_fd.as_fd(), RECORD) {
            Ok(Some(r)) => match r.netem.validate() {
                Ok(()) => self.netem = r.netem,
                Err(e) => eprintln!("cloon relay: new impairment refused: {e}"),
            },
            Ok(None) => eprintln!("cloon relay: the record is gone; impairment unchanged"),
            Err(e) => eprintln!("cloon relay: {e:#}"),
        }
    }
}

/// Takes `signals` for a signalfd: their dispositions back to the default (a signal the parent
/// left ignored, as a shell does SIGINT for a background job or nohup SIGHUP, would otherwise be
/// discarded before reaching the signalfd), then blocked in the calling thread (and the threads it
/// makes afterwards), so that they are only read from the returned descriptor.
pub fn catch_signals(signals: &[Signal]) -> Result<SignalFd> {
    let mut set = SigSet::empty();
    for s in signals {
        set.add(*s);
        let default = nix::sys::signal::SigAction::new(
            nix::sys::signal::SigHandler::SigDfl,
            nix::sys::signal::SaFlags::empty(),
            SigSet::empty(),
        );
        // SAFETY: installing the default disposition runs no handler code of this process, so
        // none of sigaction's handler-safety requirements apply.
        unsafe { nix::sys::signal::sigaction(*s, &default) }
            .with_context(|| format!("cannot reset {s}"))?;
    }
    set.thread_block().context("cannot block signals")?;
    SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .context("cannot make a signalfd")
}

/// The relay process's body (`cloon-lab-impair relay --record-dir DIR`): reads the record of
/// `dir`, opens both ends, says `ready` on standard output (then points it at /dev/null, so that
/// whoever started the relay sees end-of-file), and relays until told to stop.
pub fn serve(dir: &Path) -> Result<()> {
    // Before any thread is made, so that every thread has them blocked.
    let sigfd = catch_signals(&[
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGUSR1,
    ])?;
    let dir_fd = record::open_dir(dir)?;
    let rec: Record = record::read_json(dir_fd.as_fd(), RECORD)?
        .ok_or_else(|| anyhow!("no record in {}", dir.display()))?;
    rec.netem.validate().map_err(|e| anyhow!("{e}"))?;
    let Some(proc_) = rec.relay.as_ref() else {
        bail!("the record of {} is not a relay's", dir.display());
    };
    let seed = proc_.seed;
    let opts = Options {
        vnet_hdr: true,
        promisc: true,
        ignore_outgoing: true,
        timestamps: false,
        rcvbuf: RCVBUF,
    };
    let a = PacketSocket::open(&rec.ends[0], opts)?;
    let b = PacketSocket::open(&rec.ends[1], opts)?;
    let names = [rec.ends[0].to_string(), rec.ends[1].to_string()];
    let timer = TimerFd::new(
        ClockId::CLOCK_MONOTONIC,
        TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
    )
    .context("cannot make a timerfd")?;
    let mut relay = Relay {
        sockets: [a, b],
        dirs: [
            Direction::new(seed, &names[0], &names[1]),
            Direction::new(seed ^ 0x5851_f42d_4c95_7f2d, &names[1], &names[0]),
        ],
        netem: rec.netem.clone(),
        clear: Netem::default(),
        one_way: rec.one_way,
        seed,
        stats_seq: 0,
        dir_fd,
        buf: vec![0; BUF_LEN],
    };
    relay.write_stats();
    ready()?;
    eprintln!(
        "cloon relay: {} <-> {}: {} (seed {seed})",
        names[0], names[1], relay.netem
    );

    let mut armed: Option<u64> = None;
    loop {
        let (r0, r1, rt, rs) = {
            let mut fds = [
                PollFd::new(relay.sockets[0].as_fd(), PollFlags::POLLIN),
                PollFd::new(relay.sockets[1].as_fd(), PollFlags::POLLIN),
                PollFd::new(timer.as_fd(), PollFlags::POLLIN),
                PollFd::new(sigfd.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e).context("poll"),
            }
            let ev = |i: usize| fds[i].revents().unwrap_or(PollFlags::empty());
            (ev(0), ev(1), ev(2), ev(3))
        };
        for (i, ev) in [(0, r0), (1, r1)] {
            if ev.contains(PollFlags::POLLERR) {
                if let Some(e) = relay.sockets[i].take_error() {
                    eprintln!("cloon relay: {}: {e}", names[i]);
                }
                // Down is a pause (the kernel resumes the socket when the interface comes
                // back up); gone is the end: the link was taken down without the relay.
                if !still_there(&rec.ends[i], relay.sockets[i].ifindex()) {
                    relay.write_stats();
                    bail!("{} is gone: the relay ends", names[i]);
                }
            }
            if ev.contains(PollFlags::POLLIN) {
                relay.drain(i);
            }
        }
        if !rt.is_empty() {
            let _ = drain_fd(timer.as_fd());
            armed = None;
        }
        relay.flush();
        if !rs.is_empty() {
            while let Ok(Some(info)) = sigfd.read_signal() {
                match Signal::try_from(info.ssi_signo as i32) {
                    Ok(Signal::SIGHUP) => {
                        relay.reload();
                        relay.write_stats();
                    }
                    Ok(Signal::SIGUSR1) => relay.write_stats(),
                    _ => {
                        relay.write_stats();
                        eprintln!("cloon relay: stopped");
                        return Ok(());
                    }
                }
            }
        }
        let next = relay.next_due();
        if next != armed {
            match next {
                Some(due) => {
                    let at = TimeSpec::new((due / 1_000_000_000) as _, (due % 1_000_000_000) as _);
                    timer
                        .set(
                            Expiration::OneShot(at),
                            TimerSetTimeFlags::TFD_TIMER_ABSTIME,
                        )
                        .context("timerfd")?;
                }
                None => timer.unset().context("timerfd")?,
            }
            armed = next;
        }
    }
}

/// Whether the interface `end` still exists with the index it had (a new interface of the same
/// name is another one).
fn still_there(end: &super::ns::End, index: u32) -> bool {
    let name = end.ifname.clone();
    super::ns::within(end.netns.as_deref(), move || super::ns::ifindex(&name))
        .is_ok_and(|i| i == index)
}

/// Reads what a timerfd has, so that it stops being readable.
fn drain_fd(fd: BorrowedFd<'_>) -> nix::Result<usize> {
    let mut b = [0u8; 8];
    nix::unistd::read(fd, &mut b)
}

/// Tells the starter that the relay is ready, then lets go of the pipe it waits on.
fn ready() -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready").context("cannot say ready")?;
    out.flush().context("cannot say ready")?;
    let null = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .context("cannot open /dev/null")?;
    nix::unistd::dup2_stdout(&null).context("cannot point stdout at /dev/null")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::impair::spec::{Percent, Rate, Time};

    fn netem(text: &str) -> Netem {
        serde_json::from_str(text).unwrap()
    }

    fn run(d: &mut Direction, n: &Netem, frames: usize) -> Vec<(u64, Vec<u8>)> {
        for i in 0..frames {
            d.admit(vec![i as u8; 100], n, 1_000);
        }
        let mut out = Vec::new();
        while let Some(due) = d.next_due() {
            out.push((due, d.pop_due(due).unwrap()));
        }
        out
    }

    #[test]
    fn delay_and_order() {
        let n = netem(r#"{"delay":"50ms"}"#);
        let mut d = Direction::new(1, "a", "b");
        let out = run(&mut d, &n, 5);
        assert_eq!(out.len(), 5);
        assert!(out.iter().all(|(due, _)| *due == 1_000 + 50_000_000));
        assert_eq!(
            out.iter().map(|(_, f)| f[0]).collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 4]
        );
        assert!(d.pop_due(u64::MAX).is_none());
    }

    #[test]
    fn loss_is_seeded() {
        let n = netem(r#"{"loss":"30%"}"#);
        let count = |seed| run(&mut Direction::new(seed, "a", "b"), &n, 1000).len();
        assert_eq!(count(7), count(7));
        let c = count(7);
        assert!((600..800).contains(&c), "{c}");
        assert_ne!(count(7), count(8));
        let all = netem(r#"{"loss":"100%"}"#);
        assert_eq!(run(&mut Direction::new(1, "a", "b"), &all, 500).len(), 0);
        assert_eq!(
            run(&mut Direction::new(1, "a", "b"), &Netem::default(), 500).len(),
            500
        );
    }

    #[test]
    fn rate_spaces_frames() {
        // 100 bytes at 800 kbit/s: one per millisecond.
        let n = Netem {
            rate: Rate::from_bits_per_sec(800_000),
            ..Netem::default()
        };
        let mut d = Direction::new(1, "a", "b");
        let out = run(&mut d, &n, 10);
        let dues: Vec<u64> = out.iter().map(|(d, _)| *d).collect();
        for (i, due) in dues.iter().enumerate() {
            assert_eq!(*due, 1_000 + (i as u64 + 1) * 1_000_000);
        }
    }

    #[test]
    fn jitter_stays_in_bounds_and_limit_holds() {
        let n = Netem {
            delay: Time::from_millis(10),
            jitter: Time::from_millis(5),
            limit: Some(50),
            ..Netem::default()
        };
        let mut d = Direction::new(3, "a", "b");
        let out = run(&mut d, &n, 80);
        assert_eq!(out.len(), 50);
        assert_eq!(d.stats.overflow, 30);
        for (due, _) in &out {
            let delay = due - 1_000;
            assert!((5_000_000..=15_000_000).contains(&delay), "{delay}");
        }
        assert!(out.windows(2).all(|w| w[0].0 <= w[1].0));
    }

    #[test]
    fn duplicate_and_corrupt() {
        let n = Netem {
            duplicate: Percent::new(100.0).unwrap(),
            corrupt: Percent::new(100.0).unwrap(),
            ..Netem::default()
        };
        let mut d = Direction::new(3, "a", "b");
        let out = run(&mut d, &n, 10);
        assert_eq!(out.len(), 20);
        assert_eq!(d.stats.duplicated, 10);
        assert_eq!(d.stats.corrupted, 10);
        for (i, (_, f)) in out.iter().enumerate() {
            let orig = (i / 2) as u8;
            let flipped: u32 = f.iter().map(|b| (b ^ orig).count_ones()).sum();
            assert_eq!(flipped, 1, "one bit flipped");
            assert!(
                f[..14].iter().all(|b| *b == orig),
                "the Ethernet header is kept"
            );
        }
    }
}
