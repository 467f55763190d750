//! skb expressions and metadata through the public API on the host kernel (tracepoint
//! backend) on real traffic: a filter expression keeps exactly the packets whose mark (or
//! interface) it names, a session whose expression matches nothing gets no event and counts
//! its runs under the expression's own outcome, and the metadata values the compiled readings
//! take from each skb equal what the kernel programs' own C code read from the same skb
//! (mark, interface index, length).
//!
//! Sessions attached together see the same tracepoint hits: once the matching session has
//! seen the last hit of the traffic, the other session's programs have run on it too.

mod tracer_common;

use std::net::SocketAddr;
use std::time::Duration;

use pwru_core::{Backend, Event, Session, Tracer, TracerBuilder};
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
    tracer.attach().expect("attach")
}

fn metadata(e: &Event, name: &str) -> u64 {
    e.metadata
        .iter()
        .find(|m| &*m.name == name)
        .unwrap_or_else(|| panic!("no metadata {name} in {e:?}"))
        .value
}

#[test]
fn skb_expression_keeps_only_matching_marks_and_metadata_reads_the_skb() {
    let name = "skb_expression_keeps_only_matching_marks";
    if skip_unless_root(name) {
        return;
    }
    let pair = VethPair::create(&tag('x', 1), 241).expect("veth pair");
    let pcap = format!("udp and host {}", pair.addr_b);
    let names = [
        "skb->mark",
        "skb->dev->ifindex",
        "skb->len",
        "skb->mark & 0xff",
    ];
    // Marks 0x1142 and 0x1143 are sent; the mask applies before the comparison.
    let mut marked = attach(
        builder(&pcap)
            .skb_filter_expr("skb->mark & 0xff == 0x42 && skb->len > 0")
            .skb_metadata(names),
    );
    let mut none = attach(builder(&pcap).skb_filter_expr("skb->mark == 0x7777 || !skb->len"));
    for (port, mark) in [(40500, 0x1143), (40501, 0x1142)] {
        send_udp_from(
            &pair.ns_a,
            SocketAddr::from((pair.addr_a, port)),
            SocketAddr::from((pair.addr_b, 9)),
            1,
            Some(mark),
        );
    }
    let m = collect(
        &mut marked,
        |e| e.iter().any(|e| &*e.function == "net_dev_start_xmit"),
        QUIET,
        LIMIT,
    );
    let n = drain(&mut none, QUIET);
    println!("{}", describe(&m.events));
    assert!(!m.events.is_empty(), "no events for the 0x1142 packet");
    for e in &m.events {
        let meta = e.meta.as_ref().expect("meta");
        assert_eq!(meta.mark, 0x1142, "{e:?}");
        let got: Vec<&str> = e.metadata.iter().map(|m| &*m.name).collect();
        assert_eq!(got, names, "{e:?}");
        assert_eq!(metadata(e, "skb->mark"), u64::from(meta.mark), "{e:?}");
        assert_eq!(metadata(e, "skb->mark & 0xff"), 0x42, "{e:?}");
        assert_eq!(
            metadata(e, "skb->dev->ifindex"),
            u64::from(meta.interface.ifindex),
            "{e:?}"
        );
        assert_eq!(metadata(e, "skb->len"), u64::from(meta.len), "{e:?}");
        let mut f = pwru_core::format::Formatter::new(Default::default());
        let mut out = Vec::new();
        f.write_text(e, &mut out);
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.contains(" skb->mark=0x1142 ") && text.contains(" skb->mark & 0xff=0x42\n"),
            "{text}"
        );
    }
    assert!(
        n.events.is_empty(),
        "an expression matching nothing saw:\n{}",
        describe(&n.events)
    );
    let stats = none.stats();
    assert!(stats.runs.filtered_expr > 0, "{stats:?}");
    assert_eq!(stats.runs.emitted, 0, "{stats:?}");
    // The 0x1143 packet's hits were refused by the expression, not by another filter.
    assert!(marked.stats().runs.filtered_expr > 0);
}

#[test]
fn skb_expression_through_the_device_pointer_keeps_one_interface() {
    let name = "skb_expression_through_the_device_pointer";
    if skip_unless_root(name) {
        return;
    }
    let pair = VethPair::create(&tag('x', 2), 242).expect("veth pair");
    let pcap = format!("udp and host {}", pair.addr_b);
    let if_b = ifindex(&pair.ns_b, &pair.if_b);
    let if_a = ifindex(&pair.ns_a, &pair.if_a);
    let path_b = VethPair::netns_path(&pair.ns_b)
        .to_string_lossy()
        .into_owned();
    // The netns filter keeps the two ends apart when their ifindexes collide.
    let mut on_b = attach(
        builder(&pcap)
            .netns(&*path_b)
            .skb_filter_expr(format!("skb->dev->ifindex == {if_b}"))
            .skb_metadata(["skb->dev->ifindex"]),
    );
    let mut not_b = attach(
        builder(&pcap)
            .netns(&*path_b)
            .skb_filter_expr(format!("skb->dev->ifindex != {if_b} && skb->dev != 0")),
    );
    send_udp_from(
        &pair.ns_a,
        SocketAddr::from((pair.addr_a, 40510)),
        SocketAddr::from((pair.addr_b, 9)),
        1,
        None,
    );
    let b = collect(&mut on_b, |e| e.iter().any(is_kfree), QUIET, LIMIT);
    let o = drain(&mut not_b, QUIET);
    println!("{name}: if_a {if_a}, if_b {if_b}\n{}", describe(&b.events));
    assert!(b.events.iter().any(is_kfree), "{}", describe(&b.events));
    for e in &b.events {
        assert_eq!(metadata(e, "skb->dev->ifindex"), u64::from(if_b), "{e:?}");
        assert_eq!(e.meta.as_ref().expect("meta").interface.ifindex, if_b);
    }
    assert!(o.events.is_empty(), "{}", describe(&o.events));
}

#[test]
fn expression_errors_name_the_member_and_column() {
    let name = "expression_errors_name_the_member_and_column";
    if skip_unless_root(name) {
        return;
    }
    let e = builder("")
        .skb_filter_expr("skb->dev->ifindx == 1")
        .build()
        .unwrap_err();
    let text = e.to_string();
    assert!(text.contains("column 11"), "{text}");
    assert!(text.contains("no member `ifindx`"), "{text}");
    let e = builder("")
        .skb_metadata([
            "skb->mark",
            "skb->len",
            "skb->hash",
            "skb->priority",
            "skb->protocol",
        ])
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("at most 4"), "{e}");
    let e = builder("")
        .trace_xdp(true)
        .xdp_filter_expr("skb->mark == 1")
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("`xdp`"), "{e}");
    let e = builder("")
        .xdp_metadata(["xdp->rxq->queue_index"])
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("trace_xdp"), "{e}");
}
