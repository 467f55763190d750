//! `--demo`: trace real packets without any setup of your own.
//!
//! Makes two network namespaces joined by veth, traces UDP to namespace B with a pcap filter,
//! sends two datagrams to an open port (delivered), one to a closed port (dropped by the kernel
//! with SKB_DROP_REASON_NO_SOCKET) and one in the other direction (filtered out in the kernel),
//! prints what was seen, and removes everything it made.

use std::time::Duration;

use pwru_core::netlab::VethPair;
use pwru_core::privileges::{self, Capability};

use crate::args::Args;
use crate::run;

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
pub fn run(a: &Args) -> Result<(), String> {
    privileges::require(&[
        Capability::Bpf,
        Capability::Perfmon,
        Capability::NetAdmin,
        Capability::SysAdmin,
    ])
    .map_err(|e| {
        format!(
            "{e}\n(the demo creates network namespaces and loads BPF programs: run it with sudo)"
        )
    })?;

    let tag = format!("d{}", std::process::id() % 1_000_000);
    let pair =
        VethPair::create(&tag, 250).map_err(|e| format!("creating the demo namespaces: {e}"))?;
    let listener = pair
        .listen_udp(OPEN_PORT)
        .map_err(|e| format!("opening UDP port {OPEN_PORT} in {}: {e}", pair.ns_b))?;
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
    )?;
    drop(listener);
    eprintln!("demo: {} events", summary.events);
    if summary.drops.is_empty() {
        eprintln!("demo: no drop seen (with a custom filter or --filter-func the drop may be filtered out)");
    }
    for (func, reason, tuple) in &summary.drops {
        eprintln!("demo: dropped at {func}: {reason} {tuple}");
    }
    eprintln!("demo: removing {} and {}", pair.ns_a, pair.ns_b);
    Ok(())
}
