//! [`TracerBuilder`]: the options of a tracer, set one call at a time.

use std::path::PathBuf;

use crate::options::{Backend, Capture, KernelModules, MarkFilter, Options};

/// Builds a [`Tracer`](crate::Tracer). Every setter is optional; [`TracerBuilder::build`] checks
/// the whole set and reports the first problem as an [`Error`](crate::Error).
///
/// ```no_run
/// use pwru_core::{Backend, Tracer};
/// let tracer = Tracer::builder()
///     .pcap_filter("udp and port 53")
///     .function_regex("ip_.*|udp_.*|kfree_skb.*")
///     .backend(Backend::Auto)
///     .track_skb(true)
///     .build()?;
/// # Ok::<(), pwru_core::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct TracerBuilder {
    pub(crate) options: Options,
}

impl TracerBuilder {
    /// Starts from pwru's defaults (no filter, every skb function, Auto backend, meta + tuple,
    /// 4 MiB ring buffer); the same as `TracerBuilder::default()` and [`Tracer::builder`](crate::Tracer::builder).
    pub fn new() -> Self {
        TracerBuilder {
            options: Options::default(),
        }
    }

    /// Starts from a complete set of options.
    pub fn from_options(options: Options) -> Self {
        TracerBuilder { options }
    }

    /// The options as set so far.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Keep only packets matching this pcap-filter (tcpdump) expression.
    pub fn pcap_filter(mut self, expr: impl Into<String>) -> Self {
        self.options.pcap_filter = expr.into();
        self
    }

    /// Trace only functions whose whole name matches `regex` (pwru `--filter-func`).
    pub fn function_regex(mut self, regex: impl Into<String>) -> Self {
        self.options.function_regex = Some(regex.into());
        self
    }

    /// Also trace functions of these kernel modules (or all of them).
    pub fn kernel_modules(mut self, modules: KernelModules) -> Self {
        self.options.kernel_modules = modules;
        self
    }

    /// Also trace these functions without an skb argument (pwru `--filter-non-skb-funcs`).
    /// A hit is shown as an event about the skb last seen by a traced skb function on the same
    /// kernel stack (the task's stack, or the CPU's interrupt stack for softirq work), so they
    /// show up for packets that pass the filter and share their call chain. Needs the kprobe,
    /// kprobe-multi or fentry backend: [`build`](Self::build) refuses them with the tracepoint
    /// backend.
    pub fn non_skb_functions<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.options.non_skb_functions = names.into_iter().map(Into::into).collect();
        self
    }

    /// Choose the attach backend (default [`Backend::Auto`]).
    pub fn backend(mut self, backend: Backend) -> Self {
        self.options.backend = backend;
        self
    }

    /// Only packets in this network namespace (`/proc/PID/ns/net`, `/run/netns/NAME`, `inode:N`).
    /// `build()` refuses a path that is not a network namespace file
    /// ([`NetnsError::NotNetns`](crate::netns::NetnsError::NotNetns)).
    pub fn netns(mut self, spec: impl Into<String>) -> Self {
        self.options.netns = Some(spec.into());
        self
    }

    /// Only packets whose `mark & mask == mark`.
    pub fn mark(mut self, mark: MarkFilter) -> Self {
        self.options.mark = Some(mark);
        self
    }

    /// Only packets on this interface (resolved inside the chosen netns).
    pub fn interface(mut self, name: impl Into<String>) -> Self {
        self.options.interface = Some(name.into());
        self
    }

    /// pcap filter on the inner Ethernet frame of VXLAN/Geneve packets.
    pub fn tunnel_filter_l2(mut self, expr: impl Into<String>) -> Self {
        self.options.tunnel_filter_l2 = Some(expr.into());
        self
    }

    /// pcap filter on the inner IP packet of VXLAN/Geneve packets.
    pub fn tunnel_filter_l3(mut self, expr: impl Into<String>) -> Self {
        self.options.tunnel_filter_l3 = Some(expr.into());
        self
    }

    /// Keep only skbs for which this C-like expression over `struct sk_buff` holds (pwru's
    /// `--filter-skb-expr`), e.g. `skb->mark & 0xff == 0x1 && skb->dev->ifindex != 1`.
    /// Member chains through pointers, bitfields, constant array indexes, `&` (binding before
    /// the comparisons, unlike C), `== != < <= > >=` with the member's signedness, `&&`,
    /// `||`, `!` and parentheses; resolved against the kernel's BTF when the tracer is built
    /// (see `pwru_filter::expr`).
    pub fn skb_filter_expr(mut self, expr: impl Into<String>) -> Self {
        self.options.skb_filter_expr = Some(expr.into());
        self
    }

    /// Keep only XDP events (tc/XDP tracing) for which this expression over
    /// `struct xdp_buff` holds (pwru's `--filter-xdp-expr`), e.g. `xdp->rxq->queue_index == 0`.
    pub fn xdp_filter_expr(mut self, expr: impl Into<String>) -> Self {
        self.options.xdp_filter_expr = Some(expr.into());
        self
    }

    /// Values read from each skb into [`Event::metadata`](crate::Event::metadata) (pwru's
    /// `--output-skb-metadata`): up to four member chains of at most 8 bytes, e.g.
    /// `skb->mark` or `skb->dev->ifindex` (masks allowed: `skb->mark & 0xff`).
    pub fn skb_metadata<S: Into<String>>(mut self, exprs: impl IntoIterator<Item = S>) -> Self {
        self.options.skb_metadata = exprs.into_iter().map(Into::into).collect();
        self
    }

    /// Values read from each `xdp_buff` of XDP events (pwru's `--output-xdp-metadata`), as
    /// [`skb_metadata`](Self::skb_metadata).
    pub fn xdp_metadata<S: Into<String>>(mut self, exprs: impl IntoIterator<Item = S>) -> Self {
        self.options.xdp_metadata = exprs.into_iter().map(Into::into).collect();
        self
    }

    /// Follow a matched skb everywhere, clones and copies included.
    pub fn track_skb(mut self, on: bool) -> Self {
        self.options.track_skb = on;
        self
    }

    /// Link functions without an skb argument to packets by stack id.
    pub fn track_skb_by_stackid(mut self, on: bool) -> Self {
        self.options.track_skb_by_stackid = on;
        self
    }

    /// Also trace the kernel functions that the loaded tc and XDP programs call: BPF helpers,
    /// and the map operations the verifier calls in their place (pwru
    /// `--filter-track-bpf-helpers`). They are found in the programs' verified instructions
    /// when [`build`](Self::build) runs and traced as [`non_skb_functions`](Self::non_skb_functions),
    /// so they need the kprobe, kprobe-multi or fentry backend: `build` refuses them with the
    /// tracepoint backend, naming why the others were refused.
    pub fn track_bpf_helpers(mut self, on: bool) -> Self {
        self.options.track_bpf_helpers = on;
        self
    }

    /// Report the map operations (lookup, update, delete) that the loaded tc and XDP programs
    /// do, as [`Item::BpfMap`](crate::Item::BpfMap) items with the map's id and name and the
    /// key and value bytes, each linked to the packet by the stack it runs on (pwru
    /// `--output-bpfmap`). The map functions are found in the programs' verified
    /// instructions when [`build`](Self::build) runs (as for
    /// [`track_bpf_helpers`](Self::track_bpf_helpers)); updates and deletes are seen at entry,
    /// lookups at return with the value found. Needs kprobes or fentry: `build` refuses it
    /// with the tracepoint backend, naming why the others were refused. Combine it with
    /// [`trace_tc`](Self::trace_tc) / [`trace_xdp`](Self::trace_xdp) to see the program's
    /// own events beside its map operations.
    pub fn bpf_map_ops(mut self, on: bool) -> Self {
        self.options.bpf_map_ops = on;
        self
    }

    /// Trace the tc BPF programs loaded in the kernel.
    pub fn trace_tc(mut self, on: bool) -> Self {
        self.options.trace_tc = on;
        self
    }

    /// Trace the XDP programs loaded in the kernel.
    pub fn trace_xdp(mut self, on: bool) -> Self {
        self.options.trace_xdp = on;
        self
    }

    /// What each event carries.
    pub fn capture(mut self, capture: Capture) -> Self {
        self.options.capture = capture;
        self
    }

    /// Threads that attach the targets of the kprobe, kprobe-multi and fentry backends, in
    /// rounds that keep the targets' order (the hot path first). 0, the default, means two,
    /// or one where the process may run on a single CPU: the kernel serialises most of a kprobe's registration and a trampoline's update, and a second
    /// thread overlaps what it does not (fentry's per-function verifier runs above all); more
    /// than two measured no better. Detaching always uses many threads (16, or this count if
    /// more): it is the kernel waiting for RCU grace periods, and threads overlap those waits
    /// (a kprobe detach takes half the time).
    pub fn attach_threads(mut self, threads: usize) -> Self {
        self.options.attach_threads = threads;
        self
    }

    /// Ring buffer size in bytes, rounded up by `build()` to a power of two of at least one
    /// page (5000 becomes 8192); sizes above 2 GiB are refused. Default 4 MiB.
    pub fn ring_buffer_bytes(mut self, bytes: u32) -> Self {
        self.options.ring_buffer_bytes = bytes;
        self
    }

    /// Bound of each text dump of [`Capture::skb`] and [`Capture::skb_shared_info`] in bytes,
    /// NUL included (pwru's `--set-percpu-buf`): the kernel cuts the text there and the event
    /// says it was cut ([`Event::skb_dump_cut`](crate::Event::skb_dump_cut)). From
    /// [`DUMP_BUFFER_BYTES_MIN`](crate::options::DUMP_BUFFER_BYTES_MIN) to
    /// [`DUMP_BUFFER_BYTES_MAX`](crate::options::DUMP_BUFFER_BYTES_MAX) (4096, also the default;
    /// the shared-info dump is further capped at 1024); other values fail [`build`](Self::build).
    /// Not the ring buffer's size: that is [`TracerBuilder::ring_buffer_bytes`].
    ///
    /// ```no_run
    /// use pwru_core::{Capture, Tracer};
    /// let tracer = Tracer::builder()
    ///     .capture(Capture::default().with_skb(true))
    ///     .dump_buffer_bytes(512)
    ///     .build()?;
    /// # Ok::<(), pwru_core::Error>(())
    /// ```
    pub fn dump_buffer_bytes(mut self, bytes: u32) -> Self {
        self.options.dump_buffer_bytes = bytes;
        self
    }

    /// Read kernel types from this BTF file (raw BTF, or an ELF file with `.BTF`) instead of
    /// /sys/kernel/btf/vmlinux. `build()` parses it once, and everything uses it: function and
    /// tracepoint discovery, the backend probes, the filter's kfunc-cast ids, and the loader's
    /// CO-RE relocation and attach ids.
    pub fn kernel_btf(mut self, path: impl Into<PathBuf>) -> Self {
        self.options.kernel_btf = Some(path.into());
        self
    }
}
