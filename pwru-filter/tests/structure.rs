//! The generated code keeps the promises of the calling convention, checked instruction by
//! instruction over the whole corpus, and bad input gives errors that name the problem.

mod common;

use common::*;
use pwru_filter::cbpf::CbpfInsn;
use pwru_filter::insn::{op, HELPER_PROBE_READ_KERNEL};
use pwru_filter::{
    compile_ebpf, translate_insns, translate_with, CastIds, Error, Insn, Layer, Mode, Options,
    ProbeAccess, TranslateError, STACK_BYTES,
};
use pwru_testkit::corpus;

/// Checks one body; returns a description of the first broken promise. `cast`: the body was
/// made with kfunc-cast reads, so its only calls are kfunc calls of `bpf_rdonly_cast`.
fn check_body(body: &[Insn], mode: Mode, cast: Option<CastIds>) -> Result<(), String> {
    let n = body.len();
    let mut reachable = vec![false; n];
    let mut work = vec![0usize];
    if n == 0 {
        return Err("empty body".into());
    }
    reachable[0] = true;
    while let Some(i) = work.pop() {
        let insn = body[i];
        let class = insn.class();
        let mut next = vec![];
        match class {
            op::LD => return Err(format!("{i}: ld_imm64 or legacy packet load: {insn}")),
            op::JMP | op::JMP32 => {
                let jop = insn.code & 0xf0;
                if jop == op::EXIT {
                } else if jop == op::CALL {
                    let allowed = match cast {
                        None => insn.src == 0 && insn.imm == HELPER_PROBE_READ_KERNEL,
                        Some(ids) => {
                            insn.src == op::PSEUDO_KFUNC_CALL && insn.imm == ids.rdonly_cast as i32
                        }
                    };
                    if !allowed || mode != Mode::ProbeRead {
                        return Err(format!("{i}: call not allowed here: {insn}"));
                    }
                    next.push(i + 1);
                } else {
                    if insn.off < 0 {
                        return Err(format!("{i}: backward jump {insn}"));
                    }
                    next.push(i + 1 + insn.off as usize);
                    if jop != op::JA {
                        next.push(i + 1);
                    }
                }
            }
            _ => next.push(i + 1),
        }
        if matches!(class, op::LDX | op::ST | op::STX) {
            let base = if class == op::LDX { insn.src } else { insn.dst };
            if base == 10 && (insn.off >= 0 || (insn.off as i64) < -(STACK_BYTES as i64)) {
                return Err(format!(
                    "{i}: stack access outside the {STACK_BYTES} bytes: {insn}"
                ));
            }
        }
        if mode == Mode::Direct
            && class != op::JMP
            && class != op::JMP32
            && (6..=9).contains(&insn.dst)
        {
            return Err(format!(
                "{i}: direct mode writes a callee-saved register: {insn}"
            ));
        }
        for t in next {
            if t >= n {
                return Err(format!("{i}: control flow leaves the body: {insn}"));
            }
            if !reachable[t] {
                reachable[t] = true;
                work.push(t);
            }
        }
    }
    match reachable.iter().position(|r| !r) {
        Some(i) => Err(format!("{i}: unreachable instruction {}", body[i])),
        None => Ok(()),
    }
}

#[test]
fn corpus_bodies_keep_the_calling_convention() {
    let mut checked = 0;
    for (expr, l2, l3) in compiled_corpus() {
        for cbpf in [l2, l3] {
            let cast = CastIds {
                rdonly_cast: 4242,
                target: 77,
            };
            for (mode, access) in [
                (Mode::Direct, ProbeAccess::Helper),
                (Mode::ProbeRead, ProbeAccess::Helper),
                (Mode::ProbeRead, ProbeAccess::Cast(cast)),
            ] {
                let b = translate_with(cbpf.insns(), mode, &Options::with_access(access))
                    .unwrap_or_else(|e| panic!("{} {mode:?}: {e}", short(expr)));
                let ids = match access {
                    ProbeAccess::Cast(ids) => Some(ids),
                    ProbeAccess::Helper => None,
                };
                check_body(&b, mode, ids).unwrap_or_else(|e| {
                    panic!(
                        "{} {:?} {mode:?} {access:?}: {e}\n{}",
                        short(expr),
                        cbpf.layer(),
                        pwru_filter::disassemble(&b)
                    )
                });
                checked += 1;
            }
        }
    }
    println!("checked {checked} bodies");
}

#[test]
fn many_hosts_fit_the_jump_limit() {
    for n in [200, 2000, 5000] {
        let expr = corpus::many_hosts_expr(n);
        for mode in [Mode::Direct, Mode::ProbeRead] {
            let p = compile_ebpf(&expr, Layer::L3, mode).expect("many hosts translate");
            println!(
                "{n} hosts, L3, {mode:?}: {} cBPF -> {} eBPF instructions",
                p.cbpf.insns().len(),
                p.insns.len()
            );
            check_body(&p.insns, mode, None).unwrap();
        }
    }
}

#[test]
fn too_long_jumps_are_a_clear_error() {
    // ld #1; jeq #1 jt=1 jf=0; ja over 20000 4-byte packet loads; the loads; ret.
    let loads = 20_000u32;
    let mut prog = vec![
        CbpfInsn::new(0x00, 0, 0, 1),
        CbpfInsn::new(0x15, 1, 0, 1),
        CbpfInsn::new(0x05, 0, 0, loads),
    ];
    prog.extend((0..loads).map(|i| CbpfInsn::new(0x20, 0, 0, i % 64)));
    prog.push(CbpfInsn::new(0x16, 0, 0, 0));
    for mode in [Mode::Direct, Mode::ProbeRead] {
        let err = match translate_insns(&prog, mode) {
            Ok(body) => panic!("{mode:?}: translated into {} instructions", body.len()),
            Err(e) => e,
        };
        assert!(matches!(err, TranslateError::JumpTooFar { .. }), "{err}");
        assert!(err.to_string().contains("32767"), "{err}");
    }
}

#[test]
fn bad_input_gives_errors_naming_the_problem() {
    let cases: &[(&str, &str)] = &[
        ("tcp port", "syntax error"),
        ("host 300.1.2.3", "300.1.2.3"),
        ("ip broadcast", "netmask"),
        ("inbound", "inbound"),
        ("ifindex 3", "ifindex"),
        ("ip protochain 6", "protochain"),
        ("host\0evil", "NUL"),
    ];
    for (expr, needle) in cases {
        for mode in [Mode::Direct, Mode::ProbeRead] {
            let err = compile_ebpf(expr, Layer::L2, mode).unwrap_err();
            let text = err.to_string();
            assert!(text.contains(needle), "{expr:?}: {text}");
            if matches!(err, Error::Filter(_)) {
                assert!(
                    text.contains(&format!("{expr:?}")),
                    "names the expression: {text}"
                );
            }
        }
    }
    assert!(matches!(
        translate_insns(&[], Mode::Direct),
        Err(TranslateError::Empty)
    ));
}

#[test]
fn l2_only_expressions_are_visible_reject_alls() {
    for expr in ["ether host 02:00:00:00:00:01", "arp", "ether broadcast"] {
        let p = compile_ebpf(expr, Layer::L3, Mode::Direct).unwrap();
        assert!(p.cbpf.rejects_all(), "{expr}");
        let vm = RbpfFilter::new(&p.insns);
        for pkt in l3_templates() {
            assert_eq!(vm.run(&pkt), Ok(0), "{expr}");
        }
        assert!(!compile_ebpf(expr, Layer::L2, Mode::Direct)
            .unwrap()
            .cbpf
            .rejects_all());
    }
}

#[test]
fn dispatch_selects_each_filter_in_rbpf() {
    let corpus = compiled_corpus();
    let picks = [3usize, 11, 25];
    let packets = packets(Layer::L2, 2, 10, 0x5eed_0005);
    let mut comparisons = 0u64;
    for mode in [Mode::Direct, Mode::ProbeRead] {
        let bodies: Vec<_> = picks
            .iter()
            .map(|&i| body(&corpus[i].0, &corpus[i].1, mode))
            .collect();
        let refs: Vec<&[Insn]> = bodies.iter().map(|b| b.as_slice()).collect();
        let disp = pwru_filter::dispatch(&refs).expect("dispatch");
        check_body(&disp, mode, None).expect("dispatch body keeps the convention");
        for which in 0..=picks.len() as i32 {
            // The rbpf prologue puts data/data_end in R1/R2: move them to R2/R3, selector in R1.
            let mut prog = vec![
                Insn::mov64_reg(3, 2),
                Insn::mov64_reg(2, 1),
                Insn::mov64_imm(1, which),
            ];
            prog.extend_from_slice(&disp);
            let vm = RbpfFilter::new(&prog);
            for p in &packets {
                let want = match picks.get(which as usize) {
                    Some(&i) => corpus[i].1.run_libpcap(p).expect("valid"),
                    None => 0,
                };
                assert_eq!(
                    vm.run(p),
                    Ok(want as u64),
                    "selector {which} {mode:?} {p:02x?}"
                );
                comparisons += 1;
            }
        }
    }
    println!("ORACLE rbpf-dispatch: {comparisons} comparisons, 0 mismatches");
}
