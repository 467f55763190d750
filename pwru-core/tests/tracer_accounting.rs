//! Every run of the kernel programs is accounted for, on the host kernel (tracepoint backend):
//! with BPF run statistics on from before the load, the kernel's own run count of the event
//! programs equals the sum of the outcomes the programs counted, exactly; and records read +
//! records lost to a full ring buffer equal the records the programs built. Traffic is made to
//! hit every filter (netns, mark, pcap) and to overflow a one-page ring buffer, and every record
//! read passes its check word.

mod tracer_common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use pwru_core::{Backend, MarkFilter, Session, Stats, Tracer};
use pwru_testkit::netlab::VethPair;
use tracer_common::*;

const MARK: u32 = 0x2a;
const EACH: usize = 300;

/// Polls [`Session::try_stats`] until two reads agree (runs still in flight when the probes
/// were detached have ended), or fails after 10 s.
fn settled(session: &Session) -> Stats {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = session.try_stats().expect("read counters");
    loop {
        let now = session.try_stats().expect("read counters");
        if now == last {
            return now;
        }
        assert!(Instant::now() < deadline, "counters never settled: {now:?}");
        last = now;
    }
}

#[test]
fn kernel_runs_equal_the_sum_of_outcomes() {
    let name = "kernel_runs_equal_the_sum_of_outcomes";
    if skip_unless_root(name) {
        return;
    }
    // The kernel counts runs only while this fd is open: before the load, so every run counts.
    let _stats_on = pwru_core::backend::enable_stats().expect("BPF_ENABLE_STATS");
    let pair = VethPair::create(&tag('a', 1), 183).expect("veth pair");
    let dst9 = SocketAddr::from((pair.addr_b, 9));
    let dst10 = SocketAddr::from((pair.addr_b, 10));
    let src = |port| SocketAddr::from((pair.addr_a, port));
    send_udp_from(&pair.ns_a, src(40800), dst9, 1, Some(MARK));

    let mut session = Tracer::builder()
        .backend(Backend::Tracepoint)
        .netns(format!("/run/netns/{}", pair.ns_a))
        .mark(MarkFilter {
            mark: MARK,
            mask: u32::MAX,
        })
        .pcap_filter("udp and dst port 9")
        .ring_buffer_bytes(4096)
        .build()
        .expect("build")
        .attach()
        .expect("attach");

    // Nobody reads while these fly, so the one-page ring fills. In ns_a: marked to port 9
    // (match), unmarked (mark filter), marked to port 10 (pcap filter); in ns_b, where the
    // datagrams arrive, the netns filter.
    send_udp_from(&pair.ns_a, src(40801), dst9, EACH, Some(MARK));
    send_udp_from(&pair.ns_a, src(40802), dst9, EACH, None);
    send_udp_from(&pair.ns_a, src(40803), dst10, EACH, Some(MARK));
    session.stop();
    let got = drain(&mut session, Duration::from_millis(300));
    let s = settled(&session);
    println!(
        "{name}: kernel runs {} = outcomes {} {:?}; read {} + lost {} (stream {}); \
         recursion misses {}; check mismatches {}",
        s.kernel_runs,
        s.runs.total(),
        s.runs,
        got.events.len(),
        s.lost,
        got.lost,
        s.recursion_misses,
        s.check_mismatches
    );
    assert!(s.kernel_runs > 0, "BPF stats counted no run");
    assert_eq!(
        s.kernel_runs,
        s.runs.total(),
        "every run the kernel made has exactly one outcome"
    );
    assert!(s.runs.filtered_netns > 0, "no run was left out by netns");
    assert!(s.runs.filtered_mark >= EACH as u64, "unmarked datagrams");
    assert!(s.runs.filtered_pcap >= EACH as u64, "datagrams to port 10");
    assert!(s.runs.ring_full > 0, "a one-page ring buffer lost nothing");
    assert!(s.runs.emitted > 0);
    assert_eq!(s.lost, s.runs.ring_full);
    assert_eq!(
        got.events.len() as u64 + got.lost,
        s.runs.produced(),
        "records read + lost == records built"
    );
    assert_eq!(s.records, got.events.len() as u64);
    assert_eq!(s.decode_errors, 0);
    assert_eq!(s.check_mismatches, 0);
    assert_eq!(s.total_lost(), s.lost + s.recursion_misses);
    for ev in &got.events {
        assert_eq!(ev.tuple.map(|t| t.dport), Some(9), "{ev:?}");
    }
}
