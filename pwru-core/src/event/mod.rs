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
pub use decode::DecodeError;
// Record decoding is internal (its input is the kernel ABI of pwru-ebpf); the `unstable`
// feature opens it to the project's tests and benchmarks.
#[cfg(feature = "unstable")]
pub use decode::{decode, seal, DecodeContext, RAW_EVENT_LEN, RECORD_HEADER_LEN};
#[cfg(not(feature = "unstable"))]
pub(crate) use decode::{decode, DecodeContext};

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
    /// every event of that packet for its whole life (`None` when the kernel side did not
    /// assign one). See the `series` module for grouping events by it.
    pub packet_id: Option<u64>,
    /// For a clone or copy: the id of the packet it was made from.
    pub parent_packet_id: Option<u64>,
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
        }
    }
}
