//! Trivial programs of every attach kind, loaded and attached for real.
//!
//! Each program counts its hits in its own slot of one shared array map, so a single burst
//! of traffic tells which kinds fired.

use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use crate::counters::{self, LoadSpec, SysError};
use crate::kernel_btf::KernelBtf;

/// The attach kinds a backend can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `kprobe/<fn>` through a perf kprobe event.
    Kprobe,
    /// `kretprobe/<fn>` through a perf kprobe event.
    Kretprobe,
    /// `kprobe.multi`: one BPF link for many functions (needs CONFIG_FPROBE).
    KprobeMulti,
    /// `fentry/<fn>` through a BPF trampoline.
    Fentry,
    /// `fexit/<fn>` through a BPF trampoline.
    Fexit,
    /// `tp_btf/<tracepoint>`: a BTF-typed raw tracepoint.
    TpBtf,
}

impl Kind {
    /// The section-style name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Kprobe => "kprobe",
            Kind::Kretprobe => "kretprobe",
            Kind::KprobeMulti => "kprobe.multi",
            Kind::Fentry => "fentry",
            Kind::Fexit => "fexit",
            Kind::TpBtf => "tp_btf",
        }
    }

    /// Its counter slot in the shared map.
    pub fn slot(self) -> u32 {
        self as u32
    }
}

/// Number of counter slots (one per [`Kind`]).
pub const SLOTS: u32 = 6;

/// A loaded and attached probe; dropping it detaches and unloads.
pub struct Attached {
    /// What it is.
    pub kind: Kind,
    /// What it is attached to.
    pub target: String,
    /// Time spent in load.
    pub load: Duration,
    /// Time spent in attach.
    pub attach: Duration,
    _link: OwnedFd,
    _prog: OwnedFd,
}

/// Why an attach did not happen.
pub enum AttachError {
    /// The kernel lacks the feature (a fact about this kernel, not a failure).
    Unsupported(String),
    /// The kernel has the feature but refused or failed the request.
    Failed(String),
}

impl AttachError {
    fn from_sys(e: SysError) -> Self {
        if e.is_unsupported() {
            AttachError::Unsupported(e.to_string())
        } else {
            AttachError::Failed(e.to_string())
        }
    }

    /// The message, whichever the variant.
    pub fn message(&self) -> &str {
        match self {
            AttachError::Unsupported(m) | AttachError::Failed(m) => m,
        }
    }
}

/// Loads a counting program of `kind` and attaches it to `target` (a function name, or a
/// tracepoint name for [`Kind::TpBtf`]).
pub fn attach(
    kind: Kind,
    target: &str,
    counters: &OwnedFd,
    btf: &mut KernelBtf,
) -> Result<Attached, AttachError> {
    let spec = match kind {
        Kind::Kprobe | Kind::Kretprobe => LoadSpec {
            prog_type: counters::PROG_TYPE_KPROBE,
            ..LoadSpec::default()
        },
        Kind::KprobeMulti => LoadSpec {
            prog_type: counters::PROG_TYPE_KPROBE,
            expected_attach_type: counters::ATTACH_TRACE_KPROBE_MULTI,
            ..LoadSpec::default()
        },
        Kind::Fentry | Kind::Fexit => LoadSpec {
            prog_type: counters::PROG_TYPE_TRACING,
            expected_attach_type: if kind == Kind::Fentry {
                counters::ATTACH_TRACE_FENTRY
            } else {
                counters::ATTACH_TRACE_FEXIT
            },
            attach_btf_id: btf.func_id(target).map_err(AttachError::Failed)?,
        },
        Kind::TpBtf => LoadSpec {
            prog_type: counters::PROG_TYPE_TRACING,
            expected_attach_type: counters::ATTACH_TRACE_RAW_TP,
            attach_btf_id: btf.tracepoint_id(target).map_err(AttachError::Failed)?,
        },
    };
    let insns = counters::counter_program(counters.as_raw_fd(), kind.slot());
    let t0 = Instant::now();
    let prog = counters::load_program(&format!("pwt_{}", kind.slot()), spec, &insns)
        .map_err(AttachError::from_sys)?;
    let load = t0.elapsed();
    let t1 = Instant::now();
    let link = match kind {
        Kind::Kprobe => counters::attach_kprobe(&prog, target, false),
        Kind::Kretprobe => counters::attach_kprobe(&prog, target, true),
        Kind::KprobeMulti => counters::attach_kprobe_multi(&prog, &[target], false),
        Kind::Fentry | Kind::Fexit | Kind::TpBtf => {
            counters::attach_tracing(&prog, &format!("{} {target}", kind.name()))
        }
    }
    .map_err(|e| {
        // a missing kprobe PMU means the kernel was built without kprobe events
        if matches!(kind, Kind::Kprobe | Kind::Kretprobe)
            && e.err.kind() == std::io::ErrorKind::Unsupported
        {
            AttachError::Unsupported(e.to_string())
        } else {
            AttachError::from_sys(e)
        }
    })?;
    Ok(Attached {
        kind,
        target: target.to_string(),
        load,
        attach: t1.elapsed(),
        _link: link,
        _prog: prog,
    })
}
