//! Tracing loaded tc and XDP BPF programs by id (pwru's --filter-trace-tc and
//! --filter-trace-xdp): finding their ids, and loading the fentry (and for XDP fexit)
//! programs against each one with its id and name patched into the instructions, so events
//! say which program they came from.

use std::os::fd::AsFd;

use super::{Attachments, Link, LoaderError};
use crate::object::Loader;
use crate::sys;

/// Attaches to every loaded tc (and/or XDP) program; refusals are filed, not fatal. Returns
/// the id and name of each program traced (for the decoder to name them).
pub(crate) fn trace_bpf_programs(
    loader: &mut Loader,
    tc: bool,
    xdp: bool,
    out: &mut Attachments,
) -> Vec<(u32, String)> {
    use aya_obj::generated::bpf_prog_type;
    let mut traced = Vec::new();
    for info in aya::programs::loaded_programs().flatten() {
        let ty = info.program_type();
        let wanted =
            (tc && matches!(
                ty,
                bpf_prog_type::BPF_PROG_TYPE_SCHED_CLS | bpf_prog_type::BPF_PROG_TYPE_SCHED_ACT
            )) || (xdp && ty == bpf_prog_type::BPF_PROG_TYPE_XDP);
        if !wanted {
            continue;
        }
        let name = info.name_as_str().unwrap_or("?").to_string();
        let label = format!("bpf prog {}:{name}", info.id());
        match loader.trace_bpf_prog(info.id()) {
            Ok(ls) => {
                out.links.extend(ls);
                out.attached.push(label);
                traced.push((info.id(), name));
            }
            Err(e) => out.refuse(label, &e),
        }
    }
    traced
}

impl Loader {
    /// Traces a loaded tc (fentry) or XDP (fentry + fexit) BPF program by id, like pwru's
    /// --filter-trace-tc / --filter-trace-xdp. Events carry the program's id and name.
    pub fn trace_bpf_prog(&mut self, id: u32) -> Result<Vec<Link>, LoaderError> {
        const SCHED_CLS: u32 = 3;
        const SCHED_ACT: u32 = 4;
        const XDP: u32 = 6;
        let bad = |reason: String| LoaderError::BpfProg { id, reason };
        let target_fd = sys::prog_fd_by_id(id).map_err(|e| bad(format!("no such program: {e}")))?;
        let info = sys::prog_info(target_fd.as_fd()).map_err(|e| bad(e.to_string()))?;
        if info.func_type_id == 0 {
            return Err(bad(
                "the program has no BTF function info, so fentry cannot target it".into(),
            ));
        }
        let progs: &[(&str, u32)] = match info.prog_type {
            SCHED_CLS | SCHED_ACT => &[(pwru_ebpf::program::FENTRY_TC, sys::ATTACH_TRACE_FENTRY)],
            XDP => &[
                (pwru_ebpf::program::FENTRY_XDP, sys::ATTACH_TRACE_FENTRY),
                (pwru_ebpf::program::FEXIT_XDP, sys::ATTACH_TRACE_FEXIT),
            ],
            t => return Err(bad(format!("program type {t} is neither tc nor XDP"))),
        };
        let mut name = [0u8; 16];
        let n = info.name.len().min(15);
        name[..n].copy_from_slice(&info.name.as_bytes()[..n]);
        let mut lo = [0u8; 8];
        let mut hi = [0u8; 8];
        lo.copy_from_slice(&name[..8]);
        hi.copy_from_slice(&name[8..]);
        let patches = [
            (pwru_ebpf::patch::PROG_ID, u64::from(id)),
            (pwru_ebpf::patch::NAME_LO, u64::from_le_bytes(lo)),
            (pwru_ebpf::patch::NAME_HI, u64::from_le_bytes(hi)),
        ];
        let target = format!("prog:{id}:{}", info.name);
        let mut links = Vec::new();
        for &(prog, attach) in progs {
            let fd = self.raw_load(
                prog,
                sys::PROG_TYPE_TRACING,
                attach,
                info.func_type_id,
                Some(target_fd.as_fd()),
                &patches,
            )?;
            let link = sys::raw_tracepoint_open(fd.as_fd(), None).map_err(|error| {
                LoaderError::Attach {
                    program: prog.into(),
                    target: target.clone(),
                    error,
                }
            })?;
            links.push(Link::from_fds(prog, &target, link, fd));
        }
        Ok(links)
    }
}
