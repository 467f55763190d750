//! The fentry backend: one fentry program per function through a BPF trampoline, loaded raw
//! from the object for each target's BTF id (aya cannot load one program per target). Also
//! the fentry/fexit programs that track clones and frees.

use pwru_ebpf::program;
use std::os::fd::AsFd;

use super::probe::{load_and_link_tracing, require_btf, ProgramKind, PROBE_FUNCS};
use super::Backend;
use super::Target;
use super::{
    check_position, is_verifier, parallel, Attached, Attachments, Driver, Link, LoaderError,
};
use crate::btf::{Btf, Kind};
use crate::object::Loader;
use crate::sys;

/// The fentry backend (needs BPF trampolines, 5.5+, and fentry not refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Fentry;

impl Driver for Fentry {
    fn backend(&self) -> Backend {
        Backend::Fentry
    }

    fn skb_is_untyped(&self) -> bool {
        false
    }

    fn needs_kernel_btf(&self) -> bool {
        true
    }

    fn program_kind(&self, kernel: Option<&Btf>) -> Result<ProgramKind, String> {
        let btf = require_btf(kernel)?;
        let id = PROBE_FUNCS
            .iter()
            .find_map(|f| btf.find_by_name(Kind::Func, f))
            .ok_or("none of the probe functions is in the kernel BTF")?
            .0;
        Ok(ProgramKind {
            prog_type: sys::PROG_TYPE_TRACING,
            attach_type: sys::ATTACH_TRACE_FENTRY,
            attach_btf_id: id,
            name: "fentry",
        })
    }

    fn probe(&self, kernel: Option<&Btf>) -> Result<(), String> {
        load_and_link_tracing(&self.program_kind(kernel)?)
    }

    fn attach(
        &self,
        loader: &mut Loader,
        targets: &[Target],
        progress: &mut dyn FnMut(usize, &str),
        out: &mut Attachments,
    ) -> Result<(), LoaderError> {
        let loader = &*loader;
        let mut fatal = None;
        // One load (the verifier) and one trampoline per function, in the targets' order (the
        // hot path first), on `attach_threads` threads (2 unless asked: the verifier runs
        // overlap; see object::DEFAULT_ATTACH_THREADS).
        parallel::for_each_in_rounds(
            loader.attach_threads(),
            targets,
            |t| loader.load_fentry(t.position, &t.name),
            |t, r| match r {
                Ok(l) => {
                    out.links.push(l);
                    out.attached.push(t.name.clone());
                    true
                }
                // The program itself is refused before anything attached: fatal.
                Err(e) if is_verifier(&e) && out.attached.is_empty() && fatal.is_none() => {
                    fatal = Some(e);
                    false
                }
                Err(e) => {
                    out.refuse(t.name.clone(), &e);
                    true
                }
            },
            &mut |done, t| progress(done, &t.name),
        );
        match fatal {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn attach_non_skb(&self, loader: &mut Loader, names: &[String], out: &mut Attachments) {
        for n in names {
            let r = loader.load_tracing_program(program::FENTRY_STACKID, n, false);
            out.record(n.clone(), r);
        }
    }

    fn attach_map_ops(
        &self,
        loader: &mut Loader,
        targets: &[crate::discovery::map_ops::MapOpTarget],
        out: &mut Attachments,
    ) {
        super::map_ops::attach_tracing(loader, targets, out);
    }

    /// fexit on skb_clone/skb_copy (with `track_clones`), fentry on kfree_skbmem and
    /// skb_free_head; without `track_clones` only kfree_skbmem.
    fn lifetime_programs(
        &self,
        loader: &mut Loader,
        track_clones: bool,
        _traced: &[String],
    ) -> Vec<Attached> {
        let progs: &[(&str, &str, bool)] = if track_clones {
            &[
                (program::FEXIT_SKB_CLONE, "skb_clone", true),
                (program::FEXIT_SKB_COPY, "skb_copy", true),
                (program::FENTRY_KFREE_SKBMEM, "kfree_skbmem", false),
                (program::FENTRY_SKB_FREE_HEAD, "skb_free_head", false),
            ]
        } else {
            &[(program::FENTRY_KFREE_SKBMEM, "kfree_skbmem", false)]
        };
        progs
            .iter()
            .map(|&(prog, func, exit)| {
                (
                    format!("{prog}:{func}"),
                    loader.load_tracing_program(prog, func, exit),
                )
            })
            .collect()
    }
}

impl Loader {
    /// Loads a tracing program (fentry/fexit section) for kernel function `function` and
    /// attaches it. `exit` selects fexit.
    pub fn load_tracing_program(
        &self,
        program: &str,
        function: &str,
        exit: bool,
    ) -> Result<Link, LoaderError> {
        let btf_id = self
            .btf
            .find_by_name(crate::btf::Kind::Func, function)
            .ok_or_else(|| LoaderError::NotInBtf(function.into()))?
            .0;
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
    pub fn load_fentry(&self, position: u8, function: &str) -> Result<Link, LoaderError> {
        check_position(position)?;
        self.load_tracing_program(
            pwru_ebpf::program::FENTRY_SKB[usize::from(position - 1)],
            function,
            false,
        )
    }
}
