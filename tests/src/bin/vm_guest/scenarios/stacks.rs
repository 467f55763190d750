//! `stacks`: with stacks and callers captured, no event's stack starts in the BPF program, a
//! trampoline or the tracepoint/kprobe dispatch glue, and no caller is such a frame (the
//! session trims them in user space; this checks the frame names each kernel really uses).

use pwru_core::symbols::is_dispatch_frame;
use pwru_core::{Capture, Event, Tracer};

use crate::backend::Backend;
use crate::registry::Ctx;
use crate::report::Outcome;

use super::tracer_kit::{self as kit, QUIET};

const PORT: u16 = 7104;

/// Sends datagrams A -> B and checks the stack and caller of every event.
pub fn run(ctx: &mut Ctx, backend: Backend) -> Outcome {
    match try_run(ctx, backend) {
        Ok(o) | Err(o) => o,
    }
}

fn frames(e: &Event) -> String {
    e.stack
        .iter()
        .take(4)
        .map(|s| s.name.to_string())
        .collect::<Vec<_>>()
        .join(" < ")
}

fn try_run(ctx: &mut Ctx, backend: Backend) -> Result<Outcome, Outcome> {
    let pair = kit::lab("st", 36).map_err(Outcome::Fail)?;
    let mut builder = Tracer::builder()
        .backend(backend)
        .pcap_filter(format!("udp and dst port {PORT}"))
        .capture(Capture::default().with_stack(true).with_caller(true));
    if backend != Backend::Tracepoint {
        builder = builder.function_regex("ip_rcv|udp_rcv|ip_output|__dev_queue_xmit");
    }
    let mut session = kit::start(builder).map_err(Outcome::Fail)?;
    pair.send_udp(40400, PORT, 2, 16)
        .map_err(|e| Outcome::Fail(format!("send: {e}")))?;
    let got = kit::collect(&mut session, QUIET, 2000).map_err(Outcome::Fail)?;
    drop(session);
    let mut shown = Vec::new();
    let mut bad = Vec::new();
    let mut with_stack = 0;
    for e in &got.events {
        if !shown.contains(&e.function) {
            shown.push(e.function.clone());
            ctx.report.info(&format!(
                "stacks {backend:?} {}: caller {} stack {}",
                e.function,
                e.caller.as_ref().map_or("-".into(), |c| c.name.to_string()),
                frames(e)
            ));
        }
        if let Some(first) = e.stack.first() {
            with_stack += 1;
            if is_dispatch_frame(&first.name) {
                bad.push(format!("{}: stack starts at {}", e.function, first.name));
            }
        }
        if let Some(c) = e.caller.as_ref().filter(|c| is_dispatch_frame(&c.name)) {
            bad.push(format!("{}: caller {}", e.function, c.name));
        }
    }
    if with_stack == 0 {
        return Err(Outcome::Fail(format!(
            "no event with a stack among {} ({}), lost {}",
            got.events.len(),
            kit::some_functions(&got.events, 10),
            got.lost
        )));
    }
    if !bad.is_empty() {
        bad.truncate(4);
        return Err(Outcome::Fail(bad.join("; ")));
    }
    Ok(Outcome::Pass(format!(
        "{with_stack} stacks, none starting in dispatch frames; functions {}",
        kit::some_functions(&got.events, 8)
    )))
}
