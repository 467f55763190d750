//! `track-bpf-helpers`: a tc classifier that looks up and updates a hash map (pwru-ebpf's
//! `pwru_test_tc_map`) runs on B's veth; a tracer with `track_bpf_helpers` must find the map
//! functions that program calls in its verified instructions, attach to them, and show their
//! hits as events about the packet the classifier handled (linked by stack, no skb argument).

use std::collections::HashSet;

use pwru_testkit::netlab::VethPair;

use crate::backend::Backend;
use crate::registry::Ctx;
use crate::report::Outcome;

use super::tracer_kit::{self as kit, QUIET};

const TC_PROG: &str = "pwru_test_tc_map";
const PORT: u16 = 6200;
/// The skb functions traced: the receive path up to tc ingress, and past it.
const SKB_FUNCS: &str = "__netif_receive_skb|__netif_receive_skb_one_core|tcf_classify|ip_rcv";

/// Runs the scenario on `backend`.
pub fn run(_: &mut Ctx, backend: Backend) -> Outcome {
    match try_run(backend) {
        Ok(o) | Err(o) => o,
    }
}

/// Loads the map-using classifier on `pair.if_b` (ingress) from inside B; keep the object.
fn load(pair: &VethPair) -> Result<aya::Ebpf, String> {
    pwru_testkit::test_programs::attach_classifier(pair, TC_PROG)
}

fn try_run(backend: Backend) -> Result<Outcome, Outcome> {
    let fail = Outcome::Fail;
    let pair = kit::lab("bh", 37).map_err(fail)?;
    let _prog = load(&pair).map_err(fail)?;
    let filter = format!("udp and dst host {} and dst port {PORT}", pair.addr_b);
    let tracer = kit::packet_tracer(backend, SKB_FUNCS, &filter)
        .track_bpf_helpers(true)
        .build()
        .map_err(|e| fail(format!("build: {e}")))?;
    let helpers: Vec<String> = tracer.non_skb_targets().to_vec();
    if !helpers.iter().any(|h| h.contains("htab")) {
        return Err(fail(format!(
            "no hash map function among the helpers found: {helpers:?}"
        )));
    }
    let mut session = tracer.attach().map_err(|e| fail(format!("attach: {e}")))?;
    let attached: Vec<&String> = helpers
        .iter()
        .filter(|h| session.attached().contains(h))
        .collect();
    if attached.is_empty() {
        return Err(fail(format!(
            "none of the helpers {helpers:?} attached; refused: {:?}",
            session.refused()
        )));
    }
    pair.send_udp(40620, PORT, 3, 24)
        .map_err(|e| fail(format!("send: {e}")))?;
    let got = kit::collect(&mut session, QUIET, 5000).map_err(fail)?;
    drop(session);

    // skbs of the flow, as the skb functions saw them.
    let flow: HashSet<u64> = got
        .events
        .iter()
        .filter(|e| !helpers.iter().any(|h| *h == *e.function))
        .filter(|e| e.tuple.is_some_and(|t| t.dport == PORT))
        .map(|e| e.skb)
        .collect();
    let helper_events: Vec<_> = got
        .events
        .iter()
        .filter(|e| helpers.iter().any(|h| *h == *e.function))
        .collect();
    let linked: Vec<_> = helper_events
        .iter()
        .filter(|e| flow.contains(&e.skb) && e.tuple.is_some_and(|t| t.dport == PORT))
        .collect();
    if linked.is_empty() {
        return Err(fail(format!(
            "no helper event linked to the flow's skbs: {} helper events, {} flow skbs; \
             {} events ({}); attached {attached:?}",
            helper_events.len(),
            flow.len(),
            got.events.len(),
            kit::some_functions(&got.events, 12)
        )));
    }
    let names: HashSet<&str> = linked.iter().map(|e| &*e.function).collect();
    Ok(Outcome::Pass(format!(
        "{} helper events linked to the flow ({names:?}); helpers found {helpers:?}",
        linked.len()
    )))
}
