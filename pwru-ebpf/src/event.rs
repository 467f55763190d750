//! One hit of one program (`struct pwru_event`), its header tuples, the kind of program that
//! produced it (`PWRU_KIND_*`) and which of its parts are valid (`PWRU_EV_*`).

/// Addresses and ports of one header stack (`struct pwru_tuple`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PwruTuple {
    /// Source address; IPv4 uses the first 4 bytes, network order.
    pub saddr: [u8; 16],
    /// Destination address; IPv4 uses the first 4 bytes, network order.
    pub daddr: [u8; 16],
    /// Source port, host order.
    pub sport: u16,
    /// Destination port, host order.
    pub dport: u16,
    /// `ETH_P_IP` (0x0800) or `ETH_P_IPV6` (0x86dd), host order; 0 if unknown.
    pub l3_proto: u16,
    /// `IPPROTO_*` of the transport header.
    pub l4_proto: u8,
    /// TCP header byte 13 (FIN = 0x01 ... CWR = 0x80).
    pub tcp_flags: u8,
}

/// One hit of one program (`struct pwru_event`, 304 bytes).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PwruEvent {
    /// `bpf_ktime_get_ns()` (monotonic clock).
    pub ts: u64,
    /// Function address, or a `PWRU_TP_*` id when `kind` is a tracepoint kind.
    pub addr: u64,
    /// Return address into the caller (valid with [`PWRU_EV_CALLER`]).
    pub caller: u64,
    /// Tracepoints: the stack frame after `caller`, taken instead of it when `caller` is
    /// tracepoint dispatch glue (`__traceiter_*`, with several probes on one tracepoint).
    pub caller_next: u64,
    /// `struct sk_buff` address (the `xdp_buff` address for XDP kinds).
    pub skb: u64,
    /// `skb->head`.
    pub skb_head: u64,
    /// CPU the program ran on.
    pub cpu: u32,
    /// Thread id.
    pub pid: u32,
    /// Process id.
    pub tgid: u32,
    /// `PWRU_EV_*` bits: which optional parts are valid.
    pub flags: u32,
    /// Current task's comm, NUL padded.
    pub comm: [u8; 16],
    /// `PWRU_KIND_*`.
    pub kind: u8,
    /// `skb->pkt_type` (`PACKET_HOST` = 0 ...).
    pub pkt_type: u8,
    /// `skb->protocol`, host order.
    pub protocol: u16,
    /// Network namespace inode.
    pub netns: u32,
    /// `skb->mark`.
    pub mark: u32,
    /// `skb->dev->ifindex` (0 if no device).
    pub ifindex: u32,
    /// `skb->len`.
    pub len: u32,
    /// `skb->dev->mtu`.
    pub mtu: u32,
    /// `qdisc_skb_cb` data (tc's `__sk_buff.cb`).
    pub cb: [u32; 5],
    /// Stack id in the `pwru_stacks` map (valid with [`PWRU_EV_STACK`]).
    pub stack_id: i32,
    /// `enum skb_drop_reason` (valid with [`PWRU_EV_DROP_REASON`]).
    pub drop_reason: u32,
    /// Id of the traced tc/XDP program (valid with [`PWRU_EV_PROG`]).
    pub prog_id: u32,
    /// Name of the traced tc/XDP program, NUL padded.
    pub prog_name: [u8; 16],
    /// Return value of the traced function (valid with [`PWRU_EV_RETVAL`]).
    pub retval: u64,
    /// Outer addresses and ports (valid with [`PWRU_EV_TUPLE`]).
    pub tuple: PwruTuple,
    /// Inner (tunnelled) addresses and ports (valid with [`PWRU_EV_TUNNEL`]).
    pub tunnel: PwruTuple,
    /// With [`PWRU_EV_METADATA`]: the values of the skb (xdp) metadata expressions, in the
    /// order they were given.
    pub metadata: [u64; PWRU_METADATA_MAX],
    /// The packet's id, 0 for none (with [`PWRU_CFG_PACKET_ID`](crate::PWRU_CFG_PACKET_ID)):
    /// the assigning CPU from bit [`PWRU_ID_CPU_SHIFT`] up, that CPU's sequence number below.
    pub packet_id: u64,
    /// Id of the packet this one was cloned or copied from, 0 for none.
    pub parent_packet_id: u64,
    /// Bytes of skb text following the event.
    pub skb_dump_len: u16,
    /// Bytes of `skb_shared_info` text following the skb text.
    pub shinfo_dump_len: u16,
    /// Packet bytes following the dumps (valid with [`PWRU_EV_PKT`]).
    pub pkt_len: u16,
    /// Where those bytes start: a `PWRU_PKT_LINK_*` value.
    pub pkt_link: u8,
    /// Explicit padding (zero).
    pub _pad0: u8,
    /// The packet's whole length from that start, paged data included: more than
    /// `pkt_len` when the capture stopped at the snap length or at the end of the linear part.
    pub pkt_wire_len: u32,
    /// Check word over the header and this event, see [`record_check`](crate::record_check).
    pub check: u32,
}

/// Packet ids: the bit from which the assigning CPU's number starts (`enum pwru_packet_id`).
pub const PWRU_ID_CPU_SHIFT: u32 = 48;
/// Packet ids: the per-CPU sequence number's bits.
pub const PWRU_ID_SEQ_MASK: u64 = (1 << 48) - 1;

/// Event from a kprobe.
pub const PWRU_KIND_KPROBE: u8 = 1;
/// Event from a kprobe.multi link.
pub const PWRU_KIND_KPROBE_MULTI: u8 = 2;
/// Event from an fentry program.
pub const PWRU_KIND_FENTRY: u8 = 3;
/// Event from an fexit program.
pub const PWRU_KIND_FEXIT: u8 = 4;
/// Event from a BTF tracepoint (`addr` is a `PWRU_TP_*` id).
pub const PWRU_KIND_TRACEPOINT: u8 = 5;
/// Event from a raw tracepoint (`addr` is a `PWRU_TP_*` id).
pub const PWRU_KIND_RAW_TRACEPOINT: u8 = 6;
/// Event from fentry on a loaded tc program.
pub const PWRU_KIND_TC: u8 = 7;
/// Event from fentry on a loaded XDP program.
pub const PWRU_KIND_XDP: u8 = 8;
/// Event from fexit on a loaded XDP program (`retval` is the XDP action).
pub const PWRU_KIND_XDP_EXIT: u8 = 9;

/// netns, mark, ifindex, len, mtu, protocol, pkt_type are valid.
pub const PWRU_EV_META: u32 = 1 << 0;
/// `tuple` is valid.
pub const PWRU_EV_TUPLE: u32 = 1 << 1;
/// `tunnel` is valid.
pub const PWRU_EV_TUNNEL: u32 = 1 << 2;
/// `stack_id` is valid.
pub const PWRU_EV_STACK: u32 = 1 << 3;
/// `caller` is valid.
pub const PWRU_EV_CALLER: u32 = 1 << 4;
/// `drop_reason` is valid.
pub const PWRU_EV_DROP_REASON: u32 = 1 << 5;
/// `prog_id` and `prog_name` are valid.
pub const PWRU_EV_PROG: u32 = 1 << 6;
/// `retval` is valid.
pub const PWRU_EV_RETVAL: u32 = 1 << 7;
/// `cb` is valid.
pub const PWRU_EV_CB: u32 = 1 << 8;
/// `skb_dump_len` bytes of skb text follow the event.
pub const PWRU_EV_SKB_DUMP: u32 = 1 << 9;
/// `shinfo_dump_len` bytes of shared-info text follow the skb text.
pub const PWRU_EV_SHINFO_DUMP: u32 = 1 << 10;
/// The packet passed because its skb, head or stack was tracked.
pub const PWRU_EV_TRACKED: u32 = 1 << 11;
/// The skb was found through the stack id (function without an skb argument).
pub const PWRU_EV_BY_STACKID: u32 = 1 << 12;
/// `addr` came from `bpf_get_func_ip` (else from the saved instruction pointer).
pub const PWRU_EV_FUNC_IP: u32 = 1 << 13;
/// The skb text was cut at the dump bound ([`PwruConfig::dump_max`](crate::PwruConfig::dump_max)).
pub const PWRU_EV_SKB_DUMP_CUT: u32 = 1 << 14;
/// The shared-info text was cut at the dump bound ([`PwruConfig::dump_max`](crate::PwruConfig::dump_max)).
pub const PWRU_EV_SHINFO_DUMP_CUT: u32 = 1 << 15;
/// `pkt_len` packet bytes follow the dumps ([`PWRU_CFG_OUTPUT_PKT`](crate::PWRU_CFG_OUTPUT_PKT)).
pub const PWRU_EV_PKT: u32 = 1 << 16;
/// Packet bytes were asked for but could not be read: none follow.
pub const PWRU_EV_PKT_UNAVAILABLE: u32 = 1 << 17;

/// `pkt_link`: no packet bytes.
pub const PWRU_PKT_LINK_NONE: u8 = 0;
/// `pkt_link`: the bytes start at the MAC (Ethernet) header.
pub const PWRU_PKT_LINK_ETHERNET: u8 = 1;
/// `pkt_link`: the bytes start at the network (IPv4/IPv6) header.
pub const PWRU_PKT_LINK_RAW_IP: u8 = 2;
/// `metadata` holds the values of the metadata expressions.
pub const PWRU_EV_METADATA: u32 = 1 << 18;
/// Metadata expressions per event (`enum pwru_metadata_max`).
pub const PWRU_METADATA_MAX: usize = 4;

// Sizes the kernel side relies on; a mismatch is a bug in a mirror.
const _: () = {
    assert!(core::mem::size_of::<PwruTuple>() == 40);
    assert!(core::mem::size_of::<PwruEvent>() == 304);
};

/// Key and value bytes kept per map operation (`PWRU_BPFMAP_BYTES`).
pub const PWRU_BPFMAP_BYTES: usize = 64;

/// One lookup, update or delete of a BPF map by a traced tc/XDP program
/// (`struct pwru_bpfmap`, 192 bytes), the payload of a [`PWRU_RECORD_BPFMAP`](crate::PWRU_RECORD_BPFMAP) record.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PwruBpfmap {
    /// `bpf_ktime_get_ns()` (monotonic clock).
    pub ts: u64,
    /// Address of the map function (e.g. `htab_map_update_elem`).
    pub addr: u64,
    /// The skb last seen on the same kernel stack.
    pub skb: u64,
    /// CPU the operation ran on.
    pub cpu: u32,
    /// Thread id.
    pub pid: u32,
    /// The map's id.
    pub map_id: u32,
    /// The map's key size; [`PwruBpfmap::key`] holds at most [`PWRU_BPFMAP_BYTES`] of them.
    pub key_size: u32,
    /// The map's value size.
    pub value_size: u32,
    /// `PWRU_BPFMAP_LOOKUP`, `_UPDATE` or `_DELETE`.
    pub op: u8,
    /// `PWRU_KIND_*` of the program that saw it.
    pub kind: u8,
    /// `PWRU_BPFMAP_HAS_VALUE`, `_KEY_CUT`, `_VALUE_CUT`.
    pub flags: u8,
    /// Explicit padding.
    pub pad: u8,
    /// The map's name, NUL-padded.
    pub map_name: [u8; 16],
    /// The key's first bytes.
    pub key: [u8; PWRU_BPFMAP_BYTES],
    /// The value's first bytes (with `PWRU_BPFMAP_HAS_VALUE`).
    pub value: [u8; PWRU_BPFMAP_BYTES],
}

impl Default for PwruBpfmap {
    fn default() -> Self {
        Self {
            ts: 0,
            addr: 0,
            skb: 0,
            cpu: 0,
            pid: 0,
            map_id: 0,
            key_size: 0,
            value_size: 0,
            op: 0,
            kind: 0,
            flags: 0,
            pad: 0,
            map_name: [0; 16],
            key: [0; PWRU_BPFMAP_BYTES],
            value: [0; PWRU_BPFMAP_BYTES],
        }
    }
}

/// Map operation: a lookup (seen at return, with the value found).
pub const PWRU_BPFMAP_LOOKUP: u8 = 1;
/// Map operation: an update (seen at entry, with the value written).
pub const PWRU_BPFMAP_UPDATE: u8 = 2;
/// Map operation: a delete (seen at entry, no value).
pub const PWRU_BPFMAP_DELETE: u8 = 3;

/// [`PwruBpfmap::flags`]: `value` holds bytes (an update, or a lookup that found one).
pub const PWRU_BPFMAP_HAS_VALUE: u8 = 1 << 0;
/// [`PwruBpfmap::flags`]: the key is longer than [`PWRU_BPFMAP_BYTES`]; `key` holds its start.
pub const PWRU_BPFMAP_KEY_CUT: u8 = 1 << 1;
/// [`PwruBpfmap::flags`]: likewise for the value.
pub const PWRU_BPFMAP_VALUE_CUT: u8 = 1 << 2;

const _: () = assert!(core::mem::size_of::<PwruBpfmap>() == 192);
