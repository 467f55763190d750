//! pwru-filter bodies run in rbpf, a userspace eBPF VM: the second oracle of the differential
//! tests, which runs everywhere (no kernel, no root). A kfunc call (only `bpf_rdonly_cast` is
//! generated) runs as the kernel's verifier rewrites it, `r0 = r1`; `bpf_probe_read_kernel`
//! reads only inside the packet, like a kernel read of valid memory.

use std::cell::Cell;

use pwru_filter::insn::{op, program_bytes, Insn, HELPER_PROBE_READ_KERNEL};
use pwru_filter::SkbFields;

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
        let prelude = [Insn::load(op::DW, 2, 1, 8), Insn::load(op::DW, 1, 1, 0)];
        RbpfFilter {
            bytes: program(&prelude, body),
        }
    }

    /// Runs on `packet`; Err on any rbpf fault (an out-of-bounds access is a translator bug).
    pub fn run(&self, packet: &[u8]) -> Result<u64, String> {
        let lo = packet.as_ptr() as u64;
        let hi = lo + packet.len() as u64;
        let mut mbuff = [0u8; 16];
        mbuff[..8].copy_from_slice(&lo.to_le_bytes());
        mbuff[8..].copy_from_slice(&hi.to_le_bytes());
        execute(&self.bytes, packet, &mbuff)
    }
}

/// `prelude`, then `body` with each kfunc call as the verifier rewrites `bpf_rdonly_cast`.
fn program(prelude: &[Insn], body: &[Insn]) -> Vec<u8> {
    let mut prog = prelude.to_vec();
    prog.extend(body.iter().map(|i| {
        if i.code == op::JMP | op::CALL && i.src == op::PSEUDO_KFUNC_CALL {
            Insn::mov64_reg(0, 1)
        } else {
            *i
        }
    }));
    program_bytes(&prog)
}

/// Runs `bytes` with `packet` as the VM's memory and `mbuff` as its metadata buffer.
fn execute(bytes: &[u8], packet: &[u8], mbuff: &[u8]) -> Result<u64, String> {
    let mut vm = rbpf::EbpfVmMbuff::new(Some(bytes)).map_err(|e| e.to_string())?;
    vm.register_helper(HELPER_PROBE_READ_KERNEL as u32, probe_read_kernel)
        .map_err(|e| e.to_string())?;
    let lo = packet.as_ptr() as u64;
    PACKET.with(|p| p.set((lo, lo + packet.len() as u64)));
    vm.execute_program(packet, mbuff).map_err(|e| e.to_string())
}

/// A dispatch body called through its skb entry (`pwru_filter::dispatch_with_skb_entry`):
/// the packet is wrapped in a made-up `sk_buff` in the metadata buffer, laid out as the
/// entry's [`SkbFields`] say, whose `head` lies [`RbpfSkbEntry::HEADROOM`] bytes before it.
pub struct RbpfSkbEntry {
    bytes: Vec<u8>,
    fields: SkbFields,
}

impl RbpfSkbEntry {
    /// Bytes between the made-up `head` and the packet (never read).
    pub const HEADROOM: u64 = 64;

    /// Calls `dispatch` with R1 = `selector` and R2 = the made-up skb's address.
    pub fn new(dispatch: &[Insn], selector: i32, fields: SkbFields) -> RbpfSkbEntry {
        let prelude = [Insn::mov64_reg(2, 1), Insn::mov64_imm(1, selector)];
        RbpfSkbEntry {
            bytes: program(&prelude, dispatch),
            fields,
        }
    }

    /// Runs on `packet` as the linear data of an skb whose MAC header is set and starts the
    /// packet (`mac_set`), or is unset with the network header at the packet's start. The
    /// unused header offset points elsewhere, so that reading the wrong one shows.
    pub fn run(&self, packet: &[u8], mac_set: bool) -> Result<u64, String> {
        let f = &self.fields;
        let lo = packet.as_ptr() as u64;
        let start = Self::HEADROOM as u16;
        let (mac, nh) = if mac_set {
            (start, start + 7)
        } else {
            (0xffff, start)
        };
        let size = [
            f.head + 8,
            f.tail + 4,
            f.mac_header + 2,
            f.network_header + 2,
        ]
        .into_iter()
        .max()
        .unwrap_or(0)
        .max(0) as usize;
        let mut skb = vec![0u8; size];
        let mut put = |off: i16, bytes: &[u8]| {
            let off = off as usize;
            skb[off..off + bytes.len()].copy_from_slice(bytes);
        };
        put(f.head, &lo.wrapping_sub(Self::HEADROOM).to_le_bytes());
        put(
            f.tail,
            &(u32::from(start) + packet.len() as u32).to_le_bytes(),
        );
        put(f.mac_header, &mac.to_le_bytes());
        put(f.network_header, &nh.to_le_bytes());
        execute(&self.bytes, packet, &skb)
    }
}
