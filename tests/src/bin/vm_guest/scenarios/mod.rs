//! Every scenario the guest knows, in the order they run.
//!
//! Add a scenario by writing its function in a module here and listing it in [`ALL`].
//! Scenarios that need the pwru-core `Tracer` are listed already, with a precondition that
//! skips them until they are written, so the matrix table shows what is still missing.

mod fires;
mod netns_pair;
mod pending;
pub mod sigkill_trivial;

use crate::backend::Backend;
use crate::registry::{always, Applies, Scenario};

const ALL_BACKENDS: &[Backend] = &Backend::ALL;
/// The backends that trace skb functions (the tracepoint backend has a fixed set instead).
const SKB: Applies = Applies::Backends(&[Backend::KprobeMulti, Backend::Kprobe, Backend::Fentry]);
const FENTRY: Applies = Applies::Backends(&[Backend::Fentry]);

/// The registry.
pub const ALL: &[Scenario] = &[
    Scenario {
        name: "netns-pair",
        about: "two netns joined by veth pass IPv4 and IPv6 pings (the base of packet scenarios)",
        applies: Applies::Once,
        precondition: always,
        run: netns_pair::run,
    },
    Scenario {
        name: "fires",
        about: "trivial programs of the backend's kinds count veth traffic between two netns",
        applies: Applies::Backends(ALL_BACKENDS),
        precondition: always,
        run: fires::run,
    },
    Scenario {
        name: "sigkill-trivial",
        about: "SIGKILL of a process holding the backend's programs leaves no program, map, link or kprobe",
        applies: Applies::Backends(ALL_BACKENDS),
        precondition: always,
        run: sigkill_trivial::run,
    },
    pending::scenario(
        "auto-backend",
        "Backend::Auto picks the first backend the capability probe accepts (kprobe on 6.1)",
        Applies::Once,
    ),
    pending::scenario(
        "drop-reason-v4",
        "IPv4 drop by an nft rule shows the drop function, reason and tuple",
        SKB,
    ),
    pending::scenario(
        "drop-reason-v6",
        "IPv6 drop by an nft rule shows the drop function, reason and tuple",
        SKB,
    ),
    pending::scenario(
        "pcap-filter",
        "a complex pcap filter selects exactly the intended flow",
        SKB,
    ),
    pending::scenario(
        "dnat-track-skb",
        "DNAT followed with track-skb shows the translated tuple",
        SKB,
    ),
    pending::scenario("arp-l2", "ARP seen at arp_rcv with an L2-only filter", SKB),
    pending::scenario("iface-netns-mark", "interface, netns and mark filters", SKB),
    pending::scenario(
        "trace-tc",
        "fentry on a loaded tc program carries its name",
        FENTRY,
    ),
    pending::scenario(
        "trace-xdp",
        "fentry/fexit on a loaded XDP program carries its name",
        FENTRY,
    ),
    pending::scenario(
        "full-attach",
        "all discovered skb functions attach; times and counts printed",
        SKB,
    ),
    pending::scenario(
        "sigkill-cleanup",
        "SIGKILL of the tracer leaves no programs, links or kprobes",
        SKB,
    ),
];
