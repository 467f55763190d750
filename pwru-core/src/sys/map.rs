//! Maps: BPF_MAP_CREATE, BPF_MAP_LOOKUP_ELEM and BPF_MAP_UPDATE_ELEM for the small maps the
//! tests and the VM guest make themselves, and for the initial data of pwru's global-data maps
//! (created by the loader with aya's `MapData::create`); BPF_MAP_FREEZE for its read-only config.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use aya_obj::generated::{bpf_cmd, bpf_map_info, bpf_map_type};

use super::{bpf, bpf_fd, ptr_u64, zeroed_attr};

/// `BPF_MAP_TYPE_ARRAY`.
pub const MAP_TYPE_ARRAY: u32 = bpf_map_type::BPF_MAP_TYPE_ARRAY as u32;
/// `BPF_MAP_TYPE_RINGBUF`.
pub const MAP_TYPE_RINGBUF: u32 = bpf_map_type::BPF_MAP_TYPE_RINGBUF as u32;
/// `BPF_MAP_TYPE_HASH`.
pub const MAP_TYPE_HASH: u32 = bpf_map_type::BPF_MAP_TYPE_HASH as u32;

/// What a BPF_MAP_CREATE needs.
#[derive(Debug, Clone, Copy)]
pub struct MapCreate<'a> {
    /// `enum bpf_map_type` (see the `MAP_TYPE_*` constants).
    pub map_type: u32,
    /// Key size in bytes (0 for ring buffers).
    pub key_size: u32,
    /// Value size in bytes (0 for ring buffers).
    pub value_size: u32,
    /// Entries; for a ring buffer its size in bytes (a power of two, at least a page).
    pub max_entries: u32,
    /// The map's name; characters the kernel refuses are dropped, the rest cut at 15.
    pub name: &'a str,
}

/// BPF_MAP_CREATE.
pub fn map_create(m: &MapCreate<'_>) -> io::Result<OwnedFd> {
    let mut attr = zeroed_attr();
    // SAFETY: only writes into the BPF_MAP_CREATE member of a zeroed union.
    let a = unsafe { &mut attr.__bindgen_anon_1 };
    a.map_type = m.map_type;
    a.key_size = m.key_size;
    a.value_size = m.value_size;
    a.max_entries = m.max_entries;
    let valid = m
        .name
        .bytes()
        .filter(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'.')
        .take(a.map_name.len() - 1);
    for (d, s) in a.map_name.iter_mut().zip(valid) {
        *d = s as libc::c_char;
    }
    bpf_fd(bpf_cmd::BPF_MAP_CREATE, &mut attr)
}

/// BPF_MAP_LOOKUP_ELEM: copies the value stored at `key` into `value`. The slices must have
/// exactly the map's key and value sizes (asked from the kernel first, so that the kernel never
/// reads or writes past them); per-CPU maps are refused.
pub fn map_lookup_elem(map: BorrowedFd<'_>, key: &[u8], value: &mut [u8]) -> io::Result<()> {
    let info = map_info(map)?;
    let per_cpu = [
        bpf_map_type::BPF_MAP_TYPE_PERCPU_HASH,
        bpf_map_type::BPF_MAP_TYPE_PERCPU_ARRAY,
        bpf_map_type::BPF_MAP_TYPE_LRU_PERCPU_HASH,
        bpf_map_type::BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE,
    ];
    if per_cpu.iter().any(|&t| t as u32 == info.type_) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "per-CPU maps hold one value per possible CPU: not supported here",
        ));
    }
    check_sizes(&info, key.len(), value.len())?;
    let mut attr = zeroed_attr();
    // SAFETY: only writes into the element-access member of a zeroed union.
    let a = unsafe { &mut attr.__bindgen_anon_2 };
    a.map_fd = map.as_raw_fd() as u32;
    a.key = ptr_u64(key.as_ptr());
    a.__bindgen_anon_1.value = ptr_u64(value.as_mut_ptr());
    bpf(bpf_cmd::BPF_MAP_LOOKUP_ELEM, &mut attr).map(drop)
}

/// Refuses key and value buffers whose sizes are not the map's: the kernel would read or
/// write that many bytes through them.
fn check_sizes(info: &bpf_map_info, key: usize, value: usize) -> io::Result<()> {
    if key == info.key_size as usize && value == info.value_size as usize {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "the map has {}-byte keys and {}-byte values, got {key} and {value}",
            info.key_size, info.value_size
        ),
    ))
}

/// BPF_OBJ_GET_INFO_BY_FD for a map.
fn map_info(map: BorrowedFd<'_>) -> io::Result<bpf_map_info> {
    // SAFETY: bpf_map_info is a plain C struct of integers (bindgen); all-zero is valid.
    let mut info: bpf_map_info = unsafe { std::mem::zeroed() };
    let mut attr = zeroed_attr();
    // SAFETY: only writes into the GET_INFO_BY_FD member of a zeroed union.
    let a = unsafe { &mut attr.info };
    a.bpf_fd = map.as_raw_fd() as u32;
    a.info_len = std::mem::size_of::<bpf_map_info>() as u32;
    a.info = ptr_u64(&mut info as *mut bpf_map_info);
    bpf(bpf_cmd::BPF_OBJ_GET_INFO_BY_FD, &mut attr)?;
    Ok(info)
}

/// BPF_MAP_UPDATE_ELEM (flags `BPF_ANY`): stores `value` at `key`. The slices must have
/// exactly the map's key and value sizes (checked against the kernel's own, as for
/// [`map_lookup_elem`]).
pub fn map_update_elem(map: BorrowedFd<'_>, key: &[u8], value: &[u8]) -> io::Result<()> {
    let info = map_info(map)?;
    check_sizes(&info, key.len(), value.len())?;
    let mut attr = zeroed_attr();
    // SAFETY: only writes into the element-access member of a zeroed union.
    let a = unsafe { &mut attr.__bindgen_anon_2 };
    a.map_fd = map.as_raw_fd() as u32;
    a.key = ptr_u64(key.as_ptr());
    a.__bindgen_anon_1.value = ptr_u64(value.as_ptr());
    bpf(bpf_cmd::BPF_MAP_UPDATE_ELEM, &mut attr).map(drop)
}

/// BPF_MAP_FREEZE: no more writes from user space, so the verifier may treat a read-only
/// map's contents (the config global) as constants.
pub fn map_freeze(map: BorrowedFd<'_>) -> io::Result<()> {
    let mut attr = zeroed_attr();
    // SAFETY: only writes into the map-fd field of a zeroed union (BPF_MAP_FREEZE reads no more).
    let a = unsafe { &mut attr.__bindgen_anon_2 };
    a.map_fd = map.as_raw_fd() as u32;
    bpf(bpf_cmd::BPF_MAP_FREEZE, &mut attr).map(drop)
}
