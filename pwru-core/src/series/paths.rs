//! Path aggregation: completed series folded into distinct paths (the sequence of functions,
//! ending with the drop reason where there is one) with packet counts and per-hop latency
//! percentiles, in bounded memory.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;

use super::fast_hash::FastBuild;
use super::group::Series;
use super::histogram::LatencyHistogram;
use crate::event::DropReason;

/// One distinct path and what the packets that took it measured.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Path {
    /// The functions, in order.
    pub functions: Vec<Arc<str>>,
    /// The drop reason the path ends with, if it ends in a drop.
    pub drop_reason: Option<DropReason>,
    /// Packets that took it.
    pub packets: u64,
    /// Of those, how many series did not see their end (idle timeout, eviction, still open at
    /// the end).
    pub unfinished: u64,
    /// Of those, how many were "possibly affected" by lost records (see
    /// [`Gap`](super::Gap)).
    pub possibly_affected: u64,
    /// Of those, how many were grouped by skb address (weak identity).
    pub weak_identity: u64,
    /// Latency of each hop: entry `i` is the time from `functions[i]` to `functions[i + 1]`.
    pub hop_latency: Vec<LatencyHistogram>,
    /// Time from the first function to the last.
    pub total_latency: LatencyHistogram,
}

/// Limits of a [`PathAggregator`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PathOptions {
    /// Most distinct paths kept; series on further new paths are only counted
    /// ([`PathAggregator::series_not_kept`]). Default 4,096.
    pub max_paths: usize,
}

impl Default for PathOptions {
    fn default() -> Self {
        PathOptions { max_paths: 4096 }
    }
}

/// Folds completed [`Series`] into distinct [`Path`]s.
///
/// ```
/// use pwru_core::event::{Event, ProbeKind};
/// use pwru_core::series::{Grouper, PathAggregator, PathOptions, SeriesOptions};
/// let mut g = Grouper::new(SeriesOptions::default());
/// let mut paths = PathAggregator::new(PathOptions::default());
/// for id in 0..10u64 {
///     for (t, f) in [(0, "ip_rcv"), (1_000, "ip_local_deliver"), (3_000, "consume_skb")] {
///         let mut ev = Event::new(ProbeKind::Tracepoint, f);
///         ev.packet_id = Some(id);
///         ev.timestamp_ns = id * 10_000 + t;
///         g.push(&ev);
///     }
/// }
/// while let Some(s) = g.pop() {
///     paths.add(&s);
/// }
/// let top = &paths.paths()[0];
/// assert_eq!(top.packets, 10);
/// let p50 = top.hop_latency[1].percentile(0.5).unwrap(); // 2 µs, within 12.5%
/// assert!((1750..=2250).contains(&p50), "{p50}");
/// ```
#[derive(Debug, Clone, Default)]
pub struct PathAggregator {
    opts: PathOptions,
    /// Paths by the hash of their functions and drop reason (collisions share a list).
    index: HashMap<u64, Vec<usize>, FastBuild>,
    paths: Vec<Path>,
    series: u64,
    not_kept: u64,
}

impl PathAggregator {
    /// An empty aggregator.
    pub fn new(opts: PathOptions) -> PathAggregator {
        PathAggregator {
            opts,
            ..PathAggregator::default()
        }
    }

    /// Adds one completed series (series without hops are ignored).
    pub fn add(&mut self, s: &Series) {
        if s.hops.is_empty() {
            return;
        }
        self.series += 1;
        let drop_reason = s.drop_reason();
        // Looked up by hash and compared in place: no key is built for a path already known.
        let mut h = FastBuild::default().build_hasher();
        for hop in &s.hops {
            hop.function.hash(&mut h);
        }
        drop_reason.map(|r| r.code).hash(&mut h);
        let hash = h.finish();
        let same = |p: &Path| {
            p.functions.len() == s.hops.len()
                && p.drop_reason.as_ref() == drop_reason
                && p.functions
                    .iter()
                    .zip(&s.hops)
                    .all(|(f, hop)| Arc::ptr_eq(f, &hop.function) || *f == hop.function)
        };
        let found = self
            .index
            .get(&hash)
            .and_then(|list| list.iter().copied().find(|&i| same(&self.paths[i])));
        let i = match found {
            Some(i) => i,
            None if self.paths.len() >= self.opts.max_paths => {
                self.not_kept += 1;
                return;
            }
            None => {
                let edges = s.hops.len().saturating_sub(1);
                self.paths.push(Path {
                    functions: s.hops.iter().map(|h| h.function.clone()).collect(),
                    drop_reason: drop_reason.cloned(),
                    packets: 0,
                    unfinished: 0,
                    possibly_affected: 0,
                    weak_identity: 0,
                    hop_latency: vec![LatencyHistogram::default(); edges],
                    total_latency: LatencyHistogram::default(),
                });
                let i = self.paths.len() - 1;
                self.index.entry(hash).or_default().push(i);
                i
            }
        };
        let p = &mut self.paths[i];
        p.packets += 1;
        if !s.end.is_seen() {
            p.unfinished += 1;
        }
        if s.possibly_affected() {
            p.possibly_affected += 1;
        }
        if s.weak_identity() {
            p.weak_identity += 1;
        }
        for (h, hop) in p.hop_latency.iter_mut().zip(s.hops.iter().skip(1)) {
            h.record(hop.delta_ns);
        }
        p.total_latency.record(s.duration_ns());
    }

    /// The paths, most packets first (ties: fewer functions first).
    pub fn paths(&self) -> Vec<&Path> {
        let mut v: Vec<&Path> = self.paths.iter().collect();
        v.sort_by(|a, b| {
            b.packets
                .cmp(&a.packets)
                .then(a.functions.len().cmp(&b.functions.len()))
        });
        v
    }

    /// Series added (with at least one hop).
    pub fn series(&self) -> u64 {
        self.series
    }

    /// Series whose path was new when [`PathOptions::max_paths`] paths were already kept:
    /// counted here, in no path.
    pub fn series_not_kept(&self) -> u64 {
        self.not_kept
    }

    /// Heap bytes held (paths, histograms, the index), for memory measurements.
    pub fn heap_bytes(&self) -> usize {
        let per: usize = self
            .paths
            .iter()
            .map(|p| {
                p.functions.capacity() * std::mem::size_of::<Arc<str>>()
                    + p.hop_latency.capacity() * std::mem::size_of::<LatencyHistogram>()
                    + p.hop_latency.iter().map(|h| h.heap_bytes()).sum::<usize>()
                    + p.total_latency.heap_bytes()
            })
            .sum();
        per + self.paths.capacity() * std::mem::size_of::<Path>()
            + self.index.capacity() * (std::mem::size_of::<(u64, Vec<usize>)>() + 1)
    }
}
