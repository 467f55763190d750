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
    /// Preparing the object: waiting for aya's copy of the kernel BTF (parsed on a thread
    /// since `build()`), parsing the object, splicing the filter in, creating the maps and
    /// relocating against the kernel BTF.
    pub load: Duration,
    /// The part of [`Timings::load`] spent waiting for aya's parse of the kernel BTF (started
    /// by `build()` on its own thread; CO-RE relocation needs it).
    pub btf_wait: Duration,
    /// Loading the programs into the kernel (the verifier), summed over the threads doing it.
    pub verify: Duration,
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
