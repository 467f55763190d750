//! Kernel-side cost per hit of the tracepoint programs, from the kernel's own BPF run-time
//! statistics (run_time_ns / run_cnt), on skb:kfree_skb, all in one run on the same packets:
//!
//! - `empty`: an empty tp_btf program (the reference),
//! - `no_match`: pwru's kfree_skb program whose pcap filter (`udp dst port N`, compiled by
//!   pwru-filter) rejects the packet,
//! - `emit`: the same program whose filter matches, writing an event to the ring buffer,
//! - `no_match_trivial` (summary only): the same program with the filter body `r0 = 0; exit`,
//!   i.e. pwru's own cost without the filter's packet read,
//! - `no_match_cast`: `no_match` with the filter reading through kfunc-cast loads instead of
//!   `bpf_probe_read_kernel` (what the tracer picks on 6.2+ kernels; absent on older ones),
//! - `no_match_raw_cast`: `no_match_cast` as a raw_tp program, which reads skb fields with
//!   `bpf_probe_read_kernel` (what the kprobe and kprobe.multi programs did before the skb
//!   entry),
//! - `no_match_raw_entry`: the same raw_tp program whose filter body has the skb entry
//!   (`PWRU_CFG_FILTER_PCAP_SKB`): it reads the skb fields through the cast itself, as the
//!   tracer's untyped programs do on kernels that accept the kfunc in them,
//! - `no_match_raw_netns`, `no_match_raw_netns_body`: that raw_tp program under a netns filter
//!   that rejects every packet, its netns read with helper calls, then through the body's
//!   value selector (`PWRU_CFG_FILTER_META_SKB`),
//! - `emit_ids`: `emit` with packet ids on: each packet is first seen at its free here, so
//!   one hit pays a packet id's whole life (assignment, the buffer owner's entry, the delete of
//!   both at the free),
//! - `first_emit`, `mid_emit`, `free_emit` and their `_ids` twins: programs without and with
//!   ids attached at net_dev_queue (the sender's first hop: the id is given here),
//!   netif_receive_skb (a hop of a packet that has its id: one lookup) and kfree_skb (the
//!   lookup, then the deletes at the free),
//! - `free_ids`: the forget-only program that runs at every freed skb when ids are on and
//!   kfree_skb is not traced (deletes that find nothing for packets that never matched),
//! - `reserve_floor`, `copy_floor`, `event_floor`: the floors of `emit` from the test object
//!   (`pwru_testkit::test_programs::RecordFloors`): a 312-byte record (pwru-rs's header and
//!   event) reserved in the ring buffer and submitted; cleared in a per-CPU scratch record and
//!   copied in (pwru-rs's way); and that copy with the time, task, CPU and command name every
//!   event carries.
//!
//! The three programs are attached together; UDP datagrams sent between two network
//! namespaces to a closed port each hit kfree_skb once. Criterion reports kernel ns per hit
//! (iter_custom returns run-time deltas, not wall time). Needs root; otherwise it says SKIP.
//!
//! Measured on the 2-core Debian 12 development VM, kernel 6.18 (`cargo bench -p pwru-benches
//! --bench kernel_cost`): empty 57-60 ns/hit, no_match_cast 79-85 ns (1.38-1.41x empty),
//! no_match 115-127 ns (2.01-2.13x), no_match_trivial 69-78 ns (pwru's own part), emit
//! 480-920 ns (it varies with how often the ring buffer has to wake the reader). run_time_ns
//! includes the kernel's own timing overhead (two clock reads per run), most of `empty`.

use std::net::UdpSocket;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use pwru_core::backend::{enable_stats, probe, Link, Tracepoint, TracepointFlavor};
use pwru_core::object::{FilterBody, Loader, LoaderOptions};
use pwru_ebpf::*;
use pwru_filter::ProbeAccess;
use pwru_testkit::netlab::{self, VethPair};
use pwru_testkit::test_programs::{RecordFloors, RECORD_FLOORS};

const PORT: u16 = 33_433;
const OTHER_PORT: u16 = 33_434;

/// `udp dst port <port>` compiled by pwru-filter (libpcap, ProbeRead mode, reading packet bytes
/// as `access` says) for L2 and L3, behind the dispatch selector, as the tracer splices it.
fn body_udp_dport(port: u16, access: ProbeAccess) -> FilterBody {
    use pwru_filter::{compile_ebpf_with, dispatch, Layer, Mode, Options};
    let expr = format!("udp dst port {port}");
    let o = Options::with_access(access);
    let l2 = compile_ebpf_with(&expr, Layer::L2, Mode::ProbeRead, &o).expect("compiles");
    let l3 = compile_ebpf_with(&expr, Layer::L3, Mode::ProbeRead, &o).expect("compiles");
    let d = dispatch(&[&l2.insns, &l3.insns]).expect("dispatch");
    let bytes: Vec<u8> = d.iter().flat_map(|i| i.to_bytes()).collect();
    FilterBody::from_bytes(&bytes).expect("valid body")
}

/// [`body_udp_dport`] with the cast, the skb entry the tracer puts in front of the pcap
/// filters for programs whose skb is a plain number (`PWRU_CFG_FILTER_PCAP_SKB`), and the
/// value selectors `values` (`PWRU_CFG_FILTER_META_SKB`).
fn body_udp_dport_skb_values(
    port: u16,
    ids: pwru_filter::CastIds,
    fields: pwru_filter::SkbFields,
    values: &[pwru_filter::SkbValue],
) -> FilterBody {
    use pwru_filter::{
        compile_ebpf_with, dispatch_with_skb_entries, Layer, Mode, Options, SkbEntry,
    };
    let expr = format!("udp dst port {port}");
    let o = Options::with_access(ProbeAccess::Cast(ids));
    let l2 = compile_ebpf_with(&expr, Layer::L2, Mode::ProbeRead, &o).expect("compiles");
    let l3 = compile_ebpf_with(&expr, Layer::L3, Mode::ProbeRead, &o).expect("compiles");
    let entry = SkbEntry {
        selector: PWRU_SEL_PCAP_SKB as i32,
        fields,
        l2: 0,
        l3: 1,
    };
    let d =
        dispatch_with_skb_entries(&[&l2.insns, &l3.insns], Some(&entry), values).expect("dispatch");
    FilterBody::from_insns(&d).expect("valid body")
}

/// The veth lab; this (the benchmark's) thread moves into namespace A to send from there.
fn netns_pair() -> Result<VethPair, String> {
    let pair = VethPair::create(&format!("b{}", std::process::id() % 100_000), 202)
        .map_err(|e| e.to_string())?;
    netlab::enter(&pair.ns_a).map_err(|e| format!("setns: {e}"))?;
    Ok(pair)
}

struct Setup {
    netns: VethPair,
    _stats: std::os::fd::OwnedFd,
    _links: Vec<Link>,
    loaders: Vec<(&'static str, Rc<Loader>, &'static str)>,
    /// The record-writing floors (the variants after `loaders`).
    floors: RecordFloors,
    sock: UdpSocket,
    stop: Arc<AtomicBool>,
}

impl Drop for Setup {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn setup() -> Result<Setup, String> {
    if !pwru_testkit::root::is_root() {
        return Err("needs root (CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN)".into());
    }
    probe(&Tracepoint::BTF).map_err(|e| format!("tp_btf unavailable: {e}"))?;
    let netns = netns_pair()?;
    let stats = enable_stats().map_err(|e| format!("BPF_ENABLE_STATS: {e}"))?;
    let cfg = |flags| PwruConfig {
        flags,
        ..Default::default()
    };
    let opts = LoaderOptions::default();
    let outputs = PWRU_CFG_OUTPUT_META | PWRU_CFG_OUTPUT_TUPLE;
    let mut empty =
        Loader::new(OBJECT, &FilterBody::match_all(), &cfg(0), &opts).map_err(|e| e.to_string())?;
    let mut no_match = Loader::new(
        OBJECT,
        &body_udp_dport(OTHER_PORT, ProbeAccess::Helper),
        &cfg(PWRU_CFG_FILTER_PCAP | outputs),
        &opts,
    )
    .map_err(|e| e.to_string())?;
    // Same program, filter body `r0 = 0; exit`: pwru's own cost without the filter's read.
    let never = FilterBody::from_bytes(&[
        0xb7, 0, 0, 0, 0, 0, 0, 0, // r0 = 0
        0x95, 0, 0, 0, 0, 0, 0, 0, // exit
    ])
    .map_err(|e| e.to_string())?;
    let mut no_match_trivial =
        Loader::new(OBJECT, &never, &cfg(PWRU_CFG_FILTER_PCAP | outputs), &opts)
            .map_err(|e| e.to_string())?;
    let mut emit = Loader::new(
        OBJECT,
        &body_udp_dport(PORT, ProbeAccess::Helper),
        &cfg(PWRU_CFG_FILTER_PCAP | outputs),
        &opts,
    )
    .map_err(|e| e.to_string())?;
    let ids = PWRU_CFG_PACKET_ID;
    let mut emit_ids = Loader::new(
        OBJECT,
        &body_udp_dport(PORT, ProbeAccess::Helper),
        &cfg(PWRU_CFG_FILTER_PCAP | outputs | ids),
        &opts,
    )
    .map_err(|e| e.to_string())?;
    let mut free_ids = Loader::new(OBJECT, &FilterBody::match_all(), &cfg(outputs | ids), &opts)
        .map_err(|e| e.to_string())?;
    let mut hops = Loader::new(
        OBJECT,
        &body_udp_dport(PORT, ProbeAccess::Helper),
        &cfg(PWRU_CFG_FILTER_PCAP | outputs),
        &opts,
    )
    .map_err(|e| e.to_string())?;
    let mut hops_ids = Loader::new(
        OBJECT,
        &body_udp_dport(PORT, ProbeAccess::Helper),
        &cfg(PWRU_CFG_FILTER_PCAP | outputs | ids),
        &opts,
    )
    .map_err(|e| e.to_string())?;
    let mut links = vec![
        empty
            .load_btf_tracepoint_program("tp_btf_baseline", "kfree_skb")
            .map_err(|e| e.to_string())?,
        no_match
            .load_tracepoint("kfree_skb", TracepointFlavor::Btf)
            .map_err(|e| e.to_string())?,
        emit.load_tracepoint("kfree_skb", TracepointFlavor::Btf)
            .map_err(|e| e.to_string())?,
        no_match_trivial
            .load_tracepoint("kfree_skb", TracepointFlavor::Btf)
            .map_err(|e| e.to_string())?,
        emit_ids
            .load_tracepoint("kfree_skb", TracepointFlavor::Btf)
            .map_err(|e| e.to_string())?,
        free_ids
            .load_btf_tracepoint_program(program::LIFETIME_TP_BTF_KFREE_SKB, "kfree_skb")
            .map_err(|e| e.to_string())?,
    ];
    for l in [&mut hops, &mut hops_ids] {
        for tp in ["net_dev_queue", "netif_receive_skb", "kfree_skb"] {
            links.push(
                l.load_tracepoint(tp, TracepointFlavor::Btf)
                    .map_err(|e| e.to_string())?,
            );
        }
    }
    // Keep the ring buffer drained so emitting never degenerates into counting losses.
    let mut ring = emit.take_events().map_err(|e| e.to_string())?;
    let mut rings = vec![
        emit_ids.take_events().map_err(|e| e.to_string())?,
        hops.take_events().map_err(|e| e.to_string())?,
        hops_ids.take_events().map_err(|e| e.to_string())?,
    ];
    let mut floors = RecordFloors::attach()?;
    let mut floor_ring = floors
        .take_ring()
        .ok_or("the record floors' ring buffer is not a ring buffer")?;
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    std::thread::spawn(move || {
        while !stop2.load(Ordering::Relaxed) {
            while ring.next().is_some() {}
            for r in &mut rings {
                while r.next().is_some() {}
            }
            while floor_ring.next().is_some() {}
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    let (hops, hops_ids) = (Rc::new(hops), Rc::new(hops_ids));
    let mut loaders = vec![
        ("empty", Rc::new(empty), "tp_btf_baseline"),
        ("no_match", Rc::new(no_match), "tp_btf_kfree_skb"),
        ("emit", Rc::new(emit), "tp_btf_kfree_skb"),
        (
            "no_match_trivial",
            Rc::new(no_match_trivial),
            "tp_btf_kfree_skb",
        ),
        ("emit_ids", Rc::new(emit_ids), "tp_btf_kfree_skb"),
        (
            "free_ids",
            Rc::new(free_ids),
            program::LIFETIME_TP_BTF_KFREE_SKB,
        ),
        ("first_emit", hops.clone(), "tp_btf_net_dev_queue"),
        ("first_emit_ids", hops_ids.clone(), "tp_btf_net_dev_queue"),
        ("mid_emit", hops.clone(), "tp_btf_netif_receive_skb"),
        ("mid_emit_ids", hops_ids.clone(), "tp_btf_netif_receive_skb"),
        ("free_emit", hops, "tp_btf_kfree_skb"),
        ("free_emit_ids", hops_ids, "tp_btf_kfree_skb"),
    ];
    match pwru_testkit::cast_ids::running_kernel() {
        Ok(Some(ids)) => {
            let mut cast = Loader::new(
                OBJECT,
                &body_udp_dport(OTHER_PORT, ProbeAccess::Cast(ids)),
                &cfg(PWRU_CFG_FILTER_PCAP | outputs),
                &opts,
            )
            .map_err(|e| e.to_string())?;
            links.push(
                cast.load_tracepoint("kfree_skb", TracepointFlavor::Btf)
                    .map_err(|e| e.to_string())?,
            );
            loaders.push(("no_match_cast", Rc::new(cast), "tp_btf_kfree_skb"));
            // The untyped path (raw_tp; the kprobe backends read the skb the same way):
            // skb fields through bpf_probe_read_kernel, the filter through the cast.
            let mut raw = Loader::new(
                OBJECT,
                &body_udp_dport(OTHER_PORT, ProbeAccess::Cast(ids)),
                &cfg(PWRU_CFG_FILTER_PCAP | outputs),
                &opts,
            )
            .map_err(|e| e.to_string())?;
            links.push(
                raw.load_tracepoint("kfree_skb", TracepointFlavor::Raw)
                    .map_err(|e| e.to_string())?,
            );
            loaders.push(("no_match_raw_cast", Rc::new(raw), "raw_tp_kfree_skb"));
            // The same with the skb entry: the filter body reads the skb fields itself.
            match pwru_testkit::cast_ids::running_kernel_skb_fields() {
                Ok(Some(fields)) => {
                    let mut entry = Loader::new(
                        OBJECT,
                        &body_udp_dport_skb_values(OTHER_PORT, ids, fields, &[]),
                        &cfg(PWRU_CFG_FILTER_PCAP | PWRU_CFG_FILTER_PCAP_SKB | outputs),
                        &opts,
                    )
                    .map_err(|e| e.to_string())?;
                    links.push(
                        entry
                            .load_tracepoint("kfree_skb", TracepointFlavor::Raw)
                            .map_err(|e| e.to_string())?,
                    );
                    loaders.push(("no_match_raw_entry", Rc::new(entry), "raw_tp_kfree_skb"));
                    // A netns filter that rejects every packet: its value read with helper
                    // calls (skb->dev, dev->nd_net.net, net->ns.inum), then through the body.
                    let netns = match pwru_core::btf::Btf::vmlinux().map(|b| b.skb_value_paths()) {
                        Ok(Some(p)) => p.selectors(PWRU_CFG_FILTER_NETNS),
                        Ok(None) => {
                            println!(
                                "SKIP kernel_cost/no_match_raw_netns*: no netns chain in the BTF"
                            );
                            Vec::new()
                        }
                        Err(e) => {
                            println!("SKIP kernel_cost/no_match_raw_netns*: {e}");
                            Vec::new()
                        }
                    };
                    let other_netns = PwruConfig {
                        flags: PWRU_CFG_FILTER_NETNS | PWRU_CFG_FILTER_PCAP | outputs,
                        netns: 1,
                        ..Default::default()
                    };
                    let variants = [
                        ("no_match_raw_netns", Vec::new(), 0),
                        (
                            "no_match_raw_netns_body",
                            netns.clone(),
                            PWRU_CFG_FILTER_META_SKB,
                        ),
                    ];
                    // Both or neither: the pair is the comparison.
                    for (name, values, meta) in variants.into_iter().filter(|_| !netns.is_empty()) {
                        let body = body_udp_dport_skb_values(OTHER_PORT, ids, fields, &values);
                        let mut c = other_netns;
                        c.flags |= meta | PWRU_CFG_FILTER_PCAP_SKB;
                        let mut l =
                            Loader::new(OBJECT, &body, &c, &opts).map_err(|e| e.to_string())?;
                        links.push(
                            l.load_tracepoint("kfree_skb", TracepointFlavor::Raw)
                                .map_err(|e| e.to_string())?,
                        );
                        loaders.push((name, Rc::new(l), "raw_tp_kfree_skb"));
                    }
                }
                Ok(None) => println!("SKIP kernel_cost/no_match_raw_entry: no sk_buff fields"),
                Err(e) => println!("SKIP kernel_cost/no_match_raw_entry: {e}"),
            }
        }
        Ok(None) => println!("SKIP kernel_cost/no_match_cast: no bpf_rdonly_cast (Linux < 6.2)"),
        Err(e) => println!("SKIP kernel_cost/no_match_cast: {e}"),
    }
    let sock = UdpSocket::bind((netns.addr_a, 0)).map_err(|e| e.to_string())?;
    Ok(Setup {
        netns,
        _stats: stats,
        _links: links,
        loaders,
        floors,
        sock,
        stop,
    })
}

/// Variants: pwru-rs's programs, then the record floors.
fn variants(s: &Setup) -> usize {
    s.loaders.len() + RECORD_FLOORS.len()
}

/// The name variant `i` is reported under.
fn name(s: &Setup, i: usize) -> &'static str {
    match s.loaders.get(i) {
        Some((name, _, _)) => name,
        None => RECORD_FLOORS[i - s.loaders.len()].trim_start_matches("pwru_test_"),
    }
}

/// (run_time_ns, run_cnt) of variant `i`.
fn stats(s: &Setup, i: usize) -> (u64, u64) {
    let stats = match s.loaders.get(i) {
        Some((_, l, p)) => l
            .program_stats(p)
            .ok()
            .map(|st| (st.run_time_ns, st.run_cnt)),
        None => s
            .floors
            .program_fd(RECORD_FLOORS[i - s.loaders.len()])
            .and_then(|fd| pwru_core::sys::prog_info(fd).ok())
            .map(|st| (st.run_time_ns, st.run_cnt)),
    };
    stats.unwrap_or((0, 0))
}

/// Sends `n` datagrams and waits (bounded) until variant `i` counted them.
fn hit(s: &Setup, i: usize, n: u64) -> (u64, u64) {
    let (t0, c0) = stats(s, i);
    for _ in 0..n {
        let _ = s.sock.send_to(b"pwru-rs bench", (s.netns.addr_b, PORT));
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let (t1, c1) = stats(s, i);
        if c1 - c0 >= n || Instant::now() > deadline {
            return (t1 - t0, c1 - c0);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn kernel_cost(c: &mut Criterion) {
    let s = match setup() {
        Ok(s) => s,
        Err(reason) => {
            println!("SKIP kernel_cost: {reason}");
            return;
        }
    };

    // One run, same packets, all three programs: the summary the issue asks for.
    let n = 20_000;
    let variants = variants(&s);
    let before: Vec<_> = (0..variants).map(|i| stats(&s, i)).collect();
    hit(&s, 2, n);
    let per_hit: Vec<f64> = (0..variants)
        .map(|i| {
            let (t1, c1) = stats(&s, i);
            let (t0, c0) = before[i];
            (t1 - t0) as f64 / (c1 - c0).max(1) as f64
        })
        .collect();
    println!("kernel_cost one run, {n} packets to a closed UDP port (skb:kfree_skb, tp_btf):");
    for i in 0..variants {
        println!(
            "  {:16} {:7.1} ns/hit  ({:.2}x empty)",
            name(&s, i),
            per_hit[i],
            per_hit[i] / per_hit[0]
        );
    }
    // A floor that found its ring buffer full skipped the write it stands for.
    match s.floors.ring_full() {
        Ok(0) => {}
        Ok(n) => println!("  NOTE: {n} floor records found the ring buffer full: the *_floor rows are too low"),
        Err(e) => println!("  NOTE: the floors' ring-full count is unreadable ({e}): the *_floor rows are unchecked"),
    }

    let mut g = c.benchmark_group("kernel_cost_kfree_skb");
    // All but no_match_trivial (a reference for the summary only).
    for i in (0..variants).filter(|i| *i != 3) {
        let name = name(&s, i);
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let (t, cnt) = hit(&s, i, iters);
                // Kernel time per hit, scaled to the iterations criterion asked for.
                Duration::from_nanos(t * iters / cnt.max(1))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, kernel_cost);
criterion_main!(benches);
