//! The Tracer's filters through the public API on the host kernel (tracepoint backend), each
//! proven both ways: a session whose filter matches the traffic gets events with the right
//! tuple, interface, netns, mark and drop reason, and a session whose filter does not match
//! gets none. "None" is checked against a witness: sessions attached at the same time see the
//! same tracepoint hits, so once the matching session has seen the last hit of the traffic,
//! the other session's programs have run on every hit too.

mod tracer_common;

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use pwru_core::{Backend, Event, MarkFilter, Session, Tracer, TracerBuilder};
use pwru_testkit::netlab::VethPair;
use tracer_common::*;

const QUIET: Duration = Duration::from_millis(300);
const LIMIT: Duration = Duration::from_secs(5);

fn builder(pcap: &str) -> TracerBuilder {
    Tracer::builder()
        .backend(Backend::Tracepoint)
        .pcap_filter(pcap)
}

fn attach(b: TracerBuilder) -> Session {
    let tracer = b.build().expect("build");
    assert_eq!(tracer.backend(), Backend::Tracepoint);
    // With bpf_rdonly_cast (6.2+) tp_btf programs take kfunc-cast filters: every test here
    // then proves that scheme on real packets; without it, the helper scheme.
    let has_cast = matches!(pwru_testkit::cast_ids::running_kernel(), Ok(Some(_)));
    match tracer.filter_access() {
        pwru_core::ProbeAccess::Cast(ids) => println!("filter reads: kfunc cast ({ids})"),
        pwru_core::ProbeAccess::Helper => println!(
            "filter reads: bpf_probe_read_kernel ({})",
            tracer.filter_access_note().unwrap_or("")
        ),
    }
    assert_eq!(
        matches!(tracer.filter_access(), pwru_core::ProbeAccess::Cast(_)),
        has_cast,
        "{:?}",
        tracer.filter_access_note()
    );
    let built = tracer.build_time();
    let s = tracer.attach().expect("attach");
    assert!(!s.attached().is_empty());
    println!("build {built:?}, attach {:?}", s.attach_time());
    s
}

fn kfree_to(events: &[Event], dst: IpAddr, dport: u16) -> Option<&Event> {
    events.iter().find(|e| {
        is_kfree(e)
            && e.tuple
                .is_some_and(|t| t.dst == Some(dst) && t.dport == dport && t.l4_proto == 17)
    })
}

/// Identity of a hit, the same in every session that saw it.
fn hit(e: &Event) -> (String, u64, String, u32) {
    (
        e.function.to_string(),
        e.skb,
        e.tuple.map(|t| t.to_string()).unwrap_or_default(),
        e.meta.as_ref().map_or(0, |m| m.netns),
    )
}

#[test]
fn matching_udp_v4_and_v6_events_carry_tuple_interface_netns_and_drop_reason() {
    let name = "matching_udp_v4_and_v6_events_carry_tuple_interface_netns_and_drop_reason";
    if skip_unless_root(name) {
        return;
    }
    let pair = VethPair::create(&tag('f', 1), 161).expect("veth pair");
    let (b4, b6) = (IpAddr::from(pair.addr_b), IpAddr::from(pair.addr6_b));
    let hosts = format!("(host {} or host {})", pair.addr_b, pair.addr6_b);
    // The filter under test keeps port 9 only; the witness keeps all UDP to B.
    let mut filtered = attach(builder(&format!("udp and dst port 9 and {hosts}")));
    let mut witness = attach(builder(&format!("udp and {hosts}")));

    // Non-matching datagrams first (port 10), then matching ones, over IPv4 and IPv6.
    let a4 = |p| SocketAddr::from((pair.addr_a, p));
    let a6 = |p| SocketAddr::from((pair.addr6_a, p));
    send_udp_from(&pair.ns_a, a4(40110), SocketAddr::from((b4, 10)), 1, None);
    send_udp_from(&pair.ns_a, a6(40610), SocketAddr::from((b6, 10)), 1, None);
    send_udp_from(&pair.ns_a, a4(40109), SocketAddr::from((b4, 9)), 1, None);
    send_udp_from(&pair.ns_a, a6(40609), SocketAddr::from((b6, 9)), 1, None);

    let all_four = |evs: &[Event]| {
        [(b4, 9), (b4, 10), (b6, 9), (b6, 10)]
            .iter()
            .all(|&(d, p)| kfree_to(evs, d, p).is_some())
    };
    let w = collect(&mut witness, all_four, QUIET, LIMIT);
    assert!(
        all_four(&w.events),
        "witness missed a drop:\n{}",
        describe(&w.events)
    );
    let f = drain(&mut filtered, QUIET);
    println!(
        "{name}: filtered session {} events, witness {} events",
        f.events.len(),
        w.events.len()
    );
    println!("{}", describe(&f.events));
    assert_eq!((f.lost, w.lost), (0, 0));

    // Non-matching traffic gives none: every event of the filtered session is for port 9 ...
    for e in &f.events {
        let t = e.tuple.expect("tuple captured");
        assert_eq!((t.dport, t.l4_proto), (9, 17), "filter let through {e:?}");
    }
    // ... and the filtered session saw exactly the witness's port-9 hits (the oracle).
    let want: BTreeSet<_> = w
        .events
        .iter()
        .filter(|e| e.tuple.is_some_and(|t| t.dport == 9))
        .map(hit)
        .collect();
    let got: BTreeSet<_> = f.events.iter().map(hit).collect();
    assert_eq!(got, want, "filtered session vs witness's port-9 hits");

    let ino_a = VethPair::netns_inode(&pair.ns_a).expect("inode a") as u32;
    let ino_b = VethPair::netns_inode(&pair.ns_b).expect("inode b") as u32;
    let if_a = format!("{}:{}", pair.if_a, ifindex(&pair.ns_a, &pair.if_a));
    let if_b = format!("{}:{}", pair.if_b, ifindex(&pair.ns_b, &pair.if_b));

    for (src, dst, sport) in [
        (IpAddr::from(pair.addr_a), b4, 40109),
        (IpAddr::from(pair.addr6_a), b6, 40609),
    ] {
        let drop = kfree_to(&f.events, dst, 9).expect("drop event");
        let t = drop.tuple.expect("tuple");
        assert_eq!((t.src, t.dst), (Some(src), Some(dst)));
        assert_eq!((t.sport, t.dport, t.l4_proto), (sport, 9, 17));
        let reason = drop.drop_reason.as_ref().expect("reason");
        assert_eq!(reason.name.as_deref(), Some("SKB_DROP_REASON_NO_SOCKET"));
        let m = drop.meta.as_ref().expect("meta");
        assert_eq!(m.netns, ino_b, "drop happens in B");
        assert_eq!(m.interface.to_string(), if_b);
        assert_eq!(
            m.protocol,
            if dst.is_ipv4() { 0x0800 } else { 0x86dd },
            "skb->protocol"
        );
        // Every event of this packet is in A (leaving on A's veth) or in B (arriving on B's).
        let of_packet: Vec<&Event> = f
            .events
            .iter()
            .filter(|e| e.tuple.is_some_and(|x| x.sport == sport))
            .collect();
        let places: BTreeSet<(u32, String)> = of_packet
            .iter()
            .filter_map(|e| e.meta.as_ref())
            .map(|m| (m.netns, m.interface.to_string()))
            .collect();
        let expected: BTreeSet<(u32, String)> =
            [(ino_a, if_a.clone()), (ino_b, if_b.clone())].into();
        assert_eq!(places, expected, "netns/interface of {src} -> {dst}");
    }
}

#[test]
fn netns_filter_keeps_only_the_chosen_namespace() {
    let name = "netns_filter_keeps_only_the_chosen_namespace";
    if skip_unless_root(name) {
        return;
    }
    let pair = VethPair::create(&tag('f', 2), 162).expect("veth pair");
    let pcap = format!("udp and host {}", pair.addr_b);
    let ino_a = VethPair::netns_inode(&pair.ns_a).expect("inode a") as u32;
    let ino_b = VethPair::netns_inode(&pair.ns_b).expect("inode b") as u32;
    // B by its ip-netns path, A by inode, and the test's own namespace (no such traffic).
    let path_b = VethPair::netns_path(&pair.ns_b);
    let mut in_b = attach(builder(&pcap).netns(path_b.to_string_lossy()));
    let mut in_a = attach(builder(&pcap).netns(format!("inode:{ino_a}")));
    let mut in_host = attach(builder(&pcap).netns("/proc/self/ns/net"));

    send_udp_from(
        &pair.ns_a,
        SocketAddr::from((pair.addr_a, 40200)),
        SocketAddr::from((pair.addr_b, 9)),
        1,
        None,
    );
    let b = collect(&mut in_b, |e| e.iter().any(is_kfree), QUIET, LIMIT);
    let a = collect(
        &mut in_a,
        |e| e.iter().any(|e| &*e.function == "net_dev_start_xmit"),
        QUIET,
        LIMIT,
    );
    let host = drain(&mut in_host, QUIET);
    println!(
        "{name}: netns B {} events, netns A {} events, host {} events",
        b.events.len(),
        a.events.len(),
        host.events.len()
    );
    assert!(
        b.events.iter().any(is_kfree),
        "no drop in B:\n{}",
        describe(&b.events)
    );
    assert!(!a.events.is_empty(), "no events in A");
    for (events, ino) in [(&b.events, ino_b), (&a.events, ino_a)] {
        for e in events {
            assert_eq!(e.meta.as_ref().map(|m| m.netns), Some(ino), "{e:?}");
        }
    }
    assert!(
        host.events.is_empty(),
        "host netns session saw:\n{}",
        describe(&host.events)
    );
}

#[test]
fn mark_filter_keeps_only_matching_marks() {
    let name = "mark_filter_keeps_only_matching_marks";
    if skip_unless_root(name) {
        return;
    }
    let pair = VethPair::create(&tag('f', 3), 163).expect("veth pair");
    let pcap = format!("udp and host {}", pair.addr_b);
    // The socket marks with 0x1142: 0x42/0xff matches only through the mask, 0x43/0xff never.
    let mut marked = attach(builder(&pcap).mark(MarkFilter {
        mark: 0x42,
        mask: 0xff,
    }));
    let mut other = attach(builder(&pcap).mark("0x43/0xff".parse().expect("mark")));
    send_udp_from(
        &pair.ns_a,
        SocketAddr::from((pair.addr_a, 40300)),
        SocketAddr::from((pair.addr_b, 9)),
        1,
        Some(0x1142),
    );
    let m = collect(
        &mut marked,
        |e| e.iter().any(|e| &*e.function == "net_dev_start_xmit"),
        QUIET,
        LIMIT,
    );
    let o = drain(&mut other, QUIET);
    println!(
        "{name}: mark 0x42/0xff {} events, mark 0x43/0xff {} events",
        m.events.len(),
        o.events.len()
    );
    println!("{}", describe(&m.events));
    assert!(!m.events.is_empty(), "no events for the marked packet");
    for e in &m.events {
        assert_eq!(e.meta.as_ref().map(|m| m.mark), Some(0x1142), "{e:?}");
    }
    assert!(
        o.events.is_empty(),
        "mismatched mark saw:\n{}",
        describe(&o.events)
    );
}

#[test]
fn interface_filter_keeps_only_the_chosen_interface() {
    let name = "interface_filter_keeps_only_the_chosen_interface";
    if skip_unless_root(name) {
        return;
    }
    let pair = VethPair::create(&tag('f', 4), 164).expect("veth pair");
    let pcap = format!("udp and host {}", pair.addr_b);
    let path_b = VethPair::netns_path(&pair.ns_b)
        .to_string_lossy()
        .into_owned();
    let mut on_veth = attach(builder(&pcap).netns(&*path_b).interface(&*pair.if_b));
    let mut on_lo = attach(builder(&pcap).netns(&*path_b).interface("lo"));
    send_udp_from(
        &pair.ns_a,
        SocketAddr::from((pair.addr_a, 40400)),
        SocketAddr::from((pair.addr_b, 9)),
        1,
        None,
    );
    let v = collect(&mut on_veth, |e| e.iter().any(is_kfree), QUIET, LIMIT);
    let l = drain(&mut on_lo, QUIET);
    println!(
        "{name}: {} events on {}, {} on lo",
        v.events.len(),
        pair.if_b,
        l.events.len()
    );
    assert!(v.events.iter().any(is_kfree), "{}", describe(&v.events));
    let want = format!("{}:{}", pair.if_b, ifindex(&pair.ns_b, &pair.if_b));
    for e in &v.events {
        let m = e.meta.as_ref().expect("meta");
        assert_eq!(m.interface.to_string(), want, "{e:?}");
    }
    assert!(
        l.events.is_empty(),
        "lo session saw:\n{}",
        describe(&l.events)
    );
}

/// `n` host terms of addresses in 10.251.0.0/16, with `extra` among them (in the middle).
fn many_hosts(n: usize, extra: Option<std::net::Ipv4Addr>) -> String {
    let mut terms: Vec<String> = (0..n)
        .map(|i| format!("host 10.251.{}.{}", i / 250, 1 + i % 250))
        .collect();
    if let Some(a) = extra {
        terms.insert(n / 2, format!("host {a}"));
    }
    terms.join(" or ")
}

#[test]
fn a_filter_of_two_thousand_hosts_keeps_exactly_its_hosts() {
    let name = "a_filter_of_two_thousand_hosts_keeps_exactly_its_hosts";
    if skip_unless_root(name) {
        return;
    }
    let pair = VethPair::create(&tag('f', 5), 165).expect("veth pair");
    let b4 = IpAddr::from(pair.addr_b);
    // B is one of 2,001 hosts (the filter pwru-filter lowers to one set lookup); the other
    // set has neither end of the traffic; the witness names B alone.
    let mut with_b = attach(builder(&many_hosts(2000, Some(pair.addr_b))));
    let mut without = attach(builder(&many_hosts(2000, None)));
    let mut witness = attach(builder(&format!("udp and host {}", pair.addr_b)));

    let a4 = |p| SocketAddr::from((pair.addr_a, p));
    send_udp_from(&pair.ns_a, a4(40509), SocketAddr::from((b4, 9)), 2, None);
    let dropped = |evs: &[Event]| kfree_to(evs, b4, 9).is_some();
    let w = collect(&mut witness, dropped, QUIET, LIMIT);
    assert!(
        dropped(&w.events),
        "witness missed the drop:\n{}",
        describe(&w.events)
    );
    let got = drain(&mut with_b, QUIET);
    let none = drain(&mut without, QUIET);
    println!(
        "{name}: witness {} events, set with B {}, set without {}",
        w.events.len(),
        got.events.len(),
        none.events.len()
    );
    assert_eq!((w.lost, got.lost, none.lost), (0, 0, 0));
    // The set with B saw every hit of the datagrams (the witness's), ...
    let want: BTreeSet<_> = w.events.iter().map(hit).collect();
    let seen: BTreeSet<_> = got
        .events
        .iter()
        .filter(|e| e.tuple.is_some_and(|t| t.l4_proto == 17))
        .map(hit)
        .collect();
    assert_eq!(seen, want, "set with B vs witness");
    // ... and the other set none of the traffic between A and B.
    let ends = [IpAddr::from(pair.addr_a), b4];
    let leaked: Vec<&Event> = none
        .events
        .iter()
        .filter(|e| {
            e.tuple.is_some_and(|t| {
                t.src.is_some_and(|s| ends.contains(&s)) || t.dst.is_some_and(|d| ends.contains(&d))
            })
        })
        .collect();
    assert!(
        leaked.is_empty(),
        "the set without A and B let through {leaked:?}"
    );
}
