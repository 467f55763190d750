//! The compiled object prepared for loading, from one parse: [`Loader::new`] has aya-obj parse
//! the ELF, puts the filter dispatch body into the `pwru_filter` stub (splice.rs, exactly: no
//! padding), sets the read-only config, creates the maps (maps.rs) and relocates everything
//! (prepared.rs). Programs are then loaded on demand by the backends (`crate::backend`, one
//! file per program type) from those instructions through `crate::sys`. The map readers of the
//! run and nesting counters are in counters.rs.
//!
//! | backend | call | how |
//! |---|---|---|
//! | tracepoint | [`Loader::load_tracepoint`] / [`Loader::load_tracepoints`] | tp_btf (attach BTF id `btf_trace_<name>`) or raw_tp, loaded once, one link per tracepoint |
//! | kprobe | [`Loader::load_kprobe`] | loaded once, one perf-event kprobe (or kretprobe) per function |
//! | kprobe.multi | [`Loader::load_kprobe_multi`] | expected attach type KPROBE_MULTI + BPF_LINK_CREATE |
//! | fentry | [`Loader::load_fentry`] | one load per target function + tracing link |
//! | tc/XDP programs | [`Loader::trace_bpf_prog`] | fentry/fexit load with attach_prog_fd |
//!
//! Every attachment is a [`Link`](crate::backend::Link) that detaches on drop. The ring buffer
//! and the counters are taken with [`Loader::take_events`], [`Loader::take_lost`] and
//! [`Loader::take_nesting`].

mod core_relos;
mod counters;
mod error;
pub mod filter_sets;
mod loader_job;
mod maps;
mod prepared;
mod program_stats;
mod relocated;
mod splice;

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aya::maps::{Map, MapData, PerCpuArray, RingBuf};
use pwru_ebpf::PwruConfig;

use crate::sys;

pub use counters::{LostCounter, NestingCounter};
pub use error::LoaderError;
#[cfg(feature = "unstable")]
pub use prepared::object_parses;
pub use program_stats::ProgramStats;
pub use splice::{FilterBody, SpliceError};

pub(crate) use loader_job::ObjectJob;
use prepared::{Inputs, Prepared};
#[cfg(feature = "unstable")]
pub use relocated::relocate_for_bench;
pub(crate) use relocated::{Relocated, RelocationJob};

/// Threads that attach targets unless told otherwise (fewer if the process may run on fewer
/// CPUs). The kernel registers kprobes and updates trampolines under global mutexes, so
/// threads overlap only the rest of each attach: the program's verification (one per function
/// with fentry), the perf event's and the probe's allocations, the syscalls. In a 2-vCPU QEMU
/// guest on a quiet host (2026-12-05, tests/vm/README.md, `attach-speed` and `detach-lab`),
/// two threads attached 1.1-1.35x faster than one with kprobes (6.1, 6.12) and 1.55-1.85x with
/// fentry; three and four were no faster than two. (Earlier boots on a loaded host had two
/// threads slower: there a waiting vCPU's spinning took host time from the lock's holder.)
pub const DEFAULT_ATTACH_THREADS: usize = 2;

/// Options that are not part of the kernel-side config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoaderOptions {
    /// Ring buffer size in bytes: a power of two and a multiple of the page size.
    pub ring_buf_bytes: u32,
    /// Threads that attach targets; 0 means the default (see [`Loader::attach_threads`]).
    /// Detaching uses more (`backend::DETACH_THREADS`).
    pub attach_threads: usize,
}

impl Default for LoaderOptions {
    fn default() -> Self {
        LoaderOptions {
            ring_buf_bytes: 4 << 20,
            attach_threads: 0,
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
/// let config = pwru_ebpf::PwruConfig { flags: pwru_ebpf::PWRU_CFG_OUTPUT_META, netns: 0, mark: 0, mark_mask: 0, ifindex: 0, dump_max: 0, snaplen: 0 };
/// let mut loader = Loader::new(pwru_ebpf::OBJECT, &FilterBody::match_all(), &config, &LoaderOptions::default())?;
/// let _link = loader.load_tracepoint("kfree_skb", TracepointFlavor::Btf)?; // detaches on drop
/// let _events = loader.take_events()?;
/// # Ok::<(), pwru_core::backend::LoaderError>(())
/// ```
pub struct Loader {
    /// The kernel's BTF, where attach ids (fentry functions, tp_btf tracepoints) are found.
    pub(crate) btf: Arc<crate::btf::Btf>,
    prepared: Prepared,
    maps: HashMap<String, Map>,
    /// Programs loaded once and shared by all their links (tracepoints, kprobes), with the
    /// attach BTF id they were loaded for.
    shared: HashMap<String, (OwnedFd, u32)>,
    /// Time spent in BPF_PROG_LOAD (the verifier), in ns, summed over every thread loading.
    verify_ns: AtomicU64,
    /// Threads to attach and detach with (see [`LoaderOptions::attach_threads`]).
    attach_threads: usize,
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
        Self::with_kernel_btf(object, filter, config, options, Arc::new(kernel))
    }

    /// [`Loader::new`] with the kernel BTF given: CO-RE relocation, tp_btf and fentry attach ids
    /// all come from `kernel` (the loader keeps it; aya-obj gets the part relocations can
    /// reach, parsed from `kernel`'s bytes; no file is read again). The object is parsed once,
    /// here; every program is loaded from it.
    pub fn with_kernel_btf(
        object: &[u8],
        filter: &FilterBody,
        config: &PwruConfig,
        options: &LoaderOptions,
        kernel: Arc<crate::btf::Btf>,
    ) -> Result<Self, LoaderError> {
        Self::relocated(Relocated::new(object, kernel)?, filter, config, options)
    }

    /// [`Loader::with_kernel_btf`] with the object already parsed and relocated (on another
    /// thread while the tracer was being built: [`RelocationJob`]).
    pub(crate) fn relocated(
        relocated: Relocated,
        filter: &FilterBody,
        config: &PwruConfig,
        options: &LoaderOptions,
    ) -> Result<Self, LoaderError> {
        let btf = Arc::clone(&relocated.kernel);
        let tracepoints_unrelocated = !relocated.has_tracepoint_programs();
        let obj = relocated.obj;
        let cfg = config_bytes(config);
        let (prepared, maps) = Prepared::new(
            obj,
            tracepoints_unrelocated,
            &Inputs {
                filter,
                config: &cfg,
                ring_buf_bytes: options.ring_buf_bytes,
                flags: config.flags,
            },
        )?;
        Ok(Loader {
            btf,
            prepared,
            maps,
            shared: HashMap::new(),
            verify_ns: AtomicU64::new(0),
            attach_threads: options.attach_threads,
        })
    }

    /// Takes the ring buffer of records (each starts with a `PwruRecordHdr`). Once only.
    pub fn take_events(&mut self) -> Result<RingBuf<MapData>, LoaderError> {
        let name = pwru_ebpf::MAP_EVENTS;
        let map = self
            .maps
            .remove(name)
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
            .maps
            .remove(name)
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
            .maps
            .remove(name)
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
        self.maps
            .remove(name)
            .ok_or_else(|| LoaderError::NoMap(name.into()))
    }

    /// Loads program `program` of the object through `crate::sys`, its `ld_imm64` constants
    /// `patches` (magic, value) replaced first. Each call is a new kernel program.
    pub(crate) fn raw_load(
        &self,
        program: &str,
        prog_type: u32,
        attach_type: u32,
        attach_btf_id: u32,
        attach_prog: Option<BorrowedFd<'_>>,
        patches: &[(u64, u64)],
    ) -> Result<OwnedFd, LoaderError> {
        let mut insns = self.prepared.insns(program)?.to_vec();
        for &(magic, value) in patches {
            prepared::patch_ld_imm64(&mut insns, magic, value);
        }
        let started = Instant::now();
        let loaded = sys::prog_load(&sys::ProgLoad {
            prog_type,
            expected_attach_type: attach_type,
            insns: &insns,
            name: program,
            attach_btf_id,
            attach_prog_fd: attach_prog,
        });
        let ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.verify_ns.fetch_add(ns, Ordering::Relaxed);
        loaded.map_err(|r| LoaderError::Verifier {
            program: program.into(),
            error: r.error,
            log: r.log,
        })
    }

    /// Program `program` loaded once for all its links (tracepoints, kprobes): the first call
    /// loads it, later ones give the same program. A program loaded for one attach BTF id
    /// cannot serve another.
    pub(crate) fn shared_program(
        &mut self,
        program: &str,
        prog_type: u32,
        attach_type: u32,
        attach_btf_id: u32,
    ) -> Result<BorrowedFd<'_>, LoaderError> {
        if !self.shared.contains_key(program) {
            let fd = self.raw_load(program, prog_type, attach_type, attach_btf_id, None, &[])?;
            self.shared.insert(program.to_string(), (fd, attach_btf_id));
        }
        match self.shared.get(program) {
            Some((fd, id)) if *id == attach_btf_id => Ok(fd.as_fd()),
            Some(_) => Err(LoaderError::Prepare {
                program: program.into(),
                reason: "it is already loaded for another target; use a new Loader".into(),
            }),
            None => Err(LoaderError::NoProgram(program.into())),
        }
    }

    /// Verifies the shared programs of `programs` that are not loaded yet, on up to
    /// [`verify_threads`] threads at once, so that the [`Loader::shared_program`] calls that
    /// follow (one per link) find them loaded. The verifier is CPU-bound and checks every
    /// program alone (a large pcap filter is checked again in each of them), so a second core
    /// halves the wait. A program the kernel refuses here is simply not kept: the later
    /// `shared_program` call loads it again and reports the refusal with its verifier log, in
    /// the backend's usual place. Returns how many programs were loaded.
    pub(crate) fn verify_ahead(&mut self, programs: &[SharedLoad<'_>]) -> usize {
        let todo: Vec<&SharedLoad<'_>> = programs
            .iter()
            .filter(|p| !self.shared.contains_key(p.program))
            .collect();
        let threads = verify_threads().min(todo.len());
        if threads <= 1 {
            return todo
                .into_iter()
                .filter(|p| {
                    let id = p.attach_btf_id;
                    self.shared_program(p.program, p.prog_type, p.attach_type, id)
                        .is_ok()
                })
                .count();
        }
        let next = std::sync::atomic::AtomicUsize::new(0);
        let this = &*self;
        let loaded: Vec<(String, OwnedFd, u32)> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    s.spawn(|| {
                        let mut mine = Vec::new();
                        // Programs are taken one at a time: their sizes differ.
                        while let Some(p) = todo.get(next.fetch_add(1, Ordering::Relaxed)) {
                            let loaded = this.raw_load(
                                p.program,
                                p.prog_type,
                                p.attach_type,
                                p.attach_btf_id,
                                None,
                                &[],
                            );
                            if let Ok(fd) = loaded {
                                mine.push((p.program.to_string(), fd, p.attach_btf_id));
                            }
                        }
                        mine
                    })
                })
                .collect();
            workers
                .into_iter()
                .filter_map(|w| w.join().ok())
                .flatten()
                .collect()
        });
        let count = loaded.len();
        for (program, fd, id) in loaded {
            self.shared.entry(program).or_insert((fd, id));
        }
        count
    }

    /// Threads to attach targets with: [`LoaderOptions::attach_threads`], 0 (the default)
    /// meaning [`DEFAULT_ATTACH_THREADS`], or one if the process may run on one CPU only.
    /// Detaching does not use this count below `backend::DETACH_THREADS` (its waits are
    /// sleeps).
    pub fn attach_threads(&self) -> usize {
        match self.attach_threads {
            0 => std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(DEFAULT_ATTACH_THREADS),
            n => n,
        }
    }

    /// Every program loaded once and shared by its links.
    pub(crate) fn shared_program_fds(&self) -> impl Iterator<Item = BorrowedFd<'_>> {
        self.shared.values().map(|(fd, _)| fd.as_fd())
    }

    /// The fd of program `program` if [`Loader::shared_program`] loaded it.
    pub(crate) fn shared_fd(&self, program: &str) -> Option<BorrowedFd<'_>> {
        self.shared.get(program).map(|(fd, _)| fd.as_fd())
    }

    /// Time spent loading programs so far (BPF_PROG_LOAD, mostly the verifier), summed over
    /// the threads that loaded.
    pub fn verify_time(&self) -> Duration {
        Duration::from_nanos(self.verify_ns.load(Ordering::Relaxed))
    }

    /// Whether program `program` is in a `kretprobe/` section.
    pub(crate) fn is_kretprobe(&self, program: &str) -> bool {
        self.prepared.is_kretprobe(program)
    }

    /// Kernel statistics of a program shared by its links (tracepoints, kprobes) by name.
    pub fn program_stats(&self, program: &str) -> Result<ProgramStats, LoaderError> {
        let (fd, _) = self.shared.get(program).ok_or_else(|| {
            if self.prepared.insns(program).is_ok() {
                LoaderError::Prepare {
                    program: program.into(),
                    reason: "it is not loaded; load and attach it first".into(),
                }
            } else {
                LoaderError::NoProgram(program.into())
            }
        })?;
        ProgramStats::of(fd.as_fd()).map_err(|error| LoaderError::Attach {
            program: program.into(),
            target: "info".into(),
            error,
        })
    }
}

/// A program for [`Loader::verify_ahead`]: what [`Loader::shared_program`] would be called
/// with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SharedLoad<'a> {
    /// The program's name in the object.
    pub(crate) program: &'a str,
    /// `enum bpf_prog_type`.
    pub(crate) prog_type: u32,
    /// `enum bpf_attach_type`, 0 for program types without one.
    pub(crate) attach_type: u32,
    /// Kernel BTF id of the attach target (tp_btf), else 0.
    pub(crate) attach_btf_id: u32,
}

/// Threads [`Loader::verify_ahead`] verifies on: the CPUs this process may run on, at most
/// [`VERIFY_THREADS_MAX`] (each holds a program's verifier state, up to tens of MB for large
/// filters).
fn verify_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(VERIFY_THREADS_MAX)
}

/// Upper bound of [`verify_threads`].
const VERIFY_THREADS_MAX: usize = 4;

/// `config` as the bytes of the read-only global `pwru_cfg` (native byte order, the C layout).
fn config_bytes(c: &PwruConfig) -> [u8; std::mem::size_of::<PwruConfig>()] {
    let fields = [
        c.flags,
        c.netns,
        c.mark,
        c.mark_mask,
        c.ifindex,
        c.dump_max,
        c.snaplen,
    ];
    // A field added to the config but not listed above would silently stay zero.
    const _: () = assert!(std::mem::size_of::<PwruConfig>() == 7 * 4);
    let mut out = [0u8; std::mem::size_of::<PwruConfig>()];
    for (i, v) in fields.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&v.to_ne_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::TracepointFlavor;
    fn tp_btf(
        loader: &Loader,
        program: &'static str,
        tracepoint: &str,
    ) -> Option<SharedLoad<'static>> {
        let id = loader
            .btf
            .find_by_name(
                crate::btf::Kind::Typedef,
                &format!("btf_trace_{tracepoint}"),
            )?
            .0;
        Some(SharedLoad {
            program,
            prog_type: sys::PROG_TYPE_TRACING,
            attach_type: sys::ATTACH_TRACE_RAW_TP,
            attach_btf_id: id,
        })
    }

    /// The loader, or `None` after a SKIP line naming the missing capability (a loader
    /// creates maps, which needs BPF privileges).
    fn loader_or_skip(test: &str, made: Result<Loader, LoaderError>) -> Option<Loader> {
        match made {
            Ok(l) => Some(l),
            Err(e) => {
                eprintln!("SKIP {test}: no BPF maps here ({e})");
                None
            }
        }
    }

    #[test]
    fn a_loader_prepared_for_a_function_backend_refuses_tracepoint_programs() {
        let name = "a_loader_prepared_for_a_function_backend_refuses_tracepoint_programs";
        let Ok(kernel) = crate::btf::Btf::vmlinux() else {
            eprintln!("SKIP {name}: this machine lacks kernel BTF");
            return;
        };
        let kernel = std::sync::Arc::new(kernel);
        let relocated = RelocationJob::start(&kernel, pwru_ebpf::OBJECT, true)
            .wait()
            .expect("relocated for a function backend");
        assert!(!relocated.has_tracepoint_programs());
        let config = pwru_ebpf::PwruConfig::default();
        let made = Loader::relocated(
            relocated,
            &FilterBody::match_all(),
            &config,
            &LoaderOptions::default(),
        );
        let Some(mut loader) = loader_or_skip(name, made) else {
            return;
        };
        for flavor in [TracepointFlavor::Btf, TracepointFlavor::Raw] {
            let refused = loader.load_tracepoint("kfree_skb", flavor).err();
            assert!(
                refused
                    .as_ref()
                    .is_some_and(|e| e.to_string().contains("CO-RE")),
                "{flavor:?}: {refused:?}"
            );
        }
        // Relocated whole again (the fallback to tracepoints), they are there.
        let again = RelocationJob::start(&kernel, pwru_ebpf::OBJECT, true)
            .wait()
            .and_then(|r| r.with_tracepoint_programs(pwru_ebpf::OBJECT))
            .expect("relocated whole");
        assert!(again.has_tracepoint_programs());
    }

    #[test]
    fn programs_verified_ahead_are_the_ones_their_links_get() {
        let config = pwru_ebpf::PwruConfig {
            flags: pwru_ebpf::PWRU_CFG_OUTPUT_META,
            netns: 0,
            mark: 0,
            mark_mask: 0,
            ifindex: 0,
            dump_max: 0,
            snaplen: 0,
        };
        let made = Loader::new(
            pwru_ebpf::OBJECT,
            &FilterBody::match_all(),
            &config,
            &LoaderOptions::default(),
        );
        let Some(mut loader) =
            loader_or_skip("programs_verified_ahead_are_the_ones_their_links_get", made)
        else {
            return;
        };
        let (Some(kfree), Some(consume)) = (
            tp_btf(&loader, "tp_btf_kfree_skb", "kfree_skb"),
            tp_btf(&loader, "tp_btf_consume_skb", "consume_skb"),
        ) else {
            eprintln!("SKIP programs_verified_ahead_are_the_ones_their_links_get: the kernel BTF has no skb tracepoints");
            return;
        };
        let missing = SharedLoad {
            program: "no_such_program",
            ..kfree
        };
        // Both programs load, on as many threads as this machine gives; the missing one is
        // left for the later call to report.
        assert_eq!(loader.verify_ahead(&[kfree, consume, missing]), 2);
        let verified = loader.verify_time();
        assert!(verified > Duration::ZERO);
        for p in [kfree, consume] {
            loader
                .shared_program(p.program, p.prog_type, p.attach_type, p.attach_btf_id)
                .expect("verified ahead");
        }
        // No program was loaded again.
        assert_eq!(loader.verify_time(), verified);
        assert_eq!(loader.verify_ahead(&[kfree, consume]), 0);
        let e = loader
            .shared_program(missing.program, missing.prog_type, 0, missing.attach_btf_id)
            .unwrap_err();
        assert!(matches!(e, LoaderError::NoProgram(_)), "{e}");
    }
}
