//! Calendar time in the local time zone (localtime_r).

/// A broken-down local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LocalTime {
    /// The year, e.g. 2026.
    pub year: i32,
    /// The month, 1 to 12.
    pub month: i32,
    /// The day of the month, 1 to 31.
    pub day: i32,
    /// Hours, 0 to 23.
    pub hour: i32,
    /// Minutes, 0 to 59.
    pub minute: i32,
    /// Seconds, 0 to 60 (a leap second).
    pub second: i32,
}

/// `sec` seconds since the Unix epoch in the local time zone; `None` if the C library cannot
/// represent it.
pub fn local_time(sec: i64) -> Option<LocalTime> {
    let t = libc::time_t::try_from(sec).ok()?;
    // SAFETY: tm is plain data (integers and a pointer); all-zero is a valid value.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: localtime_r reads the live time_t and writes the live tm; it returns NULL on
    // failure, leaving tm unspecified (not read then).
    if unsafe { libc::localtime_r(&t, &mut tm) }.is_null() {
        return None;
    }
    Some(LocalTime {
        year: tm.tm_year + 1900,
        month: tm.tm_mon + 1,
        day: tm.tm_mday,
        hour: tm.tm_hour,
        minute: tm.tm_min,
        second: tm.tm_sec,
    })
}
