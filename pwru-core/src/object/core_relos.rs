//! Choosing which programs' CO-RE relocations aya applies. The object carries the same inlined
//! code in 76 program sections, and aya-obj relocates each of its 4,196 CO-RE records on its
//! own (no cache for a repeated field access): 31 ms natively, 0.4 s of CPU in a TCG guest,
//! where starting a session is bound by CPU. The tracepoint programs hold nine tenths of the
//! records and only the tracepoint backend loads them, so a tracer that expects a function
//! backend has them left out. This rewrites the object's `.BTF.ext` so that its CO-RE
//! subsection lists only the sections kept; the ELF keeps its layout (the freed bytes are
//! zeroed past the subsection's new length, which the header gives).

use crate::btf::elf::Elf;

/// `.BTF.ext` header fields: magic (u16), version, flags (u8 each), hdr_len (u32), then
/// offset/length pairs relative to the header's end; the CO-RE pair is at bytes 24..32.
const HEADER_CORE_RELO_OFF: usize = 24;
const HEADER_MIN_WITH_CORE: usize = 32;
const BTF_MAGIC: u16 = 0xeb9f;

/// Whether a program section's CO-RE records are left out when the tracepoint programs are
/// not needed (the prefixes of `ProgramSection::BtfTracePoint` and `RawTracePoint`).
pub(crate) fn is_tracepoint_section(name: &str) -> bool {
    name.starts_with("tp_btf/") || name.starts_with("raw_tp/")
}

/// `object` with the CO-RE records of the sections `leave_out` names removed. `None` when the
/// object is not the little-endian ELF with `.BTF` and `.BTF.ext` this expects: the caller
/// then relocates everything, as before.
pub(crate) fn without(object: &[u8], leave_out: impl Fn(&str) -> bool) -> Option<Vec<u8>> {
    let elf = Elf::parse(object).ok()?;
    let (_, btf) = elf.find_section(".BTF").ok()??;
    let (_, ext) = elf.find_section(".BTF.ext").ok()??;
    let strings = btf_strings(elf.section_bytes(&btf).ok()?)?;
    let ext_start = usize::try_from(ext.offset).ok()?;
    let ext_bytes = elf.section_bytes(&ext).ok()?;
    let u16_at = |b: &[u8], o: usize| Some(u16::from_le_bytes(b.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |b: &[u8], o: usize| {
        Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?) as usize)
    };
    if u16_at(ext_bytes, 0)? != BTF_MAGIC {
        return None;
    }
    let hdr_len = u32_at(ext_bytes, 4)?;
    if hdr_len < HEADER_MIN_WITH_CORE {
        return None;
    }
    let relo_off = u32_at(ext_bytes, HEADER_CORE_RELO_OFF)?;
    let relo_len = u32_at(ext_bytes, HEADER_CORE_RELO_OFF + 4)?;
    let start = hdr_len.checked_add(relo_off)?;
    let relos = ext_bytes.get(start..start.checked_add(relo_len)?)?;
    let rec_size = u32_at(relos, 0)?;
    if rec_size == 0 {
        return None;
    }
    // The kept blocks, each (sec_name_off, num_info, records), in their order.
    let mut kept = relos.get(..4)?.to_vec();
    let mut at = 4;
    while at < relos.len() {
        let name_off = u32_at(relos, at)?;
        let count = u32_at(relos, at + 4)?;
        let end = at.checked_add(8)?.checked_add(count.checked_mul(rec_size)?)?;
        let block = relos.get(at..end)?;
        let name = std::str::from_utf8(c_str_at(strings, name_off)?).ok()?;
        if !leave_out(name) {
            kept.extend_from_slice(block);
        }
        at = end;
    }
    let mut out = object.to_vec();
    let abs = ext_start.checked_add(start)?;
    out.get_mut(abs..abs + relos.len())?.fill(0);
    out[abs..abs + kept.len()].copy_from_slice(&kept);
    let len_at = ext_start + HEADER_CORE_RELO_OFF + 4;
    out[len_at..len_at + 4].copy_from_slice(&u32::try_from(kept.len()).ok()?.to_le_bytes());
    Some(out)
}

/// The string section of a `.BTF` blob (little-endian header: magic, version, flags,
/// hdr_len, type_off, type_len, str_off, str_len).
fn btf_strings(btf: &[u8]) -> Option<&[u8]> {
    let u32_at = |o: usize| Some(u32::from_le_bytes(btf.get(o..o + 4)?.try_into().ok()?) as usize);
    if btf.get(..2)? != BTF_MAGIC.to_le_bytes() {
        return None;
    }
    let start = u32_at(4)?.checked_add(u32_at(16)?)?;
    btf.get(start..start.checked_add(u32_at(20)?)?)
}

fn c_str_at(strings: &[u8], off: usize) -> Option<&[u8]> {
    let rest = strings.get(off..)?;
    Some(&rest[..rest.iter().position(|&b| b == 0)?])
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
        let nothing_left_out = without(pwru_ebpf::OBJECT, |_| false).expect("rewritten");
        assert_eq!(nothing_left_out, pwru_ebpf::OBJECT, "keeping every block changes nothing");
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
        let btf = kernel.to_aya().expect("aya parses the kernel BTF");
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
        assert!(same > 10 && unrelocated > 10, "{same} relocated, {unrelocated} left");
        // The relocation does change the tracepoint programs: they are not relocated here.
        assert!(whole.programs.values().any(|p| {
            let key = p.function_key();
            matches!(p.section, ProgramSection::BtfTracePoint)
                && words(&whole.functions[&key].instructions)
                    != words(&compiled.functions[&key].instructions)
        }));
    }
}
