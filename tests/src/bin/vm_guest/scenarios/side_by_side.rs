//! `side-by-side`: the figures issue 6 compares with cilium/pwru, with the backend Auto picks.
//! Benchmark output (METRIC lines), not assertions: the scenario fails only when the tracer
//! cannot do the run at all.
//!
//! - start -> attached with 200 OR'd hosts (the simple filter's figure comes from
//!   `full-attach`, whose filter is one host);
//! - a flood of UDP traced with no filter on every skb function: the share of the events the
//!   programs produced (counted by the kernel's own BPF run counters) that reached the reader
//!   and were printed (pwru's text line, written through a 64 KiB buffer to /dev/null, as the
//!   `pwru` example writes them), and whether delivered + reported lost equals produced.

use std::io::Write;
use std::time::{Duration, Instant};

use pwru_core::format::{FormatOptions, Formatter};
use pwru_core::{Session, Tracer};

use crate::backend::Backend;
use crate::kernel_state::Snapshot;
use crate::registry::Ctx;
use crate::report::Outcome;

use super::tracer_kit::{self as kit};
use super::traffic;

const HOSTS: u32 = 200;
/// Datagrams of the flood (issue 15's figure).
const FLOOD: u64 = 5000;

/// Both measurements.
pub fn run(ctx: &mut Ctx, _: Backend) -> Outcome {
    let hosts = match hosts200(ctx) {
        Ok(s) => s,
        Err(e) => return Outcome::Fail(format!("200 hosts: {e}")),
    };
    match flood(ctx) {
        Ok(f) => Outcome::Pass(format!("{hosts}; {f}")),
        Err(e) => Outcome::Fail(format!("{hosts}; flood: {e}")),
    }
}

fn hosts_filter() -> String {
    (0..HOSTS)
        .map(|i| {
            format!(
                "host 10.{}.{}.{}",
                100 + i / 65536,
                (i / 256) % 256,
                i % 256 + 1
            )
        })
        .collect::<Vec<_>>()
        .join(" or ")
}

/// The backend Auto picks, and the function set the attach-heavy runs use with it: every skb
/// function with kprobe-multi (one link per argument position, about a second under TCG);
/// with the others (kprobe on 6.1: ~30 s to attach and ~2 min to detach 1,600 kprobes under
/// TCG, already measured once by `full-attach`) the receive/send path only, named in the
/// metrics as `rxtx`.
fn plan() -> Result<(pwru_core::Backend, Option<&'static str>, &'static str), String> {
    let auto = Tracer::builder()
        .function_regex("ip_rcv")
        .build()
        .map_err(|e| format!("build: {e}"))?
        .backend();
    Ok(if auto == pwru_core::Backend::KprobeMulti {
        (auto, None, "all")
    } else {
        (auto, Some(kit::RX_TX), "rxtx")
    })
}

fn builder(functions: Option<&str>) -> pwru_core::TracerBuilder {
    let b = Tracer::builder();
    match functions {
        Some(f) => b.function_regex(f),
        None => b,
    }
}

fn hosts200(ctx: &mut Ctx) -> Result<String, String> {
    let (_, functions, set) = plan()?;
    // start -> ready to attach over the full set (pwru's "start -> attaching")
    let t0 = Instant::now();
    let full = Tracer::builder()
        .pcap_filter(hosts_filter())
        .build()
        .map_err(|e| format!("build: {e}"))?;
    let ready = t0.elapsed();
    drop(full);
    // The same with one host, in the same boot: what the 200 hosts add is the difference.
    let t0 = Instant::now();
    let one = Tracer::builder()
        .pcap_filter("host 10.100.0.1")
        .build()
        .map_err(|e| format!("build: {e}"))?;
    let ready_one = t0.elapsed();
    drop(one);
    let t0 = Instant::now();
    let tracer = builder(functions)
        .pcap_filter(hosts_filter())
        .build()
        .map_err(|e| format!("build: {e}"))?;
    let backend = tracer.backend();
    let session = tracer.attach().map_err(|e| format!("attach: {e}"))?;
    let attached = t0.elapsed();
    let n = session.attached().len();
    let detach = session.detach();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let r = &mut ctx.report;
    r.metric(
        &format!("start_to_ready_ms.hosts200.all.{backend}"),
        ms(ready),
    );
    r.metric(
        &format!("start_to_ready_ms.host1.all.{backend}"),
        ms(ready_one),
    );
    r.metric(
        &format!("start_to_attached_ms.hosts200.{set}.{backend}"),
        ms(attached),
    );
    r.metric(&format!("hosts200.detach_ms.{set}.{backend}"), ms(detach));
    Ok(format!(
        "200 hosts: ready over all functions {:.2} s after start (one host: {:.2} s); {backend} on {n} functions ({set}) attached {:.2} s after start",
        ready.as_secs_f64(),
        ready_one.as_secs_f64(),
        attached.as_secs_f64()
    ))
}

/// Sum of the kernel's run counters of `progs` (BPF stats must be on).
fn run_count(progs: &std::collections::BTreeSet<u32>) -> u64 {
    aya::programs::loaded_programs()
        .flatten()
        .filter(|p| progs.contains(&p.id()))
        .map(|p| p.run_count())
        .sum()
}

fn flood(ctx: &mut Ctx) -> Result<String, String> {
    let pair = kit::lab("fl", 38)?;
    let _sink = pair
        .listen_udp(traffic::PORT)
        .map_err(|e| format!("listen: {e}"))?;
    // the kernel counts program runs only while someone holds this
    let _stats = aya::sys::enable_stats(aya::sys::Stats::RunTime)
        .map_err(|e| format!("BPF_ENABLE_STATS: {e}"))?;
    let (_, functions, set) = plan()?;
    let before = Snapshot::take()?;
    let tracer = builder(functions)
        .build()
        .map_err(|e| format!("build: {e}"))?;
    let backend = tracer.backend();
    let mut session = tracer.attach().map_err(|e| format!("attach: {e}"))?;
    let progs = Snapshot::take()?.added_since(&before).progs;
    let (sent, got) = std::thread::scope(|s| {
        let sender = s.spawn(|| traffic::udp_burst(&pair, FLOOD));
        let got = read_all(&mut session);
        (
            sender
                .join()
                .unwrap_or_else(|_| Err("sender panicked".into())),
            got,
        )
    });
    let sent = sent?;
    let got = got?;
    // counted from the programs' load (stats were on before), as the reader counts every
    // event from the attach: background traffic (IPv6 router/neighbour solicitations) in
    // between is on both sides
    let produced = run_count(&progs);
    let stats = session.stats();
    drop(session);
    let delivered = got.0;
    let lost = stats.lost.max(got.1);
    let share = delivered as f64 / (produced.max(1)) as f64 * 100.0;
    let accounted = delivered + lost == produced;
    let r = &mut ctx.report;
    r.metric(&format!("flood.packets.{set}.{backend}"), sent as f64);
    r.metric(&format!("flood.produced.{set}.{backend}"), produced as f64);
    r.metric(
        &format!("flood.delivered.{set}.{backend}"),
        delivered as f64,
    );
    r.metric(&format!("flood.lost.{set}.{backend}"), lost as f64);
    r.metric(&format!("flood.delivered_pct.{set}.{backend}"), share);
    r.metric(
        &format!("flood.accounted.{set}.{backend}"),
        if accounted { 1.0 } else { 0.0 },
    );
    Ok(format!(
        "flood of {sent} datagrams with {backend} on {set} functions: {delivered} of {produced} events delivered \
         ({share:.1}%), {lost} reported lost, delivered+lost {} produced",
        if accounted { "==" } else { "!=" }
    ))
}

/// Reads events until 2 s pass without one, printing each as pwru's text line into
/// /dev/null; returns (events read and printed, lost reported).
fn read_all(session: &mut Session) -> Result<(u64, u64), String> {
    let null = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .map_err(|e| format!("/dev/null: {e}"))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 16, null);
    let mut formatter = Formatter::new(FormatOptions::default());
    let mut line = Vec::with_capacity(512);
    let mut write_err = None;
    let got = kit::collect_each(session, Duration::from_secs(2), |ev| {
        line.clear();
        formatter.write_text(ev, &mut line);
        if let Err(e) = out.write_all(&line) {
            write_err.get_or_insert(e);
        }
    })?;
    out.flush().map_err(|e| format!("write: {e}"))?;
    match write_err {
        Some(e) => Err(format!("write: {e}")),
        None => Ok(got),
    }
}
