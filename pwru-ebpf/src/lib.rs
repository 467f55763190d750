//! Kernel programs of pwru-rs: the compiled BPF object and `#[repr(C)]` mirrors of every
//! struct it shares with user space.
//!
//! The C sources are in `bpf/` (`bpf/event.h` holds the shared structs). `build.rs` compiles
//! them with clang into one CO-RE object, embedded here as [`OBJECT`]. Each mirror has the
//! same name as its C struct in CamelCase (`pwru_event` -> [`PwruEvent`]) and the same field
//! names, so comparing them with the object's BTF is mechanical.
//!
//! # Programs in [`OBJECT`]
//!
//! | program | section | backend / use |
//! |---|---|---|
//! | `kprobe_skb_1` .. `kprobe_skb_5` | `kprobe/skb_N` | kprobe, skb is argument N |
//! | `kprobe_multi_skb_1` .. `_5` | `kprobe/multi_skb_N` | kprobe.multi (loaded with expected attach type `BPF_TRACE_KPROBE_MULTI`) |
//! | `fentry_skb_1` .. `fentry_skb_5` | `fentry/skb_N` | fentry, loaded once per target function |
//! | `tp_btf_<tp>`, `raw_tp_<tp>` | `tp_btf/<tp>`, `raw_tp/<tp>` | tracepoints of [`TRACEPOINTS`] |
//! | `kprobe_stackid`, `kprobe_multi_stackid` | `kprobe/...` | functions without an skb, via stack id |
//! | `fexit_skb_clone`, `fexit_skb_copy`, `fentry_kfree_skbmem` | `fexit/...`, `fentry/...` | skb tracking (fentry kernels) |
//! | `kprobe_clone_entry`, `kretprobe_clone_exit`, `kprobe_kfree_skbmem` | `kprobe/...`, `kretprobe/...` | skb tracking (kprobe kernels) |
//! | `fentry_tc`, `fentry_xdp`, `fexit_xdp` | `fentry/...`, `fexit/...` | tracing loaded tc/XDP programs (attach_prog_fd) |
//! | `tp_btf_baseline` | `tp_btf/baseline` | empty program, reference for cost measurements |
//!
//! Every record in the ring buffer [`MAP_EVENTS`] is a [`PwruRecordHdr`] followed by its
//! payload; records that did not fit are counted per CPU in [`MAP_LOST`].
#![deny(missing_docs)]
#![no_std]

mod object;

pub use object::{OBJECT, TEST_OBJECT};

/// Every ring buffer record starts with this header (`struct pwru_record_hdr`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PwruRecordHdr {
    /// Record kind, one of the `PWRU_RECORD_*` constants.
    pub kind: u16,
    /// Layout version, [`PWRU_RECORD_VERSION`].
    pub version: u16,
    /// Length of the whole record in bytes, header included.
    pub len: u32,
}

/// Record kind: a [`PwruRecordHdr`], a [`PwruEvent`], then `skb_dump_len` bytes of skb text
/// and `shinfo_dump_len` bytes of `skb_shared_info` text.
pub const PWRU_RECORD_EVENT: u16 = 1;
/// Current record layout version.
pub const PWRU_RECORD_VERSION: u16 = 1;
/// Largest skb dump appended to an event (bytes, NUL included).
pub const PWRU_SKB_DUMP_MAX: usize = 4096;
/// Largest `skb_shared_info` dump appended to an event (bytes, NUL included).
pub const PWRU_SHINFO_DUMP_MAX: usize = 1024;

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

/// One hit of one program (`struct pwru_event`, 240 bytes).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PwruEvent {
    /// `bpf_ktime_get_ns()` (monotonic clock).
    pub ts: u64,
    /// Function address, or a `PWRU_TP_*` id when `kind` is a tracepoint kind.
    pub addr: u64,
    /// Return address into the caller (valid with [`PWRU_EV_CALLER`]).
    pub caller: u64,
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
    /// Bytes of skb text following the event.
    pub skb_dump_len: u16,
    /// Bytes of `skb_shared_info` text following the skb text.
    pub shinfo_dump_len: u16,
    /// Padding.
    pub _pad: u32,
}

/// Read-only configuration global `pwru_cfg` (`struct pwru_config`), set before load.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PwruConfig {
    /// `PWRU_CFG_*` bits.
    pub flags: u32,
    /// Network namespace inode to match (with [`PWRU_CFG_FILTER_NETNS`]).
    pub netns: u32,
    /// Mark to match: `(skb->mark & mark_mask) == mark` (with [`PWRU_CFG_FILTER_MARK`]).
    pub mark: u32,
    /// Mask applied to `skb->mark` before comparing.
    pub mark_mask: u32,
    /// Interface index to match (with [`PWRU_CFG_FILTER_IFINDEX`]).
    pub ifindex: u32,
    /// Bytes per skb or shared-info dump, NUL included; 0 means the compile-time maximum
    /// ([`PWRU_SKB_DUMP_MAX`], [`PWRU_SHINFO_DUMP_MAX`]), which also caps larger values.
    pub dump_max: u32,
}

/// Name of the read-only config global in the object.
pub const CONFIG_GLOBAL: &str = "pwru_cfg";
/// Name of the ring buffer map.
pub const MAP_EVENTS: &str = "pwru_events";
/// Name of the per-CPU array (one `u64`) counting records that could not be reserved.
pub const MAP_LOST: &str = "pwru_lost";
/// Name of the stack trace map.
pub const MAP_STACKS: &str = "pwru_stacks";
/// Name of the filter stub the loader replaces with the compiled dispatch body.
pub const FILTER_STUB: &str = "pwru_filter";

macro_rules! consts {
    ($($(#[$m:meta])* $name:ident : $ty:ty = $val:expr;)*) => {
        $($(#[$m])* pub const $name: $ty = $val;)*
    };
}

consts! {
    /// Event from a kprobe.
    PWRU_KIND_KPROBE: u8 = 1;
    /// Event from a kprobe.multi link.
    PWRU_KIND_KPROBE_MULTI: u8 = 2;
    /// Event from an fentry program.
    PWRU_KIND_FENTRY: u8 = 3;
    /// Event from an fexit program.
    PWRU_KIND_FEXIT: u8 = 4;
    /// Event from a BTF tracepoint (`addr` is a `PWRU_TP_*` id).
    PWRU_KIND_TRACEPOINT: u8 = 5;
    /// Event from a raw tracepoint (`addr` is a `PWRU_TP_*` id).
    PWRU_KIND_RAW_TRACEPOINT: u8 = 6;
    /// Event from fentry on a loaded tc program.
    PWRU_KIND_TC: u8 = 7;
    /// Event from fentry on a loaded XDP program.
    PWRU_KIND_XDP: u8 = 8;
    /// Event from fexit on a loaded XDP program (`retval` is the XDP action).
    PWRU_KIND_XDP_EXIT: u8 = 9;

    /// netns, mark, ifindex, len, mtu, protocol, pkt_type are valid.
    PWRU_EV_META: u32 = 1 << 0;
    /// `tuple` is valid.
    PWRU_EV_TUPLE: u32 = 1 << 1;
    /// `tunnel` is valid.
    PWRU_EV_TUNNEL: u32 = 1 << 2;
    /// `stack_id` is valid.
    PWRU_EV_STACK: u32 = 1 << 3;
    /// `caller` is valid.
    PWRU_EV_CALLER: u32 = 1 << 4;
    /// `drop_reason` is valid.
    PWRU_EV_DROP_REASON: u32 = 1 << 5;
    /// `prog_id` and `prog_name` are valid.
    PWRU_EV_PROG: u32 = 1 << 6;
    /// `retval` is valid.
    PWRU_EV_RETVAL: u32 = 1 << 7;
    /// `cb` is valid.
    PWRU_EV_CB: u32 = 1 << 8;
    /// `skb_dump_len` bytes of skb text follow the event.
    PWRU_EV_SKB_DUMP: u32 = 1 << 9;
    /// `shinfo_dump_len` bytes of shared-info text follow the skb text.
    PWRU_EV_SHINFO_DUMP: u32 = 1 << 10;
    /// The packet passed because its skb, head or stack was tracked.
    PWRU_EV_TRACKED: u32 = 1 << 11;
    /// The skb was found through the stack id (function without an skb argument).
    PWRU_EV_BY_STACKID: u32 = 1 << 12;
    /// `addr` came from `bpf_get_func_ip` (else from the saved instruction pointer).
    PWRU_EV_FUNC_IP: u32 = 1 << 13;
    /// The skb text was cut at the dump bound ([`PwruConfig::dump_max`]).
    PWRU_EV_SKB_DUMP_CUT: u32 = 1 << 14;
    /// The shared-info text was cut at the dump bound ([`PwruConfig::dump_max`]).
    PWRU_EV_SHINFO_DUMP_CUT: u32 = 1 << 15;

    /// Filter on the network namespace inode.
    PWRU_CFG_FILTER_NETNS: u32 = 1 << 0;
    /// Filter on the mark.
    PWRU_CFG_FILTER_MARK: u32 = 1 << 1;
    /// Filter on the interface index.
    PWRU_CFG_FILTER_IFINDEX: u32 = 1 << 2;
    /// Run the pcap filter (selector 0 on L2 when the MAC header is set, else selector 1 on L3).
    PWRU_CFG_FILTER_PCAP: u32 = 1 << 3;
    /// Run selector 2 on the inner L2 header of VXLAN/Geneve packets.
    PWRU_CFG_FILTER_TUNNEL_L2: u32 = 1 << 4;
    /// Run selector 3 on the inner L3 header of VXLAN/Geneve packets.
    PWRU_CFG_FILTER_TUNNEL_L3: u32 = 1 << 5;
    /// Follow the addresses of matched skbs.
    PWRU_CFG_TRACK_SKB: u32 = 1 << 6;
    /// Also follow `skb->head` (clones sharing the data buffer).
    PWRU_CFG_TRACK_HEAD: u32 = 1 << 7;
    /// Remember stack id -> skb for functions without an skb argument.
    PWRU_CFG_TRACK_STACKID: u32 = 1 << 8;
    /// Fill netns, mark, ifindex, len, mtu, protocol, pkt_type.
    PWRU_CFG_OUTPUT_META: u32 = 1 << 9;
    /// Fill the outer tuple.
    PWRU_CFG_OUTPUT_TUPLE: u32 = 1 << 10;
    /// Fill the inner (tunnel) tuple.
    PWRU_CFG_OUTPUT_TUNNEL: u32 = 1 << 11;
    /// Record a stack id.
    PWRU_CFG_OUTPUT_STACK: u32 = 1 << 12;
    /// Record the caller address.
    PWRU_CFG_OUTPUT_CALLER: u32 = 1 << 13;
    /// Copy the cb words.
    PWRU_CFG_OUTPUT_CB: u32 = 1 << 14;
    /// Append a `bpf_snprintf_btf` dump of the skb.
    PWRU_CFG_OUTPUT_SKB: u32 = 1 << 15;
    /// Append a `bpf_snprintf_btf` dump of the skb's shared info.
    PWRU_CFG_OUTPUT_SHINFO: u32 = 1 << 16;

    /// Dispatch selector: pcap on L2 (data = MAC header).
    PWRU_SEL_L2: u64 = 0;
    /// Dispatch selector: pcap on L3 (data = network header).
    PWRU_SEL_L3: u64 = 1;
    /// Dispatch selector: pcap on the inner L2 header of a tunnel.
    PWRU_SEL_TUNNEL_L2: u64 = 2;
    /// Dispatch selector: pcap on the inner L3 header of a tunnel.
    PWRU_SEL_TUNNEL_L3: u64 = 3;
}

/// Tracepoints with an skb argument that the object has programs for:
/// `(PWRU_TP_* id, category, name, 0-based position of the skb argument)`.
///
/// The BTF tracepoint program is named `tp_btf_<name>`, the raw one `raw_tp_<name>`.
pub const TRACEPOINTS: &[(u64, &str, &str, u8)] = &[
    (1, "net", "netif_receive_skb", 0),
    (2, "net", "net_dev_queue", 0),
    (3, "net", "net_dev_start_xmit", 0),
    (4, "net", "net_dev_xmit", 0),
    (5, "net", "netif_rx", 0),
    (6, "net", "napi_gro_receive_entry", 0),
    (7, "net", "napi_gro_frags_entry", 0),
    (8, "net", "netif_receive_skb_entry", 0),
    (9, "net", "netif_receive_skb_list_entry", 0),
    (10, "net", "netif_rx_entry", 0),
    (11, "skb", "kfree_skb", 0),
    (12, "skb", "consume_skb", 0),
    (13, "skb", "skb_copy_datagram_iovec", 0),
    (14, "qdisc", "qdisc_dequeue", 3),
    (15, "qdisc", "qdisc_enqueue", 2),
    (16, "sock", "sock_rcvqueue_full", 1),
    (17, "tcp", "tcp_retransmit_skb", 1),
    (18, "tcp", "tcp_send_reset", 1),
    (19, "tcp", "tcp_bad_csum", 0),
    (20, "udp", "udp_fail_queue_rcv_skb", 2),
    (21, "icmp", "icmp_send", 0),
    (22, "tcp", "tcp_probe", 1),
];

/// Sizes the kernel side relies on; a mismatch is a bug in a mirror.
const _: () = {
    assert!(core::mem::size_of::<PwruRecordHdr>() == 8);
    assert!(core::mem::size_of::<PwruTuple>() == 40);
    assert!(core::mem::size_of::<PwruEvent>() == 240);
    assert!(core::mem::size_of::<PwruConfig>() == 24);
};
