//! Programs on the map functions of [`crate::discovery::map_ops`] (`bpf_map_ops`): kprobes
//! (and a kretprobe pair for lookups) for the kprobe and kprobe-multi backends, fentry/fexit
//! for the fentry backend. There are a handful of such functions, so the kprobe-multi
//! backend uses single kprobes (a kernel with kprobe.multi links has kprobes).

use pwru_ebpf::program as p;

use super::{Attachments, Loader};
use crate::discovery::map_ops::{MapOpKind, MapOpTarget};

/// kprobe programs of one map function: (program, function) pairs.
fn kprobe_programs(kind: MapOpKind) -> &'static [&'static str] {
    match kind {
        MapOpKind::Update => &[p::KPROBE_BPFMAP_UPDATE],
        MapOpKind::Delete => &[p::KPROBE_BPFMAP_DELETE],
        // The return program first: an entry without its return would keep arguments for
        // nothing.
        MapOpKind::Lookup => &[p::KRETPROBE_BPFMAP_LOOKUP, p::KPROBE_BPFMAP_LOOKUP_ENTRY],
        MapOpKind::LookupElem => &[
            p::KRETPROBE_BPFMAP_LOOKUP_ELEM,
            p::KPROBE_BPFMAP_LOOKUP_ENTRY,
        ],
    }
}

/// kprobes (kretprobes for lookups) on each map function; refusals are filed.
pub(super) fn attach_kprobes(loader: &mut Loader, targets: &[MapOpTarget], out: &mut Attachments) {
    for t in targets {
        for &prog in kprobe_programs(t.kind) {
            match loader.load_kprobe_program(prog, &[t.name.as_str()]) {
                Ok(results) => {
                    for (f, r) in results {
                        out.record(format!("{prog}:{f}"), r);
                    }
                }
                Err(e) => out.refuse(format!("{prog}:{}", t.name), &e),
            }
        }
    }
}

/// fentry (fexit for lookups) on each map function; refusals are filed.
pub(super) fn attach_tracing(loader: &mut Loader, targets: &[MapOpTarget], out: &mut Attachments) {
    for t in targets {
        let (prog, exit) = match t.kind {
            MapOpKind::Update => (p::FENTRY_BPFMAP_UPDATE, false),
            MapOpKind::Delete => (p::FENTRY_BPFMAP_DELETE, false),
            MapOpKind::Lookup => (p::FEXIT_BPFMAP_LOOKUP, true),
            MapOpKind::LookupElem => (p::FEXIT_BPFMAP_LOOKUP_ELEM, true),
        };
        let r = loader.load_tracing_program(prog, &t.name, exit);
        out.record(format!("{prog}:{}", t.name), r);
    }
}
