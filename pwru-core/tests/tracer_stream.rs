//! The owned stream under tokio, on the host kernel with the tracepoint backend and real
//! packets over a veth pair: moved into `tokio::spawn` on its own, statistics read from another
//! task while it streams, a stop from another task ending it, and losses as `Item::Lost`.

mod tracer_common;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures::StreamExt;
use pwru_core::{EventStream, Item};
use pwru_testkit::netlab::VethPair;
use tracer_common::*;

/// How long a step may take before the test calls it hung (never a timing assertion).
const DEADLINE: Duration = Duration::from_secs(15);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("tokio runtime")
}

#[test]
fn owned_stream_in_a_spawned_task_streams_counts_and_stops() {
    let name = "owned_stream_in_a_spawned_task_streams_counts_and_stops";
    if skip_unless_root(name) {
        return;
    }
    let pair = VethPair::create(&tag('o', 1), 201).expect("veth pair");
    let b = IpAddr::from(pair.addr_b);
    let port = 7101;
    let session = attach_tracepoint(&format!("udp and dst port {port} and host {b}"), 1 << 20);
    let stats = session.stats_handle();
    let stopper = session.stop_handle();
    let stream: EventStream = session.into_stream();

    runtime().block_on(async move {
        let (got_event, event_seen) = futures::channel::oneshot::channel::<String>();
        // The stream moves into the task on its own; it reads until the stream ends.
        let reader = tokio::spawn(async move {
            let mut stream = stream;
            let mut got_event = Some(got_event);
            let mut events = 0u64;
            while let Some(item) = stream.next().await {
                match item {
                    Ok(Item::Event(ev)) => {
                        events += 1;
                        let to_port = ev
                            .tuple
                            .is_some_and(|t| t.dst == Some(b) && t.dport == port);
                        if to_port {
                            if let Some(tx) = got_event.take() {
                                let _ = tx.send(ev.function.to_string());
                            }
                        }
                    }
                    Ok(other) => panic!("unexpected item: {other:?}"),
                    Err(e) => panic!("stream error: {e}"),
                }
            }
            events
        });

        let (ns_a, src) = (
            pair.ns_a.clone(),
            SocketAddr::from((pair.addr_a, 40000 + port)),
        );
        tokio::task::spawn_blocking(move || {
            send_udp_from(&ns_a, src, SocketAddr::from((b, port)), 1, None)
        })
        .await
        .expect("send task");
        let function = tokio::time::timeout(DEADLINE, event_seen)
            .await
            .expect("the spawned stream delivered no event for the datagram")
            .expect("reader task ended before an event");
        println!("{name}: spawned stream saw the datagram in {function}");

        // Another task reads the counters while the reader is still streaming (asleep).
        let read = tokio::spawn(async move { stats.stats() })
            .await
            .expect("stats task");
        println!("{name}: stats from another task while streaming: {read:?}");
        assert!(read.records > 0, "records read so far: {read:?}");
        assert!(!reader.is_finished(), "the stream ended before the stop");

        // Stop from yet another task: the sleeping reader wakes, drains and completes.
        tokio::spawn(async move { stopper.stop() })
            .await
            .expect("stop task");
        let events = tokio::time::timeout(DEADLINE, reader)
            .await
            .expect("the stream did not end after a stop from another task")
            .expect("reader task");
        println!("{name}: the stream ended after {events} events");
        assert!(events >= 1);
    });
}

#[test]
fn a_stop_before_the_first_poll_ends_the_stream() {
    let name = "a_stop_before_the_first_poll_ends_the_stream";
    if skip_unless_root(name) {
        return;
    }
    let pair = VethPair::create(&tag('o', 2), 202).expect("veth pair");
    let session = attach_tracepoint(
        &format!("udp and dst port 7102 and host {}", pair.addr_b),
        1 << 20,
    );
    let stopper = session.stop_handle();
    let mut stream = session.into_stream();
    stopper.stop();
    assert!(stopper.is_stopped());
    runtime().block_on(async move {
        let reader = tokio::spawn(async move {
            let mut n = 0usize;
            while let Some(item) = stream.next().await {
                item.expect("stream item");
                n += 1;
            }
            (n, stream.into_session())
        });
        let (n, session) = tokio::time::timeout(DEADLINE, reader)
            .await
            .expect("a stopped stream did not end")
            .expect("reader task");
        println!("{name}: ended after {n} items; {:?}", session.stats());
    });
}

#[test]
fn losses_arrive_as_lost_items() {
    let name = "losses_arrive_as_lost_items";
    if skip_unless_root(name) {
        return;
    }
    const FLOOD: usize = 400;
    let pair = VethPair::create(&tag('o', 3), 203).expect("veth pair");
    let src = SocketAddr::from((pair.addr_a, 40703));
    let dst = SocketAddr::from((pair.addr_b, 9));
    // Resolve the neighbour first, so every flooded datagram takes the same path.
    send_udp_from(&pair.ns_a, src, dst, 1, None);
    let session = attach_tracepoint(
        &format!("udp and dst port 9 and host {}", pair.addr_b),
        4096,
    );
    let stats = session.stats_handle();
    let mut stream = session.into_stream();
    // Nobody reads while the packets fly: the one-page ring fills after a few records.
    send_udp_from(&pair.ns_a, src, dst, FLOOD, None);

    let (events, lost, lost_items, last_total, s) = runtime().block_on(async move {
        tokio::spawn(async move {
            let (mut events, mut lost, mut items, mut last_total) = (0u64, 0u64, 0usize, 0u64);
            // Drain what is queued: stop after a quiet spell (the loss notice comes when the
            // reader has emptied the ring).
            while let Ok(Some(item)) =
                tokio::time::timeout(Duration::from_millis(500), stream.next()).await
            {
                match item {
                    Ok(Item::Event(_)) => events += 1,
                    Ok(Item::Lost(l)) => {
                        lost += l.count;
                        items += 1;
                        last_total = l.total;
                    }
                    Ok(other) => panic!("unexpected item: {other:?}"),
                    Err(e) => panic!("stream error: {e}"),
                }
            }
            // Read while the session (owned by the stream) is still alive.
            let s = stats.stats();
            drop(stream);
            (events, lost, items, last_total, s)
        })
        .await
        .expect("reader task")
    });
    println!("{name}: {events} events, {lost} lost in {lost_items} Lost items; {s:?}");
    assert!(lost > 0, "a one-page ring buffer lost nothing in a flood");
    assert!(events > 0, "the tiny ring delivered nothing");
    assert_eq!(last_total, lost, "each notice's total is the running sum");
    assert_eq!(s.lost, lost, "the stats handle agrees with the stream");
    assert_eq!(s.records, events);
}
