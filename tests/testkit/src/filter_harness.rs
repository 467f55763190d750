//! The filter test harness: load a pwru-filter body into the kernel inside a complete program
//! and run it on a packet with `BPF_PROG_TEST_RUN`. The tests use it to check generated filters
//! in the real kernel and the benches to measure their cost per packet. Needs root (CAP_BPF +
//! CAP_PERFMON + CAP_NET_ADMIN). The syscalls are in [`crate::sys`].
//!
//! [`harness`] wraps a filter body (see pwru-filter's calling convention) into a complete program
//! that calls it as a BPF-to-BPF subprogram:
//!
//! - [`Harness::SchedCls`]: a tc classifier. Test frames are prefixed with the 14-byte
//!   [`DUMMY_ETH_HEADER`] (ethertype 0x88b5, so the kernel's test-run does not inspect the
//!   frame) which the harness skips: the filter sees exactly the given packet. In
//!   [`Mode::ProbeRead`] the packet pointers are first turned into plain numbers (copied
//!   through `bpf_probe_read_kernel`), so the filter sees scalars as in a kprobe.
//! - [`Harness::Kprobe`]: a KPROBE program passing `pt_regs->di`/`si` as data/data_end
//!   (x86-64): proves the verifier accepts ProbeRead code with unknown scalar inputs in kprobe
//!   context. It is only loaded, never run.

use std::os::fd::{AsFd, OwnedFd};

use pwru_filter::insn::{op, Insn, HELPER_PROBE_READ_KERNEL};
use pwru_filter::Mode;

use pwru_core::sys;

/// Program types this module loads.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ProgType {
    /// `BPF_PROG_TYPE_SOCKET_FILTER`.
    SocketFilter,
    /// `BPF_PROG_TYPE_KPROBE`.
    Kprobe,
    /// `BPF_PROG_TYPE_SCHED_CLS` (tc).
    SchedCls,
}

impl ProgType {
    fn raw(self) -> u32 {
        match self {
            ProgType::SocketFilter => 1,
            ProgType::Kprobe => 2,
            ProgType::SchedCls => 3,
        }
    }
}

/// What went wrong talking to the kernel.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// `BPF_PROG_LOAD` failed.
    #[error("the kernel refused to load the {prog_type:?} program of {insns} instructions: {errno}; {hint}\nverifier log (end):\n{log}")]
    Load {
        /// Program type.
        prog_type: ProgType,
        /// Number of instructions.
        insns: usize,
        /// The error.
        errno: std::io::Error,
        /// What to do about it.
        hint: &'static str,
        /// The last part of the verifier log.
        log: String,
    },
    /// `BPF_PROG_TEST_RUN` failed.
    #[error("BPF_PROG_TEST_RUN failed: {errno}; the frame must be at least 14 bytes and the program a type that supports test runs (SCHED_CLS, SOCKET_FILTER)")]
    TestRun {
        /// The error.
        errno: std::io::Error,
    },
    /// The input is too large for the syscall.
    #[error("{what} is too large for bpf(2) ({len}); use a smaller one")]
    TooLarge {
        /// What.
        what: &'static str,
        /// Its size.
        len: usize,
    },
}

const LOG_SIZE: usize = 4 << 20;
const LOG_TAIL: usize = 6000;

/// A loaded program; closed on drop.
#[derive(Debug)]
pub struct LoadedProgram {
    fd: OwnedFd,
    /// The address-set map of [`load_with_sets`], kept open with the program.
    _set_map: Option<OwnedFd>,
}

/// The result of one `BPF_PROG_TEST_RUN`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TestRun {
    /// The program's return value (R0, truncated to 32 bits).
    pub retval: u32,
    /// Mean run time per repetition in nanoseconds, as the kernel measured it.
    pub duration_ns: u32,
}

/// Loads `insns` as a GPL program of type `prog_type`. On refusal the error carries the end of
/// the verifier's log.
pub fn load(prog_type: ProgType, insns: &[Insn]) -> Result<LoadedProgram, KernelError> {
    u32::try_from(insns.len()).map_err(|_| KernelError::TooLarge {
        what: "program",
        len: insns.len(),
    })?;
    let code = sys::insns_from(insns);
    let load = sys::ProgLoad {
        prog_type: prog_type.raw(),
        expected_attach_type: 0,
        insns: &code,
        name: "pwru_filt",
        attach_btf_id: 0,
        attach_prog_fd: None,
    };
    // pwru-core's one load path: on refusal it loads again with the verifier log on.
    match sys::prog_load_with_log_size(&load, LOG_SIZE) {
        Ok(fd) => Ok(LoadedProgram { fd, _set_map: None }),
        Err(refused) => {
            let first = refused.error;
            let text = refused.log;
            let tail: String = if text.len() > LOG_TAIL {
                let mut cut = text.len() - LOG_TAIL;
                while !text.is_char_boundary(cut) {
                    cut += 1;
                }
                text[cut..].to_string()
            } else {
                text
            };
            let hint = match first.raw_os_error() {
                Some(libc::EPERM) => "loading BPF needs root (CAP_BPF and CAP_PERFMON)",
                Some(libc::EINVAL) if prog_type == ProgType::Kprobe => {
                    "this kernel may lack kprobe support (CONFIG_BPF_EVENTS)"
                }
                _ => "the verifier log below says why",
            };
            Err(KernelError::Load {
                prog_type,
                insns: insns.len(),
                errno: first,
                hint,
                log: tail,
            })
        }
    }
}

/// [`load`] of a program whose filter looks addresses up in a set map
/// (`pwru_filter::SetLookup::Map`): the map is created with `keys`, as pwru-core's loader
/// does (`pwru_core::object::filter_sets`), its fd written into the program's map loads, and
/// it lives as long as the returned program.
pub fn load_with_sets(
    prog_type: ProgType,
    insns: &[Insn],
    keys: &[[u8; 8]],
) -> Result<LoadedProgram, KernelError> {
    let map = pwru_core::object::filter_sets::create(keys).map_err(|errno| KernelError::Load {
        prog_type,
        insns: insns.len(),
        errno,
        hint: "creating the address-set hash map failed (needs CAP_BPF)",
        log: String::new(),
    })?;
    let mut insns = insns.to_vec();
    pwru_core::object::filter_sets::bind(&mut insns, map.as_fd());
    let mut prog = load(prog_type, &insns)?;
    prog._set_map = Some(map);
    Ok(prog)
}

impl LoadedProgram {
    /// Runs the program `repeat` times (0 counts as 1) on `frame` with `BPF_PROG_TEST_RUN`.
    pub fn test_run(&self, frame: &[u8], repeat: u32) -> Result<TestRun, KernelError> {
        u32::try_from(frame.len()).map_err(|_| KernelError::TooLarge {
            what: "frame",
            len: frame.len(),
        })?;
        let run = sys::TestRun {
            data: frame,
            ctx: None,
            repeat,
        };
        let sys::TestRunResult {
            retval,
            duration_ns,
        } = sys::prog_test_run(self.fd.as_fd(), &run)
            .map_err(|errno| KernelError::TestRun { errno })?;
        Ok(TestRun {
            retval,
            duration_ns,
        })
    }
}

/// The Ethernet header [`Harness::SchedCls`] frames start with: zero MACs, ethertype 0x88b5
/// (IEEE local experimental), which the test-run path leaves alone.
pub const DUMMY_ETH_HEADER: [u8; 14] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x88, 0xb5];

/// The frame to test-run a [`Harness::SchedCls`] program on so that its filter sees `packet`.
pub fn sched_cls_frame(packet: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(packet.len() + DUMMY_ETH_HEADER.len());
    frame.extend_from_slice(&DUMMY_ETH_HEADER);
    frame.extend_from_slice(packet);
    frame
}

/// Kinds of complete program [`harness`] builds around a filter body.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Harness {
    /// A SCHED_CLS program for test runs on [`sched_cls_frame`]s.
    SchedCls,
    /// A KPROBE program (ProbeRead bodies only), to be loaded, not run.
    Kprobe,
}

impl Harness {
    /// The program type to [`load`] the harness as.
    pub fn prog_type(self) -> ProgType {
        match self {
            Harness::SchedCls => ProgType::SchedCls,
            Harness::Kprobe => ProgType::Kprobe,
        }
    }
}

// struct __sk_buff offsets of data and data_end; x86-64 struct pt_regs offsets of di and si.
const SKB_DATA: i16 = 76;
const SKB_DATA_END: i16 = 80;
const PT_REGS_DI: i16 = 112;
const PT_REGS_SI: i16 = 104;

/// A complete program: a main function calling `filter` (a body following pwru-filter's calling
/// convention, in `mode`) as a BPF-to-BPF subprogram and returning its R0.
pub fn harness(filter: &[Insn], mode: Mode, kind: Harness) -> Vec<Insn> {
    let mut main = match (kind, mode) {
        (Harness::SchedCls, Mode::Direct) => vec![
            Insn::load(op::W, 2, 1, SKB_DATA),
            Insn::load(op::W, 3, 1, SKB_DATA_END),
            Insn::mov64_reg(1, 2),
            Insn::alu64_imm(op::ADD, 1, DUMMY_ETH_HEADER.len() as i32),
            Insn::mov64_reg(2, 3),
        ],
        (Harness::SchedCls, Mode::ProbeRead) => vec![
            Insn::load(op::W, 2, 1, SKB_DATA),
            Insn::load(op::W, 3, 1, SKB_DATA_END),
            Insn::alu64_imm(op::ADD, 2, DUMMY_ETH_HEADER.len() as i32),
            Insn::store_reg(op::DW, 10, -16, 2),
            Insn::store_reg(op::DW, 10, -8, 3),
            // Copy the two pointer values as raw bytes: what lands in the stack are numbers.
            Insn::mov64_reg(1, 10),
            Insn::alu64_imm(op::ADD, 1, -32),
            Insn::mov64_imm(2, 16),
            Insn::mov64_reg(3, 10),
            Insn::alu64_imm(op::ADD, 3, -16),
            Insn::call_helper(HELPER_PROBE_READ_KERNEL),
            Insn::load(op::DW, 1, 10, -32),
            Insn::load(op::DW, 2, 10, -24),
        ],
        (Harness::Kprobe, _) => vec![
            Insn::load(op::DW, 6, 1, PT_REGS_DI),
            Insn::load(op::DW, 2, 1, PT_REGS_SI),
            Insn::mov64_reg(1, 6),
        ],
    };
    main.push(Insn::call_local(1));
    main.push(Insn::exit());
    main.extend_from_slice(filter);
    main
}

/// Checks that this process can load and test-run BPF programs; the error says why not.
/// Tests print `SKIP <name>: <error>` when this fails.
pub fn probe_test_run() -> Result<(), KernelError> {
    let body = [Insn::mov32_imm(0, 7), Insn::exit()];
    let prog = load(
        ProgType::SchedCls,
        &harness(&body, Mode::Direct, Harness::SchedCls),
    )?;
    let run = prog.test_run(&sched_cls_frame(&[]), 1)?;
    if run.retval != 7 {
        return Err(KernelError::TestRun {
            errno: std::io::Error::other(format!(
                "probe program returned {} instead of 7",
                run.retval
            )),
        });
    }
    Ok(())
}
