//! Wakes an async task when a ring buffer has data, without a runtime and without polling.
//!
//! A ring buffer map fd reports `EPOLLIN` when records are waiting. One small thread blocks in
//! `epoll_wait` on it (registered one-shot) and on an eventfd used to stop the thread; when the
//! ring becomes readable it wakes the task's stored [`Waker`]. The task re-arms the one-shot
//! registration each time it finds the ring empty, so the thread sleeps until the next record
//! and costs no CPU while idle. This works under any executor (tokio, `futures::executor`, ...).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex};
use std::task::Waker;
use std::thread::JoinHandle;

const TOKEN_RING: u64 = 1;
const TOKEN_STOP: u64 = 2;

/// Owns the epoll thread for one ring buffer fd. Dropping it stops and joins the thread.
pub(crate) struct Readiness {
    epoll: Arc<OwnedFd>,
    stop: Arc<OwnedFd>,
    ring_fd: RawFd,
    waker: Arc<Mutex<Option<Waker>>>,
    thread: Option<JoinHandle<()>>,
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
        let waker: Arc<Mutex<Option<Waker>>> = Arc::default();
        let thread = {
            let epoll = Arc::clone(&epoll);
            let waker = Arc::clone(&waker);
            std::thread::Builder::new()
                .name("pwru-ringbuf".into())
                .spawn(move || wait_loop(&epoll, &waker))?
        };
        Ok(Self {
            epoll,
            stop,
            ring_fd,
            waker,
            thread: Some(thread),
        })
    }

    /// Stores `waker` and asks to be woken once the ring is readable. Call after finding the ring
    /// empty, then look at the ring once more: a record that arrived in between still wakes.
    pub(crate) fn arm(&self, waker: &Waker) -> io::Result<()> {
        if let Ok(mut slot) = self.waker.lock() {
            match slot.as_ref() {
                Some(w) if w.will_wake(waker) => {}
                _ => *slot = Some(waker.clone()),
            }
        }
        epoll_ctl(
            self.epoll.as_raw_fd(),
            libc::EPOLL_CTL_MOD,
            self.ring_fd,
            (libc::EPOLLIN | libc::EPOLLONESHOT) as u32,
            TOKEN_RING,
        )
    }
}

fn wait_loop(epoll: &OwnedFd, waker: &Mutex<Option<Waker>>) {
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; 4];
    loop {
        // SAFETY: `events` is a writable array of the length passed.
        let n = unsafe {
            libc::epoll_wait(
                epoll.as_raw_fd(),
                events.as_mut_ptr(),
                events.len() as libc::c_int,
                -1,
            )
        };
        if n < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        for ev in &events[..n as usize] {
            match ev.u64 {
                TOKEN_STOP => return,
                TOKEN_RING => {
                    let w = waker.lock().ok().and_then(|mut slot| slot.take());
                    if let Some(w) = w {
                        w.wake();
                    }
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
