//! `detach-lab`: where the time of kprobe and fentry attach and detach goes, measured with
//! the harness's trivial counting program through pwru-core's syscall layer (no Tracer, no
//! loader): the same functions as `attach-speed`, attached on 1, 2 or 4 threads and detached
//! on 1 to 64 threads, and (kprobe) with the program attached through the perf event's
//! ioctl or through a perf link. Each round checks that every kprobe or link it made is
//! gone. With `--slow` (the matrix's slow kernel) every function discovery finds, 1 and 16
//! detach threads only. The numbers choose pwru-core's thread counts (backend/link.rs).

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use pwru_core::sys;
use pwru_core::Tracer;

use crate::backend::Backend;
use crate::counters::{self, LoadSpec};
use crate::kernel_state::{wait_until_gone, Snapshot};
use crate::probes::{Kind, SLOTS};
use crate::registry::Ctx;
use crate::report::Outcome;

use super::attach_speed::SUBSET;

/// A measurement, minutes under TCG: runs only when named (`--scenario detach-lab`).
pub fn precondition(ctx: &Ctx, _: Backend) -> Option<String> {
    (!ctx.named.iter().any(|s| s == "detach-lab"))
        .then(|| "a timing run (minutes under TCG): run it by name, --scenario detach-lab".into())
}

/// How the program runs on a kprobe.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Via {
    /// PERF_EVENT_IOC_SET_BPF (what pwru-core does).
    Ioctl,
    /// BPF_LINK_CREATE(BPF_PERF_EVENT) (what cilium/ebpf does on 5.15+).
    PerfLink,
    /// The ioctl, the kprobe placed by its kallsyms address instead of its name.
    Address,
}

/// One round: threads for attach and detach, and the kprobe attach method.
struct Plan {
    attach: usize,
    detach: usize,
    via: Via,
    /// Attach threads pinned to CPU 0, the CPU the perf events are opened on (no
    /// cross-CPU call to install or enable them).
    pin: bool,
}

const fn plan(attach: usize, detach: usize, via: Via) -> Plan {
    Plan {
        attach,
        detach,
        via,
        pin: false,
    }
}

const fn pinned(attach: usize, detach: usize) -> Plan {
    Plan {
        attach,
        detach,
        via: Via::Ioctl,
        pin: true,
    }
}

/// Measured in 6.12 boots on a loaded host (tests/vm/README.md, "Attach and detach threads"):
/// attach is fastest on one thread, detach on 8 to 16. On a quiet host (2026-12-05) two
/// attach threads were faster on 6.1. These rounds alternate one and two attach threads so
/// that a change of host load falls on both, then place the kprobes by address (no faster on
/// 6.1 or 6.12: the kernel's searches by name are not where the time goes), then the other
/// ways.
const KPROBE_PLANS: &[Plan] = &[
    plan(1, 16, Via::Ioctl),
    plan(2, 16, Via::Ioctl),
    plan(1, 16, Via::Ioctl),
    plan(2, 16, Via::Ioctl),
    plan(1, 16, Via::Address),
    plan(1, 1, Via::Ioctl),
    pinned(1, 16),
    plan(1, 16, Via::PerfLink),
];

/// With `--slow`, every function discovery finds (about 1,600): two, three and four attach
/// threads, on pwru-core's 16 detach threads, in the same boot.
const FULL_PLANS: &[Plan] = &[
    plan(2, 16, Via::Ioctl),
    plan(4, 16, Via::Ioctl),
    plan(3, 16, Via::Ioctl),
    plan(2, 16, Via::Ioctl),
    plan(4, 16, Via::Ioctl),
];

const FENTRY_PLANS: &[Plan] = &[
    plan(1, 1, Via::Ioctl),
    plan(2, 16, Via::Ioctl),
    plan(4, 4, Via::Ioctl),
];

/// Runs every plan of the backend and reports each as metrics.
pub fn run(ctx: &mut Ctx, backend: Backend) -> Outcome {
    match try_run(ctx, backend) {
        Ok(o) | Err(o) => o,
    }
}

fn try_run(ctx: &mut Ctx, backend: Backend) -> Result<Outcome, Outcome> {
    let plans = match backend {
        // The whole set (--slow): one thread against pwru-core's detach threads only.
        Backend::Kprobe | Backend::Fentry if ctx.slow => FULL_PLANS,
        Backend::Kprobe => KPROBE_PLANS,
        Backend::Fentry => FENTRY_PLANS,
        _ => return Ok(Outcome::Skip("kprobe and fentry only".into())),
    };
    let mut builder = Tracer::builder().backend(backend);
    if !ctx.slow {
        builder = builder.function_regex(SUBSET);
    }
    let tracer = builder
        .build()
        .map_err(|e| Outcome::Fail(format!("build: {e}")))?;
    let symbols = pwru_core::symbols::KernelSymbols::load()
        .map_err(|e| Outcome::Fail(format!("kallsyms: {e}")))?;
    // One pass over the table for every name (address_of would make one per name).
    let names: Vec<&str> = tracer.targets().iter().map(|t| t.name.as_str()).collect();
    let addresses = symbols.addresses_of(&names);
    let mut functions: Vec<Function> = Vec::new();
    for (t, address) in tracer.targets().iter().zip(addresses) {
        let id = match backend {
            Backend::Fentry => match ctx.btf.func_id(&t.name) {
                Ok(id) => id,
                Err(_) => continue,
            },
            _ => 0,
        };
        functions.push((t.name.clone(), id, address));
    }
    drop(tracer);
    let counters = counters::create_counter_map(SLOTS).map_err(|e| Outcome::Fail(e.to_string()))?;
    let mut summary = Vec::new();
    if backend == Backend::Kprobe {
        summary.push(disable_stops_program(ctx)?);
    }
    for p in plans {
        let r = round(backend, p, &functions, &counters)?;
        let via = match p.via {
            Via::PerfLink => "_link",
            Via::Address => "_addr",
            Via::Ioctl => "",
        };
        let via = if p.pin { "_cpu0" } else { via };
        let set = if ctx.slow { "full." } else { "" };
        let key = format!(
            "lab.{set}{}.a{}_d{}{via}",
            backend.name(),
            p.attach,
            p.detach
        );
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        ctx.report
            .metric(&format!("{key}.attached"), r.attached as f64);
        ctx.report.metric(&format!("{key}.attach_ms"), ms(r.attach));
        ctx.report.metric(&format!("{key}.detach_ms"), ms(r.detach));
        summary.push(format!(
            "attach {}t{via} {} fns {:.2} s ({:.1} ms/fn), detach {}t {:.2} s ({:.1} ms/fn)",
            p.attach,
            r.attached,
            r.attach.as_secs_f64(),
            ms(r.attach) / r.attached.max(1) as f64,
            p.detach,
            r.detach.as_secs_f64(),
            ms(r.detach) / r.attached.max(1) as f64,
        ));
    }
    Ok(Outcome::Pass(summary.join("; ")))
}

/// A function to attach: name, BTF id (fentry) and kallsyms address (kprobe by address).
type Function = (String, u32, Option<u64>);

struct Measured {
    attached: usize,
    attach: Duration,
    detach: Duration,
}

/// What one function's attach holds; dropping it detaches (the link first, then the event).
struct Held {
    _link: Option<OwnedFd>,
    _event: Option<OwnedFd>,
    _prog: Option<OwnedFd>,
}

fn round(
    backend: Backend,
    p: &Plan,
    functions: &[Function],
    counters: &OwnedFd,
) -> Result<Measured, Outcome> {
    let before = Snapshot::take().map_err(Outcome::Fail)?;
    let kprobe_prog = match backend {
        Backend::Kprobe => Some(load(Kind::Kprobe, counters, 0)?),
        _ => None,
    };
    let pmu = sys::KprobePmu::from_sysfs().ok();
    let t0 = Instant::now();
    let held: Vec<Option<Held>> =
        on_threads(
            p.attach,
            p.pin,
            functions,
            |(name, id, address)| match backend {
                Backend::Kprobe => {
                    let (pmu, prog) = (pmu.as_ref()?, kprobe_prog.as_ref()?);
                    let name = CString::new(name.as_str()).ok()?;
                    let at = match p.via {
                        Via::Address => sys::KprobeAt::Address((*address)?),
                        Via::Ioctl | Via::PerfLink => sys::KprobeAt::Symbol(&name),
                    };
                    if p.via == Via::PerfLink {
                        let event = sys::perf_kprobe_event(pmu, at, false).ok()?;
                        let link = sys::link_perf_event(prog.as_fd(), event.as_fd()).ok()?;
                        return Some(Held {
                            _link: Some(link),
                            _event: Some(event),
                            _prog: None,
                        });
                    }
                    let event = sys::perf_kprobe_open(pmu, at, false, prog.as_fd()).ok()?;
                    Some(Held {
                        _link: None,
                        _event: Some(event),
                        _prog: None,
                    })
                }
                _ => {
                    let prog = load(Kind::Fentry, counters, *id).ok()?;
                    let link = sys::raw_tracepoint_open(prog.as_fd(), None).ok()?;
                    Some(Held {
                        _link: Some(link),
                        _event: None,
                        _prog: Some(prog),
                    })
                }
            },
        );
    let attach = t0.elapsed();
    let held: Vec<Held> = held.into_iter().flatten().collect();
    let attached = held.len();
    let made = Snapshot::take()
        .map_err(Outcome::Fail)?
        .added_since(&before);
    let t1 = Instant::now();
    if p.via == Via::PerfLink {
        // Links first (each releases the program from its event), then the events.
        let (links, events): (Vec<_>, Vec<_>) = held
            .into_iter()
            .map(|h| (h._link, Held { _link: None, ..h }))
            .unzip();
        consume(p.detach, links);
        consume(p.detach, events);
    } else {
        consume(p.detach, held);
    }
    let detach = t1.elapsed();
    drop(kprobe_prog);
    if attached == 0 {
        return Err(Outcome::Fail(format!(
            "{}: nothing attached of {} functions",
            backend.name(),
            functions.len()
        )));
    }
    wait_until_gone(&made, Duration::from_secs(60))
        .map_err(|e| Outcome::Fail(format!("after detach: {e}")))?;
    Ok(Measured {
        attached,
        attach,
        detach,
    })
}

fn load(kind: Kind, counters: &OwnedFd, btf_id: u32) -> Result<OwnedFd, Outcome> {
    let spec = match kind {
        Kind::Fentry => LoadSpec {
            prog_type: counters::PROG_TYPE_TRACING,
            expected_attach_type: counters::ATTACH_TRACE_FENTRY,
            attach_btf_id: btf_id,
        },
        _ => LoadSpec {
            prog_type: counters::PROG_TYPE_KPROBE,
            ..LoadSpec::default()
        },
    };
    let insns = counters::counter_program(counters.as_raw_fd(), kind.slot());
    counters::load_program("pwt_lab", spec, &insns).map_err(|e| Outcome::Fail(e.to_string()))
}

/// `work` on each item, the items split in `threads` contiguous parts; results in order.
fn on_threads<T: Sync, R: Send>(
    threads: usize,
    pin: bool,
    items: &[T],
    work: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let part = items.len().div_ceil(threads.max(1)).max(1);
    let work = &work;
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(part)
            .map(|c| {
                s.spawn(move || {
                    // Best effort: unpinned, the round measures the default placement.
                    if pin {
                        let _ = sys::process::pin_thread_to_cpu(0);
                    }
                    c.iter().map(work).collect::<Vec<R>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

/// Drops every item, split over `threads` threads.
fn consume<T: Send>(threads: usize, items: Vec<T>) {
    let part = items.len().div_ceil(threads.max(1)).max(1);
    let mut parts = Vec::new();
    let mut rest = items.into_iter();
    loop {
        let p: Vec<T> = rest.by_ref().take(part).collect();
        if p.is_empty() {
            break;
        }
        parts.push(p);
    }
    std::thread::scope(|s| {
        for p in parts {
            s.spawn(move || drop(p));
        }
    });
}

/// Whether PERF_EVENT_IOC_DISABLE on a perf kprobe stops its program: a kprobe on getppid(2)'s
/// entry counts 20 calls, then 20 more after the ioctl.
fn disable_stops_program(ctx: &mut Ctx) -> Result<String, Outcome> {
    const FUNCTION: &str = "__x64_sys_getppid";
    const CALLS: u64 = 20;
    let counters = counters::create_counter_map(SLOTS).map_err(|e| Outcome::Fail(e.to_string()))?;
    let prog = load(Kind::Kprobe, &counters, 0)?;
    let event = counters::attach_kprobe(&prog, FUNCTION, false)
        .map_err(|e| Outcome::Fail(e.to_string()))?;
    let count = || {
        counters::read_counter(&counters, Kind::Kprobe.slot())
            .map_err(|e| Outcome::Fail(e.to_string()))
    };
    let calls = || {
        for _ in 0..CALLS {
            std::hint::black_box(std::os::unix::process::parent_id());
        }
    };
    calls();
    let enabled = count()?;
    sys::perf_event_disable(event.as_fd()).map_err(|e| Outcome::Fail(format!("disable: {e}")))?;
    calls();
    let after = count()? - enabled;
    ctx.report
        .metric("lab.kprobe.runs_while_enabled", enabled as f64);
    ctx.report
        .metric("lab.kprobe.runs_after_disable", after as f64);
    if enabled < CALLS {
        return Err(Outcome::Fail(format!(
            "the kprobe on {FUNCTION} counted {enabled} of {CALLS} calls"
        )));
    }
    Ok(format!(
        "{CALLS} getppid calls: {enabled} runs enabled, {after} after PERF_EVENT_IOC_DISABLE"
    ))
}
