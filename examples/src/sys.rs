//! The examples' own small syscall edge (signals and a poll of stdout), so their `unsafe`
//! sits in this one file; everything kernel-facing for tracing is pwru-core's.

use std::io;

/// SIGINT and SIGTERM, the signals the examples listen for.
pub fn interrupt_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset initialises the set it is given and
    // sigaddset adds valid signal numbers to it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        set
    }
}

/// Blocks `set` in the calling thread (and in every thread it starts afterwards).
pub fn block_signals(set: &libc::sigset_t) -> io::Result<()> {
    // SAFETY: `set` is an initialised sigset_t; a null old-set pointer is allowed.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

/// Waits for one of the signals of `set`, which must be blocked in this thread.
pub fn wait_signal(set: &libc::sigset_t) -> io::Result<i32> {
    let mut sig: libc::c_int = 0;
    // SAFETY: `set` is initialised and `sig` a live out-parameter; with the signals not
    // blocked sigwait would still return one, only racing their default action.
    let rc = unsafe { libc::sigwait(set, &mut sig) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(sig)
}

/// Ends the process at once with `status`, without unwinding or running destructors.
pub fn exit_now(status: i32) -> ! {
    // SAFETY: _exit ends the process immediately; nothing here needs to run after it.
    unsafe { libc::_exit(status) }
}

/// True when standard output is a pipe or terminal whose other end is gone.
pub fn stdout_closed() -> bool {
    let mut p = libc::pollfd {
        fd: libc::STDOUT_FILENO,
        events: 0,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout: poll only reports, never blocks.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n == 1 && p.revents & (libc::POLLERR | libc::POLLHUP) != 0
}
