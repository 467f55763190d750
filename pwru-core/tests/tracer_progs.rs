//! Tracing tc and XDP programs through the public API. A tc classifier and an XDP program
//! (pwru-ebpf's TEST_OBJECT) are attached to a veth in a fresh namespace; the tracer is asked
//! to trace them. Where the kernel allows fentry on BPF programs the events name them; where
//! it refuses (this development host), each program is listed as refused with the kernel's
//! reason, never silently skipped.

mod tracer_common;

use std::net::SocketAddr;
use std::time::Duration;

use aya::programs::{tc, SchedClassifier, TcAttachType, Xdp, XdpMode};
use pwru_core::backend::{probe, Fentry};
use pwru_core::event::ProbeKind;
use pwru_core::{Backend, Tracer};
use pwru_testkit::netlab::VethPair;
use tracer_common::*;

#[test]
fn tc_and_xdp_programs_are_traced_or_refused_with_the_kernels_reason() {
    let name = "tc_and_xdp_programs_are_traced_or_refused_with_the_kernels_reason";
    if skip_unless_root(name) {
        return;
    }
    let pair = VethPair::create(&tag('p', 1), 185).expect("veth pair");
    let dev = pair.if_b.clone();
    // Load and attach in B (the programs stay attached while `obj` lives).
    let (obj, tc_id, xdp_id) = VethPair::in_netns(&pair.ns_b, move || {
        let mut obj = aya::Ebpf::load(pwru_ebpf::TEST_OBJECT).map_err(std::io::Error::other)?;
        // Kernels before 6.6 attach tc programs through the clsact qdisc.
        let _ = tc::qdisc_add_clsact(&dev);
        let tcp: &mut SchedClassifier = obj
            .program_mut("pwru_test_tc")
            .ok_or_else(|| std::io::Error::other("no tc program"))?
            .try_into()
            .map_err(std::io::Error::other)?;
        tcp.load().map_err(std::io::Error::other)?;
        tcp.attach(&dev, TcAttachType::Ingress)
            .map_err(std::io::Error::other)?;
        let tc_id = tcp.info().map_err(std::io::Error::other)?.id();
        let xp: &mut Xdp = obj
            .program_mut("pwru_test_xdp")
            .ok_or_else(|| std::io::Error::other("no xdp program"))?
            .try_into()
            .map_err(std::io::Error::other)?;
        xp.load().map_err(std::io::Error::other)?;
        xp.attach(&dev, XdpMode::Skb)
            .map_err(std::io::Error::other)?;
        let xdp_id = xp.info().map_err(std::io::Error::other)?.id();
        Ok((obj, tc_id, xdp_id))
    })
    .expect("tc and XDP programs attached in B");

    let path_b = VethPair::netns_path(&pair.ns_b);
    let mut session = Tracer::builder()
        .backend(Backend::Tracepoint)
        .pcap_filter(format!("udp and host {}", pair.addr_b))
        .netns(path_b.to_string_lossy())
        .trace_tc(true)
        .trace_xdp(true)
        .build()
        .expect("build")
        .attach()
        .expect("attach");
    let label = |id: u32, prog: &str| format!("bpf prog {id}:{prog}");
    let tc_label = label(tc_id, "pwru_test_tc");
    let xdp_label = label(xdp_id, "pwru_test_xdp");

    match probe(&Fentry) {
        Err(kernel_reason) => {
            // fentry refused: both programs are listed as refused, with a reason saying so.
            for l in [&tc_label, &xdp_label] {
                let r = session
                    .refused()
                    .iter()
                    .find(|r| &r.target == l)
                    .unwrap_or_else(|| panic!("{l} neither traced nor refused: {session:?}"));
                println!("{name}: {l} refused: {}", r.reason);
                assert!(
                    r.reason.contains("fentry") && r.reason.contains("Operation not permitted"),
                    "refusal of {l} does not say fentry was refused: {}",
                    r.reason
                );
                assert!(!session.attached().contains(l));
            }
            println!("{name}: the kernel refuses fentry ({kernel_reason}); refusals checked");
            // The rest of the session still works: the packet is traced by the tracepoints.
            send_udp_from(
                &pair.ns_a,
                SocketAddr::from((pair.addr_a, 40800)),
                SocketAddr::from((pair.addr_b, 9)),
                1,
                None,
            );
            let c = collect(
                &mut session,
                |e| e.iter().any(is_kfree),
                Duration::from_millis(300),
                Duration::from_secs(5),
            );
            assert!(c.events.iter().any(is_kfree), "{}", describe(&c.events));
            assert!(c.events.iter().all(|e| !e.kind.is_bpf_prog()));
        }
        Ok(()) => {
            for l in [&tc_label, &xdp_label] {
                assert!(session.attached().contains(l), "{l} not traced");
            }
            send_udp_from(
                &pair.ns_a,
                SocketAddr::from((pair.addr_a, 40800)),
                SocketAddr::from((pair.addr_b, 9)),
                1,
                None,
            );
            let kinds = [ProbeKind::Tc, ProbeKind::Xdp, ProbeKind::XdpExit];
            let c = collect(
                &mut session,
                |evs| kinds.iter().all(|k| evs.iter().any(|e| e.kind == *k)),
                Duration::from_millis(300),
                Duration::from_secs(5),
            );
            for k in kinds {
                let e = c
                    .events
                    .iter()
                    .find(|e| e.kind == k)
                    .unwrap_or_else(|| panic!("no {k:?} event:\n{}", describe(&c.events)));
                let prog = e.bpf_prog.expect("program identity");
                let (id, pname) = if k == ProbeKind::Tc {
                    (tc_id, "pwru_test_tc")
                } else {
                    (xdp_id, "pwru_test_xdp")
                };
                assert_eq!((prog.id, prog.name.as_str()), (id, pname));
                if k == ProbeKind::XdpExit {
                    assert_eq!(e.retval, Some(2), "XDP_PASS");
                }
            }
            println!("{name}: {} events, tc and XDP traced", c.events.len());
        }
    }
    drop(session);
    drop(obj);
}
