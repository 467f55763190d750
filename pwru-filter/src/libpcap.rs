//! The FFI edge to libpcap: `pcap_compile` (with `PCAP_NETMASK_UNKNOWN`, as pwru calls it) and
//! libpcap's own classic-BPF interpreter `bpf_filter`, the reference every test compares with.
//!
//! The `pcap` crate's `Capture::compile` always passes netmask 0, which makes `ip broadcast`
//! compile to a test against a made-up broadcast address instead of failing as it does in pwru
//! and tcpdump; so this module calls `pcap_compile` itself. The `pcap` crate still provides the
//! link to libpcap.

use std::ffi::{c_char, c_int, c_uint, CStr, CString};
use std::sync::Mutex;

use crate::cbpf::CbpfInsn;

#[repr(C)]
struct BpfProgramRaw {
    bf_len: c_uint,
    bf_insns: *mut CbpfInsn,
}

#[repr(C)]
struct PcapT {
    _private: [u8; 0],
}

#[link(name = "pcap")]
extern "C" {
    fn pcap_open_dead(linktype: c_int, snaplen: c_int) -> *mut PcapT;
    fn pcap_close(p: *mut PcapT);
    fn pcap_compile(
        p: *mut PcapT,
        fp: *mut BpfProgramRaw,
        s: *const c_char,
        optimize: c_int,
        netmask: u32,
    ) -> c_int;
    fn pcap_geterr(p: *mut PcapT) -> *mut c_char;
    fn pcap_freecode(fp: *mut BpfProgramRaw);
    fn bpf_filter(pc: *const CbpfInsn, pkt: *const u8, wirelen: c_uint, buflen: c_uint) -> c_uint;
    fn bpf_validate(f: *const CbpfInsn, len: c_int) -> c_int;
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

/// Compiles `expr` for the libpcap link type `dlt`, optimised, netmask unknown.
/// Returns the instructions or libpcap's error message.
pub(crate) fn compile(expr: &str, dlt: c_int) -> Result<Vec<CbpfInsn>, String> {
    let c_expr =
        CString::new(expr).map_err(|_| "the expression contains a NUL byte".to_string())?;
    with_compile_lock(|| {
        // SAFETY: pcap_open_dead only allocates a handle; null is checked below.
        let handle = unsafe { pcap_open_dead(dlt, SNAPLEN) };
        if handle.is_null() {
            return Err("libpcap could not allocate a capture handle (out of memory)".into());
        }
        let mut prog = BpfProgramRaw {
            bf_len: 0,
            bf_insns: std::ptr::null_mut(),
        };
        // SAFETY: handle is a valid dead pcap_t, prog a valid out-parameter, c_expr a valid
        // NUL-terminated string living across the call.
        let rc = unsafe { pcap_compile(handle, &mut prog, c_expr.as_ptr(), 1, NETMASK_UNKNOWN) };
        let result = if rc != 0 {
            // SAFETY: pcap_geterr returns a NUL-terminated buffer owned by the live handle.
            let msg = unsafe { CStr::from_ptr(pcap_geterr(handle)) };
            Err(msg.to_string_lossy().into_owned())
        } else {
            let insns = if prog.bf_insns.is_null() || prog.bf_len == 0 {
                Vec::new()
            } else {
                // SAFETY: on success libpcap filled bf_insns with bf_len instructions.
                unsafe { std::slice::from_raw_parts(prog.bf_insns, prog.bf_len as usize) }.to_vec()
            };
            // SAFETY: prog was filled by a successful pcap_compile and is freed once.
            unsafe { pcap_freecode(&mut prog) };
            Ok(insns)
        };
        // SAFETY: the handle came from pcap_open_dead and is closed once.
        unsafe { pcap_close(handle) };
        result
    })
}

/// Runs libpcap's own interpreter (`bpf_filter`, what `pcap_offline_filter` and the `pcap`
/// crate's `BpfProgram::filter` call) on `packet` as a full capture (wire length = captured
/// length) and returns the filter's return value: 0 = no match.
///
/// Returns `None` when libpcap's validator (`bpf_validate`) refuses the program, because the
/// interpreter of libpcap 1.10 must not be given invalid programs.
pub fn interpret(insns: &[CbpfInsn], packet: &[u8]) -> Option<u32> {
    let len = c_int::try_from(insns.len()).ok()?;
    let pkt_len = c_uint::try_from(packet.len()).ok()?;
    if insns.is_empty() {
        return None;
    }
    // SAFETY: insns is a valid slice of repr(C) bpf_insn of the given length.
    if unsafe { bpf_validate(insns.as_ptr(), len) } == 0 {
        return None;
    }
    // SAFETY: the program was validated (forward jumps in range, ends in ret, scratch indices in
    // range), and the interpreter bounds-checks every packet access against pkt_len.
    Some(unsafe { bpf_filter(insns.as_ptr(), packet.as_ptr(), pkt_len, pkt_len) })
}
