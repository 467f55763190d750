//! Following packets: events grouped into one [`Series`] per packet (hops in time order, the
//! time between hops, what changed at each hop, how it ended, where lost records fell), and
//! completed series folded into distinct [`Path`]s with latency percentiles.
//!
//! - [`Grouper`]: the push API (feed events and loss notices, take completed series), with no
//!   kernel or runtime; [`SeriesStream`] wraps a session's stream with it.
//! - [`PathAggregator`]: paths with packet counts and per-hop p50/p90/p99
//!   ([`LatencyHistogram`]: log buckets, bounded memory).
//!
//! Identity: events are grouped by [`Event::packet_id`](crate::Event::packet_id) when the
//! kernel side assigned one; otherwise by skb address, a weak identity
//! ([`PacketKey::Skb`]) that the kernel's reuse of addresses can confuse.
//!
//! Lost records ([`Item::Lost`](crate::Item::Lost)) cannot be assigned to a packet: every
//! series open when the loss was noticed gets a [`Gap`] ("possibly affected"); series that
//! start afterwards are clean.
//!
//! All state is bounded: open series ([`SeriesOptions::max_in_flight`], evictions counted),
//! hops per series ([`SeriesOptions::max_hops`]), distinct paths
//! ([`PathOptions::max_paths`], the rest counted).

mod fast_hash;
mod group;
mod histogram;
mod hop;
mod paths;
mod stream;

pub use group::{Gap, Grouper, PacketKey, Series, SeriesEnd, SeriesOptions, SeriesStats};
pub use histogram::LatencyHistogram;
pub use hop::{diff, Change, Endpoint, Hop, HopState};
pub use paths::{Path, PathAggregator, PathOptions};
pub use stream::SeriesStream;

#[cfg(test)]
mod tests;
