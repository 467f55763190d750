//! `attach-speed`: the same subset of skb functions attached with two threads and with one,
//! twice each, alternated, in the same boot, each detached (on pwru-core's detach threads) and checked
//! for exact accounting and a clean detach; then, with UDP traffic running while attaching, how soon after the attach
//! began the kernel produced the first event (the hot path is attached first).

use std::time::{Duration, Instant};

use pwru_core::{Capture, Tracer};

use crate::backend::Backend;
use crate::kernel_state::{wait_until_gone, Snapshot};
use crate::registry::Ctx;
use crate::report::Outcome;

use super::full_attach::NO_MATCH;
use super::tracer_kit::{self as kit};
use super::traffic;

/// A few hundred functions (hundreds of kprobes or trampolines: seconds, not minutes, under
/// TCG), the hot path among them.
pub const SUBSET: &str = "(__netif_receive_skb_core|ip_rcv|ip_local_deliver|ip_output|__dev_queue_xmit|consume_skb|(tcp|udp|ip|netif|neigh)_.*)";

/// A measurement, minutes under TCG: runs only when named (`--scenario attach-speed`); a whole
/// matrix run would push the slow kernel's boot past its timeout.
pub fn precondition(ctx: &Ctx, _: Backend) -> Option<String> {
    (!ctx.named.iter().any(|s| s == "attach-speed"))
        .then(|| "a timing run (minutes under TCG): run it by name, --scenario attach-speed".into())
}

/// Attaches `SUBSET` with 2 threads and with 1 (twice each), then measures the first event.
pub fn run(ctx: &mut Ctx, backend: Backend) -> Outcome {
    match try_run(ctx, backend) {
        Ok(o) | Err(o) => o,
    }
}

fn try_run(ctx: &mut Ctx, backend: Backend) -> Result<Outcome, Outcome> {
    let b = backend.name();
    let mut summary = Vec::new();
    // Explicit counts, each twice, alternated so that a change of host load falls on both.
    for (i, threads) in [2usize, 1, 2, 1].into_iter().enumerate() {
        let label = if i < 2 {
            threads.to_string()
        } else {
            format!("{threads}_again")
        };
        let m = round(backend, threads)?;
        let r = &mut ctx.report;
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        r.metric(
            &format!("speed.threads_{label}.targets.{b}"),
            m.targets as f64,
        );
        r.metric(
            &format!("speed.threads_{label}.attach_ms.{b}"),
            ms(m.attach),
        );
        r.metric(
            &format!("speed.threads_{label}.detach_ms.{b}"),
            ms(m.detach),
        );
        r.metric(
            &format!("speed.threads_{label}.attach_ms_per_fn.{b}"),
            ms(m.attach) / m.attached.max(1) as f64,
        );
        r.metric(
            &format!("speed.threads_{label}.detach_ms_per_fn.{b}"),
            ms(m.detach) / m.attached.max(1) as f64,
        );
        summary.push(format!(
            "threads {label}: {}/{} attached in {:.2} s, detached in {:.2} s",
            m.attached,
            m.targets,
            m.attach.as_secs_f64(),
            m.detach.as_secs_f64()
        ));
    }
    let first = first_event(backend)?;
    let r = &mut ctx.report;
    r.metric(&format!("speed.first_event_ms.{b}"), first.first_ms);
    r.metric(&format!("speed.first_event_attach_ms.{b}"), first.attach_ms);
    summary.push(format!(
        "first event {:.0} ms after attach began (attach took {:.0} ms, {} events produced \
         while attaching)",
        first.first_ms, first.attach_ms, first.while_attaching
    ));
    // Hot path first: with kprobes and trampolines attached one by one, packets crossing the
    // hot path are traced before the last function is attached.
    if matches!(backend, Backend::Kprobe | Backend::Fentry) && first.while_attaching == 0 {
        return Err(Outcome::Fail(format!(
            "no event was produced while attaching; {}",
            summary.join("; ")
        )));
    }
    Ok(Outcome::Pass(summary.join("; ")))
}

struct Round {
    targets: usize,
    attached: usize,
    attach: Duration,
    detach: Duration,
}

/// One attach and detach of [`SUBSET`] with `threads`, checked: every target attached or
/// refused, one kernel object per attached function, all gone after detach.
fn round(backend: Backend, threads: usize) -> Result<Round, Outcome> {
    let before = Snapshot::take().map_err(Outcome::Fail)?;
    let tracer = Tracer::builder()
        .backend(backend)
        .function_regex(SUBSET)
        .pcap_filter(NO_MATCH)
        // Packet ids off: their lifetime hooks (skb_clone, skb_copy, kfree_skbmem, ...) are
        // kernel objects too, and the check below counts one per traced function.
        .capture(Capture::default().with_packet_id(false))
        .attach_threads(threads)
        .build()
        .map_err(|e| Outcome::Fail(format!("build: {e}")))?;
    let targets = tracer.targets().len();
    let t0 = Instant::now();
    let session = tracer
        .attach()
        .map_err(|e| Outcome::Fail(format!("attach ({threads} threads): {e}")))?;
    let attach = t0.elapsed();
    let (attached, refused) = (session.attached().len(), session.refused().len());
    let made = Snapshot::take()
        .map_err(Outcome::Fail)?
        .added_since(&before);
    let detach = session.detach();
    if attached + refused != targets {
        return Err(Outcome::Fail(format!(
            "{threads} threads: {targets} targets but {attached} attached + {refused} refused"
        )));
    }
    let per_function = match backend {
        Backend::Kprobe if !made.kprobes.is_empty() => Some(("kprobes", made.kprobes.len())),
        Backend::Fentry => Some(("links", made.links.len())),
        _ => None,
    };
    if let Some((what, n)) = per_function {
        if n != attached {
            return Err(Outcome::Fail(format!(
                "{threads} threads: {attached} functions attached but {n} new {what}"
            )));
        }
    }
    wait_until_gone(&made, Duration::from_secs(60))
        .map_err(|e| Outcome::Fail(format!("{threads} threads, after detach: {e}")))?;
    Ok(Round {
        targets,
        attached,
        attach,
        detach,
    })
}

struct FirstEvent {
    first_ms: f64,
    attach_ms: f64,
    while_attaching: usize,
}

/// With a datagram every 2 ms from A to B, attaches [`SUBSET`] with a filter matching them
/// and finds the earliest event's kernel time relative to the start of the attach.
fn first_event(backend: Backend) -> Result<FirstEvent, Outcome> {
    let pair = kit::lab("as", 38).map_err(Outcome::Fail)?;
    let _sink = pair
        .listen_udp(traffic::PORT)
        .map_err(|e| Outcome::Fail(format!("listen: {e}")))?;
    let sender = traffic::Paced::start(&pair);
    let tracer = Tracer::builder()
        .backend(backend)
        .function_regex(SUBSET)
        .pcap_filter(format!("udp and dst port {}", traffic::PORT))
        .build()
        .map_err(|e| Outcome::Fail(format!("build: {e}")));
    let started_ns = mono_ns()?;
    let session = tracer.and_then(|t| {
        t.attach()
            .map_err(|e| Outcome::Fail(format!("attach: {e}")))
    });
    let ended_ns = mono_ns()?;
    let collected =
        session.and_then(|mut s| kit::collect(&mut s, kit::QUIET, 20_000).map_err(Outcome::Fail));
    sender.finish().map_err(Outcome::Fail)?;
    let events = collected?.events;
    let first = events
        .iter()
        .map(|e| e.timestamp_ns)
        .min()
        .ok_or_else(|| Outcome::Fail("no event at all with traffic running".into()))?;
    let while_attaching = events
        .iter()
        .filter(|e| i128::from(e.timestamp_ns) < ended_ns)
        .count();
    Ok(FirstEvent {
        first_ms: (i128::from(first) - started_ns) as f64 / 1e6,
        attach_ms: (ended_ns - started_ns) as f64 / 1e6,
        while_attaching,
    })
}

/// CLOCK_MONOTONIC in ns, the clock of the events' timestamps.
fn mono_ns() -> Result<i128, Outcome> {
    pwru_core::sys::clock::now_ns(libc::CLOCK_MONOTONIC)
        .map_err(|e| Outcome::Fail(format!("clock: {e}")))
}
