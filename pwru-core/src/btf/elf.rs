//! Just enough ELF parsing to find a section by name (for `.BTF`).

use super::BtfError;

pub(crate) fn is_elf(data: &[u8]) -> bool {
    data.starts_with(b"\x7fELF")
}

struct Reader<'a> {
    data: &'a [u8],
    big_endian: bool,
}

impl Reader<'_> {
    fn bytes<const N: usize>(&self, off: u64) -> Result<[u8; N], BtfError> {
        let start = usize::try_from(off).map_err(|_| err("offset out of range"))?;
        start
            .checked_add(N)
            .and_then(|end| self.data.get(start..end))
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| err("truncated header"))
    }
    fn u16(&self, off: u64) -> Result<u16, BtfError> {
        let b = self.bytes::<2>(off)?;
        Ok(if self.big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    }
    fn u32(&self, off: u64) -> Result<u32, BtfError> {
        let b = self.bytes::<4>(off)?;
        Ok(if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }
    fn u64(&self, off: u64) -> Result<u64, BtfError> {
        let b = self.bytes::<8>(off)?;
        Ok(if self.big_endian {
            u64::from_be_bytes(b)
        } else {
            u64::from_le_bytes(b)
        })
    }
}

fn err(msg: &str) -> BtfError {
    BtfError::Elf(msg.to_string())
}

struct Section {
    name_off: u32,
    offset: u64,
    size: u64,
    is_nobits: bool,
}

/// Returns the bytes of the section called `want`.
pub(crate) fn find_section<'a>(data: &'a [u8], want: &str) -> Result<&'a [u8], BtfError> {
    if !is_elf(data) || data.len() < 16 {
        return Err(err("not an ELF file"));
    }
    let is64 = match data[4] {
        1 => false,
        2 => true,
        _ => return Err(err("unknown ELF class")),
    };
    let big_endian = match data[5] {
        1 => false,
        2 => true,
        _ => return Err(err("unknown ELF byte order")),
    };
    let r = Reader { data, big_endian };
    let (shoff, shentsize, shnum, shstrndx) = if is64 {
        (r.u64(0x28)?, r.u16(0x3a)?, r.u16(0x3c)?, r.u16(0x3e)?)
    } else {
        (
            u64::from(r.u32(0x20)?),
            r.u16(0x2e)?,
            r.u16(0x30)?,
            r.u16(0x32)?,
        )
    };
    let min_ent = if is64 { 64 } else { 40 };
    if shnum == 0 || u64::from(shentsize) < min_ent {
        return Err(err("no section headers"));
    }
    let section = |i: u16| -> Result<Section, BtfError> {
        let base = shoff
            .checked_add(u64::from(i) * u64::from(shentsize))
            .ok_or_else(|| err("section header offset overflows"))?;
        let sh_type = r.u32(base + 4)?;
        let (offset, size) = if is64 {
            (r.u64(base + 0x18)?, r.u64(base + 0x20)?)
        } else {
            (
                u64::from(r.u32(base + 0x10)?),
                u64::from(r.u32(base + 0x14)?),
            )
        };
        Ok(Section {
            name_off: r.u32(base)?,
            offset,
            size,
            is_nobits: sh_type == 8,
        })
    };
    let bytes_of = |s: &Section| -> Result<&'a [u8], BtfError> {
        if s.is_nobits {
            return Ok(&[]);
        }
        let start = usize::try_from(s.offset).map_err(|_| err("section offset too large"))?;
        let len = usize::try_from(s.size).map_err(|_| err("section size too large"))?;
        start
            .checked_add(len)
            .and_then(|end| data.get(start..end))
            .ok_or_else(|| err("section extends past the end of the file"))
    };
    let strtab = bytes_of(&section(shstrndx)?)?;
    for i in 0..shnum {
        let s = section(i)?;
        let name = strtab
            .get(s.name_off as usize..)
            .and_then(|rest| rest.split(|&b| b == 0).next());
        if name == Some(want.as_bytes()) {
            return bytes_of(&s);
        }
    }
    Err(BtfError::Elf(format!("no {want} section")))
}
