//! [`CbpfInsn`]: one classic BPF instruction, as libpcap and the kernel lay it out.

use std::fmt;

/// One classic BPF instruction, the kernel's and libpcap's `struct bpf_insn`.
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct CbpfInsn {
    /// Opcode (class | size | mode, or class | op | source).
    pub code: u16,
    /// Jump offset if true (relative to the next instruction).
    pub jt: u8,
    /// Jump offset if false.
    pub jf: u8,
    /// Generic operand.
    pub k: u32,
}

impl CbpfInsn {
    /// An instruction from its fields.
    pub const fn new(code: u16, jt: u8, jf: u8, k: u32) -> CbpfInsn {
        CbpfInsn { code, jt, jf, k }
    }
}

impl fmt::Display for CbpfInsn {
    /// Same format as `tcpdump -dd` prints: `{ 0x28, 0, 0, 0x0000000c },`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{{ 0x{:x}, {}, {}, 0x{:08x} }}",
            self.code, self.jt, self.jf, self.k
        )
    }
}
