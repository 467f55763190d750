//! Ring buffer record -> Event decoding, events per second on one core.

use std::mem::offset_of;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pwru_core::event::{decode, seal, DecodeContext, RAW_EVENT_LEN, RECORD_HEADER_LEN};
use pwru_ebpf::{PwruEvent, PwruTuple};

/// A typical record: meta + tuple + drop reason from the kfree_skb tracepoint.
fn record() -> Vec<u8> {
    let len = RECORD_HEADER_LEN + RAW_EVENT_LEN;
    let mut v = vec![0u8; len];
    let mut put = |off: usize, b: &[u8]| {
        let o = RECORD_HEADER_LEN + off;
        v[o..o + b.len()].copy_from_slice(b);
    };
    let t = offset_of!(PwruEvent, tuple);
    let flags = pwru_ebpf::PWRU_EV_META | pwru_ebpf::PWRU_EV_TUPLE | pwru_ebpf::PWRU_EV_DROP_REASON;
    put(offset_of!(PwruEvent, flags), &flags.to_ne_bytes());
    put(
        offset_of!(PwruEvent, kind),
        &[pwru_ebpf::PWRU_KIND_TRACEPOINT],
    );
    put(offset_of!(PwruEvent, addr), &11u64.to_ne_bytes());
    put(
        offset_of!(PwruEvent, skb),
        &0xffff888012345600u64.to_ne_bytes(),
    );
    put(offset_of!(PwruEvent, comm), b"nc\0");
    put(offset_of!(PwruEvent, netns), &4026532000u32.to_ne_bytes());
    put(offset_of!(PwruEvent, ifindex), &7u32.to_ne_bytes());
    put(offset_of!(PwruEvent, drop_reason), &2u32.to_ne_bytes());
    put(t + offset_of!(PwruTuple, saddr), &[10, 0, 0, 1]);
    put(t + offset_of!(PwruTuple, daddr), &[10, 0, 0, 2]);
    put(
        t + offset_of!(PwruTuple, l3_proto),
        &0x0800u16.to_ne_bytes(),
    );
    put(t + offset_of!(PwruTuple, l4_proto), &[17]);
    v[0..2].copy_from_slice(&pwru_ebpf::PWRU_RECORD_EVENT.to_ne_bytes());
    v[2..4].copy_from_slice(&pwru_ebpf::PWRU_RECORD_VERSION.to_ne_bytes());
    v[4..8].copy_from_slice(&(len as u32).to_ne_bytes());
    seal(&mut v);
    v
}

fn bench(c: &mut Criterion) {
    let mut ctx = DecodeContext::new().with_builtin_tracepoints();
    ctx.set_drop_reason(2, "SKB_DROP_REASON_NO_SOCKET");
    ctx.set_interface(4026532000, 7, "veth0");
    let rec = record();
    let mut kprobe = rec.clone();
    kprobe[RECORD_HEADER_LEN + offset_of!(PwruEvent, kind)] = pwru_ebpf::PWRU_KIND_KPROBE_MULTI;
    kprobe[RECORD_HEADER_LEN + offset_of!(PwruEvent, addr)..][..8]
        .copy_from_slice(&0xffffffff81a00000u64.to_ne_bytes());
    seal(&mut kprobe);
    ctx.add_function(0xffffffff81a00000, "ip_rcv");

    let mut g = c.benchmark_group("event_decode");
    g.throughput(Throughput::Elements(1));
    g.bench_function("tracepoint_meta_tuple_reason", |b| {
        b.iter(|| decode(std::hint::black_box(&rec), &ctx))
    });
    g.bench_function("kprobe_meta_tuple", |b| {
        b.iter(|| decode(std::hint::black_box(&kprobe), &ctx))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
