//! Attaching on a background thread ([`Tracer::attach_in_background`](crate::Tracer::attach_in_background)):
//! the session is handed out once the hot path is attached, so its events flow while this
//! thread attaches the rest in small chunks. Between chunks it lets go of the probes, so
//! statistics can be read, and looks for a stop, so Ctrl-C waits for one chunk at most.
//!
//! Names: the programs the thread loads are added to the session's symbol table when it is
//! done, and on fentry the table is read again then, for the trampolines. Until that point a
//! stack frame in a trampoline made by the thread takes the name of the symbol before it,
//! normally another BPF image, so it is still trimmed as a dispatch frame.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::attach::Progress;
use super::stats::{lock, Probes};
use crate::backend::{Attachments, Driver, Target};
use crate::discovery::map_ops::MapOpTarget;
use crate::options::Backend;
use crate::symbols::KernelSymbols;
use crate::tracer::Refusal;

/// What attaching ended with, once every target was tried (or the session stopped first).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct AttachOutcome {
    /// Every target attached, the hot path first.
    pub attached: Vec<String>,
    /// Every target refused, with the kernel's reason.
    pub refused: Vec<Refusal>,
    /// Targets never tried because the session was stopped while attaching.
    pub cancelled: usize,
    /// From the start of attaching to the last attachment.
    pub elapsed: Duration,
}

/// State shared by the session, its handles and the attaching thread.
#[derive(Debug, Default)]
pub(super) struct AttachShared {
    /// Raised by a stop: the thread attaches nothing more.
    cancel: AtomicBool,
    /// Targets handled so far (attached or refused), hot path included.
    done: AtomicUsize,
    /// Targets in all.
    total: usize,
    attached: AtomicUsize,
    refused: AtomicUsize,
    outcome: Mutex<Option<AttachOutcome>>,
    finished: Condvar,
}

impl AttachShared {
    /// State of an attach of `total` targets that is still going on.
    pub(super) fn running(total: usize) -> Arc<AttachShared> {
        Arc::new(AttachShared {
            total,
            ..AttachShared::default()
        })
    }

    /// State of an attach that is over (the blocking [`Tracer::attach`](crate::Tracer::attach)).
    pub(super) fn finished(outcome: AttachOutcome) -> Arc<AttachShared> {
        let shared = AttachShared::running(outcome.attached.len() + outcome.refused.len());
        shared.count(outcome.attached.len(), outcome.refused.len());
        shared.done.store(shared.total, Ordering::SeqCst);
        *lock(&shared.outcome) = Some(outcome);
        shared
    }

    pub(super) fn count(&self, attached: usize, refused: usize) {
        self.attached.fetch_add(attached, Ordering::SeqCst);
        self.refused.fetch_add(refused, Ordering::SeqCst);
    }

    pub(super) fn set_done(&self, done: usize) {
        self.done.store(done, Ordering::SeqCst);
    }

    pub(super) fn attached(&self) -> usize {
        self.attached.load(Ordering::SeqCst)
    }

    pub(super) fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }

    fn finish(&self, outcome: AttachOutcome) {
        *lock(&self.outcome) = Some(outcome);
        self.finished.notify_all();
    }

    fn wait(&self) -> AttachOutcome {
        let mut o = lock(&self.outcome);
        loop {
            if let Some(done) = o.as_ref() {
                return done.clone();
            }
            o = self.finished.wait(o).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// Follows an attach from any thread: how far it is, and its outcome once it is over. See
/// [`Session::attach_handle`](crate::Session::attach_handle).
#[derive(Debug, Clone)]
pub struct AttachHandle {
    pub(super) shared: Arc<AttachShared>,
}

impl AttachHandle {
    /// Whether every target was tried (or the session stopped first).
    pub fn is_finished(&self) -> bool {
        lock(&self.shared.outcome).is_some()
    }

    /// Targets handled so far (attached or refused) and targets in all.
    pub fn progress(&self) -> (usize, usize) {
        (self.shared.done.load(Ordering::SeqCst), self.shared.total)
    }

    /// Blocks until attaching is over and returns how it ended. Returns at once for a session
    /// made by [`Tracer::attach`](crate::Tracer::attach); a stopped or dropped session ends it
    /// too (the targets not tried are [`AttachOutcome::cancelled`]).
    pub fn wait(&self) -> AttachOutcome {
        self.shared.wait()
    }

    /// [`AttachHandle::wait`] for at most `timeout`; `None` if attaching is still going on.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<AttachOutcome> {
        let deadline = Instant::now() + timeout;
        let mut o = lock(&self.shared.outcome);
        loop {
            if let Some(done) = o.as_ref() {
                return Some(done.clone());
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            o = self
                .shared
                .finished
                .wait_timeout(o, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }
}

/// Everything the attaching thread needs.
pub(super) struct Job {
    pub(super) driver: &'static dyn Driver,
    pub(super) rest: Vec<Target>,
    pub(super) non_skb: Vec<String>,
    pub(super) map_ops: Vec<MapOpTarget>,
    /// Lifetime programs still to attach (tracepoints decide them from what is traced):
    /// `Some(follow clones)`.
    pub(super) lifetime: Option<bool>,
    /// What the foreground attached and refused.
    pub(super) before: AttachOutcome,
    pub(super) started: Instant,
    pub(super) probes: Arc<Mutex<Probes>>,
    pub(super) shared: Arc<AttachShared>,
    pub(super) symbols: Arc<KernelSymbols>,
    /// The running kernel's BTF, to read the symbols again through the ksym iterator.
    pub(super) running_btf: Option<Arc<crate::btf::Btf>>,
    pub(super) progress: Box<dyn FnMut(Progress<'_>) + Send>,
}

/// The attaching thread of a session: stopped and joined before the probes go.
#[derive(Debug, Default)]
pub(super) struct Background {
    thread: Option<JoinHandle<()>>,
    shared: Option<Arc<AttachShared>>,
}

impl Background {
    /// Starts `job` on its own thread; runs it here if no thread can be started.
    pub(super) fn start(job: Job) -> Background {
        let shared = Arc::clone(&job.shared);
        let slot = Arc::new(Mutex::new(Some(job)));
        let for_thread = Arc::clone(&slot);
        let thread = std::thread::Builder::new()
            .name("pwru-attach".into())
            .spawn(move || {
                if let Some(j) = lock(&for_thread).take() {
                    run(j);
                }
            });
        let thread = match thread {
            Ok(t) => Some(t),
            Err(e) => {
                log::warn!("cannot start the attaching thread ({e}); attaching here");
                if let Some(j) = lock(&slot).take() {
                    run(j);
                }
                None
            }
        };
        Background {
            thread,
            shared: Some(shared),
        }
    }

    /// Targets per chunk: what a stop may wait for. kprobe.multi attaches a position's
    /// functions in one link (about a second for a thousand under QEMU), so its rest is one
    /// chunk.
    pub(super) fn chunk_len(backend: Backend) -> usize {
        match backend {
            Backend::KprobeMulti => usize::MAX,
            Backend::Fentry => 8,
            _ => 16,
        }
    }

    /// How many targets are attached before the session is handed out, of `hot` on the hot
    /// path: a few of its first functions (where most packets enter) when each costs a
    /// kprobe registration or a verifier run and trampoline, all of it for kprobe.multi
    /// (one link whatever the count); at least one.
    pub(super) fn foreground_len(backend: Backend, hot: usize) -> usize {
        match backend {
            Backend::KprobeMulti => hot.max(1),
            _ => hot.clamp(1, 4),
        }
    }

    /// Asks the thread to attach nothing more and waits for it (at most one chunk).
    pub(super) fn stop(&mut self) {
        if let Some(s) = &self.shared {
            s.cancel.store(true, Ordering::SeqCst);
        }
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                log::warn!("the attaching thread panicked");
            }
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The attaching thread: the rest of the targets chunk by chunk, then the programs of
/// functions without an skb, map operations and lifetime programs, then the names of the
/// programs and trampolines it made. Always ends by publishing an outcome.
fn run(job: Job) {
    let Job {
        driver,
        rest,
        non_skb,
        map_ops,
        lifetime,
        before,
        started,
        probes,
        shared,
        symbols,
        running_btf,
        mut progress,
    } = job;
    let mut outcome = before;
    let backend = driver.backend();
    let total = shared.total;
    let cancelled = || shared.cancel.load(Ordering::SeqCst);
    let mut base = shared.done.load(Ordering::SeqCst);
    let mut chunks = rest.chunks(Background::chunk_len(backend).max(1));
    for chunk in chunks.by_ref() {
        if cancelled() {
            outcome.cancelled += chunk.len();
            continue;
        }
        let mut out = Attachments::default();
        // The caller's callback runs once the probes are unlocked again (after the chunk):
        // it may read the session's statistics, which lock them.
        let mut steps = Vec::new();
        {
            let mut p = lock(&probes);
            attach_chunk(driver, &mut p, chunk, &mut out, &mut |done, current| {
                shared.done.store(base + done, Ordering::SeqCst);
                super::attach::log_progress(backend, base + done, total, current);
                steps.push((base + done, current.to_string()));
            });
            p.links.append(&mut out.links);
        }
        shared.count(out.attached.len(), out.refused.len());
        base += chunk.len();
        shared.done.store(base, Ordering::SeqCst);
        for (done, current) in &steps {
            progress(Progress {
                backend,
                done: *done,
                total,
                current,
            });
        }
        outcome.attached.append(&mut out.attached);
        outcome.refused.append(&mut out.refused);
    }
    if !cancelled() {
        let mut out = Attachments::default();
        let mut p = lock(&probes);
        let loader = &mut p.loader;
        driver.attach_non_skb(loader, &non_skb, &mut out);
        driver.attach_map_ops(loader, &map_ops, &mut out);
        if let Some(follow) = lifetime {
            let mut traced = outcome.attached.clone();
            traced.extend(out.attached.iter().cloned());
            for (name, r) in driver.lifetime_programs(loader, follow, &traced) {
                match r {
                    Ok(l) => out.links.push(l),
                    Err(e) => out.refuse(name, &e),
                }
            }
        }
        p.links.append(&mut out.links);
        // The programs loaded here and, for fentry, the trampolines made for them: named
        // now, so the frames they add at the top of stacks are trimmed.
        symbols.add_images(super::attach::own_images(&p));
        drop(p);
        if backend == Backend::Fentry {
            match KernelSymbols::load_with(running_btf.as_deref()) {
                Ok(newer) => symbols.replace_with(newer),
                Err(e) => log::debug!("kernel symbols not read again after attaching: {e}"),
            }
        }
        shared.count(out.attached.len(), out.refused.len());
        outcome.attached.append(&mut out.attached);
        outcome.refused.append(&mut out.refused);
    }
    outcome.elapsed = started.elapsed();
    log::debug!(
        "attached {} targets with the {backend} backend, {} refused, {} cancelled, in {:?}",
        outcome.attached.len(),
        outcome.refused.len(),
        outcome.cancelled,
        outcome.elapsed
    );
    shared.finish(outcome);
}

/// [`Driver::attach`] over `chunk`, each target filed exactly once. A fatal error is the
/// program refused: for fentry (one program per function) it concerns the first target not
/// yet handled, and the others are tried again; for the other backends (one program per
/// argument position) every target left shares it.
fn attach_chunk(
    driver: &dyn Driver,
    probes: &mut Probes,
    chunk: &[Target],
    out: &mut Attachments,
    note: &mut dyn FnMut(usize, &str),
) {
    let mut from = 0;
    while from < chunk.len() {
        let before = out.attached.len() + out.refused.len();
        let part = &chunk[from..];
        let mut inner = |done: usize, current: &str| note(from + done, current);
        let result = driver.attach(&mut probes.loader, part, &mut inner, out);
        let handled = out.attached.len() + out.refused.len() - before;
        let Err(e) = result else {
            break;
        };
        let left = part.get(handled..).unwrap_or_default();
        if driver.backend() == Backend::Fentry {
            if let Some(first) = left.first() {
                out.refuse(first.name.clone(), &e);
            }
            from += handled + 1;
        } else {
            out.refuse_all(left.iter().map(|t| t.name.as_str()), &e);
            break;
        }
    }
}
