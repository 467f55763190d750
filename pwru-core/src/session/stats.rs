//! The session's counters: [`Stats`] and [`RunOutcomes`], read from the kernel's run
//! counters and the stream's own, through a [`StatsHandle`] from any thread or task.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use crate::backend::{DetachedProgram, Link, LoaderError, ProgramStats};
use crate::error::Error;
use crate::object::{Loader, LostCounter, NestingCounter};
use crate::stream::Counters;

/// Runs of the kernel's event programs by how each ended, summed over all CPUs. Every run
/// that the kernel let start is counted under exactly one outcome (see
/// [`pwru_ebpf::outcome`]), so [`RunOutcomes::total`] equals the kernel's own run count of
/// the programs ([`Stats::kernel_runs`]) when BPF statistics were on from their load.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunOutcomes {
    /// Records written to the ring buffer.
    pub emitted: u64,
    /// Records built but lost because the ring buffer was full (same as [`Stats::lost`]).
    pub ring_full: u64,
    /// Runs whose skb (or `xdp_buff`) argument was NULL.
    pub null_skb: u64,
    /// Packets left out by the network namespace filter.
    pub filtered_netns: u64,
    /// Packets left out by the mark filter.
    pub filtered_mark: u64,
    /// Packets left out by the interface filter.
    pub filtered_ifindex: u64,
    /// Packets left out by the pcap expression.
    pub filtered_pcap: u64,
    /// Packets left out by the tunnel (inner header) pcap expression.
    pub filtered_tunnel: u64,
    /// Packets left out by the skb (or xdp) expression.
    pub filtered_expr: u64,
    /// Runs nested deeper than the per-CPU scratch slots allow (process context, softirq,
    /// hardirq and NMI each have one): no record was built.
    pub nested_too_deep: u64,
    /// Runs that found no per-CPU scratch or depth slot (a map lookup failed; not expected).
    pub no_scratch: u64,
    /// Runs in functions without an skb argument whose stack had no skb remembered.
    pub no_stack_skb: u64,
    /// Map operation runs ([`TracerBuilder::bpf_map_ops`](crate::TracerBuilder::bpf_map_ops))
    /// on one of pwru's own maps, which are not reported.
    pub own_map: u64,
}

impl RunOutcomes {
    fn from_counts(c: &[u64; pwru_ebpf::outcome::COUNT as usize]) -> Self {
        use pwru_ebpf::outcome as o;
        let at = |i: u32| c.get(i as usize).copied().unwrap_or(0);
        RunOutcomes {
            emitted: at(o::EMITTED),
            ring_full: at(o::RING_FULL),
            null_skb: at(o::NULL_SKB),
            filtered_netns: at(o::FILTER_NETNS),
            filtered_mark: at(o::FILTER_MARK),
            filtered_ifindex: at(o::FILTER_IFINDEX),
            filtered_pcap: at(o::FILTER_PCAP),
            filtered_tunnel: at(o::FILTER_TUNNEL),
            filtered_expr: at(o::FILTER_EXPR),
            nested_too_deep: at(o::NESTED_TOO_DEEP),
            no_scratch: at(o::NO_SCRATCH),
            no_stack_skb: at(o::NO_STACK_SKB),
            own_map: at(o::OWN_MAP),
        }
    }

    /// Runs left out by a filter (netns, mark, interface, expression, pcap, tunnel).
    pub fn filtered(&self) -> u64 {
        self.filtered_netns
            + self.filtered_mark
            + self.filtered_ifindex
            + self.filtered_expr
            + self.filtered_pcap
            + self.filtered_tunnel
    }

    /// Runs that built a record: written ([`emitted`](Self::emitted)) or lost to a full ring
    /// buffer ([`ring_full`](Self::ring_full)).
    pub fn produced(&self) -> u64 {
        self.emitted + self.ring_full
    }

    /// Every run counted, whatever its outcome.
    pub fn total(&self) -> u64 {
        self.produced()
            + self.null_skb
            + self.filtered()
            + self.nested_too_deep
            + self.no_scratch
            + self.no_stack_skb
            + self.own_map
    }
}

/// Counters of a running session.
///
/// Records the user never sees are [`Stats::total_lost`]: the ones lost to a full ring
/// buffer ([`Stats::lost`]) and the runs the kernel skipped ([`Stats::recursion_misses`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Records read from the ring buffer.
    pub records: u64,
    /// Records the kernel could not write because the ring buffer was full.
    pub lost: u64,
    /// Records that failed to decode (check-word mismatches included).
    pub decode_errors: u64,
    /// Records whose check word did not match their contents (also in
    /// [`decode_errors`](Self::decode_errors)): records mixed from two program runs or
    /// otherwise damaged, dropped instead of shown.
    pub check_mismatches: u64,
    /// Targets attached.
    pub attached: usize,
    /// Targets refused by the kernel.
    pub refused: usize,
    /// Runs of the event programs by outcome, counted by the programs themselves.
    pub runs: RunOutcomes,
    /// Runs of the event programs counted by the kernel (`run_cnt` of `bpf_prog_info`,
    /// summed). The kernel counts only while BPF statistics are on (`sysctl
    /// kernel.bpf_stats_enabled=1`, or `BPF_ENABLE_STATS`); with them
    /// on from before [`Tracer::attach`](crate::Tracer::attach), it equals [`RunOutcomes::total`].
    pub kernel_runs: u64,
    /// Runs the kernel skipped because a BPF program was already running on that CPU
    /// (`recursion_misses` of `bpf_prog_info`, summed over the event programs; counted
    /// always). kprobe and kprobe.multi programs never nest: a packet function hit from a
    /// softirq that interrupted one of our runs is skipped and counted here. Those packets'
    /// events are lost without reaching the ring buffer.
    pub recursion_misses: u64,
    /// Runs that built their record while another run on the same CPU was building one
    /// (a softirq interrupting a run in process context, a tracepoint or fentry program
    /// inside another, a task preempted inside an fentry program). Each run claims its own
    /// scratch slot, so these records are whole; the count shows that the case happened. Not an outcome (these runs are also
    /// counted in [`RunOutcomes`]).
    pub nested_runs: u64,
}

impl Stats {
    /// Everything the tracer failed to show: records lost to a full ring buffer plus runs the
    /// kernel skipped ([`lost`](Self::lost) + [`recursion_misses`](Self::recursion_misses)).
    /// This is the "lost" of a summary line.
    pub fn total_lost(&self) -> u64 {
        self.lost.saturating_add(self.recursion_misses)
    }
}

/// The kernel objects whose run counters [`Stats`] reads: shared (through a `Weak`) with
/// [`StatsHandle`]s. Field order is drop order: links before programs.
pub(super) struct Probes {
    pub(super) links: Vec<Link>,
    /// Programs of links detached by [`Session::stop`], kept for their run counters.
    pub(super) stopped: Vec<DetachedProgram>,
    pub(super) loader: Loader,
}

/// Locks `m`; a panic elsewhere while it was held leaves data that is still consistent here
/// (vectors of fds), so a poisoned lock is used as is.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Drop for Probes {
    /// Detaches the links (on at least `DETACH_THREADS` threads, see
    /// [`detach_all`](crate::backend::detach_all)) before the programs and maps go.
    fn drop(&mut self) {
        let threads = self.loader.attach_threads();
        crate::backend::detach_all(threads, std::mem::take(&mut self.links));
    }
}

impl Probes {
    /// (run_cnt, recursion_misses) summed over every loaded event program, each program once.
    fn kernel_run_counts(&self) -> Result<(u64, u64), Error> {
        let attached = self.links.iter().map(|l| (l.program(), l.stats()));
        let stopped = self.stopped.iter().map(|p| (p.program(), p.stats()));
        let mut aya_programs = HashSet::new();
        let (mut runs, mut misses) = (0u64, 0u64);
        for (program, stats) in attached.chain(stopped) {
            if !pwru_ebpf::is_event_program(program) {
                continue;
            }
            let stats: ProgramStats = match stats {
                Some(r) => r.map_err(|error| LoaderError::Attach {
                    program: program.into(),
                    target: "info".into(),
                    error,
                })?,
                // aya keeps one program for all its links: count it once.
                None if aya_programs.insert(program) => self.loader.program_stats(program)?,
                None => continue,
            };
            runs = runs.wrapping_add(stats.run_cnt);
            misses = misses.wrapping_add(stats.recursion_misses);
        }
        Ok((runs, misses))
    }
}

/// Reads a session's counters from any thread or task, also while its stream is read
/// elsewhere; see [`Session::stats_handle`](crate::Session::stats_handle). Cloning is cheap (reference counts).
///
/// It does not keep the session's probes alive: once the session is dropped,
/// [`StatsHandle::try_stats`] fails and [`StatsHandle::stats`] gives what the stream counted
/// (records, decode errors, losses reported).
#[derive(Clone)]
pub struct StatsHandle {
    pub(super) counters: Arc<Counters>,
    pub(super) check_mismatches: Arc<AtomicU64>,
    pub(super) lost: Arc<LostCounter>,
    pub(super) nesting: Arc<NestingCounter>,
    pub(super) probes: Weak<Mutex<Probes>>,
    /// Attached and refused so far (a background attach adds to them).
    pub(super) attach: Arc<super::AttachShared>,
}

impl std::fmt::Debug for StatsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatsHandle")
            .field("records", &self.counters.records.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl StatsHandle {
    /// Current counters, as [`Session::stats`](crate::Session::stats): when a kernel counter cannot be read, its
    /// fields keep what the stream saw.
    pub fn stats(&self) -> Stats {
        self.try_stats().unwrap_or_else(|_| {
            let mut s = self.stream_stats();
            s.lost = self.counters.lost_reported.load(Ordering::Relaxed);
            s
        })
    }

    /// [`StatsHandle::stats`], failing if a kernel counter cannot be read (or the session is
    /// gone).
    pub fn try_stats(&self) -> Result<Stats, Error> {
        let mut s = self.stream_stats();
        s.runs = RunOutcomes::from_counts(&self.lost.outcomes()?);
        s.lost = s.runs.ring_full;
        s.nested_runs = self.nesting.nested()?;
        let probes = self.probes.upgrade().ok_or_else(|| {
            Error::InvalidOption(
                "the session is gone: read its statistics before dropping it".into(),
            )
        })?;
        let (runs, misses) = lock(&probes).kernel_run_counts()?;
        s.kernel_runs = runs;
        s.recursion_misses = misses;
        Ok(s)
    }

    fn stream_stats(&self) -> Stats {
        Stats {
            records: self.counters.records.load(Ordering::Relaxed),
            decode_errors: self.counters.decode_errors.load(Ordering::Relaxed),
            check_mismatches: self.check_mismatches.load(Ordering::Relaxed),
            attached: self.attach.attached(),
            refused: self.attach.refused(),
            ..Stats::default()
        }
    }
}
