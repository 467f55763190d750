//! libpcap's own classic-BPF interpreter (`bpf_filter`, what `pcap_offline_filter` and the
//! `pcap` crate's `BpfProgram::filter` run), the reference every differential test compares
//! translated programs with. The FFI calls are in [`crate::sys`].
//!
//! Not the `pcap` crate's `BpfProgram::filter`: a `BpfProgram` can only come from the crate's
//! own compile (no constructor from instructions, so no random programs), with netmask 0 and
//! snapshot length 65535, and `filter` answers a bool where the tests compare the exact return
//! value. pwru-filter's `tests/oracle_pcap_crate.rs` checks that the two agree on the corpus.

use pwru_filter::{Cbpf, CbpfInsn};

use crate::sys;

/// Runs libpcap's interpreter on `packet` as a full capture (wire length = captured length) and
/// returns the filter's return value: 0 = no match.
///
/// Returns `None` when libpcap's validator (`bpf_validate`) refuses the program, because the
/// interpreter of libpcap 1.10 must not be given invalid programs.
pub fn interpret(insns: &[CbpfInsn], packet: &[u8]) -> Option<u32> {
    sys::libpcap_filter(insns, packet)
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
