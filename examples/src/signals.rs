//! SIGINT/SIGTERM for the example programs: one listener for the whole run.
//!
//! [`Signals::install`] blocks both signals in the calling thread (so in every thread started
//! after it, including the library's) and starts one thread that takes them with `sigwait`.
//! Nothing is ever re-armed, so no signal can fall between two waits.
//!
//! While the program is in a blocking phase (building the tracer, where libpcap may compile
//! for a long time and cannot be interrupted, or attaching), a signal ends the process at once
//! with a one-line message and status 128 + signal number. Once [`Signals::deliver`] is called,
//! signals are queued for the event loop instead, which reads them with [`Signals::recv`].

use std::io::{self, Write};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::sys;

/// What the program is doing, for the message when a signal ends a blocking phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// Parsing arguments, compiling filters, discovering functions: nothing is attached yet.
    Building = 0,
    /// Attaching probes.
    Attaching = 1,
    /// The event loop runs: signals are delivered to [`Signals::recv`].
    Running = 2,
}

/// Run just before the process exits on a signal in a blocking phase (e.g. to remove the
/// demo's namespaces).
type Cleanup = Box<dyn FnOnce() + Send>;

struct Shared {
    phase: AtomicU8,
    cleanups: Mutex<Vec<Cleanup>>,
}

/// The program's one SIGINT/SIGTERM listener.
pub struct Signals {
    shared: Arc<Shared>,
    rx: mpsc::UnboundedReceiver<i32>,
}

/// Exit status for a process stopped by `signal`, as shells report it (130 for SIGINT).
pub fn exit_status(signal: i32) -> i32 {
    128 + signal
}

/// The signal's name, for messages.
pub fn name(signal: i32) -> &'static str {
    match signal {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        _ => "signal",
    }
}

impl Signals {
    /// Blocks SIGINT and SIGTERM and starts the listener thread. Call it first thing in
    /// `main`, before any other thread exists, so that every later thread inherits the mask.
    /// `program` prefixes the message printed when a signal ends a blocking phase.
    pub fn install(program: &'static str) -> io::Result<Signals> {
        sys::block_signals(&sys::interrupt_signals())?;
        let shared = Arc::new(Shared {
            phase: AtomicU8::new(Phase::Building as u8),
            cleanups: Mutex::new(Vec::new()),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let listener = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || listen(program, &listener, &tx))?;
        Ok(Signals { shared, rx })
    }

    /// Records what the program is doing now (for the message if a signal ends it).
    pub fn set_phase(&self, phase: Phase) {
        self.shared.phase.store(phase as u8, Ordering::SeqCst);
    }

    /// From now on signals are queued for [`Signals::recv`] instead of ending the process.
    /// Call it before telling anyone the program is ready.
    pub fn deliver(&self) {
        self.set_phase(Phase::Running);
    }

    /// Adds work to do before exiting on a signal in a blocking phase.
    pub fn on_exit(&self, f: impl FnOnce() + Send + 'static) {
        if let Ok(mut c) = self.shared.cleanups.lock() {
            c.push(Box::new(f));
        }
    }

    /// The next signal (its number). Cancel-safe: a signal is never lost by a `select!` that
    /// picks another branch.
    pub async fn recv(&mut self) -> i32 {
        match self.rx.recv().await {
            Some(s) => s,
            // The listener thread never ends; if it did, no signal can arrive any more.
            None => std::future::pending().await,
        }
    }

    /// A signal that already arrived, if any (never waits).
    pub fn try_recv(&mut self) -> Option<i32> {
        self.rx.try_recv().ok()
    }
}

fn listen(program: &str, shared: &Shared, tx: &mpsc::UnboundedSender<i32>) {
    let set = sys::interrupt_signals();
    loop {
        // The signals are blocked in this thread (inherited from the thread that called
        // install), as sigwait requires.
        let Ok(sig) = sys::wait_signal(&set) else {
            continue;
        };
        let phase = shared.phase.load(Ordering::SeqCst);
        if phase == Phase::Running as u8 {
            // The loop owns the receiver for the whole run; a send fails only after it ended.
            let _ = tx.send(sig);
            continue;
        }
        let doing = if phase == Phase::Attaching as u8 {
            // Every probe is an fd-based link: the kernel detaches it when the process exits
            // and its fds close, so exiting here leaves nothing attached.
            "while attaching; exiting (the kernel removes the probes attached so far)"
        } else {
            "before anything was attached (while building the tracer); exiting"
        };
        let _ = writeln!(io::stderr(), "\n{program}: {} {doing}", name(sig));
        if let Ok(mut c) = shared.cleanups.lock() {
            for f in c.drain(..) {
                f();
            }
        }
        // The main thread may be inside libpcap or the kernel: leave without unwinding it.
        sys::exit_now(exit_status(sig));
    }
}
