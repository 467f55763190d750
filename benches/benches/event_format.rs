//! Event -> pwru text line / JSON line, events per second on one core.

use std::net::{IpAddr, Ipv4Addr};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pwru_core::event::{DropReason, Event, Interface, Meta, ProbeKind, ShortName, TcpFlags, Tuple};
use pwru_core::format::{FormatOptions, Formatter, TimestampMode};

fn event() -> Event {
    let mut ev = Event::new(ProbeKind::Tracepoint, "kfree_skb");
    ev.skb = 0xffff888012345600;
    ev.cpu = 3;
    ev.process.tgid = 4242;
    ev.process.comm = ShortName::new("nc");
    ev.timestamp_ns = 123_456_789;
    ev.meta = Some({
        let mut m = Meta::default();
        m.netns = 4026532000;
        m.mark = 0;
        m.interface = Interface::new(7, Some("veth0"));
        m.protocol = 0x0800;
        m.mtu = 1500;
        m.len = 84;
        m.pkt_type = 0;
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
    ev
}

fn bench(c: &mut Criterion) {
    let ev = event();
    let mut g = c.benchmark_group("event_format");
    g.throughput(Throughput::Elements(1));
    let mut out = Vec::with_capacity(4096);
    let mut text = Formatter::new(FormatOptions::default());
    g.bench_function("text_default", |b| {
        b.iter(|| {
            out.clear();
            text.write_text(std::hint::black_box(&ev), &mut out);
        })
    });
    let mut rel = Formatter::new({
        let mut o = FormatOptions::default();
        o.timestamp = TimestampMode::Relative;
        o.tcp_flags = true;
        o.caller = false;
        o
    });
    g.bench_function("text_relative_ts", |b| {
        b.iter(|| {
            out.clear();
            rel.write_text(std::hint::black_box(&ev), &mut out);
        })
    });
    let mut json = Formatter::new({
        let mut o = FormatOptions::default();
        o.timestamp = TimestampMode::Current;
        o
    });
    g.bench_function("json", |b| {
        b.iter(|| {
            out.clear();
            json.write_json(std::hint::black_box(&ev), &mut out);
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
