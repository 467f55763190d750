//! The kfunc-cast read scheme of [`crate::Mode::ProbeRead`] ([`crate::ProbeAccess::Cast`]):
//! the two vmlinux BTF ids it needs, and how to find them in the running kernel's BTF.
//!
//! The translator never reads BTF: it takes the ids, resolved, in [`CastIds`]. pwru-core
//! resolves them from the tracer's one parsed kernel BTF (its `Btf::cast_ids`, which follows
//! `kernel_btf`); [`CastIds::running_kernel`] and [`CastIds::from_btf`] are a small
//! stand-alone lookup for using this crate without pwru-core (and an independent oracle for
//! pwru-core's tests).
//!
//! `bpf_rdonly_cast(ptr, btf_id)` (a kfunc, Linux 6.2+) turns a plain number into a read-only,
//! *untrusted* pointer to a BTF struct. The verifier turns loads through such pointers into
//! `BPF_PROBE_MEM` loads (an exception-table entry instead of a helper call: a load that faults
//! yields 0) and replaces the call itself with `r0 = r1`. So one packet byte costs a plain load,
//! against ≈ 24 ns for a `bpf_probe_read_kernel` call. Which program types may call the kfunc
//! depends on the kernel (tracing, tc and XDP programs always; on 6.12, 7.3 and 6.18 also
//! KPROBE and raw tracepoint programs), so a user should try loading before relying on it, as
//! pwru-core does (`probe_kfunc_cast`), and keep the helper scheme where it is refused.

use std::fmt;

/// The vmlinux BTF ids the cast scheme's code embeds (no relocation needed when splicing).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct CastIds {
    /// Id of the `FUNC` `bpf_rdonly_cast`: the `imm` of the kfunc call.
    pub rdonly_cast: u32,
    /// Id of a `STRUCT` whose first member is an integer of at least 4 bytes at offset 0
    /// (`struct in_addr`): the verifier allows 1-, 2- and 4-byte loads at offset 0 of it.
    pub target: u32,
}

/// The struct the cast targets: `struct in_addr { __be32 s_addr; }`, present in every vmlinux
/// with IPv4.
pub const CAST_TARGET: &str = "in_addr";

/// Why [`CastIds`] could not be found.
#[derive(Debug, thiserror::Error)]
pub enum CastError {
    /// The BTF file could not be read.
    #[error("cannot read kernel BTF {path}: {source}; the kernel needs CONFIG_DEBUG_INFO_BTF")]
    Read {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The BTF data is malformed.
    #[error("kernel BTF is malformed: {0}")]
    Malformed(&'static str),
}

/// Path of the running kernel's BTF.
pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

impl CastIds {
    /// Looks the ids up in the running kernel's BTF ([`VMLINUX_BTF`]). `Ok(None)`: the kernel
    /// has no `bpf_rdonly_cast` (before 6.2) or no suitable struct; use the helper scheme.
    pub fn running_kernel() -> Result<Option<CastIds>, CastError> {
        let data = std::fs::read(VMLINUX_BTF).map_err(|source| CastError::Read {
            path: VMLINUX_BTF.into(),
            source,
        })?;
        CastIds::from_btf(&data)
    }

    /// Looks the ids up in raw (non-split) BTF data such as `/sys/kernel/btf/vmlinux`.
    pub fn from_btf(data: &[u8]) -> Result<Option<CastIds>, CastError> {
        let btf = RawBtf::parse(data)?;
        let Some(rdonly_cast) = btf.find(KIND_FUNC, "bpf_rdonly_cast") else {
            return Ok(None);
        };
        let target = btf
            .find(KIND_STRUCT, CAST_TARGET)
            .filter(|id| btf.first_member_is_wide_int(*id));
        Ok(target.map(|target| CastIds {
            rdonly_cast,
            target,
        }))
    }
}

impl fmt::Display for CastIds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bpf_rdonly_cast = BTF id {}, struct {CAST_TARGET} = BTF id {}",
            self.rdonly_cast, self.target
        )
    }
}

const KIND_INT: u32 = 1;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_FUNC: u32 = 12;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_DECL_TAG: u32 = 17;
const KIND_TYPE_TAG: u32 = 18;
const KIND_ENUM64: u32 = 19;

/// Just enough of a BTF reader to find a named type and look at a struct's first member
/// (pwru-core has the full reader; this crate must not depend on it).
struct RawBtf<'a> {
    types: &'a [u8],
    strings: &'a [u8],
    /// Byte offset in `types` of type id i+1.
    offsets: Vec<usize>,
}

fn u32_at(d: &[u8], off: usize) -> Result<u32, CastError> {
    d.get(off..off + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or(CastError::Malformed("truncated"))
}

impl<'a> RawBtf<'a> {
    fn parse(data: &'a [u8]) -> Result<RawBtf<'a>, CastError> {
        if data.get(0..2) != Some(&[0x9f, 0xeb]) {
            return Err(CastError::Malformed("bad magic (not little-endian BTF)"));
        }
        let hdr_len = u32_at(data, 4)? as usize;
        let section = |off: usize, len: usize| {
            let start = hdr_len.checked_add(off)?;
            data.get(start..start.checked_add(len)?)
        };
        let types = section(u32_at(data, 8)? as usize, u32_at(data, 12)? as usize)
            .ok_or(CastError::Malformed("type section out of bounds"))?;
        let strings = section(u32_at(data, 16)? as usize, u32_at(data, 20)? as usize)
            .ok_or(CastError::Malformed("string section out of bounds"))?;
        let mut offsets = Vec::new();
        let mut off = 0;
        while off < types.len() {
            offsets.push(off);
            let info = u32_at(types, off + 4)?;
            let vlen = (info & 0xffff) as usize;
            let extra = match (info >> 24) & 0x1f {
                KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
                KIND_ARRAY => 12,
                KIND_STRUCT | KIND_UNION | KIND_DATASEC | KIND_ENUM64 => 12 * vlen,
                KIND_ENUM | KIND_FUNC_PROTO => 8 * vlen,
                _ => 0,
            };
            off += 12 + extra;
        }
        Ok(RawBtf {
            types,
            strings,
            offsets,
        })
    }

    fn name(&self, name_off: u32) -> &'a [u8] {
        let rest = self.strings.get(name_off as usize..).unwrap_or(&[]);
        let end = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
        &rest[..end]
    }

    /// (info, size_or_type, offset of the type record) of type `id`.
    fn get(&self, id: u32) -> Option<(u32, u32, usize)> {
        let off = *self.offsets.get((id as usize).checked_sub(1)?)?;
        Some((
            u32_at(self.types, off + 4).ok()?,
            u32_at(self.types, off + 8).ok()?,
            off,
        ))
    }

    fn find(&self, kind: u32, name: &str) -> Option<u32> {
        self.offsets.iter().enumerate().find_map(|(i, off)| {
            let name_off = u32_at(self.types, *off).ok()?;
            let info = u32_at(self.types, off + 4).ok()?;
            ((info >> 24) & 0x1f == kind && self.name(name_off) == name.as_bytes())
                .then_some(i as u32 + 1)
        })
    }

    /// True when struct `id`'s first member sits at offset 0 and is (through typedefs and
    /// qualifiers) an integer of at least 4 bytes.
    fn first_member_is_wide_int(&self, id: u32) -> bool {
        let Some((info, _, off)) = self.get(id) else {
            return false;
        };
        if info & 0xffff == 0 {
            return false;
        }
        let (Ok(mut ty), Ok(bit_off)) =
            (u32_at(self.types, off + 16), u32_at(self.types, off + 20))
        else {
            return false;
        };
        if bit_off != 0 {
            return false;
        }
        for _ in 0..16 {
            let Some((info, size_or_type, _)) = self.get(ty) else {
                return false;
            };
            match (info >> 24) & 0x1f {
                KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => {
                    ty = size_or_type
                }
                KIND_INT => return size_or_type >= 4,
                _ => return false,
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_btf_is_an_error_not_a_panic() {
        assert!(CastIds::from_btf(&[]).is_err());
        assert!(CastIds::from_btf(&[0x9f, 0xeb, 1, 0, 24, 0, 0, 0, 0xff, 0xff]).is_err());
        let mut hdr = vec![0x9f, 0xeb, 1, 0, 24, 0, 0, 0];
        hdr.extend_from_slice(&[0; 16]);
        // A valid header with empty sections: no ids, no error.
        assert_eq!(CastIds::from_btf(&hdr).unwrap(), None);
    }

    #[test]
    fn finds_the_ids_in_the_running_kernel() {
        match CastIds::running_kernel() {
            Ok(Some(ids)) => {
                assert!(ids.rdonly_cast > 0 && ids.target > 0);
                println!("cast ids: {ids}");
            }
            Ok(None) => println!(
                "SKIP finds_the_ids_in_the_running_kernel: this kernel's BTF has no bpf_rdonly_cast (Linux < 6.2)"
            ),
            Err(e) => println!("SKIP finds_the_ids_in_the_running_kernel: {e}"),
        }
    }
}
