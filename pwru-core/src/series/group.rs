//! Grouping events into per-packet series: a push API (feed events and loss notices, take
//! completed series) with bounded state.
//!
//! A series ends when the packet is freed, consumed or dropped, when nothing was seen of it for
//! the idle timeout (in event time), when the in-flight cap evicts it, or at [`Grouper::flush`].

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::fmt;

use super::fast_hash::FastBuild;
use super::hop::{fill_deltas_and_changes, Hop};
use crate::event::{DropReason, Event};
use crate::session::LostEvents;

/// What identifies the packet a series follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PacketKey {
    /// The kernel's packet id ([`Event::packet_id`]): stable for the packet's life.
    Id(u64),
    /// The skb address, for events without a packet id: a **weak** identity. The kernel reuses
    /// addresses after a free, so two packets may share one; a series keyed by address ends at
    /// the free, which separates packets only when the free was traced.
    Skb(u64),
}

impl PacketKey {
    /// The key of one event: its packet id, else its skb address.
    pub fn of(ev: &Event) -> PacketKey {
        match ev.packet_id {
            Some(id) => PacketKey::Id(id),
            None => PacketKey::Skb(ev.skb),
        }
    }

    /// Whether this is the weak, address-based identity.
    pub fn is_weak(&self) -> bool {
        matches!(self, PacketKey::Skb(_))
    }
}

impl fmt::Display for PacketKey {
    /// `id 42`, or `skb 0xffff...` for the weak identity.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PacketKey::Id(id) => write!(f, "id {id}"),
            PacketKey::Skb(a) => write!(f, "skb {a:#x}"),
        }
    }
}

/// Why a series ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SeriesEnd {
    /// Freed or consumed normally.
    Freed,
    /// Dropped, with the kernel's reason.
    Dropped(DropReason),
    /// Nothing seen of the packet for the idle timeout.
    IdleTimeout,
    /// Evicted to keep the in-flight state under its cap (counted in [`SeriesStats::evicted`]).
    Evicted,
    /// Still open when the grouper was flushed (the stream ended).
    Flushed,
}

impl SeriesEnd {
    /// Whether the packet's end was seen (freed, consumed or dropped).
    pub fn is_seen(&self) -> bool {
        matches!(self, SeriesEnd::Freed | SeriesEnd::Dropped(_))
    }
}

impl fmt::Display for SeriesEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SeriesEnd::Freed => f.write_str("freed"),
            SeriesEnd::Dropped(r) => write!(f, "dropped ({r})"),
            SeriesEnd::IdleTimeout => f.write_str("idle timeout"),
            SeriesEnd::Evicted => f.write_str("evicted (in-flight cap)"),
            SeriesEnd::Flushed => f.write_str("open at the end"),
        }
    }
}

/// Lost records that fell while a series was open. Which packets the lost records belonged to
/// cannot be known, so every series open at that moment is marked "possibly affected": the
/// lost hops, if any were this packet's, would lie after hop `after_hops`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Gap {
    /// How many hops the series had when the loss was noticed.
    pub after_hops: usize,
    /// Records lost (across all packets) in that notice.
    pub lost: u64,
}

/// One packet's events in time order, with per-hop deltas and changes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Series {
    /// Which packet.
    pub key: PacketKey,
    /// The packet this one was cloned or copied from ([`Event::parent_packet_id`]).
    pub parent_packet_id: Option<u64>,
    /// The hops in time order (the first has `delta_ns` 0).
    pub hops: Vec<Hop>,
    /// Why the series ended.
    pub end: SeriesEnd,
    /// Losses noticed while the series was open (it is "possibly affected").
    pub gaps: Vec<Gap>,
    /// Hops not kept because the series reached [`SeriesOptions::max_hops`] (the last hop is
    /// always kept: the newest replaces it).
    pub hops_not_kept: u32,
}

impl Series {
    /// Whether the identity is the weak skb address (see [`PacketKey::Skb`]).
    pub fn weak_identity(&self) -> bool {
        self.key.is_weak()
    }

    /// Whether lost records may have belonged to this packet.
    pub fn possibly_affected(&self) -> bool {
        !self.gaps.is_empty()
    }

    /// Time from the first hop to the last (ns).
    pub fn duration_ns(&self) -> u64 {
        match (self.hops.first(), self.hops.last()) {
            (Some(a), Some(b)) => b.timestamp_ns.saturating_sub(a.timestamp_ns),
            _ => 0,
        }
    }

    /// The drop reason, when the series ended in a drop.
    pub fn drop_reason(&self) -> Option<&DropReason> {
        match &self.end {
            SeriesEnd::Dropped(r) => Some(r),
            _ => None,
        }
    }
}

/// Limits and timeouts of a [`Grouper`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SeriesOptions {
    /// A series with no event for this long (event time, ns) ends as
    /// [`SeriesEnd::IdleTimeout`]. Default 1 s.
    pub idle_timeout_ns: u64,
    /// After a free/consume/drop event, events of the same packet within this time (ns) still
    /// join the series (the kernel's release functions run after the drop); the final
    /// `kfree_skbmem` or a free tracepoint ends it at once. Default 1 ms.
    pub end_grace_ns: u64,
    /// Most packets followed at once; beyond it the least recently seen are evicted
    /// ([`SeriesEnd::Evicted`]) and counted. Default 65,536.
    pub max_in_flight: usize,
    /// Most hops kept per series; more are counted in [`Series::hops_not_kept`]. Default 256.
    pub max_hops: usize,
}

impl Default for SeriesOptions {
    fn default() -> Self {
        SeriesOptions {
            idle_timeout_ns: 1_000_000_000,
            end_grace_ns: 1_000_000,
            max_in_flight: 1 << 16,
            max_hops: 256,
        }
    }
}

/// Counters of a [`Grouper`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct SeriesStats {
    /// Events pushed.
    pub events: u64,
    /// Series completed (all ends, evicted included).
    pub completed: u64,
    /// Series ended by the idle timeout.
    pub idle: u64,
    /// Series evicted by the in-flight cap.
    pub evicted: u64,
    /// Hops not kept by the per-series hop cap.
    pub hops_not_kept: u64,
    /// Loss notices seen.
    pub loss_notices: u64,
    /// Records lost in all.
    pub lost: u64,
    /// Series marked "possibly affected" by a loss (a series counts once per notice).
    pub gaps_marked: u64,
    /// Series open now.
    pub in_flight: usize,
    /// Series open with the weak (skb address) identity now.
    pub in_flight_weak: usize,
}

/// The state of one packet being followed.
#[derive(Debug)]
struct Open {
    hops: Vec<Hop>,
    parent: Option<u64>,
    gaps: Vec<Gap>,
    last_seen_ns: u64,
    /// Set by a free/consume/drop event; the series completes after the grace time.
    ending: Option<(SeriesEnd, u64)>,
    hops_not_kept: u32,
}

/// How an event ends its packet's series, if it does.
enum Ending {
    /// The packet's memory is gone: nothing more can follow.
    Final(SeriesEnd),
    /// Freed or dropped; the release functions may still run on it.
    Soon(SeriesEnd),
}

/// Functions that free, consume or drop an skb.
const FREEING: &[&str] = &[
    "kfree_skb",
    "kfree_skb_reason",
    "sk_skb_reason_drop",
    "kfree_skb_list_reason",
    "__kfree_skb",
    "consume_skb",
    "napi_consume_skb",
    "__napi_kfree_skb",
    "kfree_skb_partial",
    "__dev_kfree_skb_any",
    "__dev_kfree_skb_irq",
];

fn ending(ev: &Event) -> Option<Ending> {
    let end = match &ev.drop_reason {
        // Recent kernels report a normal free through the drop path as SKB_CONSUMED.
        Some(r) if r.name.as_deref() == Some("SKB_CONSUMED") => SeriesEnd::Freed,
        Some(r) => SeriesEnd::Dropped(r.clone()),
        None if &*ev.function == "kfree_skbmem" || FREEING.contains(&&*ev.function) => {
            SeriesEnd::Freed
        }
        None => return None,
    };
    // The free tracepoints fire last for their skb; kfree_skbmem releases the struct itself.
    if ev.kind.is_tracepoint() || &*ev.function == "kfree_skbmem" {
        Some(Ending::Final(end))
    } else {
        Some(Ending::Soon(end))
    }
}

/// Groups events into [`Series`]: push events and loss notices, pull completed series.
///
/// Time is event time ([`Event::timestamp_ns`], the kernel's `CLOCK_MONOTONIC`): idle and
/// grace timeouts advance with the events pushed, or with [`Grouper::expire`] given the clock
/// (e.g. [`WallClock::monotonic_now_ns`](crate::event::WallClock::monotonic_now_ns)) when the
/// stream is quiet. Events without a packet id are grouped by skb address, a weak identity
/// (see [`PacketKey::Skb`]).
///
/// ```
/// use pwru_core::event::{Event, ProbeKind};
/// use pwru_core::series::{Grouper, SeriesEnd, SeriesOptions};
/// let mut g = Grouper::new(SeriesOptions::default());
/// for (t, f) in [(100, "net_dev_queue"), (250, "netif_receive_skb"), (900, "consume_skb")] {
///     let mut ev = Event::new(ProbeKind::Tracepoint, f);
///     ev.packet_id = Some(7);
///     ev.timestamp_ns = t;
///     g.push(&ev);
/// }
/// let s = g.pop().expect("consume_skb ends the series");
/// assert_eq!(s.hops.len(), 3);
/// assert_eq!(s.hops[2].delta_ns, 650);
/// assert_eq!(s.end, SeriesEnd::Freed);
/// ```
#[derive(Debug)]
pub struct Grouper {
    opts: SeriesOptions,
    open: HashMap<PacketKey, Open, FastBuild>,
    /// Series with an end pending after the grace time: (end seen at, key).
    ending: VecDeque<(u64, PacketKey)>,
    done: VecDeque<Series>,
    now_ns: u64,
    next_idle_scan_ns: u64,
    stats: SeriesStats,
}

impl Grouper {
    /// An empty grouper.
    pub fn new(opts: SeriesOptions) -> Grouper {
        Grouper {
            opts: SeriesOptions {
                max_in_flight: opts.max_in_flight.max(1),
                max_hops: opts.max_hops.max(1),
                ..opts
            },
            open: HashMap::default(),
            ending: VecDeque::new(),
            done: VecDeque::new(),
            now_ns: 0,
            next_idle_scan_ns: 0,
            stats: SeriesStats::default(),
        }
    }

    /// The options in force.
    pub fn options(&self) -> &SeriesOptions {
        &self.opts
    }

    /// Adds one event to its packet's series (opening one when needed).
    pub fn push(&mut self, ev: &Event) {
        self.stats.events += 1;
        let key = PacketKey::of(ev);
        if !self.open.contains_key(&key) && self.open.len() >= self.opts.max_in_flight {
            self.evict_oldest();
        }
        let max_hops = self.opts.max_hops;
        let end = ending(ev);
        let open = match self.open.entry(key) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => v.insert(Open {
                hops: Vec::with_capacity(8),
                parent: None,
                gaps: Vec::new(),
                last_seen_ns: ev.timestamp_ns,
                ending: None,
                hops_not_kept: 0,
            }),
        };
        open.last_seen_ns = open.last_seen_ns.max(ev.timestamp_ns);
        if open.parent.is_none() {
            open.parent = ev.parent_packet_id;
        }
        let hop = Hop::of(ev);
        if open.hops.len() >= max_hops {
            // Keep the newest hop last so the series still ends where the packet did.
            open.hops_not_kept = open.hops_not_kept.saturating_add(1);
            self.stats.hops_not_kept += 1;
            open.hops.pop();
        }
        // Records from different CPUs may arrive slightly out of order: insert by time.
        let at = open
            .hops
            .iter()
            .rposition(|h| h.timestamp_ns <= hop.timestamp_ns)
            .map_or(0, |i| i + 1);
        open.hops.insert(at, hop);
        match end {
            Some(Ending::Final(end)) => {
                let end = match open.ending.take() {
                    // A drop seen before the final free is why the packet ended.
                    Some((earlier @ SeriesEnd::Dropped(_), _)) => earlier,
                    _ => end,
                };
                self.complete(key, end);
            }
            Some(Ending::Soon(end)) => {
                let keep = matches!(open.ending, Some((SeriesEnd::Dropped(_), _)));
                if !keep {
                    open.ending = Some((end, ev.timestamp_ns));
                    self.ending.push_back((ev.timestamp_ns, key));
                }
            }
            None => {}
        }
        if ev.timestamp_ns > self.now_ns {
            self.expire(ev.timestamp_ns);
        }
    }

    /// Marks a loss in every open series (see [`Gap`]); series opened later are clean.
    pub fn mark_lost(&mut self, lost: &LostEvents) {
        if lost.count == 0 {
            return;
        }
        self.stats.loss_notices += 1;
        self.stats.lost += lost.count;
        for open in self.open.values_mut() {
            let after_hops = open.hops.len();
            match open.gaps.last_mut() {
                Some(g) if g.after_hops == after_hops => g.lost += lost.count,
                _ => open.gaps.push(Gap {
                    after_hops,
                    lost: lost.count,
                }),
            }
            self.stats.gaps_marked += 1;
        }
    }

    /// Advances time to `now_ns` (monotonic ns): completes series whose end grace or idle
    /// timeout has passed. Called by [`push`](Self::push) with each event's time.
    pub fn expire(&mut self, now_ns: u64) {
        self.now_ns = self.now_ns.max(now_ns);
        let now = self.now_ns;
        while let Some(&(at, key)) = self.ending.front() {
            if now.saturating_sub(at) < self.opts.end_grace_ns {
                break;
            }
            self.ending.pop_front();
            // The entry may be stale (completed already, or a later end replaced it).
            let due = matches!(self.open.get(&key), Some(o) if matches!(o.ending, Some((_, t)) if t == at));
            if due {
                if let Some((end, _)) = self.open.get_mut(&key).and_then(|o| o.ending.take()) {
                    self.complete(key, end);
                }
            }
        }
        // Idle series: one scan per quarter of the timeout keeps the cost per event constant.
        if now >= self.next_idle_scan_ns {
            let timeout = self.opts.idle_timeout_ns;
            self.next_idle_scan_ns = now.saturating_add((timeout / 4).max(1));
            let idle: Vec<PacketKey> = self
                .open
                .iter()
                .filter(|(_, o)| now.saturating_sub(o.last_seen_ns) >= timeout)
                .map(|(k, _)| *k)
                .collect();
            for key in idle {
                let end = self
                    .open
                    .get_mut(&key)
                    .and_then(|o| o.ending.take())
                    .map_or(SeriesEnd::IdleTimeout, |(e, _)| e);
                if end == SeriesEnd::IdleTimeout {
                    self.stats.idle += 1;
                }
                self.complete(key, end);
            }
        }
    }

    /// Ends every open series ([`SeriesEnd::Flushed`], or its pending free/drop).
    pub fn flush(&mut self) {
        let keys: Vec<PacketKey> = self.open.keys().copied().collect();
        for key in keys {
            let end = self
                .open
                .get_mut(&key)
                .and_then(|o| o.ending.take())
                .map_or(SeriesEnd::Flushed, |(e, _)| e);
            self.complete(key, end);
        }
        self.ending.clear();
    }

    /// The oldest completed series not taken yet.
    pub fn pop(&mut self) -> Option<Series> {
        self.done.pop_front()
    }

    /// Counters, with the current in-flight numbers.
    pub fn stats(&self) -> SeriesStats {
        SeriesStats {
            in_flight: self.open.len(),
            in_flight_weak: self.open.keys().filter(|k| k.is_weak()).count(),
            ..self.stats
        }
    }

    /// Heap bytes held by the open series (hops, gaps, the map), for memory measurements.
    /// Shared strings (function and interface names) are not counted: every event shares them.
    pub fn heap_bytes(&self) -> usize {
        let map = self.open.capacity()
            * (std::mem::size_of::<PacketKey>() + std::mem::size_of::<Open>() + 1);
        let per: usize = self
            .open
            .values()
            .map(|o| {
                o.hops.capacity() * std::mem::size_of::<Hop>()
                    + o.gaps.capacity() * std::mem::size_of::<Gap>()
            })
            .sum();
        map + per + self.ending.capacity() * std::mem::size_of::<(u64, PacketKey)>()
    }

    fn complete(&mut self, key: PacketKey, end: SeriesEnd) {
        let Some(open) = self.open.remove(&key) else {
            return;
        };
        let mut hops = open.hops;
        fill_deltas_and_changes(&mut hops);
        self.stats.completed += 1;
        self.done.push_back(Series {
            key,
            parent_packet_id: open.parent,
            hops,
            end,
            gaps: open.gaps,
            hops_not_kept: open.hops_not_kept,
        });
    }

    /// Evicts the least recently seen eighth of the open series (at least one): one scan pays
    /// for many insertions, so a flood of new packets costs a constant amount per event.
    fn evict_oldest(&mut self) {
        let n = (self.open.len() / 8).max(1);
        let mut ages: Vec<(u64, PacketKey)> = self
            .open
            .iter()
            .map(|(k, o)| (o.last_seen_ns, *k))
            .collect();
        if n < ages.len() {
            ages.select_nth_unstable_by_key(n - 1, |(t, _)| *t);
            ages.truncate(n);
        }
        for (_, key) in ages {
            self.stats.evicted += 1;
            self.complete(key, SeriesEnd::Evicted);
        }
    }
}
