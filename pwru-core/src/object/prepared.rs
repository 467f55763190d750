//! The object prepared once per loader, from one parse: parsed and CO-RE relocated against the
//! kernel BTF (relocated.rs), then the filter body replaces the stub's instructions (splice.rs),
//! the config becomes `.rodata`'s initial contents, the maps are created (maps.rs), and map and
//! call relocations are applied. What is left is each program's linked instructions, ready
//! for BPF_PROG_LOAD through `crate::sys`.

use std::cell::Cell;
use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};

use aya::maps::Map;
use aya_obj::generated::bpf_insn;
use aya_obj::{Object, ProgramSection};

use super::maps;
use super::splice::{bind_set_map, splice, FilterBody};
use super::LoaderError;

thread_local! {
    /// Object parses on this thread (a diagnostic for tests: one per loader).
    static PARSES: Cell<u32> = const { Cell::new(0) };
}

/// How often a BPF object was parsed on the calling thread so far: one per
/// [`Loader`](super::Loader), whatever is loaded and attached from it.
#[doc(hidden)]
#[cfg(feature = "unstable")]
pub fn object_parses() -> u32 {
    PARSES.with(Cell::get)
}

/// Counts one object parse on the calling thread.
pub(super) fn count_object_parse() {
    PARSES.with(|p| p.set(p.get() + 1));
}

pub(super) fn prepare_error(reason: impl std::fmt::Display) -> LoaderError {
    LoaderError::Prepare {
        program: "*".into(),
        reason: reason.to_string(),
    }
}

/// The relocated object and the maps its instructions refer to.
pub(crate) struct Prepared {
    obj: Object,
    /// The tracepoint programs' CO-RE relocations were not applied (core_relos.rs).
    tracepoints_unrelocated: bool,
    /// Duplicates of the map fds written into the instructions.
    _map_fds: HashMap<String, OwnedFd>,
}

/// What [`Prepared::new`] needs besides the object bytes.
pub(crate) struct Inputs<'a> {
    pub(crate) filter: &'a FilterBody,
    /// Initial contents of the read-only global [`pwru_ebpf::CONFIG_GLOBAL`].
    pub(crate) config: &'a [u8],
    pub(crate) ring_buf_bytes: u32,
    /// The config's `PWRU_CFG_*` flags (maps no flagged feature uses get one entry).
    pub(crate) flags: u32,
}

impl Prepared {
    /// Prepares `obj` (parsed and CO-RE relocated, see relocated.rs) for a session; returns
    /// it with its created maps.
    pub(crate) fn new(
        mut obj: Object,
        tracepoints_unrelocated: bool,
        inputs: &Inputs<'_>,
    ) -> Result<(Self, HashMap<String, Map>), LoaderError> {
        splice(&mut obj, pwru_ebpf::FILTER_STUB, inputs.filter)?;
        obj.patch_map_data(HashMap::from([(
            pwru_ebpf::CONFIG_GLOBAL,
            (inputs.config, true),
        )]))
        .map_err(prepare_error)?;
        let created = maps::create(
            &obj.maps,
            inputs.ring_buf_bytes,
            inputs.filter.set_keys(),
            inputs.flags,
        )?;
        if inputs.filter.uses_set_map() {
            // The filter's address-set lookups name the object's set map, now filled.
            let name = pwru_ebpf::MAP_FILTER_SETS;
            let fd = created
                .fds
                .get(name)
                .ok_or_else(|| LoaderError::NoMap(name.to_string()))?;
            bind_set_map(&mut obj, pwru_ebpf::FILTER_STUB, fd.as_raw_fd())?;
        }
        let defs = std::mem::take(&mut obj.maps);
        let text_sections = obj.functions.keys().map(|(s, _)| *s).collect();
        let mut with_fds = Vec::new();
        for (name, def) in &defs {
            let fd = created
                .fds
                .get(name)
                .ok_or_else(|| LoaderError::NoMap(name.clone()))?;
            with_fds.push((name.as_str(), fd.as_raw_fd(), def));
        }
        obj.relocate_maps(with_fds.into_iter(), &text_sections)
            .map_err(prepare_error)?;
        obj.relocate_calls(&text_sections).map_err(prepare_error)?;
        Ok((
            Prepared {
                obj,
                tracepoints_unrelocated,
                _map_fds: created.fds,
            },
            created.maps,
        ))
    }

    /// The linked instructions of program `name` (entry function first, callees after).
    pub(crate) fn insns(&self, name: &str) -> Result<&[bpf_insn], LoaderError> {
        let prog = self
            .obj
            .programs
            .get(name)
            .ok_or_else(|| LoaderError::NoProgram(name.to_string()))?;
        // Never load a program whose field offsets were not relocated: its reads would be
        // wrong on this kernel, silently.
        if self.tracepoints_unrelocated
            && matches!(
                prog.section,
                ProgramSection::BtfTracePoint | ProgramSection::RawTracePoint
            )
        {
            return Err(LoaderError::Prepare {
                program: name.to_string(),
                reason: "this loader was prepared for a function backend, without the \
                         tracepoint programs' CO-RE relocations"
                    .into(),
            });
        }
        self.obj
            .functions
            .get(&prog.function_key())
            .map(|f| f.instructions.as_slice())
            .ok_or_else(|| LoaderError::NoProgram(name.to_string()))
    }

    /// Whether program `name` is in a `kretprobe/` section.
    pub(crate) fn is_kretprobe(&self, name: &str) -> bool {
        self.obj
            .programs
            .get(name)
            .is_some_and(|p| matches!(p.section, ProgramSection::KRetProbe))
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
