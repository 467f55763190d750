//! This crate against the `pcap` crate. For every corpus expression and layer, the `pcap` crate
//! compiles the same instructions (it passes netmask 0, which only matters for `broadcast`,
//! absent from the corpus, and snaplen 65535, which only changes the value an accepting `ret`
//! returns) and its interpreter (`BpfProgram::filter`) gives the same verdict as the tests'
//! oracle (`pwru_testkit::pcap_interp`, libpcap's `bpf_filter` called directly) on every test packet.
//!
//! The `pcap_crate_*` tests pin the two differences that keep `pwru_filter::libpcap` calling
//! `pcap_open_dead` and `pcap_compile` itself: when a `pcap` crate version changes them, the
//! test fails and those externs can be replaced by the crate.

mod common;

use common::*;
use pwru_filter::libpcap::with_compile_lock;
use pwru_filter::{compile, compile_whole, CbpfInsn, Layer};

/// What libpcap says for `ip broadcast` when the netmask is `PCAP_NETMASK_UNKNOWN`, as pwru
/// compiles its filters (and tcpdump whenever it knows no netmask).
const BROADCAST_REFUSAL: &str = "netmask not known, so 'ip broadcast' not supported";

fn crate_compile(expr: &str, layer: Layer) -> Result<pcap::BpfProgram, pcap::Error> {
    let dead = pcap::Capture::dead(pcap::Linktype(layer.dlt()))?;
    with_compile_lock(|| dead.compile(expr, true))
}

fn crate_instructions(expr: &str, layer: Layer) -> Result<Vec<String>, pcap::Error> {
    Ok(crate_compile(expr, layer)?
        .get_instructions()
        .iter()
        .map(|i| i.to_string())
        .collect())
}

/// A minimal IPv4 packet to `dst` (behind an Ethernet header for L2).
fn ipv4_to(dst: [u8; 4], layer: Layer) -> Vec<u8> {
    let mut p = Vec::new();
    if layer == Layer::L2 {
        p.extend_from_slice(&[0xff; 6]);
        p.extend_from_slice(&[2, 0, 0, 0, 0, 1]);
        p.extend_from_slice(&0x0800u16.to_be_bytes());
    }
    p.extend_from_slice(&[0x45, 0, 0, 20, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1]);
    p.extend_from_slice(&dst);
    p
}

/// Why pwru-filter calls `pcap_compile` itself: the crate's `Capture::compile` passes netmask 0,
/// so it compiles `ip broadcast` into a test, where pwru refuses the expression.
#[test]
fn pcap_crate_compiles_ip_broadcast_that_pwru_filter_refuses_as_pwru() {
    for layer in [Layer::L2, Layer::L3] {
        let theirs = crate_compile("ip broadcast", layer);
        let Ok(theirs) = theirs else {
            panic!(
                "{layer:?}: the pcap crate no longer compiles `ip broadcast` ({:?}); if it now \
                 passes PCAP_NETMASK_UNKNOWN, pwru_filter::libpcap can use Capture::compile",
                theirs.err()
            );
        };
        // With netmask 0 the "broadcast address" is 0.0.0.0 or 255.255.255.255.
        for (dst, want) in [([255; 4], true), ([0; 4], true), ([10, 0, 0, 255], false)] {
            let packet = ipv4_to(dst, layer);
            assert_eq!(theirs.filter(&packet), want, "{layer:?} to {dst:?}");
        }
        let ours = compile("ip broadcast", layer).expect_err("libpcap refuses `ip broadcast`");
        assert!(
            ours.to_string().contains(BROADCAST_REFUSAL),
            "{layer:?}: {ours}"
        );
    }
    // `ether broadcast` needs no netmask: both compile it, to the same program.
    let ether = compile("ether broadcast", Layer::L2).expect("ether broadcast compiles");
    let text: Vec<String> = ether
        .insns()
        .iter()
        .map(|i| format!("{} {} {} {}", i.code, i.jt, i.jf, i.k))
        .collect();
    let theirs = crate_instructions("ether broadcast", Layer::L2).expect("pcap crate");
    assert_eq!(
        theirs
            .iter()
            .map(|t| t.replace("6 0 0 65535", "6 0 0 262144"))
            .collect::<Vec<_>>(),
        text
    );
}

/// Why pwru-filter calls `pcap_open_dead` itself: the crate's `Capture::dead` fixes the snapshot
/// length at 65535, the value an accepting program returns; pwru and tcpdump return 262144.
#[test]
fn pcap_crate_dead_handle_accepts_with_65535_where_pwru_returns_262144() {
    for layer in [Layer::L2, Layer::L3] {
        let theirs = crate_instructions("", layer).expect("pcap crate compiles the empty filter");
        assert_eq!(
            theirs,
            ["6 0 0 65535"],
            "{layer:?}: the pcap crate's dead handle changed its snapshot length; if it is now \
             262144 (or settable), pwru_filter::libpcap can use Capture::dead"
        );
        let ours = compile("", layer).expect("the empty filter compiles");
        assert_eq!(
            ours.insns(),
            &[CbpfInsn::new(0x06, 0, 0, 262_144)],
            "{layer:?}"
        );
    }
}

#[test]
fn pcap_crate_filter_agrees_with_our_libpcap_oracle() {
    let mut comparisons = 0u64;
    for layer in [Layer::L2, Layer::L3] {
        let packets = packets(layer, 2, 10, 0x5eed_0004);
        let dead = pcap::Capture::dead(pcap::Linktype(layer.dlt())).expect("dead capture handle");
        for (expr, _, _) in compiled_corpus() {
            // libpcap's program for the whole expression (`compile` splits large
            // disjunctions, see tests/split_disjunction.rs).
            let ours = &compile_whole(expr, layer, true).expect("compiles whole");
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
