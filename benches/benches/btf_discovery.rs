//! Parsing the host's vmlinux BTF, indexing it by name, and scanning it for skb functions
//! and tracepoints.

use criterion::{criterion_group, criterion_main, Criterion};
use pwru_core::btf::{Btf, Kind};
use pwru_core::discovery::{skb_functions, skb_tracepoints};

fn bench(c: &mut Criterion) {
    let Ok(raw) = std::fs::read("/sys/kernel/btf/vmlinux") else {
        println!("SKIP btf_discovery: no /sys/kernel/btf/vmlinux");
        return;
    };
    let mut g = c.benchmark_group("btf_discovery");
    g.sample_size(20);
    g.bench_function("parse_vmlinux", |b| {
        b.iter(|| Btf::from_bytes(raw.clone()).map(|b| b.type_count()))
    });
    let Ok(btf) = Btf::from_bytes(raw.clone()) else {
        return;
    };
    // The first lookup by name builds the index (once per parsed BTF).
    g.bench_function("name_index", |b| {
        b.iter_batched(
            || Btf::from_bytes(raw.clone()),
            |btf| btf.map(|b| b.find_by_name(Kind::Struct, "sk_buff")),
            criterion::BatchSize::LargeInput,
        )
    });
    g.bench_function("skb_functions", |b| {
        b.iter(|| skb_functions(&btf, None).map(|v| v.len()))
    });
    g.bench_function("skb_tracepoints", |b| {
        b.iter(|| skb_tracepoints(&btf, None).map(|v| v.len()))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
