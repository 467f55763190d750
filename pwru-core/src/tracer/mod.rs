//! [`Tracer`]: a checked plan (functions, filters, backend) ready to attach.
//!
//! [`TracerBuilder`] (builder.rs) collects the [`options`]; [`TracerBuilder::build`]
//! (build.rs) does every check that can fail because of the user's input or the kernel's
//! abilities (privileges, filters, regex, netns/interface, backend probes, discovery) without
//! changing anything in the kernel: it compiles the filters (filters.rs), turns the options
//! into the kernel-side config (config.rs) and picks the backend. [`Tracer::attach`]
//! (crate::session) then loads and attaches.

use std::time::Duration;

use pwru_ebpf::PwruConfig;
use pwru_filter::ProbeAccess;

use crate::backend::Driver;
pub use crate::backend::{Refusal, Target};
use crate::object::FilterBody;
use crate::timings::Timings;
pub use builder::TracerBuilder;
use options::{Backend, Options};

mod build;
mod builder;
mod config;
mod expressions;
mod filters;
pub mod options;

/// A checked plan: the functions or tracepoints to attach, the compiled filter, the backend.
///
/// Made by [`Tracer::builder`]`()...build()`; nothing is attached until [`Tracer::attach`].
#[derive(Debug)]
pub struct Tracer {
    pub(crate) options: Options,
    /// The chosen backend (tracepoints in their probed flavour).
    pub(crate) driver: &'static dyn Driver,
    pub(crate) backend_refusals: Vec<(Backend, String)>,
    pub(crate) targets: Vec<Target>,
    pub(crate) non_skb_targets: Vec<String>,
    /// Map functions traced for [`TracerBuilder::bpf_map_ops`].
    pub(crate) map_op_targets: Vec<crate::discovery::map_ops::MapOpTarget>,
    pub(crate) filter: FilterBody,
    pub(crate) filter_access: ProbeAccess,
    pub(crate) filter_access_note: Option<String>,
    pub(crate) config: PwruConfig,
    pub(crate) btf: std::sync::Arc<crate::btf::Btf>,
    pub(crate) timings: Timings,
    /// The object being parsed and CO-RE relocated (with aya's parse of the kernel BTF) since
    /// `build()`, or already being made into a loader (kprobe.multi).
    pub(crate) object: crate::object::ObjectJob,
    /// The kernel symbols being read since `build()`: every session needs the table, and
    /// kprobe.multi links by its addresses.
    pub(crate) symbols: Option<crate::symbols::SymbolsJob>,
}

impl Tracer {
    /// The kernel BTF when it is the running kernel's (not a file the caller named), which the
    /// symbol table may be read with (see [`KernelSymbols::load_with`](crate::symbols::KernelSymbols::load_with)).
    pub(crate) fn running_kernel_btf(&self) -> Option<&std::sync::Arc<crate::btf::Btf>> {
        self.options.kernel_btf.is_none().then_some(&self.btf)
    }

    /// Starts a builder with pwru's defaults.
    ///
    /// ```no_run
    /// let tracer = pwru_core::Tracer::builder().pcap_filter("icmp").build()?;
    /// println!("{} targets with {}", tracer.targets().len(), tracer.backend());
    /// # Ok::<(), pwru_core::Error>(())
    /// ```
    pub fn builder() -> TracerBuilder {
        TracerBuilder::new()
    }

    /// The backend that will be used (never [`Backend::Auto`]).
    pub fn backend(&self) -> Backend {
        self.driver.backend()
    }

    /// Backends tried before the chosen one and why the kernel refused each.
    pub fn backend_refusals(&self) -> &[(Backend, String)] {
        &self.backend_refusals
    }

    /// How the in-kernel filter reads packet bytes: [`ProbeAccess::Cast`] (a plain load per
    /// byte through the kfunc `bpf_rdonly_cast`, Linux 6.2+) when the chosen backend's programs
    /// accept it, else [`ProbeAccess::Helper`] (one `bpf_probe_read_kernel` per packet,
    /// ≈ 25 ns more per filtered packet); see [`Tracer::filter_access_note`] for why not cast.
    pub fn filter_access(&self) -> ProbeAccess {
        self.filter_access
    }

    /// Why the filter reads through the helper instead of the kfunc cast (`None` when it
    /// casts).
    pub fn filter_access_note(&self) -> Option<&str> {
        self.filter_access_note.as_deref()
    }

    /// The functions or tracepoints that [`Tracer::attach`] will attach to.
    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// Functions without an skb argument that [`Tracer::attach`] will attach to (linked to
    /// packets by the stack they run on; see [`TracerBuilder::non_skb_functions`]).
    pub fn non_skb_targets(&self) -> &[String] {
        &self.non_skb_targets
    }

    /// The kernel map functions [`Tracer::attach`] will trace for
    /// [`TracerBuilder::bpf_map_ops`] (those the loaded tc/XDP programs call; empty without
    /// the option or when no such program does map operations).
    pub fn map_op_functions(&self) -> impl Iterator<Item = &str> {
        self.map_op_targets.iter().map(|t| t.name.as_str())
    }

    /// The options this tracer was built from.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// How long `build()` took (discovery, compilation, probes).
    pub fn build_time(&self) -> Duration {
        self.timings.build
    }

    /// How long each phase of `build()` took (BTF, backend choice, filter compilation,
    /// discovery); the attach phases are zero here and filled in
    /// [`Session::timings`](crate::Session::timings).
    pub fn timings(&self) -> Timings {
        self.timings
    }
}
