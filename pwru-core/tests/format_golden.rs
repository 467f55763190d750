//! Golden tests of pwru's text and JSON formats, expected strings written from pwru's format
//! rules (output.go: `%-18s %-3s %-16s`, meta `%-10s %-8s %16s %#04x %-5s %-5s`, centred IFACE,
//! tuple/func columns growing to the longest seen, JSON `omitempty`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use pwru_core::event::{
    BpfProg, DropReason, Event, Interface, Meta, ProbeKind, Process, ShortName, Symbol, TcpFlags,
    Tuple,
};
use pwru_core::format::{FormatOptions, Formatter, TimestampMode};

fn udp_event() -> Event {
    let mut ev = Event::new(ProbeKind::KprobeMulti, "udp_queue_rcv_skb");
    ev.skb = 0xffff0000ea5d7ce8;
    ev.cpu = 7;
    ev.process = Process::new(2287425, 2287425, ShortName::default());
    ev.timestamp_ns = 1_000_000;
    ev.meta = Some({
        let mut m = Meta::default();
        m.netns = 4026532458;
        m.mark = 0;
        m.interface = Interface::new(353, Some("eth0"));
        m.protocol = 0x0800;
        m.mtu = 65536;
        m.len = 90;
        m.pkt_type = 0;
        m
    });
    ev.tuple = Some(Tuple::new(
        IpAddr::V4(Ipv4Addr::new(172, 18, 0, 5)),
        54806,
        IpAddr::V4(Ipv4Addr::new(172, 18, 0, 2)),
        8472,
        17,
        TcpFlags::default(),
    ));
    ev
}

fn text(f: &mut Formatter, ev: &Event) -> String {
    let mut out = Vec::new();
    f.write_text(ev, &mut out);
    String::from_utf8(out).unwrap()
}

fn header(f: &Formatter) -> String {
    let mut out = Vec::new();
    f.write_header(&mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn default_header_and_line() {
    let mut f = Formatter::new(FormatOptions::default());
    assert_eq!(
        header(&f),
        "SKB                CPU PROCESS          NETNS      MARK/x        IFACE       PROTO  MTU   LEN   TUPLE FUNC\n"
    );
    assert_eq!(
        text(&mut f, &udp_event()),
        "0xffff0000ea5d7ce8 7   <empty>:2287425  4026532458 0            eth0:353     0x0800 65536 90    172.18.0.5:54806->172.18.0.2:8472(udp) udp_queue_rcv_skb\n"
    );
}

#[test]
fn tuple_column_grows_to_longest_seen() {
    let opts = {
        let mut o = FormatOptions::default();
        o.meta = false;
        o
    };
    let mut f = Formatter::new(opts);
    let long = udp_event();
    let mut short = udp_event();
    short.tuple = Some(Tuple::new(
        IpAddr::V4(Ipv4Addr::new(1, 1, 1, 1)),
        1,
        IpAddr::V4(Ipv4Addr::new(2, 2, 2, 2)),
        2,
        1,
        TcpFlags::default(),
    ));
    short.function = "icmp_rcv".into();
    let a = text(&mut f, &long);
    let b = text(&mut f, &short);
    assert_eq!(
        a,
        "0xffff0000ea5d7ce8 7   <empty>:2287425  172.18.0.5:54806->172.18.0.2:8472(udp) udp_queue_rcv_skb\n"
    );
    assert_eq!(
        b,
        "0xffff0000ea5d7ce8 7   <empty>:2287425  1.1.1.1:1->2.2.2.2:2(icmp)             icmp_rcv\n"
    );
}

#[test]
fn ipv6_tcp_flags_drop_reason_and_long_names() {
    let opts = {
        let mut o = FormatOptions::default();
        o.tcp_flags = true;
        o
    };
    let mut f = Formatter::new(opts);
    let mut ev = udp_event();
    ev.function = "sk_skb_reason_drop".into();
    ev.drop_reason = Some(DropReason::new(2, Some("SKB_DROP_REASON_NO_SOCKET")));
    ev.process.comm = ShortName::new("a-very-long-comm");
    ev.process.tgid = 12345;
    if let Some(m) = ev.meta.as_mut() {
        m.interface.name = Some("veth-long-name0".into());
        m.interface.ifindex = 12345;
        m.protocol = 0x86dd;
        m.mark = 0xbeef;
    }
    ev.tuple = Some(Tuple::new(
        IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1)),
        443,
        IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2)),
        50000,
        6,
        TcpFlags(TcpFlags::SYN | TcpFlags::ACK),
    ));
    // comm "a-very-long-com" (kernel keeps 15 bytes) + ":12345" = 21 bytes: the last 16
    // bytes "y-long-com:12345" with the first replaced by "~".
    // iface "veth-long-name0:12345" = 21 bytes -> "~" + last 15.
    assert_eq!(
        text(&mut f, &ev),
        "0xffff0000ea5d7ce8 7   ~-long-com:12345 4026532458 beef     ~ong-name0:12345 0x86dd 65536 90    [fd00::1]:443->[fd00::2]:50000(tcp:SYN|ACK) sk_skb_reason_drop(SKB_DROP_REASON_NO_SOCKET)\n"
    );
    // Unknown reason name: pwru prints "func (code)".
    ev.drop_reason = Some(DropReason::new(999, None));
    assert!(text(&mut f, &ev).ends_with(" sk_skb_reason_drop (999)\n"));
}

#[test]
fn caller_tunnel_cb_and_timestamps() {
    let opts = {
        let mut o = FormatOptions::default();
        o.meta = true;
        o.cb = true;
        o.caller = true;
        o.tunnel = true;
        o.timestamp = TimestampMode::Relative;
        o
    };
    let mut f = Formatter::new(opts);
    assert_eq!(
        header(&f),
        "SKB                CPU PROCESS          TIMESTAMP        NETNS      MARK/x        IFACE       PROTO  MTU   LEN   __sk_buff->cb[]                                          TUPLE FUNC CALLER TUNNEL\n"
    );
    let mut ev = udp_event();
    ev.kind = ProbeKind::Tc;
    ev.function = "cil_from_netdev".into();
    ev.bpf_prog = Some(BpfProg::new(42, "cil_from_netdev"));
    ev.cb = Some([1, 0xdeadbeef, 0, 0, 0x10]);
    ev.caller = Some(Symbol::new("tcf_classify", None, 0xffffffff81000000, 0x42));
    ev.tunnel = Some(Tuple::new(
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        1234,
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        80,
        6,
        TcpFlags(TcpFlags::SYN),
    ));
    let first = text(&mut f, &ev);
    assert_eq!(
        first,
        "0xffff0000ea5d7ce8 7   <empty>:2287425  0                4026532458 0            eth0:353     0x0800 65536 90    [0x00000001,0xDEADBEEF,0x00000000,0x00000000,0x00000010] 172.18.0.5:54806->172.18.0.2:8472(udp) cil_from_netdev(tc) tcf_classify 10.0.0.1:1234->10.0.0.2:80(tcp)\n"
    );
    ev.timestamp_ns += 1500;
    let second = text(&mut f, &ev);
    assert!(
        second.starts_with("0xffff0000ea5d7ce8 7   <empty>:2287425  1500             4026532458"),
        "{second}"
    );
}

#[test]
fn absolute_and_current_timestamps() {
    let mut f = Formatter::new({
        let mut o = FormatOptions::default();
        o.meta = false;
        o.tuple = false;
        o.timestamp = TimestampMode::Absolute;
        o
    });
    assert_eq!(
        header(&f),
        "TIME                    SKB                CPU PROCESS          TIMESTAMP        FUNC\n"
    );
    let line = text(&mut f, &udp_event());
    // 2006-01-02T15:04:05.000 layout, then the kernel time column.
    let (time, rest) = line.split_at(23);
    assert_eq!(time.len(), 23);
    assert_eq!(&time[4..5], "-");
    assert_eq!(&time[10..11], "T");
    assert_eq!(&time[19..20], ".");
    assert_eq!(
        rest,
        " 0xffff0000ea5d7ce8 7   <empty>:2287425  1000000          udp_queue_rcv_skb\n"
    );
}

#[test]
fn absolute_time_is_the_events_wall_time() {
    for json in [false, true] {
        let mut f = Formatter::new({
            let mut o = FormatOptions::default();
            o.meta = false;
            o.tuple = false;
            o.timestamp = TimestampMode::Absolute;
            o
        });
        let mut ev = udp_event();
        // 2000-06-15T12:00:00.250 UTC: the same date in every time zone, unlike the time
        // the monotonic stamp (1 ms after boot) would give.
        ev.wall_time =
            Some(std::time::UNIX_EPOCH + std::time::Duration::new(961_070_400, 250_000_000));
        let mut out = Vec::new();
        if json {
            f.write_json(&ev, &mut out);
        } else {
            f.write_text(&ev, &mut out);
        }
        let out = String::from_utf8(out).expect("utf-8");
        assert!(
            out.contains("2000-06-1") && out.contains(":00.250"),
            "{out}"
        );
    }
}

#[test]
fn stack_and_dumps_follow_the_line() {
    let mut f = Formatter::new({
        let mut o = FormatOptions::default();
        o.meta = false;
        o.tuple = false;
        o.stack = true;
        o.skb_dump = true;
        o
    });
    let mut ev = udp_event();
    ev.stack = ["udp_queue_rcv_skb", "udp_unicast_rcv_skb"]
        .iter()
        .map(|n| Symbol::new(n, None, 0, 0))
        .collect();
    ev.skb_dump = Some("(struct sk_buff){\n .len = (unsigned int)90,\n}".into());
    assert_eq!(
        text(&mut f, &ev),
        "0xffff0000ea5d7ce8 7   <empty>:2287425  udp_queue_rcv_skb\nudp_queue_rcv_skb\nudp_unicast_rcv_skb\n(struct sk_buff){\n .len = (unsigned int)90,\n}\n"
    );
}

#[test]
fn cut_dumps_say_where_they_were_cut() {
    let mut f = Formatter::new({
        let mut o = FormatOptions::default();
        o.meta = false;
        o.tuple = false;
        o.skb_dump = true;
        o.shinfo_dump = true;
        o
    });
    let mut ev = udp_event();
    ev.skb_dump = Some("(struct sk_buff){\n .len".into());
    ev.skb_dump_cut = true;
    ev.shinfo_dump = Some("(struct skb_shared_info){}".into());
    assert_eq!(
        text(&mut f, &ev),
        "0xffff0000ea5d7ce8 7   <empty>:2287425  udp_queue_rcv_skb\n(struct sk_buff){\n .len\n\
         ... (skb dump cut at 24 bytes)\n(struct skb_shared_info){}\n"
    );
}

#[test]
fn json_lines_carry_pwru_keys() {
    let mut f = Formatter::new({
        let mut o = FormatOptions::default();
        o.tcp_flags = true;
        o.caller = true;
        o.tunnel = true;
        o.stack = true;
        o.skb_dump = true;
        o.timestamp = TimestampMode::Current;
        o
    });
    let mut ev = udp_event();
    ev.process.comm = ShortName::new("ping\"\\\n");
    ev.caller = Some(Symbol::new("ip_local_deliver", None, 0, 8));
    ev.skb_dump = Some("dump\u{2028}\t\u{1}".into());
    let mut out = Vec::new();
    f.write_json(&ev, &mut out);
    let line = String::from_utf8(out).unwrap();
    assert!(
        line.ends_with("}\n") && line.matches('\n').count() == 1,
        "{line}"
    );
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    // serde_json sorts keys; the line itself keeps pwru's order.
    for k in [
        "skb",
        "cpu",
        "process",
        "func",
        "caller_func",
        "time",
        "netns",
        "iface",
        "proto",
        "mtu",
        "len",
        "cb",
        "tuple",
        "tunnel_tuple",
        "skb_metadata",
    ] {
        assert!(keys.contains(&k), "{k} missing from {line}");
    }
    assert!(
        !keys.contains(&"mark"),
        "zero mark is omitted like Go omitempty: {line}"
    );
    assert_eq!(v["skb"], "0xffff0000ea5d7ce8");
    assert_eq!(v["cpu"], 7);
    assert_eq!(v["process"], "ping\"\\\n:2287425");
    assert_eq!(v["func"], "udp_queue_rcv_skb");
    assert_eq!(v["caller_func"], "ip_local_deliver");
    assert_eq!(v["time"], 1_000_000);
    assert_eq!(v["netns"], 4026532458u64);
    assert_eq!(v["iface"], "eth0:353");
    assert_eq!(v["proto"], 2048);
    assert_eq!(v["mtu"], 65536);
    assert_eq!(v["len"], 90);
    assert_eq!(v["cb"], serde_json::json!([0, 0, 0, 0, 0]));
    assert_eq!(
        v["tuple"],
        serde_json::json!({"saddr": "172.18.0.5", "daddr": "172.18.0.2", "sport": 54806, "dport": 8472, "proto": 17})
    );
    // An absent tunnel tuple is an empty object, as pwru's non-nil pointer to a zero struct.
    assert_eq!(v["tunnel_tuple"], serde_json::json!({}));
    assert_eq!(v["skb_metadata"], "\ndump\u{2028}\t\u{1}");
    assert!(
        line.contains("\\u2028") && line.contains("\\u0001"),
        "{line}"
    );
    // Key order as pwru's struct.
    let pos = |k: &str| line.find(&format!("\"{k}\":")).unwrap();
    let order = [
        "skb",
        "cpu",
        "process",
        "func",
        "caller_func",
        "time",
        "netns",
        "iface",
        "proto",
        "mtu",
        "len",
        "cb",
        "tuple",
        "tunnel_tuple",
        "skb_metadata",
    ];
    assert!(order.windows(2).all(|w| pos(w[0]) < pos(w[1])), "{line}");
}

#[test]
fn json_formats_many_events_as_lines() {
    let mut f = Formatter::new(FormatOptions::default());
    let mut out = Vec::new();
    for i in 0..100u64 {
        let mut ev = udp_event();
        ev.skb += i;
        f.write_json(&ev, &mut out);
    }
    let text = String::from_utf8(out).unwrap();
    let mut n = 0;
    for l in text.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert!(v.get("skb").is_some());
        n += 1;
    }
    assert_eq!(n, 100);
}

#[test]
fn relative_timestamps_keep_a_bounded_memory() {
    use pwru_core::format::{LAST_SEEN_HORIZON_NS, LAST_SEEN_MAX};
    let mut f = Formatter::new({
        let mut o = FormatOptions::default();
        o.timestamp = TimestampMode::Relative;
        o
    });
    let mut ev = udp_event();
    // A flood of distinct skbs within one horizon: the map never exceeds its bound.
    for i in 0..(LAST_SEEN_MAX as u64 * 3) {
        ev.skb = 0xffff_0000_0000_0000 + i * 256;
        ev.timestamp_ns = 1_000 + i;
        text(&mut f, &ev);
        assert!(f.last_seen_len() <= LAST_SEEN_MAX);
    }
    // Every skb not remembered was counted as forgotten.
    assert_eq!(
        f.last_seen_forgotten() + f.last_seen_len() as u64,
        LAST_SEEN_MAX as u64 * 3
    );
    // An skb seen recently keeps its relative time across a prune of old ones.
    f.clear_last_seen();
    for i in 0..LAST_SEEN_MAX as u64 {
        ev.skb = 0xffff_1000_0000_0000 + i * 256;
        ev.timestamp_ns = 5_000;
        text(&mut f, &ev);
    }
    ev.skb = 0xffff_1000_0000_0000; // seen at 5 000
    ev.timestamp_ns = 5_000 + LAST_SEEN_HORIZON_NS / 2;
    let line = text(&mut f, &ev);
    assert!(
        line.contains(&format!(" {} ", LAST_SEEN_HORIZON_NS / 2)),
        "{line}"
    );
    // A new skb after the horizon forces a prune: only the refreshed one survives.
    ev.skb = 0xffff_2000_0000_0000;
    ev.timestamp_ns = 5_001 + LAST_SEEN_HORIZON_NS;
    text(&mut f, &ev);
    assert_eq!(f.last_seen_len(), 2);
    // Other modes remember nothing.
    let mut abs = Formatter::new(FormatOptions::default());
    text(&mut abs, &ev);
    assert_eq!(abs.last_seen_len(), 0);
}

#[test]
fn metadata_follows_the_function_in_text_and_is_a_list_in_json() {
    let mut f = Formatter::new(FormatOptions::default());
    let mut ev = udp_event();
    ev.metadata = vec![
        pwru_core::event::Metadata::new("skb->mark", 0x1142),
        pwru_core::event::Metadata::new("skb->dev->ifindex", 9),
    ];
    assert_eq!(
        text(&mut f, &ev),
        "0xffff0000ea5d7ce8 7   <empty>:2287425  4026532458 0            eth0:353     0x0800 65536 90    172.18.0.5:54806->172.18.0.2:8472(udp) udp_queue_rcv_skb skb->mark=0x1142 skb->dev->ifindex=0x9\n"
    );
    let mut out = Vec::new();
    f.write_json(&ev, &mut out);
    let line = String::from_utf8(out).unwrap();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        v["metadata"],
        serde_json::json!([
            {"name": "skb->mark", "value": 0x1142},
            {"name": "skb->dev->ifindex", "value": 9},
        ]),
        "{line}"
    );
    // No metadata asked for: no key.
    let mut out = Vec::new();
    f.write_json(&udp_event(), &mut out);
    assert!(!String::from_utf8(out).unwrap().contains("metadata"));
}

#[test]
fn packet_id_column_and_json_keys_are_opt_in() {
    // Off (pwru's output): neither the column nor the keys.
    let mut ev = udp_event();
    ev.packet_id = Some(281_474_976_710_659);
    let mut plain = Formatter::new(FormatOptions::default());
    assert!(!header(&plain).contains("PACKET_ID"));
    assert!(!text(&mut plain, &ev).contains("281474976710659"));
    let mut out = Vec::new();
    plain.write_json(&ev, &mut out);
    assert!(!String::from_utf8(out).unwrap().contains("packet_id"));

    let mut f = Formatter::new({
        let mut o = FormatOptions::default();
        o.packet_id = true;
        o
    });
    assert_eq!(
        header(&f),
        "SKB                PACKET_ID        CPU PROCESS          NETNS      MARK/x        IFACE       PROTO  MTU   LEN   TUPLE FUNC\n"
    );
    assert_eq!(
        text(&mut f, &ev),
        "0xffff0000ea5d7ce8 281474976710659  7   <empty>:2287425  4026532458 0            eth0:353     0x0800 65536 90    172.18.0.5:54806->172.18.0.2:8472(udp) udp_queue_rcv_skb\n"
    );
    // A clone names its parent; an event without an id shows `-`.
    let mut clone = udp_event();
    clone.packet_id = Some(562_949_953_421_313);
    clone.parent_packet_id = Some(281_474_976_710_659);
    assert_eq!(
        text(&mut f, &clone),
        "0xffff0000ea5d7ce8 562949953421313<-281474976710659 7   <empty>:2287425  4026532458 0            eth0:353     0x0800 65536 90    172.18.0.5:54806->172.18.0.2:8472(udp) udp_queue_rcv_skb\n"
    );
    assert_eq!(
        text(&mut f, &udp_event()),
        "0xffff0000ea5d7ce8 -                7   <empty>:2287425  4026532458 0            eth0:353     0x0800 65536 90    172.18.0.5:54806->172.18.0.2:8472(udp) udp_queue_rcv_skb\n"
    );

    // JSON: the id right after skb, the parent only when there is one.
    let mut out = Vec::new();
    f.write_json(&ev, &mut out);
    f.write_json(&clone, &mut out);
    f.write_json(&udp_event(), &mut out);
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with(r#"{"skb":"0xffff0000ea5d7ce8","packet_id":281474976710659,"cpu":7,"#),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with(
            r#"{"skb":"0xffff0000ea5d7ce8","packet_id":562949953421313,"parent_packet_id":281474976710659,"cpu":7,"#
        ),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].starts_with(r#"{"skb":"0xffff0000ea5d7ce8","cpu":7,"#),
        "{}",
        lines[2]
    );
    let v: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
    assert_eq!(v["packet_id"], 562_949_953_421_313u64);
    assert_eq!(v["parent_packet_id"], 281_474_976_710_659u64);
}

#[test]
fn netns_name_column_and_json_key() {
    let opts = {
        let mut o = FormatOptions::default();
        o.tuple = false;
        o.netns_names = Some(12);
        o
    };
    let mut f = Formatter::new(opts);
    f.set_netns_names([(4026532458, "a-very-long-name".to_string())].into());
    assert_eq!(
        header(&f),
        "SKB                CPU PROCESS          NETNS      MARK/x        IFACE       PROTO  MTU   LEN    NETNS NAME  FUNC\n"
    );
    // The name is cut to the column's width, centred in it.
    assert_eq!(
        text(&mut f, &udp_event()),
        "0xffff0000ea5d7ce8 7   <empty>:2287425  4026532458 0            eth0:353     0x0800 65536 90    a-very-long- udp_queue_rcv_skb\n"
    );
    // An unknown namespace leaves the column blank.
    let mut other = udp_event();
    if let Some(m) = other.meta.as_mut() {
        m.netns = 1;
    }
    assert_eq!(
        text(&mut f, &other),
        "0xffff0000ea5d7ce8 7   <empty>:2287425  1          0            eth0:353     0x0800 65536 90                 udp_queue_rcv_skb\n"
    );
    let mut out = Vec::new();
    f.write_json(&udp_event(), &mut out);
    let json = String::from_utf8(out).unwrap();
    assert!(
        json.contains(r#""netns":4026532458,"netns_name":"a-very-long-name","#),
        "{json}"
    );
}
