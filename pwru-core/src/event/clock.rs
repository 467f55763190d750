//! Wall-clock time for events: the kernel stamps events with `bpf_ktime_get_ns`
//! (`CLOCK_MONOTONIC`), which has no fixed relation to the calendar. [`WallClock`] holds the
//! offset between `CLOCK_REALTIME` and `CLOCK_MONOTONIC`, measured once (at attach), and turns
//! a monotonic stamp into a [`SystemTime`].
//!
//! What the result means when the wall clock changes later: `CLOCK_MONOTONIC` follows the
//! same NTP rate corrections as `CLOCK_REALTIME`, so slewing keeps the two together; a *step*
//! (`settimeofday`, `date -s`, an NTP step, resume from suspend) moves only the wall clock.
//! Events after a step keep the offset measured at attach: their times stay ordered and
//! spaced as the kernel stamped them, but differ from what `SystemTime::now()` would have
//! said at that moment by the size of the step. Measure a new [`WallClock`] to follow a step.
//!
//! ```
//! use pwru_core::event::WallClock;
//! let clock = WallClock::measure().expect("clocks are readable");
//! // A stamp taken now converts to (about) now.
//! let now = clock.to_system_time(WallClock::monotonic_now_ns().unwrap());
//! let diff = match now.duration_since(std::time::SystemTime::now()) {
//!     Ok(d) => d,
//!     Err(e) => e.duration(),
//! };
//! assert!(diff < std::time::Duration::from_secs(1));
//! ```

use std::io;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How many (monotonic, realtime, monotonic) triples [`WallClock::measure`] takes; it keeps
/// the one with the narrowest monotonic bracket (the least disturbed by preemption).
const ROUNDS: usize = 7;

/// Converts kernel monotonic stamps (ns) to wall-clock time with an offset measured once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WallClock {
    /// `CLOCK_REALTIME - CLOCK_MONOTONIC`, in nanoseconds.
    offset_ns: i128,
    /// Half the width of the monotonic bracket around the realtime read.
    uncertainty_ns: u64,
}

fn clock_ns(clock: libc::clockid_t) -> io::Result<i128> {
    crate::sys::clock::now_ns(clock)
}

impl WallClock {
    /// Measures the offset now: reads `CLOCK_MONOTONIC`, `CLOCK_REALTIME`, `CLOCK_MONOTONIC`
    /// several times and keeps the tightest bracket. Fails only if the clocks cannot be read.
    pub fn measure() -> io::Result<WallClock> {
        let mut best: Option<WallClock> = None;
        for _ in 0..ROUNDS {
            let m1 = clock_ns(libc::CLOCK_MONOTONIC)?;
            let r = clock_ns(libc::CLOCK_REALTIME)?;
            let m2 = clock_ns(libc::CLOCK_MONOTONIC)?;
            let half = (m2 - m1).max(0) / 2;
            let this = WallClock {
                offset_ns: r - (m1 + half),
                uncertainty_ns: u64::try_from(half).unwrap_or(u64::MAX),
            };
            if best.is_none_or(|b| this.uncertainty_ns < b.uncertainty_ns) {
                best = Some(this);
            }
        }
        // ROUNDS > 0, so `best` is set; the fallback only keeps this free of unwrap.
        best.ok_or_else(|| io::Error::other("no clock reading taken"))
    }

    /// A clock with a known offset (`CLOCK_REALTIME - CLOCK_MONOTONIC`, ns), e.g. for
    /// replaying recorded events.
    pub fn from_offset_ns(offset_ns: i128) -> WallClock {
        WallClock {
            offset_ns,
            uncertainty_ns: 0,
        }
    }

    /// `CLOCK_MONOTONIC` now, in nanoseconds: the clock of [`Event::timestamp_ns`](crate::Event::timestamp_ns).
    pub fn monotonic_now_ns() -> io::Result<u64> {
        clock_ns(libc::CLOCK_MONOTONIC).map(|n| u64::try_from(n).unwrap_or(0))
    }

    /// `CLOCK_REALTIME - CLOCK_MONOTONIC` in nanoseconds.
    pub fn offset_ns(&self) -> i128 {
        self.offset_ns
    }

    /// How far off the measured offset may be (half the bracket it was read in).
    pub fn uncertainty(&self) -> Duration {
        Duration::from_nanos(self.uncertainty_ns)
    }

    /// The wall-clock time of monotonic stamp `monotonic_ns` (times before 1970 saturate to
    /// the epoch).
    pub fn to_system_time(&self, monotonic_ns: u64) -> SystemTime {
        let ns = i128::from(monotonic_ns) + self.offset_ns;
        let ns = u128::try_from(ns).unwrap_or(0);
        let secs = u64::try_from(ns / 1_000_000_000).unwrap_or(u64::MAX);
        let sub = (ns % 1_000_000_000) as u32;
        UNIX_EPOCH
            .checked_add(Duration::new(secs, sub))
            .unwrap_or(UNIX_EPOCH)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversion_is_offset_addition() {
        let c = WallClock::from_offset_ns(1_700_000_000_000_000_000);
        let t = c.to_system_time(1_500_000_001);
        assert_eq!(
            t.duration_since(UNIX_EPOCH).unwrap(),
            Duration::new(1_700_000_001, 500_000_001)
        );
        // A negative result saturates instead of panicking.
        assert_eq!(WallClock::from_offset_ns(-10).to_system_time(5), UNIX_EPOCH);
    }

    #[test]
    fn measured_offset_brackets_now() {
        let before = SystemTime::now();
        let c = WallClock::measure().expect("measure");
        let t = c.to_system_time(WallClock::monotonic_now_ns().expect("monotonic"));
        let after = SystemTime::now();
        let slack = c.uncertainty();
        assert!(
            t + slack >= before && t <= after + slack,
            "{before:?} {t:?} {after:?}"
        );
    }
}
