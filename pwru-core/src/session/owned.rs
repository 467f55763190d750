//! What a session hands out to other tasks: the owned stream and its items, and a stop
//! handle.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;

use super::{Session, StatsHandle};
use crate::error::Error;
use crate::event::Event;
use crate::stream::readiness::WakeHandle;

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
    /// A map operation of a traced tc/XDP program
    /// ([`TracerBuilder::bpf_map_ops`](crate::TracerBuilder::bpf_map_ops)).
    BpfMap(crate::event::BpfMapOp),
}

impl crate::stream::WithLost for Item {
    fn lost(count: u64, total: u64) -> Self {
        Item::Lost(LostEvents { count, total })
    }
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
        this.session.poll_records(&mut this.since_lost_check, cx)
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
