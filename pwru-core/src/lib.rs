//! pwru-core: where does my packet go inside the Linux kernel?
//!
//! A [`Tracer`] attaches eBPF programs to the kernel functions and tracepoints that handle a
//! `struct sk_buff`, keeps only the packets that match a tcpdump-style filter (compiled to eBPF
//! and run in the kernel), and hands every hit to you as a typed event in an async stream.
//!
//! # Quick start
//!
//! ```toml
//! [dependencies]
//! pwru-core = "0.1"
//! futures = "0.3"
//! ```
//!
//! ```no_run
//! use futures::StreamExt;
//! use pwru_core::{Item, Tracer};
//!
//! fn main() -> Result<(), pwru_core::Error> {
//!     let tracer = Tracer::builder().pcap_filter("udp port 53").build()?; // checks, attaches nothing
//!     let session = tracer.attach()?;                          // loads + attaches (blocks)
//!     let mut stream = session.into_stream().take(20);         // owns the session: 'static + Send
//!     futures::executor::block_on(async {
//!         while let Some(item) = stream.next().await {
//!             match item {
//!                 Ok(Item::Event(ev)) => println!("{:#x} {} {:?}", ev.skb, ev.function, ev.drop_reason),
//!                 Ok(Item::Lost(lost)) => eprintln!("{lost}"), // "12 events lost (ring buffer full; ...)"
//!                 Ok(_) => {}                                  // Item is non_exhaustive
//!                 Err(e) if !e.is_fatal() => eprintln!("{e}"), // a corrupt record
//!                 Err(e) => return Err(e),
//!             }
//!         }
//!         Ok(())
//!     })
//! } // dropping the stream drops the session: detaches everything
//! ```
//!
//! The stream is runtime-agnostic: it works under tokio as under `futures::executor`. Under
//! tokio, move the owned stream ([`Session::into_stream`]) into `tokio::spawn`, read counters
//! from any task with a [`StatsHandle`] and end the stream with a [`StopHandle`]; run the
//! blocking calls (build, attach, dropping the session) in `spawn_blocking`, as the
//! [`Tracer::attach`] example shows.
//!
//! # System requirements
//!
//! - **Linux on x86_64** with BTF (`/sys/kernel/btf/vmlinux`, CONFIG_DEBUG_INFO_BTF), BPF ring
//!   buffers (5.8+).
//! - **One backend the kernel accepts** ([`Backend::Auto`] tries them in this order):
//!   `kprobe-multi` needs CONFIG_FPROBE (5.18+); `kprobe` needs CONFIG_KPROBES; `fentry` needs
//!   BPF trampolines (5.5+) not refused by lockdown or an LSM; `tracepoint` needs BTF
//!   tracepoints (5.5+) or raw tracepoints and traces only the kernel's skb tracepoints.
//! - **Capabilities**: CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN) to load and attach;
//!   CAP_NET_ADMIN for tc/XDP tracing and network namespaces; kernel addresses in
//!   `/proc/kallsyms` for function names (CAP_SYSLOG, or `kernel.kptr_restrict`).
//!   [`TracerBuilder::build`] checks these before anything is loaded.
//! - **libpcap** (`libpcap.so`, Debian: `libpcap0.8`) at run time to compile pcap filters, and
//!   its development files (`libpcap-dev`) to build.
//! - **No C toolchain**: the kernel programs ship compiled inside `pwru-ebpf`.
//!
//! # Cargo features
//!
//! - `serde`: `Serialize` on [`Event`] and its parts.
//! - `unstable`: makes the internals public (backends, loader, syscall layer, BTF reader,
//!   discovery, ...) for pwru-rs's own tests, benchmarks and VM guest. They carry no semver
//!   promise; other crates should not enable it.
#![deny(missing_docs)]

pub mod error;
pub mod event;
mod fnv;
pub mod format;
pub mod series;
pub mod session;
mod stream;
pub mod timings;
pub mod tracer;

/// The options of a tracer (the same module as [`tracer::options`]).
pub use tracer::options;

// Internals (the loader, the syscall layer, the BTF reader, ...) are public only with the
// `unstable` feature: tests, benches and the VM guest use them, outside pwru-core's semver
// promise. Written out per module rather than by a macro so that rustfmt formats them (it
// does not follow modules declared inside a macro call).
#[cfg(feature = "unstable")]
pub mod backend;
#[cfg(not(feature = "unstable"))]
#[allow(dead_code, unused_imports)]
mod backend;
#[cfg(feature = "unstable")]
pub mod btf;
#[cfg(not(feature = "unstable"))]
#[allow(dead_code, unused_imports)]
mod btf;
#[cfg(feature = "unstable")]
pub mod discovery;
#[cfg(not(feature = "unstable"))]
#[allow(dead_code, unused_imports)]
mod discovery;
#[cfg(feature = "unstable")]
pub mod limits;
#[cfg(not(feature = "unstable"))]
#[allow(dead_code, unused_imports)]
mod limits;
#[cfg(feature = "unstable")]
pub mod netns;
#[cfg(not(feature = "unstable"))]
#[allow(dead_code, unused_imports)]
mod netns;
#[cfg(feature = "unstable")]
pub mod netns_names;
#[cfg(not(feature = "unstable"))]
#[allow(dead_code, unused_imports)]
mod netns_names;
#[cfg(feature = "unstable")]
pub mod object;
#[cfg(not(feature = "unstable"))]
#[allow(dead_code, unused_imports)]
mod object;
#[cfg(feature = "unstable")]
pub mod privileges;
#[cfg(not(feature = "unstable"))]
#[allow(dead_code, unused_imports)]
mod privileges;
#[cfg(feature = "unstable")]
pub mod symbols;
#[cfg(not(feature = "unstable"))]
#[allow(dead_code, unused_imports)]
mod symbols;
#[cfg(feature = "unstable")]
pub mod sys;
#[cfg(not(feature = "unstable"))]
#[allow(dead_code, unused_imports)]
mod sys;

pub use error::Error;
pub use event::Event;
pub use options::{Backend, Capture, KernelModules, MarkFilter, Options};
pub use privileges::{Capability, MissingPrivileges};
pub use pwru_filter::ProbeAccess;
pub use session::{
    AttachHandle, AttachOutcome, EventStream, Events, Item, LostEvents, Progress, RunOutcomes,
    Session, Stats, StatsHandle, StopHandle,
};
pub use timings::Timings;
pub use tracer::{Refusal, Target, Tracer, TracerBuilder};

/// The README's code, compiled and run as doctests so it cannot go stale.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
