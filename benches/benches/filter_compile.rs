//! Compile time of pcap-filter expressions, split into libpcap's `pcap_compile` and this
//! crate's cBPF -> eBPF translation (both modes), over the corpus of typical expressions
//! (tests/testkit/corpus/expressions.txt), for 200 OR'd hosts, and for up to 5,000 OR'd hosts
//! split into groups or lowered to a set lookup.
//!
//! Besides criterion's groups it prints the per-expression ratio translation / libpcap and its
//! median (the target is <= 20%).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use pwru_filter::{
    compile, compile_lowered, compile_whole, translate, translate_cbpf, Cbpf, Layer, Mode, Options,
    SetLookup,
};
use pwru_testkit::corpus;

fn typical() -> Vec<String> {
    let mut list: Vec<String> = corpus::EXPRESSIONS_FILE
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    list.insert(0, String::new());
    list
}

/// Median time of `f` over a few batches sized to take about 2 ms each.
fn median_time(mut f: impl FnMut()) -> Duration {
    let start = Instant::now();
    f();
    let once = start.elapsed().max(Duration::from_nanos(50));
    let batch = (Duration::from_millis(2).as_nanos() / once.as_nanos()).clamp(1, 100_000) as u32;
    let mut samples: Vec<Duration> = (0..15)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..batch {
                f();
            }
            t.elapsed() / batch
        })
        .collect();
    samples.sort();
    samples[samples.len() / 2]
}

fn ratio_report(exprs: &[String]) {
    let mut ratios = Vec::new();
    let (mut lib_total, mut tr_total) = (Duration::ZERO, Duration::ZERO);
    for e in exprs {
        for layer in [Layer::L2, Layer::L3] {
            let Ok(cbpf) = compile(e, layer) else {
                continue;
            };
            let lib = median_time(|| {
                black_box(compile(black_box(e), layer).ok());
            });
            for mode in [Mode::Direct, Mode::ProbeRead] {
                let tr = median_time(|| {
                    black_box(translate(black_box(&cbpf), mode).ok());
                });
                ratios.push(tr.as_secs_f64() / lib.as_secs_f64());
                tr_total += tr;
            }
            lib_total += lib * 2;
        }
    }
    ratios.sort_by(f64::total_cmp);
    let pct = |q: f64| 100.0 * ratios[((ratios.len() - 1) as f64 * q) as usize];
    println!(
        "RATIO translation/libpcap over {} (expression, layer, mode) cases: median {:.1}%, p90 {:.1}%, max {:.1}%; totals {:?} translation vs {:?} libpcap",
        ratios.len(),
        pct(0.5),
        pct(0.9),
        pct(1.0),
        tr_total,
        lib_total
    );
}

fn bench(c: &mut Criterion) {
    let exprs = typical();
    ratio_report(&exprs);

    let compiled: Vec<(Cbpf, Cbpf)> = exprs
        .iter()
        .filter_map(|e| Some((compile(e, Layer::L2).ok()?, compile(e, Layer::L3).ok()?)))
        .collect();
    let mut g = c.benchmark_group("filter_compile/corpus");
    g.sample_size(20);
    g.bench_function("libpcap", |b| {
        b.iter(|| {
            for e in &exprs {
                black_box(compile(black_box(e), Layer::L2).ok());
                black_box(compile(black_box(e), Layer::L3).ok());
            }
        })
    });
    for mode in [Mode::Direct, Mode::ProbeRead] {
        g.bench_function(format!("translate_{mode:?}"), |b| {
            b.iter(|| {
                for (l2, l3) in &compiled {
                    black_box(translate(black_box(l2), mode).ok());
                    black_box(translate(black_box(l3), mode).ok());
                }
            })
        });
    }
    g.finish();

    let hosts = corpus::many_hosts_expr(200);
    let mut g = c.benchmark_group("filter_compile/200_hosts");
    g.sample_size(10);
    g.bench_function("libpcap_whole", |b| {
        b.iter(|| black_box(compile_whole(black_box(&hosts), Layer::L2, true).ok()))
    });
    g.bench_function("libpcap", |b| {
        b.iter(|| black_box(compile(black_box(&hosts), Layer::L2).ok()))
    });
    if let Ok(cbpf) = compile(&hosts, Layer::L2) {
        for mode in [Mode::Direct, Mode::ProbeRead] {
            g.bench_function(format!("translate_{mode:?}"), |b| {
                b.iter(|| black_box(translate(black_box(&cbpf), mode).ok()))
            });
        }
    }
    g.finish();

    // Compile time against the number of OR'd hosts: `compile` (split in groups above 64
    // terms), then translation; the program sizes are printed once.
    let mut g = c.benchmark_group("filter_compile/hosts");
    g.sample_size(10);
    for n in [10usize, 50, 100, 200, 500, 1000, 2000, 5000] {
        let expr = corpus::many_hosts_expr(n);
        if let Ok(cbpf) = compile(&expr, Layer::L2) {
            let ebpf = translate(&cbpf, Mode::ProbeRead)
                .map(|b| b.len())
                .unwrap_or(0);
            println!(
                "{n} hosts: {} cBPF -> {ebpf} eBPF (ProbeRead) instructions",
                cbpf.insns().len()
            );
        }
        g.bench_function(format!("compile_{n}"), |b| {
            b.iter(|| black_box(compile(black_box(&expr), Layer::L2).ok()))
        });
        g.bench_function(format!("compile_translate_{n}"), |b| {
            b.iter(|| {
                let cbpf = compile(black_box(&expr), Layer::L2).ok();
                black_box(cbpf.and_then(|c| translate(&c, Mode::ProbeRead).ok()))
            })
        });
    }
    g.finish();

    // The same expressions with their host terms lowered to one set (what pwru-core
    // compiles): libpcap compiles one sentinel term twice, the translation emits one map
    // lookup per field and the map's keys.
    let mut g = c.benchmark_group("filter_compile/hosts_lowered");
    g.sample_size(10);
    let opts = Options::default();
    let lookup = SetLookup::Map { first_set: 0 };
    for n in [200usize, 2000, 5000] {
        let expr = corpus::many_hosts_expr(n);
        if let Ok(cbpf) = compile_lowered(&expr, Layer::L2) {
            let ebpf = translate_cbpf(&cbpf, Mode::ProbeRead, &opts, lookup)
                .map(|t| t.insns.len())
                .unwrap_or(0);
            println!(
                "{n} hosts lowered: {} cBPF -> {ebpf} eBPF (ProbeRead) instructions, {} set(s)",
                cbpf.insns().len(),
                cbpf.sets().len()
            );
        }
        g.bench_function(format!("compile_translate_{n}"), |b| {
            b.iter(|| {
                let cbpf = compile_lowered(black_box(&expr), Layer::L2).ok();
                black_box(
                    cbpf.and_then(|c| translate_cbpf(&c, Mode::ProbeRead, &opts, lookup).ok()),
                )
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
