//! Series grouping + path aggregation: events per second on one core, and heap bytes per
//! packet in flight. No kernel: events are built the way a session decodes them.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pwru_core::event::{DropReason, Event, Interface, Meta, ProbeKind, TcpFlags, Tuple};
use pwru_core::series::{Grouper, PathAggregator, PathOptions, SeriesOptions};

/// A receive path of 8 hops; one packet in 4 is dropped at the end instead of consumed.
const PATH: [&str; 7] = [
    "net_dev_queue",
    "net_dev_start_xmit",
    "netif_rx_entry",
    "netif_rx",
    "net_dev_xmit",
    "netif_receive_skb",
    "udp_rcv",
];

/// Packets in flight at once (interleaved in the event order, as a busy machine interleaves them).
const IN_FLIGHT: u64 = 256;

fn events(packets: u64) -> Vec<Event> {
    let names: Vec<Arc<str>> = PATH.iter().map(|f| Arc::from(*f)).collect();
    let consume: Arc<str> = Arc::from("consume_skb");
    let drop: Arc<str> = Arc::from("kfree_skb");
    let reason = DropReason::new(2, Some("SKB_DROP_REASON_NO_SOCKET"));
    let dev: Option<Arc<str>> = Some(Arc::from("veth0"));
    let mut out = Vec::with_capacity((packets * 8) as usize);
    let template = {
        let mut e = Event::new(ProbeKind::Tracepoint, "x");
        let mut m = Meta::default();
        m.netns = 4026532000;
        m.interface = Interface::new(7, None);
        m.interface.name = dev.clone();
        m.len = 98;
        e.meta = Some(m);
        e.tuple = Some(Tuple::new(
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            40000,
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            9,
            17,
            TcpFlags::default(),
        ));
        e
    };
    // Groups of IN_FLIGHT packets whose hops interleave: hop h of every packet, then h + 1.
    for group in 0..packets.div_ceil(IN_FLIGHT) {
        let ids = group * IN_FLIGHT..((group + 1) * IN_FLIGHT).min(packets);
        for h in 0..=PATH.len() {
            for id in ids.clone() {
                let mut e = template.clone();
                e.packet_id = Some(id);
                e.skb = 0xffff_8880_0000_0000 + (id % 4096) * 0x100;
                e.timestamp_ns = 1_000_000_000 + id * 100 + h as u64 * 1_500 + (id % 7) * 40;
                if h >= 3 {
                    if let Some(m) = e.meta.as_mut() {
                        m.netns = 4026532100;
                        m.len = 84;
                    }
                }
                if let Some(f) = names.get(h) {
                    e.function = f.clone();
                } else if id % 4 == 0 {
                    e.function = drop.clone();
                    e.drop_reason = Some(reason.clone());
                } else {
                    e.function = consume.clone();
                }
                out.push(e);
            }
        }
    }
    out
}

fn run(evs: &[Event]) -> u64 {
    let mut g = Grouper::new(SeriesOptions::default());
    let mut paths = PathAggregator::new(PathOptions::default());
    for e in evs {
        g.push(e);
        while let Some(s) = g.pop() {
            paths.add(&s);
        }
    }
    g.flush();
    while let Some(s) = g.pop() {
        paths.add(&s);
    }
    paths.series()
}

fn bench(c: &mut Criterion) {
    let evs = events(16_384);
    assert_eq!(run(&evs), 16_384);

    // Memory: 10,000 packets open with 6 hops each.
    let mut g = Grouper::new(SeriesOptions::default());
    for e in events(10_000)
        .iter()
        .filter(|e| PATH[..6].iter().any(|f| **f == *e.function))
    {
        g.push(e);
    }
    let st = g.stats();
    println!(
        "series: {} packets in flight with 6 hops each: {} heap bytes, {} bytes per packet \
         (hop {} B, shared names not counted)",
        st.in_flight,
        g.heap_bytes(),
        g.heap_bytes() / st.in_flight.max(1),
        std::mem::size_of::<pwru_core::series::Hop>()
    );

    // Events per second of this thread's CPU time: what one core does, whatever else the
    // (shared) machine runs meanwhile; criterion below measures wall time.
    let cpu = || pwru_core::sys::clock::now_ns(libc::CLOCK_THREAD_CPUTIME_ID).unwrap_or(0);
    let rounds = 20u32;
    let start = cpu();
    for _ in 0..rounds {
        std::hint::black_box(run(std::hint::black_box(&evs)));
    }
    let spent = (cpu() - start).max(1) as f64;
    println!(
        "series: group+paths {:.2} M events per CPU-second ({} events x {rounds} rounds in {:.0} ms of thread CPU time)",
        evs.len() as f64 * f64::from(rounds) / spent * 1e3,
        evs.len(),
        spent / 1e6
    );

    let mut grp = c.benchmark_group("series");
    grp.throughput(Throughput::Elements(evs.len() as u64));
    grp.bench_function("group+paths, 8-hop packets, 256 in flight", |b| {
        b.iter(|| run(std::hint::black_box(&evs)))
    });
    grp.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
