//! [`Timings`]: where the time from `build()` to an attached session went, phase by phase,
//! so that a slow start can be explained (the `pwru` example prints it with `--debug`).

use std::time::Duration;

/// How long each phase of starting to trace took. [`Tracer::timings`](crate::Tracer::timings)
/// has the phases of `build()` filled in; [`Session::timings`](crate::Session::timings) adds
/// those of `attach()`. Phases not run (e.g. no filter) stay zero. Some phases run at the
/// same time ([`Timings::discovery`] alongside [`Timings::backend_choice`], the kernel
/// symbols alongside the attach), so they need not add up: [`Timings::build`] and
/// [`Timings::attach_total`] are the whole calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timings {
    /// Compiling the pcap expressions to classic BPF (libpcap) and checking options.
    pub filter_compile: Duration,
    /// Reading and parsing the kernel BTF.
    pub btf: Duration,
    /// Choosing the backend: each candidate's probe loads and attaches a trivial program.
    pub backend_choice: Duration,
    /// Translating the filters to eBPF.
    pub filter_translate: Duration,
    /// Finding the functions (or tracepoints) that take an skb (on its own thread, while the
    /// backend is chosen).
    pub discovery: Duration,
    /// The whole of `build()`.
    pub build: Duration,
    /// Preparing the object: waiting for its parse and CO-RE relocation against the kernel
    /// BTF (both on a thread since `build()`), splicing the filter in, creating the maps and
    /// relocating map references and calls. With kprobe.multi on every function `build()`
    /// does all of that on a thread, and verifies the event programs there too: this is then
    /// what is left of that thread's work when `attach()` begins.
    pub load: Duration,
    /// The part of [`Timings::load`] spent waiting for aya's parse of the kernel BTF and the
    /// object's CO-RE relocation against it (started by `build()` on its own thread); zero
    /// when `build()` made the loader.
    pub btf_wait: Duration,
    /// Loading the programs into the kernel (the verifier) during `attach()`, summed over the
    /// threads doing it.
    pub verify: Duration,
    /// Loading programs into the kernel on the thread `build()` starts to make the loader
    /// (kprobe.multi on every function, see [`Timings::load`]), summed over its threads:
    /// verification that overlapped `build()` instead of delaying `attach()`.
    pub verified_ahead: Duration,
    /// Attaching the programs to their targets: the wall time of that phase less
    /// [`Timings::verify`] (backends that load a program per target do it in this phase; when
    /// several threads load, `verify` is their sum and this reads low).
    pub attach: Duration,
    /// The part of [`Timings::attach`] spent waiting for the kernel symbol table (read on a
    /// thread since `attach()` began), which kprobe.multi links by; zero for the other
    /// backends.
    pub symbols_wait: Duration,
    /// What follows the attach: the kernel symbols (waiting for the thread reading them since
    /// `attach()` began), drop reason names, clocks, the ring buffer's waker.
    pub session: Duration,
    /// The whole of `attach()`.
    pub attach_total: Duration,
}

/// Wall and CPU time of work on one thread, for the debug log: under emulation the start of a
/// session is bound by CPU, so where the CPU goes matters more than the wall time of each job.
pub(crate) struct ThreadClock {
    wall: std::time::Instant,
    cpu_ns: i128,
}

impl ThreadClock {
    /// Starts timing the calling thread (no clock is read unless debug logging is on).
    pub(crate) fn start() -> ThreadClock {
        let on = log::log_enabled!(log::Level::Debug);
        ThreadClock {
            wall: std::time::Instant::now(),
            cpu_ns: if on { thread_cpu_ns() } else { 0 },
        }
    }

    /// Logs (debug) `what` took so long, in wall time and in the calling thread's CPU time
    /// (kernel time in its system calls included).
    pub(crate) fn log(&self, what: &str) {
        if !log::log_enabled!(log::Level::Debug) {
            return;
        }
        let cpu = (thread_cpu_ns() - self.cpu_ns) as f64 / 1e6;
        log::debug!(
            "{what}: {:.1} ms, {cpu:.1} ms of CPU on its thread",
            self.wall.elapsed().as_secs_f64() * 1e3
        );
    }
}

fn thread_cpu_ns() -> i128 {
    crate::sys::clock::now_ns(libc::CLOCK_THREAD_CPUTIME_ID).unwrap_or(0)
}
