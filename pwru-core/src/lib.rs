//! pwru-core: where does my packet go inside the Linux kernel?
//!
//! A [`Tracer`] attaches eBPF programs to the kernel functions and tracepoints that handle a
//! `struct sk_buff`, keeps only the packets that match a tcpdump-style filter (compiled to eBPF
//! and run in the kernel), and hands every hit to you as a typed event in an async stream.
#![deny(missing_docs)]

pub mod btf;
mod builder;
pub mod discovery;
pub mod error;
pub mod event;
pub mod format;
pub mod limits;
pub mod loader;
pub mod netlab;
pub mod netns;
pub mod options;
pub mod privileges;
pub mod session;
mod stream;
pub mod symbols;
pub mod tracer;

pub use error::Error;
pub use event::Event;
pub use options::{Backend, Capture, KernelModules, MarkFilter, Options};
pub use pwru_filter::ProbeAccess;
pub use session::{Events, Progress, RunOutcomes, Session, Stats};
pub use tracer::{Refusal, Target, Tracer, TracerBuilder};

/// The README's code, compiled and run as doctests so it cannot go stale.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
