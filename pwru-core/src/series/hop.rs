//! One hop of a packet's series (a function it went through) and what changed since the hop
//! before: namespace, interface, mark, length, addresses and ports.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use crate::event::{DropReason, Event, Interface, ProbeKind, Tuple};

/// What a packet looked like at one hop: the fields compared between hops. A field the event
/// did not capture (no meta, no tuple) is `None` and never reported as a change.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct HopState {
    /// Network namespace inode (meta).
    pub netns: Option<u32>,
    /// The device (meta).
    pub interface: Option<Interface>,
    /// `skb->mark` (meta).
    pub mark: Option<u32>,
    /// `skb->len` (meta).
    pub len: Option<u32>,
    /// The outer tuple, when one was parsed.
    pub tuple: Option<Tuple>,
}

impl HopState {
    /// The compared fields of `ev`.
    pub fn of(ev: &Event) -> HopState {
        let meta = ev.meta.as_ref();
        HopState {
            netns: meta.map(|m| m.netns),
            interface: meta.map(|m| m.interface.clone()),
            mark: meta.map(|m| m.mark),
            len: meta.map(|m| m.len),
            // A tuple without addresses (not IP) says nothing to compare.
            tuple: ev.tuple.filter(|t| t.src.is_some() && t.dst.is_some()),
        }
    }
}

/// An address and port, as a change shows them (`10.0.0.2:9`, `[fd00::2]:9`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Endpoint {
    /// The address.
    pub addr: Option<IpAddr>,
    /// The port (0 when the protocol has none).
    pub port: u16,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addr {
            Some(IpAddr::V6(a)) => write!(f, "[{a}]:{}", self.port),
            Some(IpAddr::V4(a)) => write!(f, "{a}:{}", self.port),
            None => write!(f, "?:{}", self.port),
        }
    }
}

/// One difference between a hop and the hop before it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// The packet moved to another network namespace (inodes).
    Netns {
        /// Before.
        from: u32,
        /// After.
        to: u32,
    },
    /// The packet's device changed.
    Interface {
        /// Before.
        from: Interface,
        /// After.
        to: Interface,
    },
    /// `skb->mark` changed.
    Mark {
        /// Before.
        from: u32,
        /// After.
        to: u32,
    },
    /// `skb->len` changed (headers pushed or pulled, encapsulation, trimming).
    Len {
        /// Before.
        from: u32,
        /// After.
        to: u32,
    },
    /// Source address or port rewritten (SNAT/masquerade, or a tunnel's outer header).
    Source {
        /// Before.
        from: Endpoint,
        /// After.
        to: Endpoint,
    },
    /// Destination address or port rewritten (DNAT, or a tunnel's outer header).
    Destination {
        /// Before.
        from: Endpoint,
        /// After.
        to: Endpoint,
    },
    /// The L4 protocol changed (encapsulation or decapsulation).
    Protocol {
        /// Before (IP protocol number).
        from: u8,
        /// After.
        to: u8,
    },
}

impl fmt::Display for Change {
    /// Short and readable, e.g. `DNAT rewrote dst 10.0.0.2:9 -> 10.0.0.3:9`, `len 98 -> 84`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Netns { from, to } => write!(f, "netns {from} -> {to}"),
            Change::Interface { from, to } => write!(f, "dev {from} -> {to}"),
            Change::Mark { from, to } => write!(f, "mark {from:#x} -> {to:#x}"),
            Change::Len { from, to } => write!(f, "len {from} -> {to}"),
            Change::Source { from, to } => write!(f, "SNAT rewrote src {from} -> {to}"),
            Change::Destination { from, to } => write!(f, "DNAT rewrote dst {from} -> {to}"),
            Change::Protocol { from, to } => write!(f, "l4 protocol {from} -> {to}"),
        }
    }
}

impl Change {
    /// A short name of the kind of change, stable for JSON: `netns`, `dev`, `mark`, `len`,
    /// `src`, `dst`, `proto`.
    pub fn field(&self) -> &'static str {
        match self {
            Change::Netns { .. } => "netns",
            Change::Interface { .. } => "dev",
            Change::Mark { .. } => "mark",
            Change::Len { .. } => "len",
            Change::Source { .. } => "src",
            Change::Destination { .. } => "dst",
            Change::Protocol { .. } => "proto",
        }
    }
}

/// Appends to `out` what differs from `before` to `after` (fields missing on either side are
/// not compared).
pub fn diff(before: &HopState, after: &HopState, out: &mut Vec<Change>) {
    if let (Some(from), Some(to)) = (before.netns, after.netns) {
        if from != to {
            out.push(Change::Netns { from, to });
        }
    }
    if let (Some(from), Some(to)) = (&before.interface, &after.interface) {
        // Names are resolved per namespace and may be missing on one side: compare indexes.
        if from.ifindex != to.ifindex {
            out.push(Change::Interface {
                from: from.clone(),
                to: to.clone(),
            });
        }
    }
    if let (Some(from), Some(to)) = (before.mark, after.mark) {
        if from != to {
            out.push(Change::Mark { from, to });
        }
    }
    if let (Some(from), Some(to)) = (before.len, after.len) {
        if from != to {
            out.push(Change::Len { from, to });
        }
    }
    if let (Some(a), Some(b)) = (&before.tuple, &after.tuple) {
        if a.l4_proto != b.l4_proto {
            out.push(Change::Protocol {
                from: a.l4_proto,
                to: b.l4_proto,
            });
            // Different headers: addresses are not comparable as a rewrite.
            return;
        }
        let (sa, sb) = (
            Endpoint {
                addr: a.src,
                port: a.sport,
            },
            Endpoint {
                addr: b.src,
                port: b.sport,
            },
        );
        if sa != sb {
            out.push(Change::Source { from: sa, to: sb });
        }
        let (da, db) = (
            Endpoint {
                addr: a.dst,
                port: a.dport,
            },
            Endpoint {
                addr: b.dst,
                port: b.dport,
            },
        );
        if da != db {
            out.push(Change::Destination { from: da, to: db });
        }
    }
}

/// One function a packet went through.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Hop {
    /// The function or tracepoint.
    pub function: Arc<str>,
    /// What kind of probe saw it.
    pub kind: ProbeKind,
    /// Kernel monotonic time (ns), as [`Event::timestamp_ns`].
    pub timestamp_ns: u64,
    /// Time since the previous hop (0 for the first).
    pub delta_ns: u64,
    /// CPU.
    pub cpu: u32,
    /// The drop reason, when this hop dropped the packet.
    pub drop_reason: Option<DropReason>,
    /// The compared fields at this hop.
    pub state: HopState,
    /// What changed since the previous hop (filled when the series completes).
    pub changes: Vec<Change>,
}

impl Hop {
    /// The hop of one event (no delta or changes yet).
    pub fn of(ev: &Event) -> Hop {
        Hop {
            function: ev.function.clone(),
            kind: ev.kind,
            timestamp_ns: ev.timestamp_ns,
            delta_ns: 0,
            cpu: ev.cpu,
            drop_reason: ev.drop_reason.clone(),
            state: HopState::of(ev),
            changes: Vec::new(),
        }
    }
}

/// Fills `delta_ns` and `changes` of hops already sorted by time. A field a hop did not
/// capture is compared at the next hop that did, against the last hop that did.
pub(crate) fn fill_deltas_and_changes(hops: &mut [Hop]) {
    let Some(first) = hops.first() else {
        return;
    };
    let mut known = first.state.clone();
    let mut prev_ts = first.timestamp_ns;
    for hop in hops.iter_mut().skip(1) {
        hop.delta_ns = hop.timestamp_ns.saturating_sub(prev_ts);
        prev_ts = hop.timestamp_ns;
        hop.changes.clear();
        diff(&known, &hop.state, &mut hop.changes);
        let s = &hop.state;
        known.netns = s.netns.or(known.netns);
        if s.interface.is_some() {
            known.interface.clone_from(&s.interface);
        }
        known.mark = s.mark.or(known.mark);
        known.len = s.len.or(known.len);
        known.tuple = s.tuple.or(known.tuple);
    }
}
