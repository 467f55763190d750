//! Perf kprobes: perf_event_open(2) on the kprobe PMU (type read from sysfs) and
//! PERF_EVENT_IOC_SET_BPF / PERF_EVENT_IOC_ENABLE to run a program on them. Closing the event
//! fd removes the probe: nothing is left in tracefs.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use aya_obj::generated::{
    perf_event_attr, perf_event_sample_format, PERF_EVENT_IOC_DISABLE, PERF_EVENT_IOC_ENABLE,
    PERF_EVENT_IOC_SET_BPF, PERF_FLAG_FD_CLOEXEC,
};

use super::{owned_fd, ptr_u64};

/// Where the kernel describes its kprobe PMU.
const KPROBE_PMU: &str = "/sys/bus/event_source/devices/kprobe";

/// The kernel's kprobe PMU: its dynamic type and which `config` bit asks for a kretprobe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KprobePmu {
    /// The PMU type for perf_event_attr.type.
    pub pmu_type: u32,
    /// The `config` bit of the retprobe flag.
    pub retprobe_bit: u32,
}

impl KprobePmu {
    /// Reads the PMU from sysfs. `NotFound` means the kernel has no kprobes (built without
    /// CONFIG_KPROBES).
    pub fn from_sysfs() -> io::Result<KprobePmu> {
        let ty = std::fs::read_to_string(format!("{KPROBE_PMU}/type"))?;
        let pmu_type = ty.trim().parse().map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unreadable kprobe PMU type {ty:?}"),
            )
        })?;
        // "config:0" on every kernel so far; read it rather than assume it.
        let retprobe_bit = std::fs::read_to_string(format!("{KPROBE_PMU}/format/retprobe"))
            .ok()
            .and_then(|s| s.trim().strip_prefix("config:")?.parse().ok())
            .unwrap_or(0);
        Ok(KprobePmu {
            pmu_type,
            retprobe_bit,
        })
    }
}

/// Stops the perf event `event` from running its program (PERF_EVENT_IOC_DISABLE). Cheap:
/// the probe stays registered until the fd is closed, which is where the kernel waits.
pub fn perf_event_disable(event: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: ioctl on a perf event fd the caller holds; DISABLE takes no argument.
    if unsafe {
        libc::ioctl(
            event.as_raw_fd(),
            PERF_EVENT_IOC_DISABLE as libc::c_ulong,
            0,
        )
    } < 0
    {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Where a perf kprobe goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KprobeAt<'a> {
    /// A function the kernel looks up by name. The kernel refuses a name defined more than
    /// once (EADDRNOTAVAIL, on kernels with that check).
    Symbol(&'a CStr),
    /// A function's address from /proc/kallsyms. The kernel then skips its own searches of
    /// the symbol table by name (on 6.1 a walk of every symbol per probe).
    Address(u64),
}

/// Opens a kprobe perf event on `symbol` (PMU `pmu_type`) and attaches `prog` to it.
/// Closing the returned fd detaches: nothing is left in tracefs.
pub fn perf_kprobe_attach(
    pmu_type: u32,
    symbol: &CStr,
    prog: BorrowedFd<'_>,
) -> io::Result<OwnedFd> {
    let pmu = KprobePmu {
        pmu_type,
        retprobe_bit: 0,
    };
    perf_kprobe_open(&pmu, KprobeAt::Symbol(symbol), false, prog)
}

/// Opens a kprobe (or, with `retprobe`, a kretprobe) perf event at `at` and runs `prog` on
/// it (PERF_EVENT_IOC_SET_BPF). Closing the returned fd removes the probe.
pub fn perf_kprobe_open(
    pmu: &KprobePmu,
    at: KprobeAt<'_>,
    retprobe: bool,
    prog: BorrowedFd<'_>,
) -> io::Result<OwnedFd> {
    let event = perf_kprobe_event(pmu, at, retprobe)?;
    // SAFETY: ioctl on our own perf event fd with an int argument (the program fd).
    let rc = unsafe {
        libc::ioctl(
            event.as_raw_fd(),
            PERF_EVENT_IOC_SET_BPF as libc::c_ulong,
            prog.as_raw_fd(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: ioctl on our own perf event fd; ENABLE takes no argument.
    if unsafe { libc::ioctl(event.as_raw_fd(), PERF_EVENT_IOC_ENABLE as libc::c_ulong, 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(event)
}

/// Opens a kprobe (kretprobe with `retprobe`) perf event at `at`, with no program: the
/// kprobe is registered and armed; a program is attached to it with
/// [`perf_kprobe_open`]'s ioctl or a perf link ([`link_perf_event`](super::link_perf_event)).
/// Closing the returned fd removes the probe.
pub fn perf_kprobe_event(pmu: &KprobePmu, at: KprobeAt<'_>, retprobe: bool) -> io::Result<OwnedFd> {
    // SAFETY: perf_event_attr is a plain C struct of integers and unions of integers
    // (bindgen); all-zero is a valid value.
    let mut attr: perf_event_attr = unsafe { std::mem::zeroed() };
    attr.type_ = pmu.pmu_type;
    attr.size = std::mem::size_of::<perf_event_attr>() as u32;
    if retprobe {
        attr.config = 1u64.checked_shl(pmu.retprobe_bit).unwrap_or(0);
    }
    attr.__bindgen_anon_1.sample_period = 1;
    attr.sample_type = perf_event_sample_format::PERF_SAMPLE_RAW as u64;
    attr.__bindgen_anon_2.wakeup_events = 1;
    match at {
        KprobeAt::Symbol(symbol) => attr.__bindgen_anon_3.kprobe_func = ptr_u64(symbol.as_ptr()),
        // kprobe_func 0 tells the kernel to use kprobe_addr (the field it otherwise reads as
        // the offset from the symbol).
        KprobeAt::Address(address) => attr.__bindgen_anon_4.kprobe_addr = address,
    }
    // A kprobe's program runs on every CPU whatever CPU its event is opened on; opening it on
    // the CPU this thread runs on installs it there without a call to another CPU (a few
    // percent of each attach in a 2-vCPU TCG guest, where cross-CPU calls are slow).
    // SAFETY: sched_getcpu takes nothing and returns a number or -1.
    let cpu = unsafe { libc::sched_getcpu() }.max(0);
    // SAFETY: attr is a live perf_event_attr of the size it declares; the symbol (if any)
    // outlives the call. pid -1 / one cpu / no group is the system-wide form kprobes require.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &attr as *const perf_event_attr,
            -1 as libc::c_int,
            cpu as libc::c_int,
            -1 as libc::c_int,
            PERF_FLAG_FD_CLOEXEC as libc::c_ulong,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    owned_fd(ret)
}
