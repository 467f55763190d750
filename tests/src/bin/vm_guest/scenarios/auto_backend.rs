//! `auto-backend`: `Backend::Auto` picks the first backend (kprobe-multi, kprobe, fentry,
//! tracepoint) that the guest's own raw capability probe found working, and the backends it
//! skipped carry the tracer's own probe answer.

use pwru_core::Tracer;

use crate::backend::Backend;
use crate::registry::{Capability, Ctx};
use crate::report::Outcome;

use super::tracer_kit::RX_TX;

/// Builds an Auto tracer and compares its choice with the capability rows.
pub fn run(ctx: &mut Ctx, _: Backend) -> Outcome {
    let expected = crate::backend::ALL
        .into_iter()
        .find(|b| matches!(ctx.caps.get(b), Some(Capability::Supported)));
    let Some(expected) = expected else {
        return Outcome::Skip("no backend passed the capability probe".into());
    };
    let tracer = match Tracer::builder().function_regex(RX_TX).build() {
        Ok(t) => t,
        Err(e) => return Outcome::Fail(format!("build with Auto: {e}")),
    };
    ctx.report
        .metric("auto_build_ms", tracer.build_time().as_secs_f64() * 1e3);
    let refused: Vec<String> = tracer
        .backend_refusals()
        .iter()
        .map(|(b, why)| format!("{b} refused by the tracer's probe ({why})"))
        .collect();
    // every backend tried before the chosen one must be one the raw probe found unsupported
    let wrongly_refused: Vec<String> = tracer
        .backend_refusals()
        .iter()
        .filter(|(b, _)| {
            crate::backend::ALL
                .into_iter()
                .any(|g| g == *b && matches!(ctx.caps.get(&g), Some(Capability::Supported)))
        })
        .map(|(b, _)| b.to_string())
        .collect();
    let chosen = tracer.backend();
    if chosen != expected || !wrongly_refused.is_empty() {
        return Outcome::Fail(format!(
            "Auto chose {chosen}, the capability probe says {}; refused: [{}]",
            expected.name(),
            refused.join("; ")
        ));
    }
    let skipped = if refused.is_empty() {
        "nothing refused".to_string()
    } else {
        refused.join("; ")
    };
    Outcome::Pass(format!("Auto chose {chosen}; {skipped}"))
}
