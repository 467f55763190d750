//! An instruction buffer with symbolic forward-jump targets, resolved at the end.

use crate::insn::Insn;
use crate::translate_error::TranslateError;

/// A jump target.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum Label {
    /// The first eBPF instruction of classic BPF instruction n.
    Cbpf(usize),
    /// The shared "return 0" block.
    NoMatch,
    /// A label local to one translated instruction.
    Local(usize),
}

const UNBOUND: u32 = u32::MAX;

pub(crate) struct Emitter {
    out: Vec<Insn>,
    cbpf: Vec<u32>,
    nomatch: u32,
    locals: Vec<u32>,
    fixups: Vec<(u32, Label)>,
}

impl Emitter {
    pub(crate) fn new(cbpf_len: usize) -> Emitter {
        Emitter {
            out: Vec::with_capacity(cbpf_len * 3 + 16),
            cbpf: vec![UNBOUND; cbpf_len],
            nomatch: UNBOUND,
            locals: Vec::new(),
            fixups: Vec::with_capacity(cbpf_len * 2),
        }
    }

    pub(crate) fn push(&mut self, insn: Insn) {
        self.out.push(insn);
    }

    /// Emits a jump instruction whose `off` is filled in by [`Emitter::finish`].
    pub(crate) fn jump(&mut self, insn: Insn, target: Label) {
        self.fixups.push((self.out.len() as u32, target));
        self.out.push(insn);
    }

    pub(crate) fn new_label(&mut self) -> Label {
        self.locals.push(UNBOUND);
        Label::Local(self.locals.len() - 1)
    }

    pub(crate) fn bind(&mut self, label: Label) {
        let here = self.out.len() as u32;
        match label {
            Label::Cbpf(n) => self.cbpf[n] = here,
            Label::NoMatch => self.nomatch = here,
            Label::Local(n) => self.locals[n] = here,
        }
    }

    /// Resolves every jump; all are forward and must fit the 16-bit offset.
    pub(crate) fn finish(mut self) -> Result<Vec<Insn>, TranslateError> {
        for &(at, label) in &self.fixups {
            let target = match label {
                Label::Cbpf(n) => self.cbpf[n],
                Label::NoMatch => self.nomatch,
                Label::Local(n) => self.locals[n],
            };
            // Every label used is bound by construction; an unbound one (a bug) is reported
            // as an impossible jump rather than a panic.
            let distance = if target == UNBOUND {
                i64::MAX
            } else {
                target as i64 - at as i64 - 1
            };
            if !(0..=i16::MAX as i64).contains(&distance) {
                return Err(TranslateError::JumpTooFar {
                    index: at as usize,
                    distance,
                });
            }
            self.out[at as usize].off = distance as i16;
        }
        Ok(self.out)
    }
}
