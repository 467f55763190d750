//! `run-accounting`: a UDP flood between two namespaces with both CPUs sending (programs run
//! in process context on the send path and in softirq on the receive path), traced with no
//! filter. B's interface steers received packets to both CPUs (RPS), so a CPU running a
//! program in process context is interrupted by the other's IPI and runs the receive softirq
//! on top of it: programs nest on one CPU. Asserts, from the kernel's own counters:
//!
//! - every run is accounted for: BPF run statistics (on from before the load) summed over the
//!   event programs == the sum of the outcomes the programs counted, exactly;
//! - every record built is accounted for: records read + records reported lost == records
//!   the programs built (emitted + ring full);
//! - no record fails its check word (a record mixed from two nested runs would).
//!
//! METRIC lines give each outcome, the kernel's recursion misses (runs it skipped), delivered
//! and lost, per backend; and where the time went: the reading thread's CPU time per record
//! read (also split into user and system time, the latter including the interrupts and
//! softirqs that ran on top of it), and the programs' own time per run (the kernel's `run_time_ns`, summed over every
//! program this process holds). Their ratio says whether the reader or the producers set the
//! delivered share.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use pwru_core::{Item, RunOutcomes, Session, Stats, Tracer};
use pwru_testkit::netlab::VethPair;

use crate::backend::Backend;
use crate::registry::Ctx;
use crate::report::Outcome;

use super::tracer_kit::{self as kit};

const PORT: u16 = 9200;
/// Datagrams per sender; one sender per CPU.
const EACH: u64 = 1000;

/// Functions traced with the backends that attach one program or probe per function: the
/// send and receive path plus the frees and the socket receive (process context on B).
const FUNCTIONS: &str = "ip_rcv|udp_rcv|ip_output|__dev_queue_xmit|netif_rx|consume_skb|kfree_skb_reason|sk_skb_reason_drop|skb_consume_udp|__udp_enqueue_schedule_skb";

fn tracer(backend: Backend) -> pwru_core::TracerBuilder {
    let b = Tracer::builder().backend(backend);
    match backend {
        // every skb function: one link per argument position
        Backend::KprobeMulti => b,
        // the fixed tracepoint set (Auto is never given)
        Backend::Tracepoint | Backend::Auto => b,
        Backend::Kprobe | Backend::Fentry => b.function_regex(FUNCTIONS),
        _ => b,
    }
}

/// What the reader saw.
#[derive(Default)]
struct Read {
    events: u64,
    lost: u64,
    decode_errors: u64,
    first_error: Option<String>,
    /// CPU time of the reading thread while it read (ns).
    cpu_ns: u64,
    /// The same, split into user and system time (ns): interrupts and softirqs that hit the
    /// thread (the flood's receive path, with its program runs) count as its system time.
    user_ns: u64,
    system_ns: u64,
}

/// (user, system) CPU time of the calling thread (ns), from `getrusage(RUSAGE_THREAD)`.
fn thread_times_ns() -> (u64, u64) {
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes one rusage through a pointer to a live local.
    if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) } != 0 {
        return (0, 0);
    }
    let ns = |t: libc::timeval| {
        u64::try_from(t.tv_sec).unwrap_or(0) * 1_000_000_000
            + u64::try_from(t.tv_usec).unwrap_or(0) * 1_000
    };
    (ns(ru.ru_utime), ns(ru.ru_stime))
}

/// CPU time of the calling thread (ns); 0 if the clock cannot be read.
fn thread_cpu_ns() -> u64 {
    pwru_core::sys::clock::now_ns(libc::CLOCK_THREAD_CPUTIME_ID)
        .map_or(0, |n| u64::try_from(n).unwrap_or(0))
}

/// (run_time_ns, run_cnt) summed over the BPF programs among this process's fds, from
/// `/proc/self/fdinfo` (the kernel counts while BPF statistics are on).
fn program_time() -> (u64, u64) {
    let Ok(dir) = std::fs::read_dir("/proc/self/fdinfo") else {
        return (0, 0);
    };
    let (mut time, mut runs) = (0u64, 0u64);
    for entry in dir.flatten() {
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        if !text.contains("prog_type:") {
            continue;
        }
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        time += field("run_time_ns:");
        runs += field("run_cnt:");
    }
    (time, runs)
}

/// Reads until `done` is set and then `quiet` passes without an item (or 180 s).
fn read(session: &mut Session, done: &AtomicBool, quiet: Duration) -> Result<Read, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(180);
        let mut stream = session.events();
        let mut r = Read::default();
        let cpu_start = thread_cpu_ns();
        let (user_start, system_start) = thread_times_ns();
        while Instant::now() < deadline {
            match tokio::time::timeout(quiet, stream.next()).await {
                Ok(Some(Ok(Item::Event(_)))) => r.events += 1,
                Ok(Some(Ok(Item::Lost(lost)))) => r.lost += lost.count,
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(e))) if !e.is_fatal() => {
                    r.decode_errors += 1;
                    r.first_error.get_or_insert_with(|| e.to_string());
                }
                Ok(Some(Err(e))) => return Err(format!("event stream: {e}")),
                Ok(None) => break,
                Err(_) if done.load(Ordering::Acquire) => break,
                Err(_) => {}
            }
        }
        r.cpu_ns = thread_cpu_ns().saturating_sub(cpu_start);
        let (user, system) = thread_times_ns();
        r.user_ns = user.saturating_sub(user_start);
        r.system_ns = system.saturating_sub(system_start);
        Ok(r)
    })
}

/// Source ports per sender: several flows, so RPS spreads them over both CPUs.
const FLOWS: u16 = 8;

/// Turns on RPS over CPUs 0 and 1 for B's interface (a fresh sysfs inside `ip netns exec`).
fn steer_to_both_cpus(pair: &VethPair) -> Result<(), String> {
    let file = format!("/sys/class/net/{}/queues/rx-0/rps_cpus", pair.if_b);
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &pair.ns_b, "sh", "-c"])
        .arg(format!("echo 3 > {file}"))
        .output()
        .map_err(|e| format!("cannot run ip netns exec: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "writing {file}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Sends `EACH` datagrams from A with this thread pinned to `cpu`.
fn send_pinned(pair: &VethPair, cpu: usize, src_port: u16) -> Result<u64, String> {
    let dst = SocketAddr::from((pair.addr_b, PORT));
    let src = SocketAddr::from((pair.addr_a, src_port));
    VethPair::in_netns(&pair.ns_a, move || {
        // best effort: a kernel with one CPU still floods from both threads
        let _ = pwru_core::sys::process::pin_thread_to_cpu(cpu);
        let socks = (0..FLOWS)
            .map(|i| std::net::UdpSocket::bind(SocketAddr::new(src.ip(), src.port() + i)))
            .collect::<std::io::Result<Vec<_>>>()?;
        let buf = [0x5au8; 64];
        let mut sent = 0;
        for (_, s) in (0..EACH).zip(socks.iter().cycle()) {
            // a full socket buffer on B drops, it does not fail the send
            if s.send_to(&buf, dst).is_ok() {
                sent += 1;
            }
        }
        Ok(sent)
    })
    .map_err(|e| format!("sender on cpu {cpu}: {e}"))
}

/// Polls the session's counters until two reads agree (runs in flight at detach ended).
fn settled(session: &Session) -> Result<Stats, String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let read = || session.try_stats().map_err(|e| format!("stats: {e}"));
    let mut last = read()?;
    loop {
        let now = read()?;
        if now == last {
            return Ok(now);
        }
        if Instant::now() > deadline {
            return Err(format!("counters never settled: {now:?}"));
        }
        last = now;
    }
}

fn outcomes_text(o: &RunOutcomes) -> String {
    format!(
        "emitted {} ring_full {} null_skb {} filtered {} nested_too_deep {} no_scratch {} no_stack_skb {}",
        o.emitted,
        o.ring_full,
        o.null_skb,
        o.filtered(),
        o.nested_too_deep,
        o.no_scratch,
        o.no_stack_skb
    )
}

fn metrics(ctx: &mut Ctx, label: &str, s: &Stats, r: &Read, sent: u64) {
    let o = &s.runs;
    let rep = &mut ctx.report;
    let (prog_ns, prog_runs) = program_time();
    let per = |total: u64, n: u64| if n == 0 { 0.0 } else { total as f64 / n as f64 };
    let records = r.events + r.decode_errors;
    rep.metric(
        &format!("accounting.reader_ns_per_record.{label}"),
        per(r.cpu_ns, records),
    );
    rep.metric(
        &format!("accounting.reader_user_ns_per_record.{label}"),
        per(r.user_ns, records),
    );
    rep.metric(
        &format!("accounting.reader_system_ns_per_record.{label}"),
        per(r.system_ns, records),
    );
    rep.metric(
        &format!("accounting.program_ns_per_run.{label}"),
        per(prog_ns, prog_runs),
    );
    rep.metric(
        &format!("accounting.program_ns_per_built_record.{label}"),
        per(prog_ns, s.runs.produced()),
    );
    for (name, v) in [
        ("packets", sent),
        ("kernel_runs", s.kernel_runs),
        ("outcomes_total", o.total()),
        ("emitted", o.emitted),
        ("ring_full", o.ring_full),
        ("null_skb", o.null_skb),
        ("filtered", o.filtered()),
        ("nested_too_deep", o.nested_too_deep),
        ("no_scratch", o.no_scratch),
        ("no_stack_skb", o.no_stack_skb),
        ("recursion_misses", s.recursion_misses),
        ("nested_runs", s.nested_runs),
        ("delivered", r.events),
        ("lost", r.lost),
        ("check_mismatches", s.check_mismatches),
    ] {
        rep.metric(&format!("accounting.{name}.{label}"), v as f64);
    }
}

/// The scenario.
pub fn run(ctx: &mut Ctx, backend: Backend) -> Outcome {
    match flood(ctx, backend) {
        Ok(detail) => Outcome::Pass(detail),
        Err(e) => Outcome::Fail(e),
    }
}

fn flood(ctx: &mut Ctx, backend: Backend) -> Result<String, String> {
    let pair = kit::lab("ra", 39)?;
    let sink = pair.listen_udp(PORT).map_err(|e| format!("listen: {e}"))?;
    steer_to_both_cpus(&pair)?;
    // the kernel counts program runs only while this is held: before the load, so all count
    let _stats_on =
        pwru_core::backend::enable_stats().map_err(|e| format!("BPF_ENABLE_STATS: {e}"))?;
    let mut session = kit::start(tracer(backend))?;
    let attached = session.attached().len();
    let done = AtomicBool::new(false);
    let (sent, got) = std::thread::scope(|s| {
        // B reads in process context while A's two senders flood from both CPUs
        let receiver = s.spawn(|| {
            let mut buf = [0u8; 128];
            let mut n = 0u64;
            while !done.load(Ordering::Acquire) {
                if sink.recv(&mut buf).is_ok() {
                    n += 1;
                }
            }
            n
        });
        let senders: Vec<_> = (0..2usize)
            .map(|cpu| {
                let pair = &pair;
                s.spawn(move || send_pinned(pair, cpu, 41000 + FLOWS * cpu as u16))
            })
            .collect();
        let flags = &done;
        let waiter = s.spawn(move || {
            let sent: Result<u64, String> = senders
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err("sender panicked".into())))
                .sum();
            flags.store(true, Ordering::Release);
            sent
        });
        let got = read(&mut session, &done, kit::QUIET);
        let sent = waiter
            .join()
            .unwrap_or_else(|_| Err("waiter panicked".into()));
        let _ = receiver.join();
        (sent, got)
    });
    let sent = sent?;
    let mut got = got?;
    // No run starts after this; what is still queued is read, then the counts are final.
    session.stop();
    let rest = read(
        &mut session,
        &AtomicBool::new(true),
        Duration::from_millis(500),
    )?;
    got.events += rest.events;
    got.lost += rest.lost;
    got.decode_errors += rest.decode_errors;
    got.cpu_ns += rest.cpu_ns;
    got.user_ns += rest.user_ns;
    got.system_ns += rest.system_ns;
    if got.first_error.is_none() {
        got.first_error = rest.first_error;
    }
    let s = settled(&session)?;
    let label = backend.name();
    metrics(ctx, label, &s, &got, sent);
    let summary = format!(
        "{sent} datagrams, {attached} targets: kernel runs {} = outcomes {} ({}); recursion misses {}; \
         nested runs {}; delivered {} + lost {} vs built {}; check mismatches {}",
        s.kernel_runs,
        s.runs.total(),
        outcomes_text(&s.runs),
        s.recursion_misses,
        s.nested_runs,
        got.events,
        got.lost,
        s.runs.produced(),
        s.check_mismatches
    );
    ctx.report
        .info(&format!("run-accounting {label}: {summary}"));
    let mut wrong = Vec::new();
    if s.kernel_runs == 0 {
        wrong.push("BPF stats counted no run".to_string());
    }
    if s.kernel_runs != s.runs.total() {
        wrong.push(format!(
            "kernel runs {} != sum of outcomes {} (difference {})",
            s.kernel_runs,
            s.runs.total(),
            s.kernel_runs as i128 - s.runs.total() as i128
        ));
    }
    if got.events + got.lost != s.runs.produced() {
        wrong.push(format!(
            "delivered {} + lost {} != built {}",
            got.events,
            got.lost,
            s.runs.produced()
        ));
    }
    if s.runs.emitted == 0 {
        wrong.push("no record emitted".into());
    }
    if s.check_mismatches != 0 || got.decode_errors != 0 {
        wrong.push(format!(
            "{} check-word mismatches, {} decode errors (first: {})",
            s.check_mismatches,
            got.decode_errors,
            got.first_error.as_deref().unwrap_or("-")
        ));
    }
    if wrong.is_empty() {
        Ok(summary)
    } else {
        Err(format!("{}; {summary}", wrong.join("; ")))
    }
}
