//! The hash map behind a filter's address sets (`pwru_filter::SetLookup::Map`): filled before
//! any program loads, its fd written into the filter body's map loads. One map serves every
//! filter of the dispatch (their set ids differ). The loader uses the object's own map
//! ([`pwru_ebpf::MAP_FILTER_SETS`], sized and filled in maps.rs, so that the map-operation
//! programs know it as one of pwru's); [`create`] makes a stand-alone one the same way, for
//! harnesses that load a filter body without the object.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use pwru_filter::insn::{Insn, PSEUDO_MAP_FD};

use crate::sys;

/// The stand-alone map's name in the kernel (`bpftool map` shows it).
pub const SET_MAP_NAME: &str = "pwru_filt_sets";

const OP_LD_IMM64: u8 = 0x18;

/// True for the first half of a set map load as pwru-filter emits it: `ld_imm64` of a map fd,
/// immediate not yet filled in (0).
pub(crate) fn is_placeholder(code: u8, src_reg: u8, imm: i32) -> bool {
    code == OP_LD_IMM64 && src_reg == PSEUDO_MAP_FD && imm == 0
}

/// A hash map holding `keys` (`pwru_filter::set_key`), values 1 byte, read-only for
/// programs' writes by convention (nothing writes it after this).
pub fn create(keys: &[[u8; 8]]) -> io::Result<OwnedFd> {
    let entries = u32::try_from(keys.len().max(1)).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "more filter set entries than a BPF map holds; use fewer host terms",
        )
    })?;
    let map = sys::map_create(&sys::MapCreate {
        map_type: sys::MAP_TYPE_HASH,
        key_size: 8,
        value_size: 1,
        max_entries: entries,
        name: SET_MAP_NAME,
    })?;
    for key in keys {
        sys::map_update_elem(std::os::fd::AsFd::as_fd(&map), key, &[1])?;
    }
    Ok(map)
}

/// Writes `map`'s fd into every set map load of `insns`; returns how many it filled.
pub fn bind(insns: &mut [Insn], map: BorrowedFd<'_>) -> usize {
    let fd = map.as_raw_fd();
    let mut filled = 0;
    for i in insns.iter_mut() {
        if is_placeholder(i.code, i.src, i.imm) {
            i.imm = fd;
            filled += 1;
        }
    }
    filled
}
