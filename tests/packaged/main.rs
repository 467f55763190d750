//! An out-of-tree user of the packaged crates (copied into a crate outside the workspace by
//! tests/tests/packaged_crate.rs). It traces one UDP datagram on a fresh veth pair with the
//! tracepoint backend and exits 0 once the kernel reported it; any error exits 1.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use pwru_core::netlab::VethPair;
use pwru_core::{Backend, Item, Tracer};

/// Upper bound on the whole run; the consumer normally finishes in well under a second.
const DEADLINE: Duration = Duration::from_secs(60);

fn main() {
    std::thread::spawn(|| {
        std::thread::sleep(DEADLINE);
        eprintln!("consumer: no matching event within {DEADLINE:?}");
        std::process::exit(2);
    });
    if let Err(e) = run() {
        eprintln!("consumer: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let pair = Arc::new(VethPair::create(
        &format!("k{}", std::process::id() % 100_000),
        244,
    )?);
    let tracer = Tracer::builder()
        .backend(Backend::Tracepoint)
        .pcap_filter(format!("udp and dst host {} and dst port 9", pair.addr_b))
        .build()?;
    let mut session = tracer.attach()?;

    // Traffic until the first event arrives (a datagram sent before the stream is polled is
    // still in the ring buffer; repeating covers nothing but a slow start).
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (pair, stop) = (Arc::clone(&pair), Arc::clone(&stop));
        std::thread::spawn(move || -> std::io::Result<()> {
            while !stop.load(Ordering::Relaxed) {
                pair.send_udp(40144, 9, 1, 16)?;
                std::thread::sleep(Duration::from_millis(100));
            }
            Ok(())
        })
    };

    let dst = std::net::IpAddr::from(pair.addr_b);
    let found = futures::executor::block_on(async {
        let mut events = session.events();
        while let Some(item) = events.next().await {
            match item {
                Ok(Item::Event(ev)) if ev.tuple.is_some_and(|t| t.dst == Some(dst) && t.dport == 9) => {
                    return Ok(Some(ev));
                }
                Ok(_) => {}
                Err(e) if !e.is_fatal() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    })?;
    stop.store(true, Ordering::Relaxed);
    sender.join().map_err(|_| "sender thread panicked")??;
    match found {
        Some(ev) => {
            println!(
                "consumer: traced {} skb {:#x} to {dst}:9 with the {:?} backend",
                ev.function,
                ev.skb,
                session.backend()
            );
            Ok(())
        }
        None => Err("the event stream ended without a matching event".into()),
    }
}
