//! The loader made on a thread while the tracer is still being built: once the backend and the
//! filter are chosen, nothing the loader needs depends on discovery, which (waiting for the
//! kernel's symbols) ends `build()` last. So the relocated object gets its filter and config,
//! its maps are created, and the programs the session is sure to use are verified meanwhile,
//! instead of at the start of `attach()`.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use pwru_ebpf::PwruConfig;

use super::{FilterBody, Loader, LoaderError, LoaderOptions, RelocationJob, SharedLoad};

/// What the loader is made from.
struct Inputs {
    relocation: RelocationJob,
    filter: FilterBody,
    config: PwruConfig,
    options: LoaderOptions,
    ahead: Vec<SharedLoad<'static>>,
}

impl Inputs {
    /// The loader, with the programs of `ahead` verified (those the kernel refuses are left
    /// for the attach, which loads them again and reports the refusal in its usual place).
    fn make(self) -> Result<Loader, LoaderError> {
        let waited = std::time::Instant::now();
        let relocated = self.relocation.wait()?;
        let waited = waited.elapsed();
        let clock = crate::timings::ThreadClock::start();
        let mut loader = Loader::relocated(relocated, &self.filter, &self.config, &self.options)?;
        let loaded = loader.verify_ahead(&self.ahead);
        clock.log(&format!(
            "loader made ahead ({:.1} ms waiting for the relocation before), {loaded} of {} \
             programs verified",
            waited.as_secs_f64() * 1e3,
            self.ahead.len()
        ));
        Ok(loader)
    }
}

/// [`Loader`] being made on its own thread (see the module docs).
pub(crate) struct LoaderJob {
    /// The inputs, until the thread takes them (kept here if no thread could be started).
    inputs: Arc<Mutex<Option<Inputs>>>,
    running: Option<JoinHandle<Option<Result<Loader, LoaderError>>>>,
}

impl LoaderJob {
    /// Starts making the loader from the relocated object of `relocation` with `filter`,
    /// `config` and `options`, verifying the programs of `ahead`.
    pub(crate) fn start(
        relocation: RelocationJob,
        filter: FilterBody,
        config: PwruConfig,
        options: LoaderOptions,
        ahead: Vec<SharedLoad<'static>>,
    ) -> LoaderJob {
        let inputs = Arc::new(Mutex::new(Some(Inputs {
            relocation,
            filter,
            config,
            options,
            ahead,
        })));
        let for_thread = Arc::clone(&inputs);
        let running = std::thread::Builder::new()
            .name("pwru-load".into())
            .spawn(move || {
                let taken = for_thread.lock().ok()?.take();
                taken.map(Inputs::make)
            })
            .ok();
        LoaderJob { inputs, running }
    }

    /// The loader, waiting for the thread; made here if no thread could be started.
    pub(crate) fn wait(self) -> Result<Loader, LoaderError> {
        if let Some(thread) = self.running {
            match thread.join() {
                Ok(Some(made)) => return made,
                Ok(None) => {}
                // The thread panicked: the same panic here.
                Err(payload) => std::panic::resume_unwind(payload),
            }
        }
        let inputs = self.inputs.lock().ok().and_then(|mut i| i.take());
        match inputs {
            Some(inputs) => inputs.make(),
            None => Err(LoaderError::Prepare {
                program: String::new(),
                reason: "the loader's inputs were lost with its thread".into(),
            }),
        }
    }
}

/// The object as `build()` hands it to `attach()`: being relocated, or (kprobe.multi) already
/// being made into a loader.
pub(crate) enum ObjectJob {
    /// Being parsed and CO-RE relocated; `attach()` makes the loader.
    Relocating(RelocationJob),
    /// Being made into a loader with programs verified ahead.
    Loading(LoaderJob),
}

impl std::fmt::Debug for ObjectJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ObjectJob::Relocating(job) => f.debug_tuple("Relocating").field(job).finish(),
            ObjectJob::Loading(_) => f.write_str("Loading"),
        }
    }
}

impl ObjectJob {
    /// Goes on to make the loader on a thread (see [`LoaderJob::start`]); a job already doing
    /// so is kept as it is.
    pub(crate) fn load_ahead(
        self,
        filter: FilterBody,
        config: PwruConfig,
        options: LoaderOptions,
        ahead: Vec<SharedLoad<'static>>,
    ) -> ObjectJob {
        match self {
            ObjectJob::Relocating(relocation) => {
                ObjectJob::Loading(LoaderJob::start(relocation, filter, config, options, ahead))
            }
            loading => loading,
        }
    }
}
