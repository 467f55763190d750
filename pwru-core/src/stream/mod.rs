//! The event stream: ring buffer records, decoded, as a runtime-agnostic [`futures::Stream`].
//!
//! The kernel programs write records into a BPF ring buffer; [`readiness`] wakes the consuming
//! task when the ring becomes readable.
//!
//! Going to sleep follows the ring buffer's wake-up protocol: the kernel notifies only when it
//! commits the record at the consumer position it reads after its (fully ordered) header
//! update, so the reader must publish its consumer position, then fence (`SeqCst`), then look
//! at the producer position or the next header. aya 0.14's `RingBuf::next` does exactly that
//! before it returns `None` (`needs_wakeup` + `fence(SeqCst)`); the stream then arms the epoll
//! registration (whose `EPOLL_CTL_MOD` re-polls the ring: producer != consumer reports at
//! once, a still-busy record included) and looks once more. Should a notification still go
//! missing, [`readiness`]'s backstop wakes the task within [`readiness::BACKSTOP`]. Lost records (the kernel could not reserve space) are
//! counted per CPU by the kernel programs; the stream reads that counter whenever it has drained
//! the ring and every [`LOST_CHECK_EVERY`] records, and yields the increase as an
//! item built by [`WithLost::lost`] in the position where it noticed it (a
//! [`LostEvents`](crate::LostEvents) notice of the public streams).

pub(crate) mod readiness;

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};

use futures::Stream;

use crate::error::Error;
use readiness::Readiness;

/// How many records are read between two looks at the lost-record counter while the ring stays
/// non-empty (a flood): bounds how late a loss is reported without a syscall per record.
pub const LOST_CHECK_EVERY: u64 = 4096;

/// An item of the record stream: a decoded record, or a notice of records lost. The decoder
/// builds the first kind; the stream builds the second with [`WithLost::lost`]. One type for
/// both, so that a decoded record (an [`Event`](crate::Event) is over 500 bytes) is moved as
/// it is to the caller instead of being wrapped and unwrapped on the way.
pub(crate) trait WithLost {
    /// The notice of `count` records lost since the previous one (`total` since the start).
    fn lost(count: u64, total: u64) -> Self;
}

/// Something that hands out ring buffer records one at a time.
pub(crate) trait RecordSource {
    /// Calls `f` with the next record, or returns `None` when there is none right now.
    fn next_record<T>(&mut self, f: impl FnOnce(&[u8]) -> T) -> Option<T>;
}

impl<M: std::borrow::Borrow<aya::maps::MapData>> RecordSource for aya::maps::RingBuf<M> {
    #[inline(always)]
    fn next_record<T>(&mut self, f: impl FnOnce(&[u8]) -> T) -> Option<T> {
        self.next().map(|item| f(&item))
    }
}

/// Counters shared between a session and its streams. Only the stream reading the ring
/// writes them (a session has one at a time: it is borrowed mutably or owned), so it adds
/// with a load and a store, not a locked read-modify-write per record; other threads only
/// read.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Records taken from the ring buffer.
    pub(crate) records: AtomicU64,
    /// Records that failed to decode.
    pub(crate) decode_errors: AtomicU64,
    /// Lost records already reported in a stream.
    pub(crate) lost_reported: AtomicU64,
}

/// Adds one to a counter that only the calling thread writes (see [`Counters`]).
fn bump(counter: &AtomicU64) {
    counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

/// The generic core of the event stream: a record source, a decoder, a lost-counter reader.
pub(crate) struct RecordStream<'a, S, D, L> {
    pub(crate) source: &'a mut S,
    pub(crate) readiness: &'a Readiness,
    pub(crate) decode: D,
    pub(crate) read_lost: L,
    pub(crate) counters: &'a Counters,
    /// Once set, the stream ends (`None`) as soon as it has drained the ring.
    pub(crate) stop: &'a AtomicBool,
    pub(crate) since_lost_check: u64,
}

impl<S, D, L, T> RecordStream<'_, S, D, L>
where
    S: RecordSource,
    D: FnMut(&[u8]) -> Result<T, Error>,
    L: FnMut() -> Result<u64, Error>,
    T: WithLost,
{
    /// Returns a loss item if the kernel counted more lost records than were reported so far.
    fn check_lost(&mut self) -> Option<Result<T, Error>> {
        self.since_lost_check = 0;
        let total = match (self.read_lost)() {
            Ok(t) => t,
            Err(e) => return Some(Err(e)),
        };
        let reported = self.counters.lost_reported.load(Ordering::Relaxed);
        if total > reported {
            self.counters.lost_reported.store(total, Ordering::Relaxed);
            Some(Ok(T::lost(total - reported, total)))
        } else {
            None
        }
    }

    #[inline(always)]
    pub(crate) fn poll_item(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, Error>>> {
        let mut armed = false;
        loop {
            if self.since_lost_check >= LOST_CHECK_EVERY {
                if let Some(lost) = self.check_lost() {
                    return Poll::Ready(Some(lost));
                }
            }
            let decode = &mut self.decode;
            if let Some(item) = self.source.next_record(|bytes| decode(bytes)) {
                self.readiness.consuming();
                self.since_lost_check += 1;
                bump(&self.counters.records);
                if item.is_err() {
                    bump(&self.counters.decode_errors);
                }
                return Poll::Ready(Some(item));
            }
            // Drained: report losses before going to sleep, so they are never held back.
            if let Some(lost) = self.check_lost() {
                return Poll::Ready(Some(lost));
            }
            if self.stop.load(Ordering::SeqCst) {
                return Poll::Ready(None);
            }
            if armed {
                return Poll::Pending;
            }
            if let Err(e) = self.readiness.arm(cx.waker()) {
                return Poll::Ready(Some(Err(Error::RingBuffer(e))));
            }
            // Look once more: a record may have arrived before the registration was armed.
            armed = true;
        }
    }
}

impl<S, D, L, T> Stream for RecordStream<'_, S, D, L>
where
    S: RecordSource + Unpin,
    D: FnMut(&[u8]) -> Result<T, Error> + Unpin,
    L: FnMut() -> Result<u64, Error> + Unpin,
    T: WithLost,
{
    type Item = Result<T, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_item(cx)
    }
}

#[cfg(test)]
mod tests;
