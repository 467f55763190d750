//! An instruction buffer with symbolic forward-jump targets, resolved at the end.

use std::collections::HashMap;

use crate::insn::Insn;
use crate::translate::TranslateError;

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

pub(crate) struct Emitter {
    out: Vec<Insn>,
    bound: HashMap<Label, usize>,
    fixups: Vec<(usize, Label)>,
    locals: usize,
}

impl Emitter {
    pub(crate) fn new(capacity_hint: usize) -> Emitter {
        Emitter {
            out: Vec::with_capacity(capacity_hint * 3 + 16),
            bound: HashMap::new(),
            fixups: Vec::new(),
            locals: 0,
        }
    }

    pub(crate) fn push(&mut self, insn: Insn) {
        self.out.push(insn);
    }

    /// Emits a jump instruction whose `off` is filled in by [`Emitter::finish`].
    pub(crate) fn jump(&mut self, insn: Insn, target: Label) {
        self.fixups.push((self.out.len(), target));
        self.out.push(insn);
    }

    pub(crate) fn new_label(&mut self) -> Label {
        self.locals += 1;
        Label::Local(self.locals)
    }

    pub(crate) fn bind(&mut self, label: Label) {
        self.bound.insert(label, self.out.len());
    }

    /// Resolves every jump; all are forward and must fit the 16-bit offset.
    pub(crate) fn finish(mut self) -> Result<Vec<Insn>, TranslateError> {
        for (at, label) in &self.fixups {
            // Every label used is bound by construction; a missing one would be a bug here,
            // reported as an out-of-range jump rather than a panic.
            let Some(&target) = self.bound.get(label) else {
                return Err(TranslateError::JumpTooFar {
                    index: *at,
                    distance: i64::MAX,
                });
            };
            let distance = target as i64 - *at as i64 - 1;
            if !(0..=i16::MAX as i64).contains(&distance) {
                return Err(TranslateError::JumpTooFar {
                    index: *at,
                    distance,
                });
            }
            self.out[*at].off = distance as i16;
        }
        Ok(self.out)
    }
}
