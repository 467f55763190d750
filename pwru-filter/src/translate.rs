//! Classic BPF -> eBPF translation in the two modes of the calling convention (see the crate
//! documentation, section "Calling convention").

use crate::cast::CastIds;
use crate::cbpf::HostSet;
use crate::cbpf::{Cbpf, CbpfInsn};
use crate::emit::{Emitter, Label};
use crate::insn::{op, Insn, Reg, HELPER_MAP_LOOKUP_ELEM, HELPER_PROBE_READ_KERNEL, PSEUDO_MAP_FD};
pub use crate::translate_error::TranslateError;
use crate::validate::{self as v, class, load_size};

/// How the generated code reads packet bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Mode {
    /// Packet memory is directly readable: entry R1/R2 are packet pointers (tc, XDP,
    /// socket-filter contexts, called as a static subprogram). Plain loads after bounds checks.
    Direct,
    /// Packet memory is kernel memory behind plain addresses (kprobe, fentry, tracepoint
    /// contexts): entry R1/R2 are scalars. How bytes are read is [`Options::probe_access`]:
    /// by default up to [`PROBE_BUFFER_MAX`] header bytes are copied once with
    /// `bpf_probe_read_kernel` into the stack and read from there, and loads beyond that read
    /// their bytes with one `bpf_probe_read_kernel` each.
    ProbeRead,
}

/// How [`Mode::ProbeRead`] code reads packet bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum ProbeAccess {
    /// `bpf_probe_read_kernel`: one bulk copy of the headers, then one call per load beyond
    /// them (see [`Options::probe_buffer_max`]). Works in every program type and kernel. A read
    /// the kernel refuses ends the filter with "no match".
    #[default]
    Helper,
    /// Each load goes through a pointer made by the kfunc `bpf_rdonly_cast` (see
    /// [`crate::cast`]): a plain `BPF_PROBE_MEM` load, no helper call. Needs Linux 6.2+ and a
    /// program type the kernel lets call the kfunc (tracing, tc and XDP programs; KPROBE and
    /// raw tracepoint programs on recent kernels). A load the kernel cannot perform reads 0 (bytes inside
    /// `[data, data_end)` of a real packet are always readable).
    Cast(CastIds),
}

/// Bytes of its own stack frame (below R10) the generated code uses at most.
pub const STACK_BYTES: usize = 256;

/// Largest number of leading packet bytes [`Mode::ProbeRead`] copies into its stack buffer.
pub const PROBE_BUFFER_MAX: u32 = 184;

/// Header bytes [`Mode::ProbeRead`] copies when the program has indirect loads (their offsets
/// are unknown at translation time): enough for VXLAN/Geneve inner L4 headers.
pub const PROBE_BUFFER_INDIRECT: u32 = 128;

/// Largest offset (end of a load) direct-mode code reads; a load ending beyond it is treated
/// as out of range (no match). The verifier only tracks packet ranges up to `MAX_PACKET_OFF`
/// (0xffff) counted from the start of the packet, so this leaves the caller up to 32 KiB of
/// its own offset in the data pointer it passes (e.g. `skb->data` + network header offset).
pub const DIRECT_MAX_OFFSET: u32 = 0x7fff;

// Stack layout (offsets from R10):
//   ProbeRead: -8 an 8-byte scratch for per-load reads, -72..-8 M[0..16],
//              then the header buffer down to -72-N (N <= 184).
//   Direct:    -64..0 M[0..16].
const PROBE_TMP: i16 = -8;
const PROBE_MEM: i16 = -72;
const DIRECT_MEM: i16 = -64;

/// The registers holding the classic BPF machine's state.
#[derive(Clone, Copy)]
struct Regs {
    a: Reg,
    x: Reg,
    data: Reg,
    /// Direct: the data_end pointer. ProbeRead: the length (scalar).
    end: Reg,
    t1: Reg,
    t2: Reg,
}

const DIRECT_REGS: Regs = Regs {
    a: 0,
    x: 3,
    data: 1,
    end: 2,
    t1: 4,
    t2: 5,
};
const PROBE_REGS: Regs = Regs {
    a: 6,
    x: 7,
    data: 8,
    end: 9,
    t1: 1,
    t2: 2,
};

/// What a program needs, found by one scan of its reachable instructions.
struct Needs {
    a: bool,
    x: bool,
    /// Scratch slots read somewhere (initialised to 0 as libpcap does).
    mem_read: [bool; 16],
    /// Some reachable code can jump to the shared "no match" exit.
    nomatch: bool,
    /// ProbeRead: bytes to copy into the stack buffer.
    buffer: u32,
}

fn reads_a(i: &CbpfInsn) -> bool {
    match class(i.code) {
        v::RET => i.code & 0x18 == v::A,
        v::ALU | v::JMP => i.code != v::JMP | v::JA,
        v::ST => true,
        v::MISC => i.code & 0xf8 == v::TAX,
        _ => false,
    }
}

fn reads_x(i: &CbpfInsn) -> bool {
    match class(i.code) {
        v::ALU => i.code & 0x08 == v::X && i.code & 0xf0 != v::NEG,
        v::JMP => i.code != v::JMP | v::JA && i.code & 0x08 == v::X,
        v::STX => true,
        v::MISC => i.code & 0xf8 == v::TXA,
        v::LD => i.code & 0xe0 == v::IND,
        _ => false,
    }
}

/// A packet load: (size, is_indirect). `ldx msh` counts as a 1-byte absolute load.
fn packet_load(i: &CbpfInsn) -> Option<(u32, bool)> {
    match (class(i.code), i.code & 0xe0) {
        (v::LD, v::ABS) => Some((load_size(i.code), false)),
        (v::LD, v::IND) => Some((load_size(i.code), true)),
        (v::LDX, v::MSH) => Some((1, false)),
        _ => None,
    }
}

/// Direct-mode loads that can never be in range (offsets beyond [`DIRECT_MAX_OFFSET`]).
fn direct_always_fails(i: &CbpfInsn) -> bool {
    match packet_load(i) {
        Some((size, _)) => i.k as u64 + size as u64 > DIRECT_MAX_OFFSET as u64,
        None => false,
    }
}

fn scan(insns: &[CbpfInsn], reachable: &[bool], mode: Mode, opts: &Options) -> Needs {
    let limit = opts.probe_buffer_max.min(PROBE_BUFFER_MAX) & !7;
    let mut needs = Needs {
        a: false,
        x: false,
        mem_read: [false; 16],
        nomatch: false,
        buffer: 0,
    };
    let mut max_abs_end = 0u64;
    let mut indirect = false;
    for (i, _) in insns.iter().zip(reachable).filter(|(_, r)| **r) {
        needs.a |= reads_a(i);
        needs.x |= reads_x(i);
        if matches!(class(i.code), v::LD | v::LDX) && i.code & 0xe0 == v::MEM {
            needs.mem_read[i.k as usize] = true;
        }
        if class(i.code) == v::ALU
            && i.code & 0x08 == v::X
            && matches!(i.code & 0xf0, v::DIV | v::MOD)
        {
            needs.nomatch = true;
        }
        if let Some((size, ind)) = packet_load(i) {
            needs.nomatch = true;
            indirect |= ind;
            let end = i.k as u64 + size as u64;
            if !ind && end <= limit as u64 {
                max_abs_end = max_abs_end.max(end);
            }
        }
    }
    if mode == Mode::ProbeRead && opts.probe_access == ProbeAccess::Helper {
        needs.buffer = if indirect {
            (opts.probe_buffer_indirect.min(limit) & !7).max((max_abs_end as u32 + 7) & !7)
        } else {
            // Round up to 8 bytes: copying a few more bytes costs nothing measurable.
            ((max_abs_end as u32 + 7) & !7).min(limit)
        };
        if needs.buffer > 0 {
            needs.nomatch = true;
        }
    }
    needs
}

/// Translates a classic BPF program into the body of an eBPF subprogram following the crate's
/// calling convention. The result contains no map references, no `ld_imm64`, only forward
/// jumps, no unreachable instruction, and calls only in [`Mode::ProbeRead`]: the helper
/// `bpf_probe_read_kernel` (the default [`ProbeAccess::Helper`]; [`translate_with`] can choose
/// [`ProbeAccess::Cast`]).
pub fn translate(cbpf: &Cbpf, mode: Mode) -> Result<Vec<Insn>, TranslateError> {
    translate_insns(cbpf.insns(), mode)
}

/// [`translate()`] on bare classic BPF instructions.
pub fn translate_insns(insns: &[CbpfInsn], mode: Mode) -> Result<Vec<Insn>, TranslateError> {
    translate_with(insns, mode, &Options::default())
}

/// Tuning of the generated code; [`Options::default`] is what [`translate()`] uses (the fastest
/// scheme measured, see `benches/README.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// ProbeRead: at most this many leading packet bytes (rounded down to 8, capped at
    /// [`PROBE_BUFFER_MAX`]) are copied once into the stack; loads beyond read their own bytes
    /// with one helper call each. 0 means every load calls the helper.
    pub probe_buffer_max: u32,
    /// ProbeRead: bytes copied when the program has indirect loads (whose offsets are unknown
    /// until run time), at most `probe_buffer_max`.
    pub probe_buffer_indirect: u32,
    /// ProbeRead: helper reads (the default) or kfunc-cast loads. With
    /// [`ProbeAccess::Cast`] the two buffer sizes above are not used.
    pub probe_access: ProbeAccess,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            probe_buffer_max: PROBE_BUFFER_MAX,
            probe_buffer_indirect: PROBE_BUFFER_INDIRECT,
            probe_access: ProbeAccess::Helper,
        }
    }
}

impl Options {
    /// The default options with the given [`ProbeAccess`].
    pub fn with_access(probe_access: ProbeAccess) -> Options {
        Options {
            probe_access,
            ..Options::default()
        }
    }
}

/// [`translate_insns`] with explicit [`Options`].
pub fn translate_with(
    insns: &[CbpfInsn],
    mode: Mode,
    opts: &Options,
) -> Result<Vec<Insn>, TranslateError> {
    translate_sets(insns, &[], mode, opts, SetLookup::Compares)
}

/// How [`translate_cbpf`] tests whether A is in one of a program's [`HostSet`]s.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SetLookup {
    /// One `bpf_map_lookup_elem` per test ([`Mode::ProbeRead`] only), in a hash map the caller
    /// creates and fills: 8-byte keys [`set_key`]`(set id, address)`, any value size. The
    /// body loads the map with `ld_imm64 r1, <map>` (`src_reg` [`PSEUDO_MAP_FD`], immediate
    /// 0): the caller writes the map's fd into every such instruction before loading. Set ids
    /// are `first_set`, `first_set + 1`, ... in the order of [`Cbpf::sets`], so that several
    /// bodies can share one map.
    Map {
        /// The id of the program's first set.
        first_set: u32,
    },
    /// One compare per address: plain code without a map (its verification cost grows with
    /// the sets, as for the compares libpcap would have emitted).
    Compares,
}

/// The key of `addr` in set `set` in the map of [`SetLookup::Map`]: the address as the
/// program compares it (host byte order) then the set id, each a native-endian u32 (the
/// body stores the two words in that order on its stack).
pub fn set_key(set: u32, addr: u32) -> [u8; 8] {
    let mut key = [0u8; 8];
    key[..4].copy_from_slice(&addr.to_ne_bytes());
    key[4..].copy_from_slice(&set.to_ne_bytes());
    key
}

/// A body from [`translate_cbpf`] and the map entries its lookups expect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Translated {
    /// The eBPF body (see the crate's calling convention; with [`SetLookup::Map`] and sets it
    /// also holds map `ld_imm64`s and `bpf_map_lookup_elem` calls).
    pub insns: Vec<Insn>,
    /// With [`SetLookup::Map`]: every key ([`set_key`]) to put in the map. Empty otherwise.
    pub set_keys: Vec<[u8; 8]>,
}

/// Translates a program, its address sets included ([`Cbpf::sets`], from
/// [`crate::compile_lowered`]), as `lookup` says; [`translate_with`] for programs without sets.
pub fn translate_cbpf(
    cbpf: &Cbpf,
    mode: Mode,
    opts: &Options,
    lookup: SetLookup,
) -> Result<Translated, TranslateError> {
    let sets = cbpf.sets();
    if !sets.is_empty() && mode == Mode::Direct && matches!(lookup, SetLookup::Map { .. }) {
        return Err(TranslateError::SetsNeedProbeRead);
    }
    let insns = translate_sets(cbpf.insns(), sets, mode, opts, lookup)?;
    let mut set_keys = Vec::new();
    if let SetLookup::Map { first_set } = lookup {
        for (id, set) in (first_set..).zip(sets) {
            set_keys.extend(set.addrs.iter().map(|a| set_key(id, *a)));
        }
    }
    Ok(Translated { insns, set_keys })
}

fn translate_sets(
    insns: &[CbpfInsn],
    sets: &[HostSet],
    mode: Mode,
    opts: &Options,
    lookup: SetLookup,
) -> Result<Vec<Insn>, TranslateError> {
    v::validate(insns)?;
    let reachable = match mode {
        Mode::Direct => v::reachable(insns, direct_always_fails),
        Mode::ProbeRead => v::reachable(insns, |_| false),
    };
    let needs = scan(insns, &reachable, mode, opts);
    let mut t = Translator {
        e: Emitter::new(insns.len()),
        insns,
        reachable: &reachable,
        mode,
        r: match mode {
            Mode::Direct => DIRECT_REGS,
            Mode::ProbeRead => PROBE_REGS,
        },
        mem_base: match mode {
            Mode::Direct => DIRECT_MEM,
            Mode::ProbeRead => PROBE_MEM,
        },
        buffer: needs.buffer,
        cast: match (mode, opts.probe_access) {
            (Mode::ProbeRead, ProbeAccess::Cast(ids)) => Some(ids),
            _ => None,
        },
        nomatch: Label::NoMatch,
        nomatch_used: needs.nomatch,
        sets,
        lookup,
    };
    t.prologue(&needs);
    for (pc, _) in reachable.iter().enumerate().filter(|(_, r)| **r) {
        t.e.bind(Label::Cbpf(pc));
        t.insn(pc);
    }
    t.epilogue();
    t.e.finish()
}

struct Translator<'a> {
    e: Emitter,
    insns: &'a [CbpfInsn],
    reachable: &'a [bool],
    mode: Mode,
    r: Regs,
    mem_base: i16,
    buffer: u32,
    /// ProbeRead with [`ProbeAccess::Cast`].
    cast: Option<CastIds>,
    nomatch: Label,
    nomatch_used: bool,
    /// Address sets: `jeq #sentinel` tests membership.
    sets: &'a [HostSet],
    lookup: SetLookup,
}

fn size_op_any(size: u32) -> u8 {
    if size == 8 {
        op::DW
    } else {
        size_op(size)
    }
}

fn size_op(size: u32) -> u8 {
    match size {
        1 => op::B,
        2 => op::H,
        _ => op::W,
    }
}

impl Translator<'_> {
    fn buf_off(&self) -> i16 {
        PROBE_MEM - self.buffer as i16
    }

    fn mem_off(&self, k: u32) -> i16 {
        self.mem_base + 4 * k as i16
    }

    /// True when the code of `target` directly follows that of `pc` (only unreachable
    /// instructions in between).
    fn falls_to(&self, pc: usize, target: usize) -> bool {
        target > pc && self.reachable[pc + 1..target].iter().all(|r| !r)
    }

    fn prologue(&mut self, needs: &Needs) {
        let r = self.r;
        if self.mode == Mode::ProbeRead {
            // data = R1, len = R2 - R1, or 0 when R2 < R1.
            self.e.push(Insn::mov64_reg(r.data, 1));
            self.e.push(Insn::mov64_reg(r.end, 2));
            self.e.push(Insn::alu64_reg(op::SUB, r.end, 1));
            self.e.push(Insn::jmp_reg(op::JGE, 2, 1, 1));
            self.e.push(Insn::mov64_imm(r.end, 0));
            if self.buffer > 0 {
                // One copy of min(len, N) header bytes into the stack buffer.
                self.e.push(Insn::mov64_reg(2, r.end));
                self.e
                    .push(Insn::jmp_imm(op::JLE, 2, self.buffer as i32, 1));
                self.e.push(Insn::mov64_imm(2, self.buffer as i32));
                self.e.push(Insn::mov64_reg(1, 10));
                self.e
                    .push(Insn::alu64_imm(op::ADD, 1, self.buf_off() as i32));
                self.e.push(Insn::mov64_reg(3, r.data));
                self.e.push(Insn::call_helper(HELPER_PROBE_READ_KERNEL));
                self.e.jump(Insn::jmp_imm(op::JNE, 0, 0, 0), self.nomatch);
            }
        }
        if needs.a {
            self.e.push(Insn::mov32_imm(r.a, 0));
        }
        if needs.x {
            self.e.push(Insn::mov32_imm(r.x, 0));
        }
        for k in 0..16u32 {
            if needs.mem_read[k as usize] {
                let off = self.mem_off(k);
                self.e.push(Insn::store_imm(op::W, 10, off, 0));
            }
        }
    }

    fn epilogue(&mut self) {
        if self.nomatch_used {
            self.e.bind(Label::NoMatch);
            self.e.push(Insn::mov32_imm(0, 0));
            self.e.push(Insn::exit());
        }
    }

    fn ret(&mut self, value: Option<u32>) {
        match value {
            Some(k) => self.e.push(Insn::mov32_imm(0, k as i32)),
            None if self.r.a != 0 => self.e.push(Insn::mov32_reg(0, self.r.a)),
            None => {}
        }
        self.e.push(Insn::exit());
    }

    fn insn(&mut self, pc: usize) {
        let i = self.insns[pc];
        let r = self.r;
        let k = i.k;
        if self.mode == Mode::Direct && direct_always_fails(&i) {
            // Reachability treated this load as the end of its path.
            self.e.jump(Insn::ja(0), self.nomatch);
            return;
        }
        match class(i.code) {
            v::RET => self.ret((i.code & 0x18 == v::K).then_some(k)),
            v::LD => match i.code & 0xe0 {
                v::IMM => self.e.push(Insn::mov32_imm(r.a, k as i32)),
                v::MEM => {
                    let off = self.mem_off(k);
                    self.e.push(Insn::load(op::W, r.a, 10, off));
                }
                v::LEN => self.len(r.a),
                v::ABS => self.load_abs(load_size(i.code), k, r.a),
                _ => self.load_ind(load_size(i.code), k),
            },
            v::LDX => match i.code & 0xe0 {
                v::IMM => self.e.push(Insn::mov32_imm(r.x, k as i32)),
                v::MEM => {
                    let off = self.mem_off(k);
                    self.e.push(Insn::load(op::W, r.x, 10, off));
                }
                v::LEN => self.len(r.x),
                _ => {
                    // ldxb 4*([k]&0xf)
                    self.load_abs(1, k, r.x);
                    self.e.push(Insn::alu32_imm(op::AND, r.x, 0xf));
                    self.e.push(Insn::alu32_imm(op::LSH, r.x, 2));
                }
            },
            v::ST => {
                let off = self.mem_off(k);
                self.e.push(Insn::store_reg(op::W, 10, off, r.a));
            }
            v::STX => {
                let off = self.mem_off(k);
                self.e.push(Insn::store_reg(op::W, 10, off, r.x));
            }
            v::ALU => self.alu(i),
            v::JMP => self.jump(pc, i),
            _ => {
                if i.code & 0xf8 == v::TAX {
                    self.e.push(Insn::mov32_reg(r.x, r.a));
                } else {
                    self.e.push(Insn::mov32_reg(r.a, r.x));
                }
            }
        }
    }

    fn len(&mut self, dst: Reg) {
        let r = self.r;
        match self.mode {
            Mode::Direct => {
                // pkt_end - pkt is a scalar for programs loaded with CAP_PERFMON.
                self.e.push(Insn::mov64_reg(dst, r.end));
                self.e.push(Insn::alu64_reg(op::SUB, dst, r.data));
                self.e.push(Insn::mov32_reg(dst, dst));
            }
            Mode::ProbeRead => self.e.push(Insn::mov32_reg(dst, r.end)),
        }
    }

    fn swap(&mut self, dst: Reg, size: u32) {
        if size > 1 {
            self.e.push(Insn::to_be(dst, 8 * size as i32));
        }
    }

    fn load_abs(&mut self, size: u32, k: u32, dst: Reg) {
        let r = self.r;
        let end = k as u64 + size as u64;
        let s = size_op(size);
        match self.mode {
            Mode::Direct => {
                self.e.push(Insn::mov64_reg(r.t1, r.data));
                self.e.push(Insn::alu64_imm(op::ADD, r.t1, end as i32));
                self.e
                    .jump(Insn::jmp_reg(op::JGT, r.t1, r.end, 0), self.nomatch);
                // k < DIRECT_MAX_OFFSET fits the 16-bit displacement.
                self.e.push(Insn::load(s, dst, r.data, k as i16));
            }
            Mode::ProbeRead if self.cast.is_some() => {
                self.e.push(Insn::mov32_imm(1, k as i32));
                self.cast_read_at_r1(size, dst);
            }
            Mode::ProbeRead => {
                if end <= self.buffer as u64 {
                    self.e
                        .jump(Insn::jmp_imm(op::JLT, r.end, end as i32, 0), self.nomatch);
                    self.load_buffer_const(size, k, dst);
                    return;
                } else {
                    // Offset register R1 = k (zero-extended), then bounds check and read.
                    self.e.push(Insn::mov32_imm(1, k as i32));
                    self.probe_read_at_r1(size, dst);
                }
            }
        }
        self.swap(dst, size);
    }

    /// ProbeRead: R1 holds a 64-bit offset; checks R1 + size <= len and reads those bytes with
    /// one helper call into `dst` (not yet byte-swapped).
    fn probe_read_at_r1(&mut self, size: u32, dst: Reg) {
        let r = self.r;
        self.e.push(Insn::mov64_reg(2, 1));
        self.e.push(Insn::alu64_imm(op::ADD, 2, size as i32));
        self.e
            .jump(Insn::jmp_reg(op::JGT, 2, r.end, 0), self.nomatch);
        self.e.push(Insn::mov64_reg(3, r.data));
        self.e.push(Insn::alu64_reg(op::ADD, 3, 1));
        self.e.push(Insn::mov64_reg(1, 10));
        self.e.push(Insn::alu64_imm(op::ADD, 1, PROBE_TMP as i32));
        self.e.push(Insn::mov64_imm(2, size as i32));
        self.e.push(Insn::call_helper(HELPER_PROBE_READ_KERNEL));
        self.e.jump(Insn::jmp_imm(op::JNE, 0, 0, 0), self.nomatch);
        self.e.push(Insn::load(size_op(size), dst, 10, PROBE_TMP));
    }

    /// ProbeRead with [`ProbeAccess::Cast`]: R1 holds a 64-bit offset; checks R1 + size <= len
    /// and loads those bytes into `dst` (not yet byte-swapped) through `bpf_rdonly_cast`.
    fn cast_read_at_r1(&mut self, size: u32, dst: Reg) {
        let r = self.r;
        let Some(ids) = self.cast else {
            return self.probe_read_at_r1(size, dst);
        };
        self.e.push(Insn::mov64_reg(2, 1));
        self.e.push(Insn::alu64_imm(op::ADD, 2, size as i32));
        self.e
            .jump(Insn::jmp_reg(op::JGT, 2, r.end, 0), self.nomatch);
        self.e.push(Insn::alu64_reg(op::ADD, 1, r.data));
        // ids come from BTF: small positive numbers, they fit the immediates.
        self.e.push(Insn::mov64_imm(2, ids.target as i32));
        self.e.push(Insn::call_kfunc(ids.rdonly_cast as i32));
        self.e.push(Insn::load(size_op(size), dst, 0, 0));
    }

    /// ProbeRead: `dst` = the big-endian value of `size` buffer bytes at constant offset `k`.
    /// The verifier insists on aligned stack loads, so the bytes are taken from the smallest
    /// aligned word holding them, or from two aligned 8-byte words.
    fn load_buffer_const(&mut self, size: u32, k: u32, dst: Reg) {
        let base = self.buf_off();
        let containing = [size, 4, 8]
            .into_iter()
            .find(|w| *w >= size && k / w == (k + size - 1) / w);
        match containing {
            Some(w) => {
                let start = k / w * w;
                self.e
                    .push(Insn::load(size_op_any(w), dst, 10, base + start as i16));
                let shift = (k - start) * 8;
                if shift > 0 {
                    self.e.push(Insn::alu64_imm(op::RSH, dst, shift as i32));
                }
            }
            None => {
                let start = k / 8 * 8;
                let shift = (k - start) * 8;
                self.e
                    .push(Insn::load(op::DW, dst, 10, base + start as i16));
                self.e.push(Insn::alu64_imm(op::RSH, dst, shift as i32));
                self.e
                    .push(Insn::load(op::DW, 1, 10, base + start as i16 + 8));
                self.e.push(Insn::alu64_imm(op::LSH, 1, 64 - shift as i32));
                self.e.push(Insn::alu64_reg(op::OR, dst, 1));
            }
        }
        if size > 1 {
            self.e.push(Insn::to_be(dst, 8 * size as i32));
        } else if containing != Some(1) {
            self.e.push(Insn::alu32_imm(op::AND, dst, 0xff));
        }
    }

    /// ProbeRead: `dst` = the big-endian value of `size` buffer bytes at R2 (= R10 + a
    /// variable offset), assembled byte by byte since the offset's alignment is unknown.
    fn load_buffer_bytes(&mut self, size: u32, dst: Reg) {
        let base = self.buf_off();
        self.e.push(Insn::load(op::B, dst, 2, base));
        for i in 1..size as i16 {
            self.e.push(Insn::load(op::B, 3, 2, base + i));
            self.e.push(Insn::alu32_imm(op::LSH, dst, 8));
            self.e.push(Insn::alu32_reg(op::OR, dst, 3));
        }
    }

    fn load_ind(&mut self, size: u32, k: u32) {
        let r = self.r;
        let s = size_op(size);
        let end = k as u64 + size as u64;
        match self.mode {
            Mode::Direct => {
                // Bound X first so the verifier accepts adding it to the packet pointer.
                self.e.push(Insn::mov64_reg(r.t1, r.x));
                self.e.jump(
                    Insn::jmp_imm(op::JGT, r.t1, (DIRECT_MAX_OFFSET as u64 - end) as i32, 0),
                    self.nomatch,
                );
                self.e.push(Insn::alu64_reg(op::ADD, r.t1, r.data));
                if k > 0 {
                    self.e.push(Insn::alu64_imm(op::ADD, r.t1, k as i32));
                }
                self.e.push(Insn::mov64_reg(r.t2, r.t1));
                self.e.push(Insn::alu64_imm(op::ADD, r.t2, size as i32));
                self.e
                    .jump(Insn::jmp_reg(op::JGT, r.t2, r.end, 0), self.nomatch);
                self.e.push(Insn::load(s, r.a, r.t1, 0));
            }
            Mode::ProbeRead => {
                // R1 = X + k as a 64-bit sum: no wrap-around, as libpcap.
                self.e.push(Insn::mov64_reg(1, r.x));
                if k > 0 {
                    if k <= i32::MAX as u32 {
                        self.e.push(Insn::alu64_imm(op::ADD, 1, k as i32));
                    } else {
                        self.e.push(Insn::mov32_imm(2, k as i32));
                        self.e.push(Insn::alu64_reg(op::ADD, 1, 2));
                    }
                }
                if self.cast.is_some() {
                    self.cast_read_at_r1(size, r.a);
                } else if self.buffer >= size {
                    let slow = self.e.new_label();
                    let done = self.e.new_label();
                    self.e.push(Insn::mov64_reg(2, 1));
                    self.e.push(Insn::alu64_imm(op::ADD, 2, size as i32));
                    self.e
                        .jump(Insn::jmp_reg(op::JGT, 2, r.end, 0), self.nomatch);
                    self.e.jump(
                        Insn::jmp_imm(op::JGT, 1, (self.buffer - size) as i32, 0),
                        slow,
                    );
                    self.e.push(Insn::mov64_reg(2, 10));
                    self.e.push(Insn::alu64_reg(op::ADD, 2, 1));
                    self.load_buffer_bytes(size, r.a);
                    self.e.jump(Insn::ja(0), done);
                    self.e.bind(slow);
                    self.probe_read_at_r1(size, r.a);
                    self.swap(r.a, size);
                    self.e.bind(done);
                    return;
                } else {
                    self.probe_read_at_r1(size, r.a);
                }
            }
        }
        self.swap(r.a, size);
    }

    fn alu(&mut self, i: CbpfInsn) {
        let r = self.r;
        let alu = (i.code & 0xf0) as u8;
        if i.code & 0xf0 == v::NEG {
            self.e.push(Insn::neg32(r.a));
            return;
        }
        if i.code & 0x08 == v::K {
            // Constant divisors are non-zero and constant shifts < 32 (validated).
            self.e.push(Insn::alu32_imm(alu, r.a, i.k as i32));
            return;
        }
        match i.code & 0xf0 {
            v::DIV | v::MOD => {
                self.e
                    .jump(Insn::jmp32_imm(op::JEQ, r.x, 0, 0), self.nomatch);
            }
            v::LSH | v::RSH => {
                // cBPF: a shift by X >= 32 gives 0; eBPF masks the count. Clearing A first
                // makes the masked shift yield 0 too.
                self.e.push(Insn::jmp32_imm(op::JLT, r.x, 32, 1));
                self.e.push(Insn::mov32_imm(r.a, 0));
            }
            _ => {}
        }
        self.e.push(Insn::alu32_reg(alu, r.a, r.x));
    }

    fn jump(&mut self, pc: usize, i: CbpfInsn) {
        let r = self.r;
        if i.code & 0xf0 == v::JA {
            let target = pc + 1 + i.k as usize;
            if !self.falls_to(pc, target) {
                self.e.jump(Insn::ja(0), Label::Cbpf(target));
            }
            return;
        }
        let (t, f) = (pc + 1 + i.jt as usize, pc + 1 + i.jf as usize);
        if t == f {
            if !self.falls_to(pc, t) {
                self.e.jump(Insn::ja(0), Label::Cbpf(t));
            }
            return;
        }
        if i.code == v::JMP | v::JEQ | v::K {
            if let Some(n) = self.sets.iter().position(|s| s.sentinel == i.k) {
                self.member(pc, n, t, f);
                return;
            }
        }
        let jop = match i.code & 0xf0 {
            v::JEQ => op::JEQ,
            v::JGT => op::JGT,
            v::JGE => op::JGE,
            _ => op::JSET,
        };
        let cond = |jop: u8| {
            if i.code & 0x08 == v::X {
                Insn::jmp32_reg(jop, r.a, r.x, 0)
            } else {
                Insn::jmp32_imm(jop, r.a, i.k as i32, 0)
            }
        };
        if self.falls_to(pc, t) {
            let inverse = match jop {
                op::JEQ => Some(op::JNE),
                op::JGT => Some(op::JLE),
                op::JGE => Some(op::JLT),
                _ => None,
            };
            match inverse {
                Some(inv) => self.e.jump(cond(inv), Label::Cbpf(f)),
                None => {
                    // No "jump if no bit set": skip over a jump to the false target.
                    let mut skip = cond(jop);
                    skip.off = 1;
                    self.e.push(skip);
                    self.e.jump(Insn::ja(0), Label::Cbpf(f));
                }
            }
        } else {
            self.e.jump(cond(jop), Label::Cbpf(t));
            if !self.falls_to(pc, f) {
                self.e.jump(Insn::ja(0), Label::Cbpf(f));
            }
        }
    }

    /// `if A in set n goto t else goto f`.
    fn member(&mut self, pc: usize, n: usize, t: usize, f: usize) {
        let r = self.r;
        match self.lookup {
            SetLookup::Map { first_set } => {
                // Key (A, set id) in the 8-byte scratch slot; A, X, data and length live in
                // R6-R9, which the call preserves.
                let id = first_set.wrapping_add(n as u32);
                self.e.push(Insn::store_reg(op::W, 10, PROBE_TMP, r.a));
                self.e
                    .push(Insn::store_imm(op::W, 10, PROBE_TMP + 4, id as i32));
                self.e
                    .push(Insn::raw(op::LD | op::DW | op::IMM, 1, PSEUDO_MAP_FD, 0, 0));
                self.e.push(Insn::raw(0, 0, 0, 0, 0));
                self.e.push(Insn::mov64_reg(2, 10));
                self.e.push(Insn::alu64_imm(op::ADD, 2, PROBE_TMP as i32));
                self.e.push(Insn::call_helper(HELPER_MAP_LOOKUP_ELEM));
                self.e.jump(Insn::jmp_imm(op::JNE, 0, 0, 0), Label::Cbpf(t));
            }
            SetLookup::Compares => {
                for addr in &self.sets[n].addrs {
                    self.e.jump(
                        Insn::jmp32_imm(op::JEQ, r.a, *addr as i32, 0),
                        Label::Cbpf(t),
                    );
                }
            }
        }
        if !self.falls_to(pc, f) {
            self.e.jump(Insn::ja(0), Label::Cbpf(f));
        }
    }
}
