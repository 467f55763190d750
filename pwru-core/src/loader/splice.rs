//! Exact filter splicing: the object's `.text` section ends with the stub function
//! `pwru_filter`; its body is replaced by the compiled dispatch body by rewriting the ELF
//! (new `.text` contents appended at the end of the file, `.text` header and the stub's
//! symbol size updated). Nothing is padded: the verifier walks exactly the filter.
//!
//! Line info records of the old body past the new body's end are dropped by aya-obj when it
//! cuts functions out of `.text` by symbol size.

use super::error::SpliceError;

const INSN: usize = 8;
const OP_LD_IMM64: u8 = 0x18;
const OP_CALL: u8 = 0x85;
const OP_EXIT: u8 = 0x95;
const SHT_SYMTAB: u32 = 2;
const SHT_REL: u32 = 9;

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

struct Elf<'a> {
    data: &'a [u8],
    shoff: usize,
    shentsize: usize,
    shnum: usize,
}

fn rd_u16(d: &[u8], off: usize) -> Result<u16, SpliceError> {
    d.get(off..off + 2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .ok_or(SpliceError::Malformed("truncated"))
}
fn rd_u32(d: &[u8], off: usize) -> Result<u32, SpliceError> {
    d.get(off..off + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or(SpliceError::Malformed("truncated"))
}
fn rd_u64(d: &[u8], off: usize) -> Result<u64, SpliceError> {
    d.get(off..off + 8)
        .map(|b| {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            u64::from_le_bytes(a)
        })
        .ok_or(SpliceError::Malformed("truncated"))
}

#[derive(Clone, Copy)]
struct Shdr {
    name: u32,
    kind: u32,
    offset: usize,
    size: usize,
    link: u32,
    info: u32,
    entsize: usize,
}

impl<'a> Elf<'a> {
    fn parse(data: &'a [u8]) -> Result<Self, SpliceError> {
        if data.len() < 64 || &data[..4] != b"\x7fELF" || data[4] != 2 || data[5] != 1 {
            return Err(SpliceError::Malformed(
                "not a 64-bit little-endian ELF file",
            ));
        }
        Ok(Elf {
            data,
            shoff: rd_u64(data, 0x28)? as usize,
            shentsize: rd_u16(data, 0x3a)? as usize,
            shnum: rd_u16(data, 0x3c)? as usize,
        })
    }

    fn shdr_off(&self, i: usize) -> usize {
        self.shoff + i * self.shentsize
    }

    fn shdr(&self, i: usize) -> Result<Shdr, SpliceError> {
        let o = self.shdr_off(i);
        Ok(Shdr {
            name: rd_u32(self.data, o)?,
            kind: rd_u32(self.data, o + 4)?,
            offset: rd_u64(self.data, o + 24)? as usize,
            size: rd_u64(self.data, o + 32)? as usize,
            link: rd_u32(self.data, o + 40)?,
            info: rd_u32(self.data, o + 44)?,
            entsize: rd_u64(self.data, o + 56)? as usize,
        })
    }

    fn section_bytes(&self, s: &Shdr) -> Result<&'a [u8], SpliceError> {
        self.data
            .get(s.offset..s.offset + s.size)
            .ok_or(SpliceError::Malformed("section outside the file"))
    }

    fn str_at(&self, strtab: &Shdr, off: u32) -> Result<&'a [u8], SpliceError> {
        let tab = self.section_bytes(strtab)?;
        let rest = tab
            .get(off as usize..)
            .ok_or(SpliceError::Malformed("string outside its table"))?;
        Ok(&rest[..rest.iter().position(|&b| b == 0).unwrap_or(rest.len())])
    }

    fn section_index(&self, name: &[u8]) -> Result<Option<usize>, SpliceError> {
        let shstrndx = rd_u16(self.data, 0x3e)? as usize;
        let strtab = self.shdr(shstrndx)?;
        for i in 0..self.shnum {
            if self.str_at(&strtab, self.shdr(i)?.name)? == name {
                return Ok(Some(i));
            }
        }
        Ok(None)
    }
}

/// Returns a copy of `object` whose `stub` function (the last one in `.text`) has `body`.
pub fn splice(object: &[u8], stub: &str, body: &FilterBody) -> Result<Vec<u8>, SpliceError> {
    let elf = Elf::parse(object)?;
    let text_idx = elf
        .section_index(b".text")?
        .ok_or(SpliceError::Malformed("no .text section"))?;
    let text = elf.shdr(text_idx)?;

    // Find the stub's symbol.
    let mut sym_entry = None;
    for i in 0..elf.shnum {
        let sh = elf.shdr(i)?;
        if sh.kind != SHT_SYMTAB {
            continue;
        }
        let strtab = elf.shdr(sh.link as usize)?;
        let entsize = if sh.entsize == 0 { 24 } else { sh.entsize };
        for j in 0..sh.size / entsize {
            let o = sh.offset + j * entsize;
            let name = rd_u32(object, o)?;
            let shndx = rd_u16(object, o + 6)? as usize;
            if shndx == text_idx && elf.str_at(&strtab, name)? == stub.as_bytes() {
                sym_entry = Some((
                    o,
                    rd_u64(object, o + 8)? as usize,
                    rd_u64(object, o + 16)? as usize,
                ));
            }
        }
    }
    let (sym_off, value, size) = sym_entry.ok_or_else(|| SpliceError::NoStub(stub.to_string()))?;
    if value + size != text.size {
        return Err(SpliceError::StubNotLast(stub.to_string()));
    }

    // The stub must carry no relocations (they would point into the replaced body).
    for i in 0..elf.shnum {
        let sh = elf.shdr(i)?;
        if sh.kind == SHT_REL && sh.info as usize == text_idx {
            let entsize = if sh.entsize == 0 { 16 } else { sh.entsize };
            for j in 0..sh.size / entsize {
                if rd_u64(object, sh.offset + j * entsize)? as usize >= value {
                    return Err(SpliceError::StubHasRelocations(stub.to_string()));
                }
            }
        }
    }

    let old_text = elf.section_bytes(&text)?;
    let mut out = object.to_vec();
    while !out.len().is_multiple_of(8) {
        out.push(0);
    }
    let new_off = out.len();
    out.extend_from_slice(&old_text[..value]);
    out.extend_from_slice(body.as_bytes());
    let new_size = value + body.as_bytes().len();

    let sh = elf.shdr_off(text_idx);
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
        let i = elf.section_index(b".text").unwrap().unwrap();
        elf.section_bytes(&elf.shdr(i).unwrap()).unwrap().to_vec()
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
        send::<super::super::Loader>();
        send::<super::super::Link>();
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
