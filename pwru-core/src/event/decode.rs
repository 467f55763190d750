//! Ring buffer record -> [`Event`], bounds-checked.
//!
//! A record is `struct pwru_record_hdr` (8 bytes: kind, version, len) followed, for
//! `PWRU_RECORD_EVENT`, by `struct pwru_event` (304 bytes), the optional skb and
//! skb_shared_info dump texts and the optional packet bytes. The layout is defined in
//! `pwru-ebpf/bpf/event.h`; field offsets
//! come from the `#[repr(C)]` mirrors in `pwru_ebpf`, which a test checks against the compiled
//! object's own BTF. Records are read with native byte order (the kernel's).
//!
//! Every record carries a check word over its header and event
//! ([`pwru_ebpf::record_check`]); a record whose word differs (a record mixed from two
//! program runs, or otherwise damaged) is [`DecodeError::CheckMismatch`], never an event.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::num::NonZeroU64;
use std::sync::Arc;

use super::{
    BpfProg, DropReason, Event, Interface, LinkType, Meta, Metadata, PacketBytes, ProbeKind,
    Process, ShortName, TcpFlags, Tuple, WallClock,
};
use crate::btf::{Btf, BtfError};
use crate::fnv::BuildFnv;
use crate::symbols::{KernelSymbols, Symbol};

use pwru_ebpf::{PwruEvent, PwruRecordHdr, PwruTuple};

/// Size of `struct pwru_record_hdr`.
pub const RECORD_HEADER_LEN: usize = std::mem::size_of::<PwruRecordHdr>();
/// Size of `struct pwru_event`.
pub const RAW_EVENT_LEN: usize = std::mem::size_of::<PwruEvent>();

const RECORD_EVENT: u16 = pwru_ebpf::PWRU_RECORD_EVENT;
const RECORD_VERSION: u16 = pwru_ebpf::PWRU_RECORD_VERSION;

use pwru_ebpf::{
    PWRU_EV_CALLER as EV_CALLER, PWRU_EV_CB as EV_CB, PWRU_EV_DROP_REASON as EV_DROP_REASON,
    PWRU_EV_META as EV_META, PWRU_EV_METADATA as EV_METADATA, PWRU_EV_PKT as EV_PKT,
    PWRU_EV_PKT_UNAVAILABLE as EV_PKT_UNAVAILABLE, PWRU_EV_PROG as EV_PROG,
    PWRU_EV_RETVAL as EV_RETVAL, PWRU_EV_SHINFO_DUMP as EV_SHINFO_DUMP,
    PWRU_EV_SHINFO_DUMP_CUT as EV_SHINFO_DUMP_CUT, PWRU_EV_SKB_DUMP as EV_SKB_DUMP,
    PWRU_EV_SKB_DUMP_CUT as EV_SKB_DUMP_CUT, PWRU_EV_STACK as EV_STACK,
    PWRU_EV_TRACKED as EV_TRACKED, PWRU_EV_TUNNEL as EV_TUNNEL, PWRU_EV_TUPLE as EV_TUPLE,
};

/// Byte offsets of `struct pwru_event` fields, taken from the `#[repr(C)]` mirror (which a
/// test checks against the compiled object's BTF).
pub(crate) mod off {
    use super::{PwruEvent, PwruTuple};
    use std::mem::offset_of;
    pub const TS: usize = offset_of!(PwruEvent, ts);
    pub const ADDR: usize = offset_of!(PwruEvent, addr);
    pub const CALLER: usize = offset_of!(PwruEvent, caller);
    pub const CALLER_NEXT: usize = offset_of!(PwruEvent, caller_next);
    pub const SKB: usize = offset_of!(PwruEvent, skb);
    pub const SKB_HEAD: usize = offset_of!(PwruEvent, skb_head);
    pub const CPU: usize = offset_of!(PwruEvent, cpu);
    pub const PID: usize = offset_of!(PwruEvent, pid);
    pub const TGID: usize = offset_of!(PwruEvent, tgid);
    pub const FLAGS: usize = offset_of!(PwruEvent, flags);
    pub const COMM: usize = offset_of!(PwruEvent, comm);
    pub const KIND: usize = offset_of!(PwruEvent, kind);
    pub const PKT_TYPE: usize = offset_of!(PwruEvent, pkt_type);
    pub const PROTOCOL: usize = offset_of!(PwruEvent, protocol);
    pub const NETNS: usize = offset_of!(PwruEvent, netns);
    pub const MARK: usize = offset_of!(PwruEvent, mark);
    pub const IFINDEX: usize = offset_of!(PwruEvent, ifindex);
    pub const LEN: usize = offset_of!(PwruEvent, len);
    pub const MTU: usize = offset_of!(PwruEvent, mtu);
    pub const CB: usize = offset_of!(PwruEvent, cb);
    pub const STACK_ID: usize = offset_of!(PwruEvent, stack_id);
    pub const DROP_REASON: usize = offset_of!(PwruEvent, drop_reason);
    pub const PROG_ID: usize = offset_of!(PwruEvent, prog_id);
    pub const PROG_NAME: usize = offset_of!(PwruEvent, prog_name);
    pub const RETVAL: usize = offset_of!(PwruEvent, retval);
    pub const TUPLE: usize = offset_of!(PwruEvent, tuple);
    pub const TUNNEL: usize = offset_of!(PwruEvent, tunnel);
    pub const PACKET_ID: usize = offset_of!(PwruEvent, packet_id);
    pub const PARENT_PACKET_ID: usize = offset_of!(PwruEvent, parent_packet_id);
    pub const SKB_DUMP_LEN: usize = offset_of!(PwruEvent, skb_dump_len);
    pub const SHINFO_DUMP_LEN: usize = offset_of!(PwruEvent, shinfo_dump_len);
    pub const PKT_LEN: usize = offset_of!(PwruEvent, pkt_len);
    pub const PKT_LINK: usize = offset_of!(PwruEvent, pkt_link);
    pub const PKT_WIRE_LEN: usize = offset_of!(PwruEvent, pkt_wire_len);
    pub const METADATA: usize = offset_of!(PwruEvent, metadata);
    /// Offsets inside `struct pwru_tuple`.
    pub mod tuple {
        use super::PwruTuple;
        use std::mem::offset_of;
        pub const SADDR: usize = offset_of!(PwruTuple, saddr);
        pub const DADDR: usize = offset_of!(PwruTuple, daddr);
        pub const SPORT: usize = offset_of!(PwruTuple, sport);
        pub const DPORT: usize = offset_of!(PwruTuple, dport);
        pub const L3_PROTO: usize = offset_of!(PwruTuple, l3_proto);
        pub const L4_PROTO: usize = offset_of!(PwruTuple, l4_proto);
        pub const TCP_FLAGS: usize = offset_of!(PwruTuple, tcp_flags);
    }
}

/// Why a record could not be decoded. A corrupt record is never a panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Fewer bytes than the header or the event need.
    #[error("ring buffer record too short: {got} bytes, need {need}; kernel programs and pwru-core versions differ?")]
    Truncated {
        /// Bytes needed.
        need: usize,
        /// Bytes present.
        got: usize,
    },
    /// The header's length disagrees with the record.
    #[error("ring buffer record says it is {header} bytes but {got} bytes were read; the record is corrupt")]
    BadLength {
        /// Length in the header.
        header: usize,
        /// Bytes present.
        got: usize,
    },
    /// A record kind this decoder does not know.
    #[error("unknown ring buffer record kind {0}; kernel programs and pwru-core versions differ")]
    UnknownKind(u16),
    /// A record layout version this decoder does not know.
    #[error("unknown ring buffer record version {0} (expected {RECORD_VERSION}); kernel programs and pwru-core versions differ")]
    UnknownVersion(u16),
    /// The record's check word does not match its contents: the record was written by two
    /// program runs at once, or damaged. It is dropped, not decoded.
    #[error("ring buffer record fails its check word (stored {stored:#010x}, computed {computed:#010x}): the record is corrupt; please report this as a pwru-rs bug")]
    CheckMismatch {
        /// The word in the record.
        stored: u32,
        /// The word computed over the record.
        computed: u32,
    },
    /// The event's probe kind is unknown.
    #[error("unknown probe kind {0} in event; kernel programs and pwru-core versions differ")]
    UnknownProbeKind(u8),
    /// The dump lengths run past the end of the record.
    #[error("event dump lengths ({skb} + {shinfo} bytes) run past the record's {avail} bytes; the record is corrupt")]
    DumpOutOfBounds {
        /// skb dump length.
        skb: usize,
        /// shinfo dump length.
        shinfo: usize,
        /// Bytes available after the event.
        avail: usize,
    },
    /// The packet bytes run past the end of the record, or their link type is unknown.
    #[error("event packet bytes ({len} bytes after {at}, link type {link}) do not fit the record's {avail} bytes or are of an unknown link type; the record is corrupt")]
    PacketOutOfBounds {
        /// Where the packet bytes start after the event (after the dumps).
        at: usize,
        /// Their length.
        len: usize,
        /// The raw link type.
        link: u8,
        /// Bytes available after the event.
        avail: usize,
    },
}

/// Everything decoding needs besides the bytes: names of functions, tracepoints, drop reasons,
/// interfaces and BPF programs. Built once per session; decoding only reads it.
///
/// ```
/// use pwru_core::event::DecodeContext;
/// let mut ctx = DecodeContext::new();
/// ctx.add_function(0xffffffff81a00000, "ip_rcv");
/// ctx.set_tracepoint(11, "kfree_skb");
/// ctx.set_drop_reason(2, "SKB_DROP_REASON_NO_SOCKET");
/// ctx.set_interface(4026531840, 1, "lo");
/// ```
#[derive(Debug, Clone, Default)]
pub struct DecodeContext {
    // Looked up for every record: FNV-1a, not SipHash (the keys are the kernel's numbers).
    functions: HashMap<u64, Arc<str>, BuildFnv>,
    symbols: Option<Arc<KernelSymbols>>,
    tracepoints: HashMap<u64, Arc<str>, BuildFnv>,
    drop_reasons: Vec<Option<Arc<str>>>,
    interfaces: HashMap<(u32, u32), Arc<str>, BuildFnv>,
    bpf_progs: HashMap<u32, Arc<str>, BuildFnv>,
    wall_clock: Option<WallClock>,
    skb_metadata: Vec<Arc<str>>,
    xdp_metadata: Vec<Arc<str>>,
}

impl DecodeContext {
    /// An empty context: names fall back to hex addresses and numbers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Uses `symbols` for addresses not added with [`add_function`](Self::add_function) and for
    /// callers.
    pub fn with_symbols(mut self, symbols: Arc<KernelSymbols>) -> Self {
        self.symbols = Some(symbols);
        self
    }

    /// Converts event stamps to [`Event::wall_time`] with `clock`.
    pub fn with_wall_clock(mut self, clock: WallClock) -> Self {
        self.wall_clock = Some(clock);
        self
    }

    /// Names the metadata values of skb events (`skb`) and of XDP events (`xdp`): the
    /// expressions, in the order the kernel programs read them (at most
    /// [`pwru_ebpf::PWRU_METADATA_MAX`] each; more are ignored).
    pub fn set_metadata_names(&mut self, skb: &[String], xdp: &[String]) {
        let names = |v: &[String]| {
            v.iter()
                .take(pwru_ebpf::PWRU_METADATA_MAX)
                .map(|s| Arc::from(s.trim()))
                .collect()
        };
        self.skb_metadata = names(skb);
        self.xdp_metadata = names(xdp);
    }

    /// The clock events' wall-clock times come from, if any.
    pub fn wall_clock(&self) -> Option<WallClock> {
        self.wall_clock
    }

    /// Names the function at `addr` (exact match, checked before the symbol table).
    pub fn add_function(&mut self, addr: u64, name: &str) {
        self.functions.insert(addr, name.into());
    }

    /// Names every tracepoint the kernel object has programs for (`pwru_ebpf::TRACEPOINTS`).
    pub fn with_builtin_tracepoints(mut self) -> Self {
        for (id, _category, name, _pos) in pwru_ebpf::TRACEPOINTS {
            self.set_tracepoint(*id, name);
        }
        self
    }

    /// Names tracepoint id `id` (the kernel side's `enum pwru_tracepoint`).
    pub fn set_tracepoint(&mut self, id: u64, name: &str) {
        self.tracepoints.insert(id, name.into());
    }

    /// Names drop reason `code`.
    pub fn set_drop_reason(&mut self, code: u32, name: &str) {
        let i = code as usize;
        // Drop reasons are small, dense values; cap the table so a wild value cannot balloon it.
        if i < 1 << 16 {
            if self.drop_reasons.len() <= i {
                self.drop_reasons.resize(i + 1, None);
            }
            self.drop_reasons[i] = Some(name.into());
        }
    }

    /// Loads every drop reason name from the kernel's BTF `enum skb_drop_reason`.
    pub fn load_drop_reasons(&mut self, btf: &Btf) -> Result<usize, BtfError> {
        let values = btf.enum_values("skb_drop_reason")?;
        for v in &values {
            if let Ok(code) = u32::try_from(v.value) {
                self.set_drop_reason(code, &v.name);
            }
        }
        Ok(values.len())
    }

    /// Names interface `ifindex` of network namespace `netns`.
    pub fn set_interface(&mut self, netns: u32, ifindex: u32, name: &str) {
        self.interfaces.insert((netns, ifindex), name.into());
    }

    /// Copies every interface name of `cache` (see [`crate::netns::InterfaceCache`]).
    pub fn set_interfaces_from(&mut self, cache: &crate::netns::InterfaceCache) {
        for ((netns, ifindex), name) in cache.iter() {
            // The kernel side reports the 32-bit netns inode.
            if let Ok(netns) = u32::try_from(netns) {
                self.set_interface(netns, ifindex, name);
            }
        }
    }

    /// Names the function of traced BPF program `id` (tc/XDP tracing).
    pub fn set_bpf_prog(&mut self, id: u32, name: &str) {
        self.bpf_progs.insert(id, name.into());
    }

    /// The name of drop reason `code`, if known.
    pub fn drop_reason_name(&self, code: u32) -> Option<&Arc<str>> {
        self.drop_reasons
            .get(code as usize)
            .and_then(Option::as_ref)
    }

    pub(crate) fn function_name(
        &self,
        kind: ProbeKind,
        addr: u64,
        prog: Option<&BpfProg>,
    ) -> Arc<str> {
        if kind.is_tracepoint() {
            if let Some(n) = self.tracepoints.get(&addr) {
                return n.clone();
            }
            return format!("tracepoint#{addr}").into();
        }
        if let Some(p) = prog {
            if let Some(n) = self.bpf_progs.get(&p.id) {
                return n.clone();
            }
            if !p.name.as_str().is_empty() {
                return p.name.as_str().into();
            }
        }
        if let Some(n) = self.functions.get(&addr) {
            return n.clone();
        }
        if let Some(s) = self.symbols.as_ref().and_then(|s| s.lookup(addr)) {
            if s.offset == 0 {
                return s.name;
            }
        }
        format!("{addr:#x}").into()
    }

    fn symbol(&self, addr: u64) -> Option<Symbol> {
        self.symbols.as_ref().and_then(|s| s.lookup(addr))
    }
}

fn u16_at(b: &[u8; RAW_EVENT_LEN], o: usize) -> u16 {
    b.get(o..o + 2)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u16::from_ne_bytes)
}

fn u32_at(b: &[u8; RAW_EVENT_LEN], o: usize) -> u32 {
    b.get(o..o + 4)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u32::from_ne_bytes)
}

/// The caller's symbol: `addr`, or for tracepoints fired through dispatch glue
/// (`__traceiter_*` when several probes share a tracepoint) the next frame, `next`.
fn caller(ctx: &DecodeContext, addr: u64, next: u64) -> Option<Symbol> {
    let sym = ctx.symbol(addr)?;
    if next != 0 && crate::symbols::is_dispatch_frame(&sym.name) {
        return ctx.symbol(next).or(Some(sym));
    }
    Some(sym)
}

fn u64_at(b: &[u8; RAW_EVENT_LEN], o: usize) -> u64 {
    b.get(o..o + 8)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u64::from_ne_bytes)
}

fn bytes16(b: &[u8; RAW_EVENT_LEN], o: usize) -> [u8; 16] {
    b.get(o..o + 16)
        .and_then(|s| s.try_into().ok())
        .unwrap_or([0; 16])
}

fn tuple_at(b: &[u8; RAW_EVENT_LEN], base: usize) -> Tuple {
    use off::tuple as t;
    let l3 = u16_at(b, base + t::L3_PROTO);
    let saddr = bytes16(b, base + t::SADDR);
    let daddr = bytes16(b, base + t::DADDR);
    let addr = |a: [u8; 16]| -> Option<IpAddr> {
        match l3 {
            0x0800 => Some(IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3]))),
            0x86dd => Some(IpAddr::V6(Ipv6Addr::from(a))),
            _ => None,
        }
    };
    Tuple {
        src: addr(saddr),
        dst: addr(daddr),
        sport: u16_at(b, base + t::SPORT),
        dport: u16_at(b, base + t::DPORT),
        l4_proto: b.get(base + t::L4_PROTO).copied().unwrap_or(0),
        tcp_flags: TcpFlags(b.get(base + t::TCP_FLAGS).copied().unwrap_or(0)),
    }
}

/// Text of a dump: up to the first NUL, invalid UTF-8 replaced.
fn dump_text(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// Verifies the check word of a record at least header + event long.
fn check_word(record: &[u8]) -> Result<(), DecodeError> {
    let covered: &[u8; pwru_ebpf::PWRU_CHECK_BYTES] = record
        .get(..pwru_ebpf::PWRU_CHECK_BYTES)
        .and_then(|b| b.try_into().ok())
        .ok_or(DecodeError::Truncated {
            need: pwru_ebpf::PWRU_CHECK_BYTES,
            got: record.len(),
        })?;
    let at = pwru_ebpf::PWRU_CHECK_OFFSET;
    let stored = u32::from_ne_bytes([
        covered[at],
        covered[at + 1],
        covered[at + 2],
        covered[at + 3],
    ]);
    let computed = pwru_ebpf::record_check(covered);
    if stored == computed {
        Ok(())
    } else {
        Err(DecodeError::CheckMismatch { stored, computed })
    }
}

/// Writes the check word into `record` (header + event, as the kernel programs do), for
/// tools and tests that build records themselves. Records shorter than header + event are
/// left alone (they do not decode anyway).
pub fn seal(record: &mut [u8]) {
    let Some(covered) = record
        .get(..pwru_ebpf::PWRU_CHECK_BYTES)
        .and_then(|b| <&[u8; pwru_ebpf::PWRU_CHECK_BYTES]>::try_from(b).ok())
    else {
        return;
    };
    let word = pwru_ebpf::record_check(covered);
    let at = pwru_ebpf::PWRU_CHECK_OFFSET;
    record[at..at + 4].copy_from_slice(&word.to_ne_bytes());
}

/// Kernel functions whose argument after the skb is an `enum skb_drop_reason`.
const DROP_FUNCTIONS: [&str; 2] = ["kfree_skb_reason", "sk_skb_reason_drop"];

/// Decodes one ring buffer record into an [`Event`].
///
/// Every length is checked: a short, oversized or inconsistent record is a [`DecodeError`].
/// Stack frames are not filled here (the stack lives in a separate kernel map); `stack_id`
/// says which entry to read.
pub fn decode(record: &[u8], ctx: &DecodeContext) -> Result<Event, DecodeError> {
    decode_as(record, ctx, |event| event)
}

/// [`decode`], the event built straight into what `wrap` makes of it: a stream's item is
/// then written once, where the caller reads it, instead of being moved (over 500 bytes)
/// from layer to layer; inlined into the reading loop for that reason.
#[inline(always)]
pub(crate) fn decode_as<T>(
    record: &[u8],
    ctx: &DecodeContext,
    wrap: impl FnOnce(Event) -> T,
) -> Result<T, DecodeError> {
    let need = RECORD_HEADER_LEN + RAW_EVENT_LEN;
    if record.len() < RECORD_HEADER_LEN {
        return Err(DecodeError::Truncated {
            need,
            got: record.len(),
        });
    }
    let kind = u16::from_ne_bytes([record[0], record[1]]);
    let version = u16::from_ne_bytes([record[2], record[3]]);
    let len = u32::from_ne_bytes([record[4], record[5], record[6], record[7]]) as usize;
    if kind != RECORD_EVENT {
        return Err(DecodeError::UnknownKind(kind));
    }
    if version != RECORD_VERSION {
        return Err(DecodeError::UnknownVersion(version));
    }
    if record.len() < need {
        return Err(DecodeError::Truncated {
            need,
            got: record.len(),
        });
    }
    // The ring buffer rounds records up to 8 bytes, so trailing bytes are allowed; a header
    // claiming more than was read, or less than an event, is not.
    if len > record.len() || len < need {
        return Err(DecodeError::BadLength {
            header: len,
            got: record.len(),
        });
    }
    let raw: &[u8; RAW_EVENT_LEN] =
        record[RECORD_HEADER_LEN..need]
            .try_into()
            .map_err(|_| DecodeError::Truncated {
                need,
                got: record.len(),
            })?;
    let tail = &record[need..len];
    check_word(record)?;

    let flags = u32_at(raw, off::FLAGS);
    let kind_raw = raw[off::KIND];
    let kind = ProbeKind::from_raw(kind_raw).ok_or(DecodeError::UnknownProbeKind(kind_raw))?;
    let address = u64_at(raw, off::ADDR);
    let timestamp_ns = u64_at(raw, off::TS);

    let bpf_prog = (flags & EV_PROG != 0).then(|| BpfProg {
        id: u32_at(raw, off::PROG_ID),
        name: ShortName::from_bytes(bytes16(raw, off::PROG_NAME)),
    });

    let meta = (flags & EV_META != 0).then(|| {
        let netns = u32_at(raw, off::NETNS);
        let ifindex = u32_at(raw, off::IFINDEX);
        Meta {
            netns,
            mark: u32_at(raw, off::MARK),
            interface: Interface {
                ifindex,
                name: ctx.interfaces.get(&(netns, ifindex)).cloned(),
            },
            protocol: u16_at(raw, off::PROTOCOL),
            mtu: u32_at(raw, off::MTU),
            len: u32_at(raw, off::LEN),
            pkt_type: raw[off::PKT_TYPE],
        }
    });

    let cb = (flags & EV_CB != 0).then(|| {
        let mut cb = [0u32; 5];
        for (i, v) in cb.iter_mut().enumerate() {
            *v = u32_at(raw, off::CB + 4 * i);
        }
        cb
    });

    let function = ctx.function_name(kind, address, bpf_prog.as_ref());
    // Function probes of skb positions 1 and 2 pass the next argument along; it is a drop
    // reason only in the functions that take one there.
    let reason_valid = match kind {
        ProbeKind::Kprobe | ProbeKind::KprobeMulti | ProbeKind::Fentry => {
            DROP_FUNCTIONS.contains(&&*function)
        }
        _ => true,
    };
    let drop_reason = (flags & EV_DROP_REASON != 0 && reason_valid).then(|| {
        let code = u32_at(raw, off::DROP_REASON);
        DropReason {
            code,
            name: ctx.drop_reason_name(code).cloned(),
        }
    });

    let stack_id = if flags & EV_STACK != 0 {
        u32::try_from(u32_at(raw, off::STACK_ID) as i32).ok()
    } else {
        None
    };

    // The kernel writes the dump lengths only with their flags; zero otherwise.
    let skb_len = usize::from(u16_at(raw, off::SKB_DUMP_LEN));
    let sh_len = usize::from(u16_at(raw, off::SHINFO_DUMP_LEN));
    let (skb_dump, shinfo_dump) = if flags & (EV_SKB_DUMP | EV_SHINFO_DUMP) != 0 {
        if skb_len + sh_len > tail.len() {
            return Err(DecodeError::DumpOutOfBounds {
                skb: skb_len,
                shinfo: sh_len,
                avail: tail.len(),
            });
        }
        (
            (flags & EV_SKB_DUMP != 0).then(|| dump_text(&tail[..skb_len])),
            (flags & EV_SHINFO_DUMP != 0).then(|| dump_text(&tail[skb_len..skb_len + sh_len])),
        )
    } else {
        (None, None)
    };

    let packet = if flags & EV_PKT != 0 {
        let at = skb_len + sh_len;
        let len = usize::from(u16_at(raw, off::PKT_LEN));
        let link_raw = raw[off::PKT_LINK];
        let link = match link_raw {
            pwru_ebpf::PWRU_PKT_LINK_ETHERNET => Some(LinkType::Ethernet),
            pwru_ebpf::PWRU_PKT_LINK_RAW_IP => Some(LinkType::RawIp),
            _ => None,
        };
        match (link, tail.get(at..at + len)) {
            (Some(link), Some(bytes)) => Some(PacketBytes {
                link,
                data: bytes::Bytes::copy_from_slice(bytes),
                wire_len: u32_at(raw, off::PKT_WIRE_LEN),
            }),
            _ => {
                return Err(DecodeError::PacketOutOfBounds {
                    at,
                    len,
                    link: link_raw,
                    avail: tail.len(),
                })
            }
        }
    } else {
        None
    };
    let metadata = if flags & EV_METADATA != 0 {
        let names = match kind {
            ProbeKind::Xdp | ProbeKind::XdpExit => &ctx.xdp_metadata,
            _ => &ctx.skb_metadata,
        };
        names
            .iter()
            .enumerate()
            .map(|(i, name)| Metadata {
                name: Arc::clone(name),
                value: u64_at(raw, off::METADATA + 8 * i),
            })
            .collect()
    } else {
        Vec::new()
    };

    Ok(wrap(Event {
        kind,
        function,
        address,
        caller: if flags & EV_CALLER != 0 {
            caller(ctx, u64_at(raw, off::CALLER), u64_at(raw, off::CALLER_NEXT))
        } else {
            None
        },
        skb: u64_at(raw, off::SKB),
        skb_head: u64_at(raw, off::SKB_HEAD),
        cpu: u32_at(raw, off::CPU),
        process: Process {
            pid: u32_at(raw, off::PID),
            tgid: u32_at(raw, off::TGID),
            comm: ShortName::from_bytes(bytes16(raw, off::COMM)),
        },
        timestamp_ns,
        wall_time: ctx.wall_clock.map(|c| c.to_system_time(timestamp_ns)),
        meta,
        cb,
        tuple: (flags & EV_TUPLE != 0).then(|| tuple_at(raw, off::TUPLE)),
        tunnel: (flags & EV_TUNNEL != 0).then(|| tuple_at(raw, off::TUNNEL)),
        drop_reason,
        stack_id,
        stack: Vec::new(),
        skb_dump,
        shinfo_dump,
        skb_dump_cut: flags & EV_SKB_DUMP_CUT != 0,
        shinfo_dump_cut: flags & EV_SHINFO_DUMP_CUT != 0,
        bpf_prog,
        retval: (flags & EV_RETVAL != 0).then(|| u64_at(raw, off::RETVAL)),
        tracked: flags & EV_TRACKED != 0,
        packet,
        packet_unavailable: flags & EV_PKT_UNAVAILABLE != 0,
        metadata,
        // 0 is "none" (the kernel never gives out id 0).
        packet_id: NonZeroU64::new(u64_at(raw, off::PACKET_ID)).map(NonZeroU64::get),
        parent_packet_id: NonZeroU64::new(u64_at(raw, off::PARENT_PACKET_ID)).map(NonZeroU64::get),
    }))
}
