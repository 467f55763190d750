//! `packet-id`: packet ids given by the kernel side, on real traffic between two namespaces,
//! with tracking off (ids do not need it):
//!
//! - a datagram to a closed port carries one id from the sender's output to its drop;
//! - the clone an AF_PACKET capture on B's veth gets (skb_clone in packet_rcv, followed at
//!   its return) has an id of its own whose parent is the original's;
//! - datagrams sent one per source port reuse freed skb addresses, and no two of them share
//!   an id.

use std::collections::{BTreeMap, BTreeSet};

use pwru_core::Event;
use pwru_testkit::packet_socket;

use crate::backend::Backend;
use crate::registry::Ctx;
use crate::report::Outcome;

use super::tracer_kit::{self as kit, QUIET};

const DROP_SPORT: u16 = 40620;
const REUSE_BASE: u16 = 41000;
const REUSE_COUNT: u16 = 60;

/// `packet-id`.
pub fn run(_: &mut Ctx, backend: Backend) -> Outcome {
    match check(backend) {
        Ok(o) | Err(o) => o,
    }
}

fn is_drop(e: &Event) -> bool {
    *e.function == *kit::drop_function()
}

fn sport(e: &Event) -> Option<u16> {
    e.tuple.map(|t| t.sport)
}

fn describe(events: &[Event]) -> String {
    events
        .iter()
        .map(|e| {
            format!(
                "{}:{:#x}:{}<-{}:{}",
                e.function,
                e.skb,
                e.packet_id.unwrap_or(0),
                e.parent_packet_id.unwrap_or(0),
                sport(e).unwrap_or(0)
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn check(backend: Backend) -> Result<Outcome, Outcome> {
    let fail = |s: String| Outcome::Fail(s);
    let pair = kit::lab("pi", 44).map_err(fail)?;
    // Settle A's neighbour entry for B first: the first datagram to an unresolved neighbour
    // is cloned by neigh_probe for the ARP request, an extra packet the checks would see.
    let sink = pair
        .listen_udp(10)
        .map_err(|e| fail(format!("udp socket: {e}")))?;
    pair.send_udp(40010, 10, 1, 8)
        .map_err(|e| fail(format!("send: {e}")))?;
    sink.recv(&mut [0u8; 64])
        .map_err(|e| fail(format!("the datagram that resolves the neighbour: {e}")))?;

    let capture = packet_socket::open_in(&pair.ns_b, &pair.if_b)
        .map_err(|e| fail(format!("AF_PACKET socket: {e}")))?;
    let functions = format!(
        "{}|{}|skb_copy_datagram_iter|consume_skb",
        kit::RX_TX,
        kit::drop_function()
    );
    let filter = format!("udp and dst port 9 and host {}", pair.addr_b);
    let mut session = kit::start(kit::packet_tracer(backend, &functions, &filter)).map_err(fail)?;

    // 1. One datagram, dropped in B; its clone waits in the capture socket.
    pair.send_udp(DROP_SPORT, 9, 1, 32)
        .map_err(|e| fail(format!("send: {e}")))?;
    let first = kit::collect(&mut session, QUIET, 200).map_err(fail)?;
    let frames = packet_socket::drain(&capture);
    let second = kit::collect(&mut session, QUIET, 200).map_err(fail)?;
    drop(capture);
    let events = [first.events, second.events].concat();
    let all = describe(&events);
    let dropped = events
        .iter()
        .find(|e| is_drop(e))
        .ok_or_else(|| fail(format!("the datagram was not seen dropped: {all}")))?;
    let original = dropped
        .packet_id
        .ok_or_else(|| fail(format!("the drop has no packet id: {all}")))?;
    let hops: Vec<&Event> = events.iter().filter(|e| e.skb == dropped.skb).collect();
    if hops.len() < 3 {
        return Err(fail(format!("too few hops of the dropped skb: {all}")));
    }
    if let Some(e) = hops
        .iter()
        .find(|e| e.packet_id != Some(original) || e.parent_packet_id.is_some())
    {
        return Err(fail(format!(
            "a hop of the dropped packet has another id ({}): {all}",
            describe(&[(*e).clone()])
        )));
    }

    // 2. The capture's clone: its own id, the original's as parent.
    if frames == 0 {
        return Err(fail("the capture socket got no frame".into()));
    }
    let clone: Vec<&Event> = events
        .iter()
        .filter(|e| e.skb != dropped.skb && sport(e) == Some(DROP_SPORT))
        .collect();
    if !clone
        .iter()
        .any(|e| &*e.function == "skb_copy_datagram_iter")
    {
        return Err(fail(format!(
            "the capture's read of the clone was not traced: {all}"
        )));
    }
    let clone_id = clone[0].packet_id;
    if clone_id.is_none() || clone_id == Some(original) {
        return Err(fail(format!("the clone has no id of its own: {all}")));
    }
    if let Some(e) = clone
        .iter()
        .find(|e| e.packet_id != clone_id || e.parent_packet_id != Some(original))
    {
        return Err(fail(format!(
            "a clone event is not linked to the original {original}: {} in {all}",
            describe(&[(*e).clone()])
        )));
    }

    // 3. Address reuse: one datagram per source port, each dropped and freed.
    for i in 0..REUSE_COUNT {
        pair.send_udp(REUSE_BASE + i, 9, 1, 32)
            .map_err(|e| fail(format!("send: {e}")))?;
    }
    let reuse = kit::collect(&mut session, QUIET, 100_000).map_err(fail)?;
    drop(session);
    if reuse.lost > 0 {
        return Err(fail(format!(
            "{} events lost; the check needs them all",
            reuse.lost
        )));
    }
    let mut by_port: BTreeMap<u16, (BTreeSet<u64>, BTreeSet<u64>)> = BTreeMap::new();
    for e in &reuse.events {
        let Some(port) = sport(e).filter(|p| (REUSE_BASE..REUSE_BASE + REUSE_COUNT).contains(p))
        else {
            continue;
        };
        let id = e.packet_id.ok_or_else(|| {
            fail(format!(
                "an event without an id: {}",
                describe(std::slice::from_ref(e))
            ))
        })?;
        let entry = by_port.entry(port).or_default();
        entry.0.insert(e.skb);
        entry.1.insert(id);
    }
    if by_port.len() != usize::from(REUSE_COUNT) {
        return Err(fail(format!(
            "{} of {REUSE_COUNT} datagrams seen",
            by_port.len()
        )));
    }
    if let Some((port, _)) = by_port.iter().find(|(_, (_, ids))| ids.len() != 1) {
        return Err(fail(format!("datagram from port {port} has several ids")));
    }
    let mut users: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
    let mut uses: BTreeMap<u64, usize> = BTreeMap::new();
    for (skbs, ids) in by_port.values() {
        for skb in skbs {
            users.entry(*skb).or_default().extend(ids);
            *uses.entry(*skb).or_default() += 1;
        }
    }
    let reused: Vec<u64> = uses
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(s, _)| *s)
        .collect();
    if reused.is_empty() {
        return Err(fail(format!(
            "no skb address was used twice in {REUSE_COUNT} datagrams: nothing proven"
        )));
    }
    for skb in &reused {
        if users[skb].len() != uses[skb] {
            return Err(fail(format!("skb {skb:#x} was reused with a stale id")));
        }
    }
    Ok(Outcome::Pass(format!(
        "drop: {} hops, one id {original}; clone {:#x}: id {} parent {original} ({} events); \
         reuse: {REUSE_COUNT} datagrams over {} skb addresses ({} reused), all ids distinct",
        hops.len(),
        clone[0].skb,
        clone_id.unwrap_or(0),
        clone.len(),
        uses.len(),
        reused.len()
    )))
}
