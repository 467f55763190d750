//! The kprobe.multi backend: one `BPF_TRACE_KPROBE_MULTI` link per skb argument position for
//! all its functions, the program loaded raw from the object (aya cannot load this kind). One
//! unattachable symbol fails a whole link, so a refused link is split in halves until the
//! refused functions are isolated. Tracking uses the kprobe backend's programs.

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};

use super::probe::{load_trivial, ProgramKind, PROBE_FUNCS};
use super::Backend;
use super::Target;
use super::{
    check_position, is_verifier, kprobe, parallel, Attached, Attachments, Driver, Link,
    LoaderError, ProgramStats,
};
use crate::btf::Btf;
use crate::object::Loader;
use crate::sys;

/// The probe's answer when the kernel has no kprobe.multi links.
fn not_supported(e: &std::io::Error) -> String {
    format!("kprobe.multi links are not supported ({e}): the kernel lacks CONFIG_FPROBE")
}

/// The kprobe.multi backend (needs CONFIG_FPROBE, 5.18+).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KprobeMulti;

impl Driver for KprobeMulti {
    fn backend(&self) -> Backend {
        Backend::KprobeMulti
    }

    fn skb_is_untyped(&self) -> bool {
        true
    }

    fn program_kind(&self, _kernel: Option<&Btf>) -> Result<ProgramKind, String> {
        Ok(ProgramKind {
            prog_type: sys::PROG_TYPE_KPROBE,
            attach_type: sys::ATTACH_TRACE_KPROBE_MULTI,
            attach_btf_id: 0,
            name: "kprobe.multi",
        })
    }

    fn probe(&self, kernel: Option<&Btf>) -> Result<(), String> {
        let prog = load_trivial(&self.program_kind(kernel)?)?;
        // By address where tracefs names one cheaply (6.5+): given a name, the kernel walks
        // every kernel symbol to find it (0.2-0.3 s in a TCG guest).
        let first = crate::discovery::Tracefs::find()
            .ok()
            .and_then(|t| t.first_traceable_address());
        if let Some((address, name)) = first {
            match sys::link_kprobe_multi_addrs(prog.as_fd(), &[address]) {
                Ok(_) => return Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
                    return Err(not_supported(&e));
                }
                Err(e) => log::debug!(
                    "a kprobe.multi link on {name} ({address:#x}) failed: {e}; probing by name"
                ),
            }
        }
        let mut last = String::new();
        for f in PROBE_FUNCS {
            let name = CString::new(*f).map_err(|e| e.to_string())?;
            match sys::link_kprobe_multi(prog.as_fd(), &[name]) {
                Ok(_) => return Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
                    return Err(not_supported(&e))
                }
                Err(e) => last = format!("a kprobe.multi link on {f} failed: {e}"),
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
        let by_position: Vec<(u8, Vec<&Target>)> = (1..=5u8)
            .map(|pos| {
                let at: Vec<&Target> = targets.iter().filter(|t| t.position == pos).collect();
                (pos, at)
            })
            .filter(|(_, at)| !at.is_empty())
            .collect();
        // Each position's program is loaded once and shared by its links (the hot path's, the
        // rest's, and the halves tried when a link is refused): one verifier run each.
        // A refused program refuses its position's functions; the others go on.
        let mut by_position = by_position;
        by_position.retain(|(pos, at)| {
            let loaded = multi_program(*pos).and_then(|program| {
                let l = shared_load(program);
                loader
                    .shared_program(l.program, l.prog_type, l.attach_type, l.attach_btf_id)
                    .map(drop)
            });
            match loaded {
                Ok(()) => true,
                Err(e) => {
                    out.refuse_all(at.iter().map(|t| t.name.as_str()), &e);
                    false
                }
            }
        });
        let loader = &*loader;
        let done = std::cell::Cell::new(0);
        // One program per position, verified and linked on `attach_threads` threads (2 unless
        // asked).
        parallel::for_each_in_rounds(
            loader.attach_threads(),
            &by_position,
            |(pos, targets)| {
                let mut attached = Attachments::default();
                attach_position(loader, *pos, targets, &mut attached);
                attached
            },
            |(_, names), attached| {
                out.links.extend(attached.links);
                out.attached.extend(attached.attached);
                out.refused.extend(attached.refused);
                done.set(done.get() + names.len());
                true
            },
            &mut |_, (pos, _)| progress(done.get(), &format!("position {pos}")),
        );
        Ok(())
    }

    fn attach_non_skb(&self, loader: &mut Loader, names: &[String], out: &mut Attachments) {
        if names.is_empty() {
            return;
        }
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        match loader.load_kprobe_multi_program(pwru_ebpf::program::KPROBE_MULTI_STACKID, &refs) {
            Ok(link) => {
                out.links.push(link);
                out.attached.extend(names.iter().cloned());
            }
            // One refused symbol fails the whole link: retry one by one to name it.
            Err(e) => {
                log::debug!(
                    "kprobe.multi link for {} non-skb functions refused ({e}); \
                     attaching them one by one",
                    refs.len()
                );
                for n in refs {
                    let r = loader
                        .load_kprobe_multi_program(pwru_ebpf::program::KPROBE_MULTI_STACKID, &[n]);
                    out.record(n.to_string(), r);
                }
            }
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
        kprobe::lifetime_programs(loader, track_clones)
    }
}

/// One link for all `targets` at `position`: by address when every address is known (the
/// kernel then resolves no name: on a 6.12 guest under TCG its walk of every symbol took
/// 300-350 ms of the link's 490-520), else by name. A refused set is split until the refused
/// functions are isolated.
fn attach_position(loader: &Loader, position: u8, targets: &[&Target], out: &mut Attachments) {
    let names: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
    let addresses: Option<Vec<u64>> = targets.iter().map(|t| t.address).collect();
    attach_bisecting(loader, position, &names, addresses.as_deref(), out);
}

/// One link for all `names` at `position` (by their `addresses` when given, in the same
/// order); on failure split the set and retry the halves until the refused functions are
/// isolated. A refusal by address costs the kernel little (it checks each address against its
/// ftrace records before changing anything); one by name costs a walk of every symbol.
fn attach_bisecting(
    loader: &Loader,
    position: u8,
    names: &[&str],
    addresses: Option<&[u64]>,
    out: &mut Attachments,
) {
    let set = match addresses {
        Some(a) => LinkSet::Addresses(a),
        None => LinkSet::Symbols(names),
    };
    match link_shared(loader, position, set) {
        Ok(link) => {
            log::debug!(
                "kprobe.multi linked {} functions (position {position}) by {}",
                names.len(),
                if addresses.is_some() {
                    "address"
                } else {
                    "name"
                }
            );
            out.links.push(link);
            out.attached.extend(names.iter().map(|s| s.to_string()));
        }
        // A verifier rejection is the same for every subset: do not bisect it.
        Err(e) if names.len() == 1 || is_verifier(&e) => out.refuse_all(names.iter().copied(), &e),
        Err(e) => {
            log::debug!(
                "kprobe.multi link for {} functions (position {position}) refused ({e}); \
                 splitting it to find the refused functions",
                names.len()
            );
            let half = names.len() / 2;
            let (a, b) = names.split_at(half);
            let (aa, ab) = match addresses {
                Some(x) => {
                    let (l, r) = x.split_at(half);
                    (Some(l), Some(r))
                }
                None => (None, None),
            };
            attach_bisecting(loader, position, a, aa, out);
            attach_bisecting(loader, position, b, ab, out);
        }
    }
}

/// The functions of one kprobe.multi link.
#[derive(Clone, Copy)]
enum LinkSet<'a> {
    Symbols(&'a [&'a str]),
    Addresses(&'a [u64]),
}

impl LinkSet<'_> {
    fn len(&self) -> usize {
        match self {
            LinkSet::Symbols(s) => s.len(),
            LinkSet::Addresses(a) => a.len(),
        }
    }
}

/// The event programs of every skb argument position, as [`Loader::shared_program`] loads
/// them for the links: what `build()` has verified ahead when it traces every function (whose
/// skb arguments take all five positions).
pub(crate) fn programs_ahead() -> Vec<crate::object::SharedLoad<'static>> {
    pwru_ebpf::program::KPROBE_MULTI_SKB
        .iter()
        .map(|&program| shared_load(program))
        .collect()
}

/// How an event program is loaded as kprobe.multi, once for all its links.
fn shared_load(program: &str) -> crate::object::SharedLoad<'_> {
    crate::object::SharedLoad {
        program,
        prog_type: sys::PROG_TYPE_KPROBE,
        attach_type: sys::ATTACH_TRACE_KPROBE_MULTI,
        attach_btf_id: 0,
    }
}

/// The kprobe.multi event program of skb argument `position`.
fn multi_program(position: u8) -> Result<&'static str, LoaderError> {
    check_position(position)?;
    Ok(pwru_ebpf::program::KPROBE_MULTI_SKB[usize::from(position - 1)])
}

/// One kprobe.multi link of the shared program of `position` (loaded by the attach) on all
/// functions of `set`.
fn link_shared(loader: &Loader, position: u8, set: LinkSet<'_>) -> Result<Link, LoaderError> {
    let program = multi_program(position)?;
    let prog = loader
        .shared_fd(program)
        .ok_or_else(|| LoaderError::NoProgram(program.into()))?;
    let link = match set {
        LinkSet::Symbols(symbols) => link_symbols(program, prog, symbols)?,
        LinkSet::Addresses(addresses) => {
            sys::link_kprobe_multi_addrs(prog, addresses).map_err(|error| LoaderError::Attach {
                program: program.into(),
                target: format!("{} addresses", addresses.len()),
                error,
            })?
        }
    };
    Ok(Link::shared(
        program,
        &format!("{} symbols", set.len()),
        link,
    ))
}

/// BPF_LINK_CREATE of `prog` (program `program`) on all `symbols`; errors name the program
/// and the number of symbols.
fn link_symbols(
    program: &str,
    prog: std::os::fd::BorrowedFd<'_>,
    symbols: &[&str],
) -> Result<OwnedFd, LoaderError> {
    let attach_error = |error| LoaderError::Attach {
        program: program.into(),
        target: format!("{} symbols", symbols.len()),
        error,
    };
    let syms: Vec<CString> = symbols
        .iter()
        .map(|s| CString::new(*s))
        .collect::<Result<_, _>>()
        .map_err(|e| attach_error(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))?;
    sys::link_kprobe_multi(prog, &syms).map_err(attach_error)
}

impl Loader {
    /// Loads a kprobe-section program as kprobe.multi and links it to all `symbols` at once.
    pub fn load_kprobe_multi_program(
        &self,
        program: &str,
        symbols: &[&str],
    ) -> Result<Link, LoaderError> {
        let prog = self.load_as_kprobe_multi(program)?;
        let link = link_symbols(program, prog.as_fd(), symbols)?;
        Ok(Link::from_fds(
            program,
            &format!("{} symbols", symbols.len()),
            link,
            prog,
        ))
    }

    /// Loads a kprobe-section program with expected attach type `BPF_TRACE_KPROBE_MULTI`.
    fn load_as_kprobe_multi(&self, program: &str) -> Result<OwnedFd, LoaderError> {
        self.raw_load(
            program,
            sys::PROG_TYPE_KPROBE,
            sys::ATTACH_TRACE_KPROBE_MULTI,
            0,
            None,
            &[],
        )
    }

    /// kprobe.multi backend: `kprobe_multi_skb_<position>` on all `symbols` in one link.
    pub fn load_kprobe_multi(&self, position: u8, symbols: &[&str]) -> Result<Link, LoaderError> {
        check_position(position)?;
        self.load_kprobe_multi_program(
            pwru_ebpf::program::KPROBE_MULTI_SKB[usize::from(position - 1)],
            symbols,
        )
    }

    /// Only verifies a kprobe-section program as kprobe.multi (no attach): the load alone
    /// works on kernels without fprobe. Returns the verified instruction count.
    pub fn verify_kprobe_multi(&mut self, program: &str) -> Result<ProgramStats, LoaderError> {
        let fd = self.load_as_kprobe_multi(program)?;
        ProgramStats::of(fd.as_fd()).map_err(|error| LoaderError::Attach {
            program: program.into(),
            target: "info".into(),
            error,
        })
    }
}
