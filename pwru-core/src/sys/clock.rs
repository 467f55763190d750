//! Reading the kernel's clocks (clock_gettime).

use std::io;

/// The current time of clock `clock` (`libc::CLOCK_MONOTONIC`, the clock of
/// `bpf_ktime_get_ns`, or `libc::CLOCK_REALTIME`, ...) in nanoseconds.
pub fn now_ns(clock: libc::clockid_t) -> io::Result<i128> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a pointer to a live local; an
    // unknown clock id is refused with EINVAL.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec))
}
