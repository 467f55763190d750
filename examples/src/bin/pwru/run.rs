//! The tracing loop: build, attach with a progress line, print events until told to stop.

use std::cell::RefCell;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use pwru_core::event::BpfMapOp;
use pwru_core::format::{FormatOptions, Formatter, TimestampMode};
use pwru_core::netns_names::NetnsNames;
use pwru_core::{
    Capture, Error, Event, Item, KernelModules, MissingPrivileges, Stats, Tracer, TracerBuilder,
};
use pwru_examples::signals::{self, Phase, Signals};

use crate::args::Args;
use crate::output::{Output, PcapngFile, Record, Retention, Sinks};
use crate::series_out::SeriesOut;
use crate::writer::{Closed, Writer};

/// Builds the tracer's options from pwru's flags.
pub fn builder(a: &Args) -> Result<TracerBuilder, Failure> {
    let mut b = Tracer::builder()
        .pcap_filter(a.pcap())
        .backend(
            a.backend
                .parse()
                .map_err(|e| Failure::Usage(format!("--backend: {e}")))?,
        )
        .track_skb(a.filter_track_skb)
        .track_skb_by_stackid(a.filter_track_skb_by_stackid)
        .track_bpf_helpers(a.filter_track_bpf_helpers)
        .bpf_map_ops(a.output_bpfmap)
        .trace_tc(a.filter_trace_tc)
        .trace_xdp(a.filter_trace_xdp)
        .capture(
            Capture::default()
                .with_meta(a.output_meta)
                .with_tuple(a.output_tuple)
                .with_tcp_flags(a.output_tcp_flags)
                .with_tunnel(a.output_tunnel)
                .with_stack(a.output_stack)
                .with_caller(a.output_caller)
                .with_skb(a.output_skb)
                .with_skb_shared_info(a.output_skb_shared_info)
                .with_cb(a.output_skb_cb)
                .with_packet(a.output_pcapng.is_some())
                // Ids cost every packet a map entry and hooks at each free (see
                // benches/README.md): on only when printed, grouped by or written.
                .with_packet_id(
                    a.output_packet_id
                        || a.output_series
                        || a.output_paths
                        || a.output_paths_svg.is_some()
                        || a.output_pcapng.is_some(),
                )
                .with_snaplen(a.pcapng_snaplen().map_err(Failure::Usage)?),
        );
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
        b = b.mark(
            m.parse()
                .map_err(|e| Failure::Usage(format!("--filter-mark: {e}")))?,
        );
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
    if let Some(e) = &a.filter_skb_expr {
        b = b.skb_filter_expr(e);
    }
    if let Some(e) = &a.filter_xdp_expr {
        b = b.xdp_filter_expr(e);
    }
    b = b
        .skb_metadata(&a.output_skb_metadata)
        .xdp_metadata(&a.output_xdp_metadata);
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
pub fn format_options(a: &Args) -> Result<FormatOptions, Failure> {
    // FormatOptions may grow (non_exhaustive): start from pwru's defaults, set each flag.
    let mut o = FormatOptions::default();
    o.meta = a.output_meta;
    o.tuple = a.output_tuple;
    o.tcp_flags = a.output_tcp_flags;
    o.caller = a.output_caller;
    o.tunnel = a.output_tunnel;
    o.cb = a.output_skb_cb;
    o.stack = a.output_stack;
    o.skb_dump = a.output_skb;
    o.shinfo_dump = a.output_skb_shared_info;
    o.packet_id = a.output_packet_id;
    o.netns_names = a.output_netns_names.then_some(a.netns_names_max_length);
    o.timestamp = a
        .timestamp
        .parse::<TimestampMode>()
        .map_err(|e| Failure::Usage(format!("--timestamp: {e}")))?;
    Ok(o)
}

/// Why a run failed: a usage error (exit status 2) or anything else (exit status 1).
#[derive(Debug)]
pub enum Failure {
    /// A flag's value is not acceptable.
    Usage(String),
    /// Building, attaching, reading or writing failed.
    Run(String),
}

impl From<String> for Failure {
    fn from(s: String) -> Self {
        Failure::Run(s)
    }
}

impl Failure {
    /// The process exit status for this failure.
    pub fn exit_status(&self) -> i32 {
        match self {
            Failure::Usage(_) => 2,
            Failure::Run(_) => 1,
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        match self {
            Failure::Usage(m) | Failure::Run(m) => m,
        }
    }
}

/// Drops remembered for the demo's closing list; more are only counted.
const DEMO_DROPS_KEPT: usize = 16;

/// How long the loop keeps reading records that are already in the ring buffer after a stop.
const DRAIN_FOR: Duration = Duration::from_millis(150);

/// How long the writer gets at exit to write what is queued.
const WRITER_WAIT: Duration = Duration::from_millis(200);

/// How often a quiet loop checks whether the reader of standard output went away.
const STDOUT_CHECK: Duration = Duration::from_millis(250);

/// What a run saw, for the summary line and the demo.
#[derive(Debug, Default)]
pub struct Summary {
    /// Events read and formatted.
    pub events: u64,
    /// Events lost: the ring buffer was full, or the kernel skipped a run (recursion).
    pub lost: u64,
    /// Records the kernel wrote that were still unread when the program stopped.
    pub unread: u64,
    /// Events formatted but not printed: the output was blocked or closed at exit.
    pub not_printed: u64,
    /// Events that carry a drop reason.
    pub drops_seen: u64,
    /// The first [`DEMO_DROPS_KEPT`] drops (function, reason, tuple text), kept for the demo
    /// only: memory does not grow with the number of events.
    pub drops: Vec<(String, String, String)>,
    /// Why the loop stopped, when it is worth saying (signal, output closed).
    pub stopped_by: Option<String>,
    /// With `--output-pcapng`: packets written, and events skipped for having no bytes.
    pub pcapng: Option<(u64, u64)>,
}

/// Traces until Ctrl-C/SIGTERM, `--output-limit-lines`, or the reader of the output is gone.
pub fn trace(a: &Args, signals: &mut Signals) -> Result<(), Failure> {
    let builder = builder(a)?;
    trace_with(a, builder, None, signals).map(|_| ())
}

use crate::demo;

/// Checks before anything is attached that the ready file can be made: an existing file must
/// open for writing; otherwise a probe file is created next to it and removed (the ready file
/// itself must not exist before the probes are attached).
fn check_ready_file(path: &str) -> Result<(), Failure> {
    let named = |e: std::io::Error| Failure::Run(format!("--ready-file {path}: {e}"));
    let p = Path::new(path);
    if p.exists() {
        std::fs::OpenOptions::new()
            .write(true)
            .open(p)
            .map_err(named)?;
        return Ok(());
    }
    let dir = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let probe = dir.join(format!(".pwru-ready-check-{}", std::process::id()));
    std::fs::File::create(&probe).map_err(named)?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// The "events lost" line: at most one a second, with the running total.
#[derive(Default)]
struct LostLine {
    last: Option<Instant>,
}

impl LostLine {
    fn report(&mut self, total: u64) {
        let now = Instant::now();
        if self
            .last
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1))
        {
            self.last = Some(now);
            eprintln!("pwru: {total} events lost so far (ring buffer full)");
        }
    }
}

/// The closing line. One function, so new counters (e.g. kernel run counts) go in one place.
fn summary_line(s: &Summary, stats: &Stats, detach: Duration) -> String {
    let mut line = format!("pwru: {} events, {} lost", s.events, s.lost);
    if s.not_printed > 0 {
        line += &format!(", {} not printed (output blocked)", s.not_printed);
    }
    if s.unread > 0 {
        line += &format!(", {} left unread in the ring buffer", s.unread);
    }
    if stats.decode_errors > 0 {
        line += &format!(", {} undecodable", stats.decode_errors);
    }
    if let Some((packets, skipped)) = s.pcapng {
        line += &format!(", {packets} packets to pcap-ng");
        if skipped > 0 {
            line += &format!(" ({skipped} events without readable bytes skipped)");
        }
    }
    // What the kernel side produced, so that the counts above can be checked against it.
    line += &format!(
        "; the kernel wrote {}, {} did not fit",
        stats.runs.emitted, stats.runs.ring_full
    );
    line += &format!(
        "; {} attached, {} refused; detached in {:.2}s",
        stats.attached,
        stats.refused,
        detach.as_secs_f64()
    );
    line
}

/// Why the event loop ended.
enum Stop {
    /// Ctrl-C, SIGTERM, the demo's quiet time, or the end of the stream: drain, then summary.
    Drain,
    /// `--output-limit-lines` reached: nothing more is wanted.
    Limit,
    /// The output is gone: nothing read from now on can be printed.
    OutputGone,
}

/// [`trace`] with an explicit builder; returns what was seen.
pub fn trace_with(
    a: &Args,
    builder: TracerBuilder,
    demo: Option<demo::Hooks<'_>>,
    signals: &mut Signals,
) -> Result<Summary, Failure> {
    let fopts = format_options(a)?;
    // Both paths are checked before anything is attached, so a typo costs no attach time.
    // The text output and the pcap-ng capture rotate alike.
    let retention = Retention {
        max_backups: a.output_file_max_backups,
        max_age: Retention::max_age_days(a.output_file_max_age),
        compress: a.output_file_compress,
    };
    let out =
        Output::new(a.output_file.as_deref(), a.output_file_max_size, retention).map_err(|e| {
            match &a.output_file {
                Some(p) => format!("--output-file {p}: {e}"),
                None => format!("standard output: {e}"),
            }
        })?;
    let pcapng = match &a.output_pcapng {
        Some(p) => Some(
            PcapngFile::create(
                PathBuf::from(p),
                a.output_file_max_size.saturating_mul(1 << 20),
                retention,
            )
            .map_err(|e| format!("--output-pcapng {p}: {e}"))?,
        ),
        None => None,
    };
    if let Some(path) = &a.ready_file {
        check_ready_file(path)?;
    }
    if let Some(p) = &a.output_paths_svg {
        // Made (empty) now so a bad path fails before the attach; written at exit.
        std::fs::File::create(p)
            .map_err(|e| Failure::Run(format!("--output-paths-svg {p}: {e}")))?;
    }
    if a.debug {
        eprintln!("pwru: building the tracer (compiling filters, discovering functions)");
    }
    let tracer = builder.build().map_err(explain)?;
    if a.filter_track_bpf_helpers {
        // The helpers come from the tc/XDP programs loaded now: say when there are none.
        let helpers = tracer
            .non_skb_targets()
            .iter()
            .filter(|f| !a.filter_non_skb_funcs.contains(f))
            .count();
        if helpers == 0 {
            eprintln!(
                "pwru: --filter-track-bpf-helpers: no loaded tc/XDP program calls a traceable \
                 kernel function; no helper is traced"
            );
        } else if a.debug {
            eprintln!("pwru: --filter-track-bpf-helpers: tracing {helpers} kernel functions");
        }
    }
    if a.output_bpfmap {
        // The map functions come from the tc/XDP programs loaded now: say when there are none.
        let funcs: Vec<&str> = tracer.map_op_functions().collect();
        if funcs.is_empty() {
            eprintln!(
                "pwru: --output-bpfmap: no loaded tc/XDP program does map operations; none \
                 is traced"
            );
        } else if a.debug {
            eprintln!("pwru: --output-bpfmap: tracing {}", funcs.join(", "));
        }
    }
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
    let noun = if backend == pwru_core::Backend::Tracepoint {
        "tracepoints"
    } else {
        "functions"
    };
    signals.set_phase(Phase::Attaching);
    // The hot path is attached before the session comes back; the rest attaches on the
    // library's thread while events are printed. Its progress is a bar until then, and a line
    // per tenth afterwards (a bar would be torn by the event lines).
    let streaming = Arc::new(AtomicBool::new(false));
    let mut progress = ProgressLine::new(tty, Arc::clone(&streaming));
    let session = tracer
        .attach_in_background(move |p| progress.show(p))
        .map_err(explain)?;
    streaming.store(true, Ordering::SeqCst);
    // From here a signal stops the loop, which drains and prints the summary.
    signals.deliver();
    if tty {
        eprintln!();
    }
    let attaching = session.attach_handle();
    if !attaching.is_finished() {
        let (_, total) = attaching.progress();
        eprintln!(
            "pwru: tracing from the first {} of {total} {noun} with {backend}; the others \
             attach in the background",
            session.attached().len()
        );
    }
    // Says when everything is attached (and makes the ready file then): on its own thread, so
    // events print meanwhile. A run stopped before that writes no ready file.
    let reporter = {
        let attaching = attaching.clone();
        let ready_file = a.ready_file.clone();
        let debug = a.debug;
        let timings = session.timings();
        std::thread::Builder::new()
            .name("pwru-attached".into())
            .spawn(move || {
                let o = attaching.wait();
                if o.cancelled > 0 {
                    return;
                }
                eprintln!(
                    "pwru: attached {} {noun} with {backend} in {:.2}s ({} refused{})",
                    o.attached.len(),
                    o.elapsed.as_secs_f64(),
                    o.refused.len(),
                    if o.refused.is_empty() || debug {
                        ""
                    } else {
                        "; --debug lists them"
                    }
                );
                if debug {
                    for r in &o.refused {
                        eprintln!("pwru: refused {}: {}", r.target, r.reason);
                    }
                    print_timings(&timings, o.elapsed);
                }
                if let Some(path) = ready_file {
                    if let Err(e) = std::fs::write(&path, b"") {
                        eprintln!("pwru: --ready-file {path}: {e}");
                    }
                }
            })
            .map_err(|e| format!("starting the attach reporter: {e}"))?
    };
    let mut session = session;

    let to_stdout = a.output_file.is_none();
    let to_pcapng = pcapng.is_some();
    let writer = Writer::start(Sinks { lines: out, pcapng })
        .map_err(|e| format!("starting the output thread: {e}"))?;
    let netns_names = fopts.netns_names.map(|_| RefCell::new(NetnsNames::new()));
    let mut fmt = Formatter::new(fopts);
    if let Some(names) = &netns_names {
        fmt.set_netns_names(names.borrow().names().clone());
    }
    let mut series = SeriesOut::new(a);
    let blocks = series.as_ref().is_some_and(SeriesOut::replaces_lines);
    if !a.output_json && !blocks {
        let mut header = Vec::with_capacity(128);
        fmt.write_header(&mut header);
        writer.try_send(Record::line(header));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let mut summary = Summary::default();
    let keep_drops = demo.is_some();
    let quiet = demo.as_ref().map(|d| d.quiet);
    // The line, and the event itself when its packet goes to the pcap-ng file too.
    let format = |fmt: &mut Formatter, ev: Event| {
        let mut line = Vec::with_capacity(256);
        if let (Some(names), Some(meta)) = (&netns_names, &ev.meta) {
            // A namespace made after the start is named at its first event (rescans are
            // rate-limited by NetnsNames).
            let mut names = names.borrow_mut();
            if names.learn(u64::from(meta.netns)) {
                fmt.set_netns_names(names.names().clone());
            }
        }
        if a.output_json {
            fmt.write_json(&ev, &mut line);
        } else {
            fmt.write_text(&ev, &mut line);
        }
        Record {
            line,
            packet: to_pcapng.then(|| Box::new(ev)),
        }
    };
    // With --output-series the event feeds its packet's series (printed as a block when the
    // series completes) instead of printing its own line; its packet still goes to pcap-ng.
    let to_record = |fmt: &mut Formatter, series: &mut Option<SeriesOut>, ev: Event| match series {
        Some(so) if so.replaces_lines() => {
            let line = so.event(&ev);
            Record {
                line,
                packet: to_pcapng.then(|| Box::new(ev)),
            }
        }
        Some(so) => {
            // Paths only: the event lines print as usual.
            let _ = so.event(&ev);
            format(fmt, ev)
        }
        None => format(fmt, ev),
    };
    let format_map_op = |fmt: &Formatter, op: &BpfMapOp| {
        let mut line = Vec::with_capacity(256);
        if a.output_json {
            fmt.write_bpfmap_json(op, &mut line);
        } else {
            fmt.write_bpfmap_text(op, &mut line);
        }
        line
    };
    let note = |summary: &mut Summary, ev: &Event| {
        summary.events += 1;
        if let Some(r) = &ev.drop_reason {
            summary.drops_seen += 1;
            if keep_drops && summary.drops.len() < DEMO_DROPS_KEPT {
                let tuple = ev.tuple.as_ref().map(|t| t.to_string()).unwrap_or_default();
                summary
                    .drops
                    .push((ev.function.to_string(), r.to_string(), tuple));
            }
        }
    };
    let result: Result<(), Failure> = rt.block_on(async {
        let mut events = session.events();
        if let Some(d) = &demo {
            // The demo's packets are sent once every probe is in place.
            attaching.wait();
            (d.traffic)().map_err(|e| format!("demo traffic: {e}"))?;
        }
        let mut lost_line = LostLine::default();
        let mut last_event = Instant::now();
        let mut check = tokio::time::interval(STDOUT_CHECK);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let stop = loop {
            // Room in the output queue first: while it is full, no event is read (the kernel
            // counts what it cannot write), but signals are still heard.
            let permit = tokio::select! {
                biased;
                sig = signals.recv() => {
                    summary.stopped_by = Some(signals::name(sig).to_string());
                    break Stop::Drain;
                }
                p = writer.reserve() => match p {
                    Ok(p) => p,
                    Err(Closed) => break Stop::OutputGone,
                },
            };
            // Quiet time counts from the last event, not from this pass of the loop.
            let idle = async {
                match quiet {
                    Some(q) => tokio::time::sleep_until((last_event + q).into()).await,
                    None => std::future::pending().await,
                }
            };
            let item = tokio::select! {
                biased;
                sig = signals.recv() => {
                    summary.stopped_by = Some(signals::name(sig).to_string());
                    break Stop::Drain;
                }
                _ = check.tick(), if to_stdout || series.is_some() => {
                    if to_stdout && pwru_examples::sys::stdout_closed() {
                        break Stop::OutputGone;
                    }
                    // Packets not seen for the idle timeout end even when nothing else comes.
                    if let Some(so) = series.as_mut() {
                        let out = so.tick();
                        if !out.is_empty() {
                            writer.send(permit, Record::line(out));
                        }
                    }
                    continue;
                }
                item = events.next() => item,
                _ = idle => break Stop::Drain,
            };
            let ev = match item {
                None => break Stop::Drain,
                Some(Ok(Item::Event(ev))) => ev,
                Some(Ok(Item::Lost(lost))) => {
                    if let Some(so) = series.as_mut() {
                        so.lost(&lost);
                    }
                    summary.lost = lost.total;
                    lost_line.report(lost.total);
                    continue;
                }
                // Printed with the packet's events, in stream order; not counted as lines
                // of --output-limit-lines (pwru prints them inside the map function's line).
                Some(Ok(Item::BpfMap(op))) => {
                    last_event = Instant::now();
                    writer.send(permit, Record::line(format_map_op(&fmt, &op)));
                    continue;
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) if !e.is_fatal() => {
                    eprintln!("pwru: {e}");
                    continue;
                }
                Some(Err(e)) => return Err(Failure::Run(e.to_string())),
            };
            last_event = Instant::now();
            note(&mut summary, &ev);
            let record = to_record(&mut fmt, &mut series, ev);
            if !record.line.is_empty() || record.packet.is_some() {
                writer.send(permit, record);
            }
            if a.output_limit_lines != 0 && summary.events >= a.output_limit_lines {
                break Stop::Limit;
            }
        };
        if let Stop::OutputGone = stop {
            summary.stopped_by = Some(match writer.error() {
                Some(e) if !writer.reader_gone() => format!("writing output failed: {e}"),
                _ => "output closed".to_string(),
            });
        }
        if !matches!(stop, Stop::Limit) {
            // No run can start any more; records already in the ring buffer are printed if the
            // queue has room, and counted as not printed otherwise; never dropped unseen (what
            // the drain cannot reach in time is counted from the kernel's counters below).
            session.stop();
            let mut events = session.events();
            let until = Instant::now() + DRAIN_FOR;
            while Instant::now() < until {
                let Some(Some(item)) = events.next().now_or_never() else {
                    break;
                };
                match item {
                    Ok(Item::Event(ev)) => {
                        note(&mut summary, &ev);
                        let record = to_record(&mut fmt, &mut series, ev);
                        let empty = record.line.is_empty() && record.packet.is_none();
                        if !empty && !writer.try_send(record) {
                            summary.not_printed += 1;
                        }
                    }
                    Ok(Item::Lost(lost)) => {
                        if let Some(so) = series.as_mut() {
                            so.lost(&lost);
                        }
                        summary.lost = lost.total;
                    }
                    Ok(Item::BpfMap(op)) => {
                        if !writer.try_send(Record::line(format_map_op(&fmt, &op))) {
                            summary.not_printed += 1;
                        }
                    }
                    Ok(_) | Err(_) => {}
                }
            }
        }
        Ok(())
    });
    // Packets still open at exit end here ("open at the end"), so every one is printed/counted.
    if let Some(so) = series.as_mut() {
        let out = so.flush();
        if so.replaces_lines() && !out.is_empty() && !writer.try_send(Record::line(out)) {
            eprintln!("pwru: the last packets' series were not printed (output blocked)");
        }
    }
    let finished = writer.finish(WRITER_WAIT);
    summary.pcapng = finished.pcapng.map(|s| (s.packets, s.skipped));
    if let Some(so) = &series {
        write_series_outputs(a, so)?;
    }
    summary.not_printed += finished.unwritten.min(summary.events);
    if let Some(why) = &summary.stopped_by {
        eprintln!("pwru: stopping: {why}");
    }
    let stats = session.stats();
    summary.lost = summary.lost.max(stats.total_lost());
    // Written by the kernel, never read: still in the ring buffer when the drain gave up.
    summary.unread = stats.runs.emitted.saturating_sub(stats.records);
    let detach = session.detach();
    // The session stopped its attaching thread, so the reporter has its outcome.
    if reporter.join().is_err() {
        eprintln!("pwru: the attach reporter panicked");
    }
    eprintln!("{}", summary_line(&summary, &stats, detach));
    if let (Some(e), None) = (&finished.error, &summary.stopped_by) {
        return Err(Failure::Run(format!("writing output: {e}")));
    }
    result.map(|()| summary)
}

/// The exit outputs of the series flags: the path summary (after the events, on the same
/// output) and the picture.
fn write_series_outputs(a: &Args, so: &SeriesOut) -> Result<(), Failure> {
    use std::io::Write as _;
    let st = so.stats();
    if st.evicted > 0 || st.hops_not_kept > 0 || st.gaps_marked > 0 {
        eprintln!(
            "pwru: series: {} packets evicted (in-flight cap), {} hops not kept (hop cap), {} \
             packet series possibly affected by lost records",
            st.evicted, st.hops_not_kept, st.gaps_marked
        );
    }
    if a.output_paths {
        let text = so.paths_text();
        let written = match &a.output_file {
            Some(p) => std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(p)
                .and_then(|mut f| f.write_all(text.as_bytes())),
            None => {
                let mut out = std::io::stdout().lock();
                out.write_all(text.as_bytes()).and_then(|()| out.flush())
            }
        };
        // A closed standard output already ended the run; nothing more to say there.
        if let Err(e) = written {
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                return Err(Failure::Run(format!("writing the path summary: {e}")));
            }
        }
    }
    if let Some(path) = &a.output_paths_svg {
        std::fs::write(path, so.paths_svg())
            .map_err(|e| format!("--output-paths-svg {path}: {e}"))?;
    }
    Ok(())
}

/// The library's error, with a hint for the one users hit first.
pub fn explain(e: Error) -> String {
    match e {
        Error::Privileges { ref missing, .. } => {
            privileges_hint(&e.to_string(), missing, "pwru loads BPF programs")
        }
        other => other.to_string(),
    }
}

/// The privilege error followed by a hint naming every capability the library found missing.
pub fn privileges_hint(error: &str, missing: &MissingPrivileges, why: &str) -> String {
    format!("{error}\n({why}: run it with sudo, or grant {missing})")
}

/// `--debug`: where the time from start to attached went, phase by phase. `all` is the
/// whole attach, background included; the phases are those of the part before the first
/// events (the hot path).
fn print_timings(t: &pwru_core::Timings, all: Duration) {
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    eprintln!(
        "pwru: start to attached {:.0} ms (to the first events {:.0} ms): build {:.0} ms \
         (filter compile {:.0}, BTF {:.0}, backend choice {:.0}, filter translate {:.0}, \
         discovery {:.0}; programs verified meanwhile {:.0}), attach {:.0} ms (hot path {:.0}: \
         object load {:.0} of which waiting for the BTF parse {:.0}, load and verify {:.0}, \
         attach {:.0} of which waiting for kallsyms {:.0}, session {:.0})",
        ms(t.build + all),
        ms(t.build + t.attach_total),
        ms(t.build),
        ms(t.filter_compile),
        ms(t.btf),
        ms(t.backend_choice),
        ms(t.filter_translate),
        ms(t.discovery),
        ms(t.verified_ahead),
        ms(all),
        ms(t.attach_total),
        ms(t.load),
        ms(t.btf_wait),
        ms(t.verify),
        ms(t.attach),
        ms(t.symbols_wait),
        ms(t.session),
    );
}

/// The attach progress on a terminal: a bar redrawn in place until the session is handed
/// out, then a line at each tenth of the targets.
struct ProgressLine {
    tty: bool,
    streaming: Arc<AtomicBool>,
    tenth: usize,
}

impl ProgressLine {
    fn new(tty: bool, streaming: Arc<AtomicBool>) -> Self {
        ProgressLine {
            tty,
            streaming,
            tenth: 0,
        }
    }

    fn show(&mut self, p: pwru_core::Progress<'_>) {
        if !self.tty {
            return;
        }
        if self.streaming.load(Ordering::SeqCst) {
            let tenth = (p.done * 10).checked_div(p.total).unwrap_or(10);
            if tenth > self.tenth && tenth < 10 {
                self.tenth = tenth;
                eprintln!("pwru: attaching {}/{} with {}", p.done, p.total, p.backend);
            }
            return;
        }
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
}
