//! Process limits the tracer needs raised.

use std::io;

/// Raises the open-file limit (`RLIMIT_NOFILE`) to at least 65,536 where allowed, else to the
/// hard limit, and returns the new soft limit. The kprobe and fentry backends hold one fd per
/// traced function (about 1,600 for the full set), more than the usual soft limit of 1,024;
/// [`Tracer::attach`](crate::Tracer::attach) calls this for them.
pub fn raise_open_file_limit() -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the valid rlimit struct passed.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // Root may raise the hard limit too (up to fs.nr_open); others only the soft one.
    let want = libc::rlimit {
        rlim_cur: 65536.max(lim.rlim_max),
        rlim_max: 65536.max(lim.rlim_max),
    };
    // SAFETY: setrlimit reads the valid rlimit struct passed.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &want) } == 0 {
        return Ok(want.rlim_cur);
    }
    lim.rlim_cur = lim.rlim_max;
    // SAFETY: as above.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(lim.rlim_cur)
}
