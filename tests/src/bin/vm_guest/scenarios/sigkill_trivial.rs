//! `sigkill-trivial`: a process holding the backend's programs is SIGKILLed; the kernel must
//! drop every program, map, link and kprobe it made.
//!
//! This proves the method (and the oracle, which must first see the objects appear) with the
//! trivial programs; `sigkill-cleanup` will do the same with the pwru-core Tracer.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::backend::{Backend, MatrixBackend};
use crate::kernel_state::{self, Snapshot};
use crate::registry::Ctx;
use crate::report::Outcome;

/// The hidden command line flag that makes `vm_guest` a holder (see [`hold`]).
pub const HOLD_FLAG: &str = "--hold";

/// Runs in the child: attach the backend's trivial programs, say `READY`, wait to be killed.
pub fn hold(backend: Backend) -> ! {
    let mut btf = crate::kernel_btf::KernelBtf::default();
    let counters = match crate::counters::create_counter_map(crate::probes::SLOTS) {
        Ok(m) => m,
        Err(e) => {
            println!("ERROR {e}");
            std::process::exit(1);
        }
    };
    let mut held = Vec::new();
    for &kind in backend.kinds() {
        match crate::probes::attach(kind, backend.trivial_target(), &counters, &mut btf) {
            Ok(a) => held.push(a),
            Err(e) => {
                println!("ERROR {}: {}", kind.name(), e.message());
                std::process::exit(1);
            }
        }
    }
    println!("READY");
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// Spawns a holder, snapshots, SIGKILLs it, and waits for its objects to disappear.
pub fn run(ctx: &mut Ctx, backend: Backend) -> Outcome {
    kill_holder(ctx, backend, HOLD_FLAG, "sigkill_gone_ms")
}

/// Runs `vm_guest <hold_flag> <backend>` (a holder that prints `READY` once its objects are in
/// the kernel), SIGKILLs it, and waits until everything it made is gone; the time that took is
/// reported as metric `<metric>.<backend>`.
pub fn kill_holder(ctx: &mut Ctx, backend: Backend, hold_flag: &str, metric: &str) -> Outcome {
    let before = match Snapshot::take() {
        Ok(s) => s,
        Err(e) => return Outcome::Fail(e),
    };
    let mut child = match Command::new("/proc/self/exe")
        .args([hold_flag, backend.name()])
        .stdout(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return Outcome::Fail(format!("cannot start the holder: {e}")),
    };
    let Some(stdout) = child.stdout.take() else {
        return Outcome::Fail("holder has no stdout".into());
    };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(120))
        .unwrap_or_default();
    let made = Snapshot::take().map(|now| now.added_since(&before));
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
    if line.trim() != "READY" {
        return Outcome::Fail(format!("holder did not get ready: {}", line.trim()));
    }
    let made = match made {
        Ok(m) if m.is_empty() => {
            return Outcome::Fail("the snapshot saw nothing the holder attached".into())
        }
        Ok(m) => m,
        Err(e) => return Outcome::Fail(e),
    };
    match kernel_state::wait_until_gone(&made, Duration::from_secs(10)) {
        Ok(t) => {
            ctx.report.metric(
                &format!("{metric}.{}", backend.name()),
                t.as_secs_f64() * 1e3,
            );
            Outcome::Pass(format!(
                "{} made, all gone {} ms after SIGKILL",
                made.summary(),
                t.as_millis()
            ))
        }
        Err(e) => Outcome::Fail(format!("{} made; {e}", made.summary())),
    }
}
