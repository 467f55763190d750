//! Which of the kernel functions loaded tc/XDP programs call ([`super::bpf_helpers`]) are map
//! operations, and how each is seen: updates and deletes at entry (key and value are
//! arguments), lookups at return (the value is what the function returns; the hash map's
//! `__htab_*lookup_elem`, which the verifier calls for inlined lookups, returns the element,
//! whose value follows the key).

/// How a map function is traced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MapOpKind {
    /// `(map, key)`, returning the value or NULL.
    Lookup,
    /// `(map, key)`, returning the hash element or NULL (`__htab_map_lookup_elem`).
    LookupElem,
    /// `(map, key, value, flags)`.
    Update,
    /// `(map, key)`.
    Delete,
}

/// One map function to trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapOpTarget {
    /// Kernel function name.
    pub name: String,
    /// How it is traced.
    pub kind: MapOpKind,
}

/// The kind of map function `name` is, if it is one: the map types' `*_lookup_elem`,
/// `*_update_elem` and `*_delete_elem` operations. Batch, percpu-copy and syscall-side
/// variants (`*_lookup_and_delete_elem`, `bpf_map_*` syscall helpers) are not packet-path
/// operations of a tc/XDP program and are left out.
pub fn map_op_kind(name: &str) -> Option<MapOpKind> {
    if name.contains("_and_") || name.contains("batch") || name.contains("percpu") {
        return None;
    }
    if name.ends_with("_lookup_elem") {
        Some(if name.starts_with("__htab_") {
            MapOpKind::LookupElem
        } else {
            MapOpKind::Lookup
        })
    } else if name.ends_with("_update_elem") {
        Some(MapOpKind::Update)
    } else if name.ends_with("_delete_elem") {
        Some(MapOpKind::Delete)
    } else {
        None
    }
}

/// The map functions among `called` (names of called kernel functions).
pub fn map_ops(called: &[String]) -> Vec<MapOpTarget> {
    called
        .iter()
        .filter_map(|n| {
            map_op_kind(n).map(|kind| MapOpTarget {
                name: n.clone(),
                kind,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_map_functions() {
        assert_eq!(
            map_op_kind("__htab_map_lookup_elem"),
            Some(MapOpKind::LookupElem)
        );
        assert_eq!(
            map_op_kind("__htab_lru_map_lookup_elem"),
            Some(MapOpKind::LookupElem)
        );
        assert_eq!(map_op_kind("htab_map_lookup_elem"), Some(MapOpKind::Lookup));
        assert_eq!(map_op_kind("htab_map_update_elem"), Some(MapOpKind::Update));
        assert_eq!(
            map_op_kind("array_map_delete_elem"),
            Some(MapOpKind::Delete)
        );
        assert_eq!(map_op_kind("htab_map_lookup_and_delete_elem"), None);
        assert_eq!(map_op_kind("htab_percpu_map_lookup_elem"), None);
        assert_eq!(map_op_kind("bpf_skb_load_bytes"), None);
    }
}
