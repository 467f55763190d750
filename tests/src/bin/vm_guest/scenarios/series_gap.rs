//! `series-gap`: a one-page ring buffer and a flood of UDP datagrams to a closed port in B that
//! nobody reads while it flies. Grouped by pwru-core's `SeriesStream`, the stream reports the
//! loss (`Item::Lost`), a gap is marked in the series open at that moment, and a datagram sent
//! after the loss was read makes one dropped series with no gap.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::StreamExt;
use pwru_core::series::{Series, SeriesEnd, SeriesOptions, SeriesStats, SeriesStream};
use pwru_core::Session;

use crate::backend::Backend;
use crate::registry::Ctx;
use crate::report::Outcome;

use super::tracer_kit as kit;

const SPORT: u16 = 40789;
/// Datagrams sent while nobody reads: far more records than one page holds.
const FLOOD: usize = 400;
/// One page: a few datagrams' records fill it.
const RING_BYTES: u32 = 4096;

/// Floods a one-page ring, then checks the gaps and a clean series after them.
pub fn run(_: &mut Ctx, backend: Backend) -> Outcome {
    match try_run(backend) {
        Ok(o) | Err(o) => o,
    }
}

fn try_run(backend: Backend) -> Result<Outcome, Outcome> {
    let pair = kit::lab("sg", 48).map_err(Outcome::Fail)?;
    // A's send path and B's receive path to the drop (nothing listens on port 9) and the
    // free: at most seven records a datagram (six on 6.12), which one page holds whether or
    // not the reader keeps up.
    let functions = format!(
        "ip_output|__dev_queue_xmit|ip_rcv|ip_local_deliver|__udp4_lib_rcv|{}|kfree_skbmem",
        kit::drop_function()
    );
    let expr = format!("udp and src port {SPORT} and dst port 9");
    let dst = SocketAddr::from((pair.addr_b, 9));
    let src = SocketAddr::from((pair.addr_a, SPORT));
    let send = |n: usize| {
        pwru_testkit::netlab::VethPair::in_netns(&pair.ns_a, move || {
            let s = std::net::UdpSocket::bind(src)?;
            for _ in 0..n {
                s.send_to(b"pwru-rs series gap", dst)?;
            }
            Ok(())
        })
        .map_err(|e| Outcome::Fail(format!("send: {e}")))
    };
    // Resolve the neighbour first, so every traced datagram takes the same path.
    send(1)?;
    let mut session =
        kit::start(kit::packet_tracer(backend, &functions, &expr).ring_buffer_bytes(RING_BYTES))
            .map_err(Outcome::Fail)?;

    // Nobody reads while the flood flies.
    send(FLOOD)?;
    let mut opts = SeriesOptions::default();
    // Series whose end was among the lost records end by this idle timeout (TCG is slow: a
    // live datagram's hops must not be split by it).
    opts.idle_timeout_ns = 200_000_000;
    let (flood, stats) = read_series(&mut session, opts, |_| true, kit::QUIET, 60)?;
    let marked: Vec<&Series> = flood.iter().filter(|s| s.possibly_affected()).collect();
    let flood_line = format!(
        "flood: {} series, {} lost in {} notices, {} marked",
        flood.len(),
        stats.lost,
        stats.loss_notices,
        marked.len()
    );
    if stats.lost == 0 || stats.loss_notices == 0 {
        return Err(Outcome::Fail(format!(
            "a {RING_BYTES}-byte ring lost nothing in a flood of {FLOOD}: {flood_line}"
        )));
    }
    if marked.is_empty() {
        return Err(Outcome::Fail(format!(
            "no series carries the gap: {flood_line}"
        )));
    }
    let handed: u64 = flood.iter().map(|s| s.gaps.len() as u64).sum();
    if stats.gaps_marked != handed {
        return Err(Outcome::Fail(format!(
            "{} gaps marked but {handed} in the series handed out: {flood_line}",
            stats.gaps_marked
        )));
    }
    if let Some(s) = marked.iter().find(|s| {
        s.gaps
            .iter()
            .any(|g| g.after_hops > s.hops.len() || g.lost == 0)
    }) {
        return Err(Outcome::Fail(format!(
            "a gap after more hops than the series has, or losing nothing: {:?} in {} hops",
            s.gaps,
            s.hops.len()
        )));
    }

    // Loss notices still due for the flood are read here, before the next datagram.
    let (settled, _) = read_series(&mut session, opts, |_| true, kit::QUIET, 20)?;

    send(1)?;
    let dropped = |all: &[Series]| {
        all.iter()
            .filter(|s| matches!(s.end, SeriesEnd::Dropped(_)))
            .count()
    };
    let (after, stats2) = read_series(&mut session, opts, |a| dropped(a) >= 1, kit::QUIET, 60)?;
    drop(session);
    let describe = || {
        let mut t = String::new();
        for s in &after {
            pwru_core::format::write_series_text(s, &mut t);
        }
        t.replace('\n', " / ")
    };
    if stats2.lost != 0 || stats2.gaps_marked != 0 {
        return Err(Outcome::Fail(format!(
            "after the flood, one datagram: {} lost, {} gaps marked: {}",
            stats2.lost,
            stats2.gaps_marked,
            describe()
        )));
    }
    if dropped(&after) != 1 {
        return Err(Outcome::Fail(format!(
            "{} dropped series for one datagram after the flood: {}",
            dropped(&after),
            describe()
        )));
    }
    if after.iter().any(|s| s.possibly_affected()) {
        return Err(Outcome::Fail(format!(
            "a series started after the loss is marked: {}",
            describe()
        )));
    }
    let clean = after
        .iter()
        .find(|s| matches!(s.end, SeriesEnd::Dropped(_)))
        .map_or(0, |s| s.hops.len());
    Ok(Outcome::Pass(format!(
        "{flood_line}; {} series settling; after: 1 dropped series of {clean} hops, no gap",
        settled.len()
    )))
}

/// Reads series until `enough` holds for what was read (then until `quiet` passes without a
/// series) or `limit_s` seconds pass; flushes the open ones at the end.
fn read_series(
    session: &mut Session,
    opts: SeriesOptions,
    enough: impl Fn(&[Series]) -> bool,
    quiet: Duration,
    limit_s: u64,
) -> Result<(Vec<Series>, SeriesStats), Outcome> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| Outcome::Fail(format!("tokio runtime: {e}")))?;
    rt.block_on(async {
        let mut stream = SeriesStream::new(session.events(), opts);
        let mut out = Vec::new();
        let limit = Duration::from_secs(limit_s);
        let start = Instant::now();
        loop {
            let wait = if enough(&out) {
                quiet
            } else {
                limit.saturating_sub(start.elapsed())
            };
            match tokio::time::timeout(wait, stream.next()).await {
                Ok(Some(Ok(s))) => out.push(s),
                Ok(Some(Err(e))) if !e.is_fatal() => {}
                Ok(Some(Err(e))) => return Err(Outcome::Fail(format!("series stream: {e}"))),
                Ok(None) | Err(_) => break,
            }
            if start.elapsed() >= limit {
                break;
            }
        }
        stream.grouper().flush();
        while let Some(s) = stream.grouper().pop() {
            out.push(s);
        }
        Ok((out, stream.grouper().stats()))
    })
}
