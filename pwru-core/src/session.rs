//! [`Session`]: attached probes, the event stream, statistics. Dropping it detaches everything.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use aya::maps::{MapData, RingBuf, StackTraceMap};
use futures::Stream;

use crate::backend::{trace_bpf_programs, Attachments, Link, LoaderError};
use crate::error::Error;
use crate::event::{decode, DecodeContext, DecodeError, Event, WallClock};
use crate::netns::InterfaceCache;
use crate::object::{Loader, LoaderOptions, LostCounter};
use crate::options::Backend;
use crate::stream::readiness::Readiness;
use crate::stream::RecordStream;
use crate::symbols::{is_dispatch_frame, trim_dispatch_frames, KernelSymbols};
use crate::tracer::{Refusal, Tracer};

mod owned;

use owned::{lock, Probes};
pub use owned::{EventStream, Item, LostEvents, StatsHandle, StopHandle};

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

/// Runs of the kernel's event programs by how each ended, summed over all CPUs. Every run
/// that the kernel let start is counted under exactly one outcome (see
/// [`pwru_ebpf::outcome`]), so [`RunOutcomes::total`] equals the kernel's own run count of
/// the programs ([`Stats::kernel_runs`]) when BPF statistics were on from their load.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunOutcomes {
    /// Records written to the ring buffer.
    pub emitted: u64,
    /// Records built but lost because the ring buffer was full (same as [`Stats::lost`]).
    pub ring_full: u64,
    /// Runs whose skb (or `xdp_buff`) argument was NULL.
    pub null_skb: u64,
    /// Packets left out by the network namespace filter.
    pub filtered_netns: u64,
    /// Packets left out by the mark filter.
    pub filtered_mark: u64,
    /// Packets left out by the interface filter.
    pub filtered_ifindex: u64,
    /// Packets left out by the pcap expression.
    pub filtered_pcap: u64,
    /// Packets left out by the tunnel (inner header) pcap expression.
    pub filtered_tunnel: u64,
    /// Runs nested deeper than the per-CPU scratch slots allow (process context, softirq,
    /// hardirq and NMI each have one): no record was built.
    pub nested_too_deep: u64,
    /// Runs that found no per-CPU scratch or depth slot (a map lookup failed; not expected).
    pub no_scratch: u64,
    /// Runs in functions without an skb argument whose stack had no skb remembered.
    pub no_stack_skb: u64,
}

impl RunOutcomes {
    fn from_counts(c: &[u64; pwru_ebpf::outcome::COUNT as usize]) -> Self {
        use pwru_ebpf::outcome as o;
        let at = |i: u32| c.get(i as usize).copied().unwrap_or(0);
        RunOutcomes {
            emitted: at(o::EMITTED),
            ring_full: at(o::RING_FULL),
            null_skb: at(o::NULL_SKB),
            filtered_netns: at(o::FILTER_NETNS),
            filtered_mark: at(o::FILTER_MARK),
            filtered_ifindex: at(o::FILTER_IFINDEX),
            filtered_pcap: at(o::FILTER_PCAP),
            filtered_tunnel: at(o::FILTER_TUNNEL),
            nested_too_deep: at(o::NESTED_TOO_DEEP),
            no_scratch: at(o::NO_SCRATCH),
            no_stack_skb: at(o::NO_STACK_SKB),
        }
    }

    /// Runs left out by a filter (netns, mark, interface, pcap, tunnel).
    pub fn filtered(&self) -> u64 {
        self.filtered_netns
            + self.filtered_mark
            + self.filtered_ifindex
            + self.filtered_pcap
            + self.filtered_tunnel
    }

    /// Runs that built a record: written ([`emitted`](Self::emitted)) or lost to a full ring
    /// buffer ([`ring_full`](Self::ring_full)).
    pub fn produced(&self) -> u64 {
        self.emitted + self.ring_full
    }

    /// Every run counted, whatever its outcome.
    pub fn total(&self) -> u64 {
        self.produced()
            + self.null_skb
            + self.filtered()
            + self.nested_too_deep
            + self.no_scratch
            + self.no_stack_skb
    }
}

/// Counters of a running session.
///
/// Records the user never sees are [`Stats::total_lost`]: the ones lost to a full ring
/// buffer ([`Stats::lost`]) and the runs the kernel skipped ([`Stats::recursion_misses`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Records read from the ring buffer.
    pub records: u64,
    /// Records the kernel could not write because the ring buffer was full.
    pub lost: u64,
    /// Records that failed to decode (check-word mismatches included).
    pub decode_errors: u64,
    /// Records whose check word did not match their contents (also in
    /// [`decode_errors`](Self::decode_errors)): records mixed from two program runs or
    /// otherwise damaged, dropped instead of shown.
    pub check_mismatches: u64,
    /// Targets attached.
    pub attached: usize,
    /// Targets refused by the kernel.
    pub refused: usize,
    /// Runs of the event programs by outcome, counted by the programs themselves.
    pub runs: RunOutcomes,
    /// Runs of the event programs counted by the kernel (`run_cnt` of `bpf_prog_info`,
    /// summed). The kernel counts only while BPF statistics are on (`sysctl
    /// kernel.bpf_stats_enabled=1`, or an fd from [`crate::backend::enable_stats`]); with them
    /// on from before [`Tracer::attach`], it equals [`RunOutcomes::total`].
    pub kernel_runs: u64,
    /// Runs the kernel skipped because a BPF program was already running on that CPU
    /// (`recursion_misses` of `bpf_prog_info`, summed over the event programs; counted
    /// always). kprobe and kprobe.multi programs never nest: a packet function hit from a
    /// softirq that interrupted one of our runs is skipped and counted here. Those packets'
    /// events are lost without reaching the ring buffer.
    pub recursion_misses: u64,
    /// Runs that built their record while another run on the same CPU was building one
    /// (a softirq interrupting a run in process context, a tracepoint or fentry program
    /// inside another). Each nesting level has its own scratch slot, so these records are
    /// whole; the count shows that the case happened. Not an outcome (these runs are also
    /// counted in [`RunOutcomes`]).
    pub nested_runs: u64,
}

impl Stats {
    /// Everything the tracer failed to show: records lost to a full ring buffer plus runs the
    /// kernel skipped ([`lost`](Self::lost) + [`recursion_misses`](Self::recursion_misses)).
    /// This is the "lost" of a summary line.
    pub fn total_lost(&self) -> u64 {
        self.lost.saturating_add(self.recursion_misses)
    }
}

/// Attached probes and their ring buffer. Drop it to detach everything (every attachment is an
/// fd-based link, so a process killed with SIGKILL leaves nothing behind either).
pub struct Session {
    // Field order is drop order: stop the waker thread, then the links, then maps/programs.
    readiness: Readiness,
    /// The only strong reference: [`StatsHandle`]s hold a `Weak` one, so dropping the session
    /// detaches everything whatever handles are left.
    probes: Arc<Mutex<Probes>>,
    ring: RingBuf<MapData>,
    stacks: Option<StackTraceMap<MapData>>,
    decode_ctx: DecodeContext,
    interfaces: InterfaceCache,
    symbols: Arc<KernelSymbols>,
    /// Counters shared with [`StatsHandle`]s.
    stats: StatsHandle,
    /// Raised by a [`StopHandle`].
    stop_requested: Arc<AtomicBool>,
    backend: Backend,
    attached: Vec<String>,
    refused: Vec<Refusal>,
    attach_time: Duration,
    resolve_stacks: bool,
    wall_clock: Option<WallClock>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("backend", &self.backend)
            .field("attached", &self.attached.len())
            .field("refused", &self.refused.len())
            .finish_non_exhaustive()
    }
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
        let mut loader = Loader::with_kernel_btf(
            pwru_ebpf::OBJECT,
            &self.filter,
            &self.config,
            &LoaderOptions {
                ring_buf_bytes: self.options.ring_buffer_bytes,
            },
            &self.btf,
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
        driver.attach(&mut loader, &self.targets, &mut note, &mut out)?;
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

        // Clone/copy tracking and freeing (tracepoint kernels need none: the kfree_skb and
        // consume_skb programs forget, and head tracking follows clones). Stack links of
        // freed skbs are dropped at kfree_skbmem too.
        let stack_links = !self.non_skb_targets.is_empty();
        if self.options.track_skb || stack_links {
            for (name, r) in driver.lifetime_programs(&mut loader, self.options.track_skb) {
                match r {
                    Ok(l) => out.links.push(l),
                    Err(e) => out.refuse(name, &e),
                }
            }
        }

        let mut decode_ctx = DecodeContext::new().with_builtin_tracepoints();
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
            resolve_stacks,
            wall_clock,
        })
    }
}

impl Session {
    /// The stream of events. Each item is an [`Event`], or an error: lost-event reports
    /// ([`Error::EventsLost`]) and corrupt records ([`Error::Decode`]) are not fatal (see
    /// [`Error::is_fatal`]); the stream goes on after them. Works under any executor. It
    /// borrows the session; [`Session::into_stream`] is the owned stream (whose items are
    /// [`Item`]s, losses as their own variant). A [`StopHandle::stop`] ends either stream
    /// once it has drained the ring.
    ///
    /// A record the kernel commits is delivered without waiting for another one: the reader
    /// sleeps on epoll and, should a kernel notification go missing, a backstop wakes it within
    /// 250 ms (counted in [`Session::backstop_wakeups`]).
    ///
    /// Interface names: the names of every namespace are read once, before anything is
    /// attached. An event from an interface not known then makes the stream read that
    /// namespace's interfaces (one netlink dump, which a session with no filter traces like
    /// any other skb), within the [`CacheLimits`](crate::netns::CacheLimits): at most once a
    /// second per namespace, 32 at once and 10 a second over all namespaces, and not again for
    /// 10 s for a pair the dump did not list. So pwru-core's own lookups stay a few events per
    /// new namespace, not per event; an event whose lookup was skipped carries no name.
    ///
    /// ```no_run
    /// use futures::StreamExt;
    /// let mut session = pwru_core::Tracer::builder().pcap_filter("icmp").build()?.attach()?;
    /// for item in futures::executor::block_on_stream(session.events()).take(10) {
    ///     match item {
    ///         Ok(ev) => println!("{} {:#x}", ev.function, ev.skb),
    ///         Err(e) if !e.is_fatal() => eprintln!("{e}"),
    ///         Err(e) => return Err(e),
    ///     }
    /// }
    /// # Ok::<(), pwru_core::Error>(())
    /// ```
    pub fn events(&mut self) -> Events<'_> {
        Events {
            session: self,
            since_lost_check: 0,
        }
    }

    /// The stream owning the session: `'static` and `Send`, so it can be moved into
    /// `tokio::spawn` on its own. Items are [`Item`]s: events and loss notices
    /// ([`Item::Lost`]); errors are corrupt records ([`Error::Decode`], not fatal) and a
    /// failing ring buffer wait (fatal). Take a [`Session::stats_handle`] and a
    /// [`Session::stop_handle`] first to read counters and to end the stream from elsewhere;
    /// dropping the stream drops the session (and detaches everything).
    ///
    /// [`Session::events`] is the borrowing stream and keeps its older item type
    /// (`Result<Event, Error>`, losses as [`Error::EventsLost`]) so existing code goes on
    /// working; both read the same ring buffer and counters.
    pub fn into_stream(self) -> EventStream {
        EventStream {
            session: Box::new(self),
            since_lost_check: 0,
        }
    }

    /// A cheap cloneable handle reading this session's counters ([`Stats`]) from any thread
    /// or task, also while a stream is being read.
    pub fn stats_handle(&self) -> StatsHandle {
        self.stats.clone()
    }

    /// A cloneable handle that stops the session from any thread or task: see
    /// [`StopHandle::stop`].
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle {
            requested: Arc::clone(&self.stop_requested),
            wake: self.readiness.wake_handle(),
        }
    }

    /// One poll of the stream, shared by [`Events`] and [`EventStream`]. A stop request from a
    /// [`StopHandle`] detaches the probes here; the stream then drains the ring and ends.
    fn poll_records(
        &mut self,
        since_lost_check: &mut u64,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Event, Error>>> {
        loop {
            let stopping = self.stop_requested.load(Ordering::SeqCst);
            if stopping {
                // Idempotent: later calls find no link left.
                self.stop();
            }
            let mut records = self.record_stream(*since_lost_check);
            let polled = records.poll_item(cx);
            *since_lost_check = records.since_lost_check;
            match polled {
                // The request came in during this poll, with links still attached: detach,
                // then drain what they wrote meanwhile.
                Poll::Ready(None) if !stopping => continue,
                polled => return polled,
            }
        }
    }

    // The closures borrow the session's fields: spelled out, not boxed, to save two
    // allocations per poll.
    #[allow(clippy::type_complexity)]
    fn record_stream(
        &mut self,
        since_lost_check: u64,
    ) -> RecordStream<
        '_,
        RingBuf<MapData>,
        impl FnMut(&[u8]) -> Result<Event, Error> + '_,
        impl FnMut() -> Result<u64, Error> + '_,
    > {
        let Session {
            readiness,
            ring,
            stacks,
            decode_ctx,
            interfaces,
            symbols,
            stats,
            stop_requested,
            resolve_stacks,
            ..
        } = self;
        let check_mismatches: &AtomicU64 = &stats.check_mismatches;
        let resolve_stacks = *resolve_stacks;
        let decode_ctx: &DecodeContext = decode_ctx;
        let stacks: &Option<StackTraceMap<MapData>> = stacks;
        let symbols: &KernelSymbols = symbols;
        let lost: &LostCounter = &stats.lost;
        let decode_fn = move |bytes: &[u8]| -> Result<Event, Error> {
            let mut ev = decode(bytes, decode_ctx).map_err(|e| {
                if matches!(e, DecodeError::CheckMismatch { .. }) {
                    check_mismatches.fetch_add(1, Ordering::Relaxed);
                }
                Error::Decode(e.to_string())
            })?;
            if let Some(meta) = ev.meta.as_mut() {
                if meta.interface.name.is_none() && meta.interface.ifindex != 0 {
                    meta.interface.name = interfaces
                        .resolve(u64::from(meta.netns), meta.interface.ifindex)
                        .map(Arc::from);
                }
            }
            if resolve_stacks {
                if let (Some(map), Some(id)) = (stacks.as_ref(), ev.stack_id) {
                    if let Ok(trace) = map.get(&id, 0) {
                        let ips: Vec<u64> = trace.frames().iter().map(|f| f.ip).collect();
                        ev.stack = symbols.symbolize(&ips);
                        trim_dispatch_frames(&mut ev.stack);
                    }
                }
            }
            caller_past_dispatch(&mut ev);
            Ok(ev)
        };
        let read_lost = move || -> Result<u64, Error> { Ok(lost.total()?) };
        RecordStream {
            source: ring,
            readiness,
            decode: decode_fn,
            read_lost,
            counters: &stats.counters,
            stop: stop_requested,
            since_lost_check,
        }
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Names of the targets attached.
    pub fn attached(&self) -> &[String] {
        &self.attached
    }

    /// Targets the kernel refused, each with its reason.
    pub fn refused(&self) -> &[Refusal] {
        &self.refused
    }

    /// The clock that turns event stamps into [`Event::wall_time`], measured at attach
    /// (`None` if the system clocks could not be read).
    pub fn wall_clock(&self) -> Option<WallClock> {
        self.wall_clock
    }

    /// How long [`Tracer::attach`] took.
    pub fn attach_time(&self) -> Duration {
        self.attach_time
    }

    /// Current counters (reads the kernel's run counters and program statistics). When a
    /// kernel counter cannot be read, its fields keep what the stream saw (see
    /// [`Session::try_stats`] for the error).
    ///
    /// ```no_run
    /// let session = pwru_core::Tracer::builder().build()?.attach()?;
    /// let s = session.stats();
    /// println!("{} events, {} lost, {} attached, {} refused", s.records, s.total_lost(), s.attached, s.refused);
    /// # Ok::<(), pwru_core::Error>(())
    /// ```
    pub fn stats(&self) -> Stats {
        self.stats.stats()
    }

    /// [`Session::stats`], failing if a kernel counter cannot be read.
    pub fn try_stats(&self) -> Result<Stats, Error> {
        self.stats.try_stats()
    }

    /// How many times the event stream was woken by its backstop rather than by the kernel:
    /// records were waiting in the ring buffer, the reader was asleep, and no notification had
    /// come for 250 ms. Zero in a healthy run; each one is a kernel wake-up that went missing
    /// (the records were still delivered, late by at most that interval).
    pub fn backstop_wakeups(&self) -> u64 {
        self.readiness.backstop_wakeups()
    }

    /// What the interface-name cache did so far: namespace lookups made and skipped, and
    /// entries evicted to stay within its [`CacheLimits`](crate::netns::CacheLimits).
    pub fn interface_cache_stats(&self) -> crate::netns::CacheStats {
        self.interfaces.stats()
    }

    /// Detaches every probe now but keeps the ring buffer, its counters and the programs:
    /// records already written can still be read from [`Session::events`], and
    /// [`Session::stats`] read afterwards gives final counts (no run can start any more).
    /// Dropping the session releases the rest.
    pub fn stop(&mut self) {
        let mut probes = lock(&self.probes);
        let links = std::mem::take(&mut probes.links);
        probes.stopped.extend(links.into_iter().map(Link::detach));
    }

    /// Detaches everything now and reports how long it took (dropping does the same).
    pub fn detach(self) -> Duration {
        let started = Instant::now();
        drop(self);
        started.elapsed()
    }
}

/// On tracepoints the kernel side takes the caller from a fixed stack depth, which can land
/// in the tracepoint glue (`__traceiter_*`) instead of the function that fired the
/// tracepoint. With a stack captured, that function is the first frame past the glue.
fn caller_past_dispatch(ev: &mut Event) {
    if !ev.kind.is_tracepoint() {
        return;
    }
    let in_dispatch = ev
        .caller
        .as_ref()
        .is_some_and(|c| is_dispatch_frame(&c.name));
    if in_dispatch {
        if let Some(first) = ev.stack.first() {
            ev.caller = Some(first.clone());
        }
    }
}

/// The borrowing event stream of a [`Session`]; see [`Session::events`].
pub struct Events<'a> {
    session: &'a mut Session,
    since_lost_check: u64,
}

impl std::fmt::Debug for Events<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events").finish_non_exhaustive()
    }
}

impl Stream for Events<'_> {
    type Item = Result<Event, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        this.session.poll_records(&mut this.since_lost_check, cx)
    }
}

#[cfg(test)]
mod tests {
    use super::caller_past_dispatch;
    use crate::event::{Event, ProbeKind};
    use crate::symbols::Symbol;

    fn sym(name: &str) -> Symbol {
        Symbol {
            name: name.into(),
            module: None,
            addr: 0xffff_ffff_8100_0000,
            offset: 0x10,
        }
    }

    #[test]
    fn tracepoint_caller_in_the_glue_becomes_the_first_stack_frame() {
        let mut ev = Event::new(ProbeKind::Tracepoint, "net_dev_queue");
        ev.caller = Some(sym("__traceiter_net_dev_queue"));
        ev.stack = vec![sym("__dev_queue_xmit"), sym("ip_finish_output2")];
        caller_past_dispatch(&mut ev);
        assert_eq!(ev.caller.map(|c| c.name), Some("__dev_queue_xmit".into()));

        // A caller outside the glue, or a function probe, is left alone.
        let mut ev = Event::new(ProbeKind::Tracepoint, "net_dev_queue");
        ev.caller = Some(sym("dev_hard_start_xmit"));
        ev.stack = vec![sym("__dev_queue_xmit")];
        caller_past_dispatch(&mut ev);
        assert_eq!(
            ev.caller.map(|c| c.name),
            Some("dev_hard_start_xmit".into())
        );
        let mut ev = Event::new(ProbeKind::Fentry, "ip_rcv");
        ev.caller = Some(sym("bpf_trampoline_123"));
        ev.stack = vec![sym("ip_rcv")];
        caller_past_dispatch(&mut ev);
        assert_eq!(ev.caller.map(|c| c.name), Some("bpf_trampoline_123".into()));
    }
}
