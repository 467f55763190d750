//! `trace-tc` / `trace-xdp`: the project's test tc classifier and XDP program (pwru-ebpf's
//! `TEST_OBJECT`) run on B's veth; a tracer with trace-tc / trace-xdp must report events that
//! carry the program's name (fentry for tc; fentry and fexit with the XDP action for XDP), and
//! the packet's bytes (captured from the skb for tc, from the XDP buffer for XDP).

use aya::programs::{tc, SchedClassifier, TcAttachType, Xdp, XdpMode};
use pwru_core::event::ProbeKind;
use pwru_testkit::netlab::VethPair;

use crate::backend::Backend;
use crate::registry::Ctx;
use crate::report::Outcome;

use super::tracer_kit::{self as kit, QUIET};

const TC_PROG: &str = "pwru_test_tc";
const XDP_PROG: &str = "pwru_test_xdp";
const XDP_PASS: u64 = 2;

/// tc.
pub fn run_tc(_: &mut Ctx, backend: Backend) -> Outcome {
    match try_run(backend, false) {
        Ok(o) | Err(o) => o,
    }
}

/// XDP.
pub fn run_xdp(_: &mut Ctx, backend: Backend) -> Outcome {
    match try_run(backend, true) {
        Ok(o) | Err(o) => o,
    }
}

/// Loads the test program on `pair.if_b` from inside B; returns the object (keep it alive).
pub(super) fn load_test_prog(pair: &VethPair, xdp: bool) -> Result<aya::Ebpf, String> {
    let dev = pair.if_b.clone();
    VethPair::in_netns(&pair.ns_b, move || {
        let err =
            |what: &str, e: &dyn std::fmt::Display| std::io::Error::other(format!("{what}: {e}"));
        let mut obj =
            aya::Ebpf::load(pwru_ebpf::TEST_OBJECT).map_err(|e| err("test object", &e))?;
        if xdp {
            let p: &mut Xdp = obj
                .program_mut(XDP_PROG)
                .ok_or_else(|| err("program", &XDP_PROG))?
                .try_into()
                .map_err(|e| err("xdp", &e))?;
            p.load().map_err(|e| err("load xdp", &e))?;
            p.attach(&dev, XdpMode::Skb)
                .map_err(|e| err("attach xdp", &e))?;
        } else {
            // kernels before 6.6 attach through the clsact qdisc (sch_ingress module)
            let _ = tc::qdisc_add_clsact(&dev);
            let p: &mut SchedClassifier = obj
                .program_mut(TC_PROG)
                .ok_or_else(|| err("program", &TC_PROG))?
                .try_into()
                .map_err(|e| err("classifier", &e))?;
            p.load().map_err(|e| err("load tc", &e))?;
            p.attach(&dev, TcAttachType::Ingress)
                .map_err(|e| err("attach tc", &e))?;
        }
        Ok(obj)
    })
    .map_err(|e| e.to_string())
}

fn try_run(backend: Backend, xdp: bool) -> Result<Outcome, Outcome> {
    let pair = kit::lab(if xdp { "tx" } else { "tt" }, 36).map_err(Outcome::Fail)?;
    let _prog = load_test_prog(&pair, xdp).map_err(Outcome::Fail)?;
    let b = kit::packet_tracer(backend, "ip_rcv", "udp and dst port 6100")
        .trace_tc(!xdp)
        .trace_xdp(xdp)
        .capture(pwru_core::Capture::default().with_packet(true));
    let mut session = kit::start(b).map_err(Outcome::Fail)?;
    let traced: Vec<String> = session
        .attached()
        .iter()
        .filter(|a| a.starts_with("bpf prog"))
        .cloned()
        .collect();
    let refused: Vec<String> = session
        .refused()
        .iter()
        .filter(|r| r.target.starts_with("bpf prog"))
        .map(|r| format!("{}: {}", r.target, r.reason))
        .collect();
    pair.send_udp(40600, 6100, 2, 16)
        .map_err(|e| Outcome::Fail(format!("send: {e}")))?;
    let got = kit::collect(&mut session, QUIET, 5000).map_err(Outcome::Fail)?;
    drop(session);
    let want = if xdp { XDP_PROG } else { TC_PROG };
    let kinds: &[ProbeKind] = if xdp {
        &[ProbeKind::Xdp, ProbeKind::XdpExit]
    } else {
        &[ProbeKind::Tc]
    };
    let mut seen = Vec::new();
    for &k in kinds {
        let named = got
            .events
            .iter()
            .find(|e| e.kind == k && e.bpf_prog.is_some_and(|p| p.name.as_str() == want));
        match named {
            Some(e) if k == ProbeKind::XdpExit && e.retval != Some(XDP_PASS) => {
                return Err(Outcome::Fail(format!(
                    "XDP exit event with action {:?}, expected XDP_PASS (2)",
                    e.retval
                )))
            }
            Some(e) => {
                let bytes = super::packet_bytes::parsed_udp4(e)
                    .map_err(|why| Outcome::Fail(format!("{k:?} event's packet bytes: {why}")))?;
                if bytes.3 != 6100 {
                    return Err(Outcome::Fail(format!(
                        "{k:?} event's packet bytes: {bytes:?}, expected destination port 6100"
                    )));
                }
                seen.push(format!("{k:?}:{}({}, bytes ok)", e.function, want))
            }
            None => {
                return Err(Outcome::Fail(format!(
                    "no {k:?} event naming {want}; traced [{}], refused [{}]; {} events ({})",
                    traced.join(", "),
                    refused.join("; "),
                    got.events.len(),
                    kit::some_functions(&got.events, 8)
                )))
            }
        }
    }
    Ok(Outcome::Pass(format!(
        "{} events; traced [{}]",
        seen.join(" "),
        traced.join(", ")
    )))
}
