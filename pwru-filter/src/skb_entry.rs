//! An entry into the pcap filters that starts from the `struct sk_buff` itself: it reads the
//! skb's header fields through `bpf_rdonly_cast` and continues into the L2 or the L3 filter.
//!
//! Programs whose skb argument is a plain number (kprobe, kprobe.multi, raw tracepoints) would
//! otherwise copy `head`, `tail`, `mac_header` and `network_header` out with a
//! `bpf_probe_read_kernel` call before calling the filter. In the filter body, which already
//! reads packet bytes through the cast ([`crate::ProbeAccess::Cast`]), the same four fields
//! are four plain loads: the verifier turns them into fault-safe `BPF_PROBE_MEM` loads and
//! the cast into `r0 = r1`, so a run the filter rejects makes no helper call at all.
//!
//! The same holds for the values other filters compare ([`SkbValue`]: a selector that
//! follows a chain of pointers from the skb, such as `skb->dev->nd_net.net->ns.inum` for a
//! network namespace filter, and returns the value it finds).
//!
//! Like [`crate::cast`], this module reads no BTF: the caller gives the ids and offsets
//! ([`SkbFields`], the [`Load`]s of each value); pwru-core takes them from the running kernel's
//! BTF.

use std::fmt;

use crate::insn::{op, Insn};
use crate::translate_error::TranslateError;

/// Where the header fields are in the running kernel's `struct sk_buff`, and the vmlinux BTF
/// ids that let a program read them through `bpf_rdonly_cast(skb, sk_buff)`. Offsets are in
/// bytes from the start of `sk_buff` (`i16`, the type of a load's offset); the verifier checks
/// each load against that struct's BTF, so they must be the kernel's own.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct SkbFields {
    /// Id of the `FUNC` `bpf_rdonly_cast`.
    pub rdonly_cast: u32,
    /// Id of the `STRUCT` `sk_buff`.
    pub sk_buff: u32,
    /// Offset of `unsigned char *head` (8 bytes).
    pub head: i16,
    /// Offset of `sk_buff_data_t tail` (4 bytes: the end of the linear data, from `head`).
    pub tail: i16,
    /// Offset of `__u16 mac_header` (from `head`; `0xffff` when unset).
    pub mac_header: i16,
    /// Offset of `__u16 network_header` (from `head`).
    pub network_header: i16,
}

impl fmt::Display for SkbFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sk_buff = BTF id {} (head at {}, tail at {}, mac_header at {}, network_header at {}), \
             bpf_rdonly_cast = BTF id {}",
            self.sk_buff,
            self.head,
            self.tail,
            self.mac_header,
            self.network_header,
            self.rdonly_cast
        )
    }
}

/// The skb entry of a dispatch body ([`crate::dispatch::dispatch_with_skb_entry`]): its
/// selector, the fields it reads, and which of the dispatched filters are the L2 and the L3
/// one.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct SkbEntry {
    /// The selector (first argument of the dispatch body) that takes the skb, as a plain
    /// number, in the second argument.
    pub selector: i32,
    /// Where the header fields are.
    pub fields: SkbFields,
    /// Index, among the dispatched filters, of the filter run when the MAC header is set (on
    /// the bytes from it).
    pub l2: usize,
    /// Index of the filter run when it is not (on the bytes from the network header).
    pub l3: usize,
}

/// The `mac_header` value of an skb whose MAC header is not set.
const MAC_UNSET: i32 = 0xffff;

/// Number of instructions of [`entry_code`].
pub(crate) const ENTRY_LEN: usize = 13;

/// The entry's code, to be placed at index `at` of a dispatch body whose L2 and L3 filters
/// start (after the dispatch's two argument moves) at `l2_start` and `l3_start`, both after
/// the entry. At entry R2 holds the skb; the filters receive data in R1 and data_end in R2, as
/// when the dispatch calls them with packet addresses.
pub(crate) fn entry_code(
    f: &SkbFields,
    at: usize,
    l2_start: usize,
    l3_start: usize,
) -> Result<Vec<Insn>, TranslateError> {
    let mut code = vec![
        Insn::mov64_reg(1, 2),
        // BTF ids are small positive numbers: they fit the immediate.
        Insn::mov64_imm(2, f.sk_buff as i32),
        Insn::call_kfunc(f.rdonly_cast as i32),
        Insn::load(op::H, 3, 0, f.mac_header),
        Insn::load(op::H, 4, 0, f.network_header),
        Insn::load(op::W, 2, 0, f.tail),
        Insn::load(op::DW, 1, 0, f.head),
        // data_end = head + tail
        Insn::alu64_reg(op::ADD, 2, 1),
        Insn::jmp_imm(op::JEQ, 3, MAC_UNSET, 2),
        Insn::alu64_reg(op::ADD, 1, 3),
    ];
    code.push(jump_to(at + code.len(), l2_start)?);
    code.push(Insn::alu64_reg(op::ADD, 1, 4));
    code.push(jump_to(at + code.len(), l3_start)?);
    debug_assert_eq!(code.len(), ENTRY_LEN);
    Ok(code)
}

/// `goto` from index `from` to index `to` (forward).
fn jump_to(from: usize, to: usize) -> Result<Insn, TranslateError> {
    let distance = to as i64 - from as i64 - 1;
    if !(0..=i64::from(i16::MAX)).contains(&distance) {
        return Err(TranslateError::JumpTooFar {
            index: from,
            distance,
        });
    }
    Ok(Insn::ja(distance as i16))
}

/// Width of one load of a [`SkbValue`] path.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum LoadSize {
    /// 2 bytes, zero-extended.
    U16,
    /// 4 bytes, zero-extended.
    U32,
    /// 8 bytes (a pointer, to follow with the next load).
    U64,
}

/// One load of a [`SkbValue`] path: `size` bytes at `offset` from the previous load's result
/// (the first from the skb).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Load {
    /// Offset from the base, in bytes.
    pub offset: i16,
    /// Width of the load.
    pub size: LoadSize,
}

/// A dispatch selector that returns one value read from the skb by following pointers, such
/// as its network namespace's inode (`skb->dev->nd_net.net->ns.inum`, or through `skb->sk`
/// when there is no device). The skb is cast to `struct sk_buff` (the two ids); every load
/// after a pointer load goes through the pointer the verifier derived from the BTF, so each
/// load is fault-safe and a NULL pointer on the way yields 0. The value is that of the first
/// path whose result is not 0 (the last path's result otherwise).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct SkbValue {
    /// The selector that returns this value, given the skb's address (a plain number) in the
    /// dispatch body's second argument.
    pub selector: i32,
    /// Id of the `FUNC` `bpf_rdonly_cast`.
    pub rdonly_cast: u32,
    /// Id of the `STRUCT` `sk_buff`.
    pub sk_buff: u32,
    /// The load chains, tried in order; none may be empty. Each ends with the value's load
    /// (`U16` or `U32`: the verifier lets the body return no pointer).
    pub paths: Vec<Vec<Load>>,
}

impl SkbValue {
    /// Number of instructions of [`SkbValue::code`].
    pub(crate) fn code_len(&self) -> usize {
        let loads: usize = self.paths.iter().map(Vec::len).sum();
        // per path: r1 = r6, r2 = id, call, loads, and a test unless it is the last; then r6
        // saved first and exit last
        2 + loads + self.paths.len() * 3 + self.paths.len().saturating_sub(1)
    }

    /// The selector's code: at entry R2 holds the skb; returns the value in R0.
    pub(crate) fn code(&self) -> Result<Vec<Insn>, TranslateError> {
        if self.paths.is_empty() || self.paths.iter().any(Vec::is_empty) {
            return Err(TranslateError::EmptySkbValue {
                selector: self.selector,
            });
        }
        let len = self.code_len();
        let mut code = Vec::with_capacity(len);
        // R6 survives the kfunc calls (R1-R5 do not).
        code.push(Insn::mov64_reg(6, 2));
        for (i, path) in self.paths.iter().enumerate() {
            code.push(Insn::mov64_reg(1, 6));
            code.push(Insn::mov64_imm(2, self.sk_buff as i32));
            code.push(Insn::call_kfunc(self.rdonly_cast as i32));
            for load in path {
                let size = match load.size {
                    LoadSize::U16 => op::H,
                    LoadSize::U32 => op::W,
                    LoadSize::U64 => op::DW,
                };
                code.push(Insn::load(size, 0, 0, load.offset));
            }
            if i + 1 < self.paths.len() {
                // A value: done. The exit is the last instruction.
                let at = code.len();
                let distance = (len - 1) as i64 - at as i64 - 1;
                code.push(Insn::jmp_imm(op::JNE, 0, 0, distance as i16));
            }
        }
        code.push(Insn::exit());
        debug_assert_eq!(code.len(), len);
        Ok(code)
    }
}
