//! Backend feature probes done for real: load a trivial program of the backend's type and
//! attach it; the kernel's refusal, if any, is returned as the reason.

use std::ffi::CString;
use std::os::fd::AsFd;

use crate::sys;
use crate::btf::{Btf, Kind};

/// A way of attaching that can be probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeBackend {
    /// kprobe.multi links (fprobe, 5.18+).
    KprobeMulti,
    /// kprobes through the perf kprobe PMU.
    Kprobe,
    /// fentry trampolines.
    Fentry,
    /// BTF tracepoints (tp_btf).
    TpBtf,
    /// Raw tracepoints.
    RawTp,
}

/// Functions a trivial probe attaches to: exported, traceable, present for years.
const PROBE_FUNCS: &[&str] = &["consume_skb", "kfree_skbmem", "ip_rcv"];
const PROBE_TRACEPOINT: &str = "netif_receive_skb";

fn refused(what: &str, r: sys::LoadRefused) -> String {
    let first = r.log.lines().last().unwrap_or("").trim().to_string();
    if first.is_empty() {
        format!("{what}: {}", r.error)
    } else {
        format!("{what}: {} ({first})", r.error)
    }
}

/// Loads (without attaching) a small program of `backend`'s kind that reads one byte through
/// the kfunc `bpf_rdonly_cast`, as pwru-filter's [`pwru_filter::ProbeAccess::Cast`] code does.
/// `Ok` means filters of that scheme load in this backend's programs; `Err` carries the
/// kernel's refusal (kernels before 6.2 lack the kfunc; some refuse kfuncs in KPROBE programs).
///
/// tp_btf and fentry probes need the running kernel's BTF: this reads it;
/// [`probe_kfunc_cast_with`] takes it already parsed.
pub fn probe_kfunc_cast(backend: ProbeBackend, ids: pwru_filter::CastIds) -> Result<(), String> {
    let btf = running_kernel_btf(backend)?;
    probe_kfunc_cast_with(backend, ids, btf.as_ref())
}

/// [`probe_kfunc_cast`] with the kernel BTF already parsed (`None` is fine for raw_tp, kprobe
/// and kprobe.multi, which need no BTF id).
pub fn probe_kfunc_cast_with(
    backend: ProbeBackend,
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
    let (prog_type, attach_type, attach_btf_id, what) = program_kind(backend, btf)?;
    sys::prog_load(&sys::ProgLoad {
        prog_type,
        expected_attach_type: attach_type,
        insns: &insns,
        name: "pwru_probe_cast",
        attach_btf_id,
        attach_prog_fd: None,
    })
    .map(drop)
    .map_err(|r| {
        refused(
            &format!("a {what} program reading through bpf_rdonly_cast was refused"),
            r,
        )
    })
}

/// The running kernel's BTF when `backend`'s probe needs a BTF id (tp_btf, fentry).
fn running_kernel_btf(backend: ProbeBackend) -> Result<Option<Btf>, String> {
    match backend {
        ProbeBackend::TpBtf | ProbeBackend::Fentry => Btf::vmlinux()
            .map(Some)
            .map_err(|e| format!("no kernel BTF: {e}")),
        _ => Ok(None),
    }
}

/// Program type, expected attach type, attach BTF id and a name for `backend`'s programs.
fn program_kind(
    backend: ProbeBackend,
    btf: Option<&Btf>,
) -> Result<(u32, u32, u32, &'static str), String> {
    Ok(match backend {
        ProbeBackend::RawTp => (sys::PROG_TYPE_RAW_TRACEPOINT, 0, 0, "raw_tp"),
        ProbeBackend::Kprobe => (sys::PROG_TYPE_KPROBE, 0, 0, "kprobe"),
        ProbeBackend::KprobeMulti => (
            sys::PROG_TYPE_KPROBE,
            sys::ATTACH_TRACE_KPROBE_MULTI,
            0,
            "kprobe.multi",
        ),
        ProbeBackend::TpBtf | ProbeBackend::Fentry => {
            let btf = btf.ok_or("no kernel BTF was given to the probe")?;
            if backend == ProbeBackend::TpBtf {
                let n = format!("btf_trace_{PROBE_TRACEPOINT}");
                let id = btf
                    .find_by_name(Kind::Typedef, &n)
                    .ok_or_else(|| format!("the kernel BTF has no {n}"))?
                    .0;
                (
                    sys::PROG_TYPE_TRACING,
                    sys::ATTACH_TRACE_RAW_TP,
                    id,
                    "tp_btf",
                )
            } else {
                let id = PROBE_FUNCS
                    .iter()
                    .find_map(|f| btf.find_by_name(Kind::Func, f))
                    .ok_or("none of the probe functions is in the kernel BTF")?
                    .0;
                (
                    sys::PROG_TYPE_TRACING,
                    sys::ATTACH_TRACE_FENTRY,
                    id,
                    "fentry",
                )
            }
        }
    })
}

/// Loads and attaches a trivial program of `backend`'s kind; `Err` carries the kernel's
/// refusal (e.g. "loading an fentry program was refused: Operation not permitted").
/// Needs root (CAP_BPF + CAP_PERFMON). tp_btf and fentry probes read the running kernel's
/// BTF; [`probe_backend_with`] takes it already parsed.
pub fn probe_backend(backend: ProbeBackend) -> Result<(), String> {
    let btf = running_kernel_btf(backend)?;
    probe_backend_with(backend, btf.as_ref())
}

/// [`probe_backend`] with the kernel BTF already parsed (`None` is fine for raw_tp, kprobe and
/// kprobe.multi, which need no BTF id).
pub fn probe_backend_with(backend: ProbeBackend, btf: Option<&Btf>) -> Result<(), String> {
    let insns = sys::trivial_program();
    let load = |prog_type, attach_type, attach_btf_id| {
        sys::prog_load(&sys::ProgLoad {
            prog_type,
            expected_attach_type: attach_type,
            insns: &insns,
            name: "pwru_probe",
            attach_btf_id,
            attach_prog_fd: None,
        })
    };
    match backend {
        ProbeBackend::RawTp => {
            let prog = load(sys::PROG_TYPE_RAW_TRACEPOINT, 0, 0)
                .map_err(|r| refused("loading a raw_tp program was refused", r))?;
            let name = CString::new(PROBE_TRACEPOINT).map_err(|e| e.to_string())?;
            sys::raw_tracepoint_open(prog.as_fd(), Some(&name))
                .map(drop)
                .map_err(|e| {
                    format!("attaching a raw_tp program to {PROBE_TRACEPOINT} failed: {e}")
                })
        }
        ProbeBackend::TpBtf | ProbeBackend::Fentry => {
            let (_, attach, id, what) = program_kind(backend, btf)?;
            let prog = load(sys::PROG_TYPE_TRACING, attach, id)
                .map_err(|r| refused(&format!("loading a {what} program was refused"), r))?;
            sys::raw_tracepoint_open(prog.as_fd(), None)
                .map(drop)
                .map_err(|e| format!("attaching a {what} program failed: {e}"))
        }
        ProbeBackend::Kprobe => {
            let pmu = std::fs::read_to_string("/sys/bus/event_source/devices/kprobe/type")
                .map_err(|_| {
                    "the kernel has no kprobe PMU (/sys/bus/event_source/devices/kprobe): built without CONFIG_KPROBES".to_string()
                })?;
            let pmu: u32 = pmu
                .trim()
                .parse()
                .map_err(|_| format!("unreadable kprobe PMU type {pmu:?}"))?;
            let prog = load(sys::PROG_TYPE_KPROBE, 0, 0)
                .map_err(|r| refused("loading a kprobe program was refused", r))?;
            let mut last = String::new();
            for f in PROBE_FUNCS {
                let name = CString::new(*f).map_err(|e| e.to_string())?;
                match sys::perf_kprobe_attach(pmu, &name, prog.as_fd()) {
                    Ok(_) => return Ok(()),
                    Err(e) => last = format!("attaching a kprobe to {f} failed: {e}"),
                }
            }
            Err(last)
        }
        ProbeBackend::KprobeMulti => {
            let prog = load(sys::PROG_TYPE_KPROBE, sys::ATTACH_TRACE_KPROBE_MULTI, 0)
                .map_err(|r| refused("loading a kprobe.multi program was refused", r))?;
            let mut last = String::new();
            for f in PROBE_FUNCS {
                let name = CString::new(*f).map_err(|e| e.to_string())?;
                match sys::link_kprobe_multi(prog.as_fd(), &[name]) {
                    Ok(_) => return Ok(()),
                    Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
                        return Err(format!(
                            "kprobe.multi links are not supported ({e}): the kernel lacks CONFIG_FPROBE"
                        ))
                    }
                    Err(e) => last = format!("a kprobe.multi link on {f} failed: {e}"),
                }
            }
            Err(last)
        }
    }
}
