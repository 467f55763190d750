//! What every backend's feature probe shares: the trivial program loaded as the backend's
//! program kind (the kernel's refusal, if any, becomes the reason), the functions and the
//! tracepoint the probes attach to, and the kfunc-cast probe that decides how filters read
//! packet bytes.

use std::os::fd::{AsFd, OwnedFd};

use super::Driver;
use crate::btf::Btf;
use crate::sys;

/// Functions a trivial probe attaches to: exported, traceable, present for years.
pub(super) const PROBE_FUNCS: &[&str] = &["consume_skb", "kfree_skbmem", "ip_rcv"];
/// The tracepoint a trivial probe attaches to.
pub(super) const PROBE_TRACEPOINT: &str = "netif_receive_skb";

/// How a backend's programs are loaded: what BPF_PROG_LOAD is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgramKind {
    /// `BPF_PROG_TYPE_*`.
    pub prog_type: u32,
    /// Expected attach type (`BPF_TRACE_*`, or 0).
    pub attach_type: u32,
    /// BTF id of the attach target (tp_btf, fentry), or 0.
    pub attach_btf_id: u32,
    /// A name for messages: `kprobe`, `kprobe.multi`, `fentry`, `tp_btf`, `raw_tp`.
    pub name: &'static str,
}

/// The kernel BTF a probe needs for an attach id.
pub(super) fn require_btf(btf: Option<&Btf>) -> Result<&Btf, String> {
    btf.ok_or_else(|| "no kernel BTF was given to the probe".to_string())
}

fn refused(what: &str, r: sys::LoadRefused) -> String {
    let first = r.log.lines().last().unwrap_or("").trim().to_string();
    if first.is_empty() {
        format!("{what}: {}", r.error)
    } else {
        format!("{what}: {} ({first})", r.error)
    }
}

/// Loads the trivial program (`r0 = 0; exit`) as `kind`; the probe then attaches it.
pub(super) fn load_trivial(kind: &ProgramKind) -> Result<OwnedFd, String> {
    let insns = sys::trivial_program();
    sys::prog_load(&sys::ProgLoad {
        prog_type: kind.prog_type,
        expected_attach_type: kind.attach_type,
        insns: &insns,
        name: "pwru_probe",
        attach_btf_id: kind.attach_btf_id,
        attach_prog_fd: None,
    })
    .map_err(|r| refused(&format!("loading a {} program was refused", kind.name), r))
}

/// Probes a tracing program kind (fentry, tp_btf) whose attach target is in its BTF id: loads
/// the trivial program and links it.
pub(super) fn load_and_link_tracing(kind: &ProgramKind) -> Result<(), String> {
    let prog = load_trivial(kind)?;
    sys::raw_tracepoint_open(prog.as_fd(), None)
        .map(drop)
        .map_err(|e| format!("attaching a {} program failed: {e}", kind.name))
}

/// Loads (without attaching) a small program of `driver`'s kind that reads one byte through
/// the kfunc `bpf_rdonly_cast`, as pwru-filter's [`pwru_filter::ProbeAccess::Cast`] code does.
/// `Ok` means filters of that scheme load in this backend's programs; `Err` carries the
/// kernel's refusal (kernels before 6.2 lack the kfunc; some refuse kfuncs in KPROBE programs).
///
/// tp_btf and fentry probes need the running kernel's BTF: this reads it;
/// [`probe_kfunc_cast_with`] takes it already parsed.
pub fn probe_kfunc_cast(driver: &dyn Driver, ids: pwru_filter::CastIds) -> Result<(), String> {
    let btf = super::running_kernel_btf(driver)?;
    probe_kfunc_cast_with(driver, ids, btf.as_ref())
}

/// [`probe_kfunc_cast`] with the kernel BTF already parsed (`None` is fine for raw_tp, kprobe
/// and kprobe.multi, which need no BTF id).
pub fn probe_kfunc_cast_with(
    driver: &dyn Driver,
    ids: pwru_filter::CastIds,
    btf: Option<&Btf>,
) -> Result<(), String> {
    use pwru_filter::{insn::op, Insn};
    let code = [
        Insn::mov64_imm(1, 0),
        Insn::mov64_imm(2, ids.target as i32),
        Insn::call_kfunc(ids.rdonly_cast as i32),
        Insn::load(op::B, 0, 0, 0),
        Insn::mov64_imm(0, 0),
        Insn::exit(),
    ];
    let insns = sys::insns_from(&code);
    let kind = driver.program_kind(btf)?;
    sys::prog_load(&sys::ProgLoad {
        prog_type: kind.prog_type,
        expected_attach_type: kind.attach_type,
        insns: &insns,
        name: "pwru_probe_cast",
        attach_btf_id: kind.attach_btf_id,
        attach_prog_fd: None,
    })
    .map(drop)
    .map_err(|r| {
        refused(
            &format!(
                "a {} program reading through bpf_rdonly_cast was refused",
                kind.name
            ),
            r,
        )
    })
}
