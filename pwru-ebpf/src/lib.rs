//! Kernel programs of pwru-rs: the compiled BPF object and `#[repr(C)]` mirrors of every
//! struct it shares with user space.
//!
//! The C sources are in `bpf/` (`bpf/event.h` holds the shared structs). They are compiled
//! with clang into one CO-RE object that ships with the crate (`obj/pwru.bpf.o`, refreshed by
//! `rebuild.sh`) and is embedded here as [`OBJECT`]: building this crate needs no C toolchain. Each mirror has the
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
//! payload, and carries a check word ([`record_check`]). Every run of an event program
//! (see [`is_event_program`]) is counted per CPU in [`MAP_RUNS`] under exactly one outcome
//! (`PWRU_OUT_*`); records that did not fit are the [`PWRU_OUT_RING_FULL`] runs.
#![deny(missing_docs)]
#![no_std]

mod object;

pub use object::OBJECT;
#[cfg(feature = "test-programs")]
pub use object::TEST_OBJECT;

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
/// Current record layout version (2: [`PwruEvent::check`] holds the check word).
pub const PWRU_RECORD_VERSION: u16 = 2;
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
    /// Check word over the header and this event, see [`record_check`].
    pub check: u32,
}

/// 8-byte words of a record covered by the check word: the header and the event.
pub const PWRU_CHECK_WORDS: usize = 31;
/// Start value of the check word fold.
pub const PWRU_CHECK_SEED: u64 = 0x7077_7275_7265_6331;
/// Multiplier of the check word fold (the FNV-1a 64-bit prime).
pub const PWRU_CHECK_MUL: u64 = 0x0000_0100_0000_01b3;
/// Bytes covered by the check word: `PwruRecordHdr` + `PwruEvent`.
pub const PWRU_CHECK_BYTES: usize = PWRU_CHECK_WORDS * 8;
/// Byte offset of [`PwruEvent::check`] in a record (header included).
pub const PWRU_CHECK_OFFSET: usize =
    core::mem::size_of::<PwruRecordHdr>() + core::mem::offset_of!(PwruEvent, check);

/// The check word the kernel programs put in [`PwruEvent::check`]: the record's first
/// [`PWRU_CHECK_BYTES`] bytes (header and event) as native-endian 8-byte words, with the
/// check field read as zero, folded as `c = (c.rotate_left(7) ^ w) * PWRU_CHECK_MUL` from
/// [`PWRU_CHECK_SEED`], then `c ^ (c >> 32)` truncated. A record that another program run
/// wrote into while it was being built does not check (the kernel spoils the word on purpose
/// when it notices; user space rejects every record whose word differs).
pub fn record_check(record: &[u8; PWRU_CHECK_BYTES]) -> u32 {
    let mut c = PWRU_CHECK_SEED;
    for (i, chunk) in record.chunks_exact(8).enumerate() {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        if i * 8 + 8 > PWRU_CHECK_OFFSET && i * 8 <= PWRU_CHECK_OFFSET {
            let at = PWRU_CHECK_OFFSET - i * 8;
            w[at..at + 4].fill(0);
        }
        c = (c.rotate_left(7) ^ u64::from_ne_bytes(w)).wrapping_mul(PWRU_CHECK_MUL);
    }
    (c ^ (c >> 32)) as u32
}

/// Scratch slots per CPU (one per nesting level of pwru programs: process context, softirq,
/// hardirq, NMI); a run finding all in use is counted as [`PWRU_OUT_NESTED_TOO_DEEP`].
pub const PWRU_SCRATCH_SLOTS: u32 = 4;

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
/// Name of the per-CPU array (`u64` values) of record-building depth: key
/// [`PWRU_DEPTH_LEVEL`] is the nesting level now, key [`PWRU_DEPTH_NESTED`] counts runs that
/// built their record while another run on the same CPU was building one.
pub const MAP_DEPTH: &str = "pwru_depth";
/// Key of [`MAP_DEPTH`]: scratch slots in use now.
pub const PWRU_DEPTH_LEVEL: u32 = 0;
/// Key of [`MAP_DEPTH`]: runs that built a record nested inside another run's.
pub const PWRU_DEPTH_NESTED: u32 = 1;

/// Name of the per-CPU array of run counters, indexed by outcome (`PWRU_OUT_*`, one `u64`
/// each); the [`PWRU_OUT_RING_FULL`] entry counts the records lost to a full ring buffer.
pub const MAP_RUNS: &str = "pwru_runs";

/// How each run of an event program ended: indexes into [`MAP_RUNS`]. Every run increments
/// exactly one (`enum pwru_outcome` in `bpf/event.h`).
pub mod outcome {
    /// Record written to the ring buffer.
    pub const EMITTED: u32 = 0;
    /// Record built, but the ring buffer was full: lost.
    pub const RING_FULL: u32 = 1;
    /// The skb (or `xdp_buff`) argument was NULL.
    pub const NULL_SKB: u32 = 2;
    /// Filtered out by the network namespace filter.
    pub const FILTER_NETNS: u32 = 3;
    /// Filtered out by the mark filter.
    pub const FILTER_MARK: u32 = 4;
    /// Filtered out by the interface filter.
    pub const FILTER_IFINDEX: u32 = 5;
    /// Filtered out by the pcap expression.
    pub const FILTER_PCAP: u32 = 6;
    /// Filtered out by the tunnel (inner header) pcap expression.
    pub const FILTER_TUNNEL: u32 = 7;
    /// Every scratch slot of the CPU was in use (runs nested deeper than
    /// [`PWRU_SCRATCH_SLOTS`](super::PWRU_SCRATCH_SLOTS)).
    pub const NESTED_TOO_DEEP: u32 = 8;
    /// A per-CPU map lookup failed (not expected to happen).
    pub const NO_SCRATCH: u32 = 9;
    /// A function without an skb argument ran on a stack with no skb remembered.
    pub const NO_STACK_SKB: u32 = 10;
    /// Number of outcomes (entries of [`MAP_RUNS`](super::MAP_RUNS)).
    pub const COUNT: u32 = 11;
}

pub use outcome::NESTED_TOO_DEEP as PWRU_OUT_NESTED_TOO_DEEP;
pub use outcome::RING_FULL as PWRU_OUT_RING_FULL;

/// Whether object program `name` is an event program, one that counts each of its runs in
/// [`MAP_RUNS`] (entry programs of every backend, stack-id and tc/XDP tracing programs), as
/// opposed to the skb tracking programs (clone/copy following, `kfree_skbmem`) and the
/// `tp_btf_baseline` reference, which count nothing.
pub fn is_event_program(name: &str) -> bool {
    let prefixed = ["kprobe_skb_", "kprobe_multi_skb_", "fentry_skb_", "raw_tp_"]
        .iter()
        .any(|p| name.starts_with(p));
    let tracepoint = name.starts_with("tp_btf_") && name != "tp_btf_baseline";
    let named = matches!(name, "fentry_tc" | "fentry_xdp" | "fexit_xdp");
    // The head-lifetime programs share the `*_skb_` prefix but only forget, never emit.
    let lifetime = name.ends_with("_skb_free_head");
    (prefixed && !lifetime) || tracepoint || named || name.ends_with("_stackid")
}
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
    assert!(
        PWRU_CHECK_BYTES
            == core::mem::size_of::<PwruRecordHdr>() + core::mem::size_of::<PwruEvent>()
    );
    // The check field is the upper half of the record's last word.
    assert!(PWRU_CHECK_OFFSET == PWRU_CHECK_BYTES - 4);
    assert!(core::mem::size_of::<PwruConfig>() == 24);
};
