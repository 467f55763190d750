//! The compiled object prepared for loading: [`Loader::new`] splices the filter dispatch body
//! into the object's `pwru_filter` stub (splice.rs, exactly: no padding), sets the read-only
//! config and lets aya create the maps. Programs are then loaded on demand by the backends
//! (`crate::backend`, one file per program type), through aya or, for the program types aya
//! cannot load, from the same object prepared by aya-obj (raw.rs) through `crate::sys`. The
//! map readers of the run and nesting counters are in counters.rs; elf.rs is the crate's one
//! ELF reader.
//!
//! | backend | call | how |
//! |---|---|---|
//! | tracepoint | [`Loader::load_tracepoint`] / [`Loader::load_tracepoints`] | aya `BtfTracePoint` (tp_btf) or `RawTracePoint` |
//! | kprobe | [`Loader::load_kprobe`] | aya `KProbe`, one perf-event link per function |
//! | kprobe.multi | [`Loader::load_kprobe_multi`] | raw load (expected attach type KPROBE_MULTI) + BPF_LINK_CREATE |
//! | fentry | [`Loader::load_fentry`] | raw load per target function + tracing link |
//! | tc/XDP programs | [`Loader::trace_bpf_prog`] | raw fentry/fexit load with attach_prog_fd |
//!
//! Every attachment is a [`Link`](crate::backend::Link) that detaches on drop. The ring buffer
//! and the counters are taken with [`Loader::take_events`], [`Loader::take_lost`] and
//! [`Loader::take_nesting`].

mod counters;
pub(crate) mod elf;
mod raw;
mod splice;

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};

use aya::maps::{Map, MapData, PerCpuArray, RingBuf};
use aya::{Btf, Ebpf, EbpfLoader};
use pwru_ebpf::PwruConfig;

use crate::backend::{LoaderError, ProgramStats};
use crate::sys;

pub use counters::{LostCounter, NestingCounter};
pub use splice::{splice, FilterBody, SpliceError};

use raw::RawObject;

/// Options that are not part of the kernel-side config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoaderOptions {
    /// Ring buffer size in bytes: a power of two and a multiple of the page size.
    pub ring_buf_bytes: u32,
}

impl Default for LoaderOptions {
    fn default() -> Self {
        LoaderOptions {
            ring_buf_bytes: 4 << 20,
        }
    }
}

/// The object with its filter and config, its maps created, programs loaded on demand.
///
/// Most users want [`Tracer`](crate::Tracer), which drives this; it is public for tools that
/// pick their own attach points.
///
/// ```no_run
/// use pwru_core::backend::TracepointFlavor;
/// use pwru_core::object::{FilterBody, Loader, LoaderOptions};
/// let config = pwru_ebpf::PwruConfig { flags: pwru_ebpf::PWRU_CFG_OUTPUT_META, netns: 0, mark: 0, mark_mask: 0, ifindex: 0, dump_max: 0 };
/// let mut loader = Loader::new(pwru_ebpf::OBJECT, &FilterBody::match_all(), &config, &LoaderOptions::default())?;
/// let _link = loader.load_tracepoint("kfree_skb", TracepointFlavor::Btf)?; // detaches on drop
/// let _events = loader.take_events()?;
/// # Ok::<(), pwru_core::backend::LoaderError>(())
/// ```
pub struct Loader {
    pub(crate) ebpf: Ebpf,
    pub(crate) btf: Btf,
    spliced: Vec<u8>,
    map_fds: HashMap<String, OwnedFd>,
    raw: Option<RawObject>,
}

fn map_data(map: &Map) -> Option<&MapData> {
    match map {
        Map::Array(d)
        | Map::HashMap(d)
        | Map::LruHashMap(d)
        | Map::PerCpuArray(d)
        | Map::PerCpuHashMap(d)
        | Map::RingBuf(d)
        | Map::StackTraceMap(d)
        | Map::Unsupported(d) => Some(d),
        _ => None,
    }
}

impl Loader {
    /// Splices `filter` into `object` (normally [`pwru_ebpf::OBJECT`]), sets `config` as the
    /// read-only global `pwru_cfg` and creates the maps. No program is loaded yet. CO-RE
    /// relocations use the running kernel's BTF (`/sys/kernel/btf/vmlinux`); see
    /// [`Loader::with_kernel_btf`] for BTF already parsed or read from elsewhere.
    pub fn new(
        object: &[u8],
        filter: &FilterBody,
        config: &PwruConfig,
        options: &LoaderOptions,
    ) -> Result<Self, LoaderError> {
        let kernel = crate::btf::Btf::vmlinux().map_err(|e| LoaderError::KernelBtf(Box::new(e)))?;
        Self::with_kernel_btf(object, filter, config, options, &kernel)
    }

    /// [`Loader::new`] with the kernel BTF given: CO-RE relocation, tp_btf and fentry attach ids
    /// all come from `kernel` (aya gets its own copy, parsed from `kernel`'s bytes; no file is
    /// read again).
    pub fn with_kernel_btf(
        object: &[u8],
        filter: &FilterBody,
        config: &PwruConfig,
        options: &LoaderOptions,
        kernel: &crate::btf::Btf,
    ) -> Result<Self, LoaderError> {
        let spliced = splice(object, pwru_ebpf::FILTER_STUB, filter)?;
        let btf = kernel.to_aya()?;
        let cfg = config_bytes(config);
        // aya 0.14's EbpfLoader::new() reads /sys/kernel/btf/vmlinux itself (and ignores a
        // failure); `.btf()` below replaces that with the given BTF.
        let ebpf = EbpfLoader::new()
            .btf(Some(&btf))
            .override_global(pwru_ebpf::CONFIG_GLOBAL, &cfg[..], true)
            .map_max_entries(pwru_ebpf::MAP_EVENTS, options.ring_buf_bytes)
            .load(&spliced)?;
        let mut map_fds = HashMap::new();
        for (name, map) in ebpf.maps() {
            let data = map_data(map).ok_or_else(|| LoaderError::NoMap(name.to_string()))?;
            let fd = data
                .fd()
                .as_fd()
                .try_clone_to_owned()
                .map_err(|e| LoaderError::Prepare {
                    program: "*".into(),
                    reason: format!("dup of map {name}: {e}"),
                })?;
            map_fds.insert(name.to_string(), fd);
        }
        Ok(Loader {
            ebpf,
            btf,
            spliced,
            map_fds,
            raw: None,
        })
    }

    /// The object after splicing (what aya and the raw path load).
    pub fn spliced_object(&self) -> &[u8] {
        &self.spliced
    }

    /// Takes the ring buffer of records (each starts with a `PwruRecordHdr`). Once only.
    pub fn take_events(&mut self) -> Result<RingBuf<MapData>, LoaderError> {
        let name = pwru_ebpf::MAP_EVENTS;
        let map = self
            .ebpf
            .take_map(name)
            .ok_or_else(|| LoaderError::NoMap(name.into()))?;
        RingBuf::try_from(map).map_err(|source| LoaderError::Map {
            name: name.into(),
            source: Box::new(source),
        })
    }

    /// Takes the per-CPU run counters ([`pwru_ebpf::MAP_RUNS`]): runs by outcome, among them
    /// the records lost because the ring buffer was full. Once only.
    pub fn take_lost(&mut self) -> Result<LostCounter, LoaderError> {
        let name = pwru_ebpf::MAP_RUNS;
        let map = self
            .ebpf
            .take_map(name)
            .ok_or_else(|| LoaderError::NoMap(name.into()))?;
        PerCpuArray::try_from(map)
            .map(LostCounter)
            .map_err(|source| LoaderError::Map {
                name: name.into(),
                source: Box::new(source),
            })
    }

    /// Takes the per-CPU record-building depth ([`pwru_ebpf::MAP_DEPTH`]), to count nested
    /// runs. Once only.
    pub fn take_nesting(&mut self) -> Result<NestingCounter, LoaderError> {
        let name = pwru_ebpf::MAP_DEPTH;
        let map = self
            .ebpf
            .take_map(name)
            .ok_or_else(|| LoaderError::NoMap(name.into()))?;
        PerCpuArray::try_from(map)
            .map(NestingCounter)
            .map_err(|source| LoaderError::Map {
                name: name.into(),
                source: Box::new(source),
            })
    }

    /// Takes any other map by name (e.g. [`pwru_ebpf::MAP_STACKS`]). Once only.
    pub fn take_map(&mut self, name: &str) -> Result<Map, LoaderError> {
        self.ebpf
            .take_map(name)
            .ok_or_else(|| LoaderError::NoMap(name.into()))
    }

    fn raw(&mut self) -> Result<&RawObject, LoaderError> {
        if self.raw.is_none() {
            self.raw = Some(RawObject::new(&self.spliced, &self.btf, &self.map_fds)?);
        }
        self.raw
            .as_ref()
            .ok_or_else(|| LoaderError::NoProgram("raw object".into()))
    }

    /// Loads program `program` of the object through `crate::sys` (for the program types aya
    /// cannot load), its `ld_imm64` constants `patches` (magic, value) replaced first.
    pub(crate) fn raw_load(
        &mut self,
        program: &str,
        prog_type: u32,
        attach_type: u32,
        attach_btf_id: u32,
        attach_prog: Option<std::os::fd::BorrowedFd<'_>>,
        patches: &[(u64, u64)],
    ) -> Result<OwnedFd, LoaderError> {
        let mut insns = self.raw()?.insns(program)?.to_vec();
        for &(magic, value) in patches {
            raw::patch_ld_imm64(&mut insns, magic, value);
        }
        sys::prog_load(&sys::ProgLoad {
            prog_type,
            expected_attach_type: attach_type,
            insns: &insns,
            name: program,
            attach_btf_id,
            attach_prog_fd: attach_prog,
        })
        .map_err(|r| LoaderError::Verifier {
            program: program.into(),
            error: r.error,
            log: r.log,
        })
    }

    /// Kernel statistics of an aya-loaded program (tracepoints, kprobes) by name.
    pub fn program_stats(&self, program: &str) -> Result<ProgramStats, LoaderError> {
        let prog = self
            .ebpf
            .program(program)
            .ok_or_else(|| LoaderError::NoProgram(program.into()))?;
        let fd = prog.fd().map_err(|source| LoaderError::Program {
            program: program.into(),
            target: "-".into(),
            source: Box::new(source),
        })?;
        ProgramStats::of(fd.as_fd()).map_err(|error| LoaderError::Attach {
            program: program.into(),
            target: "info".into(),
            error,
        })
    }
}

/// `config` as the bytes of the read-only global `pwru_cfg` (native byte order, the C layout).
fn config_bytes(c: &PwruConfig) -> [u8; std::mem::size_of::<PwruConfig>()] {
    let mut out = [0u8; std::mem::size_of::<PwruConfig>()];
    for (i, v) in [c.flags, c.netns, c.mark, c.mark_mask, c.ifindex, c.dump_max]
        .iter()
        .enumerate()
    {
        out[i * 4..i * 4 + 4].copy_from_slice(&v.to_ne_bytes());
    }
    out
}
