//! Typed tree -> eBPF function body (`bpf_probe_read_kernel` for every read).
//!
//! Convention: R1 = the root object's address as a plain number (C: `f(u64 root, ...)`); the
//! body returns in R0 1/0 for a condition, the 64-bit value for a value. A read the kernel
//! refuses (a NULL or stale pointer) reads 0, as the helper leaves its buffer zeroed on failure.
//! R6 keeps the root across helper calls; the read buffer is the stack slot at R10-8, values
//! waiting for the other operand of a binary operator are spilled below it.

use super::error::At;
use super::lexer::CmpOp;
use super::resolve::{Access, Node, Value};
use crate::insn::{op, Insn, Reg, HELPER_PROBE_READ_KERNEL};

/// Stack slots for spilled operands (8 bytes each, below the read buffer).
const MAX_SPILLS: i16 = 48;
const READ_SLOT: i16 = -8;

#[derive(Default)]
struct Asm {
    out: Vec<Insn>,
    labels: Vec<Option<usize>>,
    fixups: Vec<(usize, usize)>,
}

impl Asm {
    fn label(&mut self) -> usize {
        self.labels.push(None);
        self.labels.len() - 1
    }
    fn bind(&mut self, l: usize) {
        self.labels[l] = Some(self.out.len());
    }
    fn jump(&mut self, insn: Insn, l: usize) {
        self.fixups.push((self.out.len(), l));
        self.out.push(insn);
    }
    fn finish(mut self) -> Result<Vec<Insn>, At> {
        for (at, l) in self.fixups {
            let target = self.labels[l].ok_or_else(|| At::new(1, "internal: unbound label"))?;
            let off = target as i64 - at as i64 - 1;
            self.out[at].off = i16::try_from(off)
                .map_err(|_| At::new(1, "the expression is too long; split it"))?;
        }
        Ok(self.out)
    }
}

/// The body of a condition.
pub(crate) fn condition(node: &Node) -> Result<Vec<Insn>, At> {
    let mut a = Asm::default();
    a.out.push(Insn::mov64_reg(6, 1));
    let no = a.label();
    cond(&mut a, node, no, 0)?;
    a.out.push(Insn::mov64_imm(0, 1));
    a.out.push(Insn::exit());
    a.bind(no);
    a.out.push(Insn::mov64_imm(0, 0));
    a.out.push(Insn::exit());
    a.finish()
}

/// The body of a value.
pub(crate) fn value(v: &Value) -> Result<Vec<Insn>, At> {
    let mut a = Asm::default();
    a.out.push(Insn::mov64_reg(6, 1));
    val(&mut a, v, 0)?;
    a.out.push(Insn::exit());
    a.finish()
}

/// Falls through when `node` holds, jumps to `no` when it does not.
fn cond(a: &mut Asm, node: &Node, no: usize, depth: i16) -> Result<(), At> {
    match node {
        Node::And(x, y) => {
            cond(a, x, no, depth)?;
            cond(a, y, no, depth)
        }
        Node::Or(x, y) => {
            let yes = a.label();
            let try_y = a.label();
            cond(a, x, try_y, depth)?;
            a.jump(Insn::ja(0), yes);
            a.bind(try_y);
            cond(a, y, no, depth)?;
            a.bind(yes);
            Ok(())
        }
        Node::Not(x) => {
            let yes = a.label();
            cond(a, x, yes, depth)?;
            a.jump(Insn::ja(0), no);
            a.bind(yes);
            Ok(())
        }
        Node::Truth(v) => {
            val(a, v, depth)?;
            a.jump(Insn::jmp_imm(op::JEQ, 0, 0, 0), no);
            Ok(())
        }
        Node::Cmp {
            op: cmp,
            lhs,
            rhs,
            signed,
        } => {
            // Keep a literal on the right, where it can be an immediate.
            let (cmp, lhs, rhs) = match (lhs, rhs) {
                (Value::Const(_), r) if !matches!(r, Value::Const(_)) => (cmp.mirrored(), r, lhs),
                _ => (*cmp, lhs, rhs),
            };
            let jop = failing_jump(cmp, *signed);
            if let Some(imm) = rhs_imm(rhs) {
                val(a, lhs, depth)?;
                a.jump(Insn::jmp_imm(jop, 0, imm, 0), no);
            } else {
                let slot = spill_slot(depth)?;
                val(a, lhs, depth)?;
                a.out.push(Insn::store_reg(op::DW, 10, slot, 0));
                val(a, rhs, depth + 1)?;
                a.out.push(Insn::load(op::DW, 1, 10, slot));
                a.jump(Insn::jmp_reg(jop, 1, 0, 0), no);
            }
            Ok(())
        }
    }
}

/// A literal that a 64-bit compare can take as its (sign-extended) immediate.
fn rhs_imm(v: &Value) -> Option<i32> {
    match v {
        Value::Const(c) => {
            let i = *c as i64;
            i32::try_from(i).ok()
        }
        _ => None,
    }
}

/// The jump taken when `cmp` does NOT hold.
fn failing_jump(cmp: CmpOp, signed: bool) -> u8 {
    match (cmp, signed) {
        (CmpOp::Eq, _) => op::JNE,
        (CmpOp::Ne, _) => op::JEQ,
        (CmpOp::Lt, false) => op::JGE,
        (CmpOp::Lt, true) => op::JSGE,
        (CmpOp::Le, false) => op::JGT,
        (CmpOp::Le, true) => op::JSGT,
        (CmpOp::Gt, false) => op::JLE,
        (CmpOp::Gt, true) => op::JSLE,
        (CmpOp::Ge, false) => op::JLT,
        (CmpOp::Ge, true) => op::JSLT,
    }
}

fn spill_slot(depth: i16) -> Result<i16, At> {
    if depth >= MAX_SPILLS {
        return Err(At::new(
            1,
            format!("the expression nests more than {MAX_SPILLS} operands; simplify it"),
        ));
    }
    Ok(READ_SLOT - 8 * (depth + 1))
}

/// Computes `v` into R0 (clobbers R1-R5).
fn val(a: &mut Asm, v: &Value, depth: i16) -> Result<(), At> {
    match v {
        Value::Const(c) => {
            load_const(a, 0, *c);
            Ok(())
        }
        Value::Field(acc) => {
            read(a, acc);
            Ok(())
        }
        Value::Mask(x, y) => {
            match y.as_ref() {
                Value::Const(c) if i32::try_from(*c as i64).is_ok_and(|i| i >= 0) => {
                    val(a, x, depth)?;
                    a.out.push(Insn::alu64_imm(op::AND, 0, *c as i32));
                }
                _ => {
                    let slot = spill_slot(depth)?;
                    val(a, x, depth)?;
                    a.out.push(Insn::store_reg(op::DW, 10, slot, 0));
                    val(a, y, depth + 1)?;
                    a.out.push(Insn::load(op::DW, 1, 10, slot));
                    a.out.push(Insn::alu64_reg(op::AND, 0, 1));
                }
            }
            Ok(())
        }
    }
}

/// `reg = c` without `ld_imm64` (the loader splices bodies that carry no 16-byte
/// instructions): one move when `c` fits a sign-extended immediate, else high half, shift,
/// or low half (through R2).
fn load_const(a: &mut Asm, reg: Reg, c: u64) {
    if let Ok(i) = i32::try_from(c as i64) {
        a.out.push(Insn::mov64_imm(reg, i));
        return;
    }
    a.out.push(Insn::mov64_imm(reg, (c >> 32) as u32 as i32));
    a.out.push(Insn::alu64_imm(op::LSH, reg, 32));
    a.out.push(Insn::mov32_imm(2, c as u32 as i32));
    a.out.push(Insn::alu64_reg(op::OR, reg, 2));
}

/// `bpf_probe_read_kernel(r10 - 8, bytes, r3 + offset)` with the slot zeroed first (a short
/// read leaves the upper bytes 0, and the verifier sees the whole slot written).
fn probe_read(a: &mut Asm, bytes: u8, offset: u32) {
    a.out.push(Insn::store_imm(op::DW, 10, READ_SLOT, 0));
    a.out.push(Insn::mov64_reg(1, 10));
    a.out
        .push(Insn::alu64_imm(op::ADD, 1, i32::from(READ_SLOT)));
    a.out.push(Insn::mov64_imm(2, i32::from(bytes)));
    if offset != 0 {
        // Offsets come from BTF members: well below 2^31.
        a.out.push(Insn::alu64_imm(op::ADD, 3, offset as i32));
    }
    a.out.push(Insn::call_helper(HELPER_PROBE_READ_KERNEL));
}

/// The field's value into R0, sign- or zero-extended to 64 bits.
fn read(a: &mut Asm, acc: &Access) {
    a.out.push(Insn::mov64_reg(3, 6));
    for &d in &acc.derefs {
        probe_read(a, 8, d);
        a.out.push(Insn::load(op::DW, 3, 10, READ_SLOT));
    }
    probe_read(a, acc.bytes, acc.offset);
    a.out.push(Insn::load(op::DW, 0, 10, READ_SLOT));
    // Little endian: the value is bits shift..shift+bits of the loaded word. Shift it to the
    // top, then back down, arithmetically for signed types.
    let top = 64 - i32::from(acc.shift) - i32::from(acc.bits);
    let down = 64 - i32::from(acc.bits);
    if top > 0 {
        a.out.push(Insn::alu64_imm(op::LSH, 0, top));
    }
    if down > 0 {
        let shift = if acc.signed { op::ARSH } else { op::RSH };
        a.out.push(Insn::alu64_imm(shift, 0, down));
    }
}
