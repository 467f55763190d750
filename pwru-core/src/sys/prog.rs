//! Programs: BPF_PROG_LOAD (with the one "load, then on refusal load again with the verifier
//! log" path), BPF_PROG_TEST_RUN, BPF_PROG_GET_FD_BY_ID, BPF_*_GET_NEXT_ID and
//! BPF_OBJ_GET_INFO_BY_FD for programs; instruction helpers.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use aya_obj::generated::{bpf_cmd, bpf_insn, bpf_prog_info};

use super::{bpf, bpf_fd, ptr_u64, zeroed_attr};

/// Size of the verifier log [`prog_load`] asks for after a refusal.
const LOG_SIZE: usize = 1 << 20;

/// What a BPF_PROG_LOAD needs.
pub struct ProgLoad<'a> {
    /// `enum bpf_prog_type` (see the `PROG_TYPE_*` constants).
    pub prog_type: u32,
    /// `enum bpf_attach_type`, 0 for program types without one.
    pub expected_attach_type: u32,
    /// The instructions.
    pub insns: &'a [bpf_insn],
    /// The program's name; characters the kernel refuses are dropped, the rest cut at 15.
    pub name: &'a str,
    /// Kernel BTF id of the attach target (fentry/fexit/tp_btf), else 0.
    pub attach_btf_id: u32,
    /// The BPF program an fentry/fexit program attaches to (tracing a tc/XDP program).
    pub attach_prog_fd: Option<BorrowedFd<'a>>,
}

/// A refused load: the errno and the verifier's log (empty if the kernel gave none).
#[derive(Debug)]
pub struct LoadRefused {
    /// The kernel's answer to the first load.
    pub error: io::Error,
    /// The verifier log of the second load.
    pub log: String,
}

impl std::fmt::Display for LoadRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The verifier ends with statistics ("processed N insns ..."); the reason is above.
        let reason = self
            .log
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with("processed "));
        match reason {
            Some(reason) => write!(f, "{} ({reason})", self.error),
            None => write!(f, "{}", self.error),
        }
    }
}

impl std::error::Error for LoadRefused {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// Loads a program (GPL license); on refusal loads it again with a 1 MiB verifier log so the
/// caller can show why.
pub fn prog_load(p: &ProgLoad<'_>) -> Result<OwnedFd, LoadRefused> {
    prog_load_with_log_size(p, LOG_SIZE)
}

/// [`prog_load`] with a verifier log of `log_size` bytes after a refusal. A log that does not
/// fit keeps its end (kernels since 6.4 rotate it) and the error of the first load.
pub fn prog_load_with_log_size(p: &ProgLoad<'_>, log_size: usize) -> Result<OwnedFd, LoadRefused> {
    let first = match load(p, &mut []) {
        Ok(fd) => return Ok(fd),
        Err(e) => e,
    };
    let mut log = vec![0u8; log_size.clamp(1, u32::MAX as usize)];
    match load(p, &mut log) {
        // The kernel accepted the program the second time (a transient refusal).
        Ok(fd) => Ok(fd),
        Err(second) => {
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..end]).into_owned();
            // ENOSPC only means the log buffer was too small: keep the first errno.
            let error = if second.raw_os_error() == Some(libc::ENOSPC) {
                first
            } else {
                second
            };
            Err(LoadRefused { error, log: text })
        }
    }
}

/// One BPF_PROG_LOAD, with the verifier log at level 1 into `log` unless it is empty.
fn load(p: &ProgLoad<'_>, log: &mut [u8]) -> io::Result<OwnedFd> {
    let license = c"GPL";
    let insn_cnt = u32::try_from(p.insns.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "too many instructions"))?;
    let mut attr = zeroed_attr();
    // SAFETY: only writes into the BPF_PROG_LOAD member of a zeroed union; nothing is read.
    let a = unsafe { &mut attr.__bindgen_anon_3 };
    a.prog_type = p.prog_type;
    a.insn_cnt = insn_cnt;
    a.insns = ptr_u64(p.insns.as_ptr());
    a.license = ptr_u64(license.as_ptr());
    let valid = p
        .name
        .bytes()
        .filter(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'.')
        .take(a.prog_name.len() - 1);
    for (d, s) in a.prog_name.iter_mut().zip(valid) {
        *d = s as libc::c_char;
    }
    a.expected_attach_type = p.expected_attach_type;
    a.attach_btf_id = p.attach_btf_id;
    if !log.is_empty() {
        a.log_level = 1;
        a.log_size = log.len() as u32;
        a.log_buf = ptr_u64(log.as_mut_ptr());
    }
    if let Some(fd) = p.attach_prog_fd {
        a.__bindgen_anon_1.attach_prog_fd = fd.as_raw_fd() as u32;
    }
    bpf_fd(bpf_cmd::BPF_PROG_LOAD, &mut attr)
}

/// The input of a [`prog_test_run`].
#[derive(Debug, Default, Clone, Copy)]
pub struct TestRun<'a> {
    /// The packet (`data_in`).
    pub data: &'a [u8],
    /// The context (`ctx_in`), if the program type takes one.
    pub ctx: Option<&'a [u8]>,
    /// How many times to run (0 counts as 1).
    pub repeat: u32,
}

/// What a [`prog_test_run`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestRunResult {
    /// The program's return value (R0, truncated to 32 bits).
    pub retval: u32,
    /// Mean run time per repetition in nanoseconds, as the kernel measured it.
    pub duration_ns: u32,
}

/// BPF_PROG_TEST_RUN: runs `prog` on `run.data` (and `run.ctx`) `run.repeat` times.
pub fn prog_test_run(prog: BorrowedFd<'_>, run: &TestRun<'_>) -> io::Result<TestRunResult> {
    let too_large = |what| io::Error::new(io::ErrorKind::InvalidInput, what);
    let mut attr = zeroed_attr();
    // SAFETY: only writes into the BPF_PROG_TEST_RUN member of a zeroed union.
    let t = unsafe { &mut attr.test };
    t.prog_fd = prog.as_raw_fd() as u32;
    t.data_size_in = u32::try_from(run.data.len()).map_err(|_| too_large("data too large"))?;
    t.data_in = ptr_u64(run.data.as_ptr());
    if let Some(ctx) = run.ctx {
        t.ctx_size_in = u32::try_from(ctx.len()).map_err(|_| too_large("context too large"))?;
        t.ctx_in = ptr_u64(ctx.as_ptr());
    }
    t.repeat = run.repeat;
    bpf(bpf_cmd::BPF_PROG_TEST_RUN, &mut attr)?;
    // SAFETY: the test member was written above and the kernel filled in its results.
    let t = unsafe { attr.test };
    Ok(TestRunResult {
        retval: t.retval,
        duration_ns: t.duration,
    })
}

/// A new fd for the loaded program with this id.
pub fn prog_fd_by_id(id: u32) -> io::Result<OwnedFd> {
    let mut attr = zeroed_attr();
    // Writing a union member is safe; the others stay zero.
    attr.__bindgen_anon_6.__bindgen_anon_1.prog_id = id;
    bpf_fd(bpf_cmd::BPF_PROG_GET_FD_BY_ID, &mut attr)
}

/// Kernel objects that have ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectKind {
    /// Loaded programs.
    Prog,
    /// Maps.
    Map,
    /// Links (attachments).
    Link,
}

/// BPF_{PROG,MAP,LINK}_GET_NEXT_ID: the first id of `kind` after `start`, `None` after the
/// last one.
pub fn next_id(kind: ObjectKind, start: u32) -> io::Result<Option<u32>> {
    let cmd = match kind {
        ObjectKind::Prog => bpf_cmd::BPF_PROG_GET_NEXT_ID,
        ObjectKind::Map => bpf_cmd::BPF_MAP_GET_NEXT_ID,
        ObjectKind::Link => bpf_cmd::BPF_LINK_GET_NEXT_ID,
    };
    let mut attr = zeroed_attr();
    // Writing a union member is safe; the others stay zero.
    attr.__bindgen_anon_6.__bindgen_anon_1.start_id = start;
    match bpf(cmd, &mut attr) {
        // SAFETY: the kernel filled in next_id of the member written above.
        Ok(_) => Ok(Some(unsafe { attr.__bindgen_anon_6.next_id })),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Ids of every object of `kind` in the kernel (all of them, not only this process's).
pub fn object_ids(kind: ObjectKind) -> io::Result<Vec<u32>> {
    let mut ids = Vec::new();
    let mut start = 0;
    while let Some(id) = next_id(kind, start)? {
        ids.push(id);
        start = id;
    }
    Ok(ids)
}

/// What pwru needs from `bpf_prog_info`.
#[derive(Debug, Clone)]
pub struct ProgInfo {
    /// `enum bpf_prog_type`.
    pub prog_type: u32,
    /// The program's id.
    pub id: u32,
    /// The program's name (at most 15 bytes).
    pub name: String,
    /// BTF type id of the program's main function (`func_info[0]`), 0 if none.
    pub func_type_id: u32,
    /// Run time in ns while statistics are on ([`super::enable_run_time_stats`]).
    pub run_time_ns: u64,
    /// Number of runs while statistics are on.
    pub run_cnt: u64,
    /// Runs skipped because the program was already running on the CPU.
    pub recursion_misses: u64,
    /// Instructions the verifier processed.
    pub verified_insns: u32,
}

/// BPF_OBJ_GET_INFO_BY_FD for a program.
pub fn prog_info(fd: BorrowedFd<'_>) -> io::Result<ProgInfo> {
    // func_info records are { insn_off: u32, type_id: u32 }.
    let mut func_info = [0u32; 2];
    let mut info = zeroed_prog_info();
    info.nr_func_info = 1;
    info.func_info_rec_size = std::mem::size_of_val(&func_info) as u32;
    info.func_info = ptr_u64(func_info.as_mut_ptr());
    if info_by_fd(fd, &mut info).is_err() {
        // Some kernels refuse func_info for programs without BTF: ask again without it.
        info = zeroed_prog_info();
        info_by_fd(fd, &mut info)?;
    }
    Ok(ProgInfo {
        prog_type: info.type_,
        id: info.id,
        name: prog_name(&info),
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

/// The program's instructions as the kernel runs them after verification ("xlated"), each as
/// (opcode, src_reg, imm). For a helper call (opcode `BPF_JMP | BPF_CALL`, src_reg 0) the
/// immediate is the helper's address minus `__bpf_call_base` when the caller may see kernel
/// addresses (root with kptr_restrict allowing it), else 0.
pub fn prog_xlated_insns(fd: BorrowedFd<'_>) -> io::Result<Vec<(u8, u8, i32)>> {
    let mut info = zeroed_prog_info();
    info_by_fd(fd, &mut info)?;
    let len = info.xlated_prog_len as usize;
    let n = len / std::mem::size_of::<bpf_insn>();
    // SAFETY: bpf_insn is a plain C struct (bindgen); all-zero is a valid value.
    let mut insns: Vec<bpf_insn> = vec![unsafe { std::mem::zeroed() }; n];
    let mut info = zeroed_prog_info();
    info.xlated_prog_len = (n * std::mem::size_of::<bpf_insn>()) as u32;
    info.xlated_prog_insns = ptr_u64(insns.as_mut_ptr());
    info_by_fd(fd, &mut info)?;
    // The program cannot change, but a kernel that reports a different length is believed.
    let got = (info.xlated_prog_len as usize / std::mem::size_of::<bpf_insn>()).min(n);
    Ok(insns[..got]
        .iter()
        .map(|i| (i.code, i.src_reg(), i.imm))
        .collect())
}

/// Where the kernel put a program's JIT-compiled code; see [`prog_images`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgImages {
    /// Program id.
    pub id: u32,
    /// The name kallsyms gives the program: `bpf_prog_<tag>_<name>`.
    pub name: String,
    /// One `(start, length)` per function of the program, the main one first. Empty when the
    /// program is not JIT-compiled or the caller may not see kernel addresses.
    pub ranges: Vec<(u64, u64)>,
}

/// Where the kernel put a program's JIT-compiled code, with its id and kallsyms name.
pub fn prog_images(fd: BorrowedFd<'_>) -> io::Result<ProgImages> {
    let mut info = zeroed_prog_info();
    info_by_fd(fd, &mut info)?;
    let n = info.nr_jited_ksyms.min(info.nr_jited_func_lens) as usize;
    let tag: String = info.tag.iter().map(|b| format!("{b:02x}")).collect();
    let mut images = ProgImages {
        id: info.id,
        name: format!("bpf_prog_{tag}_{}", prog_name(&info)),
        ranges: Vec::new(),
    };
    if n == 0 {
        return Ok(images);
    }
    let mut ksyms = vec![0u64; n];
    let mut lens = vec![0u32; n];
    let mut info = zeroed_prog_info();
    info.nr_jited_ksyms = n as u32;
    info.jited_ksyms = ptr_u64(ksyms.as_mut_ptr());
    info.nr_jited_func_lens = n as u32;
    info.jited_func_lens = ptr_u64(lens.as_mut_ptr());
    info_by_fd(fd, &mut info)?;
    let got = (info.nr_jited_ksyms.min(info.nr_jited_func_lens) as usize).min(n);
    images.ranges = ksyms[..got]
        .iter()
        .zip(&lens[..got])
        .filter(|(&a, &l)| a != 0 && l != 0)
        .map(|(&a, &l)| (a, u64::from(l)))
        .collect();
    Ok(images)
}

/// The program name in `info` (NUL-terminated, at most 15 bytes).
fn prog_name(info: &bpf_prog_info) -> String {
    let bytes: Vec<u8> = info
        .name
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn zeroed_prog_info() -> bpf_prog_info {
    // SAFETY: bpf_prog_info is a plain C struct of integers (bindgen); all-zero is valid.
    unsafe { std::mem::zeroed() }
}

fn info_by_fd(fd: BorrowedFd<'_>, info: &mut bpf_prog_info) -> io::Result<()> {
    let mut attr = zeroed_attr();
    // SAFETY: only writes into the GET_INFO_BY_FD member of a zeroed union.
    let a = unsafe { &mut attr.info };
    a.bpf_fd = fd.as_raw_fd() as u32;
    a.info_len = std::mem::size_of::<bpf_prog_info>() as u32;
    a.info = ptr_u64(info as *mut bpf_prog_info);
    bpf(bpf_cmd::BPF_OBJ_GET_INFO_BY_FD, &mut attr).map(drop)
}

/// One instruction: opcode, registers, offset and immediate.
pub fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> bpf_insn {
    // SAFETY: bpf_insn is a plain C struct (bindgen); all-zero is a valid value.
    let mut b: bpf_insn = unsafe { std::mem::zeroed() };
    b.code = code;
    b.set_dst_reg(dst);
    b.set_src_reg(src);
    b.off = off;
    b.imm = imm;
    b
}

/// pwru-filter instructions as the kernel's `bpf_insn`s.
pub fn insns_from(code: &[pwru_filter::Insn]) -> Vec<bpf_insn> {
    code.iter()
        .map(|i| insn(i.code, i.dst, i.src, i.off, i.imm))
        .collect()
}

/// `r0 = 0; exit`: the program the feature probes load.
pub fn trivial_program() -> [bpf_insn; 2] {
    [insn(0xb7, 0, 0, 0, 0), insn(0x95, 0, 0, 0, 0)]
}
