//! `expressions`: skb and xdp expressions. The project's test XDP program runs on B's veth;
//! one tracer keeps XDP events whose `xdp->rxq->dev->ifindex` is B's veth and skb events
//! (ip_rcv) whose `skb->dev->ifindex` is, reading both as metadata; a second tracer's
//! expressions name a queue and a mark that do not occur. The first must see XDP events of the
//! test program whose metadata equal B's ifindex (from netlink) and queue 0, and skb events
//! whose metadata equal the event's own interface and length; the second no event, with its
//! refusals counted under the expression outcome. XDP tracing needs fentry: on the kprobe
//! backends only the skb half runs.

use pwru_core::event::ProbeKind;
use pwru_core::Event;
use pwru_testkit::netlab::VethPair;

use crate::backend::Backend;
use crate::registry::Ctx;
use crate::report::Outcome;

use super::trace_prog::load_test_prog;
use super::tracer_kit::{self as kit, QUIET};

const XDP_PROG: &str = "pwru_test_xdp";

/// The scenario.
pub fn run(_: &mut Ctx, backend: Backend) -> Outcome {
    match try_run(backend) {
        Ok(s) => Outcome::Pass(s),
        Err(e) => Outcome::Fail(e),
    }
}

fn value(e: &Event, name: &str) -> Option<u64> {
    e.metadata
        .iter()
        .find(|m| &*m.name == name)
        .map(|m| m.value)
}

fn try_run(backend: Backend) -> Result<String, String> {
    let xdp_on = backend == Backend::Fentry;
    let pair = kit::lab("xe", 47)?;
    let _prog = load_test_prog(&pair, true)?;
    let spec = pwru_core::netns::NetnsSpec::Path(VethPair::netns_path(&pair.ns_b));
    let if_b = pwru_core::netns::ifindex_in(&spec, &pair.if_b).map_err(|e| e.to_string())?;
    let filter = "udp and dst port 6200";
    let mut matching = kit::packet_tracer(backend, "ip_rcv", filter)
        .netns(VethPair::netns_path(&pair.ns_b).display().to_string())
        .skb_filter_expr(format!("skb->dev->ifindex == {if_b}"))
        .skb_metadata(["skb->dev->ifindex", "skb->len"]);
    let mut none = kit::packet_tracer(backend, "ip_rcv", filter)
        .skb_filter_expr("skb->mark == 0x7777 && skb->len > 0");
    if xdp_on {
        matching = matching
            .trace_xdp(true)
            .xdp_filter_expr(format!(
                "xdp->rxq->dev->ifindex == {if_b} && xdp->rxq->queue_index == 0"
            ))
            .xdp_metadata(["xdp->rxq->dev->ifindex", "xdp->rxq->queue_index"]);
        none = none
            .trace_xdp(true)
            .xdp_filter_expr("xdp->rxq->queue_index == 77");
    }
    let mut m = kit::start(matching)?;
    let mut n = kit::start(none)?;
    pair.send_udp(40700, 6200, 2, 16)
        .map_err(|e| format!("send: {e}"))?;
    let got = kit::collect(&mut m, QUIET, 5000)?;
    let other = kit::collect(&mut n, QUIET, 5000)?;
    let stats = n.stats();
    drop((m, n));

    let is_xdp = |e: &&Event| matches!(e.kind, ProbeKind::Xdp | ProbeKind::XdpExit);
    let xdp: Vec<&Event> = got.events.iter().filter(is_xdp).collect();
    if xdp_on
        && !xdp
            .iter()
            .any(|e| e.bpf_prog.is_some_and(|p| p.name.as_str() == XDP_PROG))
    {
        return Err(format!(
            "no XDP event of {XDP_PROG} passed `xdp->rxq->dev->ifindex == {if_b}`; {} events ({})",
            got.events.len(),
            kit::some_functions(&got.events, 8)
        ));
    }
    for e in &xdp {
        let (ifindex, queue) = (
            value(e, "xdp->rxq->dev->ifindex"),
            value(e, "xdp->rxq->queue_index"),
        );
        if ifindex != Some(u64::from(if_b)) || queue != Some(0) {
            return Err(format!(
                "XDP event metadata ifindex {ifindex:?} queue {queue:?}, expected {if_b} and 0: {e:?}"
            ));
        }
    }
    let skb: Vec<&Event> = got.events.iter().filter(|e| !is_xdp(e)).collect();
    if skb.is_empty() {
        return Err("no ip_rcv event passed `skb->dev->ifindex`".into());
    }
    for e in &skb {
        let own = e.meta.as_ref().map(|m| u64::from(m.interface.ifindex));
        let len = e.meta.as_ref().map(|m| u64::from(m.len));
        if value(e, "skb->dev->ifindex") != Some(u64::from(if_b))
            || own != Some(u64::from(if_b))
            || value(e, "skb->len") != len
        {
            return Err(format!("skb event metadata disagree with its meta: {e:?}"));
        }
    }
    if !other.events.is_empty() {
        return Err(format!(
            "{} events passed expressions that match nothing ({})",
            other.events.len(),
            kit::some_functions(&other.events, 8)
        ));
    }
    if stats.runs.filtered_expr == 0 {
        return Err(format!(
            "the non-matching expressions counted no refusal: {:?}",
            stats.runs
        ));
    }
    Ok(format!(
        "{} XDP events (ifindex {if_b}, queue 0), {} skb events with metadata; \
         non-matching expressions: 0 events, {} expression refusals",
        xdp.len(),
        skb.len(),
        stats.runs.filtered_expr
    ))
}
