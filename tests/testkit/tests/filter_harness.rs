//! The filter harness loads a body into the kernel and test-runs it on the packet it is given,
//! and the corpus is what the tests expect of it. (pwru-core's tracer_btf checks the kfunc-cast
//! ids against the kernel.)

use pwru_filter::{compile_ebpf_with, Insn, Layer, Mode, Options};
use pwru_testkit::capabilities::{has, skip_unless_root};
use pwru_testkit::filter_harness::{harness, load, probe_test_run, sched_cls_frame, Harness};
use pwru_testkit::{corpus, pcap_interp::RunLibpcap};

/// IPv4 UDP 10.0.0.1 -> 10.0.0.2, ports 9 -> 9, no payload (raw IP, what L3 filters see).
const UDP: [u8; 28] = [
    0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 0, 9, 0, 9, 0, 8, 0, 0,
];

fn runs_here(test: &str) -> bool {
    !skip_unless_root(test) && has(test, "test_run")
}

#[test]
fn the_harness_returns_the_body_r0_and_the_filter_sees_the_packet() {
    let name = "the_harness_returns_the_body_r0_and_the_filter_sees_the_packet";
    if !runs_here(name) {
        return;
    }
    probe_test_run().expect("a 2-instruction program loads and test-runs");
    let body = [Insn::mov32_imm(0, 42), Insn::exit()];
    let prog = load(
        Harness::SchedCls.prog_type(),
        &harness(&body, Mode::Direct, Harness::SchedCls),
    )
    .expect("load");
    assert_eq!(prog.test_run(&sched_cls_frame(&UDP), 1).unwrap().retval, 42);
    for mode in [Mode::Direct, Mode::ProbeRead] {
        let udp = compile_ebpf_with("udp dst port 9", Layer::L3, mode, &Options::default())
            .expect("compile");
        let prog = load(
            Harness::SchedCls.prog_type(),
            &harness(&udp.insns, mode, Harness::SchedCls),
        )
        .expect("load");
        let run = |p: &[u8]| prog.test_run(&sched_cls_frame(p), 1).unwrap().retval;
        // The kernel agrees with libpcap's interpreter on a match and on a miss.
        let mut tcp = UDP;
        tcp[9] = 6;
        for packet in [&UDP[..], &tcp[..]] {
            assert_eq!(
                run(packet),
                udp.cbpf.run_libpcap(packet).expect("valid program"),
                "{mode:?} {packet:02x?}"
            );
        }
        assert_ne!(run(&UDP), 0, "{mode:?}: the UDP packet must match");
    }
}

#[test]
fn the_corpus_compiles_and_ends_with_the_many_hosts_expression() {
    let list = corpus::expressions();
    assert!(list.len() > 50, "{} expressions", list.len());
    assert!(list
        .iter()
        .all(|e| !e.starts_with('#') && !e.trim().is_empty()));
    assert_eq!(list.last(), Some(&corpus::many_hosts_expr(200)));
    for e in &list {
        pwru_filter::compile(e, Layer::L2).unwrap_or_else(|err| panic!("{e:?}: {err}"));
    }
}
