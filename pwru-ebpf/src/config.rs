//! The read-only configuration global the loader sets before load (`struct pwru_config`),
//! its flags (`PWRU_CFG_*`) and the selectors of the filter dispatch (`PWRU_SEL_*`).

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
    /// ([`PWRU_SKB_DUMP_MAX`](crate::PWRU_SKB_DUMP_MAX), [`PWRU_SHINFO_DUMP_MAX`](crate::PWRU_SHINFO_DUMP_MAX)), which also caps larger values.
    pub dump_max: u32,
    /// Packet bytes per event with [`PWRU_CFG_OUTPUT_PKT`]; 0 or more than
    /// [`PWRU_PKT_MAX`](crate::PWRU_PKT_MAX) means that maximum.
    pub snaplen: u32,
}

/// Name of the read-only config global in the object.
pub const CONFIG_GLOBAL: &str = "pwru_cfg";

/// Filter on the network namespace inode.
pub const PWRU_CFG_FILTER_NETNS: u32 = 1 << 0;
/// Filter on the mark.
pub const PWRU_CFG_FILTER_MARK: u32 = 1 << 1;
/// Filter on the interface index.
pub const PWRU_CFG_FILTER_IFINDEX: u32 = 1 << 2;
/// Run the pcap filter (selector 0 on L2 when the MAC header is set, else selector 1 on L3).
pub const PWRU_CFG_FILTER_PCAP: u32 = 1 << 3;
/// Run selector 2 on the inner L2 header of VXLAN/Geneve packets.
pub const PWRU_CFG_FILTER_TUNNEL_L2: u32 = 1 << 4;
/// Run selector 3 on the inner L3 header of VXLAN/Geneve packets.
pub const PWRU_CFG_FILTER_TUNNEL_L3: u32 = 1 << 5;
/// Follow the addresses of matched skbs.
pub const PWRU_CFG_TRACK_SKB: u32 = 1 << 6;
/// Also follow `skb->head` (clones sharing the data buffer).
pub const PWRU_CFG_TRACK_HEAD: u32 = 1 << 7;
/// Remember stack id -> skb for functions without an skb argument.
pub const PWRU_CFG_TRACK_STACKID: u32 = 1 << 8;
/// Fill netns, mark, ifindex, len, mtu, protocol, pkt_type.
pub const PWRU_CFG_OUTPUT_META: u32 = 1 << 9;
/// Fill the outer tuple.
pub const PWRU_CFG_OUTPUT_TUPLE: u32 = 1 << 10;
/// Fill the inner (tunnel) tuple.
pub const PWRU_CFG_OUTPUT_TUNNEL: u32 = 1 << 11;
/// Record a stack id.
pub const PWRU_CFG_OUTPUT_STACK: u32 = 1 << 12;
/// Record the caller address.
pub const PWRU_CFG_OUTPUT_CALLER: u32 = 1 << 13;
/// Copy the cb words.
pub const PWRU_CFG_OUTPUT_CB: u32 = 1 << 14;
/// Append a `bpf_snprintf_btf` dump of the skb.
pub const PWRU_CFG_OUTPUT_SKB: u32 = 1 << 15;
/// Append a `bpf_snprintf_btf` dump of the skb's shared info.
pub const PWRU_CFG_OUTPUT_SHINFO: u32 = 1 << 16;
/// Append up to [`PwruConfig::snaplen`] bytes of the packet to each event.
pub const PWRU_CFG_OUTPUT_PKT: u32 = 1 << 17;
/// Run selector [`PWRU_SEL_SKB_EXPR`] on the skb.
pub const PWRU_CFG_FILTER_SKB_EXPR: u32 = 1 << 18;
/// Run selector [`PWRU_SEL_XDP_EXPR`] on the `xdp_buff` (tc/XDP tracing).
pub const PWRU_CFG_FILTER_XDP_EXPR: u32 = 1 << 19;
/// Fill the event's metadata from selectors [`PWRU_SEL_SKB_META`] + 0..3 on the skb.
pub const PWRU_CFG_OUTPUT_SKB_METADATA: u32 = 1 << 20;
/// Fill the event's metadata from selectors [`PWRU_SEL_XDP_META`] + 0..3 on the `xdp_buff`.
pub const PWRU_CFG_OUTPUT_XDP_METADATA: u32 = 1 << 21;
/// Give each matched packet an id ([`PwruEvent::packet_id`](crate::PwruEvent::packet_id)),
/// ended when its skb is freed.
pub const PWRU_CFG_PACKET_ID: u32 = 1 << 22;
/// Programs whose skb is a plain number (kprobe, kprobe.multi, raw_tp) run the pcap filter
/// through selector [`PWRU_SEL_PCAP_SKB`], which reads the skb's header fields itself with
/// `bpf_rdonly_cast` loads, instead of copying them out with `bpf_probe_read_kernel` first.
/// Only with [`PWRU_CFG_FILTER_PCAP`] and no tunnel filter, and only for a dispatch body that
/// has the selector (`pwru_filter::dispatch_with_skb_entry`).
pub const PWRU_CFG_FILTER_PCAP_SKB: u32 = 1 << 23;
/// Programs whose skb is a plain number read the values the netns, mark and interface
/// filters compare through selectors [`PWRU_SEL_SKB_NETNS`], [`PWRU_SEL_SKB_MARK`] and
/// [`PWRU_SEL_SKB_IFINDEX`] (`bpf_rdonly_cast` loads) instead of chains of
/// `bpf_probe_read_kernel`. The body must have the selector of every such filter that is on.
pub const PWRU_CFG_FILTER_META_SKB: u32 = 1 << 24;

/// Dispatch selector: pcap on L2 (data = MAC header).
pub const PWRU_SEL_L2: u64 = 0;
/// Dispatch selector: pcap on L3 (data = network header).
pub const PWRU_SEL_L3: u64 = 1;
/// Dispatch selector: pcap on the inner L2 header of a tunnel.
pub const PWRU_SEL_TUNNEL_L2: u64 = 2;
/// Dispatch selector: pcap on the inner L3 header of a tunnel.
pub const PWRU_SEL_TUNNEL_L3: u64 = 3;
/// Dispatch selector: the skb expression (data = the skb's address; returns 1/0).
pub const PWRU_SEL_SKB_EXPR: u64 = 4;
/// Dispatch selector: the xdp expression (data = the `xdp_buff`'s address; returns 1/0).
pub const PWRU_SEL_XDP_EXPR: u64 = 5;
/// Dispatch selectors 6..=9: the skb metadata expressions (return the 64-bit value).
pub const PWRU_SEL_SKB_META: u64 = 6;
/// Dispatch selectors 10..=13: the xdp metadata expressions.
pub const PWRU_SEL_XDP_META: u64 = 10;
/// Dispatch selector: the pcap filter on an skb (data = the skb's address): the body reads
/// `head`, `tail`, `mac_header` and `network_header`, then runs selector [`PWRU_SEL_L2`] or
/// [`PWRU_SEL_L3`] (see [`PWRU_CFG_FILTER_PCAP_SKB`]).
pub const PWRU_SEL_PCAP_SKB: u64 = 14;
/// Dispatch selector: the skb's network namespace inode (data = the skb's address; the
/// device's namespace, else the socket's; 0 for neither), see [`PWRU_CFG_FILTER_META_SKB`].
pub const PWRU_SEL_SKB_NETNS: u64 = 15;
/// Dispatch selector: `skb->mark` (data = the skb's address).
pub const PWRU_SEL_SKB_MARK: u64 = 16;
/// Dispatch selector: `skb->dev->ifindex`, 0 without a device (data = the skb's address).
pub const PWRU_SEL_SKB_IFINDEX: u64 = 17;
/// Number of dispatch selectors.
pub const PWRU_SEL_COUNT: u64 = 18;

// Size the kernel side relies on; a mismatch is a bug in the mirror.
const _: () = assert!(core::mem::size_of::<PwruConfig>() == 28);
