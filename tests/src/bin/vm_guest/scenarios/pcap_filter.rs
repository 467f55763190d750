//! `pcap-filter`: several UDP flows (and an IPv6 one) cross the veth pair; a complex expression
//! must let through the events of exactly one of them.

use crate::backend::Backend;
use crate::registry::Ctx;
use crate::report::Outcome;

use super::tracer_kit::{self as kit, QUIET};

/// (source port, destination port, payload bytes); only the first matches [`filter`].
const FLOWS: [(u16, u16, usize); 5] = [
    (6002, 5002, 200), // the intended flow
    (6001, 5001, 200), // wrong destination port
    (6009, 5002, 200), // excluded source port
    (6004, 5002, 16),  // too short
    (6005, 5099, 16),  // allowed port, too short
];

fn filter(a: &str, b: &str) -> String {
    format!(
        "udp and src host {a} and dst host {b} and (dst port 5002 or dst port 5099) \
         and not src port 6009 and greater 150"
    )
}

/// Sends every flow and checks each event belongs to the intended one.
pub fn run(_: &mut Ctx, backend: Backend) -> Outcome {
    match try_run(backend) {
        Ok(o) | Err(o) => o,
    }
}

fn try_run(backend: Backend) -> Result<Outcome, Outcome> {
    let pair = kit::lab("pf", 32).map_err(Outcome::Fail)?;
    let expr = filter(&pair.addr_a.to_string(), &pair.addr_b.to_string());
    let tracer = kit::packet_tracer(backend, kit::RX_TX, &expr)
        .build()
        .map_err(|e| Outcome::Fail(format!("build: {e}")))?;
    let reads = kit::filter_reads(&tracer);
    let mut session = tracer
        .attach()
        .map_err(|e| Outcome::Fail(format!("attach: {e}")))?;
    for (sport, dport, len) in FLOWS {
        pair.send_udp(sport, dport, 2, len)
            .map_err(|e| Outcome::Fail(format!("send {sport}->{dport}: {e}")))?;
    }
    // the same ports over IPv6 must not match `src host <IPv4>`
    pair.send_udp6(6002, 5002, 2)
        .map_err(|e| Outcome::Fail(format!("send v6: {e}")))?;
    let got = kit::collect(&mut session, QUIET, 5000).map_err(Outcome::Fail)?;
    drop(session);
    let (want_s, want_d, _) = FLOWS[0];
    let mut stray = Vec::new();
    let mut matched = 0;
    for e in &got.events {
        match e.tuple {
            Some(t)
                if t.src == Some(pair.addr_a.into()) && (t.sport, t.dport) == (want_s, want_d) =>
            {
                matched += 1
            }
            other => stray.push(format!(
                "{}@{}",
                other.map_or("no tuple".to_string(), |t| t.to_string()),
                e.function
            )),
        }
    }
    if matched == 0 {
        return Err(Outcome::Fail(format!(
            "no event of the intended flow ({} events, lost {})",
            got.events.len(),
            got.lost
        )));
    }
    if !stray.is_empty() {
        stray.truncate(5);
        return Err(Outcome::Fail(format!(
            "{matched} events of the intended flow but also: {}",
            stray.join("; ")
        )));
    }
    Ok(Outcome::Pass(format!(
        "{matched} events, all {}:{want_s}->{}:{want_d}; 4 other v4 flows and 1 v6 flow filtered out ({reads}; {})",
        pair.addr_a,
        pair.addr_b,
        kit::some_functions(&got.events, 6)
    )))
}
