//! The grouping as a [`Stream`] adapter over a session's items.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;

use super::group::{Grouper, Series, SeriesOptions};
use crate::error::Error;
use crate::event::WallClock;
use crate::session::Item;

/// Turns a stream of `Result<Item, Error>` (a session's events) into a stream of completed
/// [`Series`]: events are grouped, loss notices mark gaps, errors pass through unchanged.
///
/// Idle series end when time passes in later events, or when the inner stream has nothing
/// ready (the kernel's monotonic clock is read then); a series that ends while nothing else
/// happens on the stream is yielded at its next wake-up. When the inner stream ends, every
/// open series is flushed ([`SeriesEnd::Flushed`](super::SeriesEnd::Flushed)) and yielded.
///
/// ```no_run
/// use futures::StreamExt;
/// use pwru_core::series::{SeriesOptions, SeriesStream};
/// # fn main() -> Result<(), pwru_core::Error> {
/// let session = pwru_core::Tracer::builder().pcap_filter("icmp").build()?.attach()?;
/// let mut series = SeriesStream::new(session.into_stream(), SeriesOptions::default());
/// futures::executor::block_on(async {
///     while let Some(Ok(s)) = series.next().await {
///         println!("{}: {} hops, {}", s.key, s.hops.len(), s.end);
///     }
/// });
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct SeriesStream<S> {
    inner: S,
    grouper: Grouper,
    finished: bool,
}

impl<S> SeriesStream<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, opts: SeriesOptions) -> SeriesStream<S> {
        SeriesStream {
            inner,
            grouper: Grouper::new(opts),
            finished: false,
        }
    }

    /// The grouper (counters, or [`Grouper::flush`] before dropping the stream).
    pub fn grouper(&mut self) -> &mut Grouper {
        &mut self.grouper
    }

    /// The inner stream.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }
}

impl<S> Stream for SeriesStream<S>
where
    S: Stream<Item = Result<Item, Error>> + Unpin,
{
    type Item = Result<Series, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(s) = this.grouper.pop() {
                return Poll::Ready(Some(Ok(s)));
            }
            if this.finished {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.inner).poll_next(cx) {
                Poll::Ready(Some(Ok(Item::Event(ev)))) => this.grouper.push(&ev),
                Poll::Ready(Some(Ok(Item::Lost(lost)))) => this.grouper.mark_lost(&lost),
                // Map operations are not hops of a packet (the event of their stack is).
                Poll::Ready(Some(Ok(Item::BpfMap(_)))) => {}
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => {
                    this.grouper.flush();
                    this.finished = true;
                }
                Poll::Pending => {
                    if let Ok(now) = WallClock::monotonic_now_ns() {
                        this.grouper.expire(now);
                    }
                    return match this.grouper.pop() {
                        Some(s) => Poll::Ready(Some(Ok(s))),
                        None => Poll::Pending,
                    };
                }
            }
        }
    }
}
