//! The three kernel calls the loader needs that `crate::sys` does not offer yet: writing a
//! global-data map's initial value, freezing `.rodata` (so the verifier sees the config as
//! constants, as aya's loader did), and a kretprobe perf event. They belong in the syscall
//! layer (`sys/map.rs`, `sys/perf.rs`); this file goes away when it has them.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_MAP_FREEZE: libc::c_long = 22;

/// Runs bpf(cmd, attr) with the first 32 bytes of `union bpf_attr` (enough for the map
/// commands here; the kernel requires the bytes past a command's fields to be zero).
fn bpf(cmd: libc::c_long, attr: &mut [u8; 32]) -> io::Result<()> {
    // SAFETY: attr is a live buffer of the size passed, laid out as the kernel's union
    // bpf_attr for `cmd`; the pointers written into it refer to memory the caller keeps alive
    // for the duration of this call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.as_mut_ptr(),
            attr.len() as libc::c_uint,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Sets entry 0 of array map `map` (a global-data section) to `value`.
pub(super) fn set_first_entry(map: BorrowedFd<'_>, value: &[u8]) -> io::Result<()> {
    let key = 0u32;
    let mut a = [0u8; 32];
    a[0..4].copy_from_slice(&(map.as_raw_fd() as u32).to_ne_bytes());
    a[8..16].copy_from_slice(&(&key as *const u32 as u64).to_ne_bytes());
    a[16..24].copy_from_slice(&(value.as_ptr() as u64).to_ne_bytes());
    bpf(BPF_MAP_UPDATE_ELEM, &mut a)
}

/// Freezes `map`: no more writes from user space, so the verifier may treat a read-only
/// map's contents as constants.
pub(super) fn freeze(map: BorrowedFd<'_>) -> io::Result<()> {
    let mut a = [0u8; 32];
    a[0..4].copy_from_slice(&(map.as_raw_fd() as u32).to_ne_bytes());
    bpf(BPF_MAP_FREEZE, &mut a)
}

const KPROBE_PMU: &str = "/sys/bus/event_source/devices/kprobe";

fn pmu_value(file: &str, what: &str) -> io::Result<u32> {
    let text = std::fs::read_to_string(format!("{KPROBE_PMU}/{file}"))?;
    // `type` holds a number; `format/retprobe` holds e.g. `config:0`.
    let num = text.trim().rsplit(':').next().unwrap_or("");
    num.parse().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unreadable kprobe PMU {what}: {text:?}"),
        )
    })
}

/// Opens a kretprobe perf event on `symbol` through the kprobe PMU and attaches `prog` to
/// it. Closing the returned fd detaches.
pub(crate) fn perf_kretprobe_attach(symbol: &CStr, prog: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let pmu_type = pmu_value("type", "type")?;
    let bit = pmu_value("format/retprobe", "retprobe bit")?;
    let config = 1u64.checked_shl(bit).unwrap_or(0);
    // struct perf_event_attr (PERF_ATTR_SIZE_VER5 = 112 bytes is enough for kprobes).
    let mut attr = [0u8; 112];
    attr[0..4].copy_from_slice(&pmu_type.to_ne_bytes()); // type
    attr[4..8].copy_from_slice(&112u32.to_ne_bytes()); // size
    attr[8..16].copy_from_slice(&config.to_ne_bytes()); // config: the retprobe flag
    attr[16..24].copy_from_slice(&1u64.to_ne_bytes()); // sample_period
    attr[24..32].copy_from_slice(&(1u64 << 10).to_ne_bytes()); // sample_type: PERF_SAMPLE_RAW
    attr[48..52].copy_from_slice(&1u32.to_ne_bytes()); // wakeup_events
    attr[56..64].copy_from_slice(&(symbol.as_ptr() as u64).to_ne_bytes()); // config1: kprobe_func
    // SAFETY: attr is a perf_event_attr of the declared size; symbol outlives the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            attr.as_ptr(),
            -1 as libc::c_int,  // any pid
            0 as libc::c_int,   // cpu 0 (kprobes fire on every cpu)
            -1 as libc::c_int,  // no group
            8 as libc::c_ulong, // PERF_FLAG_FD_CLOEXEC
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: perf_event_open returned a new fd that we now own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    const PERF_EVENT_IOC_SET_BPF: libc::c_ulong = 0x4004_2408;
    // SAFETY: ioctl on our own perf event fd with an int argument (the program fd).
    if unsafe { libc::ioctl(fd.as_raw_fd(), PERF_EVENT_IOC_SET_BPF, prog.as_raw_fd()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    const PERF_EVENT_IOC_ENABLE: libc::c_ulong = 0x2400;
    // SAFETY: ioctl on our own perf event fd, no argument.
    if unsafe { libc::ioctl(fd.as_raw_fd(), PERF_EVENT_IOC_ENABLE, 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}
