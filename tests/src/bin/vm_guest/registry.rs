//! The scenario registry and the runner that applies it to each backend.
//!
//! To add a scenario: write `fn(&mut Ctx, Backend) -> Outcome` in a module under
//! `scenarios/`, and add a [`Scenario`] entry to [`crate::scenarios::ALL`]. The runner calls it
//! once per backend it lists, and reports `skip unsupported: ...` by itself for backends that
//! this kernel lacks (found by the capability probe), so scenario code only ever runs where
//! its backend works.

use std::collections::HashMap;
use std::time::Instant;

use crate::backend::Backend;
use crate::kernel_btf::KernelBtf;
use crate::report::{Outcome, Reporter};

/// Which backends a scenario runs on.
pub enum Applies {
    /// Once per listed backend.
    Backends(&'static [Backend]),
    /// Once, independent of any backend (reported with backend `-`).
    Once,
}

/// One named scenario.
pub struct Scenario {
    /// Name in reports and for `--scenario` (no spaces).
    pub name: &'static str,
    /// What it proves, one line (shown by `--list`).
    pub about: &'static str,
    /// Backends it runs on.
    pub applies: Applies,
    /// Returns `Some(reason)` when the scenario cannot run on this backend for a reason
    /// other than the backend being unsupported (e.g. "needs the tracer"); `None` to run.
    pub precondition: fn(&Ctx, Backend) -> Option<String>,
    /// The scenario itself.
    pub run: fn(&mut Ctx, Backend) -> Outcome,
}

/// Whether a backend works on this kernel, found by loading and attaching a trivial program.
#[derive(Clone, Debug)]
pub enum Capability {
    /// Load and attach succeeded.
    Supported,
    /// The kernel lacks the feature; the reason quotes the kernel's answer.
    Unsupported(String),
    /// The kernel should have it but load or attach failed.
    Broken(String),
}

/// State shared by all scenarios of one run.
pub struct Ctx {
    /// Protocol output.
    pub report: Reporter,
    /// Kernel BTF, parsed on first use.
    pub btf: KernelBtf,
    /// Capability of each backend (filled before any scenario runs).
    pub caps: HashMap<Backend, Capability>,
    /// Mean load time of the smallest program (ms): divide TCG timings by it to compare kernels.
    pub baseline_load_ms: f64,
    /// Run the minutes-long scenarios too (full-attach with kprobe and fentry under TCG);
    /// set by `--slow`, which the matrix passes for one kernel by default.
    pub slow: bool,
    /// The scenarios named on the command line (empty: all): benchmarks run only when named.
    pub named: Vec<String>,
}

/// What to run (from the command line).
pub struct Selection {
    /// Only these scenarios (all if empty).
    pub scenarios: Vec<String>,
    /// Only these backends (all if empty).
    pub backends: Vec<Backend>,
    /// Also the slow scenarios (see [`Ctx::slow`]).
    pub slow: bool,
}

impl Selection {
    fn wants_scenario(&self, name: &str) -> bool {
        self.scenarios.is_empty() || self.scenarios.iter().any(|s| s == name)
    }

    /// True if `b` was selected.
    pub fn wants_backend(&self, b: Backend) -> bool {
        self.backends.is_empty() || self.backends.contains(&b)
    }
}

/// Runs every selected scenario on every selected backend and reports each result.
pub fn run_all(ctx: &mut Ctx, scenarios: &[Scenario], sel: &Selection) {
    for sc in scenarios.iter().filter(|s| sel.wants_scenario(s.name)) {
        let backends: Vec<Option<Backend>> = match sc.applies {
            Applies::Once => vec![None],
            Applies::Backends(list) => list
                .iter()
                .copied()
                .filter(|b| sel.wants_backend(*b))
                .map(Some)
                .collect(),
        };
        for b in backends {
            let label = b.map_or("-", Backend::name);
            // backend-independent scenarios get a placeholder they must not rely on
            let backend = b.unwrap_or(Backend::Tracepoint);
            let outcome = match b.and_then(|b| ctx.caps.get(&b).cloned()) {
                Some(Capability::Unsupported(why)) => Outcome::unsupported(why),
                // already reported as one failure in the capability row
                Some(Capability::Broken(_)) => {
                    Outcome::Skip("backend failed its capability probe (see capability row)".into())
                }
                _ => match (sc.precondition)(ctx, backend) {
                    Some(why) => Outcome::Skip(why),
                    None => {
                        let t0 = Instant::now();
                        let o = (sc.run)(ctx, backend);
                        let ms = t0.elapsed().as_secs_f64() * 1e3;
                        ctx.report
                            .metric(&format!("scenario_ms.{}.{label}", sc.name), ms);
                        o
                    }
                },
            };
            ctx.report.result(label, sc.name, &outcome);
        }
    }
}

/// A precondition that always lets the scenario run.
pub fn always(_: &Ctx, _: Backend) -> Option<String> {
    None
}
