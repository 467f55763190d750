//! `expressions`: skb and xdp expressions where XDP tracing works (fentry). The project's test
//! XDP program runs on B's veth; one tracer keeps XDP events whose `xdp->rxq->dev->ifindex` is
//! B's veth and skb events (ip_rcv) whose `skb->dev->ifindex` is, reading both as metadata;
//! a second tracer's xdp expression names a queue that does not exist. The first must see
//! XDP events of the test program whose metadata equal B's ifindex (from netlink) and queue 0,
//! and skb events whose metadata equal the event's own interface; the second no XDP event,
//! with its refusals counted under the expression outcome.

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
    let pair = kit::lab("xe", 47)?;
    let _prog = load_test_prog(&pair, true)?;
    let spec = pwru_core::netns::NetnsSpec::Path(VethPair::netns_path(&pair.ns_b));
    let if_b = pwru_core::netns::ifindex_in(&spec, &pair.if_b).map_err(|e| e.to_string())?;
    let filter = "udp and dst port 6200";
    let matching = kit::packet_tracer(backend, "ip_rcv", filter)
        .trace_xdp(true)
        .netns(VethPair::netns_path(&pair.ns_b).display().to_string())
        .xdp_filter_expr(format!(
            "xdp->rxq->dev->ifindex == {if_b} && xdp->rxq->queue_index == 0"
        ))
        .xdp_metadata(["xdp->rxq->dev->ifindex", "xdp->rxq->queue_index"])
        .skb_filter_expr(format!("skb->dev->ifindex == {if_b}"))
        .skb_metadata(["skb->dev->ifindex", "skb->len"]);
    let none = kit::packet_tracer(backend, "ip_rcv", filter)
        .trace_xdp(true)
        .xdp_filter_expr("xdp->rxq->queue_index == 77");
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
    if !xdp
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
    let wrong = other.events.iter().filter(is_xdp).count();
    if wrong > 0 {
        return Err(format!(
            "{wrong} XDP events passed `xdp->rxq->queue_index == 77`"
        ));
    }
    if stats.runs.filtered_expr == 0 {
        return Err(format!(
            "the non-matching xdp expression counted no refusal: {:?}",
            stats.runs
        ));
    }
    Ok(format!(
        "{} XDP events (ifindex {if_b}, queue 0), {} skb events with metadata; \
         queue 77: 0 XDP events, {} expression refusals",
        xdp.len(),
        skb.len(),
        stats.runs.filtered_expr
    ))
}
