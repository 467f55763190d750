//! `iface-netns-mark`: the netns + interface filter keeps only events of B's veth inside B, and
//! the mark filter keeps only the datagrams an nftables rule marked.

use pwru_core::MarkFilter;
use pwru_testkit::netlab::VethPair;

use crate::backend::Backend;
use crate::registry::Ctx;
use crate::report::Outcome;

use super::tracer_kit::{self as kit, QUIET};

const MARK: u32 = 0x2a;
const MARKED_PORT: u16 = 5555;
const PLAIN_PORT: u16 = 5556;

/// Runs both filters, each with its own tracer.
pub fn run(_: &mut Ctx, backend: Backend) -> Outcome {
    let pair = match kit::lab("mf", 35) {
        Ok(p) => p,
        Err(e) => return Outcome::Fail(e),
    };
    let netns = match netns_iface(&pair, backend) {
        Ok(s) => s,
        Err(e) => return Outcome::Fail(format!("netns+iface: {e}")),
    };
    match mark(&pair, backend) {
        Ok(m) => Outcome::Pass(format!("netns+iface: {netns}; mark: {m}")),
        Err(e) => Outcome::Fail(format!("netns+iface ok ({netns}); mark: {e}")),
    }
}

fn ifindex(ns: &str, name: &str) -> Result<u32, String> {
    let path = VethPair::netns_path(ns);
    let spec = pwru_core::netns::NetnsSpec::Path(path);
    pwru_core::netns::ifindex_in(&spec, name).map_err(|e| e.to_string())
}

fn netns_iface(pair: &VethPair, backend: Backend) -> Result<String, String> {
    let inode = VethPair::netns_inode(&pair.ns_b).map_err(|e| format!("inode: {e}"))?;
    let inode_a = VethPair::netns_inode(&pair.ns_a).map_err(|e| format!("inode: {e}"))?;
    let idx = ifindex(&pair.ns_b, &pair.if_b)?;
    let b = kit::packet_tracer(backend, kit::RX_TX, "")
        .netns(VethPair::netns_path(&pair.ns_b).display().to_string())
        .interface(pair.if_b.clone());
    let mut session = kit::start(b)?;
    pair.send_udp(40400, 9, 2, 16)
        .map_err(|e| format!("send: {e}"))?;
    let got = kit::collect(&mut session, QUIET, 5000)?;
    drop(session);
    let wrong: Vec<String> = got
        .events
        .iter()
        .filter(|e| {
            e.meta
                .as_ref()
                .is_none_or(|m| u64::from(m.netns) != inode || m.interface.ifindex != idx)
        })
        .map(|e| match &e.meta {
            Some(m) => format!(
                "netns {} if {} at {}",
                m.netns, m.interface.ifindex, e.function
            ),
            None => format!("no meta at {}", e.function),
        })
        .take(4)
        .collect();
    if !wrong.is_empty() {
        return Err(format!(
            "events outside netns {inode} / ifindex {idx} (A is {inode_a}): {}",
            wrong.join("; ")
        ));
    }
    if got.events.is_empty() {
        return Err(format!("no event in netns {inode} on ifindex {idx}"));
    }
    Ok(format!(
        "{} events, all in netns {inode} on {}:{idx}",
        got.events.len(),
        pair.if_b
    ))
}

fn mark(pair: &VethPair, backend: Backend) -> Result<String, String> {
    kit::nft(
        &pair.ns_a,
        &format!(
            "table ip pwtmark {{\n chain out {{\n  type route hook output priority mangle; \
             policy accept\n  udp dport {MARKED_PORT} meta mark set {MARK:#x}\n }}\n}}\n"
        ),
    )?;
    let b = kit::packet_tracer(
        backend,
        "ip_output|ip_finish_output2|__dev_queue_xmit|ip_rcv",
        "",
    )
    .mark(MarkFilter {
        mark: MARK,
        mask: 0xff,
    });
    let mut session = kit::start(b)?;
    pair.send_udp(40501, MARKED_PORT, 2, 16)
        .and_then(|()| pair.send_udp(40502, PLAIN_PORT, 2, 16))
        .map_err(|e| format!("send: {e}"))?;
    let got = kit::collect(&mut session, QUIET, 5000)?;
    drop(session);
    let wrong: Vec<String> = got
        .events
        .iter()
        .filter(|e| {
            e.meta.as_ref().is_none_or(|m| m.mark & 0xff != MARK)
                || e.tuple.is_some_and(|t| t.dport != MARKED_PORT)
        })
        .map(|e| {
            format!(
                "mark {:#x} {} at {}",
                e.meta.as_ref().map_or(0, |m| m.mark),
                e.tuple.map_or("-".into(), |t| t.to_string()),
                e.function
            )
        })
        .take(4)
        .collect();
    if !wrong.is_empty() {
        return Err(format!("unmarked events passed: {}", wrong.join("; ")));
    }
    if got.events.is_empty() {
        return Err(format!("no event with mark {MARK:#x}"));
    }
    Ok(format!(
        "{} events, all mark {MARK:#x} to port {MARKED_PORT} ({})",
        got.events.len(),
        kit::some_functions(&got.events, 5)
    ))
}
