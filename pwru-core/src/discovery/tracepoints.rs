//! skb tracepoints, found through their `btf_trace_<name>` typedefs.

use std::collections::HashMap;

use super::{DiscoveryError, SkbMatcher, Tracefs};
use crate::btf::{Btf, Kind, TypeId};

const PREFIX: &str = "btf_trace_";

/// A tracepoint with a `struct sk_buff *` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkbTracepoint {
    /// Tracepoint name, e.g. `kfree_skb`.
    pub name: String,
    /// Its event category from tracefs (`skb`, `net`, `qdisc`...), when tracefs is available.
    pub category: Option<String>,
    /// 1-based positions of skb arguments among the tracepoint's own arguments (position 1 is
    /// `ctx[0]` of a tp_btf program; the hidden leading `void *` of the BTF prototype is not
    /// counted).
    pub positions: Vec<u8>,
    /// C spelling of each argument's type, in order (BTF keeps no argument names here), e.g.
    /// `["struct sk_buff *", "void *", "enum skb_drop_reason", "struct sock *"]` for
    /// `kfree_skb` on 6.18: used to find the drop-reason argument.
    pub arg_types: Vec<String>,
}

impl SkbTracepoint {
    /// The first skb argument position.
    pub fn position(&self) -> u8 {
        self.positions.first().copied().unwrap_or(1)
    }

    /// `category:name` when the category is known, else the bare name.
    pub fn full_name(&self) -> String {
        match &self.category {
            Some(c) => format!("{c}:{}", self.name),
            None => self.name.clone(),
        }
    }
}

/// Every tracepoint of `btf` with a `struct sk_buff *` argument, sorted by name, with categories
/// from `tracefs` when given (an unreadable tracefs leaves categories empty).
///
/// ```no_run
/// let btf = pwru_core::btf::Btf::vmlinux()?;
/// let tps = pwru_core::discovery::skb_tracepoints(&btf, None)?;
/// assert!(tps.iter().any(|t| t.name == "kfree_skb" && t.position() == 1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn skb_tracepoints(
    btf: &Btf,
    tracefs: Option<&Tracefs>,
) -> Result<Vec<SkbTracepoint>, DiscoveryError> {
    let skb = SkbMatcher::new(btf)?;
    let categories: HashMap<String, String> = tracefs
        .and_then(|t| t.tracepoint_categories().ok())
        .unwrap_or_default();
    let mut out = Vec::new();
    for (_, t) in btf.types() {
        if t.kind() != Kind::Typedef {
            continue;
        }
        let Some(name) = btf.name_of(&t).strip_prefix(PREFIX) else {
            continue;
        };
        let ptr = btf.skip_modifiers(TypeId(t.size_or_type()))?;
        if ptr.0 == 0 {
            continue;
        }
        let ptr_t = btf.get(ptr)?;
        if ptr_t.kind() != Kind::Ptr {
            continue;
        }
        let proto_id = btf.skip_modifiers(TypeId(ptr_t.size_or_type()))?;
        if proto_id.0 == 0 {
            continue;
        }
        let proto = btf.get(proto_id)?;
        if proto.kind() != Kind::FuncProto {
            continue;
        }
        let mut positions = Vec::new();
        let mut args = Vec::new();
        // The first parameter is the tracepoint's `void *__data`.
        for (i, p) in proto.params(btf).skip(1).enumerate() {
            args.push(type_name(btf, p.type_id));
            if skb.is_skb_ptr(btf, p.type_id)? {
                positions.push(u8::try_from(i + 1).unwrap_or(u8::MAX));
            }
        }
        if positions.is_empty() {
            continue;
        }
        out.push(SkbTracepoint {
            name: name.to_string(),
            category: categories.get(name).cloned(),
            positions,
            arg_types: args,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// A short C spelling of a type (`struct sk_buff *`, `enum skb_drop_reason`, `u32`).
pub(crate) fn type_name(btf: &Btf, id: TypeId) -> String {
    let mut stars = String::new();
    let mut cur = id;
    // Bounded walk: corrupt loops end as "?".
    for _ in 0..16 {
        if cur.0 == 0 {
            return format!("void{}{stars}", if stars.is_empty() { "" } else { " " });
        }
        let Ok(t) = btf.get(cur) else {
            return "?".into();
        };
        let name = btf.name_of(&t);
        let space = if stars.is_empty() { "" } else { " " };
        match t.kind() {
            Kind::Ptr => {
                stars.push('*');
                cur = TypeId(t.size_or_type());
            }
            Kind::Const | Kind::Volatile | Kind::Restrict | Kind::TypeTag => {
                cur = TypeId(t.size_or_type())
            }
            Kind::Struct => return format!("struct {name}{space}{stars}"),
            Kind::Union => return format!("union {name}{space}{stars}"),
            Kind::Enum | Kind::Enum64 => return format!("enum {name}{space}{stars}"),
            Kind::FuncProto => return format!("fn{space}{stars}"),
            _ => return format!("{name}{space}{stars}"),
        }
    }
    "?".into()
}
