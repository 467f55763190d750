//! Self-tracing on the host kernel (tracepoint backend, no filter): resolving interface names
//! for the events must not flood the trace with pwru-core's own netlink traffic. Namespaces
//! made after the session started are unknown to its interface cache; many events from each of
//! their interfaces must cost a bounded number of lookups per namespace, not one per event.
//! pwru-core's lookups run on threads named `pwru-netns`, so their skbs are the events whose
//! task is that thread of this process.

mod tracer_common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::StreamExt;
use pwru_core::{Backend, Event, Item, Tracer};
use pwru_testkit::netlab::VethPair;
use tracer_common::*;

const PAIRS: u8 = 4;
const ROUNDS: usize = 4;
const PER_ROUND: usize = 50;
const PORT: u16 = 9;
/// Events of pwru-core's own lookups allowed per new namespace (one dump: a request and a
/// few reply skbs, each seen by two tracepoints here; 5 measured on the 6.18 host).
const OWN_PER_NAMESPACE: usize = 12;

fn own_lookup(ev: &Event, pid: u32) -> bool {
    ev.process.tgid == pid && ev.process.comm.as_str() == "pwru-netns"
}

#[test]
fn interface_lookups_do_not_flood_the_trace() {
    let name = "interface_lookups_do_not_flood_the_trace";
    if skip_unless_root(name) {
        return;
    }
    let pid = std::process::id();
    let mut session = Tracer::builder()
        .backend(Backend::Tracepoint)
        .ring_buffer_bytes(32 << 20)
        .build()
        .expect("build")
        .attach()
        .expect("attach");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime");

    // Before any new interface exists the cache knows every name: pwru-core has nothing to
    // look up, so none of the trace is its own (the names were read before attaching).
    let mut own_at_start = 0usize;
    let mut seen_at_start = 0usize;
    rt.block_on(async {
        let mut events = session.events();
        // Until the trace is quiet for 500 ms, or 3 s at most (other work on a shared host may
        // never let it go quiet; only this process's lookups count).
        let wait = Duration::from_millis(500);
        let until = Instant::now() + Duration::from_secs(3);
        while let Ok(Some(item)) = tokio::time::timeout(wait, events.next()).await {
            if let Ok(Item::Event(ev)) = item {
                seen_at_start += 1;
                own_at_start += usize::from(own_lookup(&ev, pid));
            }
            if Instant::now() > until {
                break;
            }
        }
    });
    println!("{name}: at start: {own_at_start} own lookup events of {seen_at_start}");
    assert_eq!(
        own_at_start, 0,
        "pwru-core traced its own interface-name lookups made at attach"
    );

    // Namespaces unknown to the session's cache: every event from them is a miss at first.
    let pairs: Vec<VethPair> = (0..PAIRS)
        .map(|i| VethPair::create(&tag('s', u32::from(i)), 190 + i).expect("veth pair"))
        .collect();
    let inodes: Vec<u64> = pairs
        .iter()
        .flat_map(|p| [&p.ns_a, &p.ns_b])
        .map(|ns| VethPair::netns_inode(ns).expect("netns inode"))
        .collect();

    let mut own = 0usize;
    let mut own_functions = std::collections::BTreeMap::<String, usize>::new();
    let mut lab_events = 0usize;
    let mut named = 0usize;
    let mut total = 0usize;
    let mut lost = 0u64;
    rt.block_on(async {
        let mut events = session.events();
        for round in 0..ROUNDS {
            for (i, p) in pairs.iter().enumerate() {
                let src = SocketAddr::from((p.addr_a, 41500 + i as u16));
                let dst = SocketAddr::from((p.addr_b, PORT));
                send_udp_from(&p.ns_a, src, dst, PER_ROUND, None);
            }
            // Read until the trace goes quiet for a moment (the lab's packets are all in), or
            // 5 s at most.
            let until = Instant::now() + Duration::from_secs(5);
            loop {
                let wait = Duration::from_millis(300);
                match tokio::time::timeout(wait, events.next()).await {
                    Ok(Some(Ok(Item::Event(ev)))) => {
                        total += 1;
                        if own_lookup(&ev, pid) {
                            own += 1;
                            *own_functions.entry(ev.function.to_string()).or_default() += 1;
                        }
                        if let Some(m) = ev.meta.as_ref() {
                            if inodes.contains(&u64::from(m.netns)) && m.interface.ifindex != 0 {
                                lab_events += 1;
                                named += usize::from(m.interface.name.is_some());
                            }
                        }
                    }
                    Ok(Some(Ok(Item::Lost(l)))) => lost += l.count,
                    Ok(Some(Ok(other))) => panic!("unexpected stream item {other:?}"),
                    Ok(Some(Err(e))) => panic!("stream error: {e}"),
                    Ok(None) | Err(_) => break,
                }
                if Instant::now() > until {
                    break;
                }
            }
            println!("{name}: after round {round}: {own} own lookup events of {total}");
        }
    });
    println!(
        "{name}: {total} events ({lost} lost), {lab_events} from the {} new namespaces ({named} \
         with a name); pwru-core's own lookups: {own} events {own_functions:?}; cache {:?}",
        inodes.len(),
        session.interface_cache_stats()
    );
    // With no filter on a shared host the ring buffer may overflow: lost records count too.
    assert!(
        lab_events > 0
            && lab_events as u64 + lost >= (usize::from(PAIRS) * ROUNDS * PER_ROUND) as u64,
        "expected at least one event per datagram from the lab's interfaces, got {lab_events} \
         ({lost} records lost)"
    );
    assert_eq!(
        named, lab_events,
        "every lab event carries its interface name"
    );
    assert!(
        own <= OWN_PER_NAMESPACE * inodes.len(),
        "pwru-core's own interface lookups produced {own} events for {} new namespaces \
         (at most {OWN_PER_NAMESPACE} each allowed): {own_functions:?}",
        inodes.len()
    );
}
