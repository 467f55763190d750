//! `bpfmap`: a tc classifier that counts packets by length in a hash map (pwru-ebpf's
//! `pwru_test_tc_map`: a lookup, then an update for a new length) runs on B's veth; a tracer
//! with `bpf_map_ops` must report its map operations as `Item::BpfMap`, linked to the flow's
//! skbs, with the map's id and name and the key and value bytes the program used, compared
//! with the map as user space reads it afterwards.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use aya::maps::{HashMap as BpfHashMap, Map};
use futures::StreamExt;
use pwru_core::event::{BpfMapOp, MapOpType};
use pwru_core::format::{FormatOptions, Formatter};
use pwru_core::{Event, Item, Session};
use pwru_testkit::netlab::VethPair;

use crate::backend::Backend;
use crate::registry::Ctx;
use crate::report::Outcome;

use super::tracer_kit::{self as kit, QUIET};

const TC_PROG: &str = "pwru_test_tc_map";
const MAP: &str = "pwru_test_lengths";
const PORT: u16 = 6210;
const PACKETS: usize = 3;
const PAYLOAD: usize = 24;
/// The datagrams' length at tc ingress: Ethernet, IPv4 and UDP headers and the payload.
const FRAME_LEN: u32 = 14 + 20 + 8 + PAYLOAD as u32;
/// The skb functions traced: the receive path up to tc ingress (they link the stack to the
/// skb before the classifier runs), and past it.
const SKB_FUNCS: &str = "__netif_receive_skb|__netif_receive_skb_one_core|tcf_classify|ip_rcv";

/// Runs the scenario on `backend`.
pub fn run(_: &mut Ctx, backend: Backend) -> Outcome {
    match try_run(backend) {
        Ok(o) | Err(o) => o,
    }
}

/// Loads the map-using classifier on `pair.if_b` (ingress) from inside B; keep the object.
fn load(pair: &VethPair) -> Result<aya::Ebpf, String> {
    pwru_testkit::test_programs::attach_classifier(pair, TC_PROG)
}

/// Events and map operations until none came for `quiet` (30 s at most).
fn collect(session: &mut Session) -> Result<(Vec<Event>, Vec<BpfMapOp>), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut stream = session.events();
        let (mut events, mut ops) = (Vec::new(), Vec::new());
        while Instant::now() < deadline {
            match tokio::time::timeout(QUIET, stream.next()).await {
                Ok(Some(Ok(Item::Event(ev)))) => events.push(ev),
                Ok(Some(Ok(Item::BpfMap(op)))) => ops.push(op),
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(e))) if !e.is_fatal() => return Err(format!("record: {e}")),
                Ok(Some(Err(e))) => return Err(format!("event stream: {e}")),
                Ok(None) | Err(_) => break,
            }
        }
        Ok((events, ops))
    })
}

/// The map's id and its entries (key, value), read from user space.
fn read_map(obj: &aya::Ebpf) -> Result<(u32, Vec<(u32, u64)>), String> {
    let map = obj.map(MAP).ok_or_else(|| format!("no map {MAP}"))?;
    let id = match map {
        Map::HashMap(d) => d.info().map_err(|e| format!("map info: {e}"))?.id(),
        _ => return Err(format!("{MAP} is not a hash map")),
    };
    let h: BpfHashMap<_, u32, u64> =
        BpfHashMap::try_from(map).map_err(|e| format!("hash map: {e}"))?;
    let entries = h
        .iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("map entries: {e}"))?;
    Ok((id, entries))
}

fn try_run(backend: Backend) -> Result<Outcome, Outcome> {
    let fail = Outcome::Fail;
    let pair = kit::lab("bm", 38).map_err(fail)?;
    let obj = load(&pair).map_err(fail)?;
    let filter = format!("udp and dst host {} and dst port {PORT}", pair.addr_b);
    let tracer = kit::packet_tracer(backend, SKB_FUNCS, &filter)
        .bpf_map_ops(true)
        .build()
        .map_err(|e| fail(format!("build: {e}")))?;
    let mut session = tracer.attach().map_err(|e| fail(format!("attach: {e}")))?;
    let map_progs: Vec<&String> = session
        .attached()
        .iter()
        .filter(|a| a.contains("bpfmap"))
        .collect();
    if map_progs.len() < 2 {
        return Err(fail(format!(
            "map operation programs attached: {map_progs:?}; refused: {:?}",
            session.refused()
        )));
    }
    let map_progs: Vec<String> = map_progs.into_iter().cloned().collect();
    pair.send_udp(40621, PORT, PACKETS, PAYLOAD)
        .map_err(|e| fail(format!("send: {e}")))?;
    let (events, ops) = collect(&mut session).map_err(fail)?;
    drop(session);
    let (map_id, entries) = read_map(&obj).map_err(fail)?;

    // The flow's skbs, as the skb functions saw them.
    let flow: HashSet<u64> = events
        .iter()
        .filter(|e| e.tuple.is_some_and(|t| t.dport == PORT))
        .map(|e| e.skb)
        .collect();
    // The classifier counts every packet by its length at tc ingress (Ethernet header
    // included); other traffic (ARP, neighbour discovery) has other lengths.
    let key = FRAME_LEN.to_ne_bytes().to_vec();
    let count = entries
        .iter()
        .find(|(len, _)| *len == FRAME_LEN)
        .map_or(0, |(_, c)| *c);
    let ours: Vec<&BpfMapOp> = ops
        .iter()
        .filter(|o| o.map_id == map_id && o.key == key)
        .collect();
    let detail = || {
        format!(
            "map id {map_id}, entries {entries:?}; {} ops ({} with the flow's key): {:?}; \
             {} events; programs {map_progs:?}",
            ops.len(),
            ours.len(),
            ops.iter()
                .take(8)
                .map(|o| format!(
                    "{} {} id={} name={} key={:02x?} value={:02x?} skb={:#x}",
                    o.function,
                    o.op,
                    o.map_id,
                    o.map_name.as_str(),
                    o.key,
                    o.value,
                    o.skb
                ))
                .collect::<Vec<_>>(),
            events.len()
        )
    };
    // Each names the map (as the kernel keeps its name, 15 bytes) and is about a packet of
    // the flow.
    if ours.is_empty()
        || ours
            .iter()
            .any(|o| o.map_name.as_str() != &MAP[..15] || !flow.contains(&o.skb))
    {
        return Err(fail(format!(
            "no op with the flow's key, or one with a wrong name or packet: {}",
            detail()
        )));
    }
    // pwru's own maps are never reported.
    if let Some(o) = ops
        .iter()
        .find(|o| o.map_name.as_str().starts_with("pwru_") && o.map_id != map_id)
    {
        return Err(fail(format!(
            "an op on pwru's own map {}: {}",
            o.map_name.as_str(),
            detail()
        )));
    }
    let updates: Vec<_> = ours.iter().filter(|o| o.op == MapOpType::Update).collect();
    let lookups: Vec<_> = ours.iter().filter(|o| o.op == MapOpType::Lookup).collect();
    // The first packet's lookup missed and its update wrote 1; each later lookup found the
    // count so far (1, 2, ...), which the program then incremented.
    let update_ok = updates.len() == 1
        && updates[0].key == key
        && updates[0].value.as_deref() == Some(&1u64.to_ne_bytes()[..])
        && updates[0].key_size == 4
        && updates[0].value_size == 8;
    let mut found: Vec<u64> = lookups
        .iter()
        .filter(|o| o.key == key)
        .filter_map(|o| o.value.as_ref())
        .filter_map(|v| v.as_slice().try_into().ok().map(u64::from_ne_bytes))
        .collect();
    found.sort_unstable();
    let misses = lookups.iter().filter(|o| o.value.is_none()).count();
    let expected: Vec<u64> = (1..count).collect();
    let lookups_ok = lookups.len() == PACKETS && misses == 1 && found == expected;
    if count != PACKETS as u64 || !update_ok || !lookups_ok {
        return Err(fail(format!(
            "ops do not match the map (count {count}, update ok {update_ok}, lookups found \
             {found:?} / expected {expected:?}, misses {misses}): {}",
            detail()
        )));
    }
    // As the pwru example prints it: the map on the first line, then key and value dumps.
    let fmt = Formatter::new(FormatOptions::default());
    let mut text = Vec::new();
    fmt.write_bpfmap_text(updates[0], &mut text);
    let text = String::from_utf8_lossy(&text);
    let dump: String = key.iter().map(|b| format!(" {b:02x}")).collect();
    let want_line = format!("update) map id={map_id} name={}", &MAP[..15]);
    if !text.contains(&want_line) || !text.contains(&format!("key(4):\n00000000 {dump}")) {
        return Err(fail(format!(
            "text of the update: {text:?}; wanted {want_line:?}"
        )));
    }
    Ok(Outcome::Pass(format!(
        "map {} id {map_id}: update key {key:02x?} value 1 and {} lookups (found {found:?}, 1 \
         miss) linked to the flow, as user space reads the map (count {count}); {} ops in \
         all; programs {map_progs:?}",
        &MAP[..15],
        lookups.len(),
        ops.len()
    )))
}
