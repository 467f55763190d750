//! Raw `bpf(2)` and `perf_event_open(2)` calls for the trivial programs.
//!
//! The capability checks load and attach hand-assembled programs directly, so that a refusal
//! comes straight from the kernel (no loader in between can hide or reinterpret it), and so
//! that `kprobe.multi`, which aya 0.14 cannot load, goes through the same code as the rest.

use std::ffi::CString;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

const BPF_MAP_CREATE: u32 = 0;
const BPF_MAP_LOOKUP_ELEM: u32 = 1;
const BPF_PROG_LOAD: u32 = 5;
const BPF_RAW_TRACEPOINT_OPEN: u32 = 17;
const BPF_LINK_CREATE: u32 = 28;

const BPF_MAP_TYPE_ARRAY: u32 = 2;

/// `bpf_prog_type` values used here.
pub const PROG_TYPE_SOCKET_FILTER: u32 = 1;
/// `BPF_PROG_TYPE_KPROBE` (kprobe, kretprobe and kprobe.multi).
pub const PROG_TYPE_KPROBE: u32 = 2;
/// `BPF_PROG_TYPE_TRACING` (fentry, fexit, tp_btf).
pub const PROG_TYPE_TRACING: u32 = 26;

/// `bpf_attach_type` values used here.
pub const ATTACH_TRACE_RAW_TP: u32 = 23;
/// `BPF_TRACE_FENTRY`.
pub const ATTACH_TRACE_FENTRY: u32 = 24;
/// `BPF_TRACE_FEXIT`.
pub const ATTACH_TRACE_FEXIT: u32 = 25;
/// `BPF_TRACE_KPROBE_MULTI`.
pub const ATTACH_TRACE_KPROBE_MULTI: u32 = 42;

/// Errno the kernel uses for "not supported" inside BPF (`ENOTSUPP`, not exported to libc).
pub const ENOTSUPP: i32 = 524;

/// One eBPF instruction, laid out as `struct bpf_insn`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

impl Insn {
    const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Self {
        Insn {
            code,
            regs: (src << 4) | (dst & 0x0f),
            off,
            imm,
        }
    }
}

/// A program that adds 1 to slot `slot` of the u64 array map `map_fd` and returns 0.
/// It ignores its context, so the same instructions are valid for every tracing kind.
pub fn counter_program(map_fd: RawFd, slot: u32) -> Vec<Insn> {
    vec![
        Insn::new(0x62, 10, 0, -4, slot as i32), // *(u32 *)(r10 - 4) = slot
        Insn::new(0x18, 1, 1, 0, map_fd),        // r1 = map (ld_imm64, BPF_PSEUDO_MAP_FD)
        Insn::new(0, 0, 0, 0, 0),
        Insn::new(0xbf, 2, 10, 0, 0), // r2 = r10
        Insn::new(0x07, 2, 0, 0, -4), // r2 += -4
        Insn::new(0x85, 0, 0, 0, 1),  // call bpf_map_lookup_elem
        Insn::new(0x15, 0, 0, 2, 0),  // if r0 == 0 goto +2
        Insn::new(0xb7, 1, 0, 0, 1),  // r1 = 1
        Insn::new(0xdb, 0, 1, 0, 0),  // lock *(u64 *)(r0 + 0) += r1
        Insn::new(0xb7, 0, 0, 0, 0),  // r0 = 0
        Insn::new(0x95, 0, 0, 0, 0),  // exit
    ]
}

/// `r0 = 0; exit`: the smallest program, used for the load-time baseline.
pub fn return_zero_program() -> Vec<Insn> {
    vec![Insn::new(0xb7, 0, 0, 0, 0), Insn::new(0x95, 0, 0, 0, 0)]
}

/// A syscall failure with the operation that failed, kept as an `io::Error` for its errno.
#[derive(Debug)]
pub struct SysError {
    /// What was being done, e.g. `BPF_LINK_CREATE(kprobe.multi ip_rcv)`.
    pub op: String,
    /// The kernel's answer.
    pub err: io::Error,
    /// The verifier log, when a program load failed.
    pub log: String,
}

impl SysError {
    fn last(op: impl Into<String>) -> Self {
        SysError {
            op: op.into(),
            err: io::Error::last_os_error(),
            log: String::new(),
        }
    }

    /// The raw errno (0 if none).
    pub fn errno(&self) -> i32 {
        self.err.raw_os_error().unwrap_or(0)
    }

    /// True when the kernel says the feature does not exist (as opposed to a broken request).
    pub fn is_unsupported(&self) -> bool {
        matches!(self.errno(), libc::EOPNOTSUPP | ENOTSUPP | libc::ENOSYS)
    }
}

impl std::fmt::Display for SysError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self.errno() {
            ENOTSUPP => "ENOTSUPP (524)".to_string(),
            _ => self.err.to_string(),
        };
        write!(f, "{}: {}", self.op, name)?;
        if !self.log.is_empty() {
            let tail: String = self
                .log
                .lines()
                .rev()
                .take(2)
                .collect::<Vec<_>>()
                .join(" | ");
            write!(f, " (verifier: {tail})")?;
        }
        Ok(())
    }
}

fn sys_bpf(cmd: u32, attr: &mut [u64; 16]) -> libc::c_long {
    // SAFETY: `attr` is a zero-initialised 128-byte buffer laid out as `union bpf_attr` for
    // `cmd`; every pointer stored in it refers to memory that outlives this call.
    unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd as libc::c_long,
            attr.as_mut_ptr(),
            std::mem::size_of::<[u64; 16]>(),
        )
    }
}

fn owned_fd(ret: libc::c_long, op: impl Into<String>) -> Result<OwnedFd, SysError> {
    if ret < 0 {
        return Err(SysError::last(op));
    }
    // SAFETY: the kernel just returned this descriptor to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

/// Writes `v` as u32 at byte offset `off` of the attribute buffer.
fn put_u32(attr: &mut [u64; 16], off: usize, v: u32) {
    let word = &mut attr[off / 8];
    let shift = (off % 8) * 8;
    *word = (*word & !(0xffff_ffffu64 << shift)) | (u64::from(v) << shift);
}

/// Creates a u64 array map with `entries` slots.
pub fn create_counter_map(entries: u32) -> Result<OwnedFd, SysError> {
    let mut attr = [0u64; 16];
    put_u32(&mut attr, 0, BPF_MAP_TYPE_ARRAY);
    put_u32(&mut attr, 4, 4); // key_size
    put_u32(&mut attr, 8, 8); // value_size
    put_u32(&mut attr, 12, entries);
    owned_fd(sys_bpf(BPF_MAP_CREATE, &mut attr), "BPF_MAP_CREATE(array)")
}

/// Reads slot `slot` of a u64 array map.
pub fn read_counter(map: &OwnedFd, slot: u32) -> Result<u64, SysError> {
    use std::os::fd::AsRawFd;
    let key = slot;
    let mut value = 0u64;
    let mut attr = [0u64; 16];
    put_u32(&mut attr, 0, map.as_raw_fd() as u32);
    attr[1] = &key as *const u32 as u64;
    attr[2] = &mut value as *mut u64 as u64;
    if sys_bpf(BPF_MAP_LOOKUP_ELEM, &mut attr) < 0 {
        return Err(SysError::last("BPF_MAP_LOOKUP_ELEM"));
    }
    Ok(value)
}

/// What to load: program type, expected attach type and BTF target.
#[derive(Clone, Copy, Debug, Default)]
pub struct LoadSpec {
    /// `bpf_prog_type`.
    pub prog_type: u32,
    /// `expected_attach_type` (0 when the type has none).
    pub expected_attach_type: u32,
    /// Kernel BTF id of the attach target (fentry/fexit/tp_btf), else 0.
    pub attach_btf_id: u32,
}

/// Loads `insns`; on failure retries once with the verifier log on, to report it.
pub fn load_program(name: &str, spec: LoadSpec, insns: &[Insn]) -> Result<OwnedFd, SysError> {
    match load_program_with_log(name, spec, insns, false) {
        Ok(fd) => Ok(fd),
        Err(first) if first.errno() == libc::EACCES || first.errno() == libc::EINVAL => {
            match load_program_with_log(name, spec, insns, true) {
                Ok(fd) => Ok(fd),
                Err(with_log) => Err(with_log),
            }
        }
        Err(e) => Err(e),
    }
}

fn load_program_with_log(
    name: &str,
    spec: LoadSpec,
    insns: &[Insn],
    log: bool,
) -> Result<OwnedFd, SysError> {
    let license = b"GPL\0";
    let mut log_buf = vec![0u8; if log { 64 * 1024 } else { 0 }];
    let mut attr = [0u64; 16];
    put_u32(&mut attr, 0, spec.prog_type);
    put_u32(&mut attr, 4, insns.len() as u32);
    attr[1] = insns.as_ptr() as u64;
    attr[2] = license.as_ptr() as u64;
    if log {
        put_u32(&mut attr, 24, 1); // log_level
        put_u32(&mut attr, 28, log_buf.len() as u32);
        attr[4] = log_buf.as_mut_ptr() as u64;
    }
    // prog_name: 15 chars + NUL at byte 48
    let mut pname = [0u8; 16];
    for (d, s) in pname.iter_mut().zip(name.bytes().take(15)) {
        *d = s;
    }
    attr[6] = u64::from_le_bytes(pname[..8].try_into().unwrap_or_default());
    attr[7] = u64::from_le_bytes(pname[8..].try_into().unwrap_or_default());
    put_u32(&mut attr, 68, spec.expected_attach_type);
    put_u32(&mut attr, 108, spec.attach_btf_id);
    let ret = sys_bpf(BPF_PROG_LOAD, &mut attr);
    owned_fd(ret, format!("BPF_PROG_LOAD({name})")).map_err(|mut e| {
        let end = log_buf
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(log_buf.len());
        e.log = String::from_utf8_lossy(&log_buf[..end]).trim().to_string();
        e
    })
}

/// Attaches a fentry/fexit/tp_btf program to the target it was loaded for.
pub fn attach_tracing(prog: &OwnedFd, what: &str) -> Result<OwnedFd, SysError> {
    use std::os::fd::AsRawFd;
    let mut attr = [0u64; 16];
    attr[0] = 0; // name: NULL, the target comes from attach_btf_id
    put_u32(&mut attr, 8, prog.as_raw_fd() as u32);
    owned_fd(
        sys_bpf(BPF_RAW_TRACEPOINT_OPEN, &mut attr),
        format!("BPF_RAW_TRACEPOINT_OPEN({what})"),
    )
}

/// Attaches a kprobe program loaded with `BPF_TRACE_KPROBE_MULTI` to the functions `syms`.
pub fn attach_kprobe_multi(
    prog: &OwnedFd,
    syms: &[&str],
    retprobe: bool,
) -> Result<OwnedFd, SysError> {
    use std::os::fd::AsRawFd;
    let names: Vec<CString> = syms.iter().filter_map(|s| CString::new(*s).ok()).collect();
    let ptrs: Vec<u64> = names.iter().map(|c| c.as_ptr() as u64).collect();
    let mut attr = [0u64; 16];
    put_u32(&mut attr, 0, prog.as_raw_fd() as u32);
    put_u32(&mut attr, 8, ATTACH_TRACE_KPROBE_MULTI);
    put_u32(&mut attr, 16, u32::from(retprobe)); // BPF_F_KPROBE_MULTI_RETURN
    put_u32(&mut attr, 20, ptrs.len() as u32);
    attr[3] = ptrs.as_ptr() as u64;
    owned_fd(
        sys_bpf(BPF_LINK_CREATE, &mut attr),
        format!("BPF_LINK_CREATE(kprobe.multi {})", syms.join(",")),
    )
}

/// Reads the dynamic PMU type of `kprobe` and whether its retprobe flag is config bit 0.
fn kprobe_pmu() -> Result<(u32, u64), SysError> {
    let read = |p: &str| std::fs::read_to_string(p).map(|s| s.trim().to_string());
    let ty = read("/sys/bus/event_source/devices/kprobe/type").map_err(|e| SysError {
        op: "read /sys/bus/event_source/devices/kprobe/type".into(),
        err: io::Error::new(io::ErrorKind::Unsupported, e),
        log: String::new(),
    })?;
    let ty: u32 = ty.parse().unwrap_or(0);
    let bit = read("/sys/bus/event_source/devices/kprobe/format/retprobe")
        .ok()
        .and_then(|s| {
            s.strip_prefix("config:")
                .and_then(|b| b.parse::<u32>().ok())
        })
        .unwrap_or(0);
    Ok((ty, 1u64 << bit))
}

/// `PERF_FLAG_FD_CLOEXEC` from linux/perf_event.h (not in the libc crate).
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;

/// Creates a perf kprobe (or kretprobe) on `func` and runs `prog` on it. The returned fd owns
/// the probe: closing it removes the kprobe.
pub fn attach_kprobe(prog: &OwnedFd, func: &str, retprobe: bool) -> Result<OwnedFd, SysError> {
    use std::os::fd::AsRawFd;
    let (pmu, ret_bit) = kprobe_pmu()?;
    let name = CString::new(func).map_err(|e| SysError {
        op: format!("kprobe name {func}"),
        err: io::Error::new(io::ErrorKind::InvalidInput, e),
        log: String::new(),
    })?;
    // struct perf_event_attr, PERF_ATTR_SIZE_VER5 (112 bytes) inside a zeroed 128-byte buffer
    let mut attr = [0u64; 16];
    put_u32(&mut attr, 0, pmu);
    put_u32(&mut attr, 4, 112);
    attr[1] = if retprobe { ret_bit } else { 0 }; // config
    attr[2] = 1; // sample_period
    put_u32(&mut attr, 48, 1); // wakeup_events
    attr[7] = name.as_ptr() as u64; // config1 = kprobe_func
    let what = format!(
        "perf_event_open({} {func})",
        if retprobe { "kretprobe" } else { "kprobe" }
    );
    // SAFETY: `attr` is a valid perf_event_attr of the declared size and `name` outlives the
    // call; pid -1 / cpu 0 / group -1 is the system-wide form kprobes require.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            attr.as_ptr(),
            -1 as libc::c_int,
            0 as libc::c_int,
            -1 as libc::c_int,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    let event = owned_fd(ret, what.clone())?;
    const PERF_EVENT_IOC_SET_BPF: libc::c_ulong = 0x4004_2408;
    const PERF_EVENT_IOC_ENABLE: libc::c_ulong = 0x2400;
    // SAFETY: ioctls on a perf event fd we own, with an int argument (the program fd).
    if unsafe { libc::ioctl(event.as_raw_fd(), PERF_EVENT_IOC_SET_BPF, prog.as_raw_fd()) } < 0 {
        return Err(SysError::last(format!("{what}: PERF_EVENT_IOC_SET_BPF")));
    }
    // SAFETY: as above; ENABLE takes no argument.
    if unsafe { libc::ioctl(event.as_raw_fd(), PERF_EVENT_IOC_ENABLE, 0) } < 0 {
        return Err(SysError::last(format!("{what}: PERF_EVENT_IOC_ENABLE")));
    }
    Ok(event)
}

const BPF_PROG_GET_NEXT_ID: u32 = 11;
const BPF_MAP_GET_NEXT_ID: u32 = 12;
const BPF_LINK_GET_NEXT_ID: u32 = 31;

/// Kinds of kernel BPF objects that have ids.
#[derive(Clone, Copy, Debug)]
pub enum ObjectKind {
    /// Loaded programs.
    Prog,
    /// Maps.
    Map,
    /// Links (attachments).
    Link,
}

/// Ids of every object of `kind` in the kernel (all of them, not only this process's).
pub fn object_ids(kind: ObjectKind) -> Result<Vec<u32>, SysError> {
    let cmd = match kind {
        ObjectKind::Prog => BPF_PROG_GET_NEXT_ID,
        ObjectKind::Map => BPF_MAP_GET_NEXT_ID,
        ObjectKind::Link => BPF_LINK_GET_NEXT_ID,
    };
    let mut ids = Vec::new();
    let mut start = 0u32;
    loop {
        let mut attr = [0u64; 16];
        put_u32(&mut attr, 0, start);
        if sys_bpf(cmd, &mut attr) < 0 {
            let e = SysError::last(format!("BPF_{kind:?}_GET_NEXT_ID"));
            if e.errno() == libc::ENOENT {
                return Ok(ids); // no object after `start`
            }
            return Err(e);
        }
        start = (attr[0] >> 32) as u32; // next_id
        ids.push(start);
    }
}
