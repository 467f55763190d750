//! Events -> pcap-ng blocks (`format::pcapng::PcapngWriter`), events per second on one core:
//! packet sizes from a small frame to a full Ethernet frame, one interface or sixteen, into
//! memory only (`io::sink`) and through a `BufWriter` into a file (/dev/null: the write
//! syscalls without the disk).

use std::fs::OpenOptions;
use std::io::{self, BufWriter};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, SystemTime};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use pwru_core::event::{
    DropReason, Event, Interface, LinkType, Meta, PacketBytes, ProbeKind, TcpFlags, Tuple,
};
use pwru_core::format::pcapng::PcapngWriter;

/// A traced hop with `len` packet bytes on interface `ifindex`.
fn event(len: usize, ifindex: u32) -> Event {
    let mut ev = Event::new(ProbeKind::Tracepoint, "kfree_skb");
    ev.skb = 0xffff888012345600;
    ev.wall_time = Some(SystemTime::UNIX_EPOCH + Duration::from_nanos(1_764_000_000_123_456_789));
    ev.packet_id = Some(42);
    ev.meta = Some({
        let mut m = Meta::default();
        m.netns = 4026532000;
        m.interface = Interface::new(ifindex, Some("veth0"));
        m.len = len as u32;
        m
    });
    ev.tuple = Some(Tuple::new(
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        40000,
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        9,
        17,
        TcpFlags::default(),
    ));
    ev.drop_reason = Some(DropReason::new(2, Some("SKB_DROP_REASON_NO_SOCKET")));
    let bytes: Vec<u8> = (0..len).map(|i| i as u8).collect();
    ev.packet = Some(PacketBytes::new(LinkType::Ethernet, bytes.into(), 1514));
    ev
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("pcapng_write");
    g.throughput(Throughput::Elements(1));
    for len in [64usize, 256, 1514] {
        let ev = event(len, 2);
        let mut w = PcapngWriter::new(io::sink()).expect("sink");
        g.bench_with_input(BenchmarkId::new("sink", len), &ev, |b, ev| {
            b.iter(|| w.write_event(std::hint::black_box(ev)).expect("write"))
        });
    }
    // Sixteen interfaces in turn: the interface lookup on every event.
    let evs: Vec<Event> = (1..=16).map(|i| event(256, i)).collect();
    let mut w = PcapngWriter::new(io::sink()).expect("sink");
    let mut i = 0;
    g.bench_function("sink_16_interfaces/256", |b| {
        b.iter(|| {
            i = (i + 1) % evs.len();
            w.write_event(std::hint::black_box(&evs[i])).expect("write")
        })
    });
    let null = OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .expect("/dev/null");
    let mut w = PcapngWriter::new(BufWriter::with_capacity(1 << 16, null)).expect("file");
    let ev = event(256, 2);
    g.bench_function("bufwriter_devnull/256", |b| {
        b.iter(|| w.write_event(std::hint::black_box(&ev)).expect("write"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
