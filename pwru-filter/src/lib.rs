//! pcap-filter (tcpdump) expressions compiled to eBPF, with libpcap's exact semantics.
//!
//! The chain is: [`compile`] (libpcap's `pcap_compile`, link type Ethernet for [`Layer::L2`] or
//! raw IP for [`Layer::L3`]) gives a classic BPF program [`Cbpf`]; [`translate()`] turns it into
//! the body of an eBPF subprogram for one of two [`Mode`]s; [`dispatch()`] puts several such
//! bodies behind a selector in ONE function body, so a loader splices a single body into the
//! kernel programs' one filter stub; [`dispatch_with_skb_entry`] adds a selector that starts
//! from an skb and reads its header fields itself ([`skb_entry`]). [`compile_ebpf`] does
//! compile + translate in one call.
//!
//! ```
//! use pwru_filter::{compile, translate, disassemble, Layer, Mode};
//! let cbpf = compile("tcp port 80", Layer::L2)?;
//! let ebpf = translate(&cbpf, Mode::Direct)?;
//! println!("{}", disassemble(&ebpf));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # What this crate offers
//!
//! [`compile`], [`translate()`] (and [`translate_with`], [`translate_insns`]), [`dispatch()`]
//! (and [`dispatch_with_skb_entry`] with [`SkbFields`], [`dispatch_with_skb_entries`] with
//! [`SkbValue`]),
//! [`compile_lowered`] and [`translate_cbpf`] (large sets of `host` terms as one hash map
//! lookup each, see [`host_sets`]),
//! [`disassemble`], [`compile_ebpf`], the C-like skb/xdp expressions of [`expr`] (pwru's
//! `--filter-skb-expr` and `--output-skb-metadata`), the instruction types ([`Insn`], [`Cbpf`] and their
//! modules), [`CastIds`] and [`ProbeAccess`] for the kfunc-cast scheme, and the errors. It
//! touches no kernel and reads no BTF: the kfunc-cast ids come in resolved ([`CastIds`];
//! pwru-core resolves them), and loading the code is the caller's business. The kernel test
//! harness and the expression corpus its tests use live in the workspace's unpublished test
//! kit (`pwru-testkit`).
//!
//! # Calling convention
//!
//! Every body produced by [`translate()`] (and by [`dispatch()`]) is the complete body of a
//! BPF-to-BPF subprogram: in C a `__noinline` function `int f(u64 data, u64 data_end)`
//! (for [`dispatch()`]: `int f(u64 which, u64 data, u64 data_end)`).
//!
//! - **Entry**: R1 = address of the byte the filter sees as offset 0 (the MAC header for
//!   [`Layer::L2`], the network header for [`Layer::L3`]); R2 = one past the last readable
//!   byte. For [`dispatch()`], R1 = selector, R2/R3 = data/data_end.
//!   - [`Mode::Direct`]: R1/R2 are packet pointers. Only valid when the body is inlined into, or
//!     called as a *static* subprogram from, a tc/XDP/socket-filter program (the verifier
//!     checks it with the caller's pointer types). Loads beyond offset
//!     [`DIRECT_MAX_OFFSET`] (32767; the verifier tracks packet ranges only up to 65535) count as out of range.
//!   - [`Mode::ProbeRead`]: R1/R2 are plain u64 kernel addresses (scalars); the body verifies
//!     on its own, e.g. as a global function with BTF `int f(u64 data, u64 data_end)`, or in a
//!     KPROBE program. R2 < R1 is treated as an empty packet. Bytes are read as
//!     [`Options::probe_access`] says: with [`ProbeAccess::Helper`] (the default) through
//!     `bpf_probe_read_kernel`, and a read the kernel refuses ends with "no match"; with
//!     [`ProbeAccess::Cast`] by plain loads through pointers from the kfunc `bpf_rdonly_cast`
//!     (Linux 6.2+, see [`cast`]), and a load the kernel cannot perform reads 0.
//! - **Exit**: R0 = 0 means no match, non-zero means match (it is the classic program's return
//!   value: libpcap returns the snapshot length 262144 on a match).
//! - `ld len` (the pcap `len` keyword) = R2 - R1. Every packet load is bounds-checked against it
//!   in both modes; a load out of range ends the filter with "no match", as in libpcap.
//! - **Registers**: R6–R9 are preserved as for any BPF-to-BPF subprogram: the verifier starts
//!   the callee with R6–R9 uninitialised (the body never reads the caller's values) and the
//!   JIT/interpreter saves and restores the registers a function writes. ProbeRead bodies use
//!   R6–R9 for A, X, data and length (they survive the helper and kfunc calls); Direct bodies
//!   use only R0–R5. R1–R5 are clobbered.
//! - **Stack**: at most [`STACK_BYTES`] = 256 bytes of its own frame below R10 (ProbeRead: 8
//!   bytes scratch, 64 bytes M\[0..15\], and with helper reads a header copy of at most
//!   [`PROBE_BUFFER_MAX`] = 184 bytes; Direct: at most 64 bytes for M\[\]).
//! - **Contents**: no map references and no `ld_imm64` (splicing needs no relocation), only
//!   forward jumps with 16-bit offsets, no unreachable instruction. The one exception: a
//!   program with address sets ([`compile_lowered`]) translated by [`translate_cbpf`] with
//!   [`SetLookup::Map`] loads the set map with `ld_imm64` (fd placeholder 0, which the caller
//!   fills in) and calls `bpf_map_lookup_elem`, using the 8-byte scratch slot for the key. Calls only in ProbeRead
//!   mode: the helper `bpf_probe_read_kernel` (id 113) with [`ProbeAccess::Helper`], the
//!   kfunc `bpf_rdonly_cast` (its vmlinux BTF id in the call's `imm`, already resolved: no
//!   relocation either) with [`ProbeAccess::Cast`]. ALU is 32-bit (`w` registers) and
//!   compares use JMP32, so the kernel needs JMP32 (5.1+); ProbeRead reads its header buffer
//!   with variable stack offsets (5.12+) and needs CAP_PERFMON (or root) like any probe-read.
//!   Direct mode's `ld len` subtracts two packet pointers, which also needs CAP_PERFMON.
//!
//! # Semantics
//!
//! Exactly those of libpcap's interpreter (`bpf_filter`, what `pcap_offline_filter` runs):
//! 32-bit ALU, `neg`, division or modulo by X = 0 ends with no match, shifts by X >= 32 give 0,
//! indirect offsets X + k are computed without wrap-around, A, X and scratch memory start at 0.
//! The tests compare every corpus expression against libpcap on random, mutated and truncated
//! packets in the kernel (`BPF_PROG_TEST_RUN`) and in a userspace eBPF VM.
//!
//! Not expressible, reported as [`TranslateError`] naming the construct: Linux socket-filter
//! extensions (`inbound`, `outbound`, `ifindex`, ... compile to `SKF_AD_*` loads) and the
//! backward jumps of `protochain`.
//!
//! # L2-only expressions
//!
//! An expression libpcap refuses at L3 but accepts at L2 (`ether host ..`) yields, for L3, the
//! reject-all program `ret #0`, as pwru does; unlike pwru, [`Cbpf::rejects_all`] and
//! [`Cbpf::reject_reason`] tell so. Expressions libpcap compiles to a program that can never
//! match (`arp` on raw IP) are marked the same way.
//!
//! # Measured costs
//!
//! On a 2-core Debian 12 VM, kernel 6.18, libpcap 1.10.3 (details and method in the workspace's
//! `benches/README.md`, benches `filter_compile` and `filter_kernel_cost`):
//!
//! - Compile: libpcap ≈ 5 µs per typical expression (284 ms for 200 OR'd hosts compiled
//!   whole; [`compile`] splits such chains of more than 64 terms into groups of 32 that libpcap
//!   optimises quickly: 2,000 hosts in about 0.3 s, where the whole expression takes libpcap
//!   more than 30 s); translation ≈ 0.3 µs (11.7 µs for 200 hosts). [`compile_lowered`] turns
//!   2,000 hosts into 14 classic / 81 eBPF instructions and one set in about 15 ms (dev
//!   profile), and the kernel then verifies them as fast as a one-host filter. Translation / libpcap:
//!   median 7.6 %, p90 14.4 %.
//! - Per packet in the kernel (net of the test harness): Direct 2–7 ns; ProbeRead with
//!   kfunc-cast loads 3–12 ns (1.00–1.18x Direct per test-run packet); ProbeRead with helper
//!   reads 26–41 ns with the bulk header copy (1.45–1.92x), 47–186 ns with one helper call per
//!   load (pwru's scheme): one `bpf_probe_read_kernel` call costs ≈ 24 ns here whatever the
//!   size. In pwru-rs's real kfree_skb program a non-matching packet costs 79–85 ns with the
//!   cast filter against 115–127 ns with the helper one (empty program: 57–60 ns).
//!
#![deny(missing_docs)]

pub mod cast;
pub mod cbpf;
mod cbpf_insn;
pub mod disasm;
mod disjunction;
pub mod dispatch;
mod emit;
pub mod expr;
pub mod host_sets;
pub mod insn;
pub mod libpcap;
pub mod skb_entry;
pub mod translate;
mod translate_error;
mod validate;

pub use cast::CastIds;
pub use cbpf::{
    compile, compile_lowered, compile_whole, Cbpf, CbpfInsn, HostSet, Layer, RejectReason,
};
pub use disasm::disassemble;
pub use dispatch::{dispatch, dispatch_with_skb_entries, dispatch_with_skb_entry};
pub use insn::{Insn, Reg};
pub use skb_entry::{Load, LoadSize, SkbEntry, SkbFields, SkbValue};
pub use translate::{
    set_key, translate, translate_cbpf, translate_insns, translate_with, Mode, Options,
    ProbeAccess, SetLookup, TranslateError, Translated, DIRECT_MAX_OFFSET, PROBE_BUFFER_INDIRECT,
    PROBE_BUFFER_MAX, STACK_BYTES,
};

/// libpcap could not compile an expression.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum FilterError {
    /// libpcap's message for the expression.
    #[error("cannot compile filter expression {expr:?} for {layer}: {message}; fix the expression (syntax: pcap-filter(7), as for tcpdump)")]
    Compile {
        /// The expression.
        expr: String,
        /// The layer it was compiled for.
        layer: Layer,
        /// libpcap's error message.
        message: String,
    },
}

/// Any error of [`compile_ebpf`].
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum Error {
    /// libpcap refused the expression.
    #[error(transparent)]
    Filter(#[from] FilterError),
    /// The classic program cannot be translated.
    #[error("filter expression {expr:?} for {layer}: {source}")]
    Translate {
        /// The expression.
        expr: String,
        /// The layer.
        layer: Layer,
        /// What failed.
        source: TranslateError,
    },
}

/// An expression compiled all the way to eBPF.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    /// The classic program libpcap produced (tells whether it rejects everything).
    pub cbpf: Cbpf,
    /// The mode of [`Program::insns`].
    pub mode: Mode,
    /// The eBPF body, following the calling convention.
    pub insns: Vec<Insn>,
}

/// [`compile`] then [`translate()`].
pub fn compile_ebpf(expr: &str, layer: Layer, mode: Mode) -> Result<Program, Error> {
    compile_ebpf_with(expr, layer, mode, &Options::default())
}

/// [`compile`] then [`translate_with`] with explicit [`Options`].
pub fn compile_ebpf_with(
    expr: &str,
    layer: Layer,
    mode: Mode,
    opts: &Options,
) -> Result<Program, Error> {
    let cbpf = compile(expr, layer)?;
    let insns = translate_with(cbpf.insns(), mode, opts).map_err(|source| Error::Translate {
        expr: expr.to_string(),
        layer,
        source,
    })?;
    Ok(Program { cbpf, mode, insns })
}
