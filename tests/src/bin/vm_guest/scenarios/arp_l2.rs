//! `arp-l2`: with the L2-only filter `arp`, the ARP exchange of a first packet between the two
//! namespaces appears at `arp_rcv`.

use crate::backend::Backend;
use crate::registry::Ctx;
use crate::report::Outcome;

use super::tracer_kit::{self as kit, QUIET};

const ETH_P_ARP: u16 = 0x0806;

/// Sends one datagram from a namespace with an empty neighbour table and looks for ARP.
pub fn run(_: &mut Ctx, backend: Backend) -> Outcome {
    match try_run(backend) {
        Ok(o) | Err(o) => o,
    }
}

fn try_run(backend: Backend) -> Result<Outcome, Outcome> {
    // a fresh pair: A has never resolved B, so the datagram needs an ARP request and reply
    let pair = kit::lab("ar", 34).map_err(Outcome::Fail)?;
    let mut session = kit::start(kit::packet_tracer(
        backend,
        "arp_rcv|arp_process|__dev_queue_xmit|ip_output",
        "arp",
    ))
    .map_err(Outcome::Fail)?;
    pair.send_udp(40300, 9, 1, 16)
        .map_err(|e| Outcome::Fail(format!("send: {e}")))?;
    let got = kit::collect(&mut session, QUIET, 2000).map_err(Outcome::Fail)?;
    drop(session);
    let at_arp_rcv: Vec<_> = got
        .events
        .iter()
        .filter(|e| &*e.function == "arp_rcv")
        .collect();
    let not_arp: Vec<_> = got
        .events
        .iter()
        .filter(|e| e.meta.as_ref().is_some_and(|m| m.protocol != ETH_P_ARP))
        .collect();
    if let Some(e) = not_arp.first() {
        return Err(Outcome::Fail(format!(
            "{} events that are not ARP, e.g. protocol {:#06x} at {}",
            not_arp.len(),
            e.meta.as_ref().map_or(0, |m| m.protocol),
            e.function
        )));
    }
    if at_arp_rcv.is_empty() {
        return Err(Outcome::Fail(format!(
            "no arp_rcv event among {} ({}), lost {}",
            got.events.len(),
            kit::some_functions(&got.events, 10),
            got.lost
        )));
    }
    Ok(Outcome::Pass(format!(
        "{} arp_rcv events (request and reply), {} events in all, all protocol 0x0806",
        at_arp_rcv.len(),
        got.events.len()
    )))
}
