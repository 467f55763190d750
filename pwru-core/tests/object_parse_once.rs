//! A loader parses the BPF object once: loading programs of every kind the host allows
//! (tp_btf, raw_tp, kprobe, kprobe.multi verification), attaching the tracepoints, taking the
//! maps and seeing a packet through both tracepoints costs exactly one parse.

mod loader_common;

use std::time::{Duration, Instant};

use loader_common::*;
use pwru_core::backend::TracepointFlavor;
use pwru_core::object::{object_parses, Loader, LoaderOptions};
use pwru_ebpf::*;

const CLOSED_PORT: u16 = 33_341;

#[test]
fn a_loader_parses_its_object_once() {
    let name = "a_loader_parses_its_object_once";
    if skip_without_tracepoints(name) {
        return;
    }
    let pair = lab("o", 31);
    let netns_b = inode(&pair.ns_b);
    let before = object_parses();
    let mut loader = Loader::new(
        OBJECT,
        &body_udp_dport(CLOSED_PORT),
        &PwruConfig {
            flags: PWRU_CFG_FILTER_NETNS | PWRU_CFG_FILTER_PCAP | PWRU_CFG_OUTPUT_META,
            netns: netns_b,
            ..Default::default()
        },
        &LoaderOptions::default(),
    )
    .expect("loader");
    assert_eq!(object_parses() - before, 1, "Loader::new parses once");

    let _btf = loader
        .load_tracepoint("kfree_skb", TracepointFlavor::Btf)
        .expect("tp_btf kfree_skb");
    let _raw = loader
        .load_tracepoint("kfree_skb", TracepointFlavor::Raw)
        .expect("raw_tp kfree_skb");
    // Loaded (verified) without attaching: the host has no kprobes to attach to.
    let no_links = loader
        .load_kprobe_program(program::KPROBE_SKB[0], &[])
        .expect("kprobe program load");
    assert!(no_links.is_empty());
    let stats = loader
        .program_stats(program::KPROBE_SKB[0])
        .expect("kprobe program stats");
    assert!(stats.verified_insns > 0, "{stats:?}");
    let multi = loader
        .verify_kprobe_multi(program::KPROBE_MULTI_SKB[0])
        .expect("kprobe.multi verification");
    assert!(multi.verified_insns > 0, "{multi:?}");
    let mut ring = loader.take_events().expect("ring buffer");
    let lost = loader.take_lost().expect("run counters");
    let _nesting = loader.take_nesting().expect("nesting counter");
    let _stacks = loader.take_map(MAP_STACKS).expect("stack map");

    // One drop, seen by both tracepoint programs: each kind arrives once.
    send_udp(&pair, CLOSED_PORT, 1);
    let mut kinds = Vec::new();
    while kinds.len() < 2 {
        let Some(rec) = next_record(&mut ring, Instant::now() + Duration::from_secs(2)) else {
            break;
        };
        if let Some((_, ev)) = decode(&rec) {
            kinds.push(ev.kind);
        }
    }
    kinds.sort_unstable();
    let mut want = vec![PWRU_KIND_TRACEPOINT, PWRU_KIND_RAW_TRACEPOINT];
    want.sort_unstable();
    assert_eq!(kinds, want, "one event from each tracepoint program");
    assert_eq!(lost.total().expect("lost"), 0);
    assert_eq!(
        object_parses() - before,
        1,
        "loading, attaching and reading parsed the object again"
    );
}
