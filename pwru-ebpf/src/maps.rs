//! The maps user space reads, by name, with the keys and indexes of their entries: the ring
//! buffer, the per-CPU run counters by outcome, the record-building depth and the stack traces.

/// Name of the ring buffer map.
pub const MAP_EVENTS: &str = "pwru_events";
/// Name of the per-CPU array (`u64` values) of record-building depth: key
/// [`PWRU_DEPTH_LEVEL`] is the mask of scratch slots in use now (bit i: slot i), key
/// [`PWRU_DEPTH_NESTED`] counts runs that claimed a slot while another run on the same CPU
/// held one.
pub const MAP_DEPTH: &str = "pwru_depth";
/// Key of [`MAP_DEPTH`]: the mask of scratch slots in use now.
pub const PWRU_DEPTH_LEVEL: u32 = 0;
/// Key of [`MAP_DEPTH`]: runs that built a record nested inside another run's.
pub const PWRU_DEPTH_NESTED: u32 = 1;

/// Name of the per-CPU array of run counters, indexed by outcome (`PWRU_OUT_*`, one `u64`
/// each); the [`PWRU_OUT_RING_FULL`] entry counts the records lost to a full ring buffer.
pub const MAP_RUNS: &str = "pwru_runs";
/// Name of the map keeping a kprobe'd map lookup's arguments for its kretprobe.
pub const MAP_BPFMAP_ARGS: &str = "pwru_bpfmap_args";
/// Name of the hash map of the filter's address sets (the lookups of
/// `pwru_filter::SetLookup::Map`): sized and filled by the loader.
pub const MAP_FILTER_SETS: &str = "pwru_filter_sets";
/// Name of the stack trace map.
pub const MAP_STACKS: &str = "pwru_stacks";

/// Scratch slots per CPU, each claimed atomically by one run (enough for process context,
/// softirq, hardirq and NMI nesting, and tasks preempted inside an fentry program); a run
/// finding all in use is counted as [`PWRU_OUT_NESTED_TOO_DEEP`].
pub const PWRU_SCRATCH_SLOTS: u32 = 4;

/// How each run of an event program ended: indexes into [`MAP_RUNS`]. Every run increments
/// exactly one (`enum pwru_outcome` in `bpf/abi.h`).
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
    /// Filtered out by the skb (or xdp) expression.
    pub const FILTER_EXPR: u32 = 11;
    /// A map operation program ran on one of pwru's own maps (fentry programs see the
    /// lookups of pwru's other programs): not reported.
    pub const OWN_MAP: u32 = 12;
    /// Number of outcomes (entries of [`MAP_RUNS`](super::MAP_RUNS)).
    pub const COUNT: u32 = 13;
}

pub use outcome::NESTED_TOO_DEEP as PWRU_OUT_NESTED_TOO_DEEP;
pub use outcome::RING_FULL as PWRU_OUT_RING_FULL;
