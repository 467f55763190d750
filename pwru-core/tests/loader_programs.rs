//! Every program type that loads on this kernel is verified by the kernel with filters
//! injected (L2, L3, tunnel bodies) and with the config combinations the tracer uses.

mod loader_common;

use loader_common::*;
use pwru_core::backend::{LoaderError, TracepointFlavor};
use pwru_core::object::{FilterBody, Loader, LoaderOptions};
use pwru_ebpf::*;

const KPROBE_PROGRAMS: &[&str] = &[
    "kprobe_skb_1",
    "kprobe_skb_2",
    "kprobe_skb_3",
    "kprobe_skb_4",
    "kprobe_skb_5",
    "kprobe_stackid",
    "kprobe_clone_entry",
    "kretprobe_clone_exit",
    "kprobe_kfree_skbmem",
    "kprobe_skb_free_head",
    "kprobe_bpfmap_update",
    "kprobe_bpfmap_delete",
    "kprobe_bpfmap_lookup_entry",
    "kretprobe_bpfmap_lookup",
    "kretprobe_bpfmap_lookup_elem",
];
const KPROBE_MULTI_PROGRAMS: &[&str] = &[
    "kprobe_multi_skb_1",
    "kprobe_multi_skb_2",
    "kprobe_multi_skb_3",
    "kprobe_multi_skb_4",
    "kprobe_multi_skb_5",
    "kprobe_multi_stackid",
];

const FILTERS: u32 = PWRU_CFG_FILTER_NETNS
    | PWRU_CFG_FILTER_MARK
    | PWRU_CFG_FILTER_IFINDEX
    | PWRU_CFG_FILTER_PCAP
    | PWRU_CFG_FILTER_TUNNEL_L2
    | PWRU_CFG_FILTER_TUNNEL_L3;
const TRACKING: u32 = PWRU_CFG_TRACK_SKB | PWRU_CFG_TRACK_HEAD | PWRU_CFG_TRACK_STACKID;
const OUTPUTS: u32 = PWRU_CFG_OUTPUT_META
    | PWRU_CFG_OUTPUT_TUPLE
    | PWRU_CFG_OUTPUT_TUNNEL
    | PWRU_CFG_OUTPUT_STACK
    | PWRU_CFG_OUTPUT_CALLER
    | PWRU_CFG_OUTPUT_CB
    | PWRU_CFG_OUTPUT_SKB
    | PWRU_CFG_OUTPUT_SHINFO
    | PWRU_CFG_OUTPUT_PKT;

/// The flag combinations the tracer builds: filter sets x tracking modes x output sets.
fn config_combinations() -> Vec<u32> {
    let filters = [
        0,
        PWRU_CFG_FILTER_NETNS | PWRU_CFG_FILTER_MARK | PWRU_CFG_FILTER_IFINDEX,
        PWRU_CFG_FILTER_PCAP,
        PWRU_CFG_FILTER_PCAP | PWRU_CFG_FILTER_TUNNEL_L2 | PWRU_CFG_FILTER_TUNNEL_L3,
        PWRU_CFG_FILTER_TUNNEL_L3,
        FILTERS,
    ];
    let tracking = [
        0,
        PWRU_CFG_TRACK_SKB,
        PWRU_CFG_TRACK_SKB | PWRU_CFG_TRACK_HEAD,
        TRACKING,
    ];
    let outputs = [
        0,
        PWRU_CFG_OUTPUT_META | PWRU_CFG_OUTPUT_TUPLE,
        PWRU_CFG_OUTPUT_META
            | PWRU_CFG_OUTPUT_TUPLE
            | PWRU_CFG_OUTPUT_TUNNEL
            | PWRU_CFG_OUTPUT_CALLER,
        PWRU_CFG_OUTPUT_META | PWRU_CFG_OUTPUT_PKT,
        OUTPUTS,
    ];
    let mut out = Vec::new();
    for f in filters {
        for t in tracking {
            for o in outputs {
                out.push(f | t | o);
            }
        }
    }
    out
}

fn loader(body: &FilterBody, flags: u32) -> Loader {
    let cfg = PwruConfig {
        flags,
        netns: 4026531840,
        mark: 0x10,
        mark_mask: 0xff,
        ifindex: 1,
        dump_max: 0,
        snaplen: 256,
    };
    Loader::new(OBJECT, body, &cfg, &LoaderOptions::default()).expect("loader")
}

fn short(e: &LoaderError) -> String {
    let s = e.to_string();
    let tail: Vec<&str> = s.lines().rev().take(6).collect();
    format!(
        "{} ... {}",
        s.lines().next().unwrap_or(""),
        tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
    )
}

/// Loads every program of the object that this kernel can load; returns how many loaded.
/// Tracepoints that existed before they carried an skb (udp_fail_queue_rcv_skb got it in
/// 6.6): on older kernels the verifier must refuse them for exactly that reason.
const SKB_ARG_ADDED_LATER: &[&str] = &["udp_fail_queue_rcv_skb"];

fn load_all(l: &mut Loader, what: &str) -> usize {
    let mut n = 0;
    for &(_, category, name, pos) in TRACEPOINTS {
        if !tracepoint_exists(category, name) {
            continue;
        }
        for flavor in [TracepointFlavor::Btf, TracepointFlavor::Raw] {
            match l.load_tracepoint(name, flavor) {
                Ok(_) => n += 1,
                Err(e) => {
                    let s = e.to_string();
                    let no_arg = format!("doesn't have {}-th argument", pos + 1);
                    // raw_tp checks the argument count at attach time (EINVAL).
                    let raw_attach = flavor == TracepointFlavor::Raw
                        && matches!(&e, LoaderError::Attach { .. })
                        && s.contains("Invalid argument");
                    if SKB_ARG_ADDED_LATER.contains(&name) && (s.contains(&no_arg) || raw_attach) {
                        println!("{what}: {flavor:?} {name}: this kernel's tracepoint has no skb argument");
                        continue;
                    }
                    panic!("{what}: {flavor:?} {name} refused: {}", short(&e));
                }
            }
        }
    }
    for p in KPROBE_PROGRAMS {
        match l.load_kprobe_program(p, &[]) {
            Ok(_) => n += 1,
            Err(e) => panic!("{what}: {p} refused: {}", short(&e)),
        }
    }
    for p in KPROBE_MULTI_PROGRAMS {
        match l.verify_kprobe_multi(p) {
            Ok(_) => n += 1,
            Err(e) => panic!("{what}: {p} refused: {}", short(&e)),
        }
    }
    n
}

#[test]
fn loader_every_program_loads_with_each_filter() {
    let name = "loader_every_program_loads_with_each_filter";
    if skip_without_tracepoints(name) {
        return;
    }
    let missing: Vec<_> = TRACEPOINTS
        .iter()
        .filter(|(_, c, n, _)| !tracepoint_exists(c, n))
        .map(|(_, c, n, _)| format!("{c}:{n}"))
        .collect();
    if !missing.is_empty() {
        println!("{name}: tracepoints not on this kernel (not loaded): {missing:?}");
    }
    let bodies = [
        ("match-all", FilterBody::match_all()),
        ("never", body_never()),
        ("udp-dport (L2/L3/tunnel)", body_udp_dport(53)),
    ];
    for (what, body) in &bodies {
        let mut l = loader(body, FILTERS | TRACKING | OUTPUTS);
        let n = load_all(&mut l, what);
        println!("{name}: filter {what}: {n} programs verified");
        assert!(n >= KPROBE_PROGRAMS.len() + KPROBE_MULTI_PROGRAMS.len() + 2);
    }
}

#[test]
fn loader_config_combinations_load() {
    let name = "loader_config_combinations_load";
    if skip_without_tracepoints(name) {
        return;
    }
    let body = body_udp_dport(53);
    let combos = config_combinations();
    for &flags in &combos {
        let mut l = loader(&body, flags);
        let what = format!("flags {flags:#x}");
        for flavor in [TracepointFlavor::Btf, TracepointFlavor::Raw] {
            if let Err(e) = l.load_tracepoint("kfree_skb", flavor) {
                panic!("{what}: {flavor:?} kfree_skb: {}", short(&e));
            }
            if let Err(e) = l.load_tracepoint("net_dev_queue", flavor) {
                panic!("{what}: {flavor:?} net_dev_queue: {}", short(&e));
            }
        }
        if let Err(e) = l.load_kprobe_program("kprobe_skb_3", &[]) {
            panic!("{what}: kprobe_skb_3: {}", short(&e));
        }
        if let Err(e) = l.verify_kprobe_multi("kprobe_multi_skb_2") {
            panic!("{what}: kprobe_multi_skb_2: {}", short(&e));
        }
    }
    println!(
        "{name}: {} config combinations x 6 programs verified",
        combos.len()
    );
}

/// fentry/fexit programs (per-position entry, clone tracking, tc/XDP tracing) need
/// trampolines; where the kernel refuses them they are verified in the QEMU matrix.
#[test]
fn loader_fentry_programs_load() {
    let name = "loader_fentry_programs_load";
    if skip_without_tracepoints(name) {
        return;
    }
    if !backend_usable(name, &pwru_core::backend::Fentry) {
        return;
    }
    let mut l = loader(&body_udp_dport(53), FILTERS | TRACKING | OUTPUTS);
    for p in 1..=5u8 {
        // A traceable function with the skb at this position, found in the kernel BTF.
        let candidates = skb_functions(p as usize);
        let mut last = None;
        let ok = candidates
            .iter()
            .take(10)
            .find(|f| match l.load_fentry(p, f) {
                Ok(_) => true,
                Err(e) => {
                    last = Some(short(&e));
                    false
                }
            });
        match ok {
            Some(f) => println!("{name}: fentry_skb_{p} verified on {f}"),
            None => panic!("{name}: fentry_skb_{p} loaded on none of {candidates:?}: {last:?}"),
        }
    }
    for (what, r) in l.load_tracking(pwru_core::Backend::Fentry) {
        r.unwrap_or_else(|e| panic!("{what}: {}", short(&e)));
    }
}
