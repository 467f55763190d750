//! Loading the kernel programs with the user's filter spliced in, and attaching them.
//!
//! [`Loader::new`] splices the compiled filter dispatch body into the object's
//! `pwru_filter` stub (exactly: no padding), sets the read-only config and lets aya create
//! the maps. Programs are then loaded on demand for the backend in use:
//!
//! | backend | call | how |
//! |---|---|---|
//! | tracepoint | [`Loader::load_tracepoint`] / [`Loader::load_tracepoints`] | aya `BtfTracePoint` (tp_btf) or `RawTracePoint` |
//! | kprobe | [`Loader::load_kprobe`] | aya `KProbe`, one perf-event link per function |
//! | kprobe.multi | [`Loader::load_kprobe_multi`] | raw load (expected attach type KPROBE_MULTI) + BPF_LINK_CREATE |
//! | fentry | [`Loader::load_fentry`] | raw load per target function + tracing link |
//! | tc/XDP programs | [`Loader::trace_bpf_prog`] | raw fentry/fexit load with attach_prog_fd |
//!
//! Every attachment is a [`Link`] that detaches on drop. The ring buffer and the lost-event
//! counter are taken with [`Loader::take_events`] and [`Loader::take_lost`].

mod error;
mod link;
mod probe;
mod raw_object;
mod splice;
use crate::sys;

use std::collections::HashMap;
use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};

use aya::maps::{Map, MapData, PerCpuArray, RingBuf};
use aya::programs::{BtfTracePoint, KProbe, RawTracePoint};
use aya::{Btf, Ebpf, EbpfLoader};
use aya_obj::btf::BtfKind;
use pwru_ebpf::PwruConfig;

pub use error::{LoaderError, SpliceError};
pub use link::{DetachedProgram, Link, ProgramStats};
pub use probe::{
    probe_backend, probe_backend_with, probe_kfunc_cast, probe_kfunc_cast_with, ProbeBackend,
};
pub use splice::{splice, FilterBody};

use raw_object::RawObject;

/// The outcome of attaching to one target: its name and the link or the reason it failed.
pub type Attached = (String, Result<Link, LoaderError>);

/// Which program flavour serves a tracepoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TracepointFlavor {
    /// BTF tracepoint (`tp_btf_<name>`): typed arguments, cheapest.
    Btf,
    /// Raw tracepoint (`raw_tp_<name>`): for kernels without tp_btf.
    Raw,
}

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

/// Tracking programs for one backend, see [`Loader::load_tracking`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackingBackend {
    /// fexit on skb_clone/skb_copy, fentry on kfree_skbmem and skb_free_head.
    Fentry,
    /// kprobe + kretprobe on skb_clone/skb_copy, kprobe on kfree_skbmem and skb_free_head.
    Kprobe,
}

/// The object with its filter and config, its maps created, programs loaded on demand.
///
/// Most users want [`Tracer`](crate::Tracer), which drives this; it is public for tools that
/// pick their own attach points.
///
/// ```no_run
/// use pwru_core::loader::{FilterBody, Loader, LoaderOptions, TracepointFlavor};
/// let config = pwru_ebpf::PwruConfig { flags: pwru_ebpf::PWRU_CFG_OUTPUT_META, netns: 0, mark: 0, mark_mask: 0, ifindex: 0, dump_max: 0 };
/// let mut loader = Loader::new(pwru_ebpf::OBJECT, &FilterBody::match_all(), &config, &LoaderOptions::default())?;
/// let _link = loader.load_tracepoint("kfree_skb", TracepointFlavor::Btf)?; // detaches on drop
/// let _events = loader.take_events()?;
/// # Ok::<(), pwru_core::loader::LoaderError>(())
/// ```
pub struct Loader {
    ebpf: Ebpf,
    btf: Btf,
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

fn check_position(position: u8) -> Result<(), LoaderError> {
    if (1..=5).contains(&position) {
        Ok(())
    } else {
        Err(LoaderError::BadPosition(position))
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

    /// Loads `tp_btf_<name>` or `raw_tp_<name>` and attaches it to tracepoint `name`
    /// (e.g. `kfree_skb`; see [`pwru_ebpf::TRACEPOINTS`]).
    pub fn load_tracepoint(
        &mut self,
        name: &str,
        flavor: TracepointFlavor,
    ) -> Result<Link, LoaderError> {
        if flavor == TracepointFlavor::Btf {
            return self.load_btf_tracepoint_program(&format!("tp_btf_{name}"), name);
        }
        let prog_name = format!("raw_tp_{name}");
        let err = |source| LoaderError::Program {
            program: prog_name.clone(),
            target: name.to_string(),
            source: Box::new(source),
        };
        let prog = self
            .ebpf
            .program_mut(&prog_name)
            .ok_or_else(|| LoaderError::NoProgram(prog_name.clone()))?;
        let p: &mut RawTracePoint = prog.try_into().map_err(err)?;
        p.load().map_err(err)?;
        let id = p.attach(name).map_err(err)?;
        let link = p.take_link(id).map_err(err)?;
        Ok(Link::from_aya(&prog_name, name, link))
    }

    /// Loads BTF tracepoint program `program` (e.g. `tp_btf_baseline`, the empty program
    /// used as a cost reference) on tracepoint `tracepoint` and attaches it.
    pub fn load_btf_tracepoint_program(
        &mut self,
        program: &str,
        tracepoint: &str,
    ) -> Result<Link, LoaderError> {
        let err = |source| LoaderError::Program {
            program: program.into(),
            target: tracepoint.into(),
            source: Box::new(source),
        };
        let prog = self
            .ebpf
            .program_mut(program)
            .ok_or_else(|| LoaderError::NoProgram(program.into()))?;
        let p: &mut BtfTracePoint = prog.try_into().map_err(err)?;
        p.load(tracepoint, &self.btf).map_err(err)?;
        let id = p.attach().map_err(err)?;
        let link = p.take_link(id).map_err(err)?;
        Ok(Link::from_aya(program, tracepoint, link))
    }

    /// [`Loader::load_tracepoint`] for each name; one result per name, in order.
    pub fn load_tracepoints(&mut self, names: &[&str], flavor: TracepointFlavor) -> Vec<Attached> {
        names
            .iter()
            .map(|n| (n.to_string(), self.load_tracepoint(n, flavor)))
            .collect()
    }

    /// Loads program `program` (a kprobe/kretprobe section) once and attaches it to each
    /// function; one result per function.
    pub fn load_kprobe_program(
        &mut self,
        program: &str,
        functions: &[&str],
    ) -> Result<Vec<Attached>, LoaderError> {
        let prog = self
            .ebpf
            .program_mut(program)
            .ok_or_else(|| LoaderError::NoProgram(program.into()))?;
        let p: &mut KProbe = prog.try_into().map_err(|source| LoaderError::Program {
            program: program.into(),
            target: "-".into(),
            source: Box::new(source),
        })?;
        if p.fd().is_err() {
            p.load().map_err(|source| LoaderError::Program {
                program: program.into(),
                target: "-".into(),
                source: Box::new(source),
            })?;
        }
        Ok(functions
            .iter()
            .map(|f| {
                let r = p
                    .attach(f, 0)
                    .and_then(|id| p.take_link(id))
                    .map(|l| Link::from_aya(program, f, l))
                    .map_err(|source| LoaderError::Program {
                        program: program.into(),
                        target: f.to_string(),
                        source: Box::new(source),
                    });
                (f.to_string(), r)
            })
            .collect())
    }

    /// kprobe backend: `kprobe_skb_<position>` on each function (skb is argument `position`).
    pub fn load_kprobe(
        &mut self,
        position: u8,
        functions: &[&str],
    ) -> Result<Vec<Attached>, LoaderError> {
        check_position(position)?;
        self.load_kprobe_program(&format!("kprobe_skb_{position}"), functions)
    }

    fn raw(&mut self) -> Result<&RawObject, LoaderError> {
        if self.raw.is_none() {
            self.raw = Some(RawObject::new(&self.spliced, &self.btf, &self.map_fds)?);
        }
        self.raw
            .as_ref()
            .ok_or_else(|| LoaderError::NoProgram("raw object".into()))
    }

    fn raw_load(
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
            raw_object::patch_ld_imm64(&mut insns, magic, value);
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

    /// Loads a kprobe-section program as kprobe.multi and links it to all `symbols` at once.
    pub fn load_kprobe_multi_program(
        &mut self,
        program: &str,
        symbols: &[&str],
    ) -> Result<Link, LoaderError> {
        let target = format!("{} symbols", symbols.len());
        let syms: Vec<CString> = symbols
            .iter()
            .map(|s| CString::new(*s))
            .collect::<Result<_, _>>()
            .map_err(|e| LoaderError::Attach {
                program: program.into(),
                target: target.clone(),
                error: std::io::Error::new(std::io::ErrorKind::InvalidInput, e),
            })?;
        let prog = self.raw_load(
            program,
            sys::PROG_TYPE_KPROBE,
            sys::ATTACH_TRACE_KPROBE_MULTI,
            0,
            None,
            &[],
        )?;
        let link =
            sys::link_kprobe_multi(prog.as_fd(), &syms).map_err(|error| LoaderError::Attach {
                program: program.into(),
                target: target.clone(),
                error,
            })?;
        Ok(Link::from_fds(program, &target, link, prog))
    }

    /// kprobe.multi backend: `kprobe_multi_skb_<position>` on all `symbols` in one link.
    pub fn load_kprobe_multi(
        &mut self,
        position: u8,
        symbols: &[&str],
    ) -> Result<Link, LoaderError> {
        check_position(position)?;
        self.load_kprobe_multi_program(&format!("kprobe_multi_skb_{position}"), symbols)
    }

    /// Only verifies a kprobe-section program as kprobe.multi (no attach): the load alone
    /// works on kernels without fprobe. Returns the verified instruction count.
    pub fn verify_kprobe_multi(&mut self, program: &str) -> Result<ProgramStats, LoaderError> {
        let fd = self.raw_load(
            program,
            sys::PROG_TYPE_KPROBE,
            sys::ATTACH_TRACE_KPROBE_MULTI,
            0,
            None,
            &[],
        )?;
        ProgramStats::of(fd.as_fd()).map_err(|error| LoaderError::Attach {
            program: program.into(),
            target: "info".into(),
            error,
        })
    }

    /// Loads a tracing program (fentry/fexit section) for kernel function `function` and
    /// attaches it. `exit` selects fexit.
    pub fn load_tracing_program(
        &mut self,
        program: &str,
        function: &str,
        exit: bool,
    ) -> Result<Link, LoaderError> {
        let btf_id = self
            .btf
            .id_by_type_name_kind(function, BtfKind::Func)
            .map_err(|_| LoaderError::NotInBtf(function.into()))?;
        let attach = if exit {
            sys::ATTACH_TRACE_FEXIT
        } else {
            sys::ATTACH_TRACE_FENTRY
        };
        let prog = self.raw_load(program, sys::PROG_TYPE_TRACING, attach, btf_id, None, &[])?;
        let link =
            sys::raw_tracepoint_open(prog.as_fd(), None).map_err(|error| LoaderError::Attach {
                program: program.into(),
                target: function.into(),
                error,
            })?;
        Ok(Link::from_fds(program, function, link, prog))
    }

    /// fentry backend: `fentry_skb_<position>` on `function` (one load per function).
    pub fn load_fentry(&mut self, position: u8, function: &str) -> Result<Link, LoaderError> {
        check_position(position)?;
        self.load_tracing_program(&format!("fentry_skb_{position}"), function, false)
    }

    /// Programs that follow clones/copies and end tracking when an skb or its data buffer is
    /// freed (with `PWRU_CFG_TRACK_SKB`): addresses are forgotten at `kfree_skbmem`, heads at
    /// `skb_free_head` (where the last data reference goes, while `skb->head` still names
    /// the buffer). Tracepoint-only kernels need none: the kfree_skb/consume_skb programs
    /// forget.
    pub fn load_tracking(&mut self, backend: TrackingBackend) -> Vec<Attached> {
        self.load_lifetime_programs(backend, true)
    }

    /// Only the program that forgets a freed skb's address and stack link (`kfree_skbmem`):
    /// what stack links of functions without an skb argument need when skbs are not tracked.
    pub fn load_lifetime(&mut self, backend: TrackingBackend) -> Vec<Attached> {
        self.load_lifetime_programs(backend, false)
    }

    fn load_lifetime_programs(&mut self, backend: TrackingBackend, all: bool) -> Vec<Attached> {
        let mut out = Vec::new();
        match backend {
            TrackingBackend::Fentry => {
                let progs: &[(&str, &str, bool)] = if all {
                    &[
                        ("fexit_skb_clone", "skb_clone", true),
                        ("fexit_skb_copy", "skb_copy", true),
                        ("fentry_kfree_skbmem", "kfree_skbmem", false),
                        ("fentry_skb_free_head", "skb_free_head", false),
                    ]
                } else {
                    &[("fentry_kfree_skbmem", "kfree_skbmem", false)]
                };
                for &(prog, func, exit) in progs {
                    out.push((
                        format!("{prog}:{func}"),
                        self.load_tracing_program(prog, func, exit),
                    ));
                }
            }
            TrackingBackend::Kprobe => {
                let progs: &[(&str, &[&str])] = if all {
                    &[
                        ("kprobe_clone_entry", &["skb_clone", "skb_copy"]),
                        ("kretprobe_clone_exit", &["skb_clone", "skb_copy"]),
                        ("kprobe_kfree_skbmem", &["kfree_skbmem"]),
                        ("kprobe_skb_free_head", &["skb_free_head"]),
                    ]
                } else {
                    &[("kprobe_kfree_skbmem", &["kfree_skbmem"])]
                };
                for &(prog, funcs) in progs {
                    match self.load_kprobe_program(prog, funcs) {
                        Ok(links) => {
                            out.extend(links.into_iter().map(|(f, r)| (format!("{prog}:{f}"), r)))
                        }
                        Err(e) => out.push((prog.to_string(), Err(e))),
                    }
                }
            }
        }
        out
    }

    /// Traces a loaded tc (fentry) or XDP (fentry + fexit) BPF program by id, like pwru's
    /// --filter-trace-tc / --filter-trace-xdp. Events carry the program's id and name.
    pub fn trace_bpf_prog(&mut self, id: u32) -> Result<Vec<Link>, LoaderError> {
        const SCHED_CLS: u32 = 3;
        const SCHED_ACT: u32 = 4;
        const XDP: u32 = 6;
        let bad = |reason: String| LoaderError::BpfProg { id, reason };
        let target_fd = sys::prog_fd_by_id(id).map_err(|e| bad(format!("no such program: {e}")))?;
        let info = sys::prog_info(target_fd.as_fd()).map_err(|e| bad(e.to_string()))?;
        if info.func_type_id == 0 {
            return Err(bad(
                "the program has no BTF function info, so fentry cannot target it".into(),
            ));
        }
        let progs: &[(&str, u32)] = match info.prog_type {
            SCHED_CLS | SCHED_ACT => &[("fentry_tc", sys::ATTACH_TRACE_FENTRY)],
            XDP => &[
                ("fentry_xdp", sys::ATTACH_TRACE_FENTRY),
                ("fexit_xdp", sys::ATTACH_TRACE_FEXIT),
            ],
            t => return Err(bad(format!("program type {t} is neither tc nor XDP"))),
        };
        let mut name = [0u8; 16];
        let n = info.name.len().min(15);
        name[..n].copy_from_slice(&info.name.as_bytes()[..n]);
        let mut lo = [0u8; 8];
        let mut hi = [0u8; 8];
        lo.copy_from_slice(&name[..8]);
        hi.copy_from_slice(&name[8..]);
        let patches = [
            (0x5057_5255_5052_4f47, u64::from(id)),
            (0x5057_5255_4e41_4d30, u64::from_le_bytes(lo)),
            (0x5057_5255_4e41_4d31, u64::from_le_bytes(hi)),
        ];
        let target = format!("prog:{id}:{}", info.name);
        let mut links = Vec::new();
        for &(prog, attach) in progs {
            let fd = self.raw_load(
                prog,
                sys::PROG_TYPE_TRACING,
                attach,
                info.func_type_id,
                Some(target_fd.as_fd()),
                &patches,
            )?;
            let link = sys::raw_tracepoint_open(fd.as_fd(), None).map_err(|error| {
                LoaderError::Attach {
                    program: prog.into(),
                    target: target.clone(),
                    error,
                }
            })?;
            links.push(Link::from_fds(prog, &target, link, fd));
        }
        Ok(links)
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

/// Turns on the kernel's run-time statistics (run_time_ns/run_cnt) while the fd lives.
pub fn enable_stats() -> std::io::Result<OwnedFd> {
    sys::enable_run_time_stats()
}

/// The per-CPU run counters of the event programs, indexed by outcome
/// ([`pwru_ebpf::outcome`]); [`LostCounter::total`] is the ring-full entry.
pub struct LostCounter(PerCpuArray<MapData, u64>);

impl LostCounter {
    fn sum(&self, outcome: u32) -> Result<u64, LoaderError> {
        let values = self.0.get(&outcome, 0).map_err(|source| LoaderError::Map {
            name: pwru_ebpf::MAP_RUNS.into(),
            source: Box::new(source),
        })?;
        Ok(values.iter().fold(0u64, |a, v| a.wrapping_add(*v)))
    }

    /// Records lost because the ring buffer was full, summed over all CPUs.
    pub fn total(&self) -> Result<u64, LoaderError> {
        self.sum(pwru_ebpf::outcome::RING_FULL)
    }

    /// Runs by outcome, summed over all CPUs: entry `i` counts outcome `i` of
    /// [`pwru_ebpf::outcome`].
    pub fn outcomes(&self) -> Result<[u64; pwru_ebpf::outcome::COUNT as usize], LoaderError> {
        let mut out = [0u64; pwru_ebpf::outcome::COUNT as usize];
        for (i, slot) in (0u32..).zip(out.iter_mut()) {
            *slot = self.sum(i)?;
        }
        Ok(out)
    }
}

/// The per-CPU record-building depth of the event programs ([`pwru_ebpf::MAP_DEPTH`]).
pub struct NestingCounter(PerCpuArray<MapData, u64>);

impl NestingCounter {
    /// Runs that built their record while another run on the same CPU was building one (an
    /// interrupt or another program nested inside it), summed over all CPUs. Each used its
    /// own scratch slot, so neither record was disturbed.
    pub fn nested(&self) -> Result<u64, LoaderError> {
        let values = self
            .0
            .get(&pwru_ebpf::PWRU_DEPTH_NESTED, 0)
            .map_err(|source| LoaderError::Map {
                name: pwru_ebpf::MAP_DEPTH.into(),
                source: Box::new(source),
            })?;
        Ok(values.iter().fold(0u64, |a, v| a.wrapping_add(*v)))
    }
}

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
