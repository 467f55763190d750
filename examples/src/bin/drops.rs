//! A live table of dropped packets, counted by drop reason and function, refreshed in place.
//!
//! `sudo drops [--seconds N] [PCAP-FILTER]` — works on any backend, including the tracepoint
//! backend on kernels without kprobes.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use clap::Parser;
use futures::StreamExt;
use pwru_core::{Backend, Item, Tracer};
use pwru_examples::signals::{Phase, Signals};

/// Count dropped packets by drop reason and function.
#[derive(Parser)]
struct Args {
    /// Stop after this many seconds (0: run until Ctrl-C).
    #[arg(long, default_value_t = 0)]
    seconds: u64,
    /// Backend (auto, kprobe-multi, kprobe, fentry, tracepoint).
    #[arg(long, default_value = "auto")]
    backend: String,
    /// Create this file once the probes are attached (for scripts and tests).
    #[arg(long)]
    ready_file: Option<String>,
    /// pcap-filter expression selecting the packets.
    filter: Vec<String>,
}

/// The kernel's drop points: the skb:kfree_skb tracepoint, or the functions behind it.
const DROP_POINTS: &str = "kfree_skb|kfree_skb_reason|sk_skb_reason_drop";

fn main() {
    let args = Args::parse();
    let backend = match args.backend.parse() {
        Ok(b) => b,
        Err(e) => {
            // A usage error, like clap's own: status 2.
            eprintln!("drops: --backend: {e}");
            std::process::exit(2);
        }
    };
    // One listener for the whole run, before the filter is compiled.
    let mut signals = match Signals::install("drops") {
        Ok(s) => s,
        Err(e) => {
            eprintln!("drops: cannot listen for SIGINT/SIGTERM: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = run(&args, backend, &mut signals) {
        eprintln!("drops: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args, backend: Backend, signals: &mut Signals) -> Result<(), String> {
    let tracer = Tracer::builder()
        .pcap_filter(args.filter.join(" "))
        .function_regex(DROP_POINTS)
        .backend(backend)
        .build()
        .map_err(|e| e.to_string())?;
    signals.set_phase(Phase::Attaching);
    let session = tracer.attach().map_err(|e| e.to_string())?;
    signals.deliver();
    if let Some(p) = &args.ready_file {
        std::fs::write(p, b"").map_err(|e| format!("--ready-file {p}: {e}"))?;
    }
    let tty = std::io::stdout().is_terminal();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let mut counts: HashMap<(String, String), u64> = HashMap::new();
    let mut lost = 0u64;
    let started = Instant::now();
    let limit = (args.seconds > 0).then(|| Duration::from_secs(args.seconds));
    rt.block_on(async {
        // The owned stream: it holds the session, which detaches when the stream is dropped.
        let mut events = session.into_stream();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                biased;
                // Signals, then the clock (ready once a second), then events, which are always
                // ready in a flood and would otherwise starve the other two.
                _ = signals.recv() => break,
                _ = tick.tick() => {
                    draw(&counts, lost, started.elapsed(), tty);
                    if limit.is_some_and(|l| started.elapsed() >= l) {
                        break;
                    }
                }
                item = events.next() => match item {
                    Some(Ok(Item::Event(ev))) => {
                        if let Some(r) = ev.drop_reason {
                            *counts.entry((r.to_string(), ev.function.to_string())).or_default() += 1;
                        }
                    }
                    Some(Ok(Item::Lost(l))) => lost += l.count,
                    Some(Ok(_)) => {}
                    Some(Err(e)) if !e.is_fatal() => eprintln!("drops: {e}"),
                    Some(Err(e)) => return Err(e.to_string()),
                    None => break,
                },
            }
        }
        Ok(())
    })?;
    draw(&counts, lost, started.elapsed(), false);
    Ok(())
}

/// Prints the table; on a terminal it first moves the cursor home and clears the screen.
fn draw(counts: &HashMap<(String, String), u64>, lost: u64, elapsed: Duration, tty: bool) {
    let mut rows: Vec<_> = counts.iter().collect();
    rows.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    let mut out = std::io::stdout().lock();
    if tty {
        let _ = write!(out, "\x1b[H\x1b[2J");
    }
    let _ = writeln!(
        out,
        "{:>10}  {:<40} FUNCTION   ({:.0}s, {lost} events lost)",
        "COUNT",
        "DROP REASON",
        elapsed.as_secs_f64()
    );
    for ((reason, func), n) in rows {
        let _ = writeln!(out, "{n:>10}  {reason:<40} {func}");
    }
    let _ = out.flush();
}
