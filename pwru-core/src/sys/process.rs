//! The process itself: page size, clock ticks, effective uid, the open-file limit and CPU
//! affinity.

use std::io;

/// The system's page size (4096 where it cannot be asked).
pub fn page_size() -> u32 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u32::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
}

/// Clock ticks per second (`_SC_CLK_TCK`, the unit of `/proc/<pid>/stat` times); at least 1.
pub fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(n).unwrap_or(0).max(1)
}

/// The effective user id.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Whether this process runs as root (effective uid 0).
pub fn is_root() -> bool {
    effective_uid() == 0
}

/// A resource limit: soft (`current`) and hard (`max`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// The soft limit, which the kernel enforces.
    pub current: u64,
    /// The hard limit, the ceiling of the soft one.
    pub max: u64,
}

/// getrlimit(RLIMIT_NOFILE).
pub fn open_file_limit() -> io::Result<Limit> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the live rlimit struct passed.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Limit {
        current: lim.rlim_cur,
        max: lim.rlim_max,
    })
}

/// setrlimit(RLIMIT_NOFILE).
pub fn set_open_file_limit(limit: Limit) -> io::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: limit.current,
        rlim_max: limit.max,
    };
    // SAFETY: setrlimit reads the live rlimit struct passed.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Pins the calling thread to CPU `cpu`.
pub fn pin_thread_to_cpu(cpu: usize) -> io::Result<()> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("cpu {cpu} is beyond CPU_SETSIZE"),
        ));
    }
    // SAFETY: cpu_set_t is a plain bit array; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: CPU_SET writes one bit inside `set` (cpu checked against CPU_SETSIZE above).
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: sched_setaffinity reads the live set of the size given, for this thread (pid 0).
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
