//! The raw bpf(2) and perf_event_open(2) calls that aya 0.14 does not offer: program loads
//! with an expected attach type or a BPF-program target, kprobe.multi links, tracing links,
//! program info and statistics. Every `unsafe` block of the loader is in this module.
//!
//! Attribute blocks are built as zeroed byte buffers with fields written at the offsets of
//! the kernel's `union bpf_attr` (include/uapi/linux/bpf.h); unknown trailing bytes stay zero
//! as the kernel requires.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use aya_obj::generated::{bpf_insn, bpf_prog_info};

/// `union bpf_attr` size used for every command (the 6.x layout of BPF_PROG_LOAD).
const ATTR_SIZE: usize = 144;

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_RAW_TRACEPOINT_OPEN: libc::c_long = 17;
const BPF_LINK_CREATE: libc::c_long = 28;
const BPF_ENABLE_STATS: libc::c_long = 32;

/// `enum bpf_prog_type` values used here.
pub(crate) const PROG_TYPE_KPROBE: u32 = 2;
pub(crate) const PROG_TYPE_RAW_TRACEPOINT: u32 = 17;
pub(crate) const PROG_TYPE_TRACING: u32 = 26;

/// `enum bpf_attach_type` values used here.
pub(crate) const ATTACH_TRACE_RAW_TP: u32 = 23;
pub(crate) const ATTACH_TRACE_FENTRY: u32 = 24;
pub(crate) const ATTACH_TRACE_FEXIT: u32 = 25;
pub(crate) const ATTACH_TRACE_KPROBE_MULTI: u32 = 42;

struct Attr([u8; ATTR_SIZE]);

impl Attr {
    fn new() -> Self {
        Attr([0; ATTR_SIZE])
    }
    fn u32(&mut self, off: usize, v: u32) -> &mut Self {
        self.0[off..off + 4].copy_from_slice(&v.to_ne_bytes());
        self
    }
    fn u64(&mut self, off: usize, v: u64) -> &mut Self {
        self.0[off..off + 8].copy_from_slice(&v.to_ne_bytes());
        self
    }
    fn bytes(&mut self, off: usize, v: &[u8]) -> &mut Self {
        self.0[off..off + v.len()].copy_from_slice(v);
        self
    }
}

/// Runs bpf(cmd, attr) and returns the non-negative result.
fn bpf(cmd: libc::c_long, attr: &mut Attr) -> io::Result<libc::c_long> {
    // SAFETY: attr is a live, zero-initialised buffer of ATTR_SIZE bytes laid out as the
    // kernel's union bpf_attr for `cmd`; every pointer written into it refers to memory the
    // caller keeps alive for the duration of this call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.0.as_mut_ptr(),
            ATTR_SIZE as libc::c_uint,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn bpf_fd(cmd: libc::c_long, attr: &mut Attr) -> io::Result<OwnedFd> {
    let fd = bpf(cmd, attr)?;
    // SAFETY: on success these commands return a new file descriptor that nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// What a raw BPF_PROG_LOAD needs.
pub(crate) struct ProgLoad<'a> {
    pub prog_type: u32,
    pub expected_attach_type: u32,
    pub insns: &'a [bpf_insn],
    pub name: &'a str,
    pub attach_btf_id: u32,
    pub attach_prog_fd: Option<BorrowedFd<'a>>,
}

/// A refused load: the errno and the verifier's log (empty if the kernel gave none).
#[derive(Debug)]
pub(crate) struct LoadRefused {
    pub error: io::Error,
    pub log: String,
}

/// Loads a program; on refusal loads it again with a verifier log so the caller can show why.
pub(crate) fn prog_load(p: &ProgLoad<'_>) -> Result<OwnedFd, LoadRefused> {
    match prog_load_with_log(p, &mut []) {
        Ok(fd) => Ok(fd),
        Err(first) => {
            let mut log = vec![0u8; 1 << 20];
            match prog_load_with_log(p, &mut log) {
                Ok(fd) => Ok(fd),
                Err(e) => {
                    let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
                    let text = String::from_utf8_lossy(&log[..end]).into_owned();
                    // ENOSPC only means the log buffer was too small: keep the first errno.
                    let error = if e.raw_os_error() == Some(libc::ENOSPC) {
                        first
                    } else {
                        e
                    };
                    Err(LoadRefused { error, log: text })
                }
            }
        }
    }
}

fn prog_load_with_log(p: &ProgLoad<'_>, log: &mut [u8]) -> io::Result<OwnedFd> {
    let license = c"GPL";
    let mut name = [0u8; 16];
    let valid: Vec<u8> = p
        .name
        .bytes()
        .filter(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'.')
        .take(15)
        .collect();
    name[..valid.len()].copy_from_slice(&valid);
    let mut a = Attr::new();
    a.u32(0, p.prog_type)
        .u32(4, p.insns.len() as u32)
        .u64(8, p.insns.as_ptr() as u64)
        .u64(16, license.as_ptr() as u64)
        .bytes(48, &name)
        .u32(68, p.expected_attach_type)
        .u32(108, p.attach_btf_id);
    if !log.is_empty() {
        a.u32(24, 1)
            .u32(28, log.len() as u32)
            .u64(32, log.as_mut_ptr() as u64);
    }
    if let Some(fd) = p.attach_prog_fd {
        a.u32(112, fd.as_raw_fd() as u32);
    }
    bpf_fd(BPF_PROG_LOAD, &mut a)
}

/// BPF_LINK_CREATE for a kprobe.multi program on `symbols` (names as in /proc/kallsyms).
pub(crate) fn link_kprobe_multi(prog: BorrowedFd<'_>, symbols: &[CString]) -> io::Result<OwnedFd> {
    let ptrs: Vec<u64> = symbols.iter().map(|s| s.as_ptr() as u64).collect();
    let mut a = Attr::new();
    a.u32(0, prog.as_raw_fd() as u32)
        .u32(8, ATTACH_TRACE_KPROBE_MULTI)
        .u32(20, ptrs.len() as u32)
        .u64(24, ptrs.as_ptr() as u64);
    bpf_fd(BPF_LINK_CREATE, &mut a)
}

/// BPF_RAW_TRACEPOINT_OPEN: attaches raw_tp programs by name, and tracing programs
/// (tp_btf, fentry, fexit) to the target fixed at load time (`name` = None).
pub(crate) fn raw_tracepoint_open(
    prog: BorrowedFd<'_>,
    name: Option<&CStr>,
) -> io::Result<OwnedFd> {
    let mut a = Attr::new();
    a.u64(0, name.map_or(0, |n| n.as_ptr() as u64))
        .u32(8, prog.as_raw_fd() as u32);
    bpf_fd(BPF_RAW_TRACEPOINT_OPEN, &mut a)
}

/// A new fd for the loaded program with this id.
pub(crate) fn prog_fd_by_id(id: u32) -> io::Result<OwnedFd> {
    let mut a = Attr::new();
    a.u32(0, id);
    bpf_fd(BPF_PROG_GET_FD_BY_ID, &mut a)
}

/// What pwru needs from bpf_prog_info.
#[derive(Debug, Clone)]
pub(crate) struct ProgInfo {
    pub prog_type: u32,
    pub id: u32,
    pub name: String,
    /// BTF type id of the program's main function (func_info[0]), 0 if none.
    pub func_type_id: u32,
    pub run_time_ns: u64,
    pub run_cnt: u64,
    pub recursion_misses: u64,
    pub verified_insns: u32,
}

pub(crate) fn prog_info(fd: BorrowedFd<'_>) -> io::Result<ProgInfo> {
    // func_info records are { insn_off: u32, type_id: u32 }.
    let mut func_info = [0u32; 2];
    // SAFETY: bpf_prog_info is a plain C struct of integers (bindgen); all-zero is valid.
    let mut info: bpf_prog_info = unsafe { std::mem::zeroed() };
    info.nr_func_info = 1;
    info.func_info_rec_size = 8;
    info.func_info = func_info.as_mut_ptr() as u64;
    let mut a = Attr::new();
    a.u32(0, fd.as_raw_fd() as u32)
        .u32(4, std::mem::size_of::<bpf_prog_info>() as u32)
        .u64(8, &mut info as *mut bpf_prog_info as u64);
    if bpf(BPF_OBJ_GET_INFO_BY_FD, &mut a).is_err() {
        // Some kernels refuse func_info for programs without BTF: ask again without it.
        // SAFETY: as above.
        info = unsafe { std::mem::zeroed() };
        a.u64(8, &mut info as *mut bpf_prog_info as u64);
        bpf(BPF_OBJ_GET_INFO_BY_FD, &mut a)?;
    }
    let name_bytes: Vec<u8> = info
        .name
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    Ok(ProgInfo {
        prog_type: info.type_,
        id: info.id,
        name: String::from_utf8_lossy(&name_bytes).into_owned(),
        func_type_id: if info.nr_func_info > 0 {
            func_info[1]
        } else {
            0
        },
        run_time_ns: info.run_time_ns,
        run_cnt: info.run_cnt,
        recursion_misses: info.recursion_misses,
        verified_insns: info.verified_insns,
    })
}

/// BPF_ENABLE_STATS(BPF_STATS_RUN_TIME): run_time_ns/run_cnt are counted while the fd lives.
pub(crate) fn enable_run_time_stats() -> io::Result<OwnedFd> {
    let mut a = Attr::new();
    a.u32(0, 0);
    bpf_fd(BPF_ENABLE_STATS, &mut a)
}

/// Opens a kprobe perf event on `symbol` (PMU `pmu_type`) and attaches `prog` to it.
/// Closing the returned fd detaches: nothing is left in tracefs.
pub(crate) fn perf_kprobe_attach(
    pmu_type: u32,
    symbol: &CStr,
    prog: BorrowedFd<'_>,
) -> io::Result<OwnedFd> {
    // struct perf_event_attr (PERF_ATTR_SIZE_VER5 = 112 bytes is enough for kprobes).
    let mut attr = [0u8; 112];
    attr[0..4].copy_from_slice(&pmu_type.to_ne_bytes()); // type
    attr[4..8].copy_from_slice(&112u32.to_ne_bytes()); // size
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

/// pwru-filter instructions as the kernel's `bpf_insn`s.
pub(crate) fn insns_from(code: &[pwru_filter::Insn]) -> Vec<bpf_insn> {
    code.iter()
        .map(|i| {
            // SAFETY: bpf_insn is a plain C struct (bindgen); all-zero is a valid value.
            let mut b: bpf_insn = unsafe { std::mem::zeroed() };
            b.code = i.code;
            b.set_dst_reg(i.dst);
            b.set_src_reg(i.src);
            b.off = i.off;
            b.imm = i.imm;
            b
        })
        .collect()
}

/// `r0 = 0; exit`: the program the feature probes load.
pub(crate) fn trivial_program() -> [bpf_insn; 2] {
    // SAFETY: bpf_insn is a plain C struct (bindgen); all-zero is a valid value.
    let mut mov: bpf_insn = unsafe { std::mem::zeroed() };
    mov.code = 0xb7;
    // SAFETY: as above.
    let mut exit: bpf_insn = unsafe { std::mem::zeroed() };
    exit.code = 0x95;
    [mov, exit]
}
