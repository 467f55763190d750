//! `non-skb-stackid`: a function without an skb argument on a packet's path is traced with
//! `non_skb_functions` and its hits are shown as events about that packet's skb.
//!
//! `sock_def_readable(struct sock *)` is the socket's data-ready callback: UDP delivery calls it
//! from `__udp_enqueue_schedule_skb`, in the same softirq run (same kernel stack) as `udp_rcv`
//! handled the datagram. Each of its events must carry an skb that `udp_rcv` saw for the
//! traced flow, with that flow's tuple, after `udp_rcv` saw it.

use std::collections::HashMap;

use crate::backend::Backend;
use crate::registry::Ctx;
use crate::report::Outcome;

use super::tracer_kit::{self as kit, QUIET};

const PORT: u16 = 7101;
const SPORT: u16 = 40801;
const COUNT: usize = 3;
const NON_SKB: &str = "sock_def_readable";

/// Runs the scenario on `backend`.
pub fn run(_: &mut Ctx, backend: Backend) -> Outcome {
    match try_run(backend) {
        Ok(o) | Err(o) => o,
    }
}

fn try_run(backend: Backend) -> Result<Outcome, Outcome> {
    let fail = |s: String| Outcome::Fail(s);
    let pair = kit::lab("ns", 41).map_err(fail)?;
    let listener = pair
        .listen_udp(PORT)
        .map_err(|e| fail(format!("listen: {e}")))?;
    let filter = format!("udp and dst host {} and dst port {PORT}", pair.addr_b);
    let builder =
        kit::packet_tracer(backend, "ip_rcv|udp_rcv", &filter).non_skb_functions([NON_SKB]);
    let tracer = builder.build().map_err(|e| fail(format!("build: {e}")))?;
    if tracer.non_skb_targets() != [NON_SKB.to_string()] {
        return Err(fail(format!(
            "non-skb targets {:?}, expected [{NON_SKB}]",
            tracer.non_skb_targets()
        )));
    }
    let mut session = tracer.attach().map_err(|e| fail(format!("attach: {e}")))?;
    if !session.attached().iter().any(|a| a == NON_SKB) {
        return Err(fail(format!(
            "{NON_SKB} not attached; refused: {:?}",
            session.refused()
        )));
    }
    pair.send_udp(SPORT, PORT, COUNT, 32)
        .map_err(|e| fail(format!("send: {e}")))?;
    let got = kit::collect(&mut session, QUIET, 500).map_err(fail)?;
    drop(session);
    let mut buf = [0u8; 64];
    let delivered = (0..COUNT)
        .filter(|_| listener.recv(&mut buf).is_ok())
        .count();

    // When udp_rcv first saw each skb of the flow.
    let mut at_udp_rcv: HashMap<u64, u64> = HashMap::new();
    for e in got.events.iter().filter(|e| &*e.function == "udp_rcv") {
        at_udp_rcv.entry(e.skb).or_insert(e.timestamp_ns);
    }
    let linked: Vec<_> = got
        .events
        .iter()
        .filter(|e| &*e.function == NON_SKB)
        .collect();
    let all = kit::some_functions(&got.events, 10);
    if linked.is_empty() {
        return Err(fail(format!(
            "no {NON_SKB} event ({} events: {all}; {delivered} of {COUNT} delivered; lost {})",
            got.events.len(),
            got.lost
        )));
    }
    for e in &linked {
        let Some(&seen) = at_udp_rcv.get(&e.skb) else {
            return Err(fail(format!(
                "{NON_SKB} event linked to skb {:#x}, which udp_rcv never saw in this flow \
                 (flow skbs {:x?})",
                e.skb,
                at_udp_rcv.keys().collect::<Vec<_>>()
            )));
        };
        let tuple_ok = e.tuple.is_some_and(|t| {
            t.dport == PORT && t.sport == SPORT && t.dst == Some(pair.addr_b.into())
        });
        if !tuple_ok || !e.tracked || e.timestamp_ns < seen {
            return Err(fail(format!(
                "{NON_SKB} event not about the flow's packet after udp_rcv: tracked {}, \
                 tuple {:?}, {} ns after udp_rcv",
                e.tracked,
                e.tuple.map(|t| t.to_string()),
                e.timestamp_ns as i128 - seen as i128
            )));
        }
    }
    if delivered != COUNT {
        return Err(fail(format!("{delivered} of {COUNT} datagrams delivered")));
    }
    Ok(Outcome::Pass(format!(
        "{} {NON_SKB} events, each linked to a datagram udp_rcv saw ({} skbs), {} delivered",
        linked.len(),
        at_udp_rcv.len(),
        delivered
    )))
}
