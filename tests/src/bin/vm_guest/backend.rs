//! What the matrix needs to know about each of pwru-core's backends besides its identity
//! ([`pwru_core::Backend`]): the program kinds it attaches and the trivial programs' target.

use crate::probes::Kind;

pub use pwru_core::Backend;

/// Every concrete backend, in the order `Auto` tries them.
pub const ALL: [Backend; 4] = Backend::AUTO_ORDER;

/// Parses a concrete backend's name (any spelling `pwru_core::Backend` accepts; not `auto`).
pub fn parse(s: &str) -> Option<Backend> {
    s.parse().ok().filter(|b| *b != Backend::Auto)
}

/// The guest's test data of a backend.
pub trait MatrixBackend {
    /// The program kinds the backend attaches.
    fn kinds(self) -> &'static [Kind];
    /// The attach target used by the trivial programs: a function every received IPv4
    /// packet passes, or for tracepoints one every received packet hits.
    fn trivial_target(self) -> &'static str;
}

impl MatrixBackend for Backend {
    fn kinds(self) -> &'static [Kind] {
        match self {
            Backend::KprobeMulti => &[Kind::KprobeMulti],
            Backend::Kprobe => &[Kind::Kprobe, Kind::Kretprobe],
            Backend::Fentry => &[Kind::Fentry, Kind::Fexit],
            Backend::Tracepoint => &[Kind::TpBtf],
            // Auto (not a backend of its own: `parse` and `ALL` never give it) and backends
            // newer than the matrix have no kinds to check.
            _ => &[],
        }
    }

    fn trivial_target(self) -> &'static str {
        match self {
            Backend::Tracepoint => "netif_receive_skb",
            _ => "ip_rcv",
        }
    }
}
