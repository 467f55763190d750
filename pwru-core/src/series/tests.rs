//! Unit tests of the grouping, diffs and paths on constructed event sequences.

use std::net::Ipv4Addr;

use futures::StreamExt;

use super::*;
use crate::event::{DropReason, Event, Interface, Meta, ProbeKind, TcpFlags, Tuple};
use crate::session::{Item, LostEvents};

fn ev(id: u64, t: u64, f: &str) -> Event {
    let mut e = Event::new(ProbeKind::Tracepoint, f);
    e.packet_id = Some(id);
    e.skb = 0xffff_8880_0000_0000 + id * 0x100;
    e.timestamp_ns = t;
    e
}

fn kprobe(id: u64, t: u64, f: &str) -> Event {
    let mut e = ev(id, t, f);
    e.kind = ProbeKind::KprobeMulti;
    e
}

fn udp(dst: Ipv4Addr) -> Tuple {
    Tuple::new(
        Ipv4Addr::new(10, 0, 0, 1).into(),
        40000,
        dst.into(),
        9,
        17,
        TcpFlags::default(),
    )
}

fn meta(netns: u32, ifindex: u32, mark: u32, len: u32) -> Meta {
    Meta {
        netns,
        mark,
        interface: Interface::new(ifindex, None),
        len,
        ..Meta::default()
    }
}

fn lost(count: u64, total: u64) -> LostEvents {
    LostEvents { count, total }
}

fn drain(g: &mut Grouper) -> Vec<Series> {
    std::iter::from_fn(|| g.pop()).collect()
}

fn names(s: &Series) -> Vec<&str> {
    s.hops.iter().map(|h| &*h.function).collect()
}

#[test]
fn hops_are_ordered_by_time_and_deltas_follow_that_order() {
    let mut g = Grouper::new(SeriesOptions::default());
    g.push(&ev(1, 100, "net_dev_queue"));
    g.push(&ev(1, 300, "netif_receive_skb"));
    // From another CPU, written to the ring buffer late.
    g.push(&ev(1, 200, "net_dev_start_xmit"));
    g.push(&ev(1, 450, "consume_skb"));
    let done = drain(&mut g);
    assert_eq!(done.len(), 1);
    let s = &done[0];
    assert_eq!(
        names(s),
        [
            "net_dev_queue",
            "net_dev_start_xmit",
            "netif_receive_skb",
            "consume_skb"
        ]
    );
    let deltas: Vec<u64> = s.hops.iter().map(|h| h.delta_ns).collect();
    assert_eq!(deltas, [0, 100, 100, 150]);
    assert_eq!(s.end, SeriesEnd::Freed);
    assert_eq!(s.duration_ns(), 350);
    assert!(!s.weak_identity() && !s.possibly_affected());
}

#[test]
fn a_drop_ends_the_series_with_its_reason() {
    let mut g = Grouper::new(SeriesOptions::default());
    g.push(&ev(5, 10, "netif_receive_skb"));
    let mut drop = ev(5, 20, "kfree_skb");
    drop.drop_reason = Some(DropReason::new(2, Some("SKB_DROP_REASON_NO_SOCKET")));
    g.push(&drop);
    let done = drain(&mut g);
    assert_eq!(done.len(), 1, "the drop tracepoint ends the series at once");
    assert_eq!(
        done[0].drop_reason().and_then(|r| r.name.as_deref()),
        Some("SKB_DROP_REASON_NO_SOCKET")
    );
    assert_eq!(g.stats().in_flight, 0);
    // SKB_CONSUMED through the drop path is a normal end.
    let mut consumed = ev(6, 30, "kfree_skb");
    consumed.drop_reason = Some(DropReason::new(1, Some("SKB_CONSUMED")));
    g.push(&consumed);
    assert_eq!(drain(&mut g)[0].end, SeriesEnd::Freed);
}

#[test]
fn release_functions_after_a_kprobe_drop_join_the_series_until_kfree_skbmem() {
    let mut g = Grouper::new(SeriesOptions::default());
    g.push(&kprobe(9, 0, "ip_rcv"));
    let mut drop = kprobe(9, 100, "kfree_skb_reason");
    drop.drop_reason = Some(DropReason::new(5, Some("SKB_DROP_REASON_NETFILTER_DROP")));
    g.push(&drop);
    g.push(&kprobe(9, 150, "skb_release_data"));
    assert!(g.pop().is_none(), "the release functions still follow");
    g.push(&kprobe(9, 200, "kfree_skbmem"));
    let s = g.pop().expect("kfree_skbmem is final");
    assert_eq!(names(&s).len(), 4);
    assert!(
        matches!(&s.end, SeriesEnd::Dropped(r) if r.code == 5),
        "the drop, not the free, is why it ended: {:?}",
        s.end
    );
    // Without kfree_skbmem, the grace time ends it.
    g.push(&kprobe(10, 1_000, "consume_skb"));
    g.push(&kprobe(11, 1_000 + 2_000_000, "ip_rcv"));
    let s = g.pop().expect("grace passed");
    assert_eq!(s.key, PacketKey::Id(10));
    assert_eq!(s.end, SeriesEnd::Freed);
}

#[test]
fn idle_series_end_by_timeout_in_event_time_or_by_expire() {
    let opts = SeriesOptions {
        idle_timeout_ns: 1_000,
        ..SeriesOptions::default()
    };
    let mut g = Grouper::new(opts);
    g.push(&ev(1, 0, "ip_rcv"));
    g.push(&ev(2, 500, "ip_rcv"));
    assert!(g.pop().is_none());
    g.push(&ev(3, 1_400, "ip_rcv"));
    let done = drain(&mut g);
    assert_eq!(done.len(), 1, "{done:?}");
    assert_eq!(done[0].key, PacketKey::Id(1));
    assert_eq!(done[0].end, SeriesEnd::IdleTimeout);
    g.expire(10_000);
    let keys: Vec<PacketKey> = drain(&mut g).iter().map(|s| s.key).collect();
    assert!(keys.contains(&PacketKey::Id(2)) && keys.contains(&PacketKey::Id(3)));
    assert_eq!(g.stats().idle, 3);
    assert_eq!(g.stats().in_flight, 0);
}

#[test]
fn a_loss_marks_every_open_series_and_none_opened_later() {
    let mut g = Grouper::new(SeriesOptions::default());
    g.push(&ev(1, 0, "net_dev_queue"));
    g.push(&ev(2, 1, "net_dev_queue"));
    g.push(&ev(2, 2, "netif_receive_skb"));
    g.mark_lost(&lost(12, 12));
    g.mark_lost(&lost(3, 15));
    g.push(&ev(3, 3, "net_dev_queue"));
    g.push(&ev(1, 4, "consume_skb"));
    g.push(&ev(2, 5, "consume_skb"));
    g.push(&ev(3, 6, "consume_skb"));
    let done = drain(&mut g);
    let by = |id| {
        done.iter()
            .find(|s| s.key == PacketKey::Id(id))
            .expect("series")
    };
    assert_eq!(
        by(1).gaps,
        [Gap {
            after_hops: 1,
            lost: 15
        }],
        "two notices at one place are one gap"
    );
    assert_eq!(by(2).gaps[0].after_hops, 2);
    assert!(by(1).possibly_affected() && by(2).possibly_affected());
    assert!(!by(3).possibly_affected(), "opened after the loss");
    let st = g.stats();
    assert_eq!((st.loss_notices, st.lost, st.gaps_marked), (2, 15, 4));
}

#[test]
fn the_in_flight_cap_evicts_the_least_recently_seen_and_counts_them() {
    let opts = SeriesOptions {
        max_in_flight: 16,
        ..SeriesOptions::default()
    };
    let mut g = Grouper::new(opts);
    for id in 0..16 {
        g.push(&ev(id, id, "ip_rcv"));
    }
    // Packet 0 is seen again: the least recently seen are now 1, 2, ...
    g.push(&ev(0, 100, "ip_local_deliver"));
    g.push(&ev(99, 101, "ip_rcv"));
    let done = drain(&mut g);
    assert_eq!(done.len(), 2, "an eighth of 16");
    assert!(done.iter().all(|s| s.end == SeriesEnd::Evicted));
    let mut keys: Vec<PacketKey> = done.iter().map(|s| s.key).collect();
    keys.sort_by_key(|k| match k {
        PacketKey::Id(i) => *i,
        _ => u64::MAX,
    });
    assert_eq!(keys, [PacketKey::Id(1), PacketKey::Id(2)]);
    let st = g.stats();
    assert_eq!((st.evicted, st.in_flight), (2, 15));
}

#[test]
fn the_hop_cap_keeps_the_last_hop_and_counts_the_rest() {
    let opts = SeriesOptions {
        max_hops: 3,
        ..SeriesOptions::default()
    };
    let mut g = Grouper::new(opts);
    for (t, f) in ["a", "b", "c", "d", "e"].iter().enumerate() {
        g.push(&ev(1, t as u64, f));
    }
    g.push(&ev(1, 9, "consume_skb"));
    let s = g.pop().expect("series");
    assert_eq!(names(&s), ["a", "b", "consume_skb"]);
    assert_eq!(s.hops_not_kept, 3);
    assert_eq!(g.stats().hops_not_kept, 3);
}

#[test]
fn changes_name_the_hop_where_dnat_netns_device_mark_and_length_changed() {
    let mut g = Grouper::new(SeriesOptions::default());
    let mut a = ev(1, 0, "net_dev_queue");
    a.meta = Some(meta(100, 3, 0, 98));
    a.tuple = Some(udp(Ipv4Addr::new(10, 0, 0, 2)));
    let mut b = ev(1, 10, "netif_receive_skb");
    b.meta = Some(meta(200, 7, 0, 84));
    b.tuple = Some(udp(Ipv4Addr::new(10, 0, 0, 2)));
    // A hop without tuple or meta compares nothing...
    let c = ev(1, 20, "nf_hook_slow");
    // ...and the next one is compared with the last known state.
    let mut d = ev(1, 30, "ip_local_deliver");
    d.meta = Some(meta(200, 7, 0x10, 84));
    d.tuple = Some(udp(Ipv4Addr::new(10, 0, 0, 3)));
    for e in [&a, &b, &c, &d] {
        g.push(e);
    }
    g.push(&ev(1, 40, "consume_skb"));
    let s = g.pop().expect("series");
    assert!(s.hops[0].changes.is_empty());
    let at_b: Vec<String> = s.hops[1].changes.iter().map(|c| c.to_string()).collect();
    assert_eq!(at_b, ["netns 100 -> 200", "dev 3 -> 7", "len 98 -> 84"]);
    assert!(s.hops[2].changes.is_empty());
    let at_d: Vec<String> = s.hops[3].changes.iter().map(|c| c.to_string()).collect();
    assert_eq!(
        at_d,
        [
            "mark 0x0 -> 0x10",
            "DNAT rewrote dst 10.0.0.2:9 -> 10.0.0.3:9"
        ]
    );
    assert_eq!(s.hops[3].changes[1].field(), "dst");
}

#[test]
fn without_packet_ids_series_are_keyed_by_address_and_split_at_the_free() {
    let mut g = Grouper::new(SeriesOptions::default());
    let mk = |t, f: &str| {
        let mut e = Event::new(ProbeKind::Tracepoint, f);
        e.skb = 0xffff_8880_1234_5600;
        e.timestamp_ns = t;
        e
    };
    g.push(&mk(0, "net_dev_queue"));
    g.push(&mk(5, "consume_skb"));
    // The same address, reused by the next packet.
    g.push(&mk(9, "net_dev_queue"));
    assert_eq!(g.stats().in_flight_weak, 1);
    g.push(&mk(12, "consume_skb"));
    let done = drain(&mut g);
    assert_eq!(done.len(), 2);
    assert!(done.iter().all(|s| s.weak_identity() && s.hops.len() == 2));
    assert_eq!(done[0].key, PacketKey::Skb(0xffff_8880_1234_5600));
}

#[test]
fn clones_keep_their_parent() {
    let mut g = Grouper::new(SeriesOptions::default());
    let mut c = ev(8, 0, "packet_rcv");
    c.parent_packet_id = Some(7);
    g.push(&c);
    g.push(&ev(8, 1, "consume_skb"));
    assert_eq!(g.pop().expect("series").parent_packet_id, Some(7));
}

#[test]
fn paths_count_packets_per_function_sequence_and_drop_reason() {
    let mut g = Grouper::new(SeriesOptions::default());
    let mut paths = PathAggregator::new(PathOptions::default());
    for id in 0..30u64 {
        let base = id * 1_000_000;
        g.push(&ev(id, base, "netif_receive_skb"));
        g.push(&ev(id, base + 1_000 + id, "ip_rcv"));
        let mut end = ev(id, base + 5_000, "kfree_skb");
        if id % 3 == 0 {
            end.drop_reason = Some(DropReason::new(2, Some("SKB_DROP_REASON_NO_SOCKET")));
        } else {
            end = ev(id, base + 5_000, "consume_skb");
        }
        g.push(&end);
    }
    for s in drain(&mut g) {
        paths.add(&s);
    }
    let ps = paths.paths();
    assert_eq!(ps.len(), 2);
    assert_eq!(ps[0].packets, 20);
    assert!(ps[0].drop_reason.is_none());
    assert_eq!(ps[1].packets, 10);
    assert_eq!(ps[1].drop_reason.as_ref().map(|r| r.code), Some(2));
    let p50 = ps[0].hop_latency[0].percentile(0.5).expect("p50");
    assert!((900..=1_150).contains(&p50), "{p50}");
    assert_eq!(ps[0].hop_latency.len(), 2);
    assert_eq!(paths.series(), 30);
    // The path cap counts what it cannot keep.
    let mut capped = PathAggregator::new(PathOptions { max_paths: 1 });
    g.push(&ev(100, 0, "a"));
    g.push(&ev(100, 1, "consume_skb"));
    g.push(&ev(101, 2, "b"));
    g.push(&ev(101, 3, "consume_skb"));
    for s in drain(&mut g) {
        capped.add(&s);
    }
    assert_eq!((capped.paths().len(), capped.series_not_kept()), (1, 1));
}

#[test]
fn the_stream_adapter_groups_marks_gaps_passes_errors_and_flushes_at_the_end() {
    let items: Vec<Result<Item, crate::Error>> = vec![
        Ok(Item::Event(ev(1, 0, "net_dev_queue"))),
        Ok(Item::Lost(lost(4, 4))),
        Ok(Item::Event(ev(2, 1, "net_dev_queue"))),
        Ok(Item::Event(ev(1, 2, "consume_skb"))),
    ];
    let mut s = SeriesStream::new(futures::stream::iter(items), SeriesOptions::default());
    let out: Vec<Series> = futures::executor::block_on(async {
        let mut v = Vec::new();
        while let Some(r) = s.next().await {
            v.push(r.expect("no errors in the input"));
        }
        v
    });
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].key, PacketKey::Id(1));
    assert!(out[0].possibly_affected());
    assert_eq!(out[1].key, PacketKey::Id(2));
    assert_eq!(out[1].end, SeriesEnd::Flushed);
    assert!(!out[1].possibly_affected());
}
