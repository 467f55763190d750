//! The capability probe: can each backend load and attach a trivial program on this kernel?
//!
//! Run before any scenario; its answer gates every backend scenario, and its own row in the
//! table (`capability`) states the fact with the kernel's answer.

use std::time::Instant;

use crate::backend::{Backend, MatrixBackend};
use crate::counters;
use crate::probes::{self, AttachError, SLOTS};
use crate::registry::{Capability, Ctx};
use crate::report::Outcome;

/// Probes `backend`: attaches every kind it uses to its trivial target, then detaches.
pub fn probe(ctx: &mut Ctx, backend: Backend) -> Capability {
    let counters = match counters::create_counter_map(SLOTS) {
        Ok(m) => m,
        Err(e) => return Capability::Broken(e.to_string()),
    };
    let mut attached = Vec::new();
    for &kind in backend.kinds() {
        match probes::attach(kind, backend.trivial_target(), &counters, &mut ctx.btf) {
            Ok(a) => attached.push(a),
            Err(AttachError::Unsupported(m)) => return Capability::Unsupported(m),
            Err(AttachError::Failed(m)) => return Capability::Broken(m),
        }
    }
    for a in &attached {
        let name = a.kind.name();
        ctx.report
            .metric(&format!("load_ms.{name}"), a.load.as_secs_f64() * 1e3);
        ctx.report
            .metric(&format!("attach_ms.{name}"), a.attach.as_secs_f64() * 1e3);
    }
    let t0 = Instant::now();
    drop(attached);
    ctx.report.metric(
        &format!("detach_ms.{}", backend.name()),
        t0.elapsed().as_secs_f64() * 1e3,
    );
    Capability::Supported
}

/// Probes every selected backend, records the answers in `ctx.caps` and reports them.
pub fn probe_all(ctx: &mut Ctx, backends: &[Backend]) {
    for &b in backends {
        let cap = probe(ctx, b);
        let kinds: Vec<&str> = b.kinds().iter().map(|k| k.name()).collect();
        let outcome = match &cap {
            Capability::Supported => Outcome::Pass(format!(
                "{} load+attach on {}",
                kinds.join("+"),
                b.trivial_target()
            )),
            Capability::Unsupported(m) => Outcome::unsupported(m),
            Capability::Broken(m) => Outcome::Fail(m.clone()),
        };
        ctx.report.result(b.name(), "capability", &outcome);
        ctx.caps.insert(b, cap);
    }
}

/// Median load time of the smallest socket filter, in ms: the yardstick that makes timings
/// from different (emulated) runs comparable.
pub fn baseline_load_ms() -> Result<f64, String> {
    let insns = counters::return_zero_program();
    let spec = counters::LoadSpec {
        prog_type: counters::PROG_TYPE_SOCKET_FILTER,
        ..Default::default()
    };
    let mut times = Vec::new();
    for _ in 0..15 {
        let t0 = Instant::now();
        let fd = counters::load_program("pwt_baseline", spec, &insns).map_err(|e| e.to_string())?;
        times.push(t0.elapsed().as_secs_f64() * 1e3);
        drop(fd);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}
