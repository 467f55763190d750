//! How long skb tracking follows a packet, on real traffic:
//!
//! - `track-clone-outlives`: an AF_PACKET socket on B's veth gets a clone of a frame (made in
//!   packet_rcv before PREROUTING marks the original); the marked original passes the filter,
//!   is dropped and freed; the capture is read afterwards. The clone shares the original's data
//!   buffer, so it must still be followed through the head (the original's free must not end
//!   the head's tracking while the clone holds the buffer).
//! - `track-addr-reuse`: a tracked packet is freed, then packets that do not match the filter
//!   are sent; a second, untracked session proves that some of them reuse the freed skb or
//!   data-buffer address. None of them may be shown as tracked.

use std::collections::HashSet;
use std::os::fd::OwnedFd;

use pwru_core::{Event, MarkFilter};
use pwru_testkit::packet_socket;

use crate::backend::Backend;
use crate::registry::Ctx;
use crate::report::Outcome;

use super::tracer_kit::{self as kit, QUIET};

/// B's receive path around the PREROUTING mark, the drop, and the capture's read of its clone
/// (packet_recvmsg copies with skb_copy_datagram_iter, then frees the clone with consume_skb).
fn clone_functions() -> String {
    format!(
        "ip_rcv|ip_local_deliver|udp_rcv|{}|skb_copy_datagram_iter|consume_skb",
        kit::drop_function()
    )
}

/// An AF_PACKET socket on `dev` in `ns`: the kernel queues a clone of each received frame.
fn packet_capture(ns: &str, dev: &str) -> Result<OwnedFd, String> {
    packet_socket::open_in(ns, dev).map_err(|e| format!("AF_PACKET socket: {e}"))
}

fn is_drop(e: &Event) -> bool {
    *e.function == *kit::drop_function()
}

fn describe(events: &[Event]) -> String {
    events
        .iter()
        .map(|e| {
            format!(
                "{}:{:#x}/{:#x}{}{}",
                e.function,
                e.skb,
                e.skb_head,
                if e.tracked { "(t)" } else { "" },
                e.tuple.map_or(String::new(), |t| format!(":{}", t.dport))
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `track-clone-outlives`.
pub fn run_clone(_: &mut Ctx, backend: Backend) -> Outcome {
    match try_clone(backend) {
        Ok(o) | Err(o) => o,
    }
}

const CLONE_SPORT: u16 = 40610;

fn try_clone(backend: Backend) -> Result<Outcome, Outcome> {
    let fail = |s: String| Outcome::Fail(s);
    let pair = kit::lab("tc", 39).map_err(fail)?;
    let capture = packet_capture(&pair.ns_b, &pair.if_b).map_err(fail)?;
    kit::nft(
        &pair.ns_b,
        "table ip pwru_mark {\n chain pre {\n  type filter hook prerouting priority mangle;\n  \
         udp dport 9 meta mark set 0x77\n }\n}\n",
    )
    .map_err(fail)?;
    let filter = format!("udp and host {}", pair.addr_b);
    let mark = MarkFilter {
        mark: 0x77,
        mask: u32::MAX,
    };
    let mut session = kit::start(
        kit::packet_tracer(backend, &clone_functions(), &filter)
            .mark(mark)
            .track_skb(true),
    )
    .map_err(fail)?;
    pair.send_udp(CLONE_SPORT, 9, 1, 32)
        .map_err(|e| fail(format!("send: {e}")))?;
    // The marked original is dropped (closed port) and freed while the clone waits in the
    // capture socket's queue ...
    let first = kit::collect(&mut session, QUIET, 200).map_err(fail)?;
    let dropped = first
        .events
        .iter()
        .find(|e| is_drop(e))
        .cloned()
        .ok_or_else(|| {
            fail(format!(
                "the marked original was not seen dropped: {}",
                describe(&first.events)
            ))
        })?;
    // ... and only then the capture reads the clone.
    let frames = packet_socket::drain(&capture);
    let second = kit::collect(&mut session, QUIET, 200).map_err(fail)?;
    drop(session);
    if frames == 0 {
        return Err(fail("the capture socket got no frame".into()));
    }
    let clone_events: Vec<&Event> = second
        .events
        .iter()
        .filter(|e| e.skb != dropped.skb)
        .collect();
    let read = clone_events
        .iter()
        .find(|e| &*e.function == "skb_copy_datagram_iter");
    let freed = clone_events.iter().any(|e| &*e.function == "consume_skb");
    let all = describe(&[first.events.clone(), second.events.clone()].concat());
    let (Some(read), true) = (read, freed) else {
        return Err(fail(format!(
            "the capture's read and free of the clone (after the original's free) were not \
             traced; \
             original {:#x} head {:#x}; events: {all}",
            dropped.skb, dropped.skb_head
        )));
    };
    for e in &clone_events {
        if !e.tracked || e.skb_head != dropped.skb_head {
            return Err(fail(format!(
                "clone event not followed through the shared head: {}:{:#x}/{:#x} \
                 (original head {:#x}); events: {all}",
                e.function, e.skb, e.skb_head, dropped.skb_head
            )));
        }
        if e.meta.as_ref().is_some_and(|m| m.mark != 0)
            || e.tuple
                .is_none_or(|t| (t.sport, t.dport) != (CLONE_SPORT, 9))
        {
            return Err(fail(format!("not the unmarked clone: {e:?}")));
        }
    }
    if read.timestamp_ns < dropped.timestamp_ns {
        return Err(fail(
            "the clone was read before the original was dropped".into(),
        ));
    }
    Ok(Outcome::Pass(format!(
        "original {:#x} dropped at {}, then clone {:#x} read {} us later: {} clone events, \
         all tracked through head {:#x}",
        dropped.skb,
        dropped.function,
        read.skb,
        (read.timestamp_ns - dropped.timestamp_ns) / 1000,
        clone_events.len(),
        dropped.skb_head
    )))
}

/// `track-addr-reuse`.
pub fn run_reuse(_: &mut Ctx, backend: Backend) -> Outcome {
    match try_reuse(backend) {
        Ok(o) | Err(o) => o,
    }
}

const TRACKED_PORT: u16 = 7001;
const OTHER_PORT: u16 = 7002;
const OTHERS: usize = 40;
/// Rounds of [`OTHERS`] packets sent at most while waiting for an address to be reused.
const ROUNDS: usize = 5;

/// The CPU every datagram of `track-addr-reuse` is sent from. The allocator keeps freed skbs
/// and buffers on the freeing CPU's lists, and a datagram over veth is allocated and freed on
/// the sending CPU: sent from another CPU, 200 later datagrams reused neither address in
/// two of the six boots of one CI run (6.1 fentry, 7.3 kprobe-multi).
const SEND_CPU: usize = 0;

/// Sends `count` datagrams of 32 bytes from A to B's `port`, from a thread pinned to
/// [`SEND_CPU`].
fn send_pinned(
    pair: &pwru_testkit::netlab::VethPair,
    src_port: u16,
    port: u16,
    count: usize,
) -> Result<(), Outcome> {
    let dst = std::net::SocketAddr::from((pair.addr_b, port));
    let src = std::net::SocketAddr::from((pair.addr_a, src_port));
    pwru_testkit::netlab::VethPair::in_netns(&pair.ns_a, move || {
        pwru_core::sys::process::pin_thread_to_cpu(SEND_CPU)?;
        let s = std::net::UdpSocket::bind(src)?;
        for _ in 0..count {
            s.send_to(&[0x5au8; 32], dst)?;
        }
        Ok(())
    })
    .map_err(|e| Outcome::Fail(format!("send from CPU {SEND_CPU}: {e}")))
}

fn try_reuse(backend: Backend) -> Result<Outcome, Outcome> {
    let fail = |s: String| Outcome::Fail(s);
    let pair = kit::lab("ta", 40).map_err(fail)?;
    let functions = format!("{}|{}", kit::RX_TX, kit::drop_function());
    let tracked_filter = format!("udp and dst port {TRACKED_PORT}");
    let other_filter = format!("udp and dst port {OTHER_PORT}");
    let mut tracked =
        kit::start(kit::packet_tracer(backend, &functions, &tracked_filter).track_skb(true))
            .map_err(fail)?;
    // An untracked session sees the other packets, to prove that addresses were reused.
    let mut observer =
        kit::start(kit::packet_tracer(backend, &functions, &other_filter)).map_err(fail)?;

    send_pinned(&pair, 40700, TRACKED_PORT, 1)?;
    let first = kit::collect(&mut tracked, QUIET, 200).map_err(fail)?;
    if !first.events.iter().any(is_drop) {
        return Err(fail(format!(
            "the tracked packet was not seen dropped: {}",
            describe(&first.events)
        )));
    }
    let freed_skbs: HashSet<u64> = first.events.iter().map(|e| e.skb).collect();
    let freed_heads: HashSet<u64> = first.events.iter().map(|e| e.skb_head).collect();

    // Reuse depends on the allocator: send rounds of other packets from the same CPU until one
    // reuses the freed skb or head (usually the first round), checking after each that
    // tracking shows nothing.
    let (mut reused_skbs, mut reused_heads) = (HashSet::new(), HashSet::new());
    let (mut observed, mut lost, mut sent) = (0usize, 0u64, 0usize);
    for round in 0..ROUNDS {
        send_pinned(&pair, 40701 + round as u16, OTHER_PORT, OTHERS)?;
        sent += OTHERS;
        let seen = kit::collect(&mut observer, QUIET, 5000).map_err(fail)?;
        let after = kit::collect(&mut tracked, QUIET, 5000).map_err(fail)?;
        observed += seen.events.len();
        lost += after.lost + seen.lost;
        reused_skbs.extend(
            seen.events
                .iter()
                .filter(|e| freed_skbs.contains(&e.skb))
                .map(|e| e.skb),
        );
        reused_heads.extend(
            seen.events
                .iter()
                .filter(|e| freed_heads.contains(&e.skb_head))
                .map(|e| e.skb_head),
        );
        // The tracked packet was gone before the others were sent: the tracking session may
        // show nothing more (no other UDP packet matches its filter, no ICMP error does).
        if !after.events.is_empty() {
            return Err(fail(format!(
                "{} events of later packets shown by the tracking session (reused skbs {}, \
                 heads {}): {}",
                after.events.len(),
                reused_skbs.len(),
                reused_heads.len(),
                describe(&after.events)
            )));
        }
        if !reused_skbs.is_empty() || !reused_heads.is_empty() {
            break;
        }
    }
    drop(observer);
    drop(tracked);
    if reused_skbs.is_empty() && reused_heads.is_empty() {
        return Err(fail(format!(
            "none of {sent} later packets reused the freed skb or head ({observed} events \
             observed), so the scenario proved nothing"
        )));
    }
    let after_lost = lost;
    Ok(Outcome::Pass(format!(
        "{} later packets reused the freed skb address ({}) or head ({}); none shown by the \
         tracking session (lost {})",
        sent,
        reused_skbs.len(),
        reused_heads.len(),
        after_lost
    )))
}
