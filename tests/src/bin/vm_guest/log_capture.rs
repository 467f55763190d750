//! Some of pwru-core's debug log, kept in memory so that a scenario can check what the
//! library decided where its public API does not say (how kprobe.multi linked its functions,
//! the wall and CPU time of the jobs that start a session).
//! Only the records of [`TARGETS`] are formatted and kept, at most [`MAX_LINES`] of them; the
//! guest prints none.

use std::sync::Mutex;

use log::{LevelFilter, Log, Metadata, Record};

/// The modules whose records are kept.
const TARGETS: &[&str] = &[
    "pwru_core::backend::kprobe_multi",
    "pwru_core::timings",
    "pwru_core::discovery::tracefs",
];
/// Lines kept until the next [`take`].
const MAX_LINES: usize = 10_000;

static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

static CAPTURE: Capture = Capture;

impl Log for Capture {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        TARGETS.contains(&metadata.target())
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        if let Ok(mut lines) = LINES.lock() {
            if lines.len() < MAX_LINES {
                lines.push(record.args().to_string());
            }
        }
    }

    fn flush(&self) {}
}

/// Installs the capture as the process's logger (debug level).
pub fn install() {
    if log::set_logger(&CAPTURE).is_ok() {
        log::set_max_level(LevelFilter::Debug);
    }
}

/// The lines kept since the last call.
pub fn take() -> Vec<String> {
    LINES
        .lock()
        .map(|mut l| std::mem::take(&mut *l))
        .unwrap_or_default()
}
