//! What the Tracer scenarios share: building a tracer for a matrix backend, a veth lab, reading
//! events with a quiet-time limit, and small oracles read from the kernel itself.

use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use pwru_core::{Event, Item, Session, Tracer, TracerBuilder};
use pwru_testkit::netlab::VethPair;

use crate::backend::Backend;

/// Functions on the IPv4/IPv6 receive and send paths over veth that every scenario's
/// packets pass. Each scenario traces a few of them plus its own: small sets keep attach
/// short under TCG (fentry loads one program per function); names a kernel lacks do not match.
pub const RX_TX: &str = "ip_rcv|ipv6_rcv|udp_rcv|udpv6_rcv|ip_output|ip6_output|__dev_queue_xmit";

/// Where packets are dropped with a reason (one of them exists per kernel).
pub const DROP_FUNCS: &str = "kfree_skb_reason|sk_skb_reason_drop";

/// A builder for `backend` tracing the functions matching `functions` with `filter`.
pub fn packet_tracer(backend: Backend, functions: &str, filter: &str) -> TracerBuilder {
    Tracer::builder()
        .backend(backend)
        .function_regex(functions)
        .pcap_filter(filter)
}

/// How the tracer's filter reads packet bytes, for reports.
pub fn filter_reads(tracer: &Tracer) -> &'static str {
    match tracer.filter_access() {
        pwru_core::ProbeAccess::Cast(_) => "filter reads: kfunc cast",
        pwru_core::ProbeAccess::Helper => "filter reads: bpf_probe_read_kernel",
    }
}

/// Builds and attaches; the error says which step failed.
pub fn start(builder: TracerBuilder) -> Result<Session, String> {
    let tracer = builder.build().map_err(|e| format!("build: {e}"))?;
    tracer.attach().map_err(|e| format!("attach: {e}"))
}

/// A veth pair between two namespaces whose names carry the pid and `code` (2 characters).
pub fn lab(code: &str, subnet: u8) -> Result<VethPair, String> {
    let tag = format!("{}{code}", std::process::id() % 100_000);
    VethPair::create(&tag, subnet).map_err(|e| format!("veth lab: {e}"))
}

/// Events read from a session, and the lost-event count it reported.
pub struct Collected {
    /// Events in arrival order.
    pub events: Vec<Event>,
    /// Records the kernel reported lost.
    pub lost: u64,
}

/// Reads events until none came for `quiet`, `limit` were read, or 30 s passed.
pub fn collect(session: &mut Session, quiet: Duration, limit: usize) -> Result<Collected, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut stream = session.events();
        let mut out = Collected {
            events: Vec::new(),
            lost: 0,
        };
        while out.events.len() < limit && Instant::now() < deadline {
            match tokio::time::timeout(quiet, stream.next()).await {
                Ok(Some(Ok(Item::Event(ev)))) => out.events.push(ev),
                Ok(Some(Ok(Item::Lost(lost)))) => out.lost += lost.count,
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(e))) if !e.is_fatal() => {}
                Ok(Some(Err(e))) => return Err(format!("event stream: {e}")),
                Ok(None) | Err(_) => break,
            }
        }
        Ok(out)
    })
}

/// Quiet time after the traffic: TCG guests deliver softirq work late.
pub const QUIET: Duration = Duration::from_millis(800);

/// The function names of `events`, deduplicated in order of first appearance.
pub fn functions(events: &[Event]) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    for e in events {
        if !seen.iter().any(|s| **s == *e.function) {
            seen.push(e.function.to_string());
        }
    }
    seen
}

/// Up to `n` function names of `events`, joined, for failure details.
pub fn some_functions(events: &[Event], n: usize) -> String {
    let f = functions(events);
    let more = f.len().saturating_sub(n);
    let mut s = f.into_iter().take(n).collect::<Vec<_>>().join(",");
    if more > 0 {
        s.push_str(&format!(",+{more}"));
    }
    if s.is_empty() {
        s.push_str("none");
    }
    s
}

/// Whether `/proc/kallsyms` lists a text symbol `name` (the kernel's own answer to "does this
/// function exist here").
pub fn kernel_has_function(name: &str) -> bool {
    std::fs::read_to_string("/proc/kallsyms")
        .map(|s| {
            s.lines().any(|l| {
                let mut it = l.split_whitespace();
                let (_, ty, sym) = (it.next(), it.next(), it.next());
                matches!(ty, Some("T" | "t")) && sym == Some(name)
            })
        })
        .unwrap_or(false)
}

/// The function that reports drops with a reason on this kernel: `sk_skb_reason_drop` (6.12+,
/// where `kfree_skb_reason` became an inline wrapper of it) or `kfree_skb_reason`.
pub fn drop_function() -> &'static str {
    if kernel_has_function("sk_skb_reason_drop") {
        "sk_skb_reason_drop"
    } else {
        "kfree_skb_reason"
    }
}

/// Runs `nft -f -` with `script` inside namespace `ns`.
pub fn nft(ns: &str, script: &str) -> Result<(), String> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run nft: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| format!("nft stdin: {e}"))?;
    }
    let out = child.wait_with_output().map_err(|e| format!("nft: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "nft in {ns} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// CPU time (user + system) this process has used, from /proc/self/stat.
pub fn process_cpu() -> Result<Duration, String> {
    let stat =
        std::fs::read_to_string("/proc/self/stat").map_err(|e| format!("/proc/self/stat: {e}"))?;
    // fields after the command name (which may hold spaces) start after the last ')'
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or("malformed /proc/self/stat")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after ')'
    let ticks = |i: usize| -> Result<u64, String> {
        f.get(i)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| "malformed /proc/self/stat".to_string())
    };
    let hz = pwru_core::sys::process::clock_ticks_per_second();
    let total = ticks(11)? + ticks(12)?;
    Ok(Duration::from_millis(total * 1000 / hz))
}

/// Like [`collect`] for floods: hands each event to `each` as it is read and keeps none; returns (events, lost reported); stops after
/// `quiet` without an event or 120 s. While events keep coming it reads without a timer
/// (a timer per event would cost the reader more than the event itself).
pub fn collect_each(
    session: &mut Session,
    quiet: Duration,
    mut each: impl FnMut(&Event),
) -> Result<(u64, u64), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut stream = session.events();
        let (mut n, mut lost) = (0u64, 0u64);
        while Instant::now() < deadline {
            let next = match stream.next().now_or_never() {
                Some(item) => Ok(item),
                None => tokio::time::timeout(quiet, stream.next()).await,
            };
            match next {
                Ok(Some(Ok(Item::Event(ev)))) => {
                    each(&ev);
                    n += 1;
                }
                Ok(Some(Ok(Item::Lost(l)))) => lost += l.count,
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(e))) if !e.is_fatal() => {}
                Ok(Some(Err(e))) => return Err(format!("event stream: {e}")),
                Ok(None) | Err(_) => break,
            }
        }
        Ok((n, lost))
    })
}
