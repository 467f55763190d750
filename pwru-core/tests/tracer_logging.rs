//! pwru-core logs through the `log` facade: a logger installed by the application sees the
//! backend refusals, the attach progress and the attach summary at debug level (on the host,
//! where the automatic backend choice refuses the kprobe and fentry backends).

mod tracer_common;

use std::sync::Mutex;

use log::{Level, LevelFilter, Log, Metadata, Record};
use pwru_core::{Backend, Tracer};
use tracer_common::skip_unless_root;

/// Keeps every record from pwru-core.
struct Recorder(Mutex<Vec<(Level, String, String)>>);

impl Log for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn log(&self, r: &Record<'_>) {
        if r.target().starts_with("pwru_core") {
            let mut v = self.0.lock().unwrap_or_else(|e| e.into_inner());
            v.push((r.level(), r.target().to_string(), r.args().to_string()));
        }
    }
    fn flush(&self) {}
}

static RECORDER: Recorder = Recorder(Mutex::new(Vec::new()));

#[test]
fn attach_logs_refusals_and_progress_at_debug_level() {
    let name = "attach_logs_refusals_and_progress_at_debug_level";
    if skip_unless_root(name) {
        return;
    }
    log::set_logger(&RECORDER).expect("first logger of this test binary");
    log::set_max_level(LevelFilter::Trace);

    let tracer = Tracer::builder()
        .backend(Backend::Auto)
        .pcap_filter("udp and dst port 7003 and host 192.0.2.1")
        .build()
        .expect("build");
    let backend_refusals = tracer.backend_refusals().to_vec();
    let session = tracer.attach().expect("attach");
    let records = RECORDER.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for (level, target, msg) in &records {
        println!("{level:<5} {target}: {msg}");
    }
    let debug_has = |needle: &str| {
        records
            .iter()
            .any(|(l, _, m)| *l == Level::Debug && m.contains(needle))
    };
    // Every backend the automatic choice refused is logged, with the reason it was given.
    println!(
        "{} backends refused before {}",
        backend_refusals.len(),
        session.backend()
    );
    for (b, why) in &backend_refusals {
        assert!(
            debug_has(&format!("backend {b} refused: {why}")),
            "backend refusal {b} not logged: {why}"
        );
    }
    let backend = session.backend().to_string();
    assert!(
        debug_has(&format!("backend {backend} chosen")),
        "choice not logged"
    );
    assert!(debug_has("attaching "), "attach start not logged");
    assert!(debug_has("attach progress: "), "attach progress not logged");
    assert!(
        debug_has(&format!(
            "attached {} targets with the {backend} backend, {} refused",
            session.attached().len(),
            session.refused().len()
        )),
        "attach summary not logged"
    );
    for r in session.refused() {
        assert!(
            debug_has(&format!("refused {}: {}", r.target, r.reason)),
            "refusal of {} not logged",
            r.target
        );
    }
    // Nothing of this is worth more than debug: a working attach warns about nothing.
    assert!(
        records.iter().all(|(l, _, _)| *l >= Level::Debug),
        "records above debug level in a working attach"
    );
}
