//! A small, bounds-checked reader of BTF (BPF Type Format) data.
//!
//! pwru-rs needs to *iterate* kernel types: every function taking a `struct sk_buff *`, every
//! `btf_trace_*` typedef, the `skb_drop_reason` enum, and struct layouts of its own compiled
//! object. aya-obj 0.3 parses BTF but keeps type iteration private, and the `btf-rs` crate, which
//! does iterate, is LGPL-2.1-or-later — incompatible with this project's MIT OR Apache-2.0
//! licence. So this module is an independent reader written from the kernel's BTF documentation
//! (`Documentation/bpf/btf.rst`).
//!
//! Design: parsing makes one validating pass over the type section and records where each type
//! starts; every later access decodes fields on demand from the validated bytes. Parsing the host's
//! 5 MB vmlinux BTF takes a few milliseconds. Corrupt input is reported as [`BtfError`], never a
//! panic or an out-of-bounds read.
//!
//! Sources: the kernel's own BTF ([`Btf::vmlinux`]), module split BTF on top of it
//! ([`Btf::module`]), an external file holding raw BTF or an ELF with a `.BTF` section
//! ([`Btf::from_file`]), and ELF objects in memory ([`Btf::from_elf`]).
//!
//! ```no_run
//! use pwru_core::btf::{Btf, Kind};
//! let btf = Btf::vmlinux()?;
//! let id = btf.find_by_name(Kind::Struct, "sk_buff").expect("sk_buff in vmlinux BTF");
//! println!("struct sk_buff is {} bytes", btf.get(id)?.size());
//! # Ok::<(), pwru_core::btf::BtfError>(())
//! ```

pub(crate) mod elf;
mod error;
mod expr_types;
pub(crate) mod for_relocation;
mod kernel;
mod types;

pub use error::BtfError;
pub(crate) use kernel::count_aya_parse;
#[doc(hidden)]
pub use kernel::{kernel_btf_parses, KernelBtfParses, SkbValuePaths};
pub use types::{EnumValue, Kind, Member, Param, StructLayout, Type, TypeId};

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// Where the kernel publishes its BTF.
pub const SYSFS_BTF_DIR: &str = "/sys/kernel/btf";

const BTF_MAGIC: u16 = 0xeb9f;
const HEADER_MIN_LEN: usize = 24;
/// Fixed part of every type record: name_off, info, size/type.
const TYPE_HEAD_LEN: usize = 12;

/// How many lookups by name scan the types before the index is built.
const SCANS_BEFORE_INDEX: u32 = 6;

/// A countdown of [`SCANS_BEFORE_INDEX`] shared by the threads looking names up.
#[derive(Debug)]
struct ScansLeft(std::sync::atomic::AtomicU32);

impl ScansLeft {
    fn new() -> ScansLeft {
        ScansLeft(std::sync::atomic::AtomicU32::new(SCANS_BEFORE_INDEX))
    }

    /// Whether one more lookup may scan (and counts it).
    fn take_one(&self) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        self.0
            .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1))
            .is_ok()
    }
}

/// Parsed BTF: a type table (possibly split on top of a base) and its string section.
///
/// Type ids are global: in split BTF (kernel modules) the module's first type id is the base's
/// type count, and string offsets past the base's string section refer to the module's strings.
pub struct Btf {
    data: Vec<u8>,
    big_endian: bool,
    /// Byte range of the type section inside `data`.
    types: std::ops::Range<usize>,
    /// Byte range of the string section inside `data`.
    strings: std::ops::Range<usize>,
    /// The string section as text, when all of it is UTF-8 and it ends with a NUL (every
    /// kernel's): a name is then found without a UTF-8 check, and an offset is valid when it
    /// is in range and on a character boundary.
    text: Option<Box<str>>,
    /// Offset (relative to the type section) of each local type record, indexed by `id - first_id`.
    offsets: Vec<u32>,
    /// Id of the first local type (1 for standalone BTF, base count for split BTF).
    first_id: u32,
    /// Length of the base's string section (0 for standalone BTF).
    base_str_len: u32,
    base: Option<Arc<Btf>>,
    /// Lazily built index of the local types by name (see `Btf::name_index`).
    by_name: OnceLock<Vec<(u64, u32)>>,
    /// Lookups by name left to make by scanning before the index is built.
    scans: ScansLeft,
    source: String,
}

impl std::fmt::Debug for Btf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Btf")
            .field("source", &self.source)
            .field("first_id", &self.first_id)
            .field("types", &self.offsets.len())
            .field("split", &self.base.is_some())
            .finish()
    }
}

impl Btf {
    /// Reads the running kernel's BTF from `/sys/kernel/btf/vmlinux`.
    pub fn vmlinux() -> Result<Btf, BtfError> {
        kernel::count_own_parse();
        Self::from_raw_file(Path::new(SYSFS_BTF_DIR).join("vmlinux"), None)
    }

    /// Reads a kernel module's split BTF (`/sys/kernel/btf/<name>`) on top of `base` (vmlinux).
    pub fn module(name: &str, base: Arc<Btf>) -> Result<Btf, BtfError> {
        if name.is_empty() || name.contains('/') || name == "vmlinux" {
            return Err(BtfError::BadModuleName(name.to_string()));
        }
        Self::from_raw_file(Path::new(SYSFS_BTF_DIR).join(name), Some(base))
    }

    /// Names of the kernel modules that publish BTF under `/sys/kernel/btf` (sorted).
    pub fn module_names() -> Result<Vec<String>, BtfError> {
        let dir = Path::new(SYSFS_BTF_DIR);
        let entries = std::fs::read_dir(dir).map_err(|e| BtfError::Io {
            path: dir.to_path_buf(),
            source: e,
        })?;
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n != "vmlinux")
            .collect();
        names.sort();
        Ok(names)
    }

    /// Reads an external BTF file (pwru's `--kernel-btf`): raw BTF or an ELF file with a `.BTF`
    /// section are both accepted.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Btf, BtfError> {
        kernel::count_own_parse();
        let path = path.as_ref();
        let data = read(path)?;
        if self::elf::is_elf(&data) {
            let mut btf = Self::from_elf(&data).map_err(|e| in_file(path, e))?;
            btf.source = path.display().to_string();
            Ok(btf)
        } else {
            Self::parse(data, None, path.display().to_string()).map_err(|e| in_file(path, e))
        }
    }

    /// Parses raw BTF bytes (standalone, e.g. a vmlinux BTF blob).
    pub fn from_bytes(data: Vec<u8>) -> Result<Btf, BtfError> {
        Self::parse(data, None, "<bytes>".to_string())
    }

    /// Parses raw split BTF bytes on top of `base`.
    pub fn from_split_bytes(data: Vec<u8>, base: Arc<Btf>) -> Result<Btf, BtfError> {
        Self::parse(data, Some(base), "<bytes>".to_string())
    }

    /// Parses the `.BTF` section of an ELF object (64- or 32-bit, either byte order).
    pub fn from_elf(object: &[u8]) -> Result<Btf, BtfError> {
        let section = elf_section(object, ".BTF")?;
        Self::parse(section.to_vec(), None, "<elf .BTF>".to_string())
    }

    fn from_raw_file(path: PathBuf, base: Option<Arc<Btf>>) -> Result<Btf, BtfError> {
        let data = read(&path)?;
        Self::parse(data, base, path.display().to_string()).map_err(|e| in_file(&path, e))
    }

    fn parse(data: Vec<u8>, base: Option<Arc<Btf>>, source: String) -> Result<Btf, BtfError> {
        if data.len() < HEADER_MIN_LEN {
            return Err(BtfError::Truncated {
                what: "header",
                offset: 0,
            });
        }
        let big_endian = match (data[0], data[1]) {
            (0x9f, 0xeb) => false,
            (0xeb, 0x9f) => true,
            _ => {
                return Err(BtfError::BadMagic(u16::from_le_bytes([data[0], data[1]])));
            }
        };
        debug_assert_eq!(BTF_MAGIC, 0xeb9f);
        let version = data[2];
        if version != 1 {
            return Err(BtfError::UnsupportedVersion(version));
        }
        let rd = |off: usize| read_u32(&data, off, big_endian);
        let hdr_len = rd(4)? as usize;
        if hdr_len < HEADER_MIN_LEN || hdr_len > data.len() {
            return Err(BtfError::BadHeader(format!(
                "header length {hdr_len} outside 24..={}",
                data.len()
            )));
        }
        let type_off = rd(8)? as usize;
        let type_len = rd(12)? as usize;
        let str_off = rd(16)? as usize;
        let str_len = rd(20)? as usize;
        let section = |off: usize, len: usize, what: &str| {
            let start = hdr_len.checked_add(off);
            let end = start.and_then(|s| s.checked_add(len));
            match (start, end) {
                (Some(s), Some(e)) if e <= data.len() => Ok(s..e),
                _ => Err(BtfError::BadHeader(format!(
                    "{what} section {off}+{len} is outside the {} bytes of data",
                    data.len() - hdr_len
                ))),
            }
        };
        let types = section(type_off, type_len, "type")?;
        let strings = section(str_off, str_len, "string")?;
        if base.is_none() && str_len > 0 && data[strings.start] != 0 {
            return Err(BtfError::BadHeader(
                "string section does not start with an empty string".into(),
            ));
        }
        let (first_id, base_str_len) = match &base {
            Some(b) => (b.type_count(), b.total_str_len()),
            None => (1, 0),
        };
        let offsets = index_types(&data[types.clone()], big_endian)?;
        let text = std::str::from_utf8(&data[strings.clone()])
            .ok()
            .filter(|t| t.ends_with('\0'))
            .map(Box::from);
        let btf = Btf {
            types,
            strings,
            text,
            offsets,
            first_id,
            base_str_len,
            base,
            big_endian,
            data,
            by_name: OnceLock::new(),
            scans: ScansLeft::new(),
            source,
        };
        btf.validate_names()?;
        Ok(btf)
    }

    /// Checks that every name offset resolves, so that later accesses cannot fail on names.
    fn validate_names(&self) -> Result<(), BtfError> {
        for id in self.local_ids() {
            let t = self.get(id)?;
            self.check_name(t.name_off)?;
            for i in 0..t.vlen() {
                if let Some(off) = t.record_name_off(i) {
                    self.check_name(off)?;
                }
            }
        }
        Ok(())
    }

    /// Whether [`Btf::str_at`] succeeds for `off`: in constant time for the local strings
    /// when they are all text (a kernel's BTF has ~500,000 names to check).
    fn check_name(&self, off: u32) -> Result<(), BtfError> {
        match &self.text {
            Some(text) if off >= self.base_str_len => {
                let local = (off - self.base_str_len) as usize;
                if text.is_char_boundary(local) && local < text.len() {
                    Ok(())
                } else {
                    Err(BtfError::BadString(off))
                }
            }
            _ => self.str_at(off).map(drop),
        }
    }

    /// Where this BTF came from (a path, or `<bytes>`).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The base BTF of split BTF (vmlinux for a module), if any.
    pub fn base(&self) -> Option<&Arc<Btf>> {
        self.base.as_ref()
    }

    /// One past the highest valid type id (type id 0 is `void`).
    pub fn type_count(&self) -> u32 {
        self.first_id + self.offsets.len() as u32
    }

    /// Ids of the types defined in this BTF (not in its base).
    pub fn local_ids(&self) -> impl Iterator<Item = TypeId> + '_ {
        (self.first_id..self.type_count()).map(TypeId)
    }

    fn total_str_len(&self) -> u32 {
        self.base_str_len + self.strings.len() as u32
    }

    /// Returns type `id`, looking into the base for ids below this BTF's first id.
    ///
    /// Id 0 (`void`) is an error: callers check for it explicitly.
    pub fn get(&self, id: TypeId) -> Result<Type<'_>, BtfError> {
        if id.0 < self.first_id {
            return match &self.base {
                Some(b) if id.0 > 0 => b.get(id),
                _ => Err(BtfError::BadTypeId(id.0)),
            };
        }
        // `let ... else` rather than `ok_or`: an eager error is built and dropped on every
        // successful call, and these run millions of times per discovery.
        let idx = (id.0 - self.first_id) as usize;
        let Some(&off) = self.offsets.get(idx) else {
            return Err(BtfError::BadTypeId(id.0));
        };
        let Some(rec) = self.data[self.types.clone()].get(off as usize..) else {
            return Err(BtfError::BadTypeId(id.0));
        };
        match types::decode(self, id, rec) {
            Some(t) => Ok(t),
            None => Err(BtfError::BadTypeId(id.0)),
        }
    }

    /// Returns the string at `off` (the base's strings come first in split BTF).
    pub fn str_at(&self, off: u32) -> Result<&str, BtfError> {
        if off < self.base_str_len {
            return match &self.base {
                Some(b) => b.str_at(off),
                None => Err(BtfError::BadString(off)),
            };
        }
        let local = (off - self.base_str_len) as usize;
        if let Some(text) = &self.text {
            // Ends with a NUL: whatever follows a boundary has one.
            return match text.get(local..).and_then(|rest| rest.split('\0').next()) {
                Some(s) => Ok(s),
                None => Err(BtfError::BadString(off)),
            };
        }
        let strings = &self.data[self.strings.clone()];
        let Some(rest) = strings.get(local..) else {
            return Err(BtfError::BadString(off));
        };
        let Some(end) = rest.iter().position(|&b| b == 0) else {
            return Err(BtfError::BadString(off));
        };
        match std::str::from_utf8(&rest[..end]) {
            Ok(s) => Ok(s),
            Err(_) => Err(BtfError::BadString(off)),
        }
    }

    /// Whether the string at `off` is `name`: a comparison of bytes, without the search for
    /// the string's end and the UTF-8 check of [`Btf::str_at`] (for scans of every type).
    pub fn str_is(&self, off: u32, name: &str) -> bool {
        if off < self.base_str_len {
            return self.base.as_ref().is_some_and(|b| b.str_is(off, name));
        }
        let local = (off - self.base_str_len) as usize;
        let strings = &self.data[self.strings.clone()];
        let n = name.len();
        strings
            .get(local..local + n + 1)
            .is_some_and(|s| &s[..n] == name.as_bytes() && s[n] == 0)
    }

    /// The name of a type, or `""` for anonymous types (and for unresolvable offsets, which
    /// parsing has already rejected).
    pub fn name_of(&self, t: &Type<'_>) -> &str {
        self.str_at(t.name_off).unwrap_or("")
    }

    /// Iterates over the local types as `(id, type)`.
    pub fn types(&self) -> impl Iterator<Item = (TypeId, Type<'_>)> + '_ {
        self.local_ids()
            .filter_map(move |id| self.get(id).ok().map(|t| (id, t)))
    }

    /// The named local types as `(hash of the name, id)`, sorted: built once, on the first
    /// lookup by name, without an allocation per name (under QEMU the `HashMap` of owned names
    /// it replaced took longer than parsing the BTF).
    fn name_index(&self) -> &[(u64, u32)] {
        self.by_name.get_or_init(|| {
            let mut index: Vec<(u64, u32)> = self
                .types()
                .filter_map(|(id, t)| {
                    let name = self.name_of(&t);
                    (!name.is_empty()).then(|| (crate::fnv::hash(name.as_bytes()), id.0))
                })
                .collect();
            // The ids of one hash in id order, so the first match is the lowest.
            index.sort_unstable();
            index
        })
    }

    /// Finds the first type of `kind` named `name`, searching this BTF then its base.
    ///
    /// The first few lookups scan the types (a session looks up a handful of names: the
    /// index costs as much as several scans); later ones build the index and use it (an
    /// fentry session looks up every function it attaches).
    pub fn find_by_name(&self, kind: Kind, name: &str) -> Option<TypeId> {
        let found = match self.by_name.get() {
            Some(_) => self.find_in_index(kind, name),
            None if self.scans.take_one() => self.local_ids().find(|&id| {
                self.get(id)
                    .is_ok_and(|t| t.kind() == kind && self.str_is(t.name_off, name))
            }),
            None => self.find_in_index(kind, name),
        };
        found.or_else(|| self.base.as_ref().and_then(|b| b.find_by_name(kind, name)))
    }

    /// [`Btf::find_by_name`] in the local types, through the index.
    fn find_in_index(&self, kind: Kind, name: &str) -> Option<TypeId> {
        let index = self.name_index();
        let hash = crate::fnv::hash(name.as_bytes());
        let from = index.partition_point(|&(h, _)| h < hash);
        let found = index[from..]
            .iter()
            .take_while(|&&(h, _)| h == hash)
            .map(|&(_, id)| TypeId(id))
            .find(|&id| {
                self.get(id)
                    .is_ok_and(|t| t.kind() == kind && self.name_of(&t) == name)
            });
        found
    }

    /// Follows typedef, const, volatile, restrict and type-tag links to the underlying type.
    pub fn skip_modifiers(&self, mut id: TypeId) -> Result<TypeId, BtfError> {
        // A chain longer than the type table is a loop in corrupt data.
        for _ in 0..=self.type_count() {
            if id.0 == 0 {
                return Ok(id);
            }
            let t = self.get(id)?;
            match t.kind() {
                Kind::Typedef | Kind::Const | Kind::Volatile | Kind::Restrict | Kind::TypeTag => {
                    id = TypeId(t.size_or_type())
                }
                _ => return Ok(id),
            }
        }
        Err(BtfError::Loop(id.0))
    }

    /// The values of the enum (or enum64) `name`, e.g. `skb_drop_reason`.
    pub fn enum_values(&self, name: &str) -> Result<Vec<EnumValue>, BtfError> {
        let id = self
            .find_by_name(Kind::Enum, name)
            .or_else(|| self.find_by_name(Kind::Enum64, name))
            .ok_or_else(|| BtfError::NotFound(format!("enum {name}")))?;
        let t = self.get(id)?;
        Ok(t.enum_values(self).collect())
    }

    /// Size and member offsets of struct (or union) `name`, for ABI checks of `#[repr(C)]`
    /// mirrors against a compiled object. Members of anonymous inner structs/unions are listed in
    /// their place with offsets from the outer struct, as C name lookup sees them (`sk_buff.mark`).
    pub fn struct_layout(&self, name: &str) -> Result<StructLayout, BtfError> {
        let id = self
            .find_by_name(Kind::Struct, name)
            .or_else(|| self.find_by_name(Kind::Union, name))
            .ok_or_else(|| BtfError::NotFound(format!("struct {name}")))?;
        self.layout_of(id)
    }

    /// [`Btf::struct_layout`] of the struct or union with type id `id`.
    pub(crate) fn layout_of(&self, id: TypeId) -> Result<StructLayout, BtfError> {
        let t = self.get(id)?;
        if !matches!(t.kind(), Kind::Struct | Kind::Union) {
            return Err(BtfError::NotFound(format!(
                "struct or union with id {}",
                id.0
            )));
        }
        let mut members = Vec::new();
        self.flatten_members(&t, 0, &mut members, 0)?;
        Ok(StructLayout {
            name: self.name_of(&t).to_string(),
            size: t.size(),
            members,
        })
    }

    fn flatten_members(
        &self,
        t: &Type<'_>,
        base_bits: u32,
        out: &mut Vec<Member>,
        depth: u32,
    ) -> Result<(), BtfError> {
        if depth > 32 {
            return Err(BtfError::Loop(0));
        }
        for mut m in t.members(self) {
            m.bit_offset = m.bit_offset.saturating_add(base_bits);
            if m.name.is_empty() {
                let inner_id = self.skip_modifiers(m.type_id)?;
                if inner_id.0 != 0 {
                    let inner = self.get(inner_id)?;
                    if matches!(inner.kind(), Kind::Struct | Kind::Union) {
                        self.flatten_members(&inner, m.bit_offset, out, depth + 1)?;
                        continue;
                    }
                }
            }
            out.push(m);
        }
        Ok(())
    }
}

/// Names the file in a parse error, so that a user knows which BTF is bad.
fn in_file(path: &Path, e: BtfError) -> BtfError {
    BtfError::InFile {
        path: path.to_path_buf(),
        source: Box::new(e),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, BtfError> {
    std::fs::read(path).map_err(|e| BtfError::Io {
        path: path.to_path_buf(),
        source: e,
    })
}

pub(crate) fn read_u32(data: &[u8], off: usize, big_endian: bool) -> Result<u32, BtfError> {
    // Not `ok_or`: see `Btf::get`.
    let Some(b) = off
        .checked_add(4)
        .and_then(|end| data.get(off..end))
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
    else {
        return Err(BtfError::Truncated {
            what: "u32 field",
            offset: off,
        });
    };
    Ok(if big_endian {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    })
}

/// One pass over the type section: checks each record fits and records its start.
fn index_types(types: &[u8], big_endian: bool) -> Result<Vec<u32>, BtfError> {
    if types.len() > u32::MAX as usize {
        return Err(BtfError::BadHeader("type section larger than 4 GiB".into()));
    }
    // Typical records are 12-40 bytes; reserve a rough estimate to avoid regrowth.
    let mut offsets = Vec::with_capacity(types.len() / 24);
    let mut off = 0usize;
    while off < types.len() {
        if types.len() - off < TYPE_HEAD_LEN {
            return Err(BtfError::Truncated {
                what: "type record",
                offset: off,
            });
        }
        let info = read_u32(types, off + 4, big_endian)?;
        let kind_raw = ((info >> 24) & 0x1f) as u8;
        let vlen = (info & 0xffff) as usize;
        let Some(kind) = Kind::from_raw(kind_raw) else {
            return Err(BtfError::BadKind {
                kind: kind_raw,
                offset: off,
            });
        };
        let extra = types::extra_len(kind, vlen);
        let len = TYPE_HEAD_LEN + extra;
        if types.len() - off < len {
            return Err(BtfError::Truncated {
                what: "type record body",
                offset: off,
            });
        }
        offsets.push(off as u32);
        off += len;
    }
    Ok(offsets)
}

impl Btf {
    pub(crate) fn is_big_endian(&self) -> bool {
        self.big_endian
    }
}

/// The bytes of section `want` of ELF file `data`, read with the crate's one ELF reader.
fn elf_section<'a>(data: &'a [u8], want: &str) -> Result<&'a [u8], BtfError> {
    use self::elf::Elf;
    let elf = Elf::parse(data).map_err(|e| BtfError::Elf(e.to_string()))?;
    match elf.find_section(want) {
        Ok(Some((_, s))) => elf
            .section_bytes(&s)
            .map_err(|e| BtfError::Elf(e.to_string())),
        Ok(None) => Err(BtfError::Elf(format!("no {want} section"))),
        Err(e) => Err(BtfError::Elf(e.to_string())),
    }
}
