//! pwru-filter bodies run in rbpf, a userspace eBPF VM: the second oracle of the differential
//! tests, which runs everywhere (no kernel, no root). A kfunc call (only `bpf_rdonly_cast` is
//! generated) runs as the kernel's verifier rewrites it, `r0 = r1`; `bpf_probe_read_kernel`
//! reads only inside the packet, like a kernel read of valid memory.

use std::cell::Cell;

use pwru_filter::insn::{op, program_bytes, Insn, HELPER_PROBE_READ_KERNEL};

use crate::sys;

thread_local! {
    /// The packet being run on this thread: [start, end) addresses.
    static PACKET: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// bpf_probe_read_kernel for rbpf, within the current packet (see [`sys::rbpf_probe_read`]).
fn probe_read_kernel(dst: u64, size: u64, src: u64, _: u64, _: u64) -> u64 {
    let (lo, hi) = PACKET.with(|p| p.get());
    sys::rbpf_probe_read(dst, size, src, lo, hi)
}

/// An rbpf program: loads data/data_end from the metadata buffer into R1/R2, then the body.
pub struct RbpfFilter {
    bytes: Vec<u8>,
}

impl RbpfFilter {
    /// Wraps a filter body (pwru-filter's calling convention).
    pub fn new(body: &[Insn]) -> RbpfFilter {
        let mut prog = vec![Insn::load(op::DW, 2, 1, 8), Insn::load(op::DW, 1, 1, 0)];
        prog.extend(body.iter().map(|i| {
            if i.code == op::JMP | op::CALL && i.src == op::PSEUDO_KFUNC_CALL {
                Insn::mov64_reg(0, 1)
            } else {
                *i
            }
        }));
        RbpfFilter {
            bytes: program_bytes(&prog),
        }
    }

    /// Runs on `packet`; Err on any rbpf fault (an out-of-bounds access is a translator bug).
    pub fn run(&self, packet: &[u8]) -> Result<u64, String> {
        let mut vm = rbpf::EbpfVmMbuff::new(Some(&self.bytes)).map_err(|e| e.to_string())?;
        vm.register_helper(HELPER_PROBE_READ_KERNEL as u32, probe_read_kernel)
            .map_err(|e| e.to_string())?;
        let lo = packet.as_ptr() as u64;
        let hi = lo + packet.len() as u64;
        PACKET.with(|p| p.set((lo, hi)));
        let mut mbuff = [0u8; 16];
        mbuff[..8].copy_from_slice(&lo.to_le_bytes());
        mbuff[8..].copy_from_slice(&hi.to_le_bytes());
        vm.execute_program(packet, &mbuff)
            .map_err(|e| e.to_string())
    }
}
