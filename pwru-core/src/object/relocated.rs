//! The part of preparing the object that depends only on the object and the kernel: aya's
//! parse of the kernel BTF, the object's parse and its CO-RE relocation. It is most of what
//! loading the object costs (its relocation scans the kernel's types once per local type:
//! about 0.3 s in a TCG guest), and it needs nothing a session chooses, so `build()` starts it
//! on a thread ([`RelocationJob`]) where it overlaps the backend probes and discovery, and
//! `attach()` waits for it. The session's own parts (filter, config, maps) come after
//! (prepared.rs). The filter stub is the last function of `.text` and is replaced after the
//! relocation, so no relocation is ever looked up in a spliced body.

use std::sync::Arc;
use std::thread::JoinHandle;

use aya_obj::Object;

use super::prepared::{count_object_parse, prepare_error};
use super::LoaderError;
use crate::btf::Btf;

/// The object parsed and CO-RE relocated against the kernel BTF, with that BTF (the loader
/// looks attach ids up in it) and aya's trimmed copy (to relocate the object again whole).
pub(crate) struct Relocated {
    pub(super) obj: Object,
    pub(super) kernel: Arc<Btf>,
    btf: aya::Btf,
    /// The tracepoint programs' CO-RE records were left out (core_relos.rs): they must not
    /// be loaded from this object.
    tracepoints_unrelocated: bool,
}

impl Relocated {
    /// Parses `object` and relocates it against `btf`. Counts no parse: the caller does, on
    /// the thread that asked for it.
    fn new_uncounted(
        object: &[u8],
        kernel: Arc<Btf>,
        btf: aya::Btf,
        tracepoints_unrelocated: bool,
    ) -> Result<Relocated, LoaderError> {
        let clock = crate::timings::ThreadClock::start();
        let mut obj = Object::parse(object).map_err(prepare_error)?;
        clock.log("object parsed");
        let clock = crate::timings::ThreadClock::start();
        obj.relocate_btf(&btf).map_err(prepare_error)?;
        clock.log("object CO-RE relocated");
        Ok(Relocated {
            obj,
            kernel,
            btf,
            tracepoints_unrelocated,
        })
    }

    /// Parses `object` (counted as this thread's one parse) and relocates it against
    /// `kernel` (parsed by aya, counted too).
    pub(crate) fn new(object: &[u8], kernel: Arc<Btf>) -> Result<Relocated, LoaderError> {
        crate::btf::count_aya_parse();
        count_object_parse();
        let btf = kernel.to_aya_for_relocation(object)?;
        Self::new_uncounted(object, kernel, btf, false)
    }

    /// Whether programs of the tracepoint backend can be loaded from this object.
    pub(crate) fn has_tracepoint_programs(&self) -> bool {
        !self.tracepoints_unrelocated
    }

    /// This object relocated whole again if its tracepoint programs were left out: for a
    /// tracer that expected a function backend and fell back to tracepoints.
    pub(crate) fn with_tracepoint_programs(self, object: &[u8]) -> Result<Relocated, LoaderError> {
        if self.has_tracepoint_programs() {
            return Ok(self);
        }
        count_object_parse();
        Self::new_uncounted(object, self.kernel, self.btf, false)
    }
}

/// [`Relocated`] being made on its own thread, from a kernel BTF already parsed by this
/// crate. The parses it makes (aya's of the BTF, the object's) count on the thread that
/// started it, as if made there. Started for a function backend, it leaves the tracepoint
/// programs unrelocated.
pub(crate) struct RelocationJob {
    kernel: Arc<Btf>,
    object: &'static [u8],
    function_backend: bool,
    running: Option<JoinHandle<Result<Relocated, LoaderError>>>,
}

impl RelocationJob {
    /// Starts parsing `kernel` for aya and relocating `object` against it, all of it unless
    /// `function_backend` (the tracer expects kprobes or fentry, whose sessions load no
    /// tracepoint program).
    pub(crate) fn start(
        kernel: &Arc<Btf>,
        object: &'static [u8],
        function_backend: bool,
    ) -> RelocationJob {
        crate::btf::count_aya_parse();
        count_object_parse();
        let for_thread = Arc::clone(kernel);
        let running = std::thread::Builder::new()
            .name("pwru-relocate".into())
            .spawn(move || relocate(for_thread, object, function_backend))
            .ok();
        RelocationJob {
            kernel: Arc::clone(kernel),
            object,
            function_backend,
            running,
        }
    }

    /// The relocated object, waiting for the thread; made here if no thread could be started.
    pub(crate) fn wait(self) -> Result<Relocated, LoaderError> {
        match self.running.map(JoinHandle::join) {
            Some(Ok(relocated)) => relocated,
            // The thread panicked: the same panic here.
            Some(Err(payload)) => std::panic::resume_unwind(payload),
            None => relocate(self.kernel, self.object, self.function_backend),
        }
    }
}

fn relocate(
    kernel: Arc<Btf>,
    object: &[u8],
    function_backend: bool,
) -> Result<Relocated, LoaderError> {
    let clock = crate::timings::ThreadClock::start();
    let btf = kernel.to_aya_for_relocation(object)?;
    clock.log("kernel BTF parsed by aya");
    let trimmed = function_backend
        .then(|| super::core_relos::without(object, super::core_relos::is_tracepoint_section))
        .flatten();
    match trimmed {
        Some(bytes) => Relocated::new_uncounted(&bytes, kernel, btf, true),
        None => Relocated::new_uncounted(object, kernel, btf, false),
    }
}

impl std::fmt::Debug for RelocationJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelocationJob").finish_non_exhaustive()
    }
}

/// What a relocation job does, for the `relocation` benchmark: aya's parse of `kernel` (the
/// part CO-RE can reach when `trimmed`, else all of it), the object's parse and its CO-RE
/// relocation, the tracepoint programs' records left out.
#[doc(hidden)]
#[cfg(feature = "unstable")]
pub fn relocate_for_bench(kernel: &Btf, trimmed: bool) -> Result<(), LoaderError> {
    let object =
        super::core_relos::without(pwru_ebpf::OBJECT, super::core_relos::is_tracepoint_section)
            .ok_or_else(|| prepare_error("the object's CO-RE records could not be rewritten"))?;
    let btf = if trimmed {
        kernel.to_aya_for_relocation(&object)?
    } else {
        kernel.to_aya_uncounted()?
    };
    let mut obj = Object::parse(&object).map_err(prepare_error)?;
    obj.relocate_btf(&btf).map_err(prepare_error)
}
