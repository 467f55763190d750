//! Parsing the host's vmlinux BTF, indexing it by name, and scanning it for skb functions
//! and tracepoints; parsing a traceable-function list the size of a distro kernel's.

use criterion::{criterion_group, criterion_main, Criterion};
use pwru_core::btf::{Btf, Kind};
use pwru_core::discovery::{skb_functions, skb_tracepoints, AvailableFunctions};

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
    // The first lookups by name scan the types; later ones build the index, once per parsed
    // BTF: one lookup (what most sessions make a handful of), and ten (the index built).
    for lookups in [1, 10] {
        g.bench_function(format!("lookups_by_name_{lookups}"), |b| {
            b.iter_batched(
                || Btf::from_bytes(raw.clone()),
                |btf| {
                    btf.map(|b| {
                        (0..lookups)
                            .filter(|_| b.find_by_name(Kind::Func, "bpf_rdonly_cast").is_some())
                            .count()
                    })
                },
                criterion::BatchSize::LargeInput,
            )
        });
    }
    g.bench_function("skb_functions", |b| {
        b.iter(|| skb_functions(&btf, None).map(|v| v.len()))
    });
    g.bench_function("skb_tracepoints", |b| {
        b.iter(|| skb_tracepoints(&btf, None).map(|v| v.len()))
    });
    // What the relocation job costs (aya's parse of the kernel BTF, the object's parse and
    // CO-RE relocation), given aya the whole kernel BTF or the part relocations can reach.
    for (label, trimmed) in [
        ("relocation_whole_btf", false),
        ("relocation_trimmed_btf", true),
    ] {
        g.bench_function(label, |b| {
            b.iter(|| pwru_core::object::relocate_for_bench(&btf, trimmed).expect("relocates"))
        });
    }
    match pwru_testkit::kernel_lists::traceable_list_from_kallsyms() {
        Some(list) => {
            let n = list.lines().count();
            g.bench_function(format!("traceable_list_parse_{n}"), |b| {
                b.iter(|| AvailableFunctions::parse(&list).len())
            });
        }
        None => println!("SKIP traceable_list_parse: /proc/kallsyms unreadable"),
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
