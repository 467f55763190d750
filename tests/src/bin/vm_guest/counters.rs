//! The guest's trivial counting programs and their map, loaded and attached through
//! pwru-core's syscall layer (`pwru_core::sys`).
//!
//! The capability checks load and attach hand-assembled programs directly, so that a refusal
//! comes straight from the kernel (no loader in between can hide or reinterpret it), and so
//! that `kprobe.multi`, which aya 0.14 cannot load, goes through the same code as the rest.
//! Every failure keeps the operation it came from ([`SysError`]).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, OwnedFd, RawFd};

use aya_obj::generated::bpf_insn;
use pwru_core::sys::{self, insn};

pub use pwru_core::sys::{
    ObjectKind, ATTACH_TRACE_FENTRY, ATTACH_TRACE_FEXIT, ATTACH_TRACE_KPROBE_MULTI,
    ATTACH_TRACE_RAW_TP, ENOTSUPP, PROG_TYPE_KPROBE, PROG_TYPE_SOCKET_FILTER, PROG_TYPE_TRACING,
};

/// A program that adds 1 to slot `slot` of the u64 array map `map_fd` and returns 0.
/// It ignores its context, so the same instructions are valid for every tracing kind.
pub fn counter_program(map_fd: RawFd, slot: u32) -> Vec<bpf_insn> {
    vec![
        insn(0x62, 10, 0, -4, slot as i32), // *(u32 *)(r10 - 4) = slot
        insn(0x18, 1, 1, 0, map_fd),        // r1 = map (ld_imm64, BPF_PSEUDO_MAP_FD)
        insn(0, 0, 0, 0, 0),
        insn(0xbf, 2, 10, 0, 0), // r2 = r10
        insn(0x07, 2, 0, 0, -4), // r2 += -4
        insn(0x85, 0, 0, 0, 1),  // call bpf_map_lookup_elem
        insn(0x15, 0, 0, 2, 0),  // if r0 == 0 goto +2
        insn(0xb7, 1, 0, 0, 1),  // r1 = 1
        insn(0xdb, 0, 1, 0, 0),  // lock *(u64 *)(r0 + 0) += r1
        insn(0xb7, 0, 0, 0, 0),  // r0 = 0
        insn(0x95, 0, 0, 0, 0),  // exit
    ]
}

/// `r0 = 0; exit`: the smallest program, used for the load-time baseline.
pub fn return_zero_program() -> Vec<bpf_insn> {
    sys::trivial_program().to_vec()
}

/// A syscall failure with the operation that failed, kept as an `io::Error` for its errno.
#[derive(Debug)]
pub struct SysError {
    /// What was being done, e.g. `BPF_LINK_CREATE(kprobe.multi ip_rcv)`.
    pub op: String,
    /// The kernel's answer.
    pub err: io::Error,
    /// The verifier log, when a program load failed.
    pub log: String,
}

impl SysError {
    fn new(op: impl Into<String>, err: io::Error) -> Self {
        SysError {
            op: op.into(),
            err,
            log: String::new(),
        }
    }

    /// The raw errno (0 if none).
    pub fn errno(&self) -> i32 {
        self.err.raw_os_error().unwrap_or(0)
    }

    /// True when the kernel says the feature does not exist (as opposed to a broken request).
    pub fn is_unsupported(&self) -> bool {
        matches!(self.errno(), libc::EOPNOTSUPP | ENOTSUPP | libc::ENOSYS)
    }
}

impl std::fmt::Display for SysError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self.errno() {
            ENOTSUPP => "ENOTSUPP (524)".to_string(),
            _ => self.err.to_string(),
        };
        write!(f, "{}: {}", self.op, name)?;
        if !self.log.is_empty() {
            let tail: String = self
                .log
                .lines()
                .rev()
                .take(2)
                .collect::<Vec<_>>()
                .join(" | ");
            write!(f, " (verifier: {tail})")?;
        }
        Ok(())
    }
}

/// Creates a u64 array map with `entries` slots.
pub fn create_counter_map(entries: u32) -> Result<OwnedFd, SysError> {
    sys::map_create(&sys::MapCreate {
        map_type: sys::MAP_TYPE_ARRAY,
        key_size: 4,
        value_size: 8,
        max_entries: entries,
        name: "pwt_counters",
    })
    .map_err(|e| SysError::new("BPF_MAP_CREATE(array)", e))
}

/// Reads slot `slot` of a u64 array map.
pub fn read_counter(map: &OwnedFd, slot: u32) -> Result<u64, SysError> {
    let mut value = [0u8; 8];
    sys::map_lookup_elem(map.as_fd(), &slot.to_ne_bytes(), &mut value)
        .map_err(|e| SysError::new("BPF_MAP_LOOKUP_ELEM", e))?;
    Ok(u64::from_ne_bytes(value))
}

/// What to load: program type, expected attach type and BTF target.
#[derive(Clone, Copy, Debug, Default)]
pub struct LoadSpec {
    /// `bpf_prog_type`.
    pub prog_type: u32,
    /// `expected_attach_type` (0 when the type has none).
    pub expected_attach_type: u32,
    /// Kernel BTF id of the attach target (fentry/fexit/tp_btf), else 0.
    pub attach_btf_id: u32,
}

/// Loads `insns`; on failure the error carries the verifier log of a second, logged load.
pub fn load_program(name: &str, spec: LoadSpec, insns: &[bpf_insn]) -> Result<OwnedFd, SysError> {
    sys::prog_load(&sys::ProgLoad {
        prog_type: spec.prog_type,
        expected_attach_type: spec.expected_attach_type,
        insns,
        name,
        attach_btf_id: spec.attach_btf_id,
        attach_prog_fd: None,
    })
    .map_err(|r| SysError {
        op: format!("BPF_PROG_LOAD({name})"),
        err: r.error,
        log: r.log.trim().to_string(),
    })
}

/// Attaches a fentry/fexit/tp_btf program to the target it was loaded for.
pub fn attach_tracing(prog: &OwnedFd, what: &str) -> Result<OwnedFd, SysError> {
    sys::raw_tracepoint_open(prog.as_fd(), None)
        .map_err(|e| SysError::new(format!("BPF_RAW_TRACEPOINT_OPEN({what})"), e))
}

/// Attaches a kprobe program loaded with `BPF_TRACE_KPROBE_MULTI` to the functions `syms`.
pub fn attach_kprobe_multi(
    prog: &OwnedFd,
    syms: &[&str],
    retprobe: bool,
) -> Result<OwnedFd, SysError> {
    let names: Vec<CString> = syms.iter().filter_map(|s| CString::new(*s).ok()).collect();
    sys::link_kprobe_multi_with(prog.as_fd(), &names, retprobe).map_err(|e| {
        SysError::new(
            format!("BPF_LINK_CREATE(kprobe.multi {})", syms.join(",")),
            e,
        )
    })
}

/// Creates a perf kprobe (or kretprobe) on `func` and runs `prog` on it. The returned fd owns
/// the probe: closing it removes the kprobe. A kernel without the kprobe PMU gives an error of
/// kind `Unsupported`.
pub fn attach_kprobe(prog: &OwnedFd, func: &str, retprobe: bool) -> Result<OwnedFd, SysError> {
    let pmu = sys::KprobePmu::from_sysfs().map_err(|e| {
        SysError::new(
            "read /sys/bus/event_source/devices/kprobe/type",
            io::Error::new(io::ErrorKind::Unsupported, e),
        )
    })?;
    let name = CString::new(func).map_err(|e| {
        SysError::new(
            format!("kprobe name {func}"),
            io::Error::new(io::ErrorKind::InvalidInput, e),
        )
    })?;
    let what = format!(
        "perf_event_open({} {func})",
        if retprobe { "kretprobe" } else { "kprobe" }
    );
    sys::perf_kprobe_open(&pmu, sys::KprobeAt::Symbol(&name), retprobe, prog.as_fd())
        .map_err(|e| SysError::new(what, e))
}

/// Ids of every object of `kind` in the kernel (all of them, not only this process's).
pub fn object_ids(kind: ObjectKind) -> Result<Vec<u32>, SysError> {
    sys::object_ids(kind).map_err(|e| SysError::new(format!("BPF_{kind:?}_GET_NEXT_ID"), e))
}
