//! `track_skb` on the host kernel (tracepoint backend), proven both ways: with tracking, a
//! packet is followed after it stops matching the filter (its tuple rewritten by DNAT) and into
//! a clone (the copy an AF_PACKET capture gets); without tracking, the same sessions see neither.

mod tracer_common;

use std::net::SocketAddr;
use std::time::Duration;

use pwru_core::{Backend, Event, MarkFilter, Session, Tracer, TracerBuilder};
use pwru_testkit::netlab::{nft, VethPair};
use tracer_common::*;

const QUIET: Duration = Duration::from_millis(300);
const LIMIT: Duration = Duration::from_secs(5);

fn attach(b: TracerBuilder) -> Session {
    let s = b
        .backend(Backend::Tracepoint)
        .build()
        .expect("build")
        .attach()
        .expect("attach");
    assert!(!s.attached().is_empty());
    s
}

fn dport(e: &Event) -> Option<u16> {
    e.tuple.map(|t| t.dport)
}

#[test]
fn track_skb_follows_a_packet_through_dnat() {
    let name = "track_skb_follows_a_packet_through_dnat";
    if skip_unless_root(name) {
        return;
    }
    let pair = VethPair::create(&tag('t', 1), 171).expect("veth pair");
    // B rewrites UDP to port 9999 into port 7777 (closed: the packet is then dropped).
    nft(
        &pair.ns_b,
        &format!(
            "table ip pwru_nat {{\n chain pre {{\n type nat hook prerouting priority dstnat;\n \
             udp dport 9999 dnat to {}:7777\n }}\n}}\n",
            pair.addr_b
        ),
    )
    .expect("nft dnat rule");
    let filter = format!("udp and dst port 9999 and host {}", pair.addr_b);
    let mut tracked = attach(Tracer::builder().pcap_filter(&filter).track_skb(true));
    let mut plain = attach(Tracer::builder().pcap_filter(&filter));

    send_udp_from(
        &pair.ns_a,
        SocketAddr::from((pair.addr_a, 40500)),
        SocketAddr::from((pair.addr_b, 9999)),
        1,
        None,
    );
    let t = collect(
        &mut tracked,
        |evs| evs.iter().any(|e| is_kfree(e) && dport(e) == Some(7777)),
        QUIET,
        LIMIT,
    );
    let p = drain(&mut plain, QUIET);
    println!(
        "{name}: tracked {} events, untracked {}\n{}",
        t.events.len(),
        p.events.len(),
        describe(&t.events)
    );

    let drop = t
        .events
        .iter()
        .find(|e| is_kfree(e) && dport(e) == Some(7777))
        .unwrap_or_else(|| panic!("no drop after NAT:\n{}", describe(&t.events)));
    let skb = drop.skb;
    assert!(
        t.events
            .iter()
            .any(|e| e.skb == skb && dport(e) == Some(9999)),
        "the dropped skb was not seen before NAT"
    );
    assert!(
        drop.tracked,
        "the translated packet passed through tracking"
    );
    let tuple = drop.tuple.expect("tuple");
    assert_eq!(
        (tuple.src, tuple.dst, tuple.sport),
        (Some(pair.addr_a.into()), Some(pair.addr_b.into()), 40500)
    );
    assert_eq!(
        drop.drop_reason.as_ref().and_then(|r| r.name.as_deref()),
        Some("SKB_DROP_REASON_NO_SOCKET")
    );
    // Before NAT the events pass the filter; after it, only tracking lets them through.
    for e in &t.events {
        match dport(e) {
            Some(9999) => assert!(!e.tracked || e.skb == skb),
            Some(7777) => assert!(e.tracked && e.skb == skb, "{e:?}"),
            other => panic!("unexpected port {other:?}: {e:?}"),
        }
    }
    // Without tracking: the same skb before NAT (it matches the filter on its own), nothing after.
    assert!(
        p.events
            .iter()
            .any(|e| e.skb == skb && dport(e) == Some(9999) && !e.tracked),
        "untracked session missed the packet:\n{}",
        describe(&p.events)
    );
    assert!(
        p.events.iter().all(|e| dport(e) == Some(9999)),
        "untracked session saw the translated packet:\n{}",
        describe(&p.events)
    );
}

#[test]
fn track_skb_follows_a_packet_into_its_clone() {
    let name = "track_skb_follows_a_packet_into_its_clone";
    if skip_unless_root(name) {
        return;
    }
    let pair = VethPair::create(&tag('t', 2), 172).expect("veth pair");
    // A capture socket on B's veth gets a clone of every frame, made on arrival, before
    // PREROUTING marks the original: the clone never carries the mark the filter asks for.
    let capture = packet_capture(&pair.ns_b, &pair.if_b);
    nft(
        &pair.ns_b,
        "table ip pwru_mark {\n chain pre {\n type filter hook prerouting priority mangle;\n \
         udp dport 9 meta mark set 0x77\n }\n}\n",
    )
    .expect("nft mark rule");
    let mark = MarkFilter {
        mark: 0x77,
        mask: u32::MAX,
    };
    let filter = format!("udp and host {}", pair.addr_b);
    let mut tracked = attach(
        Tracer::builder()
            .pcap_filter(&filter)
            .mark(mark)
            .track_skb(true),
    );
    let mut plain = attach(Tracer::builder().pcap_filter(&filter).mark(mark));

    send_udp_from(
        &pair.ns_a,
        SocketAddr::from((pair.addr_a, 40600)),
        SocketAddr::from((pair.addr_b, 9)),
        1,
        None,
    );
    // The marked original is dropped first (closed port) ...
    let mut t = collect(&mut tracked, |evs| evs.iter().any(is_kfree), QUIET, LIMIT);
    // ... then the capture reads its clone: skb_copy_datagram_iovec and consume_skb on it.
    let frames = read_capture(&capture);
    let more = collect(
        &mut tracked,
        |evs| evs.iter().any(|e| &*e.function == "consume_skb"),
        QUIET,
        LIMIT,
    );
    t.events.extend(more.events);
    let p = drain(&mut plain, QUIET);
    println!(
        "{name}: {frames} frames captured; tracked {} events, untracked {}\n{}",
        t.events.len(),
        p.events.len(),
        describe(&t.events)
    );
    assert!(frames >= 1, "the capture socket got no frame");

    let drop = t
        .events
        .iter()
        .find(|e| is_kfree(e))
        .unwrap_or_else(|| panic!("no drop:\n{}", describe(&t.events)));
    assert_eq!(drop.meta.as_ref().map(|m| m.mark), Some(0x77));
    let original = drop.skb;
    let clone_events: Vec<&Event> = t.events.iter().filter(|e| e.skb != original).collect();
    assert!(
        clone_events
            .iter()
            .any(|e| &*e.function == "skb_copy_datagram_iovec"),
        "the capture's read of the clone was not traced:\n{}",
        describe(&t.events)
    );
    for e in &clone_events {
        assert!(e.tracked, "clone event not through tracking: {e:?}");
        assert_eq!(e.skb_head, drop.skb_head, "a clone shares the data: {e:?}");
        assert_eq!(
            e.meta.as_ref().map(|m| m.mark),
            Some(0),
            "clone is unmarked"
        );
        let tuple = e.tuple.expect("tuple");
        assert_eq!((tuple.sport, tuple.dport), (40600, 9));
    }
    // Without tracking: the marked original only, never the unmarked clone.
    assert!(p.events.iter().any(|e| e.skb == original && is_kfree(e)));
    assert!(
        p.events.iter().all(|e| e.skb == original),
        "untracked session saw another skb:\n{}",
        describe(&p.events)
    );
}
