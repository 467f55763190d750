//! One subprogram body holding several filters behind a selector.

use crate::insn::{op, Insn};
use crate::translate_error::TranslateError;

/// Builds ONE function body that runs filter number `R1` of `filters`.
///
/// Entry: R1 = selector index, R2 = data, R3 = data_end (C: `int f(u64 which, u64 data,
/// u64 data_end)`). It moves data/data_end to R1/R2 and continues into the selected filter,
/// whose own `exit` returns; an out-of-range selector returns 0 (no match). Every filter must
/// be a body produced by [`crate::translate()`] (self-contained, forward jumps only), all in the
/// same [`crate::Mode`]. Stack use is that of the largest filter.
pub fn dispatch(filters: &[&[Insn]]) -> Result<Vec<Insn>, TranslateError> {
    let n = filters.len();
    let mut out = Vec::with_capacity(n + 2 + filters.iter().map(|f| f.len() + 2).sum::<usize>());
    // Chain of n compares, then the out-of-range exit (2 insns), then the filters.
    let mut start = n + 2;
    for (i, filter) in filters.iter().enumerate() {
        let distance = start as i64 - i as i64 - 1;
        if distance > i16::MAX as i64 {
            return Err(TranslateError::JumpTooFar { index: i, distance });
        }
        out.push(Insn::jmp_imm(op::JEQ, 1, i as i32, distance as i16));
        start += filter.len() + 2;
    }
    out.push(Insn::mov32_imm(0, 0));
    out.push(Insn::exit());
    for filter in filters {
        out.push(Insn::mov64_reg(1, 2));
        out.push(Insn::mov64_reg(2, 3));
        out.extend_from_slice(filter);
    }
    Ok(out)
}
