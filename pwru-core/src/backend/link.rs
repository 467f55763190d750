//! Attachments that detach when dropped, and the statistics of the programs behind them. Every kind is fd based (BPF links or perf event
//! fds), so a process that dies, even by SIGKILL, leaves nothing attached.

use std::os::fd::{AsFd, OwnedFd};

use super::parallel;
use crate::object::ProgramStats;
use crate::sys;

/// One attachment of one program to one target (or to many, for kprobe.multi).
pub struct Link {
    program: String,
    target: String,
    holder: Holder,
}

enum Holder {
    /// A link (or perf event) fd and the program fd it runs.
    Fd { _link: OwnedFd, prog: OwnedFd },
    /// A link fd of a program the loader keeps, shared by all its links.
    Shared { _link: OwnedFd },
    /// A perf kprobe event running a program the loader keeps.
    Perf { _event: OwnedFd },
}

impl Link {
    pub(crate) fn from_fds(program: &str, target: &str, link: OwnedFd, prog: OwnedFd) -> Self {
        Link {
            program: program.to_string(),
            target: target.to_string(),
            holder: Holder::Fd { _link: link, prog },
        }
    }

    /// A link of a program the loader keeps loaded for all its links (tracepoints, kprobes).
    pub(crate) fn shared(program: &str, target: &str, link: OwnedFd) -> Self {
        Link {
            program: program.to_string(),
            target: target.to_string(),
            holder: Holder::Shared { _link: link },
        }
    }

    /// A perf kprobe event (its program set) running a program the loader keeps.
    pub(crate) fn perf_event(program: &str, target: &str, event: OwnedFd) -> Self {
        Link {
            program: program.to_string(),
            target: target.to_string(),
            holder: Holder::Perf { _event: event },
        }
    }

    /// Name of the program in the object.
    pub fn program(&self) -> &str {
        &self.program
    }

    /// What it is attached to (function, tracepoint, `prog:<id>`, or `<n> symbols`).
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The program this link owns (fentry and other per-link loads); `None`
    /// when the program is shared and owned by the loader.
    pub(crate) fn program_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        match &self.holder {
            Holder::Fd { prog, .. } => Some(prog.as_fd()),
            Holder::Shared { .. } | Holder::Perf { .. } => None,
        }
    }

    /// Statistics of the program behind this link, for links with their own program
    /// (fentry, BPF program tracing); None for programs shared by their links
    /// (tracepoints, kprobes, kprobe.multi) (use
    /// [`Loader::program_stats`](crate::object::Loader::program_stats)).
    pub fn stats(&self) -> Option<std::io::Result<ProgramStats>> {
        match &self.holder {
            Holder::Fd { prog, .. } => Some(ProgramStats::of(prog.as_fd())),
            Holder::Shared { .. } | Holder::Perf { .. } => None,
        }
    }
}

/// The program of a detached [`Link`], kept to read its statistics (see [`Link::detach`]).
pub struct DetachedProgram {
    program: String,
    prog: Option<OwnedFd>,
}

impl DetachedProgram {
    /// Name of the program in the object.
    pub fn program(&self) -> &str {
        &self.program
    }

    /// Statistics of the program, as [`Link::stats`] (None for shared programs, which stay
    /// loaded in the [`Loader`](crate::object::Loader)).
    pub fn stats(&self) -> Option<std::io::Result<ProgramStats>> {
        self.prog.as_ref().map(|fd| ProgramStats::of(fd.as_fd()))
    }
}

impl Link {
    /// Detaches now, keeping the program loaded (while the returned value lives) so that its
    /// run counters can still be read: counts read afterwards are final.
    pub fn detach(self) -> DetachedProgram {
        let prog = match self.holder {
            Holder::Fd { prog, .. } => Some(prog),
            Holder::Shared { .. } | Holder::Perf { .. } => None,
        };
        DetachedProgram {
            program: self.program,
            prog,
        }
    }
}

/// Threads that close links at once, whatever the attach threads: closing a perf kprobe or a
/// trampoline link is the kernel sleeping in RCU grace periods, not CPU work, so idle threads
/// cost nothing while they wait.
///
/// A perf kprobe's close (6.12; 6.1 alike) waits in three stages: the program's release
/// (`perf_event_detach_bpf_prog`: a Tasks Trace grace period under the global
/// `bpf_event_mutex`), the probe's unregistration (`perf_kprobe_destroy`: the ftrace update,
/// then a Tasks Trace and an RCU grace period under the global `event_mutex`) and the kprobe's
/// removal (`unregister_kprobe`: an RCU grace period, no lock held). One thread waits for all
/// of them in turn; several keep a close in each stage and share grace periods, so detach
/// takes the `event_mutex` stage alone per kprobe. `detach-lab` (tests/vm/README.md), 187
/// kprobes in a 6.12 TCG guest: 1 thread 16.4 s, 4 threads 9.3 s, 8: 8.9 s, 16: 8.0-9.5 s,
/// 32: 11.6 s, 64: 10.2 s; the whole set, 1,603 kprobes: 175.7 s on 1 thread, 96.5 s on 16
/// (the `event_mutex` stage includes an ftrace update that grows with the kprobes
/// registered, so the gain is smaller there). A trampoline (fentry) is removed under ftrace's global mutexes
/// with two Tasks RCU grace periods, so threads do not change its detach (184 fentry links:
/// 27.3 s on 1 thread, 26.5 s on 16).
pub const DETACH_THREADS: usize = 16;

/// The threads [`detach_all`] uses: [`DETACH_THREADS`], or more if the caller asks.
fn detach_threads(asked: usize) -> usize {
    asked.max(DETACH_THREADS)
}

/// Detaches every link, on [`DETACH_THREADS`] threads (or `threads`, if more): see
/// [`DETACH_THREADS`] for why threads help although the kernel serialises most of the work.
/// When it returns no program runs any more.
pub fn detach_all(threads: usize, links: Vec<Link>) {
    parallel::consume_all(detach_threads(threads), links, drop);
}

/// [`detach_all`], keeping each link's program loaded to read its final counters
/// ([`Link::detach`]); in the order of `links`.
pub fn detach_all_keeping_programs(threads: usize, links: Vec<Link>) -> Vec<DetachedProgram> {
    parallel::consume_all(detach_threads(threads), links, Link::detach)
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("program", &self.program)
            .field("target", &self.target)
            .finish()
    }
}

/// Turns on the kernel's run-time statistics (run_time_ns/run_cnt) while the fd lives.
pub fn enable_stats() -> std::io::Result<OwnedFd> {
    sys::enable_run_time_stats()
}
