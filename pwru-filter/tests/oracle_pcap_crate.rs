//! Ties this crate's libpcap oracle to the `pcap` crate's `BpfProgram::filter`: for every corpus
//! expression and layer, the `pcap` crate compiles the same instructions (it passes netmask 0,
//! which only matters for `broadcast`, absent from the corpus, and snaplen 65535, which only
//! changes the value an accepting `ret` returns) and its interpreter gives the
//! same verdict as `Cbpf::run_libpcap` on every test packet.

mod common;

use common::*;
use pwru_filter::libpcap::with_compile_lock;
use pwru_filter::Layer;

#[test]
fn pcap_crate_filter_agrees_with_our_libpcap_oracle() {
    let mut comparisons = 0u64;
    for layer in [Layer::L2, Layer::L3] {
        let packets = packets(layer, 2, 10, 0x5eed_0004);
        let dead = pcap::Capture::dead(pcap::Linktype(layer.dlt())).expect("dead capture handle");
        for (expr, l2, l3) in compiled_corpus() {
            let ours = if layer == Layer::L2 { l2 } else { l3 };
            if ours.reject_reason().is_some() && ours.insns().len() == 1 {
                continue; // our documented reject-all; libpcap itself refuses the expression
            }
            let theirs =
                with_compile_lock(|| dead.compile(expr, true)).expect("pcap crate compiles");
            // The pcap crate opens its dead handle with snaplen 65535, we use 262144 (as
            // tcpdump and pwru): only the value of an accepting `ret` differs.
            let text: Vec<String> = theirs
                .get_instructions()
                .iter()
                .map(|i| i.to_string().replace("6 0 0 65535", "6 0 0 262144"))
                .collect();
            let mine: Vec<String> = ours
                .insns()
                .iter()
                .map(|i| format!("{} {} {} {}", i.code, i.jt, i.jf, i.k))
                .collect();
            assert_eq!(text, mine, "{} {layer:?}: same instructions", short(expr));
            for p in &packets {
                let verdict = theirs.filter(p);
                assert_eq!(
                    verdict,
                    ours.run_libpcap(p) != Some(0),
                    "{} {layer:?} {p:02x?}",
                    short(expr)
                );
                comparisons += 1;
            }
        }
    }
    println!("ORACLE pcap-crate BpfProgram::filter vs bpf_filter: {comparisons} comparisons, 0 mismatches");
}
