//! BPF_ENABLE_STATS: the kernel's per-program run-time statistics.

use std::io;
use std::os::fd::OwnedFd;

use aya_obj::generated::{bpf_cmd, bpf_stats_type};

use super::{bpf_fd, zeroed_attr};

/// BPF_ENABLE_STATS(BPF_STATS_RUN_TIME): run_time_ns/run_cnt are counted while the fd lives.
pub fn enable_run_time_stats() -> io::Result<OwnedFd> {
    let mut attr = zeroed_attr();
    // Writing a union member is safe; the others stay zero.
    attr.enable_stats.type_ = bpf_stats_type::BPF_STATS_RUN_TIME as u32;
    bpf_fd(bpf_cmd::BPF_ENABLE_STATS, &mut attr)
}
