//! Every expression of pwru-filter's corpus, compiled for L2 and L3 and as tunnel L2/L3
//! filters, spliced into the object and verified by the kernel in the programs that load
//! here (tp_btf, raw_tp, kprobe and kprobe.multi program types).

mod loader_common;

use loader_common::*;
use pwru_core::loader::{FilterBody, Loader, LoaderOptions, TracepointFlavor};
use pwru_ebpf::*;
use pwru_filter::{compile_ebpf, corpus, dispatch, Layer, Mode};

/// Dispatch body with selectors 0..3 = pcap L2, pcap L3, tunnel L2, tunnel L3 of `expr`.
fn body(expr: &str) -> Result<FilterBody, String> {
    let l2 = compile_ebpf(expr, Layer::L2, Mode::ProbeRead).map_err(|e| e.to_string())?;
    let l3 = compile_ebpf(expr, Layer::L3, Mode::ProbeRead).map_err(|e| e.to_string())?;
    let d = dispatch(&[&l2.insns, &l3.insns, &l2.insns, &l3.insns]).map_err(|e| e.to_string())?;
    let bytes: Vec<u8> = d.iter().flat_map(|i| i.to_bytes()).collect();
    FilterBody::from_bytes(&bytes).map_err(|e| e.to_string())
}

#[test]
fn loader_corpus_filters_verify() {
    let name = "loader_corpus_filters_verify";
    if skip_without_tracepoints(name) {
        return;
    }
    let cfg = PwruConfig {
        flags: PWRU_CFG_FILTER_PCAP
            | PWRU_CFG_FILTER_TUNNEL_L2
            | PWRU_CFG_FILTER_TUNNEL_L3
            | PWRU_CFG_TRACK_SKB
            | PWRU_CFG_TRACK_HEAD
            | PWRU_CFG_OUTPUT_META
            | PWRU_CFG_OUTPUT_TUPLE
            | PWRU_CFG_OUTPUT_TUNNEL,
        ..Default::default()
    };
    let (mut verified, mut untranslatable) = (0, Vec::new());
    for expr in corpus::expressions() {
        let body = match body(&expr) {
            Ok(b) => b,
            Err(e) => {
                // pwru-filter's own tests cover refusals; here only spliceable bodies count.
                untranslatable.push(format!("{expr:.40}: {e:.80}"));
                continue;
            }
        };
        let mut l = Loader::new(OBJECT, &body, &cfg, &LoaderOptions::default())
            .unwrap_or_else(|e| panic!("{expr:.60}: {e}"));
        for flavor in [TracepointFlavor::Btf, TracepointFlavor::Raw] {
            if let Err(e) = l.load_tracepoint("kfree_skb", flavor) {
                panic!("{expr:.60}: {flavor:?} kfree_skb refused: {e}");
            }
        }
        if let Err(e) = l.load_kprobe_program("kprobe_skb_1", &[]) {
            panic!("{expr:.60}: kprobe_skb_1 refused: {e}");
        }
        if let Err(e) = l.verify_kprobe_multi("kprobe_multi_skb_1") {
            panic!("{expr:.60}: kprobe_multi_skb_1 refused: {e}");
        }
        verified += 1;
    }
    println!("{name}: {verified} corpus filters verified in 4 program types (L2, L3, tunnel L2, tunnel L3)");
    if !untranslatable.is_empty() {
        println!("{name}: not translatable by pwru-filter (not spliced): {untranslatable:?}");
    }
    assert!(verified > 50, "too few corpus filters verified: {verified}");
}
