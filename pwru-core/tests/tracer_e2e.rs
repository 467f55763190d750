//! The Tracer end to end through the public API, on the host kernel with the tracepoint
//! backend: real packets in a pair of network namespaces, filtered in the kernel.

use std::time::Duration;

use futures::StreamExt;
use pwru_core::netlab::VethPair;
use pwru_core::{Backend, Error, Event, Session, Tracer, TracerBuilder};

fn skip_unless_root(name: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("SKIP {name}: needs root (CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN)");
        return true;
    }
    false
}

/// A tag unique to this process and test, for namespace names.
fn tag(n: u32) -> String {
    format!("{}{}", std::process::id() % 100_000, n)
}

/// Reads events until `quiet` passes without one (or `limit` events).
fn collect(session: &mut Session, quiet: Duration, limit: usize) -> (Vec<Event>, u64) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let mut events = session.events();
        let mut out = Vec::new();
        let mut lost = 0;
        while out.len() < limit {
            match tokio::time::timeout(quiet, events.next()).await {
                Ok(Some(Ok(ev))) => out.push(ev),
                Ok(Some(Err(Error::EventsLost { count, .. }))) => lost += count,
                Ok(Some(Err(e))) => panic!("stream error: {e}"),
                Ok(None) | Err(_) => break,
            }
        }
        (out, lost)
    })
}

fn tracepoint_tracer(pair: &VethPair) -> TracerBuilder {
    Tracer::builder()
        .backend(Backend::Tracepoint)
        .pcap_filter(format!("udp and host {}", pair.addr_b))
}

fn is_drop(ev: &Event) -> bool {
    ev.drop_reason.is_some() && &*ev.function == "kfree_skb"
}

#[test]
fn udp_to_closed_port_is_dropped_with_no_socket() {
    if skip_unless_root("udp_to_closed_port_is_dropped_with_no_socket") {
        return;
    }
    let pair = VethPair::create(&tag(1), 211).expect("veth pair");
    let tracer = tracepoint_tracer(&pair).build().expect("build");
    assert_eq!(tracer.backend(), Backend::Tracepoint);
    let mut session = tracer.attach(|_| {}).expect("attach");
    assert!(!session.attached().is_empty());
    pair.send_udp(40100, 9, 1, 16).expect("send");
    let (events, lost) = collect(&mut session, Duration::from_millis(500), 1000);
    assert_eq!(lost, 0);
    let drop = events
        .iter()
        .find(|e| is_drop(e))
        .unwrap_or_else(|| panic!("no kfree_skb event among {events:#?}"));
    let reason = drop.drop_reason.as_ref().expect("reason");
    assert_eq!(reason.name.as_deref(), Some("SKB_DROP_REASON_NO_SOCKET"));
    let t = drop.tuple.as_ref().expect("tuple");
    assert_eq!(t.src, Some(pair.addr_a.into()));
    assert_eq!(t.dst, Some(pair.addr_b.into()));
    assert_eq!((t.sport, t.dport, t.l4_proto), (40100, 9, 17));
    println!("events seen for one dropped datagram: {}", events.len());
}
