//! [`Tracer::attach`]: loads the object, drives the chosen backend's [`Driver`] over the
//! targets (then the programs for functions without an skb argument, the tracking programs
//! and the traced tc/XDP programs) and builds the [`Session`] around the ring buffer.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use aya::maps::StackTraceMap;

use super::stats::Probes;
use super::{Session, StatsHandle};
use crate::backend::{hot_first, trace_bpf_programs, Attachments, LoaderError};
use crate::error::Error;
use crate::event::{DecodeContext, WallClock};
use crate::netns::InterfaceCache;
use crate::object::{Loader, LoaderOptions};
use crate::options::Backend;
use crate::stream::readiness::Readiness;
use crate::symbols::KernelSymbols;
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
        let mut timings = self.timings;
        let phase = Instant::now();
        let aya_btf = self.aya_btf.wait().map_err(LoaderError::from)?;
        let mut loader = Loader::with_aya_btf(
            pwru_ebpf::OBJECT,
            &self.filter,
            &self.config,
            &LoaderOptions {
                ring_buf_bytes: self.options.ring_buffer_bytes,
                attach_threads: self.options.attach_threads,
            },
            aya_btf,
        )?;
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
        let total = self.targets.len();
        log::debug!("attaching {total} targets with the {backend} backend");
        let mut note = |done: usize, current: &str| {
            // Per-target lines only at trace level: fentry/kprobe can have thousands.
            if done == total || done.is_multiple_of(64) || matches!(backend, Backend::Tracepoint) {
                log::debug!("attach progress: {done}/{total} ({current})");
            } else {
                log::trace!("attach progress: {done}/{total} ({current})");
            }
            progress(Progress {
                backend,
                done,
                total,
                current,
            })
        };

        let driver = self.driver;
        let mut out = Attachments::default();
        // The hot path first: its events flow while the rest attaches.
        let ordered = hot_first(&self.targets);
        driver.attach(&mut loader, &ordered, &mut note, &mut out)?;
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

        driver.attach_non_skb(&mut loader, &self.non_skb_targets, &mut out);
        if self.options.bpf_map_ops {
            driver.attach_map_ops(&mut loader, &self.map_op_targets, &mut out);
        }

        // Clone/copy following and freeing: whatever is kept per skb address (tracking, stack
        // links, packet ids) must end when the skb is freed, even in runs that do not match
        // the filter, or the next packet at that address inherits it. Packet ids also follow
        // clones and copies (their parent link).
        let stack_links = !self.non_skb_targets.is_empty() || !self.map_op_targets.is_empty();
        let packet_ids = self.options.capture.packet_id;
        if self.options.track_skb || stack_links || packet_ids {
            let follow = self.options.track_skb || packet_ids;
            for (name, r) in driver.lifetime_programs(&mut loader, follow, &out.attached) {
                match r {
                    Ok(l) => out.links.push(l),
                    Err(e) => out.refuse(name, &e),
                }
            }
        }

        let verify = loader.verify_time();
        timings.verify = verify;
        timings.attach = phase.elapsed().saturating_sub(verify);
        let phase = Instant::now();
        let mut decode_ctx = DecodeContext::new().with_builtin_tracepoints();
        decode_ctx.set_metadata_names(&self.options.skb_metadata, &self.options.xdp_metadata);
        // Read once every program is loaded, not earlier on another thread: the table must
        // name this session's own programs (`bpf_prog_*`, `bpf_trampoline_*`), or their frames
        // at the top of each stack resolve to the nearest older symbol and are not trimmed
        // (seen as `bpf_dispatcher_xdp` in tracer_events).
        let symbols = Arc::new(KernelSymbols::load()?);
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
            "attached {} targets with the {} backend, {} refused, in {:?}",
            attached.len(),
            backend,
            refused.len(),
            started.elapsed()
        );
        timings.session = phase.elapsed();
        timings.attach_total = started.elapsed();
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
            attached: attached.len(),
            refused: refused.len(),
        };
        Ok(Session {
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
