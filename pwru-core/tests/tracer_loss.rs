//! Lost events on the host kernel (tracepoint backend): a one-page ring buffer and a flood of
//! matching packets. The losses appear in the stream as `Item::Lost` notices and add up:
//! events delivered + events lost = events the kernel side produced. The produced count comes
//! from a witness session with the same filter and a large ring buffer, attached at the same
//! time (so its programs run on exactly the same tracepoint hits) that lost nothing.

mod tracer_common;

use std::net::SocketAddr;
use std::time::Duration;

use pwru_core::Event;
use pwru_testkit::netlab::VethPair;
use tracer_common::*;

const FLOOD: usize = 400;

fn drops(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|e| &*e.function == "kfree_skb")
        .count()
}

#[test]
fn tiny_ring_buffer_reports_losses_that_add_up() {
    let name = "tiny_ring_buffer_reports_losses_that_add_up";
    if skip_unless_root(name) {
        return;
    }
    let pair = VethPair::create(&tag('l', 1), 181).expect("veth pair");
    let src = SocketAddr::from((pair.addr_a, 40700));
    let dst = SocketAddr::from((pair.addr_b, 9));
    // Resolve the neighbour first, so every flooded datagram takes the same path.
    send_udp_from(&pair.ns_a, src, dst, 1, None);

    let filter = format!("udp and dst port 9 and host {}", pair.addr_b);
    let mut tiny = attach_tracepoint(&filter, 4096);
    let mut witness = attach_tracepoint(&filter, 16 << 20);

    // Two rounds; nobody reads while the packets fly, so the one-page ring fills after a few
    // records. Each round's losses are reported when the reader catches up.
    let mut delivered = 0u64;
    let mut lost = 0u64;
    let mut produced = 0u64;
    for round in 1..=2u64 {
        send_udp_from(&pair.ns_a, src, dst, FLOOD, None);
        // Every datagram ends in one kfree_skb (closed port, or a full backlog).
        let w = collect(
            &mut witness,
            |evs| drops(evs) >= FLOOD,
            Duration::from_millis(500),
            Duration::from_secs(15),
        );
        let t = drain(&mut tiny, Duration::from_millis(500));
        println!(
            "{name}: round {round}: produced {} (witness: {} drops, lost {}); tiny ring \
             delivered {} + lost {} in {} loss notices (totals {:?})",
            w.events.len(),
            drops(&w.events),
            w.lost,
            t.events.len(),
            t.lost,
            t.lost_items,
            t.lost_totals
        );
        assert_eq!(drops(&w.events), FLOOD, "witness saw every datagram end");
        assert_eq!(
            w.lost, 0,
            "the witness must see everything the kernel produced"
        );
        assert!(t.lost > 0, "a one-page ring buffer lost nothing in a flood");
        assert!(!t.events.is_empty(), "the tiny ring delivered nothing");
        assert_eq!(
            t.events.len() as u64 + t.lost,
            w.events.len() as u64,
            "round {round}: delivered + lost must equal produced"
        );
        delivered += t.events.len() as u64;
        lost += t.lost;
        produced += w.events.len() as u64;
        // Each item's total is the running sum over the session.
        assert_eq!(t.lost_totals.last().copied(), Some(lost));
    }
    let stats = tiny.stats();
    println!("{name}: {produced} produced = {delivered} delivered + {lost} lost; {stats:?}");
    assert_eq!(witness.stats().lost, 0);
    assert_eq!(stats.lost, lost, "Session::stats agrees with the stream");
    assert_eq!(stats.records, delivered);
    assert_eq!(stats.decode_errors, 0);
}
