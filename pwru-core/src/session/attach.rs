//! [`Tracer::attach`]: loads the object, drives the chosen backend's [`Driver`] over the
//! targets (then the programs for functions without an skb argument, the tracking programs
//! and the traced tc/XDP programs) and builds the [`Session`] around the ring buffer.

use std::os::fd::BorrowedFd;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use aya::maps::StackTraceMap;

use super::background::{AttachOutcome, AttachShared, Background, Job};
use super::stats::Probes;
use super::{Session, StatsHandle};
use crate::backend::{hot_first, hot_len, trace_bpf_programs, Attachments, Link, LoaderError};
use crate::error::Error;
use crate::event::{DecodeContext, WallClock};
use crate::netns::InterfaceCache;
use crate::object::{Loader, LoaderOptions, ObjectJob};
use crate::options::Backend;
use crate::stream::readiness::Readiness;
use crate::symbols::{KernelSymbols, SymbolsJob};
use crate::tracer::Tracer;

/// How far [`Tracer::attach_with_progress`] has come; passed to the progress callback.
///
/// ```no_run
/// let tracer = pwru_core::Tracer::builder().build()?;
/// let session = tracer.attach_with_progress(|p: pwru_core::Progress<'_>| {
///     eprint!("\rattaching {}/{} with {} ({})", p.done, p.total, p.backend, p.current)
/// })?;
/// # Ok::<(), pwru_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Progress<'a> {
    /// The backend in use.
    pub backend: Backend,
    /// Targets handled so far (attached or refused).
    pub done: usize,
    /// Targets in all.
    pub total: usize,
    /// The target just handled.
    pub current: &'a str,
}

impl Tracer {
    /// Loads the programs with the filter spliced in and attaches them to every target.
    /// Targets the kernel refuses are counted and listed in [`Session::refused`], never
    /// dropped silently; it fails only if nothing attaches.
    ///
    /// This call blocks (loading, the verifier and one attachment per target: milliseconds
    /// with the tracepoint backend, seconds for thousands of kprobes). Under an async runtime
    /// run it on a blocking thread, as [`TracerBuilder::build`](crate::TracerBuilder::build)
    /// and dropping or [`Session::detach`] (which detach every probe); reading the stream
    /// never blocks. With tokio:
    ///
    /// ```no_run
    /// use futures::StreamExt;
    /// use pwru_core::{Item, Tracer};
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    /// let session = tokio::task::spawn_blocking(|| {
    ///     Tracer::builder().pcap_filter("icmp").build()?.attach()
    /// })
    /// .await??;
    /// let stats = session.stats_handle();
    /// let stopper = session.stop_handle();
    /// let mut stream = session.into_stream(); // owns the session: 'static + Send
    /// let reader = tokio::spawn(async move {
    ///     while let Some(item) = stream.next().await {
    ///         match item {
    ///             Ok(Item::Event(ev)) => println!("{} {:#x}", ev.function, ev.skb),
    ///             Ok(Item::Lost(lost)) => eprintln!("{lost}"),
    ///             Ok(_) => {} // Item may grow
    ///             Err(e) if !e.is_fatal() => eprintln!("{e}"),
    ///             Err(e) => return Err(e),
    ///         }
    ///     }
    ///     Ok(stream) // ended: stopped
    /// });
    /// tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    /// println!("{} records so far", stats.stats().records);
    /// stopper.stop(); // detaches; the stream drains what is left, then ends
    /// let stream = reader.await??;
    /// // Dropping the session releases the programs and maps: blocking too.
    /// tokio::task::spawn_blocking(move || drop(stream)).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn attach(self) -> Result<Session, Error> {
        self.attach_with_progress(|_| {})
    }

    /// [`Tracer::attach`], calling `progress` after each target (or batch of targets).
    ///
    /// ```no_run
    /// let tracer = pwru_core::Tracer::builder().pcap_filter("icmp").build()?;
    /// let session = tracer.attach_with_progress(|p| eprint!("\r{}/{} {}", p.done, p.total, p.backend))?;
    /// eprintln!("\n{} attached, {} refused", session.attached().len(), session.refused().len());
    /// # Ok::<(), pwru_core::Error>(())
    /// ```
    pub fn attach_with_progress(
        self,
        mut progress: impl FnMut(Progress<'_>),
    ) -> Result<Session, Error> {
        self.attach_inner(Mode::Blocking(&mut progress))
    }

    /// Attaches the hot path (the functions most packets cross, see
    /// [`Tracer::targets`]) and returns the session at once, while a background thread
    /// attaches the other targets, then the programs for functions without an skb, map
    /// operations and lifetime programs. Events flow from the first attachment: on kprobe and
    /// fentry, where attaching thousands of functions takes tens of seconds, the first
    /// packets show within moments instead of at the end.
    ///
    /// `progress` is called after each target, first here and then on the attaching thread
    /// (there after each chunk of targets, with the session's probes unlocked, so it may read
    /// [`Session::stats`] through a [`StatsHandle`]).
    /// [`Session::attach_handle`] follows the rest and waits for it;
    /// [`Session::wait_attached`] waits and completes [`Session::attached`] and
    /// [`Session::refused`], which until then list the hot path only. Stopping or dropping
    /// the session stops the attaching thread after its current chunk (a few targets) and
    /// detaches everything. Fails, like [`Tracer::attach`], only when nothing attaches;
    /// with the hot path attached, later refusals are filed in the outcome.
    ///
    /// ```no_run
    /// let tracer = pwru_core::Tracer::builder().pcap_filter("icmp").build()?;
    /// let mut session = tracer.attach_in_background(|p| eprint!("\r{}/{}", p.done, p.total))?;
    /// let handle = session.attach_handle();
    /// std::thread::spawn(move || {
    ///     let o = handle.wait();
    ///     eprintln!("\nall attached: {} ({} refused)", o.attached.len(), o.refused.len());
    /// });
    /// // read session.events() meanwhile
    /// # Ok::<(), pwru_core::Error>(())
    /// ```
    pub fn attach_in_background(
        self,
        progress: impl FnMut(Progress<'_>) + Send + 'static,
    ) -> Result<Session, Error> {
        self.attach_inner(Mode::Background(Box::new(progress)))
    }

    fn attach_inner(mut self, mut mode: Mode<'_>) -> Result<Session, Error> {
        let started = Instant::now();
        let backend = self.driver.backend();
        // Interface names are read before anything is attached: these netlink dumps (one per
        // namespace) would otherwise be traced by a session with no filter.
        let mut interfaces = InterfaceCache::new();
        interfaces.refresh();
        if matches!(backend, Backend::Kprobe | Backend::Fentry) {
            // One fd per function: a failure here shows up below as refusals, with the reason.
            match crate::limits::raise_open_file_limit() {
                Ok(n) => log::debug!("open file limit raised to {n}"),
                Err(e) => log::debug!("cannot raise the open file limit: {e}"),
            }
        }
        let background = matches!(mode, Mode::Background(_));
        // kallsyms (0.4-0.6 s in a TCG guest) is read since build() while the programs load
        // and attach; the programs this session loads are named from their own info
        // afterwards. fentry's trampolines are not: a blocking fentry attach reads the table
        // once it is done. A read that began before a module came or went is read again.
        // kprobe.multi links by address: the job looks the targets up too, off this thread.
        let running_btf = self.running_kernel_btf().cloned();
        let early = self.symbols.take().filter(SymbolsJob::is_current);
        let mut symbols_job = if background || backend != Backend::Fentry {
            let mut job = early.or_else(|| {
                let mut job = SymbolsJob::start()?;
                match running_btf.clone() {
                    Some(btf) => job.use_btf(btf),
                    None => job.no_btf(),
                }
                Some(job)
            });
            if let (Some(job), Backend::KprobeMulti) = (job.as_mut(), backend) {
                job.resolve(self.targets.iter().map(|t| t.name.clone()).collect());
            }
            job
        } else {
            None
        };
        let mut timings = self.timings;
        let phase = Instant::now();
        let mut loader = match self.object {
            ObjectJob::Relocating(job) => {
                let mut relocated = job.wait()?;
                if backend == Backend::Tracepoint {
                    // Auto fell back to tracepoints after build() expected a function backend.
                    relocated = relocated.with_tracepoint_programs(pwru_ebpf::OBJECT)?;
                }
                timings.btf_wait = phase.elapsed();
                Loader::relocated(
                    relocated,
                    &self.filter,
                    &self.config,
                    &LoaderOptions {
                        ring_buf_bytes: self.options.ring_buffer_bytes,
                        attach_threads: self.options.attach_threads,
                    },
                )?
            }
            // Made since build(), its programs verified there: the wait is what is left of it.
            ObjectJob::Loading(job) => job.wait()?,
        };
        let ring = loader.take_events()?;
        let lost = loader.take_lost()?;
        let nesting = loader.take_nesting()?;
        let resolve_stacks = self.options.capture.stack;
        let stacks = if resolve_stacks {
            let map = loader.take_map(pwru_ebpf::MAP_STACKS)?;
            Some(
                StackTraceMap::try_from(map).map_err(|source| LoaderError::Map {
                    name: pwru_ebpf::MAP_STACKS.into(),
                    source: Box::new(source),
                })?,
            )
        } else {
            None
        };

        timings.load = phase.elapsed();
        let phase = Instant::now();
        // Programs verified ahead (since build()) are not part of this phase.
        let verified_before = loader.verify_time();
        timings.verified_ahead = verified_before;
        let total = self.targets.len();
        log::debug!("attaching {total} targets with the {backend} backend");

        let driver = self.driver;
        let mut out = Attachments::default();
        // The hot path first: its events flow while the rest attaches. In the background
        // mode the foreground stops after it (or after the first chunk that attaches
        // anything, when no target is on the hot path).
        // kprobe.multi links by address when the kallsyms table is read (its thread began in
        // build(), and has usually finished by now): the kernel's lookup by name walks every
        // kernel symbol per link.
        let mut symbols_read = None;
        let mut targets = std::borrow::Cow::Borrowed(&self.targets[..]);
        if backend == Backend::KprobeMulti {
            if let Some(job) = symbols_job.take() {
                let waited = Instant::now();
                let resolved = job.wait_resolved();
                timings.symbols_wait = waited.elapsed();
                log::debug!(
                    "waited {:?} for /proc/kallsyms to link kprobe.multi by address",
                    timings.symbols_wait
                );
                symbols_read = Some(resolved.map(|(table, addresses)| {
                    for (t, address) in targets.to_mut().iter_mut().zip(addresses) {
                        t.address = address;
                    }
                    table
                }));
            }
        }
        let ordered = hot_first(&targets);
        let first = if background {
            Background::foreground_len(backend, hot_len(&ordered)).min(ordered.len())
        } else {
            ordered.len()
        };
        let (mut head, mut rest) = ordered.split_at(first);
        let mut base = 0;
        loop {
            let mut note = |done: usize, current: &str| {
                log_progress(backend, base + done, total, current);
                mode.progress(Progress {
                    backend,
                    done: base + done,
                    total,
                    current,
                })
            };
            driver.attach(&mut loader, head, &mut note, &mut out)?;
            base += head.len();
            if !out.attached.is_empty() || rest.is_empty() {
                break;
            }
            let n = Background::chunk_len(backend).min(rest.len());
            (head, rest) = rest.split_at(n);
        }
        if out.attached.is_empty() {
            let refused = &out.refused;
            for r in refused {
                log::debug!("refused {}: {}", r.target, r.reason);
            }
            return Err(Error::NothingAttached {
                refused: refused.len(),
                first: refused
                    .first()
                    .map(|r| format!("{}: {}", r.target, r.reason))
                    .unwrap_or_default(),
            });
        }
        let in_background = !rest.is_empty();
        if !in_background {
            driver.attach_non_skb(&mut loader, &self.non_skb_targets, &mut out);
            if self.options.bpf_map_ops {
                driver.attach_map_ops(&mut loader, &self.map_op_targets, &mut out);
            }
        }

        // Clone/copy following and freeing: whatever is kept per skb address (tracking, stack
        // links, packet ids) must end when the skb is freed, even in runs that do not match
        // the filter, or the next packet at that address inherits it. Packet ids also follow
        // clones and copies (their parent link). Tracepoints choose their lifetime programs
        // from the tracepoints traced, so theirs wait for the whole attach.
        let stack_links = !self.non_skb_targets.is_empty() || !self.map_op_targets.is_empty();
        let packet_ids = self.options.capture.packet_id;
        let follow = self.options.track_skb || packet_ids;
        let mut lifetime_later = None;
        if self.options.track_skb || stack_links || packet_ids {
            if in_background && backend == Backend::Tracepoint {
                lifetime_later = Some(follow);
            } else {
                for (name, r) in driver.lifetime_programs(&mut loader, follow, &out.attached) {
                    match r {
                        Ok(l) => out.links.push(l),
                        Err(e) => out.refuse(name, &e),
                    }
                }
            }
        }

        timings.verify = loader.verify_time().saturating_sub(verified_before);
        timings.attach = phase.elapsed().saturating_sub(timings.verify);
        let phase = Instant::now();
        let mut decode_ctx = DecodeContext::new().with_builtin_tracepoints();
        decode_ctx.set_metadata_names(&self.options.skb_metadata, &self.options.xdp_metadata);
        let symbols = match (symbols_read, symbols_job) {
            (Some(read), _) => read?,
            (None, Some(job)) => job.wait()?,
            (None, None) => KernelSymbols::load_with(running_btf.as_deref())?,
        };
        // The table cannot name what was loaded after its read began: the session's own
        // programs are named from their info, or their frames at the top of each stack would
        // take the nearest older symbol's name and not be trimmed.
        symbols.add_images(images_of(
            loader
                .shared_program_fds()
                .chain(out.links.iter().filter_map(Link::program_fd)),
        ));
        let symbols = Arc::new(symbols);
        decode_ctx = decode_ctx.with_symbols(Arc::clone(&symbols));
        match decode_ctx.load_drop_reasons(&self.btf) {
            Ok(n) => log::debug!("{n} drop reason names from the kernel BTF"),
            Err(e) => log::debug!("no drop reason names ({e}); drop reasons show as numbers"),
        }

        if self.options.trace_tc || self.options.trace_xdp {
            let traced = trace_bpf_programs(
                &mut loader,
                self.options.trace_tc,
                self.options.trace_xdp,
                &mut out,
            );
            for (id, name) in traced {
                decode_ctx.set_bpf_prog(id, &name);
            }
        }
        let Attachments {
            links,
            attached,
            refused,
        } = out;

        decode_ctx.set_interfaces_from(&interfaces);
        let wall_clock = match WallClock::measure() {
            Ok(c) => {
                log::debug!(
                    "wall clock: CLOCK_REALTIME - CLOCK_MONOTONIC = {} ns (+/- {:?})",
                    c.offset_ns(),
                    c.uncertainty()
                );
                decode_ctx = decode_ctx.with_wall_clock(c);
                Some(c)
            }
            Err(e) => {
                log::warn!("cannot read the system clocks ({e}); events carry no wall_time");
                None
            }
        };

        let readiness =
            Readiness::new(std::os::fd::AsFd::as_fd(&ring)).map_err(Error::RingBuffer)?;
        for r in &refused {
            log::debug!("refused {}: {}", r.target, r.reason);
        }
        log::debug!(
            "attached {} targets with the {} backend, {} refused, in {:?}{}",
            attached.len(),
            backend,
            refused.len(),
            started.elapsed(),
            if in_background {
                "; the others attach in the background"
            } else {
                ""
            }
        );
        timings.session = phase.elapsed();
        timings.attach_total = started.elapsed();
        let so_far = AttachOutcome {
            attached: attached.clone(),
            refused: refused.clone(),
            cancelled: 0,
            elapsed: started.elapsed(),
        };
        let attach = if in_background {
            let shared = AttachShared::running(total);
            shared.count(attached.len(), refused.len());
            shared.set_done(base);
            shared
        } else {
            AttachShared::finished(so_far.clone())
        };
        let probes = Arc::new(Mutex::new(Probes {
            links,
            stopped: Vec::new(),
            loader,
        }));
        let stats = StatsHandle {
            counters: Arc::default(),
            check_mismatches: Arc::default(),
            lost: Arc::new(lost),
            nesting: Arc::new(nesting),
            probes: Arc::downgrade(&probes),
            attach: Arc::clone(&attach),
        };
        let background = if in_background {
            let progress = match mode {
                Mode::Background(p) => p,
                Mode::Blocking(_) => Box::new(|_: Progress<'_>| {}),
            };
            Background::start(Job {
                driver,
                rest: rest.to_vec(),
                non_skb: self.non_skb_targets.clone(),
                map_ops: if self.options.bpf_map_ops {
                    self.map_op_targets.clone()
                } else {
                    Vec::new()
                },
                lifetime: lifetime_later,
                before: so_far,
                started,
                probes: Arc::clone(&probes),
                shared: Arc::clone(&attach),
                symbols: Arc::clone(&symbols),
                running_btf: running_btf.clone(),
                progress,
            })
        } else {
            Background::default()
        };
        Ok(Session {
            background,
            attach,
            readiness,
            probes,
            ring,
            stacks,
            decode_ctx,
            interfaces,
            symbols,
            stats,
            stop_requested: Arc::default(),
            backend,
            attached,
            refused,
            attach_time: started.elapsed(),
            timings,
            resolve_stacks,
            wall_clock,
        })
    }
}

/// How [`Tracer::attach_inner`] reports progress and whether it hands the rest to a thread.
enum Mode<'p> {
    /// Everything attached before returning.
    Blocking(&'p mut dyn FnMut(Progress<'_>)),
    /// The hot path attached before returning, the rest on a thread.
    Background(Box<dyn FnMut(Progress<'_>) + Send>),
}

impl Mode<'_> {
    fn progress(&mut self, p: Progress<'_>) {
        match self {
            Mode::Blocking(f) => f(p),
            Mode::Background(f) => f(p),
        }
    }
}

/// The attach progress at debug level, or at trace level for most of the per-function steps
/// (fentry and kprobes can have thousands).
pub(super) fn log_progress(backend: Backend, done: usize, total: usize, current: &str) {
    if done == total || done.is_multiple_of(64) || matches!(backend, Backend::Tracepoint) {
        log::debug!("attach progress: {done}/{total} ({current})");
    } else {
        log::trace!("attach progress: {done}/{total} ({current})");
    }
}

/// Names of the JIT images of the programs behind `fds` (each program once), as
/// [`KernelSymbols::add_images`] takes them.
fn images_of<'a>(fds: impl Iterator<Item = BorrowedFd<'a>>) -> Vec<(u64, u64, String)> {
    let mut seen = std::collections::HashSet::new();
    let mut images = Vec::new();
    for fd in fds {
        match crate::sys::prog_images(fd) {
            Ok(p) if seen.insert(p.id) => {
                let name = p.name;
                images.extend(p.ranges.into_iter().map(|(a, l)| (a, l, name.clone())));
            }
            Ok(_) => {}
            Err(e) => log::debug!("no JIT image addresses for a program: {e}"),
        }
    }
    images
}

/// [`images_of`] every program of `probes`.
pub(super) fn own_images(probes: &Probes) -> Vec<(u64, u64, String)> {
    images_of(
        probes
            .loader
            .shared_program_fds()
            .chain(probes.links.iter().filter_map(Link::program_fd)),
    )
}
