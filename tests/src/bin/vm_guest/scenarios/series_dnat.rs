//! `series-dnat`: B rewrites the destination of UDP to port 9 to another of its addresses
//! (nftables DNAT in prerouting); nothing listens there, so the packet is dropped. Grouped by
//! pwru-core's series module, each datagram is one series that ends in the drop with its
//! reason, and the destination change shows on the first hop after the NAT functions.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use pwru_core::series::{Change, Grouper, Series, SeriesEnd, SeriesOptions};

use crate::backend::Backend;
use crate::registry::Ctx;
use crate::report::Outcome;

use super::tracer_kit::{self as kit, QUIET};

const SPORT: u16 = 40788;
const SENT: usize = 3;

/// Sends to B's port 9, DNATed to B's second address, and checks the series.
pub fn run(_: &mut Ctx, backend: Backend) -> Outcome {
    match try_run(backend) {
        Ok(o) | Err(o) => o,
    }
}

fn try_run(backend: Backend) -> Result<Outcome, Outcome> {
    let pair = kit::lab("sd", 34).map_err(Outcome::Fail)?;
    let o = pair.addr_b.octets();
    let moved = Ipv4Addr::new(o[0], o[1], o[2], 3);
    pwru_testkit::netlab::ip(&[
        "-n",
        &pair.ns_b,
        "addr",
        "add",
        &format!("{moved}/32"),
        "dev",
        "lo",
    ])
    .map_err(|e| Outcome::Fail(format!("second address: {e}")))?;
    kit::nft(
        &pair.ns_b,
        &format!(
            "table ip pwsnat {{\n chain pre {{\n  type nat hook prerouting priority -100; policy accept\n  \
             ip daddr {} udp dport 9 dnat to {moved}\n }}\n}}\n",
            pair.addr_b
        ),
    )
    .map_err(Outcome::Fail)?;
    // B's receive path around the NAT hook, to the drop and the free.
    let functions = format!(
        "ip_rcv|ip_rcv_core|ip_rcv_finish|nf_hook_slow|nf_nat_ipv4_pre_routing|nf_nat_inet_fn|\
         nf_nat_manip_pkt|ip_route_input_noref|ip_local_deliver|ip_local_deliver_finish|\
         ip_protocol_deliver_rcu|udp_rcv|__udp4_lib_rcv|{}|kfree_skbmem",
        kit::drop_function()
    );
    let expr = format!("udp and src port {SPORT} and dst port 9");
    let mut session =
        kit::start(kit::packet_tracer(backend, &functions, &expr)).map_err(Outcome::Fail)?;
    let dst = SocketAddr::from((pair.addr_b, 9));
    let src = SocketAddr::from((pair.addr_a, SPORT));
    pwru_testkit::netlab::VethPair::in_netns(&pair.ns_a, move || {
        let s = std::net::UdpSocket::bind(src)?;
        for _ in 0..SENT {
            s.send_to(b"pwru-rs series", dst)?;
        }
        Ok(())
    })
    .map_err(|e| Outcome::Fail(format!("send: {e}")))?;
    let got = kit::collect(&mut session, QUIET, 5000).map_err(Outcome::Fail)?;
    drop(session);

    let mut g = Grouper::new(SeriesOptions::default());
    for ev in &got.events {
        g.push(ev);
    }
    g.flush();
    let all: Vec<Series> = std::iter::from_fn(|| g.pop()).collect();
    let dropped: Vec<&Series> = all
        .iter()
        .filter(|s| matches!(s.end, SeriesEnd::Dropped(_)))
        .collect();
    let describe = || {
        let mut t = String::new();
        for s in &all {
            pwru_core::format::write_series_text(s, &mut t);
        }
        t.replace('\n', " / ")
    };
    if dropped.len() != SENT {
        return Err(Outcome::Fail(format!(
            "{} dropped series for {SENT} datagrams ({} series, {} events, lost {}): {}",
            dropped.len(),
            all.len(),
            got.events.len(),
            got.lost,
            describe()
        )));
    }
    let mut seen = Vec::new();
    for s in &dropped {
        let reason = s.drop_reason().map(|r| r.to_string()).unwrap_or_default();
        if !reason.ends_with("NO_SOCKET") {
            return Err(Outcome::Fail(format!(
                "dropped for {reason}: {}",
                describe()
            )));
        }
        let at = s.hops.iter().position(|h| {
            h.changes.iter().any(|c| {
                matches!(c, Change::Destination { from, to }
                    if from.addr == Some(IpAddr::from(pair.addr_b)) && to.addr == Some(IpAddr::from(moved)))
            })
        });
        let Some(at) = at else {
            return Err(Outcome::Fail(format!(
                "no DNAT change in a series: {}",
                describe()
            )));
        };
        // The rewrite happens inside the NAT functions: the first hop after them shows it.
        let last_nat = s
            .hops
            .iter()
            .rposition(|h| h.function.starts_with("nf_nat"));
        if last_nat.is_some_and(|n| n >= at) {
            return Err(Outcome::Fail(format!(
                "the change shows at hop {at} ({}), not after the NAT functions: {}",
                s.hops[at].function,
                describe()
            )));
        }
        seen.push(format!(
            "{} hops, DNAT at {} (+{}ns), {reason}{}",
            s.hops.len(),
            s.hops[at].function,
            s.hops[at].delta_ns,
            if s.weak_identity() {
                ", by skb address"
            } else {
                ", by packet id"
            }
        ));
    }
    Ok(Outcome::Pass(seen.join("; ")))
}
