//! The object's maps, created from its parsed definitions: the ring buffer sized by the
//! loader options, global-data sections given their initial contents, `.rodata` frozen.
//! Maps are created without BTF type ids (the object's BTF is not loaded into the kernel;
//! none of pwru's map values needs it).

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};

use aya::maps::{Map, MapData};
use aya_obj::generated::bpf_map_type as t;
use aya_obj::EbpfSectionKind;

use super::LoaderError;

fn failed(name: &str, what: &str, e: impl std::fmt::Display) -> LoaderError {
    LoaderError::Prepare {
        program: "*".into(),
        reason: format!("{what} map {name}: {e}"),
    }
}

/// The created maps, typed for aya's readers, and duplicates of their fds for the
/// instructions that refer to them (kept while programs can still be loaded, even after a map
/// was taken and dropped).
pub(super) struct Created {
    pub(super) maps: HashMap<String, Map>,
    pub(super) fds: HashMap<String, OwnedFd>,
}

/// Maps that only some features use, with the config flags of those features. The programs
/// name them whatever the configuration, but reach them only with one of the flags set (the
/// flags are a frozen constant: the verifier drops the code behind the others). With every
/// flag off such a map is created with one entry: an LRU hash preallocates all of its
/// elements, so six of them at 65,536 were about 25 MiB of kernel memory, and their creation
/// a visible part of the object load in a TCG guest, for a plain trace that uses none.
const FEATURE_MAPS: &[(&str, u32)] = &[
    ("pwru_skbs", pwru_ebpf::PWRU_CFG_TRACK_SKB),
    ("pwru_heads", pwru_ebpf::PWRU_CFG_TRACK_HEAD),
    ("pwru_stackid_skb", pwru_ebpf::PWRU_CFG_TRACK_STACKID),
    ("pwru_skb_stackid", pwru_ebpf::PWRU_CFG_TRACK_STACKID),
    ("pwru_ids", pwru_ebpf::PWRU_CFG_PACKET_ID),
    ("pwru_head_ids", pwru_ebpf::PWRU_CFG_PACKET_ID),
    (
        "pwru_clone_args",
        pwru_ebpf::PWRU_CFG_TRACK_SKB | pwru_ebpf::PWRU_CFG_PACKET_ID,
    ),
    (pwru_ebpf::MAP_STACKS, pwru_ebpf::PWRU_CFG_OUTPUT_STACK),
];

/// One entry for a [`FEATURE_MAPS`] map whose features are all off in `flags`.
fn idle_entries(name: &str, flags: u32) -> Option<u32> {
    FEATURE_MAPS
        .iter()
        .find(|(n, _)| *n == name)
        .filter(|(_, used_by)| flags & used_by == 0)
        .map(|_| 1)
}

/// Creates every map of `defs`; [`pwru_ebpf::MAP_EVENTS`] gets `ring_buf_bytes`,
/// [`pwru_ebpf::MAP_FILTER_SETS`] room for `set_keys` and those keys (value 1), and a map no
/// feature of the config `flags` uses one entry.
pub(super) fn create(
    defs: &HashMap<String, aya_obj::Map>,
    ring_buf_bytes: u32,
    set_keys: &[[u8; 8]],
    flags: u32,
) -> Result<Created, LoaderError> {
    let mut out = Created {
        maps: HashMap::new(),
        fds: HashMap::new(),
    };
    for (name, def) in defs {
        let mut def = def.clone();
        if def.map_type() == t::BPF_MAP_TYPE_RINGBUF as u32 {
            // The kernel wants value size 0 for ring buffers (BTF maps declare none).
            def.set_value_size(0);
            if name == pwru_ebpf::MAP_EVENTS {
                def.set_max_entries(ring_buf_bytes);
            }
        }
        if let Some(entries) = idle_entries(name, flags) {
            def.set_max_entries(entries);
        }
        let sets = name == pwru_ebpf::MAP_FILTER_SETS;
        if sets {
            let entries = u32::try_from(set_keys.len().max(1)).map_err(|_| {
                failed(
                    name,
                    "sizing",
                    "more addresses than a map holds; use fewer host terms",
                )
            })?;
            def.set_max_entries(entries);
        }
        if let aya_obj::Map::Btf(m) = &mut def {
            m.def.btf_key_type_id = 0;
            m.def.btf_value_type_id = 0;
        }
        let data = def.data().to_vec();
        let rodata = def.section_kind() == EbpfSectionKind::Rodata;
        let map_type = def.map_type();
        let map = MapData::create(def, name, None).map_err(|source| LoaderError::Map {
            name: name.clone(),
            source: Box::new(source),
        })?;
        if !data.is_empty() {
            crate::sys::map_update_elem(map.fd().as_fd(), &0u32.to_ne_bytes(), &data)
                .map_err(|e| failed(name, "initialising", e))?;
        }
        if sets {
            for key in set_keys {
                crate::sys::map_update_elem(map.fd().as_fd(), key, &[1])
                    .map_err(|e| failed(name, "filling", e))?;
            }
        }
        if rodata {
            crate::sys::map_freeze(map.fd().as_fd()).map_err(|e| failed(name, "freezing", e))?;
        }
        let fd = map
            .fd()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| failed(name, "duplicating the fd of", e))?;
        out.fds.insert(name.clone(), fd);
        out.maps.insert(name.clone(), typed(map, map_type));
    }
    Ok(out)
}

/// `data` as aya's map enum, by its kernel map type `ty`, for aya's typed readers.
fn typed(data: MapData, ty: u32) -> Map {
    let is = |m: t| ty == m as u32;
    if is(t::BPF_MAP_TYPE_ARRAY) {
        Map::Array(data)
    } else if is(t::BPF_MAP_TYPE_HASH) {
        Map::HashMap(data)
    } else if is(t::BPF_MAP_TYPE_LRU_HASH) {
        Map::LruHashMap(data)
    } else if is(t::BPF_MAP_TYPE_PERCPU_ARRAY) {
        Map::PerCpuArray(data)
    } else if is(t::BPF_MAP_TYPE_PERCPU_HASH) {
        Map::PerCpuHashMap(data)
    } else if is(t::BPF_MAP_TYPE_RINGBUF) {
        Map::RingBuf(data)
    } else if is(t::BPF_MAP_TYPE_STACK_TRACE) {
        Map::StackTraceMap(data)
    } else {
        Map::Unsupported(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_feature_map_is_in_the_object_and_only_idle_ones_shrink() {
        let obj = aya_obj::Object::parse(pwru_ebpf::OBJECT).expect("the object parses");
        for (name, _) in FEATURE_MAPS {
            let def = obj.maps.get(*name);
            assert!(def.is_some(), "the object has no map {name}");
            assert!(
                def.is_some_and(|d| d.max_entries() > 1),
                "{name} is already one entry"
            );
        }
        assert_eq!(idle_entries("pwru_ids", 0), Some(1));
        assert_eq!(
            idle_entries("pwru_ids", pwru_ebpf::PWRU_CFG_PACKET_ID),
            None
        );
        assert_eq!(
            idle_entries("pwru_clone_args", pwru_ebpf::PWRU_CFG_TRACK_SKB),
            None
        );
        assert_eq!(idle_entries(pwru_ebpf::MAP_EVENTS, 0), None);
        assert_eq!(idle_entries(pwru_ebpf::MAP_RUNS, 0), None);
    }
}
