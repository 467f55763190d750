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

/// Creates every map of `defs`; [`pwru_ebpf::MAP_EVENTS`] gets `ring_buf_bytes`,
/// [`pwru_ebpf::MAP_FILTER_SETS`] room for `set_keys` and those keys (value 1).
pub(super) fn create(
    defs: &HashMap<String, aya_obj::Map>,
    ring_buf_bytes: u32,
    set_keys: &[[u8; 8]],
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
        let sets = name == pwru_ebpf::MAP_FILTER_SETS;
        if sets {
            let entries = u32::try_from(set_keys.len().max(1)).map_err(|_| {
                failed(name, "sizing", "more addresses than a map holds; use fewer host terms")
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
