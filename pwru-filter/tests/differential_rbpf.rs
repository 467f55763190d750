//! Every corpus expression x L2/L3 x Direct/ProbeRead (helper and kfunc-cast reads), run in the rbpf userspace VM on
//! template, truncated, mutated and random packets, must return exactly what libpcap's own
//! interpreter returns.

mod common;

use common::*;
use pwru_filter::{translate_with, CastIds, Layer, Mode, Options, ProbeAccess};

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
