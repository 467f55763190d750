//! Packet ids on the host kernel (tracepoint backend), with real packets between two
//! namespaces: a packet keeps one id from its first hop to its drop, the clone an AF_PACKET
//! capture gets has its own id linked to the original's, and an skb address the kernel reuses
//! for a later packet comes with a new id. Tracking stays off: ids work without it.

mod tracer_common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use pwru_core::{Backend, Capture, Event, Session, Tracer};
use pwru_testkit::netlab::VethPair;
use tracer_common::*;

const QUIET: Duration = Duration::from_millis(300);
const LIMIT: Duration = Duration::from_secs(5);

fn attach(filter: &str) -> Session {
    let s = Tracer::builder()
        .backend(Backend::Tracepoint)
        .pcap_filter(filter)
        .build()
        .expect("build")
        .attach()
        .expect("attach");
    assert!(!s.attached().is_empty());
    s
}

/// A veth pair whose A already knows B's MAC address. The first datagram to a neighbour not
/// yet resolved waits in the neighbour queue while ARP asks, and neigh_probe clones it to
/// build the ARP request: a second packet the tests below would have to tell apart. One
/// datagram to a port outside their filters, received in B, settles the neighbour first.
fn resolved_pair(tag: &str, subnet: u8) -> VethPair {
    let pair = VethPair::create(tag, subnet).expect("veth pair");
    let sink = pair.listen_udp(10).expect("udp socket in B");
    pair.send_udp(40010, 10, 1, 8).expect("send udp");
    let mut buf = [0u8; 64];
    sink.recv(&mut buf)
        .expect("the datagram that resolves the neighbour arrives");
    pair
}

fn id(e: &Event) -> u64 {
    e.packet_id
        .unwrap_or_else(|| panic!("an event without a packet id: {e:?}"))
}

fn describe_ids(events: &[Event]) -> String {
    events
        .iter()
        .map(|e| {
            format!(
                "  {:#x} id={:?} parent={:?} {:<24} {}",
                e.skb,
                e.packet_id,
                e.parent_packet_id,
                e.function,
                e.tuple.map(|t| t.to_string()).unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_dropped_packet_keeps_its_id_to_the_drop() {
    let name = "a_dropped_packet_keeps_its_id_to_the_drop";
    if skip_unless_root(name) {
        return;
    }
    let pair = resolved_pair(&tag('i', 1), 174);
    let mut s = attach(&format!("udp and dst port 9 and host {}", pair.addr_b));
    // Port 9 is closed in B: the datagram is dropped there (kfree_skb, NO_SOCKET).
    send_udp_from(
        &pair.ns_a,
        SocketAddr::from((pair.addr_a, 40700)),
        SocketAddr::from((pair.addr_b, 9)),
        1,
        None,
    );
    let c = collect(&mut s, |evs| evs.iter().any(is_kfree), QUIET, LIMIT);
    println!("{name}:\n{}", describe_ids(&c.events));
    let drop = c
        .events
        .iter()
        .find(|e| is_kfree(e))
        .unwrap_or_else(|| panic!("no drop:\n{}", describe_ids(&c.events)));
    let hops: Vec<&Event> = c.events.iter().filter(|e| e.skb == drop.skb).collect();
    assert!(
        hops.len() >= 3,
        "the dropped skb should have hops before its drop (sender's queue, the veth, the \
         receiver):\n{}",
        describe_ids(&c.events)
    );
    let first = id(hops[0]);
    for e in &hops {
        assert_eq!(
            id(e),
            first,
            "one packet, one id:\n{}",
            describe_ids(&c.events)
        );
        assert_eq!(e.parent_packet_id, None, "not a clone: {e:?}");
    }
    assert_eq!(
        drop.drop_reason.as_ref().and_then(|r| r.name.as_deref()),
        Some("SKB_DROP_REASON_NO_SOCKET")
    );
}

#[test]
fn a_capture_clone_gets_its_own_id_linked_to_the_original() {
    let name = "a_capture_clone_gets_its_own_id_linked_to_the_original";
    if skip_unless_root(name) {
        return;
    }
    let pair = resolved_pair(&tag('i', 2), 175);
    // The capture socket on B's veth gets a clone of the arriving frame (packet_rcv clones a
    // shared skb); reading it traces skb_copy_datagram_iovec and consume_skb on the clone.
    let capture = packet_capture(&pair.ns_b, &pair.if_b);
    let mut s = attach(&format!("udp and dst port 9 and host {}", pair.addr_b));
    send_udp_from(
        &pair.ns_a,
        SocketAddr::from((pair.addr_a, 40701)),
        SocketAddr::from((pair.addr_b, 9)),
        1,
        None,
    );
    let mut c = collect(&mut s, |evs| evs.iter().any(is_kfree), QUIET, LIMIT);
    let frames = read_capture(&capture);
    let more = collect(
        &mut s,
        |evs| evs.iter().any(|e| &*e.function == "consume_skb"),
        QUIET,
        LIMIT,
    );
    c.events.extend(more.events);
    println!(
        "{name}: {frames} frames captured\n{}",
        describe_ids(&c.events)
    );
    assert!(frames >= 1, "the capture socket got no frame");

    let drop = c
        .events
        .iter()
        .find(|e| is_kfree(e))
        .unwrap_or_else(|| panic!("no drop:\n{}", describe_ids(&c.events)));
    let original = id(drop);
    let clone: Vec<&Event> = c.events.iter().filter(|e| e.skb != drop.skb).collect();
    assert!(
        clone
            .iter()
            .any(|e| &*e.function == "skb_copy_datagram_iovec"),
        "the capture's read of the clone was not traced:\n{}",
        describe_ids(&c.events)
    );
    let clone_id = id(clone[0]);
    assert_ne!(clone_id, original, "a clone is a packet of its own");
    for e in &clone {
        assert_eq!(e.skb_head, drop.skb_head, "a clone shares the data: {e:?}");
        assert_eq!(
            id(e),
            clone_id,
            "one clone, one id:\n{}",
            describe_ids(&c.events)
        );
        assert_eq!(
            e.parent_packet_id,
            Some(original),
            "the clone names the original as its parent:\n{}",
            describe_ids(&c.events)
        );
    }
    for e in c.events.iter().filter(|e| e.skb == drop.skb) {
        assert_eq!(id(e), original);
        assert_eq!(e.parent_packet_id, None);
    }
}

#[test]
fn a_reused_skb_address_gets_a_new_id() {
    let name = "a_reused_skb_address_gets_a_new_id";
    if skip_unless_root(name) {
        return;
    }
    let pair = resolved_pair(&tag('i', 3), 176);
    reuse_gets_new_ids(name, &pair, None);
}

/// kfree_skb and consume_skb not traced: the programs that only forget end the ids at the
/// free, or the reused addresses would carry the first datagram's id.
#[test]
fn ids_end_at_frees_that_are_not_traced() {
    let name = "ids_end_at_frees_that_are_not_traced";
    if skip_unless_root(name) {
        return;
    }
    let pair = resolved_pair(&tag('i', 5), 178);
    reuse_gets_new_ids(name, &pair, Some("net_dev_queue|netif_receive_skb"));
}

/// Sends datagrams one per source port to a closed port, each dropped and freed, and checks
/// that skb addresses were reused and every datagram had an id of its own. `functions`
/// narrows the traced tracepoints.
fn reuse_gets_new_ids(name: &str, pair: &VethPair, functions: Option<&str>) {
    const COUNT: u16 = 300;
    const BASE: u16 = 41000;
    let filter = format!(
        "udp and dst port 9 and src portrange {BASE}-{} and host {}",
        BASE + COUNT - 1,
        pair.addr_b
    );
    let mut b = Tracer::builder()
        .backend(Backend::Tracepoint)
        .pcap_filter(&filter);
    if let Some(f) = functions {
        b = b.function_regex(f);
    }
    let mut s = b.build().expect("build").attach().expect("attach");
    // One datagram per source port, so that the port names the packet: each is dropped at
    // the closed port, its skb freed, and the slab hands the address to a later datagram.
    let (a, b) = (pair.addr_a, pair.addr_b);
    VethPair::in_netns(&pair.ns_a, move || {
        for i in 0..COUNT {
            let s = UdpSocket::bind(SocketAddr::from((a, BASE + i)))?;
            s.send_to(b"pwru-rs packet id", SocketAddr::from((b, 9)))?;
        }
        Ok(())
    })
    .expect("send udp");
    // Every datagram is received once in B (then dropped at the closed port).
    let received = |evs: &[Event]| {
        evs.iter()
            .filter(|e| &*e.function == "netif_receive_skb")
            .count()
    };
    let c = collect(
        &mut s,
        |evs| received(evs) >= usize::from(COUNT),
        QUIET,
        LIMIT * 4,
    );
    assert_eq!(c.lost, 0, "events were lost; the proof needs them all");
    assert_eq!(received(&c.events), usize::from(COUNT), "{name}");

    // Per datagram (source port): the skb addresses it used and its ids.
    let mut by_port: BTreeMap<u16, (BTreeSet<u64>, BTreeSet<u64>)> = BTreeMap::new();
    for e in &c.events {
        let port = e.tuple.map(|t| t.sport).expect("tuple");
        let entry = by_port.entry(port).or_default();
        entry.0.insert(e.skb);
        entry.1.insert(id(e));
    }
    for (port, (_, ids)) in &by_port {
        let of_port: Vec<Event> = c
            .events
            .iter()
            .filter(|e| e.tuple.map(|t| t.sport) == Some(*port))
            .cloned()
            .collect();
        assert_eq!(
            ids.len(),
            1,
            "datagram from port {port} has ids {ids:?}:\n{}",
            describe_ids(&of_port)
        );
    }
    // Addresses used by more than one datagram, and the ids those datagrams had.
    let mut users: BTreeMap<u64, Vec<(u16, u64)>> = BTreeMap::new();
    for (port, (skbs, ids)) in &by_port {
        for skb in skbs {
            users
                .entry(*skb)
                .or_default()
                .extend(ids.iter().map(|i| (*port, *i)));
        }
    }
    let reused: Vec<_> = users.iter().filter(|(_, u)| u.len() > 1).collect();
    println!(
        "{name}: {} datagrams, {} distinct skb addresses, {} reused (by up to {} datagrams)",
        by_port.len(),
        users.len(),
        reused.len(),
        reused.iter().map(|(_, u)| u.len()).max().unwrap_or(0)
    );
    assert!(
        !reused.is_empty(),
        "no skb address was used twice in {COUNT} datagrams: nothing proven"
    );
    for (skb, u) in &reused {
        let ids: BTreeSet<u64> = u.iter().map(|(_, i)| *i).collect();
        assert_eq!(
            ids.len(),
            u.len(),
            "skb {skb:#x} was reused with a stale id: {u:?}"
        );
    }
    let all: BTreeSet<u64> = by_port
        .values()
        .flat_map(|(_, i)| i.iter().copied())
        .collect();
    assert_eq!(
        all.len(),
        by_port.len(),
        "every datagram has an id of its own"
    );
}

#[test]
fn ids_off_leaves_events_without_ids() {
    let name = "ids_off_leaves_events_without_ids";
    if skip_unless_root(name) {
        return;
    }
    let pair = resolved_pair(&tag('i', 4), 177);
    let mut s = Tracer::builder()
        .backend(Backend::Tracepoint)
        .pcap_filter(format!("udp and dst port 9 and host {}", pair.addr_b))
        .capture(Capture::default().with_packet_id(false))
        .build()
        .expect("build")
        .attach()
        .expect("attach");
    send_udp_from(
        &pair.ns_a,
        SocketAddr::from((pair.addr_a, 40702)),
        SocketAddr::from((pair.addr_b, 9)),
        1,
        None,
    );
    let c = collect(&mut s, |evs| evs.iter().any(is_kfree), QUIET, LIMIT);
    assert!(
        c.events.iter().any(is_kfree),
        "no drop:\n{}",
        describe_ids(&c.events)
    );
    for e in &c.events {
        assert_eq!((e.packet_id, e.parent_packet_id), (None, None), "{e:?}");
    }
}
