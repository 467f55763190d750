//! A program the kernel's verifier refuses surfaces as `Error::Verifier` with the log.
//!
//! The public Tracer never builds such a program from valid input (the filter translator is
//! checked against the verifier), so this drives the public loader with a filter body that
//! breaks the calling convention: it reads R6, a callee-saved register that a function must
//! write before reading. (R5, an argument register the 3-argument filter does not take, is
//! not reliable: the filter is verified per call site, and a caller may hold a value there.)

use pwru_testkit::capabilities;

use pwru_core::backend::TracepointFlavor;
use pwru_core::object::{FilterBody, Loader, LoaderOptions};
use pwru_core::Error;
use pwru_ebpf::PwruConfig;
use pwru_filter::Insn;

#[test]
fn verifier_rejection_carries_the_log() {
    if !capabilities::is_root() {
        capabilities::skip(
            "verifier_rejection_carries_the_log",
            "needs root to load BPF programs",
        );
        return;
    }
    // r0 = r6; exit  — R6 is uninitialised in a function's own frame.
    let body = FilterBody::from_insns(&[
        Insn::from_bytes([0xbf, 0x60, 0, 0, 0, 0, 0, 0]),
        Insn::from_bytes([0x95, 0, 0, 0, 0, 0, 0, 0]),
    ])
    .expect("a structurally valid body");
    let config = PwruConfig {
        flags: pwru_ebpf::PWRU_CFG_FILTER_PCAP,
        netns: 0,
        mark: 0,
        mark_mask: 0,
        ifindex: 0,
        dump_max: 0,
        snaplen: 0,
    };
    let mut loader = match Loader::new(pwru_ebpf::OBJECT, &body, &config, &LoaderOptions::default())
    {
        Ok(l) => l,
        // Some kernels verify global functions at object load already.
        Err(e) => return check(Error::from(e)),
    };
    match loader.load_tracepoint("kfree_skb", TracepointFlavor::Btf) {
        Ok(_) => panic!("the verifier must refuse a filter that reads R6"),
        Err(err) => check(Error::from(err)),
    }
}

fn check(e: Error) {
    match &e {
        Error::Verifier { program, log, .. } => {
            assert!(log.contains("R6 !read_ok"), "log lacks the reason:\n{log}");
            let shown = e.to_string();
            assert!(shown.contains("verifier log"), "{shown}");
            assert!(shown.contains(program.as_str()), "{shown}");
        }
        other => panic!("expected Error::Verifier, got {other:?}"),
    }
}
