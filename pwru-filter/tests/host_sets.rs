//! Large sets of host terms lowered to set lookups (`compile_lowered` + `translate_cbpf`)
//! must answer exactly what libpcap's interpreter answers for libpcap's own program of the
//! whole expression (unoptimised: the optimiser takes more than 30 s on 2,000 hosts). The
//! lowered bodies run in the kernel with `BPF_PROG_TEST_RUN`: with the hash map lookup pwru-core
//! uses (helper and kfunc-cast reads) and with compares instead of the map (both modes), on
//! the test templates, copies carrying members, neighbours of members and the sentinels as
//! IPv4 source and destination and as ARP/RARP sender and target, and copies with other
//! ethertypes.
//!
//! Complete packets only, as in `split_disjunction.rs`: on a packet too short for some load a
//! classic program ends with "no match" at the first such load, so the answer depends on the
//! order of the loads, which differs between any two programs for one expression (libpcap's
//! optimised and unoptimised programs disagree there too).

mod common;

use common::*;
use pwru_filter::{
    compile_lowered, compile_whole, translate_cbpf, Cbpf, Layer, Mode, Options, ProbeAccess,
    SetLookup, TranslateError,
};
use pwru_testkit::filter_harness::{self as kernel, Harness};

fn addr(i: usize) -> String {
    format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256)
}

fn hosts(qualifier: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{qualifier} {}", addr(i))).collect()
}

/// The expressions: 2,000 plain hosts (pwru-rs's large-filter benchmark), and a mix of the
/// three qualifiers with terms that stay compares.
fn expressions() -> Vec<String> {
    let mut mixed = hosts("host", 1..301);
    mixed.extend(hosts("src host", 1000..1050));
    mixed.extend(hosts("dst host", 2000..2020));
    mixed.extend(hosts("dst host", 3000..3010)); // a small set: not lowered
    mixed.push("udp port 53".into());
    mixed.push("(host 10.200.0.1 and tcp)".into());
    mixed.push("icmp".into());
    vec![hosts("host", 1..2001).join(" or "), mixed.join(" or ")]
}

/// Addresses to put in packets: some members of every set and the expression's other
/// addresses, their neighbours, and the sentinels.
fn probe_addrs(cbpf: &Cbpf) -> Vec<[u8; 4]> {
    let mut out = Vec::new();
    for set in cbpf.sets() {
        let a = &set.addrs;
        for &m in [a[0], a[a.len() / 2], a[a.len() - 1], a[a.len() / 3]].iter() {
            out.extend([m, m.wrapping_add(1), m.wrapping_sub(1)]);
        }
        out.push(set.sentinel);
    }
    out.extend([
        0xf0fe_0001,
        0xf0fe_0002,
        0xf0fe_0003,
        0xf0fe_1001,
        0x0a09_0909,
    ]);
    for i in [3000, 3005, 3009, 3010] {
        out.push(0x0a00_0000 | i as u32);
    }
    out.push(0x0ac8_0001);
    out.sort_unstable();
    out.dedup();
    out.into_iter().map(u32::to_be_bytes).collect()
}

/// The templates, and copies with each address of `addrs` in each IPv4 address field and each
/// ARP/RARP protocol address field.
fn probe_packets(layer: Layer, addrs: &[[u8; 4]]) -> Vec<Vec<u8>> {
    let templates = match layer {
        Layer::L2 => l2_templates(),
        Layer::L3 => l3_templates(),
    };
    let mut out = templates.clone();
    for t in templates
        .iter()
        .filter(|t| layer == Layer::L2 && t.len() >= 14)
    {
        for ethertype in [[0x08, 0x00], [0x08, 0x06], [0x80, 0x35], [0x86, 0xdd]] {
            let mut p = t.clone();
            p[12..14].copy_from_slice(&ethertype);
            out.push(p);
        }
    }
    for t in &templates {
        let fields: Vec<usize> = match layer {
            Layer::L2 if t.len() >= 34 && t[12..14] == [0x08, 0x00] => vec![26, 30],
            Layer::L2 if t.len() >= 42 && matches!(t[12..14], [0x08, 0x06] | [0x80, 0x35]) => {
                vec![28, 38]
            }
            Layer::L3 if t.len() >= 20 && t[0] >> 4 == 4 => vec![12, 16],
            _ => continue,
        };
        for a in addrs {
            for f in &fields {
                let mut p = t.clone();
                p[*f..*f + 4].copy_from_slice(a);
                out.push(p);
            }
        }
    }
    out
}

const TEST: &str = "lowered_host_sets_agree_with_libpcap_in_the_kernel";

#[test]
fn lowered_host_sets_agree_with_libpcap_in_the_kernel() {
    if !kernel_available(TEST) {
        return;
    }
    // libpcap's parser recurses once per `or`: 2,000 terms need more than a test thread's
    // default stack.
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(compare_all)
        .expect("a thread")
        .join()
        .expect("the comparisons panicked (message above)");
}

fn compare_all() {
    let cast = cast_ids(&format!("{TEST} (kfunc-cast variant)"));
    let mut comparisons = 0u64;
    let mut matches = 0u64;
    for expr in expressions() {
        for layer in [Layer::L2, Layer::L3] {
            let lowered = compile_lowered(&expr, layer).expect("compiles");
            assert!(
                !lowered.sets().is_empty(),
                "{} {layer:?}: no set",
                short(&expr)
            );
            assert!(
                lowered.insns().len() < 100,
                "{} {layer:?}: {} instructions after lowering",
                short(&expr),
                lowered.insns().len()
            );
            let whole = compile_whole(&expr, layer, false).expect("libpcap compiles it whole");
            let packets = probe_packets(layer, &probe_addrs(&lowered));
            let want: Vec<u32> = packets
                .iter()
                .map(|p| whole.run_libpcap(p).expect("libpcap runs its own program"))
                .collect();
            matches += want.iter().filter(|w| **w != 0).count() as u64;
            let mut variants = vec![
                (
                    Mode::ProbeRead,
                    Options::default(),
                    SetLookup::Map { first_set: 3 },
                ),
                (Mode::ProbeRead, Options::default(), SetLookup::Compares),
                (Mode::Direct, Options::default(), SetLookup::Compares),
            ];
            if let Some(ids) = cast {
                variants.push((
                    Mode::ProbeRead,
                    Options::with_access(ProbeAccess::Cast(ids)),
                    SetLookup::Map { first_set: 0 },
                ));
            }
            for (mode, opts, lookup) in variants {
                let what = format!("{} {layer:?} {mode:?} {lookup:?}", short(&expr));
                let t = translate_cbpf(&lowered, mode, &opts, lookup)
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
                let filter = match lookup {
                    SetLookup::Map { .. } => {
                        assert!(!t.set_keys.is_empty(), "{what}: no map entries");
                        if opts.probe_access == ProbeAccess::Helper {
                            // What the kprobe backend loads (kernels without the kfunc).
                            let kprobe = kernel::harness(&t.insns, mode, Harness::Kprobe);
                            kernel::load_with_sets(
                                Harness::Kprobe.prog_type(),
                                &kprobe,
                                &t.set_keys,
                            )
                            .unwrap_or_else(|e| panic!("{what} as KPROBE: {e}"));
                        }
                        KernelFilter::load_with_sets(&t.insns, mode, &t.set_keys)
                    }
                    SetLookup::Compares => {
                        assert!(t.set_keys.is_empty(), "{what}: map entries without a map");
                        KernelFilter::load(&t.insns, mode)
                    }
                }
                .unwrap_or_else(|e| panic!("{what}: {e}"));
                for (p, w) in packets.iter().zip(&want) {
                    let got = filter.run(p).unwrap_or_else(|e| panic!("{what}: {e}"));
                    assert_eq!(got, *w, "{what}: packet {p:02x?}");
                    comparisons += 1;
                }
            }
        }
    }
    // Members were probed, so some packets matched; non-members too, so some did not.
    assert!(
        matches > 0 && comparisons > matches,
        "{matches} of {comparisons}"
    );
    eprintln!("{TEST}: {comparisons} comparisons, {matches} libpcap matches per variant set, 0 mismatches");
}

#[test]
fn map_lookups_need_probe_read_mode() {
    let expr = hosts("host", 1..40).join(" or ");
    let lowered = compile_lowered(&expr, Layer::L2).unwrap();
    let e = translate_cbpf(
        &lowered,
        Mode::Direct,
        &Options::default(),
        SetLookup::Map { first_set: 0 },
    )
    .unwrap_err();
    assert_eq!(e, TranslateError::SetsNeedProbeRead);
}

#[test]
fn set_keys_number_sets_from_first_set() {
    let mut terms = hosts("host", 1..20);
    terms.extend(hosts("src host", 100..120));
    let lowered = compile_lowered(&terms.join(" or "), Layer::L3).unwrap();
    assert_eq!(lowered.sets().len(), 2);
    let t = translate_cbpf(
        &lowered,
        Mode::ProbeRead,
        &Options::default(),
        SetLookup::Map { first_set: 7 },
    )
    .unwrap();
    assert_eq!(t.set_keys.len(), 19 + 20);
    let first = &lowered.sets()[0];
    assert!(t
        .set_keys
        .contains(&pwru_filter::set_key(7, first.addrs[0])));
    let second = &lowered.sets()[1];
    assert!(t
        .set_keys
        .contains(&pwru_filter::set_key(8, second.addrs[0])));
}
