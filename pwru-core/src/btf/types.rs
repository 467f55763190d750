//! Views of single BTF type records.

use super::{read_u32, Btf, TYPE_HEAD_LEN};

/// A BTF type id. Id 0 is `void`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TypeId(pub u32);

/// The kind of a BTF type (`BTF_KIND_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // the variants are the kernel's BTF_KIND_* names
pub enum Kind {
    Int,
    Ptr,
    Array,
    Struct,
    Union,
    Enum,
    Fwd,
    Typedef,
    Volatile,
    Const,
    Restrict,
    Func,
    FuncProto,
    Var,
    DataSec,
    Float,
    DeclTag,
    TypeTag,
    Enum64,
}

impl Kind {
    pub(crate) fn from_raw(raw: u8) -> Option<Kind> {
        Some(match raw {
            1 => Kind::Int,
            2 => Kind::Ptr,
            3 => Kind::Array,
            4 => Kind::Struct,
            5 => Kind::Union,
            6 => Kind::Enum,
            7 => Kind::Fwd,
            8 => Kind::Typedef,
            9 => Kind::Volatile,
            10 => Kind::Const,
            11 => Kind::Restrict,
            12 => Kind::Func,
            13 => Kind::FuncProto,
            14 => Kind::Var,
            15 => Kind::DataSec,
            16 => Kind::Float,
            17 => Kind::DeclTag,
            18 => Kind::TypeTag,
            19 => Kind::Enum64,
            _ => return None,
        })
    }

    /// Size of one vlen record following the fixed part, for kinds that have them.
    fn record_len(self) -> usize {
        match self {
            Kind::Struct | Kind::Union | Kind::DataSec | Kind::Enum64 => 12,
            Kind::Enum | Kind::FuncProto => 8,
            _ => 0,
        }
    }
}

/// Bytes following the fixed 12-byte part of a record of `kind` with `vlen` entries.
pub(crate) fn extra_len(kind: Kind, vlen: usize) -> usize {
    let fixed = match kind {
        Kind::Int | Kind::Var | Kind::DeclTag => 4,
        Kind::Array => 12,
        _ => 0,
    };
    fixed + kind.record_len() * vlen
}

/// A view of one type record. Obtained from [`Btf::get`] or [`Btf::types`].
#[derive(Clone, Copy)]
pub struct Type<'a> {
    pub(crate) name_off: u32,
    info: u32,
    size_or_type: u32,
    /// The record's bytes after the fixed part (already bounds-checked by parsing).
    extra: &'a [u8],
    big_endian: bool,
}

impl std::fmt::Debug for Type<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Type")
            .field("kind", &self.kind())
            .field("name_off", &self.name_off)
            .field("vlen", &self.vlen())
            .field("size_or_type", &self.size_or_type)
            .finish()
    }
}

pub(crate) fn decode<'a>(btf: &'a Btf, _id: TypeId, rec: &'a [u8]) -> Option<Type<'a>> {
    let be = btf.is_big_endian();
    let name_off = read_u32(rec, 0, be).ok()?;
    let info = read_u32(rec, 4, be).ok()?;
    let size_or_type = read_u32(rec, 8, be).ok()?;
    let kind = Kind::from_raw(((info >> 24) & 0x1f) as u8)?;
    let extra_n = extra_len(kind, (info & 0xffff) as usize);
    let extra = rec.get(TYPE_HEAD_LEN..TYPE_HEAD_LEN + extra_n)?;
    Some(Type {
        name_off,
        info,
        size_or_type,
        extra,
        big_endian: be,
    })
}

/// A struct or union member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Member name (`""` for anonymous members).
    pub name: String,
    /// Member type.
    pub type_id: TypeId,
    /// Offset from the start of the struct, in bits.
    pub bit_offset: u32,
    /// Bitfield size in bits, 0 when the member is not a bitfield.
    pub bitfield_size: u32,
}

impl Member {
    /// Offset in bytes (bit offset / 8).
    pub fn byte_offset(&self) -> u32 {
        self.bit_offset / 8
    }
}

/// A function prototype parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param<'a> {
    /// Parameter name (may be `""`).
    pub name: &'a str,
    /// Parameter type; `TypeId(0)` as the last parameter means variadic.
    pub type_id: TypeId,
}

/// One enumerator of an enum or enum64.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnumValue {
    /// Enumerator name, e.g. `SKB_DROP_REASON_NO_SOCKET`.
    pub name: String,
    /// Its value (enum64 values above `i64::MAX` wrap; unsigned enums are read as unsigned).
    pub value: i64,
}

/// Size and members of a struct, as [`Btf::struct_layout`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StructLayout {
    /// Struct name.
    pub name: String,
    /// Size in bytes.
    pub size: u32,
    /// Members in declaration order.
    pub members: Vec<Member>,
}

impl StructLayout {
    /// The member called `name`, if any.
    pub fn member(&self, name: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.name == name)
    }
}

impl<'a> Type<'a> {
    /// The type's kind.
    pub fn kind(&self) -> Kind {
        // Records are only built by `decode`, which checked the kind.
        Kind::from_raw(((self.info >> 24) & 0x1f) as u8).unwrap_or(Kind::Int)
    }

    /// Number of member/param/enumerator records (for FUNC: its linkage).
    pub fn vlen(&self) -> usize {
        (self.info & 0xffff) as usize
    }

    /// The `kind_flag` bit (bitfield offsets in structs, union-vs-struct in FWD, signedness in
    /// enums).
    pub fn kind_flag(&self) -> bool {
        self.info >> 31 == 1
    }

    /// The raw size-or-type field: a size for INT/STRUCT/UNION/ENUM/DATASEC/FLOAT, a type id for
    /// the others.
    pub fn size_or_type(&self) -> u32 {
        self.size_or_type
    }

    /// Size in bytes for sized kinds (0 for the others).
    pub fn size(&self) -> u32 {
        match self.kind() {
            Kind::Int
            | Kind::Struct
            | Kind::Union
            | Kind::Enum
            | Kind::Enum64
            | Kind::DataSec
            | Kind::Float => self.size_or_type,
            _ => 0,
        }
    }

    /// The referenced type for PTR, TYPEDEF, CONST, VOLATILE, RESTRICT, TYPE_TAG, FUNC, VAR,
    /// DECL_TAG and FUNC_PROTO (its return type).
    pub fn referenced(&self) -> Option<TypeId> {
        match self.kind() {
            Kind::Ptr
            | Kind::Typedef
            | Kind::Const
            | Kind::Volatile
            | Kind::Restrict
            | Kind::TypeTag
            | Kind::Func
            | Kind::Var
            | Kind::DeclTag
            | Kind::FuncProto => Some(TypeId(self.size_or_type)),
            Kind::Array => Some(TypeId(self.u32_at(0))),
            _ => None,
        }
    }

    fn u32_at(&self, off: usize) -> u32 {
        // `extra` was sized for this kind and vlen when parsed; an out-of-range read cannot
        // happen for offsets computed from them, and reads 0 if it ever did.
        read_u32(self.extra, off, self.big_endian).unwrap_or(0)
    }

    /// For an INT: whether its encoding is signed (false for other kinds).
    pub fn int_signed(&self) -> bool {
        self.kind() == Kind::Int && (self.u32_at(0) >> 24) & 1 == 1
    }

    /// For an ARRAY: its number of elements (0 for other kinds).
    pub fn array_len(&self) -> u32 {
        if self.kind() == Kind::Array {
            self.u32_at(8)
        } else {
            0
        }
    }

    /// Name offset of vlen record `i` for kinds whose records are named.
    pub(crate) fn record_name_off(&self, i: usize) -> Option<u32> {
        let kind = self.kind();
        match kind {
            Kind::Struct | Kind::Union | Kind::Enum | Kind::Enum64 | Kind::FuncProto => {
                Some(self.u32_at(i * kind.record_len()))
            }
            _ => None,
        }
    }

    /// Members of a struct or union (empty for other kinds).
    pub fn members(&self, btf: &'a Btf) -> impl Iterator<Item = Member> + 'a {
        let t = *self;
        let n = if matches!(t.kind(), Kind::Struct | Kind::Union) {
            t.vlen()
        } else {
            0
        };
        (0..n).map(move |i| {
            let base = i * 12;
            let offset = t.u32_at(base + 8);
            let (bit_offset, bitfield_size) = if t.kind_flag() {
                (offset & 0x00ff_ffff, offset >> 24)
            } else {
                (offset, 0)
            };
            Member {
                name: btf.str_at(t.u32_at(base)).unwrap_or("").to_string(),
                type_id: TypeId(t.u32_at(base + 4)),
                bit_offset,
                bitfield_size,
            }
        })
    }

    /// Parameters of a FUNC_PROTO (empty for other kinds).
    pub fn params(&self, btf: &'a Btf) -> impl Iterator<Item = Param<'a>> + 'a {
        let t = *self;
        let n = if t.kind() == Kind::FuncProto {
            t.vlen()
        } else {
            0
        };
        (0..n).map(move |i| Param {
            name: btf.str_at(t.u32_at(i * 8)).unwrap_or(""),
            type_id: TypeId(t.u32_at(i * 8 + 4)),
        })
    }

    /// The parameters' types of a FUNC_PROTO (empty for other kinds), without resolving
    /// their names: what a scan of every function needs.
    pub fn param_types(&self) -> impl Iterator<Item = TypeId> + 'a {
        let t = *self;
        let n = if t.kind() == Kind::FuncProto {
            t.vlen()
        } else {
            0
        };
        (0..n).map(move |i| TypeId(t.u32_at(i * 8 + 4)))
    }

    /// Enumerators of an ENUM or ENUM64 (empty for other kinds).
    pub fn enum_values(&self, btf: &'a Btf) -> impl Iterator<Item = EnumValue> + 'a {
        let t = *self;
        let kind = t.kind();
        let n = if matches!(kind, Kind::Enum | Kind::Enum64) {
            t.vlen()
        } else {
            0
        };
        let signed = t.kind_flag();
        (0..n).map(move |i| {
            let (name_off, value) = if kind == Kind::Enum {
                let raw = t.u32_at(i * 8 + 4);
                let v = if signed {
                    i64::from(raw as i32)
                } else {
                    i64::from(raw)
                };
                (t.u32_at(i * 8), v)
            } else {
                let lo = u64::from(t.u32_at(i * 12 + 4));
                let hi = u64::from(t.u32_at(i * 12 + 8));
                (t.u32_at(i * 12), ((hi << 32) | lo) as i64)
            };
            EnumValue {
                name: btf.str_at(name_off).unwrap_or("").to_string(),
                value,
            }
        })
    }
}
