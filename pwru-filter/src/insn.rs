//! The 8-byte eBPF instruction, its encoding and constructors for the subset this crate emits.

/// An eBPF register number (`R0`..=`R10`).
pub type Reg = u8;

/// Opcode constants of the eBPF instruction set (see the kernel's `instruction-set.rst`).
pub mod op {
    /// Class: immediate loads (`ld_imm64`). Never emitted by this crate.
    pub const LD: u8 = 0x00;
    /// Class: memory load into a register.
    pub const LDX: u8 = 0x01;
    /// Class: store of an immediate.
    pub const ST: u8 = 0x02;
    /// Class: store of a register.
    pub const STX: u8 = 0x03;
    /// Class: 32-bit arithmetic.
    pub const ALU: u8 = 0x04;
    /// Class: 64-bit jumps, calls and exit.
    pub const JMP: u8 = 0x05;
    /// Class: 32-bit compare-and-jump.
    pub const JMP32: u8 = 0x06;
    /// Class: 64-bit arithmetic.
    pub const ALU64: u8 = 0x07;

    /// Source: immediate operand.
    pub const K: u8 = 0x00;
    /// Source: register operand.
    pub const X: u8 = 0x08;

    /// Size: 4 bytes.
    pub const W: u8 = 0x00;
    /// Size: 2 bytes.
    pub const H: u8 = 0x08;
    /// Size: 1 byte.
    pub const B: u8 = 0x10;
    /// Size: 8 bytes.
    pub const DW: u8 = 0x18;
    /// Mode: register-relative memory access.
    pub const MEM: u8 = 0x60;
    /// Mode: 64-bit immediate (two slots).
    pub const IMM: u8 = 0x00;

    /// ALU op: `+=`.
    pub const ADD: u8 = 0x00;
    /// ALU op: `-=`.
    pub const SUB: u8 = 0x10;
    /// ALU op: `*=`.
    pub const MUL: u8 = 0x20;
    /// ALU op: unsigned `/=`.
    pub const DIV: u8 = 0x30;
    /// ALU op: `|=`.
    pub const OR: u8 = 0x40;
    /// ALU op: `&=`.
    pub const AND: u8 = 0x50;
    /// ALU op: `<<=`.
    pub const LSH: u8 = 0x60;
    /// ALU op: logical `>>=`.
    pub const RSH: u8 = 0x70;
    /// ALU op: negate.
    pub const NEG: u8 = 0x80;
    /// ALU op: unsigned `%=`.
    pub const MOD: u8 = 0x90;
    /// ALU op: `^=`.
    pub const XOR: u8 = 0xa0;
    /// ALU op: `=`.
    pub const MOV: u8 = 0xb0;
    /// ALU op: arithmetic `>>=`.
    pub const ARSH: u8 = 0xc0;
    /// ALU op: byte swap; with [`X`] (`TO_BE`) converts to big endian.
    pub const END: u8 = 0xd0;

    /// Jump op: always.
    pub const JA: u8 = 0x00;
    /// Jump op: `==`.
    pub const JEQ: u8 = 0x10;
    /// Jump op: unsigned `>`.
    pub const JGT: u8 = 0x20;
    /// Jump op: unsigned `>=`.
    pub const JGE: u8 = 0x30;
    /// Jump op: `&` is non-zero.
    pub const JSET: u8 = 0x40;
    /// Jump op: `!=`.
    pub const JNE: u8 = 0x50;
    /// Jump op: signed `>`.
    pub const JSGT: u8 = 0x60;
    /// Jump op: signed `>=`.
    pub const JSGE: u8 = 0x70;
    /// Jump op: helper or BPF-to-BPF call.
    pub const CALL: u8 = 0x80;
    /// Jump op: return from the (sub)program.
    pub const EXIT: u8 = 0x90;
    /// Jump op: unsigned `<`.
    pub const JLT: u8 = 0xa0;
    /// Jump op: unsigned `<=`.
    pub const JLE: u8 = 0xb0;
    /// Jump op: signed `<`.
    pub const JSLT: u8 = 0xc0;
    /// Jump op: signed `<=`.
    pub const JSLE: u8 = 0xd0;

    /// `src` of a `call` naming a BPF-to-BPF call (imm = relative target).
    pub const PSEUDO_CALL: u8 = 1;
    /// `src` of a `call` naming a kernel function (kfunc; imm = its vmlinux BTF id).
    pub const PSEUDO_KFUNC_CALL: u8 = 2;
}

/// Helper id of `bpf_probe_read_kernel(void *dst, u32 size, const void *src)`.
pub const HELPER_PROBE_READ_KERNEL: i32 = 113;

/// Helper id of `bpf_map_lookup_elem`.
pub const HELPER_MAP_LOOKUP_ELEM: i32 = 1;

/// `src_reg` of an `ld_imm64` whose immediate is a map fd (`BPF_PSEUDO_MAP_FD`).
pub const PSEUDO_MAP_FD: u8 = 1;

/// One eBPF instruction (the kernel's `struct bpf_insn`, 8 bytes little endian).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct Insn {
    /// Opcode: class | size/op | mode/source.
    pub code: u8,
    /// Destination register (low nibble of byte 1).
    pub dst: Reg,
    /// Source register (high nibble of byte 1).
    pub src: Reg,
    /// Signed offset: memory displacement or jump distance (in instructions, from the next one).
    pub off: i16,
    /// Signed immediate.
    pub imm: i32,
}

impl Insn {
    /// Encodes as the kernel's 8-byte little-endian `struct bpf_insn`.
    pub fn to_bytes(&self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0] = self.code;
        b[1] = (self.dst & 0x0f) | ((self.src & 0x0f) << 4);
        b[2..4].copy_from_slice(&self.off.to_le_bytes());
        b[4..8].copy_from_slice(&self.imm.to_le_bytes());
        b
    }

    /// Decodes one 8-byte little-endian `struct bpf_insn`.
    pub fn from_bytes(b: [u8; 8]) -> Insn {
        Insn {
            code: b[0],
            dst: b[1] & 0x0f,
            src: b[1] >> 4,
            off: i16::from_le_bytes([b[2], b[3]]),
            imm: i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    /// Class bits (`code & 7`).
    pub fn class(&self) -> u8 {
        self.code & 0x07
    }

    /// `dst = imm` (32-bit move, zero-extends: `wD = imm`).
    pub fn mov32_imm(dst: Reg, imm: i32) -> Insn {
        Self::raw(op::ALU | op::MOV | op::K, dst, 0, 0, imm)
    }
    /// `wD = wS` (32-bit move, zero-extends).
    pub fn mov32_reg(dst: Reg, src: Reg) -> Insn {
        Self::raw(op::ALU | op::MOV | op::X, dst, src, 0, 0)
    }
    /// `rD = imm` (64-bit move of a sign-extended immediate).
    pub fn mov64_imm(dst: Reg, imm: i32) -> Insn {
        Self::raw(op::ALU64 | op::MOV | op::K, dst, 0, 0, imm)
    }
    /// `rD = rS`.
    pub fn mov64_reg(dst: Reg, src: Reg) -> Insn {
        Self::raw(op::ALU64 | op::MOV | op::X, dst, src, 0, 0)
    }
    /// 32-bit ALU with an immediate: `wD op= imm`.
    pub fn alu32_imm(alu: u8, dst: Reg, imm: i32) -> Insn {
        Self::raw(op::ALU | alu | op::K, dst, 0, 0, imm)
    }
    /// 32-bit ALU with a register: `wD op= wS`.
    pub fn alu32_reg(alu: u8, dst: Reg, src: Reg) -> Insn {
        Self::raw(op::ALU | alu | op::X, dst, src, 0, 0)
    }
    /// 64-bit ALU with an immediate: `rD op= imm`.
    pub fn alu64_imm(alu: u8, dst: Reg, imm: i32) -> Insn {
        Self::raw(op::ALU64 | alu | op::K, dst, 0, 0, imm)
    }
    /// 64-bit ALU with a register: `rD op= rS`.
    pub fn alu64_reg(alu: u8, dst: Reg, src: Reg) -> Insn {
        Self::raw(op::ALU64 | alu | op::X, dst, src, 0, 0)
    }
    /// `wD = -wD`.
    pub fn neg32(dst: Reg) -> Insn {
        Self::raw(op::ALU | op::NEG, dst, 0, 0, 0)
    }
    /// `rD = be<bits> rD`: converts the low `bits` (16/32/64) from host order to big endian
    /// (a swap on little-endian hosts) and zero-extends.
    pub fn to_be(dst: Reg, bits: i32) -> Insn {
        Self::raw(op::ALU | op::END | op::X, dst, 0, 0, bits)
    }
    /// `rD = *(size *)(rS + off)` (zero-extending load; `size` is [`op::B`], [`op::H`],
    /// [`op::W`] or [`op::DW`]).
    pub fn load(size: u8, dst: Reg, src: Reg, off: i16) -> Insn {
        Self::raw(op::LDX | op::MEM | size, dst, src, off, 0)
    }
    /// `*(size *)(rD + off) = rS`.
    pub fn store_reg(size: u8, dst: Reg, off: i16, src: Reg) -> Insn {
        Self::raw(op::STX | op::MEM | size, dst, src, off, 0)
    }
    /// `*(size *)(rD + off) = imm`.
    pub fn store_imm(size: u8, dst: Reg, off: i16, imm: i32) -> Insn {
        Self::raw(op::ST | op::MEM | size, dst, 0, off, imm)
    }
    /// `goto pc+off`.
    pub fn ja(off: i16) -> Insn {
        Self::raw(op::JMP | op::JA, 0, 0, off, 0)
    }
    /// 64-bit compare with an immediate: `if rD op imm goto pc+off`.
    pub fn jmp_imm(jop: u8, dst: Reg, imm: i32, off: i16) -> Insn {
        Self::raw(op::JMP | jop | op::K, dst, 0, off, imm)
    }
    /// 64-bit compare with a register: `if rD op rS goto pc+off`.
    pub fn jmp_reg(jop: u8, dst: Reg, src: Reg, off: i16) -> Insn {
        Self::raw(op::JMP | jop | op::X, dst, src, off, 0)
    }
    /// 32-bit compare with an immediate: `if wD op imm goto pc+off`.
    pub fn jmp32_imm(jop: u8, dst: Reg, imm: i32, off: i16) -> Insn {
        Self::raw(op::JMP32 | jop | op::K, dst, 0, off, imm)
    }
    /// 32-bit compare with a register: `if wD op wS goto pc+off`.
    pub fn jmp32_reg(jop: u8, dst: Reg, src: Reg, off: i16) -> Insn {
        Self::raw(op::JMP32 | jop | op::X, dst, src, off, 0)
    }
    /// `call` of the helper with this id.
    pub fn call_helper(id: i32) -> Insn {
        Self::raw(op::JMP | op::CALL, 0, 0, 0, id)
    }
    /// `call` of the kernel function (kfunc) whose vmlinux BTF id is `btf_id`.
    pub fn call_kfunc(btf_id: i32) -> Insn {
        Self::raw(op::JMP | op::CALL, 0, op::PSEUDO_KFUNC_CALL, 0, btf_id)
    }
    /// BPF-to-BPF `call pc+imm` (target = this index + 1 + imm).
    pub fn call_local(imm: i32) -> Insn {
        Self::raw(op::JMP | op::CALL, 0, op::PSEUDO_CALL, 0, imm)
    }
    /// `exit`.
    pub fn exit() -> Insn {
        Self::raw(op::JMP | op::EXIT, 0, 0, 0, 0)
    }
    /// Any instruction from its fields.
    pub const fn raw(code: u8, dst: Reg, src: Reg, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            dst,
            src,
            off,
            imm,
        }
    }

    /// True for a conditional or unconditional jump that uses `off` (not call/exit).
    pub fn is_jump(&self) -> bool {
        let class = self.class();
        if class != op::JMP && class != op::JMP32 {
            return false;
        }
        let jop = self.code & 0xf0;
        jop != op::CALL && jop != op::EXIT
    }
}

/// Encodes a whole program as bytes (what `BPF_PROG_LOAD` and rbpf take).
pub fn program_bytes(insns: &[Insn]) -> Vec<u8> {
    insns.iter().flat_map(|i| i.to_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips() {
        let samples = [
            Insn::mov32_imm(0, -1),
            Insn::load(op::H, 3, 10, -12),
            Insn::jmp32_reg(op::JGT, 6, 7, 300),
            Insn::call_helper(HELPER_PROBE_READ_KERNEL),
            Insn::call_kfunc(12345),
            Insn::raw(0xff, 15, 15, i16::MIN, i32::MIN),
        ];
        for s in samples {
            assert_eq!(Insn::from_bytes(s.to_bytes()), s);
        }
        // Kernel layout: dst in the low nibble, src in the high one.
        assert_eq!(Insn::mov64_reg(1, 2).to_bytes()[1], 0x21);
    }
}
