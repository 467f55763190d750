//! Reading the kernel's symbol table: parsing `/proc/kallsyms` and looking up the addresses
//! of a session's functions (what kprobe.multi links by), on the host's own file.

use criterion::{criterion_group, criterion_main, Criterion};
use pwru_core::symbols::{KernelSymbols, KALLSYMS};

fn bench(c: &mut Criterion) {
    let text = match std::fs::read_to_string(KALLSYMS) {
        Ok(t) => t,
        Err(e) => {
            println!("SKIP kallsyms: {KALLSYMS}: {e}");
            return;
        }
    };
    let Ok(table) = KernelSymbols::parse(&text) else {
        println!("SKIP kallsyms: {KALLSYMS} hides its addresses from this process (run as root)");
        return;
    };
    // A session's worth of names: every text symbol with "skb" in it (~1,000 here).
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_ascii_whitespace().nth(2))
        .filter(|n| n.contains("skb"))
        .collect();
    let mut g = c.benchmark_group("kallsyms");
    g.sample_size(20);
    g.bench_function("parse", |b| {
        b.iter(|| KernelSymbols::parse(&text).map(|t| t.len()))
    });
    // The whole job as a session's thread does it: the kernel's formatting, the reads and
    // the parse.
    g.bench_function("read_and_parse", |b| {
        b.iter(|| {
            KernelSymbols::load()
                .map(|t| t.len())
                .expect("kallsyms read")
        })
    });
    // The same table through the kernel's ksym iterator (6.0+), as sessions read it.
    match pwru_core::btf::Btf::vmlinux() {
        Ok(btf) => {
            g.bench_function("iterator", |b| {
                b.iter(|| {
                    KernelSymbols::load_with(Some(&btf))
                        .map(|t| t.len())
                        .expect("symbols read")
                })
            });
        }
        Err(e) => println!("SKIP kallsyms/iterator: no kernel BTF: {e}"),
    }
    g.bench_function(format!("addresses_of_{}_names", names.len()), |b| {
        b.iter(|| table.addresses_of(&names).iter().flatten().count())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
