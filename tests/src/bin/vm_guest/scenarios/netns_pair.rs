//! `netns-pair`: the network setup every packet scenario builds on works on this kernel.

use crate::backend::Backend;
use crate::net::ping_a_to_b;
use crate::registry::Ctx;
use crate::report::Outcome;

/// Creates a namespace pair and pings across it over IPv4 and IPv6.
pub fn run(_: &mut Ctx, _: Backend) -> Outcome {
    let pair = match super::tracer_kit::lab("np", 43) {
        Ok(p) => p,
        Err(e) => return Outcome::Fail(format!("netns setup: {e}")),
    };
    if let Err(e) = ping_a_to_b(&pair, false, 2) {
        return Outcome::Fail(format!("IPv4: {e}"));
    }
    if let Err(e) = ping_a_to_b(&pair, true, 2) {
        return Outcome::Fail(format!("IPv6: {e}"));
    }
    Outcome::Pass(format!(
        "{} <-> {} and {} <-> {} over veth {}/{}",
        pair.addr_a, pair.addr_b, pair.addr6_a, pair.addr6_b, pair.if_a, pair.if_b
    ))
}
