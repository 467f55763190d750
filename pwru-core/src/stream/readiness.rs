//! Wakes an async task when a ring buffer has data, without a runtime and without polling.
//!
//! A ring buffer map fd reports `EPOLLIN` when records are waiting. One small thread blocks in
//! `epoll_wait` on it (registered one-shot) and on an eventfd used to stop the thread; when the
//! ring becomes readable it wakes the task's stored [`Waker`]. The task re-arms the one-shot
//! registration each time it finds the ring empty (`EPOLL_CTL_MOD` re-checks the kernel's
//! producer and consumer positions, so a record that arrived before the re-arm reports at
//! once). This works under any executor (tokio, `futures::executor`, ...).
//!
//! Two rules keep a record from ever sitting unread while the reader sleeps:
//! - The waker stays in its slot after a wake (it is replaced, never taken): an event the
//!   thread reports while the task is between storing its waker and re-arming still wakes it,
//!   whatever the executor does with a wake-up received during a poll.
//! - A backstop: the kernel wakes the reader only when it commits the record the consumer
//!   position points at (`bpf_ringbuf_commit`), so one lost notification would leave records
//!   waiting until the next one. Every [`BACKSTOP`] without an event, the thread asks the ring
//!   fd itself (`poll(2)`, which compares the kernel's producer and consumer positions) and
//!   wakes the task if records are waiting while it is armed. Such wake-ups are counted
//!   ([`Readiness::backstop_wakeups`]). Idle cost: one `epoll_wait` return per [`BACKSTOP`].

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Waker;
use std::thread::JoinHandle;
use std::time::Duration;

/// How long the thread waits for a kernel notification before it looks at the ring itself.
pub(crate) const BACKSTOP: Duration = Duration::from_millis(250);

const TOKEN_RING: u64 = 1;
const TOKEN_STOP: u64 = 2;

/// Owns the epoll thread for one ring buffer fd. Dropping it stops and joins the thread.
pub(crate) struct Readiness {
    epoll: Arc<OwnedFd>,
    stop: Arc<OwnedFd>,
    ring_fd: RawFd,
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
    /// Wake-ups made by the backstop (records waiting, no notification).
    backstop_wakeups: AtomicU64,
}

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn epoll_ctl(epoll: RawFd, op: libc::c_int, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
    let mut ev = libc::epoll_event { events, u64: token };
    // SAFETY: `ev` is a valid epoll_event for the duration of the call; the fds are owned by
    // the caller and open.
    cvt(unsafe { libc::epoll_ctl(epoll, op, fd, &mut ev) }).map(|_| ())
}

impl Readiness {
    /// Starts watching `ring` (which must outlive this value).
    pub(crate) fn new(ring: BorrowedFd<'_>) -> io::Result<Self> {
        // SAFETY: plain syscalls; each returned fd is checked and then owned exactly once.
        let epoll = unsafe { OwnedFd::from_raw_fd(cvt(libc::epoll_create1(libc::EPOLL_CLOEXEC))?) };
        // SAFETY: as above.
        let stop = unsafe {
            OwnedFd::from_raw_fd(cvt(libc::eventfd(
                0,
                libc::EFD_CLOEXEC | libc::EFD_NONBLOCK,
            ))?)
        };
        let ring_fd = ring.as_raw_fd();
        // Registered disarmed: the first `arm` call enables it.
        epoll_ctl(
            epoll.as_raw_fd(),
            libc::EPOLL_CTL_ADD,
            ring_fd,
            libc::EPOLLONESHOT as u32,
            TOKEN_RING,
        )?;
        epoll_ctl(
            epoll.as_raw_fd(),
            libc::EPOLL_CTL_ADD,
            stop.as_raw_fd(),
            libc::EPOLLIN as u32,
            TOKEN_STOP,
        )?;
        let epoll = Arc::new(epoll);
        let stop = Arc::new(stop);
        let shared: Arc<Shared> = Arc::default();
        let thread = {
            let epoll = Arc::clone(&epoll);
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("pwru-ringbuf".into())
                .spawn(move || wait_loop(&epoll, ring_fd, &shared))?
        };
        Ok(Self {
            epoll,
            stop,
            ring_fd,
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
        epoll_ctl(
            self.epoll.as_raw_fd(),
            libc::EPOLL_CTL_MOD,
            self.ring_fd,
            (libc::EPOLLIN | libc::EPOLLONESHOT) as u32,
            TOKEN_RING,
        )
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

/// Whether the ring fd reports records waiting (the kernel compares its producer and consumer
/// positions).
fn ring_readable(ring_fd: RawFd) -> bool {
    let mut pfd = libc::pollfd {
        fd: ring_fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout; the ring fd outlives this thread (the Readiness
    // owning the thread is dropped, and joins it, before the ring).
    let n = unsafe { libc::poll(&mut pfd, 1, 0) };
    n > 0 && pfd.revents & libc::POLLIN != 0
}

fn wait_loop(epoll: &OwnedFd, ring_fd: RawFd, shared: &Shared) {
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; 4];
    let timeout = BACKSTOP.as_millis() as libc::c_int;
    loop {
        // SAFETY: `events` is a writable array of the length passed.
        let n = unsafe {
            libc::epoll_wait(
                epoll.as_raw_fd(),
                events.as_mut_ptr(),
                events.len() as libc::c_int,
                timeout,
            )
        };
        if n < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        if n == 0 {
            // Armed, no notification for a whole BACKSTOP, yet records wait: wake anyway.
            if shared.armed.load(Ordering::SeqCst) && ring_readable(ring_fd) {
                shared.armed.store(false, Ordering::SeqCst);
                shared.backstop_wakeups.fetch_add(1, Ordering::Relaxed);
                wake(shared);
            }
            continue;
        }
        for ev in &events[..n as usize] {
            match ev.u64 {
                TOKEN_STOP => return,
                TOKEN_RING => {
                    wake(shared);
                }
                _ => {}
            }
        }
    }
}

impl Drop for Readiness {
    fn drop(&mut self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to our own eventfd.
        unsafe {
            libc::write(
                self.stop.as_raw_fd(),
                (&one as *const u64).cast(),
                std::mem::size_of::<u64>(),
            )
        };
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
