//! The FFI edge to libpcap's compiler: `pcap_compile` with the netmask unknown and the snapshot
//! length 262144, as pwru calls it.
//!
//! # Why not the `pcap` crate
//!
//! The `pcap` crate (a dependency of this one, which also links libpcap) compiles expressions
//! too, but its version 2.5.0 cannot produce the same programs:
//!
//! - `Capture::compile` passes netmask 0 to `pcap_compile`, not `PCAP_NETMASK_UNKNOWN`, so
//!   `ip broadcast` compiles to "IPv4 destination 0.0.0.0 or 255.255.255.255" instead of failing
//!   with "netmask not known, so 'ip broadcast' not supported" as in pwru (and in tcpdump
//!   whenever it knows no netmask).
//! - `Capture::dead` opens its handle with snapshot length 65535, and the snapshot length is
//!   what an accepting program returns: pwru and tcpdump return 262144.
//! - Its compile errors are built by a private method; only `pcap_geterr` gives the message
//!   for a handle the crate did not open.
//! - `BpfProgram` frees its code on drop, but it only wraps programs the crate compiled.
//!
//! Each remaining extern below says which of these it stands for. The tests
//! `pcap_crate_*` in `tests/oracle_pcap_crate.rs` check these facts against the crate, so a
//! version that changes them makes a test fail and the extern can go.
//!
//! libpcap's interpreter (`bpf_filter`), the reference the tests compare translated programs
//! with, is not needed at run time: it lives in the workspace's test kit
//! (`tests/testkit/src/pcap_interp.rs`).

use std::ffi::{c_char, c_int, c_uint, CStr, CString};
use std::ptr::NonNull;
use std::sync::Mutex;

use crate::cbpf_insn::CbpfInsn;

/// libpcap's `struct bpf_program`.
#[repr(C)]
struct BpfProgramRaw {
    bf_len: c_uint,
    bf_insns: *mut CbpfInsn,
}

/// libpcap's opaque `pcap_t`.
#[repr(C)]
struct PcapT {
    _private: [u8; 0],
}

#[link(name = "pcap")]
extern "C" {
    /// Not `pcap::Capture::dead`: it fixes the snapshot length at 65535, and the snapshot
    /// length is the value an accepting program returns (pwru and tcpdump: 262144).
    fn pcap_open_dead(linktype: c_int, snaplen: c_int) -> *mut PcapT;
    /// Closes the handle `pcap_open_dead` gave (the crate's `Capture` only closes its own).
    fn pcap_close(p: *mut PcapT);
    /// Not `pcap::Capture::compile`: it passes netmask 0 where pwru passes
    /// `PCAP_NETMASK_UNKNOWN`, which turns the error for `ip broadcast` into a program.
    fn pcap_compile(
        p: *mut PcapT,
        fp: *mut BpfProgramRaw,
        s: *const c_char,
        optimize: c_int,
        netmask: u32,
    ) -> c_int;
    /// libpcap's message for a failed compile; the crate reads it only in a private method.
    fn pcap_geterr(p: *mut PcapT) -> *mut c_char;
    /// Frees a program `pcap_compile` filled; the crate's `BpfProgram` (which frees on drop)
    /// has no constructor for a program compiled here.
    fn pcap_freecode(fp: *mut BpfProgramRaw);
}

/// `PCAP_NETMASK_UNKNOWN` from pcap/pcap.h.
const NETMASK_UNKNOWN: u32 = 0xffff_ffff;
/// The snapshot length pwru and tcpdump use; `ret #262144` means "accept".
pub(crate) const SNAPLEN: c_int = 262_144;

/// libpcap's parser keeps some global state in older releases; one lock makes every compile in
/// this process safe whatever the installed version.
static COMPILE_LOCK: Mutex<()> = Mutex::new(());

/// Runs `f` while holding the lock this crate takes around every `pcap_compile`. Code that calls
/// libpcap's compiler by other means in the same process (e.g. the `pcap` crate in a test)
/// should do so inside this function.
pub fn with_compile_lock<T>(f: impl FnOnce() -> T) -> T {
    let _guard = COMPILE_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    f()
}

/// A dead capture handle, closed on drop.
struct DeadHandle(NonNull<PcapT>);

impl DeadHandle {
    fn open(dlt: c_int) -> Result<DeadHandle, String> {
        // SAFETY: pcap_open_dead only allocates a handle; null is checked here.
        let raw = unsafe { pcap_open_dead(dlt, SNAPLEN) };
        NonNull::new(raw)
            .map(DeadHandle)
            .ok_or_else(|| "libpcap could not allocate a capture handle (out of memory)".into())
    }

    /// libpcap's last error message for this handle.
    fn error(&self) -> String {
        // SAFETY: the handle is live; pcap_geterr returns its NUL-terminated error buffer,
        // which stays valid while the handle does (it is copied before returning).
        let msg = unsafe { CStr::from_ptr(pcap_geterr(self.0.as_ptr())) };
        msg.to_string_lossy().into_owned()
    }
}

impl Drop for DeadHandle {
    fn drop(&mut self) {
        // SAFETY: the handle came from pcap_open_dead and is closed exactly once, here.
        unsafe { pcap_close(self.0.as_ptr()) }
    }
}

/// A program filled by a successful `pcap_compile`, freed on drop.
struct Code(BpfProgramRaw);

impl Code {
    fn insns(&self) -> &[CbpfInsn] {
        if self.0.bf_insns.is_null() || self.0.bf_len == 0 {
            return &[];
        }
        // SAFETY: on success libpcap filled bf_insns with bf_len instructions (struct bpf_insn,
        // which CbpfInsn mirrors with repr(C)); they live until pcap_freecode in drop.
        unsafe { std::slice::from_raw_parts(self.0.bf_insns, self.0.bf_len as usize) }
    }
}

impl Drop for Code {
    fn drop(&mut self) {
        // SAFETY: the program was filled by a successful pcap_compile and is freed once, here.
        unsafe { pcap_freecode(&mut self.0) }
    }
}

/// Compiles `expr` for the libpcap link type `dlt`, netmask unknown, with libpcap's optimiser
/// when `optimize`. Returns the instructions or libpcap's error message.
pub(crate) fn compile(expr: &str, dlt: c_int, optimize: bool) -> Result<Vec<CbpfInsn>, String> {
    let c_expr =
        CString::new(expr).map_err(|_| "the expression contains a NUL byte".to_string())?;
    with_compile_lock(|| {
        let handle = DeadHandle::open(dlt)?;
        let mut prog = BpfProgramRaw {
            bf_len: 0,
            bf_insns: std::ptr::null_mut(),
        };
        // SAFETY: the handle is a live dead pcap_t, prog a valid out-parameter, c_expr a valid
        // NUL-terminated string living across the call.
        let rc = unsafe {
            pcap_compile(
                handle.0.as_ptr(),
                &mut prog,
                c_expr.as_ptr(),
                c_int::from(optimize),
                NETMASK_UNKNOWN,
            )
        };
        if rc != 0 {
            return Err(handle.error());
        }
        Ok(Code(prog).insns().to_vec())
    })
}
