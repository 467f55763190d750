//! Checks a classic BPF program before translation and finds its reachable instructions.

use crate::cbpf::CbpfInsn;
use crate::translate_error::TranslateError;

// Classic BPF opcode fields (linux/filter.h, pcap/bpf.h).
pub(crate) const LD: u16 = 0x00;
pub(crate) const LDX: u16 = 0x01;
pub(crate) const ST: u16 = 0x02;
pub(crate) const STX: u16 = 0x03;
pub(crate) const ALU: u16 = 0x04;
pub(crate) const JMP: u16 = 0x05;
pub(crate) const RET: u16 = 0x06;
pub(crate) const MISC: u16 = 0x07;

pub(crate) const H: u16 = 0x08;
pub(crate) const B: u16 = 0x10;

pub(crate) const IMM: u16 = 0x00;
pub(crate) const ABS: u16 = 0x20;
pub(crate) const IND: u16 = 0x40;
pub(crate) const MEM: u16 = 0x60;
pub(crate) const LEN: u16 = 0x80;
pub(crate) const MSH: u16 = 0xa0;

pub(crate) const K: u16 = 0x00;
pub(crate) const X: u16 = 0x08;
pub(crate) const A: u16 = 0x10;

pub(crate) const ADD: u16 = 0x00;
pub(crate) const SUB: u16 = 0x10;
pub(crate) const MUL: u16 = 0x20;
pub(crate) const DIV: u16 = 0x30;
pub(crate) const OR: u16 = 0x40;
pub(crate) const AND: u16 = 0x50;
pub(crate) const LSH: u16 = 0x60;
pub(crate) const RSH: u16 = 0x70;
pub(crate) const NEG: u16 = 0x80;
pub(crate) const MOD: u16 = 0x90;
pub(crate) const XOR: u16 = 0xa0;

pub(crate) const JA: u16 = 0x00;
pub(crate) const JEQ: u16 = 0x10;
pub(crate) const JGT: u16 = 0x20;
pub(crate) const JGE: u16 = 0x30;
pub(crate) const JSET: u16 = 0x40;

pub(crate) const TAX: u16 = 0x00;
pub(crate) const TXA: u16 = 0x80;

/// Number of scratch memory words M[0..16).
pub(crate) const MEMWORDS: u32 = 16;

/// Lowest offset of the Linux socket-filter extension areas (`SKF_LL_OFF` = -0x200000).
const SKF_LOWEST: u32 = 0xffe0_0000;
const SKF_AD_OFF: u32 = 0xffff_f000;
const SKF_NET_OFF: u32 = 0xfff0_0000;

/// The class of an opcode.
pub(crate) fn class(code: u16) -> u16 {
    code & 0x07
}

/// Size in bytes of a load opcode's BPF_B/H/W field.
pub(crate) fn load_size(code: u16) -> u32 {
    match code & 0x18 {
        B => 1,
        H => 2,
        _ => 4,
    }
}

fn extension_name(k: u32) -> &'static str {
    if k < SKF_AD_OFF {
        return if k >= SKF_NET_OFF {
            "SKF_NET_OFF (loads relative to the network header)"
        } else {
            "SKF_LL_OFF (loads relative to the link-layer header)"
        };
    }
    match k - SKF_AD_OFF {
        0 => "SKF_AD_PROTOCOL (skb->protocol)",
        4 => "SKF_AD_PKTTYPE (pcap `inbound`/`outbound`)",
        8 => "SKF_AD_IFINDEX (pcap `ifindex`)",
        12 => "SKF_AD_NLATTR",
        16 => "SKF_AD_NLATTR_NEST",
        20 => "SKF_AD_MARK (skb->mark)",
        24 => "SKF_AD_QUEUE",
        28 => "SKF_AD_HATYPE",
        32 => "SKF_AD_RXHASH",
        36 => "SKF_AD_CPU",
        40 => "SKF_AD_ALU_XOR_X",
        44 => "SKF_AD_VLAN_TAG (VLAN tag from skb metadata)",
        48 => "SKF_AD_VLAN_TAG_PRESENT (VLAN tag from skb metadata)",
        52 => "SKF_AD_PAY_OFFSET",
        56 => "SKF_AD_RANDOM",
        60 => "SKF_AD_VLAN_TPID",
        _ => "an unknown SKF_AD_* extension",
    }
}

fn valid_opcode(code: u16) -> bool {
    matches!(
        code,
        // ret
        0x06 | 0x16
        // ld abs/ind, len, imm, mem; ldx imm, mem, len, msh
        | 0x20 | 0x28 | 0x30 | 0x40 | 0x48 | 0x50 | 0x80 | 0x00 | 0x60
        | 0x01 | 0x61 | 0x81 | 0xb1
        // st, stx
        | 0x02 | 0x03
        // misc tax/txa
        | 0x07 | 0x87
    ) || (class(code) == ALU
        && matches!(
            code & 0xf0,
            ADD | SUB | MUL | DIV | OR | AND | LSH | RSH | MOD | XOR
        )
        && code & !0xf8 == ALU)
        || code == ALU | NEG
        || (class(code) == JMP
            && matches!(code & 0xf0, JEQ | JGT | JGE | JSET)
            && code & !0xf8 == JMP)
        || code == JMP | JA
}

/// The instructions that can follow `pc` (at most two), given the program length.
pub(crate) fn successors(insns: &[CbpfInsn], pc: usize) -> [Option<usize>; 2] {
    let i = insns[pc];
    match class(i.code) {
        RET => [None, None],
        JMP if i.code & 0xf0 == JA => [Some(pc + 1 + i.k as usize), None],
        JMP => [Some(pc + 1 + i.jt as usize), Some(pc + 1 + i.jf as usize)],
        _ => [Some(pc + 1), None],
    }
}

/// Checks every instruction (opcodes, scratch indices, constant divisors and shifts, jump
/// targets, extensions) and that no reachable path runs off the end.
pub(crate) fn validate(insns: &[CbpfInsn]) -> Result<(), TranslateError> {
    if insns.is_empty() {
        return Err(TranslateError::Empty);
    }
    let len = insns.len();
    for (index, i) in insns.iter().enumerate() {
        let code = i.code;
        if code > 0xff || !valid_opcode(code) {
            return Err(TranslateError::InvalidOpcode { index, code });
        }
        match class(code) {
            LD | LDX if code & 0xe0 == MEM && i.k >= MEMWORDS => {
                return Err(TranslateError::ScratchOutOfRange { index, k: i.k })
            }
            ST | STX if i.k >= MEMWORDS => {
                return Err(TranslateError::ScratchOutOfRange { index, k: i.k })
            }
            LD if code & 0xe0 == ABS && i.k >= SKF_LOWEST => {
                return Err(TranslateError::Extension {
                    index,
                    name: extension_name(i.k),
                })
            }
            ALU if code & 0x08 == K => match code & 0xf0 {
                DIV | MOD if i.k == 0 => return Err(TranslateError::DivisionByZero { index }),
                LSH | RSH if i.k >= 32 => {
                    return Err(TranslateError::ShiftTooLarge { index, k: i.k })
                }
                _ => {}
            },
            JMP => {
                if code & 0xf0 == JA {
                    if (i.k as i32) < 0 {
                        return Err(TranslateError::BackwardJump { index });
                    }
                    if index as u64 + 1 + i.k as u64 >= len as u64 {
                        return Err(TranslateError::JumpOutOfRange { index });
                    }
                } else if index + 1 + i.jt as usize >= len || index + 1 + i.jf as usize >= len {
                    return Err(TranslateError::JumpOutOfRange { index });
                }
            }
            _ => {}
        }
    }
    // Conditional jumps were checked to stay inside; only a last instruction that is neither
    // `ret` nor a jump can run off the end.
    let last = insns[len - 1];
    if class(last.code) != RET && class(last.code) != JMP {
        return Err(TranslateError::FallsOffEnd { index: len - 1 });
    }
    Ok(())
}

/// Which instructions are reachable from the first one; `stops(insn)` marks instructions that
/// never continue (e.g. loads that always fail in a mode). Jump targets must have been validated.
pub(crate) fn reachable(insns: &[CbpfInsn], stops: impl Fn(&CbpfInsn) -> bool) -> Vec<bool> {
    let len = insns.len();
    let mut seen = vec![false; len];
    if len == 0 {
        return seen;
    }
    let mut work = vec![0usize];
    seen[0] = true;
    while let Some(pc) = work.pop() {
        if stops(&insns[pc]) {
            continue;
        }
        for next in successors(insns, pc).into_iter().flatten() {
            if next < len && !seen[next] {
                seen[next] = true;
                work.push(next);
            }
        }
    }
    seen
}
