//! Every scenario the guest knows, in the order they run.
//!
//! Add a scenario by writing its function in a module here and listing it in [`ALL`].
//! Scenarios that need the pwru-core `Tracer` are listed already, with a precondition that
//! skips them until they are written, so the matrix table shows what is still missing.

mod fires;
mod netns_pair;
mod pending;

use crate::backend::Backend;
use crate::registry::{always, Applies, Scenario};

const ALL_BACKENDS: &[Backend] = &Backend::ALL;
const SKB_BACKENDS: &[Backend] = &[Backend::KprobeMulti, Backend::Kprobe, Backend::Fentry];

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
    pending::scenario(
        "drop-reason-v4",
        "IPv4 drop by an nft rule shows the drop function, reason and tuple",
        SKB_BACKENDS,
    ),
    pending::scenario(
        "drop-reason-v6",
        "IPv6 drop by an nft rule shows the drop function, reason and tuple",
        SKB_BACKENDS,
    ),
    pending::scenario(
        "pcap-filter",
        "a complex pcap filter selects exactly the intended flow",
        SKB_BACKENDS,
    ),
    pending::scenario(
        "dnat-track-skb",
        "DNAT followed with track-skb shows the translated tuple",
        SKB_BACKENDS,
    ),
    pending::scenario(
        "arp-l2",
        "ARP seen at arp_rcv with an L2-only filter",
        SKB_BACKENDS,
    ),
    pending::scenario(
        "iface-netns-mark",
        "interface, netns and mark filters",
        SKB_BACKENDS,
    ),
    pending::scenario(
        "trace-tc",
        "fentry on a loaded tc program carries its name",
        &[Backend::Fentry],
    ),
    pending::scenario(
        "trace-xdp",
        "fentry/fexit on a loaded XDP program carries its name",
        &[Backend::Fentry],
    ),
    pending::scenario(
        "full-attach",
        "all discovered skb functions attach; times and counts printed",
        SKB_BACKENDS,
    ),
    pending::scenario(
        "sigkill-cleanup",
        "SIGKILL of the tracer leaves no programs, links or kprobes",
        SKB_BACKENDS,
    ),
];
