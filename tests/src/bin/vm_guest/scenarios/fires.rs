//! `fires`: each kind of the backend, attached to its trivial target, counts real packets.

use crate::backend::{Backend, MatrixBackend};
use crate::counters;
use crate::net::ping_a_to_b;
use crate::probes::{self, SLOTS};
use crate::registry::Ctx;
use crate::report::Outcome;

/// Attaches the backend's kinds, pings across a veth pair between two namespaces, and checks
/// that every program counted packets.
pub fn run(ctx: &mut Ctx, backend: Backend) -> Outcome {
    let pair = match super::tracer_kit::lab("fi", 42) {
        Ok(p) => p,
        Err(e) => return Outcome::Fail(format!("netns setup: {e}")),
    };
    let counters = match counters::create_counter_map(SLOTS) {
        Ok(m) => m,
        Err(e) => return Outcome::Fail(e.to_string()),
    };
    let mut attached = Vec::new();
    for &kind in backend.kinds() {
        match probes::attach(kind, backend.trivial_target(), &counters, &mut ctx.btf) {
            Ok(a) => attached.push(a),
            Err(e) => return Outcome::Fail(format!("{}: {}", kind.name(), e.message())),
        }
    }
    const PINGS: u32 = 3;
    if let Err(e) = ping_a_to_b(&pair, false, PINGS) {
        return Outcome::Fail(format!("no traffic: {e}"));
    }
    let mut seen = Vec::new();
    let mut silent = Vec::new();
    for a in &attached {
        match counters::read_counter(&counters, a.kind.slot()) {
            // every echo request and reply is received once: at least 2 per ping
            Ok(n) if n >= u64::from(2 * PINGS) => seen.push(format!("{}={n}", a.kind.name())),
            Ok(n) => silent.push(format!("{}={n} on {}", a.kind.name(), a.target)),
            Err(e) => silent.push(format!("{}: {e}", a.kind.name())),
        }
    }
    drop(attached);
    if silent.is_empty() {
        Outcome::Pass(format!("{} hits after {PINGS} pings", seen.join(" ")))
    } else {
        Outcome::Fail(format!(
            "too few hits for {PINGS} pings: {} (ok: {})",
            silent.join(", "),
            seen.join(" ")
        ))
    }
}
