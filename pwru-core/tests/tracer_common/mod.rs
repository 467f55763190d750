//! Shared by the tracer_*.rs tests: unique tags, event collection with a witness, and small
//! oracles (ifindex from iproute2, sockets with a mark, an AF_PACKET capture).
#![allow(dead_code)]

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsFd, OwnedFd};
use std::process::Command;
use std::time::{Duration, Instant};

use futures::StreamExt;
use pwru_core::{Event, Item, Session};
use pwru_testkit::netlab::VethPair;
use pwru_testkit::{packet_socket, sys};

#[allow(unused_imports)] // each test file uses some of them
pub use pwru_testkit::capabilities::{self, has, skip, skip_unless_root};

/// A tracepoint-backend session with `filter` and a ring buffer of `ring` bytes.
pub fn attach_tracepoint(filter: &str, ring: u32) -> Session {
    pwru_core::Tracer::builder()
        .backend(pwru_core::Backend::Tracepoint)
        .pcap_filter(filter)
        .ring_buffer_bytes(ring)
        .build()
        .expect("build")
        .attach()
        .expect("attach")
}

/// A namespace tag unique to this process, test file (`file`) and test (`n`): at most 8 chars.
pub fn tag(file: char, n: u32) -> String {
    format!("{}{file}{n}", std::process::id() % 100_000)
}

/// What a session delivered: events in stream order and the sum of `Item::Lost` notices.
#[derive(Debug, Default)]
pub struct Collected {
    pub events: Vec<Event>,
    pub lost: u64,
    pub lost_items: usize,
    /// The `total` of each `Item::Lost` notice, in stream order.
    pub lost_totals: Vec<u64>,
}

/// Reads `session`'s stream until `done` holds (then drains what is already queued, stopping
/// after `quiet` without an item) or `limit` passes. Fatal stream errors fail the test.
pub fn collect(
    session: &mut Session,
    done: impl Fn(&[Event]) -> bool,
    quiet: Duration,
    limit: Duration,
) -> Collected {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let mut events = session.events();
        let mut out = Collected::default();
        let start = Instant::now();
        let mut satisfied = done(&out.events);
        loop {
            let wait = if satisfied {
                quiet
            } else {
                limit.saturating_sub(start.elapsed())
            };
            match tokio::time::timeout(wait, events.next()).await {
                Ok(Some(Ok(Item::Event(ev)))) => out.events.push(ev),
                Ok(Some(Ok(Item::Lost(lost)))) => {
                    out.lost += lost.count;
                    out.lost_items += 1;
                    out.lost_totals.push(lost.total);
                }
                Ok(Some(Ok(other))) => panic!("unexpected stream item {other:?}"),
                Ok(Some(Err(e))) => panic!("stream error: {e}"),
                Ok(None) => break,
                Err(_) => break,
            }
            if !satisfied && done(&out.events) {
                satisfied = true;
            }
        }
        out
    })
}

/// Drains what is queued now (stops after `quiet` without an item).
pub fn drain(session: &mut Session, quiet: Duration) -> Collected {
    collect(session, |_| true, quiet, quiet)
}

/// Whether `ev` is the kfree_skb tracepoint with a drop reason.
pub fn is_kfree(ev: &Event) -> bool {
    &*ev.function == "kfree_skb" && ev.drop_reason.is_some()
}

/// The ifindex of `dev` in namespace `ns`, read from `ip -o link` (independent of pwru-core).
pub fn ifindex(ns: &str, dev: &str) -> u32 {
    let out = Command::new("ip")
        .args(["-n", ns, "-o", "link", "show", "dev", dev])
        .output()
        .expect("run ip");
    assert!(out.status.success(), "ip link show {dev} in {ns}");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split(':')
        .next()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("cannot parse ifindex from {text:?}"))
}

/// Sends `count` UDP datagrams from namespace `ns`, `src` -> `dst`, with `SO_MARK` = `mark`
/// when given.
pub fn send_udp_from(ns: &str, src: SocketAddr, dst: SocketAddr, count: usize, mark: Option<u32>) {
    VethPair::in_netns(ns, move || {
        let s = UdpSocket::bind(src)?;
        if let Some(m) = mark {
            sys::set_mark(s.as_fd(), m)?;
        }
        for _ in 0..count {
            s.send_to(b"pwru-rs proof", dst)?;
        }
        Ok(())
    })
    .expect("send udp");
}

/// An AF_PACKET socket capturing every frame on `dev` inside namespace `ns` (what tcpdump
/// opens): the kernel hands it a clone of each received skb.
pub fn packet_capture(ns: &str, dev: &str) -> OwnedFd {
    packet_socket::open_in(ns, dev).expect("AF_PACKET socket")
}

/// Reads every frame queued on a capture socket without blocking; returns how many.
pub fn read_capture(fd: &OwnedFd) -> usize {
    packet_socket::drain(fd)
}

/// One line per event, for failure messages and the test log.
pub fn describe(events: &[Event]) -> String {
    events
        .iter()
        .map(|e| {
            format!(
                "  {:#x} {:<24} {} netns={} mark={:#x} if={} tracked={} drop={}",
                e.skb,
                e.function,
                e.tuple.map(|t| t.to_string()).unwrap_or_default(),
                e.meta.as_ref().map_or(0, |m| m.netns),
                e.meta.as_ref().map_or(0, |m| m.mark),
                e.meta
                    .as_ref()
                    .map(|m| m.interface.to_string())
                    .unwrap_or_default(),
                e.tracked,
                e.drop_reason
                    .as_ref()
                    .map(|d| d.to_string())
                    .unwrap_or_default(),
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
