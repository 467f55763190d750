//! [`ProgramStats`]: what the kernel counts for one loaded program.

use crate::sys;

/// Kernel statistics of a loaded program (run time needs BPF stats enabled).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProgramStats {
    /// Program id.
    pub id: u32,
    /// Total run time in ns while `kernel.bpf_stats_enabled` (or a stats fd) was on.
    pub run_time_ns: u64,
    /// Number of runs counted in the same period.
    pub run_cnt: u64,
    /// Runs the kernel skipped because a BPF program was already running on that CPU (its
    /// recursion guard: kprobes and kprobe.multi guard all programs together, fentry and
    /// tracepoints each program alone). Counted always, since program load.
    pub recursion_misses: u64,
    /// Instructions the verifier processed.
    pub verified_insns: u32,
}

impl ProgramStats {
    pub(crate) fn of(fd: std::os::fd::BorrowedFd<'_>) -> std::io::Result<Self> {
        let i = sys::prog_info(fd)?;
        Ok(ProgramStats {
            id: i.id,
            run_time_ns: i.run_time_ns,
            run_cnt: i.run_cnt,
            recursion_misses: i.recursion_misses,
            verified_insns: i.verified_insns,
        })
    }
}
