//! Readiness of one file descriptor, through the `polling` crate (epoll on Linux): a one-shot
//! registration re-armed by the reader, a wait with a timeout, and a notification that ends a
//! wait from another thread. Used by the ring buffer's wake-up thread.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use polling::{Event, Events, PollMode, Poller};

/// The key the watched fd reports with.
const KEY: usize = 1;

/// A poller watching one fd one-shot: each [`arm`](OneShotWatch::arm) reports readability at
/// most once. The watch holds its own duplicate of the fd, so the registration can never
/// outlive the file it names.
pub struct OneShotWatch {
    poller: Poller,
    fd: OwnedFd,
}

impl OneShotWatch {
    /// Registers a duplicate of `fd`, disarmed: nothing is reported before the first
    /// [`arm`](OneShotWatch::arm).
    pub fn new(fd: BorrowedFd<'_>) -> io::Result<Self> {
        let fd = fd.try_clone_to_owned()?;
        let poller = Poller::new()?;
        // SAFETY: `fd` is owned by the returned value next to `poller`, and Drop deletes it
        // from the poller before either is closed, as `Poller::add_with_mode` requires.
        unsafe { poller.add_with_mode(fd.as_raw_fd(), Event::none(KEY), PollMode::Oneshot)? };
        Ok(OneShotWatch { poller, fd })
    }

    /// Asks for one report when the fd is readable. Re-arming checks readiness at once, so
    /// data that arrived before this call reports too.
    pub fn arm(&self) -> io::Result<()> {
        self.poller
            .modify_with_mode(&self.fd, Event::readable(KEY), PollMode::Oneshot)
    }

    /// Waits up to `timeout` for the fd (or a [`notify`](OneShotWatch::notify)); `Ok(true)`
    /// when the fd reported readable.
    pub fn wait(&self, events: &mut Events, timeout: Duration) -> io::Result<bool> {
        events.clear();
        self.poller.wait(events, Some(timeout))?;
        Ok(events.iter().any(|e| e.key == KEY && e.readable))
    }

    /// Ends the current (or next) [`wait`](OneShotWatch::wait) early.
    pub fn notify(&self) -> io::Result<()> {
        self.poller.notify()
    }

    /// Whether the fd is readable right now (poll(2) with a zero timeout), whatever the
    /// one-shot registration's state.
    pub fn readable_now(&self) -> bool {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one live pollfd naming an fd we own, zero timeout: poll only reports.
        let n = unsafe { libc::poll(&mut pfd, 1, 0) };
        n > 0 && pfd.revents & libc::POLLIN != 0
    }
}

impl Drop for OneShotWatch {
    fn drop(&mut self) {
        // Errors cannot be acted on here; the poller and the fd close right after.
        let _ = self.poller.delete(self.fd.as_fd());
    }
}
