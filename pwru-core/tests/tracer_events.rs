//! What events carry, on the host kernel with the tracepoint backend and real packets:
//! wall-clock time between the sender's and receiver's clocks, stacks without the BPF and
//! tracepoint dispatch frames at the top, and the caller past the tracepoint dispatch.

mod tracer_common;

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, SystemTime};

use pwru_core::symbols::is_dispatch_frame;
use pwru_core::{Backend, Capture, Event, Session, Tracer};
use pwru_testkit::netlab::VethPair;
use tracer_common::*;

const QUIET: Duration = Duration::from_millis(300);
const LIMIT: Duration = Duration::from_secs(5);

fn attach(pcap: &str, capture: Capture) -> Session {
    Tracer::builder()
        .backend(Backend::Tracepoint)
        .pcap_filter(pcap)
        .capture(capture)
        .build()
        .expect("build")
        .attach()
        .expect("attach")
}

/// Sends one UDP datagram A -> B:port and receives it on B; returns the times just before the
/// send and just after the receive.
fn send_and_receive(pair: &VethPair, port: u16) -> (SystemTime, SystemTime) {
    let (a, b) = (pair.addr_a, pair.addr_b);
    let rx = VethPair::in_netns(&pair.ns_b, move || {
        let s = UdpSocket::bind(SocketAddr::from((b, port)))?;
        s.set_read_timeout(Some(LIMIT))?;
        Ok(s)
    })
    .expect("bind receiver in B");
    let before = SystemTime::now();
    send_udp_from(
        &pair.ns_a,
        SocketAddr::from((a, 40000 + port)),
        SocketAddr::from((b, port)),
        1,
        None,
    );
    let mut buf = [0u8; 64];
    rx.recv(&mut buf).expect("datagram received in B");
    (before, SystemTime::now())
}

fn to_port(events: &[Event], dst: IpAddr, port: u16) -> Vec<&Event> {
    events
        .iter()
        .filter(|e| {
            e.tuple
                .is_some_and(|t| t.dst == Some(dst) && t.dport == port && t.l4_proto == 17)
        })
        .collect()
}

#[test]
fn wall_time_lies_between_send_and_receive() {
    let name = "wall_time_lies_between_send_and_receive";
    if skip_unless_root(name) {
        return;
    }
    let pair = VethPair::create(&tag('e', 1), 171).expect("veth pair");
    let b = IpAddr::from(pair.addr_b);
    let mut s = attach(
        &format!("udp and dst port 7001 and host {b}"),
        Capture::default(),
    );
    let clock = s.wall_clock().expect("session measured a wall clock");
    println!(
        "offset {} ns, uncertainty {:?}",
        clock.offset_ns(),
        clock.uncertainty()
    );
    let (before, after) = send_and_receive(&pair, 7001);
    let got = collect(&mut s, |evs| to_port(evs, b, 7001).len() >= 2, QUIET, LIMIT);
    let evs = to_port(&got.events, b, 7001);
    assert!(!evs.is_empty(), "no event:\n{}", describe(&got.events));
    let mut bounded = 0;
    for e in evs {
        let t = e.wall_time.expect("wall_time set by the session");
        assert_eq!(Some(t), Some(clock.to_system_time(e.timestamp_ns)));
        // The offset is known to within its bracket; allow exactly that.
        let slack = clock.uncertainty();
        assert!(
            t + slack >= before,
            "{}: {t:?} before the send at {before:?} (slack {slack:?})",
            e.function
        );
        // The free of a received skb may come after recv() returned (the kernel defers it to
        // the allocating CPU's softirq); every other hop happens before the data is read.
        if matches!(&*e.function, "consume_skb" | "kfree_skb") {
            continue;
        }
        assert!(
            t <= after + slack,
            "{}: {t:?} after the receive at {after:?} (slack {slack:?})",
            e.function
        );
        bounded += 1;
    }
    assert!(
        bounded > 0,
        "no hop before the free:\n{}",
        describe(&got.events)
    );
}

#[test]
fn stacks_and_callers_skip_dispatch_frames() {
    let name = "stacks_and_callers_skip_dispatch_frames";
    if skip_unless_root(name) {
        return;
    }
    let pair = VethPair::create(&tag('e', 2), 172).expect("veth pair");
    let b = IpAddr::from(pair.addr_b);
    let capture = Capture::default().with_stack(true).with_caller(true);
    let pcap = format!("udp and dst port 7002 and host {b}");
    let mut s = attach(&pcap, capture);
    // With a second program on the same tracepoints the kernel calls them through
    // `__traceiter_*` instead of a direct static call: one more glue frame, the case where
    // the kernel side's fixed-depth caller lands in the glue.
    let _second = attach(&pcap, capture);
    send_and_receive(&pair, 7002);
    let got = collect(
        &mut s,
        |evs| {
            to_port(evs, b, 7002)
                .iter()
                .any(|e| &*e.function == "net_dev_queue")
        },
        QUIET,
        LIMIT,
    );
    let evs = to_port(&got.events, b, 7002);
    assert!(!evs.is_empty(), "no event:\n{}", describe(&got.events));
    for e in &evs {
        println!(
            "{} caller={} stack:",
            e.function,
            e.caller.as_ref().map(|c| c.to_string()).unwrap_or_default()
        );
        for f in &e.stack {
            println!("    {f}");
        }
    }
    for e in &evs {
        let first = e
            .stack
            .first()
            .unwrap_or_else(|| panic!("{}: no stack", e.function));
        assert!(
            !is_dispatch_frame(&first.name),
            "{}: stack starts at {first}",
            e.function
        );
        if &*e.function == "kfree_skb" {
            // kfree_skb's caller is the tracepoint's `location` argument.
            continue;
        }
        let caller = e
            .caller
            .as_ref()
            .unwrap_or_else(|| panic!("{}: no caller", e.function));
        assert!(
            !is_dispatch_frame(&caller.name),
            "{}: caller {caller}",
            e.function
        );
        assert_eq!(
            caller.name, first.name,
            "{}: caller is the first frame",
            e.function
        );
    }
    let queue = evs
        .iter()
        .find(|e| &*e.function == "net_dev_queue")
        .expect("net_dev_queue event");
    let caller = queue.caller.as_ref().expect("caller");
    assert!(
        caller.name.contains("dev_queue_xmit"),
        "net_dev_queue fires in __dev_queue_xmit, caller {caller}"
    );
}

#[test]
fn callers_skip_dispatch_frames_without_stacks() {
    // The caller alone (no stack to fall back on): the kernel side records the frame after
    // the fixed-depth one, and decoding takes it when the first is tracepoint glue.
    let name = "callers_skip_dispatch_frames_without_stacks";
    if skip_unless_root(name) {
        return;
    }
    let pair = VethPair::create(&tag('e', 3), 173).expect("veth pair");
    let b = IpAddr::from(pair.addr_b);
    let capture = Capture::default().with_caller(true);
    let pcap = format!("udp and dst port 7003 and host {b}");
    let mut s = attach(&pcap, capture);
    // A second program on the same tracepoints: the kernel calls both through `__traceiter_*`.
    let _second = attach(&pcap, capture);
    send_and_receive(&pair, 7003);
    let got = collect(
        &mut s,
        |evs| {
            to_port(evs, b, 7003)
                .iter()
                .any(|e| &*e.function == "net_dev_queue")
        },
        QUIET,
        LIMIT,
    );
    let evs = to_port(&got.events, b, 7003);
    let queue = evs
        .iter()
        .find(|e| &*e.function == "net_dev_queue")
        .unwrap_or_else(|| panic!("no net_dev_queue event:\n{}", describe(&got.events)));
    assert!(queue.stack.is_empty(), "no stack was asked for");
    let caller = queue.caller.as_ref().expect("caller");
    assert!(
        caller.name.contains("dev_queue_xmit"),
        "net_dev_queue fires in __dev_queue_xmit, caller {caller}"
    );
    for e in evs.iter().filter(|e| &*e.function != "kfree_skb") {
        if let Some(c) = &e.caller {
            assert!(!is_dispatch_frame(&c.name), "{}: caller {c}", e.function);
        }
    }
}
