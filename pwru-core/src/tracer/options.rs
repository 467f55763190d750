//! What a [`Tracer`](crate::Tracer) is asked to do: the plain data behind the builder.

use std::path::PathBuf;

pub use crate::backend::{Backend, UnknownBackend};

/// Which kernel modules' functions are traced besides vmlinux.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum KernelModules {
    /// Only functions built into the kernel image.
    #[default]
    None,
    /// These modules (by name, as in /sys/kernel/btf/NAME).
    List(Vec<String>),
    /// Every loaded module that has BTF.
    All,
}

/// What each event carries besides the function and skb address (pwru's `--output-*` flags).
///
/// ```
/// use pwru_core::{Capture, Tracer};
/// let builder = Tracer::builder().capture(Capture::default().with_stack(true).with_caller(true));
/// assert!(builder.options().capture.tuple); // pwru's defaults stay on
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capture {
    /// netns, mark, interface, protocol, MTU, length.
    pub meta: bool,
    /// Addresses, ports and L4 protocol.
    pub tuple: bool,
    /// TCP flags in the tuple.
    pub tcp_flags: bool,
    /// The inner tuple of VXLAN/Geneve encapsulated packets.
    pub tunnel: bool,
    /// The kernel stack (symbolized).
    pub stack: bool,
    /// The calling function.
    pub caller: bool,
    /// A text dump of `struct sk_buff` (bpf_snprintf_btf).
    pub skb: bool,
    /// A text dump of `struct skb_shared_info`.
    pub skb_shared_info: bool,
    /// The skb control buffer `cb[]`.
    pub cb: bool,
    /// The packet's bytes, up to [`snaplen`](#structfield.snaplen) (for pcap-ng export:
    /// [`crate::format::pcapng`]).
    pub packet: bool,
    /// How many packet bytes each event carries at most, with
    /// [`packet`](#structfield.packet): 1 to [`MAX_SNAPLEN`], default [`DEFAULT_SNAPLEN`].
    pub snaplen: u32,
    /// A packet id on every event ([`Event::packet_id`](crate::Event::packet_id)) and, for
    /// clones and copies, the parent's ([`Event::parent_packet_id`](crate::Event::parent_packet_id)).
    /// On by default; off saves a map lookup per event and a map delete per freed skb.
    pub packet_id: bool,
}

/// Default packet bytes per event ([`Capture::snaplen`]).
pub const DEFAULT_SNAPLEN: u32 = 256;
/// Largest [`Capture::snaplen`]: the room for packet bytes in the kernel's record buffer.
pub const MAX_SNAPLEN: u32 = pwru_ebpf::PWRU_PKT_MAX as u32;

/// Chainable setters, since `Capture` may grow and cannot be built with a struct literal
/// outside this crate:
///
/// ```
/// let c = pwru_core::Capture::default().with_stack(true).with_caller(true);
/// assert!(c.meta && c.stack && c.caller && !c.skb);
/// ```
impl Capture {
    /// Sets whether events carry netns, mark, interface, protocol, MTU and length ([`Capture::meta`](#structfield.meta)).
    pub fn with_meta(mut self, on: bool) -> Self {
        self.meta = on;
        self
    }

    /// Sets whether events carry addresses, ports and L4 protocol ([`Capture::tuple`](#structfield.tuple)).
    pub fn with_tuple(mut self, on: bool) -> Self {
        self.tuple = on;
        self
    }

    /// Sets whether events carry TCP flags in the tuple ([`Capture::tcp_flags`](#structfield.tcp_flags)).
    pub fn with_tcp_flags(mut self, on: bool) -> Self {
        self.tcp_flags = on;
        self
    }

    /// Sets whether events carry the inner tuple of encapsulated packets ([`Capture::tunnel`](#structfield.tunnel)).
    pub fn with_tunnel(mut self, on: bool) -> Self {
        self.tunnel = on;
        self
    }

    /// Sets whether events carry the kernel stack ([`Capture::stack`](#structfield.stack)).
    pub fn with_stack(mut self, on: bool) -> Self {
        self.stack = on;
        self
    }

    /// Sets whether events carry the calling function ([`Capture::caller`](#structfield.caller)).
    pub fn with_caller(mut self, on: bool) -> Self {
        self.caller = on;
        self
    }

    /// Sets whether events carry a text dump of `struct sk_buff` ([`Capture::skb`](#structfield.skb)).
    pub fn with_skb(mut self, on: bool) -> Self {
        self.skb = on;
        self
    }

    /// Sets whether events carry a text dump of `struct skb_shared_info` ([`Capture::skb_shared_info`](#structfield.skb_shared_info)).
    pub fn with_skb_shared_info(mut self, on: bool) -> Self {
        self.skb_shared_info = on;
        self
    }

    /// Sets whether events carry the skb control buffer ([`Capture::cb`](#structfield.cb)).
    pub fn with_cb(mut self, on: bool) -> Self {
        self.cb = on;
        self
    }

    /// Sets whether events carry the packet's bytes ([`Capture::packet`](#structfield.packet)).
    pub fn with_packet(mut self, on: bool) -> Self {
        self.packet = on;
        self
    }

    /// Sets the most packet bytes per event ([`Capture::snaplen`](#structfield.snaplen));
    /// [`TracerBuilder::build`](crate::TracerBuilder::build) refuses 0 and values above
    /// [`MAX_SNAPLEN`].
    pub fn with_snaplen(mut self, bytes: u32) -> Self {
        self.snaplen = bytes;
        self
    }

    /// Sets whether packets get ids ([`Capture::packet_id`](#structfield.packet_id)).
    pub fn with_packet_id(mut self, on: bool) -> Self {
        self.packet_id = on;
        self
    }
}

impl Default for Capture {
    /// pwru's defaults: meta and tuple on, and packet ids, everything else off.
    fn default() -> Self {
        Capture {
            meta: true,
            tuple: true,
            tcp_flags: false,
            tunnel: false,
            stack: false,
            caller: false,
            skb: false,
            skb_shared_info: false,
            cb: false,
            packet: false,
            snaplen: DEFAULT_SNAPLEN,
            packet_id: true,
        }
    }
}

/// A `mark[/mask]` filter: the event is kept when `skb->mark & mask == mark`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarkFilter {
    /// The value to compare with after masking.
    pub mark: u32,
    /// The mask applied to `skb->mark` (all ones when not given).
    pub mask: u32,
}

/// A `mark[/mask]` text that is not two numbers (decimal or 0x hex).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid mark filter {0:?}: write MARK or MARK/MASK, each decimal or 0x-hex (e.g. 0x10/0xff)"
)]
pub struct InvalidMark(pub String);

fn parse_u32(s: &str) -> Option<u32> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

impl std::str::FromStr for MarkFilter {
    type Err = InvalidMark;
    /// ```
    /// use pwru_core::MarkFilter;
    /// let m: MarkFilter = "0x10/0xff".parse().unwrap();
    /// assert_eq!((m.mark, m.mask), (0x10, 0xff));
    /// assert_eq!("7".parse::<MarkFilter>().unwrap().mask, u32::MAX);
    /// assert!("x/1".parse::<MarkFilter>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || InvalidMark(s.to_string());
        let (m, k) = match s.split_once('/') {
            Some((m, k)) => (m, Some(k)),
            None => (s, None),
        };
        let mark = parse_u32(m.trim()).ok_or_else(bad)?;
        let mask = match k {
            Some(k) => parse_u32(k.trim()).ok_or_else(bad)?,
            None => u32::MAX,
        };
        Ok(MarkFilter { mark, mask })
    }
}

/// Default ring buffer size: 4 MiB, room for about 20,000 events.
pub const DEFAULT_RING_BUFFER_BYTES: u32 = 4 << 20;

/// The largest ring buffer: the largest power of two a `u32` holds (2 GiB). The kernel's own
/// limit is higher; memory runs out first.
pub const MAX_RING_BUFFER_BYTES: u32 = 1 << 31;
/// Default bound of each `--output-skb` / `--output-skb-shared-info` style dump: 4096 bytes
/// (pwru's default per-CPU buffer), NUL included.
pub const DEFAULT_DUMP_BUFFER_BYTES: u32 = pwru_ebpf::PWRU_SKB_DUMP_MAX as u32;
/// Smallest dump bound [`crate::TracerBuilder::dump_buffer_bytes`] accepts.
pub const DUMP_BUFFER_BYTES_MIN: u32 = 64;
/// Largest dump bound: the size of the skb dump's place in the kernel's record buffer.
pub const DUMP_BUFFER_BYTES_MAX: u32 = pwru_ebpf::PWRU_SKB_DUMP_MAX as u32;

/// Everything a tracer was asked for; built by [`TracerBuilder`](crate::TracerBuilder).
///
/// `Options::default()` holds pwru's defaults, the same as [`Tracer::builder`](crate::Tracer::builder):
///
/// ```
/// use pwru_core::{Options, TracerBuilder, Tracer};
/// assert_eq!(Options::default().ring_buffer_bytes, pwru_core::options::DEFAULT_RING_BUFFER_BYTES);
/// assert_eq!(
///     format!("{:?}", TracerBuilder::default().options()),
///     format!("{:?}", Tracer::builder().options()),
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// The pcap-filter expression for the packet (empty: every packet).
    pub pcap_filter: String,
    /// Regular expression a function name must match entirely (pwru `--filter-func`).
    pub function_regex: Option<String>,
    /// Kernel modules whose functions are traced too.
    pub kernel_modules: KernelModules,
    /// Functions without an skb argument to trace as well (linked to packets by stack id).
    pub non_skb_functions: Vec<String>,
    /// Which backend to use.
    pub backend: Backend,
    /// Only packets in this network namespace: `/proc/PID/ns/net`, a path under /run/netns, or `inode:N`.
    pub netns: Option<String>,
    /// Only packets whose mark matches.
    pub mark: Option<MarkFilter>,
    /// Only packets on this interface (name resolved inside [`Options::netns`]).
    pub interface: Option<String>,
    /// pcap filter on the inner Ethernet frame of tunnelled packets (non-tunnel packets pass).
    pub tunnel_filter_l2: Option<String>,
    /// pcap filter on the inner IP packet of tunnelled packets (non-tunnel packets pass).
    pub tunnel_filter_l3: Option<String>,
    /// C-like expression over `struct sk_buff` an skb must satisfy (pwru `--filter-skb-expr`).
    pub skb_filter_expr: Option<String>,
    /// C-like expression over `struct xdp_buff` an XDP event must satisfy
    /// (pwru `--filter-xdp-expr`).
    pub xdp_filter_expr: Option<String>,
    /// Up to 4 value expressions read from each skb (pwru `--output-skb-metadata`).
    pub skb_metadata: Vec<String>,
    /// Up to 4 value expressions read from each `xdp_buff` (pwru `--output-xdp-metadata`).
    pub xdp_metadata: Vec<String>,
    /// Once a packet matched, follow its skb everywhere (clones and copies included).
    pub track_skb: bool,
    /// Link functions without an skb argument to packets by kernel stack id.
    pub track_skb_by_stackid: bool,
    /// Also trace the kernel functions that loaded tc and XDP programs call (BPF helpers and
    /// map operations), linked to packets by stack id (pwru `--filter-track-bpf-helpers`).
    pub track_bpf_helpers: bool,
    /// Report the map operations (lookup, update, delete) of the traced tc/XDP programs as
    /// [`Item::BpfMap`](crate::Item::BpfMap) (pwru `--output-bpfmap`).
    pub bpf_map_ops: bool,
    /// Trace the tc BPF programs loaded in the kernel.
    pub trace_tc: bool,
    /// Trace the XDP programs loaded in the kernel.
    pub trace_xdp: bool,
    /// What each event carries.
    pub capture: Capture,
    /// Ring buffer size in bytes; [`TracerBuilder::build`](crate::TracerBuilder::build) rounds
    /// it up to a power of two of at least one page (see [`ring_buffer_size`]).
    pub ring_buffer_bytes: u32,
    /// Bound of each skb / shared-info text dump in bytes, NUL included (0: the default,
    /// [`DEFAULT_DUMP_BUFFER_BYTES`]); see [`crate::TracerBuilder::dump_buffer_bytes`].
    pub dump_buffer_bytes: u32,
    /// Read kernel types from this BTF file instead of /sys/kernel/btf/vmlinux.
    pub kernel_btf: Option<PathBuf>,
    /// Threads attaching and detaching kprobe, kprobe-multi and fentry targets; 0 (the
    /// default) means two, or one on a single CPU. See
    /// [`crate::TracerBuilder::attach_threads`].
    pub attach_threads: usize,
}

impl Default for Options {
    /// pwru's defaults: no filter, every skb function, Auto backend, meta + tuple, a 4 MiB ring
    /// buffer.
    fn default() -> Self {
        Options {
            pcap_filter: String::new(),
            function_regex: None,
            kernel_modules: KernelModules::None,
            non_skb_functions: Vec::new(),
            backend: Backend::Auto,
            netns: None,
            mark: None,
            interface: None,
            tunnel_filter_l2: None,
            tunnel_filter_l3: None,
            skb_filter_expr: None,
            xdp_filter_expr: None,
            skb_metadata: Vec::new(),
            xdp_metadata: Vec::new(),
            track_skb: false,
            track_skb_by_stackid: false,
            track_bpf_helpers: false,
            bpf_map_ops: false,
            trace_tc: false,
            trace_xdp: false,
            capture: Capture::default(),
            ring_buffer_bytes: DEFAULT_RING_BUFFER_BYTES,
            dump_buffer_bytes: DEFAULT_DUMP_BUFFER_BYTES,
            kernel_btf: None,
            attach_threads: 0,
        }
    }
}

/// The ring buffer size the kernel is given for a requested size: the next power of two that
/// is at least `page_size` (the kernel wants both). Sizes above [`MAX_RING_BUFFER_BYTES`]
/// cannot be rounded within 32 bits and are refused with the valid range.
///
/// ```
/// use pwru_core::options::ring_buffer_size;
/// assert_eq!(ring_buffer_size(5000, 4096), Ok(8192));
/// assert_eq!(ring_buffer_size(0, 4096), Ok(4096));
/// assert_eq!(ring_buffer_size(1 << 20, 4096), Ok(1 << 20));
/// assert!(ring_buffer_size(u32::MAX, 4096).unwrap_err().contains("between 4096 and 2147483648"));
/// ```
pub fn ring_buffer_size(requested: u32, page_size: u32) -> Result<u32, String> {
    let page = page_size.max(1).next_power_of_two();
    let range = || {
        format!(
            "the ring buffer size must be between {page} and {MAX_RING_BUFFER_BYTES} bytes (it is rounded up to a power of two)"
        )
    };
    if requested > MAX_RING_BUFFER_BYTES || page > MAX_RING_BUFFER_BYTES {
        return Err(format!(
            "ring buffer size {requested} is too large: {}",
            range()
        ));
    }
    Ok(requested.max(page).next_power_of_two())
}
