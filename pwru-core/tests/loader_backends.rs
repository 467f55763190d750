//! The kprobe, kprobe.multi and fentry backends and tc/XDP program tracing, each attached
//! for real and seeing a real packet between two network namespaces. The development host
//! has no kprobes and refuses fentry, so there these tests say SKIP with the reason from
//! tests/capabilities.conf (and fail if pwru-core's probe disagrees with it); the same test
//! binary runs inside Debian kernels under QEMU (static build).

mod loader_common;

use std::time::{Duration, Instant};

use aya::programs::{tc, SchedClassifier, TcAttachType, Xdp, XdpMode};
use loader_common::*;
use pwru_core::backend::{Driver, Fentry, Kprobe, KprobeMulti, Link, LoaderError};
use pwru_core::object::{Loader, LoaderOptions};
use pwru_core::Backend;
use pwru_ebpf::*;

const PORT: u16 = 33_533;

/// Root, and the kernel config (tests/capabilities.conf) has `backend`; pwru-core's probe must
/// agree with the config either way.
fn supported(name: &str, backend: &dyn Driver) -> bool {
    !skip_unless_root(name) && backend_usable(name, backend)
}

/// Address of a kernel function from /proc/kallsyms (None when hidden or absent).
fn kallsyms(func: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/kallsyms").ok()?;
    text.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        let (addr, kind, name) = (it.next()?, it.next()?, it.next()?);
        (name == func && (kind == "T" || kind == "t"))
            .then(|| u64::from_str_radix(addr, 16).ok())
            .flatten()
            .filter(|&a| a != 0)
    })
}

fn loader_for(pair: &VethPair, extra: u32) -> Loader {
    let cfg = PwruConfig {
        flags: PWRU_CFG_FILTER_NETNS
            | PWRU_CFG_FILTER_PCAP
            | PWRU_CFG_OUTPUT_META
            | PWRU_CFG_OUTPUT_TUPLE
            | PWRU_CFG_OUTPUT_CALLER
            | PWRU_CFG_OUTPUT_STACK
            | extra,
        netns: inode(&pair.ns_b),
        ..Default::default()
    };
    Loader::new(
        OBJECT,
        &body_udp_dport(PORT),
        &cfg,
        &LoaderOptions::default(),
    )
    .expect("loader")
}

/// Sends one matching datagram and collects events until `done` says enough (or 3 s pass).
fn collect(
    loader: &mut Loader,
    pair: &VethPair,
    done: impl Fn(&[PwruEvent]) -> bool,
) -> Vec<PwruEvent> {
    let mut ring = loader.take_events().expect("ring buffer");
    let sport = send_udp(pair, PORT, 1);
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    while !done(&out) {
        let Some(rec) = next_record(&mut ring, deadline) else {
            break;
        };
        if let Some((_, ev)) = decode(&rec) {
            assert_eq!(ev.tuple.dport, PORT, "filter let through {ev:?}");
            assert_eq!(ev.tuple.sport, sport);
            out.push(ev);
        }
    }
    out
}

/// Checks that every function was seen with the right kind and address.
fn check_functions(l: &mut Loader, name: &str, events: &[PwruEvent], funcs: &[&str], kind: u8) {
    for f in funcs {
        let seen = match kallsyms(f) {
            // bpf_get_func_ip may point just past an ENDBR instruction.
            Some(a) => events
                .iter()
                .any(|e| e.kind == kind && e.addr >= a && e.addr < a + 16),
            None => events.iter().any(|e| e.kind == kind),
        };
        assert!(seen, "{name}: no event of kind {kind} from {f}: {events:?}");
    }
    println!("{name}: {} events from {funcs:?}", events.len());
    // Oracle for the caller: the frame after the traced function in the event's stack trace.
    let stacks = aya::maps::StackTraceMap::try_from(l.take_map(MAP_STACKS).expect("stacks"))
        .expect("stack map");
    for e in events {
        let func = symbolize(e.addr);
        let caller = symbolize(e.caller);
        println!("  {func:?} called from {caller:?}");
        let Some(func) = func else { continue };
        let frames: Vec<Option<String>> = stacks
            .get(&(e.stack_id as u32), 0)
            .map(|st| st.frames().iter().map(|f| symbolize(f.ip)).collect())
            .unwrap_or_default();
        if let Some(i) = frames
            .iter()
            .position(|f| f.as_deref() == Some(func.as_str()))
        {
            assert_eq!(
                caller,
                frames.get(i + 1).cloned().flatten(),
                "{name}: caller of {func}, stack {frames:?}"
            );
        }
    }
}

const FUNCS: &[&str] = &["ip_rcv", "udp_rcv"];

fn enough(events: &[PwruEvent]) -> bool {
    events.len() >= FUNCS.len()
}

fn all_ok(name: &str, links: Vec<(String, Result<Link, LoaderError>)>) -> Vec<Link> {
    links
        .into_iter()
        .map(|(t, r)| r.unwrap_or_else(|e| panic!("{name}: {t}: {e}")))
        .collect()
}

#[test]
fn loader_kprobe_backend_sees_packets() {
    let name = "loader_kprobe_backend_sees_packets";
    if !supported(name, &Kprobe) {
        return;
    }
    let pair = lab("k", 21);
    let mut l = loader_for(&pair, PWRU_CFG_TRACK_SKB | PWRU_CFG_TRACK_HEAD);
    let _links = all_ok(name, l.load_kprobe(1, FUNCS).expect("load"));
    let _tracking = all_ok(name, l.load_tracking(Backend::Kprobe));
    let events = collect(&mut l, &pair, enough);
    check_functions(&mut l, name, &events, FUNCS, PWRU_KIND_KPROBE);
    assert!(events
        .iter()
        .all(|e| e.flags & PWRU_EV_CALLER != 0 && e.caller != 0));
}

#[test]
fn loader_kprobe_multi_backend_sees_packets() {
    let name = "loader_kprobe_multi_backend_sees_packets";
    if !supported(name, &KprobeMulti) {
        return;
    }
    let pair = lab("m", 22);
    let mut l = loader_for(&pair, 0);
    let _link = l.load_kprobe_multi(1, FUNCS).expect("kprobe.multi");
    let events = collect(&mut l, &pair, enough);
    check_functions(&mut l, name, &events, FUNCS, PWRU_KIND_KPROBE_MULTI);
}

#[test]
fn loader_fentry_backend_sees_packets() {
    let name = "loader_fentry_backend_sees_packets";
    if !supported(name, &Fentry) {
        return;
    }
    let pair = lab("f", 23);
    let mut l = loader_for(&pair, PWRU_CFG_TRACK_SKB | PWRU_CFG_TRACK_HEAD);
    let _links: Vec<Link> = FUNCS
        .iter()
        .map(|f| {
            l.load_fentry(1, f)
                .unwrap_or_else(|e| panic!("{name}: {f}: {e}"))
        })
        .collect();
    let _tracking = all_ok(name, l.load_tracking(Backend::Fentry));
    let events = collect(&mut l, &pair, enough);
    check_functions(&mut l, name, &events, FUNCS, PWRU_KIND_FENTRY);
}

/// The tc and XDP test programs load (classifier and XDP types work on the host too).
#[test]
fn loader_test_tc_and_xdp_programs_load() {
    let name = "loader_test_tc_and_xdp_programs_load";
    if skip_unless_root(name) {
        return;
    }
    let mut obj = aya::Ebpf::load(TEST_OBJECT).expect("test object");
    let tc: &mut SchedClassifier = obj
        .program_mut("pwru_test_tc")
        .expect("tc program")
        .try_into()
        .expect("classifier");
    tc.load().expect("classifier loads");
    let xdp: &mut Xdp = obj
        .program_mut("pwru_test_xdp")
        .expect("xdp program")
        .try_into()
        .expect("xdp");
    xdp.load().expect("xdp loads");
}

#[test]
fn loader_traces_tc_and_xdp_programs() {
    let name = "loader_traces_tc_and_xdp_programs";
    if !supported(name, &Fentry) {
        return;
    }
    let pair = lab("x", 24);
    let vb = pair.if_b.clone();
    // Attach the test programs to b's veth from inside namespace b.
    let (obj, ids) = run_in(&pair.ns_b, move || {
        let mut obj = aya::Ebpf::load(TEST_OBJECT).expect("test object");
        // Kernels before 6.6 attach through the clsact qdisc (sch_ingress module).
        if let Err(e) = tc::qdisc_add_clsact(&vb) {
            println!("loader_traces_tc_and_xdp_programs: clsact qdisc: {e}");
        }
        let tcp: &mut SchedClassifier = obj
            .program_mut("pwru_test_tc")
            .expect("tc")
            .try_into()
            .expect("classifier");
        tcp.load().expect("load tc");
        tcp.attach(&vb, TcAttachType::Ingress).expect("attach tc");
        let tc_id = tcp.info().expect("tc info").id();
        let xp: &mut Xdp = obj
            .program_mut("pwru_test_xdp")
            .expect("xdp")
            .try_into()
            .expect("xdp");
        xp.load().expect("load xdp");
        xp.attach(&vb, XdpMode::Skb).expect("attach xdp");
        let xdp_id = xp.info().expect("xdp info").id();
        (obj, (tc_id, xdp_id))
    });
    let (tc_id, xdp_id) = ids;
    let mut l = loader_for(&pair, 0);
    let mut links = l.trace_bpf_prog(tc_id).expect("trace tc");
    links.extend(l.trace_bpf_prog(xdp_id).expect("trace xdp"));
    let kinds = [PWRU_KIND_TC, PWRU_KIND_XDP, PWRU_KIND_XDP_EXIT];
    let events = collect(&mut l, &pair, |evs| {
        kinds.iter().all(|k| evs.iter().any(|e| e.kind == *k))
    });
    for k in kinds {
        let e = events
            .iter()
            .find(|e| e.kind == k)
            .unwrap_or_else(|| panic!("{name}: no event of kind {k}: {events:?}"));
        assert_ne!(e.flags & PWRU_EV_PROG, 0);
        let want = if k == PWRU_KIND_TC { tc_id } else { xdp_id };
        assert_eq!(e.prog_id, want);
        let pname: Vec<u8> = e
            .prog_name
            .iter()
            .copied()
            .take_while(|&b| b != 0)
            .collect();
        let expected = if k == PWRU_KIND_TC {
            "pwru_test_tc"
        } else {
            "pwru_test_xdp"
        };
        assert_eq!(String::from_utf8_lossy(&pname), expected);
        if k == PWRU_KIND_XDP_EXIT {
            assert_ne!(e.flags & PWRU_EV_RETVAL, 0);
            assert_eq!(e.retval, 2, "XDP_PASS");
        }
    }
    println!("{name}: tc prog {tc_id} and xdp prog {xdp_id} traced");
    drop(links);
    drop(obj);
}

/// The clone-following programs (kretprobe or fexit on skb_clone) track the clone an
/// AF_PACKET socket in namespace b gets: the clone, consumed when the socket reads it, is
/// reported as tracked under its own address (head tracking is off here).
fn clone_tracking(name: &str, backend: &dyn Driver, tag: &str, subnet: u8) {
    if !supported(name, backend) {
        return;
    }
    let pair = lab(tag, subnet);
    let cfg = PwruConfig {
        flags: PWRU_CFG_FILTER_PCAP
            | PWRU_CFG_TRACK_SKB
            | PWRU_CFG_OUTPUT_META
            | PWRU_CFG_OUTPUT_TUPLE,
        ..Default::default()
    };
    let mut l = Loader::new(
        OBJECT,
        &body_udp_dport(PORT),
        &cfg,
        &LoaderOptions::default(),
    )
    .expect("loader");
    // Core-kernel functions (fentry here needs vmlinux BTF; veth_xmit is in a module).
    let funcs = ["dev_hard_start_xmit", "consume_skb"];
    let (kind, _links, _tracking) = if backend.backend() == Backend::Fentry {
        let links: Vec<Link> = funcs
            .iter()
            .map(|f| {
                l.load_fentry(1, f)
                    .unwrap_or_else(|e| panic!("{name}: {f}: {e}"))
            })
            .collect();
        let t = all_ok(name, l.load_tracking(Backend::Fentry));
        (PWRU_KIND_FENTRY, links, t)
    } else {
        let links = all_ok(name, l.load_kprobe(1, &funcs).expect("kprobe"));
        let t = all_ok(name, l.load_tracking(Backend::Kprobe));
        (PWRU_KIND_KPROBE, links, t)
    };
    let mut ring = l.take_events().expect("ring buffer");
    let sock = capture_all(&pair.ns_b);
    send_udp(&pair, PORT, 1);
    // Read the datagram's clone (and the ARP frames before it): each read consumes a clone.
    assert!(
        read_frames_until_udp(&sock, PORT, Duration::from_secs(5)),
        "{name}: the packet socket in b never received the datagram"
    );
    // Then everything the kernel wrote for it, until 2 s pass without a record.
    let mut events = Vec::new();
    while let Some(r) = next_record(&mut ring, Instant::now() + Duration::from_secs(2)) {
        events.extend(decode(&r).map(|(_, e)| e));
    }
    for e in &events {
        println!(
            "  {:?} skb {:#x} head {:#x} tracked {}",
            symbolize(e.addr),
            e.skb,
            e.skb_head,
            e.flags & PWRU_EV_TRACKED != 0
        );
    }
    // The packet leaving a's veth (dev_hard_start_xmit) is the skb b receives. Its AF_PACKET
    // clone shares its data buffer, has another address, and is reported as tracked without
    // ever having passed the filter itself (no earlier untracked event under its address):
    // only the skb_clone follower can have put it in the tracking map.
    let xmit = kallsyms("dev_hard_start_xmit");
    let first = events
        .iter()
        .rev()
        .find(|e| e.kind == kind && xmit.is_none_or(|a| e.addr >= a && e.addr < a + 16))
        .unwrap_or_else(|| panic!("{name}: no dev_hard_start_xmit event: {events:?}"));
    let clone = events
        .iter()
        .enumerate()
        .find(|(i, e)| {
            e.skb != first.skb
                && e.skb_head == first.skb_head
                && e.flags & PWRU_EV_TRACKED != 0
                && !events[..*i]
                    .iter()
                    .any(|p| p.skb == e.skb && p.flags & PWRU_EV_TRACKED == 0)
        })
        .map(|(_, e)| e)
        .unwrap_or_else(|| panic!("{name}: no clone tracked through skb_clone: {events:?}"));
    println!(
        "{name}: original {:#x} at {:?}, clone {:#x} at {:?}",
        first.skb,
        symbolize(first.addr),
        clone.skb,
        symbolize(clone.addr)
    );
}

#[test]
fn loader_kprobe_tracking_follows_clones() {
    clone_tracking("loader_kprobe_tracking_follows_clones", &Kprobe, "p", 25);
}

#[test]
fn loader_fentry_tracking_follows_clones() {
    clone_tracking("loader_fentry_tracking_follows_clones", &Fentry, "q", 26);
}
