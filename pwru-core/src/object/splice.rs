//! Exact filter splicing: the object's `.text` section ends with the stub function
//! `pwru_filter`; in the parsed object its instructions are replaced by the compiled dispatch
//! body. Nothing is padded: the verifier walks exactly the filter.

use aya_obj::generated::bpf_insn;
use aya_obj::Object;
use thiserror::Error;

const INSN: usize = 8;
const OP_LD_IMM64: u8 = 0x18;
const OP_CALL: u8 = 0x85;
const OP_EXIT: u8 = 0x95;
/// `src_reg` of a call to another BPF function (relocated by offset).
const BPF_PSEUDO_CALL: u8 = 1;

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
    /// Entries of the address-set map its map loads refer to (see `filter_sets`).
    set_keys: Vec<[u8; 8]>,
}

impl FilterBody {
    /// A body that matches every packet (`r0 = 1; exit`): used when no filter is given.
    pub fn match_all() -> Self {
        FilterBody {
            bytes: vec![
                0xb7, 0x00, 0, 0, 1, 0, 0, 0, // r0 = 1
                OP_EXIT, 0, 0, 0, 0, 0, 0, 0, // exit
            ],
            set_keys: Vec::new(),
        }
    }

    /// Checks a body in kernel byte order (e.g. pwru-filter's `Insn::to_bytes()` joined):
    /// a non-empty multiple of 8 bytes, ending in `exit`, with no `ld_imm64` but the
    /// address-set map loads pwru-filter emits (map fd placeholder 0, filled by the loader;
    /// see [`FilterBody::with_set_keys`]) and no bpf-to-bpf calls (helper and kfunc calls are
    /// fine).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SpliceError> {
        if bytes.is_empty() || !bytes.len().is_multiple_of(INSN) {
            return Err(SpliceError::BadBody(format!(
                "length {} is not a non-zero multiple of 8",
                bytes.len()
            )));
        }
        let insns: Vec<&[u8]> = bytes.chunks_exact(INSN).collect();
        for (i, insn) in insns.iter().enumerate() {
            if insn[0] == OP_LD_IMM64 {
                let imm = i32::from_le_bytes([insn[4], insn[5], insn[6], insn[7]]);
                let second_empty = insns.get(i + 1).is_some_and(|n| n.iter().all(|b| *b == 0));
                if !super::filter_sets::is_placeholder(insn[0], insn[1] >> 4, imm) || !second_empty
                {
                    return Err(SpliceError::BadBody(format!(
                        "instruction {i} is ld_imm64 other than an address-set map load"
                    )));
                }
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
            set_keys: Vec::new(),
        })
    }

    /// The body with the entries of its address-set map (`pwru_filter::Translated::set_keys`
    /// of every filter in it); the loader creates the map with them.
    pub fn with_set_keys(mut self, keys: Vec<[u8; 8]>) -> Self {
        self.set_keys = keys;
        self
    }

    /// The address-set map's entries.
    pub fn set_keys(&self) -> &[[u8; 8]] {
        &self.set_keys
    }

    /// True when the body loads the address-set map.
    pub fn uses_set_map(&self) -> bool {
        self.bytes.chunks_exact(INSN).any(|b| {
            let imm = i32::from_le_bytes([b[4], b[5], b[6], b[7]]);
            super::filter_sets::is_placeholder(b[0], b[1] >> 4, imm)
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

/// The body as kernel instructions.
fn body_insns(body: &FilterBody) -> Vec<bpf_insn> {
    body.bytes
        .chunks_exact(INSN)
        .map(|b| bpf_insn {
            code: b[0],
            _bitfield_align_1: [],
            _bitfield_1: bpf_insn::new_bitfield_1(b[1] & 0x0f, b[1] >> 4),
            off: i16::from_le_bytes([b[2], b[3]]),
            imm: i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        })
        .collect()
}

/// Gives the `stub` function of the parsed `object` (the last function of `.text`) the
/// instructions of `body`, exactly. Line info past the new body's end is dropped.
pub(crate) fn splice(
    object: &mut Object,
    stub: &str,
    body: &FilterBody,
) -> Result<(), SpliceError> {
    let entries: Vec<(usize, u64)> = object.programs.values().map(|p| p.function_key()).collect();
    let (&key, function) = object
        .functions
        .iter()
        .find(|(k, f)| f.name == stub && !entries.contains(k))
        .ok_or_else(|| SpliceError::NoStub(stub.to_string()))?;
    let (section, address) = key;
    if object
        .functions
        .keys()
        .any(|&(s, a)| s == section && a > address)
    {
        return Err(SpliceError::StubNotLast(stub.to_string()));
    }
    // Map references and bpf-to-bpf calls are relocated at their offsets in .text: a new body
    // at the same offsets would be patched instead.
    if function
        .instructions
        .iter()
        .any(|i| i.code == OP_LD_IMM64 || (i.code == OP_CALL && i.src_reg() == BPF_PSEUDO_CALL))
    {
        return Err(SpliceError::StubHasRelocations(stub.to_string()));
    }
    let function = object
        .functions
        .get_mut(&key)
        .ok_or_else(|| SpliceError::NoStub(stub.to_string()))?;
    function.instructions = body_insns(body);
    let len = function.instructions.len();
    let lines = &mut function.line_info;
    lines.line_info.retain(|l| (l.insn_off as usize) < len);
    lines.num_info = lines.line_info.len() as u32;
    Ok(())
}

/// Writes map fd `fd` into the address-set map loads of the spliced `stub` (see
/// [`FilterBody::uses_set_map`]).
pub(crate) fn bind_set_map(object: &mut Object, stub: &str, fd: i32) -> Result<(), SpliceError> {
    let entries: Vec<(usize, u64)> = object.programs.values().map(|p| p.function_key()).collect();
    let function = object
        .functions
        .iter_mut()
        .find(|(k, f)| f.name == stub && !entries.contains(k))
        .map(|(_, f)| f)
        .ok_or_else(|| SpliceError::NoStub(stub.to_string()))?;
    for i in function.instructions.iter_mut() {
        if super::filter_sets::is_placeholder(i.code, i.src_reg(), i.imm) {
            i.imm = fd;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spliced(stub: &str, body: &FilterBody) -> Result<Object, SpliceError> {
        let mut obj = Object::parse(pwru_ebpf::OBJECT).unwrap();
        splice(&mut obj, stub, body)?;
        Ok(obj)
    }

    fn stub_of(obj: &Object) -> &aya_obj::Function {
        obj.functions
            .values()
            .find(|f| f.name == pwru_ebpf::FILTER_STUB)
            .unwrap()
    }

    fn bytes_of(insns: &[bpf_insn]) -> Vec<u8> {
        insns
            .iter()
            .flat_map(|i| {
                let mut b = vec![i.code, i.dst_reg() | (i.src_reg() << 4)];
                b.extend_from_slice(&i.off.to_le_bytes());
                b.extend_from_slice(&i.imm.to_le_bytes());
                b
            })
            .collect()
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
        let obj = spliced(pwru_ebpf::FILTER_STUB, &body).unwrap();
        assert_eq!(bytes_of(&stub_of(&obj).instructions), body.as_bytes());
        // Shorter than the placeholder works too, and drops line info past the end.
        let obj = spliced(pwru_ebpf::FILTER_STUB, &FilterBody::match_all()).unwrap();
        let f = stub_of(&obj);
        assert_eq!(
            bytes_of(&f.instructions),
            FilterBody::match_all().as_bytes()
        );
        assert!(f
            .line_info
            .line_info
            .iter()
            .all(|l| (l.insn_off as usize) < 2));
        assert_eq!(f.line_info.num_info as usize, f.line_info.line_info.len());
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
        // The address-set map load pwru-filter emits (map fd placeholder 0) is the one
        // ld_imm64 accepted; the loader fills in the fd.
        let set_map = [
            0x18, 0x11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, OP_EXIT, 0, 0, 0, 0, 0, 0, 0,
        ];
        let body = FilterBody::from_bytes(&set_map).unwrap();
        assert!(body.uses_set_map());
        assert!(!FilterBody::match_all().uses_set_map());
        let mut filled = set_map;
        filled[4] = 3;
        assert!(FilterBody::from_bytes(&filled).is_err());
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
        let obj = spliced(pwru_ebpf::FILTER_STUB, &body).unwrap();
        assert_eq!(bytes_of(&stub_of(&obj).instructions), body.as_bytes());
    }

    #[test]
    fn missing_stub_is_reported() {
        let e = spliced("no_such_stub", &FilterBody::match_all()).unwrap_err();
        assert!(matches!(e, SpliceError::NoStub(_)));
    }
}
