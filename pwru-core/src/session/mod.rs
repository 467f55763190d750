//! [`Session`]: attached probes and the event stream over their ring buffer (decode, interface
//! names, stacks). Dropping it detaches everything. attach.rs makes it ([`Tracer::attach`](crate::Tracer::attach)),
//! stats.rs counts, owned.rs holds what it hands to other tasks (the owned stream, handles).

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use aya::maps::{MapData, RingBuf, StackTraceMap};
use futures::Stream;

use crate::error::Error;
use crate::event::{
    decode_as, decode_bpfmap, is_bpfmap_record, DecodeContext, DecodeError, Event, WallClock,
};
use crate::netns::InterfaceCache;
use crate::object::LostCounter;
use crate::options::Backend;
use crate::stream::readiness::Readiness;
use crate::stream::RecordStream;
use crate::symbols::{is_dispatch_frame, trim_dispatch_frames, KernelSymbols};
use crate::timings::Timings;
use crate::tracer::Refusal;

mod attach;
mod background;
mod owned;
mod stats;

pub use crate::netns::CacheStats;
pub use attach::Progress;
pub use background::{AttachHandle, AttachOutcome};
use background::{AttachShared, Background};
pub use owned::{EventStream, Item, LostEvents, StopHandle};
use stats::{lock, Probes};
pub use stats::{RunOutcomes, Stats, StatsHandle};

/// Attached probes and their ring buffer. Drop it to detach everything (every attachment is an
/// fd-based link, so a process killed with SIGKILL leaves nothing behind either).
pub struct Session {
    // Field order is drop order: stop the attaching thread, then the waker thread, then the
    // links, then maps/programs.
    background: Background,
    attach: Arc<AttachShared>,
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
    timings: Timings,
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

impl Session {
    /// The stream of events, borrowing the session; [`Session::into_stream`] is the same
    /// stream owning it. Each item is an [`Item`]: an event, or a notice of records lost to a
    /// full ring buffer ([`Item::Lost`], in the position where the stream noticed them). Errors
    /// are corrupt records ([`Error::Decode`], not fatal: see [`Error::is_fatal`]; the stream
    /// goes on) and a failing ring buffer wait (fatal). Works under any executor. A
    /// [`StopHandle::stop`] ends the stream once it has drained the ring.
    ///
    /// A record the kernel commits is delivered without waiting for another one: the reader
    /// sleeps on epoll and, should a kernel notification go missing, a backstop wakes it within
    /// 250 ms (counted in [`Session::backstop_wakeups`]).
    ///
    /// Interface names: the names of every namespace are read once, before anything is
    /// attached. An event from an interface not known then makes the stream read that
    /// namespace's interfaces (one netlink dump, which a session with no filter traces like
    /// any other skb): at most once a second per namespace, 32 at once and 10 a second over
    /// all namespaces, and not again for 10 s for a pair the dump did not list. So
    /// pwru-core's own lookups stay a few events per new namespace, not per event; an event
    /// whose lookup was skipped carries no name.
    ///
    /// ```no_run
    /// use futures::StreamExt;
    /// use pwru_core::Item;
    /// let mut session = pwru_core::Tracer::builder().pcap_filter("icmp").build()?.attach()?;
    /// for item in futures::executor::block_on_stream(session.events()).take(10) {
    ///     match item {
    ///         Ok(Item::Event(ev)) => println!("{} {:#x}", ev.function, ev.skb),
    ///         Ok(Item::Lost(lost)) => eprintln!("{lost}"),
    ///         Ok(_) => {} // Item may grow
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
    /// `tokio::spawn` on its own. Its items are those of [`Session::events`]. Take a
    /// [`Session::stats_handle`] and a [`Session::stop_handle`] first to read counters and to
    /// end the stream from elsewhere; dropping the stream drops the session (and detaches
    /// everything).
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
    ) -> Poll<Option<Result<Item, Error>>> {
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
        impl FnMut(&[u8]) -> Result<Item, Error> + '_,
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
        let decode_fn = move |bytes: &[u8]| -> Result<Item, Error> {
            if is_bpfmap_record(bytes) {
                return decode_bpfmap(bytes, decode_ctx)
                    .map(Item::BpfMap)
                    .map_err(Error::Decode);
            }
            // Built in place as the stream's item (see `decode_as`), completed there.
            let mut out = match decode_as(bytes, decode_ctx, |ev| Ok(Item::Event(ev))) {
                Ok(out) => out,
                Err(e) => {
                    if matches!(e, DecodeError::CheckMismatch { .. }) {
                        check_mismatches.fetch_add(1, Ordering::Relaxed);
                    }
                    return Err(Error::Decode(e));
                }
            };
            let Ok(Item::Event(ev)) = &mut out else {
                return out;
            };
            if let Some(meta) = ev.meta.as_mut() {
                if meta.interface.name.is_none() && meta.interface.ifindex != 0 {
                    meta.interface.name =
                        interfaces.resolve_shared(u64::from(meta.netns), meta.interface.ifindex);
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
            caller_past_dispatch(ev);
            out
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

    /// Names of the targets attached. For a session from
    /// [`Tracer::attach_in_background`](crate::Tracer::attach_in_background), those attached
    /// before it was returned, until [`Session::wait_attached`].
    pub fn attached(&self) -> &[String] {
        &self.attached
    }

    /// Targets the kernel refused, each with its reason (see [`Session::attached`] for a
    /// session attaching in the background).
    pub fn refused(&self) -> &[Refusal] {
        &self.refused
    }

    /// A cloneable handle following the attach from any thread: progress, and its outcome
    /// once every target was tried. A session from [`Tracer::attach`](crate::Tracer::attach)
    /// is attached already.
    pub fn attach_handle(&self) -> AttachHandle {
        AttachHandle {
            shared: Arc::clone(&self.attach),
        }
    }

    /// Waits until every target was tried (or the session was stopped), then completes
    /// [`Session::attached`], [`Session::refused`], [`Session::attach_time`] and
    /// [`Timings::attach_total`] with the targets attached in the background.
    pub fn wait_attached(&mut self) -> AttachOutcome {
        let outcome = self.attach_handle().wait();
        self.attached.clone_from(&outcome.attached);
        self.refused.clone_from(&outcome.refused);
        self.attach_time = outcome.elapsed;
        self.timings.attach_total = outcome.elapsed;
        outcome
    }

    /// The clock that turns event stamps into [`Event::wall_time`], measured at attach
    /// (`None` if the system clocks could not be read).
    pub fn wall_clock(&self) -> Option<WallClock> {
        self.wall_clock
    }

    /// How long [`Tracer::attach`](crate::Tracer::attach) took.
    pub fn attach_time(&self) -> Duration {
        self.attach_time
    }

    /// How long each phase of starting to trace took, from `build()` to this session.
    pub fn timings(&self) -> Timings {
        self.timings
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
    /// entries evicted to stay within its limits.
    pub fn interface_cache_stats(&self) -> CacheStats {
        self.interfaces.stats()
    }

    /// Detaches every probe now but keeps the ring buffer, its counters and the programs:
    /// records already written can still be read from [`Session::events`], and
    /// [`Session::stats`] read afterwards gives final counts (no run can start any more).
    /// Dropping the session releases the rest.
    pub fn stop(&mut self) {
        // The attaching thread first (it ends after its current chunk), so nothing is
        // attached after the links are taken.
        self.background.stop();
        let mut probes = lock(&self.probes);
        let links = std::mem::take(&mut probes.links);
        let threads = probes.loader.attach_threads();
        let detached = crate::backend::detach_all_keeping_programs(threads, links);
        probes.stopped.extend(detached);
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
    type Item = Result<Item, Error>;

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
