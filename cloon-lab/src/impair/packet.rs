//! Raw Ethernet frames of one interface: an `AF_PACKET` socket bound to it, shared by the relay
//! (which moves frames between two interfaces) and by capture (which writes them to a pcap).
//!
//! What the kernel hands a packet socket is not always a frame as it would be on a wire; the
//! socket asks for what it needs to rebuild one:
//!
//! - `PACKET_AUXDATA`: a VLAN tag that the interface took out of the frame (VLAN offload) comes
//!   separately, and is put back ([`Received::vlan`], [`insert_vlan`]).
//! - `PACKET_VNET_HDR` (relay only): a frame that a veth's peer sent with checksum offload has
//!   its TCP/UDP checksum unfinished, and a TCP stream may come as one 64 KiB "segmentation
//!   offload" frame; the virtio-net header in front of each frame says where the checksum goes
//!   and what segment size to cut at ([`VnetHdr`], finished by `offload.rs`).
//! - `SO_TIMESTAMP` (capture): when the kernel received the frame.
//! - promiscuous mode through `PACKET_ADD_MEMBERSHIP`, which the kernel undoes when the socket
//!   closes, so that no interface is left promiscuous by a relay that died.

use super::ns::{self, End};
use nix::libc;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// `ETH_P_ALL` in network byte order: every protocol.
const ETH_P_ALL_BE: u16 = (libc::ETH_P_ALL as u16).to_be();
/// `SO_TIMESTAMP` (and its control message `SCM_TIMESTAMP`): a `struct timeval`.
const SO_TIMESTAMP: libc::c_int = libc::SO_TIMESTAMP;

/// The size of `struct virtio_net_hdr`, which `PACKET_VNET_HDR` puts before each frame.
pub const VNET_HDR_LEN: usize = 10;
/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the checksum at `csum_start + csum_offset` is unfinished.
pub const VNET_F_NEEDS_CSUM: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_NONE`: a frame of its own.
pub const VNET_GSO_NONE: u8 = 0;
/// `VIRTIO_NET_HDR_GSO_TCPV4`.
pub const VNET_GSO_TCPV4: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_TCPV6`.
pub const VNET_GSO_TCPV6: u8 = 4;
/// `VIRTIO_NET_HDR_GSO_ECN`, a flag on the type.
pub const VNET_GSO_ECN: u8 = 0x80;

/// The virtio-net header of a received frame (in the host's byte order, as packet sockets use it
/// on little-endian hosts and as legacy virtio does).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VnetHdr {
    pub flags: u8,
    pub gso_type: u8,
    pub hdr_len: u16,
    pub gso_size: u16,
    pub csum_start: u16,
    pub csum_offset: u16,
}

impl VnetHdr {
    /// Reads the header from the first [`VNET_HDR_LEN`] bytes.
    pub fn parse(b: &[u8]) -> Option<VnetHdr> {
        let u16_at = |i: usize| Some(u16::from_ne_bytes(b.get(i..i + 2)?.try_into().ok()?));
        Some(VnetHdr {
            flags: *b.first()?,
            gso_type: *b.get(1)?,
            hdr_len: u16_at(2)?,
            gso_size: u16_at(4)?,
            csum_start: u16_at(6)?,
            csum_offset: u16_at(8)?,
        })
    }
}

/// Options of a packet socket.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Ask for a virtio-net header before each received frame.
    pub vnet_hdr: bool,
    /// Put the interface in promiscuous mode for as long as the socket is open.
    pub promisc: bool,
    /// Do not receive the frames that leave the interface (the relay's own among them).
    pub ignore_outgoing: bool,
    /// Ask for a receive time stamp per frame.
    pub timestamps: bool,
    /// The receive buffer, in bytes (0: the default).
    pub rcvbuf: usize,
}

/// One frame as received: its bytes are the first `len` bytes of the caller's buffer (after the
/// virtio-net header, when there is one).
#[derive(Debug, Clone, Copy, Default)]
pub struct Received {
    /// Bytes of the frame in the buffer.
    pub len: usize,
    /// The frame's full length: more than `len` when the buffer was too small (truncated).
    pub orig_len: usize,
    /// The VLAN tag the interface took out, as (TPID, TCI).
    pub vlan: Option<(u16, u16)>,
    /// The virtio-net header, when asked for.
    pub vnet: Option<VnetHdr>,
    /// The packet type (`PACKET_HOST`, `PACKET_OUTGOING`, ...).
    pub pkttype: u8,
    /// When the kernel received it: seconds and microseconds since the epoch.
    pub time: Option<(i64, i64)>,
}

/// A packet socket bound to one interface.
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
    ifindex: u32,
    vnet_hdr: bool,
}

fn setsockopt_int(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    v: libc::c_int,
) -> io::Result<()> {
    // SAFETY: the option value is a c_int that lives for the call, and its size is passed.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&v as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl PacketSocket {
    /// Opens a packet socket on `end`, in `end`'s namespace. The socket receives nothing until it
    /// is bound, after its options are set, so that it never sees another interface's frames.
    pub fn open(end: &End, opts: Options) -> io::Result<PacketSocket> {
        let ifname = end.ifname.clone();
        let what = end.to_string();
        ns::within(end.netns.as_deref(), move || Self::open_here(&ifname, opts))
            .map_err(|e| io::Error::new(e.kind(), format!("packet socket on {what}: {e}")))
    }

    /// As [`PacketSocket::open`], in the calling thread's namespace.
    pub fn open_here(ifname: &str, opts: Options) -> io::Result<PacketSocket> {
        let ifindex = ns::ifindex(ifname)?;
        // SAFETY: socket() takes plain integers and returns a new descriptor or -1.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                0,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a descriptor socket() just returned, owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let sol = libc::SOL_PACKET;
        setsockopt_int(fd.as_fd(), sol, libc::PACKET_AUXDATA, 1)?;
        if opts.vnet_hdr {
            setsockopt_int(fd.as_fd(), sol, libc::PACKET_VNET_HDR, 1)?;
        }
        if opts.ignore_outgoing {
            setsockopt_int(fd.as_fd(), sol, libc::PACKET_IGNORE_OUTGOING, 1)?;
        }
        if opts.timestamps {
            setsockopt_int(fd.as_fd(), libc::SOL_SOCKET, SO_TIMESTAMP, 1)?;
        }
        if opts.rcvbuf > 0 {
            let size = libc::c_int::try_from(opts.rcvbuf).unwrap_or(libc::c_int::MAX);
            // FORCE goes past rmem_max for root; the plain option is the fallback.
            setsockopt_int(fd.as_fd(), libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, size)
                .or_else(|_| setsockopt_int(fd.as_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF, size))?;
        }
        let index = libc::c_int::try_from(ifindex).map_err(io::Error::other)?;
        if opts.promisc {
            let mreq = libc::packet_mreq {
                mr_ifindex: index,
                mr_type: libc::PACKET_MR_PROMISC as libc::c_ushort,
                mr_alen: 0,
                mr_address: [0; 8],
            };
            // SAFETY: the value is a packet_mreq that lives for the call, and its size is passed.
            let r = unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    sol,
                    libc::PACKET_ADD_MEMBERSHIP,
                    (&mreq as *const libc::packet_mreq).cast(),
                    size_of::<libc::packet_mreq>() as libc::socklen_t,
                )
            };
            if r < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        // SAFETY: sockaddr_ll is plain data, for which all zeroes is a valid value.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as libc::c_ushort;
        addr.sll_protocol = ETH_P_ALL_BE;
        addr.sll_ifindex = index;
        // SAFETY: `addr` is a sockaddr_ll that lives for the call, and its size is passed.
        let r = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(PacketSocket {
            fd,
            ifindex,
            vnet_hdr: opts.vnet_hdr,
        })
    }

    /// The interface's index (in its namespace).
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Receives one frame into `buf` without waiting: `None` when none is waiting.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<Received>> {
        let mut vnet = [0u8; VNET_HDR_LEN];
        let mut iov = [
            libc::iovec {
                iov_base: vnet.as_mut_ptr().cast(),
                iov_len: if self.vnet_hdr { VNET_HDR_LEN } else { 0 },
            },
            libc::iovec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: buf.len(),
            },
        ];
        // Room for the auxiliary data and a time stamp, aligned as control messages must be.
        let mut control = [0u64; 16];
        // SAFETY: sockaddr_ll and msghdr are plain data, for which all zeroes is a valid value.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_name = (&mut addr as *mut libc::sockaddr_ll).cast();
        msg.msg_namelen = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        msg.msg_iov = iov.as_mut_ptr();
        msg.msg_iovlen = iov.len() as _;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = size_of::<[u64; 16]>() as _;
        // SAFETY: every pointer in `msg` points to a live buffer of the length given next to it.
        let n = unsafe {
            libc::recvmsg(
                self.fd.as_raw_fd(),
                &mut msg,
                libc::MSG_TRUNC | libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock => Ok(None),
                io::ErrorKind::Interrupted => Ok(None),
                _ => Err(e),
            };
        }
        let total = usize::try_from(n).unwrap_or(0);
        let head = if self.vnet_hdr { VNET_HDR_LEN } else { 0 };
        let orig_len = total.saturating_sub(head);
        let mut got = Received {
            len: orig_len.min(buf.len()),
            orig_len,
            vnet: if self.vnet_hdr {
                VnetHdr::parse(&vnet)
            } else {
                None
            },
            pkttype: addr.sll_pkttype,
            ..Received::default()
        };
        // SAFETY: `msg` is the header recvmsg filled; the CMSG macros walk the control buffer
        // within msg_controllen, and each data pointer read is checked against its cmsg_len.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
            while !cmsg.is_null() {
                let c = &*cmsg;
                let data = libc::CMSG_DATA(cmsg);
                let room = (c.cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize);
                if c.cmsg_level == libc::SOL_PACKET
                    && c.cmsg_type == libc::PACKET_AUXDATA
                    && room >= size_of::<libc::tpacket_auxdata>()
                {
                    let aux: libc::tpacket_auxdata = std::ptr::read_unaligned(data.cast());
                    if aux.tp_status & libc::TP_STATUS_VLAN_VALID != 0 {
                        let tpid = if aux.tp_status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
                            aux.tp_vlan_tpid
                        } else {
                            0x8100
                        };
                        got.vlan = Some((tpid, aux.tp_vlan_tci));
                    }
                } else if c.cmsg_level == libc::SOL_SOCKET
                    && c.cmsg_type == SO_TIMESTAMP
                    && room >= size_of::<libc::timeval>()
                {
                    let tv: libc::timeval = std::ptr::read_unaligned(data.cast());
                    got.time = Some((tv.tv_sec, tv.tv_usec));
                }
                cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
            }
        }
        Ok(Some(got))
    }

    /// Sends one whole frame out of the interface.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        let vnet = [0u8; VNET_HDR_LEN];
        let iov = [
            libc::iovec {
                iov_base: vnet.as_ptr() as *mut libc::c_void,
                iov_len: if self.vnet_hdr { VNET_HDR_LEN } else { 0 },
            },
            libc::iovec {
                iov_base: frame.as_ptr() as *mut libc::c_void,
                iov_len: frame.len(),
            },
        ];
        // SAFETY: msghdr is plain data, for which all zeroes is a valid value.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = iov.as_ptr() as *mut libc::iovec;
        msg.msg_iovlen = iov.len() as _;
        // SAFETY: `msg` points to two live buffers of the lengths given; the kernel only reads
        // them. No address: the socket's bound interface is used.
        let n = unsafe { libc::sendmsg(self.fd.as_raw_fd(), &msg, libc::MSG_DONTWAIT) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// The frames the kernel dropped because this socket's buffer was full, since the last call.
    pub fn kernel_drops(&self) -> u64 {
        let mut stats = libc::tpacket_stats {
            tp_packets: 0,
            tp_drops: 0,
        };
        let mut len = size_of::<libc::tpacket_stats>() as libc::socklen_t;
        // SAFETY: `stats` and `len` live for the call and `len` is the size of `stats`.
        let r = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut stats as *mut libc::tpacket_stats).cast(),
                &mut len,
            )
        };
        if r < 0 {
            0
        } else {
            u64::from(stats.tp_drops)
        }
    }

    /// Takes and clears the socket's pending error (`SO_ERROR`), if any.
    pub fn take_error(&self) -> Option<io::Error> {
        let mut v: libc::c_int = 0;
        let mut len = size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `v` and `len` live for the call and `len` is the size of `v`.
        let r = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ERROR,
                (&mut v as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        (r == 0 && v != 0).then(|| io::Error::from_raw_os_error(v))
    }
}

impl AsFd for PacketSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Puts a VLAN tag (TPID, TCI) back into `frame`, after its two MAC addresses.
pub fn insert_vlan(frame: &mut Vec<u8>, (tpid, tci): (u16, u16)) {
    if frame.len() < 12 {
        return;
    }
    let mut tag = [0u8; 4];
    tag[..2].copy_from_slice(&tpid.to_be_bytes());
    tag[2..].copy_from_slice(&tci.to_be_bytes());
    frame.splice(12..12, tag);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vlan_goes_after_the_addresses() {
        let mut f: Vec<u8> = (0..16).collect();
        insert_vlan(&mut f, (0x8100, 0x0064));
        assert_eq!(&f[10..18], &[10, 11, 0x81, 0x00, 0x00, 0x64, 12, 13]);
        assert_eq!(f.len(), 20);
    }

    #[test]
    fn vnet_header() {
        let mut b = [0u8; 10];
        b[0] = VNET_F_NEEDS_CSUM;
        b[1] = VNET_GSO_TCPV4;
        b[4..6].copy_from_slice(&1448u16.to_ne_bytes());
        b[6..8].copy_from_slice(&34u16.to_ne_bytes());
        b[8..10].copy_from_slice(&16u16.to_ne_bytes());
        let h = VnetHdr::parse(&b).unwrap();
        assert_eq!((h.gso_size, h.csum_start, h.csum_offset), (1448, 34, 16));
        assert_eq!(h.gso_type, VNET_GSO_TCPV4);
        assert!(VnetHdr::parse(&b[..9]).is_none());
    }
}
