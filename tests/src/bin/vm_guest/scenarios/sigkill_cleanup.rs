//! `sigkill-cleanup`: a child process holding a pwru-core `Session` (packet-path functions with
//! skb tracking, so the tracking programs are in too) is SIGKILLed; every program, map, link
//! and kprobe it made must disappear.

use std::time::Duration;

use crate::backend::Backend;
use crate::registry::Ctx;
use crate::report::Outcome;

use super::sigkill_trivial::kill_holder;
use super::tracer_kit as kit;

/// The hidden command line flag that makes `vm_guest` a tracer holder (see [`hold`]).
pub const HOLD_TRACER_FLAG: &str = "--hold-tracer";

/// Runs in the child: attach a tracer, say `READY`, wait to be killed.
pub fn hold(backend: Backend) -> ! {
    match kit::start(kit::packet_tracer(backend, kit::RX_TX, "udp").track_skb(true)) {
        Ok(session) => {
            println!("READY");
            loop {
                std::thread::sleep(Duration::from_secs(3600));
                let _ = session.stats();
            }
        }
        Err(e) => {
            println!("ERROR {e}");
            std::process::exit(1);
        }
    }
}

/// Spawns the holder, SIGKILLs it, checks that nothing is left.
pub fn run(ctx: &mut Ctx, backend: Backend) -> Outcome {
    kill_holder(ctx, backend, HOLD_TRACER_FLAG, "tracer_sigkill_gone_ms")
}
