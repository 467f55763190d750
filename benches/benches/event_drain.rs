//! How fast a session's reader empties a ring buffer that is full of real records: the rate
//! that decides how much of a flood is delivered once the reader has fallen behind (the
//! kernel writes records faster than they are read, and what does not fit is counted lost).
//!
//! A session with the tracepoint backend and the filter `udp dst port N` traces the
//! datagrams this bench sends between two network namespaces (each passes several
//! tracepoints). For each batch the bench sends the datagrams with nothing reading, waits
//! until the programs' own counters stop moving, and then times `Session::events()` from the
//! first record to the last: ring buffer read, check word, decode, interface names, the
//! stream's bookkeeping. Criterion reports time per record (the batch's drain time scaled to
//! the records it held). The ring is 64 MiB, so a batch never loses a record; a batch that
//! did would fail the bench. Needs root; otherwise it says SKIP.
//!
//! Measured on the 2-core Debian 12 development VM, kernel 6.18, see benches/README.md.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use futures::StreamExt;
use pwru_core::{Backend, Item, Session, Tracer};
use pwru_testkit::netlab::{self, VethPair};

const PORT: u16 = 33_533;
/// Datagrams per batch at most: about 8 records of ~330 bytes each, well inside the ring.
const BATCH: u64 = 10_000;
const RING_BYTES: u32 = 64 << 20;

struct Setup {
    pair: VethPair,
    session: Session,
    sock: std::net::UdpSocket,
}

fn setup() -> Result<Setup, String> {
    if !pwru_testkit::root::is_root() {
        return Err("needs root (CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN)".into());
    }
    let pair = VethPair::create(&format!("d{}", std::process::id() % 100_000), 203)
        .map_err(|e| format!("veth lab: {e}"))?;
    let tracer = Tracer::builder()
        .backend(Backend::Tracepoint)
        .pcap_filter(format!("udp dst port {PORT}"))
        .ring_buffer_bytes(RING_BYTES)
        .build()
        .map_err(|e| format!("build: {e}"))?;
    let session = tracer.attach().map_err(|e| format!("attach: {e}"))?;
    // The sender lives in namespace A; this thread moves there once the session is up.
    netlab::enter(&pair.ns_a).map_err(|e| format!("setns: {e}"))?;
    let sock = std::net::UdpSocket::bind((pair.addr_a, 0)).map_err(|e| e.to_string())?;
    Ok(Setup {
        pair,
        session,
        sock,
    })
}

/// Records the session's programs built so far (written or lost).
fn built(session: &Session) -> u64 {
    session
        .stats_handle()
        .try_stats()
        .map_or(0, |s| s.runs.produced())
}

/// Sends `n` datagrams and waits (bounded) until the programs' count stops moving.
fn fill(s: &Setup, n: u64) -> u64 {
    let start = built(&s.session);
    for _ in 0..n {
        let _ = s.sock.send_to(b"pwru-rs drain", (s.pair.addr_b, PORT));
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = built(&s.session);
    loop {
        std::thread::sleep(Duration::from_millis(2));
        let now = built(&s.session);
        if (now == last && now - start >= n) || Instant::now() > deadline {
            return now - start;
        }
        last = now;
    }
}

/// Reads `records` records and returns how long that took; panics on a loss or an error,
/// which would make the figure meaningless.
fn drain(s: &mut Setup, records: u64) -> Duration {
    let mut stream = s.session.events();
    let started = Instant::now();
    let mut read = 0u64;
    futures::executor::block_on(async {
        while read < records {
            match stream.next().await {
                Some(Ok(Item::Event(ev))) => {
                    std::hint::black_box(&ev);
                    read += 1;
                }
                Some(Ok(Item::Lost(l))) => {
                    panic!("{} records lost: the ring is too small", l.count)
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("event stream: {e}"),
                None => panic!("stream ended after {read} of {records} records"),
            }
        }
    });
    started.elapsed()
}

fn event_drain(c: &mut Criterion) {
    let mut s = match setup() {
        Ok(s) => s,
        Err(reason) => {
            println!("SKIP event_drain: {reason}");
            return;
        }
    };
    let records = fill(&s, BATCH);
    let took = drain(&mut s, records);
    println!(
        "event_drain one batch: {BATCH} datagrams, {records} records drained in {:.1} ms \
         ({:.0} ns per record)",
        took.as_secs_f64() * 1e3,
        took.as_nanos() as f64 / records.max(1) as f64
    );
    let mut g = c.benchmark_group("event_drain");
    g.bench_function("per_record", |b| {
        b.iter_custom(|iters| {
            // One record per iteration: batches of datagrams until `iters` records were read.
            let mut total = Duration::ZERO;
            let mut got = 0u64;
            while got < iters {
                let want = (iters - got).div_ceil(4).clamp(1, BATCH);
                let records = fill(&s, want);
                total += drain(&mut s, records);
                got += records;
            }
            total.mul_f64(iters as f64 / got.max(1) as f64)
        })
    });
    g.finish();
}

criterion_group!(benches, event_drain);
criterion_main!(benches);
