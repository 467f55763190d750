//! `full-attach`: every skb function discovery finds is attached with a filter that matches
//! nothing; attach and detach times, attached/refused counts and the multiple of the VM's
//! trivial-load baseline are printed. The same session gives two side-by-side figures: UDP
//! packets/s over veth relative to no tracer, and the CPU the idle session uses.

use std::time::{Duration, Instant};

use pwru_core::{Capture, Session, Tracer};

use crate::backend::Backend;
use crate::kernel_state::{wait_until_gone, Snapshot};
use crate::registry::Ctx;
use crate::report::Outcome;

use super::tracer_kit::{self as kit};
use super::traffic;

/// A simple filter no packet of the run matches (TEST-NET-3).
pub const NO_MATCH: &str = "host 203.0.113.99";

/// kprobe-multi always runs (about 10 s under TCG); kprobe and fentry take minutes under TCG
/// (the kernel waits for RCU grace periods per detached kprobe or trampoline), so they run
/// only where the matrix asks for the slow scenarios (`--slow`: one kernel by default).
pub fn precondition(ctx: &Ctx, backend: Backend) -> Option<String> {
    (backend != Backend::KprobeMulti && !ctx.slow).then(|| {
        "slow under TCG (minutes): measured on the kernel given --slow (PWRU_VM_SLOW_ON)".into()
    })
}

/// Attaches everything, measures, detaches.
pub fn run(ctx: &mut Ctx, backend: Backend) -> Outcome {
    match try_run(ctx, backend) {
        Ok(o) | Err(o) => o,
    }
}

fn try_run(ctx: &mut Ctx, backend: Backend) -> Result<Outcome, Outcome> {
    let b = backend.name();
    let pair = kit::lab("fa", 37).map_err(Outcome::Fail)?;
    let _sink = pair
        .listen_udp(traffic::PORT)
        .map_err(|e| Outcome::Fail(format!("listen: {e}")))?;
    let base_pps = traffic::udp_pps(&pair).map_err(Outcome::Fail)?;

    let before = Snapshot::take().map_err(Outcome::Fail)?;
    drop(crate::log_capture::take());
    let t0 = Instant::now();
    let cpu0 = process_cpu_ns();
    let tracer = Tracer::builder()
        .backend(backend)
        .pcap_filter(NO_MATCH)
        // Packet ids off: their lifetime hooks (skb_clone, skb_copy, kfree_skbmem, ...) are
        // kernel objects too, and the check below counts one per traced function.
        .capture(Capture::default().with_packet_id(false))
        .build()
        .map_err(|e| Outcome::Fail(format!("build: {e}")))?;
    let build = t0.elapsed();
    let targets = tracer.targets().len();
    let t1 = Instant::now();
    let mut session = tracer
        .attach()
        .map_err(|e| Outcome::Fail(format!("attach: {e}")))?;
    let attach = t1.elapsed();
    let total = t0.elapsed();
    // CPU of every thread of the process (kernel time in its syscalls included) from start to
    // attached: with 2 vCPUs, near 2x the wall time means the start is bound by CPU work.
    let cpu = process_cpu_ns().saturating_sub(cpu0);
    let made = Snapshot::take()
        .map_err(Outcome::Fail)?
        .added_since(&before);
    let link_log = crate::log_capture::take();
    let timings = session.timings();
    let (attached, refused) = (session.attached().len(), session.refused().len());
    let first_refusal = session
        .refused()
        .first()
        .map(|r| format!("; first refusal {}: {}", r.target, r.reason))
        .unwrap_or_default();

    let traced_pps = traffic::udp_pps(&pair).map_err(Outcome::Fail)?;
    let idle = idle_cpu(&mut session, Duration::from_secs(2)).map_err(Outcome::Fail)?;
    let detach = session.detach();
    // Every kprobe, link, program and map the session made is gone (programs and maps are
    // freed asynchronously: polled, with the wait reported).
    let gone_after = wait_until_gone(&made, Duration::from_secs(60))
        .map_err(|e| Outcome::Fail(format!("after detach: {e}")))?;

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let base = ctx.baseline_load_ms;
    let r = &mut ctx.report;
    r.metric(&format!("full.targets.{b}"), targets as f64);
    r.metric(&format!("full.attached.{b}"), attached as f64);
    r.metric(&format!("full.refused.{b}"), refused as f64);
    r.metric(&format!("full.build_ms.{b}"), ms(build));
    r.metric(&format!("full.attach_ms.{b}"), ms(attach));
    r.metric(&format!("full.detach_ms.{b}"), ms(detach));
    r.metric(&format!("full.attach_x_baseline.{b}"), ms(attach) / base);
    r.metric(&format!("full.detach_x_baseline.{b}"), ms(detach) / base);
    r.metric(&format!("full.gone_after_detach_ms.{b}"), ms(gone_after));
    r.metric(&format!("full.made_kprobes.{b}"), made.kprobes.len() as f64);
    r.metric(&format!("full.made_links.{b}"), made.links.len() as f64);
    for (phase, d) in [
        ("filter_compile", timings.filter_compile),
        ("btf", timings.btf),
        ("backend_choice", timings.backend_choice),
        ("filter_translate", timings.filter_translate),
        ("discovery", timings.discovery),
        ("build", timings.build),
        ("object_load", timings.load),
        ("verify", timings.verify),
        ("verified_ahead", timings.verified_ahead),
        ("attach", timings.attach),
        ("symbols_wait", timings.symbols_wait),
        ("session", timings.session),
        ("attach_total", timings.attach_total),
    ] {
        r.metric(&format!("full.phase_ms.{phase}.{b}"), ms(d));
    }
    r.metric(&format!("start_to_attached_ms.simple.{b}"), ms(total));
    r.metric(&format!("full.start_cpu_ms.{b}"), cpu as f64 / 1e6);
    for line in link_log
        .iter()
        .filter(|l| l.ends_with("of CPU on its thread"))
    {
        r.info(&format!("{b} start: {line}"));
    }
    r.metric("udp_pps.no_tracer", base_pps);
    r.metric(&format!("udp_pps.nomatch.{b}"), traced_pps);
    r.metric(
        &format!("udp_slowdown_x.{b}"),
        base_pps / traced_pps.max(1.0),
    );
    r.metric(&format!("idle_cpu_pct.{b}"), idle);
    // Every kernel of the matrix (6.0+) has the ksym iterator: the traceable functions come
    // from the symbol table's ftrace sites, and tracefs' list (a walk of the kernel's ftrace
    // records per 4 KiB read) is not read at all.
    let list_read = link_log.iter().find(|l| l.contains("traceable list read"));
    let sites_used = link_log
        .iter()
        .any(|l| l.contains(pwru_core::discovery::SITES_USED));
    if list_read.is_some() || !sites_used {
        return Err(Outcome::Fail(format!(
            "discovery did not take the traceable functions from the symbol table's ftrace \
             sites (said so: {sites_used}; tracefs' list read: {list_read:?})"
        )));
    }
    if attached + refused != targets {
        return Err(Outcome::Fail(format!(
            "{targets} targets but {attached} attached + {refused} refused"
        )));
    }
    // kprobe.multi links by the kallsyms addresses (root reads them here): no link may have
    // been made by name, which costs the kernel a walk of every symbol per link, and none
    // refused: the targets are the functions whose code begins with an ftrace site, and the
    // kernel checks each address against its ftrace records.
    if backend == Backend::KprobeMulti {
        let by_address = link_log
            .iter()
            .filter(|l| l.ends_with("by address"))
            .count();
        let by_name: Vec<&String> = link_log
            .iter()
            .filter(|l| l.ends_with("by name") || l.contains("splitting it"))
            .collect();
        r.metric(&format!("full.links_by_address.{b}"), by_address as f64);
        if by_address == 0 || !by_name.is_empty() {
            return Err(Outcome::Fail(format!(
                "kprobe.multi: {by_address} links by address, by name or refused: {by_name:?}"
            )));
        }
    }
    // One kernel object per attached function: kprobes in debugfs (when it is mounted),
    // tracing links for fentry.
    let per_function = match backend {
        Backend::Kprobe if !made.kprobes.is_empty() => Some(("kprobes", made.kprobes.len())),
        Backend::Fentry => Some(("links", made.links.len())),
        _ => None,
    };
    if let Some((what, n)) = per_function {
        if n != attached {
            return Err(Outcome::Fail(format!(
                "{attached} functions attached but the kernel has {n} new {what}"
            )));
        }
    }
    Ok(Outcome::Pass(format!(
        "{attached}/{targets} attached, {refused} refused; attach {:.2} s ({:.0}x baseline), \
         detach {:.2} s; {:.0} -> {:.0} UDP pkt/s; idle CPU {idle:.1}%{first_refusal}",
        attach.as_secs_f64(),
        ms(attach) / base,
        detach.as_secs_f64(),
        base_pps,
        traced_pps
    )))
}

/// Percent of one CPU the process uses over `window` while it waits on an idle session.
fn idle_cpu(session: &mut Session, window: Duration) -> Result<f64, String> {
    let before = kit::process_cpu()?;
    let t0 = Instant::now();
    // a reader blocked on the stream, as an application would be
    let _ = kit::collect(session, window, usize::MAX)?;
    let wall = t0.elapsed();
    let used = kit::process_cpu()?.saturating_sub(before);
    Ok(used.as_secs_f64() / wall.as_secs_f64() * 100.0)
}

/// CPU time of the whole process (ns, every thread); 0 if the clock cannot be read.
fn process_cpu_ns() -> u64 {
    pwru_core::sys::clock::now_ns(libc::CLOCK_PROCESS_CPUTIME_ID)
        .map_or(0, |n| u64::try_from(n).unwrap_or(0))
}
