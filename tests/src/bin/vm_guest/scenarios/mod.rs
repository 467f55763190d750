//! Every scenario the guest knows, in the order they run.
//!
//! Add a scenario by writing its function in a module here and listing it in [`ALL`].
//! Scenarios from `auto-backend` on drive the pwru-core `Tracer` through its public API.

mod arp_l2;
mod attach_speed;
mod auto_backend;
mod bpf_helpers;
mod bpfmap;
mod detach_lab;
mod dnat_track;
mod drop_reason;
mod expressions;
mod fires;
mod first_event;
mod ftrace_sites;
mod full_attach;
mod meta_filters;
mod netns_pair;
mod non_skb;
mod overhead;
mod packet_bytes;
mod packet_id;
mod pcap_filter;
mod run_accounting;
mod series_dnat;
mod series_gap;
mod side_by_side;
pub mod sigkill_cleanup;
pub mod sigkill_trivial;
mod stacks;
mod trace_prog;
mod tracer_kit;
mod track_lifetime;
mod traffic;

use crate::backend::Backend;
use crate::registry::{always, Applies, Scenario};

const ALL_BACKENDS: &[Backend] = &crate::backend::ALL;
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
    Scenario {
        name: "auto-backend",
        about: "Backend::Auto picks the first backend the capability probe accepts (kprobe on 6.1)",
        applies: Applies::Once,
        precondition: always,
        run: auto_backend::run,
    },
    Scenario {
        name: "drop-reason-v4",
        about: "IPv4 drop by an nft rule shows the drop function, reason and tuple",
        applies: SKB,
        precondition: always,
        run: drop_reason::run_v4,
    },
    Scenario {
        name: "drop-reason-v6",
        about: "IPv6 drop by an nft rule shows the drop function, reason and tuple",
        applies: SKB,
        precondition: always,
        run: drop_reason::run_v6,
    },
    Scenario {
        name: "pcap-filter",
        about: "a complex pcap filter selects exactly the intended flow",
        applies: SKB,
        precondition: always,
        run: pcap_filter::run,
    },
    Scenario {
        name: "dnat-track-skb",
        about: "DNAT followed with track-skb shows the translated tuple",
        applies: SKB,
        precondition: always,
        run: dnat_track::run,
    },
    Scenario {
        name: "series-dnat",
        about: "each packet is one series ending in its drop; a DNAT shows on the first hop after the NAT functions",
        applies: SKB,
        precondition: always,
        run: series_dnat::run,
    },
    Scenario {
        name: "series-gap",
        about: "a one-page ring overflows: the loss is reported, marked in series open then, not in one started after",
        applies: SKB,
        precondition: always,
        run: series_gap::run,
    },
    Scenario {
        name: "track-clone-outlives",
        about: "a clone (AF_PACKET capture) read after its tracked original was freed stays tracked",
        applies: SKB,
        precondition: always,
        run: track_lifetime::run_clone,
    },
    Scenario {
        name: "track-addr-reuse",
        about: "packets reusing a freed tracked skb or head address are not shown as tracked",
        applies: SKB,
        precondition: always,
        run: track_lifetime::run_reuse,
    },
    Scenario {
        name: "packet-id",
        about: "packet ids: one id to the drop, a capture clone linked to its parent, new ids on address reuse",
        applies: SKB,
        precondition: always,
        run: packet_id::run,
    },
    Scenario {
        name: "non-skb-stackid",
        about: "a non-skb function (sock_def_readable) is shown for the packet on the same stack",
        applies: SKB,
        precondition: always,
        run: non_skb::run,
    },
    Scenario {
        name: "arp-l2",
        about: "ARP seen at arp_rcv with an L2-only filter",
        applies: SKB,
        precondition: always,
        run: arp_l2::run,
    },
    Scenario {
        name: "iface-netns-mark",
        about: "interface, netns and mark filters",
        applies: SKB,
        precondition: always,
        run: meta_filters::run,
    },
    Scenario {
        name: "packet-bytes",
        about: "captured packet bytes parse back to each event's tuple, Ethernet and raw IP",
        applies: SKB,
        precondition: always,
        run: packet_bytes::run,
    },
    Scenario {
        name: "trace-tc",
        about: "fentry on a loaded tc program carries its name",
        applies: FENTRY,
        precondition: always,
        run: trace_prog::run_tc,
    },
    Scenario {
        name: "trace-xdp",
        about: "fentry/fexit on a loaded XDP program carries its name",
        applies: FENTRY,
        precondition: always,
        run: trace_prog::run_xdp,
    },
    Scenario {
        name: "expressions",
        about: "skb and xdp expressions filter and read metadata (xdp ones on fentry only)",
        applies: SKB,
        precondition: always,
        run: expressions::run,
    },
    Scenario {
        name: "track-bpf-helpers",
        about: "map functions a tc program calls are found, traced and linked to its packet",
        applies: SKB,
        precondition: always,
        run: bpf_helpers::run,
    },
    Scenario {
        name: "bpfmap",
        about: "map operations of a tc program: id, name, key and value as the map holds them",
        applies: SKB,
        precondition: always,
        run: bpfmap::run,
    },
    Scenario {
        name: "sigkill-cleanup",
        about: "SIGKILL of the tracer leaves no programs, links or kprobes",
        applies: SKB,
        precondition: always,
        run: sigkill_cleanup::run,
    },
    Scenario {
        name: "ftrace-sites",
        about: "functions whose code begins with an ftrace site (ksym iterator) are tracefs' traceable list",
        applies: Applies::Once,
        precondition: always,
        run: ftrace_sites::run,
    },
    Scenario {
        name: "full-attach",
        about: "all discovered skb functions attach; times, counts, UDP rate and idle CPU printed",
        applies: SKB,
        precondition: full_attach::precondition,
        run: full_attach::run,
    },
    Scenario {
        name: "attach-speed",
        about: "a few hundred skb functions attached/detached with 2 threads and 1; first event while attaching",
        applies: SKB,
        precondition: attach_speed::precondition,
        run: attach_speed::run,
    },
    Scenario {
        name: "first-event",
        about: "whole set attached in the background with traffic running: first event in user space, then a stop mid-attach accounts every target and leaves nothing",
        applies: SKB,
        precondition: always,
        run: first_event::run,
    },
    Scenario {
        name: "detach-lab",
        about: "kprobe/fentry attach and detach of the attach-speed functions on 1..64 threads, ioctl vs perf link (raw syscalls)",
        applies: Applies::Backends(&[Backend::Kprobe, Backend::Fentry]),
        precondition: detach_lab::precondition,
        run: detach_lab::run,
    },
    Scenario {
        name: "overhead",
        about: "UDP pkt/s with nothing, an empty program, and pwru-rs (filter matching nothing) on the same functions",
        applies: SKB,
        precondition: overhead::precondition,
        run: overhead::run,
    },
    Scenario {
        name: "run-accounting",
        about: "UDP flood from both CPUs, no filter: kernel runs == sum of outcomes, read + lost == built, no check-word mismatch",
        applies: Applies::Backends(ALL_BACKENDS),
        precondition: always,
        run: run_accounting::run,
    },
    Scenario {
        name: "stacks",
        about: "stacks and callers captured: none starts in the BPF program, trampoline or dispatch glue",
        applies: Applies::Backends(ALL_BACKENDS),
        precondition: always,
        run: stacks::run,
    },
    Scenario {
        name: "side-by-side",
        about: "Auto backend: start->attached with 200 OR'd hosts; unfiltered flood delivery",
        applies: Applies::Once,
        precondition: always,
        run: side_by_side::run,
    },
];
