//! libpcap's own classic-BPF interpreter (`bpf_filter`, what `pcap_offline_filter` and the
//! `pcap` crate's `BpfProgram::filter` run), the reference every differential test compares
//! translated programs with.
//!
//! Not the `pcap` crate's `BpfProgram::filter`: a `BpfProgram` can only come from the crate's
//! own compile (no constructor from instructions, so no random programs), with netmask 0 and
//! snapshot length 65535, and `filter` answers a bool where the tests compare the exact return
//! value. `tests/oracle_pcap_crate.rs` checks that the two agree on the corpus.

use std::ffi::{c_int, c_uint};

use pwru_filter::{Cbpf, CbpfInsn};

#[link(name = "pcap")]
extern "C" {
    /// The interpreter, on any instruction slice, returning the program's value.
    fn bpf_filter(pc: *const CbpfInsn, pkt: *const u8, wirelen: c_uint, buflen: c_uint) -> c_uint;
    /// libpcap's validator, which must accept a program before its interpreter may run it;
    /// the `pcap` crate does not expose it.
    fn bpf_validate(f: *const CbpfInsn, len: c_int) -> c_int;
}

/// Runs libpcap's interpreter on `packet` as a full capture (wire length = captured length) and
/// returns the filter's return value: 0 = no match.
///
/// Returns `None` when libpcap's validator (`bpf_validate`) refuses the program, because the
/// interpreter of libpcap 1.10 must not be given invalid programs.
pub fn interpret(insns: &[CbpfInsn], packet: &[u8]) -> Option<u32> {
    let len = c_int::try_from(insns.len()).ok()?;
    let pkt_len = c_uint::try_from(packet.len()).ok()?;
    if insns.is_empty() {
        return None;
    }
    // SAFETY: insns is a valid slice of repr(C) bpf_insn of the given length.
    if unsafe { bpf_validate(insns.as_ptr(), len) } == 0 {
        return None;
    }
    // SAFETY: the program was validated (forward jumps in range, ends in ret, scratch indices in
    // range), and the interpreter bounds-checks every packet access against pkt_len.
    Some(unsafe { bpf_filter(insns.as_ptr(), packet.as_ptr(), pkt_len, pkt_len) })
}

/// libpcap's interpreter on a [`Cbpf`], as a method.
pub trait RunLibpcap {
    /// [`interpret`] on the program's instructions.
    fn run_libpcap(&self, packet: &[u8]) -> Option<u32>;
}

impl RunLibpcap for Cbpf {
    fn run_libpcap(&self, packet: &[u8]) -> Option<u32> {
        interpret(self.insns(), packet)
    }
}
