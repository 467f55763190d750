//! `vm_guest`: the test program that runs inside the distro kernels booted by `tests/vm/matrix.sh`.
//!
//! It probes which backends the kernel supports, runs every registered scenario on every
//! backend, and prints one protocol line per fact (see `report.rs`). It also runs outside a VM
//! (as root) for development: `vm_guest --backend tracepoint`.
//!
//! ```text
//! vm_guest [--scenario NAME[,NAME...]] [--backend NAME[,NAME...]] [--slow] [--list]
//! ```
//! Exit status: 0 when no result failed, 1 otherwise, 2 on bad arguments.

mod backend;
mod caps;
mod counters;
mod kernel_btf;
mod kernel_state;
mod log_capture;
mod net;
mod probes;
mod registry;
mod report;
mod scenarios;

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::Instant;

use backend::Backend;
use registry::{Applies, Ctx, Selection};
use report::Reporter;

fn parse_args() -> Result<Option<Selection>, String> {
    let mut sel = Selection {
        scenarios: Vec::new(),
        backends: Vec::new(),
        slow: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            scenarios::sigkill_trivial::HOLD_FLAG => {
                let b = args.next().and_then(|b| backend::parse(&b));
                scenarios::sigkill_trivial::hold(b.ok_or("--hold needs a backend")?);
            }
            scenarios::sigkill_cleanup::HOLD_TRACER_FLAG => {
                let b = args.next().and_then(|b| backend::parse(&b));
                scenarios::sigkill_cleanup::hold(b.ok_or("--hold-tracer needs a backend")?);
            }
            "--scenario" | "--backend" => {
                let v = args.next().ok_or(format!("{a} needs a value"))?;
                for item in v.split(',').filter(|s| !s.is_empty()) {
                    if a == "--backend" {
                        let known: Vec<&str> = backend::ALL.iter().map(|b| b.name()).collect();
                        sel.backends.push(backend::parse(item).ok_or(format!(
                            "unknown backend {item}; known: {}",
                            known.join(" ")
                        ))?);
                    } else if scenarios::ALL.iter().any(|s| s.name == item) {
                        sel.scenarios.push(item.to_string());
                    } else {
                        return Err(format!("unknown scenario {item}; see --list"));
                    }
                }
            }
            "--slow" => sel.slow = true,
            "--list" => {
                for s in scenarios::ALL {
                    let on = match s.applies {
                        Applies::Once => "-".to_string(),
                        Applies::Backends(b) => {
                            b.iter().map(|b| b.name()).collect::<Vec<_>>().join(",")
                        }
                    };
                    println!("{:<18} {:<38} {}", s.name, on, s.about);
                }
                return Ok(None);
            }
            // the kernel passes its own leftovers (e.g. from the boot loader) to init
            other if other.contains('=') => {}
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Some(sel))
}

fn main() -> ExitCode {
    let nofile = pwru_core::limits::raise_open_file_limit().map_err(|e| e.to_string());
    let sel = match parse_args() {
        Ok(Some(s)) => s,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vm_guest: {e}");
            return ExitCode::from(2);
        }
    };
    log_capture::install();
    let t0 = Instant::now();
    let mut ctx = Ctx {
        report: Reporter::new(),
        btf: Default::default(),
        caps: HashMap::new(),
        baseline_load_ms: f64::NAN,
        slow: sel.slow,
        named: sel.scenarios.clone(),
    };
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    ctx.report.info(&format!("kernel {}", release.trim()));
    match nofile {
        Ok(n) => ctx.report.info(&format!("open-file limit raised to {n}")),
        Err(e) => ctx
            .report
            .info(&format!("cannot raise the open-file limit: {e}")),
    }

    match caps::baseline_load_ms() {
        Ok(ms) => {
            ctx.baseline_load_ms = ms;
            ctx.report.metric("baseline_load_ms", ms);
        }
        Err(e) => ctx
            .report
            .result("-", "baseline", &report::Outcome::Fail(e)),
    }
    let backends: Vec<Backend> = backend::ALL
        .into_iter()
        .filter(|b| sel.wants_backend(*b))
        .collect();
    caps::probe_all(&mut ctx, &backends);
    registry::run_all(&mut ctx, scenarios::ALL, &sel);

    ctx.report
        .metric("guest_total_ms", t0.elapsed().as_secs_f64() * 1e3);
    ctx.report.done();
    if ctx.report.failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
