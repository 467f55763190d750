//! `dnat-track-skb`: namespace A rewrites the destination of UDP to a virtual address with an
//! nftables DNAT rule; a filter on the original destination with skb tracking must show the
//! same skb with the translated tuple after NAT.

use std::net::{IpAddr, Ipv4Addr};

use crate::backend::Backend;
use crate::registry::Ctx;
use crate::report::Outcome;

use super::tracer_kit::{self as kit, QUIET};

const SPORT: u16 = 40777;
/// A's output path around the NAT hook, and B's receive path.
const DNAT_PATH: &str = "ip_local_out|__ip_local_out|nf_nat_ipv4_local_fn|nf_nat_manip_pkt|\
ip_output|ip_finish_output2|__dev_queue_xmit|ip_rcv|udp_rcv";
const VPORT: u16 = 7777;
const RPORT: u16 = 7778;

/// Sends to the virtual address and looks for the translated tuple on a tracked skb.
pub fn run(_: &mut Ctx, backend: Backend) -> Outcome {
    match try_run(backend) {
        Ok(o) | Err(o) => o,
    }
}

fn try_run(backend: Backend) -> Result<Outcome, Outcome> {
    let pair = kit::lab("dn", 33).map_err(Outcome::Fail)?;
    let o = pair.addr_b.octets();
    let virt = Ipv4Addr::new(o[0], o[1], o[2], 99);
    kit::nft(
        &pair.ns_a,
        &format!(
            "table ip pwtnat {{\n chain out {{\n  type nat hook output priority -100; policy accept\n  \
             ip daddr {virt} udp dport {VPORT} dnat to {}:{RPORT}\n }}\n}}\n",
            pair.addr_b
        ),
    )
    .map_err(Outcome::Fail)?;
    let _listener = pair
        .listen_udp(RPORT)
        .map_err(|e| Outcome::Fail(format!("listen: {e}")))?;
    let expr = format!("udp and dst host {virt} and dst port {VPORT}");
    let mut session = kit::start(kit::packet_tracer(backend, DNAT_PATH, &expr).track_skb(true))
        .map_err(Outcome::Fail)?;
    // a socket in A sending to the virtual address (the DNAT rule is in A's output path)
    let dst = std::net::SocketAddr::from((virt, VPORT));
    let src = std::net::SocketAddr::from((pair.addr_a, SPORT));
    pwru_testkit::netlab::VethPair::in_netns(&pair.ns_a, move || {
        let s = std::net::UdpSocket::bind(src)?;
        for _ in 0..3 {
            s.send_to(b"pwru-rs dnat", dst)?;
        }
        Ok(())
    })
    .map_err(|e| Outcome::Fail(format!("send: {e}")))?;
    let got = kit::collect(&mut session, QUIET, 5000).map_err(Outcome::Fail)?;
    drop(session);
    let before = |e: &&pwru_core::Event| {
        e.tuple
            .is_some_and(|t| t.dst == Some(IpAddr::V4(virt)) && t.dport == VPORT)
    };
    let after = |e: &&pwru_core::Event| {
        e.tuple.is_some_and(|t| {
            t.src == Some(pair.addr_a.into())
                && t.dst == Some(pair.addr_b.into())
                && (t.sport, t.dport) == (SPORT, RPORT)
        })
    };
    let original: Vec<_> = got.events.iter().filter(before).collect();
    let translated: Vec<_> = got
        .events
        .iter()
        .filter(after)
        .filter(|e| {
            original
                .iter()
                .any(|o| o.skb == e.skb || o.skb_head == e.skb_head)
        })
        .collect();
    match (original.first(), translated.first()) {
        (Some(o), Some(t)) => Ok(Outcome::Pass(format!(
            "{}@{} then {}@{} (same skb, {} tracked events)",
            o.tuple.map_or(String::new(), |x| x.to_string()),
            o.function,
            t.tuple.map_or(String::new(), |x| x.to_string()),
            t.function,
            got.events.iter().filter(|e| e.tracked).count()
        ))),
        _ => Err(Outcome::Fail(format!(
            "{} events with {virt}:{VPORT}, {} translated on the same skb, {} events in all ({}), lost {}",
            original.len(),
            translated.len(),
            got.events.len(),
            kit::some_functions(&got.events, 10),
            got.lost
        ))),
    }
}
