//! `overhead`: what tracing costs the traffic, in one boot. UDP packets/s across a veth pair
//! (a burst of [`COUNT`] datagrams, the rate taken at the receiver, a few rounds per state
//! in each block of states, the median kept) with nothing attached, with pwru-rs attached
//! under a filter that matches nothing (default capture, then packet ids off), and with an
//! empty program (`r0 = 0; exit`) attached to exactly the functions the session attached. The ratios are printed, never
//! asserted; what is asserted is the accounting: the session counted runs for the traffic,
//! built no record and delivered none, and the empty programs ran.

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use pwru_core::{Capture, Tracer};
use pwru_testkit::netlab::VethPair;

use crate::backend::Backend;
use crate::counters::{self, LoadSpec};
use crate::registry::Ctx;
use crate::report::Outcome;

use super::attach_speed::SUBSET;
use super::full_attach::NO_MATCH;
use super::tracer_kit::{self as kit};

/// Datagrams per round.
const COUNT: u64 = 20_000;
/// Rounds per state with kprobe and fentry (one block); the median is kept.
const ROUNDS: usize = 3;
/// The port B listens on.
const PORT: u16 = 9_101;
/// The payload of the datagram that tells the receiver the burst is over.
const END: [u8; 1] = [0xff];
/// The receive buffer for the measurement: a burst must not overflow it while the receiving
/// thread waits for a CPU (the default holds about 300 small datagrams).
const RMEM: &str = "16777216";
const RMEM_DEFAULT: &str = "/proc/sys/net/core/rmem_default";
const RMEM_MAX: &str = "/proc/sys/net/core/rmem_max";

/// A measurement, minutes under TCG with kprobe and fentry: runs only when named
/// (`--scenario overhead`).
pub fn precondition(ctx: &Ctx, _: Backend) -> Option<String> {
    (!ctx.named.iter().any(|s| s == "overhead"))
        .then(|| "a timing run (minutes under TCG): run it by name, --scenario overhead".into())
}

/// Measures the three states and reports their ratios.
pub fn run(ctx: &mut Ctx, backend: Backend) -> Outcome {
    let _rmem = match RmemGuard::raise() {
        Ok(g) => g,
        Err(e) => return Outcome::Fail(e),
    };
    match try_run(ctx, backend) {
        Ok(o) | Err(o) => o,
    }
}

/// One state's rounds.
struct Rates {
    /// Datagrams/s at the receiver, per round.
    received: Vec<f64>,
    /// Datagrams/s the sender managed, per round.
    sent: Vec<f64>,
    /// Datagrams the receiver missed, all rounds.
    missed: u64,
}

impl Rates {
    fn new() -> Self {
        Rates {
            received: Vec::new(),
            sent: Vec::new(),
            missed: 0,
        }
    }

    fn extend(&mut self, other: Rates) {
        self.received.extend(other.received);
        self.sent.extend(other.sent);
        self.missed += other.missed;
    }

    fn median(v: &[f64]) -> f64 {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    }

    fn rx(&self) -> f64 {
        Self::median(&self.received)
    }

    fn tx(&self) -> f64 {
        Self::median(&self.sent)
    }
}

fn try_run(ctx: &mut Ctx, backend: Backend) -> Result<Outcome, Outcome> {
    let b = backend.name();
    let pair = kit::lab("ov", 39).map_err(Outcome::Fail)?;
    // Every function discovery finds with kprobe.multi (one link: seconds); a few hundred
    // with kprobe and fentry, whose attach and detach take minutes for the whole set under TCG.
    let functions = (backend != Backend::KprobeMulti).then_some(SUBSET);

    // Blocks of one series of rounds per state, so that a change of the host's load (the
    // VM's vCPUs are host threads) falls on every state alike; kprobe.multi attaches in
    // seconds and gets five blocks of two rounds, kprobe and fentry one block.
    let (blocks, per_state) = if backend == Backend::KprobeMulti {
        (5, 2)
    } else {
        (1, ROUNDS)
    };
    let (mut none, mut pwru, mut pwru_noids, mut empty) =
        (Rates::new(), Rates::new(), Rates::new(), Rates::new());
    let (mut names, mut runs, mut runs_noids, mut empty_runs) = (Vec::new(), 0, 0, 0);
    let mut empty_missed = Vec::new();
    let (mut block_ratios, mut block_ratios_noids) = (Vec::new(), Vec::new());
    for _ in 0..blocks {
        let n = rounds(&pair, per_state).map_err(Outcome::Fail)?;
        let (p, attached, r) = traced(&pair, backend, functions, true, per_state)?;
        let (q, _, r_noids) = traced(&pair, backend, functions, false, per_state)?;
        let (e, missed, r_empty) = with_empty(ctx, &pair, backend, &attached, per_state)?;
        block_ratios.push(e.rx() / p.rx().max(1.0));
        block_ratios_noids.push(e.rx() / q.rx().max(1.0));
        none.extend(n);
        pwru.extend(p);
        pwru_noids.extend(q);
        empty.extend(e);
        (names, empty_missed) = (attached, missed);
        runs += r;
        runs_noids += r_noids;
        empty_runs += r_empty;
    }
    let none_after = rounds(&pair, per_state).map_err(Outcome::Fail)?;
    // How far the rate without a tracer moved between the first rounds and the last.
    let drift =
        Rates::median(none.received.get(..per_state).unwrap_or(&[])) / none_after.rx().max(1.0);
    none.extend(none_after);
    block_ratios.sort_by(f64::total_cmp);
    block_ratios_noids.sort_by(f64::total_cmp);
    let r = &mut ctx.report;
    r.metric(&format!("overhead.functions.{b}"), names.len() as f64);
    r.metric(
        &format!("overhead.empty_missed.{b}"),
        empty_missed.len() as f64,
    );
    for (state, rates) in [
        ("none", &none),
        ("empty", &empty),
        ("pwru", &pwru),
        ("pwru_noids", &pwru_noids),
    ] {
        r.metric(&format!("overhead.rx_pps.{state}.{b}"), rates.rx());
        r.metric(&format!("overhead.tx_pps.{state}.{b}"), rates.tx());
        r.metric(&format!("overhead.missed.{state}.{b}"), rates.missed as f64);
    }
    let ratio = |a: &Rates, c: &Rates| a.rx() / c.rx().max(1.0);
    r.metric(&format!("overhead.none_over_pwru.{b}"), ratio(&none, &pwru));
    r.metric(
        &format!("overhead.empty_over_pwru.{b}"),
        ratio(&empty, &pwru),
    );
    r.metric(
        &format!("overhead.empty_over_pwru_noids.{b}"),
        ratio(&empty, &pwru_noids),
    );
    r.metric(
        &format!("overhead.none_over_empty.{b}"),
        ratio(&none, &empty),
    );
    r.metric(&format!("overhead.runs.pwru.{b}"), runs as f64);
    r.metric(&format!("overhead.runs.pwru_noids.{b}"), runs_noids as f64);
    r.metric(&format!("overhead.runs.empty.{b}"), empty_runs as f64);
    r.metric(&format!("overhead.none_drift.{b}"), drift);
    // Each block's own ratio: paired within the block, so slow drift of the host cancels.
    for (what, v) in [("pwru", &block_ratios), ("pwru_noids", &block_ratios_noids)] {
        if let (Some(lo), Some(hi)) = (v.first(), v.last()) {
            r.metric(&format!("overhead.empty_over_{what}.block_min.{b}"), *lo);
            r.metric(
                &format!("overhead.empty_over_{what}.block_median.{b}"),
                Rates::median(v),
            );
            r.metric(&format!("overhead.empty_over_{what}.block_max.{b}"), *hi);
        }
    }

    let missed_note = match empty_missed.first() {
        Some(first) => format!(
            "; the empty program missed {} of the functions (first: {first})",
            empty_missed.len()
        ),
        None => String::new(),
    };
    Ok(Outcome::Pass(format!(
        "{} functions; rx pkt/s: none {:.0}, empty {:.0}, pwru {:.0} ({:.2}x none, {:.2}x empty), \
         pwru without ids {:.0} ({:.2}x empty); {runs} pwru runs, none emitted{missed_note}",
        names.len(),
        none.rx(),
        empty.rx(),
        pwru.rx(),
        ratio(&none, &pwru),
        ratio(&empty, &pwru),
        pwru_noids.rx(),
        ratio(&empty, &pwru_noids),
    )))
}

/// pwru-rs attached with [`NO_MATCH`] (packet ids on or off): its rounds, the names of the
/// functions attached, and its counted runs. Fails unless the runs cover the traffic and no
/// record was built or read.
fn traced(
    pair: &VethPair,
    backend: Backend,
    functions: Option<&str>,
    ids: bool,
    per_state: usize,
) -> Result<(Rates, Vec<String>, u64), Outcome> {
    let what = if ids { "pwru" } else { "pwru without ids" };
    let mut builder = Tracer::builder()
        .backend(backend)
        .pcap_filter(NO_MATCH)
        .capture(Capture::default().with_packet_id(ids));
    if let Some(f) = functions {
        builder = builder.function_regex(f);
    }
    let mut session = kit::start(builder).map_err(|e| Outcome::Fail(format!("{what}: {e}")))?;
    let rates = rounds(pair, per_state).map_err(Outcome::Fail)?;
    // Nothing matches, so nothing may arrive: read what the stream has (nothing, or a
    // failure to report) before the counters.
    let collected = kit::collect(&mut session, Duration::from_millis(200), usize::MAX)
        .map_err(|e| Outcome::Fail(format!("{what}: {e}")))?;
    let stats = session
        .try_stats()
        .map_err(|e| Outcome::Fail(format!("{what}: stats: {e}")))?;
    let names = session.attached().to_vec();
    session.detach();
    let runs = stats.runs.total();
    let sent = COUNT * per_state as u64;
    if !collected.events.is_empty() || stats.records != 0 || stats.runs.produced() != 0 {
        return Err(Outcome::Fail(format!(
            "{what}: filter {NO_MATCH:?} matches nothing, yet {} events read, {} records, {} \
             produced",
            collected.events.len(),
            stats.records,
            stats.runs.produced()
        )));
    }
    // Every datagram passes several traced functions; each run is counted under one outcome.
    if stats.runs.filtered_pcap < sent {
        return Err(Outcome::Fail(format!(
            "{what}: {sent} datagrams sent but only {} runs left out by the filter ({runs} runs)",
            stats.runs.filtered_pcap
        )));
    }
    Ok((rates, names, runs))
}

/// The empty program attached to `names` the way `backend` attaches: its rounds, how many
/// functions it attached to, and its runs for a short burst with BPF statistics on.
fn with_empty(
    ctx: &mut Ctx,
    pair: &VethPair,
    backend: Backend,
    names: &[String],
    per_state: usize,
) -> Result<(Rates, Vec<String>, u64), Outcome> {
    let insns = counters::return_zero_program();
    let fail = |e: counters::SysError| Outcome::Fail(format!("empty program: {e}"));
    // (program, link) pairs: one program for kprobe.multi and kprobe, one per function for
    // fentry (its target is fixed at load).
    let mut progs: Vec<OwnedFd> = Vec::new();
    let mut links: Vec<OwnedFd> = Vec::new();
    // Functions the empty program could not attach to (e.g. fentry on a module function,
    // whose BTF is not in vmlinux): reported, they make the comparison err against pwru-rs.
    let mut missed: Vec<String> = Vec::new();
    match backend {
        Backend::KprobeMulti | Backend::Kprobe => {
            let spec = LoadSpec {
                prog_type: counters::PROG_TYPE_KPROBE,
                expected_attach_type: if backend == Backend::KprobeMulti {
                    counters::ATTACH_TRACE_KPROBE_MULTI
                } else {
                    0
                },
                ..LoadSpec::default()
            };
            let prog = counters::load_program("pwt_empty", spec, &insns).map_err(fail)?;
            if backend == Backend::KprobeMulti {
                let syms: Vec<&str> = names.iter().map(String::as_str).collect();
                links.push(counters::attach_kprobe_multi(&prog, &syms, false).map_err(fail)?);
            } else {
                for n in names {
                    match counters::attach_kprobe(&prog, n, false) {
                        Ok(l) => links.push(l),
                        Err(e) => missed.push(format!("{n}: {e}")),
                    }
                }
            }
            progs.push(prog);
        }
        Backend::Fentry => {
            for n in names {
                let loaded = ctx.btf.func_id(n).and_then(|id| {
                    let spec = LoadSpec {
                        prog_type: counters::PROG_TYPE_TRACING,
                        expected_attach_type: counters::ATTACH_TRACE_FENTRY,
                        attach_btf_id: id,
                    };
                    let prog = counters::load_program("pwt_empty", spec, &insns)
                        .map_err(|e| e.to_string())?;
                    let link = counters::attach_tracing(&prog, &format!("fentry {n}"))
                        .map_err(|e| e.to_string())?;
                    Ok((prog, link))
                });
                match loaded {
                    Ok((p, l)) => {
                        progs.push(p);
                        links.push(l);
                    }
                    Err(e) => missed.push(format!("{n}: {e}")),
                }
            }
        }
        other => {
            return Err(Outcome::Skip(format!(
                "{} traces tracepoints, not functions",
                other.name()
            )))
        }
    }
    let rates = rounds(pair, per_state).map_err(Outcome::Fail)?;
    // That the empty programs ran: the kernel's run counts over a short burst (statistics
    // on only now, as they add two clock reads to every run).
    let stats = pwru_core::backend::enable_stats()
        .map_err(|e| Outcome::Fail(format!("BPF_ENABLE_STATS: {e}")))?;
    let count_runs = |progs: &[OwnedFd]| -> Result<u64, Outcome> {
        progs.iter().try_fold(0u64, |sum, p| {
            pwru_core::sys::prog_info(p.as_fd())
                .map(|i| sum + i.run_cnt)
                .map_err(|e| Outcome::Fail(format!("empty program info: {e}")))
        })
    };
    let before = count_runs(&progs)?;
    const CHECK: u64 = 200;
    burst(pair, CHECK).map_err(Outcome::Fail)?;
    let runs = count_runs(&progs)? - before;
    drop(stats);
    drop(links);
    drop(progs);
    if runs < CHECK {
        return Err(Outcome::Fail(format!(
            "the empty programs ran {runs} times for {CHECK} datagrams"
        )));
    }
    Ok((rates, missed, runs))
}

/// `n` bursts of [`COUNT`] datagrams.
fn rounds(pair: &VethPair, n: usize) -> Result<Rates, String> {
    let mut r = Rates::new();
    for _ in 0..n {
        let b = burst(pair, COUNT)?;
        r.received.push(b.received_pps);
        r.sent.push(b.sent_pps);
        r.missed += COUNT - b.received;
    }
    Ok(r)
}

/// One burst, as the receiver saw it.
struct Burst {
    received: u64,
    received_pps: f64,
    sent_pps: f64,
}

/// Sends `count` 64-byte datagrams from A to B as fast as possible, then end markers; B
/// counts them from the first to the last it received.
fn burst(pair: &VethPair, count: u64) -> Result<Burst, String> {
    let sock = pair.listen_udp(PORT).map_err(|e| format!("listen: {e}"))?;
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| format!("read timeout: {e}"))?;
    let receiver = std::thread::spawn(move || receive(&sock, count));
    let dst = SocketAddr::from((pair.addr_b, PORT));
    let sent = VethPair::in_netns(&pair.ns_a, move || {
        let s = UdpSocket::bind(("0.0.0.0", 0))?;
        let buf = [0x5au8; 64];
        let t0 = Instant::now();
        for _ in 0..count {
            // a full socket buffer on B drops, it does not fail the send
            let _ = s.send_to(&buf, dst);
        }
        let elapsed = t0.elapsed();
        // The markers go last; several, in case one is dropped.
        for _ in 0..3 {
            s.send_to(&END, dst)?;
        }
        Ok(elapsed)
    })
    .map_err(|e| format!("send: {e}"))?;
    let (received, span) = receiver
        .join()
        .map_err(|_| "receiver thread panicked".to_string())??;
    Ok(Burst {
        received,
        received_pps: received.saturating_sub(1) as f64 / span.as_secs_f64().max(1e-9),
        sent_pps: count as f64 / sent.as_secs_f64().max(1e-9),
    })
}

/// Counts datagrams until an end marker or `count`: how many, and the time from the first to
/// the last.
fn receive(sock: &UdpSocket, count: u64) -> Result<(u64, Duration), String> {
    let mut buf = [0u8; 128];
    let mut n = 0u64;
    let mut first = None;
    let mut last = Instant::now();
    while n < count {
        let len = sock
            .recv(&mut buf)
            .map_err(|e| format!("receive after {n} datagrams: {e}"))?;
        if buf.get(..len) == Some(&END[..]) {
            break;
        }
        last = Instant::now();
        first.get_or_insert(last);
        n += 1;
    }
    let span = first.map_or(Duration::ZERO, |f| last - f);
    Ok((n, span))
}

/// Raises the default and maximum socket receive buffer for the measurement, and puts the
/// old values back on drop.
struct RmemGuard {
    old: Vec<(&'static str, String)>,
}

impl RmemGuard {
    fn raise() -> Result<Self, String> {
        let mut old = Vec::new();
        // max first: the default is capped by it
        for path in [RMEM_MAX, RMEM_DEFAULT] {
            let was = std::fs::read_to_string(path).map_err(|e| format!("read {path}: {e}"))?;
            std::fs::write(path, RMEM).map_err(|e| format!("write {path}: {e}"))?;
            old.push((path, was.trim().to_string()));
        }
        Ok(RmemGuard { old })
    }
}

impl Drop for RmemGuard {
    fn drop(&mut self) {
        for (path, was) in self.old.iter().rev() {
            let _ = std::fs::write(path, was);
        }
    }
}
