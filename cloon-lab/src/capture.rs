//! `cloon-lab capture FILE NODE:IFACE [-w FILE.pcap]`: an interface's traffic as a pcap stream,
//! on standard output by default, so that `| wireshark -k -i -` and `| tcpdump -r -` read it
//! live.
//!
//! A packet socket on the interface, made in the interface's namespace (the host side of a
//! node's veth, or the node's own interface inside its namespace: a thread enters the namespace,
//! makes the socket and ends), sees every frame the interface receives and sends. Each frame
//! becomes one pcap record, written and flushed at once. It stops cleanly, the output whole, on
//! `SIGINT`, `SIGTERM` or `SIGHUP`, when the reader closes the pipe (`EPIPE`; Rust ignores
//! `SIGPIPE`), or after `count` frames.
//!
//! The format is classic pcap (not pcapng): a 24-byte global header (magic `0xa1b2c3d4` in the
//! writer's byte order, version 2.4, snap length, link type 1 = Ethernet), then per frame a
//! 16-byte header (seconds, microseconds, captured length, original length) and the bytes. It
//! is written here rather than with a crate: forty lines, no dependency, and every reader
//! (tcpdump, Wireshark, scapy) takes it.
//!
//! What a capture on a veth shows is what the kernel hands over: a VLAN tag that the interface
//! took out is put back (as libpcap does), but a TCP stream sent with segmentation offload shows
//! as frames of up to 64 KiB with unfinished checksums, as tcpdump shows them.

use crate::impair::ns::End;
use crate::impair::packet::{self, Options, PacketSocket};
use anyhow::{Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use std::io::{self, Write};
use std::os::fd::AsFd;

/// The pcap magic number: microsecond time stamps, in the writer's byte order.
pub const PCAP_MAGIC: u32 = 0xa1b2_c3d4;
/// Link type Ethernet (`LINKTYPE_ETHERNET`).
pub const LINKTYPE_ETHERNET: u32 = 1;
/// The snap length: whole frames, offload super-frames included.
pub const SNAPLEN: u32 = 262_144;

/// Writes the pcap global header.
pub fn write_header(out: &mut impl Write, snaplen: u32) -> io::Result<()> {
    let mut h = Vec::with_capacity(24);
    h.extend_from_slice(&PCAP_MAGIC.to_ne_bytes());
    h.extend_from_slice(&2u16.to_ne_bytes()); // version 2.4
    h.extend_from_slice(&4u16.to_ne_bytes());
    h.extend_from_slice(&0i32.to_ne_bytes()); // time zone: UTC
    h.extend_from_slice(&0u32.to_ne_bytes()); // accuracy
    h.extend_from_slice(&snaplen.to_ne_bytes());
    h.extend_from_slice(&LINKTYPE_ETHERNET.to_ne_bytes());
    out.write_all(&h)
}

/// Writes one record: the time (seconds, microseconds), the frame's original length and the
/// captured bytes.
pub fn write_record(
    out: &mut impl Write,
    (sec, usec): (i64, i64),
    orig_len: usize,
    data: &[u8],
) -> io::Result<()> {
    let mut h = Vec::with_capacity(16 + data.len());
    h.extend_from_slice(&(sec as u32).to_ne_bytes());
    h.extend_from_slice(&(usec as u32).to_ne_bytes());
    h.extend_from_slice(&(data.len() as u32).to_ne_bytes());
    h.extend_from_slice(&(orig_len as u32).to_ne_bytes());
    h.extend_from_slice(data);
    out.write_all(&h)
}

/// How to capture.
#[derive(Debug, Clone)]
pub struct CaptureOptions {
    /// Stop after this many frames.
    pub count: Option<u64>,
    /// Bytes kept of each frame.
    pub snaplen: u32,
    /// Stop cleanly on `SIGINT`, `SIGTERM` and `SIGHUP` (blocked in the calling thread and read
    /// through a signalfd; for a command whose only thread captures).
    pub stop_on_signals: bool,
    /// Put the interface in promiscuous mode while capturing (undone by the kernel at the end).
    pub promisc: bool,
}

impl Default for CaptureOptions {
    fn default() -> Self {
        CaptureOptions {
            count: None,
            snaplen: SNAPLEN,
            stop_on_signals: true,
            promisc: true,
        }
    }
}

/// Why a capture stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// `count` frames were written.
    Count,
    /// A signal asked it to.
    Signal,
    /// The reader closed the output.
    OutputClosed,
}

/// What a capture did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub frames: u64,
    pub bytes: u64,
    /// Frames the kernel dropped because the capture did not keep up.
    pub kernel_drops: u64,
    pub stopped: Stopped,
}

/// Whether an error means the reader went away.
fn closed(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::BrokenPipe
}

/// Captures the traffic of `iface` (an interface, in its namespace) as pcap into `out`, until
/// a signal, the reader's end or `count` frames (see the module's documentation).
pub fn run(iface: &End, mut out: impl Write, opts: &CaptureOptions) -> Result<Summary> {
    // Block the signals first, so that the namespace thread inherits the mask too.
    let sigfd = if opts.stop_on_signals {
        Some(crate::impair::relay::catch_signals(&[
            Signal::SIGINT,
            Signal::SIGTERM,
            Signal::SIGHUP,
        ])?)
    } else {
        None
    };
    let sock = PacketSocket::open(
        iface,
        Options {
            vnet_hdr: false,
            promisc: opts.promisc,
            ignore_outgoing: false,
            timestamps: true,
            rcvbuf: 4 * 1024 * 1024,
        },
    )?;
    let mut summary = Summary {
        frames: 0,
        bytes: 0,
        kernel_drops: 0,
        stopped: Stopped::Signal,
    };
    let finish = |mut s: Summary, why: Stopped, sock: &PacketSocket| {
        s.stopped = why;
        s.kernel_drops += sock.kernel_drops();
        Ok(s)
    };
    match write_header(&mut out, opts.snaplen).and_then(|()| out.flush()) {
        Err(e) if closed(&e) => return finish(summary, Stopped::OutputClosed, &sock),
        other => other.context("cannot write the capture")?,
    }
    if opts.count == Some(0) {
        return finish(summary, Stopped::Count, &sock);
    }
    let mut buf = vec![0u8; opts.snaplen as usize + 4];
    loop {
        let sig_ready = {
            let mut fds = vec![PollFd::new(sock.as_fd(), PollFlags::POLLIN)];
            if let Some(s) = &sigfd {
                fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e).context("poll"),
            }
            fds.get(1)
                .and_then(PollFd::revents)
                .is_some_and(|r| !r.is_empty())
        };
        while let Some(got) = sock.recv(&mut buf).context("cannot read a frame")? {
            let mut frame = buf[..got.len].to_vec();
            let mut orig = got.orig_len;
            if let Some(tag) = got.vlan {
                packet::insert_vlan(&mut frame, tag);
                orig += 4;
            }
            frame.truncate(opts.snaplen as usize);
            let time = got.time.unwrap_or_else(|| {
                let d = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                (d.as_secs() as i64, i64::from(d.subsec_micros()))
            });
            match write_record(&mut out, time, orig, &frame).and_then(|()| out.flush()) {
                Err(e) if closed(&e) => return finish(summary, Stopped::OutputClosed, &sock),
                other => other.context("cannot write the capture")?,
            }
            summary.frames += 1;
            summary.bytes += orig as u64;
            if opts.count.is_some_and(|c| summary.frames >= c) {
                return finish(summary, Stopped::Count, &sock);
            }
        }
        if sig_ready {
            return finish(summary, Stopped::Signal, &sock);
        }
    }
}

/// One record of a pcap file, as [`read`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcapRecord {
    pub sec: u32,
    pub usec: u32,
    pub orig_len: u32,
    pub data: Vec<u8>,
}

/// Reads a classic pcap file (either byte order, microsecond time stamps): its link type and its
/// records. For tests and tools; a truncated last record is left out.
pub fn read(bytes: &[u8]) -> Result<(u32, Vec<PcapRecord>), String> {
    let magic = bytes
        .get(..4)
        .ok_or("shorter than a pcap header")?
        .try_into()
        .map_err(|_| "bad header")?;
    let swap = match u32::from_ne_bytes(magic) {
        PCAP_MAGIC => false,
        m if m.swap_bytes() == PCAP_MAGIC => true,
        m => return Err(format!("not a pcap file (magic {m:#x})")),
    };
    let u32_at = |at: usize| -> Option<u32> {
        let v = u32::from_ne_bytes(bytes.get(at..at + 4)?.try_into().ok()?);
        Some(if swap { v.swap_bytes() } else { v })
    };
    if bytes.len() < 24 {
        return Err("shorter than a pcap header".into());
    }
    let linktype = u32_at(20).ok_or("bad header")?;
    let mut records = Vec::new();
    let mut at = 24;
    while let (Some(sec), Some(usec), Some(incl), Some(orig)) =
        (u32_at(at), u32_at(at + 4), u32_at(at + 8), u32_at(at + 12))
    {
        let start = at + 16;
        let Some(data) = bytes.get(start..start + incl as usize) else {
            break;
        };
        records.push(PcapRecord {
            sec,
            usec,
            orig_len: orig,
            data: data.to_vec(),
        });
        at = start + incl as usize;
    }
    Ok((linktype, records))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_records_read_back() {
        let mut out = Vec::new();
        write_header(&mut out, SNAPLEN).unwrap();
        assert_eq!(out.len(), 24);
        write_record(&mut out, (1_700_000_000, 123_456), 60, &[0xaa; 60]).unwrap();
        write_record(&mut out, (1_700_000_001, 7), 1514, &[0xbb; 100]).unwrap();
        let (lt, recs) = read(&out).unwrap();
        assert_eq!(lt, LINKTYPE_ETHERNET);
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].usec, 123_456);
        assert_eq!(recs[1].orig_len, 1514);
        assert_eq!(recs[1].data.len(), 100);
        // Truncated last record: left out.
        assert_eq!(read(&out[..out.len() - 1]).unwrap().1.len(), 1);
        assert!(read(b"nope").is_err());
        // The other byte order reads too.
        let mut be = out.clone();
        for w in [0usize, 16, 20] {
            be[w..w + 4].reverse();
        }
        be[4..6].reverse();
        be[6..8].reverse();
        be[24..40].chunks_mut(4).for_each(<[u8]>::reverse);
        be[100..116].chunks_mut(4).for_each(<[u8]>::reverse);
        let (lt, recs) = read(&be).unwrap();
        assert_eq!((lt, recs.len()), (1, 2));
    }

    #[test]
    fn header_matches_libpcap() {
        // What libpcap writes for an Ethernet capture with snap length 262144 on little-endian.
        let mut out = Vec::new();
        write_header(&mut out, SNAPLEN).unwrap();
        if cfg!(target_endian = "little") {
            assert_eq!(
                out,
                [
                    0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 1, 0,
                    0, 0
                ]
            );
        }
    }
}
