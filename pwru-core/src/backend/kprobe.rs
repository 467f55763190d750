//! The kprobe backend: one perf kprobe link per function, the program loaded once per skb
//! argument position from the loader's object. Also the kprobe/kretprobe programs that track clones
//! and frees, which the kprobe.multi backend uses too.

use pwru_ebpf::program;
use std::ffi::CString;
use std::os::fd::AsFd;

use super::probe::{load_trivial, ProgramKind, PROBE_FUNCS};
use super::Backend;
use super::Target;
use super::{check_position, parallel, Attached, Attachments, Driver, Link, LoaderError};
use crate::btf::Btf;
use crate::object::Loader;
use crate::sys;

/// The kprobe backend (needs CONFIG_KPROBES).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Kprobe;

impl Driver for Kprobe {
    fn backend(&self) -> Backend {
        Backend::Kprobe
    }

    fn skb_is_untyped(&self) -> bool {
        true
    }

    fn program_kind(&self, _kernel: Option<&Btf>) -> Result<ProgramKind, String> {
        Ok(ProgramKind {
            prog_type: sys::PROG_TYPE_KPROBE,
            attach_type: 0,
            attach_btf_id: 0,
            name: "kprobe",
        })
    }

    fn probe(&self, kernel: Option<&Btf>) -> Result<(), String> {
        let pmu = sys::KprobePmu::from_sysfs().map_err(|e| e.to_string())?;
        let prog = load_trivial(&self.program_kind(kernel)?)?;
        let mut last = String::new();
        for f in PROBE_FUNCS {
            let name = CString::new(*f).map_err(|e| e.to_string())?;
            match sys::perf_kprobe_open(&pmu, sys::KprobeAt::Symbol(&name), false, prog.as_fd()) {
                Ok(_) => return Ok(()),
                Err(e) => last = format!("attaching a kprobe to {f} failed: {e}"),
            }
        }
        Err(last)
    }

    fn attach(
        &self,
        loader: &mut Loader,
        targets: &[Target],
        progress: &mut dyn FnMut(usize, &str),
        out: &mut Attachments,
    ) -> Result<(), LoaderError> {
        // Each position's program is loaded once, here; a refusal is fatal (it would fail
        // for every function of that position).
        for pos in 1..=5u8 {
            if targets.iter().any(|t| t.position == pos) {
                loader.shared_program(kprobe_program(pos)?, sys::PROG_TYPE_KPROBE, 0, 0)?;
            }
        }
        let pmu = kprobe_pmu("kprobe_skb")?;
        let loader = &*loader;
        // In the targets' order (the hot path first), on `attach_threads` threads (2 unless
        // asked: the kernel serialises most of kprobe registration; see
        // object::DEFAULT_ATTACH_THREADS).
        parallel::for_each_in_rounds(
            loader.attach_threads(),
            targets,
            |t| {
                let program = kprobe_program(t.position)?;
                let prog = loader
                    .shared_fd(program)
                    .ok_or_else(|| LoaderError::NoProgram(program.into()))?;
                attach_perf_kprobe(&pmu, program, &t.name, false, prog)
            },
            |t, r| {
                out.record(t.name.clone(), r);
                true
            },
            &mut |done, t| progress(done, &t.name),
        );
        Ok(())
    }

    fn attach_non_skb(&self, loader: &mut Loader, names: &[String], out: &mut Attachments) {
        if names.is_empty() {
            return;
        }
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        match loader.load_kprobe_program(program::KPROBE_STACKID, &refs) {
            Ok(results) => {
                for (name, r) in results {
                    out.record(name, r);
                }
            }
            Err(e) => out.refuse_all(refs, &e),
        }
    }

    fn attach_map_ops(
        &self,
        loader: &mut Loader,
        targets: &[crate::discovery::map_ops::MapOpTarget],
        out: &mut Attachments,
    ) {
        super::map_ops::attach_kprobes(loader, targets, out);
    }

    fn lifetime_programs(
        &self,
        loader: &mut Loader,
        track_clones: bool,
        _traced: &[String],
    ) -> Vec<Attached> {
        lifetime_programs(loader, track_clones)
    }
}

/// kprobe + kretprobe on skb_clone/skb_copy (with `track_clones`), kprobe on kfree_skbmem
/// and skb_free_head; without `track_clones` only kfree_skbmem. See
/// [`Loader::load_tracking`].
pub(super) fn lifetime_programs(loader: &mut Loader, track_clones: bool) -> Vec<Attached> {
    let mut out = Vec::new();
    let progs: &[(&str, &[&str])] = if track_clones {
        &[
            (program::KPROBE_CLONE_ENTRY, &["skb_clone", "skb_copy"]),
            (program::KRETPROBE_CLONE_EXIT, &["skb_clone", "skb_copy"]),
            (program::KPROBE_KFREE_SKBMEM, &["kfree_skbmem"]),
            (program::KPROBE_SKB_FREE_HEAD, &["skb_free_head"]),
        ]
    } else {
        &[(program::KPROBE_KFREE_SKBMEM, &["kfree_skbmem"])]
    };
    for &(prog, funcs) in progs {
        match loader.load_kprobe_program(prog, funcs) {
            Ok(links) => out.extend(links.into_iter().map(|(f, r)| (format!("{prog}:{f}"), r))),
            Err(e) => out.push((prog.to_string(), Err(e))),
        }
    }
    out
}

/// The kprobe program for an skb at argument `position` (1..=5).
fn kprobe_program(position: u8) -> Result<&'static str, LoaderError> {
    check_position(position)?;
    Ok(program::KPROBE_SKB[usize::from(position - 1)])
}

/// The kernel's kprobe PMU; its absence stops `program` from attaching anywhere.
fn kprobe_pmu(program: &str) -> Result<sys::KprobePmu, LoaderError> {
    sys::KprobePmu::from_sysfs().map_err(|error| LoaderError::Attach {
        program: program.into(),
        target: "kprobe PMU".into(),
        error,
    })
}

/// One perf kprobe (kretprobe with `retprobe`) on `function` running `prog`.
fn attach_perf_kprobe(
    pmu: &sys::KprobePmu,
    program: &str,
    function: &str,
    retprobe: bool,
    prog: std::os::fd::BorrowedFd<'_>,
) -> Result<Link, LoaderError> {
    CString::new(function)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
        .and_then(|name| sys::perf_kprobe_open(pmu, sys::KprobeAt::Symbol(&name), retprobe, prog))
        .map(|event| Link::perf_event(program, function, event))
        .map_err(|error| LoaderError::Attach {
            program: program.into(),
            target: function.to_string(),
            error,
        })
}

impl Loader {
    /// Loads program `program` (a kprobe/kretprobe section) once and attaches it to each
    /// function; one result per function.
    pub fn load_kprobe_program(
        &mut self,
        program: &str,
        functions: &[&str],
    ) -> Result<Vec<Attached>, LoaderError> {
        let retprobe = self.is_kretprobe(program);
        // Loading alone (no function) works on kernels without kprobes: it only verifies.
        let prog = self.shared_program(program, sys::PROG_TYPE_KPROBE, 0, 0)?;
        if functions.is_empty() {
            return Ok(Vec::new());
        }
        let pmu = kprobe_pmu(program)?;
        Ok(functions
            .iter()
            .map(|f| {
                let r = attach_perf_kprobe(&pmu, program, f, retprobe, prog);
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
        self.load_kprobe_program(kprobe_program(position)?, functions)
    }
}
