//! The tracepoint backend: the kernel's skb tracepoints, through BTF tracepoints (tp_btf,
//! typed arguments) or, on kernels without them, raw tracepoints. Each program is loaded once
//! from the loader's object, one link per tracepoint. No tracking programs: the
//! kfree_skb and consume_skb programs forget freed skbs themselves.

use std::ffi::CString;
use std::os::fd::AsFd;

use super::probe::{
    load_and_link_tracing, load_trivial, require_btf, ProgramKind, PROBE_TRACEPOINT,
};
use super::Backend;
use super::Target;
use super::{Attached, Attachments, Driver, Link, LoaderError};
use crate::btf::{Btf, Kind};
use crate::object::{Loader, SharedLoad};
use crate::sys;

/// Which program flavour serves a tracepoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TracepointFlavor {
    /// BTF tracepoint (`tp_btf_<name>`): typed arguments, cheapest.
    Btf,
    /// Raw tracepoint (`raw_tp_<name>`): for kernels without tp_btf.
    Raw,
}

/// The tracepoint backend in one flavour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tracepoint {
    /// tp_btf or raw_tp programs.
    pub flavor: TracepointFlavor,
}

impl Tracepoint {
    /// BTF tracepoints (tp_btf).
    pub const BTF: Tracepoint = Tracepoint {
        flavor: TracepointFlavor::Btf,
    };
    /// Raw tracepoints.
    pub const RAW: Tracepoint = Tracepoint {
        flavor: TracepointFlavor::Raw,
    };

    /// Probes tp_btf, then raw_tp: the flavour the kernel accepts, or both refusals.
    pub fn choose(kernel: Option<&Btf>) -> Result<&'static Tracepoint, String> {
        match Self::BTF.probe(kernel) {
            Ok(()) => Ok(&Self::BTF),
            Err(btf) => Self::RAW
                .probe(kernel)
                .map(|()| &Self::RAW)
                .map_err(|raw| format!("{btf}; {raw}")),
        }
    }
}

impl Driver for Tracepoint {
    fn backend(&self) -> Backend {
        Backend::Tracepoint
    }

    fn skb_is_untyped(&self) -> bool {
        self.flavor == TracepointFlavor::Raw
    }

    fn name(&self) -> &'static str {
        match self.flavor {
            TracepointFlavor::Btf => "tp_btf",
            TracepointFlavor::Raw => "raw_tp",
        }
    }

    fn needs_kernel_btf(&self) -> bool {
        self.flavor == TracepointFlavor::Btf
    }

    fn program_kind(&self, kernel: Option<&Btf>) -> Result<ProgramKind, String> {
        Ok(match self.flavor {
            TracepointFlavor::Raw => ProgramKind {
                prog_type: sys::PROG_TYPE_RAW_TRACEPOINT,
                attach_type: 0,
                attach_btf_id: 0,
                name: "raw_tp",
            },
            TracepointFlavor::Btf => {
                let btf = require_btf(kernel)?;
                let n = format!("btf_trace_{PROBE_TRACEPOINT}");
                let id = btf
                    .find_by_name(Kind::Typedef, &n)
                    .ok_or_else(|| format!("the kernel BTF has no {n}"))?
                    .0;
                ProgramKind {
                    prog_type: sys::PROG_TYPE_TRACING,
                    attach_type: sys::ATTACH_TRACE_RAW_TP,
                    attach_btf_id: id,
                    name: "tp_btf",
                }
            }
        })
    }

    fn probe(&self, kernel: Option<&Btf>) -> Result<(), String> {
        let kind = self.program_kind(kernel)?;
        match self.flavor {
            TracepointFlavor::Raw => {
                let prog = load_trivial(&kind)?;
                let name = CString::new(PROBE_TRACEPOINT).map_err(|e| e.to_string())?;
                sys::raw_tracepoint_open(prog.as_fd(), Some(&name))
                    .map(drop)
                    .map_err(|e| {
                        format!("attaching a raw_tp program to {PROBE_TRACEPOINT} failed: {e}")
                    })
            }
            TracepointFlavor::Btf => load_and_link_tracing(&kind),
        }
    }

    fn attach(
        &self,
        loader: &mut Loader,
        targets: &[Target],
        progress: &mut dyn FnMut(usize, &str),
        out: &mut Attachments,
    ) -> Result<(), LoaderError> {
        loader.verify_tracepoints_ahead(targets.iter().map(|t| t.name.as_str()), self.flavor);
        for (done, t) in (1..).zip(targets) {
            let r = loader.load_tracepoint(&t.name, self.flavor);
            out.record(t.name.clone(), r);
            progress(done, &t.name);
        }
        Ok(())
    }

    /// None: `build()` refuses functions without an skb argument on this backend.
    fn attach_non_skb(&self, _loader: &mut Loader, _names: &[String], _out: &mut Attachments) {}

    /// The traced kfree_skb and consume_skb programs forget by themselves (and head tracking
    /// follows clones); for each of the two that is not traced, a program that only forgets.
    fn lifetime_programs(
        &self,
        loader: &mut Loader,
        _track_clones: bool,
        traced: &[String],
    ) -> Vec<Attached> {
        use pwru_ebpf::program as p;
        let progs = match self.flavor {
            TracepointFlavor::Btf => [
                ("kfree_skb", p::LIFETIME_TP_BTF_KFREE_SKB),
                ("consume_skb", p::LIFETIME_TP_BTF_CONSUME_SKB),
            ],
            TracepointFlavor::Raw => [
                ("kfree_skb", p::LIFETIME_RAW_TP_KFREE_SKB),
                ("consume_skb", p::LIFETIME_RAW_TP_CONSUME_SKB),
            ],
        };
        progs
            .into_iter()
            .filter(|(tp, _)| !traced.iter().any(|t| t == tp))
            .map(|(tp, prog)| {
                (
                    format!("{prog}:{tp}"),
                    loader.load_tracepoint_program(prog, tp, self.flavor),
                )
            })
            .collect()
    }
}

impl Loader {
    /// Loads `tp_btf_<name>` or `raw_tp_<name>` and attaches it to tracepoint `name`
    /// (e.g. `kfree_skb`; see [`pwru_ebpf::TRACEPOINTS`]).
    pub fn load_tracepoint(
        &mut self,
        name: &str,
        flavor: TracepointFlavor,
    ) -> Result<Link, LoaderError> {
        let prefix = match flavor {
            TracepointFlavor::Btf => pwru_ebpf::program::TP_BTF_PREFIX,
            TracepointFlavor::Raw => pwru_ebpf::program::RAW_TP_PREFIX,
        };
        self.load_tracepoint_program(&format!("{prefix}{name}"), name, flavor)
    }

    /// Loads program `prog_name` (a tp_btf or raw_tp program, as `flavor` says) and attaches
    /// it to tracepoint `name`.
    pub fn load_tracepoint_program(
        &mut self,
        prog_name: &str,
        name: &str,
        flavor: TracepointFlavor,
    ) -> Result<Link, LoaderError> {
        if flavor == TracepointFlavor::Btf {
            return self.load_btf_tracepoint_program(prog_name, name);
        }
        let attach_err = |error| LoaderError::Attach {
            program: prog_name.to_string(),
            target: name.to_string(),
            error,
        };
        let c_name = CString::new(name)
            .map_err(|e| attach_err(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))?;
        let prog = self.shared_program(prog_name, sys::PROG_TYPE_RAW_TRACEPOINT, 0, 0)?;
        let link = sys::raw_tracepoint_open(prog, Some(&c_name)).map_err(attach_err)?;
        Ok(Link::shared(prog_name, name, link))
    }

    /// Loads BTF tracepoint program `program` (e.g. `tp_btf_baseline`, the empty program
    /// used as a cost reference) on tracepoint `tracepoint` and attaches it.
    pub fn load_btf_tracepoint_program(
        &mut self,
        program: &str,
        tracepoint: &str,
    ) -> Result<Link, LoaderError> {
        let id = self
            .btf
            .find_by_name(
                crate::btf::Kind::Typedef,
                &format!("btf_trace_{tracepoint}"),
            )
            .ok_or_else(|| LoaderError::NotInBtf(tracepoint.into()))?
            .0;
        let prog = self.shared_program(
            program,
            sys::PROG_TYPE_TRACING,
            sys::ATTACH_TRACE_RAW_TP,
            id,
        )?;
        let link = sys::raw_tracepoint_open(prog, None).map_err(|error| LoaderError::Attach {
            program: program.into(),
            target: tracepoint.into(),
            error,
        })?;
        Ok(Link::shared(program, tracepoint, link))
    }

    /// Verifies the programs of tracepoints `names` ahead, in parallel
    /// ([`Loader::verify_ahead`]); the `load_tracepoint` calls that follow attach them.
    fn verify_tracepoints_ahead<'a>(
        &mut self,
        names: impl Iterator<Item = &'a str>,
        flavor: TracepointFlavor,
    ) {
        let specs: Vec<(String, u32)> = names
            .filter_map(|name| match flavor {
                TracepointFlavor::Btf => self
                    .btf
                    .find_by_name(crate::btf::Kind::Typedef, &format!("btf_trace_{name}"))
                    .map(|id| (format!("{}{name}", pwru_ebpf::program::TP_BTF_PREFIX), id.0)),
                TracepointFlavor::Raw => {
                    Some((format!("{}{name}", pwru_ebpf::program::RAW_TP_PREFIX), 0))
                }
            })
            .collect();
        let (prog_type, attach_type) = match flavor {
            TracepointFlavor::Btf => (sys::PROG_TYPE_TRACING, sys::ATTACH_TRACE_RAW_TP),
            TracepointFlavor::Raw => (sys::PROG_TYPE_RAW_TRACEPOINT, 0),
        };
        let loads: Vec<SharedLoad<'_>> = specs
            .iter()
            .map(|(program, id)| SharedLoad {
                program,
                prog_type,
                attach_type,
                attach_btf_id: *id,
            })
            .collect();
        self.verify_ahead(&loads);
    }

    /// [`Loader::load_tracepoint`] for each name; one result per name, in order.
    pub fn load_tracepoints(&mut self, names: &[&str], flavor: TracepointFlavor) -> Vec<Attached> {
        names
            .iter()
            .map(|n| (n.to_string(), self.load_tracepoint(n, flavor)))
            .collect()
    }
}
