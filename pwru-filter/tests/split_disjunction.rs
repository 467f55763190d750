//! Large disjunctions are compiled by libpcap in groups and chained (`compile`); the chained
//! program must answer exactly what libpcap's own programs for the whole expression answer
//! (`compile_whole`, optimised and not), run by libpcap's interpreter on complete packets: the
//! test templates and copies whose addresses and ports are those the expressions name, in
//! early, middle and late groups.
//!
//! Complete, because on a packet too short for a load a classic program ends with "no match"
//! at the first such load, and which loads come first depends on how the code was optimised:
//! libpcap's optimised and unoptimised programs for one expression disagree there too (the last
//! test shows it), and the kernel sees whole headers.

mod common;

use common::*;
use pwru_filter::{compile, compile_whole, Cbpf, Layer};
use pwru_testkit::corpus;

/// Offset of the IPv4 header in a packet of `layer`, when it carries one directly.
fn ipv4_at(layer: Layer, p: &[u8]) -> Option<usize> {
    let at = match layer {
        Layer::L2 if p.len() >= 14 && p[12..14] == [0x08, 0x00] => 14,
        Layer::L2 => return None,
        Layer::L3 => 0,
    };
    (p.len() >= at + 20 && p[at] >> 4 == 4).then_some(at)
}

/// The test templates, and copies of the IPv4 ones with each address in `addrs` as source
/// and as destination, and with each port in `ports` as source and destination port.
fn probe_packets(layer: Layer, addrs: &[[u8; 4]], ports: &[u16]) -> Vec<Vec<u8>> {
    let templates = match layer {
        Layer::L2 => l2_templates(),
        Layer::L3 => l3_templates(),
    };
    let mut out = templates.clone();
    for t in &templates {
        let Some(ip) = ipv4_at(layer, t) else {
            continue;
        };
        for a in addrs {
            for field in [ip + 12, ip + 16] {
                let mut p = t.clone();
                p[field..field + 4].copy_from_slice(a);
                out.push(p);
            }
        }
        let l4 = ip + usize::from(t[ip] & 0x0f) * 4;
        if t.len() >= l4 + 4 {
            for port in ports {
                for field in [l4, l4 + 2] {
                    let mut p = t.clone();
                    p[field..field + 2].copy_from_slice(&port.to_be_bytes());
                    out.push(p);
                }
            }
        }
    }
    out
}

fn assert_same(expr_name: &str, split: &Cbpf, whole: &Cbpf, packets: &[Vec<u8>]) -> usize {
    let mut matched = 0;
    for p in packets {
        let want = whole
            .run_libpcap(p)
            .expect("libpcap validates its own program");
        let got = split
            .run_libpcap(p)
            .expect("libpcap validates the chained program");
        assert_eq!(
            got,
            want,
            "{expr_name} {:?}: packet {p:02x?}",
            split.layer()
        );
        matched += usize::from(want != 0);
    }
    matched
}

fn host(v: usize) -> [u8; 4] {
    [10, (v >> 16) as u8, (v >> 8) as u8, v as u8]
}

#[test]
fn chained_hosts_answer_as_libpcap_whole() {
    let n = 600;
    let expr = corpus::many_hosts_expr(n);
    // Members in the first, a middle and the last group, and neighbours that are not.
    let addrs: Vec<[u8; 4]> = [1, 2, 33, 300, 599, 600, 601, 5000]
        .into_iter()
        .map(host)
        .collect();
    for layer in [Layer::L2, Layer::L3] {
        let split = compile(&expr, layer).unwrap();
        let whole = compile_whole(&expr, layer, false).unwrap();
        let optimised = compile_whole(&corpus::many_hosts_expr(200), layer, true).unwrap();
        assert!(
            split.insns().len() * 4 < whole.insns().len(),
            "the split program is the optimised one: {} vs {} unoptimised",
            split.insns().len(),
            whole.insns().len()
        );
        let packets = probe_packets(layer, &addrs, &[]);
        let matched = assert_same("600 hosts", &split, &whole, &packets);
        assert!(
            matched > 0 && matched < packets.len(),
            "{matched} of {}",
            packets.len()
        );
        // 200 hosts against libpcap's optimiser (600 would take it tens of seconds).
        let split200 = compile(&corpus::many_hosts_expr(200), layer).unwrap();
        assert_same("200 hosts", &split200, &optimised, &packets);
    }
}

#[test]
fn chained_mixed_terms_answer_as_libpcap_whole() {
    let expr = corpus::many_terms_expr(150);
    let addrs = [
        [10, 9, 0, 1],
        [10, 9, 0, 145],
        [10, 101, 3, 4],
        [10, 199, 0, 9],
        [172, 16, 0, 5],
        [172, 16, 0, 77],
        [10, 0, 0, 200],
        [10, 0, 0, 7],
    ];
    let ports = [20_003, 20_147, 30_004, 30_148, 40_008, 40_143, 8080, 5353];
    for layer in [Layer::L2, Layer::L3] {
        let split = compile(&expr, layer).unwrap();
        let packets = probe_packets(layer, &addrs, &ports);
        for optimize in [false, true] {
            let whole = compile_whole(&expr, layer, optimize).unwrap();
            let matched = assert_same("mixed terms", &split, &whole, &packets);
            assert!(
                matched > 0 && matched < packets.len(),
                "{matched} of {}",
                packets.len()
            );
        }
    }
}

#[test]
fn unsplittable_disjunctions_compile_whole() {
    // A bare address after `src host a or` inherits `src host`: split, it would mean `host`.
    let inherit = format!(
        "{} or 10.0.0.1",
        corpus::many_hosts_expr(100).replace("host", "src host")
    );
    for expr in [inherit, format!("vlan or {}", corpus::many_hosts_expr(100))] {
        for layer in [Layer::L2, Layer::L3] {
            let got = compile(&expr, layer).unwrap();
            let whole = compile_whole(&expr, layer, true).unwrap();
            assert_eq!(got.insns(), whole.insns(), "{}", short(&expr));
        }
    }
}

#[test]
fn libpcap_programs_of_one_expression_disagree_on_truncated_packets() {
    // Why the comparisons above use complete packets: the first out-of-range load ends a
    // classic program, and optimising moves loads.
    let expr = corpus::many_hosts_expr(200);
    let optimised = compile_whole(&expr, Layer::L2, true).unwrap();
    let plain = compile_whole(&expr, Layer::L2, false).unwrap();
    let differ = packets(Layer::L2, 2, 20, 0x5eed_0015)
        .iter()
        .filter(|p| optimised.run_libpcap(p) != plain.run_libpcap(p))
        .count();
    assert!(
        differ > 0,
        "optimised and unoptimised programs agree on every truncated packet"
    );
}
