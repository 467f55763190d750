//! Every `unsafe` of the test kit, and of the tests that use it: each libc, bpf(2) and libpcap
//! call the tests need sits behind one safe function here, with its `SAFETY` note. The other
//! modules of the kit and the test files call these and hold no `unsafe` of their own.

use std::ffi::{c_int, c_long, c_uint, CString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

use pwru_ebpf::{PwruEvent, PwruRecordHdr};
use pwru_filter::CbpfInsn;

// ---- processes and credentials -------------------------------------------------------------

/// True when this process runs as root (effective uid 0).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and only returns a number.
    unsafe { libc::geteuid() == 0 }
}

/// Sends signal `signal` to process `pid` (a child of the test, not yet reaped).
pub fn kill(pid: u32, signal: c_int) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(io::Error::other)?;
    // SAFETY: kill(2) takes two plain numbers; it touches no memory of this process.
    if unsafe { libc::kill(pid, signal) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Drops every privilege for good: no supplementary groups, gid and uid 65534 (nobody), which
/// clears every effective capability. For a child process that must run unprivileged.
pub fn become_nobody() -> io::Result<()> {
    // SAFETY: setgroups with size 0 reads no memory; setresgid/setresuid take plain numbers.
    // glibc applies the credential changes to every thread of the process.
    let ok = unsafe {
        libc::setgroups(0, std::ptr::null()) == 0
            && libc::setresgid(65534, 65534, 65534) == 0
            && libc::setresuid(65534, 65534, 65534) == 0
    };
    if ok {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The size of a memory page in bytes.
pub fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions and only returns a number.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(n).unwrap_or(4096)
}

/// Clock ticks per second (`_SC_CLK_TCK`, the unit of the times in `/proc/PID/stat`), at least 1.
pub fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions and only returns a number.
    let n = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(n).unwrap_or(100).max(1)
}

/// Pins the calling thread to CPU `cpu` (best effort: the error says why it did not work).
pub fn pin_thread_to_cpu(cpu: usize) -> io::Result<()> {
    // SAFETY: an all-zero cpu_set_t is a valid empty set; CPU_SET writes inside it (it ignores
    // CPUs beyond the set's size) and sched_setaffinity reads it for this thread (pid 0).
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

// ---- namespaces ----------------------------------------------------------------------------

/// Moves the calling thread into the network namespace `ns` (an open `/run/netns/NAME` or
/// `/proc/PID/ns/net`). Other threads keep theirs.
pub fn enter_netns(ns: &File) -> io::Result<()> {
    // SAFETY: setns(2) on an fd that `ns` keeps open for the call; it changes only this
    // thread's network namespace.
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Gives the calling thread a new, empty network namespace (needs CAP_SYS_ADMIN).
pub fn unshare_netns() -> io::Result<()> {
    // SAFETY: unshare(2) takes a flag word; it changes only this thread's namespaces.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The index of interface `name` in the calling thread's network namespace.
pub fn interface_index(name: &str) -> io::Result<u32> {
    let c = CString::new(name).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: if_nametoindex reads a NUL-terminated string that outlives the call.
    match unsafe { libc::if_nametoindex(c.as_ptr()) } {
        0 => Err(io::Error::last_os_error()),
        n => Ok(n),
    }
}

// ---- file descriptors and sockets ----------------------------------------------------------

/// Waits until `fd` is readable or `timeout` passes; true when readable.
pub fn wait_readable(fd: BorrowedFd<'_>, timeout: Duration) -> bool {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: poll on one live pollfd for the duration of the call.
    let n = unsafe { libc::poll(&mut pfd, 1, ms) };
    n > 0 && pfd.revents & libc::POLLIN != 0
}

/// How many bytes are queued for reading on `fd` (FIONREAD: a pipe or a socket).
pub fn bytes_queued(fd: BorrowedFd<'_>) -> io::Result<usize> {
    let mut n: c_int = 0;
    // SAFETY: FIONREAD stores one int at the given address, which is live for the call.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut n) } != 0 {
        return Err(io::Error::last_os_error());
    }
    usize::try_from(n).map_err(io::Error::other)
}

/// Receives one datagram or frame into `buf` without blocking: `Ok(None)` when nothing is
/// queued.
pub fn recv_nonblocking(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<Option<usize>> {
    // SAFETY: recv writes at most buf.len() bytes into the live buffer.
    let n = unsafe {
        libc::recv(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT,
        )
    };
    if n >= 0 {
        return Ok(Some(n as usize));
    }
    let e = io::Error::last_os_error();
    if e.kind() == io::ErrorKind::WouldBlock {
        Ok(None)
    } else {
        Err(e)
    }
}

/// Sets `SO_MARK` (the skb mark of what the socket sends) on socket `fd`; needs CAP_NET_ADMIN.
pub fn set_mark(fd: BorrowedFd<'_>, mark: u32) -> io::Result<()> {
    // SAFETY: setsockopt reads a u32 from a live local of the given size.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_MARK,
            &mark as *const u32 as *const libc::c_void,
            std::mem::size_of::<u32>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// An AF_PACKET raw socket for every protocol, bound to interface `ifindex` of the calling
/// thread's namespace (0: every interface of it).
pub fn packet_socket(ifindex: u32) -> io::Result<OwnedFd> {
    let proto = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: plain socket(2) call; the fd is owned right away.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(proto)) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh, valid descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_ll is plain data; all-zero is valid.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto;
    sll.sll_ifindex = i32::try_from(ifindex).map_err(io::Error::other)?;
    // SAFETY: bind with a pointer to a live sockaddr_ll and its size.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

// ---- bpf(2) --------------------------------------------------------------------------------
//
// The filter harness's own partial `bpf_attr` prefixes (moved from pwru-filter's kernel module
// as they were; pwru-core's syscall layer is to replace them).

/// The `bpf_attr` prefix of `BPF_PROG_LOAD`.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// The `bpf_attr` prefix of `BPF_PROG_TEST_RUN`.
#[repr(C)]
#[derive(Default)]
struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
}

/// The `bpf_attr` prefix of the `BPF_*_GET_NEXT_ID` commands: `start_id`, `next_id`.
#[repr(C)]
#[derive(Default)]
struct NextIdAttr {
    start_id: u32,
    next_id: u32,
    open_flags: u32,
    pad: u32,
}

/// A `bpf_attr` prefix type of this module (so [`sys_bpf`] takes only those).
trait BpfAttr {}
impl BpfAttr for ProgLoadAttr {}
impl BpfAttr for TestRunAttr {}
impl BpfAttr for NextIdAttr {}

const BPF_PROG_LOAD: c_long = 5;
const BPF_PROG_TEST_RUN: c_long = 10;

fn sys_bpf<T: BpfAttr>(cmd: c_long, attr: &mut T) -> io::Result<c_long> {
    // SAFETY: attr is a valid, initialised repr(C) bpf_attr prefix of the given size; every
    // pointer inside it refers to memory that outlives the call (the callers below keep it).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>(),
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// `BPF_PROG_LOAD` of `code` (eBPF instructions, 8 bytes each) as a GPL program of raw type
/// `prog_type` named `name` (at most 15 bytes used). With `log`, the verifier's level-1 log is
/// written into it.
pub fn bpf_prog_load(
    prog_type: u32,
    code: &[u8],
    name: &str,
    log: Option<&mut [u8]>,
) -> io::Result<OwnedFd> {
    let insn_cnt = u32::try_from(code.len() / 8).map_err(io::Error::other)?;
    let license = b"GPL\0";
    let mut attr = ProgLoadAttr {
        prog_type,
        insn_cnt,
        insns: code.as_ptr() as u64,
        license: license.as_ptr() as u64,
        ..Default::default()
    };
    let n = name.len().min(15);
    attr.prog_name[..n].copy_from_slice(&name.as_bytes()[..n]);
    if let Some(log) = log {
        attr.log_level = 1;
        attr.log_size = u32::try_from(log.len()).unwrap_or(u32::MAX);
        attr.log_buf = log.as_mut_ptr() as u64;
    }
    let fd = sys_bpf(BPF_PROG_LOAD, &mut attr)?;
    // SAFETY: a successful BPF_PROG_LOAD returns a new file descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// `BPF_PROG_TEST_RUN` of program `prog` on `data`, `repeat` times (0 counts as 1): the
/// program's return value and the kernel's mean run time in ns.
pub fn bpf_prog_test_run(prog: BorrowedFd<'_>, data: &[u8], repeat: u32) -> io::Result<(u32, u32)> {
    let data_size_in = u32::try_from(data.len()).map_err(io::Error::other)?;
    let mut attr = TestRunAttr {
        prog_fd: prog.as_raw_fd() as u32,
        data_size_in,
        data_in: data.as_ptr() as u64,
        repeat,
        ..Default::default()
    };
    sys_bpf(BPF_PROG_TEST_RUN, &mut attr)?;
    Ok((attr.retval, attr.duration))
}

/// One step of a `BPF_{PROG,MAP,LINK}_GET_NEXT_ID` walk (`cmd` is the raw command): the next
/// id after `start`, or `None` at the end of the list.
pub fn bpf_get_next_id(cmd: c_long, start: u32) -> io::Result<Option<u32>> {
    let mut attr = NextIdAttr {
        start_id: start,
        ..Default::default()
    };
    match sys_bpf(cmd, &mut attr) {
        Ok(_) => Ok(Some(attr.next_id)),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

// ---- records of the kernel programs -------------------------------------------------------

/// Decodes one ring buffer record into its header and event (None if it is too short or not
/// an event).
pub fn decode_record(record: &[u8]) -> Option<(PwruRecordHdr, PwruEvent)> {
    let hs = std::mem::size_of::<PwruRecordHdr>();
    let es = std::mem::size_of::<PwruEvent>();
    if record.len() < hs + es {
        return None;
    }
    // SAFETY: the lengths were checked; both mirrors are plain-old-data #[repr(C)] structs
    // for which every bit pattern is valid, read unaligned from the record bytes.
    let hdr: PwruRecordHdr = unsafe { std::ptr::read_unaligned(record.as_ptr().cast()) };
    // SAFETY: as above.
    let ev: PwruEvent = unsafe { std::ptr::read_unaligned(record[hs..].as_ptr().cast()) };
    (hdr.kind == pwru_ebpf::PWRU_RECORD_EVENT).then_some((hdr, ev))
}

// ---- libpcap's interpreter -----------------------------------------------------------------

#[link(name = "pcap")]
extern "C" {
    /// The interpreter, on any instruction slice, returning the program's value.
    fn bpf_filter(pc: *const CbpfInsn, pkt: *const u8, wirelen: c_uint, buflen: c_uint) -> c_uint;
    /// libpcap's validator, which must accept a program before its interpreter may run it;
    /// the `pcap` crate does not expose it.
    fn bpf_validate(f: *const CbpfInsn, len: c_int) -> c_int;
}

/// libpcap's `bpf_validate` then `bpf_filter` on `packet` as a full capture: `None` when the
/// validator refuses the program (or it is empty or too long).
pub fn libpcap_filter(insns: &[CbpfInsn], packet: &[u8]) -> Option<u32> {
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

// ---- rbpf ----------------------------------------------------------------------------------

/// `bpf_probe_read_kernel` for rbpf: copies `size` bytes from `src` to `dst` only when the
/// source lies inside `[lo, hi)` (the packet being run), like a kernel read of valid memory;
/// anything else zeroes `dst` and returns -EFAULT, as the kernel does.
///
/// `dst` comes from the program rbpf runs: rbpf checks stack accesses of the program but not
/// helper arguments, so a wrong `dst` from a translator bug would write outside rbpf's stack.
/// The translated bodies pass only their own stack buffers (a few hundred bytes at most).
pub(crate) fn rbpf_probe_read(dst: u64, size: u64, src: u64, lo: u64, hi: u64) -> u64 {
    if size == 0 {
        return 0;
    }
    let ok = src >= lo && src.checked_add(size).is_some_and(|end| end <= hi);
    // SAFETY: (test code) dst points into rbpf's stack (see above), size is at most a few
    // hundred bytes (the filter's own buffer), src was checked to lie inside the packet slice.
    unsafe {
        if ok {
            std::ptr::copy_nonoverlapping(src as *const u8, dst as *mut u8, size as usize);
            0
        } else {
            std::ptr::write_bytes(dst as *mut u8, 0, size as usize);
            (-14i64) as u64
        }
    }
}
