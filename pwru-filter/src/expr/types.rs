//! What the compiler needs to know about kernel types: a small trait the caller implements over
//! its BTF reader (this crate reads no BTF), and the shapes it answers with.

/// A type as the caller's type table names it (a BTF type id for BTF-backed tables).
pub type TypeRef = u32;

/// The shape of a type, with typedefs and qualifiers (const, volatile...) already skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// An integer, `bool` or enum of `size` bytes.
    Int {
        /// Size in bytes.
        size: u32,
        /// Whether comparisons are signed.
        signed: bool,
    },
    /// A pointer.
    Pointer {
        /// The pointed-to type.
        target: TypeRef,
    },
    /// A struct or union.
    Record {
        /// Its name (`""` when anonymous), for messages.
        name: String,
        /// Size in bytes.
        size: u32,
    },
    /// An array of `len` elements.
    Array {
        /// The element type.
        elem: TypeRef,
        /// Number of elements.
        len: u32,
    },
    /// Anything else (functions, floats, void...): not readable by an expression.
    Other {
        /// What it is, for messages (e.g. "float", "void").
        what: String,
    },
}

/// A member of a struct or union.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldInfo {
    /// Offset from the start of the record, in bits.
    pub bit_offset: u32,
    /// Bitfield width in bits; 0 when the member is not a bitfield.
    pub bitfield_size: u32,
    /// The member's type.
    pub ty: TypeRef,
}

/// The kernel's types, as the expression compiler asks about them.
pub trait TypeInfo {
    /// The struct (or union) called `name`, e.g. `sk_buff`.
    fn record_named(&self, name: &str) -> Option<TypeRef>;
    /// The shape of `ty`, typedefs and qualifiers skipped; `Err` says why it cannot be read.
    fn shape(&self, ty: TypeRef) -> Result<Shape, String>;
    /// The member `name` of the record `record`, looking through anonymous inner structs and
    /// unions as C does (offsets from the outer record).
    fn field(&self, record: TypeRef, name: &str) -> Option<FieldInfo>;
}

/// The variable an expression starts from and the struct it points to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Root {
    /// The name the expression uses (`skb`).
    pub var: &'static str,
    /// The struct it points to (`sk_buff`).
    pub record: &'static str,
}

/// `skb`, a `struct sk_buff *`.
pub const SKB: Root = Root {
    var: "skb",
    record: "sk_buff",
};

/// `xdp`, a `struct xdp_buff *`.
pub const XDP: Root = Root {
    var: "xdp",
    record: "xdp_buff",
};
