//! Every corpus expression x L2/L3 x Direct/ProbeRead (helper and kfunc-cast reads), run in the rbpf userspace VM on
//! template, truncated, mutated and random packets, must return exactly what libpcap's own
//! interpreter returns.

mod common;

use common::*;
use pwru_filter::{
    dispatch_with_skb_entry, translate_with, CastIds, Layer, Mode, Options, ProbeAccess, SkbEntry,
    SkbFields,
};
use pwru_testkit::rbpf_vm::RbpfSkbEntry;

#[test]
fn rbpf_agrees_with_libpcap_on_the_corpus() {
    let corpus = compiled_corpus();
    let mut comparisons = 0u64;
    let mut mismatches = Vec::new();
    let mut mismatch_count = 0u64;
    for layer in [Layer::L2, Layer::L3] {
        let packets = packets(layer, 6, 40, 0x5eed_0001);
        for (expr, l2, l3) in corpus {
            let cbpf = if layer == Layer::L2 { l2 } else { l3 };
            // ProbeRead also with a small header buffer, so loads on both sides of its end
            // (bulk copy and per-load reads) occur on these packets.
            let small = Options {
                probe_buffer_max: 40,
                probe_buffer_indirect: 24,
                ..Options::default()
            };
            // The kfunc-cast scheme, with made-up BTF ids: the VM runs the call as the
            // verifier rewrites it (r0 = r1), so the ids do not matter here.
            let cast = Options::with_access(ProbeAccess::Cast(CastIds {
                rdonly_cast: 1000,
                target: 2000,
            }));
            for (mode, opts) in [
                (Mode::Direct, Options::default()),
                (Mode::ProbeRead, Options::default()),
                (Mode::ProbeRead, small),
                (Mode::ProbeRead, cast),
            ] {
                let b = translate_with(cbpf.insns(), mode, &opts)
                    .unwrap_or_else(|e| panic!("{} {layer:?} {mode:?}: {e}", short(expr)));
                let vm = RbpfFilter::new(&b);
                for p in &packets {
                    let want = cbpf
                        .run_libpcap(p)
                        .expect("libpcap accepts its own program");
                    let got = vm.run(p);
                    comparisons += 1;
                    if got != Ok(want as u64) {
                        mismatch_count += 1;
                    }
                    if got != Ok(want as u64) && mismatches.len() < 20 {
                        mismatches.push(format!(
                            "{} {layer:?} {mode:?} {opts:?} packet {p:02x?}: libpcap {want}, rbpf {got:?}",
                            short(expr)
                        ));
                    }
                }
            }
        }
    }
    println!("ORACLE rbpf: {comparisons} comparisons, {mismatch_count} mismatches");
    assert!(
        mismatches.is_empty(),
        "mismatches:\n{}",
        mismatches.join("\n")
    );
}

/// The skb entry of a dispatch body (`dispatch_with_skb_entry`) reads a made-up skb's header
/// fields and runs the L2 filter when the MAC header is set, the L3 one when it is not: on
/// every corpus expression and packet it must return what libpcap returns for that layer.
#[test]
fn the_skb_entry_agrees_with_libpcap_on_the_corpus() {
    // Made-up ids (the VM runs the cast as r0 = r1) and offsets shaped like a real sk_buff's
    // (the header offsets before tail and head, head 8-aligned).
    let fields = SkbFields {
        rdonly_cast: 1000,
        sk_buff: 3000,
        head: 200,
        tail: 188,
        mac_header: 182,
        network_header: 180,
    };
    let selector = 14;
    let corpus = compiled_corpus();
    let (mut comparisons, mut mismatch_count, mut mismatches) = (0u64, 0u64, Vec::new());
    let ids = CastIds {
        rdonly_cast: 1000,
        target: 2000,
    };
    let l2_packets = packets(Layer::L2, 1, 5, 0x5eed_0002);
    let l3_packets = packets(Layer::L3, 1, 5, 0x5eed_0003);
    // Cast bodies only: pwru-core puts the entry in front of no other kind.
    let access = ProbeAccess::Cast(ids);
    let opts = Options::with_access(access);
    for (expr, l2, l3) in corpus {
        let t2 = translate_with(l2.insns(), Mode::ProbeRead, &opts)
            .unwrap_or_else(|e| panic!("{} L2: {e}", short(expr)));
        let t3 = translate_with(l3.insns(), Mode::ProbeRead, &opts)
            .unwrap_or_else(|e| panic!("{} L3: {e}", short(expr)));
        // As pwru-core lays it out: pcap L2, pcap L3, then two more filters.
        let entry = SkbEntry {
            selector,
            fields,
            l2: 0,
            l3: 1,
        };
        let body = dispatch_with_skb_entry(&[&t2, &t3, &t2, &t3], &entry)
            .unwrap_or_else(|e| panic!("{}: {e}", short(expr)));
        let vm = RbpfSkbEntry::new(&body, selector, fields);
        for (layer, cbpf, mac_set, packets) in [
            (Layer::L2, l2, true, &l2_packets),
            (Layer::L3, l3, false, &l3_packets),
        ] {
            for p in packets {
                let want = cbpf
                    .run_libpcap(p)
                    .expect("libpcap accepts its own program");
                let got = vm.run(p, mac_set);
                comparisons += 1;
                if got != Ok(want as u64) {
                    mismatch_count += 1;
                }
                if got != Ok(want as u64) && mismatches.len() < 20 {
                    mismatches.push(format!(
                        "{} {layer:?} {access:?} packet {p:02x?}: libpcap {want}, rbpf {got:?}",
                        short(expr)
                    ));
                }
            }
        }
    }
    println!("ORACLE rbpf skb entry: {comparisons} comparisons, {mismatch_count} mismatches");
    assert!(comparisons > 10_000, "too few comparisons: {comparisons}");
    assert!(
        mismatches.is_empty(),
        "mismatches:\n{}",
        mismatches.join("\n")
    );
}
