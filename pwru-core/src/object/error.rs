//! Errors of loading and attaching programs ([`LoaderError`]). Each message says what failed and what to do about it.

use std::io;

use thiserror::Error;

use super::SpliceError;

/// Errors of the [`Loader`](crate::object::Loader), the backends and their feature probes.
#[derive(Debug, Error)]
pub enum LoaderError {
    /// Splicing the filter failed.
    #[error(transparent)]
    Splice(#[from] SpliceError),
    /// aya-obj could not prepare a program for a raw load.
    #[error("preparing program `{program}` failed: {reason}")]
    Prepare {
        /// Program name in the object.
        program: String,
        /// What went wrong.
        reason: String,
    },
    /// aya could not parse the kernel's BTF.
    #[error("aya could not parse the kernel BTF: {0}; the kernel needs CONFIG_DEBUG_INFO_BTF (/sys/kernel/btf/vmlinux), or give a BTF file of this kernel")]
    Btf(Box<aya::BtfError>),
    /// The kernel's BTF could not be read.
    #[error(transparent)]
    KernelBtf(Box<crate::btf::BtfError>),
    /// The object has no program of that name.
    #[error(
        "the BPF object has no program `{0}`; use pwru_ebpf::OBJECT and the names it documents"
    )]
    NoProgram(String),
    /// The object has no map of that name, or it was already taken.
    #[error("map `{0}` is missing or was already taken from this loader")]
    NoMap(String),
    /// The argument position is outside 1..=5.
    #[error("skb argument position {0} is out of range; use 1 to 5")]
    BadPosition(u8),
    /// The kernel refused to load a program: the verifier log says why.
    #[error("the kernel refused to load `{program}` ({error}); {}", describe_log(.log))]
    Verifier {
        /// Program name.
        program: String,
        /// errno of BPF_PROG_LOAD.
        error: io::Error,
        /// The verifier's log (may be empty when the refusal came before verification).
        log: String,
    },
    /// Attaching failed.
    #[error("attaching `{program}` to `{target}` failed: {error}; check that the target exists and is traceable (available_filter_functions)")]
    Attach {
        /// Program name.
        program: String,
        /// The function, tracepoint or BPF program.
        target: String,
        /// The kernel's errno.
        error: io::Error,
    },
    /// A kernel function has no BTF description, so fentry/tp_btf cannot target it.
    #[error("`{0}` is not in the kernel BTF; it cannot be traced with fentry or tp_btf")]
    NotInBtf(String),
    /// A traced BPF program could not be inspected.
    #[error("BPF program id {id}: {reason}")]
    BpfProg {
        /// Program id.
        id: u32,
        /// What went wrong.
        reason: String,
    },
    /// A map operation failed.
    #[error("map `{name}`: {source}")]
    Map {
        /// Map name.
        name: String,
        /// aya's error.
        #[source]
        source: Box<aya::maps::MapError>,
    },
}

impl From<aya::BtfError> for LoaderError {
    fn from(e: aya::BtfError) -> Self {
        LoaderError::Btf(Box::new(e))
    }
}

/// The verifier log for a message; an empty log means the kernel refused before verifying
/// (program type, attach point or lockdown), which is worth saying instead of printing nothing.
fn describe_log(log: &str) -> String {
    if log.trim().is_empty() {
        "no verifier log: the kernel refused before verifying (this program type or attach \
         point is not allowed here, e.g. fentry disabled or blocked by lockdown); use another \
         backend"
            .to_string()
    } else {
        format!("verifier log:\n{log}")
    }
}
