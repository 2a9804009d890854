//! The kernel engine: the `netem` queueing discipline, set on the egress of each end of a link
//! through route netlink (an `RTM_NEWQDISC` request, as `tc qdisc replace dev X root netem ...`
//! sends it), with no `tc` process.
//!
//! netlink-packet-route models no netem options, so the request carries the kind `netem` and a
//! raw `TCA_OPTIONS` attribute that this module writes byte by byte, from the Linux uapi header
//! `linux/pkt_sched.h`:
//!
//! ```text
//! struct tc_netem_qopt { u32 latency, limit, loss, gap, duplicate, jitter; }   24 bytes, then
//! nested attributes: TCA_NETEM_CORRUPT (4) struct tc_netem_corrupt { u32 probability, correlation }
//!                    TCA_NETEM_RATE    (6) struct tc_netem_rate { u32 rate (bytes/s); s32 packet_overhead;
//!                                                                 u32 cell_size; s32 cell_overhead }
//!                    TCA_NETEM_RATE64  (8) u64 bytes/s, when the rate does not fit in 32 bits
//!                    TCA_NETEM_LATENCY64 (10), TCA_NETEM_JITTER64 (11): s64 nanoseconds, when
//!                                          the time does not fit in the 32-bit field
//! ```
//!
//! Two facts that the header does not say, checked against the bytes `tc` (iproute2 6.1) sends:
//! the `latency` and `jitter` fields are in the packet scheduler's ticks of 64 ns (the kernel
//! reads them with `PSCHED_TICKS2NS`, a shift by 6), not in microseconds as the header's comment
//! says: `delay 10ms` is 156250; probabilities are fractions of `u32::MAX`, rounded (1 % is
//! 42949673). All numbers are in the host's byte order.
//!
//! netem delays what leaves an interface, so a delay D on both ends of a link makes its round
//! trip 2D longer.

use super::ns::{self, End};
use super::spec::{Netem, Percent, Rate, Time, DEFAULT_LIMIT};
use futures::StreamExt;
use rtnetlink::packet_core::{
    DefaultNla, NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP,
    NLM_F_REPLACE, NLM_F_REQUEST,
};
use rtnetlink::packet_route::tc::{TcAttribute, TcHandle, TcMessage, TcOption};
use rtnetlink::packet_route::RouteNetlinkMessage;
use std::io;

/// `TCA_OPTIONS`, the attribute of a qdisc's own options (enum in `linux/rtnetlink.h`).
pub const TCA_OPTIONS: u16 = 2;
/// Nested in netem's options: the corruption probability (`struct tc_netem_corrupt`).
pub const TCA_NETEM_CORRUPT: u16 = 4;
/// Nested in netem's options: the rate (`struct tc_netem_rate`).
pub const TCA_NETEM_RATE: u16 = 6;
/// Nested in netem's options: the rate in bytes per second, 64 bits.
pub const TCA_NETEM_RATE64: u16 = 8;
/// Nested in netem's options: the delay in nanoseconds, 64 bits.
pub const TCA_NETEM_LATENCY64: u16 = 10;
/// Nested in netem's options: the jitter in nanoseconds, 64 bits.
pub const TCA_NETEM_JITTER64: u16 = 11;
/// The size of `struct tc_netem_qopt`.
pub const QOPT_LEN: usize = 24;
/// Nanoseconds per packet-scheduler tick (`1 << PSCHED_SHIFT`).
pub const NS_PER_TICK: u64 = 64;
/// The qdisc's kind.
pub const KIND: &str = "netem";

/// A time in scheduler ticks, and whether it needed the 64-bit attribute (the 32-bit field
/// then holds `u32::MAX`).
fn ticks(t: Time) -> (u32, bool) {
    match u32::try_from(t.as_nanos() / NS_PER_TICK) {
        Ok(v) if v < u32::MAX => (v, false),
        _ => (u32::MAX, true),
    }
}

/// Appends one netlink attribute (4-byte header, value, padding to 4 bytes).
fn push_attr(out: &mut Vec<u8>, kind: u16, value: &[u8]) {
    let len = u16::try_from(4 + value.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(value);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

/// The value of the `TCA_OPTIONS` attribute that sets `netem` to `n`: the qopt struct, then the
/// nested attributes it needs (corruption, rate, 64-bit times).
pub fn options(n: &Netem) -> Vec<u8> {
    let (latency, latency64) = ticks(n.delay);
    let (jitter, jitter64) = ticks(n.jitter);
    let mut out = Vec::with_capacity(64);
    for field in [
        latency,
        n.limit(),
        n.loss.as_u32_fraction(),
        0, // gap: no reordering
        n.duplicate.as_u32_fraction(),
        jitter,
    ] {
        out.extend_from_slice(&field.to_ne_bytes());
    }
    if !n.corrupt.is_zero() {
        let mut v = n.corrupt.as_u32_fraction().to_ne_bytes().to_vec();
        v.extend_from_slice(&0u32.to_ne_bytes()); // no correlation
        push_attr(&mut out, TCA_NETEM_CORRUPT, &v);
    }
    if let Some(rate) = n.rate {
        let bytes = rate.bytes_per_sec();
        let rate32 = match u32::try_from(bytes) {
            Ok(v) => v,
            Err(_) => {
                push_attr(&mut out, TCA_NETEM_RATE64, &bytes.to_ne_bytes());
                u32::MAX
            }
        };
        let mut v = rate32.to_ne_bytes().to_vec();
        v.extend_from_slice(&[0; 12]); // no packet overhead, cell size or cell overhead
        push_attr(&mut out, TCA_NETEM_RATE, &v);
    }
    if latency64 {
        let ns = i64::try_from(n.delay.as_nanos()).unwrap_or(i64::MAX);
        push_attr(&mut out, TCA_NETEM_LATENCY64, &ns.to_ne_bytes());
    }
    if jitter64 {
        let ns = i64::try_from(n.jitter.as_nanos()).unwrap_or(i64::MAX);
        push_attr(&mut out, TCA_NETEM_JITTER64, &ns.to_ne_bytes());
    }
    out
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn percent_of(fraction: u32) -> Percent {
    // Rounded to a millionth of a percent, so that 1 % reads back as 1 %.
    let p = f64::from(fraction) / f64::from(u32::MAX) * 100.0;
    Percent::new((p * 1e6).round() / 1e6).unwrap_or(Percent::ZERO)
}

/// Reads back the `TCA_OPTIONS` of a netem qdisc (as the kernel dumps it) into a [`Netem`];
/// `None` when it is too short to be one.
pub fn decode_options(b: &[u8]) -> Option<Netem> {
    let mut n = Netem {
        delay: Time::from_nanos(u64::from(u32_at(b, 0)?) * NS_PER_TICK),
        limit: Some(u32_at(b, 4)?).filter(|l| *l != DEFAULT_LIMIT),
        loss: percent_of(u32_at(b, 8)?),
        duplicate: percent_of(u32_at(b, 16)?),
        jitter: Time::from_nanos(u64::from(u32_at(b, 20)?) * NS_PER_TICK),
        ..Netem::default()
    };
    let mut at = QOPT_LEN;
    while at + 4 <= b.len() {
        let len = usize::from(u16::from_ne_bytes([b[at], b[at + 1]]));
        let kind = u16::from_ne_bytes([b[at + 2], b[at + 3]]) & 0x3fff;
        if len < 4 || at + len > b.len() {
            break;
        }
        let v = &b[at + 4..at + len];
        match kind {
            TCA_NETEM_CORRUPT => n.corrupt = percent_of(u32_at(v, 0)?),
            TCA_NETEM_RATE if n.rate.is_none() => {
                n.rate = Rate::from_bits_per_sec(u64::from(u32_at(v, 0)?) * 8)
            }
            TCA_NETEM_RATE64 => n.rate = Rate::from_bits_per_sec(u64_at(v, 0)? * 8),
            TCA_NETEM_LATENCY64 => n.delay = Time::from_nanos(u64_at(v, 0)?),
            TCA_NETEM_JITTER64 => n.jitter = Time::from_nanos(u64_at(v, 0)?),
            _ => {}
        }
        at += len.div_ceil(4) * 4;
    }
    Some(n)
}

/// The request that makes (or replaces) the root qdisc of interface `ifindex` a netem with `n`:
/// `RTM_NEWQDISC`, flags `REQUEST|ACK|REPLACE|CREATE`, as `tc qdisc replace dev X root netem`.
pub fn replace_request(ifindex: i32, n: &Netem) -> NetlinkMessage<RouteNetlinkMessage> {
    let mut tc = TcMessage::with_index(ifindex);
    tc.header.parent = TcHandle::ROOT;
    tc.attributes.push(TcAttribute::Kind(KIND.to_string()));
    tc.attributes
        .push(TcAttribute::Other(DefaultNla::new(TCA_OPTIONS, options(n))));
    message(
        RouteNetlinkMessage::NewQueueDiscipline(tc),
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_REPLACE | NLM_F_CREATE,
    )
}

/// The request that deletes the root qdisc of interface `ifindex` (`tc qdisc del dev X root`);
/// the interface falls back to its default qdisc.
pub fn delete_request(ifindex: i32) -> NetlinkMessage<RouteNetlinkMessage> {
    let mut tc = TcMessage::with_index(ifindex);
    tc.header.parent = TcHandle::ROOT;
    message(
        RouteNetlinkMessage::DelQueueDiscipline(tc),
        NLM_F_REQUEST | NLM_F_ACK,
    )
}

fn message(inner: RouteNetlinkMessage, flags: u16) -> NetlinkMessage<RouteNetlinkMessage> {
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    let mut m = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(inner));
    m.finalize();
    m
}

/// The bytes of a request, as they go to the kernel (sequence number 0: the connection sets it).
pub fn bytes(m: &NetlinkMessage<RouteNetlinkMessage>) -> Vec<u8> {
    let mut buf = vec![0; m.buffer_len()];
    m.serialize(&mut buf);
    buf
}

/// A route netlink connection, on the calling thread (which must stay in one namespace).
struct Conn {
    runtime: tokio::runtime::Runtime,
    handle: rtnetlink::Handle,
}

impl Conn {
    fn open() -> io::Result<Conn> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()?;
        let (connection, handle, _) = {
            let _context = runtime.enter();
            rtnetlink::new_connection()?
        };
        runtime.spawn(connection);
        Ok(Conn { runtime, handle })
    }

    /// Sends a request and waits for its acknowledgement; a refusal is the kernel's errno.
    fn ack(&mut self, m: NetlinkMessage<RouteNetlinkMessage>) -> io::Result<()> {
        let mut stream = self
            .handle
            .request(m)
            .map_err(|e| io::Error::other(format!("netlink: {e}")))?;
        self.runtime.block_on(async {
            while let Some(reply) = stream.next().await {
                if let NetlinkPayload::Error(e) = reply.payload {
                    if e.code.is_some() {
                        return Err(io::Error::from_raw_os_error(-e.raw_code()));
                    }
                }
            }
            Ok(())
        })
    }

    /// The root qdisc of `ifindex`: its kind and raw options.
    fn root_qdisc(&mut self, ifindex: i32) -> io::Result<Option<(String, Vec<u8>)>> {
        let mut tc = TcMessage::with_index(0);
        tc.header.index = 0;
        let request = message(
            RouteNetlinkMessage::GetQueueDiscipline(tc),
            NLM_F_REQUEST | NLM_F_DUMP,
        );
        let mut stream = self
            .handle
            .request(request)
            .map_err(|e| io::Error::other(format!("netlink: {e}")))?;
        self.runtime.block_on(async {
            let mut found = None;
            while let Some(reply) = stream.next().await {
                match reply.payload {
                    NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewQueueDiscipline(m))
                        if m.header.index == ifindex && m.header.parent == TcHandle::ROOT =>
                    {
                        let mut kind = String::new();
                        let mut opts = Vec::new();
                        for a in m.attributes {
                            match a {
                                TcAttribute::Kind(k) => kind = k,
                                TcAttribute::Options(o) => {
                                    for o in o {
                                        if let TcOption::Other(nla) = o {
                                            use rtnetlink::packet_core::Nla;
                                            let mut v = vec![0; nla.value_len()];
                                            nla.emit_value(&mut v);
                                            opts = v;
                                        }
                                    }
                                }
                                _ => {}
                            }
                        }
                        found = Some((kind, opts));
                    }
                    NetlinkPayload::Error(e) if e.code.is_some() => {
                        return Err(io::Error::from_raw_os_error(-e.raw_code()));
                    }
                    _ => {}
                }
            }
            Ok(found)
        })
    }
}

/// Runs `f` with a netlink connection and the interface index of `end`, in its namespace.
fn at_end<T: Send + 'static>(
    end: &End,
    f: impl FnOnce(&mut Conn, i32) -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    let ifname = end.ifname.clone();
    ns::within(end.netns.as_deref(), move || {
        let index = i32::try_from(ns::ifindex(&ifname)?).map_err(io::Error::other)?;
        let mut conn = Conn::open()?;
        f(&mut conn, index)
    })
}

/// Explains a refusal of the kernel to make a netem qdisc.
fn netem_error(end: &End, e: io::Error) -> io::Error {
    if e.raw_os_error() == Some(nix::libc::ENOENT) {
        io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "{end}: this kernel has no netem qdisc (\"Specified qdisc kind is unknown\": \
                 CONFIG_NET_SCH_NETEM not set or module sch_netem missing); use the relay engine"
            ),
        )
    } else {
        io::Error::new(e.kind(), format!("{end}: cannot set netem: {e}"))
    }
}

/// Sets (or replaces) netem `n` as the root qdisc of `end`.
pub fn set(end: &End, n: &Netem) -> io::Result<()> {
    let n = n.clone();
    at_end(end, move |c, index| c.ack(replace_request(index, &n))).map_err(|e| netem_error(end, e))
}

/// Deletes the root qdisc of `end` if it is a netem (another kind, made by someone else, stays);
/// an interface already gone counts as done.
pub fn clear(end: &End) -> io::Result<()> {
    let result = at_end(end, |c, index| match c.root_qdisc(index)? {
        Some((kind, _)) if kind == KIND => c.ack(delete_request(index)),
        _ => Ok(()),
    });
    match result {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

/// The netem of `end`'s root qdisc, `None` if its root qdisc is not a netem.
pub fn get(end: &End) -> io::Result<Option<Netem>> {
    at_end(end, |c, index| {
        Ok(match c.root_qdisc(index)? {
            Some((kind, opts)) if kind == KIND => decode_options(&opts),
            _ => None,
        })
    })
}

/// What the kernel says of an interface that matters to a relay: its index, the bridge (or other
/// controller) it is a port of, and the index of the interface it is linked to (a veth's peer,
/// in the peer's namespace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    pub index: u32,
    pub master: Option<String>,
    pub link: Option<u32>,
}

/// Looks up `end` (see [`LinkInfo`]).
pub fn link_info(end: &End) -> io::Result<LinkInfo> {
    use futures::TryStreamExt;
    use rtnetlink::packet_route::link::LinkAttribute;
    let ifname = end.ifname.clone();
    ns::within(end.netns.as_deref(), move || {
        let index = ns::ifindex(&ifname)?;
        let conn = Conn::open()?;
        let mut links = conn.handle.link().get().match_index(index).execute();
        let link = conn
            .runtime
            .block_on(links.try_next())
            .map_err(|e| io::Error::other(format!("cannot look up {ifname}: {e}")))?;
        let attrs = link.map(|l| l.attributes).unwrap_or_default();
        let master = attrs.iter().find_map(|a| match a {
            LinkAttribute::Controller(i) => Some(*i),
            _ => None,
        });
        let link = attrs.iter().find_map(|a| match a {
            LinkAttribute::Link(i) => Some(*i),
            _ => None,
        });
        Ok(LinkInfo {
            index,
            master: master.map(|i| {
                nix::net::if_::if_indextoname(i)
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|_| format!("interface {i}"))
            }),
            link,
        })
    })
}

/// Whether this kernel can make netem qdiscs: tries to add one on the loopback interface of a
/// throwaway network namespace (made by a thread that unshares its own, which ends with the
/// thread). The kernel loads `sch_netem` on demand if it is a module. `Err` says why not.
pub fn probe() -> Result<(), String> {
    let result = std::thread::Builder::new()
        .name("cloon-netem-probe".into())
        .spawn(|| -> io::Result<()> {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| io::Error::other(format!("cannot make a throwaway namespace: {e}")))?;
            let mut conn = Conn::open()?;
            conn.ack(replace_request(1, &Netem::default()))
        })
        .map_err(|e| e.to_string())?
        .join()
        .map_err(|_| "the probe thread panicked".to_string())?;
    match result {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(nix::libc::ENOENT) => {
            Err("the kernel has no netem qdisc (\"Specified qdisc kind is unknown\")".to_string())
        }
        Err(e) => Err(format!("netem probe failed: {e}")),
    }
}

/// The command that sets `n` on `end` by hand, for `--explain`.
pub fn explain(end: &End, n: &Netem) -> String {
    format!(
        "{}tc qdisc replace dev {} root netem {}",
        end.shell_prefix(),
        end.ifname,
        n.tc_args()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses strace's `\x..` dump of a byte string.
    fn hex(s: &str) -> Vec<u8> {
        s.split("\\x")
            .filter(|h| !h.is_empty())
            .map(|h| u8::from_str_radix(h, 16).unwrap())
            .collect()
    }

    fn netem(text: &str) -> Netem {
        serde_json::from_str(text).unwrap()
    }

    // The TCA_OPTIONS values below are what `tc` (iproute2 6.1) sent for these commands, as
    // `strace -e sendmsg -xx` showed them on an x86-64 host (little-endian) whose kernel has no
    // netem (the request is sent all the same, then refused).

    #[test]
    #[cfg(target_endian = "little")]
    fn options_are_the_bytes_tc_sends() {
        // tc qdisc add dev d0 root netem delay 10ms 2ms loss 1%
        let tc = hex("\\x5a\\x62\\x02\\x00\\xe8\\x03\\x00\\x00\\x29\\x5c\\x8f\\x02\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x12\\x7a\\x00\\x00");
        let n = netem(r#"{"delay":"10ms","jitter":"2ms","loss":"1%"}"#);
        assert_eq!(options(&n), tc);

        // tc qdisc replace dev d0 root netem delay 50ms
        let tc = hex("\\xc2\\xeb\\x0b\\x00\\xe8\\x03\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00");
        assert_eq!(options(&netem(r#"{"delay":"50ms"}"#)), tc);

        // tc qdisc replace dev d0 root netem delay 10ms 2ms loss 1% duplicate 2% corrupt 0.5%
        //    rate 10mbit limit 1000
        let tc = hex("\\x5a\\x62\\x02\\x00\\xe8\\x03\\x00\\x00\\x29\\x5c\\x8f\\x02\\x00\\x00\\x00\\x00\\x52\\xb8\\x1e\\x05\\x12\\x7a\\x00\\x00\\x0c\\x00\\x04\\x00\\x14\\xae\\x47\\x01\\x00\\x00\\x00\\x00\\x14\\x00\\x06\\x00\\xd0\\x12\\x13\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00");
        let n = netem(
            r#"{"delay":"10ms","jitter":"2ms","loss":"1%","duplicate":"2%","corrupt":"0.5%","rate":"10mbit"}"#,
        );
        assert_eq!(options(&n), tc);
        assert_eq!(decode_options(&tc), Some(n));
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn the_whole_request_is_the_one_tc_sends() {
        // tc qdisc replace dev d0 root netem delay 50ms: nlmsg_len 76, RTM_NEWQDISC (36),
        // REQUEST|ACK|REPLACE|CREATE, then the tcmsg (family 0, ifindex, handle 0, parent
        // TC_H_ROOT, info 0), TCA_KIND "netem", TCA_OPTIONS. tc's sequence number is zeroed here
        // (the connection sets its own), and the interface index is 2.
        let mut tc = vec![76, 0, 0, 0, 36, 0];
        tc.extend_from_slice(&(1u16 | 4 | 0x100 | 0x400).to_ne_bytes());
        tc.extend_from_slice(&[0; 8]); // seq, pid
        tc.extend_from_slice(&[0, 0, 0, 0]); // family, padding
        tc.extend_from_slice(&2i32.to_ne_bytes()); // ifindex
        tc.extend_from_slice(&0u32.to_ne_bytes()); // handle
        tc.extend_from_slice(&u32::MAX.to_ne_bytes()); // parent: root
        tc.extend_from_slice(&0u32.to_ne_bytes()); // info
        tc.extend_from_slice(&[10, 0, 1, 0]);
        tc.extend_from_slice(b"netem\0\0\0");
        tc.extend_from_slice(&[28, 0, 2, 0]);
        tc.extend_from_slice(&hex("\\xc2\\xeb\\x0b\\x00\\xe8\\x03\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00"));
        let ours = bytes(&replace_request(2, &netem(r#"{"delay":"50ms"}"#)));
        assert_eq!(ours, tc);
    }

    #[test]
    fn large_values_take_the_64_bit_attributes() {
        let n = netem(r#"{"delay":"300s","jitter":"1ms","rate":"40gbit"}"#);
        let b = options(&n);
        // latency field saturated, the 64-bit attributes carry the truth
        assert_eq!(u32_at(&b, 0), Some(u32::MAX));
        assert_eq!(decode_options(&b), Some(n));
        assert_eq!(b.len(), QOPT_LEN + 12 + 20 + 12);
    }

    #[test]
    fn delete_request_names_the_root() {
        let b = bytes(&delete_request(7));
        assert_eq!(b.len(), 16 + 20);
        assert_eq!(u16::from_ne_bytes([b[4], b[5]]), 37); // RTM_DELQDISC
        assert_eq!(i32::from_ne_bytes(b[20..24].try_into().unwrap()), 7);
        assert_eq!(u32::from_ne_bytes(b[28..32].try_into().unwrap()), u32::MAX);
    }

    #[test]
    fn explain_says_the_tc_command() {
        let n = netem(r#"{"delay":"10ms","jitter":"2ms","loss":"1%"}"#);
        assert_eq!(
            explain(&End::in_netns("lab", "eth1"), &n),
            "ip netns exec lab tc qdisc replace dev eth1 root netem limit 1000 delay 10ms 2ms loss 1%"
        );
    }
}
