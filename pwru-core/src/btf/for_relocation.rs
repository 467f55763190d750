//! The kernel BTF as aya's CO-RE relocation needs it: every type id kept, but only the types
//! a relocation can look at filled in. aya parses the whole BTF it is given (~130,000 types,
//! its own copy of what this crate already read) and scans every type's name once per local
//! type it relocates; in a TCG guest that was 0.2 s of CPU for the parse and as much again
//! for the scans, at the start of every session.
//!
//! A CO-RE relocation looks up target types by name (the local type's name without its
//! `___flavour`), then walks members, array elements and modifiers inside them; an access
//! never goes through a pointer (a dereference is a new relocation, with its own root), and
//! for a pointer field only its kind is compared. So the types kept are those whose name is a
//! type name of the object, and what they reach without going through a pointer. Every other
//! type becomes an anonymous pointer to `void` (12 bytes, no name), and those past the last
//! type kept are left out: ids stay those of the kernel, which type-id relocations need.

use std::collections::HashSet;

use super::types::{extra_len, Kind};
use super::{read_u32, Btf, TYPE_HEAD_LEN};
use crate::fnv::BuildFnv;

/// The placeholder of a type no relocation can reach: `BTF_KIND_PTR` to `void`, no name.
const PLACEHOLDER_INFO: u32 = 2 << 24;

/// The everything-else part of a `.BTF` header: magic, version 1, flags 0, header length 24.
const HEADER_LEN: u32 = 24;

/// A raw BTF with `kernel`'s type ids and strings in which only the types named like one of
/// `names` (the object's type names, flavours stripped) and what they reach without a pointer
/// are whole. `None` for split or big-endian BTF (the caller then gives aya the whole BTF).
pub(crate) fn trimmed(kernel: &Btf, names: &HashSet<&str, BuildFnv>) -> Option<Vec<u8>> {
    if kernel.base.is_some() || kernel.big_endian {
        return None;
    }
    let count = kernel.offsets.len();
    let mut keep = vec![false; count + 1];
    let mut todo: Vec<u32> = Vec::new();
    let section = kernel.data.get(kernel.types.clone())?;
    for (i, &off) in kernel.offsets.iter().enumerate() {
        // The name and kind of each record read in place: this loop sees every type.
        let (Ok(name_off), Ok(info)) = (
            read_u32(section, off as usize, false),
            read_u32(section, off as usize + 4, false),
        ) else {
            return None;
        };
        // Only these kinds are looked up by name (half the kernel's types are functions).
        let named_kind = matches!(
            Kind::from_raw(((info >> 24) & 0x1f) as u8),
            Some(
                Kind::Struct
                    | Kind::Union
                    | Kind::Enum
                    | Kind::Enum64
                    | Kind::Fwd
                    | Kind::Typedef
                    | Kind::Int
                    | Kind::Float
            )
        );
        if named_kind
            && name_off != 0
            && names.contains(essential(kernel.str_at(name_off).unwrap_or("")))
        {
            todo.push(u32::try_from(i).ok()? + kernel.first_id);
        }
    }
    while let Some(id) = todo.pop() {
        let slot = keep.get_mut(id as usize)?;
        if *slot {
            continue;
        }
        *slot = true;
        for next in reached(kernel, id)? {
            if next != 0 && !keep.get(next as usize).copied().unwrap_or(true) {
                todo.push(next);
            }
        }
    }

    // Ids past the last type kept are left out altogether (in a 6.18 kernel the 633 types
    // kept end at id 14,821 of 126,411): no relocation can name them.
    let last = keep.iter().rposition(|&k| k).unwrap_or(0);
    let strings = kernel.data.get(kernel.strings.clone())?;
    let mut types = Vec::with_capacity(last * TYPE_HEAD_LEN);
    for id in 1..=last as u32 {
        if keep[id as usize] {
            types.extend_from_slice(record(kernel, id)?);
        } else {
            types.extend_from_slice(&0u32.to_le_bytes());
            types.extend_from_slice(&PLACEHOLDER_INFO.to_le_bytes());
            types.extend_from_slice(&0u32.to_le_bytes());
        }
    }
    let mut out = Vec::with_capacity(HEADER_LEN as usize + types.len() + strings.len());
    out.extend_from_slice(&[0x9f, 0xeb, 1, 0]);
    for field in [
        HEADER_LEN,
        0,
        u32::try_from(types.len()).ok()?,
        u32::try_from(types.len()).ok()?,
        u32::try_from(strings.len()).ok()?,
    ] {
        out.extend_from_slice(&field.to_le_bytes());
    }
    out.extend_from_slice(&types);
    out.extend_from_slice(strings);
    Some(out)
}

/// A type name without its CO-RE flavour (`sk_buff___old` -> `sk_buff`).
pub(crate) fn essential(name: &str) -> &str {
    // A byte scan: a substring search costs more to set up than these short names take.
    let at = name.as_bytes().windows(3).position(|w| w == b"___");
    at.and_then(|i| name.get(..i)).unwrap_or(name)
}

/// The raw record of type `id` (its fixed part and what follows it).
fn record(kernel: &Btf, id: u32) -> Option<&[u8]> {
    let off = *kernel
        .offsets
        .get(id.checked_sub(kernel.first_id)? as usize)? as usize;
    let section = kernel.data.get(kernel.types.clone())?;
    let info = read_u32(section, off + 4, false).ok()?;
    let kind = Kind::from_raw(((info >> 24) & 0x1f) as u8)?;
    let len = TYPE_HEAD_LEN + extra_len(kind, (info & 0xffff) as usize);
    section.get(off..off + len)
}

/// The ids type `id` refers to that a relocation may walk into: not a pointer's target.
fn reached(kernel: &Btf, id: u32) -> Option<Vec<u32>> {
    let rec = record(kernel, id)?;
    let at = |off: usize| read_u32(rec, off, false).ok();
    let info = at(4)?;
    let kind = Kind::from_raw(((info >> 24) & 0x1f) as u8)?;
    let vlen = (info & 0xffff) as usize;
    let head = TYPE_HEAD_LEN;
    Some(match kind {
        Kind::Ptr => Vec::new(),
        Kind::Typedef
        | Kind::Volatile
        | Kind::Const
        | Kind::Restrict
        | Kind::TypeTag
        | Kind::Var
        | Kind::DeclTag
        | Kind::Func => vec![at(8)?],
        Kind::Array => vec![at(head)?, at(head + 4)?],
        Kind::Struct | Kind::Union => (0..vlen)
            .map(|i| at(head + i * 12 + 4))
            .collect::<Option<_>>()?,
        Kind::FuncProto => std::iter::once(at(8))
            .chain((0..vlen).map(|i| at(head + i * 8 + 4)))
            .collect::<Option<_>>()?,
        Kind::DataSec => (0..vlen)
            .map(|i| at(head + i * 12))
            .collect::<Option<_>>()?,
        _ => Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aya_obj::Object;

    /// Instructions as comparable values (`bpf_insn` has no `PartialEq`).
    fn insns(f: &aya_obj::Function) -> Vec<(u8, u8, u8, i16, i32)> {
        f.instructions
            .iter()
            .map(|i| (i.code, i.dst_reg(), i.src_reg(), i.off, i.imm))
            .collect()
    }

    /// The types of a trimmed BTF that are not placeholders.
    fn whole_types(btf: &Btf) -> usize {
        btf.types()
            .filter(|(_, t)| t.name_off != 0 || t.kind() != Kind::Ptr || t.size_or_type() != 0)
            .count()
    }

    /// Differential, against this machine's kernel BTF: the whole object relocated against the
    /// trimmed BTF has exactly the instructions of its relocation against the whole BTF
    /// (field offsets, bitfield shifts, enum values that exist, kernel type ids).
    #[test]
    fn relocating_against_the_trimmed_btf_is_relocating_against_the_whole() {
        let Ok(kernel) = Btf::vmlinux() else {
            eprintln!("SKIP relocating_against_the_trimmed_btf: this machine lacks kernel BTF");
            return;
        };
        let whole_btf = kernel
            .to_aya_uncounted()
            .expect("aya parses the kernel BTF");
        // The trimmed BTF itself, so that a silent fallback to the whole one cannot pass.
        let raw = kernel
            .trimmed_for(pwru_ebpf::OBJECT)
            .expect("the kernel BTF is trimmed");
        let kept = Btf::from_bytes(raw.clone()).expect("the trimmed BTF parses");
        assert!(
            whole_types(&kept) * 20 < kernel.type_count() as usize,
            "{} of {} types kept whole",
            whole_types(&kept),
            kernel.type_count()
        );
        let trimmed_btf =
            aya::Btf::parse(&raw, aya::Endianness::Little).expect("aya parses the trimmed BTF");
        let compiled = Object::parse(pwru_ebpf::OBJECT).expect("object");
        let mut whole = compiled.clone();
        whole
            .relocate_btf(&whole_btf)
            .expect("relocation against the whole BTF");
        let mut trimmed = compiled.clone();
        trimmed
            .relocate_btf(&trimmed_btf)
            .expect("relocation against the trimmed BTF");
        let mut changed = 0;
        for (key, f) in &whole.functions {
            assert_eq!(insns(&trimmed.functions[key]), insns(f), "function {key:?}");
            changed += usize::from(insns(f) != insns(&compiled.functions[key]));
        }
        assert!(
            changed > 10,
            "only {changed} functions were changed by the relocation"
        );
    }

    /// Most of the kernel's types are left out, and what is kept has the kernel's ids and bytes.
    #[test]
    fn the_trimmed_btf_keeps_ids_and_little_else() {
        let Ok(kernel) = Btf::vmlinux() else {
            eprintln!("SKIP the_trimmed_btf_keeps_ids: this machine lacks kernel BTF");
            return;
        };
        let names: HashSet<&str, BuildFnv> = ["sk_buff", "bpf_func_id"].into_iter().collect();
        let raw = trimmed(&kernel, &names).expect("trimmed");
        let small = Btf::from_bytes(raw).expect("the trimmed BTF parses");
        assert!(small.type_count() <= kernel.type_count());
        let whole = whole_types(&small);
        assert!(
            whole * 20 < kernel.type_count() as usize,
            "{whole} of {} types kept",
            kernel.type_count()
        );
        let skb = kernel
            .find_by_name(Kind::Struct, "sk_buff")
            .expect("sk_buff");
        assert_eq!(small.find_by_name(Kind::Struct, "sk_buff"), Some(skb));
        assert_eq!(
            record(&small, skb.0),
            record(&kernel, skb.0),
            "sk_buff's record"
        );
        assert!(small.find_by_name(Kind::Enum, "bpf_func_id").is_some());
        // Pointers are not followed: task_struct is reachable from sk_buff only through one.
        assert!(small.find_by_name(Kind::Struct, "task_struct").is_none());
    }
}
