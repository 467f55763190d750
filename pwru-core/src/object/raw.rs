//! The spliced object prepared by aya-obj for programs aya cannot load itself
//! (kprobe.multi, fentry/fexit per target, fentry on BPF programs): CO-RE relocated against
//! the kernel BTF, map references pointing at the maps aya created, functions linked.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};

use aya_obj::generated::bpf_insn;
use aya_obj::Object;

use crate::backend::LoaderError;

pub(crate) struct RawObject {
    obj: Object,
}

fn prepare(reason: impl std::fmt::Display) -> LoaderError {
    LoaderError::Prepare {
        program: "*".into(),
        reason: reason.to_string(),
    }
}

impl RawObject {
    /// `map_fds` are duplicates of aya's map fds, kept by the loader for as long as raw
    /// loads can happen (instructions carry their numbers until BPF_PROG_LOAD).
    pub(crate) fn new(
        spliced: &[u8],
        btf: &aya::Btf,
        map_fds: &HashMap<String, OwnedFd>,
    ) -> Result<Self, LoaderError> {
        let mut obj = Object::parse(spliced).map_err(prepare)?;
        obj.relocate_btf(btf).map_err(prepare)?;
        let maps = std::mem::take(&mut obj.maps);
        let text_sections = obj.functions.keys().map(|(s, _)| *s).collect();
        let mut with_fds = Vec::new();
        for (name, map) in &maps {
            let fd = map_fds
                .get(name)
                .ok_or_else(|| LoaderError::NoMap(name.clone()))?;
            with_fds.push((name.as_str(), fd.as_raw_fd(), map));
        }
        obj.relocate_maps(with_fds.into_iter(), &text_sections)
            .map_err(prepare)?;
        obj.relocate_calls(&text_sections).map_err(prepare)?;
        Ok(RawObject { obj })
    }

    /// The linked instructions of program `name` (entry function first, callees after).
    pub(crate) fn insns(&self, name: &str) -> Result<&[bpf_insn], LoaderError> {
        let prog = self
            .obj
            .programs
            .get(name)
            .ok_or_else(|| LoaderError::NoProgram(name.to_string()))?;
        self.obj
            .functions
            .get(&prog.function_key())
            .map(|f| f.instructions.as_slice())
            .ok_or_else(|| LoaderError::NoProgram(name.to_string()))
    }
}

/// Replaces the immediates of the `ld_imm64` whose 64-bit constant is `magic` with `value`.
/// Returns false if the program has no such instruction.
pub(crate) fn patch_ld_imm64(insns: &mut [bpf_insn], magic: u64, value: u64) -> bool {
    let mut found = false;
    for i in 0..insns.len().saturating_sub(1) {
        if insns[i].code == 0x18
            && insns[i].imm as u32 == magic as u32
            && insns[i + 1].imm as u32 == (magic >> 32) as u32
        {
            insns[i].imm = value as u32 as i32;
            insns[i + 1].imm = (value >> 32) as u32 as i32;
            found = true;
        }
    }
    found
}
