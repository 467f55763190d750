//! The kfunc-cast read scheme of [`crate::Mode::ProbeRead`] ([`crate::ProbeAccess::Cast`]):
//! the two vmlinux BTF ids it needs.
//!
//! This crate reads no BTF: it takes the ids, resolved, in [`CastIds`]. pwru-core resolves them
//! from the tracer's one parsed kernel BTF (its `Btf::cast_ids`, which follows `kernel_btf`):
//! `bpf_rdonly_cast`'s `FUNC` id and the id of the `STRUCT` named [`CAST_TARGET`]. A user of
//! this crate alone looks both up in `/sys/kernel/btf/vmlinux` with any BTF reader.
//!
//! `bpf_rdonly_cast(ptr, btf_id)` (a kfunc, Linux 6.2+) turns a plain number into a read-only,
//! *untrusted* pointer to a BTF struct. The verifier turns loads through such pointers into
//! `BPF_PROBE_MEM` loads (an exception-table entry instead of a helper call: a load that faults
//! yields 0) and replaces the call itself with `r0 = r1`. So one packet byte costs a plain load,
//! against ≈ 24 ns for a `bpf_probe_read_kernel` call. Which program types may call the kfunc
//! depends on the kernel (tracing, tc and XDP programs always; on 6.12, 7.3 and 6.18 also
//! KPROBE and raw tracepoint programs), so a user should try loading before relying on it, as
//! pwru-core does (`probe_kfunc_cast`), and keep the helper scheme where it is refused.

use std::fmt;

/// The vmlinux BTF ids the cast scheme's code embeds (no relocation needed when splicing).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct CastIds {
    /// Id of the `FUNC` `bpf_rdonly_cast`: the `imm` of the kfunc call.
    pub rdonly_cast: u32,
    /// Id of a `STRUCT` whose first member is an integer of at least 4 bytes at offset 0
    /// (`struct in_addr`): the verifier allows 1-, 2- and 4-byte loads at offset 0 of it.
    pub target: u32,
}

/// The struct the cast targets: `struct in_addr { __be32 s_addr; }`, present in every vmlinux
/// with IPv4.
pub const CAST_TARGET: &str = "in_addr";

impl fmt::Display for CastIds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bpf_rdonly_cast = BTF id {}, struct {CAST_TARGET} = BTF id {}",
            self.rdonly_cast, self.target
        )
    }
}
