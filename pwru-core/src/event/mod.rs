//! The typed [`Event`]: one hit of one probe on one packet.
//!
//! A session decodes events from its ring buffer records with a context that knows function
//! names, tracepoint names, drop reasons and interface names. Strings shared
//! by many events (function names, drop reasons, interface names) are `Arc<str>`, so decoding
//! does not allocate for them.
//!
//! ```
//! use pwru_core::event::{Event, ProbeKind, Tuple, TcpFlags};
//! use std::net::Ipv4Addr;
//! let mut ev = Event::new(ProbeKind::Tracepoint, "kfree_skb");
//! ev.skb = 0xffff_8880_1234_5600;
//! ev.tuple = Some(Tuple::new(
//!     Ipv4Addr::new(10, 0, 0, 1).into(), 40000,
//!     Ipv4Addr::new(10, 0, 0, 2).into(), 9,
//!     17, TcpFlags::default(),
//! ));
//! assert_eq!(ev.tuple.unwrap().to_string(), "10.0.0.1:40000->10.0.0.2:9(udp)");
//! ```
//!
//! # Packet identity
//!
//! The `skb` address is not a packet's identity: the kernel's slab (and the per-CPU NAPI cache)
//! hands a freed `struct sk_buff` to the next packet at once, often within microseconds. So
//! with [`Capture::packet_id`](crate::Capture) (on by default) the kernel programs give each
//! packet an id when it first passes the filters ([`Event::packet_id`]), kept under its skb
//! address until that skb is freed, and every later event of the skb carries it. Ids are
//! unique within a session (the CPU that gave it in the high 16 bits, that CPU's sequence
//! number below), not across sessions.
//!
//! What an id follows is the `struct sk_buff`, so it survives whatever keeps the skb:
//! head reallocation (`pskb_expand_head`, `skb_cow`, linearizing), NAT (netfilter rewrites
//! the headers in place), tunnel encapsulation and decapsulation (headers pushed or pulled
//! on the same skb), queueing (qdiscs, the neighbour queue), and crossing a veth pair (the
//! peer receives the same skb) or a namespace. It is freed at `kfree_skbmem` (function
//! backends) or the `kfree_skb`/`consume_skb` tracepoints (tracepoint backend; programs that
//! only forget are attached there when those tracepoints are not traced themselves), even
//! when the freed packet no longer matches the filter, so a reused address starts a new id.
//!
//! A packet that the kernel rebuilds into another skb is another packet for the id:
//! - clones and copies (`skb_clone`, e.g. for an AF_PACKET capture or a TCP retransmission
//!   queue, and `skb_copy`) get their own id with [`Event::parent_packet_id`] set to the
//!   original's: function backends link them at the return of `skb_clone`/`skb_copy`. The
//!   tracepoint backend has no hook there and links a clone through the data buffer it
//!   shares: a new skb that is marked cloned on a buffer first seen with another packet is
//!   that packet's clone. `skb_clone` marks both skbs, so the link is right when the original
//!   was seen first; an skb first seen at its own free never owns a buffer (this covers the
//!   clone `neigh_probe` makes for the ARP request, seen before its original leaves the
//!   neighbour queue);
//! - `pskb_copy`, `skb_copy_expand`, `skb_realloc_headroom` and other copies (new skb, new
//!   head) get a new id without a parent;
//! - GSO segmentation (`skb_segment`) makes new skbs: each segment has a new id;
//! - GRO merges packets into the first one's skb (the merged packet keeps that id; the others'
//!   series end where they were merged), and IP defragmentation reassembles into the skb of
//!   one fragment (it keeps that id, the other fragments end);
//! - veth with an XDP program on the peer may copy the packet into a new skb
//!   (`veth_convert_skb_to_xdp_buff`): a new id.
//!
//! Frees the programs cannot see: `kfree_skb_partial` with a stolen head (TCP receive
//! coalescing) and GRO's `napi_skb_free_stolen_head` return the skb without `kfree_skbmem`
//! or a tracepoint, and on function backends `napi_consume_skb` (driver TX completion) puts it
//! in the NAPI cache after the `consume_skb` tracepoint only. The next packet at such an
//! address inherits the stale id until its own free. The id maps are LRU hashes of 65,536
//! entries, so a missed free never fills them.

mod bpfmap;
mod clock;
// Without `unstable`, parts of the decoder only the tests and benchmarks call are unused.
#[cfg_attr(not(feature = "unstable"), allow(dead_code))]
mod decode;

#[cfg(feature = "unstable")]
pub use bpfmap::decode_bpfmap;
#[cfg(not(feature = "unstable"))]
pub(crate) use bpfmap::decode_bpfmap;
pub(crate) use bpfmap::is_bpfmap_record;
pub use bpfmap::{BpfMapOp, MapOpType};
pub use clock::WallClock;
pub(crate) use decode::decode_as;
pub use decode::DecodeError;
// Record decoding is internal (its input is the kernel ABI of pwru-ebpf); the `unstable`
// feature opens it to the project's tests and benchmarks.
#[cfg(all(test, not(feature = "unstable")))]
pub(crate) use decode::decode;
#[cfg(not(feature = "unstable"))]
pub(crate) use decode::DecodeContext;
#[cfg(feature = "unstable")]
pub use decode::{decode, seal, DecodeContext, RAW_EVENT_LEN, RECORD_HEADER_LEN};

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

pub use crate::symbols::Symbol;

/// Which kind of program produced an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub enum ProbeKind {
    /// kprobe on a kernel function.
    Kprobe,
    /// kprobe-multi link on a kernel function.
    KprobeMulti,
    /// fentry on a kernel function.
    Fentry,
    /// fexit on a kernel function (return value in [`Event::retval`]).
    Fexit,
    /// BTF tracepoint (tp_btf).
    Tracepoint,
    /// Raw tracepoint (raw_tp).
    RawTracepoint,
    /// fentry on a loaded tc BPF program.
    Tc,
    /// fentry on a loaded XDP BPF program.
    Xdp,
    /// fexit on a loaded XDP BPF program (the XDP action in [`Event::retval`]).
    XdpExit,
}

impl ProbeKind {
    /// Maps the kernel side's `enum pwru_probe_kind`.
    pub fn from_raw(raw: u8) -> Option<ProbeKind> {
        Some(match raw {
            1 => ProbeKind::Kprobe,
            2 => ProbeKind::KprobeMulti,
            3 => ProbeKind::Fentry,
            4 => ProbeKind::Fexit,
            5 => ProbeKind::Tracepoint,
            6 => ProbeKind::RawTracepoint,
            7 => ProbeKind::Tc,
            8 => ProbeKind::Xdp,
            9 => ProbeKind::XdpExit,
            _ => return None,
        })
    }

    /// Whether the event comes from a tracepoint (its function name is a tracepoint name).
    pub fn is_tracepoint(self) -> bool {
        matches!(self, ProbeKind::Tracepoint | ProbeKind::RawTracepoint)
    }

    /// Whether the event comes from tracing a tc or XDP BPF program.
    pub fn is_bpf_prog(self) -> bool {
        matches!(self, ProbeKind::Tc | ProbeKind::Xdp | ProbeKind::XdpExit)
    }
}

/// A fixed 16-byte, NUL-padded kernel name (`comm`, BPF program name).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ShortName([u8; 16]);

impl ShortName {
    /// Wraps raw bytes as the kernel wrote them.
    pub fn from_bytes(raw: [u8; 16]) -> ShortName {
        ShortName(raw)
    }

    /// Builds one from a string (truncated to 15 bytes, as the kernel does).
    ///
    /// ```
    /// assert_eq!(pwru_core::event::ShortName::new("ping").as_str(), "ping");
    /// ```
    pub fn new(s: &str) -> ShortName {
        let mut raw = [0u8; 16];
        let mut n = s.len().min(15);
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        raw[..n].copy_from_slice(&s.as_bytes()[..n]);
        ShortName(raw)
    }

    /// The text up to the first NUL (invalid UTF-8 is cut at the first bad byte).
    pub fn as_str(&self) -> &str {
        let end = self.0.iter().position(|&b| b == 0).unwrap_or(16);
        match std::str::from_utf8(&self.0[..end]) {
            Ok(s) => s,
            Err(e) => std::str::from_utf8(&self.0[..e.valid_up_to()]).unwrap_or(""),
        }
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for ShortName {
    /// As its text (see [`ShortName::as_str`]).
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl fmt::Debug for ShortName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for ShortName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The task that was running when the probe fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Process {
    /// Thread id.
    pub pid: u32,
    /// Process (thread group) id — what pwru prints.
    pub tgid: u32,
    /// Task name (`comm`).
    pub comm: ShortName,
}

impl Process {
    /// A task by thread id, process id and name.
    pub fn new(pid: u32, tgid: u32, comm: ShortName) -> Process {
        Process { pid, tgid, comm }
    }
}

/// A network interface as seen by the kernel.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Interface {
    /// Interface index inside its network namespace (0 when the skb has no device).
    pub ifindex: u32,
    /// Its name, when known (resolved in the event's network namespace).
    pub name: Option<Arc<str>>,
}

impl Interface {
    /// Interface `ifindex`, with its name when known.
    pub fn new(ifindex: u32, name: Option<&str>) -> Interface {
        Interface {
            ifindex,
            name: name.map(Arc::from),
        }
    }
}

impl fmt::Display for Interface {
    /// `name:ifindex`, or just the ifindex when the name is unknown (as pwru).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => write!(f, "{n}:{}", self.ifindex),
            None => write!(f, "{}", self.ifindex),
        }
    }
}

/// skb metadata (pwru's `--output-meta` columns).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Meta {
    /// Network namespace inode of the skb's device (or socket).
    pub netns: u32,
    /// `skb->mark`.
    pub mark: u32,
    /// The device.
    pub interface: Interface,
    /// `skb->protocol` (EtherType, host order: 0x0800 IPv4, 0x86dd IPv6).
    pub protocol: u16,
    /// Device MTU.
    pub mtu: u32,
    /// `skb->len`.
    pub len: u32,
    /// `skb->pkt_type` (0 host, 1 broadcast, 2 multicast, 3 other host, 4 outgoing...).
    pub pkt_type: u8,
}

/// TCP header flags (byte 13 of the TCP header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
    /// URG.
    pub const URG: u8 = 0x20;
    /// ECE.
    pub const ECE: u8 = 0x40;
    /// CWR.
    pub const CWR: u8 = 0x80;

    const NAMES: [&'static str; 8] = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"];

    /// Whether no flag is set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for TcpFlags {
    /// pwru's spelling: set flags from FIN upwards joined by `|`, e.g. `SYN|ACK`.
    ///
    /// ```
    /// use pwru_core::event::TcpFlags;
    /// assert_eq!(TcpFlags(TcpFlags::SYN | TcpFlags::ACK).to_string(), "SYN|ACK");
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (i, name) in Self::NAMES.iter().enumerate() {
            if self.0 & (1 << i) != 0 {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

/// Addresses, ports and protocol of one header stack (outer packet, or tunnel inner packet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Tuple {
    /// Source address; `None` when the packet is not IPv4/IPv6.
    pub src: Option<IpAddr>,
    /// Destination address.
    pub dst: Option<IpAddr>,
    /// Source port (0 when the protocol has none).
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6).
    pub l4_proto: u8,
    /// TCP flags (TCP only).
    pub tcp_flags: TcpFlags,
}

impl Tuple {
    /// A tuple with both addresses set.
    pub fn new(
        src: IpAddr,
        sport: u16,
        dst: IpAddr,
        dport: u16,
        l4_proto: u8,
        tcp_flags: TcpFlags,
    ) -> Tuple {
        Tuple {
            src: Some(src),
            dst: Some(dst),
            sport,
            dport,
            l4_proto,
            tcp_flags,
        }
    }

    /// pwru's name of the L4 protocol: `tcp`, `udp`, `icmp`, `icmp6`, or `""`.
    pub fn l4_name(&self) -> &'static str {
        match self.l4_proto {
            6 => "tcp",
            17 => "udp",
            1 => "icmp",
            58 => "icmp6",
            _ => "",
        }
    }
}

/// Why the kernel dropped a packet: a value of the kernel's `enum skb_drop_reason`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct DropReason {
    /// The numeric value.
    pub code: u32,
    /// The enumerator name from the kernel's BTF (e.g. `SKB_DROP_REASON_NO_SOCKET`), when known.
    pub name: Option<Arc<str>>,
}

impl DropReason {
    /// Drop reason `code`, with its kernel name when known.
    pub fn new(code: u32, name: Option<&str>) -> DropReason {
        DropReason {
            code,
            name: name.map(Arc::from),
        }
    }
}

impl fmt::Display for DropReason {
    /// The kernel name, or the number when the name is unknown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => f.write_str(n),
            None => write!(f, "{}", self.code),
        }
    }
}

/// Where an event's captured packet bytes start, which is what a capture file calls the
/// link type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub enum LinkType {
    /// At the Ethernet header (the skb's MAC header was set and precedes its network header).
    Ethernet,
    /// At the IPv4 or IPv6 header (no MAC header yet, or a device without one).
    RawIp,
}

/// Packet bytes captured with an event (see [`Capture::packet`](crate::Capture::packet)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PacketBytes {
    /// Where [`data`](Self::data) starts.
    pub link: LinkType,
    /// The bytes: at most the snap length, and only the skb's linear part.
    pub data: bytes::Bytes,
    /// The packet's whole length from the same start, paged data included. Larger than
    /// `data.len()` when the capture stopped at the snap length or at the end of the linear
    /// part (`skb->data_len` bytes live in pages the kernel side does not read).
    pub wire_len: u32,
}

impl PacketBytes {
    /// Bytes starting at the header `link` names, of a packet `wire_len` bytes long.
    pub fn new(link: LinkType, data: bytes::Bytes, wire_len: u32) -> PacketBytes {
        PacketBytes {
            link,
            data,
            wire_len,
        }
    }

    /// Whether fewer bytes were captured than the packet has.
    pub fn is_truncated(&self) -> bool {
        (self.data.len() as u64) < u64::from(self.wire_len)
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for PacketBytes {
    /// The link type, the captured and the wire length (not the bytes themselves).
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("PacketBytes", 3)?;
        st.serialize_field("link", &self.link)?;
        st.serialize_field("captured_len", &self.data.len())?;
        st.serialize_field("wire_len", &self.wire_len)?;
        st.end()
    }
}

/// A traced tc or XDP BPF program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct BpfProg {
    /// Program id.
    pub id: u32,
    /// Program name (first 15 bytes).
    pub name: ShortName,
}

impl BpfProg {
    /// Program `id` named `name` (the kernel keeps 15 bytes).
    pub fn new(id: u32, name: &str) -> BpfProg {
        BpfProg {
            id,
            name: ShortName::new(name),
        }
    }
}

/// One hit of one probe on one packet.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Event {
    /// What kind of program fired.
    pub kind: ProbeKind,
    /// Function or tracepoint name (for tc/XDP tracing: the BPF program's function name).
    pub function: Arc<str>,
    /// The function address, or the tracepoint id for tracepoint events.
    pub address: u64,
    /// The caller (return address symbolized), when captured. For tracepoints: the function
    /// that fired the tracepoint. The kernel side reads it at a fixed stack depth; when a
    /// tracepoint has more than one program attached the kernel adds a `__traceiter_*` frame
    /// there, and the caller is then taken from the stack past that glue if
    /// [`Capture::stack`](crate::Capture::stack) is on (without a stack it stays the glue frame).
    pub caller: Option<Symbol>,
    /// `struct sk_buff` address (the `xdp_buff` address for XDP).
    pub skb: u64,
    /// `skb->head` (shared by clones).
    pub skb_head: u64,
    /// CPU the probe ran on.
    pub cpu: u32,
    /// Running task.
    pub process: Process,
    /// Kernel monotonic time in nanoseconds (`bpf_ktime_get_ns`, `CLOCK_MONOTONIC`).
    pub timestamp_ns: u64,
    /// Wall-clock time of [`timestamp_ns`](Self::timestamp_ns), converted with the
    /// [`WallClock`] the session measured at attach (`None` when decoded without one). After
    /// a step of the system clock it differs from the new wall clock by the step; see
    /// [`WallClock`].
    pub wall_time: Option<SystemTime>,
    /// skb metadata, when captured.
    pub meta: Option<Meta>,
    /// `skb->cb` as tc sees it (`__sk_buff->cb[]`), when captured.
    pub cb: Option<[u32; 5]>,
    /// Outer packet tuple, when captured.
    pub tuple: Option<Tuple>,
    /// Tunnel inner tuple, when captured.
    pub tunnel: Option<Tuple>,
    /// Drop reason (kfree_skb tracepoint, kfree_skb_reason, sk_skb_reason_drop).
    pub drop_reason: Option<DropReason>,
    /// Stack id in the kernel's stack map, when captured.
    pub stack_id: Option<u32>,
    /// The stack, symbolized, innermost first (filled by whoever reads the stack map). The
    /// session removes the BPF program, trampoline and tracepoint/kprobe dispatch frames at
    /// its top (frames named `bpf_prog_*`, `bpf_trampoline_*`, `__traceiter_*`, ...), so it starts
    /// in kernel code: for tracepoints, at the function that fired the tracepoint.
    pub stack: Vec<Symbol>,
    /// `bpf_snprintf_btf` text of the skb, when captured.
    pub skb_dump: Option<String>,
    /// `bpf_snprintf_btf` text of the skb's shared info, when captured.
    pub shinfo_dump: Option<String>,
    /// The skb text was cut at the dump bound
    /// ([`TracerBuilder::dump_buffer_bytes`](crate::TracerBuilder::dump_buffer_bytes)).
    pub skb_dump_cut: bool,
    /// The shared-info text was cut at the dump bound.
    pub shinfo_dump_cut: bool,
    /// The traced tc/XDP program.
    pub bpf_prog: Option<BpfProg>,
    /// Return value (fexit: function return; XDP exit: the XDP action).
    pub retval: Option<u64>,
    /// Passed the filter because the skb (or its head or stack id) was tracked.
    pub tracked: bool,
    /// The packet's id: assigned in the kernel when the packet first matched, the same on
    /// every event of that packet's skb until the skb is freed (`None` with
    /// [`Capture::packet_id`](crate::Capture) off). An skb address reused after a free gets
    /// a new id; what the id survives and what it cannot is in the [module
    /// docs](self#packet-identity). See the `series` module for grouping events by it.
    pub packet_id: Option<u64>,
    /// For a clone or copy: the id of the packet it was made from (`skb_clone`/`skb_copy`;
    /// on the tracepoint backend, clones only, linked through the shared data buffer).
    pub parent_packet_id: Option<u64>,
    /// The packet's bytes, when [`Capture::packet`](crate::Capture::packet) asked for them
    /// and the kernel side could read them.
    pub packet: Option<PacketBytes>,
    /// Packet bytes were asked for but the kernel side could not read them (no header
    /// offsets set, or the read failed); [`packet`](Self::packet) is then `None`.
    pub packet_unavailable: bool,
    /// Values of the metadata expressions
    /// ([`TracerBuilder::skb_metadata`](crate::TracerBuilder::skb_metadata) for skb events,
    /// [`xdp_metadata`](crate::TracerBuilder::xdp_metadata) for XDP events), in the order given;
    /// empty when none were asked for.
    pub metadata: Vec<Metadata>,
}

/// One metadata expression and its value on this event's skb (or `xdp_buff`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Metadata {
    /// The expression as given (trimmed), e.g. `skb->mark`.
    pub name: Arc<str>,
    /// Its value, sign- or zero-extended to 64 bits as the member's type says; 0 when a
    /// pointer on the way could not be read.
    pub value: u64,
}

impl Metadata {
    /// A name and a value.
    pub fn new(name: &str, value: u64) -> Metadata {
        Metadata {
            name: name.into(),
            value,
        }
    }
}

impl Event {
    /// An event with only kind and function set; every other field empty/zero. Handy for
    /// tests and for building events from other sources.
    pub fn new(kind: ProbeKind, function: &str) -> Event {
        Event {
            kind,
            function: function.into(),
            address: 0,
            caller: None,
            skb: 0,
            skb_head: 0,
            cpu: 0,
            process: Process::default(),
            timestamp_ns: 0,
            wall_time: None,
            meta: None,
            cb: None,
            tuple: None,
            tunnel: None,
            drop_reason: None,
            stack_id: None,
            stack: Vec::new(),
            skb_dump: None,
            shinfo_dump: None,
            skb_dump_cut: false,
            shinfo_dump_cut: false,
            bpf_prog: None,
            retval: None,
            tracked: false,
            packet_id: None,
            parent_packet_id: None,
            packet: None,
            packet_unavailable: false,
            metadata: Vec::new(),
        }
    }
}
