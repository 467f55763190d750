//! The kernel's BTF as a tracer uses it: read and parsed once at
//! [`TracerBuilder::build`](crate::TracerBuilder::build) (from `/sys/kernel/btf/vmlinux`, or the
//! file given as [`kernel_btf`](crate::TracerBuilder::kernel_btf)), then shared as one
//! `Arc<Btf>` by discovery, the backend probes, the filter's kfunc-cast ids and the loader,
//! which gives aya a copy parsed from the same bytes for CO-RE relocation.

use std::cell::Cell;
use std::path::Path;

use pwru_filter::CastIds;

use super::{Btf, BtfError, Kind, TypeId};

thread_local! {
    /// Kernel BTF parses on this thread: (this reader, aya).
    static PARSES: Cell<(u32, u32)> = const { Cell::new((0, 0)) };
}

pub(super) fn count_own_parse() {
    PARSES.with(|p| p.set((p.get().0 + 1, p.get().1)));
}

fn count_aya_parse() {
    PARSES.with(|p| p.set((p.get().0, p.get().1 + 1)));
}

/// How often kernel BTF was parsed on the calling thread (a diagnostic for tests).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelBtfParses {
    /// Parses by this crate's reader ([`Btf::vmlinux`], [`Btf::from_file`]).
    pub own: u32,
    /// Parses into aya-obj's type (for CO-RE relocation), from the same bytes.
    pub aya: u32,
}

/// The kernel BTF parses counted on the calling thread so far (the file is read once; the
/// bytes are parsed by this crate's reader and once more by aya-obj for CO-RE relocation).
#[doc(hidden)]
pub fn kernel_btf_parses() -> KernelBtfParses {
    let (own, aya) = PARSES.with(Cell::get);
    KernelBtfParses { own, aya }
}

/// Whether `id` is, through typedefs and qualifiers, an integer of at least 4 bytes.
fn is_wide_int(btf: &Btf, id: TypeId) -> bool {
    let Ok(id) = btf.skip_modifiers(id) else {
        return false;
    };
    btf.get(id)
        .is_ok_and(|t| t.kind() == Kind::Int && t.size() >= 4)
}

impl Btf {
    /// The kernel's BTF: the file at `path` (raw BTF or an ELF file with `.BTF`, e.g. from
    /// btfhub) when given, else `/sys/kernel/btf/vmlinux`.
    pub fn kernel(path: Option<&Path>) -> Result<Btf, BtfError> {
        match path {
            Some(p) => Btf::from_file(p),
            None => Btf::vmlinux(),
        }
    }

    /// The vmlinux BTF ids the kfunc-cast read scheme of pwru-filter needs
    /// ([`pwru_filter::ProbeAccess::Cast`]): the `FUNC` `bpf_rdonly_cast` and `struct in_addr`
    /// (whose first member, at offset 0, is an integer of at least 4 bytes). `None` when this
    /// BTF lacks either (kernels before 6.2 have no `bpf_rdonly_cast`).
    ///
    /// ```no_run
    /// let btf = pwru_core::btf::Btf::vmlinux()?;
    /// if let Some(ids) = btf.cast_ids() {
    ///     println!("{ids}");
    /// }
    /// # Ok::<(), pwru_core::btf::BtfError>(())
    /// ```
    pub fn cast_ids(&self) -> Option<CastIds> {
        let rdonly_cast = self.find_by_name(Kind::Func, "bpf_rdonly_cast")?;
        let target = self.find_by_name(Kind::Struct, pwru_filter::cast::CAST_TARGET)?;
        let first = self.get(target).ok()?.members(self).next()?;
        if first.bit_offset != 0 || !is_wide_int(self, first.type_id) {
            return None;
        }
        Some(CastIds {
            rdonly_cast: rdonly_cast.0,
            target: target.0,
        })
    }

    /// The same BTF parsed by aya (which has its own type), from the bytes this one holds: no
    /// second read of the file.
    pub(crate) fn to_aya(&self) -> Result<aya::Btf, aya::BtfError> {
        count_aya_parse();
        self.to_aya_uncounted()
    }

    fn to_aya_uncounted(&self) -> Result<aya::Btf, aya::BtfError> {
        let endianness = if self.is_big_endian() {
            aya::Endianness::Big
        } else {
            aya::Endianness::Little
        };
        aya::Btf::parse(&self.data, endianness)
    }
}

/// [`Btf::to_aya`] running on its own thread, started by `build()` so that the parse overlaps
/// the backend probes and discovery; `attach()` waits for it. The parse is counted (see
/// [`kernel_btf_parses`]) on the thread that asked for it.
pub(crate) struct AyaBtfJob {
    kernel: std::sync::Arc<Btf>,
    parsing: Option<std::thread::JoinHandle<Result<aya::Btf, aya::BtfError>>>,
}

impl AyaBtfJob {
    /// Starts parsing `kernel` for aya.
    pub(crate) fn start(kernel: &std::sync::Arc<Btf>) -> AyaBtfJob {
        count_aya_parse();
        let for_thread = std::sync::Arc::clone(kernel);
        let parsing = std::thread::Builder::new()
            .name("pwru-aya-btf".into())
            .spawn(move || for_thread.to_aya_uncounted())
            .ok();
        AyaBtfJob {
            kernel: std::sync::Arc::clone(kernel),
            parsing,
        }
    }

    /// The parsed BTF, waiting for the thread; parsed here if no thread could be started.
    pub(crate) fn wait(self) -> Result<aya::Btf, aya::BtfError> {
        match self.parsing.map(std::thread::JoinHandle::join) {
            Some(Ok(parsed)) => parsed,
            // The parser panicked on its thread: the same panic here.
            Some(Err(payload)) => std::panic::resume_unwind(payload),
            None => self.kernel.to_aya_uncounted(),
        }
    }
}

impl std::fmt::Debug for AyaBtfJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AyaBtfJob").finish_non_exhaustive()
    }
}
