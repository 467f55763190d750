//! `--demo`: trace real packets without any setup of your own.
//!
//! Makes two network namespaces joined by veth, traces UDP to namespace B with a pcap filter,
//! sends two datagrams to an open port (delivered), one to a closed port (dropped by the kernel
//! with SKB_DROP_REASON_NO_SOCKET) and one in the other direction (filtered out in the kernel),
//! prints what was seen, and removes everything it made.

use std::time::Duration;

use pwru_core::privileges;
use pwru_core::{Capability, Error};
use pwru_examples::signals::Signals;
use pwru_testkit::netlab::{self, VethPair};

use crate::args::Args;
use crate::run::{self, Failure};

/// What the tracing loop does for the demo: make traffic once attached, stop when quiet.
pub struct Hooks<'a> {
    /// Sends the demo's packets.
    pub traffic: Box<dyn Fn() -> std::io::Result<()> + 'a>,
    /// Stop after this long without an event.
    pub quiet: Duration,
}

const OPEN_PORT: u16 = 7777;
const CLOSED_PORT: u16 = 9;

/// Runs the demo.
pub fn run(a: &Args, signals: &mut Signals) -> Result<(), Failure> {
    privileges::require(&[
        Capability::Bpf,
        Capability::Perfmon,
        Capability::NetAdmin,
        Capability::SysAdmin,
    ])
    .map_err(|e| match e {
        Error::Privileges { ref missing, .. } => run::privileges_hint(
            &e.to_string(),
            missing,
            "the demo creates network namespaces and loads BPF programs",
        ),
        other => other.to_string(),
    })?;

    let tag = format!("d{}", std::process::id() % 1_000_000);
    let pair =
        VethPair::create(&tag, 250).map_err(|e| format!("creating the demo namespaces: {e}"))?;
    let listener = pair
        .listen_udp(OPEN_PORT)
        .map_err(|e| format!("opening UDP port {OPEN_PORT} in {}: {e}", pair.ns_b))?;
    // A signal while building or attaching exits at once: remove the namespaces first.
    let names = [pair.ns_a.clone(), pair.ns_b.clone()];
    signals.on_exit(move || {
        for n in &names {
            let _ = netlab::ip(&["netns", "del", n]);
        }
    });
    let filter = if a.pcap().trim().is_empty() {
        format!("udp and dst host {}", pair.addr_b)
    } else {
        a.pcap()
    };
    eprintln!(
        "demo: namespaces {} ({}) and {} ({}) joined by veth; filter: {filter:?}",
        pair.ns_a, pair.addr_a, pair.ns_b, pair.addr_b
    );
    eprintln!(
        "demo: sending 2 UDP datagrams to port {OPEN_PORT} (open), 1 to port {CLOSED_PORT} (closed: the kernel drops it), 1 back from B to A (filtered out)"
    );
    let builder = run::builder(a)?.pcap_filter(filter);
    let traffic = || -> std::io::Result<()> {
        pair.send_udp(40001, OPEN_PORT, 2, 64)?;
        pair.send_udp(40002, CLOSED_PORT, 1, 64)?;
        // B -> A: does not match `dst host B`, so no event may show it.
        let (a_addr, ns_b) = (pair.addr_a, pair.ns_b.clone());
        VethPair::in_netns(&ns_b, move || {
            let s = std::net::UdpSocket::bind(("0.0.0.0", 40003))?;
            s.send_to(b"reply", (a_addr, 40001)).map(|_| ())
        })
    };
    let summary = run::trace_with(
        a,
        builder,
        Some(Hooks {
            traffic: Box::new(traffic),
            quiet: Duration::from_millis(800),
        }),
        signals,
    )?;
    drop(listener);
    eprintln!("demo: {} events", summary.events);
    if summary.drops_seen == 0 {
        eprintln!("demo: no drop seen (with a custom filter or --filter-func the drop may be filtered out)");
    }
    for (func, reason, tuple) in &summary.drops {
        eprintln!("demo: dropped at {func}: {reason} {tuple}");
    }
    let more = summary.drops_seen - summary.drops.len() as u64;
    if more > 0 {
        eprintln!("demo: and {more} more drops");
    }
    eprintln!("demo: removing {} and {}", pair.ns_a, pair.ns_b);
    Ok(())
}
