//! Choosing which programs' CO-RE relocations aya applies. The object carries the same inlined
//! code in 76 program sections, and aya-obj relocates each of its 4,196 CO-RE records on its
//! own (no cache for a repeated field access): 31 ms natively, 0.4 s of CPU in a TCG guest,
//! where starting a session is bound by CPU. The tracepoint programs hold nine tenths of the
//! records and only the tracepoint backend loads them, so a tracer that expects a function
//! backend has them left out. This rewrites the object's `.BTF.ext` so that its CO-RE
//! subsection lists only the sections kept; the ELF keeps its layout (the freed bytes are
//! zeroed past the subsection's new length, which the header gives).

use crate::btf::elf::Elf;
use crate::btf::Btf;

/// `.BTF.ext` header fields: magic (u16), version, flags (u8 each), hdr_len (u32), then
/// offset/length pairs relative to the header's end; the CO-RE pair is at bytes 24..32.
const HEADER_CORE_RELO_OFF: u64 = 24;
const HEADER_MIN_WITH_CORE: u64 = 32;
const BTF_MAGIC: u16 = 0xeb9f;

/// Whether a program section's CO-RE records are left out when the tracepoint programs are
/// not needed (the prefixes of `ProgramSection::BtfTracePoint` and `RawTracePoint`).
pub(crate) fn is_tracepoint_section(name: &str) -> bool {
    name.starts_with("tp_btf/") || name.starts_with("raw_tp/")
}

/// `object` with the CO-RE records of the sections `leave_out` names removed. `None` when the
/// object is not the little-endian ELF with `.BTF` and `.BTF.ext` this expects: the caller
/// then relocates everything, as before. Reads go through the crate's ELF and BTF readers;
/// offsets are absolute in the file.
pub(crate) fn without(object: &[u8], leave_out: impl Fn(&str) -> bool) -> Option<Vec<u8>> {
    let elf = Elf::parse(object).ok()?;
    let (_, ext) = elf.find_section(".BTF.ext").ok()??;
    // Section names in the CO-RE subsection are offsets into the object's BTF strings.
    let btf = Btf::from_elf(object).ok()?;
    if btf.is_big_endian() || elf.u16(ext.offset).ok()? != BTF_MAGIC {
        return None;
    }
    let u32_at = |off: u64| elf.u32(off).ok().map(u64::from);
    let hdr_len = u32_at(ext.offset + 4)?;
    if hdr_len < HEADER_MIN_WITH_CORE {
        return None;
    }
    let relo_len = u32_at(ext.offset + HEADER_CORE_RELO_OFF + 4)?;
    let start = ext.offset + hdr_len + u32_at(ext.offset + HEADER_CORE_RELO_OFF)?;
    let end = start.checked_add(relo_len)?;
    if end > ext.offset.checked_add(ext.size)? {
        return None;
    }
    let rec_size = u32_at(start)?;
    if rec_size == 0 {
        return None;
    }
    // The kept blocks, each (sec_name_off, num_info, records), in their order.
    let range = |from: u64, to: u64| Some(usize::try_from(from).ok()?..usize::try_from(to).ok()?);
    let mut kept = object.get(range(start, start + 4)?)?.to_vec();
    let mut at = start + 4;
    while at < end {
        let name = btf.str_at(elf.u32(at).ok()?).ok()?;
        let block_end = at.checked_add(8 + u32_at(at + 4)?.checked_mul(rec_size)?)?;
        if block_end > end {
            return None;
        }
        if !leave_out(name) {
            kept.extend_from_slice(object.get(range(at, block_end)?)?);
        }
        at = block_end;
    }
    let mut out = object.to_vec();
    let relos = range(start, end)?;
    let kept_at = relos.start..relos.start + kept.len();
    out.get_mut(relos)?.fill(0);
    out.get_mut(kept_at)?.copy_from_slice(&kept);
    let len_at = range(
        ext.offset + HEADER_CORE_RELO_OFF + 4,
        ext.offset + HEADER_CORE_RELO_OFF + 8,
    )?;
    out.get_mut(len_at)?
        .copy_from_slice(&u32::try_from(kept.len()).ok()?.to_le_bytes());
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aya_obj::generated::bpf_insn;
    use aya_obj::{Object, ProgramSection};

    /// Instructions as comparable values (`bpf_insn` has no `PartialEq`).
    fn words(insns: &[bpf_insn]) -> Vec<(u8, u8, u8, i16, i32)> {
        insns
            .iter()
            .map(|i| (i.code, i.dst_reg(), i.src_reg(), i.off, i.imm))
            .collect()
    }

    #[test]
    fn the_tracepoint_programs_keep_their_code_and_lose_only_their_core_records() {
        let all = Object::parse(pwru_ebpf::OBJECT).expect("object");
        let trimmed_bytes = without(pwru_ebpf::OBJECT, is_tracepoint_section).expect("rewritten");
        assert_eq!(trimmed_bytes.len(), pwru_ebpf::OBJECT.len());
        let trimmed = Object::parse(&trimmed_bytes).expect("the rewritten object parses");
        assert_eq!(all.programs.len(), trimmed.programs.len());
        for (key, f) in &all.functions {
            assert_eq!(
                trimmed.functions.get(key).map(|t| words(&t.instructions)),
                Some(words(&f.instructions)),
                "function {key:?} changed"
            );
        }
        // Every kind of program is still there; only the tracepoint ones are unrelocated.
        assert!(trimmed
            .programs
            .values()
            .any(|p| matches!(p.section, ProgramSection::BtfTracePoint)));
        // Anything but the expected ELF is left to be relocated whole.
        assert!(without(b"not an object", |_| true).is_none());
        let cut = &pwru_ebpf::OBJECT[..pwru_ebpf::OBJECT.len() / 2];
        assert!(
            without(cut, |_| true).is_none(),
            "a truncated object was rewritten"
        );
        let nothing_left_out = without(pwru_ebpf::OBJECT, |_| false).expect("rewritten");
        assert_eq!(
            nothing_left_out,
            pwru_ebpf::OBJECT,
            "keeping every block changes nothing"
        );
    }

    /// Differential, against this machine's kernel BTF: relocated from the rewritten object,
    /// every program but the tracepoint ones has exactly the instructions of the whole
    /// relocation, and the tracepoint ones are left as compiled.
    #[test]
    fn relocating_the_rewritten_object_changes_only_the_tracepoint_programs() {
        let Ok(kernel) = crate::btf::Btf::vmlinux() else {
            eprintln!("SKIP relocating_the_rewritten_object: this machine lacks kernel BTF");
            return;
        };
        let btf = kernel
            .to_aya_uncounted()
            .expect("aya parses the kernel BTF");
        let compiled = Object::parse(pwru_ebpf::OBJECT).expect("object");
        let mut whole = compiled.clone();
        whole.relocate_btf(&btf).expect("whole relocation");
        let bytes = without(pwru_ebpf::OBJECT, is_tracepoint_section).expect("rewritten");
        let mut part = Object::parse(&bytes).expect("rewritten object");
        part.relocate_btf(&btf).expect("partial relocation");
        let (mut same, mut unrelocated) = (0, 0);
        for prog in whole.programs.values() {
            let key = prog.function_key();
            let tracepoint = matches!(
                prog.section,
                ProgramSection::BtfTracePoint | ProgramSection::RawTracePoint
            );
            let expected = if tracepoint { &compiled } else { &whole };
            assert_eq!(
                words(&part.functions[&key].instructions),
                words(&expected.functions[&key].instructions),
                "{:?}",
                prog.section
            );
            if tracepoint {
                unrelocated += 1;
            } else {
                same += 1;
            }
        }
        assert!(
            same > 10 && unrelocated > 10,
            "{same} relocated, {unrelocated} left"
        );
        // The relocation does change the tracepoint programs: they are not relocated here.
        assert!(whole.programs.values().any(|p| {
            let key = p.function_key();
            matches!(p.section, ProgramSection::BtfTracePoint)
                && words(&whole.functions[&key].instructions)
                    != words(&compiled.functions[&key].instructions)
        }));
    }
}
