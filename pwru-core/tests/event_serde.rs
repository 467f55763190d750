//! The `serde` feature: `Event` and its parts serialize, shared strings as plain strings.
//! (pwru-core's dev-dependency on itself turns the feature on for `cargo test`.)
#![cfg(feature = "serde")]

use std::net::Ipv4Addr;
use std::time::{Duration, UNIX_EPOCH};

use pwru_core::event::{
    BpfProg, DropReason, Interface, Meta, ProbeKind, Process, ShortName, TcpFlags, Tuple, WallClock,
};
use pwru_core::symbols::Symbol;
use pwru_core::Event;

fn full_event() -> Event {
    let mut ev = Event::new(ProbeKind::Tracepoint, "kfree_skb");
    ev.skb = 0xffff_8880_1234_5600;
    ev.timestamp_ns = 2_000_000_123;
    ev.wall_time =
        Some(WallClock::from_offset_ns(1_700_000_000_000_000_000).to_system_time(ev.timestamp_ns));
    ev.caller = Some(Symbol::new(
        "udp_rcv",
        Some("udp"),
        0xffff_ffff_8100_0000,
        0x2a,
    ));
    ev.process = Process::new(7, 6, ShortName::new("ping"));
    ev.meta = Some({
        let mut m = Meta::default();
        m.netns = 4026531840;
        m.mark = 3;
        m.interface = Interface::new(2, Some("eth0"));
        m.protocol = 0x0800;
        m.mtu = 1500;
        m.len = 84;
        m.pkt_type = 0;
        m
    });
    ev.tuple = Some(Tuple::new(
        Ipv4Addr::new(10, 0, 0, 1).into(),
        40000,
        Ipv4Addr::new(10, 0, 0, 2).into(),
        9,
        6,
        TcpFlags(TcpFlags::SYN),
    ));
    ev.drop_reason = Some(DropReason::new(2, Some("SKB_DROP_REASON_NO_SOCKET")));
    ev.bpf_prog = Some(BpfProg::new(12, "cil_from_netdev"));
    ev.stack = vec![ev.caller.clone().unwrap_or_else(|| unreachable!())];
    ev
}

#[test]
fn event_serializes_with_strings_for_names() {
    let v = serde_json::to_value(full_event()).expect("serialize");
    println!("{v:#}");
    assert_eq!(v["kind"], "Tracepoint");
    assert_eq!(v["function"], "kfree_skb");
    assert_eq!(v["skb"], 0xffff_8880_1234_5600u64);
    assert_eq!(v["caller"]["name"], "udp_rcv");
    assert_eq!(v["caller"]["module"], "udp");
    assert_eq!(v["caller"]["offset"], 0x2a);
    assert_eq!(v["process"]["comm"], "ping");
    assert_eq!(v["meta"]["interface"]["name"], "eth0");
    assert_eq!(v["tuple"]["src"], "10.0.0.1");
    assert_eq!(v["tuple"]["dport"], 9);
    assert_eq!(v["drop_reason"]["name"], "SKB_DROP_REASON_NO_SOCKET");
    assert_eq!(v["bpf_prog"]["name"], "cil_from_netdev");
    assert_eq!(v["stack"][0]["name"], "udp_rcv");
    assert_eq!(v["tunnel"], serde_json::Value::Null);
    // SystemTime as serde writes it: seconds and nanoseconds since the epoch.
    let want = UNIX_EPOCH + Duration::new(1_700_000_002, 123);
    assert_eq!(Some(want), full_event().wall_time);
    assert_eq!(v["wall_time"]["secs_since_epoch"], 1_700_000_002u64);
    assert_eq!(v["wall_time"]["nanos_since_epoch"], 123);
}
