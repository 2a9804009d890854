//! Turns what a packet socket receives into frames as they would be on a wire, in software.
//!
//! A veth's peer hands over its frames the way a network card would take them: with the TCP or
//! UDP checksum left for the "hardware" to finish (checksum offload), and a TCP stream in frames
//! of up to 64 KiB for the "hardware" to cut (segmentation offload). Between two veths through a
//! bridge, the kernel carries that state along; a frame rewritten through a packet socket loses
//! it, and the receiver would drop a frame with an unfinished checksum, or never get one larger
//! than its MTU. So the relay does the hardware's work: [`to_wire`] finishes the checksum, and
//! cuts TCP super-frames into segments of `gso_size` bytes (sequence numbers advanced, IPv4 ids
//! counted up, FIN and PSH kept for the last segment and CWR for the first, each IP and TCP
//! checksum computed afresh). Every frame then has whole checksums, so that a corrupted one is
//! caught by the receiver as on a real wire.

use super::packet::{
    VnetHdr, VNET_F_NEEDS_CSUM, VNET_GSO_ECN, VNET_GSO_NONE, VNET_GSO_TCPV4, VNET_GSO_TCPV6,
};

/// Why a frame cannot be put on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unwired {
    /// A segmentation offload the relay does not cut (UDP GSO, or IPv6 extension headers).
    UnsupportedGso,
    /// Headers that do not hold together (too short, bad offsets).
    Malformed,
}

/// The internet checksum's running sum over `data` (big-endian 16-bit words, odd byte padded).
fn sum(mut acc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc = acc.wrapping_add(u32::from(u16::from_be_bytes([c[0], c[1]])));
        if acc > 0xffff_0000 {
            acc = (acc & 0xffff) + (acc >> 16);
        }
    }
    if let [last] = chunks.remainder() {
        acc = acc.wrapping_add(u32::from(*last) << 8);
    }
    acc
}

/// Folds a running sum into the 16-bit one's complement checksum.
fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// The internet checksum of `data` (RFC 1071).
pub fn checksum(data: &[u8]) -> u16 {
    fold(sum(0, data))
}

/// Finishes an offloaded checksum: the one's complement sum from `start` to the end of the frame
/// (the field at `start + offset` holds the pseudo-header's sum, as the sender left it), stored at
/// `start + offset`.
fn finish_checksum(frame: &mut [u8], start: usize, offset: usize) -> Result<(), Unwired> {
    let at = start + offset;
    if start > frame.len() || at + 2 > frame.len() {
        return Err(Unwired::Malformed);
    }
    let mut c = fold(sum(0, &frame[start..]));
    // UDP (its checksum is 6 bytes in): 0 means "no checksum", so a computed 0 is sent as 0xffff.
    if offset == 6 && c == 0 {
        c = 0xffff;
    }
    frame[at..at + 2].copy_from_slice(&c.to_be_bytes());
    Ok(())
}

/// Where the headers of a TCP frame are: IP header start, TCP header start, payload start, and
/// whether it is IPv4.
struct TcpLayout {
    ip: usize,
    tcp: usize,
    payload: usize,
    v4: bool,
}

fn tcp_layout(frame: &[u8]) -> Result<TcpLayout, Unwired> {
    if frame.len() < 14 {
        return Err(Unwired::Malformed);
    }
    let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
    let ip = 14;
    let (tcp, v4) = match ethertype {
        0x0800 => {
            let ihl = usize::from(frame.get(ip).ok_or(Unwired::Malformed)? & 0x0f) * 4;
            if ihl < 20 || frame.get(ip + 9) != Some(&6) {
                return Err(Unwired::UnsupportedGso);
            }
            (ip + ihl, true)
        }
        0x86dd => {
            if frame.get(ip + 6) != Some(&6) {
                return Err(Unwired::UnsupportedGso);
            }
            (ip + 40, false)
        }
        _ => return Err(Unwired::UnsupportedGso),
    };
    let doff = usize::from(frame.get(tcp + 12).ok_or(Unwired::Malformed)? >> 4) * 4;
    if doff < 20 || tcp + doff > frame.len() {
        return Err(Unwired::Malformed);
    }
    Ok(TcpLayout {
        ip,
        tcp,
        payload: tcp + doff,
        v4,
    })
}

/// The TCP checksum of the segment `frame[l.tcp..]`, with its pseudo-header.
fn tcp_checksum(frame: &mut [u8], l: &TcpLayout) {
    frame[l.tcp + 16..l.tcp + 18].copy_from_slice(&[0, 0]);
    let tcp_len = frame.len() - l.tcp;
    let mut acc = if l.v4 {
        sum(0, &frame[l.ip + 12..l.ip + 20])
    } else {
        sum(0, &frame[l.ip + 8..l.ip + 40])
    };
    acc = sum(acc, &(tcp_len as u32).to_be_bytes());
    acc = sum(acc, &[0, 6]);
    acc = sum(acc, &frame[l.tcp..]);
    let c = fold(acc);
    frame[l.tcp + 16..l.tcp + 18].copy_from_slice(&c.to_be_bytes());
}

/// Cuts a TCP super-frame into segments of `mss` payload bytes.
fn segment_tcp(frame: &[u8], mss: usize) -> Result<Vec<Vec<u8>>, Unwired> {
    let l = tcp_layout(frame)?;
    if mss == 0 {
        return Err(Unwired::Malformed);
    }
    let payload = &frame[l.payload..];
    let headers = &frame[..l.payload];
    let seq0 = u32::from_be_bytes(
        frame[l.tcp + 4..l.tcp + 8]
            .try_into()
            .map_err(|_| Unwired::Malformed)?,
    );
    let id0 = u16::from_be_bytes([frame[l.ip + 4], frame[l.ip + 5]]);
    let flags0 = frame[l.tcp + 13];
    let count = payload.len().div_ceil(mss).max(1);
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let chunk = &payload[(i * mss).min(payload.len())..((i + 1) * mss).min(payload.len())];
        let mut seg = Vec::with_capacity(headers.len() + chunk.len());
        seg.extend_from_slice(headers);
        seg.extend_from_slice(chunk);
        let seq = seq0.wrapping_add((i * mss) as u32);
        seg[l.tcp + 4..l.tcp + 8].copy_from_slice(&seq.to_be_bytes());
        let mut flags = flags0;
        if i + 1 < count {
            flags &= !(0x01 | 0x08); // FIN, PSH: the last segment's
        }
        if i > 0 {
            flags &= !0x80; // CWR: the first segment's
        }
        seg[l.tcp + 13] = flags;
        let ip_payload = seg.len() - l.tcp;
        if l.v4 {
            let total = u16::try_from(seg.len() - l.ip).map_err(|_| Unwired::Malformed)?;
            seg[l.ip + 2..l.ip + 4].copy_from_slice(&total.to_be_bytes());
            seg[l.ip + 4..l.ip + 6].copy_from_slice(&id0.wrapping_add(i as u16).to_be_bytes());
            seg[l.ip + 10..l.ip + 12].copy_from_slice(&[0, 0]);
            let c = checksum(&seg[l.ip..l.tcp]);
            seg[l.ip + 10..l.ip + 12].copy_from_slice(&c.to_be_bytes());
        } else {
            let plen = u16::try_from(ip_payload).map_err(|_| Unwired::Malformed)?;
            seg[l.ip + 4..l.ip + 6].copy_from_slice(&plen.to_be_bytes());
        }
        tcp_checksum(&mut seg, &l);
        out.push(seg);
    }
    Ok(out)
}

/// The wire frames of one received frame: itself with its checksum finished, or the segments of
/// a TCP super-frame. `vnet` is the virtio-net header the socket gave (none: the frame is whole).
pub fn to_wire(mut frame: Vec<u8>, vnet: Option<&VnetHdr>) -> Result<Vec<Vec<u8>>, Unwired> {
    let Some(h) = vnet else {
        return Ok(vec![frame]);
    };
    match h.gso_type & !VNET_GSO_ECN {
        VNET_GSO_NONE => {
            if h.flags & VNET_F_NEEDS_CSUM != 0 {
                finish_checksum(
                    &mut frame,
                    usize::from(h.csum_start),
                    usize::from(h.csum_offset),
                )?;
            }
            Ok(vec![frame])
        }
        VNET_GSO_TCPV4 | VNET_GSO_TCPV6 => segment_tcp(&frame, usize::from(h.gso_size)),
        _ => Err(Unwired::UnsupportedGso),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet + IPv4 + TCP frame with `payload`, checksums whole.
    fn tcp4(payload: &[u8], flags: u8) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 20];
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        f[14] = 0x45;
        let total = (40 + payload.len()) as u16;
        f[16..18].copy_from_slice(&total.to_be_bytes());
        f[18..20].copy_from_slice(&100u16.to_be_bytes());
        f[22] = 64;
        f[23] = 6;
        f[26..30].copy_from_slice(&[10, 0, 0, 1]);
        f[30..34].copy_from_slice(&[10, 0, 0, 2]);
        f[34..36].copy_from_slice(&1234u16.to_be_bytes());
        f[36..38].copy_from_slice(&80u16.to_be_bytes());
        f[38..42].copy_from_slice(&1000u32.to_be_bytes());
        f[46] = 0x50;
        f[47] = flags;
        f.extend_from_slice(payload);
        let c = checksum(&f[14..34]);
        f[24..26].copy_from_slice(&c.to_be_bytes());
        let l = tcp_layout(&f).unwrap();
        tcp_checksum(&mut f, &l);
        f
    }

    /// Whether the IPv4 and TCP checksums of a frame verify.
    fn verifies(f: &[u8]) -> bool {
        if checksum(&f[14..34]) != 0 {
            return false;
        }
        let tcp_len = (f.len() - 34) as u32;
        let mut acc = sum(0, &f[26..34]);
        acc = sum(acc, &tcp_len.to_be_bytes());
        acc = sum(acc, &[0, 6]);
        fold(sum(acc, &f[34..])) == 0
    }

    #[test]
    fn rfc1071_example() {
        // The example words of RFC 1071, section 3: sum 0xddf2, checksum 0x220d.
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0x220d
        );
    }

    #[test]
    fn partial_checksum_is_finished() {
        let whole = tcp4(b"hello, odd", 0x18);
        assert!(verifies(&whole));
        // What a sender with checksum offload leaves: the pseudo-header's sum, not inverted.
        let mut partial = whole.clone();
        let tcp_len = (partial.len() - 34) as u32;
        let mut acc = sum(0, &partial[26..34]);
        acc = sum(acc, &tcp_len.to_be_bytes());
        acc = sum(acc, &[0, 6]);
        let pseudo = !fold(acc);
        partial[50..52].copy_from_slice(&pseudo.to_be_bytes());
        assert!(!verifies(&partial));
        let h = VnetHdr {
            flags: VNET_F_NEEDS_CSUM,
            csum_start: 34,
            csum_offset: 16,
            ..VnetHdr::default()
        };
        let out = to_wire(partial, Some(&h)).unwrap();
        assert_eq!(out, vec![whole]);
    }

    #[test]
    fn super_frames_are_cut() {
        let payload: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        let big = tcp4(&payload, 0x19 | 0x80); // FIN PSH ACK CWR
        let h = VnetHdr {
            flags: VNET_F_NEEDS_CSUM,
            gso_type: VNET_GSO_TCPV4,
            gso_size: 1448,
            csum_start: 34,
            csum_offset: 16,
            ..VnetHdr::default()
        };
        let segs = to_wire(big, Some(&h)).unwrap();
        assert_eq!(segs.len(), 3);
        let mut data = Vec::new();
        for (i, s) in segs.iter().enumerate() {
            assert!(verifies(s), "segment {i}");
            let seq = u32::from_be_bytes(s[38..42].try_into().unwrap());
            assert_eq!(seq, 1000 + 1448 * i as u32);
            let id = u16::from_be_bytes([s[18], s[19]]);
            assert_eq!(id, 100 + i as u16);
            let total = u16::from_be_bytes([s[16], s[17]]) as usize;
            assert_eq!(total, s.len() - 14);
            let flags = s[47];
            assert_eq!(flags & 0x01 != 0, i == 2, "FIN on the last only");
            assert_eq!(flags & 0x08 != 0, i == 2, "PSH on the last only");
            assert_eq!(flags & 0x80 != 0, i == 0, "CWR on the first only");
            assert_eq!(flags & 0x10, 0x10, "ACK on all");
            data.extend_from_slice(&s[54..]);
        }
        assert_eq!(data, payload);
        assert_eq!(segs[2].len(), 54 + 3000 - 2 * 1448);
    }

    #[test]
    fn other_offloads_are_refused() {
        let h = VnetHdr {
            gso_type: 5, // UDP_L4
            gso_size: 1000,
            ..VnetHdr::default()
        };
        assert_eq!(
            to_wire(tcp4(b"x", 0x10), Some(&h)),
            Err(Unwired::UnsupportedGso)
        );
        let h = VnetHdr {
            flags: VNET_F_NEEDS_CSUM,
            csum_start: 200,
            csum_offset: 16,
            ..VnetHdr::default()
        };
        assert_eq!(to_wire(vec![0; 60], Some(&h)), Err(Unwired::Malformed));
        assert_eq!(to_wire(vec![1, 2, 3], None).unwrap(), vec![vec![1, 2, 3]]);
    }
}
