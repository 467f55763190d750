//! Syntax tree -> typed tree: member chains become byte offsets and pointer reads through the
//! caller's [`TypeInfo`]; comparisons get their signedness.

use super::error::At;
use super::lexer::CmpOp;
use super::parser::{Ast, Link};
use super::types::{Root, Shape, TypeInfo, TypeRef};

/// One integer read at the end of a member chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// Offsets of the pointers followed, in order: each step reads 8 bytes at
    /// `current + offset` and continues from that address (the first from the root).
    pub derefs: Vec<u32>,
    /// Byte offset of the value from the last address.
    pub offset: u32,
    /// Bytes read (1..=8).
    pub bytes: u8,
    /// Bits below the value in the bytes read (bitfields), 0..=7.
    pub shift: u8,
    /// Width of the value in bits (1..=64).
    pub bits: u8,
    /// Whether the value is sign-extended to 64 bits (else zero-extended).
    pub signed: bool,
}

/// An integer-valued expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A member chain.
    Field(Access),
    /// A literal (its 64-bit two's complement).
    Const(u64),
    /// Bitwise and.
    Mask(Box<Value>, Box<Value>),
}

impl Value {
    /// `Some(signed)` when the value has a type; `None` for literals, which take the type of
    /// the other side.
    pub fn signedness(&self) -> Option<bool> {
        match self {
            Value::Field(a) => Some(a.signed),
            Value::Const(_) => None,
            Value::Mask(a, b) => match (a.signedness(), b.signedness()) {
                (Some(x), Some(y)) => Some(x && y),
                (x, None) | (None, x) => x,
            },
        }
    }
}

/// A condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A comparison; `signed` is the comparison's signedness.
    Cmp {
        /// The operator.
        op: CmpOp,
        /// Left operand.
        lhs: Value,
        /// Right operand.
        rhs: Value,
        /// Signed comparison.
        signed: bool,
    },
    /// A value used as a condition: true when non-zero.
    Truth(Value),
    /// Both.
    And(Box<Node>, Box<Node>),
    /// Either.
    Or(Box<Node>, Box<Node>),
    /// Not.
    Not(Box<Node>),
}

/// Resolves a condition.
pub(crate) fn condition(ast: &Ast, root: Root, types: &dyn TypeInfo) -> Result<Node, At> {
    Ok(match ast {
        Ast::And(a, b) => Node::And(
            Box::new(condition(a, root, types)?),
            Box::new(condition(b, root, types)?),
        ),
        Ast::Or(a, b) => Node::Or(
            Box::new(condition(a, root, types)?),
            Box::new(condition(b, root, types)?),
        ),
        Ast::Not { inner, .. } => Node::Not(Box::new(condition(inner, root, types)?)),
        Ast::Cmp { op, lhs, rhs, .. } => {
            let lhs = value(lhs, root, types)?;
            let rhs = value(rhs, root, types)?;
            // Two fields: signed only when both are (C would convert to unsigned when either
            // side is an unsigned type at least as wide as int, the common case here).
            let signed = match (lhs.signedness(), rhs.signedness()) {
                (Some(a), Some(b)) => a && b,
                (Some(a), None) | (None, Some(a)) => a,
                (None, None) => false,
            };
            Node::Cmp {
                op: *op,
                lhs,
                rhs,
                signed,
            }
        }
        other => Node::Truth(value(other, root, types)?),
    })
}

/// Resolves an integer-valued expression (a comparison or `&&` here is an error).
pub(crate) fn value(ast: &Ast, root: Root, types: &dyn TypeInfo) -> Result<Value, At> {
    match ast {
        Ast::Num { value, .. } => Ok(Value::Const(*value)),
        Ast::Mask { lhs, rhs, .. } => Ok(Value::Mask(
            Box::new(value(lhs, root, types)?),
            Box::new(value(rhs, root, types)?),
        )),
        Ast::Chain {
            root: name,
            links,
            column,
        } => chain(name, links, *column, root, types).map(Value::Field),
        other => Err(At::new(
            other.column(),
            "a condition (comparison, `&&`, `||` or `!`) is used as a value; compare or mask \
             member chains and numbers only",
        )),
    }
}

/// Where the walk along a chain stands.
enum Place {
    /// The root pointer itself (held in a register, not in memory).
    Root(TypeRef),
    /// A member at `offset` bytes from the current base address.
    Memory {
        offset: u32,
        ty: TypeRef,
        /// (bit offset within the byte at `offset`, width) of a bitfield.
        bitfield: Option<(u32, u32)>,
    },
}

fn chain(
    name: &str,
    links: &[Link],
    column: usize,
    root: Root,
    types: &dyn TypeInfo,
) -> Result<Access, At> {
    if name != root.var {
        return Err(At::new(
            column,
            format!(
                "unknown name `{name}`; this expression starts from `{}` (struct {} *), e.g. \
                 {}->...",
                root.var, root.record, root.var
            ),
        ));
    }
    let record = types.record_named(root.record).ok_or_else(|| {
        At::new(
            column,
            format!(
                "the kernel's BTF has no struct {}; pass a kernel BTF that has it",
                root.record
            ),
        )
    })?;
    let mut derefs = Vec::new();
    let mut place = Place::Root(record);
    let mut text = name.to_string();
    for link in links {
        place = match link {
            Link::Member {
                name: member,
                arrow,
                column,
            } => {
                let column = *column;
                // The record the member belongs to, following a pointer for `->`.
                let (record, base) = match (&place, arrow) {
                    (Place::Root(t), true) => (*t, 0),
                    (Place::Root(_), false) => {
                        return Err(At::new(
                            column,
                            format!("`{text}` is a pointer; use `->{member}`"),
                        ))
                    }
                    (
                        Place::Memory {
                            bitfield: Some(_), ..
                        },
                        _,
                    ) => {
                        return Err(At::new(
                            column,
                            format!("`{text}` is a bitfield and has no members"),
                        ))
                    }
                    (Place::Memory { offset, ty, .. }, true) => match shape(types, *ty, column)? {
                        Shape::Pointer { target } => {
                            derefs.push(*offset);
                            (target, 0)
                        }
                        Shape::Record { .. } => {
                            return Err(At::new(
                                column,
                                format!("`{text}` is a struct, not a pointer; use `.{member}`"),
                            ))
                        }
                        other => {
                            return Err(At::new(
                                column,
                                format!("`{text}` is {} and has no members", what(&other)),
                            ))
                        }
                    },
                    (Place::Memory { offset, ty, .. }, false) => match shape(types, *ty, column)? {
                        Shape::Record { .. } => (*ty, *offset),
                        Shape::Pointer { .. } => {
                            return Err(At::new(
                                column,
                                format!("`{text}` is a pointer; use `->{member}`"),
                            ))
                        }
                        other => {
                            return Err(At::new(
                                column,
                                format!("`{text}` is {} and has no members", what(&other)),
                            ))
                        }
                    },
                };
                let rec_name = match shape(types, record, column)? {
                    Shape::Record { name, .. } => name,
                    other => {
                        return Err(At::new(
                            column,
                            format!("`{text}` points to {}, which has no members", what(&other)),
                        ))
                    }
                };
                let f = types.field(record, member).ok_or_else(|| {
                    At::new(
                        column,
                        format!(
                            "struct {} has no member `{member}` (in `{text}`); check the name \
                             against this kernel's BTF (bpftool btf dump file \
                             /sys/kernel/btf/vmlinux format c)",
                            if rec_name.is_empty() {
                                "<anonymous>"
                            } else {
                                &rec_name
                            }
                        ),
                    )
                })?;
                text.push_str(if *arrow { "->" } else { "." });
                text.push_str(member);
                let offset = base.checked_add(f.bit_offset / 8).ok_or_else(|| {
                    At::new(column, "member offset overflows; this BTF is not usable")
                })?;
                let bitfield =
                    (f.bitfield_size != 0).then_some((f.bit_offset % 8, f.bitfield_size));
                if bitfield.is_none() && f.bit_offset % 8 != 0 {
                    return Err(At::new(
                        column,
                        format!(
                            "`{text}` is not byte-aligned and not a bitfield; it cannot be read"
                        ),
                    ));
                }
                Place::Memory {
                    offset,
                    ty: f.ty,
                    bitfield,
                }
            }
            Link::Index { index, column } => {
                let column = *column;
                let Place::Memory {
                    offset,
                    ty,
                    bitfield: None,
                } = place
                else {
                    return Err(At::new(column, format!("`{text}` is not an array")));
                };
                let Shape::Array { elem, len } = shape(types, ty, column)? else {
                    return Err(At::new(
                        column,
                        format!("`{text}` is not an array; index arrays only"),
                    ));
                };
                if *index >= u64::from(len) {
                    return Err(At::new(
                        column,
                        format!(
                            "index {index} is out of bounds: `{text}` has {len} elements (0..={})",
                            len.saturating_sub(1)
                        ),
                    ));
                }
                let size = size_of(types, elem, column)?;
                let offset = u64::from(offset) + index * u64::from(size);
                let offset = u32::try_from(offset)
                    .map_err(|_| At::new(column, "element offset overflows"))?;
                text.push_str(&format!("[{index}]"));
                Place::Memory {
                    offset,
                    ty: elem,
                    bitfield: None,
                }
            }
        };
    }
    let (offset, ty, bitfield) = match place {
        Place::Root(_) => {
            return Err(At::new(
                column,
                format!("`{text}` alone is the object's address; name a member, e.g. {text}->mark"),
            ))
        }
        Place::Memory {
            offset,
            ty,
            bitfield,
        } => (offset, ty, bitfield),
    };
    let end_column = links
        .last()
        .map(|l| match l {
            Link::Member { column, .. } | Link::Index { column, .. } => *column,
        })
        .unwrap_or(column);
    let (size, signed) = match shape(types, ty, end_column)? {
        Shape::Int { size, signed } => (size, signed),
        Shape::Pointer { .. } => (8, false),
        other => {
            return Err(At::new(
                end_column,
                format!(
                    "`{text}` is {}; compare integers, enums or pointers only (name one of its \
                     members, or index it)",
                    what(&other)
                ),
            ))
        }
    };
    match bitfield {
        Some((shift, bits)) => {
            let bytes = (shift + bits).div_ceil(8);
            if bits == 0 || bits > 64 || bytes > 8 {
                return Err(At::new(
                    end_column,
                    format!("bitfield `{text}` spans more than 8 bytes; it cannot be read"),
                ));
            }
            Ok(Access {
                derefs,
                offset,
                bytes: bytes as u8,
                shift: shift as u8,
                bits: bits as u8,
                signed,
            })
        }
        None => {
            if !matches!(size, 1 | 2 | 4 | 8) {
                return Err(At::new(
                    end_column,
                    format!("`{text}` is a {size}-byte integer; only 1, 2, 4 and 8 bytes are read"),
                ));
            }
            Ok(Access {
                derefs,
                offset,
                bytes: size as u8,
                shift: 0,
                bits: (size * 8) as u8,
                signed,
            })
        }
    }
}

fn shape(types: &dyn TypeInfo, ty: TypeRef, column: usize) -> Result<Shape, At> {
    types
        .shape(ty)
        .map_err(|why| At::new(column, format!("cannot read this member's type: {why}")))
}

fn size_of(types: &dyn TypeInfo, ty: TypeRef, column: usize) -> Result<u32, At> {
    Ok(match shape(types, ty, column)? {
        Shape::Int { size, .. } => size,
        Shape::Pointer { .. } => 8,
        Shape::Record { size, .. } => size,
        Shape::Array { elem, len } => size_of(types, elem, column)?.saturating_mul(len),
        Shape::Other { what } => {
            return Err(At::new(
                column,
                format!("array of {what} cannot be indexed"),
            ))
        }
    })
}

fn what(s: &Shape) -> String {
    match s {
        Shape::Int { size, .. } => format!("a {size}-byte integer"),
        Shape::Pointer { .. } => "a pointer".into(),
        Shape::Record { name, .. } if name.is_empty() => "an anonymous struct".into(),
        Shape::Record { name, .. } => format!("a struct {name}"),
        Shape::Array { len, .. } => format!("an array of {len}"),
        Shape::Other { what } => format!("a {what}"),
    }
}
