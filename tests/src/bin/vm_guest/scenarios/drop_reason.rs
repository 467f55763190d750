//! `drop-reason-v4` / `drop-reason-v6`: an nftables rule in namespace B drops UDP to one port;
//! the event stream must contain this kernel's drop function with the netfilter drop reason and
//! the dropped datagram's tuple.

use std::net::IpAddr;

use crate::backend::Backend;
use crate::registry::Ctx;
use crate::report::Outcome;

use super::tracer_kit::{self as kit, QUIET};

const SPORT: u16 = 40123;
const DPORT: u16 = 4242;
/// What nf_hook_slow passes to the drop function for a verdict of `drop`.
const NETFILTER_DROP: &str = "SKB_DROP_REASON_NETFILTER_DROP";

/// IPv4.
pub fn run_v4(_: &mut Ctx, backend: Backend) -> Outcome {
    run(backend, false)
}

/// IPv6.
pub fn run_v6(_: &mut Ctx, backend: Backend) -> Outcome {
    run(backend, true)
}

fn run(backend: Backend, v6: bool) -> Outcome {
    match try_run(backend, v6) {
        Ok(o) | Err(o) => o,
    }
}

fn try_run(backend: Backend, v6: bool) -> Result<Outcome, Outcome> {
    let pair = kit::lab(if v6 { "d6" } else { "d4" }, 31).map_err(Outcome::Fail)?;
    kit::nft(
        &pair.ns_b,
        &format!(
            "table inet pwt {{\n chain in {{\n  type filter hook input priority 0; policy accept\n  \
             udp dport {DPORT} drop\n }}\n}}\n"
        ),
    )
    .map_err(Outcome::Fail)?;
    let (src, dst): (IpAddr, IpAddr) = if v6 {
        (pair.addr6_a.into(), pair.addr6_b.into())
    } else {
        (pair.addr_a.into(), pair.addr_b.into())
    };
    let filter = format!("udp and dst port {DPORT}");
    let mut session = kit::start(kit::packet_tracer(
        backend,
        &format!("ip_rcv|ipv6_rcv|{}", kit::DROP_FUNCS),
        &filter,
    ))
    .map_err(Outcome::Fail)?;
    let sent = if v6 {
        pair.send_udp6(SPORT, DPORT, 3)
    } else {
        pair.send_udp(SPORT, DPORT, 3, 16)
    };
    sent.map_err(|e| Outcome::Fail(format!("send: {e}")))?;
    let got = kit::collect(&mut session, QUIET, 2000).map_err(Outcome::Fail)?;
    drop(session);
    let want_fn = kit::drop_function();
    let drops: Vec<_> = got
        .events
        .iter()
        .filter(|e| &*e.function == want_fn)
        .collect();
    let Some(first) = drops.first() else {
        return Err(Outcome::Fail(format!(
            "no {want_fn} event among {} events ({}), lost {}",
            got.events.len(),
            kit::some_functions(&got.events, 12),
            got.lost
        )));
    };
    let reason = first
        .drop_reason
        .as_ref()
        .map_or("none".to_string(), |r| r.to_string());
    let tuple_ok = |e: &pwru_core::Event| {
        e.tuple.is_some_and(|t| {
            t.src == Some(src)
                && t.dst == Some(dst)
                && (t.sport, t.dport, t.l4_proto) == (SPORT, DPORT, 17)
        })
    };
    let good = drops.iter().find(|e| {
        tuple_ok(e)
            && e.drop_reason
                .as_ref()
                .is_some_and(|r| r.name.as_deref() == Some(NETFILTER_DROP))
    });
    match good {
        Some(e) => Ok(Outcome::Pass(format!(
            "{want_fn}({reason}) {} ({} events, {} drops)",
            e.tuple.map_or(String::new(), |t| t.to_string()),
            got.events.len(),
            drops.len()
        ))),
        None => Err(Outcome::Fail(format!(
            "{want_fn} seen but not with {NETFILTER_DROP} and {src}:{SPORT}->{dst}:{DPORT}(udp): \
             first has reason {reason}, tuple {}",
            first.tuple.map_or("none".to_string(), |t| t.to_string())
        ))),
    }
}
