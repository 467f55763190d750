//! The kernel's types as pwru-filter's expression compiler asks about them
//! ([`pwru_filter::expr::TypeInfo`] over this BTF reader): the skb/xdp expressions are resolved
//! against the same parsed BTF as everything else.

use pwru_filter::expr::{FieldInfo, Shape, TypeInfo, TypeRef};

use super::{Btf, Kind, TypeId};

/// Deepest nesting of anonymous structs/unions searched for a member (corrupt BTF could loop).
const MAX_ANON_DEPTH: u32 = 16;

impl TypeInfo for Btf {
    fn record_named(&self, name: &str) -> Option<TypeRef> {
        self.find_by_name(Kind::Struct, name)
            .or_else(|| self.find_by_name(Kind::Union, name))
            .map(|id| id.0)
    }

    fn shape(&self, ty: TypeRef) -> Result<Shape, String> {
        let id = self.skip_modifiers(TypeId(ty)).map_err(|e| e.to_string())?;
        if id.0 == 0 {
            return Ok(Shape::Other {
                what: "void".into(),
            });
        }
        let t = self.get(id).map_err(|e| e.to_string())?;
        Ok(match t.kind() {
            Kind::Int => Shape::Int {
                size: t.size(),
                signed: t.int_signed(),
            },
            Kind::Enum | Kind::Enum64 => Shape::Int {
                size: t.size(),
                signed: t.kind_flag(),
            },
            Kind::Ptr => Shape::Pointer {
                target: t.size_or_type(),
            },
            Kind::Struct | Kind::Union => Shape::Record {
                name: self.name_of(&t).to_string(),
                size: t.size(),
            },
            Kind::Array => Shape::Array {
                elem: t.referenced().map_or(0, |r| r.0),
                len: t.array_len(),
            },
            Kind::Fwd => Shape::Other {
                what: format!(
                    "struct {} declared but not defined in this BTF",
                    self.name_of(&t)
                ),
            },
            other => Shape::Other {
                what: format!("{other:?}").to_lowercase(),
            },
        })
    }

    fn field(&self, record: TypeRef, name: &str) -> Option<FieldInfo> {
        find_field(self, TypeId(record), name, 0, 0)
    }
}

fn find_field(
    btf: &Btf,
    record: TypeId,
    name: &str,
    base_bits: u32,
    depth: u32,
) -> Option<FieldInfo> {
    if depth > MAX_ANON_DEPTH {
        return None;
    }
    let id = btf.skip_modifiers(record).ok()?;
    let t = btf.get(id).ok()?;
    if !matches!(t.kind(), Kind::Struct | Kind::Union) {
        return None;
    }
    for m in t.members(btf) {
        let bit_offset = base_bits.checked_add(m.bit_offset)?;
        if m.name == name {
            return Some(FieldInfo {
                bit_offset,
                bitfield_size: m.bitfield_size,
                ty: m.type_id.0,
            });
        }
        if m.name.is_empty() {
            if let Some(f) = find_field(btf, m.type_id, name, bit_offset, depth + 1) {
                return Some(f);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use pwru_filter::expr::{Condition, Reading, SKB};

    fn vmlinux() -> Option<Btf> {
        Btf::vmlinux().ok()
    }

    #[test]
    fn kernel_sk_buff_members_resolve() {
        let Some(btf) = vmlinux() else {
            eprintln!("SKIP kernel_sk_buff_members_resolve: no /sys/kernel/btf/vmlinux");
            return;
        };
        let layout = btf.struct_layout("sk_buff").unwrap();
        let mark = layout.member("mark").unwrap().byte_offset();
        let r = Reading::compile("skb->mark", SKB, &btf).unwrap();
        match r.value() {
            pwru_filter::expr::Value::Field(a) => {
                assert_eq!(a.offset, mark);
                assert_eq!(a.bytes, 4);
                assert!(a.derefs.is_empty());
            }
            other => panic!("{other:?}"),
        }
        // Through a pointer, a bitfield, an array.
        Condition::compile("skb->dev->ifindex == 1", SKB, &btf).unwrap();
        Condition::compile("skb->pkt_type == 0 && skb->cb[47] == 0", SKB, &btf).unwrap();
        let e = Condition::compile("skb->dev->ifindx == 1", SKB, &btf).unwrap_err();
        assert_eq!(e.column, 11);
        assert!(
            e.message
                .contains("struct net_device has no member `ifindx`"),
            "{e}"
        );
    }
}
