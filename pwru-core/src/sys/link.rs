//! Attachments made by bpf(2) itself: BPF_LINK_CREATE for kprobe.multi, perf events and
//! iterators (with BPF_ITER_CREATE to read one), and BPF_RAW_TRACEPOINT_OPEN for raw
//! tracepoints and tracing programs (tp_btf, fentry, fexit).

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use aya_obj::generated::{bpf_attach_type, bpf_cmd, BPF_F_KPROBE_MULTI_RETURN};

use super::{bpf_fd, ptr_u64, zeroed_attr};

/// BPF_LINK_CREATE for a kprobe.multi program on `symbols` (names as in /proc/kallsyms).
pub fn link_kprobe_multi(prog: BorrowedFd<'_>, symbols: &[CString]) -> io::Result<OwnedFd> {
    link_kprobe_multi_with(prog, symbols, false)
}

/// [`link_kprobe_multi`], on function return when `retprobe` (BPF_F_KPROBE_MULTI_RETURN).
pub fn link_kprobe_multi_with(
    prog: BorrowedFd<'_>,
    symbols: &[CString],
    retprobe: bool,
) -> io::Result<OwnedFd> {
    let ptrs: Vec<u64> = symbols.iter().map(|s| ptr_u64(s.as_ptr())).collect();
    kprobe_multi_link(prog, KprobeMultiSet::Symbols(&ptrs), retprobe)
}

/// BPF_LINK_CREATE for a kprobe.multi program on functions given by address (their kallsyms
/// addresses; the kernel maps each to its ftrace location): the kernel looks no name up.
pub fn link_kprobe_multi_addrs(prog: BorrowedFd<'_>, addresses: &[u64]) -> io::Result<OwnedFd> {
    kprobe_multi_link(prog, KprobeMultiSet::Addresses(addresses), false)
}

/// What a kprobe.multi link is given: pointers to symbol names, or addresses.
enum KprobeMultiSet<'a> {
    Symbols(&'a [u64]),
    Addresses(&'a [u64]),
}

fn kprobe_multi_link(
    prog: BorrowedFd<'_>,
    set: KprobeMultiSet<'_>,
    retprobe: bool,
) -> io::Result<OwnedFd> {
    let items = match set {
        KprobeMultiSet::Symbols(s) | KprobeMultiSet::Addresses(s) => s,
    };
    let cnt = u32::try_from(items.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "too many functions"))?;
    let mut attr = zeroed_attr();
    // SAFETY: only writes into the BPF_LINK_CREATE member of a zeroed union.
    let l = unsafe { &mut attr.link_create };
    l.__bindgen_anon_1.prog_fd = prog.as_raw_fd() as u32;
    l.attach_type = bpf_attach_type::BPF_TRACE_KPROBE_MULTI as u32;
    // SAFETY: writes into the kprobe_multi member of the zeroed target union.
    let k = unsafe { &mut l.__bindgen_anon_3.kprobe_multi };
    if retprobe {
        k.flags = BPF_F_KPROBE_MULTI_RETURN;
    }
    k.cnt = cnt;
    match set {
        KprobeMultiSet::Symbols(ptrs) => k.syms = ptr_u64(ptrs.as_ptr()),
        KprobeMultiSet::Addresses(addrs) => k.addrs = ptr_u64(addrs.as_ptr()),
    }
    // The pointed-to arrays (and the names behind the symbol pointers) outlive the call.
    bpf_fd(bpf_cmd::BPF_LINK_CREATE, &mut attr)
}

/// BPF_RAW_TRACEPOINT_OPEN: attaches raw_tp programs by name, and tracing programs
/// (tp_btf, fentry, fexit) to the target fixed at load time (`name` = None).
pub fn raw_tracepoint_open(prog: BorrowedFd<'_>, name: Option<&CStr>) -> io::Result<OwnedFd> {
    let mut attr = zeroed_attr();
    // SAFETY: only writes into the BPF_RAW_TRACEPOINT_OPEN member of a zeroed union.
    let r = unsafe { &mut attr.raw_tracepoint };
    r.name = name.map_or(0, |n| ptr_u64(n.as_ptr()));
    r.prog_fd = prog.as_raw_fd() as u32;
    bpf_fd(bpf_cmd::BPF_RAW_TRACEPOINT_OPEN, &mut attr)
}

/// BPF_LINK_CREATE of a perf link (BPF_PERF_EVENT): runs `prog` on the perf event `event` (a
/// kprobe from [`perf_kprobe_event`](super::perf_kprobe_event)) until the returned link fd
/// is closed; the event itself stays until its own fd is closed.
pub fn link_perf_event(prog: BorrowedFd<'_>, event: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    link_create(prog, Some(event), bpf_attach_type::BPF_PERF_EVENT)
}

/// BPF_LINK_CREATE of an iterator (BPF_TRACE_ITER): `prog` is a tracing program loaded for
/// one iterator target (its `attach_btf_id` is the target's `bpf_iter_*` function).
pub fn link_iter(prog: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    link_create(prog, None, bpf_attach_type::BPF_TRACE_ITER)
}

/// BPF_LINK_CREATE with no attach options: `prog` on `target` (none for an iterator).
fn link_create(
    prog: BorrowedFd<'_>,
    target: Option<BorrowedFd<'_>>,
    attach_type: bpf_attach_type,
) -> io::Result<OwnedFd> {
    let mut attr = zeroed_attr();
    // SAFETY: only writes into the BPF_LINK_CREATE member of a zeroed union.
    let l = unsafe { &mut attr.link_create };
    l.__bindgen_anon_1.prog_fd = prog.as_raw_fd() as u32;
    if let Some(target) = target {
        l.__bindgen_anon_2.target_fd = target.as_raw_fd() as u32;
    }
    l.attach_type = attach_type as u32;
    bpf_fd(bpf_cmd::BPF_LINK_CREATE, &mut attr)
}

/// BPF_ITER_CREATE: a new read of the iterator behind `link` (from [`link_iter`]). Reading
/// the returned descriptor runs the program over the target's objects, in order, and returns
/// what it wrote; end of file once they are all seen.
pub fn iter_create(link: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let mut attr = zeroed_attr();
    // SAFETY: only writes into the BPF_ITER_CREATE member of a zeroed union.
    let i = unsafe { &mut attr.iter_create };
    i.link_fd = link.as_raw_fd() as u32;
    bpf_fd(bpf_cmd::BPF_ITER_CREATE, &mut attr)
}
