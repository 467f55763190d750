//! Process limits the tracer needs raised.

use std::io;

use crate::sys::process::{self as sys, Limit};

/// Raises the open-file limit (`RLIMIT_NOFILE`) to at least 65,536 where allowed, else to the
/// hard limit, and returns the new soft limit. The kprobe and fentry backends hold one fd per
/// traced function (about 1,600 for the full set), more than the usual soft limit of 1,024;
/// [`Tracer::attach`](crate::Tracer::attach) calls this for them.
pub fn raise_open_file_limit() -> io::Result<u64> {
    let lim = sys::open_file_limit()?;
    // Root may raise the hard limit too (up to fs.nr_open); others only the soft one.
    let want = Limit {
        current: 65536.max(lim.max),
        max: 65536.max(lim.max),
    };
    if sys::set_open_file_limit(want).is_ok() {
        return Ok(want.current);
    }
    let lim = Limit {
        current: lim.max,
        ..lim
    };
    sys::set_open_file_limit(lim)?;
    Ok(lim.current)
}
