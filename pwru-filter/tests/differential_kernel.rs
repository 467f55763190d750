//! Every corpus expression x L2/L3 x Direct/ProbeRead, loaded into the running kernel behind a
//! SCHED_CLS harness and run with BPF_PROG_TEST_RUN on template, truncated, mutated and random
//! packets, must return exactly what libpcap's own interpreter returns; ProbeRead runs with
//! helper reads (three buffer settings) and, on kernels with `bpf_rdonly_cast`, kfunc-cast
//! loads. ProbeRead bodies with helper reads must also load as KPROBE programs (scalar inputs,
//! kprobe context); the kernel refuses the kfunc there, as a test below shows.

mod common;

use common::*;
use pwru_filter::{dispatch, translate_with, Layer, Mode, Options, ProbeAccess};
use pwru_testkit::filter_harness::{self as kernel, Harness};

#[test]
fn kernel_agrees_with_libpcap_on_the_corpus() {
    if !kernel_available("kernel_agrees_with_libpcap_on_the_corpus") {
        return;
    }
    let corpus = compiled_corpus();
    let cast = cast_ids("kernel_agrees_with_libpcap_on_the_corpus (kfunc-cast variant)");
    let mut comparisons = 0u64;
    let mut matches = 0u64;
    let mut mismatches = Vec::new();
    let mut mismatch_count = 0u64;
    for layer in [Layer::L2, Layer::L3] {
        let packets = packets(layer, 4, 30, 0x5eed_0002);
        for (expr, l2, l3) in corpus {
            let cbpf = if layer == Layer::L2 { l2 } else { l3 };
            // ProbeRead three times: the default (one bulk copy of the headers), with every
            // load reading its own bytes (the fallback path the default takes beyond its
            // buffer),
            let per_load = Options {
                probe_buffer_max: 0,
                ..Options::default()
            };
            // And with a small buffer, so that loads on both sides of its end occur.
            let small = Options {
                probe_buffer_max: 40,
                probe_buffer_indirect: 24,
                ..Options::default()
            };
            let mut variants = vec![
                (Mode::Direct, Options::default()),
                (Mode::ProbeRead, Options::default()),
                (Mode::ProbeRead, per_load),
                (Mode::ProbeRead, small),
            ];
            // And with kfunc-cast loads where the kernel has bpf_rdonly_cast.
            if let Some(ids) = cast {
                variants.push((
                    Mode::ProbeRead,
                    Options::with_access(ProbeAccess::Cast(ids)),
                ));
            }
            for (mode, opts) in variants {
                let b = translate_with(cbpf.insns(), mode, &opts)
                    .unwrap_or_else(|e| panic!("{} {layer:?} {mode:?}: {e}", short(expr)));
                let filter = KernelFilter::load(&b, mode)
                    .unwrap_or_else(|e| panic!("{} {layer:?} {mode:?} {opts:?}: {e}", short(expr)));
                for p in &packets {
                    let want = cbpf
                        .run_libpcap(p)
                        .expect("libpcap accepts its own program");
                    let got = filter.run(p);
                    comparisons += 1;
                    matches += u64::from(want != 0);
                    if got != Ok(want) {
                        mismatch_count += 1;
                    }
                    if got != Ok(want) && mismatches.len() < 20 {
                        mismatches.push(format!(
                            "{} {layer:?} {mode:?} {opts:?} packet {p:02x?}: libpcap {want}, kernel {got:?}",
                            short(expr)
                        ));
                    }
                }
            }
        }
    }
    println!(
        "ORACLE kernel: {comparisons} comparisons ({matches} matching packets), {mismatch_count} mismatches"
    );
    assert!(
        mismatches.is_empty(),
        "mismatches:\n{}",
        mismatches.join("\n")
    );
}

#[test]
fn probe_read_code_loads_as_kprobe() {
    let test = "probe_read_code_loads_as_kprobe";
    if !kernel_available(test) {
        return;
    }
    let mut loaded = 0;
    for (expr, l2, l3) in compiled_corpus() {
        for cbpf in [l2, l3] {
            let b = body(expr, cbpf, Mode::ProbeRead);
            let prog = kernel::harness(&b, Mode::ProbeRead, Harness::Kprobe);
            kernel::load(Harness::Kprobe.prog_type(), &prog)
                .unwrap_or_else(|e| panic!("{} {:?} as KPROBE: {e}", short(expr), cbpf.layer()));
            loaded += 1;
        }
    }
    println!("ORACLE kprobe-verifier: {loaded} ProbeRead programs (helper reads) loaded as KPROBE, 0 refused");

    // Kfunc-cast code: older kernels refuse kfuncs in KPROBE programs (pwru-core probes for
    // that and keeps the helper there); where the first is accepted, all must be.
    let Some(ids) = cast_ids(&format!("{test} (kfunc-cast variant)")) else {
        return;
    };
    let opts = Options::with_access(ProbeAccess::Cast(ids));
    let mut loaded = 0;
    for (expr, l2, l3) in compiled_corpus() {
        for cbpf in [l2, l3] {
            let b = translate_with(cbpf.insns(), Mode::ProbeRead, &opts).expect("translates");
            let prog = kernel::harness(&b, Mode::ProbeRead, Harness::Kprobe);
            match kernel::load(Harness::Kprobe.prog_type(), &prog) {
                Ok(_) => loaded += 1,
                Err(e)
                    if loaded == 0
                        && e.to_string().contains("kernel function")
                        && !capabilities::has(
                            &format!("{test} (kfunc-cast variant)"),
                            "kfunc_cast_all_progs",
                        ) =>
                {
                    return;
                }
                Err(e) => panic!(
                    "{} {:?} (kfunc-cast) as KPROBE: {e}",
                    short(expr),
                    cbpf.layer()
                ),
            }
        }
    }
    println!("ORACLE kprobe-verifier: {loaded} ProbeRead programs (kfunc-cast loads) loaded as KPROBE, 0 refused");
}

#[test]
fn dispatch_selects_each_filter_in_the_kernel() {
    if !kernel_available("dispatch_selects_each_filter_in_the_kernel") {
        return;
    }
    let corpus = compiled_corpus();
    let picks = [1usize, 7, 20, 40];
    let packets = packets(Layer::L2, 2, 10, 0x5eed_0003);
    let mut comparisons = 0u64;
    for mode in [Mode::Direct, Mode::ProbeRead] {
        let bodies: Vec<_> = picks
            .iter()
            .map(|&i| body(&corpus[i].0, &corpus[i].1, mode))
            .collect();
        let refs: Vec<&[_]> = bodies.iter().map(|b| b.as_slice()).collect();
        let disp = dispatch(&refs).expect("dispatch");
        for which in 0..=picks.len() {
            // Prepend `r1 = which`-style selection: the harness passes data/end in R1/R2,
            // so shift them to R2/R3 and put the selector in R1.
            let mut wrapped = vec![
                pwru_filter::Insn::mov64_reg(3, 2),
                pwru_filter::Insn::mov64_reg(2, 1),
                pwru_filter::Insn::mov64_imm(1, which as i32),
            ];
            wrapped.extend_from_slice(&disp);
            let f = KernelFilter::load(&wrapped, mode).unwrap_or_else(|e| panic!("{e}"));
            for p in &packets {
                let want = match picks.get(which) {
                    Some(&i) => corpus[i].1.run_libpcap(p).expect("valid"),
                    None => 0,
                };
                assert_eq!(
                    f.run(p),
                    Ok(want),
                    "selector {which} {mode:?} packet {p:02x?}"
                );
                comparisons += 1;
            }
        }
    }
    println!("ORACLE kernel-dispatch: {comparisons} comparisons, 0 mismatches");
}

#[test]
fn large_expressions_pass_the_verifier_in_both_modes() {
    if !kernel_available("large_expressions_pass_the_verifier_in_both_modes") {
        return;
    }
    let ports: Vec<String> = (1..=60).map(|p| format!("port {p}")).collect();
    let payloads: Vec<String> = (0..20)
        .map(|i| format!("tcp[((tcp[12:1] & 0xf0) >> 2) + {i}:2] == {i}"))
        .collect();
    let hosts = pwru_testkit::corpus::many_hosts_expr(200);
    // Split into groups by `compile` (see tests/split_disjunction.rs).
    let huge = pwru_testkit::corpus::many_hosts_expr(2000);
    for expr in [ports.join(" or "), payloads.join(" or "), hosts, huge] {
        for layer in [Layer::L2, Layer::L3] {
            let cbpf = pwru_filter::compile(&expr, layer).expect("compiles");
            for mode in [Mode::Direct, Mode::ProbeRead] {
                let b = body(&expr, &cbpf, mode);
                let started = std::time::Instant::now();
                KernelFilter::load(&b, mode)
                    .unwrap_or_else(|e| panic!("{} {layer:?} {mode:?}: {e}", short(&expr)));
                println!(
                    "verified {} {layer:?} {mode:?}: {} cBPF -> {} eBPF insns, load {:?}",
                    short(&expr),
                    cbpf.insns().len(),
                    b.len(),
                    started.elapsed()
                );
            }
        }
    }
}

#[test]
fn kernel_agrees_with_libpcap_on_a_huge_disjunction() {
    let test = "kernel_agrees_with_libpcap_on_a_huge_disjunction";
    if !kernel_available(test) {
        return;
    }
    // 2,000 OR'd hosts, compiled in chained groups: the translated chain in the kernel
    // answers as libpcap's interpreter on the chain, on the corpus packets and on copies
    // carrying member addresses of the first, a middle and the last group.
    let expr = pwru_testkit::corpus::many_hosts_expr(2000);
    let cast = cast_ids(&format!("{test} (kfunc-cast variant)"));
    let (mut comparisons, mut matches) = (0u64, 0u64);
    for layer in [Layer::L2, Layer::L3] {
        let cbpf = pwru_filter::compile(&expr, layer).expect("compiles");
        let mut packets = packets(layer, 2, 20, 0x5eed_0016);
        let ip = if layer == Layer::L2 { 14 } else { 0 };
        for v in [1u32, 33, 1000, 1999, 2000, 2001] {
            for t in &packets.clone() {
                if t.len() >= ip + 20 && (layer == Layer::L3 || t[12..14] == [8, 0]) {
                    let mut p = t.clone();
                    p[ip + 16..ip + 20].copy_from_slice(&[10, 0, (v >> 8) as u8, v as u8]);
                    packets.push(p);
                }
            }
        }
        let mut variants = vec![
            (Mode::Direct, Options::default()),
            (Mode::ProbeRead, Options::default()),
        ];
        if let Some(ids) = cast {
            variants.push((
                Mode::ProbeRead,
                Options::with_access(ProbeAccess::Cast(ids)),
            ));
        }
        for (mode, opts) in variants {
            let b = translate_with(cbpf.insns(), mode, &opts).expect("translates");
            let filter = KernelFilter::load(&b, mode)
                .unwrap_or_else(|e| panic!("2000 hosts {layer:?} {mode:?}: {e}"));
            for p in &packets {
                let want = cbpf.run_libpcap(p).expect("libpcap accepts the chain");
                assert_eq!(
                    filter.run(p),
                    Ok(want),
                    "{layer:?} {mode:?} {opts:?} {p:02x?}"
                );
                comparisons += 1;
                matches += u64::from(want != 0);
            }
        }
    }
    println!(
        "ORACLE kernel, 2000 hosts: {comparisons} comparisons ({matches} matching), 0 mismatches"
    );
    assert!(
        matches > 0,
        "no packet matched: the member copies are not members"
    );
}
