//! Attachments that detach when dropped, and the statistics of the programs behind them. Every kind is fd based (BPF links or perf event
//! fds), so a process that dies, even by SIGKILL, leaves nothing attached.

use std::os::fd::{AsFd, OwnedFd};

use crate::object::ProgramStats;
use super::parallel;
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
    /// A perf kprobe event running a program the loader keeps (see [`detach_all`]).
    Perf { event: OwnedFd },
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
            holder: Holder::Perf { event },
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

/// Stops the programs of every perf kprobe among `links` at once, so that none runs while
/// the others are being removed (each close waits in the kernel).
fn disable_perf_events(links: &[Link]) {
    for l in links {
        if let Holder::Perf { event } = &l.holder {
            // A refusal only means the event keeps running until its close just below.
            if let Err(e) = sys::perf_event_disable(event.as_fd()) {
                log::debug!("disabling the kprobe on {} failed: {e}", l.target);
            }
        }
    }
}

/// Detaches every link, on `threads` threads (see
/// [`Loader::attach_threads`](crate::object::Loader::attach_threads)): the kernel waits for a grace period (or more)
/// per kprobe or trampoline removed (several threads did not make that faster in a 2-vCPU
/// guest, but may where the kernel lets the waits overlap). Perf kprobes
/// are all disabled first, so no program runs once the first close starts.
pub fn detach_all(threads: usize, links: Vec<Link>) {
    disable_perf_events(&links);
    parallel::consume_all(threads, links, drop);
}

/// [`detach_all`], keeping each link's program loaded to read its final counters
/// ([`Link::detach`]); in the order of `links`.
pub fn detach_all_keeping_programs(threads: usize, links: Vec<Link>) -> Vec<DetachedProgram> {
    disable_perf_events(&links);
    parallel::consume_all(threads, links, Link::detach)
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

