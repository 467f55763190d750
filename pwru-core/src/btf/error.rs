//! Errors of the BTF reader.

use std::path::PathBuf;

/// Why BTF could not be read or a type could not be found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BtfError {
    /// The file could not be read.
    #[error("cannot read BTF from {path}: {source}; the kernel needs CONFIG_DEBUG_INFO_BTF=y for /sys/kernel/btf/vmlinux, otherwise give a BTF file of this kernel (e.g. from btfhub) with the kernel_btf option")]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The data does not start with the BTF magic 0xeb9f.
    #[error("not BTF data (magic {0:#06x}, expected 0xeb9f); pass raw BTF or an ELF file with a .BTF section")]
    BadMagic(u16),
    /// A BTF version this reader does not know.
    #[error("unsupported BTF version {0} (only version 1 exists); is the file corrupt?")]
    UnsupportedVersion(u8),
    /// The header's section offsets or lengths are inconsistent.
    #[error("corrupt BTF header: {0}")]
    BadHeader(String),
    /// The data ends in the middle of a structure.
    #[error("corrupt BTF: truncated {what} at byte {offset} of its section")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Offset where it starts.
        offset: usize,
    },
    /// A type record has an unknown kind (newer kernel than this reader, or corrupt data).
    #[error("corrupt or too new BTF: unknown type kind {kind} at byte {offset} of the type section; update pwru-core if the kernel is newer")]
    BadKind {
        /// The raw kind number.
        kind: u8,
        /// Offset of the record.
        offset: usize,
    },
    /// A type id that does not exist.
    #[error("corrupt BTF: type id {0} does not exist")]
    BadTypeId(u32),
    /// A string offset outside the string section, unterminated, or not UTF-8.
    #[error("corrupt BTF: string offset {0} is invalid")]
    BadString(u32),
    /// A loop of type references (typedef of itself...).
    #[error("corrupt BTF: reference loop through type id {0}")]
    Loop(u32),
    /// A named type is absent.
    #[error("{0} not found in BTF; the kernel may be too old or built without it")]
    NotFound(String),
    /// An ELF file is malformed or has no `.BTF` section.
    #[error("cannot use ELF object: {0}; compile the object with -g so that clang emits .BTF")]
    Elf(String),
    /// A BTF file was read but its content is not usable BTF (empty, corrupt, not BTF).
    #[error("{path} is not usable BTF: {source}; give the running kernel's BTF (raw, or an ELF file with .BTF) with the kernel_btf option")]
    InFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with its content.
        #[source]
        source: Box<BtfError>,
    },
    /// A module name that cannot name a file under /sys/kernel/btf.
    #[error("invalid kernel module name {0:?}; use a name listed in /sys/kernel/btf")]
    BadModuleName(String),
}
