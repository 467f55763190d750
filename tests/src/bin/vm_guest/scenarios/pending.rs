//! Placeholders for the scenarios that need the pwru-core `Tracer`.

use crate::backend::Backend;
use crate::registry::{Applies, Ctx, Scenario};
use crate::report::Outcome;

fn not_yet(_: &Ctx, _: Backend) -> Option<String> {
    Some("needs the pwru-core Tracer (scenario not written yet)".to_string())
}

fn unreachable_run(_: &mut Ctx, _: Backend) -> Outcome {
    Outcome::Fail("placeholder scenario ran; its precondition should have skipped it".into())
}

/// A registry entry that reports `skip` until the scenario is written.
pub const fn scenario(name: &'static str, about: &'static str, applies: Applies) -> Scenario {
    Scenario {
        name,
        about,
        applies,
        precondition: not_yet,
        run: unreachable_run,
    }
}
