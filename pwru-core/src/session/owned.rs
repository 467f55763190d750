//! What a session hands out to other tasks: the owned stream and its items, a statistics
//! handle and a stop handle.

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll};

use futures::Stream;

use super::{RunOutcomes, Session, Stats};
use crate::backend::{DetachedProgram, Link, LoaderError, ProgramStats};
use crate::error::Error;
use crate::event::Event;
use crate::object::{Loader, LostCounter, NestingCounter};
use crate::stream::readiness::WakeHandle;
use crate::stream::Counters;

/// The kernel objects whose run counters [`Stats`] reads: shared (through a `Weak`) with
/// [`StatsHandle`]s. Field order is drop order: links before programs.
pub(super) struct Probes {
    pub(super) links: Vec<Link>,
    /// Programs of links detached by [`Session::stop`], kept for their run counters.
    pub(super) stopped: Vec<DetachedProgram>,
    pub(super) loader: Loader,
}

/// Locks `m`; a panic elsewhere while it was held leaves data that is still consistent here
/// (vectors of fds), so a poisoned lock is used as is.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Probes {
    /// (run_cnt, recursion_misses) summed over every loaded event program, each program once.
    fn kernel_run_counts(&self) -> Result<(u64, u64), Error> {
        let attached = self.links.iter().map(|l| (l.program(), l.stats()));
        let stopped = self.stopped.iter().map(|p| (p.program(), p.stats()));
        let mut aya_programs = HashSet::new();
        let (mut runs, mut misses) = (0u64, 0u64);
        for (program, stats) in attached.chain(stopped) {
            if !pwru_ebpf::is_event_program(program) {
                continue;
            }
            let stats: ProgramStats = match stats {
                Some(r) => r.map_err(|error| LoaderError::Attach {
                    program: program.into(),
                    target: "info".into(),
                    error,
                })?,
                // aya keeps one program for all its links: count it once.
                None if aya_programs.insert(program) => self.loader.program_stats(program)?,
                None => continue,
            };
            runs = runs.wrapping_add(stats.run_cnt);
            misses = misses.wrapping_add(stats.recursion_misses);
        }
        Ok((runs, misses))
    }
}

/// Reads a session's counters from any thread or task, also while its stream is read
/// elsewhere; see [`Session::stats_handle`]. Cloning is cheap (reference counts).
///
/// It does not keep the session's probes alive: once the session is dropped,
/// [`StatsHandle::try_stats`] fails and [`StatsHandle::stats`] gives what the stream counted
/// (records, decode errors, losses reported).
#[derive(Clone)]
pub struct StatsHandle {
    pub(super) counters: Arc<Counters>,
    pub(super) check_mismatches: Arc<AtomicU64>,
    pub(super) lost: Arc<LostCounter>,
    pub(super) nesting: Arc<NestingCounter>,
    pub(super) probes: Weak<Mutex<Probes>>,
    pub(super) attached: usize,
    pub(super) refused: usize,
}

impl std::fmt::Debug for StatsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatsHandle")
            .field("records", &self.counters.records.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl StatsHandle {
    /// Current counters, as [`Session::stats`]: when a kernel counter cannot be read, its
    /// fields keep what the stream saw.
    pub fn stats(&self) -> Stats {
        self.try_stats().unwrap_or_else(|_| {
            let mut s = self.stream_stats();
            s.lost = self.counters.lost_reported.load(Ordering::Relaxed);
            s
        })
    }

    /// [`StatsHandle::stats`], failing if a kernel counter cannot be read (or the session is
    /// gone).
    pub fn try_stats(&self) -> Result<Stats, Error> {
        let mut s = self.stream_stats();
        s.runs = RunOutcomes::from_counts(&self.lost.outcomes()?);
        s.lost = s.runs.ring_full;
        s.nested_runs = self.nesting.nested()?;
        let probes = self.probes.upgrade().ok_or_else(|| {
            Error::InvalidOption(
                "the session is gone: read its statistics before dropping it".into(),
            )
        })?;
        let (runs, misses) = lock(&probes).kernel_run_counts()?;
        s.kernel_runs = runs;
        s.recursion_misses = misses;
        Ok(s)
    }

    fn stream_stats(&self) -> Stats {
        Stats {
            records: self.counters.records.load(Ordering::Relaxed),
            decode_errors: self.counters.decode_errors.load(Ordering::Relaxed),
            check_mismatches: self.check_mismatches.load(Ordering::Relaxed),
            attached: self.attached,
            refused: self.refused,
            ..Stats::default()
        }
    }
}

/// Stops a session from any thread or task; see [`Session::stop_handle`].
#[derive(Clone)]
pub struct StopHandle {
    pub(super) requested: Arc<AtomicBool>,
    pub(super) wake: WakeHandle,
}

impl std::fmt::Debug for StopHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StopHandle")
            .field("requested", &self.requested.load(Ordering::Relaxed))
            .finish()
    }
}

impl StopHandle {
    /// Asks the session to stop and wakes its stream. The stream (owned or borrowed) detaches
    /// every probe at its next poll, yields what is still in the ring buffer (and a last loss
    /// notice), then ends (`None`). Never blocks; calling it again does nothing more.
    pub fn stop(&self) {
        // The flag before the wake-up: a stream storing its waker after this still sees it.
        self.requested.store(true, Ordering::SeqCst);
        self.wake.wake();
    }

    /// Whether [`StopHandle::stop`] was called (on this handle or a clone).
    pub fn is_stopped(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }
}

/// Records the kernel could not write because the ring buffer was full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct LostEvents {
    /// Lost since the previous notice.
    pub count: u64,
    /// Lost since the session started.
    pub total: u64,
}

impl std::fmt::Display for LostEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} events lost (ring buffer full; {} in all): enlarge the ring buffer or narrow the filter",
            self.count, self.total
        )
    }
}

/// One item of an [`EventStream`].
// Nearly every item is an event: boxing it would cost an allocation per event to save
// memory on rare loss notices.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Item {
    /// One hit of one probe on one packet.
    Event(Event),
    /// Records lost since the previous notice, reported where the stream noticed them.
    Lost(LostEvents),
}

/// The stream owning its [`Session`]: see [`Session::into_stream`]. `'static + Send`.
pub struct EventStream {
    pub(super) session: Box<Session>,
    pub(super) since_lost_check: u64,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl EventStream {
    /// The session read by this stream (backend, targets, statistics).
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Gives the session back (stopping the stream).
    pub fn into_session(self) -> Session {
        *self.session
    }
}

impl Stream for EventStream {
    type Item = Result<Item, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        this.session
            .poll_records(&mut this.since_lost_check, cx)
            .map(|polled| {
                polled.map(|r| match r {
                    Ok(ev) => Ok(Item::Event(ev)),
                    Err(Error::EventsLost { count, total }) => {
                        Ok(Item::Lost(LostEvents { count, total }))
                    }
                    Err(e) => Err(e),
                })
            })
    }
}

// What the handles promise, checked at compile time.
const _: fn() = || {
    fn owned_and_sendable<T: Send + 'static>() {}
    fn shareable<T: Clone + Send + Sync + 'static>() {}
    owned_and_sendable::<EventStream>();
    shareable::<StatsHandle>();
    shareable::<StopHandle>();
};
