//! Exact filter splicing: the object's `.text` section ends with the stub function
//! `pwru_filter`; its body is replaced by the compiled dispatch body by rewriting the ELF
//! (new `.text` contents appended at the end of the file, `.text` header and the stub's
//! symbol size updated). Nothing is padded: the verifier walks exactly the filter.
//!
//! Line info records of the old body past the new body's end are dropped by aya-obj when it
//! cuts functions out of `.text` by symbol size.

use thiserror::Error;

use super::elf::{Elf, ElfError, SHT_REL, SHT_SYMTAB};

const INSN: usize = 8;
const OP_LD_IMM64: u8 = 0x18;
const OP_CALL: u8 = 0x85;
const OP_EXIT: u8 = 0x95;

/// The filter could not be spliced into the object.
#[derive(Debug, Error)]
pub enum SpliceError {
    /// The dispatch body breaks pwru-filter's calling convention.
    #[error("the filter body is not valid: {0}; pass the output of pwru_filter::dispatch")]
    BadBody(String),
    /// The object is not the ELF file the loader expects.
    #[error("the BPF object is malformed ({0}); use pwru_ebpf::OBJECT")]
    Malformed(&'static str),
    /// The stub function is missing.
    #[error("the BPF object has no `{0}` function in .text; use pwru_ebpf::OBJECT")]
    NoStub(String),
    /// The stub is not the last function of .text, so it cannot grow in place.
    #[error("`{0}` is not the last function of .text; keep it last in pwru-ebpf/bpf/pwru.bpf.c")]
    StubNotLast(String),
    /// The stub has relocations that a new body would break.
    #[error("`{0}` has relocations; its placeholder body must not reference maps or functions")]
    StubHasRelocations(String),
}

/// A validated filter dispatch body (eBPF instructions, 8 bytes each) following pwru-filter's
/// convention: R1 = selector, R2 = data, R3 = data_end; R0 != 0 means match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterBody {
    bytes: Vec<u8>,
}

impl FilterBody {
    /// A body that matches every packet (`r0 = 1; exit`): used when no filter is given.
    pub fn match_all() -> Self {
        FilterBody {
            bytes: vec![
                0xb7, 0x00, 0, 0, 1, 0, 0, 0, // r0 = 1
                OP_EXIT, 0, 0, 0, 0, 0, 0, 0, // exit
            ],
        }
    }

    /// Checks a body in kernel byte order (e.g. pwru-filter's `Insn::to_bytes()` joined):
    /// a non-empty multiple of 8 bytes, ending in `exit`, with no `ld_imm64` (map references)
    /// and no bpf-to-bpf calls (helper and kfunc calls are fine).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SpliceError> {
        if bytes.is_empty() || !bytes.len().is_multiple_of(INSN) {
            return Err(SpliceError::BadBody(format!(
                "length {} is not a non-zero multiple of 8",
                bytes.len()
            )));
        }
        for (i, insn) in bytes.chunks_exact(INSN).enumerate() {
            if insn[0] == OP_LD_IMM64 {
                return Err(SpliceError::BadBody(format!("instruction {i} is ld_imm64")));
            }
            // src_reg (high nibble of byte 1): 0 helper, 1 bpf-to-bpf call (its target would
            // need relocating), 2 kfunc (vmlinux BTF id in imm: no relocation).
            if insn[0] == OP_CALL && !matches!(insn[1] >> 4, 0 | 2) {
                return Err(SpliceError::BadBody(format!(
                    "instruction {i} calls a BPF function, only helpers and kfuncs are allowed"
                )));
            }
        }
        if bytes[bytes.len() - INSN] != OP_EXIT {
            return Err(SpliceError::BadBody(
                "the last instruction is not exit".into(),
            ));
        }
        Ok(FilterBody {
            bytes: bytes.to_vec(),
        })
    }

    /// [`FilterBody::from_bytes`] of pwru-filter instructions (e.g. `pwru_filter::dispatch`'s).
    pub fn from_insns(insns: &[pwru_filter::Insn]) -> Result<Self, SpliceError> {
        let bytes: Vec<u8> = insns.iter().flat_map(|i| i.to_bytes()).collect();
        Self::from_bytes(&bytes)
    }

    /// The instructions as bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Number of instructions.
    pub fn len(&self) -> usize {
        self.bytes.len() / INSN
    }

    /// Always false: a body has at least `exit`.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

fn malformed(e: ElfError) -> SpliceError {
    SpliceError::Malformed(e.0)
}

fn to_usize(v: u64) -> Result<usize, SpliceError> {
    usize::try_from(v).map_err(|_| SpliceError::Malformed("offset out of range"))
}

/// Returns a copy of `object` whose `stub` function (the last one in `.text`) has `body`.
pub fn splice(object: &[u8], stub: &str, body: &FilterBody) -> Result<Vec<u8>, SpliceError> {
    let elf = Elf::parse(object).map_err(malformed)?;
    if !elf.is_64bit_little_endian() {
        return Err(SpliceError::Malformed(
            "not a 64-bit little-endian ELF file",
        ));
    }
    let (text_idx, text) = elf
        .find_section(".text")
        .map_err(malformed)?
        .ok_or(SpliceError::Malformed("no .text section"))?;

    // Find the stub's symbol.
    let mut sym_entry = None;
    for i in 0..elf.section_count() {
        let sh = elf.section(i).map_err(malformed)?;
        if sh.kind != SHT_SYMTAB {
            continue;
        }
        let link = u16::try_from(sh.link).map_err(|_| SpliceError::Malformed("bad sh_link"))?;
        let strtab = elf.section(link).map_err(malformed)?;
        let entsize = if sh.entsize == 0 { 24 } else { sh.entsize };
        for j in 0..sh.size / entsize {
            let o = sh.offset + j * entsize;
            let name = elf.u32(o).map_err(malformed)?;
            let shndx = elf.u16(o + 6).map_err(malformed)?;
            if shndx == text_idx && elf.str_at(&strtab, name).map_err(malformed)? == stub.as_bytes()
            {
                sym_entry = Some((
                    to_usize(o)?,
                    to_usize(elf.u64(o + 8).map_err(malformed)?)?,
                    to_usize(elf.u64(o + 16).map_err(malformed)?)?,
                ));
            }
        }
    }
    let (sym_off, value, size) = sym_entry.ok_or_else(|| SpliceError::NoStub(stub.to_string()))?;
    if value + size != to_usize(text.size)? {
        return Err(SpliceError::StubNotLast(stub.to_string()));
    }

    // The stub must carry no relocations (they would point into the replaced body).
    for i in 0..elf.section_count() {
        let sh = elf.section(i).map_err(malformed)?;
        if sh.kind == SHT_REL && sh.info == u32::from(text_idx) {
            let entsize = if sh.entsize == 0 { 16 } else { sh.entsize };
            for j in 0..sh.size / entsize {
                if to_usize(elf.u64(sh.offset + j * entsize).map_err(malformed)?)? >= value {
                    return Err(SpliceError::StubHasRelocations(stub.to_string()));
                }
            }
        }
    }

    let old_text = elf.section_bytes(&text).map_err(malformed)?;
    let mut out = object.to_vec();
    while !out.len().is_multiple_of(8) {
        out.push(0);
    }
    let new_off = out.len();
    out.extend_from_slice(&old_text[..value]);
    out.extend_from_slice(body.as_bytes());
    let new_size = value + body.as_bytes().len();

    let sh = to_usize(text.header_offset)?;
    out[sh + 24..sh + 32].copy_from_slice(&(new_off as u64).to_le_bytes());
    out[sh + 32..sh + 40].copy_from_slice(&(new_size as u64).to_le_bytes());
    out[sym_off + 16..sym_off + 24].copy_from_slice(&(body.as_bytes().len() as u64).to_le_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_of(obj: &[u8]) -> Vec<u8> {
        let elf = Elf::parse(obj).unwrap();
        let (_, text) = elf.find_section(".text").unwrap().unwrap();
        elf.section_bytes(&text).unwrap().to_vec()
    }

    #[test]
    fn splice_replaces_the_stub_exactly() {
        let body = FilterBody::from_bytes(&[
            0xb7, 0x00, 0, 0, 7, 0, 0, 0, // r0 = 7
            0xb7, 0x00, 0, 0, 8, 0, 0, 0, // r0 = 8
            0xb7, 0x00, 0, 0, 9, 0, 0, 0, // r0 = 9
            0xb7, 0x00, 0, 0, 9, 0, 0, 0, // r0 = 9
            0xb7, 0x00, 0, 0, 9, 0, 0, 0, // r0 = 9
            0xb7, 0x00, 0, 0, 9, 0, 0, 0, // r0 = 9
            OP_EXIT, 0, 0, 0, 0, 0, 0, 0,
        ])
        .unwrap();
        let out = splice(pwru_ebpf::OBJECT, pwru_ebpf::FILTER_STUB, &body).unwrap();
        let text = text_of(&out);
        assert!(text.ends_with(body.as_bytes()));
        // aya-obj sees the new function with the new size.
        let obj = aya_obj::Object::parse(&out).unwrap();
        let f = obj
            .functions
            .values()
            .find(|f| f.name == pwru_ebpf::FILTER_STUB)
            .unwrap();
        assert_eq!(f.instructions.len(), body.len());
        // Shorter than the placeholder works too, and drops line info past the end.
        let out = splice(
            pwru_ebpf::OBJECT,
            pwru_ebpf::FILTER_STUB,
            &FilterBody::match_all(),
        )
        .unwrap();
        let obj = aya_obj::Object::parse(&out).unwrap();
        let f = obj
            .functions
            .values()
            .find(|f| f.name == pwru_ebpf::FILTER_STUB)
            .unwrap();
        assert_eq!(f.instructions.len(), 2);
        assert!(f
            .line_info
            .line_info
            .iter()
            .all(|l| (l.insn_off as usize) < 2));
    }

    #[test]
    fn bodies_are_checked() {
        assert!(FilterBody::from_bytes(&[]).is_err());
        assert!(FilterBody::from_bytes(&[0; 7]).is_err());
        assert!(FilterBody::from_bytes(&[0xb7, 0, 0, 0, 1, 0, 0, 0]).is_err()); // no exit
        let ld = [
            0x18, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, OP_EXIT, 0, 0, 0, 0, 0, 0, 0,
        ];
        assert!(FilterBody::from_bytes(&ld).is_err());
        let call = [
            OP_CALL, 0x10, 0, 0, 1, 0, 0, 0, OP_EXIT, 0, 0, 0, 0, 0, 0, 0,
        ];
        assert!(FilterBody::from_bytes(&call).is_err());
    }

    #[test]
    fn loader_types_can_move_between_threads() {
        fn send<T: Send>() {}
        send::<crate::object::Loader>();
        send::<crate::backend::Link>();
    }

    #[test]
    fn pwru_filter_dispatch_bodies_are_accepted() {
        use pwru_filter::{compile_ebpf, dispatch, Layer, Mode};
        let l2 = compile_ebpf("tcp port 80", Layer::L2, Mode::ProbeRead).unwrap();
        let l3 = compile_ebpf("tcp port 80", Layer::L3, Mode::ProbeRead).unwrap();
        let d = dispatch(&[&l2.insns, &l3.insns]).unwrap();
        let body = FilterBody::from_insns(&d).unwrap();
        assert_eq!(body.len(), d.len());
        let out = splice(pwru_ebpf::OBJECT, pwru_ebpf::FILTER_STUB, &body).unwrap();
        assert!(text_of(&out).ends_with(body.as_bytes()));
    }

    #[test]
    fn missing_stub_is_reported() {
        let e = splice(pwru_ebpf::OBJECT, "no_such_stub", &FilterBody::match_all()).unwrap_err();
        assert!(matches!(e, SpliceError::NoStub(_)));
    }
}
