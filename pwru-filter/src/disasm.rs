//! Disassembly of eBPF instructions in the style of the kernel's verifier log and bpftool.

use std::fmt;

use crate::insn::{op, Insn};

fn alu_symbol(alu: u8) -> Option<&'static str> {
    Some(match alu {
        op::ADD => "+=",
        op::SUB => "-=",
        op::MUL => "*=",
        op::DIV => "/=",
        op::OR => "|=",
        op::AND => "&=",
        op::LSH => "<<=",
        op::RSH => ">>=",
        op::MOD => "%=",
        op::XOR => "^=",
        op::MOV => "=",
        op::ARSH => "s>>=",
        _ => return None,
    })
}

fn jmp_symbol(jop: u8) -> Option<&'static str> {
    Some(match jop {
        op::JEQ => "==",
        op::JGT => ">",
        op::JGE => ">=",
        op::JSET => "&",
        op::JNE => "!=",
        op::JSGT => "s>",
        op::JSGE => "s>=",
        op::JLT => "<",
        op::JLE => "<=",
        op::JSLT => "s<",
        op::JSLE => "s<=",
        _ => return None,
    })
}

fn size_name(code: u8) -> &'static str {
    match code & 0x18 {
        op::B => "u8",
        op::H => "u16",
        op::W => "u32",
        _ => "u64",
    }
}

fn helper_name(id: i32) -> Option<&'static str> {
    Some(match id {
        1 => "bpf_map_lookup_elem",
        4 => "bpf_probe_read",
        6 => "bpf_trace_printk",
        112 => "bpf_probe_read_user",
        113 => "bpf_probe_read_kernel",
        _ => return None,
    })
}

impl fmt::Display for Insn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (d, s) = (self.dst, self.src);
        let class = self.class();
        match class {
            op::ALU | op::ALU64 => {
                let p = if class == op::ALU64 { 'r' } else { 'w' };
                let alu = self.code & 0xf0;
                let uses_reg = self.code & op::X != 0;
                if alu == op::NEG {
                    return write!(f, "{p}{d} = -{p}{d}");
                }
                if alu == op::END {
                    let order = if uses_reg { "be" } else { "le" };
                    return write!(f, "r{d} = {order}{} r{d}", self.imm);
                }
                match alu_symbol(alu) {
                    Some(sym) if uses_reg => write!(f, "{p}{d} {sym} {p}{s}"),
                    Some(sym) => write!(f, "{p}{d} {sym} {}", self.imm),
                    None => write!(f, "(0x{:02x}) invalid alu", self.code),
                }
            }
            op::LDX if self.code & 0xe0 == op::MEM => write!(
                f,
                "r{d} = *({} *)(r{s} {:+})",
                size_name(self.code),
                self.off
            ),
            op::STX if self.code & 0xe0 == op::MEM => write!(
                f,
                "*({} *)(r{d} {:+}) = r{s}",
                size_name(self.code),
                self.off
            ),
            op::ST if self.code & 0xe0 == op::MEM => write!(
                f,
                "*({} *)(r{d} {:+}) = {}",
                size_name(self.code),
                self.off,
                self.imm
            ),
            op::LD if self.code == op::LD | op::IMM | op::DW => {
                write!(f, "r{d} = 0x{:x} ll (first half)", self.imm as u32)
            }
            op::JMP | op::JMP32 => {
                let jop = self.code & 0xf0;
                let p = if class == op::JMP { 'r' } else { 'w' };
                match jop {
                    op::JA => write!(f, "goto pc{:+}", self.off),
                    op::EXIT => write!(f, "exit"),
                    op::CALL if self.src == op::PSEUDO_CALL => write!(f, "call pc{:+}", self.imm),
                    op::CALL if self.src == op::PSEUDO_KFUNC_CALL => {
                        write!(f, "call kfunc#{}", self.imm)
                    }
                    op::CALL => match helper_name(self.imm) {
                        Some(name) => write!(f, "call {name}#{}", self.imm),
                        None => write!(f, "call #{}", self.imm),
                    },
                    _ => match jmp_symbol(jop) {
                        Some(sym) if self.code & op::X != 0 => {
                            write!(f, "if {p}{d} {sym} {p}{s} goto pc{:+}", self.off)
                        }
                        Some(sym) => {
                            write!(f, "if {p}{d} {sym} 0x{:x} goto pc{:+}", self.imm, self.off)
                        }
                        None => write!(f, "(0x{:02x}) invalid jump", self.code),
                    },
                }
            }
            _ => write!(f, "(0x{:02x}) invalid", self.code),
        }
    }
}

/// Disassembles a whole program, one instruction a line, each prefixed by its index
/// (`  12: r0 = 1`), as bpftool's `prog dump xlated` does.
pub fn disassemble(insns: &[Insn]) -> String {
    let width = insns.len().max(1).to_string().len();
    let mut out = String::new();
    for (i, insn) in insns.iter().enumerate() {
        out.push_str(&format!("{i:>width$}: {insn}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::insn::HELPER_PROBE_READ_KERNEL;

    #[test]
    fn prints_like_bpftool() {
        let cases = [
            (Insn::mov64_imm(0, 1), "r0 = 1"),
            (Insn::mov32_imm(0, 1), "w0 = 1"),
            (Insn::jmp_reg(op::JGT, 1, 2, 3), "if r1 > r2 goto pc+3"),
            (
                Insn::jmp32_imm(op::JEQ, 6, 0x800, -1),
                "if w6 == 0x800 goto pc-1",
            ),
            (Insn::load(op::B, 0, 1, 12), "r0 = *(u8 *)(r1 +12)"),
            (Insn::store_reg(op::DW, 10, -8, 6), "*(u64 *)(r10 -8) = r6"),
            (Insn::to_be(6, 16), "r6 = be16 r6"),
            (Insn::neg32(6), "w6 = -w6"),
            (
                Insn::call_helper(HELPER_PROBE_READ_KERNEL),
                "call bpf_probe_read_kernel#113",
            ),
            (Insn::call_local(4), "call pc+4"),
            (Insn::call_kfunc(52000), "call kfunc#52000"),
            (Insn::exit(), "exit"),
            (Insn::alu32_imm(op::LSH, 7, 2), "w7 <<= 2"),
        ];
        for (insn, text) in cases {
            assert_eq!(insn.to_string(), text);
        }
        assert_eq!(
            disassemble(&[Insn::mov32_imm(0, 0), Insn::exit()]),
            "0: w0 = 0\n1: exit\n"
        );
    }
}
