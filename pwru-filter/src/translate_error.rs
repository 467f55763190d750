//! [`TranslateError`]: why a classic BPF program cannot be translated (shared by the
//! validator, the translator, the emitter and the dispatch).

/// Why a classic BPF program cannot be translated.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum TranslateError {
    /// The program has no instruction.
    #[error("the classic BPF program is empty; a filter needs at least one `ret`")]
    Empty,
    /// An opcode that is not classic BPF.
    #[error("instruction {index}: opcode 0x{code:02x} is not a classic BPF instruction; the program is corrupt")]
    InvalidOpcode {
        /// Index of the instruction.
        index: usize,
        /// Its opcode.
        code: u16,
    },
    /// Scratch memory index >= 16.
    #[error("instruction {index}: scratch memory M[{k}] does not exist (M[0..15] only)")]
    ScratchOutOfRange {
        /// Index of the instruction.
        index: usize,
        /// The index used.
        k: u32,
    },
    /// Division or modulo by the constant 0.
    #[error("instruction {index}: division or modulo by the constant 0; rewrite the expression without `/ 0` or `% 0`")]
    DivisionByZero {
        /// Index of the instruction.
        index: usize,
    },
    /// Constant shift by 32 or more.
    #[error("instruction {index}: constant shift by {k} bits (classic BPF allows 0..31); rewrite the expression")]
    ShiftTooLarge {
        /// Index of the instruction.
        index: usize,
        /// The shift count.
        k: u32,
    },
    /// A jump beyond the end of the program.
    #[error(
        "instruction {index}: jump target beyond the end of the program; the program is corrupt"
    )]
    JumpOutOfRange {
        /// Index of the instruction.
        index: usize,
    },
    /// A backward jump (libpcap emits these only for `protochain`).
    #[error("instruction {index}: backward jump; libpcap emits these only for `protochain` (and `ip6 protochain`), whose loop cannot run in eBPF here; filter on `ip proto`/`ip6 proto` instead")]
    BackwardJump {
        /// Index of the instruction.
        index: usize,
    },
    /// A reachable instruction is followed by nothing.
    #[error("instruction {index}: execution runs off the end of the program (no `ret`); the program is corrupt")]
    FallsOffEnd {
        /// Index of the instruction.
        index: usize,
    },
    /// A load from a Linux socket-filter extension area (SKF_AD_*, SKF_NET_OFF, SKF_LL_OFF).
    #[error("instruction {index}: the expression uses the Linux socket-filter extension {name}, which reads socket metadata that a traced sk_buff filter cannot see; remove that primitive from the expression")]
    Extension {
        /// Index of the instruction.
        index: usize,
        /// The extension and the pcap keyword that produces it.
        name: &'static str,
    },
    /// The eBPF code needs a jump longer than the 16-bit offset allows.
    #[error("eBPF instruction {index}: jump of {distance} instructions exceeds the eBPF limit of 32767; the expression is too large, split it or simplify it")]
    JumpTooFar {
        /// Index of the eBPF jump.
        index: usize,
        /// Its distance.
        distance: i64,
    },
    /// A program with address sets was to be translated with map lookups in direct mode, whose
    /// A register does not survive a helper call.
    #[error("the program's address sets need map lookups, which only Mode::ProbeRead code makes; use SetLookup::Compares in Mode::Direct")]
    SetsNeedProbeRead,
    /// A dispatch's skb entry names a filter the dispatch does not have.
    #[error("the skb entry (selector {selector}, L2 filter {l2}, L3 filter {l3}) names a filter a dispatch of {filters} filters does not have: name two of its filters (0 to {filters} - 1)")]
    SkbEntryMismatch {
        /// The entry's selector.
        selector: i32,
        /// The index it gave for the L2 filter.
        l2: usize,
        /// The index it gave for the L3 filter.
        l3: usize,
        /// How many filters the dispatch has.
        filters: usize,
    },
    /// An [`crate::skb_entry::SkbValue`] without a path, or with an empty one.
    #[error("the skb value of selector {selector} has no load to make: give it at least one path of at least one load")]
    EmptySkbValue {
        /// Its selector.
        selector: i32,
    },
    /// Two skb entries or values, or one and a filter, share a selector.
    #[error("selector {selector} is given twice in the dispatch body; give each entry its own")]
    DuplicateSelector {
        /// The selector.
        selector: i32,
    },
}
