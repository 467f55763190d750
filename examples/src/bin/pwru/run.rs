//! The tracing loop: build, attach with a progress line, print events until told to stop.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use futures::StreamExt;
use pwru_core::format::{FormatOptions, Formatter, TimestampMode};
use pwru_core::{Capture, Error, KernelModules, Tracer, TracerBuilder};

use crate::args::Args;
use crate::output::Output;

/// Builds the tracer's options from pwru's flags.
pub fn builder(a: &Args) -> Result<TracerBuilder, String> {
    let mut b = Tracer::builder()
        .pcap_filter(a.pcap())
        .backend(a.backend.parse().map_err(|e| format!("--backend: {e}"))?)
        .track_skb(a.filter_track_skb)
        .track_skb_by_stackid(a.filter_track_skb_by_stackid)
        .trace_tc(a.filter_trace_tc)
        .trace_xdp(a.filter_trace_xdp)
        .capture(Capture {
            meta: a.output_meta,
            tuple: a.output_tuple,
            tcp_flags: a.output_tcp_flags,
            tunnel: a.output_tunnel,
            stack: a.output_stack,
            caller: a.output_caller,
            skb: a.output_skb,
            skb_shared_info: a.output_skb_shared_info,
            cb: a.output_skb_cb,
        });
    if let Some(f) = &a.filter_func {
        b = b.function_regex(f);
    }
    if a.all_kmods {
        b = b.kernel_modules(KernelModules::All);
    } else if !a.kmods.is_empty() {
        b = b.kernel_modules(KernelModules::List(a.kmods.clone()));
    }
    if !a.filter_non_skb_funcs.is_empty() {
        b = b.non_skb_functions(a.filter_non_skb_funcs.clone());
    }
    if let Some(n) = &a.filter_netns {
        b = b.netns(n);
    }
    if let Some(m) = &a.filter_mark {
        b = b.mark(m.parse().map_err(|e| format!("--filter-mark: {e}"))?);
    }
    if let Some(i) = &a.filter_ifname {
        b = b.interface(i);
    }
    if let Some(e) = &a.filter_tunnel_pcap_l2 {
        b = b.tunnel_filter_l2(e);
    }
    if let Some(e) = &a.filter_tunnel_pcap_l3 {
        b = b.tunnel_filter_l3(e);
    }
    b = b.dump_buffer_bytes(a.set_percpu_buf);
    if let Some(n) = a.ring_buffer_size {
        b = b.ring_buffer_bytes(n);
    }
    if let Some(p) = &a.kernel_btf {
        b = b.kernel_btf(p);
    }
    Ok(b)
}

/// How the printed lines look, from pwru's flags.
pub fn format_options(a: &Args) -> Result<FormatOptions, String> {
    Ok(FormatOptions {
        meta: a.output_meta,
        tuple: a.output_tuple,
        tcp_flags: a.output_tcp_flags,
        caller: a.output_caller,
        tunnel: a.output_tunnel,
        cb: a.output_skb_cb,
        stack: a.output_stack,
        skb_dump: a.output_skb,
        shinfo_dump: a.output_skb_shared_info,
        timestamp: a
            .timestamp
            .parse::<TimestampMode>()
            .map_err(|e| format!("--timestamp: {e}"))?,
        ..FormatOptions::default()
    })
}

/// What a run saw, for the summary line and the demo.
#[derive(Debug, Default)]
pub struct Summary {
    /// Events printed.
    pub events: u64,
    /// Events lost (ring buffer full).
    pub lost: u64,
    /// Events printed that carry a drop reason: (function, reason, tuple text).
    pub drops: Vec<(String, String, String)>,
}

/// Traces until Ctrl-C/SIGTERM, `--output-limit-lines`, or (when `stop_after_quiet` is set)
/// that long without an event after `ready` ran.
pub fn trace(a: &Args, demo: Option<demo::Hooks<'_>>) -> Result<(), String> {
    let builder = builder(a)?;
    trace_with(a, builder, demo).map(|_| ())
}

use crate::demo;

/// [`trace`] with an explicit builder; returns what was seen.
pub fn trace_with(
    a: &Args,
    builder: TracerBuilder,
    demo: Option<demo::Hooks<'_>>,
) -> Result<Summary, String> {
    let fopts = format_options(a)?;
    let tracer = builder.build().map_err(explain)?;
    for (b, why) in tracer.backend_refusals() {
        if a.debug {
            eprintln!("pwru: backend {b} refused: {why}");
        }
    }
    if a.debug {
        match tracer.filter_access() {
            pwru_core::ProbeAccess::Cast(ids) => {
                eprintln!("pwru: the filter reads packets with kfunc-cast loads ({ids})")
            }
            pwru_core::ProbeAccess::Helper => eprintln!(
                "pwru: the filter reads packets with bpf_probe_read_kernel: {}",
                tracer.filter_access_note().unwrap_or("")
            ),
        }
    }
    let tty = std::io::stderr().is_terminal();
    let backend = tracer.backend();
    let started = Instant::now();
    let mut session = tracer
        .attach(|p| {
            if tty {
                let width = 30;
                let filled = (p.done * width)
                    .checked_div(p.total)
                    .unwrap_or(width)
                    .min(width);
                eprint!(
                    "\rattaching {}/{} [{}{}] {}   ",
                    p.done,
                    p.total,
                    "#".repeat(filled),
                    " ".repeat(width - filled),
                    p.backend
                );
            }
        })
        .map_err(explain)?;
    if tty {
        eprintln!();
    }
    eprintln!(
        "pwru: attached {} {} with {} in {:.2}s ({} refused{})",
        session.attached().len(),
        if backend == pwru_core::Backend::Tracepoint {
            "tracepoints"
        } else {
            "functions"
        },
        backend,
        started.elapsed().as_secs_f64(),
        session.refused().len(),
        if session.refused().is_empty() || a.debug {
            ""
        } else {
            "; --debug lists them"
        }
    );
    if a.debug {
        for r in session.refused() {
            eprintln!("pwru: refused {}: {}", r.target, r.reason);
        }
    }
    if let Some(path) = &a.ready_file {
        std::fs::write(path, b"").map_err(|e| format!("--ready-file {path}: {e}"))?;
    }

    let mut out = Output::new(
        a.output_file.as_deref(),
        a.output_file_max_size,
        a.output_file_max_backups,
    )
    .map_err(|e| format!("--output-file: {e}"))?;
    let mut fmt = Formatter::new(fopts);
    let mut buf = Vec::with_capacity(512);
    if !a.output_json {
        fmt.write_header(&mut buf);
        out.line(&buf).map_err(|e| e.to_string())?;
    }

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let mut summary = Summary::default();
    let quiet = demo.as_ref().map(|d| d.quiet);
    let result: Result<(), String> = rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| e.to_string())?;
        let mut events = session.events();
        if let Some(d) = &demo {
            (d.traffic)().map_err(|e| format!("demo traffic: {e}"))?;
        }
        let idle = quiet.unwrap_or(Duration::from_secs(3600 * 24 * 365));
        loop {
            let item = tokio::select! {
                item = events.next() => item,
                _ = tokio::signal::ctrl_c() => break,
                _ = term.recv() => break,
                _ = tokio::time::sleep(idle) => break,
            };
            let ev = match item {
                None => break,
                Some(Ok(ev)) => ev,
                Some(Err(Error::EventsLost { count, total })) => {
                    summary.lost = total;
                    eprintln!("pwru: {count} events lost (ring buffer full)");
                    continue;
                }
                Some(Err(e)) if !e.is_fatal() => {
                    eprintln!("pwru: {e}");
                    continue;
                }
                Some(Err(e)) => return Err(e.to_string()),
            };
            buf.clear();
            if a.output_json {
                fmt.write_json(&ev, &mut buf);
            } else {
                fmt.write_text(&ev, &mut buf);
            }
            out.line(&buf).map_err(|e| format!("writing output: {e}"))?;
            summary.events += 1;
            if let Some(r) = &ev.drop_reason {
                let tuple = ev.tuple.as_ref().map(|t| t.to_string()).unwrap_or_default();
                summary
                    .drops
                    .push((ev.function.to_string(), r.to_string(), tuple));
            }
            if a.output_limit_lines != 0 && summary.events >= a.output_limit_lines {
                break;
            }
        }
        Ok(())
    });
    out.flush().map_err(|e| e.to_string())?;
    let stats = session.stats();
    summary.lost = summary.lost.max(stats.lost);
    let detach = session.detach();
    eprintln!(
        "pwru: {} events, {} lost; {} attached, {} refused; detached in {:.2}s",
        summary.events,
        summary.lost,
        stats.attached,
        stats.refused,
        detach.as_secs_f64()
    );
    result.map(|()| summary)
}

/// The library's error, with a hint for the one users hit first.
fn explain(e: Error) -> String {
    match e {
        Error::Privileges { .. } => format!("{e}\n(pwru loads BPF programs: run it with sudo)"),
        other => other.to_string(),
    }
}
