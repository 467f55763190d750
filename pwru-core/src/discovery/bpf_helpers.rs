//! The kernel functions that loaded tc and XDP programs call: BPF helpers, and the map
//! operations the verifier turned helper calls into (`htab_map_lookup_elem`, ...). pwru's
//! `--filter-track-bpf-helpers` traces them as functions without an skb, linked to the packet
//! by stack id.
//!
//! They are read from each program's verified instructions (`xlated_prog_insns`): a helper
//! call's immediate is the callee's address minus `__bpf_call_base`, resolved by kallsyms.
//! That works on every architecture, where pwru disassembles the JIT's x86 code.

use std::collections::BTreeSet;

use crate::symbols::KernelSymbols;
use crate::sys;

/// `BPF_JMP | BPF_CALL`.
const CALL: u8 = 0x85;

/// Why the helpers could not be found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HelpersError {
    /// Listing or reading the loaded programs failed.
    #[error("cannot read the loaded BPF programs: {0}; run as root (CAP_SYS_ADMIN)")]
    Programs(#[source] std::io::Error),
    /// kallsyms has no `__bpf_call_base` (the base of helper call immediates).
    #[error("/proc/kallsyms has no __bpf_call_base, so the helpers' addresses cannot be named; this needs a kernel with BPF and kallsyms (CONFIG_KALLSYMS_ALL is not needed)")]
    NoCallBase,
    /// Every helper call's address was hidden from this process.
    #[error("the kernel hides the helper addresses of loaded BPF programs; run as root with kernel.kptr_restrict < 2 (sysctl)")]
    Hidden,
}

/// Names of the kernel functions called by the loaded tc and XDP programs, sorted, each once.
/// No such program loaded gives an empty list.
pub fn called_by_packet_programs(symbols: &KernelSymbols) -> Result<Vec<String>, HelpersError> {
    use aya_obj::generated::bpf_prog_type as t;
    let packet_types = [
        t::BPF_PROG_TYPE_SCHED_CLS as u32,
        t::BPF_PROG_TYPE_SCHED_ACT as u32,
        t::BPF_PROG_TYPE_XDP as u32,
    ];
    let mut calls = Vec::new();
    for id in sys::object_ids(sys::ObjectKind::Prog).map_err(HelpersError::Programs)? {
        // A program unloaded since it was listed is skipped.
        let Ok(fd) = sys::prog_fd_by_id(id) else {
            continue;
        };
        let fd = std::os::fd::AsFd::as_fd(&fd);
        let info = sys::prog_info(fd).map_err(HelpersError::Programs)?;
        if !packet_types.contains(&info.prog_type) {
            continue;
        }
        for (code, src, imm) in sys::prog_xlated_insns(fd).map_err(HelpersError::Programs)? {
            // src_reg 0: a helper (1 is a BPF-to-BPF call, 2 a kfunc).
            if code == CALL && src == 0 {
                calls.push(imm);
            }
        }
    }
    helper_names(symbols, &calls)
}

/// Names the callees of helper calls with immediates `imms` (offsets from `__bpf_call_base`).
pub fn helper_names(symbols: &KernelSymbols, imms: &[i32]) -> Result<Vec<String>, HelpersError> {
    if imms.is_empty() {
        return Ok(Vec::new());
    }
    let base = symbols
        .address_of("__bpf_call_base")
        .ok_or(HelpersError::NoCallBase)?;
    if imms.iter().all(|&i| i == 0) {
        return Err(HelpersError::Hidden);
    }
    let mut names = BTreeSet::new();
    for &imm in imms {
        let addr = base.wrapping_add_signed(i64::from(imm));
        // Only exact function starts: anything else is not a call this module understands.
        if let Some(s) = symbols.lookup(addr).filter(|s| s.offset == 0) {
            if s.module.is_none() {
                names.insert(s.name.to_string());
            }
        }
    }
    Ok(names.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn immediates_are_offsets_from_the_call_base() {
        let syms = KernelSymbols::parse(
            "ffffffff81000000 T _text\n\
             ffffffff81100000 T __bpf_call_base\n\
             ffffffff81100100 T bpf_skb_store_bytes\n\
             ffffffff810ff000 t htab_map_lookup_elem\n\
             ffffffff81200000 t vxlan_rcv\t[vxlan]\n",
        )
        .expect("kallsyms");
        let names = helper_names(&syms, &[0x100, -0x1000, 0x100, 0x10]).expect("names");
        // 0x10 lands inside __bpf_call_base: not a function start, skipped.
        assert_eq!(names, ["bpf_skb_store_bytes", "htab_map_lookup_elem"]);
        assert!(matches!(
            helper_names(&syms, &[0, 0]),
            Err(HelpersError::Hidden)
        ));
        assert_eq!(
            helper_names(&syms, &[]).expect("none"),
            Vec::<String>::new()
        );
        let no_base = KernelSymbols::parse("ffffffff81000000 T _text\n").expect("kallsyms");
        assert!(matches!(
            helper_names(&no_base, &[4]),
            Err(HelpersError::NoCallBase)
        ));
    }
}
