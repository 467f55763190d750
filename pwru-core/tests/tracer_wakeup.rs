//! Missed wake-ups on the host kernel (tracepoint backend): a reader that has just drained a
//! burst of records and gone to sleep must wake for the next lone record, without any other
//! event or signal. Each cycle sends a burst of matching datagrams, then one lone datagram from
//! a source port of its own, and waits (with a deadline) for the lone datagram's last record
//! (its `kfree_skb`: the port is closed) to come out of the stream. Half the cycles send the
//! lone datagram right behind the burst (it lands while the reader is still draining); the
//! other half first wait until the reader delivered the whole burst (it lands on a reader that
//! has just gone idle), which is where a lost wake-up leaves it stuck.

mod tracer_common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use pwru_core::{Backend, Item, Tracer};
use pwru_testkit::netlab::VethPair;
use tracer_common::*;

const CYCLES: u16 = 200;
const BURST: usize = 200;
const BURST_PORT: u16 = 40900;
const LONE_PORT_BASE: u16 = 41000;
/// How long a lone record may take to reach the stream: far above the microseconds it takes
/// when the wake-up works, far below "forever" when it is lost.
const DEADLINE: Duration = Duration::from_secs(2);

/// What the reader tells the sender about each `kfree_skb` it sees.
#[derive(Debug)]
enum Seen {
    Drop { sport: u16 },
    Lost(u64),
}

#[test]
fn lone_record_after_a_burst_always_wakes_the_reader() {
    let name = "lone_record_after_a_burst_always_wakes_the_reader";
    if skip_unless_root(name) {
        return;
    }
    let pair = VethPair::create(&tag('w', 1), 183).expect("veth pair");
    let dst = SocketAddr::from((pair.addr_b, 9));
    let addr_a = pair.addr_a;
    // Resolve the neighbour first, so no ARP happens during the cycles.
    send_udp_from(
        &pair.ns_a,
        SocketAddr::from((addr_a, BURST_PORT)),
        dst,
        1,
        None,
    );

    let filter = format!("udp and dst port 9 and host {}", pair.addr_b);
    let mut session = Tracer::builder()
        .backend(Backend::Tracepoint)
        .pcap_filter(filter)
        .build()
        .expect("build")
        .attach()
        .expect("attach");

    let (seen_tx, seen_rx) = mpsc::channel::<Seen>();
    let (stop_tx, stop_rx) = futures::channel::oneshot::channel::<()>();
    let report = std::thread::scope(|s| {
        let reader = s.spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .expect("tokio runtime");
            rt.block_on(async {
                let mut events = session.events();
                let mut stop = stop_rx;
                loop {
                    let item = tokio::select! {
                        item = events.next() => item,
                        _ = &mut stop => break,
                    };
                    match item {
                        Some(Ok(Item::Event(ev))) if is_kfree(&ev) => {
                            let sport = ev.tuple.map_or(0, |t| t.sport);
                            if seen_tx.send(Seen::Drop { sport }).is_err() {
                                break;
                            }
                        }
                        Some(Ok(Item::Lost(lost))) => {
                            let _ = seen_tx.send(Seen::Lost(lost.count));
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => panic!("stream error: {e}"),
                        None => break,
                    }
                }
            });
            session.backstop_wakeups()
        });

        let ns = pair.ns_a.clone();
        let result = VethPair::in_netns(&ns, move || {
            let burst = UdpSocket::bind(SocketAddr::from((addr_a, BURST_PORT)))?;
            let mut stuck = Vec::new();
            let mut lost = 0u64;
            let mut burst_drops = 0usize;
            let mut waits = Vec::new();
            for cycle in 0..CYCLES {
                let lone_port = LONE_PORT_BASE + cycle;
                let lone = UdpSocket::bind(SocketAddr::from((addr_a, lone_port)))?;
                for _ in 0..BURST {
                    burst.send_to(b"burst", dst)?;
                }
                let expected_burst = burst_drops + BURST;
                let mut saw = |seen: Seen, burst_drops: &mut usize, lone_seen: &mut bool| match seen
                {
                    Seen::Drop { sport } if sport == BURST_PORT => *burst_drops += 1,
                    Seen::Drop { sport } if sport == lone_port => *lone_seen = true,
                    Seen::Drop { .. } => {}
                    Seen::Lost(n) => lost += n,
                };
                let mut lone_seen = false;
                if cycle % 2 == 1 {
                    // Let the reader drain the burst and go to sleep first.
                    let until = Instant::now() + DEADLINE;
                    while burst_drops < expected_burst {
                        let left = until.saturating_duration_since(Instant::now());
                        match seen_rx.recv_timeout(left) {
                            Ok(s) => saw(s, &mut burst_drops, &mut lone_seen),
                            Err(_) => break,
                        }
                    }
                }
                lone.send_to(b"lone", dst)?;
                let sent = Instant::now();
                let until = sent + DEADLINE;
                while !lone_seen {
                    let left = until.saturating_duration_since(Instant::now());
                    match seen_rx.recv_timeout(left) {
                        Ok(s) => saw(s, &mut burst_drops, &mut lone_seen),
                        Err(_) => break,
                    }
                }
                if lone_seen {
                    waits.push(sent.elapsed());
                } else {
                    stuck.push(cycle);
                }
            }
            Ok((stuck, lost, burst_drops, waits))
        });
        let _ = stop_tx.send(());
        let backstop = reader.join().expect("reader thread");
        result.map(|r| (r, backstop))
    });
    let ((stuck, lost, burst_drops, mut waits), backstop) = report.expect("traffic");
    waits.sort();
    println!(
        "{name}: {CYCLES} cycles of {BURST} datagrams + 1 lone; {} burst drops seen, {lost} \
         records lost; lone record delivered in {} cycles (median {:?}, max {:?}); stuck in \
         cycles {stuck:?}; backstop wake-ups (kernel notifications missed) {backstop}",
        burst_drops,
        waits.len(),
        waits.get(waits.len() / 2),
        waits.last()
    );
    assert!(
        stuck.is_empty(),
        "the lone record did not reach the stream within {DEADLINE:?} in {} of {CYCLES} \
         cycles: {stuck:?}",
        stuck.len()
    );
}
