//! The running kernel's BTF ids for pwru-filter's kfunc-cast reads ([`CastIds`]), resolved by
//! pwru-core's one BTF reader: pwru-filter itself reads no BTF.

use pwru_core::btf::{Btf, BtfError};
use pwru_filter::{CastIds, SkbFields};

/// The ids in `/sys/kernel/btf/vmlinux`. `Ok(None)`: the kernel has no `bpf_rdonly_cast`
/// (before 6.2) or no suitable target struct; the helper scheme is then the one to use.
pub fn running_kernel() -> Result<Option<CastIds>, BtfError> {
    Ok(Btf::vmlinux()?.cast_ids())
}

/// Where `/sys/kernel/btf/vmlinux` puts the skb header fields pwru-filter's skb entry reads
/// ([`SkbFields`]). `Ok(None)`: no `bpf_rdonly_cast`, or fields of another shape.
pub fn running_kernel_skb_fields() -> Result<Option<SkbFields>, BtfError> {
    Ok(Btf::vmlinux()?.skb_fields())
}
