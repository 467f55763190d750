//! In-kernel cost per packet of translated filters, Direct vs ProbeRead (helper reads: one
//! bulk copy of the headers, or one helper call per load; and kfunc-cast loads where the kernel
//! has `bpf_rdonly_cast`), measured with
//! BPF_PROG_TEST_RUN and `repeat` on a SCHED_CLS harness (needs root; prints a SKIP line
//! otherwise).
//!
//! Each measurement includes the harness (for ProbeRead it turns the packet pointers into
//! plain numbers with one helper call), so every mode also gets a "baseline" filter that
//! returns at once; the printed NET numbers subtract it.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use pwru_filter::{compile, translate_with, CastIds, Insn, Layer, Mode, Options, ProbeAccess};
use pwru_testkit::corpus;
use pwru_testkit::filter_harness::{self as kernel, Harness, LoadedProgram};

const CASES: &[(&str, &str)] = &[
    ("host", "host 10.0.0.2"),
    ("tcp_port", "tcp port 80"),
    (
        "and_or",
        "(host 10.0.0.1 or host 10.0.0.3) and (port 80 or port 443)",
    ),
    ("vlan_tcp", "vlan and tcp port 80"),
    ("payload", "tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420"),
    ("vxlan_inner", "udp port 4789 and ether[76:4] == 0x0a000001"),
    ("200_hosts", ""),
];

/// Ethernet + IPv4 + TCP to port 80 with "GET " payload, 10.0.0.1 -> 10.0.0.2.
fn tcp_packet() -> Vec<u8> {
    let mut p = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    let tcp_len = 20 + 4;
    let total = 20 + tcp_len;
    p.extend_from_slice(&[
        0x45,
        0,
        0,
        total as u8,
        0,
        1,
        0,
        0,
        64,
        6,
        0,
        0,
        10,
        0,
        0,
        1,
        10,
        0,
        0,
        2,
    ]);
    p.extend_from_slice(&[
        0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0,
    ]);
    p.extend_from_slice(b"GET ");
    p
}

/// A VLAN-tagged copy (for vlan_tcp), a VXLAN packet carrying it (for vxlan_inner).
fn packet_for(name: &str) -> Vec<u8> {
    let plain = tcp_packet();
    match name {
        "vlan_tcp" => {
            let mut p = plain[..12].to_vec();
            p.extend_from_slice(&[0x81, 0x00, 0x00, 0x64]);
            p.extend_from_slice(&plain[12..]);
            p
        }
        "vxlan_inner" => {
            let mut inner = vec![0x08, 0, 0, 0, 0, 0, 0x2a, 0];
            inner.extend_from_slice(&plain);
            let udp_len = 8 + inner.len();
            let total = 20 + udp_len;
            let mut p = plain[..14].to_vec();
            p.extend_from_slice(&[
                0x45,
                0,
                0,
                total as u8,
                0,
                1,
                0,
                0,
                64,
                17,
                0,
                0,
                10,
                0,
                0,
                1,
                10,
                0,
                0,
                2,
            ]);
            p.extend_from_slice(&[0xc3, 0x50, 0x12, 0xb5, 0, udp_len as u8, 0, 0]);
            p.extend_from_slice(&inner);
            p
        }
        _ => plain,
    }
}

struct Variant {
    label: &'static str,
    mode: Mode,
    opts: Options,
}

fn variants(cast: Option<CastIds>) -> Vec<Variant> {
    let mut v = vec![
        Variant {
            label: "direct",
            mode: Mode::Direct,
            opts: Options::default(),
        },
        Variant {
            label: "probe_bulk",
            mode: Mode::ProbeRead,
            opts: Options::default(),
        },
        Variant {
            label: "probe_per_load",
            mode: Mode::ProbeRead,
            opts: Options {
                probe_buffer_max: 0,
                ..Options::default()
            },
        },
    ];
    if let Some(ids) = cast {
        v.push(Variant {
            label: "probe_cast",
            mode: Mode::ProbeRead,
            opts: Options::with_access(ProbeAccess::Cast(ids)),
        });
    }
    v
}

fn load(body: &[Insn], mode: Mode) -> Option<LoadedProgram> {
    kernel::load(
        Harness::SchedCls.prog_type(),
        &kernel::harness(body, mode, Harness::SchedCls),
    )
    .map_err(|e| eprintln!("{e}"))
    .ok()
}

/// Net and baseline ns per packet: over 15 rounds, `base` (the harness with an empty filter,
/// same mode) and `prog` each run `repeat` = 200 000 times back to back on `frame`; the medians
/// of the differences and of the baselines. Pairing makes drift of a shared machine cancel out.
fn net_ns(base: &LoadedProgram, prog: &LoadedProgram, frame: &[u8]) -> (f64, f64) {
    let run = |p: &LoadedProgram| {
        p.test_run(frame, 200_000)
            .ok()
            .map(|r| r.duration_ns as f64)
    };
    let mut nets = Vec::new();
    let mut bases = Vec::new();
    for _ in 0..15 {
        if let (Some(b), Some(f)) = (run(base), run(prog)) {
            nets.push(f - b);
            bases.push(b);
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    (median(nets), median(bases))
}

fn bench(c: &mut Criterion) {
    if let Err(e) = kernel::probe_test_run() {
        println!(
            "SKIP filter_kernel_cost: cannot test-run BPF programs here: {}",
            e.to_string().lines().next().unwrap_or("")
        );
        return;
    }
    let cast = match pwru_testkit::cast_ids::running_kernel() {
        Ok(Some(ids)) => Some(ids),
        Ok(None) => {
            println!("SKIP filter_kernel_cost/probe_cast: no bpf_rdonly_cast (Linux < 6.2)");
            None
        }
        Err(e) => {
            println!("SKIP filter_kernel_cost/probe_cast: {e}");
            None
        }
    };
    let baseline_body = [Insn::mov32_imm(0, 1), Insn::exit()];
    let baselines: Vec<LoadedProgram> = variants(cast)
        .iter()
        .map(|v| load(&baseline_body, v.mode).expect("baseline loads"))
        .collect();
    let hosts = corpus::many_hosts_expr(200);
    let mut g = c.benchmark_group("filter_kernel_cost");
    g.sample_size(20)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(300));
    for (name, expr) in CASES {
        let expr = if expr.is_empty() {
            hosts.as_str()
        } else {
            expr
        };
        let cbpf = compile(expr, Layer::L2).expect("compiles");
        let frame = kernel::sched_cls_frame(&packet_for(name));
        let mut net = Vec::new();
        let mut direct_base = f64::NAN;
        for (v, base) in variants(cast).iter().zip(&baselines) {
            let body = translate_with(cbpf.insns(), v.mode, &v.opts).expect("translates");
            let Some(prog) = load(&body, v.mode) else {
                continue;
            };
            let matched = prog
                .test_run(&frame, 1)
                .map(|r| r.retval != 0)
                .unwrap_or(false);
            let (ns, base_ns) = net_ns(base, &prog, &frame);
            if v.mode == Mode::Direct {
                direct_base = base_ns;
            }
            net.push((v.label, ns, matched, body.len(), base_ns));
            g.bench_function(format!("{name}/{}", v.label), |b| {
                b.iter_custom(|iters| {
                    let repeat = iters.clamp(1, u32::MAX as u64) as u32;
                    let run = prog.test_run(&frame, repeat).expect("test run");
                    Duration::from_nanos(run.duration_ns as u64 * iters)
                })
            });
        }
        let direct = net.first().map(|n| n.1).unwrap_or(f64::NAN);
        let line: Vec<String> = net
            .iter()
            .map(|(l, ns, m, len, base)| {
                // "gross": what one test-run packet costs without the ProbeRead harness's own
                // pointer laundering, i.e. Direct's fixed test-run overhead + the filter.
                format!(
                    "{l} {ns:.1} ns ({len} insns, match={m}, harness {base:.0} ns, gross x{:.2})",
                    (direct_base + ns) / (direct_base + direct)
                )
            })
            .collect();
        println!("NET {name}: {}", line.join("; "));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
