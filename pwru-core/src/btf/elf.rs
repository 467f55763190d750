//! The one ELF reader of pwru-core besides aya-obj's object parser: section headers, section
//! contents and names, and the integers at any offset, for 32- and 64-bit files of either byte
//! order. The BTF reader finds the `.BTF` of a kernel image or module through it.

use std::fmt;

/// What is wrong with an ELF file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ElfError(pub(crate) &'static str);

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// Whether `data` starts with the ELF magic.
pub(crate) fn is_elf(data: &[u8]) -> bool {
    data.starts_with(b"\x7fELF")
}

/// SHT_NOBITS: a section with no bytes in the file (.bss).
const SHT_NOBITS: u32 = 8;

/// An ELF file's header fields that locate its sections.
pub(crate) struct Elf<'a> {
    data: &'a [u8],
    is64: bool,
    big_endian: bool,
    shoff: u64,
    shentsize: u16,
    shnum: u16,
    shstrndx: u16,
}

/// One section header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Section {
    /// Offset of the name in the section-name string table.
    pub(crate) name_off: u32,
    /// `sh_type`.
    pub(crate) kind: u32,
    /// Offset of the contents in the file.
    pub(crate) offset: u64,
    /// Size of the contents.
    pub(crate) size: u64,
}

impl<'a> Elf<'a> {
    /// Reads the file header; fails on anything that is not an ELF file with section headers.
    pub(crate) fn parse(data: &'a [u8]) -> Result<Self, ElfError> {
        if !is_elf(data) || data.len() < 16 {
            return Err(ElfError("not an ELF file"));
        }
        let is64 = match data[4] {
            1 => false,
            2 => true,
            _ => return Err(ElfError("unknown ELF class")),
        };
        let big_endian = match data[5] {
            1 => false,
            2 => true,
            _ => return Err(ElfError("unknown ELF byte order")),
        };
        let mut elf = Elf {
            data,
            is64,
            big_endian,
            shoff: 0,
            shentsize: 0,
            shnum: 0,
            shstrndx: 0,
        };
        (elf.shoff, elf.shentsize, elf.shnum, elf.shstrndx) = if is64 {
            (
                elf.u64(0x28)?,
                elf.u16(0x3a)?,
                elf.u16(0x3c)?,
                elf.u16(0x3e)?,
            )
        } else {
            (
                u64::from(elf.u32(0x20)?),
                elf.u16(0x2e)?,
                elf.u16(0x30)?,
                elf.u16(0x32)?,
            )
        };
        let min_ent = if is64 { 64 } else { 40 };
        if elf.shnum == 0 || elf.shentsize < min_ent {
            return Err(ElfError("no section headers"));
        }
        Ok(elf)
    }

    fn bytes<const N: usize>(&self, off: u64) -> Result<[u8; N], ElfError> {
        let start = usize::try_from(off).map_err(|_| ElfError("offset out of range"))?;
        start
            .checked_add(N)
            .and_then(|end| self.data.get(start..end))
            .and_then(|s| s.try_into().ok())
            .ok_or(ElfError("truncated header"))
    }

    /// The 16-bit integer at `off`, in the file's byte order.
    pub(crate) fn u16(&self, off: u64) -> Result<u16, ElfError> {
        let b = self.bytes::<2>(off)?;
        Ok(if self.big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    }

    /// The 32-bit integer at `off`, in the file's byte order.
    pub(crate) fn u32(&self, off: u64) -> Result<u32, ElfError> {
        let b = self.bytes::<4>(off)?;
        Ok(if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    /// The 64-bit integer at `off`, in the file's byte order.
    pub(crate) fn u64(&self, off: u64) -> Result<u64, ElfError> {
        let b = self.bytes::<8>(off)?;
        Ok(if self.big_endian {
            u64::from_be_bytes(b)
        } else {
            u64::from_le_bytes(b)
        })
    }

    /// The header of section `i`.
    pub(crate) fn section(&self, i: u16) -> Result<Section, ElfError> {
        let base = self
            .shoff
            .checked_add(u64::from(i) * u64::from(self.shentsize))
            .ok_or(ElfError("section header offset overflows"))?;
        let kind = self.u32(base + 4)?;
        let (offset, size) = if self.is64 {
            (self.u64(base + 0x18)?, self.u64(base + 0x20)?)
        } else {
            (
                u64::from(self.u32(base + 0x10)?),
                u64::from(self.u32(base + 0x14)?),
            )
        };
        Ok(Section {
            name_off: self.u32(base)?,
            kind,
            offset,
            size,
        })
    }

    /// The contents of `s` (empty for a section with no bytes in the file).
    pub(crate) fn section_bytes(&self, s: &Section) -> Result<&'a [u8], ElfError> {
        if s.kind == SHT_NOBITS {
            return Ok(&[]);
        }
        let start = usize::try_from(s.offset).map_err(|_| ElfError("section offset too large"))?;
        let len = usize::try_from(s.size).map_err(|_| ElfError("section size too large"))?;
        start
            .checked_add(len)
            .and_then(|end| self.data.get(start..end))
            .ok_or(ElfError("section extends past the end of the file"))
    }

    /// The NUL-terminated string at `off` in string table `table`.
    pub(crate) fn str_at(&self, table: &Section, off: u32) -> Result<&'a [u8], ElfError> {
        let tab = self.section_bytes(table)?;
        let rest = tab
            .get(off as usize..)
            .ok_or(ElfError("string outside its table"))?;
        Ok(&rest[..rest.iter().position(|&b| b == 0).unwrap_or(rest.len())])
    }

    /// The index and header of the section called `name`, if any.
    pub(crate) fn find_section(&self, name: &str) -> Result<Option<(u16, Section)>, ElfError> {
        let names = self.section(self.shstrndx)?;
        for i in 0..self.shnum {
            let s = self.section(i)?;
            // A name outside the table (a damaged header) matches nothing.
            if self.str_at(&names, s.name_off).ok() == Some(name.as_bytes()) {
                return Ok(Some((i, s)));
            }
        }
        Ok(None)
    }
}
