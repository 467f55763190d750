//! The backends: how each program type is loaded and attached. One file per backend
//! (kprobe.rs, kprobe_multi.rs, fentry.rs, tracepoint.rs), each implementing [`Driver`]: its
//! real feature probe, the kind of its programs (for the kfunc-cast probe), the attach loop
//! over the targets, the programs for functions without an skb argument, and its skb tracking
//! and lifetime programs. Detaching is dropping the [`Link`]s (link.rs, [`detach_all`] on
//! several threads). hot_path.rs orders the targets (the functions most packets cross
//! first); parallel.rs runs attaches and detaches on the threads asked for. bpf_prog.rs traces
//! loaded tc/XDP programs by id; probe.rs holds the trivial-program load every probe shares.

mod bpf_prog;
mod fentry;
mod hot_path;
mod kind;
mod kprobe;
mod kprobe_multi;
mod link;
mod map_ops;
mod parallel;
mod probe;
mod target;
mod tracepoint;

use crate::btf::Btf;
use crate::object::Loader;

pub use crate::object::{LoaderError, ProgramStats, SpliceError};
pub(crate) use bpf_prog::trace_bpf_programs;
pub use fentry::Fentry;
pub(crate) use hot_path::{hot_first, hot_len};
pub use kind::{Backend, UnknownBackend};
pub use kprobe::Kprobe;
pub(crate) use kprobe_multi::programs_ahead as programs_ahead_kprobe_multi;
pub use kprobe_multi::KprobeMulti;
pub use link::{
    detach_all, detach_all_keeping_programs, enable_stats, DetachedProgram, Link, DETACH_THREADS,
};
pub use probe::{probe_kfunc_cast, probe_kfunc_cast_with, ProgramKind};
pub use target::{Refusal, Target};
pub use tracepoint::{Tracepoint, TracepointFlavor};

/// The outcome of attaching to one target: its name and the link or the reason it failed.
pub type Attached = (String, Result<Link, LoaderError>);

/// What an attach round produced: the links, the names of the targets attached, and the
/// targets refused with the kernel's reason.
#[derive(Debug, Default)]
pub struct Attachments {
    /// Every link made (dropping one detaches it).
    pub links: Vec<Link>,
    /// Names of the targets attached.
    pub attached: Vec<String>,
    /// Targets refused, each with its reason.
    pub refused: Vec<Refusal>,
}

impl Attachments {
    /// Files one target's attach result: its link and name, or its refusal with the reason.
    pub fn record(&mut self, target: String, result: Result<Link, LoaderError>) {
        match result {
            Ok(l) => {
                self.links.push(l);
                self.attached.push(target);
            }
            Err(e) => self.refuse(target, &e),
        }
    }

    /// Files `target` as refused for `reason`.
    pub fn refuse(&mut self, target: String, reason: &LoaderError) {
        self.refused.push(Refusal {
            target,
            reason: reason.to_string(),
        });
    }

    /// Files every one of `targets` as refused for the same `reason`.
    pub fn refuse_all<'a>(
        &mut self,
        targets: impl IntoIterator<Item = &'a str>,
        reason: &LoaderError,
    ) {
        let reason = reason.to_string();
        self.refused.extend(targets.into_iter().map(|t| Refusal {
            target: t.to_string(),
            reason: reason.clone(),
        }));
    }
}

/// One backend: what the tracer needs from each way of attaching. Each implementation is a
/// small value (the tracepoint one carries its flavour); [`driver`] gives the one of a
/// [`Backend`].
pub trait Driver: std::fmt::Debug + Sync {
    /// The public identity of this backend.
    fn backend(&self) -> Backend;

    /// A short name for messages and test skips: `kprobe-multi`, `kprobe`, `fentry`, `tp_btf`
    /// or `raw_tp` (the backend's name unless a flavour says more).
    fn name(&self) -> &'static str {
        self.backend().name()
    }

    /// Whether [`Driver::probe`] and [`Driver::program_kind`] need the kernel BTF (an attach
    /// BTF id).
    fn needs_kernel_btf(&self) -> bool {
        false
    }

    /// Whether this backend's skb programs get the skb as a plain number (kprobe,
    /// kprobe.multi, raw_tp) rather than as a BTF-typed pointer (fentry, tp_btf). The former
    /// copy the skb's header fields out with a helper call before filtering, unless the filter
    /// body reads them itself (its skb entry, `PWRU_CFG_FILTER_PCAP_SKB`).
    fn skb_is_untyped(&self) -> bool;

    /// Program type, expected attach type, attach BTF id and a name of this backend's
    /// programs, as the feature probes load them.
    fn program_kind(&self, kernel: Option<&Btf>) -> Result<ProgramKind, String>;

    /// Loads and attaches a trivial program of this backend's kind; `Err` carries the
    /// kernel's refusal (e.g. "loading a fentry program was refused: Operation not
    /// permitted"). Needs root (CAP_BPF + CAP_PERFMON).
    fn probe(&self, kernel: Option<&Btf>) -> Result<(), String>;

    /// Attaches the event programs to every target, calling `progress` with the number of
    /// targets handled so far and the last one. Refusals are filed in `out`; `Err` only when
    /// going on is pointless (the program itself was refused).
    fn attach(
        &self,
        loader: &mut Loader,
        targets: &[Target],
        progress: &mut dyn FnMut(usize, &str),
        out: &mut Attachments,
    ) -> Result<(), LoaderError>;

    /// Attaches the stack-link program to each function without an skb argument; refusals
    /// are filed, not fatal.
    fn attach_non_skb(&self, loader: &mut Loader, names: &[String], out: &mut Attachments);

    /// Attaches the map operation programs to each map function (`bpf_map_ops`); refusals are
    /// filed, not fatal. Backends that cannot trace functions (tracepoints) refuse each.
    fn attach_map_ops(
        &self,
        loader: &mut Loader,
        targets: &[crate::discovery::map_ops::MapOpTarget],
        out: &mut Attachments,
    ) {
        let _ = loader;
        out.refused.extend(targets.iter().map(|t| Refusal {
            target: t.name.clone(),
            reason: format!("the {} backend cannot trace kernel functions", self.name()),
        }));
    }

    /// Programs that end per-skb state (tracking, stack links, packet ids) when an skb or its
    /// data buffer is freed, and with `track_clones` also follow clones and copies; see
    /// [`Loader::load_tracking`]. `traced` names the event targets attached: a traced free
    /// tracepoint forgets by itself and needs no second program.
    fn lifetime_programs(
        &self,
        loader: &mut Loader,
        track_clones: bool,
        traced: &[String],
    ) -> Vec<Attached>;
}

/// The driver of `backend` (tracepoints in `flavor`); `None` for [`Backend::Auto`], which is
/// a choice among backends, not one.
pub fn driver(backend: Backend, flavor: TracepointFlavor) -> Option<&'static dyn Driver> {
    Some(match backend {
        Backend::KprobeMulti => &KprobeMulti,
        Backend::Kprobe => &Kprobe,
        Backend::Fentry => &Fentry,
        Backend::Tracepoint => match flavor {
            TracepointFlavor::Btf => &Tracepoint::BTF,
            TracepointFlavor::Raw => &Tracepoint::RAW,
        },
        Backend::Auto => return None,
    })
}

/// The running kernel's BTF when `driver`'s probes need a BTF id (tp_btf, fentry).
fn running_kernel_btf(driver: &dyn Driver) -> Result<Option<Btf>, String> {
    if driver.needs_kernel_btf() {
        Btf::vmlinux()
            .map(Some)
            .map_err(|e| format!("no kernel BTF: {e}"))
    } else {
        Ok(None)
    }
}

/// [`Driver::probe`] with the running kernel's BTF read when the backend needs it.
pub fn probe(driver: &dyn Driver) -> Result<(), String> {
    let btf = running_kernel_btf(driver)?;
    driver.probe(btf.as_ref())
}

/// The skb argument position must be 1..=5 (the entry programs exist for those).
fn check_position(position: u8) -> Result<(), LoaderError> {
    if (1..=5).contains(&position) {
        Ok(())
    } else {
        Err(LoaderError::BadPosition(position))
    }
}

fn is_verifier(e: &LoaderError) -> bool {
    matches!(e, LoaderError::Verifier { .. })
}

impl Loader {
    /// Programs that follow clones/copies and end tracking when an skb or its data buffer is
    /// freed (with `PWRU_CFG_TRACK_SKB`): addresses are forgotten at `kfree_skbmem`, heads at
    /// `skb_free_head` (where the last data reference goes, while `skb->head` still names
    /// the buffer). fentry/fexit programs for [`Backend::Fentry`], kprobes and kretprobes for
    /// the kprobe backends; for [`Backend::Tracepoint`] the programs that forget at the
    /// kfree_skb and consume_skb tracepoints (as if neither were traced); [`Backend::Auto`]
    /// gets none.
    pub fn load_tracking(&mut self, backend: Backend) -> Vec<Attached> {
        match driver(backend, TracepointFlavor::Btf) {
            Some(d) => d.lifetime_programs(self, true, &[]),
            None => Vec::new(),
        }
    }

    /// Only the program that forgets a freed skb's address and stack link (`kfree_skbmem`):
    /// what stack links of functions without an skb argument need when skbs are not tracked.
    pub fn load_lifetime(&mut self, backend: Backend) -> Vec<Attached> {
        match driver(backend, TracepointFlavor::Btf) {
            Some(d) => d.lifetime_programs(self, false, &[]),
            None => Vec::new(),
        }
    }
}
