//! Wakes an async task when a ring buffer has data, without a runtime and without polling.
//!
//! A ring buffer map fd reports readable when records are waiting. One small thread waits on it
//! through the `polling` crate (epoll, registered one-shot: [`OneShotWatch`]), and is stopped by
//! the poller's own notification; when the ring becomes readable it wakes the task's stored
//! [`Waker`]. The task re-arms the one-shot registration each time it finds the ring empty
//! (re-arming re-checks the kernel's producer and consumer positions, so a record that arrived
//! before the re-arm reports at once). This works under any executor (tokio,
//! `futures::executor`, ...).
//!
//! Wake-ups are coalesced: the kernel notifies the reader when it commits a record the
//! consumer position points at, i.e. for the first record after each drain, and each
//! notification costs the writing program an irq_work, several times what writing the record
//! costs. So the thread wakes the task at most once per [`COALESCE`]: a notification coming
//! sooner after the previous wake is held until then, records pile up meanwhile (without
//! further notifications, as the consumer is behind) and one drain takes them all. Under a
//! flood the kernel then notifies at most about 1,000 times a second, while a lone record
//! after a quiet moment is passed on at once; an idle reader costs nothing.
//!
//! Two rules keep a record from ever sitting unread while the reader sleeps:
//! - The waker stays in its slot after a wake (it is replaced, never taken): an event the
//!   thread reports while the task is between storing its waker and re-arming still wakes it,
//!   whatever the executor does with a wake-up received during a poll.
//! - A backstop: the kernel wakes the reader only when it commits the record the consumer
//!   position points at (`bpf_ringbuf_commit`), so one lost notification would leave records
//!   waiting until the next one. Every [`BACKSTOP`] without an event, the thread asks the ring
//!   fd itself ([`OneShotWatch::readable_now`], which compares the kernel's producer and consumer positions) and
//!   wakes the task if records are waiting while it is armed. Such wake-ups are counted
//!   ([`Readiness::backstop_wakeups`]). Idle cost: one wait return per [`BACKSTOP`].

use std::io;
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Waker;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::sys::poll::OneShotWatch;

/// How long the thread waits for a kernel notification before it looks at the ring itself.
pub(crate) const BACKSTOP: Duration = Duration::from_millis(250);

/// The shortest time between two wake-ups by kernel notification (see the module docs).
pub(crate) const COALESCE: Duration = Duration::from_millis(1);

/// Owns the wake-up thread for one ring buffer fd. Dropping it stops and joins the thread.
pub(crate) struct Readiness {
    watch: Arc<OneShotWatch>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// What the task and the thread share.
#[derive(Default)]
struct Shared {
    /// The waker of the task reading the ring; replaced by each `arm`, never taken.
    waker: Mutex<Option<Waker>>,
    /// Set by `arm` (the task is about to sleep), cleared by `consuming` (it got a record)
    /// and by a backstop wake-up.
    armed: AtomicBool,
    /// Set by Drop: the thread ends at its next wake-up.
    stop: AtomicBool,
    /// Wake-ups made by the backstop (records waiting, no notification).
    backstop_wakeups: AtomicU64,
}

impl Readiness {
    /// Starts watching `ring` (the watch holds its own duplicate of the fd).
    pub(crate) fn new(ring: BorrowedFd<'_>) -> io::Result<Self> {
        // Registered disarmed: the first `arm` call enables it.
        let watch = Arc::new(OneShotWatch::new(ring)?);
        let shared: Arc<Shared> = Arc::default();
        let thread = {
            let watch = Arc::clone(&watch);
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("pwru-ringbuf".into())
                .spawn(move || wait_loop(&watch, &shared))?
        };
        Ok(Self {
            watch,
            shared,
            thread: Some(thread),
        })
    }

    /// Tells the backstop that the task is reading records (not waiting for a wake-up).
    pub(crate) fn consuming(&self) {
        self.shared.armed.store(false, Ordering::Relaxed);
    }

    /// How many times the backstop found records waiting with no notification and woke the
    /// task (see the module docs).
    pub(crate) fn backstop_wakeups(&self) -> u64 {
        self.shared.backstop_wakeups.load(Ordering::Relaxed)
    }

    /// A handle that wakes the reading task from anywhere (a stop request).
    pub(crate) fn wake_handle(&self) -> WakeHandle {
        WakeHandle(Arc::clone(&self.shared))
    }

    /// Stores `waker` and asks to be woken once the ring is readable. Call after finding the ring
    /// empty, then look at the ring once more: a record that arrived in between still wakes.
    pub(crate) fn arm(&self, waker: &Waker) -> io::Result<()> {
        if let Ok(mut slot) = self.shared.waker.lock() {
            match slot.as_ref() {
                Some(w) if w.will_wake(waker) => {}
                _ => *slot = Some(waker.clone()),
            }
        }
        self.shared.armed.store(true, Ordering::SeqCst);
        self.watch.arm()
    }
}

/// Wakes the task reading a ring buffer; see [`Readiness::wake_handle`].
#[derive(Clone)]
pub(crate) struct WakeHandle(Arc<Shared>);

impl WakeHandle {
    /// Wakes the reading task (if it ever polled), whether or not it is armed.
    pub(crate) fn wake(&self) {
        wake(&self.0);
    }
}

fn wake(shared: &Shared) {
    // Clone, do not take: see the module docs.
    let w = shared.waker.lock().ok().and_then(|slot| slot.clone());
    if let Some(w) = w {
        w.wake();
    }
}

fn wait_loop(watch: &OneShotWatch, shared: &Shared) {
    let mut events = polling::Events::new();
    let mut last_wake: Option<Instant> = None;
    loop {
        let readable = match watch.wait(&mut events, BACKSTOP) {
            Ok(readable) => readable,
            // A signal delivered to this thread: wait again rather than leave the stream
            // without its waker thread.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        if readable {
            // Hold a notification that follows the previous wake closely (coalescing).
            if let Some(since) = last_wake.map(|t| t.elapsed()) {
                if since < COALESCE {
                    std::thread::sleep(COALESCE - since);
                }
            }
            last_wake = Some(Instant::now());
            wake(shared);
            continue;
        }
        // Armed, no notification for a whole BACKSTOP, yet records wait: wake anyway.
        if shared.armed.load(Ordering::SeqCst) && watch.readable_now() {
            shared.armed.store(false, Ordering::SeqCst);
            shared.backstop_wakeups.fetch_add(1, Ordering::Relaxed);
            wake(shared);
        }
    }
}

impl Drop for Readiness {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // A failed notification leaves the thread to see `stop` within one BACKSTOP.
        let _ = self.watch.notify();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
